/**
 * The engine dispatches its own work directly (a committed activity result runs the instance's
 * next episode, a committed episode starts its new activities) instead of waiting for a table
 * scan; the scan remains as the safety net. What can go wrong: work that waits for a scan that does
 * not come, and an activity run twice because a scan lists a work item the direct dispatch runs.
 */
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { spawnHost, type SpawnedHost } from "../../dev/host/spawn";
import { FIXTURE_APP, REPO_ROOT, fixtureRuns, getStatus, startTestAzurite, waitFor, waitForStatus, type TestStorage } from "./helpers";

let storage: TestStorage;
const hosts: SpawnedHost[] = [];

beforeAll(async () => {
  storage = await startTestAzurite();
});

afterAll(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
  await storage?.stop();
});

async function launch(hub: string, pollIntervalMs: number, appDir = FIXTURE_APP): Promise<{ host: SpawnedHost; outDir: string }> {
  const outDir = path.join(storage.dir, `out-${hub}`);
  const host = await spawnHost({
    appDir,
    runTimers: false,
    pollIntervalMs,
    env: { AzureWebJobsStorage: storage.azurite.connectionString, FIXTURE_HUB: hub, FIXTURE_OUT_DIR: outDir, TICK_SCHEDULE: "0 0 3 * * *" },
  });
  hosts.push(host);
  return { host, outDir };
}

async function start(host: SpawnedHost, name: string, id: string, input?: unknown): Promise<void> {
  const r = await fetch(`${host.url}/runtime/webhooks/durabletask/orchestrators/${name}/${id}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: input === undefined ? "" : JSON.stringify(input),
  });
  expect(r.status).toBe(202);
}

const runs = (outDir: string) => fixtureRuns<{ instanceId: string; step: number }>(outDir);

let direct: SpawnedHost;

test("with the idle scan a minute away, a chain, a fan-out and a sub-orchestration still complete at once", async () => {
  // Only the scan at start and the wake-ups for timers run: everything else is dispatched directly.
  direct = (await launch("DirectHub", 60000)).host;
  const t0 = Date.now();
  await Promise.all([start(direct, "chain", "direct-chain", { steps: 8, delayMs: 0 }), start(direct, "fanOut", "direct-fan")]);
  const chain = await waitForStatus(direct.url, "direct-chain", ["Completed", "Failed"], 15000);
  const fan = await waitForStatus(direct.url, "direct-fan", ["Completed", "Failed"], 15000);
  expect(chain.runtimeStatus).toBe("Completed");
  expect(chain.output).toEqual([0, 10, 20, 30, 40, 50, 60, 70]);
  expect(fan.runtimeStatus).toBe("Completed");
  expect(fan.output).toEqual({ all: ["said n1", "said n2", "said n3"], winner: "said fast", child: "child said kid" });
  expect(Date.now() - t0).toBeLessThan(15000);
});

test("results committed while an episode of their instance runs are processed right after it, not at the next scan", async () => {
  // The last ten activities finish together: their results land while the episode for the first
  // of them runs. No timer is pending, so no scan comes for a minute.
  const delays = [...Array(20).keys()].map((i) => (i < 10 ? 3 * i : 40));
  const t0 = Date.now();
  await start(direct, "fanOutStaggered", "direct-staggered", { delays });
  const s = await waitForStatus(direct.url, "direct-staggered", ["Completed", "Failed"], 15000);
  expect(s.runtimeStatus).toBe("Completed");
  expect(s.output).toEqual(delays.map((_, i) => i * 10));
  expect(Date.now() - t0).toBeLessThan(15000);
});

test("activities dispatched directly are not run again by scans running all the time", async () => {
  // A 1 ms idle scan lists activity work items constantly while the direct dispatch runs and
  // completes them: without a crash, every step runs exactly once. (The window in which a scan can
  // list a work item just completed is narrow; this does not hit it reliably, but it guards the
  // common paths: a scan finding an activity that is running, or an instance that is busy.)
  const { host, outDir } = await launch("BusyScanHub", 1);
  const ids = [1, 2, 3, 4, 5, 6].map((i) => `scan-${i}`);
  await Promise.all(ids.map((id) => start(host, "chain", id, { steps: 15, delayMs: 0 })));
  for (const id of ids) {
    const s = await waitForStatus(host.url, id, ["Completed", "Failed"], 30000);
    expect(s.runtimeStatus).toBe("Completed");
  }
  for (const id of ids) {
    const steps = runs(outDir)
      .filter((r) => r.instanceId === id)
      .map((r) => r.step);
    expect(steps).toEqual([...Array(15).keys()]);
  }
});

test("two hosts on one task hub: an episode committed by the other host is not missed by the history kept in memory", async () => {
  // Neither host scans (idle scan a minute away): each runs only the work it dispatches itself.
  const a = (await launch("SharedHub", 60000)).host;
  const b = (await launch("SharedHub", 60000)).host;
  await start(a, "twoEvents", "shared-1");
  await waitForStatus(a.url, "shared-1", ["Running"]); // episode 1 on host a, which keeps its history
  const raise = (h: SpawnedHost, name: string, data: unknown) =>
    fetch(`${h.url}/runtime/webhooks/durabletask/instances/shared-1/raiseEvent/${name}`, { method: "POST", body: JSON.stringify(data) });
  expect((await raise(b, "first", 1)).status).toBe(202); // episode 2 on host b
  await waitFor("host b's episode", async () => ((await getStatus(a.url, "shared-1")).body?.customStatus === "got first" ? true : undefined));
  expect((await raise(a, "second", 2)).status).toBe(202); // episode 3 on host a: must read episode 2
  const s = await waitForStatus(a.url, "shared-1", ["Completed", "Failed"], 10000);
  expect(s.runtimeStatus).toBe("Completed");
  expect(s.output).toEqual({ first: 1, second: 2 });
});

test("activities started directly respect maxConcurrentActivityFunctions", async () => {
  // The fixture app with host.json maxConcurrentActivityFunctions = 2: ten 150 ms activities of one
  // fan-out take at least five rounds; the ones left over are started as slots free up.
  const appDir = path.join(storage.dir, "capped-app");
  mkdirSync(appDir);
  for (const f of ["package.json", "index.js"]) copyFileSync(path.join(FIXTURE_APP, f), path.join(appDir, f));
  writeFileSync(path.join(appDir, "host.json"), JSON.stringify({ version: "2.0", extensions: { durableTask: { hubName: "%FIXTURE_HUB%", maxConcurrentActivityFunctions: 2 } } }));
  symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(appDir, "node_modules"));
  const { host } = await launch("CappedHub", 100, appDir);
  const delays = Array(10).fill(150);
  const t0 = Date.now();
  await start(host, "fanOutStaggered", "capped-1", { delays });
  const s = await waitForStatus(host.url, "capped-1", ["Completed", "Failed"], 15000);
  expect(s.runtimeStatus).toBe("Completed");
  expect(s.output).toEqual(delays.map((_, i) => i * 10));
  expect(Date.now() - t0).toBeGreaterThanOrEqual(5 * 150);
});
