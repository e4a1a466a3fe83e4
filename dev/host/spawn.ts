/**
 * Runs the local host as a child process (`node --import tsx dev/host/cli.ts`) and waits for its ready line.
 * This is how tests use the host: a real process they can SIGKILL, and outside jest's module
 * sandbox (which cannot provide `@azure/functions-core` to the app).
 */
import { StringDecoder } from "node:string_decoder";
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";

export interface SpawnHostOptions {
  appDir?: string;
  /** 0 (default) lets the host pick a free port; the ready line reports it. */
  port?: number;
  runTimers?: boolean;
  storageConnectionString?: string;
  /** The Durable dispatcher's idle scan interval (default 100 ms). */
  pollIntervalMs?: number;
  /** Added to the child's environment (settings for the app, AzureWebJobsStorage, ...). */
  env?: Record<string, string>;
  /** Called with each stdout/stderr line as it arrives. */
  onLine?: (line: string) => void;
  timeoutMs?: number;
}

export interface SpawnedHost {
  url: string;
  port: number;
  child: ChildProcess;
  /** Every stdout line so far. */
  lines: string[];
  /** SIGTERM and wait (clean stop). */
  stop(): Promise<void>;
  /** SIGKILL and wait: the host gets no chance to clean up. */
  kill(): Promise<void>;
}

const CLI = path.resolve(__dirname, "cli.ts");

export async function spawnHost(opts: SpawnHostOptions = {}): Promise<SpawnedHost> {
  // `node --import tsx` runs the CLI in this one process. (The `tsx` binary would fork a second
  // node process; SIGKILL of the first would leave the real host running as an orphan.)
  const loader = pathToFileURL(path.join(path.dirname(require.resolve("tsx/package.json")), "dist", "loader.mjs")).href;
  const args = ["--import", loader, CLI, "--port", String(opts.port ?? 0)];
  if (opts.appDir) args.push("--app", opts.appDir);
  if (opts.runTimers === false) args.push("--no-timers");
  if (opts.storageConnectionString) args.push("--storage", opts.storageConnectionString);
  if (opts.pollIntervalMs !== undefined) args.push("--poll-ms", String(opts.pollIntervalMs));
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  delete env.JEST_WORKER_ID;
  const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  const errLines: string[] = [];
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let hasExited = false;
  void exited.then(() => (hasExited = true));

  const ready = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`host did not start in time:\n${[...lines, ...errLines].join("\n")}`)), opts.timeoutMs ?? 30000);
    // A chunk of a pipe can end mid-line (and mid-character): the rest is kept for the next chunk,
    // so every line is seen whole, once.
    const onData = (into: string[]) => {
      const decoder = new StringDecoder("utf8");
      let partial = "";
      return (buf: Buffer): void => {
        const parts = (partial + decoder.write(buf)).split("\n");
        partial = parts.pop() ?? "";
        for (const line of parts) {
          if (line === "") continue;
          into.push(line);
          opts.onLine?.(line);
          const m = /^Host listening on (http:\/\/\S+)/.exec(line);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        }
      };
    };
    const onOut = onData(lines);
    const onErr = onData(errLines);
    child.stdout?.on("data", onOut).on("end", () => onOut(Buffer.from("\n")));
    child.stderr?.on("data", onErr).on("end", () => onErr(Buffer.from("\n")));
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`host exited before it was ready:\n${[...lines, ...errLines].join("\n")}`));
    });
  });
  // A host that never became ready is not left running.
  const url = await ready.catch(async (error: unknown) => {
    if (!hasExited) {
      child.kill("SIGKILL");
      await exited;
    }
    throw error;
  });
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (hasExited) return;
    child.kill(signal);
    await exited;
  };
  return { url, port: Number(new URL(url).port), child, lines, stop: () => end("SIGTERM"), kill: () => end("SIGKILL") };
}
