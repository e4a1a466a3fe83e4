// Graph throttles addPassword (429 + Retry-After; Graph did not process the request): onboarding
// and rotation through the local host still end with exactly one new password, and the 429s are
// ridden out inside the activity by the Graph client's retry (src/clients/graph.ts), not by a
// failed activity and the orchestrator's retry.
import { SANDBOX_CREATIO_CREDENTIAL_SECRET } from "../../dev/emulators";
import { SANDBOX_DIR } from "../../dev/sandbox";
import { getStatus, waitForStatus } from "../host/helpers";
import { secretNameFor } from "../../src/domain/site";
import { startAppStack, type AppStack } from "../support/appStack";

let app: AppStack;
let site: string;

const ADD_PASSWORD = "^POST /v1.0/applications/[^/]+/addPassword$";

const admin = async (base: string, path: string, init?: RequestInit): Promise<any> => (await fetch(`${base}/_emulator/${path}`, init)).json();
const post = (base: string, path: string, body: unknown) => fetch(`${base}${path}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
const throttleAddPassword = (times: number) => admin(app.stack.graphUrl, "faults", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ throttleNext: times, retryAfterSeconds: 1, match: ADD_PASSWORD }) });

async function addPasswordRequests(): Promise<{ status: number }[]> {
  const requests = (await admin(app.stack.graphUrl, "requests")) as { method: string; path: string; status: number }[];
  return requests.filter((r) => r.method === "POST" && /\/addPassword$/.test(r.path));
}

async function ourApp(): Promise<{ appId: string; passwordCredentials: { keyId: string }[] }> {
  const state = await admin(app.stack.graphUrl, "state");
  const apps = state.applications.filter((a: any) => (a.uniqueName ?? "").startsWith("creatio-o365-"));
  expect(apps).toHaveLength(1);
  return apps[0];
}

async function keyVaultKeyId(): Promise<string> {
  const vault = await admin(app.stack.keyVaultUrl, "state");
  const versions = vault.secrets[secretNameFor(site)].versions as { tags: Record<string, string> }[];
  return versions[versions.length - 1]!.tags.keyId!;
}

/** Names of the activities that failed in an instance's history. */
async function failedActivities(instanceId: string): Promise<string[]> {
  const { body } = await getStatus(app.host.url, instanceId, "showHistory=true");
  const events = body?.historyEvents ?? [];
  const names = new Map(events.filter((e) => e.EventType === "TaskScheduled").map((e) => [e.EventId, e.Name]));
  return events.filter((e) => e.EventType === "TaskFailed").map((e) => String(names.get(e.TaskScheduledId) ?? e.TaskScheduledId));
}

beforeAll(async () => {
  app = await startAppStack({ emulators: { sandboxDir: SANDBOX_DIR } });
  site = new URL(app.stack.creatioUrl).host;
}, 120_000);

afterAll(() => app?.close());

afterEach(async () => {
  await app.faults(app.stack.graphUrl);
});

test("onboarding: addPassword throttled twice, one password, the activity never failed", async () => {
  await fetch(`${app.stack.graphUrl}/_emulator/requests`, { method: "DELETE" });
  await throttleAddPassword(2);
  const started = await post(app.host.url, "/api/tenants", { creatioUrl: app.stack.creatioUrl, creatioCredentialSecretName: SANDBOX_CREATIO_CREDENTIAL_SECRET });
  expect(started.status).toBe(202);
  const { id } = (await started.json()) as { id: string };
  const status = await waitForStatus(app.host.url, id, ["Completed", "Failed", "Terminated"], 90_000);
  expect(status.runtimeStatus).toBe("Completed");

  expect((await addPasswordRequests()).map((r) => r.status)).toEqual([429, 429, 200]);
  const registration = await ourApp();
  expect(registration.passwordCredentials).toHaveLength(1);
  expect(await keyVaultKeyId()).toBe(registration.passwordCredentials[0]!.keyId);
  expect(await failedActivities(id)).toEqual([]);
}, 120_000);

test("rotation: addPassword throttled twice, exactly one new password replaces the old one", async () => {
  const before = (await ourApp()).passwordCredentials.map((p) => p.keyId);
  await fetch(`${app.stack.graphUrl}/_emulator/requests`, { method: "DELETE" });
  await throttleAddPassword(2);
  const started = await post(app.host.url, `/api/tenants/${encodeURIComponent(site)}/rotate`, { gracePeriodHours: 0 });
  expect(started.status).toBe(202);
  const { id } = (await started.json()) as { id: string };
  const status = await waitForStatus(app.host.url, id, ["Completed", "Failed", "Terminated"], 90_000);
  expect(status.runtimeStatus).toBe("Completed");

  expect((await addPasswordRequests()).map((r) => r.status)).toEqual([429, 429, 200]);
  const after = (await ourApp()).passwordCredentials.map((p) => p.keyId);
  // Grace period 0: the old password is gone, and the new one is the only one.
  expect(after).toHaveLength(1);
  expect(before).not.toContain(after[0]);
  expect(await keyVaultKeyId()).toBe(after[0]);
  expect(await failedActivities(id)).toEqual([]);
}, 120_000);
