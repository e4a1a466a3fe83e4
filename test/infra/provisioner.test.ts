/**
 * infra/provisioner.sh against the sandbox Graph emulator, through a stand-in `az` (support/fake-az/az, which
 * needs python3 with jmespath, what the real Azure CLI is built on; without it these tests are skipped):
 * it creates the multi-tenant provisioner application with its permissions, redirect URI and federated
 * credential, sets PROVISIONER_CLIENT_ID, is idempotent, corrects what differs, and `--check` reports.
 * Then the application it made does what the app needs: after an administrator's consent in the customer
 * tenant, the real ClientAssertionCredential gets tokens there with the managed identity's token.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { SANDBOX_CUSTOMER_TENANT, SANDBOX_IDENTITY, SANDBOX_IDENTITY_HEADER, sandboxContext } from "../../dev/emulators/context";
import { createGraphEmulator, EXCHANGE_ONLINE_APP_ID, MICROSOFT_GRAPH_APP_ID } from "../../dev/emulators/graph";
import { EXCHANGE_APP_ROLES, GRAPH_APP_ROLES } from "../../dev/emulators/graph/seed";
import type { EmulatorServer } from "../../dev/emulators/server";
import { REPO_ROOT } from "./support/bicep";

const FAKE_AZ_DIR = path.join(REPO_ROOT, "test", "infra", "support", "fake-az");
const SCRIPT = path.join(REPO_ROOT, "infra", "provisioner.sh");
const python = spawnSync("python3", ["-c", "import jmespath, sys; print(sys.executable)"], { encoding: "utf8" });
const canRun = python.status === 0;
/** The directory of the python3 that has jmespath, for the fake az's `#!/usr/bin/env python3`. */
const pythonDir = canRun ? path.dirname(python.stdout.trim()) : "";
const maybe = canRun ? describe : describe.skip;
if (!canRun) console.warn("test/infra/provisioner.test.ts skipped: python3 with jmespath (the fake az) is not available");

const ctx = sandboxContext();
const HOME = SANDBOX_IDENTITY.tenantId;
const FUNCTION_APP = "func-abcdefghijklm";
const UNIQUE_NAME = `provisioner-${FUNCTION_APP}`;
const REDIRECT = `https://${FUNCTION_APP}.azurewebsites.net/api/consent/callback`;
const roleIds = (roles: { value: string; id: string }[], values: string[]) => values.map((v) => roles.find((r) => r.value === v)!.id).sort();

maybe("infra/provisioner.sh", () => {
  let server: EmulatorServer;
  let base: string;
  let dir: string;

  beforeAll(async () => {
    server = createGraphEmulator(ctx);
    base = await server.listen(0);
    dir = mkdtempSync(path.join(os.tmpdir(), "provisioner-"));
  });
  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the script as azd's hook would, with only the fake az on PATH (no azd); not spawnSync: the emulator answers in this process. */
  function run(...args: string[]): Promise<{ status: number | null; out: string }> {
    const child = spawn("sh", [SCRIPT, "--graph-url", base, "--resource-group", "rg-test", ...args], {
      env: {
        PATH: `${FAKE_AZ_DIR}:${pythonDir}:/usr/bin:/bin`,
        HOME: dir,
        AZURE_IDENTITY_PRINCIPAL_ID: SANDBOX_IDENTITY.objectId,
        AZURE_FUNCTION_APP_NAME: FUNCTION_APP,
        FAKE_AZ_AUTHORITY: base,
        FAKE_AZ_CA: ctx.tls.caCertPath,
        FAKE_AZ_TENANT: HOME,
        FAKE_AZ_CLIENT_ID: SANDBOX_IDENTITY.clientId,
        FAKE_AZ_CLIENT_SECRET: SANDBOX_IDENTITY.clientSecret,
        FAKE_AZ_SETTINGS: path.join(dir, "appsettings.json"),
        FAKE_AZ_LOG: path.join(dir, "az.log"),
      },
    });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.stderr.on("data", (chunk) => (out += chunk));
    return new Promise((resolve) => child.on("close", (status) => resolve({ status, out })));
  }
  const state = async (): Promise<any> => (await fetch(`${base}/_emulator/state`)).json();
  const provisioner = async () => {
    const s = await state();
    const apps = s.applications.filter((a: any) => a.uniqueName === UNIQUE_NAME);
    expect(apps).toHaveLength(1);
    return { app: apps[0], fics: s.federatedIdentityCredentials[apps[0].id] ?? [] };
  };
  const settings = () => JSON.parse(readFileSync(path.join(dir, "appsettings.json"), "utf8"));

  test("creates the multi-tenant application, its permissions, redirect URI and federated credential, and sets PROVISIONER_CLIENT_ID", async () => {
    const check = await run("--check", "--ews-access", "manage");
    expect(check.status).toBe(1);
    expect(check.out).toContain(`MISSING application ${UNIQUE_NAME}`);

    const first = await run("--ews-access", "manage");
    expect(first).toMatchObject({ status: 0 });
    const { app, fics } = await provisioner();
    expect(app).toMatchObject({ signInAudience: "AzureADMultipleOrgs", displayName: `${FUNCTION_APP} provisioner (creatio-o365-oauth)`, web: { redirectUris: [REDIRECT] } });
    const access = (resourceAppId: string) => app.requiredResourceAccess.find((r: any) => r.resourceAppId === resourceAppId)?.resourceAccess ?? [];
    expect(access(MICROSOFT_GRAPH_APP_ID).map((a: any) => a.id).sort()).toEqual(
      roleIds(GRAPH_APP_ROLES, ["Application.ReadWrite.OwnedBy", "Application.Read.All", "DelegatedPermissionGrant.ReadWrite.All", "Organization.Read.All"]),
    );
    expect(access(EXCHANGE_ONLINE_APP_ID)).toEqual([{ id: roleIds(EXCHANGE_APP_ROLES, ["Exchange.ManageAsApp"])[0], type: "Role" }]);
    expect([...access(MICROSOFT_GRAPH_APP_ID), ...access(EXCHANGE_ONLINE_APP_ID)].every((a: any) => a.type === "Role")).toBe(true);
    expect(fics).toEqual([
      expect.objectContaining({ name: "function-app-identity", issuer: `https://login.microsoftonline.com/${HOME}/v2.0`, subject: SANDBOX_IDENTITY.objectId, audiences: ["api://AzureADTokenExchange"] }),
    ]);
    expect(settings()).toEqual({ PROVISIONER_CLIENT_ID: app.appId });
    expect(first.out).toContain("Exchange Administrator");

    const again = await run("--check", "--ews-access", "manage");
    expect(again.status).toBe(0);
    expect(again.out).not.toContain("MISSING");
  });

  test("is idempotent, and corrects a federated credential, permissions and a redirect URI that differ", async () => {
    const before = await provisioner();
    expect((await run("--ews-access", "manage")).status).toBe(0);
    const same = await provisioner();
    expect(same.app.appId).toBe(before.app.appId);
    expect(same.fics).toHaveLength(1);

    // Someone changed the credential's subject: --check says so, a run puts it back (PATCH by id).
    const token = await (
      await fetch(`${base}/${HOME}/oauth2/v2.0/token`, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "client_credentials", client_id: SANDBOX_IDENTITY.clientId, client_secret: SANDBOX_IDENTITY.clientSecret, scope: "https://graph.microsoft.com/.default" }),
      })
    ).json();
    const patched = await fetch(`${base}/v1.0/applications/${same.app.id}/federatedIdentityCredentials/${same.fics[0].id}`, {
      method: "PATCH",
      headers: { Authorization: `Bearer ${(token as any).access_token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ subject: "00000000-0000-4000-8000-000000000000" }),
    });
    expect(patched.status).toBe(204);
    const drifted = await run("--check", "--ews-access", "manage");
    expect(drifted.status).toBe(1);
    expect(drifted.out).toContain("MISSING federated credential function-app-identity");
    expect((await run("--ews-access", "manage")).status).toBe(0);
    expect((await provisioner()).fics).toEqual([expect.objectContaining({ id: same.fics[0].id, subject: SANDBOX_IDENTITY.objectId })]);

    // EWS off: Organization.Read.All and Exchange.ManageAsApp are no longer asked for; another host name.
    expect((await run("--ews-access", "off", "--redirect-uri", "https://api.contoso.com/api/consent/callback")).status).toBe(0);
    const off = (await provisioner()).app;
    expect(off.requiredResourceAccess.map((r: any) => r.resourceAppId)).toEqual([MICROSOFT_GRAPH_APP_ID]);
    expect(off.requiredResourceAccess[0].resourceAccess.map((a: any) => a.id).sort()).toEqual(
      roleIds(GRAPH_APP_ROLES, ["Application.ReadWrite.OwnedBy", "Application.Read.All", "DelegatedPermissionGrant.ReadWrite.All"]),
    );
    expect(off.web.redirectUris).toEqual(["https://api.contoso.com/api/consent/callback"]);
    expect((await run("--ews-access", "manage")).status).toBe(0);
  });

  test("the application it made works: consented in the customer tenant, the managed identity's token gets tokens there", async () => {
    const { app } = await provisioner();
    const consent = await fetch(`${base}/${SANDBOX_CUSTOMER_TENANT.tenantId}/adminconsent`, {
      method: "POST",
      redirect: "manual",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: app.appId, redirect_uri: REDIRECT, state: "x", decision: "accept" }),
    });
    expect(consent.status).toBe(302);
    expect(new URL(consent.headers.get("location")!).searchParams.get("admin_consent")).toBe("True");

    const saved = { endpoint: process.env.IDENTITY_ENDPOINT, header: process.env.IDENTITY_HEADER };
    process.env.IDENTITY_ENDPOINT = `${base}/msi/token`;
    process.env.IDENTITY_HEADER = SANDBOX_IDENTITY_HEADER;
    try {
      const { ClientAssertionCredential, ManagedIdentityCredential } = await import("@azure/identity");
      const mi = new ManagedIdentityCredential({ clientId: SANDBOX_IDENTITY.clientId });
      const credential = new ClientAssertionCredential(SANDBOX_CUSTOMER_TENANT.tenantId, app.appId, async () => (await mi.getToken("api://AzureADTokenExchange/.default")).token, {
        authorityHost: base,
        disableInstanceDiscovery: true,
      });
      const token = await credential.getToken("https://graph.microsoft.com/.default");
      const claims = JSON.parse(Buffer.from(token.token.split(".")[1], "base64url").toString());
      expect(claims).toMatchObject({ tid: SANDBOX_CUSTOMER_TENANT.tenantId, appid: app.appId });
      expect([...claims.roles].sort()).toEqual(["Application.Read.All", "Application.ReadWrite.OwnedBy", "DelegatedPermissionGrant.ReadWrite.All", "Organization.Read.All"]);
    } finally {
      for (const [name, value] of [["IDENTITY_ENDPOINT", saved.endpoint], ["IDENTITY_HEADER", saved.header]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});
