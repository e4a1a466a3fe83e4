/**
 * Issue 8 end to end: "onboarded" means mail can sync. The built app in the local Functions host on
 * Azurite, real SDK clients, the Graph/Entra, Key Vault, Creatio and Exchange Online emulators; each
 * test is one "Done when" case driven through the HTTP API. Each site is its own Creatio emulator;
 * all sites are in the one sandbox tenant, as in production today.
 */
import { sandboxContext } from "../../dev/emulators/context";
import type { SecretClient } from "@azure/keyvault-secrets";
import { startEmulators, type EmulatorStack } from "../../dev/emulators";
import { sandboxSecretClient, storeSiteCredential } from "../support/siteCredential";
import { createCreatioEmulator } from "../../dev/emulators/creatio";
import { organizationReads } from "../../dev/emulators/exchange";
import type { EmulatorServer } from "../../dev/emulators/server";
import { spawnHost, type SpawnedHost } from "../../dev/host/spawn";
import { workingSiteHealth } from "../support/ewsCalendar";
import { startTestAzurite, waitFor, waitForStatus, type Status, type TestStorage } from "../host/helpers";

let storage: TestStorage;
let stack: EmulatorStack;
let host: SpawnedHost;
let secrets: SecretClient;
const creatios: EmulatorServer[] = [];
const hostLines: string[] = [];
const json = { "Content-Type": "application/json" };

async function startHost(ewsAccess: "manage" | "check"): Promise<void> {
  await host?.stop();
  await storage?.stop();
  storage = await startTestAzurite();
  host = await spawnHost({
    runTimers: false,
    storageConnectionString: storage.azurite.connectionString,
    env: { ...stack.appSettings(), AzureWebJobsStorage: storage.azurite.connectionString, EWS_ACCESS: ewsAccess, ROTATION_SCHEDULE: "0 0 3 * * *" },
    onLine: (line) => hostLines.push(line),
    timeoutMs: 60_000,
  });
}

async function api(path: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const r = await fetch(`${host.url}${path}`, init);
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}
async function newCreatio(): Promise<{ url: string; host: string }> {
  const server = createCreatioEmulator(sandboxContext());
  const url = await server.listen(0);
  creatios.push(server);
  return { url, host: new URL(url).host };
}
/** Starts an onboarding with a credential bound to the site's host (its creatioSite tag). */
async function start(body: { creatioUrl: string } & Record<string, unknown>): Promise<string> {
  const creatioCredentialSecretName = await storeSiteCredential(secrets, new URL(body.creatioUrl).host);
  const r = await api("/api/tenants", { method: "POST", headers: json, body: JSON.stringify({ creatioCredentialSecretName, ...body }) });
  expect(r.status).toBe(202);
  return r.body.id;
}
const finished = (id: string): Promise<Status> => waitForStatus(host.url, id, ["Completed", "Failed", "Terminated"], 120_000);
const onboard = async (body: { creatioUrl: string } & Record<string, unknown>) => finished(await start(body));

const exchangeTenant = (body: object) => fetch(`${stack.exchangeUrl}/_emulator/tenant`, { method: "PATCH", headers: json, body: JSON.stringify(body) });
async function organizationConfig(): Promise<{ EwsEnabled: boolean | null; EwsAllowedAppIDs: string[] }> {
  return ((await (await fetch(`${stack.exchangeUrl}/_emulator/state`)).json()) as any).organizationConfig;
}
const setOrganizationCalls = () => stack.servers.exchange.requests.filter((r) => (r.body as any)?.CmdletInput?.CmdletName === "Set-OrganizationConfig").length;

beforeAll(async () => {
  stack = await startEmulators();
  secrets = sandboxSecretClient(stack);
  await startHost("manage");
}, 180_000);

afterAll(async () => {
  await host?.stop();
  await Promise.all(creatios.map((c) => c.close()));
  await stack?.close();
  await storage?.stop();
});

afterEach(async () => {
  // Each case begins from the seed: EWS enabled, the identity holds the role and Exchange Administrator.
  await exchangeTenant({ organizationConfig: { EwsEnabled: true }, appRoles: ["Exchange.ManageAsApp"], directoryRoles: ["Exchange Administrator"] });
});

describe("EWS_ACCESS=manage (the npm start default)", () => {
  test("1. onboarding puts the app id into EwsAllowedAppIDs exactly once, before Creatio is told; a re-run adds nothing; status and list say allowed", async () => {
    const site = await newCreatio();
    const first = await onboard({ creatioUrl: site.url });
    expect(first.runtimeStatus).toBe("Completed");
    const appId = (first.output as any).appId;
    expect((first.output as any).mail).toMatchObject({ ews: "allowed", actions: ["addedAppId"] });
    expect((await organizationConfig()).EwsAllowedAppIDs.filter((id) => id === appId)).toHaveLength(1);
    // The step ran after admin consent and before the secret and Creatio.
    const steps = hostLines.filter((l) => l.includes('"onboarding.step"') && l.includes(site.host) && l.includes('"started"')).map((l) => JSON.parse(l.slice(l.indexOf("{"))).step);
    expect(steps.slice(0, 7)).toEqual(["checkCreatioSite", "ensureApplication", "ensureServicePrincipal", "grantAdminConsent", "allowEwsAccess", "issueClientSecret", "configureCreatio"]);

    const writes = setOrganizationCalls();
    const again = await onboard({ creatioUrl: site.url });
    expect(again.runtimeStatus).toBe("Completed");
    expect((again.output as any).mail).toMatchObject({ ews: "allowed", actions: [] });
    expect(setOrganizationCalls()).toBe(writes);
    expect((await organizationConfig()).EwsAllowedAppIDs.filter((id) => id === appId)).toHaveLength(1);

    const status = (await api(`/api/tenants/${site.host}`)).body;
    expect(status.mail).toMatchObject({ ews: "allowed", reason: null, fix: null, ewsShutdownOn: "2027-04-01" });
    expect(Date.parse(status.mail.checkedAt)).toBeGreaterThan(Date.now() - 120_000);
    expect(status.health).toMatchObject(workingSiteHealth());
    const row = (await api("/api/tenants")).body.find((t: any) => t.host === site.host);
    expect(row.mail).toMatchObject({ ews: "allowed" });
  });

  test("2. with the identity's Exchange.ManageAsApp removed: onboarding completes, status says unknown with the reason and the fix", async () => {
    await exchangeTenant({ appRoles: [] });
    const site = await newCreatio();
    const done = await onboard({ creatioUrl: site.url });
    expect(done.runtimeStatus).toBe("Completed");
    const appId = (done.output as any).appId;
    const status = (await api(`/api/tenants/${site.host}`)).body;
    expect(status.mail).toMatchObject({ ews: "unknown", fix: `Set-OrganizationConfig -EwsAllowedAppIDs @{Add="${appId}"}` });
    expect(status.mail.reason).toMatch(/401.*Exchange\.ManageAsApp/);
    expect(status.health.state).toBe("atRisk");
    expect((await organizationConfig()).EwsAllowedAppIDs).not.toContain(appId);
  });

  test("3. with EWS disabled in the tenant and no enableEwsForTenant: ewsDisabled, EwsEnabled untouched; with it: allowed", async () => {
    await exchangeTenant({ organizationConfig: { EwsEnabled: false } });
    const site = await newCreatio();
    const done = await onboard({ creatioUrl: site.url });
    expect(done.runtimeStatus).toBe("Completed");
    const appId = (done.output as any).appId;
    expect((await organizationConfig()).EwsEnabled).toBe(false);
    const status = (await api(`/api/tenants/${site.host}`)).body;
    expect(status.mail).toMatchObject({ ews: "ewsDisabled", fix: `Set-OrganizationConfig -EwsEnabled $true; Set-OrganizationConfig -EwsAllowedAppIDs @{Add="${appId}"}` });
    expect(status.health.state).toBe("broken");
    expect(status.health.problems.join(" ")).toMatch(/EwsEnabled is \$false/);
    expect((await api("/api/tenants")).body[0].health.state).toBe("broken");

    const enabled = await onboard({ creatioUrl: site.url, enableEwsForTenant: true });
    expect((enabled.output as any).mail).toMatchObject({ ews: "allowed", actions: ["enabledEws"] });
    expect(await organizationConfig()).toMatchObject({ EwsEnabled: true });
    expect((await api(`/api/tenants/${site.host}`)).body.mail.ews).toBe("allowed");
  });

  test("4. two sites in one tenant onboarded at the same time both end up listed", async () => {
    const [a, b] = [await newCreatio(), await newCreatio()];
    const ids = await Promise.all([start({ creatioUrl: a.url }), start({ creatioUrl: b.url })]);
    const runs = await Promise.all(ids.map(finished));
    expect(runs.map((r) => r.runtimeStatus)).toEqual(["Completed", "Completed"]);
    const listed = (await organizationConfig()).EwsAllowedAppIDs;
    for (const run of runs) expect(listed.filter((id) => id === (run.output as any).appId)).toHaveLength(1);
  });

  test("5. the sweep re-checks readiness with one organization read for the tenant, records it per site and logs siteNotMailReady", async () => {
    const sites = (await api("/api/tenants")).body as any[];
    expect(sites.length).toBeGreaterThanOrEqual(3);
    // An administrator takes one app off the list by hand.
    const dropped = sites.find((s) => s.mail?.ews === "allowed")!;
    const config = await organizationConfig();
    await exchangeTenant({ organizationConfig: { EwsAllowedAppIDs: config.EwsAllowedAppIDs.filter((id) => id !== dropped.appId) } });
    const readsBefore = organizationReads(stack.servers.exchange);
    const from = hostLines.length;
    expect((await api("/admin/functions/rotationSweep", { method: "POST", headers: json, body: "{}" })).status).toBe(202);
    const summary = await waitFor("the sweep summary", async () => hostLines.slice(from).find((l) => l.includes('"event":"sweep.finished"')), 30_000, 50);
    expect(organizationReads(stack.servers.exchange) - readsBefore).toBe(1);
    expect(JSON.parse(summary.slice(summary.indexOf("{"))).mail).toMatchObject({ organizationReads: 1 });
    const notReady = hostLines
      .slice(from)
      .filter((l) => l.includes('"event":"siteNotMailReady"'))
      .map((l) => JSON.parse(l.slice(l.indexOf("{"))));
    expect(notReady.find((e) => e.site === dropped.host)).toMatchObject({ outcome: "notAllowListed", appId: dropped.appId, fix: `Set-OrganizationConfig -EwsAllowedAppIDs @{Add="${dropped.appId}"}` });
    const status = (await api(`/api/tenants/${dropped.host}`)).body;
    expect(status.mail).toMatchObject({ ews: "notAllowListed" });
    expect(status.health.state).toBe("broken");
  });
});

describe("EWS_ACCESS=check", () => {
  beforeAll(() => startHost("check"), 120_000);

  test("6. the id not listed: onboarding completes without writing, status says notAllowListed with a fix naming the app id", async () => {
    const writes = setOrganizationCalls();
    const site = await newCreatio();
    const done = await onboard({ creatioUrl: site.url });
    expect(done.runtimeStatus).toBe("Completed");
    const appId = (done.output as any).appId;
    expect(setOrganizationCalls()).toBe(writes);
    const status = (await api(`/api/tenants/${site.host}`)).body;
    expect(status.mail).toMatchObject({ ews: "notAllowListed", fix: `Set-OrganizationConfig -EwsAllowedAppIDs @{Add="${appId}"}` });
    expect(status.mail.reason).toContain(appId);
    expect(status.health.state).toBe("broken");
  });
});
