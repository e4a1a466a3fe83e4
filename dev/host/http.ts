/**
 * The host's HTTP front door: HTTP triggers under the route prefix, the admin endpoint,
 * the Event Grid webhook and the Durable HTTP API.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import type { FunctionRegistry, RegisteredFunction, RpcHttpResponse, RpcTypedData } from "./functionsCore";
import { invokeFunction } from "./invoke";
import type { HostLogger } from "./log";
import { errMessage } from "./env";
import { compareRoutes, compileRoute, type CompiledRoute } from "./routes";

export interface HttpRoute {
  fn: RegisteredFunction;
  route: CompiledRoute;
  methods: string[] | undefined;
}

export function buildHttpRoutes(registry: FunctionRegistry, routePrefix: string): HttpRoute[] {
  const routes = registry.byTrigger("httpTrigger").map((fn) => {
    const template = typeof fn.trigger.route === "string" && fn.trigger.route !== "" ? fn.trigger.route : fn.metadata.name;
    const methods = Array.isArray(fn.trigger.methods) ? (fn.trigger.methods as string[]).map((m) => m.toUpperCase()) : undefined;
    return { fn, route: compileRoute(template, routePrefix), methods };
  });
  return routes.sort((a, b) => compareRoutes(a.route, b.route));
}

/**
 * Azure's limit on an HTTP request's length, 100 MB (learn.microsoft.com/azure/azure-functions/functions-bindings-http-webhook-trigger#limits):
 * the front end answers 413 beyond it, before any function runs. The app's own, lower limit for
 * its bodies is checked by the app (src/functions/requestBody.ts).
 */
export const MAX_REQUEST_BYTES = 100 * 1024 * 1024;

/** The whole body (the host reads it before invoking, like the Functions host), or "tooLarge" past `limit`. */
export async function readBody(req: IncomingMessage, limit = MAX_REQUEST_BYTES): Promise<Buffer | "tooLarge"> {
  if (Number(req.headers["content-length"] ?? 0) > limit) return "tooLarge";
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const c of req) {
    total += (c as Buffer).length;
    if (total > limit) return "tooLarge";
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

function cookieHeader(c: Record<string, unknown>): string {
  const v = (x: unknown): unknown => (x && typeof x === "object" && "value" in (x as object) ? (x as { value: unknown }).value : x);
  let s = `${String(c.name)}=${String(c.value)}`;
  const domain = v(c.domain);
  const path = v(c.path);
  const expires = v(c.expires) as { seconds?: number } | undefined;
  const maxAge = v(c.maxAge);
  if (domain) s += `; Domain=${String(domain)}`;
  if (path) s += `; Path=${String(path)}`;
  if (expires && typeof expires === "object" && expires.seconds !== undefined) s += `; Expires=${new Date(Number(expires.seconds) * 1000).toUTCString()}`;
  if (maxAge !== undefined && maxAge !== null) s += `; Max-Age=${String(maxAge)}`;
  if (v(c.secure)) s += "; Secure";
  if (v(c.httpOnly)) s += "; HttpOnly";
  const same = c.sameSite;
  if (same === 1 || same === "Lax") s += "; SameSite=Lax";
  else if (same === 2 || same === "Strict") s += "; SameSite=Strict";
  else if (same === 3 || same === "None") s += "; SameSite=None";
  return s;
}

function bodyBytes(b: RpcTypedData | undefined): Buffer {
  if (!b) return Buffer.alloc(0);
  if (b.bytes !== undefined) return Buffer.from(b.bytes);
  if (b.string !== undefined) return Buffer.from(b.string, "utf8");
  if (b.json !== undefined) return Buffer.from(b.json, "utf8");
  if (b.int !== undefined) return Buffer.from(String(b.int));
  if (b.double !== undefined) return Buffer.from(String(b.double));
  return Buffer.alloc(0);
}

export async function invokeHttpFunction(
  registry: FunctionRegistry,
  route: HttpRoute,
  params: Record<string, string>,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  body: Buffer,
  logger: HostLogger,
  extraInputs: { name: string; data: RpcTypedData }[],
): Promise<void> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const invocationId = randomUUID();
  const http = {
    method: (req.method ?? "GET").toUpperCase(),
    url: url.toString(),
    headers,
    query,
    params,
    body: { bytes: body },
  };
  const name = route.fn.metadata.name;
  logger.host("information", `Executing 'Functions.${name}' (Reason='This function was programmatically called via the host APIs.', Id=${invocationId})`);
  let rpc: RpcHttpResponse | undefined;
  try {
    const { response } = await invokeFunction(
      registry,
      route.fn,
      { invocationId, inputData: [{ name: route.fn.triggerName, data: { http } as unknown as RpcTypedData }, ...extraInputs] },
      logger,
    );
    const outName = Object.entries(route.fn.metadata.bindings).find(([, b]) => b.direction === "out" && String(b.type).toLowerCase() === "http")?.[0];
    const out = outName === "$return" ? response.returnValue : response.outputData?.find((o) => o.name === outName)?.data;
    rpc = (out as { http?: RpcHttpResponse } | undefined)?.http;
  } catch (e) {
    logger.fn("error", name, invocationId, `Executed 'Functions.${name}' (Failed, Id=${invocationId}): ${errMessage(e)}`);
    res.writeHead(500);
    res.end();
    return;
  }
  logger.host("information", `Executed 'Functions.${name}' (Succeeded, Id=${invocationId})`);
  if (!rpc) {
    res.writeHead(204);
    res.end();
    return;
  }
  const status = Number(rpc.statusCode ?? 200) || 200;
  const outHeaders: Record<string, string | string[]> = { ...(rpc.headers ?? {}) };
  if (rpc.cookies && rpc.cookies.length > 0) outHeaders["Set-Cookie"] = rpc.cookies.map((c) => cookieHeader(c as Record<string, unknown>));
  const bytes = bodyBytes(rpc.body);
  res.writeHead(status, outHeaders);
  res.end(bytes);
}
