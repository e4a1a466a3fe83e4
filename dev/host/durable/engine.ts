/**
 * The Durable engine: runs orchestrator episodes with the real durable-functions replay code
 * (the app's own orchestrationTrigger function) and activities, with all state in DurableStore.
 *
 * Episode (one "orchestration work item" in DTF terms):
 *   1. read the status row and visible inbox messages of one instance (one partition query) and
 *      its committed history (kept in memory from this process's last commit while the status
 *      row's execution id and episode count match, else read from the History table);
 *   2. drop inbox messages already reflected in history (dedupe by event key) or meant for an
 *      older execution; append OrchestratorStarted + the remaining events;
 *   3. invoke the orchestrator with the trigger payload the extension sends
 *      (docs/architecture.md, "Local stack"; durable-functions Orchestrator.js reads it);
 *   4. replay its actions DTF-style (replay.ts) to get new work and detect non-determinism;
 *   5. write the history episode row, then commit the status row + inbox deletes + new activity
 *      work items + new timers in one transaction on the instance partition.
 *
 * Activities are at-least-once, as in Azure: one interrupted mid-run (host killed) runs again
 * after restart; its result is applied to history once.
 *
 * Dispatch: work this process commits is started at once, in process (an activity result runs the
 * instance's next episode; an episode's new activities start from the rows it just committed; a
 * start, raised event or terminate runs an episode). At most one episode per instance runs at a
 * time; work arriving meanwhile runs another right after. Only after a commit, so a crash loses
 * nothing: the table scan (on start, every idle tick and when a timer comes due) finds whatever is
 * committed and not running, as before, including work another process committed.
 */
import { randomUUID } from "node:crypto";
import type { TransactionAction } from "@azure/data-tables";
import type { FunctionRegistry, RegisteredFunction, RpcTypedData } from "../functionsCore";
import { invokeFunction, InvocationError } from "../invoke";
import type { HostLogger } from "../log";
import { errMessage, errStack } from "../env";
import { completionKey, ev, EventType, type HistoryEvent } from "./history";
import { DtfReplay, type JsAction, type NewWork } from "./replay";
import { DurableStore, INSTANCE_RK, TERMINAL, type ActivityRow, type InboxRow, type InstanceRow } from "./store";

export interface EngineOptions {
  store: DurableStore;
  registry: FunctionRegistry;
  logger: HostLogger;
  /** Extra input bindings (the durable client) for functions invoked by the engine. */
  clientBindingData: () => unknown;
  idleMs?: number;
  /** Activities run at once (host.json durableTask.maxConcurrentActivityFunctions; see index.ts). */
  maxConcurrentActivities?: number;
}

interface OrchestratorState {
  isDone: boolean;
  actions: JsAction[][];
  output?: unknown;
  error?: string;
  customStatus?: unknown;
  schemaVersion?: number;
}

const OUT_OF_PROC_LABEL = "$OutOfProcData$:";

export class StartConflictError extends Error {}

export class DurableEngine {
  private running = false;
  private loopDone: Promise<void> | undefined;
  private wakeResolve: (() => void) | undefined;
  private wakeRequested = false;
  private readonly busyInstances = new Set<string>();
  /** Instances whose episode failed inside the host: retried with backoff, not every tick. */
  private readonly backoff = new Map<string, { failures: number; until: number }>();
  /** Instances that got new work while an episode of theirs ran: processed again right after. */
  private readonly rerunInstances = new Set<string>();
  private readonly runningActivities = new Map<string, Promise<void>>();
  /**
   * Activities whose work item this process has deleted (completed), with the number of the scan
   * that was the latest to start at that time: a scan that started earlier may still list the row,
   * and must not run the activity again. Forgotten once a scan that started later has finished.
   */
  private readonly finishedActivities = new Map<string, number>();
  private scansStarted = 0;
  /** An activity was left for the scan because maxConcurrentActivities was reached. */
  private activitiesWaiting = false;
  /** Committed history per instance (see committedHistory). */
  private readonly historyCache = new Map<string, { executionId: string; episode: number; events: HistoryEvent[] }>();
  private readonly inflight = new Set<Promise<void>>();
  readonly store: DurableStore;

  constructor(private readonly o: EngineOptions) {
    this.store = o.store;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
  }

  /**
   * Stops dispatching and waits (at most `graceMs`) for in-flight episodes and activities.
   * Anything still running then is simply redone after the next start, as after a crash.
   */
  async stop(graceMs = 10000): Promise<void> {
    this.running = false;
    this.wake();
    await this.loopDone;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inflight, ...this.runningActivities.values()]),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
    ]);
    if (timer) clearTimeout(timer);
  }

  wake(): void {
    this.wakeRequested = true;
    this.wakeResolve?.();
  }

  private async loop(): Promise<void> {
    const idle = this.o.idleMs ?? 100;
    while (this.running) {
      this.wakeRequested = false;
      let next: string | undefined;
      try {
        next = await this.tick();
      } catch (e) {
        this.o.logger.host("error", `Durable dispatcher error: ${errMessage(e)}`);
      }
      if (!this.running) break;
      if (this.wakeRequested) continue;
      let wait = idle;
      if (next) wait = Math.max(0, Math.min(idle, Date.parse(next) - Date.now()));
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, wait);
        this.wakeResolve = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wakeResolve = undefined;
    }
  }

  private track(p: Promise<void>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /**
   * One scan of the tables; returns the next future timer time, if any. This process dispatches
   * its own work directly (dispatchInstance, startActivity); the scan is the safety net for work
   * found on start, written by other processes, timers come due and activities left waiting for a
   * free slot.
   */
  private async tick(): Promise<string | undefined> {
    const { due, nextVisibleAt } = await this.store.instancesWithDueWork(new Date());
    for (const id of due) this.dispatchInstance(id);
    const scan = ++this.scansStarted;
    this.activitiesWaiting = false;
    for (const a of await this.store.listActivities()) this.startActivity(a);
    for (const [key, lastScanThen] of this.finishedActivities) if (lastScanThen < scan) this.finishedActivities.delete(key);
    return nextVisibleAt;
  }

  /**
   * Runs an episode of one instance now, unless one is running (then it runs again right after,
   * so what arrived meanwhile is processed promptly) or the instance is backing off after a failure.
   */
  private dispatchInstance(id: string): void {
    if (!this.running) return; // the scan after the next start finds it
    if (this.busyInstances.has(id)) {
      this.rerunInstances.add(id);
      return;
    }
    const b = this.backoff.get(id);
    if (b && b.until > Date.now()) return;
    this.busyInstances.add(id);
    this.track(
      this.processInstance(id)
        .then(() => void this.backoff.delete(id))
        .catch((e) => {
          const failures = (b?.failures ?? 0) + 1;
          this.backoff.set(id, { failures, until: Date.now() + Math.min(30000, 200 * 2 ** failures) });
          this.o.logger.host("error", `Orchestration episode for '${id}' failed in the host (attempt ${failures}, retrying): ${errStack(e)}`);
        })
        .finally(() => {
          this.busyInstances.delete(id);
          if (this.rerunInstances.delete(id)) this.dispatchInstance(id);
        }),
    );
  }

  /**
   * Runs a committed activity work item unless it is already running here, or was completed here
   * and a scan that started before that is listing it again (at-least-once, but not needlessly
   * twice). At maxConcurrentActivities it is left for the next scan.
   */
  private startActivity(a: ActivityRow): void {
    if (!this.running) return;
    const key = `${a.instanceId}\u0000${a.rowKey}`;
    if (this.runningActivities.has(key) || this.finishedActivities.has(key)) return;
    if (this.runningActivities.size >= (this.o.maxConcurrentActivities ?? 16)) {
      this.activitiesWaiting = true;
      return;
    }
    const p = this.runActivity(a)
      .then((applied) => {
        this.finishedActivities.set(key, this.scansStarted);
        if (applied) this.dispatchInstance(a.instanceId);
      })
      .catch((e) => this.o.logger.host("error", `Activity '${a.name}' could not be recorded: ${errMessage(e)}`))
      .finally(() => {
        this.runningActivities.delete(key);
        if (this.activitiesWaiting) this.wake(); // a slot is free: let the scan start the next one
      });
    this.runningActivities.set(key, p);
  }

  // ---- client operations -----------------------------------------------------------------

  async startNew(name: string, instanceId: string | undefined, input: string | null): Promise<string> {
    const fn = this.o.registry.get(name);
    if (!fn || fn.triggerType !== "orchestrationtrigger") throw new Error(`The function '${name}' doesn't exist, is disabled, or is not an orchestrator function.`);
    const id = instanceId ?? randomUUID().replace(/-/g, "");
    const existing = await this.store.getInstance(id);
    // DurableTaskOptions.OverridableExistingInstanceStates defaults to NonRunningStates: an
    // instance that is Pending/Running is not replaced (OrchestrationAlreadyExistsException).
    if (existing && !TERMINAL.includes(existing.status)) {
      throw new StartConflictError(`An Orchestration instance with the status ${existing.status} already exists.`);
    }
    await this.createInstance(fn.metadata.name, id, input);
    return id;
  }

  private async createInstance(name: string, id: string, input: string | null, parent?: { instanceId: string; executionId: string; taskId: number }): Promise<void> {
    const now = new Date();
    const executionId = randomUUID().replace(/-/g, "");
    const row: InstanceRow = {
      instanceId: id,
      name,
      status: "Pending",
      executionId,
      episode: 0,
      input,
      output: null,
      customStatus: null,
      createdTime: now.toISOString(),
      lastUpdatedTime: now.toISOString(),
      parentInstanceId: parent?.instanceId,
      parentExecutionId: parent?.executionId,
      parentTaskId: parent?.taskId,
      parentNotified: parent ? false : undefined,
    };
    const startMsg: InboxRow = {
      rowKey: `p-${executionId}-start`,
      executionId,
      visibleAt: now.toISOString(),
      enqueuedAt: now.toISOString(),
      kind: "event",
      event: ev(EventType.ExecutionStarted, now, {
        Name: name,
        Input: input,
        OrchestrationInstance: { InstanceId: id, ExecutionId: executionId },
        ParentInstance: parent ? { OrchestrationInstance: { InstanceId: parent.instanceId, ExecutionId: parent.executionId }, TaskScheduleId: parent.taskId } : undefined,
      }),
    };
    const pk = this.store.instanceEntity(row).partitionKey;
    // Rows of a previous execution under the same id are removed in the same transaction.
    const stale = (await this.store.partitionRowKeys(id)).filter((rk) => rk !== INSTANCE_RK);
    await this.store.commit([
      ["upsert", this.store.instanceEntity(row), "Replace"],
      ["upsert", this.store.inboxEntity(id, startMsg), "Replace"],
      ...stale.filter((rk) => rk !== startMsg.rowKey).map((rk) => ["delete", { partitionKey: pk, rowKey: rk }] as TransactionAction),
    ]);
    this.dispatchInstance(id);
  }

  async raiseEvent(instanceId: string, eventName: string, data: string | null): Promise<"ok" | "notfound" | "gone"> {
    return this.enqueueForRunning(instanceId, "event", (now) => ({ kind: "event", event: ev(EventType.EventRaised, now, { Name: eventName, Input: data }) }));
  }

  async terminate(instanceId: string, reason: string): Promise<"ok" | "notfound" | "gone"> {
    return this.enqueueForRunning(instanceId, "terminate", () => ({ kind: "terminate", reason }));
  }

  /** Queues a message for an instance that exists and has not ended (raise event, terminate). */
  private async enqueueForRunning(
    instanceId: string,
    label: string,
    body: (now: Date) => { kind: "event"; event: ReturnType<typeof ev> } | { kind: "terminate"; reason: string },
  ): Promise<"ok" | "notfound" | "gone"> {
    const inst = await this.store.getInstance(instanceId);
    if (!inst) return "notfound";
    if (TERMINAL.includes(inst.status)) return "gone";
    const now = new Date();
    await this.store.enqueue(instanceId, {
      rowKey: `p-${label}-${now.toISOString()}-${randomUUID()}`,
      executionId: inst.executionId,
      visibleAt: now.toISOString(),
      enqueuedAt: now.toISOString(),
      ...body(now),
    });
    this.dispatchInstance(instanceId);
    return "ok";
  }

  async getHistory(inst: InstanceRow): Promise<HistoryEvent[]> {
    return this.store.loadHistory(inst.instanceId, inst.executionId, inst.episode);
  }

  /** Deletes everything about an instance (Durable HTTP API purge). */
  async purge(instanceId: string): Promise<number> {
    this.historyCache.delete(instanceId);
    return this.store.purge(instanceId);
  }

  /**
   * The committed history of the instance's current execution. Episodes of an instance run one at
   * a time in this process, so the history this process committed last is kept in memory; it is
   * used only while the status row still names that execution and episode count (anything else,
   * e.g. another process having committed meanwhile, reads the table again). Treat as read-only.
   */
  private async committedHistory(inst: InstanceRow): Promise<HistoryEvent[]> {
    const c = this.historyCache.get(inst.instanceId);
    if (c && c.executionId === inst.executionId && c.episode === inst.episode) return c.events;
    // No episode committed yet: nothing to read (rows of a crashed first episode are ignored anyway).
    const events = inst.episode === 0 ? [] : await this.getHistory(inst);
    this.historyCache.set(inst.instanceId, { executionId: inst.executionId, episode: inst.episode, events });
    return events;
  }

  // ---- episodes --------------------------------------------------------------------------

  private async processInstance(instanceId: string): Promise<void> {
    const { inst, inbox } = await this.store.readInstanceAndInbox(instanceId);
    const nowIso = new Date().toISOString();
    const visible = inbox.filter((m) => m.visibleAt <= nowIso);
    if (visible.length === 0) return;
    const pk = visible.length ? this.store.inboxEntity(instanceId, visible[0]).partitionKey : "";
    const del = (m: InboxRow): TransactionAction => ["delete", { partitionKey: pk, rowKey: m.rowKey }];
    if (!inst || TERMINAL.includes(inst.status)) {
      // Late results for a finished or purged instance: nothing to apply.
      if (inst) await this.store.commit(visible.map(del));
      else await this.store.commit(visible.map(del)).catch(() => undefined);
      return;
    }
    const fn = this.o.registry.get(inst.name);
    const history = await this.committedHistory(inst);
    const seen = new Set(history.map(completionKey).filter((k): k is string => k !== undefined));
    const scheduledIds = new Set(
      history.filter((e) => e.EventType === EventType.TaskScheduled || e.EventType === EventType.TimerCreated || e.EventType === EventType.SubOrchestrationInstanceCreated).map((e) => e.EventId),
    );
    const now = new Date();
    const terminate = visible.find((m) => m.kind === "terminate" && m.executionId === inst.executionId);
    if (terminate) return this.finishTerminated(inst, history, now, terminate.reason ?? "", visible.map(del));

    const newEvents: HistoryEvent[] = [];
    for (const m of visible) {
      if (m.kind !== "event" || !m.event) continue;
      if (m.executionId !== inst.executionId) continue;
      const key = completionKey(m.event);
      if (key !== undefined && seen.has(key)) continue; // already applied: never twice
      if (key !== undefined && key !== "start") {
        const id = m.event.TaskScheduledId ?? m.event.TimerId ?? -1;
        if (!scheduledIds.has(id)) continue; // result of work an uncommitted episode started
      }
      if (key !== undefined) seen.add(key);
      newEvents.push({ ...m.event, IsPlayed: false });
    }
    const consumed = visible.map(del);
    if (newEvents.length === 0) {
      await this.store.commit(consumed);
      return;
    }
    if (!fn || fn.triggerType !== "orchestrationtrigger") {
      return this.finishFailed(inst, history, [ev(EventType.OrchestratorStarted, now), ...newEvents], now, `The orchestrator function '${inst.name}' does not exist.`, consumed, undefined);
    }

    const episodeEvents = [ev(EventType.OrchestratorStarted, now), ...newEvents];
    const played = history.map((e) => ({ ...e, IsPlayed: true }));
    const full = [...played, ...episodeEvents];
    const { state, thrown } = await this.invokeOrchestrator(fn, inst, full);
    const customStatus = state?.customStatus === undefined ? inst.customStatus : JSON.stringify(state.customStatus);
    if (!state) {
      return this.finishFailed(inst, history, episodeEvents, now, `Orchestrator function '${inst.name}' failed: ${thrown}`, consumed, customStatus);
    }
    const actions = state.actions?.[0] ?? [];
    let replay;
    try {
      replay = new DtfReplay(inst.instanceId, inst.executionId, actions).run(full);
    } catch (e) {
      return this.finishFailed(inst, history, episodeEvents, now, `Orchestrator function '${inst.name}' failed: ${errMessage(e)}`, consumed, customStatus);
    }
    if (replay.nonDeterminism) {
      this.o.logger.host("error", `Orchestration '${inst.instanceId}' (${inst.name}): ${replay.nonDeterminism}`);
      return this.finishFailed(inst, history, episodeEvents, now, `NonDeterministicOrchestrationException: ${replay.nonDeterminism}`, consumed, customStatus);
    }
    if (state.error !== undefined && state.error !== null) {
      return this.finishFailed(inst, history, episodeEvents, now, `Orchestrator function '${inst.name}' failed: ${state.error}`, consumed, customStatus);
    }
    if (state.isDone && replay.continueAsNew) {
      return this.finishContinueAsNew(inst, history, episodeEvents, now, replay.continueAsNew.input, consumed, customStatus);
    }
    if (state.isDone) {
      const output = state.output === undefined ? null : JSON.stringify(state.output);
      const events = [
        ...episodeEvents,
        ev(EventType.OrchestratorCompleted, now),
        ev(EventType.ExecutionCompleted, now, { OrchestrationStatus: "Completed", Result: output }),
      ];
      return this.commitEpisode({ ...inst, status: "Completed", output, customStatus }, events, consumed, []);
    }
    // Still running: record new work.
    const workEvents: HistoryEvent[] = [];
    const workRows: TransactionAction[] = [];
    const activities: ActivityRow[] = [];
    for (const w of replay.newWork) {
      workEvents.push(this.scheduledEvent(w, now));
      if (w.kind === "activity") {
        const a: ActivityRow = { rowKey: `a-${inst.executionId}-${w.id}`, instanceId: inst.instanceId, executionId: inst.executionId, taskId: w.id, name: w.name, input: w.input };
        activities.push(a);
        workRows.push(["upsert", this.store.activityEntity(a), "Replace"]);
        continue;
      }
      const row = await this.workRow(inst, w, now);
      if (row) workRows.push(row);
    }
    const events = [...episodeEvents, ...workEvents, ev(EventType.OrchestratorCompleted, now)];
    await this.commitEpisode({ ...inst, status: "Running", customStatus }, events, consumed, workRows, history);
    // Committed: start the new activities from the rows just written instead of waiting for a scan.
    for (const a of activities) this.startActivity(a);
    // Timers and immediate inbox rows (a sub-orchestration that could not start): the scan
    // recomputes when to wake for the next timer; an immediate row is visible at once.
    if (workRows.length > activities.length) this.wake();
  }

  private scheduledEvent(w: NewWork, now: Date): HistoryEvent {
    switch (w.kind) {
      case "activity":
        return ev(EventType.TaskScheduled, now, { EventId: w.id, Name: w.name, Version: "", Input: w.input });
      case "timer":
        return ev(EventType.TimerCreated, now, { EventId: w.id, FireAt: w.fireAt });
      case "suborchestration":
        return ev(EventType.SubOrchestrationInstanceCreated, now, { EventId: w.id, Name: w.name, InstanceId: w.instanceId, Input: w.input });
    }
  }

  /** The row for new work other than an activity (those are built in processInstance, to be started after the commit). */
  private async workRow(inst: InstanceRow, w: Exclude<NewWork, { kind: "activity" }>, now: Date): Promise<TransactionAction | undefined> {
    switch (w.kind) {
      case "timer":
        return [
          "upsert",
          this.store.inboxEntity(inst.instanceId, {
            rowKey: `p-${inst.executionId}-timer-${w.id}`,
            executionId: inst.executionId,
            visibleAt: w.fireAt,
            enqueuedAt: w.fireAt,
            kind: "event",
            event: ev(EventType.TimerFired, new Date(w.fireAt), { TimerId: w.id, FireAt: w.fireAt }),
          }),
          "Replace",
        ];
      case "suborchestration": {
        // The child lives in its own partition, so it is created before the parent commits;
        // creation is skipped when a child with that id already runs for this parent (replayed).
        const child = await this.store.getInstance(w.instanceId);
        if (!child || child.parentInstanceId !== inst.instanceId || child.parentTaskId !== w.id || child.parentExecutionId !== inst.executionId) {
          const fn = this.o.registry.get(w.name);
          if (fn && fn.triggerType === "orchestrationtrigger") {
            await this.createInstance(fn.metadata.name, w.instanceId, w.input, { instanceId: inst.instanceId, executionId: inst.executionId, taskId: w.id });
          } else {
            return [
              "upsert",
              this.store.inboxEntity(inst.instanceId, {
                rowKey: `p-${inst.executionId}-task-${w.id}`,
                executionId: inst.executionId,
                visibleAt: now.toISOString(),
                enqueuedAt: now.toISOString(),
                kind: "event",
                event: ev(EventType.SubOrchestrationInstanceFailed, now, {
                  TaskScheduledId: w.id,
                  Reason: `The function '${w.name}' doesn't exist, is disabled, or is not an orchestrator function.`,
                  Details: "",
                }),
              }),
              "Replace",
            ];
          }
        }
        return undefined;
      }
    }
  }

  /** Writes the history episode row, then commits; `history` (the committed history before this episode) keeps the cache current. */
  private async commitEpisode(next: InstanceRow, events: HistoryEvent[], consumed: TransactionAction[], work: TransactionAction[], history?: HistoryEvent[]): Promise<void> {
    const episode = next.episode + 1;
    const now = new Date().toISOString();
    await this.store.writeHistoryEpisode(next.instanceId, next.executionId, episode, events);
    const row = { ...next, episode, lastUpdatedTime: now };
    const cleanup: TransactionAction[] = [];
    if (TERMINAL.includes(row.status)) {
      // Finished: outstanding work items and timers of this instance are dropped.
      const pk = this.store.instanceEntity(row).partitionKey;
      const consumedKeys = new Set(consumed.map((a) => (a[1] as { rowKey: string }).rowKey));
      for (const rk of await this.store.partitionRowKeys(row.instanceId)) {
        if (rk !== INSTANCE_RK && !consumedKeys.has(rk)) cleanup.push(["delete", { partitionKey: pk, rowKey: rk }]);
      }
    }
    const commitRow: TransactionAction = ["update", this.store.instanceEntity(row), "Replace", { etag: next.etag }];
    // One entity-group transaction holds at most 100 operations. The commit row goes with as many
    // new work items as fit; any other new work items are written BEFORE it (harmless if we die
    // then: results of work history does not know are dropped and the episode reruns), and inbox
    // deletes that do not fit AFTER it (harmless too: applied events are deduped by key).
    const batch: TransactionAction[] = [commitRow];
    const pre = [...work];
    while (pre.length > 0 && batch.length < 100) batch.push(pre.pop() as TransactionAction);
    const post = [...consumed, ...cleanup];
    while (post.length > 0 && batch.length < 100) batch.push(post.shift() as TransactionAction);
    if (pre.length) await this.store.commit(pre);
    this.historyCache.delete(row.instanceId); // until the commit is known to have applied
    await this.store.commit(batch);
    if (history && !TERMINAL.includes(row.status)) {
      // As loadHistory would read it back (JSON round trip), so the cache never differs from the table.
      const written = JSON.parse(JSON.stringify(events)) as HistoryEvent[];
      this.historyCache.set(row.instanceId, { executionId: row.executionId, episode, events: [...history, ...written] });
    }
    if (post.length) await this.store.commit(post);
    if (TERMINAL.includes(row.status)) {
      this.o.logger.host("information", `Orchestration '${row.instanceId}' (${row.name}) ${row.status}.`);
      await this.notifyParent(row);
    }
  }

  private finishFailed(inst: InstanceRow, history: HistoryEvent[], episodeEvents: HistoryEvent[], now: Date, message: string, consumed: TransactionAction[], customStatus: string | null | undefined): Promise<void> {
    void history;
    const output = JSON.stringify(message);
    const events = [
      ...episodeEvents,
      ev(EventType.OrchestratorCompleted, now),
      ev(EventType.ExecutionCompleted, now, {
        OrchestrationStatus: "Failed",
        Result: output,
        FailureDetails: { ErrorType: message.startsWith("NonDeterministic") ? "NonDeterministicOrchestrationException" : "OrchestrationFailureException", ErrorMessage: message },
      }),
    ];
    return this.commitEpisode({ ...inst, status: "Failed", output, customStatus: customStatus ?? inst.customStatus }, events, consumed, []);
  }

  private finishTerminated(inst: InstanceRow, history: HistoryEvent[], now: Date, reason: string, consumed: TransactionAction[]): Promise<void> {
    void history;
    const output = JSON.stringify(reason);
    const events = [ev(EventType.OrchestratorStarted, now), ev(EventType.ExecutionTerminated, now, { Input: output }), ev(EventType.OrchestratorCompleted, now)];
    return this.commitEpisode({ ...inst, status: "Terminated", output }, events, consumed, []);
  }

  private async finishContinueAsNew(inst: InstanceRow, history: HistoryEvent[], episodeEvents: HistoryEvent[], now: Date, input: string | null, consumed: TransactionAction[], customStatus: string | null): Promise<void> {
    void history;
    const events = [...episodeEvents, ev(EventType.OrchestratorCompleted, now), ev(EventType.ContinueAsNew, now, { Input: input }), ev(EventType.ExecutionCompleted, now, { OrchestrationStatus: "ContinuedAsNew", Result: input })];
    // Close this execution's history, then start a fresh execution under the same id.
    await this.store.writeHistoryEpisode(inst.instanceId, inst.executionId, inst.episode + 1, events);
    const executionId = randomUUID().replace(/-/g, "");
    const pk = this.store.instanceEntity(inst).partitionKey;
    const startMsg: InboxRow = {
      rowKey: `p-${executionId}-start`,
      executionId,
      visibleAt: now.toISOString(),
      enqueuedAt: now.toISOString(),
      kind: "event",
      event: ev(EventType.ExecutionStarted, now, { Name: inst.name, Input: input, OrchestrationInstance: { InstanceId: inst.instanceId, ExecutionId: executionId } }),
    };
    const consumedKeys = new Set(consumed.map((a) => (a[1] as { rowKey: string }).rowKey));
    const stale: TransactionAction[] = (await this.store.partitionRowKeys(inst.instanceId))
      .filter((rk) => rk !== INSTANCE_RK && !consumedKeys.has(rk))
      .map((rk) => ["delete", { partitionKey: pk, rowKey: rk }]);
    const row: InstanceRow = { ...inst, executionId, episode: 0, input, output: null, customStatus, status: "Running", lastUpdatedTime: new Date().toISOString() };
    this.historyCache.delete(inst.instanceId);
    await this.store.commit([["update", this.store.instanceEntity(row), "Replace", { etag: inst.etag }], ["upsert", this.store.inboxEntity(inst.instanceId, startMsg), "Replace"], ...consumed, ...stale]);
    this.dispatchInstance(inst.instanceId); // busy now: the new execution starts right after
  }

  /** Tells a parent orchestration that its sub-orchestration finished (idempotent). */
  private async notifyParent(child: InstanceRow): Promise<void> {
    if (!child.parentInstanceId || child.parentTaskId === undefined || !child.parentExecutionId) return;
    const now = new Date();
    const ok = child.status === "Completed";
    await this.store.enqueue(child.parentInstanceId, {
      rowKey: `p-${child.parentExecutionId}-task-${child.parentTaskId}`,
      executionId: child.parentExecutionId,
      visibleAt: now.toISOString(),
      enqueuedAt: now.toISOString(),
      kind: "event",
      event: ok
        ? ev(EventType.SubOrchestrationInstanceCompleted, now, { TaskScheduledId: child.parentTaskId, Result: child.output })
        : ev(EventType.SubOrchestrationInstanceFailed, now, {
            TaskScheduledId: child.parentTaskId,
            Reason: `Sub-orchestration '${child.name}' (${child.instanceId}) ${child.status}: ${child.output ?? ""}`,
            Details: child.output ?? "",
          }),
    });
    this.dispatchInstance(child.parentInstanceId);
    const fresh = await this.store.getInstance(child.instanceId);
    if (fresh) await this.store.instances.updateEntity({ ...this.store.instanceEntity({ ...fresh, parentNotified: true }) }, "Replace", { etag: fresh.etag }).catch(() => undefined);
  }

  /** Re-sends outcomes of finished sub-orchestrations whose parent was not told (crash in between). */
  async recoverParentNotifications(): Promise<void> {
    for (const inst of await this.store.listInstances()) {
      if (inst.parentInstanceId && inst.parentNotified === false && TERMINAL.includes(inst.status)) await this.notifyParent(inst);
    }
  }

  private async invokeOrchestrator(fn: RegisteredFunction, inst: InstanceRow, history: HistoryEvent[]): Promise<{ state?: OrchestratorState; thrown?: string }> {
    const payload = {
      history,
      input: inst.input === null ? undefined : JSON.parse(inst.input),
      instanceId: inst.instanceId,
      isReplaying: history.some((e) => e.IsPlayed),
      parentInstanceId: inst.parentInstanceId ?? null,
      upperSchemaVersion: 1,
      upperSchemaVersionNew: 2,
      longRunningTimerIntervalDuration: "3.00:00:00",
      maximumShortTimerDuration: "6.00:00:00",
      defaultHttpAsyncRequestSleepTimeMillseconds: 30000,
    };
    try {
      const { response } = await invokeFunction(
        this.o.registry,
        fn,
        { inputData: [{ name: fn.triggerName, data: { string: JSON.stringify(payload) } }, ...this.extraInputs(fn)] },
        this.o.logger,
      );
      return { state: typedToValue(response.returnValue as RpcTypedData | undefined) as OrchestratorState };
    } catch (e) {
      const err = e instanceof InvocationError ? e.cause : e;
      const msg = errMessage(err);
      const i = msg.indexOf(OUT_OF_PROC_LABEL);
      if (i >= 0) {
        try {
          return { state: JSON.parse(msg.slice(i + OUT_OF_PROC_LABEL.length)) as OrchestratorState };
        } catch {
          // fall through
        }
      }
      return { thrown: msg };
    }
  }

  extraInputs(fn: RegisteredFunction): { name: string; data: RpcTypedData }[] {
    const out: { name: string; data: RpcTypedData }[] = [];
    for (const [name, b] of Object.entries(fn.metadata.bindings)) {
      const t = String(b.type ?? "").toLowerCase();
      if (b.direction === "in" && (t === "durableclient" || t === "orchestrationclient")) {
        out.push({ name, data: { string: JSON.stringify(this.o.clientBindingData()) } });
      }
    }
    return out;
  }

  // ---- activities ------------------------------------------------------------------------

  /** Runs an activity and records its result; false if its work item was gone (result dropped). */
  private async runActivity(a: ActivityRow): Promise<boolean> {
    const fn = this.o.registry.get(a.name);
    const now = (): Date => new Date();
    let event: HistoryEvent;
    if (!fn || fn.triggerType !== "activitytrigger") {
      event = ev(EventType.TaskFailed, now(), {
        TaskScheduledId: a.taskId,
        Reason: `The activity function '${a.name}' doesn't exist, is disabled, or is not an activity function.`,
        Details: "",
      });
    } else {
      try {
        const { response } = await invokeFunction(
          this.o.registry,
          fn,
          { inputData: [{ name: fn.triggerName, data: a.input === null ? undefined : { json: a.input } }, ...this.extraInputs(fn)] },
          this.o.logger,
        );
        const value = typedToValue(response.returnValue as RpcTypedData | undefined);
        event = ev(EventType.TaskCompleted, now(), { TaskScheduledId: a.taskId, Result: value === undefined ? null : JSON.stringify(value) });
      } catch (e) {
        const err = e instanceof InvocationError ? e.cause : e;
        const message = errMessage(err);
        this.o.logger.host("warning", `Activity function '${a.name}' failed (instance ${a.instanceId}, task ${a.taskId}): ${message}`);
        event = ev(EventType.TaskFailed, now(), {
          TaskScheduledId: a.taskId,
          Reason: `Activity function '${a.name}' failed: ${message}`,
          Details: errStack(err),
        });
      }
    }
    const t = now().toISOString();
    return this.store.completeActivity(a, {
      rowKey: `p-${a.executionId}-task-${a.taskId}`,
      executionId: a.executionId,
      visibleAt: t,
      enqueuedAt: t,
      kind: "event",
      event,
    });
  }
}

/** The JS value behind an RPC typed data (mirrors @azure/functions fromRpcTypedData). */
export function typedToValue(d: RpcTypedData | undefined | null): unknown {
  if (!d) return undefined;
  if (d.json !== undefined) return JSON.parse(d.json);
  if (d.string !== undefined) {
    return d.string;
  }
  if (d.int !== undefined) return d.int;
  if (d.double !== undefined) return d.double;
  if (d.bytes !== undefined) return Buffer.from(d.bytes).toString("base64");
  return undefined;
}
