/**
 * What the compiled app registers, read in a child process: `@azure/functions` only registers
 * through `@azure/functions-core`, which the local host's shim provides outside jest's module
 * sandbox (dev/host/functionsCore.ts). Run as a script it prints the registrations as JSON.
 */
import { execFileSync } from "node:child_process";
import path from "node:path";

export interface Registration {
  name: string;
  triggerType: string;
  trigger: Record<string, unknown>;
}

const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");

/** Registrations of the app in `appDir` (package.json main), default the repository (dist/ must be built). */
export function appRegistrations(appDir = REPO_ROOT): Registration[] {
  const env = { ...process.env };
  delete env.JEST_WORKER_ID;
  const out = execFileSync(process.execPath, [require.resolve("tsx/cli"), __filename, appDir], { env, encoding: "utf8", timeout: 60_000 });
  const line = out.split("\n").find((l) => l.startsWith("REGISTRATIONS "));
  if (!line) throw new Error(`no registrations printed:\n${out}`);
  return JSON.parse(line.slice("REGISTRATIONS ".length)) as Registration[];
}

if (require.main === module) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { FunctionRegistry, loadApp } = require("../../../dev/host/functionsCore") as typeof import("../../../dev/host/functionsCore");
  const { readFileSync } = require("node:fs") as typeof import("node:fs");
  const appDir = path.resolve(process.argv[2] ?? REPO_ROOT);
  const pkg = JSON.parse(readFileSync(path.join(appDir, "package.json"), "utf8")) as { main?: string };
  const registry = new FunctionRegistry();
  loadApp(path.resolve(appDir, pkg.main ?? "index.js"), appDir, registry);
  const list: Registration[] = [...registry.functions.values()].map((f) => ({ name: f.metadata.name, triggerType: f.triggerType, trigger: f.trigger }));
  process.stdout.write(`REGISTRATIONS ${JSON.stringify(list)}\n`);
}
