// The Graph client's retry rules (src/clients/graph.ts SafeRetryHandler): 429 is retried for every
// request, send-once ones included, after Retry-After; 5xx and network errors only for idempotent
// requests that are not send-once.
import type { Context, Middleware } from "@microsoft/microsoft-graph-client";
import { createGraphClient, SendOnce } from "../../src/clients/graph";
import { fakeCredential, recordingGraph } from "./graphRecorder";

describe("Graph retry rules", () => {
  it("retries a send-once POST answered 429 once, after the Retry-After it names", async () => {
    const sleeps: number[] = [];
    let n = 0;
    const { graph, calls } = recordingGraph(
      () => (++n === 1 ? { status: 429, headers: { "Retry-After": "2" }, body: { error: { code: "TooManyRequests", message: "slow down" } } } : { status: 200, body: { keyId: "k1" } }),
      undefined,
      { sleep: async (ms) => void sleeps.push(ms), maxDelayMs: 60_000 },
    );
    await expect(graph.api("/applications/app/addPassword").middlewareOptions([new SendOnce()]).post({ passwordCredential: {} })).resolves.toEqual({ keyId: "k1" });
    expect(calls.map((c) => c.method)).toEqual(["POST", "POST"]);
    expect(calls[1]!.body).toEqual({ passwordCredential: {} });
    expect(sleeps).toEqual([2000]);
  });

  it("does not retry a send-once POST answered 503", async () => {
    const { graph, calls } = recordingGraph(() => ({ status: 503, body: { error: { code: "serviceUnavailable", message: "busy" } } }));
    await expect(graph.api("/applications/app/addPassword").middlewareOptions([new SendOnce()]).post({ passwordCredential: {} })).rejects.toMatchObject({ statusCode: 503 });
    expect(calls).toHaveLength(1);
  });

  it("does not retry a send-once request of an idempotent method after a 5xx", async () => {
    const { graph, calls } = recordingGraph(() => ({ status: 500, body: { error: { code: "generalException", message: "oops" } } }));
    await expect(graph.api("/applications/app").middlewareOptions([new SendOnce()]).patch({ displayName: "x" })).rejects.toMatchObject({ statusCode: 500 });
    expect(calls).toHaveLength(1);
  });

  it("gives up on 429 after maxRetries", async () => {
    const { graph, calls } = recordingGraph(() => ({ status: 429, headers: { "Retry-After": "0" }, body: { error: { code: "TooManyRequests", message: "slow down" } } }));
    await expect(graph.api("/applications/app/addPassword").middlewareOptions([new SendOnce()]).post({})).rejects.toMatchObject({ statusCode: 429 });
    expect(calls).toHaveLength(4); // first try + maxRetries (3) of the recorder's policy
  });

  describe("network errors", () => {
    function failingOnce(): { transport: Middleware; sent: string[] } {
      const sent: string[] = [];
      const transport: Middleware = {
        async execute(context: Context) {
          sent.push((context.options?.method ?? "GET").toUpperCase());
          if (sent.length === 1) throw new TypeError("fetch failed");
          context.response = new Response(JSON.stringify({ ok: 1 }), { status: 200, headers: { "content-type": "application/json" } });
        },
      };
      return { transport, sent };
    }
    const client = (transport: Middleware) =>
      createGraphClient({
        baseUrl: "https://graph.test.example",
        credential: fakeCredential,
        transport,
        retryPolicy: { maxRetries: 3, baseDelayMs: 1, maxDelayMs: 5, sleep: async () => undefined },
      });

    it("retries an idempotent request", async () => {
      const { transport, sent } = failingOnce();
      await expect(client(transport).api("/x").get()).resolves.toEqual({ ok: 1 });
      expect(sent).toEqual(["GET", "GET"]);
    });

    it("never retries a POST or a send-once request", async () => {
      const post = failingOnce();
      await expect(client(post.transport).api("/x").post({})).rejects.toThrow("fetch failed");
      expect(post.sent).toEqual(["POST"]);
      const once = failingOnce();
      await expect(client(once.transport).api("/x").middlewareOptions([new SendOnce()]).get()).rejects.toThrow("fetch failed");
      expect(once.sent).toEqual(["GET"]);
    });
  });
});
