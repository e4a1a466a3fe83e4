import { createHash } from "node:crypto";
import { z } from "zod";

/**
 * Creatio API client (docs/architecture.md, "Creatio"): cookie login through AuthService.svc or an
 * Identity Service client-credentials token; OData 4 under `/0/odata` (`/odata` on .NET Core
 * sites, detected); one re-login on 401; retries on 429/5xx with backoff (5xx only for idempotent
 * methods, so an insert is never replayed blindly). Errors name the Creatio call and its status.
 */

/** Value of the Key Vault secret named by `creatioCredentialSecretName` (docs/architecture.md, "Creatio"). */
export const creatioCredentialSchema = z.union([
  z.object({ username: z.string().min(1), password: z.string().min(1) }),
  z.object({ clientId: z.string().min(1), clientSecret: z.string().min(1), identityServerUrl: z.url({ protocol: /^https$/ }).optional() }),
]);
export type CreatioCredential = z.infer<typeof creatioCredentialSchema>;

export class CreatioCredentialError extends Error {
  override name = "CreatioCredentialError";
}

/** Parses the credential secret's JSON without ever echoing it. */
export function parseCreatioCredential(secretName: string, value: string | undefined): CreatioCredential {
  let json: unknown;
  try {
    json = JSON.parse(value ?? "");
  } catch {
    throw new CreatioCredentialError(`Key Vault secret ${secretName} is not JSON; expected {"username","password"} or {"clientId","clientSecret","identityServerUrl"?}`);
  }
  const parsed = creatioCredentialSchema.safeParse(json);
  if (!parsed.success) {
    throw new CreatioCredentialError(`Key Vault secret ${secretName} must hold {"username","password"} or {"clientId","clientSecret","identityServerUrl"?}`);
  }
  return parsed.data;
}

export class CreatioError extends Error {
  override name = "CreatioError";
  constructor(
    readonly call: string,
    readonly status: number | undefined,
    detail: string,
  ) {
    super(`Creatio ${call} failed${status !== undefined ? ` with ${status}` : ""}: ${detail}`);
  }
}

export interface CreatioClientOptions {
  /** `https://<host>` of the site. */
  origin: string;
  credential: CreatioCredential;
  /** Identity Service URL when the credential does not name one (cloud convention `https://<site>-is.creatio.com`). */
  defaultIdentityServerUrl?: string;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  maxRetries?: number;
  baseDelayMs?: number;
}

const IDEMPOTENT = new Set(["GET", "PATCH", "PUT", "DELETE"]);
const ODATA_BASES = ["/0/odata", "/odata"] as const;

export interface ODataResult<T> {
  status: number;
  body: T | undefined;
}

export class CreatioClient {
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly maxRetries: number;
  private readonly baseDelayMs: number;
  private cookies = new Map<string, string>();
  private bearer: string | undefined;
  private odataBase: string | undefined;

  constructor(private readonly options: CreatioClientOptions) {
    this.fetchImpl = options.fetch ?? fetch;
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.maxRetries = options.maxRetries ?? 4;
    this.baseDelayMs = options.baseDelayMs ?? 500;
  }

  /** The OData 4 root in use (`/0/odata` or `/odata`), detected on first use. */
  async odataRoot(): Promise<string> {
    if (this.odataBase) return this.odataBase;
    for (const base of ODATA_BASES) {
      // A cheap query on an entity every Creatio has; 404 means this root does not exist on this site.
      const probe = await this.send("GET", `${base}/MailServer?$select=Id&$top=1`);
      if (probe.status === 404) continue;
      if (!probe.ok) throw await this.errorFrom(`GET ${base}/MailServer`, probe);
      this.odataBase = base;
      return base;
    }
    throw new CreatioError("OData discovery", 404, `neither ${ODATA_BASES.join(" nor ")} answers on ${this.options.origin}`);
  }

  async get<T>(path: string): Promise<ODataResult<T>> {
    return this.odata<T>("GET", path);
  }
  async post<T>(path: string, body: unknown): Promise<ODataResult<T>> {
    return this.odata<T>("POST", path, body);
  }
  async patch<T>(path: string, body: unknown): Promise<ODataResult<T>> {
    return this.odata<T>("PATCH", path, body);
  }

  /** OData call relative to the detected root; 404 is returned (not thrown) so callers can upsert. */
  private async odata<T>(method: string, path: string, body?: unknown): Promise<ODataResult<T>> {
    const root = await this.odataRoot();
    const call = `${method} ${root}${path.split("?")[0]}`;
    const response = await this.send(method, `${root}${path}`, body);
    if (response.status === 404 && method === "GET") return { status: 404, body: undefined };
    if (!response.ok) throw await this.errorFrom(call, response);
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as T) : undefined };
  }

  /** One HTTP exchange with authentication, one re-login on 401, and retries. */
  private async send(method: string, path: string, body?: unknown): Promise<Response> {
    await this.ensureSignedIn();
    let reloggedIn = false;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.fetchImpl(`${this.options.origin}${path}`, {
          method,
          headers: this.headers(body !== undefined),
          body: body === undefined ? undefined : JSON.stringify(body),
          redirect: "manual",
        });
      } catch (error) {
        if (IDEMPOTENT.has(method) && attempt < this.maxRetries) {
          await this.sleep(this.backoff(attempt, null));
          continue;
        }
        throw new CreatioError(`${method} ${path.split("?")[0]}`, undefined, error instanceof Error ? causeText(error) : String(error));
      }
      if (response.status === 401 && !reloggedIn) {
        // Session expired or token revoked: sign in again, once (docs/architecture.md, "Creatio").
        reloggedIn = true;
        await response.arrayBuffer().catch(() => undefined);
        this.cookies.clear();
        this.bearer = undefined;
        await this.ensureSignedIn();
        continue;
      }
      const retryable = response.status === 429 || (response.status >= 500 && IDEMPOTENT.has(method));
      if (retryable && attempt < this.maxRetries) {
        await response.arrayBuffer().catch(() => undefined);
        await this.sleep(this.backoff(attempt, response.headers.get("retry-after")));
        continue;
      }
      return response;
    }
  }

  private headers(hasBody: boolean): Record<string, string> {
    const headers: Record<string, string> = { Accept: "application/json", ForceUseSession: "true" };
    if (hasBody) headers["Content-Type"] = "application/json; charset=utf-8; IEEE754Compatible=true";
    if (this.bearer) headers.Authorization = `Bearer ${this.bearer}`;
    if (this.cookies.size > 0) {
      headers.Cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
      const csrf = this.cookies.get("BPMCSRF");
      if (csrf) headers.BPMCSRF = csrf;
    }
    return headers;
  }

  private backoff(attempt: number, retryAfter: string | null): number {
    const seconds = retryAfter === null ? NaN : Number(retryAfter);
    if (Number.isFinite(seconds)) return Math.min(seconds * 1000, 60_000);
    return Math.min(this.baseDelayMs * 2 ** attempt, 30_000);
  }

  private async ensureSignedIn(): Promise<void> {
    if (this.bearer || this.cookies.size > 0) return;
    const credential = this.options.credential;
    if ("username" in credential) await this.cookieLogin(credential.username, credential.password);
    else await this.clientCredentialsLogin(credential.clientId, credential.clientSecret, credential.identityServerUrl);
  }

  /** `POST /ServiceModel/AuthService.svc/Login` (no `/0`): 200 with Code 0 and cookies, or 200 with Code 1 and a Message. */
  private async cookieLogin(username: string, password: string): Promise<void> {
    const call = "POST /ServiceModel/AuthService.svc/Login";
    const response = await this.retrying(call, () =>
      this.fetchImpl(`${this.options.origin}/ServiceModel/AuthService.svc/Login`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ UserName: username, UserPassword: password }),
      }),
    );
    if (!response.ok) throw await this.errorFrom(call, response);
    const result = (await response.json().catch(() => ({}))) as { Code?: number; Message?: string };
    if (result.Code !== 0) {
      throw new CreatioError(call, response.status, `login refused (Code ${result.Code ?? "missing"}): ${result.Message ?? "no message"}`);
    }
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = pair!.indexOf("=");
      if (eq > 0) this.cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
    if (this.cookies.size === 0) throw new CreatioError(call, response.status, "login answered Code 0 but set no cookies");
  }

  /** `POST {identityServerUrl}/connect/token` (client_credentials), then `Authorization: Bearer`. */
  private async clientCredentialsLogin(clientId: string, clientSecret: string, identityServerUrl?: string): Promise<void> {
    const base = (identityServerUrl ?? this.options.defaultIdentityServerUrl)?.replace(/\/+$/, "");
    if (!base) {
      throw new CreatioError("client credentials login", undefined, "the credential names no identityServerUrl and the site is not a *.creatio.com site");
    }
    const call = `POST ${base}/connect/token`;
    const response = await this.retrying(call, () =>
      this.fetchImpl(`${base}/connect/token`, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
        body: new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, client_secret: clientSecret }).toString(),
      }),
    );
    if (!response.ok) throw await this.errorFrom(call, response);
    const token = (await response.json().catch(() => ({}))) as { access_token?: string };
    if (!token.access_token) throw new CreatioError(call, response.status, "no access_token in the answer");
    this.bearer = token.access_token;
  }

  /** Login calls: retry 429 and 5xx (a login has no lasting effect), with backoff. */
  private async retrying(call: string, fn: () => Promise<Response>): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await fn();
      } catch (error) {
        if (attempt < this.maxRetries) {
          await this.sleep(this.backoff(attempt, null));
          continue;
        }
        throw new CreatioError(call, undefined, error instanceof Error ? causeText(error) : String(error));
      }
      if ((response.status === 429 || response.status >= 500) && attempt < this.maxRetries) {
        await response.arrayBuffer().catch(() => undefined);
        await this.sleep(this.backoff(attempt, response.headers.get("retry-after")));
        continue;
      }
      return response;
    }
  }

  private async errorFrom(call: string, response: Response): Promise<CreatioError> {
    const text = await response.text().catch(() => "");
    let detail = text.slice(0, 300) || response.statusText || "no body";
    try {
      const parsed = JSON.parse(text) as { error?: { message?: string } | string; Message?: string; message?: string };
      const message = typeof parsed.error === "string" ? parsed.error : parsed.error?.message ?? parsed.Message ?? parsed.message;
      if (message) detail = message;
    } catch {
      // not JSON
    }
    return new CreatioError(call, response.status, detail);
  }
}

/** fetch wraps network failures as "fetch failed"; the cause says what (ECONNREFUSED, certificate...). */
function causeText(error: Error): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause ? `${error.message} (${cause.code ?? ""} ${cause.message ?? ""})`.replace(/\s+\)/, ")") : error.message;
}

/** Clients per site and credential, made once; a cached session is reused across activity runs. */
const clients = new Map<string, CreatioClient>();

export function getCreatioClient(options: CreatioClientOptions): CreatioClient {
  const c = options.credential;
  // Keyed by a hash so the map holds no credential in clear beyond the client itself.
  const key = createHash("sha256").update(JSON.stringify([options.origin, c])).digest("hex");
  let client = clients.get(key);
  if (!client) {
    client = new CreatioClient(options);
    clients.set(key, client);
  }
  return client;
}
