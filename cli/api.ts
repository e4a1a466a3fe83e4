/**
 * The app's HTTP API as the command line calls it (routes: src/api/openapi.ts, API_ROUTES). The
 * function key comes from CREATIO_O365_KEY and goes in the `x-functions-key` header, never on the
 * command line (Azure Functions, "Function access keys": the key may be sent as `code` or in that
 * header). Every failure becomes a CliError whose one-line message says what to do next.
 */

export const DEFAULT_URL = "http://localhost:7071";

/** Exit codes: 1 the operation failed (a run failed, a 4xx/5xx answer), 2 a usage error, 3 the API could not be reached or refused the key. */
export const EXIT = { failed: 1, usage: 2, unreachable: 3 } as const;

export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
    /** The API's error body, for --output json. */
    readonly body?: unknown,
    /** --output json already printed the answer (a run's final status): print no error object after it. */
    readonly jsonPrinted = false,
  ) {
    super(message);
  }
}

export type Fetch = typeof fetch;

export interface ApiResponse {
  status: number;
  body: any;
  text: string;
}

export interface ApiOptions {
  baseUrl: string;
  key?: string;
  fetch?: Fetch;
}

/** The base URL without a trailing slash; refuses what is not http(s). */
export function normaliseBaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CliError(`--url ${JSON.stringify(text)} is not a URL: give the app's address, e.g. ${DEFAULT_URL}`, EXIT.usage);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new CliError(`--url must be http:// or https://, not ${url.protocol}`, EXIT.usage);
  return url.toString().replace(/\/+$/, "");
}

export class Api {
  readonly baseUrl: string;
  private readonly key: string | undefined;
  private readonly fetchImpl: Fetch;

  constructor(options: ApiOptions) {
    this.baseUrl = normaliseBaseUrl(options.baseUrl);
    this.key = options.key || undefined;
    this.fetchImpl = options.fetch ?? fetch;
  }

  /** Calls `path` (under the base URL, or an absolute URL the API gave, e.g. statusQueryGetUri). Never throws for an HTTP status. */
  async request(method: string, path: string, body?: unknown): Promise<ApiResponse> {
    const url = /^https?:\/\//.test(path) ? path : `${this.baseUrl}${path}`;
    const headers: Record<string, string> = { Accept: "application/json" };
    if (this.key) headers["x-functions-key"] = this.key;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response: Response;
    try {
      response = await this.fetchImpl(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (error) {
      throw unreachable(this.baseUrl, error);
    }
    const text = await response.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (response.status === 401) throw new CliError(`${this.baseUrl} refused the request (401): set CREATIO_O365_KEY to the app's function key`, EXIT.unreachable, parsed);
    return { status: response.status, body: parsed, text };
  }
}

function unreachable(baseUrl: string, error: unknown): CliError {
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  const why = cause?.code ?? cause?.message ?? (error as Error)?.message ?? String(error);
  return new CliError(`cannot reach ${baseUrl} (${why}): is \`npm start\` running? set --url or CREATIO_O365_URL`, EXIT.unreachable);
}

/** The API's error body (`{ error, errors?, instanceId? }`, src/api/schemas.ts errorResponseSchema) as one line. */
export function errorText(response: ApiResponse): string {
  const body = response.body as { error?: unknown; errors?: { path?: string; message?: string }[] } | undefined;
  const main = typeof body?.error === "string" ? body.error : response.text.trim().slice(0, 300) || `HTTP ${response.status}`;
  const fields = Array.isArray(body?.errors) ? body!.errors.map((e) => e?.message).filter((m): m is string => typeof m === "string" && !main.includes(m)) : [];
  return fields.length > 0 ? `${main} (${fields.join("; ")})` : main;
}

/** A CliError for an answer that is not what the command expected. */
export function httpError(what: string, response: ApiResponse, hint?: string): CliError {
  const text = `${what} failed (${response.status}): ${errorText(response)}`;
  return new CliError(hint ? `${text}; ${hint}` : text, EXIT.failed, response.body);
}
