/**
 * One line per log record on stdout, like `func start` prints function logs:
 * timestamp, level, function name, invocation id, message. Payloads (inputs, outputs) are never
 * printed here; only what the app itself logs.
 */
import type { LogLevel } from "./functionsCore";

const LEVEL_NAMES: Record<string, string> = {
  trace: "Trace",
  debug: "Debug",
  information: "Information",
  warning: "Warning",
  error: "Error",
  critical: "Critical",
};

export interface HostLogger {
  fn(level: LogLevel, functionName: string, invocationId: string, message: string): void;
  host(level: LogLevel, message: string): void;
}

export function createLogger(out: (line: string) => void = (l) => process.stdout.write(l + "\n"), minLevel: LogLevel = "information"): HostLogger {
  const order = ["trace", "debug", "information", "warning", "error", "critical", "none"];
  const enabled = (lvl: LogLevel): boolean => order.indexOf(lvl) >= order.indexOf(minLevel);
  const oneLine = (s: string): string => s.replace(/\r?\n/g, "\\n");
  return {
    fn(level, functionName, invocationId, message) {
      if (!enabled(level)) return;
      out(`[${new Date().toISOString()}] [${LEVEL_NAMES[level] ?? level}] [${functionName}] (Id=${invocationId}) ${oneLine(message)}`);
    },
    host(level, message) {
      if (!enabled(level)) return;
      out(`[${new Date().toISOString()}] [${LEVEL_NAMES[level] ?? level}] [host] ${oneLine(message)}`);
    },
  };
}
