/**
 * CLI for the local Functions host:
 *   tsx dev/host/cli.ts [--port N] [--app DIR] [--no-timers] [--storage CONNECTION_STRING] [--poll-ms N]
 * Prints "Host listening on http://localhost:N" once it serves requests. SIGINT/SIGTERM stop it,
 * and so does the end of the process that started it (no orphaned host after a killed `npm start`).
 */
import { onParentExit } from "../parentWatch";
import { startHost } from "./index";

function parseArgs(argv: string[]): { port?: number; app?: string; timers: boolean; storage?: string; pollMs?: number } {
  const out: { port?: number; app?: string; timers: boolean; storage?: string; pollMs?: number } = { timers: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--port") out.port = Number(argv[++i]);
    else if (a === "--app") out.app = argv[++i];
    else if (a === "--no-timers") out.timers = false;
    else if (a === "--storage") out.storage = argv[++i];
    else if (a === "--poll-ms") out.pollMs = Number(argv[++i]);
    else if (a === "--help" || a === "-h") {
      process.stdout.write("usage: tsx dev/host/cli.ts [--port N] [--app DIR] [--no-timers] [--storage CONNECTION_STRING] [--poll-ms N]\n");
      process.exit(0);
    } else throw new Error(`Unknown argument ${a}`);
  }
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const host = await startHost({ port: args.port, appDir: args.app, runTimers: args.timers, storageConnectionString: args.storage, pollIntervalMs: args.pollMs });
  process.stdout.write(`Host listening on ${host.url}\n`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    host.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  onParentExit(stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`Host failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
