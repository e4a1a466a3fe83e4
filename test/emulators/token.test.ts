// The emulated Entra ID token endpoint against the real @azure/identity ClientSecretCredential (MSAL inside),
// over HTTPS with the sandbox CA trusted through NODE_EXTRA_CA_CERTS (dev/run-tests.ts).
import { ClientSecretCredential } from "@azure/identity";
import { AUDIENCES, EmulatorContext, SANDBOX_IDENTITY, sandboxContext } from "../../dev/emulators/context";
import { createGraphEmulator, DEFAULT_IDENTITY_GRAPH_ROLES } from "../../dev/emulators/graph";
import { EmulatorServer } from "../../dev/emulators/server";

const ctx: EmulatorContext = sandboxContext();
const { tenantId, clientId, clientSecret } = SANDBOX_IDENTITY;

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

const credential = (secret = clientSecret, tenant = tenantId, id = clientId) =>
  new ClientSecretCredential(tenant, id, secret, { authorityHost: base, disableInstanceDiscovery: true });

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));

test("ClientSecretCredential gets a Graph token whose audience and roles follow the scope; MSAL asks only the OpenID configuration and the token endpoint", async () => {
  const { token, expiresOnTimestamp } = await credential().getToken("https://graph.microsoft.com/.default");
  const claims = claimsOf(token);
  expect(claims).toMatchObject({ aud: AUDIENCES.graph[0], tid: tenantId, appid: clientId, oid: SANDBOX_IDENTITY.objectId, idtyp: "app" });
  expect(claims.roles.sort()).toEqual([...DEFAULT_IDENTITY_GRAPH_ROLES].sort());
  expect(expiresOnTimestamp).toBeGreaterThan(Date.now() + 50 * 60_000);
  // The token verifies with the sandbox signer for Graph's audience and not for Key Vault's.
  expect(ctx.signer.check(token, AUDIENCES.graph).ok).toBe(true);
  expect(ctx.signer.check(token, AUDIENCES.keyVault).ok).toBe(false);

  const paths = server.requests.map((r) => `${r.method} ${r.path}`);
  expect(paths).toEqual([`GET /${tenantId}/v2.0/.well-known/openid-configuration`, `POST /${tenantId}/oauth2/v2.0/token`]);
  const tokenRequest = server.requests[1].body as string;
  expect(new URLSearchParams(tokenRequest).get("grant_type")).toBe("client_credentials");
});

test("a Key Vault scope gets a Key Vault-audience token without Graph roles", async () => {
  const { token } = await credential().getToken("https://vault.azure.net/.default");
  const claims = claimsOf(token);
  expect(claims.aud).toBe(AUDIENCES.keyVault[0]);
  expect(claims.roles).toBeUndefined();
  expect(ctx.signer.check(token, AUDIENCES.keyVault).ok).toBe(true);
});

test("the identity's Graph roles are configurable at run time", async () => {
  const response = await fetch(`${base}/_emulator/tenant`, {
    method: "PATCH",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ identityGraphRoles: ["Application.Read.All"] }),
  });
  expect(response.status).toBe(200);
  const { token } = await credential().getToken("https://graph.microsoft.com/.default");
  expect(claimsOf(token).roles).toEqual(["Application.Read.All"]);
});

test("a wrong client secret is refused with AADSTS7000215 (401 invalid_client)", async () => {
  await expect(credential("not-the-secret").getToken("https://graph.microsoft.com/.default")).rejects.toThrow(/AADSTS7000215/);
  const last = server.requests.at(-1)!;
  expect(last.status).toBe(401);
});

test("an unknown client is refused with AADSTS700016", async () => {
  await expect(credential(clientSecret, tenantId, "0badc0de-0000-4000-8000-000000000000").getToken("https://graph.microsoft.com/.default")).rejects.toThrow(
    /AADSTS700016/,
  );
});

test("an unknown tenant is refused with AADSTS90002", async () => {
  const otherTenant = "99999999-2222-4333-8444-555555555555";
  // MSAL fails on the tenant's OpenID configuration (as against Entra: the metadata request gets AADSTS90002).
  await expect(credential(clientSecret, otherTenant).getToken("https://graph.microsoft.com/.default")).rejects.toThrow(/endpoints_resolution_error/);
  expect(server.requests.map((r) => `${r.status} ${r.path}`)).toContain(`400 /${otherTenant}/v2.0/.well-known/openid-configuration`);
  const response = await fetch(`${base}/${otherTenant}/oauth2/v2.0/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, client_secret: clientSecret, scope: "https://graph.microsoft.com/.default" }),
  });
  expect(response.status).toBe(400);
  expect(await response.json()).toMatchObject({ error: "invalid_request", error_codes: [90002] });
});

test("Entra-shaped errors for a scope without /.default and for an unknown resource", async () => {
  const post = (scope: string) =>
    fetch(`${base}/${tenantId}/oauth2/v2.0/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, client_secret: clientSecret, scope }),
    });
  const noDefault = await post("https://graph.microsoft.com/User.Read");
  expect(noDefault.status).toBe(400);
  expect(await noDefault.json()).toMatchObject({ error: "invalid_scope", error_codes: [1002012] });
  const unknown = await post("https://unknown.example.com/.default");
  expect(unknown.status).toBe(400);
  const body: any = await unknown.json();
  expect(body).toMatchObject({ error: "invalid_resource", error_codes: [500011] });
  expect(body.error_description).toMatch(/^AADSTS500011: /);
  expect(body).toHaveProperty("trace_id");
  expect(body).toHaveProperty("correlation_id");
});
