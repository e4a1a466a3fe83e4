/**
 * Cross-check of the host's DTF replay model (dev/host/durable/replay.ts) against the real
 * durable-functions replay engine, in memory: after every episode the host's sequence numbers
 * must be the ones the JS SDK waits on, or the orchestration would never see its results.
 * Scenarios interleave retries with parallel tasks and use a multi-link long timer.
 */
import { DtfReplay, type JsAction } from "../../dev/host/durable/replay";
import { ev, EventType, type HistoryEvent } from "../../dev/host/durable/history";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const testing = require("durable-functions/lib/src/util/testingUtils") as {
  createOrchestrator(fn: (ctx: unknown) => Generator<unknown, unknown, unknown>): (input: unknown, ctx: unknown) => Promise<unknown>;
  DurableOrchestrationInput: new (...args: unknown[]) => unknown;
  DummyOrchestrationContext: new () => unknown;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const df = require("durable-functions") as { RetryOptions: new (first: number, max: number) => { backoffCoefficient: number } };

interface State {
  isDone: boolean;
  actions: JsAction[][];
  output?: unknown;
  error?: string;
}

type Ctx = {
  df: {
    callActivity(n: string, i?: unknown): unknown;
    callActivityWithRetry(n: string, r: unknown, i?: unknown): unknown;
    createTimer(d: Date): unknown;
    currentUtcDateTime: Date;
    Task: { all(t: unknown[]): unknown; any(t: unknown[]): unknown };
    waitForExternalEvent(n: string): unknown;
  };
};

/**
 * Drives an orchestrator to completion: each episode runs the JS SDK on the history, asks the
 * replay model for new work, records it, then completes ONE outstanding item (oldest first) the
 * way `complete` decides. Returns the final state and the history.
 */
async function drive(
  fn: (ctx: Ctx) => Generator<unknown, unknown, unknown>,
  complete: (name: string, attempt: number) => { ok: boolean; result?: unknown },
): Promise<{ state: State; history: HistoryEvent[] }> {
  const orchestrator = testing.createOrchestrator(fn as never);
  let clock = Date.parse("2030-01-01T00:00:00Z");
  const history: HistoryEvent[] = [ev(EventType.OrchestratorStarted, new Date(clock)), ev(EventType.ExecutionStarted, new Date(clock), { Name: "o", Input: null })];
  const attempts = new Map<string, number>();
  const open: HistoryEvent[] = [];
  for (let episode = 0; episode < 200; episode++) {
    let state: State;
    try {
      const input = new testing.DurableOrchestrationInput("inst", history.map((e) => ({ ...e })), undefined, "3.00:00:00", "6.00:00:00", 30000, 2);
      state = (await orchestrator(input, new testing.DummyOrchestrationContext())) as State;
    } catch (e) {
      const msg = String((e as Error).message);
      state = JSON.parse(msg.slice(msg.indexOf("$OutOfProcData$:") + 16)) as State;
    }
    const replay = new DtfReplay("inst", "exec", state.actions[0] ?? []).run(history);
    expect(replay.nonDeterminism).toBeUndefined();
    if (state.isDone || state.error) return { state, history };
    for (const w of replay.newWork) {
      if (w.kind === "activity") {
        const e = ev(EventType.TaskScheduled, new Date(clock), { EventId: w.id, Name: w.name, Input: w.input });
        history.push(e);
        open.push(e);
      } else if (w.kind === "timer") {
        const e = ev(EventType.TimerCreated, new Date(clock), { EventId: w.id, FireAt: w.fireAt });
        history.push(e);
        open.push(e);
      }
    }
    history.push(ev(EventType.OrchestratorCompleted, new Date(clock)));
    const next = open.shift();
    if (!next) throw new Error("orchestration waits on nothing");
    if (next.EventType === EventType.TimerCreated) {
      clock = Math.max(clock, Date.parse(String(next.FireAt)));
      history.push(ev(EventType.OrchestratorStarted, new Date(clock)), ev(EventType.TimerFired, new Date(clock), { TimerId: next.EventId, FireAt: next.FireAt }));
    } else {
      clock += 1000;
      const name = String(next.Name);
      const n = (attempts.get(name) ?? 0) + 1;
      attempts.set(name, n);
      const r = complete(name, n);
      history.push(
        ev(EventType.OrchestratorStarted, new Date(clock)),
        r.ok
          ? ev(EventType.TaskCompleted, new Date(clock), { TaskScheduledId: next.EventId, Result: JSON.stringify(r.result ?? null) })
          : ev(EventType.TaskFailed, new Date(clock), { TaskScheduledId: next.EventId, Reason: `${name} failed ${n}`, Details: "" }),
      );
    }
  }
  throw new Error("did not finish in 200 episodes");
}

test("retries inside Task.all interleave sequence numbers exactly as the SDK expects", async () => {
  const { state, history } = await drive(
    function* (ctx) {
      const retry = new df.RetryOptions(5000, 3);
      retry.backoffCoefficient = 2;
      const both = (yield ctx.df.Task.all([ctx.df.callActivityWithRetry("shaky", retry, "a"), ctx.df.callActivity("steady", "b"), ctx.df.callActivityWithRetry("shaky2", retry, "c")])) as unknown[];
      const after = yield ctx.df.callActivity("after", both);
      return { both, after };
    },
    (name, attempt) => (name.startsWith("shaky") && attempt < 3 ? { ok: false } : { ok: true, result: `${name}#${attempt}` }),
  );
  expect(state.error).toBeUndefined();
  expect(state.output).toEqual({ both: ["shaky#3", "steady#1", "shaky2#3"], after: "after#1" });
  // Retry delays grow by the backoff coefficient: 5 s, then 10 s.
  const timers = history.filter((e) => e.EventType === EventType.TimerCreated);
  const delays = timers.map((t) => Date.parse(String(t.FireAt)) - Date.parse(String(t.Timestamp)));
  expect(delays.sort((a, b) => a - b)).toEqual([5000, 5000, 10000, 10000]);
});

test("a 10-day durable timer is a chain of 3-day links the SDK replays", async () => {
  const { state, history } = await drive(
    function* (ctx) {
      const start = ctx.df.currentUtcDateTime.getTime();
      yield ctx.df.createTimer(new Date(start + 10 * 24 * 3600 * 1000));
      return (ctx.df.currentUtcDateTime.getTime() - start) / (24 * 3600 * 1000);
    },
    () => ({ ok: true }),
  );
  expect(state.output).toBe(10);
  const fireAts = history.filter((e) => e.EventType === EventType.TimerCreated).map((e) => e.FireAt);
  // Day 3: 7 days left (> 6), another link; day 6: 4 days left, the final timer.
  expect(fireAts).toEqual(["2030-01-04T00:00:00.000Z", "2030-01-07T00:00:00.000Z", "2030-01-11T00:00:00.000Z"]);
});

test("retries exhausted surface the last failure to the orchestrator", async () => {
  const { state } = await drive(
    function* (ctx) {
      try {
        yield ctx.df.callActivityWithRetry("never", new df.RetryOptions(1000, 2), null);
        return "no";
      } catch (e) {
        const done = yield ctx.df.callActivity("cleanup");
        return `caught ${String((e as Error).message).split("\n")[0].trim()} then ${String(done)}`;
      }
    },
    (name, attempt) => (name === "never" ? { ok: false } : { ok: true, result: `${name}#${attempt}` }),
  );
  expect(state.output).toBe("caught never failed 2 then cleanup#1");
});

test("a changed activity name at a replayed sequence number is reported as non-determinism", () => {
  const t = new Date("2030-01-01T00:00:00Z");
  const history = [
    ev(EventType.OrchestratorStarted, t),
    ev(EventType.ExecutionStarted, t, { Name: "o" }),
    ev(EventType.TaskScheduled, t, { EventId: 0, Name: "old" }),
  ];
  const r = new DtfReplay("i", "e", [{ actionType: 0, functionName: "new" }]).run(history);
  expect(r.nonDeterminism).toMatch(/sequence number 0 named 'old'.*named 'new'/);
  const r2 = new DtfReplay("i", "e", []).run(history);
  expect(r2.nonDeterminism).toMatch(/hasn't \(yet\?\) scheduled this task/);
});
