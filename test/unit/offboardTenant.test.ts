import { offboardTenant, type OffboardTenantInput } from "../../src/orchestrators/offboardTenant";
import { activityFailure, drive as driveOrchestrator } from "./orchestrationDriver";

const HOST = "acme.creatio.com";
const drive = (input: OffboardTenantInput, results: Record<string, unknown>) => driveOrchestrator(offboardTenant, `offboard-${HOST}`, input, results);
const input: OffboardTenantInput = { host: HOST, appId: "app-id", creatioCredentialSecretName: "creatio-api-acme", mailServerId: "mail-1" };
const results = {
  unlinkCreatio: { actions: ["unlinked-mail-server", "deleted-oauth-application"], linkedToOtherClientId: null, note: null },
  removeEwsAccess: { mode: "manage", tenantId: "t", actions: ["removedAppId"], note: null },
  deleteApplication: { uniqueName: "creatio-o365-acme--creatio--com", appId: "app-id", outcome: "deleted", restorableUntil: "2026-12-27T12:00:00.000Z" },
  deleteSiteSecret: { secretName: "creatio-o365-acme--creatio--com", outcome: "deleted", offboardedAt: "2026-11-27T12:00:04.000Z", deletedOn: null, scheduledPurgeDate: null },
  recordSiteState: { recorded: true },
};

describe("offboardTenant", () => {
  it("Creatio first, then Exchange, Entra and last Key Vault, step k of 4, with what the tags said", () => {
    const { activities, output, status } = drive(input, results);
    expect(activities.map((c) => [c.name, c.status])).toEqual([
      ["unlinkCreatio", { step: "unlinkCreatio", stepNumber: 1, totalSteps: 4, attempt: 1 }],
      ["removeEwsAccess", { step: "removeEwsAccess", stepNumber: 2, totalSteps: 4, attempt: 1 }],
      ["deleteApplication", { step: "deleteApplication", stepNumber: 3, totalSteps: 4, attempt: 1 }],
      ["deleteSiteSecret", { step: "deleteSiteSecret", stepNumber: 4, totalSteps: 4, attempt: 1 }],
    ]);
    expect(activities[0]!.input).toEqual({ host: HOST, appId: "app-id", creatioCredentialSecretName: "creatio-api-acme", mailServerId: "mail-1" });
    expect(activities[3]!.input).toEqual({ host: HOST, instanceId: `offboard-${HOST}` });
    expect(status).toEqual({ step: "done", stepNumber: 4, totalSteps: 4 });
    expect(output).toMatchObject({ host: HOST, outcome: "offboarded", offboardedAt: "2026-11-27T12:00:04.000Z", application: { outcome: "deleted" } });
  });

  it("Creatio unreachable: retried, then failed naming the step and how to resume; recorded in the tags; nothing deleted", () => {
    const down = activityFailure("Creatio GET /0/odata/MailServer failed with 503: down");
    const { calls, activities, error, status } = drive(input, { ...results, unlinkCreatio: down });
    expect(calls.filter((c) => c.name === "unlinkCreatio" || c.kind === "timer").map((c) => c.kind)).toEqual(["activity", "timer", "activity", "timer", "activity"]);
    expect(activities.map((c) => c.name)).not.toContain("deleteApplication");
    expect((error as Error).message).toBe(
      `Step 1 of 4 (unlinkCreatio) failed after 3 attempts: Creatio GET /0/odata/MailServer failed with 503: down Fix the cause, then DELETE /api/tenants/${HOST} again with {"confirm":"${HOST}"}: it resumes where this run stopped.`,
    );
    expect(activities.at(-1)).toMatchObject({ name: "recordSiteState", input: { host: HOST, lastRun: { kind: "offboard", outcome: "failed", step: "unlinkCreatio", instanceId: `offboard-${HOST}` } } });
    expect(status).toMatchObject({ step: "unlinkCreatio", stepNumber: 1, totalSteps: 4, error: expect.stringMatching(/^Step 1 of 4/) });
  });

  it("a site without tags (an onboarding that never stored a secret): every step runs with the host only", () => {
    const { activities } = drive({ host: HOST }, results);
    expect(activities.map((c) => c.input)).toEqual([{ host: HOST }, { host: HOST }, { host: HOST }, { host: HOST, instanceId: `offboard-${HOST}` }]);
  });
});
