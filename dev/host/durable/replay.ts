/**
 * A small model of what the Durable Functions extension does with the actions an out-of-process
 * (JavaScript) orchestrator returns: it replays them against the Durable Task Framework context
 * (azure-functions-durable-extension, Listener/OutOfProcOrchestrationShim.cs, schema V2:
 * `foreach (action in actions) await InvokeAPIFromAction(action)`), while DTF replays the history
 * (DurableTask.Core TaskOrchestrationExecutor / TaskOrchestrationContext):
 *
 * - every scheduling call takes the next sequence number (TaskOrchestrationContext.idCounter);
 * - a TaskScheduled / TimerCreated / SubOrchestrationInstanceCreated event in history must match
 *   an action the replay scheduled with the same id, kind and name, else the orchestration is
 *   non-deterministic (NonDeterministicOrchestrationException);
 * - completion events resolve the task with that id, and continuations run before the next event;
 * - CallActivityWithRetry runs DTF's RetryInterceptor: after EVERY failed attempt (the last too)
 *   it creates a retry timer, unless the delay computes to zero (retryTimeout elapsed); after the
 *   last attempt's timer it fails. Delay = first * backoff^attempt, capped at maxRetryInterval
 *   (DurableTask.Core/RetryInterceptor.cs ComputeNextDelay).
 *
 * Actions scheduled by the replay that history does not yet contain are the episode's new work.
 * Failed tasks do not stop the shim walk: the JS code catches them itself.
 */
import { EventType, type HistoryEvent } from "./history";

/** Action as serialized by durable-functions (lib/src/actions/*.js). */
export interface JsAction {
  actionType: number;
  functionName?: string;
  input?: unknown;
  fireAt?: string;
  isCanceled?: boolean;
  externalEventName?: string;
  retryOptions?: {
    firstRetryIntervalInMilliseconds: number;
    maxNumberOfAttempts: number;
    backoffCoefficient?: number;
    maxRetryIntervalInMilliseconds?: number;
    retryTimeoutInMilliseconds?: number;
  };
  instanceId?: string;
  compoundActions?: JsAction[];
}

export const ActionType = {
  CallActivity: 0,
  CallActivityWithRetry: 1,
  CallSubOrchestrator: 2,
  CallSubOrchestratorWithRetry: 3,
  ContinueAsNew: 4,
  CreateTimer: 5,
  WaitForExternalEvent: 6,
  CallEntity: 7,
  CallHttp: 8,
  SignalEntity: 9,
  WhenAny: 11,
  WhenAll: 12,
  LockEntities: 13,
  ReleaseEntities: 14,
} as const;

class SimTask {
  state: "pending" | "ok" | "failed" = "pending";
  private cbs: (() => void)[] = [];
  get done(): boolean {
    return this.state !== "pending";
  }
  then(cb: () => void): void {
    if (this.done) cb();
    else this.cbs.push(cb);
  }
  settle(ok: boolean): void {
    if (this.done) return;
    this.state = ok ? "ok" : "failed";
    const cbs = this.cbs;
    this.cbs = [];
    for (const cb of cbs) cb();
  }
}

export type NewWork =
  | { kind: "activity"; id: number; name: string; input: string | null }
  | { kind: "timer"; id: number; fireAt: string }
  | { kind: "suborchestration"; id: number; name: string; instanceId: string; input: string | null };

type WorkSpec = NewWork extends unknown ? (NewWork extends infer W ? (W extends NewWork ? Omit<W, "id"> : never) : never) : never;

interface Scheduled {
  work: NewWork;
  task: SimTask;
  confirmed: boolean;
}

export class NonDeterminismError extends Error {
  readonly name = "NonDeterministicOrchestrationException";
}

export interface ReplayResult {
  newWork: NewWork[];
  continueAsNew?: { input: string | null };
  nonDeterminism?: string;
}

export const MAX_SHORT_TIMER_MS = 6 * 24 * 3600 * 1000; // "6.00:00:00"
export const LONG_TIMER_INTERVAL_MS = 3 * 24 * 3600 * 1000; // "3.00:00:00"

const toJson = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));
// durable-functions pre-serializes string inputs of activities and continueAsNew
// (Utils.processInput: a string becomes its JSON text); other values are still values.
const actionInput = (v: unknown): string | null => (typeof v === "string" ? v : toJson(v));

export class DtfReplay {
  private nextId = 0;
  private readonly scheduled = new Map<number, Scheduled>();
  private readonly waiters = new Map<string, SimTask[]>();
  private readonly buffered = new Map<string, number>();
  private now: Date = new Date(0);
  private continueAsNew: { input: string | null } | undefined;

  constructor(
    private readonly instanceId: string,
    private readonly executionId: string,
    private readonly actions: JsAction[],
  ) {}

  run(history: HistoryEvent[]): ReplayResult {
    try {
      for (const e of history) this.apply(e);
    } catch (err) {
      if (err instanceof NonDeterminismError) return { newWork: [], nonDeterminism: err.message };
      throw err;
    }
    const newWork = [...this.scheduled.entries()]
      .filter(([, s]) => !s.confirmed)
      .sort(([a], [b]) => a - b)
      .map(([, s]) => s.work);
    return { newWork, continueAsNew: this.continueAsNew };
  }

  private apply(e: HistoryEvent): void {
    switch (e.EventType) {
      case EventType.OrchestratorStarted:
        this.now = new Date(e.Timestamp);
        return;
      case EventType.ExecutionStarted:
        this.runShim();
        return;
      case EventType.TaskScheduled:
        return this.confirm(e, "activity");
      case EventType.TimerCreated:
        return this.confirm(e, "timer");
      case EventType.SubOrchestrationInstanceCreated:
        return this.confirm(e, "suborchestration");
      case EventType.TaskCompleted:
      case EventType.SubOrchestrationInstanceCompleted:
        return this.complete(e.TaskScheduledId, true);
      case EventType.TaskFailed:
      case EventType.SubOrchestrationInstanceFailed:
        return this.complete(e.TaskScheduledId, false);
      case EventType.TimerFired:
        return this.complete(e.TimerId, true);
      case EventType.EventRaised: {
        const name = e.Name ?? "";
        const list = this.waiters.get(name);
        const t = list?.shift();
        if (t) t.settle(true);
        else this.buffered.set(name, (this.buffered.get(name) ?? 0) + 1);
        return;
      }
      default:
        return;
    }
  }

  private confirm(e: HistoryEvent, kind: NewWork["kind"]): void {
    const s = this.scheduled.get(e.EventId);
    const what = kind === "activity" ? "an activity task" : kind === "timer" ? "a durable timer" : "a sub-orchestration";
    const named = e.Name ? ` named '${e.Name}'` : "";
    if (!s) {
      throw new NonDeterminismError(
        `Non-Deterministic workflow detected: A previous execution of this orchestration scheduled ${what} with sequence number ${e.EventId}${named}, ` +
          `but the current replay execution hasn't (yet?) scheduled this task. Was a change made to the orchestrator code after this instance had already started running?`,
      );
    }
    const currentName = "name" in s.work ? s.work.name : undefined;
    if (s.work.kind !== kind || (kind !== "timer" && currentName !== e.Name)) {
      const current = s.work.kind === "timer" ? "a durable timer" : `${s.work.kind === "activity" ? "an activity task" : "a sub-orchestration"} named '${currentName}'`;
      throw new NonDeterminismError(
        `Non-Deterministic workflow detected: A previous execution of this orchestration scheduled ${what} with sequence number ${e.EventId}${named}, ` +
          `but the current replay execution instead scheduled ${current} with that sequence number. Was a change made to the orchestrator code after this instance had already started running?`,
      );
    }
    s.confirmed = true;
  }

  private complete(id: number | undefined, ok: boolean): void {
    if (id === undefined) return;
    const s = this.scheduled.get(id);
    // DTF ignores completions it has no open task for (e.g. a timer after its task was cancelled).
    if (s && !s.task.done) s.task.settle(ok);
  }

  private schedule(work: WorkSpec): SimTask {
    const id = this.nextId++;
    const task = new SimTask();
    this.scheduled.set(id, { work: { ...work, id } as NewWork, task, confirmed: false });
    return task;
  }

  private timer(fireAt: Date): SimTask {
    return this.schedule({ kind: "timer", fireAt: fireAt.toISOString() });
  }

  /**
   * A user timer. Longer than maximumShortTimerDuration (6 days, sent in the trigger payload) it
   * becomes a chain of timers of longRunningTimerIntervalDuration (3 days) each, then the
   * remainder: what the extension does for Azure Storage and what durable-functions' LongTimerTask
   * (replay schema V3) expects, one sequence number per link.
   */
  private durableTimer(finalFireAt: Date): SimTask {
    if (finalFireAt.getTime() - this.now.getTime() <= MAX_SHORT_TIMER_MS) return this.timer(finalFireAt);
    const outer = new SimTask();
    const link = (): void => {
      const remaining = finalFireAt.getTime() - this.now.getTime();
      const next = remaining > MAX_SHORT_TIMER_MS ? new Date(this.now.getTime() + LONG_TIMER_INTERVAL_MS) : finalFireAt;
      const t = this.timer(next);
      t.then(() => (finalFireAt.getTime() > this.now.getTime() ? link() : outer.settle(true)));
    };
    link();
    return outer;
  }

  private withRetry(start: () => SimTask, opts: NonNullable<JsAction["retryOptions"]>): SimTask {
    const outer = new SimTask();
    const firstAttempt = this.now;
    const max = opts.maxNumberOfAttempts;
    let retryCount = 0;
    const attempt = (): void => {
      const t = start();
      t.then(() => {
        if (t.state === "ok") return outer.settle(true);
        const delay = this.nextDelay(retryCount, firstAttempt, opts);
        if (delay <= 0) return outer.settle(false);
        const timer = this.timer(new Date(this.now.getTime() + delay));
        timer.then(() => {
          retryCount++;
          if (retryCount < max) attempt();
          else outer.settle(false);
        });
      });
    };
    if (max <= 0) outer.settle(false);
    else attempt();
    return outer;
  }

  /** DurableTask.Core RetryInterceptor.ComputeNextDelay. */
  private nextDelay(attempt: number, firstAttempt: Date, o: NonNullable<JsAction["retryOptions"]>): number {
    const timeout = o.retryTimeoutInMilliseconds;
    if (timeout !== undefined && timeout > 0 && timeout < Number.MAX_SAFE_INTEGER) {
      if (!(this.now.getTime() < firstAttempt.getTime() + timeout)) return 0;
    }
    const backoff = o.backoffCoefficient ?? 1;
    const ms = o.firstRetryIntervalInMilliseconds * Math.pow(backoff, attempt);
    const cap = o.maxRetryIntervalInMilliseconds;
    return cap !== undefined && cap > 0 && !(ms < cap) ? cap : ms;
  }

  private invoke(a: JsAction): SimTask | undefined {
    switch (a.actionType) {
      case ActionType.CallActivity:
        return this.schedule({ kind: "activity", name: a.functionName ?? "", input: actionInput(a.input) });
      case ActionType.CallActivityWithRetry:
        return this.withRetry(
          () => this.schedule({ kind: "activity", name: a.functionName ?? "", input: actionInput(a.input) }),
          a.retryOptions ?? { firstRetryIntervalInMilliseconds: 1000, maxNumberOfAttempts: 1 },
        );
      case ActionType.CallSubOrchestrator:
      case ActionType.CallSubOrchestratorWithRetry: {
        const start = (): SimTask => {
          // DTF: a sub-orchestration without an explicit id gets "{parentId}:{sequence}" (.NET:
          // TaskOrchestrationContext). Ours: the same pattern, deterministic across replays.
          const id = this.nextId;
          const childId = a.instanceId || `${this.instanceId}:${id.toString(16).padStart(4, "0")}`;
          return this.schedule({ kind: "suborchestration", name: a.functionName ?? "", instanceId: childId, input: toJson(a.input) });
        };
        return a.actionType === ActionType.CallSubOrchestrator || !a.retryOptions ? start() : this.withRetry(start, a.retryOptions);
      }
      case ActionType.ContinueAsNew:
        this.continueAsNew = { input: actionInput(a.input) };
        return undefined;
      case ActionType.CreateTimer: {
        const t = this.durableTimer(new Date(a.fireAt ?? this.now));
        if (a.isCanceled) {
          const c = new SimTask();
          c.settle(false);
          return c;
        }
        return t;
      }
      case ActionType.WaitForExternalEvent: {
        const name = a.externalEventName ?? "";
        const t = new SimTask();
        const n = this.buffered.get(name) ?? 0;
        if (n > 0) {
          this.buffered.set(name, n - 1);
          t.settle(true);
        } else {
          const list = this.waiters.get(name) ?? [];
          list.push(t);
          this.waiters.set(name, list);
        }
        return t;
      }
      case ActionType.WhenAll:
      case ActionType.WhenAny: {
        const children = (a.compoundActions ?? []).map((c) => this.invoke(c)).filter((t): t is SimTask => t !== undefined);
        const t = new SimTask();
        const any = a.actionType === ActionType.WhenAny;
        if (children.length === 0) t.settle(true);
        for (const c of children) {
          c.then(() => {
            if (any || children.every((x) => x.done)) t.settle(children.every((x) => x.state !== "failed") || any);
          });
        }
        return t;
      }
      default:
        throw new Error(
          `The local host does not support Durable action type ${a.actionType} (entities and callHttp are not implemented).`,
        );
    }
  }

  private runShim(): void {
    let i = 0;
    const step = (): void => {
      while (i < this.actions.length) {
        const t = this.invoke(this.actions[i++]);
        if (t && !t.done) {
          t.then(step);
          return;
        }
      }
    };
    step();
  }

  get execution(): string {
    return this.executionId;
  }
}
