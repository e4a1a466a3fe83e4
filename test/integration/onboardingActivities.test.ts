import { decodeSiteTags } from "../../src/domain/tags";
// The onboarding activities with the real SDK clients (DefaultAzureCredential via
// EnvironmentCredential, Graph client, SecretClient, fetch) against the HTTPS emulators.
// The emulator CA is trusted through NODE_EXTRA_CA_CERTS, set by dev/run-tests.ts (`npm test`).
import { startEmulators, SANDBOX_CREATIO_CREDENTIAL_SECRET, type EmulatorStack } from "../../dev/emulators";
import { SANDBOX_DIR } from "../../dev/sandbox";

let stack: EmulatorStack;
// Imported after the settings are in process.env: the clients read them once, on first use.
let acts: {
  ensureApplication: typeof import("../../src/activities/ensureApplication").ensureApplication;
  ensureServicePrincipal: typeof import("../../src/activities/ensureServicePrincipal").ensureServicePrincipal;
  grantAdminConsent: typeof import("../../src/activities/grantAdminConsent").grantAdminConsent;
  issueClientSecret: typeof import("../../src/activities/issueClientSecret").issueClientSecret;
  configureCreatio: typeof import("../../src/activities/configureCreatio").configureCreatio;
  allowUserConsent: typeof import("../../src/activities/allowUserConsent").allowUserConsent;
};

const admin = (base: string, path: string, init?: RequestInit) => fetch(`${base}/_emulator/${path}`, init).then((r) => r.json()) as Promise<any>;
const faults = (base: string, body: object) => admin(base, "faults", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

beforeAll(async () => {
  stack = await startEmulators({ sandboxDir: SANDBOX_DIR, graphPort: 0, keyVaultPort: 0, creatioPort: 0 });
  Object.assign(process.env, stack.appSettings(), { AzureWebJobsStorage: "UseDevelopmentStorage=true" });
  acts = {
    ...(await import("../../src/activities/ensureApplication")),
    ...(await import("../../src/activities/ensureServicePrincipal")),
    ...(await import("../../src/activities/grantAdminConsent")),
    ...(await import("../../src/activities/issueClientSecret")),
    ...(await import("../../src/activities/configureCreatio")),
    ...(await import("../../src/activities/allowUserConsent")),
  };
});

afterAll(async () => {
  await stack?.close();
});

async function onboard(host: string, runId: string) {
  const app = await acts.ensureApplication({ host, displayName: "Creatio" });
  const sp = await acts.ensureServicePrincipal({ appId: app.appId, displayName: "Creatio" });
  const consent = await acts.grantAdminConsent({
    servicePrincipalId: sp.servicePrincipalId,
    grants: app.resources.map((r) => ({ resourceName: r.name, resourceServicePrincipalId: r.servicePrincipalId, scopes: r.scopes.map((s) => s.value) })),
  });
  const secret = await acts.issueClientSecret({
    host,
    instanceId: `onboard-${host}`,
    runId,
    purpose: "onboard",
    appId: app.appId,
    appObjectId: app.appObjectId,
    servicePrincipalId: sp.servicePrincipalId,
    secretLifetimeDays: 365,
    creatioCredentialSecretName: SANDBOX_CREATIO_CREDENTIAL_SECRET,
    mailServerId: "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b",
    scopes: consent.grants.flatMap((g) => g.scopes),
  });
  const creatio = await acts.configureCreatio({
    host,
    secretName: secret.secretName,
    secretVersion: secret.version,
    creatioCredentialSecretName: SANDBOX_CREATIO_CREDENTIAL_SECRET,
    mailServerId: "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b",
    appId: app.appId,
  });
  return { app, sp, consent, secret, creatio };
}

describe("onboarding activities against the emulators", () => {
  let host: string;
  let first: Awaited<ReturnType<typeof onboard>>;

  beforeAll(async () => {
    host = new URL(stack.creatioUrl).host;
    first = await onboard(host, "2026-11-27T12:00:00.000Z");
  });

  it("leaves one app, one service principal, exact grants, one password held by Key Vault and Creatio", async () => {
    const graph = await admin(stack.graphUrl, "state");
    const apps = graph.applications.filter((a: any) => a.uniqueName === `creatio-o365-${host.replace(/\./g, "--").replace(":", "-1")}`);
    expect(apps).toHaveLength(1);
    const app = apps[0];
    expect(app.web.redirectUris).toEqual([`https://${host}/0/rest/Office365OAuthAuthenticator/ProcessAuthenticationCode`]);
    expect(app.signInAudience).toBe("AzureADMyOrg");
    expect(app.requiredResourceAccess).toEqual([
      { resourceAppId: "00000002-0000-0ff1-ce00-000000000000", resourceAccess: [{ id: "3b5f3d61-589b-4a3c-a359-5dd4b5ee5bd5", type: "Scope" }] },
      { resourceAppId: "00000003-0000-0000-c000-000000000000", resourceAccess: [{ id: "e1fe6dd8-ba31-4d61-89e7-88639da4683d", type: "Scope" }] },
    ]);
    expect(graph.servicePrincipals.filter((s: any) => s.appId === app.appId)).toHaveLength(1);
    const grants = graph.oauth2PermissionGrants.filter((g: any) => g.clientId === first.sp.servicePrincipalId);
    expect(grants.map((g: any) => [g.consentType, g.scope.trim()]).sort()).toEqual([
      ["AllPrincipals", "EWS.AccessAsUser.All"],
      ["AllPrincipals", "User.Read"],
    ]);
    expect(app.passwordCredentials).toHaveLength(1);
    const password = app.passwordCredentials[0];
    expect(password.keyId).toBe(first.secret.keyId);

    const vault = await admin(stack.keyVaultUrl, "state");
    const versions = vault.secrets[first.secret.secretName].versions;
    expect(versions).toHaveLength(1);
    expect(versions[0].value).toBe(password.secretText);
    expect(versions[0].contentType).toBe("text/plain; creatio-o365-oauth");
    const tags = decodeSiteTags(versions[0].tags);
    expect(tags.ok && tags.tags).toMatchObject({ site: host, appId: app.appId, keyId: password.keyId, creatioSyncedKeyId: password.keyId, creatioSyncedExpiresOn: new Date(password.endDateTime).toISOString() });

    const creatio = await admin(stack.creatioUrl, "state");
    const mailServer = creatio.MailServer.find((m: any) => m.Id === "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b");
    const row = creatio.OAuthApplications.find((r: any) => r.Id === mailServer.OAuthApplicationId);
    expect(row).toMatchObject({ ClientId: app.appId, SecretKey: password.secretText, Name: "Office365OAuthAuthenticator", ClientClassName: "Office365OAuthClient" });

    // The references returned carry no secret.
    expect(JSON.stringify(first)).not.toContain(password.secretText);
  });

  it("changes nothing when run again", async () => {
    await fetch(`${stack.graphUrl}/_emulator/requests`, { method: "DELETE" });
    const again = await onboard(host, "2026-11-27T13:00:00.000Z");
    expect(again.app.appId).toBe(first.app.appId);
    expect(again.sp.servicePrincipalId).toBe(first.sp.servicePrincipalId);
    expect(again.secret).toMatchObject({ keyId: first.secret.keyId, version: first.secret.version, reused: true });
    expect(again.creatio.actions).toEqual([]);
    const writes = ((await admin(stack.graphUrl, "requests")) as any[]).filter((r) => r.method !== "GET");
    expect(writes).toEqual([]);
  });

  it("repairs a redirect URI and permission removed by hand, keeping an admin's additions", async () => {
    const graph = await admin(stack.graphUrl, "state");
    const app = graph.applications.find((a: any) => a.appId === first.app.appId);
    // Drift made "by hand" through Graph itself, with the app's own identity.
    const { getGraphClient } = await import("../../src/clients/graph");
    await getGraphClient().api(`/applications/${app.id}`).patch({
      web: { redirectUris: ["https://admin.example/callback"] },
      requiredResourceAccess: [{ resourceAppId: "00000003-0000-0000-c000-000000000000", resourceAccess: [{ id: "e1fe6dd8-ba31-4d61-89e7-88639da4683d", type: "Scope" }] }],
    });
    const repaired = await acts.ensureApplication({ host, displayName: "Creatio" });
    expect(repaired.repaired.sort()).toEqual(["requiredResourceAccess", "web"]);
    const after = (await admin(stack.graphUrl, "state")).applications.find((a: any) => a.appId === first.app.appId);
    expect(after.web.redirectUris).toEqual(["https://admin.example/callback", `https://${host}/0/rest/Office365OAuthAuthenticator/ProcessAuthenticationCode`]);
    expect(after.requiredResourceAccess.map((r: any) => r.resourceAppId).sort()).toEqual(["00000002-0000-0ff1-ce00-000000000000", "00000003-0000-0000-c000-000000000000"]);
  });

  it("rides out 429s and replication lag on a new site", async () => {
    await faults(stack.graphUrl, { throttleNext: 3, retryAfterSeconds: 1, replicationLagMs: 3000, match: "^(GET|PATCH|POST) /v1.0/(applications|servicePrincipals|oauth2PermissionGrants)" });
    try {
      const lagged = `lag-${Date.now()}.creatio.com`;
      const app = await acts.ensureApplication({ host: lagged, displayName: "Creatio" });
      const sp = await acts.ensureServicePrincipal({ appId: app.appId, displayName: "Creatio" });
      const consent = await acts.grantAdminConsent({
        servicePrincipalId: sp.servicePrincipalId,
        grants: app.resources.map((r) => ({ resourceName: r.name, resourceServicePrincipalId: r.servicePrincipalId, scopes: r.scopes.map((s) => s.value) })),
      });
      expect(consent.grants).toHaveLength(2);
      const state = await admin(stack.graphUrl, "state");
      expect(state.servicePrincipals.filter((s: any) => s.appId === app.appId)).toHaveLength(1);
    } finally {
      await fetch(`${stack.graphUrl}/_emulator/faults`, { method: "DELETE" });
    }
  }, 90_000);

  it("reports a tenant password lifetime policy clearly", async () => {
    await fetch(`${stack.graphUrl}/_emulator/tenant`, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ passwordLifetimeMaxDays: 180 }) });
    try {
      await expect(
        acts.issueClientSecret({
          host: "policy.creatio.com",
          instanceId: "onboard-policy.creatio.com",
          runId: "r1",
          purpose: "onboard",
          appId: first.app.appId,
          appObjectId: first.app.appObjectId,
          secretLifetimeDays: 365,
          creatioCredentialSecretName: SANDBOX_CREATIO_CREDENTIAL_SECRET,
          mailServerId: "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b",
        }),
      ).rejects.toThrow(/app management policy rejects a client secret lifetime of 365 days/);
    } finally {
      await fetch(`${stack.graphUrl}/_emulator/tenant`, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ passwordLifetimeMaxDays: null }) });
    }
  });

  it("allows user consent keeping the other policies", async () => {
    const before = (await admin(stack.graphUrl, "state")).authorizationPolicy.defaultUserRolePermissions.permissionGrantPoliciesAssigned as string[];
    const result = await acts.allowUserConsent({});
    expect(result.permissionGrantPoliciesAssigned).toEqual(expect.arrayContaining([...before, "ManagePermissionGrantsForSelf.microsoft-user-default-legacy"]));
    expect(result.previousSelfConsentPolicies).toEqual(before.filter((p) => p.startsWith("ManagePermissionGrantsForSelf.")));
    expect((await acts.allowUserConsent({})).changed).toBe(false);
  });
});
