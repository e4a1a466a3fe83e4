/**
 * The end-to-end harness: Azurite on free ports, the emulators (Graph/Entra, Key Vault, Creatio,
 * Creatio identity, Exchange Online), and the built app in the local Functions host pointed at them;
 * plus the few calls every end-to-end test makes (the app's API, an extra Creatio site, emulator
 * faults and state, an onboarding followed to its end). One place, so each test file says only what
 * it checks.
 */
import type { SecretClient } from "@azure/keyvault-secrets";
import { startEmulators, type EmulatorStack, type EmulatorStackOptions } from "../../dev/emulators";
import { sandboxContext } from "../../dev/emulators/context";
import { createCreatioEmulator } from "../../dev/emulators/creatio";
import type { EmulatorServer } from "../../dev/emulators/server";
import { spawnHost, type SpawnedHost } from "../../dev/host/spawn";
import { startTestAzurite, waitFor, waitForStatus, type Status, type TestStorage } from "../host/helpers";
import { sandboxSecretClient, storeSiteCredential } from "./siteCredential";

export const JSON_HEADERS = { "Content-Type": "application/json" };
const FINAL_STATES = ["Completed", "Failed", "Terminated"];

export interface ApiAnswer {
  status: number;
  /** The parsed JSON body; undefined when empty. */
  body: any;
  text: string;
  headers: Headers;
}

export interface CreatioSite {
  url: string;
  host: string;
  server: EmulatorServer;
}

export interface AppStack {
  readonly stack: EmulatorStack;
  readonly storage: TestStorage;
  readonly host: SpawnedHost;
  /** The sandbox vault, as an administrator's own sign-in would reach it. */
  readonly secrets: SecretClient;
  /** Every line the host printed, across restarts. */
  readonly hostLines: string[];
  /** Every answer body the app's API gave through `api`, for scans for secret text. */
  readonly answers: string[];
  api(path: string, init?: RequestInit): Promise<ApiAnswer>;
  /** Another Creatio site (its own emulator on a free port), closed with the stack. */
  newCreatio(): Promise<CreatioSite>;
  /** Sets an emulator's faults, or clears them when `body` is omitted. */
  faults(baseUrl: string, body?: object): Promise<void>;
  /** An emulator's `/_emulator/state`. */
  emulatorState(baseUrl: string): Promise<any>;
  /** A Graph token of the sandbox identity, for acting as an administrator in the Graph emulator. */
  graphToken(): Promise<string>;
  /** POST /api/tenants (with a credential bound to the site unless the body names one), expecting 202; the instance id. */
  startOnboarding(body: { creatioUrl: string } & Record<string, unknown>): Promise<string>;
  /** Waits until the orchestration has ended. */
  finished(instanceId: string, timeoutMs?: number): Promise<Status>;
  /** startOnboarding, then finished. */
  onboard(body: { creatioUrl: string } & Record<string, unknown>, timeoutMs?: number): Promise<Status>;
  /**
   * Runs the rotation sweep now (the host's admin endpoint, as `func` offers it) and waits for its
   * summary; the structured events it logged, oldest first, the summary (`sweep.finished`) last.
   */
  runSweep(timeoutMs?: number): Promise<Record<string, any>[]>;
  /** Stops the host (and, with `freshStorage`, Azurite) and starts it again with these settings on top. */
  restartHost(env?: Record<string, string>, options?: { freshStorage?: boolean }): Promise<void>;
  close(): Promise<void>;
}

export interface AppStackOptions {
  /** App settings on top of the emulators' (timers off; the daily schedule never fires in a test). */
  env?: Record<string, string>;
  emulators?: EmulatorStackOptions;
}

export async function startAppStack(options: AppStackOptions = {}): Promise<AppStack> {
  let storage = await startTestAzurite();
  const stack = await startEmulators(options.emulators);
  const secrets = sandboxSecretClient(stack);
  const hostLines: string[] = [];
  const answers: string[] = [];
  const creatios: EmulatorServer[] = [];
  let settings = { ROTATION_SCHEDULE: "0 0 3 * * *", ...options.env };
  const startHost = () =>
    spawnHost({
      runTimers: false,
      storageConnectionString: storage.azurite.connectionString,
      env: { ...stack.appSettings(), AzureWebJobsStorage: storage.azurite.connectionString, ...settings },
      onLine: (line) => hostLines.push(line),
      timeoutMs: 60_000,
    });
  let host = await startHost();

  const app: AppStack = {
    stack,
    secrets,
    hostLines,
    answers,
    get storage() {
      return storage;
    },
    get host() {
      return host;
    },
    async api(path, init = {}) {
      const r = await fetch(`${host.url}${path}`, init);
      const text = await r.text();
      answers.push(text);
      return { status: r.status, body: text ? JSON.parse(text) : undefined, text, headers: r.headers };
    },
    async newCreatio() {
      const server = createCreatioEmulator(sandboxContext());
      const url = await server.listen(0);
      creatios.push(server);
      return { url, host: new URL(url).host, server };
    },
    async faults(baseUrl, body) {
      const r = await fetch(`${baseUrl}/_emulator/faults`, body ? { method: "POST", headers: JSON_HEADERS, body: JSON.stringify(body) } : { method: "DELETE" });
      if (!r.ok) throw new Error(`faults on ${baseUrl}: ${r.status} ${await r.text()}`);
    },
    async emulatorState(baseUrl) {
      return (await fetch(`${baseUrl}/_emulator/state`)).json();
    },
    async graphToken() {
      const form = new URLSearchParams({ grant_type: "client_credentials", client_id: stack.identity.clientId, client_secret: stack.identity.clientSecret, scope: "https://graph.microsoft.com/.default" });
      const r = await fetch(`${stack.authorityHost}/${stack.identity.tenantId}/oauth2/v2.0/token`, { method: "POST", body: form });
      if (!r.ok) throw new Error(`sandbox token: ${r.status} ${await r.text()}`);
      return ((await r.json()) as { access_token: string }).access_token;
    },
    async startOnboarding(body) {
      const creatioCredentialSecretName = body.creatioCredentialSecretName ?? (await storeSiteCredential(secrets, new URL(body.creatioUrl).host));
      const r = await app.api("/api/tenants", { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ creatioCredentialSecretName, ...body }) });
      if (r.status !== 202) throw new Error(`POST /api/tenants answered ${r.status}: ${r.text}`);
      return r.body.id;
    },
    finished: (instanceId, timeoutMs = 120_000) => waitForStatus(host.url, instanceId, FINAL_STATES, timeoutMs),
    async onboard(body, timeoutMs) {
      return app.finished(await app.startOnboarding(body), timeoutMs);
    },
    async runSweep(timeoutMs = 30_000) {
      const from = hostLines.length;
      const r = await app.api("/admin/functions/rotationSweep", { method: "POST", headers: JSON_HEADERS, body: "{}" });
      if (r.status !== 202) throw new Error(`starting the sweep answered ${r.status}: ${r.text}`);
      const events = () => hostLines.slice(from).filter((l) => l.includes('"event":')).map((l) => JSON.parse(l.slice(l.indexOf("{"))) as Record<string, any>);
      await waitFor("the sweep summary", async () => events().find((e) => e.event === "sweep.finished"), timeoutMs, 50);
      const all = events();
      return all.slice(0, all.findIndex((e) => e.event === "sweep.finished") + 1);
    },
    async restartHost(env = {}, { freshStorage = false } = {}) {
      await host.stop();
      if (freshStorage) {
        await storage.stop();
        storage = await startTestAzurite();
      }
      settings = { ...settings, ...env };
      host = await startHost();
    },
    async close() {
      await host?.stop();
      await Promise.all(creatios.map((c) => c.close()));
      await stack.close();
      await storage.stop();
    },
  };
  return app;
}
