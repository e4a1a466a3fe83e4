// The Entra/Graph emulator's other tenants (issue 10), driven by the real @azure/identity credentials
// over HTTPS: the App Service managed identity endpoint (ManagedIdentityCredential from IDENTITY_ENDPOINT
// and IDENTITY_HEADER), a multi-tenant provisioner app that trusts that identity through a federated
// credential (ClientAssertionCredential), the admin consent endpoint, and a Graph directory per tenant.
import { readFileSync } from "node:fs";
import { ClientAssertionCredential, ManagedIdentityCredential, type TokenCredential } from "@azure/identity";
import { SANDBOX_CUSTOMER_TENANT, SANDBOX_IDENTITY, SANDBOX_IDENTITY_HEADER, SANDBOX_PROVISIONER, sandboxContext } from "../../dev/emulators/context";
import { startEmulators, type EmulatorStack } from "../../dev/emulators";
import { createGraphEmulator, EXCHANGE_ONLINE_APP_ID, MICROSOFT_GRAPH_APP_ID } from "../../dev/emulators/graph";
import { DEFAULT_IDENTITY_GRAPH_ROLES, EXCHANGE_APP_ROLES, GRAPH_APP_ROLES } from "../../dev/emulators/graph/seed";
import { redirectUriMatches } from "../../dev/emulators/graph/token";
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

test("redirect URIs match exactly, except that http://localhost and http://127.0.0.1 ignore the port (Entra's localhost exception)", () => {
  const registered = "http://localhost/api/consent/callback";
  expect(redirectUriMatches(registered, registered)).toBe(true);
  expect(redirectUriMatches(registered, "http://localhost:7071/api/consent/callback")).toBe(true);
  expect(redirectUriMatches("http://localhost:7071/api/consent/callback", "http://localhost:8080/api/consent/callback")).toBe(true);
  expect(redirectUriMatches("http://127.0.0.1/cb", "http://127.0.0.1:5000/cb")).toBe(true);
  expect(redirectUriMatches(registered, "http://127.0.0.1:7071/api/consent/callback")).toBe(false);
  expect(redirectUriMatches(registered, "https://localhost:7071/api/consent/callback")).toBe(false);
  expect(redirectUriMatches(registered, "http://localhost:7071/api/Consent/callback")).toBe(false);
  expect(redirectUriMatches(registered, "http://localhost:7071/api/consent/callback/x")).toBe(false);
  expect(redirectUriMatches("https://app.example.com/api/consent/callback", "https://app.example.com:8443/api/consent/callback")).toBe(false);
});

// The stack `npm start` runs: the provisioner is seeded, and the app settings carry the managed identity endpoint.
// Real @azure/identity credentials over HTTPS (NODE_EXTRA_CA_CERTS is set by dev/run-tests.ts from the same bundle
// appSettings() names), configured only from appSettings(), as the app would be.
describe("the emulator stack's provisioner (startEmulators)", () => {
  let stack: EmulatorStack;
  let settings: Record<string, string>;
  const names = ["IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_AUTHORITY_HOST"] as const;
  const before: Record<string, string | undefined> = {};
  const CALLBACK = "http://localhost:7071/api/consent/callback";

  // MSAL node keeps the managed identity source (with its endpoint) and its tokens in statics, once per process
  // (ManagedIdentityClient.identitySource, ManagedIdentityApplication.nodeStorage): the tests above fixed them on
  // their own emulator. A fresh copy of @azure/identity (and MSAL) reads this stack's IDENTITY_ENDPOINT anew.
  let sdk: typeof import("@azure/identity");

  beforeAll(async () => {
    await jest.isolateModulesAsync(async () => {
      sdk = await import("@azure/identity");
    });
    stack = await startEmulators({ seedCreatioCredential: false });
    settings = stack.appSettings();
    for (const name of names) {
      before[name] = process.env[name];
      process.env[name] = settings[name];
    }
  });
  afterAll(async () => {
    for (const name of names) {
      if (before[name] === undefined) delete process.env[name];
      else process.env[name] = before[name];
    }
    await stack?.close();
  });
  beforeEach(async () => {
    await fetch(`${stack.graphUrl}/_emulator/reset`, { method: "POST" });
  });

  const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
  const mi = () => new sdk.ManagedIdentityCredential({ clientId: settings.AZURE_CLIENT_ID });
  const provisionerIn = (tenant: string) =>
    new sdk.ClientAssertionCredential(tenant, settings.PROVISIONER_CLIENT_ID, async () => (await mi().getToken("api://AzureADTokenExchange/.default")).token, {
      authorityHost: settings.AZURE_AUTHORITY_HOST,
      disableInstanceDiscovery: true,
    });
  const graphState = async (): Promise<any> => (await fetch(`${stack.graphUrl}/_emulator/state`)).json();
  const tokenRequests = () => stack.servers.graph.requests.filter((r) => /\/(msi\/token|oauth2\/v2\.0\/token)$/.test(r.path)).map((r) => r.path);

  test("appSettings name the provisioner, the identity endpoint and its header; the CA bundle holds the sandbox CA", () => {
    expect(settings).toMatchObject({
      PROVISIONER_CLIENT_ID: SANDBOX_PROVISIONER.appId,
      IDENTITY_ENDPOINT: `${stack.graphUrl}/msi/token`,
      IDENTITY_HEADER: SANDBOX_IDENTITY_HEADER,
      AZURE_CLIENT_ID: SANDBOX_IDENTITY.clientId,
    });
    expect(readFileSync(settings.NODE_EXTRA_CA_CERTS, "utf8")).toContain(readFileSync(stack.caCertPath, "utf8").trim());
    expect(process.env.NODE_EXTRA_CA_CERTS).toBe(settings.NODE_EXTRA_CA_CERTS);
  });

  test("the provisioner is seeded in the home directory only, multi-tenant, with the identity's roles, the callback URI and a credential trusting the identity; reset keeps it", async () => {
    const check = async () => {
      const state = await graphState();
      const app = state.applications.find((a: any) => a.appId === SANDBOX_PROVISIONER.appId);
      expect(app).toMatchObject({ signInAudience: "AzureADMultipleOrgs", uniqueName: SANDBOX_PROVISIONER.uniqueName, web: { redirectUris: ["http://localhost/api/consent/callback"] } });
      const graphIds = app.requiredResourceAccess.find((r: any) => r.resourceAppId === MICROSOFT_GRAPH_APP_ID).resourceAccess;
      expect(graphIds.map((a: any) => GRAPH_APP_ROLES.find((r) => r.id === a.id)?.value).sort()).toEqual([...DEFAULT_IDENTITY_GRAPH_ROLES].sort());
      expect(graphIds.every((a: any) => a.type === "Role")).toBe(true);
      const exchangeIds = app.requiredResourceAccess.find((r: any) => r.resourceAppId === EXCHANGE_ONLINE_APP_ID).resourceAccess;
      expect(exchangeIds).toEqual([{ id: EXCHANGE_APP_ROLES.find((r) => r.value === "Exchange.ManageAsApp")!.id, type: "Role" }]);
      expect(state.federatedIdentityCredentials[app.id]).toEqual([
        expect.objectContaining({ issuer: `https://login.microsoftonline.com/${HOME}/v2.0`, subject: SANDBOX_IDENTITY.objectId, audiences: ["api://AzureADTokenExchange"] }),
      ]);
      expect(state.servicePrincipals.find((sp: any) => sp.appId === SANDBOX_PROVISIONER.appId)).toBeUndefined();
      expect(state.tenants[CUSTOMER.tenantId].applications).toEqual([]);
    };
    await check();
    await fetch(`${stack.graphUrl}/_emulator/reset`, { method: "POST" });
    await check();
  });

  test("ManagedIdentityCredential gets tokens from IDENTITY_ENDPOINT; the exchange token's iss is exactly the federated credential's issuer", async () => {
    stack.servers.graph.requests.length = 0;
    const vaultToken = await mi().getToken("https://vault.azure.net/.default");
    expect(claimsOf(vaultToken.token)).toMatchObject({ tid: HOME, appid: SANDBOX_IDENTITY.clientId, aud: "https://vault.azure.net" });
    expect(tokenRequests()).toEqual(["/msi/token"]);
    const graphToken = await mi().getToken("https://graph.microsoft.com/.default");
    expect(claimsOf(graphToken.token)).toMatchObject({ tid: HOME, appid: SANDBOX_IDENTITY.clientId, oid: SANDBOX_IDENTITY.objectId });
    const assertion = claimsOf((await mi().getToken("api://AzureADTokenExchange/.default")).token);
    expect(assertion).toMatchObject({ iss: `https://login.microsoftonline.com/${HOME}/v2.0`, sub: SANDBOX_IDENTITY.objectId, aud: "api://AzureADTokenExchange", tid: HOME });
    expect(tokenRequests().every((p) => p === "/msi/token")).toBe(true);
  });

  test("ClientAssertionCredential in tenant B: AADSTS7000229 before consent; after an accept through the consent page, tokens with the consented roles", async () => {
    let failure: unknown;
    await provisionerIn(CUSTOMER.tenantId)
      .getToken("https://graph.microsoft.com/.default")
      .catch((error) => (failure = error));
    expect(failure).toBeInstanceOf(Error);
    const error = failure as Error & { errorResponse?: { error?: string; errorDescription?: string } };
    // What the app classifies as "consent required" (printed so it can be read off a test run).
    if (process.env.SHOW_CONSENT_ERROR)
      console.log(`pre-consent failure: name=${error.name}\nmessage=${error.message}\nkeys=${Object.keys(error).join(",")}\ncause=${String((error as any).cause)}`);
    // @azure/identity 4.13 (MSAL node 5) throws AuthenticationRequiredError, its message carrying Entra's
    // error and description: "invalid_client: Error(s): 7000229 - Timestamp: ... - Description: AADSTS7000229: ...".
    expect(error.name).toBe("AuthenticationRequiredError");
    expect(error.message).toMatch(/^invalid_client: Error\(s\): 7000229 - .*AADSTS7000229: The client application \S+ is missing service principal in the tenant/);

    // The administrator's browser: the consent page (redirect_uri with the host's port: the registered
    // http://localhost URI matches any port), then its Accept form.
    const url = `${stack.graphUrl}/${CUSTOMER.domain}/adminconsent?${new URLSearchParams({ client_id: SANDBOX_PROVISIONER.appId, redirect_uri: CALLBACK, state: "s-1" })}`;
    const consentPage = await fetch(url);
    expect(consentPage.status).toBe(200);
    const html = await consentPage.text();
    for (const role of [...DEFAULT_IDENTITY_GRAPH_ROLES, "Exchange.ManageAsApp"]) expect(html).toContain(role);
    const wrongPath = await fetch(url.replace(encodeURIComponent("/api/consent/callback"), encodeURIComponent("/api/other")));
    expect(wrongPath.status).toBe(400);
    const accept = await fetch(`${stack.graphUrl}/${CUSTOMER.domain}/adminconsent`, {
      method: "POST",
      redirect: "manual",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: SANDBOX_PROVISIONER.appId, redirect_uri: CALLBACK, state: "s-1", decision: "accept" }),
    });
    expect(accept.status).toBe(302);
    const back = new URL(accept.headers.get("location")!);
    expect(`${back.origin}${back.pathname}`).toBe(CALLBACK);
    expect(Object.fromEntries(back.searchParams)).toEqual({ admin_consent: "True", tenant: CUSTOMER.tenantId, state: "s-1" });

    stack.servers.graph.requests.length = 0;
    const inB = provisionerIn(CUSTOMER.tenantId);
    const graphClaims = claimsOf((await inB.getToken("https://graph.microsoft.com/.default")).token);
    expect(graphClaims).toMatchObject({ tid: CUSTOMER.tenantId, appid: SANDBOX_PROVISIONER.appId });
    expect([...graphClaims.roles].sort()).toEqual([...DEFAULT_IDENTITY_GRAPH_ROLES].sort());
    const exchangeClaims = claimsOf((await inB.getToken(`${stack.exchangeUrl}/.default`)).token);
    expect(exchangeClaims).toMatchObject({ tid: CUSTOMER.tenantId, appid: SANDBOX_PROVISIONER.appId, roles: ["Exchange.ManageAsApp"] });
    // ... which tenant B's Exchange organization accepts (the home one does not).
    const exchange = (tenant: string, domain: string) =>
      inB.getToken(`${stack.exchangeUrl}/.default`).then((t) =>
        fetch(`${stack.exchangeUrl}/adminapi/beta/${tenant}/InvokeCommand`, {
          method: "POST",
          headers: { Authorization: `Bearer ${t.token}`, "Content-Type": "application/json", "X-AnchorMailbox": `UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@${domain}` },
          body: JSON.stringify({ CmdletInput: { CmdletName: "Get-OrganizationConfig", Parameters: {} } }),
        }),
      );
    expect((await exchange(CUSTOMER.domain, CUSTOMER.domain)).status).toBe(200);
    expect((await exchange(HOME, "sandbox.onmicrosoft.com")).status).toBe(401);
    // The token log: client-assertion grants at tenant B's token endpoint; the assertion is the managed identity's
    // token for api://AzureADTokenExchange, which MSAL serves from its cache after the first request.
    expect(tokenRequests()).toEqual([`/${CUSTOMER.tenantId}/oauth2/v2.0/token`, `/${CUSTOMER.tenantId}/oauth2/v2.0/token`]);
    const state = await graphState();
    expect(state.tenants[CUSTOMER.tenantId].servicePrincipals.find((sp: any) => sp.appId === SANDBOX_PROVISIONER.appId)).toBeDefined();
    expect(state.servicePrincipals.find((sp: any) => sp.appId === SANDBOX_PROVISIONER.appId)).toBeUndefined();
  });

  test("DefaultAzureCredential as the app builds it keeps signing in with the client secret (EnvironmentCredential), not the identity endpoint", async () => {
    stack.servers.graph.requests.length = 0;
    const credential = new sdk.DefaultAzureCredential({
      managedIdentityClientId: settings.AZURE_CLIENT_ID,
      tenantId: settings.AZURE_TENANT_ID,
      authorityHost: settings.AZURE_AUTHORITY_HOST,
      disableInstanceDiscovery: true,
    });
    const claims = claimsOf((await credential.getToken("https://graph.microsoft.com/.default")).token);
    expect(claims).toMatchObject({ tid: HOME, appid: SANDBOX_IDENTITY.clientId, appidacr: "1" });
    expect(tokenRequests()).toEqual([`/${HOME}/oauth2/v2.0/token`]);
  });
});
