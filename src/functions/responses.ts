import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import type { ErrorResponse } from "../api/schemas";
import { parseSiteHost } from "../domain/site";

/** Answers and request helpers shared by the HTTP functions. */

/** One rule for error text in answers: src/domain/failure.ts. */
export { publicMessage } from "../domain/failure";
import { publicMessage } from "../domain/failure";

/** A SettingsError, recognised by name (a realm boundary can break instanceof). */
export function isSettingsError(error: unknown): error is Error {
  return (error as Error | undefined)?.name === "SettingsError";
}

/** Invalid app settings: 503 naming them (SettingsError messages carry names and rules, never values). */
export function invalidSettings(context: InvocationContext | undefined, error: Error): HttpResponseInit {
  context?.error(error.message);
  return json(503, { error: error.message } satisfies ErrorResponse);
}

function contextOf(args: unknown[]): InvocationContext | undefined {
  const last = args[args.length - 1] as Partial<InvocationContext> | undefined;
  return typeof last?.error === "function" ? (last as InvocationContext) : undefined;
}

/**
 * Wraps an HTTP handler at registration: invalid app settings answer 503 `{"error":"Invalid app
 * settings: ..."}` instead of the host's empty 500. Any other error propagates (the invocation
 * fails and is logged as such).
 */
export function answeringSettingsErrors<A extends unknown[], R>(handler: (...args: A) => Promise<R>): (...args: A) => Promise<R | HttpResponseInit> {
  return async (...args: A) => {
    try {
      return await handler(...args);
    } catch (error) {
      if (!isSettingsError(error)) throw error;
      return invalidSettings(contextOf(args), error);
    }
  };
}

/**
 * Wraps a timer or Event Grid handler: invalid app settings are logged at error level and the
 * invocation ends without failing, so neither the timer nor Event Grid retries into a crash loop
 * (nothing can succeed until the settings are fixed; the log names them).
 */
export function loggingSettingsErrors<A extends unknown[]>(handler: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await handler(...args);
    } catch (error) {
      if (!isSettingsError(error)) throw error;
      contextOf(args)?.error(`${error.message}. Nothing runs until they are fixed (Function App > Settings > Environment variables).`);
    }
  };
}

export function json(status: number, body: unknown): HttpResponseInit {
  return { status, jsonBody: body, headers: { "Content-Type": "application/json; charset=utf-8" } };
}

export function badRequest(error: string, errors: ErrorResponse["errors"]): HttpResponseInit {
  return json(400, { error, errors } satisfies ErrorResponse);
}

/** Key Vault throttled, down or refusing us: 503 naming the read. */
export function keyVaultUnavailable(context: InvocationContext, what: string, error: unknown): HttpResponseInit {
  context.error(`Key Vault read of ${what} failed: ${(error as Error)?.message}`);
  return json(503, { error: `Key Vault could not be read: ${publicMessage(error)}` } satisfies ErrorResponse);
}

/**
 * JSON.parse's message quotes the text around the error, which may be a password sent by mistake
 * (docs/architecture.md, "The secret never enters Durable state": never echo it): keep only the position.
 */
export function malformedJsonMessage(error: unknown): string {
  const position = /at position (\d+)/.exec(String((error as Error)?.message))?.[1];
  return `body is not valid JSON${position !== undefined ? ` (at position ${position})` : ""}`;
}

/** The route's host, percent-decoded; text that is not valid percent-encoding is left for parseSiteHost to reject (400, not a URIError). */
export function decodeHostParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** The `{host}` route parameter as a site host, or the 400 that names `host`. */
export function routeHost(request: HttpRequest): { ok: true; host: string } | { ok: false; response: HttpResponseInit } {
  const parsed = parseSiteHost(decodeHostParam(request.params.host ?? ""));
  if (!parsed.ok) return { ok: false, response: badRequest("Invalid host", [{ path: "host", message: `host ${parsed.problem}` }]) };
  return { ok: true, host: parsed.site.host };
}

/** 404 for a site key no secret, run or offboarding knows, with where to look next. */
export function siteNotManaged(host: string): HttpResponseInit {
  return json(404, {
    error: `No Creatio site ${host} is managed here. GET /api/tenants lists the managed sites (the site key is the Creatio URL's host, with :port when not 443); POST /api/tenants onboards one.`,
  } satisfies ErrorResponse);
}
