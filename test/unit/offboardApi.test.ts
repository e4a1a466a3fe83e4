import { HttpRequest, InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { offboardTenantRequest } from "../../src/functions/offboard";
import { createTenant, getTenant, listTenants } from "../../src/functions/tenants";
import { getRotationPlan } from "../../src/functions/rotationPlan";
import { runRotationSweep } from "../../src/functions/rotationSweep";
import { startRotation } from "../../src/functions/startRotation";
import { rotateTenant } from "../../src/functions/rotate";
import { SWEEP_RECORD_SECRET } from "../../src/functions/sweepRecord";
import { encodeSiteTags, SECRET_CONTENT_TYPE, type SiteTagsInput } from "../../src/domain/tags";
import { FakeSecretStore } from "./fakes";

const HOST = "acme.creatio.com";
const SECRET = "creatio-o365-acme--creatio--com";
const NOW = new Date("2026-11-27T12:00:00Z");

/** A Durable client whose instances have the given statuses; unknown ones are 404 as in durable-functions 3. */
function clientWith(statuses: Record<string, { runtimeStatus: string; createdTime?: Date; lastUpdatedTime?: Date }> = {}) {
  const started: { name: string; instanceId: string; input: unknown }[] = [];
  const client = {
    getStatus: async (instanceId: string) => {
      const status = statuses[instanceId];
      if (!status) throw new Error(`DurableClient error: Durable Functions extension replied with HTTP 404 response. ${instanceId}`);
      return { instanceId, ...status };
    },
    startNew: async (name: string, options: { instanceId: string; input: unknown }) => {
      started.push({ name, instanceId: options.instanceId, input: options.input });
      return options.instanceId;
    },
    createCheckStatusResponse: (_req: unknown, instanceId: string) => ({
      status: 202,
      jsonBody: { id: instanceId, statusQueryGetUri: `http://localhost/runtime/webhooks/durabletask/instances/${instanceId}` },
      headers: { Location: `http://localhost/runtime/webhooks/durabletask/instances/${instanceId}` },
    }),
  };
  return { client: client as unknown as DurableClient, started };
}

const context = () => new InvocationContext({ functionName: "test" });
const del = (host: string, body?: string, contentType = "application/json") =>
  new HttpRequest({ method: "DELETE", url: `http://localhost:7071/api/tenants/${host}`, params: { host }, ...(body === undefined ? {} : { body: { string: body }, headers: { "content-type": contentType } }) });
const get = (url: string, params: Record<string, string> = {}) => new HttpRequest({ method: "GET", url, params });

function tags(change: Partial<SiteTagsInput> = {}) {
  return encodeSiteTags({ site: HOST, appId: "app-1", appObjectId: "obj-1", keyId: "k1", creatioCredential: "creatio-api-acme", mailServerId: "mail-1", creatioSyncedKeyId: "k1", ...change });
}
function vaultWithSite(change: Partial<SiteTagsInput> = {}, expiresOn = new Date("2028-11-27T12:00:00Z")) {
  const store = new FakeSecretStore();
  store.seed(SECRET, "THE-CLIENT-SECRET", { contentType: SECRET_CONTENT_TYPE, expiresOn, tags: tags(change) });
  return store;
}

describe("DELETE /api/tenants/{host}", () => {
  it("400 naming confirm when it is missing (no body, or a body without it) or not the host; nothing starts", async () => {
    for (const request of [del(HOST), del(HOST, "{}"), del(HOST, JSON.stringify({ confirm: "other.creatio.com" }))]) {
      const { client, started } = clientWith();
      const response = await offboardTenantRequest(request, client, context(), { secrets: vaultWithSite() });
      expect(response.status).toBe(400);
      expect((response.jsonBody as any).errors).toEqual([{ path: "confirm", message: expect.stringContaining(HOST) }]);
      expect(started).toEqual([]);
    }
    const extra = await offboardTenantRequest(del(HOST, JSON.stringify({ confirm: HOST, force: true })), clientWith().client, context(), { secrets: vaultWithSite() });
    expect(extra.status).toBe(400);
    expect((extra.jsonBody as any).errors[0].path).toBe("force");
  });

  it("404 for a site never managed here", async () => {
    const response = await offboardTenantRequest(del("nobody.creatio.com", JSON.stringify({ confirm: "nobody.creatio.com" })), clientWith().client, context(), { secrets: new FakeSecretStore() });
    expect(response.status).toBe(404);
  });

  it("202: starts offboardTenant under offboard-<host> with what the tags say; 409 while an onboarding, rotation or offboarding of the site runs", async () => {
    const { client, started } = clientWith();
    const response = await offboardTenantRequest(del(HOST, JSON.stringify({ confirm: "ACME.creatio.com" })), client, context(), { secrets: vaultWithSite() });
    expect(response.status).toBe(202);
    expect(response.headers).toMatchObject({ Location: expect.stringContaining(`offboard-${HOST}`) });
    expect(started).toEqual([
      { name: "offboardTenant", instanceId: `offboard-${HOST}`, input: { host: HOST, appId: "app-1", creatioCredentialSecretName: "creatio-api-acme", mailServerId: "mail-1" } },
    ]);
    for (const [id, what] of [
      [`onboard-${HOST}`, "An onboarding"],
      [`rotate-${HOST}`, "A rotation"],
      [`offboard-${HOST}`, "An offboarding"],
    ]) {
      const busy = clientWith({ [id!]: { runtimeStatus: "Running" } });
      const conflict = await offboardTenantRequest(del(HOST, JSON.stringify({ confirm: HOST })), busy.client, context(), { secrets: vaultWithSite() });
      expect(conflict.status).toBe(409);
      expect(conflict.jsonBody).toEqual({ error: `${what} of ${HOST} is already Running`, instanceId: id });
      expect(busy.started).toEqual([]);
    }
  });

  it("while an offboarding runs, neither a rotation nor an onboarding starts", async () => {
    const { client, started } = clientWith({ [`offboard-${HOST}`]: { runtimeStatus: "Running" } });
    expect(await startRotation(client, { host: HOST, gracePeriodHours: 24, trigger: "sweep" })).toMatchObject({ started: false, blockedBy: `offboard-${HOST}` });
    const secrets = vaultWithSite();
    secrets.seed("creatio-api-acme", JSON.stringify({ username: "u", password: "p" }), { tags: { creatioSite: HOST } });
    const post = new HttpRequest({ method: "POST", url: "http://localhost/api/tenants", body: { string: JSON.stringify({ creatioUrl: `https://${HOST}`, creatioCredentialSecretName: "creatio-api-acme" }) }, headers: { "content-type": "application/json" } });
    const response = await createTenant(post, client, context(), { secrets, now: () => NOW });
    expect(response.status).toBe(409);
    expect((response.jsonBody as any).error).toBe(`An offboarding of ${HOST} is already Running`);
    expect(started).toEqual([]);
  });

  it("200 no-op once the secret is deleted with the offboarded mark; status says offboarded with how to restore; the list only with include=offboarded", async () => {
    const secrets = vaultWithSite({ lastRun: { kind: "offboard", outcome: "succeeded", at: "2026-11-27T10:00:00.000Z", instanceId: `offboard-${HOST}` } });
    await (await secrets.beginDeleteSecret(SECRET)).pollUntilDone();
    const { client, started } = clientWith({ [`offboard-${HOST}`]: { runtimeStatus: "Completed" } });
    const again = await offboardTenantRequest(del(HOST, JSON.stringify({ confirm: HOST })), client, context(), { secrets });
    expect(again.status).toBe(200);
    expect(again.jsonBody).toEqual({ host: HOST, offboarded: true, offboardedAt: "2026-11-27T10:00:00.000Z", message: expect.stringMatching(/already offboarded on 2026-11-27T10:00:00.000Z; nothing was done\. To restore: .*az keyvault secret recover/) });
    expect(started).toEqual([]);

    const status = (await getTenant(get(`http://localhost/api/tenants/${HOST}`, { host: HOST }), client, context(), { secrets, now: () => NOW })).jsonBody as any;
    expect(status).toMatchObject({
      state: "offboarded",
      appId: "app-1",
      secret: null,
      offboarded: { at: "2026-11-27T10:00:00.000Z", instanceId: `offboard-${HOST}`, secretPurgeOn: expect.any(String), applicationRestorableUntil: "2026-12-27T10:00:00.000Z" },
      health: { state: "broken", problems: [expect.stringMatching(/was offboarded/)] },
    });
    expect(status.offboarded.restore).toMatch(/az keyvault secret recover --vault-name kv --name creatio-o365-acme--creatio--com.*directory\/deletedItems\/obj-1\/restore.*POST \/api\/tenants/);
    expect(JSON.stringify(status)).not.toContain("THE-CLIENT-SECRET");

    expect((await listTenants(get("http://localhost/api/tenants"), context(), { secrets, now: () => NOW })).jsonBody).toEqual([]);
    const all = (await listTenants(get("http://localhost/api/tenants?include=offboarded"), context(), { secrets, now: () => NOW })).jsonBody as any[];
    expect(all).toEqual([expect.objectContaining({ host: HOST, state: "offboarded", offboardedAt: "2026-11-27T10:00:00.000Z" })]);
    const bad = await listTenants(get("http://localhost/api/tenants?include=deleted"), context(), { secrets, now: () => NOW });
    expect(bad.status).toBe(400);
    expect((bad.jsonBody as any).errors[0].path).toBe("include");
  });

  it("a live secret whose offboarding failed: listed as offboarding, resumed by DELETE, left alone by the sweep", async () => {
    const secrets = vaultWithSite({ lastRun: { kind: "offboard", outcome: "failed", step: "unlinkCreatio", at: "2026-11-27T10:00:00.000Z" } }, new Date("2026-12-01T00:00:00Z"));
    const list = (await listTenants(get("http://localhost/api/tenants"), context(), { secrets, now: () => NOW })).jsonBody as any[];
    expect(list).toEqual([expect.objectContaining({ host: HOST, state: "offboarding" })]);
    const { client, started } = clientWith({ [`offboard-${HOST}`]: { runtimeStatus: "Failed" } });
    expect((await offboardTenantRequest(del(HOST, JSON.stringify({ confirm: HOST })), client, context(), { secrets })).status).toBe(202);
    expect(started).toHaveLength(1);
    const rotate = new HttpRequest({ method: "POST", url: `http://localhost/api/tenants/${HOST}/rotate`, params: { host: HOST } });
    const refused = await rotateTenant(rotate, clientWith().client, context(), { secrets, defaultGracePeriodHours: () => 24 });
    expect(refused.status).toBe(409);
    expect((refused.jsonBody as any).error).toMatch(/being offboarded.*DELETE \/api\/tenants\/acme\.creatio\.com again/);
    const sweep = clientWith();
    const summary = await runRotationSweep(sweep.client, context(), { secrets, now: () => NOW, rotateDaysBeforeExpiry: 30, gracePeriodHours: 24 });
    expect(summary).toMatchObject({ managed: 0, due: 0, started: 0, offboarded: 1 });
    expect(sweep.started).toEqual([]);
  });

  it("POST /api/tenants for an offboarded site recovers its deleted secret, then starts the onboarding", async () => {
    const secrets = vaultWithSite({ lastRun: { kind: "offboard", outcome: "succeeded", at: "2026-11-27T10:00:00.000Z" } });
    secrets.seed("creatio-api-acme", JSON.stringify({ username: "u", password: "p" }), { tags: { creatioSite: HOST } });
    await (await secrets.beginDeleteSecret(SECRET)).pollUntilDone();
    const { client, started } = clientWith({ [`offboard-${HOST}`]: { runtimeStatus: "Completed" } });
    const post = new HttpRequest({ method: "POST", url: "http://localhost/api/tenants", body: { string: JSON.stringify({ creatioUrl: `https://${HOST}`, creatioCredentialSecretName: "creatio-api-acme" }) }, headers: { "content-type": "application/json" } });
    expect((await createTenant(post, client, context(), { secrets, now: () => NOW })).status).toBe(202);
    expect(secrets.writes.map((w) => `${w.op} ${w.name}`)).toContain(`recoverDeletedSecret ${SECRET}`);
    expect(secrets.latest(SECRET)).toBeDefined();
    expect(started.map((s) => s.instanceId)).toEqual([`onboard-${HOST}`]);
  });
});

describe("GET /api/rotation-plan", () => {
  it("the sweep's own rule per site, offboarded ones left out, and the last sweep's stored outcome", async () => {
    const secrets = vaultWithSite({}, new Date("2026-12-10T12:00:00Z"));
    secrets.seed("creatio-o365-later--creatio--com", "v", {
      contentType: SECRET_CONTENT_TYPE,
      expiresOn: new Date("2027-11-27T12:00:00Z"),
      tags: encodeSiteTags({ site: "later.creatio.com", appId: "app-2", appObjectId: "obj-2", keyId: "k2", creatioCredential: "c", mailServerId: "m", creatioSyncedKeyId: "k2" }),
    });
    secrets.seed("creatio-o365-gone--creatio--com", "v", {
      contentType: SECRET_CONTENT_TYPE,
      expiresOn: new Date("2026-12-01T12:00:00Z"),
      tags: encodeSiteTags({ site: "gone.creatio.com", appId: "app-3", appObjectId: "obj-3", keyId: "k3", creatioCredential: "c", mailServerId: "m", lastRun: { kind: "offboard", outcome: "failed", at: "2026-11-27T10:00:00.000Z" } }),
    });
    const deps = { secrets, now: () => NOW, rotateDaysBeforeExpiry: 30 };
    const before = (await getRotationPlan(get("http://localhost/api/rotation-plan"), context(), deps)).jsonBody as any;
    expect(before).toEqual({
      generatedAt: NOW.toISOString(),
      rotateDaysBeforeExpiry: 30,
      sites: [
        { host: HOST, due: true, reason: "expiresSoon", creatioSecretExpiresOn: "2026-12-10T12:00:00.000Z", dueOn: "2026-11-10T12:00:00.000Z", daysLeft: 13 },
        { host: "later.creatio.com", due: false, reason: null, creatioSecretExpiresOn: "2027-11-27T12:00:00.000Z", dueOn: "2027-10-28T12:00:00.000Z", daysLeft: 365 },
      ],
      lastSweep: null,
    });
    expect(secrets.writes).toEqual([]);

    const sweep = clientWith({ [`rotate-${HOST}`]: { runtimeStatus: "Running" } });
    await runRotationSweep(sweep.client, context(), { ...deps, gracePeriodHours: 24 });
    expect(secrets.latest(SWEEP_RECORD_SECRET)!.properties.contentType).not.toBe(SECRET_CONTENT_TYPE);
    const after = (await getRotationPlan(get("http://localhost/api/rotation-plan"), context(), deps)).jsonBody as any;
    expect(after.lastSweep).toEqual({
      at: NOW.toISOString(),
      outcome: "succeeded",
      managed: 2,
      due: 1,
      started: 0,
      skipped: 1,
      expired: 0,
      notMailReady: 0,
      mailChecked: false,
      alreadyRunning: 1,
      failedToStart: 0,
      unreadable: 0,
      offboarded: 1,
      error: null,
    });
    // The record is not a site.
    expect(((await listTenants(get("http://localhost/api/tenants"), context(), { secrets, now: () => NOW })).jsonBody as any[]).map((t) => t.host).sort()).toEqual(["acme.creatio.com", "gone.creatio.com", "later.creatio.com"]);
  });
});
