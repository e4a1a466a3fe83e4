import { onboardTenant, type OnboardTenantInput } from "../../src/orchestrators/onboardTenant";
import { ADMIN_CONSENT_EVENT } from "../../src/orchestrators/adminConsent";
import { activityFailure, drive as driveOrchestrator, ONBOARD_INPUT, type ExternalEvents } from "./orchestrationDriver";

/** onboardTenant for a site of another Entra tenant (issue 10): the access check and the consent wait. */

const TENANT_B = "22222222-3333-4444-8555-666666666666";
const STATE = "b25ib2FyZC1hY21lLmNyZWF0aW8uY29t.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const CONSENT_URL = `https://login.microsoftonline.com/${TENANT_B}/adminconsent?client_id=prov&redirect_uri=https%3A%2F%2Fapp%2Fapi%2Fconsent%2Fcallback&state=${STATE}`;

const input: OnboardTenantInput = {
  ...ONBOARD_INPUT,
  tenantId: TENANT_B,
  adminConsentWaitHours: 48,
};

const granted = { access: "granted", tenantId: TENANT_B, roles: ["Application.ReadWrite.OwnedBy"] };
const consentRequired = { access: "consentRequired", tenantId: TENANT_B, adminConsentUrl: CONSENT_URL, reason: "No administrator of tenant … has consented to the provisioner yet." };

const results = {
  checkTenantAccess: granted,
  checkCreatioSite: { odataRoot: "/0/odata", mailServerName: "Office 365", linkedClientId: null, knownAppId: null, takingOver: false, passwordMailboxes: 0 },
  recordSiteState: { recorded: true },
  ensureApplication: { appId: "app-id", appObjectId: "app-obj", resources: [{ name: "Office 365 Exchange Online", servicePrincipalId: "sp-exo", scopes: [{ value: "EWS.AccessAsUser.All", id: "x" }] }] },
  ensureServicePrincipal: { servicePrincipalId: "sp-app", created: true },
  grantAdminConsent: { grants: [{ scopes: ["EWS.AccessAsUser.All"] }] },
  allowEwsAccess: { mode: "manage", ews: "allowed", checkedAt: "2026-11-27T12:00:03.000Z", tenantId: TENANT_B, actions: [] },
  issueClientSecret: { secretName: "creatio-o365-acme--creatio--com", version: "v1", keyId: "k1", expiresOn: "2027-11-27T12:00:00.000Z", hint: "abc", reused: false, removedLeftovers: [] },
  configureCreatio: { oauthApplicationId: "oa", mailServerId: "ms", syncedAt: "2026-11-27T12:00:05.000Z", actions: ["linked-mail-server"], recordedOutcome: true },
};

const drive = (overrides: Record<string, unknown>, external: ExternalEvents = {}) =>
  driveOrchestrator(onboardTenant, "onboard-acme.creatio.com", input, { ...results, ...overrides }, new Date("2026-11-27T12:00:00.000Z"), external);

describe("onboardTenant in another tenant", () => {
  it("checks the provisioner's access first, skips the wait when consented before, and runs every Graph and Exchange step in the site's tenant", () => {
    const { activities, output, calls } = drive({});
    expect(activities.map((c) => [c.name, (c.status as { stepNumber: number }).stepNumber, (c.status as { totalSteps: number }).totalSteps])).toEqual([
      ["checkTenantAccess", 1, 9],
      ["checkCreatioSite", 3, 9],
      ["ensureApplication", 4, 9],
      ["ensureServicePrincipal", 5, 9],
      ["grantAdminConsent", 6, 9],
      ["allowEwsAccess", 7, 9],
      ["issueClientSecret", 8, 9],
      ["configureCreatio", 9, 9],
    ]);
    expect(calls.some((c) => c.kind === "event")).toBe(false);
    const tenantOf = (name: string) => activities.find((c) => c.name === name)!.input.tenantId;
    for (const name of ["checkTenantAccess", "ensureApplication", "ensureServicePrincipal", "grantAdminConsent", "allowEwsAccess", "issueClientSecret"]) expect([name, tenantOf(name)]).toEqual([name, TENANT_B]);
    // Creatio and Key Vault do not depend on the tenant.
    expect(tenantOf("checkCreatioSite")).toBeUndefined();
    expect(tenantOf("configureCreatio")).toBeUndefined();
    expect(output).toMatchObject({ tenantId: TENANT_B, appId: "app-id" });
  });

  it("waits in awaitingAdminConsent with the consent URL, and on consent confirms the roles with backoff before anything is created", () => {
    const { calls, activities, output } = drive(
      { checkTenantAccess: [consentRequired, granted] },
      { [ADMIN_CONSENT_EVENT]: [{ state: STATE, consented: true, tenant: TENANT_B }] },
    );
    const wait = calls.find((c) => c.kind === "event")!;
    expect(wait.status).toEqual({
      step: "awaitingAdminConsent",
      stepNumber: 2,
      totalSteps: 9,
      tenantId: TENANT_B,
      adminConsentUrl: CONSENT_URL,
      waitingUntil: "2026-11-29T12:00:00.000Z",
      waitingFor: consentRequired.reason,
    });
    const confirm = activities[1]!;
    expect(confirm.name).toBe("checkTenantAccess");
    expect(confirm.input).toEqual({ tenantId: TENANT_B, instanceId: "onboard-acme.creatio.com", afterConsent: true });
    expect(confirm.attempts).toBeGreaterThanOrEqual(5);
    // The state is spent: the status no longer shows the URL.
    expect(confirm.status).toMatchObject({ step: "awaitingAdminConsent", consentReceivedAt: "2026-11-27T12:00:00.000Z" });
    expect(confirm.status).not.toHaveProperty("adminConsentUrl");
    expect(activities.slice(2).map((c) => c.name)[0]).toBe("checkCreatioSite");
    expect(output).toMatchObject({ tenantId: TENANT_B });
  });

  it("ignores an event that does not carry this run's state and keeps waiting", () => {
    const { calls, activities, error } = drive({ checkTenantAccess: consentRequired }, { [ADMIN_CONSENT_EVENT]: [{ state: "other.state", consented: true, tenant: TENANT_B }] });
    const waits = calls.filter((c) => c.kind === "event");
    // The foreign event ended the first wait without an answer; the second waits for the same first poll.
    expect(waits.slice(0, 2).map((c) => c.input)).toEqual(["2026-11-27T12:01:00.000Z", "2026-11-27T12:01:00.000Z"]);
    expect(activities.filter((c) => c.name === "checkCreatioSite")).toEqual([]);
    expect(String((error as Error).message)).toMatch(/no administrator of tenant 22222222-3333-4444-8555-666666666666 consented within 48 hours \(ADMIN_CONSENT_WAIT_HOURS\)/);
  });

  it("notices a consent given without the callback (the admin center, or the app down) by asking Entra at growing intervals", () => {
    const { calls, activities, output } = drive({ checkTenantAccess: [consentRequired, consentRequired, consentRequired, granted] });
    const waits = calls.filter((c) => c.kind === "event").map((c) => c.input);
    // Polls after 1, 2 and 4 minutes: the third finds the provisioner let in.
    expect(waits).toEqual(["2026-11-27T12:01:00.000Z", "2026-11-27T12:03:00.000Z", "2026-11-27T12:07:00.000Z"]);
    const polls = activities.filter((c) => c.name === "checkTenantAccess").slice(1);
    expect(polls.map((c) => c.input)).toEqual(Array(3).fill({ tenantId: TENANT_B, instanceId: "onboard-acme.creatio.com" }));
    const next = activities[4]!;
    expect(next.name).toBe("checkCreatioSite");
    expect(next.status).toMatchObject({ step: "checkCreatioSite", stepNumber: 3 });
    expect(output).toMatchObject({ tenantId: TENANT_B });
  });

  it("fails naming Entra's answer when the administrator declines, before anything is created", () => {
    const { activities, error, status } = drive(
      { checkTenantAccess: consentRequired },
      { [ADMIN_CONSENT_EVENT]: [{ state: STATE, consented: false, error: "access_denied", errorDescription: "AADSTS65004: User declined to consent to access the app." }] },
    );
    const message = (error as Error).message;
    expect(message).toMatch(/^Step 2 of 9 \(awaitingAdminConsent\) failed: the administrator of tenant 2222.* did not consent \(Entra: access_denied: AADSTS65004: User declined/);
    expect(message).toMatch(/POST \/api\/tenants again/);
    expect(activities.map((c) => c.name)).toEqual(["checkTenantAccess", "recordSiteState"]);
    expect(status).toMatchObject({ step: "awaitingAdminConsent", error: message });
    expect(status).not.toHaveProperty("adminConsentUrl");
  });

  it("fails naming the wait when nobody consents in time, having asked Entra at most hourly", () => {
    const { calls, activities, error } = drive({ checkTenantAccess: consentRequired });
    const waits = calls.filter((c) => c.kind === "event").map((c) => Date.parse(c.input));
    expect(new Date(waits.at(-1)!).toISOString()).toBe("2026-11-29T12:00:00.000Z");
    const gaps = waits.map((t, i) => t - (i === 0 ? Date.parse("2026-11-27T12:00:00.000Z") : waits[i - 1]!));
    expect(Math.max(...gaps)).toBe(3_600_000);
    // One look at Entra per poll (48 h: 1, 2, 4 ... 32 min, then hourly), none after the deadline.
    expect(activities.filter((c) => c.name === "checkTenantAccess")).toHaveLength(waits.length);
    expect((error as Error).message).toMatch(/^Step 2 of 9 \(awaitingAdminConsent\) failed: no administrator of tenant .* consented within 48 hours/);
  });

  it("fails naming the step when Entra still refuses the provisioner after consent", () => {
    const { error } = drive(
      { checkTenantAccess: [consentRequired, activityFailure("The provisioner's token in tenant … does not carry Application.ReadWrite.OwnedBy yet")] },
      { [ADMIN_CONSENT_EVENT]: [{ state: STATE, consented: true, tenant: TENANT_B }] },
    );
    expect((error as Error).message).toMatch(/awaitingAdminConsent\) failed: the administrator consented, but Entra still refuses the provisioner .*does not carry Application.ReadWrite.OwnedBy/);
  });
});
