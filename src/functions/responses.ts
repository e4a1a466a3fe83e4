import type { HttpResponseInit, InvocationContext } from "@azure/functions";
import type { ErrorResponse } from "../api/schemas";

/** Answers and request helpers shared by the HTTP functions. */

export function json(status: number, body: unknown): HttpResponseInit {
  return { status, jsonBody: body, headers: { "Content-Type": "application/json; charset=utf-8" } };
}

export function badRequest(error: string, errors: ErrorResponse["errors"]): HttpResponseInit {
  return json(400, { error, errors } satisfies ErrorResponse);
}

/** Key Vault throttled, down or refusing us: 503 naming the read. */
export function keyVaultUnavailable(context: InvocationContext, what: string, error: unknown): HttpResponseInit {
  context.error(`Key Vault read of ${what} failed: ${(error as Error)?.message}`);
  return json(503, { error: `Key Vault could not be read: ${(error as Error)?.message}` } satisfies ErrorResponse);
}

/**
 * JSON.parse's message quotes the text around the error, which may be a password sent by mistake
 * (DESIGN rule 1: never echo it): keep only the position.
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
