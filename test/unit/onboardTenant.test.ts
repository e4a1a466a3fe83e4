import { onboardTenant, type OnboardTenantInput } from "../../src/orchestrators/onboardTenant";
import { activityFailure, drive as driveOrchestrator, ONBOARD_INPUT } from "./orchestrationDriver";

/** What every onboarding failure tells the operator to do next. */
const NEXT = "Fix the cause, then POST /api/tenants again: it resumes where this run stopped.";

const drive = (input: OnboardTenantInput, results: Record<string, unknown>) => driveOrchestrator(onboardTenant, "onboard-acme.creatio.com", input, results);

const input: OnboardTenantInput = ONBOARD_INPUT;

const results = {
  checkCreatioSite: { odataRoot: "/0/odata", mailServerName: "Office 365", linkedClientId: null, knownAppId: null, takingOver: false, passwordMailboxes: 2 },
  recordSiteState: { recorded: true },
  ensureApplication: { appId: "app-id", appObjectId: "app-obj", resources: [{ name: "Office 365 Exchange Online", servicePrincipalId: "sp-exo", scopes: [{ value: "EWS.AccessAsUser.All", id: "x" }] }] },
  ensureServicePrincipal: { servicePrincipalId: "sp-app", created: true },
  grantAdminConsent: { grants: [{ scopes: ["EWS.AccessAsUser.All"] }] },
  allowEwsAccess: { mode: "manage", ews: "allowed", checkedAt: "2026-11-27T12:00:03.000Z", tenantId: "t", actions: ["addedAppId"] },
  issueClientSecret: { secretName: "creatio-o365-acme--creatio--com", version: "v1", keyId: "k1", expiresOn: "2027-11-27T12:00:00.000Z", hint: "abc", reused: false, removedLeftovers: [] },
  configureCreatio: { oauthApplicationId: "oa", mailServerId: "ms", syncedAt: "2026-11-27T12:00:05.000Z", actions: ["inserted-oauth-application", "linked-mail-server"] },
  allowUserConsent: { changed: true, permissionGrantPoliciesAssigned: [] },
};

describe("onboardTenant", () => {
  it("checks the Creatio site first, then runs the steps in procedure order with progress, passing references only", () => {
    const { activities, output, status } = drive(input, results);
    expect(activities.map((c) => [c.name, c.status])).toEqual([
      ["checkCreatioSite", { step: "checkCreatioSite", stepNumber: 1, totalSteps: 7, attempt: 1 }],
      ["ensureApplication", { step: "ensureApplication", stepNumber: 2, totalSteps: 7, attempt: 1 }],
      ["ensureServicePrincipal", { step: "ensureServicePrincipal", stepNumber: 3, totalSteps: 7, attempt: 1 }],
      ["grantAdminConsent", { step: "grantAdminConsent", stepNumber: 4, totalSteps: 7, attempt: 1 }],
      ["allowEwsAccess", { step: "allowEwsAccess", stepNumber: 5, totalSteps: 7, attempt: 1 }],
      ["issueClientSecret", { step: "issueClientSecret", stepNumber: 6, totalSteps: 7, attempt: 1 }],
      ["configureCreatio", { step: "configureCreatio", stepNumber: 7, totalSteps: 7, attempt: 1 }],
      ["recordSiteState", { step: "configureCreatio", stepNumber: 7, totalSteps: 7, attempt: 1 }],
    ]);
    expect(activities[4]!.input).toEqual({ host: "acme.creatio.com", appId: "app-id", enableEwsForTenant: false, usesEws: true });
    expect(activities[0]!.input).toEqual({ host: "acme.creatio.com", creatioCredentialSecretName: "creatio-api-acme", mailServerId: input.mailServerId, takeOver: false });
    expect(activities[5]!.input).toMatchObject({ instanceId: "onboard-acme.creatio.com", runId: "2026-11-27T12:00:00.000Z", purpose: "onboard", secretLifetimeDays: 365 });
    expect(activities[6]!.input).toEqual({
      host: "acme.creatio.com",
      secretName: "creatio-o365-acme--creatio--com",
      secretVersion: "v1",
      creatioCredentialSecretName: "creatio-api-acme",
      mailServerId: "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b",
      appId: "app-id",
      takeOver: false,
      // The last step records the outcome with its own tag update (issue 12).
      recordOnSuccess: {
        lastRun: { kind: "onboard", outcome: "succeeded", instanceId: "onboard-acme.creatio.com" },
        mailReadiness: { ews: "allowed", checkedAt: "2026-11-27T12:00:03.000Z" },
      },
    });
    // Tags that configureCreatio could not record in: recordSiteState does it. The EWS readiness goes
    // into the tags with the outcome: the secret did not exist when allowEwsAccess ran.
    expect(activities[7]!.input).toEqual({
      host: "acme.creatio.com",
      lastRun: { kind: "onboard", outcome: "succeeded", instanceId: "onboard-acme.creatio.com" },
      mailReadiness: { ews: "allowed", checkedAt: "2026-11-27T12:00:03.000Z" },
    });
    expect(status).toEqual({ step: "done", stepNumber: 7, totalSteps: 7 });
    expect(output).toMatchObject({ appId: "app-id", servicePrincipalId: "sp-app", secret: { keyId: "k1", version: "v1" }, creatio: { oauthApplicationId: "oa", tookOver: false, passwordMailboxesCleared: 2 }, userConsent: null, mail: { ews: "allowed", reason: null, actions: ["addedAppId"] } });
    expect(output.secret.removedLeftovers).toBeUndefined();
  });

  it("when configureCreatio recorded the outcome, no recordSiteState follows: one tag write fewer", () => {
    const { activities, status } = drive(input, { ...results, configureCreatio: { ...results.configureCreatio, recordedOutcome: true } });
    expect(activities.map((c) => c.name)).toEqual(["checkCreatioSite", "ensureApplication", "ensureServicePrincipal", "grantAdminConsent", "allowEwsAccess", "issueClientSecret", "configureCreatio"]);
    expect(status).toEqual({ step: "done", stepNumber: 7, totalSteps: 7 });
  });

  it("passes the credential's version and the known app id to the Creatio steps; the new app's and principal's creation to the next step", () => {
    const { activities } = drive({ ...input, creatioCredentialVersion: "cv1", knownAppId: null }, { ...results, ensureApplication: { ...results.ensureApplication, created: true } });
    expect(activities[0]!.input).toMatchObject({ creatioCredentialVersion: "cv1", knownAppId: null });
    expect(activities.find((c) => c.name === "configureCreatio")!.input).toMatchObject({ creatioCredentialVersion: "cv1" });
    expect(activities.find((c) => c.name === "ensureServicePrincipal")!.input).toEqual({ appId: "app-id", displayName: "Creatio", appCreated: true });
    expect(activities.find((c) => c.name === "grantAdminConsent")!.input).toMatchObject({ servicePrincipalId: "sp-app", servicePrincipalCreated: true });
  });

  it("adds the user consent step only when asked", () => {
    const { activities } = drive({ ...input, allowUserConsent: true }, results);
    expect(activities.find((c) => c.name === "configureCreatio")!.input.recordOnSuccess).toBeUndefined();
    expect(activities.map((c) => c.name).slice(-2)).toEqual(["allowUserConsent", "recordSiteState"]);
    expect(activities.at(-2)!.status).toEqual({ step: "allowUserConsent", stepNumber: 8, totalSteps: 8, attempt: 1 });
  });

  it("a site that is not mail-ready finishes onboarding and records why; enableEwsForTenant reaches the step", () => {
    const notReady = { mode: "check", ews: "notAllowListed", checkedAt: "2026-11-27T12:00:03.000Z", reason: "The app id app-id is not in the tenant's EwsAllowedAppIDs", tenantId: "t", actions: [] };
    const { activities, output, error } = drive({ ...input, enableEwsForTenant: true }, { ...results, allowEwsAccess: notReady });
    expect(error).toBeUndefined();
    expect(activities.find((c) => c.name === "allowEwsAccess")!.input.enableEwsForTenant).toBe(true);
    expect(activities.map((c) => c.name)).toContain("configureCreatio");
    expect(activities.at(-1)!.input.mailReadiness).toEqual({ ews: "notAllowListed", checkedAt: notReady.checkedAt, reason: notReady.reason });
    expect(output.mail).toEqual({ ews: "notAllowListed", checkedAt: notReady.checkedAt, reason: notReady.reason, actions: [] });
  });

  it("passes takeOver to Creatio only when the preflight found another app and the request allowed it", () => {
    const { activities } = drive({ ...input, takeOver: true }, { ...results, checkCreatioSite: { ...results.checkCreatioSite, linkedClientId: "other", takingOver: true } });
    expect(activities[0]!.input.takeOver).toBe(true);
    expect(activities.find((c) => c.name === "configureCreatio")!.input.takeOver).toBe(true);
  });

  it("a failed preflight creates nothing: no Graph step runs, and the failure names the step without retrying a final error", () => {
    const refused = activityFailure("Creatio at https://acme.creatio.com refused the credential in Key Vault secret creatio-api-acme (login refused (Code 1)) [not retried]");
    const { activities, error, status } = drive(input, { ...results, checkCreatioSite: refused });
    expect(activities.map((c) => c.name)).toEqual(["checkCreatioSite", "recordSiteState"]);
    expect((error as Error).message).toBe(`Step 1 of 7 (checkCreatioSite) failed: ${refused.message.replace(/^Error: /, "")} ${NEXT}`);
    expect(activities[1]!.input).toEqual({ host: "acme.creatio.com", lastRun: { kind: "onboard", outcome: "failed", step: "checkCreatioSite", instanceId: "onboard-acme.creatio.com" } });
    expect(status).toMatchObject({ step: "checkCreatioSite", stepNumber: 1, error: (error as Error).message });
  });

  it("retries a transient failure on a durable timer with backoff, showing the wait, then fails naming the step and the upstream message", () => {
    const down = activityFailure("Creatio GET /0/odata/MailServer failed with 503: down");
    const { calls, error } = drive(input, { ...results, configureCreatio: down });
    const creatio = calls.filter((c) => c.name === "configureCreatio" || (c.kind === "timer" && calls.indexOf(c) > calls.findIndex((x) => x.name === "configureCreatio")));
    expect(creatio.map((c) => c.kind)).toEqual(["activity", "timer", "activity", "timer", "activity"]);
    // 2 s, then 4 s later.
    expect(creatio[1]!.input).toBe("2026-11-27T12:00:02.000Z");
    expect(creatio[3]!.input).toBe("2026-11-27T12:00:06.000Z");
    expect(creatio[1]!.status).toEqual({ step: "configureCreatio", stepNumber: 7, totalSteps: 7, attempt: 1, retryAt: "2026-11-27T12:00:02.000Z", lastError: "Creatio GET /0/odata/MailServer failed with 503: down" });
    expect((error as Error).message).toBe(`Step 7 of 7 (configureCreatio) failed after 3 attempts: Creatio GET /0/odata/MailServer failed with 503: down ${NEXT}`);
  });

  it("keeps stack frames and file paths out of the message", () => {
    const failure = Object.assign(new Error("x"), { failureDetails: undefined, message: "Activity function 'configureCreatio' failed: boom \n Error: boom\n    at configureCreatio (/work/main/dist/src/activities/configureCreatio.js:40:11)" });
    const { error } = drive(input, { ...results, configureCreatio: failure });
    expect((error as Error).message).not.toMatch(/\/work\/|\bat configureCreatio\b/);
    expect((error as Error).message).toContain("boom");
  });
});
