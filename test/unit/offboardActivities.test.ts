import { CreatioClient, type CreatioClientOptions } from "../../src/clients/creatio";
import type { ExchangeAdmin, OrganizationEwsConfig } from "../../src/clients/exchange";
import { ExchangeAccessError } from "../../src/clients/exchange";
import { unlinkCreatio } from "../../src/activities/unlinkCreatio";
import { removeEwsAccess } from "../../src/activities/removeEwsAccess";
import { deleteApplication } from "../../src/activities/deleteApplication";
import { deleteSiteSecret } from "../../src/activities/deleteSiteSecret";
import { decodeSiteTags, encodeSiteTags, SECRET_CONTENT_TYPE } from "../../src/domain/tags";
import { FakeSecretStore, deps } from "./fakes";
import { graphError, recordingGraph } from "./graphRecorder";

const HOST = "acme.creatio.com";
const APP = "aaaaaaaa-0000-4000-8000-000000000001";
const OTHER_APP = "bbbbbbbb-0000-4000-8000-000000000002";
const MAIL = "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b";
const ROW = "cccccccc-0000-4000-8000-000000000003";
const EMPTY = "00000000-0000-0000-0000-000000000000";

/** A Creatio site in memory behind a fake fetch: the real CreatioClient talks to it; every OData request is recorded. */
function fakeCreatio(state: { link: string; rows: { Id: string; ClientId: string }[] }, options: { down?: boolean } = {}) {
  const requests: string[] = [];
  const reply = (status: number, body?: unknown, headers: Record<string, string> = {}) =>
    new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
  const fetchImpl = (async (input: string | URL, init?: RequestInit) => {
    const url = new URL(String(input));
    const method = init?.method ?? "GET";
    if (options.down) throw new TypeError("fetch failed: ECONNREFUSED");
    if (url.pathname === "/ServiceModel/AuthService.svc/Login") return reply(200, { Code: 0 }, { "set-cookie": "BPMCSRF=csrf; path=/" });
    const path = decodeURIComponent(url.pathname + url.search);
    if (path === "/0/odata/MailServer?$select=Id&$top=1") return reply(200, { value: [{ Id: MAIL }] });
    requests.push(`${method} ${path}${init?.body ? ` ${init.body}` : ""}`);
    if (method === "GET" && path.startsWith(`/0/odata/MailServer(${MAIL})`)) return reply(200, { Id: MAIL, Name: "Office 365", OAuthApplicationId: state.link });
    const byKey = /^\/0\/odata\/OAuthApplications\(([^)]+)\)/.exec(path)?.[1];
    if (method === "GET" && byKey) {
      const row = state.rows.find((r) => r.Id === byKey);
      return row ? reply(200, row) : reply(404, { error: { message: "not found" } });
    }
    if (method === "GET" && path.startsWith("/0/odata/OAuthApplications?$filter=")) {
      const id = /ClientId eq '([^']+)'/.exec(path)?.[1];
      return reply(200, { value: state.rows.filter((r) => r.ClientId === id) });
    }
    if (method === "PATCH" && path === `/0/odata/MailServer(${MAIL})`) {
      state.link = (JSON.parse(String(init!.body)) as { OAuthApplicationId: string }).OAuthApplicationId;
      return reply(204);
    }
    if (method === "DELETE" && byKey) {
      const before = state.rows.length;
      state.rows = state.rows.filter((r) => r.Id !== byKey);
      return state.rows.length < before ? reply(204) : reply(404, { error: { message: "not found" } });
    }
    return reply(500, { error: { message: `unexpected ${method} ${path}` } });
  }) as typeof fetch;
  const creatio = (opts: CreatioClientOptions) => new CreatioClient({ ...opts, fetch: fetchImpl, sleep: async () => undefined, maxRetries: 1, baseDelayMs: 1 });
  return { creatio, requests, state };
}

function vaultWithCredential() {
  const store = new FakeSecretStore();
  store.seed("creatio-api-acme", JSON.stringify({ username: "Supervisor", password: "the-password" }), { tags: { creatioSite: HOST } });
  return store;
}
const input = { host: HOST, appId: APP, creatioCredentialSecretName: "creatio-api-acme", mailServerId: MAIL };
const noGraph = recordingGraph(() => ({ status: 500 })).graph;

describe("unlinkCreatio", () => {
  it("clears the mail server's link, then deletes our OAuth application row; a second run changes nothing", async () => {
    const site = fakeCreatio({ link: ROW, rows: [{ Id: ROW, ClientId: APP }] });
    const result = await unlinkCreatio(input, deps(noGraph, vaultWithCredential(), { creatio: site.creatio }));
    expect(result).toEqual({ actions: ["unlinked-mail-server", "deleted-oauth-application"], linkedToOtherClientId: null, note: null });
    expect(site.requests).toEqual([
      `GET /0/odata/MailServer(${MAIL})?$select=Id,Name,OAuthApplicationId`,
      `GET /0/odata/OAuthApplications(${ROW})?$select=Id,Name,AppClassName,ClientClassName,ClientId`,
      `PATCH /0/odata/MailServer(${MAIL}) {"OAuthApplicationId":"${EMPTY}"}`,
      `GET /0/odata/OAuthApplications?$filter=ClientId eq '${APP}'&$select=Id,ClientId`,
      `DELETE /0/odata/OAuthApplications(${ROW})`,
    ]);
    expect(site.state).toEqual({ link: EMPTY, rows: [] });

    site.requests.length = 0;
    const again = await unlinkCreatio(input, deps(noGraph, vaultWithCredential(), { creatio: site.creatio }));
    expect(again.actions).toEqual([]);
    expect(site.requests.filter((r) => !r.startsWith("GET"))).toEqual([]);
  });

  it("leaves a mail server linked to another application, and that row, as they are, and says so", async () => {
    const site = fakeCreatio({ link: ROW, rows: [{ Id: ROW, ClientId: OTHER_APP }] });
    const result = await unlinkCreatio(input, deps(noGraph, vaultWithCredential(), { creatio: site.creatio }));
    expect(result).toMatchObject({ actions: [], linkedToOtherClientId: OTHER_APP, note: expect.stringContaining(`client id ${OTHER_APP}, not this site's ${APP}`) });
    expect(site.requests.filter((r) => !r.startsWith("GET"))).toEqual([]);
    expect(site.state.rows).toEqual([{ Id: ROW, ClientId: OTHER_APP }]);
  });

  it("a mail server linked to a row without a client id is not ours either: left alone", async () => {
    const site = fakeCreatio({ link: ROW, rows: [{ Id: ROW, ClientId: "" }] });
    const result = await unlinkCreatio(input, deps(noGraph, vaultWithCredential(), { creatio: site.creatio }));
    expect(result).toMatchObject({ actions: [], linkedToOtherClientId: null, note: expect.stringMatching(/left as they are/) });
    expect(site.requests.filter((r) => !r.startsWith("GET"))).toEqual([]);
  });

  it("an unlinked mail server: deletes a leftover row holding our client id, nothing else", async () => {
    const site = fakeCreatio({ link: EMPTY, rows: [{ Id: ROW, ClientId: APP }] });
    const result = await unlinkCreatio(input, deps(noGraph, vaultWithCredential(), { creatio: site.creatio }));
    expect(result.actions).toEqual(["deleted-oauth-application"]);
    expect(site.requests.some((r) => r.startsWith("PATCH"))).toBe(false);
  });

  it("Creatio unreachable: throws for the step's retry, without the credential in the message", async () => {
    const site = fakeCreatio({ link: ROW, rows: [] }, { down: true });
    const error = (await unlinkCreatio(input, deps(noGraph, vaultWithCredential(), { creatio: site.creatio })).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toMatch(/ECONNREFUSED|fetch failed/);
    expect(error.message).not.toContain("the-password");
  });

  it("a site whose tags name no Creatio settings: skipped, nothing asked", async () => {
    const result = await unlinkCreatio({ host: HOST }, deps(noGraph, new FakeSecretStore()));
    expect(result).toMatchObject({ actions: [], note: expect.stringMatching(/no Creatio settings/) });
  });
});

function fakeExchange(config: OrganizationEwsConfig, fail?: Error) {
  const calls: string[] = [];
  const exchange: ExchangeAdmin = {
    tenant: async () => ({ tenantId: "tenant-1", initialDomain: "contoso.onmicrosoft.com" }),
    async getOrganizationConfig() {
      calls.push("get");
      if (fail) throw fail;
      return { EwsEnabled: config.EwsEnabled, EwsAllowedAppIDs: [...config.EwsAllowedAppIDs] };
    },
    async addEwsAllowedAppIds() {
      throw new Error("offboarding never adds");
    },
    async removeEwsAllowedAppIds(_t, ids) {
      calls.push(`remove:${ids.join(",")}`);
      config.EwsAllowedAppIDs = config.EwsAllowedAppIDs.filter((id) => !ids.includes(id));
    },
    async setEwsEnabled() {
      throw new Error("offboarding never changes EwsEnabled");
    },
  };
  return { exchange, calls, config };
}

describe("removeEwsAccess", () => {
  it("manage: removes only this app id, reads back; again: nothing written", async () => {
    const ex = fakeExchange({ EwsEnabled: true, EwsAllowedAppIDs: [OTHER_APP, APP] });
    const d = deps(noGraph, new FakeSecretStore(), { exchange: ex.exchange, ewsAccess: "manage" });
    expect(await removeEwsAccess({ host: HOST, appId: APP }, d)).toEqual({ mode: "manage", tenantId: "tenant-1", actions: ["removedAppId"], note: null });
    expect(ex.calls).toEqual(["get", `remove:${APP}`, "get"]);
    expect(ex.config.EwsAllowedAppIDs).toEqual([OTHER_APP]);
    ex.calls.length = 0;
    expect((await removeEwsAccess({ host: HOST, appId: APP }, d)).actions).toEqual([]);
    expect(ex.calls).toEqual(["get"]);
  });

  it("check or off: does not touch the list and says what to run", async () => {
    for (const mode of ["check", "off"] as const) {
      const ex = fakeExchange({ EwsEnabled: true, EwsAllowedAppIDs: [APP] });
      const result = await removeEwsAccess({ host: HOST, appId: APP }, deps(noGraph, new FakeSecretStore(), { exchange: ex.exchange, ewsAccess: mode }));
      expect(result).toMatchObject({ mode, actions: [], note: expect.stringContaining(`@{Remove="${APP}"}`) });
      expect(ex.calls).toEqual([]);
    }
  });

  it("no permission: a note, not a failure", async () => {
    const ex = fakeExchange({ EwsEnabled: true, EwsAllowedAppIDs: [APP] }, new ExchangeAccessError("Get-OrganizationConfig", 403, "no role"));
    const result = await removeEwsAccess({ host: HOST, appId: APP }, deps(noGraph, new FakeSecretStore(), { exchange: ex.exchange, ewsAccess: "manage" }));
    expect(result).toMatchObject({ actions: [], note: expect.stringMatching(/could not be changed.*Remove/) });
  });
});

describe("deleteApplication", () => {
  it("DELETE /applications(uniqueName='creatio-o365-...'); 404 is already gone", async () => {
    let gone = false;
    const { graph, calls } = recordingGraph((call) => {
      if (call.method === "DELETE" && !gone) {
        gone = true;
        return { status: 204 };
      }
      return graphError(404, "Request_ResourceNotFound", "not found");
    });
    const d = deps(graph, new FakeSecretStore());
    expect(await deleteApplication({ host: HOST, appId: APP }, d)).toEqual({
      uniqueName: "creatio-o365-acme--creatio--com",
      appId: APP,
      outcome: "deleted",
      restorableUntil: "2026-12-27T12:00:00.000Z",
    });
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual(["DELETE /applications(uniqueName='creatio-o365-acme--creatio--com')"]);
    expect(await deleteApplication({ host: HOST, appId: APP }, d)).toMatchObject({ outcome: "already-gone", restorableUntil: null });
  });

  it("any other failure is thrown for the step's retry", async () => {
    const { graph } = recordingGraph(() => graphError(403, "Authorization_RequestDenied", "Insufficient privileges"));
    await expect(deleteApplication({ host: HOST }, deps(graph, new FakeSecretStore()))).rejects.toThrow(/403|Insufficient/);
  });
});

describe("deleteSiteSecret", () => {
  const siteSecret = (store: FakeSecretStore) =>
    store.seed("creatio-o365-acme--creatio--com", "THE-CLIENT-SECRET", {
      contentType: SECRET_CONTENT_TYPE,
      expiresOn: new Date("2028-01-01T00:00:00Z"),
      tags: encodeSiteTags({ site: HOST, appId: APP, appObjectId: "obj", keyId: "k1", creatioCredential: "creatio-api-acme", mailServerId: MAIL }),
    });

  it("marks the site offboarded in the tags, then soft-deletes the secret; a retry finds it deleted", async () => {
    const store = new FakeSecretStore();
    siteSecret(store);
    const d = deps(noGraph, store);
    const result = await deleteSiteSecret({ host: HOST, instanceId: `offboard-${HOST}` }, d);
    expect(result).toMatchObject({ secretName: "creatio-o365-acme--creatio--com", outcome: "deleted", offboardedAt: "2026-11-27T12:00:00.000Z", scheduledPurgeDate: expect.any(String) });
    expect(store.writes.map((w) => w.op)).toEqual(["updateSecretProperties", "deleteSecret"]);
    const deleted = await store.getDeletedSecret("creatio-o365-acme--creatio--com");
    expect(decodeSiteTags(deleted.properties.tags)).toMatchObject({ ok: true, tags: { lastRun: { kind: "offboard", outcome: "succeeded", instanceId: `offboard-${HOST}` }, appId: APP } });
    expect(JSON.stringify(result)).not.toContain("THE-CLIENT-SECRET");

    expect(await deleteSiteSecret({ host: HOST, instanceId: `offboard-${HOST}` }, d)).toMatchObject({ outcome: "already-deleted", offboardedAt: "2026-11-27T12:00:00.000Z" });
    expect(store.writes).toHaveLength(2);
  });

  it("never deletes a secret under the site's name that is not a managed site's", async () => {
    const store = new FakeSecretStore();
    store.seed("creatio-o365-acme--creatio--com", "x", { contentType: "text/plain" });
    expect((await deleteSiteSecret({ host: HOST, instanceId: "i" }, deps(noGraph, store))).outcome).toBe("not-ours");
    expect(store.writes).toEqual([]);
  });
});
