// Issue 14, input hygiene: every case here answered 500, an empty body, or another site's answer
// before; each now answers a 4xx naming the field (or 413), and starts nothing.
import { HttpRequest, InvocationContext, type HttpRequestInit } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { createTenant, getTenant } from "../../src/functions/tenants";
import { rotateTenant } from "../../src/functions/rotate";
import { keyVaultUnavailable, publicMessage } from "../../src/functions/responses";
import { MAX_BODY_BYTES } from "../../src/functions/requestBody";
import { encodeSiteTags, SECRET_CONTENT_TYPE } from "../../src/domain/tags";
import { secretNameFor } from "../../src/domain/site";
import { FakeSecretStore } from "./fakes";

const now = () => new Date("2026-11-27T12:00:00Z");
const context = () => new InvocationContext({ functionName: "test", logHandler: () => undefined });

function fakeClient() {
  const started: { name: string; instanceId: string; input: unknown }[] = [];
  const client = {
    startNew: async (name: string, options: { instanceId: string; input: unknown }) => {
      started.push({ name, instanceId: options.instanceId, input: options.input });
      return options.instanceId;
    },
    getStatus: async (instanceId: string) => {
      throw new Error(`DurableClient error: Durable Functions extension replied with HTTP 404 response. ${instanceId}`);
    },
    createCheckStatusResponse: (_req: unknown, instanceId: string) => ({ status: 202, jsonBody: { id: instanceId } }),
  };
  return { client: client as unknown as DurableClient, started };
}

function vault(...hosts: string[]) {
  const store = new FakeSecretStore();
  store.seed("creatio-api-acme", JSON.stringify({ username: "Supervisor", password: "pw" }), { tags: { creatioSite: "acme.creatio.com xn--bcher-kva.de 10.0.0.1 127.0.0.1 127.0.0.1:7103" } });
  for (const host of hosts) {
    store.seed(secretNameFor(host), "THE-CLIENT-SECRET", {
      contentType: SECRET_CONTENT_TYPE,
      expiresOn: new Date("2027-06-01T00:00:00Z"),
      tags: encodeSiteTags({ site: host, appId: "a", appObjectId: "o", keyId: "k1", creatioCredential: "creatio-api-acme", mailServerId: "m" }),
    });
  }
  return store;
}

const valid = { creatioUrl: "https://acme.creatio.com", creatioCredentialSecretName: "creatio-api-acme" };
const post = (body: string, headers: Record<string, string> = {}) =>
  new HttpRequest({ method: "POST", url: "http://localhost/api/tenants", body: { string: body }, headers: { "content-type": "application/json", ...headers } });
const get = (host: string) => new HttpRequest({ method: "GET", url: "http://localhost/api/tenants/x", params: { host } });
const rotate = (host: string, body?: string, headers: Record<string, string> = {}) =>
  new HttpRequest({
    method: "POST",
    url: "http://localhost/api/tenants/x/rotate",
    params: { host },
    ...(body === undefined ? {} : { body: { string: body } }),
    headers: { "content-type": "application/json", ...headers },
  });

/** A request whose body is a stream, as the worker gives it with HTTP streams (and undici for a chunked upload). */
function streamed(url: string, params: Record<string, string>, stream: ReadableStream<Uint8Array>, headers: Record<string, string> = {}) {
  const nativeRequest = new Request(url, { method: "POST", body: stream, headers: { "content-type": "application/json", ...headers }, duplex: "half" } as RequestInit);
  return new HttpRequest({ method: "POST", url, params, nativeRequest } as HttpRequestInit);
}

/** An endless body of 1 KiB chunks; counts how many were pulled and whether it was cancelled. */
function endlessJson() {
  const state = { pulled: 0, cancelled: false };
  const chunk = new TextEncoder().encode(" ".repeat(1024));
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('{"displayName":"'));
    },
    pull(controller) {
      state.pulled += 1;
      controller.enqueue(chunk);
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

const paths = (response: { jsonBody?: unknown }) => ((response.jsonBody as { errors?: { path: string }[] }).errors ?? []).map((e) => e.path);

describe("JSON nested deeper than any API body", () => {
  const deepObject = (depth: number) => '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
  const deepArray = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

  it.each([
    ["objects, 10,000 deep", deepObject(10_000)],
    ["arrays, 30,000 deep", deepArray(30_000)],
    ["33 levels", deepObject(33)],
  ])("POST /api/tenants answers 400 for %s, never 500", async (_name, body) => {
    const { client, started } = fakeClient();
    const response = await createTenant(post(body), client, context(), { secrets: vault(), now });
    expect(response.status).toBe(400);
    expect(JSON.stringify(response.jsonBody)).toMatch(/nested too deeply/);
    expect(started).toHaveLength(0);
  });

  it("POST /api/tenants/{host}/rotate answers 400 too", async () => {
    const { client, started } = fakeClient();
    const response = await rotateTenant(rotate("acme.creatio.com", deepObject(10_000)), client, context(), { secrets: vault("acme.creatio.com"), defaultGracePeriodHours: () => 24 });
    expect(response.status).toBe(400);
    expect(JSON.stringify(response.jsonBody)).toMatch(/nested too deeply/);
    expect(started).toHaveLength(0);
  });

  it("32 levels are only as wrong as their fields", async () => {
    const { client } = fakeClient();
    const response = await createTenant(post(JSON.stringify({ ...valid, extra: JSON.parse(deepObject(31)) })), client, context(), { secrets: vault(), now });
    expect(response.status).toBe(400);
    expect(paths(response)).toEqual(["extra"]);
  });

  it("still finds a password-like field deep inside, without echoing it", async () => {
    const { client } = fakeClient();
    const body = JSON.stringify({ ...valid, a: { b: [{ c: { clientSecret: "hunter2" } }] } });
    const response = await createTenant(post(body), client, context(), { secrets: vault(), now });
    expect(response.status).toBe(400);
    expect(paths(response)).toEqual(["a.b.0.c.clientSecret"]);
    expect(JSON.stringify(response.jsonBody)).not.toContain("hunter2");
  });
});

describe("control and invisible characters", () => {
  const bad: [string, string][] = [
    ["NUL", "\u0000"],
    ["a vertical tab", "\u000b"],
    ["a newline", "\n"],
    ["DEL", "\u007f"],
    ["a C1 control (NEL)", "\u0085"],
    ["the BOM", "\ufeff"],
    ["NBSP", "\u00a0"],
    ["an ideographic space U+3000", "\u3000"],
    ["a line separator U+2028", "\u2028"],
    ["a paragraph separator U+2029", "\u2029"],
    ["a zero-width space", "\u200b"],
    ["a zero-width joiner", "\u200d"],
    ["a word joiner U+2060", "\u2060"],
    ["a right-to-left override", "\u202e"],
    ["a first-strong isolate U+2068", "\u2068"],
  ];

  it.each(bad)("POST /api/tenants refuses %s in displayName: 400 naming it, nothing started", async (_name, ch) => {
    const { client, started } = fakeClient();
    const response = await createTenant(post(JSON.stringify({ ...valid, displayName: `Creatio${ch}Mail` })), client, context(), { secrets: vault(), now });
    expect(response.status).toBe(400);
    expect(paths(response)).toEqual(["displayName"]);
    expect(started).toHaveLength(0);
  });

  it.each(bad)("POST /api/tenants refuses %s in creatioUrl and creatioCredentialSecretName", async (_name, ch) => {
    const { client, started } = fakeClient();
    for (const [field, value] of [
      ["creatioUrl", `${ch}https://acme.creatio.com`],
      ["creatioUrl", `https://acme.creatio.com${ch}`],
      ["creatioUrl", `https://acme.cre${ch}atio.com`],
      ["creatioCredentialSecretName", `creatio-api-acme${ch}`],
    ]) {
      const response = await createTenant(post(JSON.stringify({ ...valid, [field!]: value })), client, context(), { secrets: vault(), now });
      expect(response.status).toBe(400);
      expect(paths(response)).toEqual([field]);
    }
    expect(started).toHaveLength(0);
  });

  it.each(bad)("GET /api/tenants/{host} and POST .../rotate refuse %s around the host: 400 naming host", async (_name, ch) => {
    const { client, started } = fakeClient();
    const secrets = vault("acme.creatio.com");
    for (const host of [`${ch}acme.creatio.com`, `acme.creatio.com${ch}`, encodeURIComponent(`acme.creatio.com${ch}`)]) {
      const one = await getTenant(get(host), client, context(), { secrets, now });
      expect(one.status).toBe(400);
      expect(paths(one)).toEqual(["host"]);
      const rotated = await rotateTenant(rotate(host), client, context(), { secrets, defaultGracePeriodHours: () => 24 });
      expect(rotated.status).toBe(400);
      expect(paths(rotated)).toEqual(["host"]);
    }
    expect(started).toHaveLength(0);
  });

  it("the rotate body is screened too", async () => {
    const { client, started } = fakeClient();
    const response = await rotateTenant(rotate("acme.creatio.com", '{"gracePeriodHours":1,"note":"a\\u0000b"}'), client, context(), { secrets: vault("acme.creatio.com"), defaultGracePeriodHours: () => 24 });
    expect(response.status).toBe(400);
    expect(paths(response)).toEqual(["note"]);
    expect(started).toHaveLength(0);
  });

  it("letters of any script and emoji stay allowed in displayName", async () => {
    const { client, started } = fakeClient();
    const response = await createTenant(post(JSON.stringify({ ...valid, displayName: "Creatio Müller 日本 😀" })), client, context(), { secrets: vault(), now });
    expect(response.status).toBe(202);
    expect((started[0]!.input as { displayName: string }).displayName).toBe("Creatio Müller 日本 😀");
  });
});

describe("one canonical site key on every route", () => {
  it("an IDN site is the same punycode key on POST, GET and rotate", async () => {
    const { client, started } = fakeClient();
    const secrets = vault("xn--bcher-kva.de");
    const created = await createTenant(post(JSON.stringify({ ...valid, creatioUrl: "https://Bücher.de" })), client, context(), { secrets, now });
    expect(created.status).toBe(202);
    expect(started[0]).toMatchObject({ instanceId: "onboard-xn--bcher-kva.de", input: { host: "xn--bcher-kva.de" } });
    for (const host of ["bücher.de", encodeURIComponent("bücher.de"), "xn--bcher-kva.de", "BÜCHER.de:443"]) {
      const one = await getTenant(get(host), client, context(), { secrets, now });
      expect(one.status).toBe(200);
      expect(one.jsonBody).toMatchObject({ host: "xn--bcher-kva.de", secret: { name: secretNameFor("xn--bcher-kva.de") } });
    }
    const rotated = await rotateTenant(rotate("bücher.de"), client, context(), { secrets, defaultGracePeriodHours: () => 24 });
    expect(rotated.status).toBe(202);
    expect(started[1]).toMatchObject({ instanceId: "rotate-xn--bcher-kva.de" });
  });

  it("upper case and the default port name the same site; a second port is no site", async () => {
    const { client } = fakeClient();
    const secrets = vault("localhost:7103", "acme.creatio.com");
    expect((await getTenant(get("ACME.Creatio.COM:443"), client, context(), { secrets, now })).jsonBody).toMatchObject({ host: "acme.creatio.com" });
    expect((await getTenant(get("localhost:7103"), client, context(), { secrets, now })).status).toBe(200);
    for (const host of ["localhost:7103:443", "localhost:443:7103", "acme.creatio.com:443:443", "acme.creatio.com:"]) {
      const one = await getTenant(get(host), client, context(), { secrets, now });
      expect(one.status).toBe(400);
      expect(paths(one)).toEqual(["host"]);
      expect((await rotateTenant(rotate(host), client, context(), { secrets, defaultGracePeriodHours: () => 24 })).status).toBe(400);
    }
  });

  it("a host with a path, user info or query is refused, not read as another host", async () => {
    const { client } = fakeClient();
    const secrets = vault("acme.creatio.com");
    for (const host of ["evil@acme.creatio.com", "acme.creatio.com/x", "acme.creatio.com?x", "acme.creatio.com#x", "acme.creatio.com\\x", " acme.creatio.com"]) {
      expect((await getTenant(get(host), client, context(), { secrets, now })).status).toBe(400);
    }
  });
});

describe("creatioUrl addresses", () => {
  const create = async (creatioUrl: string, allowLoopback?: boolean) => {
    const { client, started } = fakeClient();
    const response = await createTenant(post(JSON.stringify({ ...valid, creatioUrl })), client, context(), { secrets: vault(), now, allowLoopback });
    return { response, started };
  };

  it.each(["https://169.254.169.254", "https://[fe80::1]", "https://2852039166", "https://[::ffff:169.254.169.254]", "https://0.0.0.0", "https://100.100.100.200", "https://169.254.10.1:8443"])(
    "refuses %s with 400 naming creatioUrl, whatever CREATIO_ALLOW_LOOPBACK says",
    async (url) => {
      for (const allowLoopback of [false, true]) {
        const { response, started } = await create(url, allowLoopback);
        expect(response.status).toBe(400);
        expect(paths(response)).toEqual(["creatioUrl"]);
        expect(JSON.stringify(response.jsonBody)).toMatch(/metadata|link-local|unspecified/);
        expect(started).toHaveLength(0);
      }
    },
  );

  it("allows a private address (an on-premises Creatio reached through VNet integration)", async () => {
    const { response, started } = await create("https://10.0.0.1");
    expect(response.status).toBe(202);
    expect(started[0]).toMatchObject({ instanceId: "onboard-10.0.0.1" });
  });

  it("refuses https://127.0.0.1 unless CREATIO_ALLOW_LOOPBACK", async () => {
    const refused = await create("https://127.0.0.1");
    expect(refused.response.status).toBe(400);
    expect(paths(refused.response)).toEqual(["creatioUrl"]);
    expect(JSON.stringify(refused.response.jsonBody)).toMatch(/loopback.*CREATIO_ALLOW_LOOPBACK/);
    expect((await create("https://127.0.0.1:7103", true)).response.status).toBe(202);
    expect((await create("https://[::1]:7103", false)).response.status).toBe(400);
  });
});

describe("bodies above 64 KiB answer 413 without being read whole", () => {
  it("POST /api/tenants: a declared Content-Length above the limit is refused before reading", async () => {
    const { client, started } = fakeClient();
    let pulled = false;
    // highWaterMark 0: the stream pulls only when someone reads.
    const stream = new ReadableStream<Uint8Array>(
      {
        pull() {
          pulled = true;
          throw new Error("the body must not be read");
        },
      },
      { highWaterMark: 0 },
    );
    const request = streamed("http://localhost/api/tenants", {}, stream, { "content-length": String(MAX_BODY_BYTES + 1) });
    const response = await createTenant(request, client, context(), { secrets: vault(), now });
    expect(response.status).toBe(413);
    expect(response.jsonBody).toEqual({ error: expect.stringMatching(/64 KiB/) });
    expect(pulled).toBe(false);
    expect(started).toHaveLength(0);
  });

  it("POST /api/tenants: a chunked body without Content-Length is read only until it passes the limit", async () => {
    const { client, started } = fakeClient();
    const { stream, state } = endlessJson();
    const response = await createTenant(streamed("http://localhost/api/tenants", {}, stream), client, context(), { secrets: vault(), now });
    expect(response.status).toBe(413);
    expect(state.pulled).toBeLessThanOrEqual(MAX_BODY_BYTES / 1024 + 2);
    expect(state.cancelled).toBe(true);
    expect(started).toHaveLength(0);
  });

  it("POST /api/tenants/{host}/rotate: the same, by Content-Length and by stream", async () => {
    const { client, started } = fakeClient();
    const secrets = vault("acme.creatio.com");
    const deps = { secrets, defaultGracePeriodHours: () => 24 };
    const big = rotate("acme.creatio.com", JSON.stringify({ gracePeriodHours: 1, pad: "x".repeat(MAX_BODY_BYTES) }));
    expect((await rotateTenant(big, client, context(), deps)).status).toBe(413);
    const { stream, state } = endlessJson();
    const response = await rotateTenant(streamed("http://localhost/api/tenants/acme.creatio.com/rotate", { host: "acme.creatio.com" }, stream), client, context(), deps);
    expect(response.status).toBe(413);
    expect(state.cancelled).toBe(true);
    expect(started).toHaveLength(0);
  });

  it("a body just under the limit is read and judged on its content", async () => {
    const { client } = fakeClient();
    const body = JSON.stringify({ ...valid, pad: "x".repeat(MAX_BODY_BYTES - 200) });
    const response = await createTenant(post(body), client, context(), { secrets: vault(), now });
    expect(response.status).toBe(400);
    expect(paths(response)).toEqual(["pad"]);
  });

  it("a body that is not UTF-8 answers 400", async () => {
    const { client } = fakeClient();
    const request = new HttpRequest({ method: "POST", url: "http://localhost/api/tenants", body: { bytes: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) }, headers: { "content-type": "application/json" } });
    const response = await createTenant(request, client, context(), { secrets: vault(), now });
    expect(response.status).toBe(400);
  });
});

describe("no stack trace or file path in an answer", () => {
  it("publicMessage keeps the first line, drops frames and absolute paths", () => {
    const error = new Error("ENOENT: no such file or directory, open '/home/site/wwwroot/dist/src/x.js'\n    at Object.openSync (node:fs:573:3)\n    at f (/home/site/wwwroot/dist/src/y.js:1:2)");
    expect(publicMessage(error)).toBe("ENOENT: no such file or directory, open '[path]'");
    expect(publicMessage(new Error("DefaultAzureCredential failed to retrieve a token from the included credentials.\nAttempted credentials:\n\tAzureCliCredential: /usr/bin/az: not found"))).toBe(
      "DefaultAzureCredential failed to retrieve a token from the included credentials.",
    );
    expect(publicMessage(new Error("failed at C:\\home\\site\\wwwroot\\x.js or file:///home/x.js"))).toBe("failed at [path] or [path]");
    // URLs are not file paths.
    expect(publicMessage(new Error("connect ECONNREFUSED https://kv.vault.azure.net/secrets/a"))).toBe("connect ECONNREFUSED https://kv.vault.azure.net/secrets/a");
    expect(publicMessage("x".repeat(1000)).length).toBeLessThanOrEqual(300);
    expect(publicMessage(new Error(""))).toBe("Error");
  });

  it("a Key Vault failure answers 503 with the public message only", async () => {
    const error = Object.assign(new Error("getaddrinfo ENOTFOUND kv.vault.azure.net\n    at GetAddrInfoReqWrap.onlookup (/home/site/wwwroot/node_modules/x.js:1:1)"), { statusCode: undefined });
    const response = keyVaultUnavailable(context(), "the list of secrets", error);
    expect(response.status).toBe(503);
    expect(response.jsonBody).toEqual({ error: "Key Vault could not be read: getaddrinfo ENOTFOUND kv.vault.azure.net" });
    const secrets = vault();
    secrets.getSecret = (async () => {
      throw error;
    }) as typeof secrets.getSecret;
    const { client } = fakeClient();
    const one = await getTenant(get("acme.creatio.com"), client, context(), { secrets, now });
    expect(one.status).toBe(503);
    expect(JSON.stringify(one.jsonBody)).not.toMatch(/\/home|\s+at\s/);
  });
});
