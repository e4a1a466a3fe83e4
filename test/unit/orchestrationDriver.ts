import type { OrchestrationContext, OrchestrationHandler } from "durable-functions";
import type { OnboardTenantInput } from "../../src/orchestrators/onboardTenant";

/** The onboarding input the orchestrator tests start from: acme.creatio.com, defaults otherwise. */
export const ONBOARD_INPUT: OnboardTenantInput = {
  host: "acme.creatio.com",
  creatioCredentialSecretName: "creatio-api-acme",
  displayName: "Creatio",
  secretLifetimeDays: 365,
  mailServerId: "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b",
  allowUserConsent: false,
};

/**
 * Drives an orchestrator generator by hand, as the Durable replay would on a first execution:
 * records each activity call with the custom status at that moment, completes timers by moving the
 * clock to their fire time, and answers each activity from `results` (an Error fails the call; an
 * array answers successive calls of the same activity in order).
 */
export interface DrivenCall {
  kind: "activity" | "timer" | "event";
  name: string;
  input: any;
  status: unknown;
  /** callActivityWithRetry's attempts; undefined for callActivity. */
  attempts?: number;
  at: string;
}

/**
 * External events, by name: each `Task.any([event, timer])` takes the next one queued for the
 * event's name (the event wins), or, with none queued, lets the timer fire.
 */
export type ExternalEvents = Record<string, unknown[]>;

export function drive(orchestrator: OrchestrationHandler, instanceId: string, input: unknown, results: Record<string, unknown>, start = new Date("2026-11-27T12:00:00.000Z"), external: ExternalEvents = {}) {
  const calls: DrivenCall[] = [];
  const served: Record<string, number> = {};
  const logs: string[] = [];
  let status: unknown;
  let now = start;
  const context = {
    log: (line: string) => logs.push(line),
    error: (line: string) => logs.push(line),
    warn: (line: string) => logs.push(line),
    df: {
      instanceId,
      isReplaying: false,
      get currentUtcDateTime() {
        return now;
      },
      getInput: () => input,
      setCustomStatus: (s: unknown) => (status = s),
      callActivity: (name: string, activityInput: unknown) => ({ kind: "activity", name, activityInput }),
      callActivityWithRetry: (name: string, retry: { maxNumberOfAttempts: number }, activityInput: unknown) => ({ kind: "activity", name, activityInput, attempts: retry.maxNumberOfAttempts }),
      createTimer: (fireAt: Date) => ({ kind: "timer", name: "timer", fireAt, cancel: () => undefined }),
      waitForExternalEvent: (name: string) => ({ kind: "event", name, result: undefined as unknown }),
      Task: { any: (tasks: unknown[]) => ({ kind: "any", tasks }) },
    },
  } as unknown as OrchestrationContext;
  const gen = orchestrator(context) as Generator<unknown, unknown, unknown>;
  let next = gen.next();
  let error: unknown;
  try {
    while (!next.done) {
      const yielded = next.value as { kind: string; tasks?: { kind: string; name: string; fireAt?: Date; result?: unknown }[] };
      if (yielded.kind === "any") {
        const event = yielded.tasks!.find((t) => t.kind === "event")!;
        const timer = yielded.tasks!.find((t) => t.kind === "timer")!;
        const queued = external[event.name];
        calls.push({ kind: "event", name: event.name, input: timer.fireAt!.toISOString(), status, at: now.toISOString() });
        if (queued && queued.length > 0) {
          event.result = queued.shift();
          next = gen.next(event);
        } else {
          now = timer.fireAt!;
          next = gen.next(timer);
        }
        continue;
      }
      const task = next.value as { kind: "activity" | "timer"; name: string; activityInput?: unknown; attempts?: number; fireAt?: Date };
      calls.push({ kind: task.kind, name: task.name, input: task.kind === "timer" ? task.fireAt!.toISOString() : task.activityInput, status, attempts: task.attempts, at: now.toISOString() });
      if (task.kind === "timer") {
        now = task.fireAt!;
        next = gen.next(undefined);
        continue;
      }
      const answer = results[task.name];
      const result = Array.isArray(answer) && answer.length > 0 ? answer[Math.min((served[task.name] = (served[task.name] ?? 0) + 1) - 1, answer.length - 1)] : answer;
      next = result instanceof Error ? gen.throw(result) : gen.next(result);
    }
  } catch (e) {
    error = e;
  }
  return { calls, activities: calls.filter((c) => c.kind === "activity"), output: next.done ? (next.value as any) : undefined, status, error, logs };
}

/** An activity failure as the SDK hands it to the orchestrator. */
export function activityFailure(message: string): Error {
  return Object.assign(new Error(`Error: ${message}`), { failureDetails: { errorType: "Error", errorMessage: message } });
}
