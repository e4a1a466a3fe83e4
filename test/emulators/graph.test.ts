// The Microsoft Graph emulator against the real clients over HTTPS: @azure/identity's ClientSecretCredential
// against the emulated token endpoint, and @microsoft/microsoft-graph-client v3 (with its RetryHandler) with
// the emulator as baseUrl and `localhost` in customHosts so the token is sent. NODE_EXTRA_CA_CERTS (set by
// dev/run-tests.ts) makes both trust the sandbox CA.
import { ClientSecretCredential } from "@azure/identity";
import { Client, ResponseType } from "@microsoft/microsoft-graph-client";
import { TokenCredentialAuthenticationProvider } from "@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials";
import { EmulatorContext, SANDBOX_IDENTITY, sandboxContext } from "../../dev/emulators/context";
import { createGraphEmulator, EXCHANGE_ONLINE_APP_ID, MICROSOFT_GRAPH_APP_ID } from "../../dev/emulators/graph";
import { EmulatorServer, faultsFromEnvironment, setFaults } from "../../dev/emulators/server";

const ctx: EmulatorContext = sandboxContext();
const { tenantId, clientId, clientSecret } = SANDBOX_IDENTITY;
const USER_READ = "e1fe6dd8-ba31-4d61-89e7-88639da4683d";
const EWS_EXCHANGE = "3b5f3d61-589b-4a3c-a359-5dd4b5ee5bd5";
const REDIRECT = "https://acme.creatio.com/0/rest/Office365OAuthAuthenticator/ProcessAuthenticationCode";

let server: EmulatorServer;
let base: string;

beforeAll(async () => {
  server = createGraphEmulator(ctx);
  base = await server.listen(0);
});
afterAll(() => server.close());
beforeEach(async () => {
  await fetch(`${base}/_emulator/reset`, { method: "POST" });
});

const credential = () => new ClientSecretCredential(tenantId, clientId, clientSecret, { authorityHost: base, disableInstanceDiscovery: true });

function graphClient(cred = credential(), scope = "https://graph.microsoft.com/.default"): Client {
  return Client.initWithMiddleware({
    authProvider: new TokenCredentialAuthenticationProvider(cred, { scopes: [scope] }),
    baseUrl: base,
    customHosts: new Set(["localhost"]),
  });
}

async function graphToken(scope = "https://graph.microsoft.com/.default"): Promise<string> {
  return (await credential().getToken(scope)).token;
}

/** A raw request with a Graph token, for what the SDK client hides (status codes, malformed bodies). */
async function raw(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const response = await fetch(`${base}/v1.0${path}`, {
    method,
    headers: { Authorization: `Bearer ${await graphToken()}`, "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

const state = async () => (await (await fetch(`${base}/_emulator/state`)).json()) as any;

const creatioApp = (displayName = "Creatio") => ({
  displayName,
  signInAudience: "AzureADMyOrg",
  web: { redirectUris: [REDIRECT] },
  requiredResourceAccess: [
    { resourceAppId: EXCHANGE_ONLINE_APP_ID, resourceAccess: [{ id: EWS_EXCHANGE, type: "Scope" }] },
    { resourceAppId: MICROSOFT_GRAPH_APP_ID, resourceAccess: [{ id: USER_READ, type: "Scope" }] },
  ],
});

/** GraphError thrown by the SDK client, for assertions; its `body` is Graph's `error` object (code, message, details, innerError). */
async function graphFailure(promise: Promise<unknown>): Promise<{ statusCode: number; code: string; body: any }> {
  try {
    await promise;
  } catch (error: any) {
    return { statusCode: error.statusCode, code: error.code, body: typeof error.body === "string" ? JSON.parse(error.body) : error.body };
  }
  throw new Error("expected the Graph call to fail");
}

test("upsert application by uniqueName: 201 with the body when created, 204 when updated; 404 without Prefer", async () => {
  const client = graphClient();
  const path = "/applications(uniqueName='creatio-acme-creatio-com')";
  const first: Response = await client.api(path).header("Prefer", "create-if-missing").responseType(ResponseType.RAW).patch(creatioApp());
  expect(first.status).toBe(201);
  const created: any = await first.json();
  expect(created).toMatchObject({ displayName: "Creatio", uniqueName: "creatio-acme-creatio-com", signInAudience: "AzureADMyOrg", passwordCredentials: [] });
  expect(created.web.redirectUris).toEqual([REDIRECT]);
  expect(created.id).toMatch(/^[0-9a-f-]{36}$/);
  expect(created.appId).toMatch(/^[0-9a-f-]{36}$/);

  const second: Response = await client.api(path).header("Prefer", "create-if-missing").responseType(ResponseType.RAW).patch({ ...creatioApp("Creatio mail") });
  expect(second.status).toBe(204);
  const byAppId = await client.api(`/applications(appId='${created.appId}')`).get();
  expect(byAppId).toMatchObject({ id: created.id, displayName: "Creatio mail" });
  // complex values merge (web keeps implicitGrantSettings), collections are replaced.
  expect(byAppId.web.implicitGrantSettings).toEqual({ enableAccessTokenIssuance: false, enableIdTokenIssuance: false });

  const missing = await graphFailure(client.api("/applications(uniqueName='nope')").patch({ displayName: "x" }));
  expect(missing).toMatchObject({ statusCode: 404, code: "Request_ResourceNotFound" });

  const list = await client.api("/applications").filter(`uniqueName eq 'creatio-acme-creatio-com'`).select("id,appId,displayName").get();
  expect(list.value).toEqual([{ id: created.id, appId: created.appId, displayName: "Creatio mail" }]);
  expect((await state()).applications).toHaveLength(1);
});

test("application validation: displayName required, passwordCredentials refused, unknown scope id refused, malformed JSON, unknown id", async () => {
  const noName = await raw("PATCH", "/applications(uniqueName='x1')", { signInAudience: "AzureADMyOrg" }, { Prefer: "create-if-missing" });
  expect(noName.status).toBe(400);
  expect(noName.body.error.code).toBe("Request_BadRequest");
  expect(noName.body.error.innerError).toEqual(expect.objectContaining({ "request-id": expect.any(String), "client-request-id": expect.any(String), date: expect.any(String) }));
  expect((await raw("POST", "/applications", {})).status).toBe(400);

  expect((await raw("POST", "/applications", { displayName: "x", passwordCredentials: [] })).status).toBe(400);
  const created = await raw("POST", "/applications", { displayName: "x" });
  expect(created.status).toBe(201);
  expect((await raw("PATCH", `/applications/${created.body.id}`, { passwordCredentials: [{ displayName: "p" }] })).status).toBe(400);

  // Graph's own EWS scope id under Exchange Online is wrong: 400.
  const wrongScope = await raw("POST", "/applications", {
    displayName: "y",
    requiredResourceAccess: [{ resourceAppId: EXCHANGE_ONLINE_APP_ID, resourceAccess: [{ id: "9769c687-087d-48ac-9cb3-c37dde652038", type: "Scope" }] }],
  });
  expect(wrongScope.status).toBe(400);
  expect(wrongScope.body.error.message).toMatch(/requiredResourceAccess|resourceAccess/);

  const badRedirect = await raw("POST", "/applications", { displayName: "z", web: { redirectUris: ["http://acme.creatio.com/cb"] } });
  expect(badRedirect.status).toBe(400);

  const malformed = await raw("POST", "/applications", "{not json");
  expect(malformed.status).toBe(400);
  expect(malformed.body.error.code).toBe("BadRequest");

  const unknown = await raw("GET", "/applications/00000000-0000-4000-8000-000000000000");
  expect(unknown.status).toBe(404);
  expect(unknown.body.error.code).toBe("Request_ResourceNotFound");
  expect((await raw("DELETE", `/applications/${created.body.id}`)).status).toBe(204);
  expect((await raw("GET", `/applications/${created.body.id}`)).status).toBe(404);
});

test("addPassword returns secretText once; GET never does; state does; removePassword; the secret works at the token endpoint until removed", async () => {
  const client = graphClient();
  const app = await client.api("/applications").post(creatioApp());
  const end = new Date(Date.now() + 730 * 86_400_000).toISOString();
  const password = await client.api(`/applications/${app.id}/addPassword`).post({ passwordCredential: { displayName: "onboard-abc-1", endDateTime: end } });
  expect(Object.keys(password).filter((k) => !k.startsWith("@odata")).sort()).toEqual(
    ["customKeyIdentifier", "displayName", "endDateTime", "hint", "keyId", "secretText", "startDateTime"].sort(),
  );
  expect(password.secretText).toHaveLength(40);
  expect(password.hint).toBe(password.secretText.slice(0, 3));
  expect(password.displayName).toBe("onboard-abc-1");
  expect(Date.parse(password.endDateTime)).toBeCloseTo(Date.parse(end), -4);

  const read = await client.api(`/applications/${app.id}`).get();
  expect(read.passwordCredentials).toEqual([expect.objectContaining({ keyId: password.keyId, hint: password.hint, secretText: null })]);
  expect(JSON.stringify(read)).not.toContain(password.secretText);
  const s = await state();
  expect(s.applications[0].passwordCredentials[0]).toMatchObject({ keyId: password.keyId, secretText: password.secretText });

  // The app's own secret gets a token once the app has a service principal (AADSTS7000229 before).
  const tokenFor = (secret: string) =>
    fetch(`${base}/${tenantId}/oauth2/v2.0/token`, {
      method: "POST",
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: app.appId, client_secret: secret, scope: "https://graph.microsoft.com/.default" }),
    });
  expect(((await (await tokenFor(password.secretText)).json()) as any).error_codes).toEqual([7000229]);
  await client.api("/servicePrincipals").post({ appId: app.appId });
  expect((await tokenFor(password.secretText)).status).toBe(200);

  await client.api(`/applications/${app.id}/removePassword`).post({ keyId: password.keyId });
  expect((await client.api(`/applications/${app.id}`).get()).passwordCredentials).toEqual([]);
  const refused = await tokenFor(password.secretText);
  expect(refused.status).toBe(401);
  expect(((await refused.json()) as any).error_codes).toEqual([7000215]);
  const again = await graphFailure(client.api(`/applications/${app.id}/removePassword`).post({ keyId: password.keyId }));
  expect(again.statusCode).toBe(400);
});

test("a tenant app management policy caps the password lifetime", async () => {
  await fetch(`${base}/_emulator/tenant`, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ passwordLifetimeMaxDays: 180 }) });
  const client = graphClient();
  const app = await client.api("/applications").post({ displayName: "Creatio" });
  const long = await graphFailure(
    client.api(`/applications/${app.id}/addPassword`).post({ passwordCredential: { endDateTime: new Date(Date.now() + 365 * 86_400_000).toISOString() } }),
  );
  expect(long.statusCode).toBe(400);
  expect(long.body.message).toMatch(/Credential lifetime exceeds the max value allowed as per assigned policy/);
  const short = await client.api(`/applications/${app.id}/addPassword`).post({ passwordCredential: { endDateTime: new Date(Date.now() + 90 * 86_400_000).toISOString() } });
  expect(short.secretText).toBeTruthy();
});

test("service principals: seeded Microsoft Graph and Exchange Online with their scope ids; upsert by appId; admin-consent grants", async () => {
  const client = graphClient();
  const graphSp = await client.api(`/servicePrincipals(appId='${MICROSOFT_GRAPH_APP_ID}')`).select("id,oauth2PermissionScopes").get();
  expect(Object.keys(graphSp).filter((k) => !k.startsWith("@odata")).sort()).toEqual(["id", "oauth2PermissionScopes"]);
  const scopes = Object.fromEntries(graphSp.oauth2PermissionScopes.map((s: any) => [s.value, s.id]));
  expect(scopes).toMatchObject({ "User.Read": USER_READ, offline_access: "7427e0e9-2fba-42fe-b0c0-848c9e6a8182", "EWS.AccessAsUser.All": "9769c687-087d-48ac-9cb3-c37dde652038" });
  const exo = await client.api("/servicePrincipals").filter(`appId eq '${EXCHANGE_ONLINE_APP_ID}'`).get();
  expect(exo.value).toHaveLength(1);
  // `in` (filter-query-parameter.md): both resources in one read, as ensureApplication asks.
  const both = await client.api("/servicePrincipals").filter(`appId in ('${EXCHANGE_ONLINE_APP_ID}','${MICROSOFT_GRAPH_APP_ID.toUpperCase()}')`).select("id,appId").get();
  expect(both.value.map((sp: any) => sp.appId).sort()).toEqual([EXCHANGE_ONLINE_APP_ID, MICROSOFT_GRAPH_APP_ID].sort());
  expect(exo.value[0].oauth2PermissionScopes.find((s: any) => s.value === "EWS.AccessAsUser.All").id).toBe(EWS_EXCHANGE);

  const app = await client.api("/applications").post(creatioApp());
  const upsert = (body: object): Promise<Response> =>
    client.api(`/servicePrincipals(appId='${app.appId}')`).header("Prefer", "create-if-missing").responseType(ResponseType.RAW).patch(body);
  const first = await upsert({ tags: ["creatio-o365-oauth"] });
  expect(first.status).toBe(201);
  const sp: any = await first.json();
  expect(sp).toMatchObject({ appId: app.appId, displayName: "Creatio", tags: ["creatio-o365-oauth"], appOwnerOrganizationId: tenantId });
  expect((await upsert({ tags: ["creatio-o365-oauth", "x"] })).status).toBe(204);
  const duplicate = await graphFailure(client.api("/servicePrincipals").post({ appId: app.appId }));
  expect(duplicate.statusCode).toBe(400);

  // Admin consent: AllPrincipals grants from the app's SP to each resource SP.
  const grant = await client.api("/oauth2PermissionGrants").post({ clientId: sp.id, consentType: "AllPrincipals", resourceId: graphSp.id, scope: "User.Read" });
  expect(grant).toMatchObject({ clientId: sp.id, consentType: "AllPrincipals", principalId: null, resourceId: graphSp.id, scope: "User.Read" });
  const conflict = await graphFailure(client.api("/oauth2PermissionGrants").post({ clientId: sp.id, consentType: "AllPrincipals", resourceId: graphSp.id, scope: "User.Read" }));
  expect(conflict.statusCode).toBe(409);
  const patched: Response = await client.api(`/oauth2PermissionGrants/${grant.id}`).responseType(ResponseType.RAW).patch({ scope: "User.Read offline_access" });
  expect(patched.status).toBe(204);
  const found = await client.api("/oauth2PermissionGrants").filter(`clientId eq '${sp.id}' and resourceId eq '${graphSp.id}'`).get();
  expect(found.value).toEqual([expect.objectContaining({ id: grant.id, scope: "User.Read offline_access" })]);
  expect((await client.api("/oauth2PermissionGrants").filter(`clientId eq '${sp.id}' and resourceId eq '${exo.value[0].id}'`).get()).value).toEqual([]);

  const unknownClient = await graphFailure(
    client.api("/oauth2PermissionGrants").post({ clientId: "00000000-0000-4000-8000-000000000000", consentType: "AllPrincipals", resourceId: graphSp.id, scope: "User.Read" }),
  );
  expect(unknownClient).toMatchObject({ statusCode: 400, code: "Request_BadRequest" });
  await client.api(`/oauth2PermissionGrants/${grant.id}`).delete();
  expect((await graphFailure(client.api(`/oauth2PermissionGrants/${grant.id}`).get())).statusCode).toBe(404);
  expect((await state()).oauth2PermissionGrants).toEqual([]);
});

test("authorizationPolicy: GET the seed, PATCH replaces permissionGrantPoliciesAssigned wholly", async () => {
  const client = graphClient();
  const policy = await client.api("/policies/authorizationPolicy").get();
  expect(policy.id).toBe("authorizationPolicy");
  const assigned: string[] = policy.defaultUserRolePermissions.permissionGrantPoliciesAssigned;
  expect(assigned.some((p) => p.startsWith("ManagePermissionGrantsForOwnedResource."))).toBe(true);
  const next = [...assigned.filter((p) => p.startsWith("ManagePermissionGrantsForOwnedResource.")), "ManagePermissionGrantsForSelf.microsoft-user-default-low"];
  const response: Response = await client
    .api("/policies/authorizationPolicy")
    .responseType(ResponseType.RAW)
    .patch({ defaultUserRolePermissions: { permissionGrantPoliciesAssigned: next } });
  expect(response.status).toBe(204);
  const after = await client.api("/policies/authorizationPolicy").get();
  expect(after.defaultUserRolePermissions.permissionGrantPoliciesAssigned).toEqual(next);
  expect(after.defaultUserRolePermissions.allowedToCreateApps).toBe(true);
  expect((await state()).authorizationPolicy.defaultUserRolePermissions.permissionGrantPoliciesAssigned).toEqual(next);
  expect((await raw("PATCH", "/policies/authorizationPolicy", { defaultUserRolePermissions: { permissionGrantPoliciesAssigned: ["allow-everything"] } })).status).toBe(400);
});

test("tokens: a Key Vault-audience token and a missing token are refused with 401 InvalidAuthenticationToken; missing app roles give 403", async () => {
  const kv = await graphFailure(graphClient(credential(), "https://vault.azure.net/.default").api("/applications").get());
  expect(kv).toMatchObject({ statusCode: 401, code: "InvalidAuthenticationToken" });
  const none = await fetch(`${base}/v1.0/applications`);
  expect(none.status).toBe(401);
  expect(none.headers.get("www-authenticate")).toMatch(/^Bearer /);

  await fetch(`${base}/_emulator/tenant`, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ identityGraphRoles: ["Application.Read.All"] }) });
  const denied = await graphFailure(graphClient().api("/applications").post({ displayName: "x" }));
  expect(denied).toMatchObject({ statusCode: 403, code: "Authorization_RequestDenied" });
});

test("Application.ReadWrite.OwnedBy alone manages the apps the identity created but cannot read other principals (why Application.Read.All is needed)", async () => {
  await fetch(`${base}/_emulator/tenant`, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ identityGraphRoles: ["Application.ReadWrite.OwnedBy"] }) });
  const client = graphClient();
  const app = await client.api("/applications").post({ displayName: "Owned" });
  const password = await client.api(`/applications/${app.id}/addPassword`).post({});
  expect(password.secretText).toBeTruthy();
  expect((await client.api("/applications").get()).value.map((a: any) => a.id)).toEqual([app.id]);
  const graphSp = await graphFailure(client.api(`/servicePrincipals(appId='${MICROSOFT_GRAPH_APP_ID}')`).get());
  expect(graphSp).toMatchObject({ statusCode: 403, code: "Authorization_RequestDenied" });
});

test("an injected 429 with Retry-After is honoured by the Graph client's RetryHandler", async () => {
  const client = graphClient();
  await client.api("/applications").get(); // token fetched before the faults, so only Graph calls are counted
  await setFaults(base, { throttleNext: 2, retryAfterSeconds: 1, match: "^POST /v1\\.0/applications$" });
  const started = Date.now();
  const app = await client.api("/applications").post({ displayName: "Throttled" });
  expect(app.displayName).toBe("Throttled");
  expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
  const posts = server.requests.filter((r) => r.method === "POST" && r.path === "/v1.0/applications").map((r) => r.status);
  expect(posts).toEqual([429, 429, 201]);
  expect((await state()).applications).toHaveLength(1);
});

test("replication lag hides a new app from reads and makes service principal creation fail with NoBackingApplicationObject until it passes", async () => {
  const client = graphClient();
  await setFaults(base, { replicationLagMs: 1500 });
  const app = await client.api("/applications").post(creatioApp());
  const hidden = await graphFailure(client.api(`/applications/${app.id}`).get());
  expect(hidden).toMatchObject({ statusCode: 404, code: "Request_ResourceNotFound" });
  expect((await client.api("/applications").filter(`appId eq '${app.appId}'`).get()).value).toEqual([]);
  const noBacking = await graphFailure(client.api("/servicePrincipals").post({ appId: app.appId }));
  expect(noBacking.statusCode).toBe(400);
  expect(noBacking.body.details[0].code).toBe("NoBackingApplicationObject");
  // Writes by id still reach the object.
  const password = await client.api(`/applications/${app.id}/addPassword`).post({ passwordCredential: { displayName: "p" } });
  expect(password.secretText).toBeTruthy();

  await new Promise((r) => setTimeout(r, 1600));
  expect((await client.api(`/applications/${app.id}`).get()).passwordCredentials).toHaveLength(1);
  const sp = await client.api("/servicePrincipals").post({ appId: app.appId });
  expect(sp.appId).toBe(app.appId);
});

test("$batch: sub-requests go through the same routes, dependsOn orders them and a failed dependency gives 424", async () => {
  const client = graphClient();
  const result = await client.api("/$batch").post({
    requests: [
      { id: "1", method: "POST", url: "/applications", headers: { "Content-Type": "application/json" }, body: { displayName: "Batched" } },
      { id: "2", method: "GET", url: "/applications?$filter=displayName eq 'Batched'&$select=displayName", dependsOn: ["1"] },
      { id: "3", method: "GET", url: "/applications/00000000-0000-4000-8000-000000000000" },
      { id: "4", method: "GET", url: "/policies/authorizationPolicy", dependsOn: ["3"] },
    ],
  });
  const byId = Object.fromEntries(result.responses.map((r: any) => [r.id, r]));
  expect(byId["1"].status).toBe(201);
  expect(byId["2"]).toMatchObject({ status: 200, body: { value: [{ displayName: "Batched" }] } });
  expect(byId["3"]).toMatchObject({ status: 404, body: { error: { code: "Request_ResourceNotFound" } } });
  expect(byId["4"].status).toBe(424);
  expect(server.requests.filter((r) => r.via === "/v1.0/$batch").map((r) => `${r.method} ${r.path}`)).toContain("POST /v1.0/applications");

  // Graph throttles sub-requests individually: the 429 (with Retry-After) comes back inside the batch.
  await setFaults(base, { throttleNext: 1, retryAfterSeconds: 7, match: "^POST /v1\\.0/applications$" });
  const throttled = await client.api("/$batch").post({ requests: [{ id: "a", method: "POST", url: "/applications", headers: { "Content-Type": "application/json" }, body: { displayName: "T" } }] });
  expect(throttled.responses[0]).toMatchObject({ id: "a", status: 429, headers: { "Retry-After": "7" } });

  const tooMany = await raw("POST", "/$batch", { requests: Array.from({ length: 21 }, (_, i) => ({ id: String(i), method: "GET", url: "/applications" })) });
  expect(tooMany.status).toBe(400);
});

test("reset restores the seed", async () => {
  const client = graphClient();
  await client.api("/applications").post({ displayName: "gone after reset" });
  await fetch(`${base}/_emulator/reset`, { method: "POST" });
  const s = await state();
  expect(s.applications).toEqual([]);
  expect(s.servicePrincipals.map((sp: any) => sp.appId).sort()).toEqual([EXCHANGE_ONLINE_APP_ID, MICROSOFT_GRAPH_APP_ID, clientId].sort());
});

test("replicationLagOnWrites: a PATCH or addPassword right after a create 404s until the lag has passed (off by default)", async () => {
  const client = graphClient();
  await setFaults(base, { replicationLagMs: 1500, replicationLagOnWrites: true });
  const app = await client.api("/applications").post(creatioApp());
  expect(await graphFailure(client.api(`/applications/${app.id}`).patch({ notes: "n" }))).toMatchObject({ statusCode: 404, code: "Request_ResourceNotFound" });
  expect(await graphFailure(client.api(`/applications/${app.id}/addPassword`).post({}))).toMatchObject({ statusCode: 404 });
  expect((await state()).applications[0].passwordCredentials).toEqual([]);
  await new Promise((r) => setTimeout(r, 1600));
  await client.api(`/applications/${app.id}`).patch({ notes: "n" });
  expect((await client.api(`/applications/${app.id}`).get()).notes).toBe("n");
});

test("staleReadMs: after an update, reads return the object as it was for a while; the write itself is kept", async () => {
  const client = graphClient();
  const app = await client.api("/applications").post(creatioApp("Before"));
  await setFaults(base, { staleReadMs: 1200 });
  await client.api(`/applications/${app.id}`).patch({ displayName: "After" });
  const password = await client.api(`/applications/${app.id}/addPassword`).post({});
  expect((await client.api(`/applications/${app.id}`).get()).displayName).toBe("Before");
  expect((await client.api(`/applications/${app.id}`).get()).passwordCredentials).toEqual([]);
  expect((await client.api("/applications").filter("displayName eq 'Before'").get()).value).toHaveLength(1);
  expect((await state()).applications[0]).toMatchObject({ displayName: "After", passwordCredentials: [expect.objectContaining({ keyId: password.keyId })] });
  await new Promise((r) => setTimeout(r, 1300));
  const fresh = await client.api(`/applications/${app.id}`).get();
  expect(fresh.displayName).toBe("After");
  expect(fresh.passwordCredentials.map((p: any) => p.keyId)).toEqual([password.keyId]);
});

test.each([
  [400, { statusCode: 400, code: "Request_BadRequest" }],
  [404, { statusCode: 404, code: "Request_ResourceNotFound" }],
] as const)("removePassword of an unknown keyId answers %s when removePasswordUnknownKeyStatus says so", async (status, expected) => {
  const client = graphClient();
  const app = await client.api("/applications").post(creatioApp());
  if (status !== 400) await setFaults(base, { removePasswordUnknownKeyStatus: status });
  const unknown = "00000000-0000-4000-8000-0000000000aa";
  expect(await graphFailure(client.api(`/applications/${app.id}/removePassword`).post({ keyId: unknown }))).toMatchObject(expected);
});

test("removePassword of an unknown keyId answers 204 when removePasswordUnknownKeyStatus is 204, and removes nothing", async () => {
  const client = graphClient();
  const app = await client.api("/applications").post(creatioApp());
  const kept = await client.api(`/applications/${app.id}/addPassword`).post({});
  await setFaults(base, { removePasswordUnknownKeyStatus: 204 });
  const answer = await raw("POST", `/applications/${app.id}/removePassword`, { keyId: "00000000-0000-4000-8000-0000000000aa" });
  expect(answer.status).toBe(204);
  expect((await state()).applications[0].passwordCredentials.map((p: any) => p.keyId)).toEqual([kept.keyId]);
});

test("fault settings: GET answers the faults in force; unknown keys and wrong types are refused by POST and by EMULATOR_FAULTS alike", async () => {
  await setFaults(base, { latencyMs: 0, staleReadMs: 5 });
  expect(await (await fetch(`${base}/_emulator/faults`)).json()).toMatchObject({ staleReadMs: 5, replicationLagOnWrites: false, removePasswordUnknownKeyStatus: 400 });
  const post = async (body: unknown) => {
    const r = await fetch(`${base}/_emulator/faults`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    return { status: r.status, error: ((await r.json()) as any).error as string | undefined };
  };
  for (const bad of [{ latencyMS: 5 }, { down: "yes" }, { removePasswordUnknownKeyStatus: 500 }, { throttleNext: -1 }]) {
    const answer = await post(bad);
    expect(answer.status).toBe(400);
    // The same words from the environment variable, which names itself.
    expect(() => faultsFromEnvironment(JSON.stringify(bad))).toThrow(`EMULATOR_FAULTS: ${answer.error}`);
  }
  expect((await post({ latencyMS: 5 })).error).toBe("Unknown fault settings: latencyMS");
  expect(() => faultsFromEnvironment("{latencyMs:5}")).toThrow(/^EMULATOR_FAULTS is not valid JSON/);
  expect(faultsFromEnvironment('{"removePasswordUnknownKeyStatus":204}')).toEqual({ removePasswordUnknownKeyStatus: 204 });
  expect(faultsFromEnvironment(undefined)).toBeUndefined();
  expect(((await (await fetch(`${base}/_emulator/faults`)).json()) as any).staleReadMs).toBe(5); // refused posts changed nothing
});

test("deleting an application by uniqueName puts it in deleted items (list, get); restore brings it back; a deleted or unknown id is 404", async () => {
  const path = "/applications(uniqueName='creatio-o365-acme--creatio--com')";
  const created = await raw("PATCH", path, creatioApp(), { Prefer: "create-if-missing" });
  expect(created.status).toBe(201);
  const sp = await raw("POST", "/servicePrincipals", { appId: created.body.appId });
  expect(sp.status).toBe(201);
  expect((await raw("DELETE", path)).status).toBe(204);
  expect((await raw("DELETE", path)).status).toBe(404);
  expect((await raw("GET", path)).status).toBe(404);
  expect((await state()).servicePrincipals.find((s: any) => s.appId === created.body.appId)).toBeUndefined();

  const listed = await raw("GET", "/directory/deletedItems/microsoft.graph.application");
  expect(listed.status).toBe(200);
  expect(listed.body.value).toEqual([expect.objectContaining({ id: created.body.id, appId: created.body.appId, deletedDateTime: expect.any(String) })]);
  expect((await raw("GET", `/directory/deletedItems/${created.body.id}`)).body).toMatchObject({ id: created.body.id, uniqueName: "creatio-o365-acme--creatio--com" });

  const restored = await raw("POST", `/directory/deletedItems/${created.body.id}/restore`);
  expect(restored.status).toBe(200);
  expect(restored.body).toMatchObject({ id: created.body.id, deletedDateTime: null });
  expect((await raw("GET", path)).body).toMatchObject({ id: created.body.id, appId: created.body.appId });
  expect((await raw("GET", "/directory/deletedItems/microsoft.graph.application")).body.value).toEqual([]);
  expect((await raw("POST", `/directory/deletedItems/${created.body.id}/restore`)).status).toBe(404);
});
