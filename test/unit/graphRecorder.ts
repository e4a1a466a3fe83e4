import type { Context, Middleware } from "@microsoft/microsoft-graph-client";
import type { TokenCredential } from "@azure/identity";
import { createGraphClient, type RetryPolicy } from "../../src/clients/graph";

/** A Graph call as it left the client: what the unit tests assert on. */
export interface RecordedCall {
  method: string;
  url: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
}

export type Reply = { status: number; body?: unknown; headers?: Record<string, string> };
export type Router = (call: RecordedCall) => Reply;

export const fakeCredential: TokenCredential = {
  getToken: async () => ({ token: "unit-test-token", expiresOnTimestamp: Date.now() + 3_600_000 }),
};

/** A Graph client whose network is `route`; every request is recorded. Retries never wait unless `retryPolicy` says so. */
export function recordingGraph(route: Router, baseUrl = "https://graph.test.example", retryPolicy: Partial<RetryPolicy> = {}) {
  const calls: RecordedCall[] = [];
  const transport: Middleware = {
    async execute(context: Context) {
      const url = typeof context.request === "string" ? context.request : context.request.url;
      const headers: Record<string, string> = {};
      const raw = context.options?.headers as Record<string, string> | undefined;
      for (const [k, v] of Object.entries(raw ?? {})) headers[k.toLowerCase()] = String(v);
      const text = context.options?.body as string | undefined;
      const parsed = new URL(url);
      const call: RecordedCall = {
        method: (context.options?.method ?? "GET").toUpperCase(),
        url,
        path: decodeURIComponent(parsed.pathname.replace(/^\/v1\.0/, "")) + decodeURIComponent(parsed.search),
        headers,
        body: text ? JSON.parse(text) : undefined,
      };
      calls.push(call);
      const reply = route(call);
      const body = reply.body === undefined ? null : JSON.stringify(reply.body);
      context.response = new Response(reply.status === 204 ? null : body, {
        status: reply.status,
        headers: { "content-type": "application/json", ...(reply.headers ?? {}) },
      });
    },
  };
  const graph = createGraphClient({
    baseUrl,
    credential: fakeCredential,
    transport,
    retryPolicy: { maxRetries: 3, baseDelayMs: 1, maxDelayMs: 5, sleep: async () => undefined, ...retryPolicy },
  });
  return { graph, calls };
}

export const graphError = (status: number, code: string, message: string): Reply => ({ status, body: { error: { code, message } } });
