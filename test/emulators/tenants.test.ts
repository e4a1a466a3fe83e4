// The Entra/Graph emulator's other tenants (issue 10), driven by the real @azure/identity credentials
// over HTTPS: the App Service managed identity endpoint (ManagedIdentityCredential from IDENTITY_ENDPOINT
// and IDENTITY_HEADER), a multi-tenant provisioner app that trusts that identity through a federated
// credential (ClientAssertionCredential), the admin consent endpoint, and a Graph directory per tenant.
import { ClientAssertionCredential, ManagedIdentityCredential, type TokenCredential } from "@azure/identity";
import { SANDBOX_CUSTOMER_TENANT, SANDBOX_IDENTITY, SANDBOX_IDENTITY_HEADER, sandboxContext } from "../../dev/emulators/context";
import { createGraphEmulator, MICROSOFT_GRAPH_APP_ID } from "../../dev/emulators/graph";
import { GRAPH_APP_ROLES } from "../../dev/emulators/graph/seed";
import type { EmulatorServer } from "../../dev/emulators/server";

const HOME = SANDBOX_IDENTITY.tenantId;
const CUSTOMER = SANDBOX_CUSTOMER_TENANT;
const REDIRECT = "https://localhost:7071/api/consent/callback";
const ROLES = ["Application.ReadWrite.OwnedBy", "DelegatedPermissionGrant.ReadWrite.All"];
const roleId = (value: string) => GRAPH_APP_ROLES.find((r) => r.value === value)!.id;

let server: EmulatorServer;
let base: string;
const saved = { endpoint: process.env.IDENTITY_ENDPOINT, header: process.env.IDENTITY_HEADER };

beforeAll(async () => {
  server = createGraphEmulator(sandboxContext());
  base = await server.listen(0);
  process.env.IDENTITY_ENDPOINT = `${base}/msi/token`;
  process.env.IDENTITY_HEADER = SANDBOX_IDENTITY_HEADER;
});
afterAll(async () => {
  process.env.IDENTITY_ENDPOINT = saved.endpoint;
  process.env.IDENTITY_HEADER = saved.header;
  if (saved.endpoint === undefined) delete process.env.IDENTITY_ENDPOINT;
  if (saved.header === undefined) delete process.env.IDENTITY_HEADER;
  await server.close();
});
beforeEach(async () => {
  await fetch(`${base}/_emulator/reset`, { method: "POST" });
});

const managedIdentity = () => new ManagedIdentityCredential({ clientId: SANDBOX_IDENTITY.clientId });
/** The provisioner's credential in `tenant`: a managed-identity token for api://AzureADTokenExchange as the assertion. */
const provisioner = (tenant: string, appId: string): TokenCredential =>
  new ClientAssertionCredential(tenant, appId, async () => (await managedIdentity().getToken("api://AzureADTokenExchange/.default")).token, {
    authorityHost: base,
    disableInstanceDiscovery: true,
  });

async function graph(credential: TokenCredential, method: string, path: string, body?: object): Promise<{ status: number; body: any }> {
  const token = (await credential.getToken("https://graph.microsoft.com/.default"))!.token;
  const r = await fetch(`${base}/v1.0${path}`, { method, headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: body && JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

/** The provisioner app as infra/ makes it in the home tenant: multi-tenant, Graph roles required, trusting the identity. */
async function createProvisioner(options: { signInAudience?: string; subject?: string } = {}): Promise<{ appId: string; id: string }> {
  const mi = managedIdentity();
  const app = await graph(mi, "POST", "/applications", {
    displayName: "creatio-o365 provisioner",
    signInAudience: options.signInAudience ?? "AzureADMultipleOrgs",
    web: { redirectUris: [REDIRECT] },
    requiredResourceAccess: [{ resourceAppId: MICROSOFT_GRAPH_APP_ID, resourceAccess: ROLES.map((value) => ({ id: roleId(value), type: "Role" })) }],
  });
  expect(app.status).toBe(201);
  const fic = await graph(mi, "POST", `/applications/${app.body.id}/federatedIdentityCredentials`, {
    name: "function-app-identity",
    issuer: `https://login.microsoftonline.com/${HOME}/v2.0`,
    subject: options.subject ?? SANDBOX_IDENTITY.objectId,
    audiences: ["api://AzureADTokenExchange"],
  });
  expect(fic.status).toBe(201);
  return { appId: app.body.appId, id: app.body.id };
}

const consentUrl = (tenant: string, appId: string, redirectUri = REDIRECT, state = "st-123") =>
  `${base}/${tenant}/adminconsent?${new URLSearchParams({ client_id: appId, redirect_uri: redirectUri, state })}`;
const decide = (tenant: string, appId: string, decision: string) =>
  fetch(`${base}/${tenant}/adminconsent`, {
    method: "POST",
    redirect: "manual",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: appId, redirect_uri: REDIRECT, state: "st-123", decision }),
  });

test("ManagedIdentityCredential gets home-tenant Graph tokens from the App Service identity endpoint; a wrong header is refused", async () => {
  const org = await graph(managedIdentity(), "GET", "/organization");
  expect(org.status).toBe(200);
  expect(org.body.value[0]).toMatchObject({ id: HOME });
  const wrong = await fetch(`${base}/msi/token?resource=https://graph.microsoft.com&api-version=2019-08-01`, { headers: { "X-IDENTITY-HEADER": "guess" } });
  expect(wrong.status).toBe(401);
});

test("before consent the provisioner has no service principal in the customer tenant: AADSTS7000229", async () => {
  const { appId } = await createProvisioner();
  await expect(provisioner(CUSTOMER.tenantId, appId).getToken("https://graph.microsoft.com/.default")).rejects.toThrow(/AADSTS7000229/);
});

test("consent page, wrong redirect URI, decline and accept behave like Entra's adminconsent endpoint", async () => {
  const { appId } = await createProvisioner();
  const pageAnswer = await fetch(consentUrl(CUSTOMER.domain, appId));
  expect(pageAnswer.status).toBe(200);
  const html = await pageAnswer.text();
  expect(html).toContain("Customer B");
  for (const role of ROLES) expect(html).toContain(role);

  const wrongRedirect = await fetch(consentUrl(CUSTOMER.tenantId, appId, "https://evil.example/cb"));
  expect(wrongRedirect.status).toBe(400);
  expect(await wrongRedirect.text()).toContain("AADSTS50011");

  const declined = await decide(CUSTOMER.tenantId, appId, "decline");
  expect(declined.status).toBe(302);
  const back = new URL(declined.headers.get("location")!);
  expect(`${back.origin}${back.pathname}`).toBe(REDIRECT);
  expect(Object.fromEntries(back.searchParams)).toMatchObject({ error: "access_denied", state: "st-123" });
  await expect(provisioner(CUSTOMER.tenantId, appId).getToken("https://graph.microsoft.com/.default")).rejects.toThrow(/AADSTS7000229/);

  const accepted = await decide(CUSTOMER.tenantId, appId, "accept");
  expect(accepted.status).toBe(302);
  expect(Object.fromEntries(new URL(accepted.headers.get("location")!).searchParams)).toEqual({ admin_consent: "True", tenant: CUSTOMER.tenantId, state: "st-123" });
});

test("after consent the provisioner works in the customer tenant only there: objects land in that directory, the home directory is untouched", async () => {
  const { appId } = await createProvisioner();
  expect((await decide(CUSTOMER.tenantId, appId, "accept")).status).toBe(302);
  const inCustomer = provisioner(CUSTOMER.domain, appId);
  const token = await inCustomer.getToken("https://graph.microsoft.com/.default");
  const claims = JSON.parse(Buffer.from(token!.token.split(".")[1], "base64url").toString());
  expect(claims).toMatchObject({ tid: CUSTOMER.tenantId, appid: appId });
  expect([...claims.roles].sort()).toEqual([...ROLES].sort());

  expect((await graph(inCustomer, "GET", "/organization")).status).toBe(403); // Organization.Read.All was not consented
  const created = await graph(inCustomer, "PATCH", "/applications(uniqueName='creatio-o365-acme.creatio.com')", { displayName: "Creatio acme" });
  // Without Prefer: create-if-missing an upsert is an update: 404 proves the call reached the customer directory.
  expect(created.status).toBe(404);
  const made = await graph(inCustomer, "POST", "/applications", { displayName: "Creatio acme", uniqueName: "creatio-o365-acme.creatio.com" });
  expect(made.status).toBe(201);

  const state = (await (await fetch(`${base}/_emulator/state`)).json()) as any;
  expect(state.applications.map((a: any) => a.uniqueName)).not.toContain("creatio-o365-acme.creatio.com");
  expect(state.tenants[CUSTOMER.tenantId].applications.map((a: any) => a.uniqueName)).toEqual(["creatio-o365-acme.creatio.com"]);
  // The home tenant needs no consent for its own app; the provisioner has no service principal there yet.
  await expect(provisioner(HOME, appId).getToken("https://graph.microsoft.com/.default")).rejects.toThrow(/AADSTS7000229/);
});

test("an assertion no federated credential trusts is refused (AADSTS70021); a single-tenant app cannot be consented elsewhere", async () => {
  const untrusted = await createProvisioner({ subject: "00000000-0000-4000-8000-000000000000" });
  expect((await decide(CUSTOMER.tenantId, untrusted.appId, "accept")).status).toBe(302);
  await expect(provisioner(CUSTOMER.tenantId, untrusted.appId).getToken("https://graph.microsoft.com/.default")).rejects.toThrow(/AADSTS70021/);

  const single = await createProvisioner({ signInAudience: "AzureADMyOrg" });
  const refused = await fetch(consentUrl(CUSTOMER.tenantId, single.appId));
  expect(refused.status).toBe(400);
  expect(await refused.text()).toContain("AADSTS700016");
});
