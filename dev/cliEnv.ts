import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * What the `creatio-o365` command line (cli/) needs to reach the sandbox that `npm start` runs:
 * the host's URL, and for `credential set` the emulated vault with a sign-in its token endpoint
 * accepts. They are the app's own settings (dev/emulators/index.ts appSettings): the sandbox
 * identity through DefaultAzureCredential's environment credential, the emulator as authority,
 * and the two switches only the sandbox sets (docs/architecture.md, "No sandbox branches"). Written
 * to `.sandbox/cli.env` (owner-only) rather than printed, so the sandbox identity's secret is never
 * shown; `set -a; . .sandbox/cli.env; set +a` loads it.
 */
export const CLI_SETTINGS = [
  "KEY_VAULT_URL",
  "AZURE_AUTHORITY_HOST",
  "AZURE_DISABLE_INSTANCE_DISCOVERY",
  "KEY_VAULT_DISABLE_CHALLENGE_VERIFICATION",
  "AZURE_TENANT_ID",
  "AZURE_CLIENT_ID",
  "AZURE_CLIENT_SECRET",
  "NODE_EXTRA_CA_CERTS",
] as const;

export const CLI_ENV_FILE = "cli.env";

/** The command line's environment for a host at hostUrl run with these app settings. */
export function sandboxCliEnv(hostUrl: string, settings: Record<string, string | undefined>): Record<string, string> {
  const env: Record<string, string> = { CREATIO_O365_URL: hostUrl };
  for (const key of CLI_SETTINGS) {
    const value = settings[key];
    if (value !== undefined && value !== "") env[key] = value;
  }
  return env;
}

const shellQuote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

/** Writes `KEY='value'` lines for `set -a; . <file>; set +a`; returns the file's path. */
export function writeSandboxCliEnv(sandboxDir: string, env: Record<string, string>): string {
  const path = join(sandboxDir, CLI_ENV_FILE);
  const lines = ["# creatio-o365 command line against `npm start` (dev/cliEnv.ts). Load: set -a; . .sandbox/cli.env; set +a", ...Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`)];
  writeFileSync(path, `${lines.join("\n")}\n`, { mode: 0o600 });
  // `mode` applies only to a new file: an older one keeps its own.
  chmodSync(path, 0o600);
  return path;
}
