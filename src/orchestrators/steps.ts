import type { OrchestrationContext, Task } from "durable-functions";
import { RECORD_SITE_STATE, type RecordSiteStateInput } from "../activities/recordSiteState";
import { retryPolicy } from "./retries";
import { isFinal, publicMessage } from "../domain/failure";
import { logEvent, type EventName } from "../observability";

/**
 * One step helper for both orchestrators: runs an activity, shows "step k of n" (and any retry) in
 * the custom status, writes one structured event per outcome, and retries with exponential backoff
 * on a durable timer, except failures marked final (src/domain/failure.ts), which end the step at
 * once. Deterministic (docs/architecture.md, "Orchestrators are deterministic"): time comes from
 * currentUtcDateTime, nothing else is read.
 */

export interface StepRetry {
  /** Attempts in all, the first included. */
  attempts: number;
  firstDelayMs: number;
  maxDelayMs?: number;
}

/** Custom status of onboardTenant and rotateSecret: one shape for both. */
export interface StepProgress {
  step: string;
  stepNumber: number;
  totalSteps: number;
  /** Attempt of this step now running or waiting (1 for the first). */
  attempt?: number;
  /** While waiting to retry: when the next attempt starts, and why the last one failed. */
  retryAt?: string;
  lastError?: string;
  /** Rotation's grace period: when it ends. */
  graceEndsAt?: string;
  /** The run failed: the message that names the step. */
  error?: string;
  /** A site of another tenant (issue 10): the tenant, and while awaitingAdminConsent the URL an administrator of it opens and until when the run waits. */
  tenantId?: string;
  adminConsentUrl?: string;
  waitingUntil?: string;
  /** What the step waits for (awaitingAdminConsent: why consent is needed). */
  waitingFor?: string;
  /** The consent callback arrived: the run now waits for Entra to show the consent (role replication). */
  consentReceivedAt?: string;
}

export class StepError extends Error {
  override name = "StepError";
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(message);
  }
}

/** Graph and Key Vault steps: throttling and Entra replication lag clear within a minute or so. */
export const GRAPH_RETRY: StepRetry = { attempts: 5, firstDelayMs: 2_000 };
/** Exchange Online: throttling and outages (401/403 are a result, not an error). */
export const EXCHANGE_RETRY: StepRetry = { attempts: 5, firstDelayMs: 2_000 };
/** Creatio, when an administrator is waiting: a site that is down is reported soon rather than retried for long; the same request again resumes. */
export const CREATIO_RETRY: StepRetry = { attempts: 3, firstDelayMs: 2_000 };

export interface StepRunner {
  /** The orchestration's instance id. */
  readonly instanceId: string;
  /** The run's start time: stable across replays, different for the next run of the same instance id. */
  readonly runId: string;
  /** Runs the next step's activity; throws StepError naming it when it fails for good. */
  run<T>(name: string, retry: StepRetry, input: unknown): Generator<Task, T, unknown>;
  /** Counts a step that this run does not need (its number is kept, so k of n stays stable). */
  skip(name: string, fields?: Record<string, unknown>): void;
  /** Shows a step that is not an activity (a timer) as running. */
  show(name: string, extra?: Partial<StepProgress>): void;
  /** The failure of the current step that is not an activity's (a wait), in the words run() uses: "Step k of n (name) failed: … <next action>". */
  fail(message: string): StepError;
  /** Changes what the current step shows, keeping its number (a wait that moves on). */
  note(extra: Partial<StepProgress>, without?: (keyof StepProgress)[]): void;
  /** Final custom status. */
  finish(outcome: "done" | "failed", extra?: Partial<StepProgress>): void;
  readonly current: StepProgress;
}

export function stepRunner(
  context: OrchestrationContext,
  options: {
    site: string;
    totalSteps: number;
    event: EventName;
    /** What the operator does after a failure, appended to its message (every answer says what to do next). */
    nextAction: string;
  },
): StepRunner {
  const instanceId = context.df.instanceId;
  let progress: StepProgress = { step: "starting", stepNumber: 0, totalSteps: options.totalSteps };
  const set = (next: StepProgress) => {
    progress = next;
    context.df.setCustomStatus(progress);
  };
  const log = (step: string, outcome: string, fields: Record<string, unknown> = {}) =>
    logEvent(context, options.event, { site: options.site, step, instanceId, outcome, stepNumber: progress.stepNumber, totalSteps: options.totalSteps, ...fields });

  const failureText = (stepNumber: number, name: string, message: string, attempt = 1) =>
    `Step ${stepNumber} of ${options.totalSteps} (${name}) failed${attempt > 1 ? ` after ${attempt} attempts` : ""}: ${message} ${options.nextAction}`;

  return {
    instanceId,
    runId: context.df.currentUtcDateTime.toISOString(),
    get current() {
      return progress;
    },
    *run<T>(name: string, retry: StepRetry, input: unknown): Generator<Task, T, unknown> {
      const stepNumber = progress.stepNumber + 1;
      for (let attempt = 1; ; attempt++) {
        set({ step: name, stepNumber, totalSteps: options.totalSteps, attempt });
        if (attempt === 1) log(name, "started");
        try {
          const result = (yield context.df.callActivity(name, input)) as T;
          log(name, "succeeded", attempt > 1 ? { attempt } : {});
          return result;
        } catch (error) {
          const message = publicMessage(error, 500);
          if (isFinal(message) || attempt >= retry.attempts) {
            const text = failureText(stepNumber, name, message, attempt);
            log(name, "failed", { attempt, error: text });
            throw new StepError(name, text);
          }
          const delay = Math.min(retry.firstDelayMs * 2 ** (attempt - 1), retry.maxDelayMs ?? 60_000);
          const retryAt = new Date(context.df.currentUtcDateTime.getTime() + delay);
          set({ step: name, stepNumber, totalSteps: options.totalSteps, attempt, retryAt: retryAt.toISOString(), lastError: message });
          log(name, "retrying", { attempt, retryAt: retryAt.toISOString(), error: message });
          yield context.df.createTimer(retryAt);
        }
      }
    },
    skip(name: string, fields: Record<string, unknown> = {}) {
      set({ step: name, stepNumber: progress.stepNumber + 1, totalSteps: options.totalSteps });
      log(name, "skipped", fields);
    },
    show(name: string, extra: Partial<StepProgress> = {}) {
      set({ step: name, stepNumber: progress.stepNumber + 1, totalSteps: options.totalSteps, ...extra });
    },
    fail(message: string) {
      return new StepError(progress.step, failureText(progress.stepNumber, progress.step, message));
    },
    note(extra: Partial<StepProgress>, without: (keyof StepProgress)[] = []) {
      const next: StepProgress = { ...progress, ...extra };
      for (const key of without) delete next[key];
      set(next);
    },
    finish(outcome: "done" | "failed", extra: Partial<StepProgress> = {}) {
      const { step, stepNumber, totalSteps } = progress;
      set(outcome === "done" ? { step: "done", stepNumber: totalSteps, totalSteps } : { step, stepNumber, totalSteps, ...extra });
    },
  };
}

/** Bookkeeping in the site's tags, not a step of the procedure: a failure to record is logged, never fatal. */
export function* recordSiteStateQuietly(context: OrchestrationContext, event: EventName, input: RecordSiteStateInput): Generator<Task, void, unknown> {
  try {
    yield context.df.callActivityWithRetry(RECORD_SITE_STATE, retryPolicy(2_000, 3), input);
  } catch (error) {
    logEvent(context, event, { site: input.host, step: RECORD_SITE_STATE, instanceId: context.df.instanceId, outcome: "failed", error: publicMessage(error) });
  }
}
