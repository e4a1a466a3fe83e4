/**
 * Local Azure Functions host: runs the unchanged compiled app (package.json `main`) the way
 * `func start` would, with a Durable engine whose state lives in Azure Storage (Azurite).
 *
 *   const host = await startHost({ port: 0, env: { AzureWebJobsStorage: azurite.connectionString } });
 *   ... host.url ...
 *   await host.stop();
 */
import { createServer, type Server } from "node:http";
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import path from "node:path";
import { azuriteConnectionString } from "../azurite";
import { DurableEngine } from "./durable/engine";
import { clientBindingData, DURABLE_PREFIX, handleDurableApi } from "./durable/httpApi";
import { DurableStore } from "./durable/store";
import { handleEventGrid } from "./eventGrid";
import { FunctionRegistry, loadApp, type RegisteredFunction, type RpcTypedData } from "./functionsCore";
import { buildHttpRoutes, invokeHttpFunction, readBody } from "./http";
import { invokeFunction } from "./invoke";
import { createLogger, type HostLogger } from "./log";
import { matchRoute } from "./routes";
import { parseSchedule, resolveSettingExpression, TimerScheduler, timerPayload } from "./timers";
import { errMessage, errStack, hostEnv } from "./env";

export interface HostOptions {
  /** App directory with package.json (`main`) and host.json. Default: the repository root. */
  appDir?: string;
  /** Port to listen on; 0 picks a free one. Default: env FUNCTIONS_HTTPWORKER_PORT / 7071. */
  port?: number;
  /** Interface to bind. Default 127.0.0.1. */
  hostname?: string;
  /** Settings applied to hostEnv before the app loads (win over local.settings.json and the environment). */
  env?: Record<string, string>;
  /** Read `{appDir}/local.settings.json` Values (not overriding variables already set). Default true. */
  useLocalSettings?: boolean;
  /** Fire timer triggers on their schedules. Default true. (The admin endpoint always works.) */
  runTimers?: boolean;
  /** Storage for Durable state. Default: the AzureWebJobsStorage setting. */
  storageConnectionString?: string;
  /** Durable task hub name. Default: host.json extensions.durableTask.hubName, else "TestHubName". */
  hubName?: string;
  /** Durable dispatcher idle poll interval in ms. Default 100. */
  pollIntervalMs?: number;
  /** Where log lines go. Default: stdout. */
  log?: (line: string) => void;
}

export interface HostHandle {
  url: string;
  port: number;
  functions: string[];
  engine: DurableEngine | undefined;
  stop(): Promise<void>;
}

const REPO_ROOT = path.resolve(__dirname, "..", "..");

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
}

function applySettings(appDir: string, opts: HostOptions): void {
  const localSettings = path.join(appDir, "local.settings.json");
  if (opts.useLocalSettings !== false && existsSync(localSettings)) {
    const values = (readJson(localSettings).Values ?? {}) as Record<string, string>;
    for (const [k, v] of Object.entries(values)) if (hostEnv[k] === undefined) hostEnv[k] = String(v);
  }
  for (const [k, v] of Object.entries(opts.env ?? {})) hostEnv[k] = v;
}

function normalizeStorage(cs: string): string {
  // Expand the shorthand to explicit endpoints: both SDKs then agree on the Azurite ports.
  if (/^\s*UseDevelopmentStorage=true\s*;?\s*$/i.test(cs)) return azuriteConnectionString("127.0.0.1", 10000, 10001, 10002);
  return cs;
}

export async function startHost(opts: HostOptions = {}): Promise<HostHandle> {
  if (hostEnv.JEST_WORKER_ID !== undefined) {
    // jest gives test code its own module registry: `require("@azure/functions-core")` cannot be
    // redirected there, so the app would load in "test mode" without registering anything.
    throw new Error("startHost cannot load an app inside a jest worker; use spawnHost from dev/host/spawn.ts (runs the CLI as a child process).");
  }
  const appDir = path.resolve(opts.appDir ?? REPO_ROOT);
  const logger: HostLogger = createLogger(opts.log);
  applySettings(appDir, opts);
  const pkg = readJson(path.join(appDir, "package.json"));
  const hostJson = existsSync(path.join(appDir, "host.json")) ? readJson(path.join(appDir, "host.json")) : {};
  const ext = (hostJson.extensions ?? {}) as Record<string, Record<string, unknown>>;
  const routePrefix = typeof ext.http?.routePrefix === "string" ? ext.http.routePrefix : "api";
  const hubName = resolveSettingExpression(opts.hubName ?? (typeof ext.durableTask?.hubName === "string" ? ext.durableTask.hubName : "TestHubName"), hostEnv);
  const entry = path.resolve(appDir, typeof pkg.main === "string" ? pkg.main : "index.js");
  if (!existsSync(entry)) throw new Error(`The app entry point ${entry} does not exist (run the build first).`);

  const registry = new FunctionRegistry();
  registry.systemLog = (level, _category, message) => {
    if (level === "warning" || level === "error" || level === "critical") logger.host(level, message);
  };
  loadApp(entry, appDir, registry);
  if (!registry.programmingModel) throw new Error(`The app at ${entry} registered no functions through @azure/functions.`);
  await registry.programmingModel.getCapabilities?.({});

  const port = opts.port ?? Number(hostEnv.FUNCTIONS_HTTPWORKER_PORT ?? 7071);
  const hostname = opts.hostname ?? "127.0.0.1";
  let origin = "";
  const routes = buildHttpRoutes(registry, routePrefix);

  const hasDurable = [...registry.functions.values()].some(
    (f) => ["orchestrationtrigger", "activitytrigger"].includes(f.triggerType) || Object.values(f.metadata.bindings).some((b) => /^(durableclient|orchestrationclient)$/i.test(String(b.type))),
  );
  let engine: DurableEngine | undefined;
  const clientData = (): unknown => clientBindingData(origin, hubName);
  if (hasDurable) {
    const cs = opts.storageConnectionString ?? hostEnv.AzureWebJobsStorage;
    if (!cs) throw new Error("Durable functions need storage: set AzureWebJobsStorage (or pass storageConnectionString).");
    const store = new DurableStore(normalizeStorage(cs), hubName);
    await store.init();
    // host.json extensions.durableTask.maxConcurrentActivityFunctions, as the extension reads it;
    // absent, the extension's default: 10 x the processor count (learn.microsoft.com/azure/azure-functions/durable/durable-functions-bindings, host.json settings).
    const configured = ext.durableTask?.maxConcurrentActivityFunctions;
    const maxConcurrentActivities = typeof configured === "number" && configured > 0 ? configured : 10 * availableParallelism();
    engine = new DurableEngine({ store, registry, logger, clientBindingData: clientData, idleMs: opts.pollIntervalMs, maxConcurrentActivities });
  }
  const extraInputs = (fn: RegisteredFunction): { name: string; data: RpcTypedData }[] => {
    if (engine) return engine.extraInputs(fn);
    return [];
  };

  const invokeNonHttp = async (fn: RegisteredFunction, data: RpcTypedData | undefined, triggerMetadata?: Record<string, RpcTypedData>): Promise<void> => {
    await invokeFunction(registry, fn, { inputData: [{ name: fn.triggerName, data }, ...extraInputs(fn)], triggerMetadata }, logger);
  };

  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", origin || `http://${req.headers.host ?? "localhost"}`);
      const p = url.pathname;
      const method = (req.method ?? "GET").toUpperCase();
      const body = await readBody(req);
      if (body === "tooLarge") {
        res.writeHead(413, { Connection: "close" }).end();
        return;
      }
      if (p === "/admin/host/status") {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ state: "Running", version: "local" }));
        return;
      }
      const admin = /^\/admin\/functions\/([^/]+)\/?$/i.exec(p);
      if (admin && method === "POST") {
        const fn = registry.get(decodeURIComponent(admin[1]));
        if (!fn) return void res.writeHead(404).end();
        if (fn.triggerType === "httptrigger") return void res.writeHead(400).end();
        let input: unknown;
        try {
          input = body.length ? (JSON.parse(body.toString("utf8")) as { input?: unknown }).input : undefined;
        } catch {
          return void res.writeHead(400).end();
        }
        let data: RpcTypedData | undefined;
        if (fn.triggerType === "timertrigger") {
          const sched = safeSchedule(fn);
          data = { json: JSON.stringify(timerPayload(false, undefined, sched?.next(new Date()))) };
        } else if (input !== undefined) {
          data = typeof input === "string" ? { string: input } : { json: JSON.stringify(input) };
        }
        // Like func start: accepted at once, the function runs in the background.
        res.writeHead(202).end();
        invokeNonHttp(fn, data).catch((e) => logger.host("error", `Function '${fn.metadata.name}' failed: ${errMessage(e)}`));
        return;
      }
      if (p.toLowerCase() === "/runtime/webhooks/eventgrid") {
        return handleEventGrid(
          {
            exists: (n) => registry.get(n)?.triggerType === "eventgridtrigger",
            invoke: async (n, event) => {
              const fn = registry.get(n);
              if (!fn) throw new Error(`No function ${n}`);
              await invokeNonHttp(fn, { json: JSON.stringify(event) });
            },
          },
          req,
          res,
          url,
          body.toString("utf8"),
        );
      }
      if (p.toLowerCase().startsWith(DURABLE_PREFIX)) {
        if (!engine) return void res.writeHead(404).end();
        return handleDurableApi(engine, req, res, url, body.toString("utf8"), origin);
      }
      for (const r of routes) {
        if (r.methods && !r.methods.includes(method)) continue;
        const params = matchRoute(r.route, p);
        if (!params) continue;
        return invokeHttpFunction(registry, r, params, req, res, url, body, logger, extraInputs(r.fn));
      }
      res.writeHead(404).end();
    })().catch((e) => {
      logger.host("error", `Request failed: ${errStack(e)}`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });

  function safeSchedule(fn: RegisteredFunction): ReturnType<typeof parseSchedule> | undefined {
    try {
      return parseSchedule(String(fn.trigger.schedule ?? ""), hostEnv);
    } catch {
      return undefined;
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => resolve());
  });
  const actualPort = (server.address() as { port: number }).port;
  origin = `http://localhost:${actualPort}`;
  // durable-functions getClient rewrites check-status URLs to localhost:7071 unless this is set.
  if (!hostEnv.WEBSITE_HOSTNAME || opts.env?.WEBSITE_HOSTNAME === undefined) hostEnv.WEBSITE_HOSTNAME = `localhost:${actualPort}`;

  // Timer schedules are validated at start-up, as the host does (a bad %SETTING% fails fast).
  const timers = new TimerScheduler(
    async (fn, payload) => invokeNonHttp(fn, { json: JSON.stringify(payload) }),
    (fn, e) => logger.host("error", `Timer function '${fn.metadata.name}' failed: ${errMessage(e)}`),
  );
  for (const fn of registry.byTrigger("timerTrigger")) {
    const schedule = parseSchedule(String(fn.trigger.schedule ?? ""), hostEnv);
    logger.host("information", `Timer '${fn.metadata.name}' schedule ${schedule.expression}; next ${schedule.next(new Date())?.toISOString() ?? "never"}`);
    if (opts.runTimers !== false) timers.schedule(fn, schedule, fn.trigger.runOnStartup === true);
  }

  if (engine) {
    await engine.recoverParentNotifications();
    engine.start();
  }
  await registry.runHooks("appStart", { hookData: registry.appHookData, appHookData: registry.appHookData, functionAppDirectory: appDir });

  for (const f of registry.functions.values()) {
    const r = routes.find((x) => x.fn === f);
    logger.host("information", `Function ${f.metadata.name}: ${f.triggerType}${r ? ` [${(r.methods ?? ["*"]).join(",")}] ${origin}/${[routePrefix, String(r.fn.trigger.route ?? f.metadata.name)].filter(Boolean).join("/")}` : ""}`);
  }

  let stopped = false;
  return {
    url: origin,
    port: actualPort,
    functions: [...registry.functions.values()].map((f) => f.metadata.name),
    engine,
    async stop() {
      if (stopped) return;
      stopped = true;
      timers.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      });
      await engine?.stop();
      await registry.runHooks("appTerminate", { hookData: registry.appHookData, appHookData: registry.appHookData });
    },
  };
}
