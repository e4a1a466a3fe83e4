/**
 * Issue 8 end to end: "onboarded" means mail can sync. The built app in the local Functions host on
 * Azurite, real SDK clients, the Graph/Entra, Key Vault, Creatio and Exchange Online emulators; each
 * test is one "Done when" case driven through the HTTP API. Each site is its own Creatio emulator;
 * all sites are in the one sandbox tenant, as in production today.
 */
import { organizationReads } from "../../dev/emulators/exchange";
import { workingSiteHealth } from "../support/ewsCalendar";
import { JSON_HEADERS as json, startAppStack, type AppStack } from "../support/appStack";

let app: AppStack;
const api: AppStack["api"] = (path, init) => app.api(path, init);
const newCreatio = () => app.newCreatio();
/** Onboards with a credential bound to the site's host (its creatioSite tag) and waits for the end. */
const onboard: AppStack["onboard"] = (body) => app.onboard(body);

const exchangeTenant = (body: object) => fetch(`${app.stack.exchangeUrl}/_emulator/tenant`, { method: "PATCH", headers: json, body: JSON.stringify(body) });
async function organizationConfig(): Promise<{ EwsEnabled: boolean | null; EwsAllowedAppIDs: string[] }> {
  return ((await (await fetch(`${app.stack.exchangeUrl}/_emulator/state`)).json()) as any).organizationConfig;
}
const setOrganizationCalls = () => app.stack.servers.exchange.requests.filter((r) => (r.body as any)?.CmdletInput?.CmdletName === "Set-OrganizationConfig").length;

beforeAll(async () => {
  app = await startAppStack({ env: { EWS_ACCESS: "manage" } });
}, 180_000);

afterAll(() => app?.close());

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
    const steps = app.hostLines.filter((l) => l.includes('"onboarding.step"') && l.includes(site.host) && l.includes('"started"')).map((l) => JSON.parse(l.slice(l.indexOf("{"))).step);
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
    const ids = await Promise.all([app.startOnboarding({ creatioUrl: a.url }), app.startOnboarding({ creatioUrl: b.url })]);
    const runs = await Promise.all(ids.map((id) => app.finished(id)));
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
    const readsBefore = organizationReads(app.stack.servers.exchange);
    const events = await app.runSweep();
    expect(organizationReads(app.stack.servers.exchange) - readsBefore).toBe(1);
    expect(events.at(-1)!.mail).toMatchObject({ organizationReads: 1 });
    const notReady = events.filter((e) => e.event === "siteNotMailReady");
    expect(notReady.find((e) => e.site === dropped.host)).toMatchObject({ outcome: "notAllowListed", appId: dropped.appId, fix: `Set-OrganizationConfig -EwsAllowedAppIDs @{Add="${dropped.appId}"}` });
    const status = (await api(`/api/tenants/${dropped.host}`)).body;
    expect(status.mail).toMatchObject({ ews: "notAllowListed" });
    expect(status.health.state).toBe("broken");
  });
});

describe("EWS_ACCESS=check", () => {
  beforeAll(() => app.restartHost({ EWS_ACCESS: "check" }, { freshStorage: true }), 120_000);

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
