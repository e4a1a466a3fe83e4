// End to end: the compiled app in the local Functions host (child process), its Durable state in
// Azurite, Graph/Entra, Key Vault and Creatio emulated over HTTPS. Everything goes through the
// HTTP API as an operator would; the emulators' admin API is used only to inject faults and to read
// what the services hold.
import { TableServiceClient, TableClient } from "@azure/data-tables";
import { QueueServiceClient } from "@azure/storage-queue";
import { SANDBOX_CREATIO_CREDENTIAL_SECRET, type EmulatorStack } from "../../dev/emulators";
import type { SpawnedHost } from "../../dev/host/spawn";
import { SANDBOX_DIR } from "../../dev/sandbox";
import { workingSiteHealth } from "../support/ewsCalendar";
import { waitFor, type TestStorage } from "../host/helpers";
import { startAppStack, type AppStack } from "../support/appStack";

const OFFICE365 = "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b";
const EXO = "00000002-0000-0ff1-ce00-000000000000";
const MSGRAPH = "00000003-0000-0000-c000-000000000000";

let app: AppStack;
let stack: EmulatorStack;
let storage: TestStorage;
let host: SpawnedHost;
let site: string;
/** Every HTTP response body the app gave, for the secret scan. */
const responses: string[] = [];

const admin = async (base: string, path: string, init?: RequestInit): Promise<any> => (await fetch(`${base}/_emulator/${path}`, init)).json();
const setFaults = (base: string, body: object) => admin(base, "faults", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
const clearFaults = (base: string) => fetch(`${base}/_emulator/faults`, { method: "DELETE" });

async function call(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<{ status: number; json: any; headers: Headers }> {
  const response = await fetch(`${host.url}${path}`, {
    method,
    headers: body === undefined ? {} : { "Content-Type": contentType },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  responses.push(text);
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: response.status, json, headers: response.headers };
}

async function onboardAndWait(body: object = { creatioUrl: stack.creatioUrl, creatioCredentialSecretName: SANDBOX_CREATIO_CREDENTIAL_SECRET }) {
  const started = await call("POST", "/api/tenants", body);
  expect(started.status).toBe(202);
  expect(started.headers.get("location")).toBe(started.json.statusQueryGetUri);
  const statusUri = started.json.statusQueryGetUri as string;
  return waitFor(
    "the onboarding to finish",
    async () => {
      const r = await fetch(statusUri);
      const text = await r.text();
      responses.push(text);
      const s = JSON.parse(text);
      return ["Completed", "Failed", "Terminated"].includes(s.runtimeStatus) ? s : undefined;
    },
    120_000,
    250,
  );
}

/** Every instance with its creation time: a new run of an existing id changes createdTime. */
async function instances(): Promise<string> {
  const r = await fetch(`${host.url}/runtime/webhooks/durabletask/instances`);
  const list = (await r.json()) as { instanceId: string; createdTime: string; runtimeStatus: string }[];
  return JSON.stringify(list.map((i) => [i.instanceId, i.createdTime, i.runtimeStatus]).sort());
}

async function graphState() {
  const state = await admin(stack.graphUrl, "state");
  const apps = state.applications.filter((a: any) => (a.uniqueName ?? "").startsWith("creatio-o365-"));
  return { state, apps };
}

/** A Graph token for the app's own identity, to make drift "by hand". */
const graphToken = () => app.graphToken();

beforeAll(async () => {
  app = await startAppStack({ emulators: { sandboxDir: SANDBOX_DIR } });
  ({ stack, storage, host } = app);
  site = new URL(stack.creatioUrl).host;
}, 120_000);

afterAll(() => app?.close());

describe("onboarding through the local host", () => {
  it("with Creatio refusing writes, 429s and replication lag: ends Failed naming configureCreatio, having kept the secret in Key Vault; status says mail cannot sync", async () => {
    await setFaults(stack.graphUrl, { throttleNext: 4, retryAfterSeconds: 1, replicationLagMs: 2500, match: "^(GET|PATCH|POST) /v1.0/(applications|servicePrincipals|oauth2PermissionGrants)" });
    // Reads work (the preflight passes); every OData write answers 503.
    await setFaults(stack.creatioUrl, { serverErrorNext: 1000, serverErrorStatus: 503, match: "^(POST|PATCH) /0/odata/" });
    try {
      const status = await onboardAndWait();
      expect(status.runtimeStatus).toBe("Failed");
      expect(JSON.stringify(status.output)).toMatch(/Step 7 of 7 \(configureCreatio\) failed after 3 attempts: .*Creatio .*503/);
      expect(status.customStatus).toMatchObject({ step: "configureCreatio", stepNumber: 7, totalSteps: 7, error: expect.stringMatching(/configureCreatio/) });

      const tenant = await call("GET", `/api/tenants/${site}`);
      expect(tenant.status).toBe(200);
      expect(tenant.json.onboarding).toMatchObject({ runtimeStatus: "Failed", currentStep: { step: "configureCreatio" } });
      expect(tenant.json.onboarding.error).toMatch(/^Step 7 of 7 \(configureCreatio\) failed/);
      expect(tenant.json.onboarding.error).not.toMatch(/\bat \w|\/dist\/|Orchestrator function/);
      expect(tenant.json.creatio).toMatchObject({ syncedAt: null, syncedKeyId: null, secretExpiresOn: null, holdsCurrentSecret: false });
      expect(tenant.json.lastRun).toMatchObject({ kind: "onboard", outcome: "failed", step: "configureCreatio" });
      expect(tenant.json.health).toMatchObject({ state: "broken", mailStopsOn: null });
      expect(tenant.json.health.problems[0]).toMatch(/Creatio holds no client secret of this app yet.*failed at configureCreatio/);
      const list = await call("GET", "/api/tenants");
      expect(list.json.find((t: any) => t.host === site)).toMatchObject({ health: { state: "broken" }, lastRun: { outcome: "failed", step: "configureCreatio" } });

      const { apps } = await graphState();
      expect(apps).toHaveLength(1);
      expect(apps[0].passwordCredentials).toHaveLength(1);
    } finally {
      await clearFaults(stack.graphUrl);
      await clearFaults(stack.creatioUrl);
    }
  }, 180_000);

  it("a later POST completes it: one app, one SP, exact grants, one password = the Key Vault version = Creatio's secret", async () => {
    const status = await onboardAndWait();
    expect(status.runtimeStatus).toBe("Completed");

    const { state, apps } = await graphState();
    expect(apps).toHaveLength(1);
    const app = apps[0];
    expect(app.web.redirectUris).toEqual([`https://${site}/0/rest/Office365OAuthAuthenticator/ProcessAuthenticationCode`]);
    expect(app.requiredResourceAccess).toEqual([
      { resourceAppId: EXO, resourceAccess: [{ id: "3b5f3d61-589b-4a3c-a359-5dd4b5ee5bd5", type: "Scope" }] },
      { resourceAppId: MSGRAPH, resourceAccess: [{ id: "e1fe6dd8-ba31-4d61-89e7-88639da4683d", type: "Scope" }] },
    ]);
    const sps = state.servicePrincipals.filter((s: any) => s.appId === app.appId);
    expect(sps).toHaveLength(1);
    const grants = state.oauth2PermissionGrants.filter((g: any) => g.clientId === sps[0].id);
    expect(grants.map((g: any) => `${g.consentType} ${g.scope.trim()}`).sort()).toEqual(["AllPrincipals EWS.AccessAsUser.All", "AllPrincipals User.Read"]);
    expect(app.passwordCredentials).toHaveLength(1);
    const password = app.passwordCredentials[0];

    const vault = await admin(stack.keyVaultUrl, "state");
    const secretName = status.output.secret.secretName;
    const versions = vault.secrets[secretName].versions;
    expect(versions[versions.length - 1].value).toBe(password.secretText);
    expect(versions[versions.length - 1].tags.keyId).toBe(password.keyId);

    const creatio = await admin(stack.creatioUrl, "state");
    const mailServer = creatio.MailServer.find((m: any) => m.Id === OFFICE365);
    const row = creatio.OAuthApplications.find((r: any) => r.Id === mailServer.OAuthApplicationId);
    expect(row).toMatchObject({ ClientId: app.appId, SecretKey: password.secretText, Name: "Office365OAuthAuthenticator", AppClassName: "Office365OAuthAuthenticator", ClientClassName: "Office365OAuthClient" });

    expect(status.output).toMatchObject({ appId: app.appId, servicePrincipalId: sps[0].id, secret: { keyId: password.keyId } });

    const tenant = await call("GET", `/api/tenants/${site}`);
    expect(tenant.json).toMatchObject({
      host: site,
      appId: app.appId,
      applicationObjectId: app.id,
      servicePrincipalId: sps[0].id,
      grantedScopes: ["EWS.AccessAsUser.All", "User.Read"],
      secret: { name: secretName, keyId: password.keyId },
      onboarding: { runtimeStatus: "Completed" },
    });
    expect(tenant.json.creatio.syncedAt).toEqual(expect.any(String));
    expect(tenant.json.secret.daysLeft).toBeGreaterThan(700);
    // The later POST delivered the secret the failed run issued; the failure is no longer reported.
    expect(tenant.json.creatio).toMatchObject({ syncedKeyId: password.keyId, holdsCurrentSecret: true, drift: false, check: { state: "ok", clientId: app.appId } });
    expect(tenant.json.health).toMatchObject(workingSiteHealth());
    // The secret lives 729 days, but EWS shuts down first: that is the day this site's mail stops.
    expect(tenant.json.health).toMatchObject({ mailStopsOn: "2027-04-01T00:00:00.000Z", daysUntilMailStops: Math.floor((Date.parse("2027-04-01T00:00:00Z") - Date.now()) / 86_400_000) });
    expect(tenant.json.lastRun).toMatchObject({ kind: "onboard", outcome: "succeeded" });
    // The sandbox Creatio had one mailbox with a stored password on the Office 365 server: linking cleared it, and status says so.
    expect(creatio.MailboxSyncSettings.filter((m: any) => m.MailServerId === OFFICE365).map((m: any) => m.HasPassword)).toEqual([false]);
    expect(status.output.creatio.passwordMailboxesCleared).toBe(1);
    expect(tenant.json.creatio.passwordMailboxesCleared).toBe(1);
    expect(tenant.json.warnings.join(" ")).toMatch(/cleared the stored password of 1 mailbox on Creatio's mail server/);
    // The generic EWS notice gave way to this site's own readiness (issue 8).
    expect(tenant.json.mail).toMatchObject({ ews: "allowed", fix: null, ewsShutdownOn: "2027-04-01" });
    expect(tenant.json.warnings).toHaveLength(1);

    const list = await call("GET", "/api/tenants");
    expect(list.json.map((t: any) => t.host)).toContain(site);
  }, 180_000);

  it("the same POST again changes nothing", async () => {
    const before = await graphState();
    const vaultBefore = await admin(stack.keyVaultUrl, "state");
    const creatioBefore = await admin(stack.creatioUrl, "state");
    const status = await onboardAndWait();
    expect(status.runtimeStatus).toBe("Completed");
    const after = await graphState();
    expect(after.apps).toEqual(before.apps);
    expect(after.state.servicePrincipals).toEqual(before.state.servicePrincipals);
    expect(after.state.oauth2PermissionGrants).toEqual(before.state.oauth2PermissionGrants);
    const vaultAfter = await admin(stack.keyVaultUrl, "state");
    expect(vaultAfter.secrets[status.output.secret.secretName].versions).toHaveLength(vaultBefore.secrets[status.output.secret.secretName].versions.length);
    expect((await admin(stack.creatioUrl, "state")).OAuthApplications).toEqual(creatioBefore.OAuthApplications);
  }, 180_000);

  it("repairs drift made by hand and keeps the admin's additions", async () => {
    const { apps } = await graphState();
    const token = await graphToken();
    const patched = await fetch(`${stack.graphUrl}/v1.0/applications/${apps[0].id}`, {
      method: "PATCH",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        web: { redirectUris: ["https://admin.example/callback"] },
        requiredResourceAccess: [{ resourceAppId: MSGRAPH, resourceAccess: [{ id: "e1fe6dd8-ba31-4d61-89e7-88639da4683d", type: "Scope" }] }],
      }),
    });
    expect(patched.status).toBe(204);
    const status = await onboardAndWait();
    expect(status.runtimeStatus).toBe("Completed");
    const after = (await graphState()).apps[0];
    expect(after.web.redirectUris).toEqual(["https://admin.example/callback", `https://${site}/0/rest/Office365OAuthAuthenticator/ProcessAuthenticationCode`]);
    expect(after.requiredResourceAccess.map((r: any) => r.resourceAppId).sort()).toEqual([EXO, MSGRAPH]);
    expect(after.passwordCredentials).toHaveLength(1);
  }, 180_000);

  const good = () => ({ creatioUrl: stack.creatioUrl, creatioCredentialSecretName: SANDBOX_CREATIO_CREDENTIAL_SECRET });
  const badInputs: [string, () => unknown, string, string][] = [
    ["wrong type", () => ({ ...good(), secretLifetimeDays: "30" }), "secretLifetimeDays", "application/json"],
    ["http URL", () => ({ ...good(), creatioUrl: stack.creatioUrl.replace("https:", "http:") }), "creatioUrl", "application/json"],
    ["bad host", () => ({ ...good(), creatioUrl: "https://bad_host!" }), "creatioUrl", "application/json"],
    ["a path", () => ({ ...good(), creatioUrl: `${stack.creatioUrl}/0/Shell/` }), "creatioUrl", "application/json"],
    ["unknown field", () => ({ ...good(), extra: 1 }), "extra", "application/json"],
    ["lifetime out of range", () => ({ ...good(), secretLifetimeDays: 731 }), "secretLifetimeDays", "application/json"],
    ["password-like field", () => ({ ...good(), password: "Supervisor" }), "password", "application/json"],
    ["malformed JSON", () => "{ nope", "", "application/json"],
    ["wrong content type", () => JSON.stringify(good()), "content-type", "text/plain"],
    ["unknown credential secret", () => ({ ...good(), creatioCredentialSecretName: "no-such-secret" }), "creatioCredentialSecretName", "application/json"],
  ];

  it.each(badInputs)("answers 400 naming the field for %s and starts no orchestration", async (_name, body, field, contentType) => {
    const before = await instances();
    const r = await call("POST", "/api/tenants", body(), contentType);
    expect(r.status).toBe(400);
    expect(r.json.errors.map((e: any) => e.path)).toContain(field);
    expect(await instances()).toBe(before);
  });

  it("answers 409 while an onboarding of the site runs", async () => {
    await setFaults(stack.graphUrl, { latencyMs: 1500 });
    try {
      const first = await call("POST", "/api/tenants", good());
      expect(first.status).toBe(202);
      const second = await call("POST", "/api/tenants", good());
      expect(second.status).toBe(409);
      await waitFor("the run to end", async () => {
        const s = (await (await fetch(first.json.statusQueryGetUri)).json()) as { runtimeStatus: string };
        return ["Completed", "Failed"].includes(s.runtimeStatus) ? s : undefined;
      }, 120_000, 250);
    } finally {
      await clearFaults(stack.graphUrl);
    }
  }, 180_000);

  it("the secret text appears nowhere in Durable storage, host output or any HTTP response", async () => {
    const { apps } = await graphState();
    const secrets: string[] = [];
    for (const app of apps) for (const p of app.passwordCredentials) if (p.secretText) secrets.push(p.secretText);
    const vault = await admin(stack.keyVaultUrl, "state");
    for (const [name, entry] of Object.entries<any>(vault.secrets)) {
      if (!name.startsWith("creatio-o365-")) continue;
      for (const v of entry.versions) secrets.push(v.value);
    }
    expect(secrets.length).toBeGreaterThan(0);

    const persisted: string[] = [];
    const cs = storage.azurite.connectionString;
    const tables = TableServiceClient.fromConnectionString(cs, { allowInsecureConnection: true });
    for await (const t of tables.listTables()) {
      const client = TableClient.fromConnectionString(cs, t.name!, { allowInsecureConnection: true });
      for await (const entity of client.listEntities()) persisted.push(JSON.stringify(entity));
    }
    const queues = QueueServiceClient.fromConnectionString(cs);
    for await (const q of queues.listQueues()) {
      const peeked = await queues.getQueueClient(q.name).peekMessages({ numberOfMessages: 32 });
      for (const m of peeked.peekedMessageItems) persisted.push(m.messageText);
    }
    // The host's Durable store keeps everything in tables (dev/host/durable/store.ts); queues are scanned too, in case; no blobs.
    expect(persisted.join("\n")).toMatch(/onboardTenant/); // the scan did read Durable state

    const haystacks = { durable: persisted.join("\n"), hostOutput: host.lines.join("\n"), responses: responses.join("\n") };
    for (const secret of secrets) {
      for (const [where, text] of Object.entries(haystacks)) {
        expect({ where, found: text.includes(secret) }).toEqual({ where, found: false });
      }
    }
  }, 60_000);
});
