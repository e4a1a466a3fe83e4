/**
 * Issue 11 end to end: offboarding a site (DELETE /api/tenants/{host}), the rotation plan and the
 * sweep's stored outcome. The built app in the local Functions host on Azurite, real SDK clients,
 * the Graph/Entra, Key Vault, Creatio and Exchange Online emulators with EWS_ACCESS=manage; every
 * action goes through the HTTP API as an operator would, and the emulators' state is read to check
 * what the services hold afterwards. Each site is its own Creatio emulator.
 */
import { waitFor, type Status } from "../host/helpers";
import { applicationUniqueNameFor, secretNameFor } from "../../src/domain/site";
import { decodeSiteTags } from "../../src/domain/tags";
import { JSON_HEADERS as json, startAppStack, type AppStack } from "../support/appStack";

const OFFICE365 = "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b";
const EMPTY_GUID = "00000000-0000-0000-0000-000000000000";

let app: AppStack;
const api: AppStack["api"] = (path, init) => app.api(path, init);
const del = (site: string, body?: unknown) =>
  api(`/api/tenants/${site}`, { method: "DELETE", ...(body === undefined ? {} : { headers: json, body: JSON.stringify(body) }) });

const newCreatio = () => app.newCreatio();
const onboard = (body: { creatioUrl: string } & Record<string, unknown>): Promise<Status> => app.onboard(body);
const graphState = async (): Promise<any> => (await fetch(`${app.stack.graphUrl}/_emulator/state`)).json();
const creatioState = async (base: string): Promise<any> => (await fetch(`${base}/_emulator/state`)).json();
const allowList = async (): Promise<string[]> => ((await (await fetch(`${app.stack.exchangeUrl}/_emulator/state`)).json()) as any).organizationConfig.EwsAllowedAppIDs;

async function offboard(site: string): Promise<Status> {
  const r = await del(site, { confirm: site });
  expect(r.status).toBe(202);
  expect(r.body.id).toBe(`offboard-${site}`);
  expect(r.headers.get("location")).toBe(r.body.statusQueryGetUri);
  return app.finished(r.body.id);
}

beforeAll(async () => {
  app = await startAppStack({ emulators: { ewsAccess: "manage" }, env: { EWS_ACCESS: "manage" } });
}, 120_000);

afterAll(() => app?.close());

test("rotation plan before and after a sweep; offboarding removes the site from Creatio, Exchange, Entra and Key Vault; a second DELETE is a no-op; onboarding again works", async () => {
  const site = await newCreatio();
  const onboarded = await onboard({ creatioUrl: site.url });
  expect(onboarded.runtimeStatus).toBe("Completed");
  const appId: string = (onboarded.output as any).appId;
  expect(await allowList()).toContain(appId);

  // The plan: the site, not due (a 730-day secret), when it falls due; no sweep yet.
  const plan = await api("/api/rotation-plan");
  expect(plan.status).toBe(200);
  expect(plan.body).toMatchObject({ rotateDaysBeforeExpiry: 30, lastSweep: null });
  const entry = plan.body.sites.find((s: any) => s.host === site.host);
  expect(entry).toMatchObject({ due: false, reason: null, daysLeft: expect.any(Number) });
  expect(entry.daysLeft).toBeGreaterThanOrEqual(728);
  expect(new Date(entry.dueOn).getTime()).toBe(new Date(entry.creatioSecretExpiresOn).getTime() - 30 * 86_400_000);

  // A sweep: its outcome becomes the plan's lastSweep.
  await app.runSweep(20_000);
  const afterSweep = await waitFor("the sweep record", async () => (await api("/api/rotation-plan")).body.lastSweep ?? undefined, 10_000, 100);
  expect(afterSweep).toMatchObject({ outcome: "succeeded", managed: 1, due: 0, started: 0, skipped: 0, expired: 0, notMailReady: 0, mailChecked: true, offboarded: 0 });
  // The record is not a site: the list does not show it.
  expect((await api("/api/tenants")).body.map((t: any) => t.host)).toEqual([site.host]);

  // Bad DELETEs: no confirm, a wrong one, an unknown site.
  const missing = await del(site.host);
  expect(missing.status).toBe(400);
  expect(missing.body.errors).toEqual([expect.objectContaining({ path: "confirm", message: expect.stringMatching(/confirm is required/) })]);
  const wrong = await del(site.host, { confirm: "other.example.com" });
  expect(wrong.status).toBe(400);
  expect(wrong.body.errors[0].path).toBe("confirm");
  expect((await del("unknown.example.com", { confirm: "unknown.example.com" })).status).toBe(404);

  // Offboard.
  const before = await graphState();
  const registration = before.applications.find((a: any) => a.uniqueName === applicationUniqueNameFor(site.host));
  expect(registration.appId).toBe(appId);
  const done = await offboard(site.host);
  expect(done.runtimeStatus).toBe("Completed");
  expect(done.customStatus).toMatchObject({ step: "done", stepNumber: 4, totalSteps: 4 });
  expect(done.output).toMatchObject({
    outcome: "offboarded",
    creatio: { actions: expect.arrayContaining(["unlinked-mail-server"]), linkedToOtherClientId: null },
    exchange: { mode: "manage", actions: ["removedAppId"] },
    application: { outcome: "deleted" },
    keyVault: { outcome: "deleted" },
  });

  // Entra: no app for the site, it is in deleted items, and its service principal is gone.
  const after = await graphState();
  expect(after.applications.find((a: any) => a.uniqueName === applicationUniqueNameFor(site.host))).toBeUndefined();
  expect(after.deletedApplications.find((a: any) => a.id === registration.id)).toMatchObject({ appId, deletedDateTime: expect.any(String) });
  expect(after.servicePrincipals.find((s: any) => s.appId === appId)).toBeUndefined();
  // Key Vault: soft-deleted, with the offboarded mark in its tags.
  await expect(app.secrets.getSecret(secretNameFor(site.host))).rejects.toMatchObject({ statusCode: 404 });
  const deleted = await app.secrets.getDeletedSecret(secretNameFor(site.host));
  expect(decodeSiteTags(deleted.properties.tags)).toMatchObject({ ok: true, tags: { lastRun: { kind: "offboard", outcome: "succeeded", instanceId: `offboard-${site.host}` } } });
  // Creatio: the mail server unlinked, no OAuth application with the app's client id.
  const creatio = await creatioState(site.url);
  expect(creatio.MailServer.find((m: any) => m.Id === OFFICE365).OAuthApplicationId).toBe(EMPTY_GUID);
  expect(creatio.OAuthApplications.filter((r: any) => r.ClientId === appId)).toEqual([]);
  // Exchange: the allow list no longer holds the app id.
  expect(await allowList()).not.toContain(appId);

  // Status says offboarded, when, and how to restore.
  const status = await api(`/api/tenants/${site.host}`);
  expect(status.status).toBe(200);
  expect(status.body).toMatchObject({
    state: "offboarded",
    appId,
    offboarded: { at: expect.any(String), instanceId: `offboard-${site.host}`, secretPurgeOn: expect.any(String), applicationRestorableUntil: expect.any(String) },
    offboarding: { runtimeStatus: "Completed" },
    health: { state: "broken" },
  });
  expect(status.body.offboarded.restore).toMatch(/az keyvault secret recover .*--name creatio-o365-/);
  expect(status.body.offboarded.restore).toContain(`directory/deletedItems/${registration.id}/restore`);
  expect(status.body.offboarded.restore).toMatch(/POST \/api\/tenants/);

  // The list leaves it out unless asked; the plan leaves it out.
  expect((await api("/api/tenants")).body).toEqual([]);
  const withOffboarded = await api("/api/tenants?include=offboarded");
  expect(withOffboarded.body).toEqual([expect.objectContaining({ host: site.host, state: "offboarded", offboardedAt: status.body.offboarded.at })]);
  expect((await api("/api/tenants?include=everything")).status).toBe(400);
  expect((await api("/api/rotation-plan")).body.sites).toEqual([]);

  // A second DELETE: 200, nothing done, says so.
  const again = await del(site.host, { confirm: site.host });
  expect(again.status).toBe(200);
  expect(again.body).toMatchObject({ host: site.host, offboarded: true, offboardedAt: status.body.offboarded.at, message: expect.stringMatching(/already offboarded.*nothing was done.*az keyvault secret recover/) });

  // Onboarding again: the secret is recovered and written anew, a new app is registered and linked.
  const back = await onboard({ creatioUrl: site.url });
  expect(back.runtimeStatus).toBe("Completed");
  const newAppId: string = (back.output as any).appId;
  expect(newAppId).not.toBe(appId);
  const managed = await api(`/api/tenants/${site.host}`);
  expect(managed.body).toMatchObject({ state: "managed", offboarded: null, appId: newAppId, lastRun: { kind: "onboard", outcome: "succeeded" } });
  expect((await api("/api/tenants")).body.map((t: any) => [t.host, t.state])).toEqual([[site.host, "managed"]]);
  const relinked = await creatioState(site.url);
  const link = relinked.MailServer.find((m: any) => m.Id === OFFICE365).OAuthApplicationId;
  expect(relinked.OAuthApplications.find((r: any) => r.Id === link).ClientId).toBe(newAppId);
  expect(await allowList()).toContain(newAppId);

  // No secret value in any answer.
  const values = (await graphState()).applications.flatMap((a: any) => a.passwordCredentials.map((p: any) => p.secretText)).filter(Boolean);
  for (const value of values) expect(app.answers.join("\n")).not.toContain(value);
}, 420_000);

test("a Creatio mail server linked to another app is left alone, and the result says so", async () => {
  const site = await newCreatio();
  expect((await onboard({ creatioUrl: site.url })).runtimeStatus).toBe("Completed");
  // The same Creatio under another address, taken over on purpose: its mail server now uses the alias's app.
  const alias = site.url.replace("localhost", "127.0.0.1");
  const aliasHost = new URL(alias).host;
  const taken = await onboard({ creatioUrl: alias, takeOver: true });
  expect(taken.runtimeStatus).toBe("Completed");
  const aliasAppId: string = (taken.output as any).appId;
  const linkedBefore = await creatioState(site.url);

  const done = await offboard(site.host);
  expect(done.runtimeStatus).toBe("Completed");
  expect((done.output as any).creatio).toMatchObject({ actions: [], linkedToOtherClientId: aliasAppId, note: expect.stringMatching(/left as they are/) });
  const after = await creatioState(site.url);
  expect(after.MailServer.find((m: any) => m.Id === OFFICE365)).toEqual(linkedBefore.MailServer.find((m: any) => m.Id === OFFICE365));
  expect(after.OAuthApplications).toEqual(linkedBefore.OAuthApplications);
  // The rest of the offboarding went ahead; the alias site is untouched.
  expect((await api(`/api/tenants/${site.host}`)).body.state).toBe("offboarded");
  const aliasStatus = await api(`/api/tenants/${aliasHost}`);
  expect(aliasStatus.body).toMatchObject({ state: "managed", appId: aliasAppId });
  expect(await allowList()).toContain(aliasAppId);
}, 300_000);

test("Creatio down: the offboarding retries, fails at step 1 saying how to resume, leaves everything else in place; the same DELETE finishes it", async () => {
  const site = await newCreatio();
  const onboarded = await onboard({ creatioUrl: site.url });
  expect(onboarded.runtimeStatus).toBe("Completed");
  const appId: string = (onboarded.output as any).appId;
  const setFaults = (body?: object) => fetch(`${site.url}/_emulator/faults`, body ? { method: "POST", headers: json, body: JSON.stringify(body) } : { method: "DELETE" });
  await setFaults({ down: true });
  try {
    const failed = await offboard(site.host);
    expect(failed.runtimeStatus).toBe("Failed");
    expect(String(failed.output)).toMatch(
      new RegExp(`Step 1 of 4 \\(unlinkCreatio\\) failed after 3 attempts: .*DELETE /api/tenants/${site.host.replace(/[.]/g, "\\.")} again with \\{"confirm":"${site.host.replace(/[.]/g, "\\.")}"\\}: it resumes`),
    );
    const status = (await api(`/api/tenants/${site.host}`)).body;
    expect(status).toMatchObject({ state: "offboarding", offboarded: null, offboarding: { runtimeStatus: "Failed" }, lastRun: { kind: "offboard", outcome: "failed", step: "unlinkCreatio" } });
    // Nothing after the failing step ran.
    expect((await graphState()).applications.find((a: any) => a.appId === appId)).toBeDefined();
    expect(await allowList()).toContain(appId);
    expect((await app.secrets.getSecret(secretNameFor(site.host))).properties.version).toBeDefined();
    // Listed as offboarding; neither the plan nor a manual rotation touches it.
    expect((await api("/api/tenants")).body.find((t: any) => t.host === site.host)).toMatchObject({ state: "offboarding" });
    expect((await api("/api/rotation-plan")).body.sites.map((s: any) => s.host)).not.toContain(site.host);
    expect((await api(`/api/tenants/${site.host}/rotate`, { method: "POST" })).status).toBe(409);
  } finally {
    await setFaults();
  }
  const resumed = await offboard(site.host);
  expect(resumed.runtimeStatus).toBe("Completed");
  expect((await api(`/api/tenants/${site.host}`)).body).toMatchObject({ state: "offboarded", offboarding: { runtimeStatus: "Completed" } });
  expect(await allowList()).not.toContain(appId);
  const creatio = await creatioState(site.url);
  expect(creatio.OAuthApplications.filter((r: any) => r.ClientId === appId)).toEqual([]);
}, 300_000);
