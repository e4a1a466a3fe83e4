import * as df from "durable-functions";
import type { OrchestrationContext, OrchestrationHandler, RetryOptions, Task } from "durable-functions";
import { z } from "zod";
import { BEGIN_ROTATION, type RotationSite } from "../activities/beginRotation";
import { ISSUE_CLIENT_SECRET, type SecretReference } from "../activities/issueClientSecret";
import { CONFIGURE_CREATIO, type ConfigureCreatioResult } from "../activities/configureCreatio";
import { MARK_ROTATION_STATE } from "../activities/markRotationState";
import { REMOVE_OLD_PASSWORD, type RemoveOldPasswordResult } from "../activities/removeOldPassword";
import { REMOVE_STRAY_PASSWORDS, type RemoveStrayPasswordsResult } from "../activities/removeStrayPasswords";
import { EVENTS, logEvent } from "../observability";
import { retryPolicy, upstreamMessage } from "./retries";

/**
 * "The secret expires; redo steps 8 and 10" as one orchestration (DESIGN section 1, issue 4):
 *
 *   1. beginRotation          mark the site `rotating`; read what Key Vault and Graph know
 *   2. issueClientSecret      new password + new Key Vault version in one step (onboarding's activity)
 *   3. configureCreatio       Creatio gets the new secret (onboarding's activity)
 *   4. markRotationState      `grace-period`, previousKeyId = the password Creatio used until now
 *   5. grace period           durable timer: mail sync in flight may still use the old secret
 *   6. removeOldPassword      the old password, by keyId
 *   7. removeStrayPasswords   any other password that is neither current nor in its grace period
 *   8. markRotationState      `idle`
 *
 * DESIGN rule 6, never break mail sync: nothing is removed before Creatio has the new secret and the
 * grace period has passed. If Creatio cannot be updated, Key Vault's current version is already the
 * new secret, but Creatio and the old password stay as they were: the tags say `failed`, keyId is
 * the new password and creatioSyncedKeyId the one Creatio still holds, which no step removes. The
 * next sweep (due: last rotation failed) starts this again; step 1 then sees that Creatio lacks a
 * current secret that is not yet due and step 2 keeps it instead of issuing another, so a site ends
 * with exactly one new password however many times Creatio failed.
 *
 * Deterministic (DESIGN rule 3): the grace period arrives as input (the starter reads
 * OLD_SECRET_GRACE_HOURS), time comes from currentUtcDateTime, facts from activity results. No
 * secret value passes through here (DESIGN rule 1): issueClientSecret returns a reference.
 */
export const ROTATE_SECRET = "rotateSecret";

export const rotationTriggers = ["sweep", "event", "manual"] as const;

export const rotateSecretInput = z.object({
  host: z.string().min(1),
  gracePeriodHours: z.number().min(0),
  trigger: z.enum(rotationTriggers),
});
export type RotateSecretInput = z.infer<typeof rotateSecretInput>;

export type RotationStep =
  | typeof BEGIN_ROTATION
  | typeof ISSUE_CLIENT_SECRET
  | typeof CONFIGURE_CREATIO
  | typeof MARK_ROTATION_STATE
  | "gracePeriod"
  | typeof REMOVE_OLD_PASSWORD
  | typeof REMOVE_STRAY_PASSWORDS
  | "done"
  | "failed";

/** Custom status: the step running now (and, during the grace period, when it ends). */
export interface RotationProgress {
  step: RotationStep;
  graceEndsAt?: string;
  error?: string;
}

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

/** Graph and Key Vault: throttling and replication lag clear within a minute or so. */
const GRAPH_RETRY = retryPolicy(2_000, 5);
/** Creatio: the client already retries transient errors; a site that stays down fails the run and the next sweep retries. */
const CREATIO_RETRY = retryPolicy(2_000, 2);

export class RotationStepError extends Error {
  override name = "RotationStepError";
}

export const rotateSecret: OrchestrationHandler = function* (context: OrchestrationContext) {
  const input = rotateSecretInput.parse(context.df.getInput());
  const instanceId = context.df.instanceId;
  // The run's start time: stable across replays, different for the next run of the same instance id.
  const runId = context.df.currentUtcDateTime.toISOString();
  const fields = { site: input.host, instanceId };

  function* step<T>(name: RotationStep & string, options: RetryOptions, activityInput: unknown): Generator<Task, T, unknown> {
    context.df.setCustomStatus({ step: name } satisfies RotationProgress);
    logEvent(context, EVENTS.rotationStep, { ...fields, step: name, outcome: "started" });
    try {
      const result = (yield context.df.callActivityWithRetry(name, options, activityInput)) as T;
      logEvent(context, EVENTS.rotationStep, { ...fields, step: name, outcome: "succeeded" });
      return result;
    } catch (error) {
      const message = `${name} failed: ${upstreamMessage(error)}`;
      logEvent(context, EVENTS.rotationStep, { ...fields, step: name, outcome: "failed", error: message });
      throw new RotationStepError(message);
    }
  }

  /** Ends the run as failed: tags say so (the sweep retries), the alert sees rotation.finished. */
  function* fail(failedStep: string, error: unknown, markTags: boolean): Generator<Task, never, unknown> {
    const message = error instanceof Error ? error.message : String(error);
    if (markTags) {
      try {
        yield context.df.callActivityWithRetry(MARK_ROTATION_STATE, GRAPH_RETRY, { host: input.host, state: "failed" });
      } catch (markError) {
        logEvent(context, EVENTS.rotationStep, { ...fields, step: MARK_ROTATION_STATE, outcome: "failed", error: upstreamMessage(markError) });
      }
    }
    context.df.setCustomStatus({ step: "failed", error: message } satisfies RotationProgress);
    logEvent(context, EVENTS.rotationFinished, { ...fields, step: failedStep, outcome: "failed", error: message, trigger: input.trigger });
    throw new RotationStepError(`Rotation of ${input.host} failed at ${failedStep}: ${message}`);
  }

  // 1. Mark rotating; learn the current keyId, the one Creatio holds, and whether the current is due.
  let site: RotationSite;
  try {
    site = yield* step<RotationSite>(BEGIN_ROTATION, GRAPH_RETRY, { host: input.host, instanceId });
  } catch (error) {
    // Nothing changed; the site may not even be managed, so there are no tags to mark.
    return yield* fail(BEGIN_ROTATION, error, false);
  }

  // 2. A new password and Key Vault version, unless Creatio has yet to receive a current secret that
  //    is not due (an earlier run issued it and then failed at Creatio), or a retrying sweep finds
  //    nothing due (an earlier run failed after Creatio had the new secret: only clean-up is left).
  const deliverCurrent = site.currentExists && !site.currentDue && (site.creatioHeldKeyId !== site.keyId || input.trigger === "sweep");
  let secret: Pick<SecretReference, "version" | "keyId" | "expiresOn">;
  if (deliverCurrent) {
    secret = { version: site.version, keyId: site.keyId, expiresOn: site.expiresOn ?? "" };
    const reason = site.creatioHeldKeyId !== site.keyId ? "Creatio has not received the current secret yet" : "nothing is due; finishing an earlier run";
    logEvent(context, EVENTS.rotationStep, { ...fields, step: ISSUE_CLIENT_SECRET, outcome: "skipped", reason, keyId: site.keyId });
  } else {
    try {
      secret = yield* step<SecretReference>(ISSUE_CLIENT_SECRET, GRAPH_RETRY, {
        host: input.host,
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
      });
    } catch (error) {
      return yield* fail(ISSUE_CLIENT_SECRET, error, true);
    }
  }

  // 3. Creatio gets exactly that version. On failure the old password stays: Creatio still uses it.
  try {
    const creatio = yield* step<ConfigureCreatioResult>(CONFIGURE_CREATIO, CREATIO_RETRY, {
      host: input.host,
      secretName: site.secretName,
      secretVersion: secret.version,
      creatioCredentialSecretName: site.creatioCredentialSecretName,
      mailServerId: site.mailServerId,
      appId: site.appId,
    });
    if (creatio.syncedKeyId !== secret.keyId) {
      throw new RotationStepError(`Creatio's recorded keyId is ${creatio.syncedKeyId ?? "none"}, not the new ${secret.keyId}`);
    }
  } catch (error) {
    return yield* fail(CONFIGURE_CREATIO, error, true);
  }

  // 4. Outcome in the tags: Creatio has the new secret; the one it used until now is in its grace period.
  const graceKeyId = site.creatioHeldKeyId !== secret.keyId ? site.creatioHeldKeyId : site.previousKeyId;
  try {
    yield* step(MARK_ROTATION_STATE, GRAPH_RETRY, { host: input.host, state: "grace-period", previousKeyId: graceKeyId });
  } catch (error) {
    return yield* fail(MARK_ROTATION_STATE, error, true);
  }

  // 5. Grace period: a durable timer survives restarts; the deadline is fixed by the first execution.
  const graceEndsAt = new Date(context.df.currentUtcDateTime.getTime() + input.gracePeriodHours * 3_600_000);
  if (input.gracePeriodHours > 0) {
    context.df.setCustomStatus({ step: "gracePeriod", graceEndsAt: graceEndsAt.toISOString() } satisfies RotationProgress);
    logEvent(context, EVENTS.rotationStep, { ...fields, step: "gracePeriod", outcome: "started", graceEndsAt: graceEndsAt.toISOString() });
    yield context.df.createTimer(graceEndsAt);
    logEvent(context, EVENTS.rotationStep, { ...fields, step: "gracePeriod", outcome: "succeeded" });
  }

  // 6-7. Retire the old password, then any other that is neither current nor in its grace period.
  //      A failure here leaves Creatio on the new secret; the next sweep finishes the clean-up
  //      without issuing another password (step 2 finds nothing due).
  let oldPassword: RemoveOldPasswordResult | null = null;
  if (graceKeyId && graceKeyId !== secret.keyId) {
    try {
      oldPassword = yield* step<RemoveOldPasswordResult>(REMOVE_OLD_PASSWORD, GRAPH_RETRY, { host: input.host, appObjectId: site.appObjectId, keyId: graceKeyId });
    } catch (error) {
      return yield* fail(REMOVE_OLD_PASSWORD, error, true);
    }
  }
  let stray: RemoveStrayPasswordsResult;
  try {
    stray = yield* step<RemoveStrayPasswordsResult>(REMOVE_STRAY_PASSWORDS, GRAPH_RETRY, { host: input.host, appObjectId: site.appObjectId, keepKeyIds: [] });
  } catch (error) {
    return yield* fail(REMOVE_STRAY_PASSWORDS, error, true);
  }

  // 8. Idle. previousKeyId stays as the record of what this rotation replaced (status shows it).
  try {
    yield* step(MARK_ROTATION_STATE, GRAPH_RETRY, { host: input.host, state: "idle" });
  } catch (error) {
    return yield* fail(MARK_ROTATION_STATE, error, false);
  }

  context.df.setCustomStatus({ step: "done" } satisfies RotationProgress);
  logEvent(context, EVENTS.rotationFinished, {
    ...fields,
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
    oldPassword,
    strayPasswordsRemoved: stray.removed.map((p) => p.keyId),
  };
  return output;
};

df.app.orchestration(ROTATE_SECRET, rotateSecret);
