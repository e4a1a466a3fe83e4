import type { HttpRequest, HttpResponseInit } from "@azure/functions";
import type { z } from "zod";
import { findPasswordLikeField, findUnsafeString, isNestedTooDeeply, MAX_JSON_DEPTH, toFieldErrors, type ErrorResponse } from "../api/schemas";
import { badRequest, json, malformedJsonMessage, routeHost } from "./responses";

/**
 * The one reader of JSON request bodies (POST /api/tenants, POST /api/tenants/{host}/rotate).
 * Bad input answers a 4xx naming the problem, never a 500: a body larger than MAX_BODY_BYTES is
 * refused without being read whole (413), then content type, UTF-8, JSON syntax, nesting depth, a
 * password-like field (docs/architecture.md, "The secret never enters Durable state": named, never
 * echoed) and control or invisible characters in any string (400).
 */

/** Largest request body read: the API's bodies are a few hundred bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

export type BodyResult = { ok: true; body: unknown } | { ok: false; response: HttpResponseInit };

const fail = (response: HttpResponseInit): BodyResult => ({ ok: false, response });

export function payloadTooLarge(): HttpResponseInit {
  return json(413, { error: `The body is larger than ${MAX_BODY_BYTES} bytes (64 KiB), the most this API reads` } satisfies ErrorResponse);
}

/**
 * At most `limit` bytes of the body, or "tooLarge" as soon as it is longer: Content-Length first,
 * then the stream is read chunk by chunk and cancelled once past the limit (a chunked body has no
 * Content-Length). Without a stream (no body) the answer is empty.
 */
export async function readBodyBytes(request: HttpRequest, limit = MAX_BODY_BYTES): Promise<Uint8Array | "tooLarge"> {
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\s*\d+\s*$/.test(declared) && Number(declared) > limit) return "tooLarge";
  const stream = request.body;
  if (!stream) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      return "tooLarge";
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

export interface ReadJsonOptions {
  /** An empty body means `{}` (the rotate body is optional); the content type is then not checked. */
  optional?: boolean;
}

/** Reads, parses and screens a JSON body; `{ok:false}` carries the 400 or 413 to answer. */
export async function readJsonBody(request: HttpRequest, options: ReadJsonOptions = {}): Promise<BodyResult> {
  const contentType = request.headers.get("content-type") ?? "";
  const isJson = /^application\/json\s*(;|$)/i.test(contentType);
  const wrongType = () =>
    fail(badRequest("The body must be JSON", [{ path: "content-type", message: `content-type must be application/json, got ${contentType || "none"}` }]));
  if (!options.optional && !isJson) return wrongType();

  const bytes = await readBodyBytes(request);
  if (bytes === "tooLarge") return fail(payloadTooLarge());
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return fail(badRequest("The body is not UTF-8", [{ path: "", message: "body is not valid UTF-8 text" }]));
  }
  if (options.optional && text.trim() === "") return { ok: true, body: {} };
  if (!isJson) return wrongType();

  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    return fail(badRequest("Malformed JSON", [{ path: "", message: malformedJsonMessage(error) }]));
  }
  if (isNestedTooDeeply(body)) {
    return fail(badRequest("The body is nested too deeply", [{ path: "", message: `body is nested too deeply (more than ${MAX_JSON_DEPTH} levels)` }]));
  }
  const passwordField = findPasswordLikeField(body);
  if (passwordField) {
    return fail(
      badRequest("The request carries a password-like field", [
        { path: passwordField, message: `${passwordField} looks like a password or secret; store credentials in Key Vault and pass creatioCredentialSecretName` },
      ]),
    );
  }
  const unsafe = findUnsafeString(body);
  if (unsafe) return fail(badRequest("Invalid request", [{ path: unsafe.path, message: `${unsafe.path || "body"} ${unsafe.problem}` }]));
  return { ok: true, body };
}

/**
 * What a request on one site (`/tenants/{host}/...`) starts with: the route's host, and its optional
 * JSON body (none, or an empty one, is read as {}) checked by `schema`. `messages` replaces a field's
 * message, for a field whose fix names the host.
 */
export async function readSiteRequest<S extends z.ZodType>(
  request: HttpRequest,
  schema: S,
  messages: (host: string) => Record<string, string> = () => ({}),
): Promise<{ ok: true; host: string; body: z.output<S> } | { ok: false; response: HttpResponseInit }> {
  const route = routeHost(request);
  if (!route.ok) return route;
  const read = await readJsonBody(request, { optional: true });
  if (!read.ok) return read;
  const parsed = schema.safeParse(read.body);
  if (!parsed.success) {
    const replaced = messages(route.host);
    return { ok: false, response: badRequest("Invalid request", toFieldErrors(parsed.error).map((e) => (replaced[e.path] ? { path: e.path, message: replaced[e.path] } : e))) };
  }
  return { ok: true, host: route.host, body: parsed.data };
}
