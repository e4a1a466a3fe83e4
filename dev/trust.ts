// Node reads NODE_EXTRA_CA_CERTS only at start-up. A dev script that calls the emulators itself
// calls this first: when the sandbox CA is not yet trusted, it runs the same script again in a
// child process that trusts it, and exits with the child's status.
import { spawnSync } from "node:child_process";
import { extraCaBundle } from "./emulators/tls";
import { SANDBOX_DIR } from "./sandbox";

export function relaunchTrustingSandboxCa(): void {
  const bundle = extraCaBundle(SANDBOX_DIR);
  if (process.env.NODE_EXTRA_CA_CERTS === bundle) return;
  const result = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: "inherit",
    env: { ...process.env, NODE_EXTRA_CA_CERTS: bundle, SANDBOX_DIR },
  });
  process.exit(result.status ?? 1);
}
