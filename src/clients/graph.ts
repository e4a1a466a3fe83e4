import type * as GraphSdk from "@microsoft/microsoft-graph-client";
import type { Client, Context, Middleware, MiddlewareOptions } from "@microsoft/microsoft-graph-client";
import type * as GraphAzureAuth from "@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials";
import type { TokenCredential } from "@azure/identity";
import { tenantCredential, tenantKey } from "./credential";
import { lazyClient } from "./lazy";
import { settings } from "../settings";

/**
 * The Graph SDK is loaded on first use, not when the app loads: only activities call Graph, so the
 * HTTP functions and the timer never pay for it (issue 12, cold load). `require`, not `import()`,
 * because the client getters are synchronous; esbuild bundles a literal require and runs the
 * module's code only when it is first called.
 */
let sdk: typeof GraphSdk | undefined;
function graphSdk(): typeof GraphSdk {
  sdk ??= require("@microsoft/microsoft-graph-client") as typeof GraphSdk;
  return sdk;
}

/**
 * Microsoft Graph client with our own middleware chain: the SDK's default chain retries a POST
 * after a 503/504, which could add a second password nobody kept (docs/architecture.md, "Every
 * activity is idempotent"; "External services" > "Microsoft Graph and Entra ID").
 */

/** Per-request option: the request must reach Graph at most once (addPassword). */
export class SendOnce implements MiddlewareOptions {}

const IDEMPOTENT_METHODS = new Set(["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const RETRYABLE_5XX = new Set([500, 502, 503, 504]);

export interface RetryPolicy {
  maxRetries: number;
  /** Backoff when Graph sends no Retry-After: baseDelayMs * 2^attempt, capped. */
  baseDelayMs: number;
  maxDelayMs: number;
  sleep: (ms: number) => Promise<void>;
}

export const defaultRetryPolicy: RetryPolicy = {
  maxRetries: 5,
  baseDelayMs: 1000,
  maxDelayMs: 60_000,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/**
 * Retries 429 for every request, SendOnce ones included, honouring Retry-After (seconds or HTTP
 * date): Graph does not process a throttled request, so sending it again cannot apply it twice
 * (learn.microsoft.com/graph/throttling). Retries 5xx and network failures only for idempotent
 * methods and never for a SendOnce request: those may already have taken effect.
 *
 * Not the SDK's RetryHandler + RetryHandlerOptions.shouldRetry: it never retries a network error
 * (executeWithRetry awaits the next middleware without a catch) and consults shouldRetry only for
 * 429/503/504 (RETRY_STATUS_CODES) — @microsoft/microsoft-graph-client 3.0.7, src/middleware/RetryHandler.ts.
 */
export class SafeRetryHandler implements Middleware {
  private next: Middleware | undefined;
  constructor(private readonly policy: RetryPolicy = defaultRetryPolicy) {}

  setNext(next: Middleware): void {
    this.next = next;
  }

  async execute(context: Context): Promise<void> {
    const method = (context.options?.method ?? (typeof context.request === "string" ? "GET" : context.request.method)).toUpperCase();
    const sendOnce = context.middlewareControl?.getMiddlewareOptions(SendOnce as never) !== undefined;
    // What may be sent again after the request possibly reached Graph (5xx, network error).
    const replayable = !sendOnce && IDEMPOTENT_METHODS.has(method);
    for (let attempt = 0; ; attempt++) {
      let failure: unknown;
      try {
        await this.next!.execute(context);
      } catch (error) {
        failure = error;
      }
      const status = context.response?.status;
      const retryable = failure !== undefined ? replayable : status === 429 || (RETRYABLE_5XX.has(status ?? 0) && replayable);
      if (attempt >= this.policy.maxRetries || !retryable) {
        if (failure !== undefined) throw failure;
        return;
      }
      // A failed attempt leaves no response of its own: never read the previous attempt's Retry-After.
      const retryAfter = failure === undefined ? (context.response?.headers.get("retry-after") ?? null) : null;
      const delay = retryDelayMs(retryAfter, attempt, this.policy);
      // Drain the body so the connection is reused.
      if (failure === undefined) await context.response?.arrayBuffer().catch(() => undefined);
      await this.policy.sleep(delay);
    }
  }
}

/** Retry-After (delta-seconds or HTTP date) else exponential backoff; never beyond maxDelayMs. */
export function retryDelayMs(retryAfter: string | null, attempt: number, policy: Pick<RetryPolicy, "baseDelayMs" | "maxDelayMs">): number {
  if (retryAfter !== null && retryAfter.trim() !== "") {
    const seconds = Number(retryAfter);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : new Date(retryAfter).getTime() - Date.now();
    if (Number.isFinite(ms)) return Math.min(Math.max(ms, 0), policy.maxDelayMs);
  }
  return Math.min(policy.baseDelayMs * 2 ** attempt, policy.maxDelayMs);
}

/**
 * National clouds' Graph endpoints are their own token audiences (learn.microsoft.com/graph/deployments).
 * Any other host (a proxy, a private endpoint, the local emulator) fronts the global service and
 * takes its audience, https://graph.microsoft.com.
 */
const NATIONAL_GRAPH_HOSTS = new Set(["graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn"]);

export function graphTokenScope(baseUrl: string): string {
  const host = new URL(baseUrl).hostname.toLowerCase();
  return NATIONAL_GRAPH_HOSTS.has(host) ? `https://${host}/.default` : "https://graph.microsoft.com/.default";
}

export interface GraphClientOptions {
  baseUrl: string;
  credential: TokenCredential;
  /** Last middleware; tests replace the network with a recorder. */
  transport?: Middleware;
  retryPolicy?: RetryPolicy;
}

export function createGraphClient(options: GraphClientOptions): Client {
  const { Client, AuthenticationHandler, TelemetryHandler, HTTPMessageHandler } = graphSdk();
  const { TokenCredentialAuthenticationProvider } = require("@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials") as typeof GraphAzureAuth;
  const base = new URL(options.baseUrl);
  const authProvider = new TokenCredentialAuthenticationProvider(options.credential, { scopes: [graphTokenScope(options.baseUrl)] });
  return Client.initWithMiddleware({
    baseUrl: options.baseUrl.replace(/\/+$/, "") + "/",
    defaultVersion: "v1.0",
    // The SDK sends the bearer token only to Graph hosts or these (docs/architecture.md, "Microsoft Graph and Entra ID"); a hostname, no port.
    customHosts: new Set([base.hostname]),
    middleware: [
      new AuthenticationHandler(authProvider),
      new SafeRetryHandler(options.retryPolicy),
      new TelemetryHandler(),
      options.transport ?? new HTTPMessageHandler(),
    ],
  });
}

const graphClients = new Map<string, Client>();

/**
 * The Graph client of a site's tenant (the home tenant when none is named), one per tenant, built on
 * its first call (./lazy.ts): an activity that takes it as a dependency and never calls Graph does
 * not load the SDK. Its tokens come from credentialFor at each request, so a tenant credential
 * dropped after consent (forgetTenantCredential) is replaced here too.
 */
export function getGraphClient(tenantId?: string | null): Client {
  const key = tenantKey(tenantId);
  let client = graphClients.get(key);
  if (!client) {
    const baseUrl = settings().GRAPH_BASE_URL;
    client = lazyClient(() => createGraphClient({ baseUrl, credential: tenantCredential(tenantId) }));
    graphClients.set(key, client);
  }
  return client;
}

function isGraphError(error: unknown): error is GraphSdk.GraphError {
  return error instanceof graphSdk().GraphError;
}

/** Graph failure with the call that failed, the status, and Graph's error code and message. */
export class GraphCallError extends Error {
  override name = "GraphCallError";
  constructor(
    readonly call: string,
    readonly status: number | undefined,
    readonly code: string | undefined,
    readonly upstreamMessage: string,
  ) {
    super(`Graph ${call} failed${status ? ` with ${status}` : ""}${code ? ` ${code}` : ""}: ${upstreamMessage}`);
  }
}

export function toGraphCallError(error: unknown, call: string): GraphCallError {
  if (error instanceof GraphCallError) return error;
  if (isGraphError(error)) {
    const status = error.statusCode > 0 ? error.statusCode : undefined;
    return new GraphCallError(call, status, error.code ?? undefined, error.message || "no message");
  }
  return new GraphCallError(call, undefined, undefined, error instanceof Error ? error.message : String(error));
}

/** 404 or Request_ResourceNotFound: an object that does not exist, or not yet on the replica read (replication lag). */
export function isNotFound(error: unknown): boolean {
  return error instanceof GraphCallError && (error.status === 404 || error.code === "Request_ResourceNotFound");
}

/**
 * What Graph answers for an object another replica has not seen yet: 404, or 400
 * NoBackingApplicationObject for a service principal of a just-created app (docs/architecture.md,
 * "Microsoft Graph and Entra ID").
 */
export function isReplicationLag(error: unknown): boolean {
  if (!(error instanceof GraphCallError)) return false;
  if (error.status === 404) return true;
  return error.status === 400 && /NoBackingApplicationObject|does not reference a valid application|Request_ResourceNotFound/i.test(`${error.code} ${error.upstreamMessage}`);
}

/** A 400 from addPassword because the tenant's app management policy refuses the lifetime (docs/architecture.md, "Microsoft Graph and Entra ID"). */
export function isPasswordLifetimePolicyError(error: unknown): boolean {
  return (
    error instanceof GraphCallError &&
    error.status === 400 &&
    /lifetime|AppManagementPolic|CredentialInvalid|passwordLifetime/i.test(`${error.code ?? ""} ${error.upstreamMessage}`)
  );
}

/** Runs a Graph call and rethrows its failure as a GraphCallError naming `call`. */
export async function graphCall<T>(call: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw toGraphCallError(error, call);
  }
}

/** GET that answers undefined on 404 (lookups by alternate key). */
export async function graphGetOrUndefined<T>(client: Client, path: string): Promise<T | undefined> {
  try {
    return (await client.api(path).get()) as T;
  } catch (error) {
    if (isGraphError(error) && error.statusCode === 404) return undefined;
    throw toGraphCallError(error, `GET ${path}`);
  }
}

export interface UpsertResult<T> {
  /** 201: the object was created and Graph returned it. */
  created: boolean;
  body: T | undefined;
}

/**
 * `PATCH <path>` with `Prefer: create-if-missing` (docs/architecture.md, "Microsoft Graph and Entra ID"): 201 + body when created,
 * 204 when updated. Read raw because the SDK's parsed response hides the status.
 */
export async function graphUpsert<T>(client: Client, path: string, body: unknown): Promise<UpsertResult<T>> {
  const call = `PATCH ${path}`;
  const response = (await graphCall(call, () =>
    client.api(path).header("Prefer", "create-if-missing").responseType(graphSdk().ResponseType.RAW).patch(body),
  )) as Response;
  if (response.status === 201) return { created: true, body: (await response.json()) as T };
  if (response.ok) return { created: false, body: undefined };
  const text = await response.text();
  let code: string | undefined;
  let message = text.slice(0, 500);
  try {
    const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
    code = parsed.error?.code;
    message = parsed.error?.message ?? message;
  } catch {
    // not JSON: keep the text
  }
  throw new GraphCallError(call, response.status, code, message);
}

/**
 * A Graph object as Microsoft's own typings declare it (@microsoft/microsoft-graph-types, also used by
 * CLI for Microsoft 365), where every property is optional because a $select may leave it out, with
 * the properties this app selects and relies on made required.
 */
export type Selected<T, K extends keyof T> = T & { [P in K]-?: NonNullable<T[P]> };

/** OData string literal inside a key or $filter: single quotes doubled. */
export function odataString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
