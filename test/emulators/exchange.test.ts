// The Exchange Online admin API emulator over HTTPS with plain fetch (the app's client is fetch too).
import { ClientSecretCredential } from "@azure/identity";
import { AUDIENCES, EmulatorContext, SANDBOX_IDENTITY, sandboxContext } from "../../dev/emulators/context";
import { ANCHOR_MAILBOX_PREFIX, createExchangeEmulator, EXCHANGE_ONLINE_RESOURCE, organizationReads } from "../../dev/emulators/exchange";
import { startEmulators } from "../../dev/emulators";
import type { EmulatorServer } from "../../dev/emulators/server";

const ctx: EmulatorContext = sandboxContext();
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
