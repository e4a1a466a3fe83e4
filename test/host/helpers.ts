import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startAzurite, type AzuriteHandle } from "../../dev/azurite";
import { getFreePorts } from "../../dev/ports";

export const FIXTURE_APP = path.resolve(__dirname, "..", "fixtures", "host-app");
export const REPO_ROOT = path.resolve(__dirname, "..", "..");

export interface TestStorage {
  azurite: AzuriteHandle;
  dir: string;
  stop(): Promise<void>;
}

/** Azurite on free ports with data in a fresh temporary directory. */
export async function startTestAzurite(): Promise<TestStorage> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "host-test-"));
  const [blobPort, queuePort, tablePort] = await getFreePorts(3);
  const azurite = await startAzurite({ location: path.join(dir, "azurite"), blobPort, queuePort, tablePort });
  return {
    azurite,
    dir,
    async stop() {
      await azurite.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface Status {
  name: string;
  instanceId: string;
  runtimeStatus: string;
  input: unknown;
  output: unknown;
  customStatus: unknown;
  createdTime: string;
  lastUpdatedTime: string;
  historyEvents?: Record<string, unknown>[];
}

export async function getStatus(baseUrl: string, id: string, query = "showHistory=true"): Promise<{ code: number; body: Status | undefined }> {
  const r = await fetch(`${baseUrl}/runtime/webhooks/durabletask/instances/${encodeURIComponent(id)}?${query}`);
  const text = await r.text();
  return { code: r.status, body: text ? (JSON.parse(text) as Status) : undefined };
}

export async function waitForStatus(baseUrl: string, id: string, statuses: string[], timeoutMs = 20000): Promise<Status> {
  return waitFor(
    `instance ${id} to be ${statuses.join("/")}`,
    async () => {
      const { body } = await getStatus(baseUrl, id, "showHistory=true&showHistoryOutput=true");
      return body && statuses.includes(body.runtimeStatus) ? body : undefined;
    },
    timeoutMs,
  );
}

/** The fixture app's activity runs (one JSON line per run in `<outDir>/runs.jsonl`), oldest first. */
export function fixtureRuns<T = { instanceId: string; step: number; pid: number }>(outDir: string): T[] {
  const f = path.join(outDir, "runs.jsonl");
  if (!existsSync(f)) return [];
  return readFileSync(f, "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}
