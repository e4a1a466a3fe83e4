import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { MAX_GRACE_PERIOD_HOURS } from "../src/api/schemas";
import { Api, CliError, DEFAULT_URL, EXIT, errorText, httpError, type ApiResponse, type Fetch } from "./api";
import { setCredential, type CredentialStore } from "./credential";
import { canSpin, follow, lineProgress, spinnerProgress, type Progress, type Writer } from "./follow";
import { colourEnabled, failureText, formatPlan, formatSite, formatSites, offboardSummary, onboardSummary, painter, rotateSummary, type Paint } from "./format";

/**
 * `creatio-o365`: the app's HTTP API (src/api/openapi.ts, API_ROUTES) for operators, one command per
 * action, with progress while a run works, tables, and `--output json` for scripts (README,
 * "Command line"). buildProgram takes its I/O as parameters so test/cli/ can drive it.
 */

export interface Io {
  stdout: Writer;
  stderr: Writer;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  fetch?: Fetch;
  /** Asks a question on the terminal (offboard's confirmation). */
  prompt?: (question: string) => Promise<string>;
  sleep?: (ms: number) => Promise<void>;
  credentialStore?: (vaultUrl: string) => CredentialStore;
}

interface Globals {
  url?: string;
  output: "text" | "json";
}

const EXAMPLES = `
Examples:
  $ creatio-o365 sites
  $ creatio-o365 site acme.creatio.com
  $ creatio-o365 credential set creatio-api-acme --site acme.creatio.com < login.json
  $ creatio-o365 onboard https://acme.creatio.com --credential creatio-api-acme
  $ creatio-o365 rotate acme.creatio.com --grace-hours 0
  $ creatio-o365 plan --output json

The app's URL comes from --url or CREATIO_O365_URL (default ${DEFAULT_URL}); its function key
from CREATIO_O365_KEY (sent as x-functions-key; never on the command line). On \`npm start\`,
\`set -a; . .sandbox/cli.env; set +a\` sets everything, including the sandbox's Azure sign-in.
Exit codes: 0 done, 1 failed, 2 wrong usage, 3 app unreachable or key refused.`;

function intArg(name: string, min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be ${min}-${max}`);
    return n;
  };
}

function numberArg(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a number from ${min} to ${max}`);
    return n;
  };
}

/** The text ending with a full stop, so another sentence can follow. */
const sentence = (text: string) => (/[.!?]$/.test(text.trim()) ? text.trim() : `${text.trim()}.`);

/** A site argument: its host, or the site's URL (whose host is taken). */
export function hostArg(text: string): string {
  if (/^https?:\/\//i.test(text)) {
    try {
      return new URL(text).host;
    } catch {
      throw new CliError(`${JSON.stringify(text)} is not a URL or host`, EXIT.usage);
    }
  }
  return text;
}

/** The POST /api/tenants body for `onboard` (fields of onboardRequestSchema in src/api/schemas.ts; entraTenantId only when --tenant is given). */
export function onboardBody(url: string, o: Record<string, any>): Record<string, unknown> {
  const body: Record<string, unknown> = { creatioUrl: url, creatioCredentialSecretName: o.credential };
  if (o.lifetimeDays !== undefined) body.secretLifetimeDays = o.lifetimeDays;
  if (o.tenant !== undefined) body.entraTenantId = o.tenant;
  if (o.takeOver) body.takeOver = true;
  if (o.allowUserConsent) body.allowUserConsent = true;
  if (o.enableEwsForTenant) body.enableEwsForTenant = true;
  if (o.permissionProfile !== undefined) body.permissionProfile = o.permissionProfile;
  if (o.displayName !== undefined) body.displayName = o.displayName;
  return body;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

export function buildProgram(io: Io): Command {
  const program = new Command();
  const paint: Paint = painter(colourEnabled(io.stdout, io.env));
  const out = (text: string) => void io.stdout.write(`${text}\n`);
  const printJson = (value: unknown) => out(JSON.stringify(value, null, 2));

  program
    .name("creatio-o365")
    .description("Operate creatio-o365-oauth: onboard Creatio sites for Office 365 mail, watch their health, rotate and offboard.")
    .option("--url <url>", `the app's URL (env CREATIO_O365_URL; default ${DEFAULT_URL})`)
    .addOption(new Option("-o, --output <format>", "text or json").choices(["text", "json"]).default("text"))
    .showHelpAfterError("(add --help for usage)")
    .addHelpText("after", EXAMPLES)
    .exitOverride()
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) });

  const globals = (cmd: Command): Globals => cmd.optsWithGlobals() as Globals;
  const api = (cmd: Command) => new Api({ baseUrl: globals(cmd).url ?? io.env.CREATIO_O365_URL ?? DEFAULT_URL, key: io.env.CREATIO_O365_KEY, fetch: io.fetch });
  const json = (cmd: Command) => globals(cmd).output === "json";
  /** Progress lines go to stdout, or stderr under --output json (stdout then holds only the JSON); a spinner only on a terminal. */
  const progressFor = async (cmd: Command): Promise<Progress> => {
    const stream = json(cmd) ? io.stderr : io.stdout;
    return canSpin(stream) ? spinnerProgress(stream) : lineProgress(stream);
  };
  const sub = (name: string) => program.command(name).exitOverride().configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) });

  /** Follows a started run and prints its end; a run that did not complete is a CliError naming its step and cause. */
  const followRun = async (cmd: Command, kind: string, host: string, started: ApiResponse, summary: (status: any) => Promise<string>) => {
    const uri = started.body?.statusQueryGetUri;
    if (typeof uri !== "string") throw new CliError(`the app started the ${kind} but gave no statusQueryGetUri; look with: creatio-o365 site ${host}`);
    const progress = await progressFor(cmd);
    if (!json(cmd)) progress.line(`${kind} of ${host} started (${started.body.id ?? "instance"})`);
    const status = await follow(api(cmd), uri, { progress, sleep: io.sleep, laterHint: `Look with: creatio-o365 site ${host}` });
    if (json(cmd)) printJson(status);
    if (status.runtimeStatus !== "Completed") {
      throw new CliError(failureText(kind, status), EXIT.failed, undefined, json(cmd));
    }
    if (!json(cmd)) out(await summary(status));
  };

  const conflict = (host: string, r: ApiResponse) =>
    new CliError(
      `${sentence(errorText(r))}${r.body?.instanceId ? ` Active run: ${r.body.instanceId}.` : ""} Follow it with \`creatio-o365 site ${host}\` (section Runs) and try again when it has ended.`,
      EXIT.failed,
      r.body,
    );
  const notFound = (host: string, r: ApiResponse) => new CliError(`${errorText(r)}: \`creatio-o365 sites\` lists the managed sites (${host} is not one of them)`, EXIT.failed, r.body);
  const tenantStatus = async (cmd: Command, host: string): Promise<any> => {
    try {
      const r = await api(cmd).request("GET", `/api/tenants/${encodeURIComponent(host)}`);
      return r.status === 200 ? r.body : undefined;
    } catch {
      return undefined;
    }
  };

  sub("sites")
    .description("every managed site, least healthy first: state, mail readiness, days until Creatio's secret expires, next rotation")
    .option("--include-offboarded", "also list offboarded sites")
    .addHelpText("after", "\nExamples:\n  $ creatio-o365 sites\n  $ creatio-o365 sites --include-offboarded --output json")
    .action(async (opts, cmd: Command) => {
      const r = await api(cmd).request("GET", `/api/tenants${opts.includeOffboarded ? "?include=offboarded" : ""}`);
      if (r.status !== 200) throw httpError("listing the sites", r);
      if (json(cmd)) printJson(r.body);
      else out(formatSites(Array.isArray(r.body) ? r.body : [], paint));
    });

  sub("site")
    .description("everything the app knows about one site: health and problems, mail, Creatio, secret, rotation, last run, current runs")
    .argument("<host>", "the site's host (acme.creatio.com) or URL")
    .addHelpText("after", "\nExamples:\n  $ creatio-o365 site acme.creatio.com\n  $ creatio-o365 site https://localhost:7103 --output json")
    .action(async (hostText: string, _opts, cmd: Command) => {
      const host = hostArg(hostText);
      const r = await api(cmd).request("GET", `/api/tenants/${encodeURIComponent(host)}`);
      if (r.status === 404) throw notFound(host, r);
      if (r.status !== 200) throw httpError(`reading ${host}`, r);
      if (json(cmd)) printJson(r.body);
      else out(formatSite(r.body, paint));
    });

  sub("onboard")
    .description("register the Entra app for a Creatio site, give Creatio its secret, and follow the run live")
    .argument("<url>", "the Creatio site's URL, e.g. https://acme.creatio.com")
    .requiredOption("--credential <name>", "Key Vault secret holding Creatio's login, bound to the site (see `credential set`)")
    .option("--lifetime-days <n>", "client secret lifetime in days (1-730; default 730)", intArg("--lifetime-days", 1, 730))
    .option("--tenant <id>", "Entra tenant of the site's Microsoft 365: its id or a verified domain (sent as entraTenantId); default: the app's home tenant")
    .option("--take-over", "replace the OAuth application Creatio's mail server is linked to when it is another app")
    .option("--allow-user-consent", "also allow user consent tenant-wide (manual step 9)")
    .option("--enable-ews-for-tenant", "with EWS_ACCESS=manage: also set the tenant's EwsEnabled to $true")
    .option("--permission-profile <name>", "permission profile (default creatio-ews)")
    .option("--display-name <name>", "display name of the app registration (default Creatio)")
    .addHelpText(
      "after",
      "\nExamples:\n  $ creatio-o365 onboard https://acme.creatio.com --credential creatio-api-acme\n  $ creatio-o365 onboard https://localhost:7103 --credential creatio-sandbox-admin --lifetime-days 90",
    )
    .action(async (url: string, opts, cmd: Command) => {
      const host = hostArg(url);
      const r = await api(cmd).request("POST", "/api/tenants", onboardBody(url, opts));
      if (r.status === 409) throw conflict(host, r);
      if (r.status !== 202) throw httpError("onboarding", r);
      await followRun(cmd, "onboarding", host, r, async (status) => onboardSummary(status.output, await tenantStatus(cmd, status.output?.host ?? host), paint));
    });

  sub("rotate")
    .description("rotate a site's client secret now and follow the run (new secret, Creatio updated, old one removed after the grace period)")
    .argument("<host>", "the site's host or URL")
    .option(
      "--grace-hours <h>",
      `hours the old secret stays valid after Creatio has the new one (0-${MAX_GRACE_PERIOD_HOURS}; default the app's OLD_SECRET_GRACE_HOURS)`,
      numberArg("--grace-hours", 0, MAX_GRACE_PERIOD_HOURS),
    )
    .addHelpText("after", "\nExamples:\n  $ creatio-o365 rotate acme.creatio.com\n  $ creatio-o365 rotate acme.creatio.com --grace-hours 0   # a suspected leak")
    .action(async (hostText: string, opts, cmd: Command) => {
      const host = hostArg(hostText);
      const body = opts.graceHours === undefined ? {} : { gracePeriodHours: opts.graceHours };
      const r = await api(cmd).request("POST", `/api/tenants/${encodeURIComponent(host)}/rotate`, body);
      if (r.status === 404) throw notFound(host, r);
      if (r.status === 409) throw conflict(host, r);
      if (r.status !== 202) throw httpError(`rotating ${host}`, r);
      await followRun(cmd, "rotation", host, r, async (status) => rotateSummary(status.output, await tenantStatus(cmd, host), paint));
    });

  sub("offboard")
    .description("remove a site: Creatio's mail server unlinked, the app id off the EWS allow list, the Entra app and the site's secret deleted (both restorable for a while)")
    .argument("<host>", "the site's host or URL")
    .option("--yes", "do not ask for the host again (required when not on a terminal)")
    .addHelpText(
      "after",
      "\nThis disconnects every user's Office 365 mailbox in that Creatio.\n\nExamples:\n  $ creatio-o365 offboard acme.creatio.com\n  $ creatio-o365 offboard acme.creatio.com --yes --output json",
    )
    .action(async (hostText: string, opts, cmd: Command) => {
      const host = hostArg(hostText);
      if (!opts.yes) {
        if (!io.stdin.isTTY || !io.prompt) throw new CliError(`offboard asks for the host again on a terminal; elsewhere add --yes: creatio-o365 offboard ${host} --yes`, EXIT.usage);
        io.stderr.write(`Offboarding ${host} disconnects every user's Office 365 mailbox in that Creatio and deletes its Entra app and secret.\n`);
        const typed = (await io.prompt(`Type the host (${host}) to confirm: `)).trim();
        if (typed !== host) throw new CliError(`"${typed}" is not ${host}: nothing was changed`, EXIT.usage);
      }
      const r = await api(cmd).request("DELETE", `/api/tenants/${encodeURIComponent(host)}`, { confirm: host });
      if (r.status === 200 && r.body?.offboarded) {
        if (json(cmd)) printJson(r.body);
        // The app's message says when and how to restore; without one, say at least when.
        else out(r.body.message ?? `${host}: nothing to do, already offboarded${r.body.offboardedAt ? ` at ${r.body.offboardedAt}` : ""}.`);
        return;
      }
      if (r.status === 404 && r.body === undefined) throw new CliError(`${api(cmd).baseUrl} cannot offboard (DELETE /api/tenants/{host} answered 404 without a body): the app is older than this command line; update it`);
      if (r.status === 404) throw notFound(host, r);
      if (r.status === 409) throw conflict(host, r);
      if (r.status !== 202) throw httpError(`offboarding ${host}`, r);
      await followRun(cmd, "offboarding", host, r, async (status) => offboardSummary(host, status.output, await tenantStatus(cmd, host), paint));
    });

  sub("plan")
    .description("what the next rotation sweep would do, without doing it, and how the last sweep went")
    .addHelpText("after", "\nExamples:\n  $ creatio-o365 plan\n  $ creatio-o365 plan --output json")
    .action(async (_opts, cmd: Command) => {
      const r = await api(cmd).request("GET", "/api/rotation-plan");
      if (r.status === 404) throw new CliError(`${api(cmd).baseUrl} has no GET /api/rotation-plan (404): the app is older than this command line; update it`, EXIT.failed, r.body);
      if (r.status !== 200) throw httpError("reading the rotation plan", r);
      if (json(cmd)) printJson(r.body);
      else out(formatPlan(r.body, paint));
    });

  const credential = sub("credential").description("Creatio credentials in Key Vault");
  credential
    .command("set")
    .exitOverride()
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) })
    .description("store a Creatio login (JSON on standard input) in Key Vault with your own Azure sign-in, bound to one site")
    .argument("<name>", "Key Vault secret name, e.g. creatio-api-acme")
    .requiredOption("--site <host>", "the site the credential may be sent to (its host or URL): the creatioSite tag")
    .option("--vault-url <url>", "the vault's URI (env KEY_VAULT_URL)")
    .addHelpText(
      "after",
      `
Standard input: {"username":"...","password":"..."} or {"clientId":"...","clientSecret":"...","identityServerUrl":"https://..."}.
The value is never printed. Signs in with DefaultAzureCredential (az login, environment, managed identity);
the identity needs Key Vault Secrets Officer on the vault.

Examples:
  $ creatio-o365 credential set creatio-api-acme --site acme.creatio.com --vault-url https://myvault.vault.azure.net < login.json
  $ set -a; . .sandbox/cli.env; set +a     # on npm start: the emulated vault and the sandbox sign-in
  $ echo '{"username":"Supervisor","password":"..."}' | creatio-o365 credential set creatio-api-local --site localhost:7103`,
    )
    .action(async (name: string, opts, cmd: Command) => {
      if (io.stdin.isTTY) io.stderr.write('Paste the credential JSON, then Ctrl-D (it is not shown again):\n');
      const input = await readAll(io.stdin);
      const vaultUrl = opts.vaultUrl ?? io.env.KEY_VAULT_URL;
      const stored = await setCredential({ name, site: opts.site, vaultUrl, input, env: io.env, store: io.credentialStore && vaultUrl ? io.credentialStore(vaultUrl) : undefined });
      if (json(cmd)) printJson(stored);
      else {
        out(`stored ${stored.name}${stored.version ? ` (version ${stored.version})` : ""} in ${stored.vaultUrl}, bound to ${stored.site} (tag creatioSite)`);
        out(`next: creatio-o365 onboard https://${stored.site} --credential ${stored.name}`);
      }
    });

  return program;
}

/** Runs the command line; returns the exit code (never calls process.exit itself). */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are exits with code 0; commander has already printed its own message otherwise.
      return error.exitCode === 0 ? 0 : EXIT.usage;
    }
    const asJson = program.opts().output === "json";
    if (error instanceof CliError) {
      io.stderr.write(`creatio-o365: ${error.message}\n`);
      if (asJson && !error.jsonPrinted) io.stdout.write(`${JSON.stringify({ error: error.message, ...(error.body && typeof error.body === "object" ? { response: error.body } : {}) }, null, 2)}\n`);
      return error.exitCode;
    }
    io.stderr.write(`creatio-o365: ${(error as Error)?.message ?? String(error)}\n`);
    return EXIT.failed;
  }
}

export function processIo(): Io {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    prompt: async (question) => {
      const readline = await import("node:readline/promises");
      const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
      try {
        return await rl.question(question);
      } finally {
        rl.close();
      }
    },
  };
}
