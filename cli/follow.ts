import { Api, CliError, EXIT, httpError } from "./api";
import { progressLines, stepLabel } from "./format";

/**
 * Follows a Durable orchestration through its statusQueryGetUri (Durable Functions HTTP API,
 * "Get instance status") until it ends, printing each change of its custom status (step k of n,
 * retries, grace period, admin consent; src/orchestrators/steps.ts). On a terminal an ora spinner
 * shows the step running; elsewhere each change is one plain line, so logs and tests read the same.
 */

export const FINAL_STATES = new Set(["Completed", "Failed", "Terminated", "Canceled"]);

export interface Progress {
  /** A line that stays. */
  line(text: string): void;
  /** What is running now (a spinner on a terminal; nothing more elsewhere, the line already said it). */
  running(text: string): void;
  stop(): void;
}

export interface Writer {
  write(text: string): unknown;
  isTTY?: boolean;
  /** A terminal's width; 0 or missing on a pseudo-terminal without a size. */
  columns?: number;
}

/**
 * A spinner needs a terminal with a width: ora redraws by counting the lines its text takes, which
 * never ends on a terminal whose width is 0 (a pseudo-terminal without a size, e.g. `script` with
 * no terminal behind it). Anywhere else progress is plain lines.
 */
export function canSpin(stream: Writer): boolean {
  return Boolean(stream.isTTY) && typeof stream.columns === "number" && stream.columns > 0;
}

/** Plain lines, for pipes, logs, CI and --output json (there on stderr). */
export function lineProgress(out: Writer): Progress {
  return { line: (text) => void out.write(`${text}\n`), running: () => undefined, stop: () => undefined };
}

/** An ora spinner on a terminal. ora is an ES module, loaded only here. */
export async function spinnerProgress(out: Writer): Promise<Progress> {
  const { default: ora } = await import("ora");
  const spinner = ora({ stream: out as NodeJS.WritableStream, discardStdin: false });
  let current = "";
  return {
    line(text) {
      const spinning = spinner.isSpinning;
      if (spinning) spinner.stop();
      out.write(`${text}\n`);
      if (spinning) spinner.start(current);
    },
    running(text) {
      current = text;
      if (spinner.isSpinning) spinner.text = text;
      else spinner.start(text);
    },
    stop: () => void spinner.stop(),
  };
}

export interface FollowOptions {
  progress: Progress;
  intervalMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Gives up after this long (the run goes on in the app). Default: never. */
  timeoutMs?: number;
  /** What to type to look at the site later; said when the user stops following. */
  laterHint: string;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls until the run ends; returns its last status (`runtimeStatus`, `customStatus`, `output`...). */
export async function follow(api: Api, statusUri: string, options: FollowOptions): Promise<any> {
  const sleep = options.sleep ?? defaultSleep;
  const interval = options.intervalMs ?? 500;
  const started = Date.now();
  let previous: any = undefined;
  let misses = 0;
  const onSigint = () => {
    options.progress.stop();
    process.stderr.write(`\nStopped following; the run goes on in the app. ${options.laterHint}\n`);
    process.exit(130);
  };
  process.once("SIGINT", onSigint);
  try {
    for (;;) {
      const r = await api.request("GET", statusUri);
      // 202 while it runs, 200 once it ended; a failed run may also answer 400 or 500 (Durable
      // Functions HTTP API, "Get instance status"): any answer with a runtimeStatus is the status.
      if (typeof r.body?.runtimeStatus !== "string") {
        // Just started: the instance may not be visible yet.
        if (r.status === 404 && misses < 20) misses++;
        else throw httpError("reading the run's status", r);
      } else {
        const status = r.body;
        const custom = status?.customStatus ?? undefined;
        for (const line of progressLines(previous, custom)) options.progress.line(line);
        if (custom) {
          previous = custom;
          if (custom.step !== "done" && !custom.error) options.progress.running(custom.retryAt ? `${stepLabel(custom)}: waiting to retry` : stepLabel(custom));
        }
        if (FINAL_STATES.has(status?.runtimeStatus)) return status;
      }
      if (options.timeoutMs !== undefined && Date.now() - started > options.timeoutMs) {
        throw new CliError(`gave up following after ${Math.round(options.timeoutMs / 1000)} s; the run goes on. ${options.laterHint}`, EXIT.failed);
      }
      await sleep(interval);
    }
  } finally {
    options.progress.stop();
    process.removeListener("SIGINT", onSigint);
  }
}
