// `npm start`: the app on http://localhost:7071, as `func start` would run it.
//
// Without local.settings.json: starts Azurite (data in .sandbox/azurite), the Graph/Entra, Key
// Vault and Creatio emulators, and the local host with settings pointing at them. Variables set
// in the environment override those defaults (ports included). With local.settings.json: runs the
// host against whatever that file names (real Azure and Creatio); no emulator is started.
//
// SIGINT or SIGTERM to this process, or the end of its parent (npm, or the `sh -c` npm runs it
// with), stops all it started: the host, the emulators and Azurite, in reverse order.
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { startAzurite, type AzuriteHandle } from "./azurite";
import { SANDBOX_CREATIO_CREDENTIAL_SECRET, SANDBOX_CUSTOMER_TENANT, startEmulators, type EmulatorStack } from "./emulators";
import { faultsFromEnvironment } from "./emulators/server";
import { spawnHost, type SpawnedHost } from "./host/spawn";
import { sandboxCliEnv, writeSandboxCliEnv } from "./cliEnv";
import { onParentExit } from "./parentWatch";
import { portIsFree } from "./ports";
import { REPO_ROOT, SANDBOX_DIR } from "./sandbox";
import { explainSettingsProblems, localSettingsView, sandboxSettingsView, settingsFailureReport } from "./settingsCheck";

const env = process.env;
const port = (name: string, fallback: number) => Number(env[name] ?? fallback);

const PORTS = {
  host: port("FUNCTIONS_PORT", 7071),
  blob: port("AZURITE_BLOB_PORT", 10000),
  queue: port("AZURITE_QUEUE_PORT", 10001),
  table: port("AZURITE_TABLE_PORT", 10002),
  graph: port("GRAPH_EMULATOR_PORT", 7101),
  keyVault: port("KEY_VAULT_EMULATOR_PORT", 7102),
  creatio: port("CREATIO_EMULATOR_PORT", 7103),
  creatioIdentity: port("CREATIO_IDENTITY_EMULATOR_PORT", 7104),
  exchange: port("EXCHANGE_EMULATOR_PORT", 7105),
};

/** Environment variables win over the sandbox defaults. */
function withEnvironmentOverrides(defaults: Record<string, string>): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const [key, value] of Object.entries(defaults)) settings[key] = env[key] ?? value;
  return settings;
}

/** The pid of an Azurite an earlier `npm start` left running on this data directory, if any. */
function runningAzurite(pidFile: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
  } catch {
    return undefined; // gone: the file is stale
  }
  // Where /proc exists, a reused pid that is not Azurite does not count.
  const cmdline = `/proc/${pid}/cmdline`;
  if (existsSync(cmdline) && !readFileSync(cmdline, "utf8").includes("azurite")) return undefined;
  return pid;
}

/** Why the sandbox cannot start here, before anything is deleted or started; undefined when it can. */
async function sandboxConflict(azuriteData: string, pidFile: string): Promise<string | undefined> {
  const pid = runningAzurite(pidFile);
  if (pid !== undefined) {
    return `An Azurite from an earlier npm start (pid ${pid}) still runs on ${azuriteData}. Stop it (kill ${pid}) and run npm start again; its data was left as it is.`;
  }
  const taken: string[] = [];
  for (const [name, value] of Object.entries(PORTS)) if (!(await portIsFree(value))) taken.push(`${value} (${name})`);
  if (taken.length === 0) return undefined;
  return (
    `Port ${taken.join(", ")} already in use: another npm start, Azurite or Functions host may be running. ` +
    `Stop it, or choose other ports (FUNCTIONS_PORT, AZURITE_BLOB_PORT, ..., see README "Try it locally"). Nothing was started or deleted.`
  );
}

async function main(): Promise<void> {
  const stoppers: (() => Promise<void>)[] = [];
  let stopping = false;
  // What is being started right now: a stop waits for it, so that it is stopped too.
  let starting: Promise<unknown> = Promise.resolve();
  const started = <T>(what: Promise<T>, stop: (handle: T) => Promise<void>): Promise<T> => {
    starting = what.then(
      (handle) => void stoppers.push(() => stop(handle)),
      () => undefined,
    );
    return what;
  };
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log("\nStopping...");
    await starting;
    for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
    process.exit(code);
  };
  process.on("SIGINT", () => void stopAll(0));
  process.on("SIGTERM", () => void stopAll(0));
  process.on("SIGHUP", () => void stopAll(0));
  onParentExit(() => void stopAll(0));

  /** The app's own schema judges the settings before anything starts: a bad one stops npm start here, by name. */
  const settingsAreValid = (view: ReturnType<typeof localSettingsView>): boolean => {
    const problems = explainSettingsProblems(view.values, view.originOf);
    if (problems.length === 0) return true;
    console.error(settingsFailureReport(problems));
    return false;
  };

  try {
    const useLocalSettings = existsSync(join(REPO_ROOT, "local.settings.json"));
    let hostEnv: Record<string, string> = {};
    let stack: EmulatorStack | undefined;
    if (useLocalSettings) {
      console.log("local.settings.json found: running against the services it names (no emulators).");
      const values = (JSON.parse(readFileSync(join(REPO_ROOT, "local.settings.json"), "utf8")).Values ?? {}) as Record<string, string>;
      if (!settingsAreValid(localSettingsView(values, env))) return void (await stopAll(1));
      // Like `func start` users, who run Azurite beside it: host storage on the development
      // storage shorthand gets a local Azurite whose data is kept between runs (the services are real).
      const storage = env.AzureWebJobsStorage ?? values.AzureWebJobsStorage ?? "";
      if (/^\s*UseDevelopmentStorage=true\s*;?\s*$/i.test(storage)) {
        await started(startAzurite({ location: join(SANDBOX_DIR, "azurite-local-settings"), blobPort: 10000, queuePort: 10001, tablePort: 10002 }), (azurite) => azurite.stop());
        if (stopping) return;
        console.log("AzureWebJobsStorage is UseDevelopmentStorage=true: Azurite started on 10000-10002.");
      }
    } else {
      // The emulators' URLs as appSettings() will give them; environment variables override them.
      const sandboxDefaults = {
        AzureWebJobsStorage: "UseDevelopmentStorage=true",
        ROTATION_SCHEDULE: "0 0 3 * * *",
        KEY_VAULT_URL: `https://localhost:${PORTS.keyVault}`,
        GRAPH_BASE_URL: `https://localhost:${PORTS.graph}`,
        AZURE_AUTHORITY_HOST: `https://localhost:${PORTS.graph}`,
        AZURE_DISABLE_INSTANCE_DISCOVERY: "true",
        CREATIO_ALLOW_LOOPBACK: "true",
        EXCHANGE_ADMIN_URL: `https://localhost:${PORTS.exchange}`,
        EWS_ACCESS: "manage",
      };
      if (!settingsAreValid(sandboxSettingsView(sandboxDefaults, env))) return void (await stopAll(1));
      const startedAt = Date.now();
      // Faults from the start, e.g. EMULATOR_FAULTS='{"latencyMs":200,"throttleFraction":0.1}': every emulator gets them.
      // Checked like POST /_emulator/faults: an unknown key or a value of the wrong type stops here, naming the variable.
      const faults = faultsFromEnvironment(env.EMULATOR_FAULTS);
      // The emulators keep their objects in memory, so each run starts from their seed. Durable
      // state from an earlier run would then resume orchestrations against apps and secrets that no
      // longer exist: the sandbox's Azurite data starts afresh with them.
      // Never under a running Azurite, though: a taken port or a live Azurite from an earlier
      // start (its pid is in azurite.pid) ends npm start here, with the data untouched.
      const azuriteData = join(SANDBOX_DIR, "azurite");
      const pidFile = join(SANDBOX_DIR, "azurite.pid");
      const conflict = await sandboxConflict(azuriteData, pidFile);
      if (conflict !== undefined) {
        console.error(conflict);
        return void (await stopAll(1));
      }
      rmSync(azuriteData, { recursive: true, force: true });
      const azurite: AzuriteHandle = await started(
        startAzurite({ location: azuriteData, blobPort: PORTS.blob, queuePort: PORTS.queue, tablePort: PORTS.table }).then((handle) => {
          writeFileSync(pidFile, `${handle.process.pid}\n`);
          return handle;
        }),
        async (handle) => {
          await handle.stop();
          rmSync(pidFile, { force: true });
        },
      );
      if (stopping) return;
      azurite.process.once("exit", (code) => {
        if (!stopping) {
          console.error(`Azurite exited (code ${code}).`);
          void stopAll(1);
        }
      });
      stack = await started(
        startEmulators({ graphPort: PORTS.graph, keyVaultPort: PORTS.keyVault, creatioPort: PORTS.creatio, creatioIdentityPort: PORTS.creatioIdentity, exchangePort: PORTS.exchange, faults }),
        (emulators) => emulators.close(),
      );
      if (stopping) return;
      // NODE_EXTRA_CA_CERTS is not a default to override: appSettings() already bundles any inherited CA file.
      // Nor are IDENTITY_ENDPOINT and IDENTITY_HEADER: they are the emulated platform's managed identity endpoint
      // (what Azure Functions gives an app), and a shell may carry its own (Cloud Shell, an App Service console).
      const { NODE_EXTRA_CA_CERTS, IDENTITY_ENDPOINT, IDENTITY_HEADER, ...settings } = stack.appSettings();
      // ROTATION_SCHEDULE: the rotationSweep timer's %ROTATION_SCHEDULE% is resolved by the host, which needs the setting itself.
      hostEnv = {
        ...withEnvironmentOverrides({ AzureWebJobsStorage: azurite.connectionString, ROTATION_SCHEDULE: "0 0 3 * * *", ...settings }),
        NODE_EXTRA_CA_CERTS,
        IDENTITY_ENDPOINT,
        IDENTITY_HEADER,
      };
      if (!settingsAreValid(sandboxSettingsView(hostEnv, env))) return void (await stopAll(1));
      console.log(`Azurite and emulators up in ${Date.now() - startedAt} ms.`);
    }

    const host: SpawnedHost = await started(spawnHost({ port: PORTS.host, env: hostEnv, onLine: (line) => console.log(line), timeoutMs: 60000 }), (handle) => handle.stop());
    if (stopping) return;
    host.child.once("exit", (code) => {
      if (!stopping) {
        console.error(`The host exited (code ${code}).`);
        void stopAll(1);
      }
    });

    const api = `${host.url}/api`;
    console.log("");
    console.log(`Functions host   ${host.url}  (admin: POST ${host.url}/admin/functions/{name})`);
    if (stack) {
      console.log(`Graph + Entra    ${stack.graphUrl}   (state: GET ${stack.graphUrl}/_emulator/state)`);
      console.log(`Key Vault        ${stack.keyVaultUrl}   (state: GET ${stack.keyVaultUrl}/_emulator/state)`);
      console.log(`Creatio          ${stack.creatioUrl}   (state: GET ${stack.creatioUrl}/_emulator/state)`);
      console.log(`Creatio identity ${stack.creatioIdentityUrl}   (identityServerUrl of a client-credentials login)`);
      console.log(`Exchange Online  ${stack.exchangeUrl}   (admin API: EwsEnabled, EwsAllowedAppIDs)`);
      console.log(`CA certificate   ${stack.caCertPath}  (curl --cacert it to call the emulators)`);
      console.log("");
      console.log("Onboard the sandbox Creatio site:");
      console.log(
        `  curl -s -X POST ${api}/tenants -H 'Content-Type: application/json' ` +
          `-d '{"creatioUrl":"${stack.creatioUrl}","creatioCredentialSecretName":"${SANDBOX_CREATIO_CREDENTIAL_SECRET}"}'`,
      );
      console.log(`  curl -s ${api}/tenants`);
      console.log(`  curl -s -X POST ${host.url}/admin/functions/rotationSweep -H 'Content-Type: application/json' -d '{}'`);
      // The command line's settings (the sandbox identity's secret among them) go to a file, not the screen.
      const cliEnvPath = writeSandboxCliEnv(SANDBOX_DIR, sandboxCliEnv(host.url, hostEnv));
      const cliEnvFile = cliEnvPath.startsWith(`${REPO_ROOT}${sep}`) ? relative(REPO_ROOT, cliEnvPath) : cliEnvPath;
      console.log("");
      console.log("Or with the command line (README, \"Command line\"), in another terminal:");
      console.log(`  set -a; . ${cliEnvFile}; set +a     # the app's URL, the emulated vault and its sign-in`);
      console.log(`  npx creatio-o365 onboard ${stack.creatioUrl} --credential ${SANDBOX_CREATIO_CREDENTIAL_SECRET}`);
      console.log("  npx creatio-o365 sites");
      // Issue 10: a site whose Microsoft 365 is another Entra tenant. The sandbox Creatio under its other
      // loopback name is a second site (its credential is bound to both names: dev/emulators/index.ts); it
      // has one mail server, so takeOver lets this site take it from the localhost one if that came first.
      const otherSite = stack.creatioUrl.replace("localhost", "127.0.0.1");
      console.log("");
      console.log(`Onboard a site whose Microsoft 365 is another tenant (${SANDBOX_CUSTOMER_TENANT.domain}, id ${SANDBOX_CUSTOMER_TENANT.tenantId}):`);
      console.log(
        `  curl -s -X POST ${api}/tenants -H 'Content-Type: application/json' ` +
          `-d '{"creatioUrl":"${otherSite}","creatioCredentialSecretName":"${SANDBOX_CREATIO_CREDENTIAL_SECRET}","entraTenantId":"${SANDBOX_CUSTOMER_TENANT.domain}","takeOver":true}'`,
      );
      console.log(`  (the same sandbox Creatio under another name: takeOver moves its mail server here if ${new URL(stack.creatioUrl).host} was onboarded first)`);
      console.log(`  curl -s ${api}/tenants/${new URL(otherSite).host}`);
      console.log("  It waits at awaitingAdminConsent; its status shows adminConsent.url: open that URL in a browser (the emulator's");
      console.log(`  consent page for ${SANDBOX_CUSTOMER_TENANT.displayName}) and press Accept; onboarding then continues in that tenant (Cancel declines).`);
    }
    console.log("\nCtrl-C stops everything.");
  } catch (error) {
    console.error(`npm start failed: ${error instanceof Error ? error.message : String(error)}`);
    await stopAll(1);
  }
}

void main();
