import type { OrchestrationContext, Task, TimerTask } from "durable-functions";
import { z } from "zod";
import { CHECK_TENANT_ACCESS, type CheckTenantAccessInput, type CheckTenantAccessResult } from "../activities/checkTenantAccess";
import { publicMessage } from "../domain/failure";
import { sameConsentState } from "../domain/tenant";
import { EVENTS, logEvent } from "../observability";
import { retryPolicy } from "./retries";
import type { StepProgress, StepRunner } from "./steps";

/**
 * The admin-consent handshake of a site in another tenant, as a durable wait (docs/architecture.md,
 * "Serving several tenants"): the onboarding shows the consent URL in its status and waits for the
 * external event the consent callback raises (GET /api/consent/callback), or for its deadline.
 * Deterministic: the deadline comes from currentUtcDateTime and the input, nothing else is read.
 */
export const ADMIN_CONSENT_EVENT = "AdminConsent";
export const AWAITING_ADMIN_CONSENT = "awaitingAdminConsent";

/** What the callback raises: Entra's answer, with the state it brought back. */
export const adminConsentEventSchema = z.object({
  state: z.string(),
  /** Entra redirected with admin_consent=True. */
  consented: z.boolean(),
  /** The tenant Entra named (on success). */
  tenant: z.string().optional(),
  /** Entra's `error` and `error_description` (a decline, or a failure on Entra's side). */
  error: z.string().max(200).optional(),
  errorDescription: z.string().max(500).optional(),
});
export type AdminConsentEvent = z.infer<typeof adminConsentEventSchema>;

/** What the status shows only while the run waits: dropped once the wait ends, so the state is not offered again. */
const WAITING_FIELDS: (keyof StepProgress)[] = ["adminConsentUrl", "waitingUntil", "waitingFor"];

/** While waiting: how soon Entra is first asked whether consent came without the callback, and how seldom at most. */
const FIRST_POLL_MS = 60_000;
const MAX_POLL_MS = 3_600_000;

/** Role assignments replicate within minutes after consent: about eight minutes of attempts in all. */
const AFTER_CONSENT_RETRY = retryPolicy(5_000, 8, 120_000);

/**
 * Shows the consent URL and waits; on consent, asks Entra again (with backoff) until the provisioner's
 * token carries its roles. Throws StepError (steps.fail) naming the cause on a decline or when the wait ends.
 */
export function* awaitAdminConsent(
  context: OrchestrationContext,
  steps: StepRunner,
  site: string,
  access: Extract<CheckTenantAccessResult, { access: "consentRequired" }>,
  waitHours: number,
  extraRoles: string[] = [],
): Generator<Task, void, unknown> {
  const expectedState = new URL(access.adminConsentUrl).searchParams.get("state") ?? "";
  const log = (outcome: string, fields: Record<string, unknown> = {}) =>
    logEvent(context, EVENTS.onboardingStep, { site, step: AWAITING_ADMIN_CONSENT, instanceId: steps.instanceId, outcome, ...fields });
  const deadline = new Date(context.df.currentUtcDateTime.getTime() + waitHours * 3_600_000);
  steps.show(AWAITING_ADMIN_CONSENT, { tenantId: access.tenantId, adminConsentUrl: access.adminConsentUrl, waitingUntil: deadline.toISOString(), waitingFor: access.reason });
  log("started", { tenantId: access.tenantId, waitingUntil: deadline.toISOString() });

  // The callback may never come although the administrator consented (they used the Entra admin
  // center, or the app was down when their browser came back): Entra is asked again now and then,
  // after 1, 2, 4 ... minutes, at most hourly, so such a consent is noticed within the hour.
  let answer: AdminConsentEvent | undefined;
  let pollMs = FIRST_POLL_MS;
  while (!answer) {
    const now = context.df.currentUtcDateTime.getTime();
    const pollAt = now + pollMs < deadline.getTime() ? new Date(now + pollMs) : undefined;
    const timer: TimerTask = context.df.createTimer(pollAt ?? deadline);
    const event = context.df.waitForExternalEvent(ADMIN_CONSENT_EVENT);
    const winner = (yield context.df.Task.any([event, timer])) as Task;
    if (winner === timer) {
      if (!pollAt) {
        throw steps.fail(`no administrator of tenant ${access.tenantId} consented within ${waitHours} hours (ADMIN_CONSENT_WAIT_HOURS).`);
      }
      pollMs = Math.min(pollMs * 2, MAX_POLL_MS);
      if (yield* consentedMeanwhile(context, access.tenantId, steps.instanceId, extraRoles)) {
        steps.note({ consentReceivedAt: context.df.currentUtcDateTime.toISOString() }, WAITING_FIELDS);
        log("consented", { tenantId: access.tenantId, via: "poll" });
        return;
      }
      continue;
    }
    timer.cancel();
    const parsed = adminConsentEventSchema.safeParse(event.result);
    // Only the callback raises this event, after checking the state; anything else is ignored.
    if (parsed.success && sameConsentState(parsed.data.state, expectedState)) answer = parsed.data;
    else log("ignored", { reason: "an event without this run's consent state" });
  }

  if (!answer.consented) {
    const why = [answer.error, answer.errorDescription].filter(Boolean).join(": ") || "no reason given";
    steps.note({}, WAITING_FIELDS);
    throw steps.fail(`the administrator of tenant ${access.tenantId} did not consent (Entra: ${why}).`);
  }
  // The state is spent: the status no longer shows it, so the callback refuses it from now on.
  steps.note({ consentReceivedAt: context.df.currentUtcDateTime.toISOString() }, WAITING_FIELDS);
  log("consented", { tenantId: access.tenantId });
  try {
    const input: CheckTenantAccessInput = { tenantId: access.tenantId, instanceId: steps.instanceId, afterConsent: true, ...(extraRoles.length ? { extraRoles } : {}) };
    yield context.df.callActivityWithRetry(CHECK_TENANT_ACCESS, AFTER_CONSENT_RETRY, input);
  } catch (error) {
    throw steps.fail(`the administrator consented, but Entra still refuses the provisioner in tenant ${access.tenantId}: ${publicMessage(error, 300)}`);
  }
}

/** One look at Entra while waiting: true when the provisioner is let in with every role. A failure to ask is not an answer: the wait goes on. */
function* consentedMeanwhile(context: OrchestrationContext, tenantId: string, instanceId: string, extraRoles: string[]): Generator<Task, boolean, unknown> {
  try {
    const input: CheckTenantAccessInput = { tenantId, instanceId, ...(extraRoles.length ? { extraRoles } : {}) };
    const result = (yield context.df.callActivity(CHECK_TENANT_ACCESS, input)) as CheckTenantAccessResult;
    return result.access === "granted";
  } catch {
    return false;
  }
}
