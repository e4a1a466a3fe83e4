/**
 * Issue 11, the `creatio-o365` command line end to end: the real binary (cli/bin.js, what
 * package.json "bin" names) run as a user runs it, in a shell that loaded the environment file
 * `npm start` writes (dev/cliEnv.ts; `set -a; . .sandbox/cli.env; set +a`) and nothing else from
 * this process (no inherited NODE_EXTRA_CA_CERTS or Azure settings), against a stack started here
 * like test/e2e/onboarding.test.ts: the emulators, Azurite and the local Functions host on free ports.
 * The tests run in order on one site: credential set, onboard, sites, site, rotate, plan, offboard.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { SEED_USERS } from "../../dev/emulators/creatio";
import { getFreePorts } from "../../dev/ports";
import { SANDBOX_DIR } from "../../dev/sandbox";
import { sandboxCliEnv, writeSandboxCliEnv } from "../../dev/cliEnv";
import { REPO_ROOT, waitFor } from "../host/helpers";
import { startAppStack, type AppStack } from "../support/appStack";

const BIN = path.join(REPO_ROOT, "cli", "bin.js");
const CREDENTIAL = "creatio-api-cli-test";
const PASSWORD = SEED_USERS[0]!.password;

let app: AppStack;
let site: string;
let envDir: string;
let envFile: string;
/** Everything the CLI printed, for the secret scan at the end. */
const printed: string[] = [];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `set -a; . <env file>; set +a; exec cli/bin.js <args>` with only PATH and HOME inherited. */
function cli(args: string[], options: { stdin?: string; env?: Record<string, string>; timeoutMs?: number; command?: string[] } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const command = options.command ?? [BIN];
    const child = spawn("sh", ["-c", 'set -a; . "$CLI_ENV_FILE"; set +a; exec "$@"', "sh", ...command, ...args], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? os.tmpdir(), CLI_ENV_FILE: envFile, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`creatio-o365 ${args.join(" ")} did not end in time; stdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      printed.push(stdout, stderr);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.stdin ?? "");
  });
}

const api = async (p: string): Promise<any> => (await app.api(p)).body;

beforeAll(async () => {
  app = await startAppStack({ emulators: { sandboxDir: SANDBOX_DIR } });
  site = new URL(app.stack.creatioUrl).host;
  envDir = mkdtempSync(path.join(os.tmpdir(), "cli-env-"));
  // What npm start writes (dev/start.ts), for this app.stack.
  envFile = writeSandboxCliEnv(envDir, sandboxCliEnv(app.host.url, app.stack.appSettings()));
}, 120_000);

afterAll(async () => {
  await app?.close();
  if (envDir) rmSync(envDir, { recursive: true, force: true });
});

describe("creatio-o365 against the local stack", () => {
  it("the environment file is the owner's only", () => {
    expect(statSync(envFile).mode & 0o077).toBe(0);
  });

  it("a wrong URL: says what to do, exit 3", async () => {
    const [port] = await getFreePorts(1);
    const r = await cli(["sites", "--url", `http://127.0.0.1:${port}`]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(new RegExp(`^creatio-o365: cannot reach http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\): is \`npm start\` running\\? set --url or CREATIO_O365_URL\\n$`));
  });

  it("an unknown host: the app's 404 and how to list the sites, exit 1", async () => {
    const r = await cli(["site", "nosuch.example.com"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^creatio-o365: .*nosuch\.example\.com.*: `creatio-o365 sites` lists the managed sites/);
  });

  it("credential set: stores standard input's login in the emulated vault with the creatioSite tag, never printing it", async () => {
    const r = await cli(["credential", "set", CREDENTIAL, "--site", app.stack.creatioUrl], { stdin: JSON.stringify({ username: SEED_USERS[0]!.userName, password: PASSWORD }) });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^stored ${CREDENTIAL} \\(version \\w+\\) in ${app.stack.keyVaultUrl.replace(/[.]/g, "\\.")}, bound to ${site} \\(tag creatioSite\\)\\n`));
    const state: any = await (await fetch(`${app.stack.keyVaultUrl}/_emulator/state`)).json();
    const versions = state.secrets[CREDENTIAL].versions;
    expect(versions).toHaveLength(1);
    expect(versions[0]).toMatchObject({ contentType: "application/json", tags: { creatioSite: site } });
    expect(JSON.parse(versions[0].value)).toEqual({ username: SEED_USERS[0]!.userName, password: PASSWORD });
  });

  it("credential set without the sandbox's sign-in: no identity, says how to sign in, stores nothing", async () => {
    const r = await cli(["credential", "set", "creatio-api-unsigned", "--site", site], {
      stdin: JSON.stringify({ username: "u", password: "p" }),
      // Loaded after the file: the environment credential has nothing to sign in with.
      env: {},
      command: ["env", "-u", "AZURE_CLIENT_SECRET", "-u", "AZURE_CLIENT_ID", "-u", "AZURE_TENANT_ID", BIN],
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no Azure sign-in found|refused|az login/);
    const state: any = await (await fetch(`${app.stack.keyVaultUrl}/_emulator/state`)).json();
    expect(state.secrets["creatio-api-unsigned"]).toBeUndefined();
  }, 90_000);

  it("credential set when the identity lacks the vault role: Key Vault's 403 and the role to ask for; nothing stored", async () => {
    const setRoles = (roles: string[]) =>
      fetch(`${app.stack.keyVaultUrl}/_emulator/role-assignments/${app.stack.identity.objectId}`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ roles }) });
    await setRoles([]);
    let r: Run;
    try {
      r = await cli(["credential", "set", "creatio-api-norole", "--site", site], { stdin: JSON.stringify({ username: "u", password: "p" }) });
    } finally {
      await setRoles(["Key Vault Secrets Officer"]);
    }
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^creatio-o365: https:\/\/localhost:\d+ refused to store the secret \(403 [\w ]*\): your identity needs the Key Vault Secrets Officer role on the vault\n$/);
    const state: any = await (await fetch(`${app.stack.keyVaultUrl}/_emulator/state`)).json();
    expect(state.secrets["creatio-api-norole"]).toBeUndefined();
  }, 90_000);

  it("onboard with that credential: live progress (step k of n, a retry and why), then a summary; exit 0", async () => {
    // Graph throttles the application lookups more often than the client retries (5 retries, 1 s
    // apart), so the ensureApplication step fails once, the orchestration waits to retry it, and its
    // second attempt meets three more 429s: each state lasts seconds, long enough to be seen.
    await app.faults(app.stack.graphUrl, { throttleNext: 9, retryAfterSeconds: 1, match: "^GET /v1\\.0/applications" });
    let r: Run;
    try {
      r = await cli(["onboard", app.stack.creatioUrl, "--credential", CREDENTIAL, "--lifetime-days", "120"], { timeoutMs: 120_000 });
    } finally {
      await app.faults(app.stack.graphUrl);
    }
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toBe(`onboarding of ${site} started (onboard-${site})`);
    expect(lines).toContainEqual(expect.stringMatching(/^step \d of \d: ensureApplication$/));
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}attempt 1 of ensureApplication failed: .*429.*; retrying at \d{4}-\d\d-\d\dT/));
    expect(lines).toContainEqual(expect.stringMatching(/^step \d of \d: ensureApplication \(attempt 2\)$/));
    const tenant = await api(`/api/tenants/${site}`);
    expect(tenant.appId).toEqual(expect.any(String));
    expect(r.stdout).toContain(`onboarded ${site}\n  app id          ${tenant.appId}\n  secret expires  ${tenant.secret.expiresOn.slice(0, 10)}`);
    expect(r.stdout).toContain(`  mail readiness  ${tenant.mail.ews}`);
    expect(r.stdout).toContain(`  health          ${tenant.health.state}`);
    expect(tenant.creatio.credentialSecretName).toBe(CREDENTIAL);
    expect(tenant.secret.daysLeft).toBeLessThanOrEqual(120);
  }, 150_000);

  it("sites: the site's row as the API lists it; --output json is the API's list", async () => {
    const list = await api("/api/tenants");
    const row = list.find((t: any) => t.host === site);
    const r = await cli(["sites"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/SITE\s+│\s*TENANT\s+│\s*STATE\s+│\s*MAIL\s+│\s*SECRET EXPIRES IN\s+│\s*NEXT ROTATION/);
    const line = r.stdout.split("\n").find((l) => l.includes(site))!;
    expect(line).toMatch(new RegExp(`${site.replace(/[.]/g, "\\.")} +│ home +│ ${row.health.state} +│ ${row.mail.ews} +│ [█░]{10} ${row.rotation.daysLeft}d +│ ${row.rotation.nextRotationDueAt.slice(0, 10)}`));
    // Not a terminal: no colour codes.
    expect(r.stdout).not.toMatch(/\u001b\[/);

    const j = await cli(["sites", "--output", "json"]);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout).map((t: any) => t.host)).toEqual(list.map((t: any) => t.host));
  });

  it("site: readable sections with what the API says; --output json parses", async () => {
    const tenant = await api(`/api/tenants/${site}`);
    const r = await cli(["site", site]);
    expect(r.code).toBe(0);
    for (const title of ["Health", "Application", "Mail (Exchange Online EWS)", "Creatio", "Secret (Key Vault; never its value)", "Rotation", "Last run", "Runs"]) {
      expect(r.stdout).toContain(`\n${title}\n`);
    }
    expect(r.stdout).toMatch(new RegExp(`app id +${tenant.appId}`));
    expect(r.stdout).toMatch(new RegExp(`credential secret +${CREDENTIAL}`));
    expect(r.stdout).toMatch(new RegExp(`onboarding: onboard-${site} Completed, done`));
    const j = await cli(["site", app.stack.creatioUrl, "-o", "json"]);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ host: site, appId: tenant.appId });
  });

  it("rotate --grace-hours 0: follows the rotation to its summary; --output json prints the final status, progress on stderr", async () => {
    const before = await api(`/api/tenants/${site}`);
    // Graph answers after 300 ms, so each step outlasts the CLI's 500 ms polls now and then: against
    // instant emulators a whole rotation can end before the first poll, with no step to show.
    await app.faults(app.stack.graphUrl, { latencyMs: 300 });
    const r = await cli(["rotate", site, "--grace-hours", "0"], { timeoutMs: 120_000 });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^rotation of .* started \(rotate-/);
    expect(r.stdout).toMatch(/\nstep \d of 7: \w+\n/);
    const after = await api(`/api/tenants/${site}`);
    expect(after.secret.keyId).not.toBe(before.secret.keyId);
    expect(r.stdout).toContain(`rotated ${site}\n  new keyId        ${after.secret.keyId}\n`);
    expect(r.stdout).toContain(`  old password     ${before.secret.keyId}`);

    const j = await cli(["rotate", site, "--grace-hours", "0", "--output", "json"], { timeoutMs: 120_000 });
    expect(j.code).toBe(0);
    const status = JSON.parse(j.stdout);
    expect(status).toMatchObject({ runtimeStatus: "Completed", output: { host: site, outcome: "succeeded" } });
    expect(j.stderr).toMatch(/step \d of 7: /);
    await app.faults(app.stack.graphUrl);
  }, 240_000);

  it("plan: the site, not due, and the last sweep's outcome once a sweep ran; --output json is the API's plan", async () => {
    const before = await cli(["plan"]);
    expect(before.code).toBe(0);
    expect(before.stdout).toMatch(new RegExp(`${site.replace(/[.]/g, "\\.")} +│ no +│`));
    expect(before.stdout).toMatch(/\nLast sweep: none recorded yet\.\n$/);

    const swept = await fetch(`${app.host.url}/admin/functions/rotationSweep`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    expect(swept.status).toBe(202);
    const sweep = await waitFor("the sweep record", async () => (await api("/api/rotation-plan")).lastSweep ?? undefined, 30_000, 200);
    const after = await cli(["plan"]);
    expect(after.code).toBe(0);
    expect(after.stdout).toContain(`\nLast sweep: ${sweep.at}: 1 managed, 0 due, 0 started, 0 skipped, 0 expired, 0 not mail-ready.\n`);
    const j = await cli(["plan", "--output", "json"]);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ sites: [{ host: site, due: false }], lastSweep: { at: sweep.at } });
  }, 90_000);

  it("offboard: needs --yes off a terminal; then follows the run to what each step did; the site leaves the list; a second offboard is a no-op that says so", async () => {
    const refused = await cli(["offboard", site]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/add --yes/);
    expect((await api(`/api/tenants/${site}`)).state).toBe("managed");

    const r = await cli(["offboard", site, "--yes"], { timeoutMs: 120_000 });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^offboarding of .* started \(offboard-/);
    expect(r.stdout).toMatch(new RegExp(`\\noffboarded ${site.replace(/[.]/g, "\\.")}\\n  Creatio     unlinked-mail-server`));
    expect(r.stdout).toMatch(/\n {2}Entra app {3}deleted \([0-9a-f-]+\), restorable until \d{4}-/);
    expect(r.stdout).toMatch(/\n {2}Key Vault {3}secret creatio-o365-\S+ deleted, recoverable until \d{4}-/);
    expect(r.stdout).toMatch(/\n {2}restore: /);

    const sites = await cli(["sites"]);
    expect(sites.stdout).not.toContain(site);
    const all = await cli(["sites", "--include-offboarded"]);
    expect(all.stdout).toContain(`${site} (offboarded)`);
    const status = await cli(["site", site]);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain("\nOffboarded\n");

    const again = await cli(["offboard", site, "--yes"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`^${site.replace(/[.]/g, "\\.")} was already offboarded on \\d{4}-.*; nothing was done\\. To restore: `));
  }, 180_000);

  it("runs from npx as the README says", async () => {
    const r = await cli(["creatio-o365", "--help"], { command: ["npx", "--no-install"] });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: creatio-o365 /);
  }, 90_000);

  it("never printed the Creatio password or a client secret", async () => {
    const state: any = await (await fetch(`${app.stack.keyVaultUrl}/_emulator/state`)).json();
    const clientSecrets = Object.entries<any>(state.secrets)
      .filter(([name]) => name.startsWith("creatio-o365-"))
      .flatMap(([, s]) => s.versions.map((v: any) => v.value as string));
    expect(clientSecrets.length).toBeGreaterThanOrEqual(3);
    const all = printed.join("\n");
    for (const value of [PASSWORD, ...clientSecrets, app.stack.identity.clientSecret]) expect(all).not.toContain(value);
  });
});
