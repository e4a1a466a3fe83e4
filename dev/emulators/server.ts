// The small HTTPS server every emulator is built on: routing, JSON bodies, a request log, fault
// injection, and the `/_emulator/` admin API that tests and `npm start` users drive.
//
// Admin API (each emulator):
//   GET    /_emulator/state     the emulator's objects as JSON (secrets included: it is a test tool)
//   GET    /_emulator/faults    the fault settings in force
//   POST   /_emulator/faults    merge fault settings (body: Partial<FaultSettings>)
//   DELETE /_emulator/faults    clear every fault
//   GET    /_emulator/requests  the requests served so far (method, path, query, body), oldest first
//   DELETE /_emulator/requests  forget them
//   POST   /_emulator/reset     back to the seeded state, faults and log cleared
// plus whatever routes an emulator adds under /_emulator/ itself.
import { createServer, Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { SandboxTls } from "./tls";

export interface FaultSettings {
  /** Milliseconds added before every answer. */
  latencyMs: number;
  /** The next N matching requests get 429 with Retry-After. */
  throttleNext: number;
  /** Fraction (0-1) of matching requests that get 429 with Retry-After. */
  throttleFraction: number;
  /** Seconds sent in Retry-After with a 429. */
  retryAfterSeconds: number;
  /** The next N matching requests get `serverErrorStatus`. */
  serverErrorNext: number;
  serverErrorStatus: number;
  /** Replication lag: objects created less than this many ms ago are invisible to reads (emulator specific). */
  replicationLagMs: number;
  /** Graph: replication lag also hides new objects from writes (PATCH, addPassword, removePassword, DELETE -> 404). */
  replicationLagOnWrites: boolean;
  /** Graph: for this many ms after an update, reads of the object return it as it was before the update. */
  staleReadMs: number;
  /** Graph: what removePassword answers for a keyId the application does not have (no documented answer): 400, 404 or 204. */
  removePasswordUnknownKeyStatus: 400 | 404 | 204;
  /** The emulator is down: every request (but the admin API) gets 503. */
  down: boolean;
  /** Only requests whose "METHOD /path" matches this regular expression are faulted (latency excepted); empty = all. */
  match: string;
}

export const NO_FAULTS: FaultSettings = {
  latencyMs: 0,
  throttleNext: 0,
  throttleFraction: 0,
  retryAfterSeconds: 1,
  serverErrorNext: 0,
  serverErrorStatus: 503,
  replicationLagMs: 0,
  replicationLagOnWrites: false,
  staleReadMs: 0,
  removePasswordUnknownKeyStatus: 400,
  down: false,
  match: "",
};

/**
 * Checks a partial fault setting: every key must be a FaultSettings key, with a value of that
 * setting's type. POST /_emulator/faults and EMULATOR_FAULTS (npm start) both go through it.
 */
export function checkFaults(patch: unknown): { ok: true; faults: Partial<FaultSettings> } | { ok: false; error: string } {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return { ok: false, error: "Fault settings must be a JSON object." };
  const unknown = Object.keys(patch).filter((key) => !(key in NO_FAULTS));
  if (unknown.length) return { ok: false, error: `Unknown fault settings: ${unknown.join(", ")}` };
  const wrong = Object.entries(patch).filter(([key, value]) => {
    if (key === "removePasswordUnknownKeyStatus") return ![400, 404, 204].includes(value as number);
    return typeof value !== typeof NO_FAULTS[key as keyof FaultSettings] || (typeof value === "number" && !(Number.isFinite(value) && value >= 0));
  });
  if (wrong.length) {
    return { ok: false, error: `Invalid fault settings: ${wrong.map(([key]) => `${key} must be ${key === "removePasswordUnknownKeyStatus" ? "400, 404 or 204" : `a ${typeof NO_FAULTS[key as keyof FaultSettings]}${typeof NO_FAULTS[key as keyof FaultSettings] === "number" ? " >= 0" : ""}`}`).join("; ")}` };
  }
  return { ok: true, faults: patch as Partial<FaultSettings> };
}

/** EMULATOR_FAULTS for `npm start`: JSON checked like POST /_emulator/faults; errors name the variable. */
export function faultsFromEnvironment(value: string | undefined, name = "EMULATOR_FAULTS"): Partial<FaultSettings> | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    throw new Error(`${name} is not valid JSON (${error instanceof Error ? error.message : String(error)}); expected e.g. '{"latencyMs":200}'`);
  }
  const checked = checkFaults(parsed);
  if (!checked.ok) throw new Error(`${name}: ${checked.error}`);
  return checked.faults;
}

export interface EmulatorRequest {
  method: string;
  /** Path without the query string, percent-decoded. */
  path: string;
  /** Path as sent, still encoded. */
  rawPath: string;
  query: URLSearchParams;
  headers: IncomingMessage["headers"];
  rawBody: string;
  /** Parsed JSON body, or undefined when the body is empty or not JSON. */
  body: any;
  params: Record<string, string>;
}

export interface EmulatorResponse {
  status: number;
  headers?: Record<string, string | string[]>;
  /** Objects are sent as JSON; strings as they are. */
  body?: unknown;
}

export type RouteHandler = (req: EmulatorRequest) => EmulatorResponse | Promise<EmulatorResponse>;

interface Route {
  method: string;
  pattern: RegExp;
  handler: RouteHandler;
}

export interface LoggedRequest {
  method: string;
  path: string;
  query: string;
  body: unknown;
  status: number;
  /** Set when the request was a sub-request of a batch: the path of the batch request that carried it. */
  via?: string;
  /** When it arrived and when it was answered (ms since the epoch; injected latency included). */
  receivedAt?: number;
  answeredAt?: number;
}

export interface EmulatorOptions {
  name: string;
  tls: SandboxTls;
  /** Builds the state answered by GET /_emulator/state. */
  state: () => unknown;
  /** Restores the seeded state (POST /_emulator/reset). */
  reset: () => void;
  /** Shapes an injected error the way the emulated service would (Graph, Key Vault and Creatio differ). */
  errorBody?: (status: number, code: string, message: string) => unknown;
  faults?: Partial<FaultSettings>;
}

export class EmulatorServer {
  readonly name: string;
  faults: FaultSettings;
  readonly requests: LoggedRequest[] = [];
  /** Milliseconds spent computing answers (injected latency excluded): `npm run bench` compares it with wall time. */
  busyMs = 0;
  private readonly routes: Route[] = [];
  private readonly server: Server;
  private readonly options: EmulatorOptions;

  constructor(options: EmulatorOptions) {
    this.name = options.name;
    this.options = options;
    if (options.faults) {
      const checked = checkFaults(options.faults);
      if (!checked.ok) throw new Error(`${options.name} emulator: ${checked.error}`);
    }
    this.faults = { ...NO_FAULTS, ...options.faults };
    this.server = createServer({ cert: options.tls.serverCert, key: options.tls.serverKey }, (req, res) => {
      this.handle(req, res).catch((error) => {
        if (!res.headersSent) this.send(res, { status: 500, body: this.error(500, "InternalServerError", String(error?.stack ?? error)) });
        else res.destroy();
      });
    });
    // MSAL and the Azure SDKs keep connections alive; do not hold the process open on close.
    this.server.keepAliveTimeout = 5000;
    this.adminRoutes();
  }

  /** Adds a route. `pattern` is matched against the decoded path; named groups become params. */
  route(method: string, pattern: RegExp, handler: RouteHandler): this {
    this.routes.push({ method: method.toUpperCase(), pattern, handler });
    return this;
  }

  /** True when an object created at `createdAtMs` is still hidden by injected replication lag. */
  isLagging(createdAtMs: number): boolean {
    return this.faults.replicationLagMs > 0 && Date.now() - createdAtMs < this.faults.replicationLagMs;
  }

  /**
   * The fault injected for a request ("METHOD /path") under the current settings, if any; consumes a
   * throttleNext/serverErrorNext count like a served request. For emulators that fan one request out into
   * several (Graph's $batch throttles each sub-request on its own).
   */
  faultFor(request: string): EmulatorResponse | undefined {
    return this.injectedFault(request);
  }

  error(status: number, code: string, message: string): unknown {
    return this.options.errorBody ? this.options.errorBody(status, code, message) : { error: { code, message } };
  }

  async listen(port: number, host = "127.0.0.1"): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => resolve());
    });
    const address = this.server.address() as AddressInfo;
    return `https://localhost:${address.port}`;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private adminRoutes() {
    this.route("GET", /^\/_emulator\/state$/, () => ({ status: 200, body: this.options.state() }));
    this.route("GET", /^\/_emulator\/faults$/, () => ({ status: 200, body: this.faults }));
    this.route("POST", /^\/_emulator\/faults$/, (req) => {
      const checked = checkFaults(req.body ?? {});
      if (!checked.ok) return { status: 400, body: { error: checked.error } };
      this.faults = { ...this.faults, ...checked.faults };
      return { status: 200, body: this.faults };
    });
    this.route("DELETE", /^\/_emulator\/faults$/, () => {
      this.faults = { ...NO_FAULTS };
      return { status: 200, body: this.faults };
    });
    this.route("GET", /^\/_emulator\/requests$/, () => ({ status: 200, body: this.requests }));
    this.route("DELETE", /^\/_emulator\/requests$/, () => {
      this.requests.length = 0;
      return { status: 204 };
    });
    this.route("POST", /^\/_emulator\/reset$/, () => {
      this.options.reset();
      this.faults = { ...NO_FAULTS };
      this.requests.length = 0;
      return { status: 204 };
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? "/", "https://localhost");
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const rawBody = Buffer.concat(chunks).toString("utf8");
    let body: unknown;
    try {
      body = rawBody ? JSON.parse(rawBody) : undefined;
    } catch {
      body = undefined;
    }
    const path = safeDecode(url.pathname);
    const method = (req.method ?? "GET").toUpperCase();
    const isAdmin = path.startsWith("/_emulator/");

    const answer = async (): Promise<EmulatorResponse> => {
      if (!isAdmin) {
        const injected = this.injectedFault(`${method} ${path}`);
        if (injected) return injected;
      }
      for (const route of this.routes) {
        if (route.method !== method) continue;
        const match = route.pattern.exec(path);
        if (!match) continue;
        return route.handler({
          method,
          path,
          rawPath: url.pathname,
          query: url.searchParams,
          headers: req.headers,
          rawBody,
          body,
          params: { ...(match.groups ?? {}) },
        });
      }
      return { status: 404, body: this.error(404, "NotFound", `${this.name} emulator: no route for ${method} ${path}`) };
    };

    const receivedAt = Date.now();
    if (!isAdmin && this.faults.latencyMs > 0) await new Promise((r) => setTimeout(r, this.faults.latencyMs));
    const started = performance.now();
    const response = await answer();
    if (!isAdmin) this.busyMs += performance.now() - started;
    if (!isAdmin) this.requests.push({ method, path, query: url.search, body: body ?? (rawBody || undefined), status: response.status, receivedAt, answeredAt: Date.now() });
    this.send(res, response);
  }

  private injectedFault(request: string): EmulatorResponse | undefined {
    const f = this.faults;
    if (f.down) return { status: 503, body: this.error(503, "ServiceUnavailable", `${this.name} emulator is down (fault injection).`) };
    if (f.match && !new RegExp(f.match).test(request)) return undefined;
    if (f.throttleNext > 0 || (f.throttleFraction > 0 && Math.random() < f.throttleFraction)) {
      if (f.throttleNext > 0) f.throttleNext -= 1;
      return {
        status: 429,
        headers: { "Retry-After": String(f.retryAfterSeconds) },
        body: this.error(429, "TooManyRequests", "Too many requests (fault injection)."),
      };
    }
    if (f.serverErrorNext > 0) {
      f.serverErrorNext -= 1;
      return { status: f.serverErrorStatus, body: this.error(f.serverErrorStatus, "ServiceUnavailable", "Server error (fault injection).") };
    }
    return undefined;
  }

  private send(res: ServerResponse, response: EmulatorResponse) {
    const headers: Record<string, string | string[]> = { ...(response.headers ?? {}) };
    let payload: string | undefined;
    if (response.body !== undefined) {
      if (typeof response.body === "string") payload = response.body;
      else {
        payload = JSON.stringify(response.body);
        if (!Object.keys(headers).some((h) => h.toLowerCase() === "content-type")) headers["Content-Type"] = "application/json; charset=utf-8";
      }
    }
    res.writeHead(response.status, headers);
    res.end(payload);
  }
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** Posts a fault setting to an emulator's admin API: a helper for tests and scripts. */
export async function setFaults(baseUrl: string, faults: Partial<FaultSettings>): Promise<FaultSettings> {
  const response = await fetch(`${baseUrl}/_emulator/faults`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(faults),
  });
  if (!response.ok) throw new Error(`Setting faults on ${baseUrl} failed: ${response.status} ${await response.text()}`);
  return (await response.json()) as FaultSettings;
}
