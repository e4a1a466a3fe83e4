// The Exchange Online admin API emulator over HTTPS with plain fetch (the app's client is fetch too).
import { ClientSecretCredential } from "@azure/identity";
import { AUDIENCES, EmulatorContext, SANDBOX_CUSTOMER_TENANT, SANDBOX_IDENTITY, SANDBOX_PROVISIONER, sandboxContext } from "../../dev/emulators/context";
import { ANCHOR_MAILBOX_PREFIX, createExchangeEmulator, EXCHANGE_ONLINE_RESOURCE, organizationReads } from "../../dev/emulators/exchange";
import { startEmulators } from "../../dev/emulators";
import type { EmulatorServer } from "../../dev/emulators/server";

// The provisioner named, as startEmulators names it: its roles are the other tenant's organization's (issue 10).
const ctx: EmulatorContext = { ...sandboxContext(), provisioner: SANDBOX_PROVISIONER };
let server: EmulatorServer;
let base: string;

const APP_A = "aaaaaaaa-0000-4000-8000-000000000001";
const APP_B = "bbbbbbbb-0000-4000-8000-000000000002";

const token = (aud = EXCHANGE_ONLINE_RESOURCE, appid = SANDBOX_IDENTITY.clientId) =>
  ctx.signer.issue({ aud, iss: `https://sts.windows.net/${SANDBOX_IDENTITY.tenantId}/`, tid: SANDBOX_IDENTITY.tenantId, appid, oid: SANDBOX_IDENTITY.objectId }).token;

async function invoke(cmdlet: string, parameters: object = {}, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const r = await fetch(`${base}/adminapi/beta/${SANDBOX_IDENTITY.tenantId}/InvokeCommand`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${token()}`,
      "Content-Type": "application/json",
      "X-ResponseFormat": "json",
      "X-AnchorMailbox": `${ANCHOR_MAILBOX_PREFIX}sandbox.onmicrosoft.com`,
      ...headers,
    },
    body: JSON.stringify({ CmdletInput: { CmdletName: cmdlet, Parameters: parameters } }),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}
const patchTenant = (body: object) => fetch(`${base}/_emulator/tenant`, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
const state = async (): Promise<any> => (await fetch(`${base}/_emulator/state`)).json();

beforeAll(async () => {
  server = createExchangeEmulator(ctx);
  base = await server.listen(0);
});
afterAll(() => server.close());
beforeEach(() => fetch(`${base}/_emulator/reset`, { method: "POST" }));

test("the seed: EWS enabled with an empty list; Get-OrganizationConfig answers {value:[...]} and is counted", async () => {
  const r = await invoke("Get-OrganizationConfig");
  expect(r.status).toBe(200);
  expect(r.body.value).toHaveLength(1);
  expect(r.body.value[0]).toMatchObject({ EwsEnabled: true, EwsAllowedAppIDs: [] });
  expect(await state()).toMatchObject({ organizationConfig: { EwsEnabled: true, EwsAllowedAppIDs: [] }, appRoles: ["Exchange.ManageAsApp"], directoryRoles: ["Exchange Administrator"] });
  expect(organizationReads(server)).toBe(1);
});

test("Set-OrganizationConfig: a full list replaces, {Add, Remove} merges and keeps each id once; EwsEnabled only when named", async () => {
  expect((await invoke("Set-OrganizationConfig", { EwsAllowedAppIDs: [APP_A] })).status).toBe(200);
  expect((await invoke("Set-OrganizationConfig", { EwsAllowedAppIDs: { "@odata.type": "#Exchange.GenericHashTable", Add: [APP_B, APP_A] } })).status).toBe(200);
  expect((await state()).organizationConfig).toEqual({ EwsEnabled: true, EwsAllowedAppIDs: [APP_A, APP_B] });
  await invoke("Set-OrganizationConfig", { EwsAllowedAppIDs: { Remove: APP_A } });
  expect((await state()).organizationConfig.EwsAllowedAppIDs).toEqual([APP_B]);
  await invoke("Set-OrganizationConfig", { EwsEnabled: false });
  expect((await state()).organizationConfig).toEqual({ EwsEnabled: false, EwsAllowedAppIDs: [APP_B] });
  expect((await invoke("Set-OrganizationConfig", { EwsAllowedAppIDs: ["not-an-id"] })).status).toBe(400);
  expect((await invoke("Set-OrganizationConfig", { Identity: "x" })).status).toBe(400);
  expect((await invoke("Get-Mailbox")).status).toBe(400);
});

test("401 without a token, for another audience, or without Exchange.ManageAsApp; 403 with the app role only; a reader may read but not write", async () => {
  expect((await invoke("Get-OrganizationConfig", {}, { Authorization: "" })).status).toBe(401);
  expect((await invoke("Get-OrganizationConfig", {}, { Authorization: `Bearer ${token(AUDIENCES.graph[0])}` })).status).toBe(401);
  expect((await invoke("Get-OrganizationConfig", {}, { "X-AnchorMailbox": "" })).status).toBe(400);

  await patchTenant({ directoryRoles: ["Global Reader"] });
  expect((await invoke("Get-OrganizationConfig")).status).toBe(200);
  const write = await invoke("Set-OrganizationConfig", { EwsAllowedAppIDs: [APP_A] });
  expect(write.status).toBe(403);
  expect((await state()).organizationConfig.EwsAllowedAppIDs).toEqual([]);

  await patchTenant({ directoryRoles: [] });
  expect((await invoke("Get-OrganizationConfig")).status).toBe(403);
  await patchTenant({ appRoles: [] });
  const noRole = await invoke("Get-OrganizationConfig");
  expect(noRole.status).toBe(401);
  expect(noRole.body.error.message).toMatch(/Exchange\.ManageAsApp/);
});

test("PATCH /_emulator/tenant turns EWS off and sets the list; reset restores the seed", async () => {
  await patchTenant({ organizationConfig: { EwsEnabled: false, EwsAllowedAppIDs: [APP_A] } });
  expect((await invoke("Get-OrganizationConfig")).body.value[0]).toMatchObject({ EwsEnabled: false, EwsAllowedAppIDs: [APP_A] });
  expect((await patchTenant({ organizationConfig: { EwsEnabled: "yes" } })).status).toBe(400);
  await fetch(`${base}/_emulator/reset`, { method: "POST" });
  expect((await state()).organizationConfig).toEqual({ EwsEnabled: true, EwsAllowedAppIDs: [] });
});

describe("another tenant's organization (issue 10)", () => {
  const B = SANDBOX_CUSTOMER_TENANT;
  const tokenFor = (tid: string, appid: string) =>
    ctx.signer.issue({ aud: EXCHANGE_ONLINE_RESOURCE, iss: `https://sts.windows.net/${tid}/`, tid, appid, oid: "0b000000-0000-4000-8000-000000000001" }).token;
  async function invokeIn(tenant: string, cmdlet: string, bearer: string, anchorDomain: string, parameters: object = {}): Promise<{ status: number; body: any }> {
    const r = await fetch(`${base}/adminapi/beta/${tenant}/InvokeCommand`, {
      method: "POST",
      headers: { Authorization: `Bearer ${bearer}`, "Content-Type": "application/json", "X-AnchorMailbox": `${ANCHOR_MAILBOX_PREFIX}${anchorDomain}` },
      body: JSON.stringify({ CmdletInput: { CmdletName: cmdlet, Parameters: parameters } }),
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : undefined };
  }
  const provisionerToken = () => tokenFor(B.tenantId, SANDBOX_PROVISIONER.appId);
  const tenantControl = (tenant: string, method = "GET", body?: object) =>
    fetch(`${base}/_emulator/tenant?tenant=${encodeURIComponent(tenant)}`, { method, headers: { "Content-Type": "application/json" }, body: body && JSON.stringify(body) });

  test("the URL's tenant (id or initial domain) picks the organization; the provisioner holds Exchange.ManageAsApp there; writes stay in it", async () => {
    for (const name of [B.tenantId, B.domain]) {
      const r = await invokeIn(name, "Get-OrganizationConfig", provisionerToken(), B.domain);
      expect(r.status).toBe(200);
      expect(r.body.value[0]).toMatchObject({ Identity: B.domain, Guid: B.tenantId, EwsEnabled: true, EwsAllowedAppIDs: [] });
    }
    expect((await invokeIn(B.tenantId, "Get-OrganizationConfig", provisionerToken(), "sandbox.onmicrosoft.com")).status).toBe(400);
    expect((await invokeIn(B.tenantId, "Set-OrganizationConfig", provisionerToken(), B.domain, { EwsAllowedAppIDs: [APP_A] })).status).toBe(200);
    const s = await state();
    expect(s.tenants[B.tenantId]).toMatchObject({ organizationConfig: { EwsAllowedAppIDs: [APP_A] }, appRoles: ["Exchange.ManageAsApp"], directoryRoles: ["Exchange Administrator"], initialDomain: B.domain, appId: SANDBOX_PROVISIONER.appId });
    expect(s.organizationConfig.EwsAllowedAppIDs).toEqual([]);
    expect((await invoke("Get-OrganizationConfig")).body.value[0]).toMatchObject({ Guid: SANDBOX_IDENTITY.tenantId, EwsAllowedAppIDs: [] });
  });

  test("the token must be for the URL's tenant, and its app the one holding the role in that organization", async () => {
    // A home-tenant token (the identity's) for tenant B's organization; the provisioner's tenant-B token at home.
    expect((await invokeIn(B.tenantId, "Get-OrganizationConfig", token(), B.domain)).status).toBe(401);
    expect((await invokeIn(SANDBOX_IDENTITY.tenantId, "Get-OrganizationConfig", provisionerToken(), "sandbox.onmicrosoft.com")).status).toBe(401);
    // The right tenant, the wrong app: the app's identity has no role in tenant B, nor the provisioner at home.
    const identityInB = await invokeIn(B.tenantId, "Get-OrganizationConfig", tokenFor(B.tenantId, SANDBOX_IDENTITY.clientId), B.domain);
    expect(identityInB.status).toBe(401);
    expect(identityInB.body.error.message).toMatch(/Exchange\.ManageAsApp/);
    expect((await invoke("Get-OrganizationConfig", {}, { Authorization: `Bearer ${tokenFor(SANDBOX_IDENTITY.tenantId, SANDBOX_PROVISIONER.appId)}` })).status).toBe(401);
    expect((await invokeIn("33333333-0000-4000-8000-000000000000", "Get-OrganizationConfig", provisionerToken(), B.domain)).status).toBe(404);
  });

  test("?tenant= reads and changes that organization only (its directory role, the administrator's manual step); reset restores it", async () => {
    expect(await (await tenantControl(B.domain)).json()).toMatchObject({ initialDomain: B.domain, directoryRoles: ["Exchange Administrator"] });
    expect((await tenantControl(B.tenantId, "PATCH", { directoryRoles: [] })).status).toBe(200);
    expect((await invokeIn(B.tenantId, "Get-OrganizationConfig", provisionerToken(), B.domain)).status).toBe(403);
    expect((await invoke("Get-OrganizationConfig")).status).toBe(200);
    await tenantControl(B.tenantId, "PATCH", { appRoles: [] });
    expect((await invokeIn(B.tenantId, "Get-OrganizationConfig", provisionerToken(), B.domain)).status).toBe(401);
    expect(await (await fetch(`${base}/_emulator/tenant`)).json()).toMatchObject({ appRoles: ["Exchange.ManageAsApp"], directoryRoles: ["Exchange Administrator"], initialDomain: "sandbox.onmicrosoft.com" });
    expect((await tenantControl("nowhere.onmicrosoft.com")).status).toBe(404);
    await fetch(`${base}/_emulator/reset`, { method: "POST" });
    expect((await state()).tenants[B.tenantId]).toMatchObject({ appRoles: ["Exchange.ManageAsApp"], directoryRoles: ["Exchange Administrator"] });
  });
});

test("in the stack, the sandbox token endpoint issues a token for `${EXCHANGE_ADMIN_URL}/.default` that the emulator accepts", async () => {
  const stack = await startEmulators();
  try {
    const credential = new ClientSecretCredential(SANDBOX_IDENTITY.tenantId, SANDBOX_IDENTITY.clientId, SANDBOX_IDENTITY.clientSecret, { authorityHost: stack.authorityHost, disableInstanceDiscovery: true });
    const t = await credential.getToken(`${stack.exchangeUrl}/.default`);
    const r = await fetch(`${stack.exchangeUrl}/adminapi/beta/${SANDBOX_IDENTITY.tenantId}/InvokeCommand`, {
      method: "POST",
      headers: { Authorization: `Bearer ${t!.token}`, "Content-Type": "application/json", "X-AnchorMailbox": `${ANCHOR_MAILBOX_PREFIX}sandbox.onmicrosoft.com` },
      body: JSON.stringify({ CmdletInput: { CmdletName: "Get-OrganizationConfig", Parameters: {} } }),
    });
    expect(r.status).toBe(200);
    expect(stack.appSettings()).toMatchObject({ EXCHANGE_ADMIN_URL: stack.exchangeUrl, EWS_ACCESS: "manage" });
  } finally {
    await stack.close();
  }
});
