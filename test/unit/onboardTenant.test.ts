import type { OrchestrationContext } from "durable-functions";
import { onboardTenant, type OnboardTenantInput } from "../../src/orchestrators/onboardTenant";

/** Drives the orchestrator generator by hand: records each activity call and the custom status then. */
function drive(input: OnboardTenantInput, results: Record<string, unknown | Error>) {
  const calls: { name: string; input: any; status: unknown; attempts: number }[] = [];
  let status: unknown;
  const context = {
    log: () => undefined,
    df: {
      instanceId: "onboard-acme.creatio.com",
      isReplaying: false,
      currentUtcDateTime: new Date("2026-11-27T12:00:00.000Z"),
      getInput: () => input,
      setCustomStatus: (s: unknown) => (status = s),
      callActivityWithRetry: (name: string, retry: { maxNumberOfAttempts: number }, activityInput: unknown) => ({ name, retry, activityInput }),
    },
  } as unknown as OrchestrationContext;
  const gen = onboardTenant(context);
  let next = gen.next();
  while (!next.done) {
    const task = next.value as unknown as { name: string; retry: { maxNumberOfAttempts: number }; activityInput: unknown };
    calls.push({ name: task.name, input: task.activityInput, status, attempts: task.retry.maxNumberOfAttempts });
    const result = results[task.name];
    next = result instanceof Error ? gen.throw(result) : gen.next(result as never);
  }
  return { calls, output: next.value as any, status };
}

const input: OnboardTenantInput = {
  host: "acme.creatio.com",
  creatioCredentialSecretName: "creatio-api-acme",
  displayName: "Creatio",
  secretLifetimeDays: 365,
  mailServerId: "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b",
  allowUserConsent: false,
};

const results = {
  ensureApplication: { appId: "app-id", appObjectId: "app-obj", resources: [{ name: "Office 365 Exchange Online", servicePrincipalId: "sp-exo", scopes: [{ value: "EWS.AccessAsUser.All", id: "x" }] }] },
  ensureServicePrincipal: { servicePrincipalId: "sp-app", created: true },
  grantAdminConsent: { grants: [{ scopes: ["EWS.AccessAsUser.All"] }] },
  issueClientSecret: { secretName: "creatio-o365-acme--creatio--com", version: "v1", keyId: "k1", expiresOn: "2027-11-27T12:00:00.000Z", hint: "abc", reused: false, removedLeftovers: [] },
  configureCreatio: { oauthApplicationId: "oa", mailServerId: "ms", syncedAt: "2026-11-27T12:00:05.000Z", actions: ["inserted-oauth-application"] },
  allowUserConsent: { changed: true, permissionGrantPoliciesAssigned: [] },
};

describe("onboardTenant", () => {
  it("runs the steps in procedure order with progress, passing references only", () => {
    const { calls, output, status } = drive(input, results);
    expect(calls.map((c) => [c.name, c.status])).toEqual([
      ["ensureApplication", { step: "ensureApplication", stepNumber: 1, totalSteps: 5 }],
      ["ensureServicePrincipal", { step: "ensureServicePrincipal", stepNumber: 2, totalSteps: 5 }],
      ["grantAdminConsent", { step: "grantAdminConsent", stepNumber: 3, totalSteps: 5 }],
      ["issueClientSecret", { step: "issueClientSecret", stepNumber: 4, totalSteps: 5 }],
      ["configureCreatio", { step: "configureCreatio", stepNumber: 5, totalSteps: 5 }],
    ]);
    expect(calls[3]!.input).toMatchObject({ instanceId: "onboard-acme.creatio.com", runId: "2026-11-27T12:00:00.000Z", purpose: "onboard", secretLifetimeDays: 365 });
    expect(calls[4]!.input).toEqual({
      host: "acme.creatio.com",
      secretName: "creatio-o365-acme--creatio--com",
      secretVersion: "v1",
      creatioCredentialSecretName: "creatio-api-acme",
      mailServerId: "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b",
      appId: "app-id",
    });
    expect(status).toEqual({ step: "done", stepNumber: 5, totalSteps: 5 });
    expect(output).toMatchObject({ appId: "app-id", servicePrincipalId: "sp-app", secret: { keyId: "k1", version: "v1" }, creatio: { oauthApplicationId: "oa" }, userConsent: null });
    expect(output.secret.removedLeftovers).toBeUndefined();
  });

  it("adds the user consent step only when asked", () => {
    const { calls } = drive({ ...input, allowUserConsent: true }, results);
    expect(calls.map((c) => c.name).at(-1)).toBe("allowUserConsent");
    expect(calls.at(-1)!.status).toEqual({ step: "allowUserConsent", stepNumber: 6, totalSteps: 6 });
  });

  it("fails naming the step and the upstream message", () => {
    const failure = Object.assign(new Error("Error: Creatio GET /0/odata/MailServer failed with 503: down"), {
      failureDetails: { errorType: "CreatioError", errorMessage: "Creatio GET /0/odata/MailServer failed with 503: down" },
    });
    expect(() => drive(input, { ...results, configureCreatio: failure })).toThrow("Step 5 of 5 (configureCreatio) failed: Creatio GET /0/odata/MailServer failed with 503: down");
  });
});
