/**
 * Rotation end to end (issue 4): the built app in the local Functions host (a child process, its
 * Durable engine on Azurite), real SDK clients, and the Graph/Entra, Key Vault and Creatio
 * emulators. Every site is a real Creatio emulator (one per site: the site key is the host, here
 * `localhost:<port>`), onboarded through the API. OLD_SECRET_GRACE_HOURS is 0.001 (3.6 s).
 *
 * Time is not simulated except once: the "expired" site is onboarded with a 1-day secret and its
 * current version's expiresOn (what the sweep reads, docs/architecture.md, "Key Vault is the registry") is then set in the past.
 *
 * Every secret text the Graph emulator ever holds is collected by polling its state, so the last
 * test can check that none reached Azurite (Durable state), the host's output or an HTTP answer.
 */
import type { SecretClient } from "@azure/keyvault-secrets";
import { TableClient, TableServiceClient } from "@azure/data-tables";
import { QueueServiceClient } from "@azure/storage-queue";
import { sandboxContext } from "../../dev/emulators/context";
import { SANDBOX_IDENTITY, startEmulators, type EmulatorStack } from "../../dev/emulators";
import { createCreatioEmulator, OFFICE365_MAIL_SERVER_ID } from "../../dev/emulators/creatio";
import type { EmulatorServer } from "../../dev/emulators/server";
import { spawnHost, type SpawnedHost } from "../../dev/host/spawn";
import { workingSiteHealth } from "../support/ewsCalendar";
import { startTestAzurite, waitFor, waitForStatus, type Status, type TestStorage } from "../host/helpers";
import { applicationUniqueNameFor, secretNameFor } from "../../src/domain/site";
import { decodeSiteTags, type SiteTags } from "../../src/domain/tags";
import { sandboxSecretClient, storeSiteCredential } from "../support/siteCredential";

const GRACE_HOURS = "0.001";
const DAY = 86_400_000;

let storage: TestStorage;
let stack: EmulatorStack;
let host: SpawnedHost;
let secrets: SecretClient;
const creatios: EmulatorServer[] = [];
/** Every line the host printed, across restarts (stdout and stderr). */
const hostLines: string[] = [];
/** Every HTTP answer body the tests received from the app. */
const responses: string[] = [];
/** Every secretText the Graph emulator has held (collected by polling its state). */
const secretTexts = new Set<string>();
let harvester: NodeJS.Timeout | undefined;
const timings: Record<string, number> = {};

interface Site {
  host: string;
  creatio: EmulatorServer;
  creatioUrl: string;
}
const sites: Record<string, Site> = {};

// ---------- helpers ----------

async function startHost(): Promise<SpawnedHost> {
  return spawnHost({
    runTimers: false,
    storageConnectionString: storage.azurite.connectionString,
    env: {
      ...stack.appSettings(),
      AzureWebJobsStorage: storage.azurite.connectionString,
      OLD_SECRET_GRACE_HOURS: GRACE_HOURS,
      ROTATE_DAYS_BEFORE_EXPIRY: "30",
      ROTATION_SCHEDULE: "0 0 3 * * *",
    },
    onLine: (line) => hostLines.push(line),
    timeoutMs: 60_000,
  });
}

/** A call to the app; the answer's body is kept for the leak scan. */
async function api(path: string, init: RequestInit = {}): Promise<{ status: number; body: any; text: string; headers: Headers }> {
  const r = await fetch(`${host.url}${path}`, init);
  const text = await r.text();
  responses.push(text);
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: r.status, body, text, headers: r.headers };
}

async function status(instanceId: string): Promise<Status | undefined> {
  const r = await api(`/runtime/webhooks/durabletask/instances/${encodeURIComponent(instanceId)}?showHistory=true&showHistoryOutput=true`);
  // Durable's status API answers 202 while the instance runs, 200 once it has ended, 404 when unknown.
  if (r.status === 404) return undefined;
  if (r.status !== 200 && r.status !== 202) throw new Error(`status of ${instanceId}: ${r.status} ${r.text}`);
  return r.body as Status;
}

/** Waits until the rotation's custom status names the grace period; says where it stands otherwise. */
async function inGracePeriod(instanceId: string, timeoutMs = 30_000): Promise<Status> {
  let last: Status | undefined;
  const seen = new Set<string>();
  try {
    return await waitFor("the grace period", async () => {
      last = await status(instanceId);
      seen.add(JSON.stringify([last?.runtimeStatus, last?.customStatus]));
      return (last?.customStatus as { step?: string } | undefined)?.step === "gracePeriod" ? last : undefined;
    }, timeoutMs, 25);
  } catch (error) {
    throw new Error(`${(error as Error).message}; seen ${[...seen].join(" ")}`);
  }
}

async function finished(instanceId: string, timeoutMs = 60_000): Promise<Status> {
  const s = await waitForStatus(host.url, instanceId, ["Completed", "Failed", "Terminated"], timeoutMs);
  responses.push(JSON.stringify(s));
  return s;
}

async function emulatorState(baseUrl: string): Promise<any> {
  const r = await fetch(`${baseUrl}/_emulator/state`);
  return r.json();
}

interface AppState {
  id: string;
  appId: string;
  passwordCredentials: { keyId: string; secretText: string | null; displayName: string | null; endDateTime: string }[];
}
async function appOf(site: Site): Promise<AppState> {
  const state = await emulatorState(stack.graphUrl);
  const app = (state.applications as (AppState & { uniqueName: string })[]).find((a) => a.uniqueName === applicationUniqueNameFor(site.host));
  if (!app) throw new Error(`no application for ${site.host}`);
  return app;
}

async function harvest(): Promise<void> {
  const state = await emulatorState(stack.graphUrl).catch(() => undefined);
  for (const app of (state?.applications ?? []) as AppState[]) for (const p of app.passwordCredentials) if (p.secretText) secretTexts.add(p.secretText);
}

async function currentSecret(site: Site): Promise<{ value: string; version: string; expiresOn?: Date; tags: SiteTags }> {
  const s = await secrets.getSecret(secretNameFor(site.host));
  const decoded = decodeSiteTags(s.properties.tags);
  if (!decoded.ok) throw new Error(decoded.problem);
  return { value: s.value!, version: s.properties.version!, expiresOn: s.properties.expiresOn, tags: decoded.tags };
}

/** SecretKey of the OAuthApplications row the site's Office 365 mail server links to. */
async function creatioSecretKey(site: Site): Promise<string | undefined> {
  const state = await emulatorState(site.creatioUrl);
  const mailServer = state.MailServer.find((m: { Id: string }) => m.Id.toLowerCase() === OFFICE365_MAIL_SERVER_ID);
  return state.OAuthApplications.find((o: { Id: string }) => o.Id === mailServer?.OAuthApplicationId)?.SecretKey;
}

/** Entra's client-credentials grant, as Creatio's mail sync would use the app's secret. */
async function tokenWorks(appId: string, secret: string): Promise<boolean> {
  const r = await fetch(`${stack.authorityHost}/${SANDBOX_IDENTITY.tenantId}/oauth2/v2.0/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", client_id: appId, client_secret: secret, scope: "https://graph.microsoft.com/.default" }).toString(),
  });
  return r.status === 200;
}

/** Structured event lines (observability.logEvent) printed by the host since line `from`. */
function eventsSince(from: number, name: string): Record<string, any>[] {
  return hostLines
    .slice(from)
    .map((l) => l.slice(l.indexOf("{")))
    .filter((l) => l.startsWith('{"event"'))
    .map((l) => JSON.parse(l) as Record<string, any>)
    .filter((e) => e.event === name);
}

/** Fires the timer by hand (POST /admin/functions/rotationSweep) and returns its summary line. */
async function sweep(): Promise<Record<string, any> & { perSite: Record<string, any> }> {
  const from = hostLines.length;
  const r = await api("/admin/functions/rotationSweep", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
  expect(r.status).toBe(202);
  const summary = await waitFor("the sweep summary", async () => eventsSince(from, "sweep.finished")[0], 20_000, 50);
  const perSite = Object.fromEntries(eventsSince(from, "secret.expiry").map((e) => [e.site, e]));
  return { ...summary, perSite };
}

async function onboard(name: string, secretLifetimeDays: number): Promise<Site> {
  const creatio = createCreatioEmulator(sandboxContext());
  const creatioUrl = await creatio.listen(0);
  creatios.push(creatio);
  const site: Site = { host: new URL(creatioUrl).host, creatio, creatioUrl };
  const r = await api("/api/tenants", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ creatioUrl, creatioCredentialSecretName: await storeSiteCredential(secrets, site.host), secretLifetimeDays }),
  });
  expect(r.status).toBe(202);
  const s = await finished(`onboard-${site.host}`);
  if (s.runtimeStatus !== "Completed") throw new Error(`onboarding ${name} failed: ${JSON.stringify(s.output)}`);
  sites[name] = site;
  return site;
}

/** Successful removePassword calls (204) of one app for one keyId, from the Graph emulator's log. */
function removals(app: AppState, keyId?: string): number {
  return stack.servers.graph.requests.filter(
    (q) => q.method === "POST" && q.path === `/v1.0/applications/${app.id}/removePassword` && q.status === 204 && (!keyId || (q.body as { keyId?: string })?.keyId === keyId),
  ).length;
}
function additions(app: AppState): number {
  return stack.servers.graph.requests.filter((q) => q.method === "POST" && q.path === `/v1.0/applications/${app.id}/addPassword` && q.status === 200).length;
}

// ---------- the stack ----------

beforeAll(async () => {
  const t0 = Date.now();
  storage = await startTestAzurite();
  stack = await startEmulators();
  secrets = sandboxSecretClient(stack);
  host = await startHost();
  harvester = setInterval(() => void harvest(), 100);
  timings.stackStartMs = Date.now() - t0;

  // Expiries spread across 90 days (real secret lifetimes), plus two long-lived sites for later tests.
  const t1 = Date.now();
  await Promise.all([
    onboard("expired", 1),
    onboard("d5", 5),
    onboard("d29", 29),
    onboard("d31", 31),
    onboard("d60", 60),
    onboard("d89", 89),
    onboard("down", 730),
    onboard("kill", 730),
  ]);
  timings.onboard8SitesMs = Date.now() - t1;
  // The one simulated fact: the expired site's current version expired yesterday.
  const expired = await currentSecret(sites.expired!);
  await secrets.updateSecretProperties(secretNameFor(sites.expired!.host), expired.version, { expiresOn: new Date(Date.now() - DAY) });
}, 120_000);

afterAll(async () => {
  if (harvester) clearInterval(harvester);
  // eslint-disable-next-line no-console
  console.log(`rotation e2e timings: ${JSON.stringify(timings)}`);
  await host?.stop();
  await Promise.allSettled(creatios.map((c) => c.close()));
  await stack?.close();
  await storage?.stop();
});

// ---------- the tests ----------

test("a sweep starts rotations for exactly the due sites; an immediate second sweep starts none; each completes safely", async () => {
  const due = ["expired", "d5", "d29"].map((n) => sites[n]!);
  const notDue = ["d31", "d60", "d89", "down", "kill"].map((n) => sites[n]!);
  const before = new Map<string, { keyId: string; value: string }>();
  for (const site of due) {
    const s = await currentSecret(site);
    before.set(site.host, { keyId: s.tags.keyId, value: s.value });
  }

  const t0 = Date.now();
  const first = await sweep();
  timings.sweepMs = Date.now() - t0;
  expect(first).toMatchObject({ outcome: "succeeded", managed: 8, due: 3, started: 3, alreadyRunning: 0, expired: 1 });
  for (const site of due) expect(first.perSite[site.host]).toMatchObject({ outcome: "rotationStarted" });
  for (const site of notDue) expect(first.perSite[site.host]).toMatchObject({ outcome: "ok" });
  expect(first.perSite[sites.expired!.host]).toMatchObject({ expired: true, reason: "expired" });
  expect(hostLines.some((l) => l.includes(`EXPIRED: the client secret Creatio holds for ${sites.expired!.host}`))).toBe(true);
  for (const site of notDue) expect(await status(`rotate-${site.host}`)).toBeUndefined();

  const second = await sweep();
  expect(second).toMatchObject({ due: 3, started: 0, alreadyRunning: 3 });

  const t1 = Date.now();
  for (const site of due) {
    const s = await finished(`rotate-${site.host}`);
    expect(s.runtimeStatus).toBe("Completed");
    expect(s.output).toMatchObject({ outcome: "succeeded", issuedNewSecret: true });
  }
  timings.threeRotationsAfterSweepMs = Date.now() - t1;

  for (const site of due) {
    const old = before.get(site.host)!;
    const now = await currentSecret(site);
    const app = await appOf(site);
    // Key Vault's current version is the new password's secretText; Creatio holds it; the old one is gone.
    expect(now.tags.keyId).not.toBe(old.keyId);
    expect(app.passwordCredentials.map((p) => p.keyId)).toEqual([now.tags.keyId]);
    expect(app.passwordCredentials[0]!.secretText).toBe(now.value);
    expect(await creatioSecretKey(site)).toBe(now.value);
    expect(now.tags).toMatchObject({ rotationState: "idle", previousKeyId: old.keyId, creatioSyncedKeyId: now.tags.keyId });
    expect(removals(app, old.keyId)).toBe(1);
    expect(await tokenWorks(app.appId, now.value)).toBe(true);
    expect(await tokenWorks(app.appId, old.value)).toBe(false);
  }
});

test("on demand: during the grace period both passwords exist and both work; the old one is removed only after the timer fired", async () => {
  const site = sites.d31!;
  const before = await currentSecret(site);
  const app0 = await appOf(site);

  // 404, 400 and 202/409 of the route.
  expect((await api(`/api/tenants/unknown.example.com/rotate`, { method: "POST" })).status).toBe(404);
  const bad = await api(`/api/tenants/${site.host}/rotate`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ gracePeriodHours: -1 }) });
  expect(bad.status).toBe(400);
  expect(bad.body.errors[0].path).toBe("gracePeriodHours");
  const unknownField = await api(`/api/tenants/${site.host}/rotate`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ grace: 1 }) });
  expect(unknownField.status).toBe(400);

  const graceHours = 0.002; // 7.2 s
  const started = await api(`/api/tenants/${site.host}/rotate`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ gracePeriodHours: graceHours }) });
  expect(started.status).toBe(202);
  expect(started.body.id).toBe(`rotate-${site.host}`);
  expect(started.headers.get("location")).toBe(started.body.statusQueryGetUri);
  const conflict = await api(`/api/tenants/${site.host}/rotate`, { method: "POST" });
  expect(conflict.status).toBe(409);
  expect(conflict.body.instanceId).toBe(`rotate-${site.host}`);

  // In the grace period: Key Vault and Creatio have the new secret, Entra still accepts the old one too.
  const inGrace = await inGracePeriod(`rotate-${site.host}`);
  const graceEndsAt = Date.parse((inGrace.customStatus as { graceEndsAt: string }).graceEndsAt);
  const during = await currentSecret(site);
  const app1 = await appOf(site);
  expect(during.tags).toMatchObject({ rotationState: "grace-period", previousKeyId: before.tags.keyId, creatioSyncedKeyId: during.tags.keyId });
  expect(app1.passwordCredentials.map((p) => p.keyId).sort()).toEqual([before.tags.keyId, during.tags.keyId].sort());
  expect(app1.passwordCredentials.find((p) => p.keyId === during.tags.keyId)!.secretText).toBe(during.value);
  expect(await creatioSecretKey(site)).toBe(during.value);
  expect(await tokenWorks(app0.appId, before.value)).toBe(true);
  expect(await tokenWorks(app0.appId, during.value)).toBe(true);
  expect(removals(app1, before.tags.keyId)).toBe(0);

  // The status API shows it, without any secret value.
  const tenant = await api(`/api/tenants/${site.host}`);
  expect(tenant.body.rotation).toMatchObject({ state: "grace-period", lastOutcome: "succeeded", currentKeyId: during.tags.keyId, previousKeyId: before.tags.keyId });
  expect(tenant.body.rotationRun).toMatchObject({ runtimeStatus: "Running", currentStep: { step: "gracePeriod", stepNumber: 5, totalSteps: 7 } });

  const done = await finished(`rotate-${site.host}`);
  expect(done.runtimeStatus).toBe("Completed");
  // lastUpdatedTime has whole seconds.
  expect(Date.parse(done.lastUpdatedTime)).toBeGreaterThanOrEqual(Math.floor(graceEndsAt / 1000) * 1000);
  // In history the timer (due at graceEndsAt) fired before the removal was scheduled.
  const history = done.historyEvents ?? [];
  expect(Date.parse(String(history.find((e) => e.EventType === "TimerCreated")?.FireAt))).toBe(graceEndsAt);
  const timerFired = history.findIndex((e) => e.EventType === "TimerFired");
  const removalScheduled = history.findIndex((e) => e.EventType === "TaskScheduled" && e.Name === "removeOldPassword");
  expect(timerFired).toBeGreaterThan(-1);
  expect(removalScheduled).toBeGreaterThan(timerFired);

  const app2 = await appOf(site);
  expect(app2.passwordCredentials.map((p) => p.keyId)).toEqual([during.tags.keyId]);
  expect(removals(app2, before.tags.keyId)).toBe(1);
  expect(await tokenWorks(app0.appId, before.value)).toBe(false);
  expect(await tokenWorks(app0.appId, during.value)).toBe(true);

  const list = await api("/api/tenants");
  const expiries = (list.body as { expiresOn: string }[]).map((s) => Date.parse(s.expiresOn));
  expect(expiries).toEqual([...expiries].sort((a, b) => a - b));
  const row = (list.body as { host: string; rotation: any }[]).find((s) => s.host === site.host)!;
  expect(row.rotation).toMatchObject({ state: "idle", lastOutcome: "succeeded", currentKeyId: during.tags.keyId, previousKeyId: before.tags.keyId, daysLeft: 30 });
  expect(Date.parse(row.rotation.nextRotationDueAt)).toBe(Date.parse(row.rotation.expiresOn) - 30 * DAY);
});

test("Creatio down during a rotation: the old password stays and Creatio keeps it, the tags say failed, and the next sweep completes with no extra password", async () => {
  const site = sites.down!;
  const before = await currentSecret(site);
  const app0 = await appOf(site);
  const addsBefore = additions(app0);

  await fetch(`${site.creatioUrl}/_emulator/faults`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ down: true }) });
  const t0 = Date.now();
  expect((await api(`/api/tenants/${site.host}/rotate`, { method: "POST" })).status).toBe(202);
  const failed = await finished(`rotate-${site.host}`, 90_000);
  timings.failedRotationWithCreatioDownMs = Date.now() - t0;
  expect(failed.runtimeStatus).toBe("Failed");
  expect(String(failed.output)).toMatch(/configureCreatio/);

  const afterFailure = await currentSecret(site);
  const app1 = await appOf(site);
  // Key Vault's current version is the new secret; Creatio still holds (and mail sync uses) the old one, which stays valid.
  expect(afterFailure.tags.keyId).not.toBe(before.tags.keyId);
  expect(afterFailure.tags).toMatchObject({ rotationState: "failed", creatioSyncedKeyId: before.tags.keyId, previousKeyId: before.tags.keyId });
  expect(app1.passwordCredentials.map((p) => p.keyId).sort()).toEqual([before.tags.keyId, afterFailure.tags.keyId].sort());
  expect(await creatioSecretKey(site)).toBe(before.value);
  expect(await tokenWorks(app0.appId, before.value)).toBe(true);
  expect(removals(app1)).toBe(0);
  const tenant = await api(`/api/tenants/${site.host}`);
  expect(tenant.body.rotation).toMatchObject({ state: "failed", lastOutcome: "failed" });
  expect(tenant.body.rotationRun).toMatchObject({ runtimeStatus: "Failed" });
  expect(eventsSince(0, "rotation.finished").some((e) => e.site === site.host && e.outcome === "failed" && e.step === "configureCreatio")).toBe(true);

  // Creatio is back; the next sweep retries the failed site and completes it.
  await fetch(`${site.creatioUrl}/_emulator/faults`, { method: "DELETE" });
  const next = await sweep();
  expect(next.perSite[site.host]).toMatchObject({ outcome: "rotationStarted", reason: "lastRotationFailed" });
  const done = await finished(`rotate-${site.host}`);
  expect(done.runtimeStatus).toBe("Completed");
  expect(done.output).toMatchObject({ issuedNewSecret: false, keyId: afterFailure.tags.keyId, previousKeyId: before.tags.keyId });

  const final = await currentSecret(site);
  const app2 = await appOf(site);
  expect(final.tags).toMatchObject({ keyId: afterFailure.tags.keyId, creatioSyncedKeyId: afterFailure.tags.keyId, rotationState: "idle" });
  expect(app2.passwordCredentials.map((p) => p.keyId)).toEqual([afterFailure.tags.keyId]);
  expect(await creatioSecretKey(site)).toBe(final.value);
  expect(additions(app2) - addsBefore).toBe(1);
  expect(removals(app2, before.tags.keyId)).toBe(1);
});

test("an onboarding re-run that issues a new secret and then fails at Creatio: status, sweep and its log give the date Creatio's mail stops; the next sweep delivers it and retires the password Creatio used", async () => {
  // A 20-day secret is inside the rotation window, so a re-run of onboarding asking 730 days issues a new one.
  const site = await onboard("behind", 20);
  const before = await currentSecret(site);
  // Creatio answers reads (the preflight passes) but refuses every write, so the delivery fails.
  const writesFail = { serverErrorNext: 1000, serverErrorStatus: 503, match: "^(POST|PATCH) /0/odata/" };
  await fetch(`${site.creatioUrl}/_emulator/faults`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(writesFail) });
  const r = await api("/api/tenants", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ creatioUrl: site.creatioUrl, creatioCredentialSecretName: await storeSiteCredential(secrets, site.host), secretLifetimeDays: 730 }),
  });
  expect(r.status).toBe(202);
  const failed = await finished(`onboard-${site.host}`, 90_000);
  expect(failed.runtimeStatus).toBe("Failed");
  expect(String(failed.output)).toMatch(/configureCreatio/);
  const behind = await currentSecret(site);
  // Key Vault's current version is a healthy 730-day secret, but Creatio still holds the 20-day one.
  expect(behind.tags).toMatchObject({ rotationState: "idle", creatioSyncedKeyId: before.tags.keyId, lastRun: { kind: "onboard", outcome: "failed", step: "configureCreatio" } });
  expect(behind.tags.keyId).not.toBe(before.tags.keyId);
  expect(await creatioSecretKey(site)).toBe(before.value);

  // Status tells the day Creatio's mail stops (the 20-day secret's), not Key Vault's 729 days.
  const creatioStops = new Date(before.expiresOn!).toISOString();
  const list = await api("/api/tenants");
  const row = (list.body as any[]).find((t) => t.host === site.host);
  expect(row).toMatchObject({ expiresOn: creatioStops, daysLeft: 19, rotation: { lastOutcome: "failed", lastFailedStep: "configureCreatio", due: true, dueReason: "expiresSoon", daysLeft: 19 } });
  expect(row.rotation.currentSecretExpiresOn).toBe(new Date(behind.expiresOn!).toISOString());
  expect(row.health.state).toBe("atRisk");
  expect(row.health.problems.join(" ")).toMatch(/expires on .* \(19 days\)/);
  expect(row.health.problems.join(" ")).toMatch(/last onboarding failed at configureCreatio/);
  expect(row.lastRun).toMatchObject({ kind: "onboard", outcome: "failed", step: "configureCreatio" });
  const one = await api(`/api/tenants/${site.host}`);
  expect(one.body.creatio).toMatchObject({ secretExpiresOn: creatioStops, holdsCurrentSecret: false, syncedKeyId: before.tags.keyId });
  expect(one.body.health).toEqual(row.health);
  const app0 = await appOf(site);
  const addsBefore = additions(app0);

  await fetch(`${site.creatioUrl}/_emulator/faults`, { method: "DELETE" });
  const next = await sweep();
  // The sweep's log (what the 7-day alert reads) carries the same date.
  expect(next.perSite[site.host]).toMatchObject({ outcome: "rotationStarted", reason: "expiresSoon", daysLeft: 19, expiresOn: creatioStops, creatioConfigured: true });
  const done = await finished(`rotate-${site.host}`);
  expect(done.runtimeStatus).toBe("Completed");
  expect(done.output).toMatchObject({ issuedNewSecret: false, keyId: behind.tags.keyId });

  const final = await currentSecret(site);
  const app = await appOf(site);
  expect(final.tags).toMatchObject({ keyId: behind.tags.keyId, creatioSyncedKeyId: behind.tags.keyId, rotationState: "idle", lastRun: { kind: "rotate", outcome: "succeeded" } });
  expect(await creatioSecretKey(site)).toBe(behind.value);
  expect(app.passwordCredentials.map((p) => p.keyId)).toEqual([behind.tags.keyId]);
  expect(removals(app, before.tags.keyId)).toBe(1);
  expect(additions(app) - addsBefore).toBe(0);
  const healed = (await api("/api/tenants")).body.find((t: any) => t.host === site.host);
  expect(healed).toMatchObject({ daysLeft: 729, health: workingSiteHealth() });
});

test("Key Vault events: stale and foreign ones are ignored, a valid one rotates", async () => {
  const eventGrid = (events: unknown[]) =>
    api("/runtime/webhooks/eventgrid?functionName=keyVaultSecretNearExpiry", {
      method: "POST",
      headers: { "Content-Type": "application/json", "aeg-event-type": "Notification" },
      body: JSON.stringify(events),
    });
  const event = (name: string, version: string, over: Record<string, unknown> = {}) => ({
    id: `e-${name}-${version}`,
    eventType: "Microsoft.KeyVault.SecretNearExpiry",
    subject: name,
    eventTime: new Date().toISOString(),
    dataVersion: "1",
    data: { Id: `${stack.keyVaultUrl}/secrets/${name}/${version}`, VaultName: "localhost", ObjectType: "Secret", ObjectName: name, Version: version, NBF: null, EXP: Math.floor(Date.now() / 1000) + 86400, ...over },
  });

  // Stale: d5 was rotated by the first sweep; an event about its first version arrives late.
  const d5 = sites.d5!;
  const d5Name = secretNameFor(d5.host);
  const versions: string[] = [];
  for await (const p of secrets.listPropertiesOfSecretVersions(d5Name)) versions.push(p.version!);
  const current = await currentSecret(d5);
  const staleVersion = versions.find((v) => v !== current.version)!;
  const rotationBefore = await status(`rotate-${d5.host}`);
  const from = hostLines.length;
  expect((await eventGrid([event(d5Name, staleVersion)])).status).toBe(202);
  // Foreign: another vault, a secret that is not ours, a key.
  const foreign = [
    event(secretNameFor(sites.d60!.host), (await currentSecret(sites.d60!)).version, { Id: `https://other-vault.vault.azure.net/secrets/${secretNameFor(sites.d60!.host)}/v` }),
    event("someone-elses-secret", "v1"),
    { ...event(secretNameFor(sites.d60!.host), "v1"), eventType: "Microsoft.KeyVault.KeyNearExpiry" },
  ];
  expect((await eventGrid(foreign)).status).toBe(202);
  const ignored = eventsSince(from, "keyvault.event");
  expect(ignored).toHaveLength(4);
  expect(ignored.every((e) => e.outcome === "ignored")).toBe(true);
  expect(ignored[0]!.reason).toMatch(/stale/);
  expect((await status(`rotate-${d5.host}`))?.createdTime).toBe(rotationBefore?.createdTime);
  expect(await status(`rotate-${sites.d60!.host}`)).toBeUndefined();

  // Valid: the current version of d60 (not due by the sweep's window, but Key Vault says it is near expiry).
  const d60 = sites.d60!;
  const d60Before = await currentSecret(d60);
  expect((await eventGrid([event(secretNameFor(d60.host), d60Before.version)])).status).toBe(202);
  expect(eventsSince(from, "keyvault.event").at(-1)).toMatchObject({ site: d60.host, outcome: "rotationStarted" });
  const done = await finished(`rotate-${d60.host}`);
  expect(done.runtimeStatus).toBe("Completed");
  const d60After = await currentSecret(d60);
  expect(d60After.tags.keyId).not.toBe(d60Before.tags.keyId);
  expect(await creatioSecretKey(d60)).toBe(d60After.value);
  expect((await appOf(d60)).passwordCredentials.map((p) => p.keyId)).toEqual([d60After.tags.keyId]);
});

test("SIGKILL right after the new password is issued and again in the grace period: exactly one new password, the old one removed once, nothing lost", async () => {
  const site = sites.kill!;
  const before = await currentSecret(site);
  const app0 = await appOf(site);
  const addsBefore = additions(app0);

  const t0 = Date.now();
  // Key Vault refuses every secret write (503, which the SDK retries with backoff for seconds), so
  // kill #1 lands between addPassword and the Key Vault write however slow the machine is: the worst
  // moment, a password whose value only the killed process knew.
  const kvFaults = `${stack.keyVaultUrl}/_emulator/faults`;
  await fetch(kvFaults, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ serverErrorNext: 1000, match: "^PUT /secrets/" }) });
  expect((await api(`/api/tenants/${site.host}/rotate`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ gracePeriodHours: 0.002 }) })).status).toBe(202);
  // Kill #1: as soon as Graph has answered addPassword.
  await waitFor("addPassword", async () => (additions(app0) > addsBefore ? true : undefined), 30_000, 5);
  await host.kill();
  const orphanKeyId = (await appOf(site)).passwordCredentials.find((p) => p.keyId !== before.tags.keyId)!.keyId;
  expect((await currentSecret(site)).tags.keyId).toBe(before.tags.keyId); // the new password never reached Key Vault
  await fetch(kvFaults, { method: "DELETE" });
  host = await startHost();

  // Kill #2: in the grace period (the durable timer is pending).
  await inGracePeriod(`rotate-${site.host}`);
  const inGrace = await currentSecret(site);
  await host.kill();
  host = await startHost();

  const done = await finished(`rotate-${site.host}`);
  timings.rotationWithTwoKillsMs = Date.now() - t0;
  expect(done.runtimeStatus).toBe("Completed");
  const final = await currentSecret(site);
  const app = await appOf(site);
  // Exactly one new password: the one Key Vault holds, which Creatio holds; the old one removed exactly once.
  expect(final.tags.keyId).toBe(inGrace.tags.keyId);
  expect(final.tags.keyId).not.toBe(before.tags.keyId);
  expect(app.passwordCredentials.map((p) => p.keyId)).toEqual([final.tags.keyId]);
  expect(app.passwordCredentials[0]!.secretText).toBe(final.value);
  expect(await creatioSecretKey(site)).toBe(final.value);
  expect(removals(app, before.tags.keyId)).toBe(1);
  // A password added by an attempt the kill interrupted before it reached Key Vault was removed, not kept.
  // The password the kill orphaned was removed (by the retried issueClientSecret), and one more was issued.
  expect(removals(app, orphanKeyId)).toBe(1);
  expect(additions(app) - addsBefore).toBe(2);
  expect(removals(app)).toBe(2);
  expect(final.tags).toMatchObject({ rotationState: "idle", previousKeyId: before.tags.keyId, creatioSyncedKeyId: final.tags.keyId });
  // History: one ExecutionStarted, every step completed once, no failures.
  const history = done.historyEvents ?? [];
  expect(history.filter((e) => e.EventType === "ExecutionStarted")).toHaveLength(1);
  const completedSteps = history.filter((e) => e.EventType === "TaskCompleted").length;
  expect(completedSteps).toBe(history.filter((e) => e.EventType === "TaskScheduled").length);
});

test("no secret text appears in Durable state (Azurite tables and queues), the host's output, any HTTP answer or any Key Vault tag", async () => {
  await harvest();
  // Key Vault holds every secret that was ever current (all versions), and the Creatio login as JSON.
  const kv = await emulatorState(stack.keyVaultUrl);
  for (const entry of Object.values(kv.secrets) as { versions: { value: string }[] }[]) for (const v of entry.versions) if (v.value.length >= 8) secretTexts.add(v.value);
  // (The sandbox Creatio login's password equals its user name, so it is not searched for on its own.)
  expect(secretTexts.size).toBeGreaterThan(16);

  const opts = { allowInsecureConnection: true };
  const cs = storage.azurite.connectionString;
  const durableText: string[] = [];
  const tables = TableServiceClient.fromConnectionString(cs, opts);
  let entities = 0;
  for await (const t of tables.listTables()) {
    for await (const e of TableClient.fromConnectionString(cs, t.name!, opts).listEntities()) {
      durableText.push(JSON.stringify(e));
      entities += 1;
    }
  }
  const queues = QueueServiceClient.fromConnectionString(cs);
  for await (const q of queues.listQueues()) {
    const peeked = await queues.getQueueClient(q.name).peekMessages({ numberOfMessages: 32 });
    for (const m of peeked.peekedMessageItems) durableText.push(m.messageText);
  }
  expect(entities).toBeGreaterThan(50);
  // The scan reads real Durable state: rotation history carries keyIds (references), never values.
  const killSite = await currentSecret(sites.kill!);
  expect(durableText.join("\n")).toContain(killSite.tags.keyId);
  expect(durableText.join("\n")).toContain(killSite.version);
  // Every tag of every version: the registry's tags carry references (keyIds, dates, the last run), never a value.
  const tagText = (Object.values(kv.secrets) as { versions: { tags?: Record<string, string> }[] }[]).flatMap((e) => e.versions.map((v) => JSON.stringify(v.tags ?? {})));
  expect(tagText.join("\n")).toContain(killSite.tags.keyId);
  const haystacks: [string, string][] = [
    ["Azurite", durableText.join("\n")],
    ["host output", hostLines.join("\n")],
    ["HTTP answers", responses.join("\n")],
    ["Key Vault tags", tagText.join("\n")],
  ];
  for (const [where, text] of haystacks) {
    for (const secret of secretTexts) {
      if (text.includes(secret)) throw new Error(`a secret (hint ${secret.slice(0, 3)}) appears in ${where}`);
    }
  }
});
