// The Key Vault emulator against the real SecretClient over HTTPS (the sandbox CA is trusted via
// NODE_EXTRA_CA_CERTS, set by dev/run-tests.ts). The credential issues tokens with the sandbox
// signer directly: a real TokenCredential, and the client still performs the challenge handshake.
import type { AccessToken, TokenCredential } from "@azure/core-auth";
import { SecretClient } from "@azure/keyvault-secrets";
import { AUDIENCES, EmulatorContext, SANDBOX_IDENTITY, sandboxContext } from "../../dev/emulators/context";
import { createKeyVaultEmulator } from "../../dev/emulators/keyVault";
import { EmulatorServer, LoggedRequest, setFaults } from "../../dev/emulators/server";

const AUTHORITY = "https://localhost:7101";

const ctx: EmulatorContext = sandboxContext();

/** A credential that records the scopes and tenant it was asked for and issues tokens for `audience`. */
function signerCredential(audience: string, asked: { scopes: string[]; tenantId?: string }[] = []): TokenCredential {
  return {
    async getToken(scopes, options): Promise<AccessToken> {
      asked.push({ scopes: ([] as string[]).concat(scopes), tenantId: options?.tenantId });
      const { token, expiresIn } = ctx.signer.issue({
        aud: audience,
        iss: `https://sts.windows.net/${SANDBOX_IDENTITY.tenantId}/`,
        tid: SANDBOX_IDENTITY.tenantId,
        appid: SANDBOX_IDENTITY.clientId,
        oid: SANDBOX_IDENTITY.objectId,
      });
      return { token, expiresOnTimestamp: Date.now() + expiresIn * 1000 };
    },
  };
}

let server: EmulatorServer;
let vaultUrl: string;
let client: SecretClient;
const asked: { scopes: string[]; tenantId?: string }[] = [];

const requests = async (): Promise<LoggedRequest[]> => (await (await fetch(`${vaultUrl}/_emulator/requests`)).json()) as LoggedRequest[];
const emulatorState = async () => (await (await fetch(`${vaultUrl}/_emulator/state`)).json()) as { secrets: Record<string, any> };

beforeAll(async () => {
  server = createKeyVaultEmulator(ctx, { authorityHost: () => AUTHORITY });
  vaultUrl = await server.listen(0);
  client = new SecretClient(vaultUrl, signerCredential(AUDIENCES.keyVault[0], asked), { disableChallengeResourceVerification: true });
});

afterAll(async () => {
  await server.close();
});

beforeEach(async () => {
  await fetch(`${vaultUrl}/_emulator/reset`, { method: "POST" });
});

test("the challenge names the authority and tenant, the client asks for the vault scope", async () => {
  const raw = await fetch(`${vaultUrl}/secrets?api-version=7.5`);
  expect(raw.status).toBe(401);
  expect(raw.headers.get("www-authenticate")).toBe(
    `Bearer authorization="${AUTHORITY}/${SANDBOX_IDENTITY.tenantId}", resource="https://vault.azure.net"`,
  );
  expect(await raw.json()).toEqual({ error: { code: "Unauthorized", message: expect.stringContaining("missing a Bearer") } });

  await client.setSecret("first", "one");
  expect(asked.at(-1)).toEqual({ scopes: ["https://vault.azure.net/.default"], tenantId: SANDBOX_IDENTITY.tenantId });
});

test("set, get latest and by version, state holds every version", async () => {
  const expiresOn = new Date(Date.now() + 30 * 24 * 3600 * 1000);
  const v1 = await client.setSecret("site-a", "secret-1", { contentType: "text/plain; creatio-o365-oauth", tags: { host: "a.creatio.com" }, expiresOn });
  expect(v1.properties.id).toBe(`${vaultUrl}/secrets/site-a/${v1.properties.version}`);
  expect(v1.properties.version).toMatch(/^[0-9a-f]{32}$/);
  expect(v1.properties.expiresOn?.getTime()).toBe(Math.floor(expiresOn.getTime() / 1000) * 1000);
  // Purge protection is on, as in infra/resources.bicep: soft delete without purge.
  expect(v1.properties.recoveryLevel).toBe("Recoverable");
  const v2 = await client.setSecret("site-a", "secret-2");
  expect(v2.properties.version).not.toBe(v1.properties.version);

  expect((await client.getSecret("site-a")).value).toBe("secret-2");
  const old = await client.getSecret("site-a", { version: v1.properties.version });
  expect(old.value).toBe("secret-1");
  expect(old.properties.tags).toEqual({ host: "a.creatio.com" });
  expect(old.properties.contentType).toBe("text/plain; creatio-o365-oauth");
  // Names are case-insensitive in Key Vault.
  expect((await client.getSecret("SITE-A")).value).toBe("secret-2");

  await expect(client.getSecret("nope")).rejects.toMatchObject({ statusCode: 404, code: "SecretNotFound" });

  const state = await emulatorState();
  expect(state.secrets["site-a"].versions.map((v: any) => v.value)).toEqual(["secret-1", "secret-2"]);
  expect(state.secrets["site-a"].versions[0]).toMatchObject({ version: v1.properties.version, tags: { host: "a.creatio.com" } });
});

test("list properties pages with nextLink and never carries values; list versions", async () => {
  for (let i = 0; i < 5; i++) await client.setSecret(`s${i}`, `value-${i}`, { tags: { i: String(i) } });
  await client.setSecret("s0", "value-0b");

  const pages: string[][] = [];
  for await (const page of client.listPropertiesOfSecrets().byPage({ maxPageSize: 2 })) pages.push(page.map((p) => p.name));
  expect(pages).toEqual([["s0", "s1"], ["s2", "s3"], ["s4"]]);

  const all = [];
  for await (const p of client.listPropertiesOfSecrets()) all.push(p);
  expect(all).toHaveLength(5);
  // s0's latest version was set without tags: tags belong to a version.
  expect(all[0]).toMatchObject({ name: "s0", id: `${vaultUrl}/secrets/s0`, tags: undefined, enabled: true });
  expect(all[1]).toMatchObject({ name: "s1", id: `${vaultUrl}/secrets/s1`, tags: { i: "1" } });

  // The wire answer has no `value` anywhere.
  const listing = (await requests()).filter((r) => r.method === "GET" && r.path === "/secrets" && r.status === 200);
  expect(listing.length).toBeGreaterThanOrEqual(3);

  const versions = [];
  for await (const v of client.listPropertiesOfSecretVersions("s0")) versions.push(v);
  expect(versions).toHaveLength(2);
  expect(versions.every((v) => v.id === `${vaultUrl}/secrets/s0/${v.version}`)).toBe(true);
  expect(versions.some((v) => "value" in v)).toBe(false);
});

test("raw list answer: SecretItem shape without values, nextLink absolute", async () => {
  for (let i = 0; i < 3; i++) await client.setSecret(`raw${i}`, `value-${i}`);
  const { token } = ctx.signer.issue({ aud: AUDIENCES.keyVault[0], iss: "x", tid: SANDBOX_IDENTITY.tenantId, appid: "a", oid: SANDBOX_IDENTITY.objectId });
  const answer = await fetch(`${vaultUrl}/secrets?api-version=2025-07-01&maxresults=2`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await answer.json()) as { value: any[]; nextLink: string };
  expect(body.value).toHaveLength(2);
  expect(JSON.stringify(body)).not.toContain("value-");
  expect(body.value[0]).toEqual({ id: `${vaultUrl}/secrets/raw0`, attributes: expect.objectContaining({ enabled: true, created: expect.any(Number) }) });
  expect(body.nextLink).toMatch(new RegExp(`^${vaultUrl}/secrets\\?api-version=2025-07-01&%24skiptoken=`));
});

test("update properties changes tags and enabled without a new version", async () => {
  const v1 = await client.setSecret("site-b", "secret", { tags: { state: "current" } });
  const updated = await client.updateSecretProperties("site-b", v1.properties.version!, { tags: { state: "rotating", keyId: "k" } });
  expect(updated.tags).toEqual({ state: "rotating", keyId: "k" });
  expect(updated.version).toBe(v1.properties.version);
  const versions = [];
  for await (const v of client.listPropertiesOfSecretVersions("site-b")) versions.push(v);
  expect(versions).toHaveLength(1);
  expect((await client.getSecret("site-b")).properties.tags).toEqual({ state: "rotating", keyId: "k" });

  await client.updateSecretProperties("site-b", v1.properties.version!, { enabled: false });
  await expect(client.getSecret("site-b")).rejects.toMatchObject({ statusCode: 403, code: "Forbidden" });
});

test("more than 15 tags or a 513-character tag value is refused with 400", async () => {
  const tags = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`t${i}`, "x"]));
  await expect(client.setSecret("many", "v", { tags })).rejects.toMatchObject({ statusCode: 400, code: "BadParameter" });
  await expect(client.setSecret("long", "v", { tags: { t: "x".repeat(513) } })).rejects.toMatchObject({ statusCode: 400 });
  await client.setSecret("ok", "v", { tags: { t: "x".repeat(512) } });
});

test("soft delete reserves the name (409) until purge; recover brings it back", async () => {
  await client.setSecret("gone", "v1");
  const poller = await client.beginDeleteSecret("gone");
  const deleted = await poller.pollUntilDone();
  expect(deleted.recoveryId).toBe(`${vaultUrl}/deletedsecrets/gone`);
  expect(deleted.deletedOn).toBeInstanceOf(Date);
  expect(deleted.properties.scheduledPurgeDate!.getTime()).toBeGreaterThan(Date.now() + 89 * 24 * 3600 * 1000);

  await expect(client.getSecret("gone")).rejects.toMatchObject({ statusCode: 404 });
  await expect(client.setSecret("gone", "v2")).rejects.toMatchObject({
    statusCode: 409,
    code: "Conflict",
    message: expect.stringContaining("deleted but recoverable state"),
  });
  expect((await client.getDeletedSecret("gone")).name).toBe("gone");
  const deletedNames = [];
  for await (const d of client.listDeletedSecrets()) deletedNames.push(d.name);
  expect(deletedNames).toEqual(["gone"]);
  expect((await emulatorState()).secrets.gone.deleted).toMatchObject({ recoveryId: `${vaultUrl}/deletedsecrets/gone` });

  // Purge protection (on by default) refuses the purge; with it off the name is freed.
  await expect(client.purgeDeletedSecret("gone")).rejects.toMatchObject({ statusCode: 403, code: "Forbidden", message: expect.stringContaining("purge protection is enabled") });
  expect((await client.getDeletedSecret("gone")).name).toBe("gone");
  await fetch(`${vaultUrl}/_emulator/vault`, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ purgeProtection: false }) });
  await client.purgeDeletedSecret("gone");
  await expect(client.getDeletedSecret("gone")).rejects.toMatchObject({ statusCode: 404, code: "SecretNotFound" });
  expect((await client.setSecret("gone", "v2")).value).toBe("v2");

  await client.setSecret("back", "kept");
  await (await client.beginDeleteSecret("back")).pollUntilDone();
  await (await client.beginRecoverDeletedSecret("back")).pollUntilDone();
  expect((await client.getSecret("back")).value).toBe("kept");
});

test("a Graph-audience token is refused with 401", async () => {
  const graphClient = new SecretClient(vaultUrl, signerCredential(AUDIENCES.graph[0]), { disableChallengeResourceVerification: true });
  await expect(graphClient.getSecret("anything")).rejects.toMatchObject({ statusCode: 401 });
});

test("429 with Retry-After is retried by the SDK", async () => {
  await client.setSecret("busy", "v");
  await fetch(`${vaultUrl}/_emulator/requests`, { method: "DELETE" });
  await setFaults(vaultUrl, { throttleNext: 1, retryAfterSeconds: 1, match: "^GET /secrets/busy" });
  const started = Date.now();
  expect((await client.getSecret("busy")).value).toBe("v");
  expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  const statuses = (await requests()).filter((r) => r.path.startsWith("/secrets/busy")).map((r) => r.status);
  expect(statuses).toEqual([429, 200]);
});

test("replication lag hides a new version from get-latest and list", async () => {
  // Lag hides what was written less than replicationLagMs ago, so v1 must be older than that.
  const v1 = await client.setSecret("lagging", "old");
  await new Promise((r) => setTimeout(r, 1200));
  await setFaults(vaultUrl, { replicationLagMs: 1000 });
  const v2 = await client.setSecret("lagging", "new");
  await client.setSecret("brand-new", "x");

  expect((await client.getSecret("lagging")).value).toBe("old");
  await expect(client.getSecret("brand-new")).rejects.toMatchObject({ statusCode: 404 });
  const listed = [];
  for await (const p of client.listPropertiesOfSecrets()) listed.push(p);
  expect(listed.map((p) => [p.name, p.version])).toEqual([["lagging", undefined]]);
  // By version is an exact address: answered.
  expect((await client.getSecret("lagging", { version: v2.properties.version })).value).toBe("new");

  await new Promise((r) => setTimeout(r, 1100));
  expect((await client.getSecret("lagging")).properties.version).toBe(v2.properties.version);
  expect((await client.getSecret("brand-new")).value).toBe("x");
  expect(v1.properties.version).not.toBe(v2.properties.version);
});

test("Azure RBAC: without a Secrets role the caller gets 403 Forbidden (ForbiddenByRbac); Secrets User reads but cannot write", async () => {
  await client.setSecret("guarded", "v");
  const principal = SANDBOX_IDENTITY.objectId;
  const assign = (roles: string[]) =>
    fetch(`${vaultUrl}/_emulator/role-assignments/${principal}`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ roles }) });
  expect(await (await fetch(`${vaultUrl}/_emulator/role-assignments`)).json()).toEqual({ [principal]: ["Key Vault Secrets Officer"] });

  expect((await assign([])).status).toBe(200);
  const refused = await client.getSecret("guarded").catch((e) => e);
  expect(refused).toMatchObject({ statusCode: 403, code: "Forbidden" });
  expect(refused.message).toContain("Caller is not authorized to perform action on resource.");
  expect(refused.message).toContain(`oid=${principal}`);
  expect(refused.message).toContain("Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'");
  // Key Vault's error shape, as on the wire.
  const { token } = ctx.signer.issue({ aud: AUDIENCES.keyVault[0], iss: "x", tid: SANDBOX_IDENTITY.tenantId, appid: "a", oid: principal });
  const wire = await fetch(`${vaultUrl}/secrets/guarded?api-version=7.5`, { headers: { authorization: `Bearer ${token}` } });
  expect(wire.status).toBe(403);
  expect(await wire.json()).toEqual({ error: { code: "Forbidden", message: expect.stringContaining("DeniedWithNoValidRBAC"), innererror: { code: "ForbiddenByRbac" } } });
  const listing = client.listPropertiesOfSecrets()[Symbol.asyncIterator]();
  await expect(listing.next()).rejects.toMatchObject({ statusCode: 403 });

  await assign(["Key Vault Secrets User"]);
  expect((await client.getSecret("guarded")).value).toBe("v");
  await expect(client.setSecret("guarded", "w")).rejects.toMatchObject({ statusCode: 403, message: expect.stringContaining("secrets/setSecret/action") });

  expect((await assign(["Owner"])).status).toBe(400); // not a data plane role
  // reset restores the sandbox identity's role
  await fetch(`${vaultUrl}/_emulator/reset`, { method: "POST" });
  await client.setSecret("guarded", "w");
});

test("contentType longer than 255 characters is refused with 400 on set and update", async () => {
  await expect(client.setSecret("typed", "v", { contentType: "x".repeat(256) })).rejects.toMatchObject({ statusCode: 400, code: "BadParameter" });
  const ok = await client.setSecret("typed", "v", { contentType: "x".repeat(255) });
  await expect(client.updateSecretProperties("typed", ok.properties.version!, { contentType: "y".repeat(256) })).rejects.toMatchObject({ statusCode: 400 });
  expect((await client.getSecret("typed")).properties.contentType).toBe("x".repeat(255));
});

test("versions of an unknown or deleted name are 404 SecretNotFound", async () => {
  const versions = client.listPropertiesOfSecretVersions("never-was")[Symbol.asyncIterator]();
  await expect(versions.next()).rejects.toMatchObject({ statusCode: 404, code: "SecretNotFound" });
  await client.setSecret("was", "v");
  await (await client.beginDeleteSecret("was")).pollUntilDone();
  await expect(client.listPropertiesOfSecretVersions("was")[Symbol.asyncIterator]().next()).rejects.toMatchObject({ statusCode: 404 });
});

test("paging a large vault: every secret exactly once, in order, also when secrets are added between pages", async () => {
  const local = createKeyVaultEmulator(ctx, {
    authorityHost: () => AUTHORITY,
    seed: Array.from({ length: 600 }, (_, i) => ({ name: `site-${String(i).padStart(4, "0")}`, value: "v" })),
  });
  const url = await local.listen(0);
  try {
    const c = new SecretClient(url, signerCredential(AUDIENCES.keyVault[0]), { disableChallengeResourceVerification: true });
    await c.setSecret("site-0100", "deleted-one");
    await (await c.beginDeleteSecret("site-0100")).pollUntilDone();
    const names: string[] = [];
    let pages = 0;
    for await (const page of c.listPropertiesOfSecrets().byPage()) {
      pages++;
      names.push(...page.map((p) => p.name));
      // Added mid-sweep: after the cursor it shows up, before it it does not repeat anything.
      if (pages === 2) {
        await c.setSecret("site-0000a", "behind the cursor");
        await c.setSecret("site-9999", "ahead of the cursor");
      }
    }
    const expected = Array.from({ length: 600 }, (_, i) => `site-${String(i).padStart(4, "0")}`).filter((n) => n !== "site-0100");
    expect(names).toEqual([...expected, "site-9999"]);
    expect(pages).toBe(24); // 600 secrets, 25 a page
  } finally {
    await local.close();
  }
});
