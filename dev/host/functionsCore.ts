/**
 * Our stand-in for `@azure/functions-core`, the module the Azure Functions Node worker injects
 * (azure-functions-nodejs-worker, src/coreApi). @azure/functions 4.x requires it lazily
 * (dist/azure-functions.js, tryGetCoreApiLazy) and calls registerFunction / setProgrammingModel /
 * registerHook / log on it. We make `require("@azure/functions-core")` resolve to this object by
 * hooking Node's module resolution, then keep what the app registers in a registry.
 */
import { RealModule as Module } from "./env";

export type LogLevel = "trace" | "debug" | "information" | "warning" | "error" | "critical" | "none";

export interface RpcBinding {
  type?: string;
  direction?: "in" | "out" | "inout";
  name?: string;
  [key: string]: unknown;
}

export interface CoreFunctionMetadata {
  name: string;
  bindings: Record<string, RpcBinding>;
  retryOptions?: unknown;
}

export type FunctionCallback = (...args: unknown[]) => unknown;

/** What @azure/functions' ProgrammingModel returns from getInvocationModel (InvocationModel.ts). */
export interface InvocationModel {
  getArguments(): Promise<{ context: unknown; inputs: unknown[] }>;
  invokeFunction(context: unknown, inputs: unknown[], handler: FunctionCallback): Promise<unknown>;
  getResponse(context: unknown, result: unknown): Promise<RpcInvocationResponse>;
}

export interface ProgrammingModel {
  name: string;
  version: string;
  getInvocationModel(coreCtx: unknown): InvocationModel;
  getCapabilities?(caps: Record<string, string>): Promise<Record<string, string>>;
}

export interface RpcTypedData {
  string?: string;
  json?: string;
  bytes?: Uint8Array;
  http?: unknown;
  int?: number;
  double?: number;
}

export interface RpcInvocationResponse {
  invocationId: string;
  outputData?: { name: string; data: RpcTypedData | undefined }[];
  returnValue?: RpcTypedData | { http: RpcHttpResponse } | null;
}

export interface RpcHttpResponse {
  statusCode?: string;
  headers?: Record<string, string>;
  cookies?: unknown[];
  body?: RpcTypedData;
}

export interface RegisteredFunction {
  metadata: CoreFunctionMetadata;
  callback: FunctionCallback;
  /** Lower-cased trigger binding type, e.g. "httptrigger", "orchestrationtrigger". */
  triggerType: string;
  trigger: RpcBinding;
  triggerName: string;
}

export type HookName = "appStart" | "appTerminate" | "preInvocation" | "postInvocation" | "log";
type HookCallback = (ctx: Record<string, unknown>) => unknown;

export class Disposable {
  constructor(private readonly fn: () => void) {}
  dispose(): void {
    this.fn();
  }
}

export type SystemLogSink = (level: LogLevel, category: string, message: string) => void;

/** Everything one loaded app registered. */
export class FunctionRegistry {
  readonly functions = new Map<string, RegisteredFunction>();
  programmingModel: ProgrammingModel | undefined;
  readonly hooks: Record<HookName, HookCallback[]> = {
    appStart: [],
    appTerminate: [],
    preInvocation: [],
    postInvocation: [],
    log: [],
  };
  systemLog: SystemLogSink = () => undefined;
  /** Shared across hooks of one app (worker: appHookData). */
  readonly appHookData: Record<string, unknown> = {};

  get(name: string): RegisteredFunction | undefined {
    // Function names are case-insensitive in the Functions host.
    for (const f of this.functions.values()) if (f.metadata.name.toLowerCase() === name.toLowerCase()) return f;
    return undefined;
  }

  byTrigger(type: string): RegisteredFunction[] {
    return [...this.functions.values()].filter((f) => f.triggerType === type.toLowerCase());
  }

  async runHooks(name: HookName, ctx: Record<string, unknown>): Promise<void> {
    for (const cb of [...this.hooks[name]]) await cb(ctx);
  }
}

let active: FunctionRegistry | undefined;

/** The object `require("@azure/functions-core")` returns. */
const coreApi = {
  get version(): string {
    return "3.10.1";
  },
  get hostVersion(): string {
    return "4.1037.0";
  },
  registerFunction(metadata: CoreFunctionMetadata, callback: FunctionCallback): Disposable {
    const reg = requireActive();
    const key = metadata.name.toLowerCase();
    if (reg.functions.has(key)) throw new Error(`A function with the name "${metadata.name}" has already been registered.`);
    const entry = Object.entries(metadata.bindings).find(([, b]) => /trigger$/i.test(b.type ?? ""));
    if (!entry) throw new Error(`Function "${metadata.name}" has no trigger binding.`);
    const [triggerName, trigger] = entry;
    reg.functions.set(key, {
      metadata,
      callback,
      trigger,
      triggerName,
      triggerType: String(trigger.type).toLowerCase(),
    });
    return new Disposable(() => reg.functions.delete(key));
  },
  setProgrammingModel(pm: ProgrammingModel): void {
    requireActive().programmingModel = pm;
  },
  getProgrammingModel(): ProgrammingModel | undefined {
    return requireActive().programmingModel;
  },
  registerHook(name: HookName, callback: HookCallback): Disposable {
    const reg = requireActive();
    const list = reg.hooks[name];
    if (!list) throw new RangeError(`Unrecognized hook "${name}"`);
    list.push(callback);
    return new Disposable(() => {
      const i = list.indexOf(callback);
      if (i >= 0) list.splice(i, 1);
    });
  },
  log(level: LogLevel, category: string, message: string): void {
    requireActive().systemLog(level, category, message);
  },
  Disposable,
};

function requireActive(): FunctionRegistry {
  if (!active) throw new Error("@azure/functions-core was used outside of an app load by the local host");
  return active;
}

const SHIM_ID = "\0@azure/functions-core(local-host)";
let installed = false;

/** Makes `require("@azure/functions-core")` resolve to our coreApi in this process. */
export function installFunctionsCore(): void {
  if (installed) return;
  installed = true;
  const M = Module as unknown as {
    _resolveFilename: (request: string, ...rest: unknown[]) => string;
    _cache: Record<string, unknown>;
  };
  const original = M._resolveFilename;
  M._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]): string {
    if (request === "@azure/functions-core") return SHIM_ID;
    return original.call(this, request, ...rest);
  };
  const mod = new Module(SHIM_ID);
  mod.exports = coreApi;
  mod.loaded = true;
  M._cache[SHIM_ID] = mod;
}

/**
 * Loads the app's entry point with Node's own require (not a test runner's), with `registry`
 * receiving what it registers. Modules of a previous load (the app, @azure/functions,
 * durable-functions keep module-level state) are evicted first so each load registers afresh.
 */
let loads = 0;
export function loadApp(entry: string, appDir: string, registry: FunctionRegistry): void {
  installFunctionsCore();
  if (loads++ > 0) {
    const cache = (Module as unknown as { _cache: Record<string, unknown> })._cache;
    const appPrefix = appDir.endsWith("/") ? appDir : appDir + "/";
    for (const key of Object.keys(cache)) {
      const appModule = key.startsWith(appPrefix) && !key.includes("/node_modules/") && !key.includes("/dev/host/");
      const sdkModule = /[\\/]node_modules[\\/](@azure[\\/]functions|durable-functions)[\\/]/.test(key);
      if (appModule || sdkModule) delete cache[key];
    }
  }
  active = registry;
  const req = Module.createRequire(entry);
  req(entry);
}
