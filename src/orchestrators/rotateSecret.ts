import * as df from "durable-functions";
import type { OrchestrationContext, OrchestrationHandler } from "durable-functions";
import { z } from "zod";
import { BEGIN_ROTATION, type RotationSite } from "../activities/beginRotation";
import { ISSUE_CLIENT_SECRET, type SecretReference } from "../activities/issueClientSecret";
import { CONFIGURE_CREATIO, type ConfigureCreatioResult } from "../activities/configureCreatio";
import { RECORD_SITE_STATE } from "../activities/recordSiteState";
import { REMOVE_OLD_PASSWORD, type RemoveOldPasswordResult } from "../activities/removeOldPassword";
import { REMOVE_STRAY_PASSWORDS, type RemoveStrayPasswordsResult } from "../activities/removeStrayPasswords";
import { EVENTS, logEvent } from "../observability";
import { GRAPH_RETRY, recordSiteStateQuietly, StepError, stepRunner, type StepRetry } from "./steps";

/**
 * "The secret expires; redo steps 8 and 10" as one orchestration (docs/architecture.md, "The
 * procedure, step by step"):
 *
 *   1. beginRotation          mark the site `rotating`; read what Key Vault and Graph know
 *   2. issueClientSecret      new password + new Key Vault version in one step (onboarding's activity)
 *   3. configureCreatio       Creatio gets the new secret (onboarding's activity)
 *   4. recordSiteState        `grace-period`, previousKeyId = the password Creatio used until now
 *                             (skipped with a grace period of 0: no timer runs, step 7 records it)
 *   5. gracePeriod            durable timer: mail sync in flight may still use the old secret
 *   6. removeOldPassword      the old password, by keyId
 *   7. removeStrayPasswords   any other password that is neither current nor Creatio's; then
 *                             records `idle`, the run succeeded, on the version it read
 *
 * Steps pass references, never values (docs/architecture.md, "Calls per rotation"): beginRotation's
 * version to issueClientSecret, removeOldPassword's read of the app to removeStrayPasswords. Every
 * removal still reads the protected keyIds from Key Vault itself.
 *
 * Rotation never breaks mail sync: nothing is removed before Creatio has the new secret and the
 * grace period has passed. If Creatio cannot be updated, Creatio and the old password stay as they
 * were and the tags say `failed`, naming the step; the next sweep starts this again, and step 2 then
 * delivers the secret the failed run issued instead of issuing another (RotationSite.currentFresh),
 * so a site ends with exactly one new password however many times Creatio failed.
 *
 * Deterministic: the grace period arrives as input (the starter reads OLD_SECRET_GRACE_HOURS), time
 * comes from currentUtcDateTime, facts from activity results. No secret value passes through here.
 */
export const ROTATE_SECRET = "rotateSecret";

export const rotationTriggers = ["sweep", "event", "manual"] as const;

export const rotateSecretInput = z.object({
  host: z.string().min(1),
  gracePeriodHours: z.number().min(0),
  trigger: z.enum(rotationTriggers),
  /** The site's Entra tenant from its tags when not the home tenant: every Graph step runs there (docs/architecture.md, "Serving several tenants"). */
  tenantId: z.string().min(1).optional(),
});
export type RotateSecretInput = z.infer<typeof rotateSecretInput>;

export interface RotateSecretOutput {
  host: string;
  outcome: "succeeded";
  /** false when this run delivered a secret an earlier, failed run had already issued. */
  issuedNewSecret: boolean;
  keyId: string;
  version: string;
  expiresOn: string;
  previousKeyId: string | null;
  gracePeriodHours: number;
  graceEndedAt: string;
  oldPassword: RemoveOldPasswordResult | null;
  strayPasswordsRemoved: string[];
}

/** Creatio: the client already retries transient errors; a site that stays down fails the run and the next sweep retries. */
const CREATIO_RETRY: StepRetry = { attempts: 2, firstDelayMs: 2_000 };
const TOTAL_STEPS = 7;

export const rotateSecret: OrchestrationHandler = function* (context: OrchestrationContext) {
  const input = rotateSecretInput.parse(context.df.getInput());
  const steps = stepRunner(context, {
    site: input.host,
    totalSteps: TOTAL_STEPS,
    event: EVENTS.rotationStep,
    nextAction: `Creatio keeps the secret it holds; the next sweep retries, or POST /api/tenants/${input.host}/rotate once the cause is fixed.`,
  });
  const { instanceId, runId } = steps;
  // The Graph steps run in the site's tenant; beginRotation checks the tags still name it.
  const inTenant = input.tenantId ? { tenantId: input.tenantId } : {};
  let begun = false;

  try {
    // 1. Mark rotating; learn the current keyId, the one Creatio holds, and whether the current is due.
    const site: RotationSite = yield* steps.run(BEGIN_ROTATION, GRAPH_RETRY, { host: input.host, instanceId, ...inTenant });
    begun = true;

    // 2. A new password and Key Vault version, unless an earlier run issued one Creatio has yet to
    //    receive and it is still fresh (even one shorter-lived than the window), or a retrying sweep
    //    finds Creatio holding a current secret that is not due (an earlier run failed after
    //    delivery: only clean-up is left).
    const deliverCurrent =
      site.currentExists && (site.creatioHeldKeyId !== site.keyId ? site.currentFresh : input.trigger === "sweep" && !site.currentDue);
    let secret: Pick<SecretReference, "version" | "keyId" | "expiresOn">;
    if (deliverCurrent) {
      secret = { version: site.version, keyId: site.keyId, expiresOn: site.expiresOn ?? "" };
      const reason = site.creatioHeldKeyId !== site.keyId ? "Creatio has not received the current secret yet" : "nothing is due; finishing an earlier run";
      steps.skip(ISSUE_CLIENT_SECRET, { reason, keyId: site.keyId });
    } else {
      secret = yield* steps.run<SecretReference>(ISSUE_CLIENT_SECRET, GRAPH_RETRY, {
        host: input.host,
        ...inTenant,
        instanceId,
        runId,
        purpose: "rotate",
        appId: site.appId,
        appObjectId: site.appObjectId,
        ...(site.servicePrincipalId ? { servicePrincipalId: site.servicePrincipalId } : {}),
        secretLifetimeDays: site.secretLifetimeDays,
        creatioCredentialSecretName: site.creatioCredentialSecretName,
        mailServerId: site.mailServerId,
        ...(site.scopes.length ? { scopes: site.scopes } : {}),
        // What beginRotation read: issueClientSecret reads the app again only if Key Vault moved on.
        expected: { version: site.version, currentExists: site.currentExists },
      });
    }

    // 3. Creatio gets exactly that version. On failure the old password stays: Creatio still uses it.
    const creatio: ConfigureCreatioResult = yield* steps.run(CONFIGURE_CREATIO, CREATIO_RETRY, {
      host: input.host,
      secretName: site.secretName,
      secretVersion: secret.version,
      creatioCredentialSecretName: site.creatioCredentialSecretName,
      mailServerId: site.mailServerId,
      appId: site.appId,
    });
    if (creatio.syncedKeyId !== secret.keyId) {
      throw new StepError(CONFIGURE_CREATIO, `Step 3 of ${TOTAL_STEPS} (${CONFIGURE_CREATIO}) failed: Creatio's recorded keyId is ${creatio.syncedKeyId ?? "none"}, not the new ${secret.keyId}. The next sweep retries.`);
    }

    // 4. Creatio has the new secret; the one it used until now is in its grace period. With no grace
    //    period there is no timer to show: step 7 records previousKeyId with `idle`.
    const graceKeyId = site.creatioHeldKeyId !== secret.keyId ? site.creatioHeldKeyId : site.previousKeyId;
    if (input.gracePeriodHours > 0) {
      yield* steps.run(RECORD_SITE_STATE, GRAPH_RETRY, { host: input.host, rotationState: "grace-period", previousKeyId: graceKeyId });
    } else {
      steps.skip(RECORD_SITE_STATE, { reason: "gracePeriodHours is 0" });
    }

    // 5. Grace period: a durable timer survives restarts; the deadline is fixed by the first execution.
    const graceEndsAt = new Date(context.df.currentUtcDateTime.getTime() + input.gracePeriodHours * 3_600_000);
    if (input.gracePeriodHours > 0) {
      steps.show("gracePeriod", { graceEndsAt: graceEndsAt.toISOString() });
      logEvent(context, EVENTS.rotationStep, { site: input.host, instanceId, step: "gracePeriod", outcome: "started", graceEndsAt: graceEndsAt.toISOString() });
      yield context.df.createTimer(graceEndsAt);
      logEvent(context, EVENTS.rotationStep, { site: input.host, instanceId, step: "gracePeriod", outcome: "succeeded" });
    } else {
      steps.skip("gracePeriod", { reason: "gracePeriodHours is 0" });
    }

    // 6-7. Retire the old password, then any other that is neither current nor Creatio's. A failure
    //      here leaves Creatio on the new secret; the next sweep finishes the clean-up.
    let oldPassword: RemoveOldPasswordResult | null = null;
    if (graceKeyId && graceKeyId !== secret.keyId) {
      oldPassword = yield* steps.run<RemoveOldPasswordResult>(REMOVE_OLD_PASSWORD, GRAPH_RETRY, { host: input.host, appObjectId: site.appObjectId, keyId: graceKeyId, ...inTenant });
    } else {
      steps.skip(REMOVE_OLD_PASSWORD, { reason: "no old password" });
    }
    // 7 also ends the run: idle, recorded on the version it read. previousKeyId stays as the record
    //   of what this rotation replaced (status shows it).
    const stray: RemoveStrayPasswordsResult = yield* steps.run(REMOVE_STRAY_PASSWORDS, GRAPH_RETRY, {
      host: input.host,
      ...inTenant,
      appObjectId: site.appObjectId,
      ...(oldPassword?.remaining ? { passwords: oldPassword.remaining } : {}),
      finish: { lastRun: { kind: "rotate", outcome: "succeeded", instanceId }, previousKeyId: graceKeyId },
    });

    steps.finish("done");
    logEvent(context, EVENTS.rotationFinished, {
      site: input.host,
      instanceId,
      outcome: "succeeded",
      trigger: input.trigger,
      keyId: secret.keyId,
      previousKeyId: graceKeyId,
      issuedNewSecret: !deliverCurrent,
      strayKeyIdsRemoved: stray.removed.length,
    });
    const output: RotateSecretOutput = {
      host: input.host,
      outcome: "succeeded",
      issuedNewSecret: !deliverCurrent,
      keyId: secret.keyId,
      version: secret.version,
      expiresOn: secret.expiresOn,
      previousKeyId: graceKeyId,
      gracePeriodHours: input.gracePeriodHours,
      graceEndedAt: graceEndsAt.toISOString(),
      oldPassword: oldPassword ? { keyId: oldPassword.keyId, outcome: oldPassword.outcome } : null,
      strayPasswordsRemoved: stray.removed.map((p) => p.keyId),
    };
    return output;
  } catch (error) {
    if (!(error instanceof StepError)) throw error;
    // The failure stays in the tags until a later run succeeds (a site that is not managed has none
    // to write). The rotation state changes only once beginRotation has marked it rotating.
    yield* recordSiteStateQuietly(context, EVENTS.rotationStep, {
      host: input.host,
      ...(begun ? { rotationState: "failed" as const } : {}),
      lastRun: { kind: "rotate", outcome: "failed", step: error.step, instanceId },
    });
    steps.finish("failed", { error: error.message });
    logEvent(context, EVENTS.rotationFinished, { site: input.host, instanceId, step: error.step, outcome: "failed", error: error.message, trigger: input.trigger });
    throw error;
  }
};

df.app.orchestration(ROTATE_SECRET, rotateSecret);
