/**
 * Issue 10 end to end: a Creatio site whose Microsoft 365 lives in another Entra tenant. The built
 * app in the local Functions host on Azurite, real SDK clients (ManagedIdentityCredential through
 * the emulated App Service identity endpoint, ClientAssertionCredential for the customer's tenant),
 * the Graph/Entra emulator with two directories and the seeded multi-tenant provisioner, Exchange
 * Online with one organization per tenant. The consent page is driven as a browser would: GET the
 * consent URL, POST the administrator's decision, follow the redirect to the app's callback.
 */
import { SANDBOX_CUSTOMER_TENANT, SANDBOX_PROVISIONER } from "../../dev/emulators/context";
import { applicationUniqueNameFor, secretNameFor } from "../../src/domain/site";
import { decodeSiteTags } from "../../src/domain/tags";
import { waitFor } from "../host/helpers";
import { JSON_HEADERS as json, startAppStack, type AppStack, type CreatioSite } from "../support/appStack";

const TENANT_B = SANDBOX_CUSTOMER_TENANT.tenantId;

let app: AppStack;
let site: CreatioSite;

beforeAll(async () => {
  // A short consent wait (11 s) for the first case; the host restarts with a long one after it.
  app = await startAppStack({ emulators: { ewsAccess: "manage" }, env: { EWS_ACCESS: "manage", ADMIN_CONSENT_WAIT_HOURS: "0.003", OLD_SECRET_GRACE_HOURS: "0" } });
  site = await app.newCreatio();
}, 120_000);

afterAll(() => app?.close());

const graphState = async (): Promise<any> => app.emulatorState(app.stack.graphUrl);
const tokenRequests = async (): Promise<{ path: string; body: string }[]> =>
  ((await (await fetch(`${app.stack.graphUrl}/_emulator/requests`)).json()) as any[]).filter((r) => /\/oauth2\/v2\.0\/token$/.test(r.path)).map((r) => ({ path: r.path, body: String(r.body ?? "") }));

/** Waits until the onboarding shows the consent URL; answers it. */
async function awaitingConsent(instanceId: string): Promise<{ url: string; status: any }> {
  return waitFor(
    "awaitingAdminConsent",
    async () => {
      const r = await app.api(`/api/tenants/${site.host}`);
      return r.body?.adminConsent?.url ? { url: r.body.adminConsent.url as string, status: r.body } : undefined;
    },
    30_000,
    200,
  ).then((found) => {
    expect(found.status.onboarding.instanceId).toBe(instanceId);
    return found;
  });
}

/** The administrator's browser: the consent page, the decision, the redirect to the app's callback. */
async function answerConsent(consentUrl: string, decision: "accept" | "decline", tamper: (callback: URL) => URL = (u) => u): Promise<{ status: number; text: string; callback: URL }> {
  const page = await fetch(consentUrl);
  expect(page.status).toBe(200);
  expect(await page.text()).toMatch(new RegExp(`asks an administrator of <b>${SANDBOX_CUSTOMER_TENANT.displayName}</b>`));
  const form = new URLSearchParams(new URL(consentUrl).search);
  form.set("decision", decision);
  const back = await fetch(consentUrl.split("?")[0]!, { method: "POST", body: form, redirect: "manual" });
  expect(back.status).toBe(302);
  const callback = tamper(new URL(back.headers.get("location")!));
  expect(callback.origin + callback.pathname).toBe(`${app.host.url}/api/consent/callback`);
  const answer = await fetch(callback);
  return { status: answer.status, text: await answer.text(), callback };
}

test("a site of another tenant: the consent wait times out, a decline fails naming Entra's answer, a later POST resumes and completes after consent, everything lives in that tenant, the sweep rotates it there and offboarding removes it there", async () => {
  const body = { creatioUrl: site.url, entraTenantId: SANDBOX_CUSTOMER_TENANT.domain, secretLifetimeDays: 20 };

  // A mistyped tenant: 400 naming the field, nothing started.
  const typo = await app.api("/api/tenants", { method: "POST", headers: json, body: JSON.stringify({ ...body, entraTenantId: "customer-x.onmicrosoft.com", creatioCredentialSecretName: "creatio-sandbox-admin" }) });
  expect(typo.status).toBe(400);
  expect(typo.body.errors).toEqual([{ path: "entraTenantId", message: expect.stringMatching(/^entraTenantId: Entra ID has no tenant customer-x\.onmicrosoft\.com: check the tenant id/) }]);

  // 1. Nobody consents: the wait ends in a Failed run naming the setting.
  const first = await app.startOnboarding(body);
  const waiting = await awaitingConsent(first);
  expect(waiting.status).toMatchObject({ entraTenantId: TENANT_B, homeTenant: false, adminConsent: { tenantId: TENANT_B }, health: { state: "broken" } });
  expect(waiting.status.health.problems[0]).toMatch(/is waiting for an administrator of tenant 22222222-.* to consent/);
  const consentUrl = new URL(waiting.url);
  expect(consentUrl.origin + consentUrl.pathname).toBe(`${app.stack.authorityHost}/${TENANT_B}/adminconsent`);
  expect(consentUrl.searchParams.get("client_id")).toBe(SANDBOX_PROVISIONER.appId);
  expect(consentUrl.searchParams.get("redirect_uri")).toBe(`${app.host.url}/api/consent/callback`);
  const timedOut = await app.finished(first, 60_000);
  expect(timedOut.runtimeStatus).toBe("Failed");
  expect(JSON.stringify(timedOut.output)).toMatch(/no administrator of tenant 22222222-3333-4444-8555-666666666666 consented within 0.003 hours \(ADMIN_CONSENT_WAIT_HOURS\)/);
  // The spent link is refused.
  const late = await fetch(`${app.host.url}/api/consent/callback?admin_consent=True&tenant=${TENANT_B}&state=${consentUrl.searchParams.get("state")}`);
  expect(late.status).toBe(400);

  await app.restartHost({ ADMIN_CONSENT_WAIT_HOURS: "1" });

  // 2. The administrator declines: Failed, naming Entra's words; nothing exists in either tenant.
  const second = await app.startOnboarding(body);
  const declineUrl = (await awaitingConsent(second)).url;
  const declined = await answerConsent(declineUrl, "decline");
  expect(declined.status).toBe(200);
  expect(declined.text).toMatch(/Consent declined.*AADSTS65004: User declined to consent/);
  const failed = await app.finished(second);
  expect(failed.runtimeStatus).toBe("Failed");
  expect(JSON.stringify(failed.output)).toMatch(/did not consent \(Entra: access_denied: AADSTS65004: User declined to consent to access the app/);
  const uniqueName = applicationUniqueNameFor(site.host);
  let graph = await graphState();
  expect(graph.applications.find((a: any) => a.uniqueName === uniqueName)).toBeUndefined();
  expect(graph.tenants[TENANT_B].applications.find((a: any) => a.uniqueName === uniqueName)).toBeUndefined();

  // 3. A later POST resumes: a new consent link; the old one, another tenant and a forged state are refused.
  await fetch(`${app.stack.graphUrl}/_emulator/requests`, { method: "DELETE" });
  const third = await app.startOnboarding(body);
  const acceptUrl = (await awaitingConsent(third)).url;
  expect(acceptUrl).not.toBe(declineUrl);
  const state = new URL(acceptUrl).searchParams.get("state")!;
  const callback = (query: Record<string, string>) => fetch(`${app.host.url}/api/consent/callback?${new URLSearchParams(query)}`);
  expect((await callback({ admin_consent: "True", tenant: TENANT_B, state: new URL(declineUrl).searchParams.get("state")! })).status).toBe(400);
  expect((await callback({ admin_consent: "True", tenant: app.stack.identity.tenantId, state })).status).toBe(400);
  expect((await callback({ admin_consent: "True", tenant: TENANT_B, state: `${state.split(".")[0]}.${"x".repeat(43)}` })).status).toBe(400);
  expect((await app.api(`/api/tenants/${site.host}`)).body.adminConsent?.url).toBe(acceptUrl);

  const accepted = await answerConsent(acceptUrl, "accept");
  expect(accepted.status).toBe(200);
  expect(accepted.text).toMatch(/Consent recorded/);
  // Single use: the same redirect again is refused.
  const reused = await fetch(accepted.callback);
  expect(reused.status).toBe(400);
  const done = await app.finished(third);
  expect(done.runtimeStatus).toBe("Completed");
  const output = done.output as any;
  expect(output.tenantId).toBe(TENANT_B);

  // 4. Everything lives in tenant B, nothing in the home tenant.
  graph = await graphState();
  const inB = graph.tenants[TENANT_B];
  const application = inB.applications.find((a: any) => a.uniqueName === uniqueName);
  expect(application).toMatchObject({ appId: output.appId });
  expect(application.passwordCredentials).toHaveLength(1);
  const sp = inB.servicePrincipals.find((s: any) => s.appId === output.appId);
  expect(sp).toBeDefined();
  expect(inB.oauth2PermissionGrants.filter((g: any) => g.clientId === sp.id).length).toBeGreaterThan(0);
  expect(graph.applications.find((a: any) => a.uniqueName === uniqueName || a.appId === output.appId)).toBeUndefined();
  expect(graph.servicePrincipals.find((s: any) => s.appId === output.appId)).toBeUndefined();
  // The provisioner signed in to tenant B with client assertions, never with a secret.
  const tokens = await tokenRequests();
  const toB = tokens.filter((t) => t.path === `/${TENANT_B}/oauth2/v2.0/token`);
  expect(toB.length).toBeGreaterThan(0);
  for (const t of toB) {
    const form = new URLSearchParams(t.body);
    expect([form.get("client_id"), form.get("client_assertion_type"), form.get("client_secret")]).toEqual([SANDBOX_PROVISIONER.appId, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", null]);
  }
  // Exchange Online of tenant B lets the app use EWS; the home organization's list does not name it.
  const orgB = (await (await fetch(`${app.stack.exchangeUrl}/_emulator/tenant?tenant=${TENANT_B}`)).json()) as any;
  expect(orgB.organizationConfig.EwsAllowedAppIDs).toContain(output.appId);
  const home = (await (await fetch(`${app.stack.exchangeUrl}/_emulator/tenant`)).json()) as any;
  expect(home.organizationConfig.EwsAllowedAppIDs).not.toContain(output.appId);

  // 5. Status, tags and the list say which tenant.
  const status = await app.api(`/api/tenants/${site.host}`);
  expect(status.body).toMatchObject({ entraTenantId: TENANT_B, homeTenant: false, adminConsent: null, appId: output.appId });
  const secret = await app.secrets.getSecret(secretNameFor(site.host));
  const tags = decodeSiteTags(secret.properties.tags);
  expect(tags.ok && tags.tags.tenantId).toBe(TENANT_B);
  const list = await app.api("/api/tenants");
  expect(list.body.find((s: any) => s.host === site.host)).toMatchObject({ entraTenantId: TENANT_B, homeTenant: false });
  // A site stays in its tenant.
  const move = await app.api("/api/tenants", { method: "POST", headers: json, body: JSON.stringify({ ...body, entraTenantId: app.stack.identity.tenantId, creatioCredentialSecretName: tags.ok ? tags.tags.creatioCredential : "" }) });
  expect(move.status).toBe(409);
  expect(move.body.error).toMatch(/is managed in tenant 22222222-.*, not the home tenant: a site stays in the tenant it was onboarded in/);

  // 6. The sweep rotates it (a 20-day secret is inside the 30-day window) with tenant-B tokens.
  await fetch(`${app.stack.graphUrl}/_emulator/requests`, { method: "DELETE" });
  const events = await app.runSweep(30_000);
  expect(events.at(-1)).toMatchObject({ event: "sweep.finished", started: 1 });
  const rotated = await app.finished(`rotate-${site.host}`);
  expect(rotated.runtimeStatus).toBe("Completed");
  graph = await graphState();
  const after = graph.tenants[TENANT_B].applications.find((a: any) => a.uniqueName === uniqueName);
  expect(after.passwordCredentials.map((p: any) => p.keyId)).toEqual([(rotated.output as any).keyId]);
  // The emulator serves a token's own directory only (its `tid`): B's application object exists only
  // in B, so the rotation's addPassword on it succeeded with a tenant-B token.
  const rotationCalls = ((await (await fetch(`${app.stack.graphUrl}/_emulator/requests`)).json()) as any[]).filter((r) => r.path.includes(after.id));
  expect(rotationCalls.map((r) => `${r.method} ${r.path}`)).toContain(`POST /v1.0/applications/${after.id}/addPassword`);

  const rotatedSecret = (await app.secrets.getSecret(secretNameFor(site.host))).value!;
  expect(rotatedSecret).not.toBe(secret.value);

  // 7. Offboarding removes the app and the allow-list entry in tenant B.
  const off = await app.api(`/api/tenants/${site.host}`, { method: "DELETE", headers: json, body: JSON.stringify({ confirm: site.host }) });
  expect(off.status).toBe(202);
  expect((await app.finished(off.body.id)).runtimeStatus).toBe("Completed");
  graph = await graphState();
  expect(graph.tenants[TENANT_B].applications.find((a: any) => a.uniqueName === uniqueName)).toBeUndefined();
  expect(graph.tenants[TENANT_B].deletedApplications.find((a: any) => a.uniqueName === uniqueName)).toBeDefined();
  const orgAfter = (await (await fetch(`${app.stack.exchangeUrl}/_emulator/tenant?tenant=${TENANT_B}`)).json()) as any;
  expect(orgAfter.organizationConfig.EwsAllowedAppIDs).not.toContain(output.appId);

  // No secret text anywhere the operator or the logs see.
  for (const secretText of [secret.value!, rotatedSecret]) {
    expect(secretText.length).toBeGreaterThan(10);
    for (const text of [...app.answers, ...app.hostLines]) expect(text.includes(secretText)).toBe(false);
  }
}, 300_000);
