// `npm start & sleep N; kill $!` (issue 13): the signal reaches npm, not the stack below it. Every
// process npm start began must end and every port it took must be free again; and a start whose
// ports are taken stops before it deletes or starts anything.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import os from "node:os";
import path from "node:path";
import { getFreePorts, portIsFree } from "../../dev/ports";
import { SANDBOX_DIR } from "../../dev/sandbox";
import { REPO_ROOT, waitFor } from "../host/helpers";

const PORT_VARIABLES = [
  "FUNCTIONS_PORT",
  "AZURITE_BLOB_PORT",
  "AZURITE_QUEUE_PORT",
  "AZURITE_TABLE_PORT",
  "GRAPH_EMULATOR_PORT",
  "KEY_VAULT_EMULATOR_PORT",
  "CREATIO_EMULATOR_PORT",
  "CREATIO_IDENTITY_EMULATOR_PORT",
];
const READY = "Ctrl-C stops everything.";

/** Every process below pid, from `ps` (Linux and macOS). */
function descendantsOf(pid: number): number[] {
  const ps = spawnSync("ps", ["-A", "-o", "pid=,ppid="], { encoding: "utf8" });
  const children = new Map<number, number[]>();
  for (const line of ps.stdout.split("\n")) {
    const [child, parent] = line.trim().split(/\s+/).map(Number);
    if (!child) continue;
    children.set(parent, [...(children.get(parent) ?? []), child]);
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) for (const child of children.get(queue.shift()!) ?? []) found.push(child), queue.push(child);
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let sandbox: string;
let ports: Record<string, string>;
const leftovers: number[] = [];

/** `npm start` without its build step (npm test has just built dist/): the same npm, sh and node processes. */
function npmStart(output: string[]): ChildProcess {
  const npm = spawn("npm", ["start", "--ignore-scripts"], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...ports, SANDBOX_DIR: sandbox },
    stdio: ["ignore", "pipe", "pipe"],
  });
  for (const stream of [npm.stdout, npm.stderr]) stream?.on("data", (chunk: Buffer) => output.push(...chunk.toString("utf8").split("\n")));
  return npm;
}

beforeEach(async () => {
  sandbox = mkdtempSync(path.join(os.tmpdir(), "npm-start-"));
  // The sandbox CA and token key npm test made, so this start does not make its own.
  cpSync(path.join(SANDBOX_DIR, "tls"), path.join(sandbox, "tls"), { recursive: true });
  const free = await getFreePorts(PORT_VARIABLES.length);
  ports = Object.fromEntries(PORT_VARIABLES.map((name, i) => [name, String(free[i])]));
});

afterEach(() => {
  for (const pid of leftovers.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL");
  rmSync(sandbox, { recursive: true, force: true });
});

const skipWithLocalSettings = existsSync(path.join(REPO_ROOT, "local.settings.json")) ? it.skip : it;

describe("npm start", () => {
  skipWithLocalSettings(
    "a SIGTERM to npm's own process stops Azurite, the emulators and the host, and frees their ports",
    async () => {
      const output: string[] = [];
      const npm = npmStart(output);
      const exited = new Promise<void>((resolve) => npm.once("exit", () => resolve()));
      await waitFor("the ready banner", async () => (output.some((line) => line.includes(READY)) ? true : undefined), 90_000, 200);
      const stack = descendantsOf(npm.pid!);
      leftovers.push(...stack);
      // sh, node dev/start.ts, Azurite and the host at least (esbuild services come and go with them).
      expect(stack.length).toBeGreaterThanOrEqual(4);
      for (const port of Object.values(ports)) expect(await portIsFree(Number(port))).toBe(false);

      process.kill(npm.pid!, "SIGTERM");
      await exited;
      await waitFor("every process of the stack to end", async () => (stack.some(alive) ? undefined : true), 30_000, 200);
      await waitFor(
        "every port to be free",
        async () => ((await Promise.all(Object.values(ports).map((port) => portIsFree(Number(port))))).every(Boolean) ? true : undefined),
        10_000,
        200,
      );
    },
    150_000,
  );

  skipWithLocalSettings(
    "a start whose port is taken says so and deletes nothing",
    async () => {
      const marker = path.join(sandbox, "azurite", "kept.txt");
      mkdirSync(path.dirname(marker), { recursive: true });
      writeFileSync(marker, "Durable state of a running stack");
      const blocker: Server = createServer();
      await new Promise<void>((resolve) => blocker.listen(Number(ports.AZURITE_QUEUE_PORT), "127.0.0.1", () => resolve()));
      try {
        const output: string[] = [];
        const npm = npmStart(output);
        const code = await new Promise<number | null>((resolve) => npm.once("exit", (c) => resolve(c)));
        leftovers.push(...descendantsOf(npm.pid!));
        expect(code).not.toBe(0);
        expect(output.join("\n")).toContain(`Port ${ports.AZURITE_QUEUE_PORT} (queue) already in use`);
        expect(existsSync(marker)).toBe(true);
      } finally {
        await new Promise((resolve) => blocker.close(resolve));
      }
    },
    60_000,
  );

  skipWithLocalSettings(
    "a start while an earlier start's Azurite still runs on the data says so and deletes nothing",
    async () => {
      const marker = path.join(sandbox, "azurite", "kept.txt");
      mkdirSync(path.dirname(marker), { recursive: true });
      writeFileSync(marker, "Durable state of a running stack");
      // A stand-in for the Azurite an earlier, SIGKILLed npm start left behind (its pid is what counts).
      const stale = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", "azurite"], { stdio: "ignore" });
      leftovers.push(stale.pid!);
      writeFileSync(path.join(sandbox, "azurite.pid"), `${stale.pid}\n`);
      const output: string[] = [];
      const npm = npmStart(output);
      const code = await new Promise<number | null>((resolve) => npm.once("exit", (c) => resolve(c)));
      expect(code).not.toBe(0);
      expect(output.join("\n")).toContain(`(pid ${stale.pid}) still runs`);
      expect(existsSync(marker)).toBe(true);
      stale.kill("SIGKILL");
    },
    60_000,
  );
});
