/**
 * SIGKILL the host in the middle of an orchestration, start it again on the same Azurite data,
 * and the orchestration resumes from its last committed step: every activity's effect is
 * recorded exactly once, no result is lost or applied twice, and the history is consistent.
 * Activities are at-least-once (as in Azure): the one killed mid-run runs again; its effect is
 * idempotent (keyed by instance and step), its result enters history once.
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import { spawnHost, type SpawnedHost } from "../../dev/host/spawn";
import { FIXTURE_APP, fixtureRuns, startTestAzurite, waitFor, waitForStatus, type TestStorage } from "./helpers";

let storage: TestStorage;
let host: SpawnedHost | undefined;
const spawned: SpawnedHost[] = [];

async function launch(): Promise<SpawnedHost> {
  const h = await spawnHost({ appDir: FIXTURE_APP, runTimers: false, env: env() });
  spawned.push(h);
  return h;
}
let outDir: string;

const STEPS = 6;

function env(): Record<string, string> {
  return { AzureWebJobsStorage: storage.azurite.connectionString, FIXTURE_HUB: "RestartHub", FIXTURE_OUT_DIR: outDir, TICK_SCHEDULE: "0 0 3 * * *" };
}

const runs = () => fixtureRuns(outDir);

beforeAll(async () => {
  storage = await startTestAzurite();
  outDir = path.join(storage.dir, "out");
});

afterAll(async () => {
  await Promise.all(spawned.map((h) => h.kill()));
  await storage?.stop();
});

test("SIGKILL mid-activity and mid-flight, restart, and the orchestration completes with every effect once", async () => {
  host = await launch();
  const r = await fetch(`${host.url}/runtime/webhooks/durabletask/orchestrators/chain/kill-1`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ steps: STEPS, delayMs: 400 }),
  });
  expect(r.status).toBe(202);

  // Kill #1: while step 1's activity is running (it has started but sleeps before its effect).
  await waitFor("step 1 to start", async () => (runs().some((x) => x.step === 1) ? true : undefined), 15000, 20);
  const firstPid = host.child.pid;
  await host.kill();

  // Restart; kill #2 soon after it has made some progress.
  host = await launch();
  const restartedAt = Date.now();
  await waitFor("step 3 to start", async () => (runs().some((x) => x.step === 3) ? true : undefined), 15000, 20);
  // Resumption is quick: no queue visibility timeout to wait out.
  expect(Date.now() - restartedAt).toBeLessThan(5000);
  await new Promise((res) => setTimeout(res, 450)); // let step 3 finish and its result commit, or not
  await host.kill();

  host = await launch();
  const s = await waitForStatus(host.url, "kill-1", ["Completed", "Failed"], 30000);
  expect(s.runtimeStatus).toBe("Completed");
  expect(s.output).toEqual([0, 10, 20, 30, 40, 50]);
  expect(s.customStatus).toEqual({ done: STEPS });

  // Every step's effect exists exactly once (the effect files are keyed by instance and step).
  const effects = readdirSync(path.join(outDir, "effects")).filter((f) => f.startsWith("kill-1-")).sort();
  expect(effects).toEqual([...Array(STEPS).keys()].map((i) => `kill-1-${i}`).sort());

  // History: each step scheduled once with sequence number = step, completed exactly once.
  const h = s.historyEvents ?? [];
  const scheduled = h.filter((e) => e.EventType === "TaskScheduled").map((e) => e.EventId);
  const completed = h.filter((e) => e.EventType === "TaskCompleted").map((e) => e.TaskScheduledId);
  expect(scheduled).toEqual([0, 1, 2, 3, 4, 5]);
  expect(completed).toEqual([0, 1, 2, 3, 4, 5]);
  expect(h.filter((e) => e.EventType === "ExecutionStarted")).toHaveLength(1);
  expect(h.filter((e) => e.EventType === "ExecutionCompleted")).toHaveLength(1);
  expect(h.filter((e) => e.EventType === "TaskFailed")).toHaveLength(0);
  expect(h.filter((e) => e.EventType === "TaskCompleted").map((e) => e.Result)).toEqual([0, 10, 20, 30, 40, 50]);

  // The activity killed mid-run (step 1) ran again in the second process: at-least-once.
  const step1 = runs().filter((x) => x.instanceId === "kill-1" && x.step === 1);
  expect(step1.length).toBeGreaterThanOrEqual(2);
  expect(step1[0].pid).toBe(firstPid);
  expect(new Set(runs().filter((x) => x.instanceId === "kill-1").map((x) => x.step))).toEqual(new Set([0, 1, 2, 3, 4, 5]));
});

test("a durable timer pending when the host is killed fires after restart, once", async () => {
  host = await launch();
  await fetch(`${host.url}/runtime/webhooks/durabletask/orchestrators/retryThenTimer/timer-1`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ firstRetryMs: 100, maxAttempts: 1, backoff: 1, failTimes: 0, timerMs: 1500 }),
  });
  const url = host.url;
  await waitFor("the user timer to be created", async () => {
    const r = await fetch(`${url}/runtime/webhooks/durabletask/instances/timer-1?showHistory=true`);
    const s = (await r.json()) as { historyEvents?: { EventType: string }[] };
    return (s.historyEvents ?? []).some((e) => e.EventType === "TimerCreated") ? true : undefined;
  });
  await host.kill();
  await new Promise((res) => setTimeout(res, 1600)); // the timer comes due while no host runs
  host = await launch();
  const s = await waitForStatus(host.url, "timer-1", ["Completed", "Failed"], 10000);
  expect(s.runtimeStatus).toBe("Completed");
  const h = s.historyEvents ?? [];
  expect(h.filter((e) => e.EventType === "TimerCreated")).toHaveLength(1);
  expect(h.filter((e) => e.EventType === "TimerFired")).toHaveLength(1);
  expect(Date.parse(String(h.find((e) => e.EventType === "TimerFired")?.FireAt))).toBeLessThanOrEqual(Date.now());
  await host.stop();
  host = undefined;
});
