/**
 * Cold load of the app: a fresh `node` process requires the app's entry point the way the Functions
 * worker does, with `@azure/functions-core` provided as the local host provides it (a hook on
 * Node's module resolution, dev/host/functionsCore.ts), and reports how long that `require` took,
 * how many functions the app registered and which files Node loaded. Plain JavaScript in the child,
 * no tsx: a loader hook would slow every `require` of the unbundled app and skew the comparison.
 *
 * Used by `npm run bench` (timings) and test/infra/package.test.ts (what loads, never how fast).
 */
import { execFileSync } from "node:child_process";

export interface ColdLoad {
  /** Milliseconds spent in `require(entry)`. */
  ms: number;
  /** Functions registered through @azure/functions-core. */
  functions: number;
  /** Files in Node's module cache after the load. */
  modules: string[];
}

const CHILD = `
const Module = require("node:module");
const ID = "\\0@azure/functions-core(cold-load)";
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return request === "@azure/functions-core" ? ID : resolve.call(this, request, ...rest);
};
let functions = 0;
const disposable = { dispose() {} };
const core = new Module(ID);
core.exports = {
  version: "3.10.1",
  hostVersion: "4.1037.0",
  registerFunction() { functions++; return disposable; },
  setProgrammingModel() {},
  getProgrammingModel() { return undefined; },
  registerHook() { return disposable; },
  log() {},
  Disposable: class { constructor(fn) { this.fn = fn; } dispose() { this.fn(); } },
};
core.loaded = true;
Module._cache[ID] = core;
const entry = process.argv[1];
const started = performance.now();
require(entry);
const ms = performance.now() - started;
const modules = Object.keys(Module._cache).filter((k) => k !== ID);
process.stdout.write("COLD_LOAD " + JSON.stringify({ ms, functions, modules }) + "\\n");
`;

/** Loads `entry` (an absolute path) once in a new node process. */
export function coldLoad(entry: string): ColdLoad {
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // no test runner or tsx hooks in the child
  const out = execFileSync(process.execPath, ["-e", CHILD, entry], { encoding: "utf8", env, timeout: 60_000 });
  const line = out.split("\n").find((l) => l.startsWith("COLD_LOAD "));
  if (!line) throw new Error(`cold load of ${entry} printed nothing:\n${out}`);
  return JSON.parse(line.slice("COLD_LOAD ".length)) as ColdLoad;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Median load time of each entry over `runs` rounds; each round loads every entry once, in turn, so
 * a busy moment of the machine falls on all of them alike.
 */
export function compareColdLoads(entries: Record<string, string>, runs: number): Record<string, { medianMs: number; runsMs: number[]; functions: number }> {
  const result: Record<string, { medianMs: number; runsMs: number[]; functions: number }> = {};
  for (const name of Object.keys(entries)) result[name] = { medianMs: 0, runsMs: [], functions: 0 };
  for (let i = 0; i < runs; i++) {
    for (const [name, entry] of Object.entries(entries)) {
      const load = coldLoad(entry);
      result[name]!.runsMs.push(load.ms);
      result[name]!.functions = load.functions;
    }
  }
  for (const r of Object.values(result)) r.medianMs = median(r.runsMs);
  return result;
}
