/**
 * Durable Functions on the local host, with the real durable-functions replay engine and state in
 * Azurite: activity retries and their timers, durable timers, external events through the real
 * DurableClient, non-determinism detection, failures, fan-out, sub-orchestrations, continueAsNew,
 * and the Durable HTTP API.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { spawnHost, type SpawnedHost } from "../../dev/host/spawn";
import { FIXTURE_APP, getStatus, startTestAzurite, waitFor, waitForStatus, type Status, type TestStorage } from "./helpers";

let storage: TestStorage;
let host: SpawnedHost;
let outDir: string;
const api = (p: string): string => `${host.url}/runtime/webhooks/durabletask/${p}`;

beforeAll(async () => {
  storage = await startTestAzurite();
  outDir = path.join(storage.dir, "out");
  host = await spawnHost({
    appDir: FIXTURE_APP,
    runTimers: false,
    env: { AzureWebJobsStorage: storage.azurite.connectionString, FIXTURE_HUB: "DurableHub", FIXTURE_OUT_DIR: outDir, TICK_SCHEDULE: "0 0 3 * * *" },
  });
});

afterAll(async () => {
  await host?.stop();
  await storage?.stop();
});

async function start(name: string, id: string, input?: unknown): Promise<Response> {
  return fetch(api(`orchestrators/${name}/${id}`), { method: "POST", headers: { "content-type": "application/json" }, body: input === undefined ? "" : JSON.stringify(input) });
}

const events = (s: Status, type: string): Record<string, unknown>[] => (s.historyEvents ?? []).filter((e) => e.EventType === type);

test("callActivityWithRetry: two failures, retry timers as DTF schedules them, then a durable timer", async () => {
  const input = { firstRetryMs: 150, maxAttempts: 4, backoff: 2, failTimes: 2, timerMs: 400 };
  const r = await start("retryThenTimer", "retry-1", input);
  expect(r.status).toBe(202);
  const s = await waitForStatus(host.url, "retry-1", ["Completed", "Failed"]);
  expect(s.runtimeStatus).toBe("Completed");
  expect(s.output).toMatchObject({ result: { attempts: 3 } });
  expect(s.customStatus).toEqual({ stage: "done" });
  expect(s.input).toEqual(input);

  // Sequence numbers: attempt 1 = 0, retry timer = 1, attempt 2 = 2, timer = 3, attempt 3 = 4, user timer = 5.
  const seq = (s.historyEvents ?? [])
    .filter((e) => ["TaskScheduled", "TaskFailed", "TaskCompleted", "TimerCreated", "TimerFired"].includes(String(e.EventType)))
    .map((e) => `${String(e.EventType)}:${String(e.EventId === -1 ? (e.TaskScheduledId ?? e.TimerId) : e.EventId)}`);
  expect(seq).toEqual([
    "TaskScheduled:0",
    "TaskFailed:0",
    "TimerCreated:1",
    "TimerFired:1",
    "TaskScheduled:2",
    "TaskFailed:2",
    "TimerCreated:3",
    "TimerFired:3",
    "TaskScheduled:4",
    "TaskCompleted:4",
    "TimerCreated:5",
    "TimerFired:5",
  ]);
  expect(events(s, "TaskFailed")[0].Reason).toBe("Activity function 'flaky' failed: flaky failure 1");
  // Retry delays: first * backoff^attempt (150 ms, then 300 ms), from the failure's episode time.
  const timers = events(s, "TimerCreated");
  const delay = (i: number): number => Date.parse(String(timers[i].FireAt)) - Date.parse(String(timers[i].Timestamp));
  expect(delay(0)).toBe(150);
  expect(delay(1)).toBe(300);
  expect(delay(2)).toBe(400);
  expect(events(s, "ExecutionCompleted")).toHaveLength(1);
});

test("retries exhausted: a timer follows the last failure too, then the orchestration fails with the activity's error", async () => {
  await start("retryThenTimer", "retry-2", { firstRetryMs: 100, maxAttempts: 2, backoff: 1, failTimes: 5, timerMs: 10 });
  const s = await waitForStatus(host.url, "retry-2", ["Completed", "Failed"]);
  expect(s.runtimeStatus).toBe("Failed");
  expect(String(s.output)).toContain("Orchestrator function 'retryThenTimer' failed");
  expect(String(s.output)).toContain("flaky failure 2");
  expect(events(s, "TaskScheduled").map((e) => e.EventId)).toEqual([0, 2]);
  expect(events(s, "TimerCreated").map((e) => e.EventId)).toEqual([1, 3]);
  expect(events(s, "TimerFired").map((e) => e.TimerId)).toEqual([1, 3]);
});

test("an unhandled activity failure fails the orchestration with the activity's message and details", async () => {
  await start("failing", "fail-1");
  const s = await waitForStatus(host.url, "fail-1", ["Completed", "Failed"]);
  expect(s.runtimeStatus).toBe("Failed");
  expect(String(s.output)).toMatch(/Orchestrator function 'failing' failed: .*Activity function 'flaky' failed: flaky failure 1/s);
  const failed = events(s, "TaskFailed")[0];
  expect(String(failed.Details)).toContain("index.js");
});

test("waitForExternalEvent + raiseEvent through the real DurableClient", async () => {
  const started = await fetch(`${host.url}/api/start/waitForApproval/approve-1`, { method: "POST" });
  expect(started.status).toBe(202);
  const body = (await started.json()) as Record<string, string>;
  expect(body.id).toBe("approve-1");
  expect(body.statusQueryGetUri).toBe(`${host.url}/runtime/webhooks/durabletask/instances/approve-1?taskHub=DurableHub&connection=Storage`);
  expect(started.headers.get("location")).toBe(body.statusQueryGetUri);

  await waitFor("custom status 'waiting'", async () => {
    const r = await fetch(`${host.url}/api/status/approve-1`);
    const st = (await r.json()) as { customStatus?: unknown; runtimeStatus?: string };
    return st.customStatus === "waiting" && st.runtimeStatus === "Running" ? st : undefined;
  });
  const pending = await getStatus(host.url, "approve-1", "");
  expect(pending.code).toBe(202);

  const raised = await fetch(`${host.url}/api/raise/approve-1/approve`, { method: "POST", body: JSON.stringify({ by: "alice" }) });
  expect(raised.status).toBe(202);
  const s = await waitForStatus(host.url, "approve-1", ["Completed", "Failed"]);
  expect(s.runtimeStatus).toBe("Completed");
  expect(s.output).toEqual({ approvedBy: "alice" });
  expect(s.customStatus).toBe("approved");
  expect(events(s, "EventRaised")).toHaveLength(1);

  // Raising to a finished instance is 410, to an unknown one 404 (Durable HTTP API).
  expect((await fetch(api("instances/approve-1/raiseEvent/approve"), { method: "POST", body: "{}" })).status).toBe(410);
  expect((await fetch(api("instances/nope/raiseEvent/approve"), { method: "POST", body: "{}" })).status).toBe(404);
});

test("a changed orchestrator is detected as non-deterministic and the instance fails clearly", async () => {
  writeFileSync(path.join(outDir, "variant"), "A");
  await start("changing", "nondet-1");
  await waitFor("first activity to complete", async () => {
    const { body } = await getStatus(host.url, "nondet-1");
    return body && (body.historyEvents ?? []).some((e) => e.EventType === "TaskCompleted") && body.runtimeStatus === "Running" ? body : undefined;
  });
  writeFileSync(path.join(outDir, "variant"), "B");
  await fetch(api("instances/nondet-1/raiseEvent/go"), { method: "POST", body: "true" });
  const s = await waitForStatus(host.url, "nondet-1", ["Completed", "Failed"]);
  expect(s.runtimeStatus).toBe("Failed");
  expect(String(s.output)).toContain("NonDeterministicOrchestrationException");
  expect(String(s.output)).toContain("sequence number 0 named 'say'");
  expect(String(s.output)).toContain("named 'flaky'");
});

test("Task.all fan-out, Task.any, sub-orchestration", async () => {
  await start("fanOut", "fan-1");
  const s = await waitForStatus(host.url, "fan-1", ["Completed", "Failed"]);
  expect(s.runtimeStatus).toBe("Completed");
  expect(s.output).toEqual({ all: ["said n1", "said n2", "said n3"], winner: "said fast", child: "child said kid" });
  expect(events(s, "TaskScheduled").map((e) => e.EventId)).toEqual([0, 1, 2, 3]);
  expect(events(s, "SubOrchestrationInstanceCreated")).toHaveLength(1);
});

test("continueAsNew restarts the instance with new input", async () => {
  await start("counter", "count-1", 0);
  const s = await waitForStatus(host.url, "count-1", ["Completed", "Failed"]);
  expect(s.output).toBe("counted to 2");
  expect(s.input).toBe(2);
});

test("starting an id that is running answers 409 and leaves the instance intact; terminate; list; purge", async () => {
  await start("waitForApproval", "dup-1");
  await waitForStatus(host.url, "dup-1", ["Running"]);
  const again = await start("waitForApproval", "dup-1");
  expect(again.status).toBe(409);
  expect((await getStatus(host.url, "dup-1")).body?.runtimeStatus).toBe("Running");

  const list = (await (await fetch(`${host.url}/api/instances?status=Running`)).json()) as { instanceId: string }[];
  expect(list.map((i) => i.instanceId)).toContain("dup-1");
  expect(list.map((i) => i.instanceId)).not.toContain("retry-1");

  expect((await fetch(api("instances/dup-1/terminate?reason=enough"), { method: "POST" })).status).toBe(202);
  const t = await waitForStatus(host.url, "dup-1", ["Terminated"]);
  expect(t.output).toBe("enough");

  // A finished id can be started again.
  expect((await start("waitForApproval", "dup-1")).status).toBe(202);
  await waitForStatus(host.url, "dup-1", ["Running"]);
  await fetch(api("instances/dup-1/terminate?reason=again"), { method: "POST" });
  await waitForStatus(host.url, "dup-1", ["Terminated"]);

  const purge = await fetch(api("instances/dup-1"), { method: "DELETE" });
  expect(purge.status).toBe(200);
  expect(await purge.json()).toEqual({ instancesDeleted: 1 });
  expect((await getStatus(host.url, "dup-1")).code).toBe(404);
});

test("listing pages with x-ms-continuation-token", async () => {
  const first = await fetch(api("instances?top=2"));
  expect(first.status).toBe(200);
  const page1 = (await first.json()) as Status[];
  expect(page1).toHaveLength(2);
  const token = first.headers.get("x-ms-continuation-token");
  expect(token).toBeTruthy();
  const second = await fetch(api("instances?top=2"), { headers: { "x-ms-continuation-token": token ?? "" } });
  const page2 = (await second.json()) as Status[];
  expect(page2.length).toBeGreaterThan(0);
  expect(page2.map((p) => p.instanceId)).not.toContain(page1[0].instanceId);
});

test("activity inputs and results are not printed to stdout", () => {
  // The fixture's activity inputs carry the instance key; results carry "attempts".
  expect(host.lines.some((l) => l.includes("attempts"))).toBe(false);
  expect(host.lines.some((l) => l.includes("flaky attempt"))).toBe(true);
});
