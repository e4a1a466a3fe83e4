import { createHash } from "node:crypto";
import { z } from "zod";
import { NOT_RETRIED } from "../domain/failure";

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

/**
 * The Key Vault tag that binds a Creatio credential to the sites it may be sent to: the site hosts,
 * space separated (e.g. `acme.creatio.com`). Whoever stores the credential sets it; without it, a
 * caller holding a function key could send any JSON credential in the vault to a host of their
 * choosing (docs/architecture.md, "The secret never enters Durable state").
 */
export const CREDENTIAL_SITE_TAG = "creatioSite";

/** Why a credential secret may not be used for `host`, or undefined when its tag names the host. */
export function credentialBindingProblem(secretName: string, tags: Record<string, string> | undefined, host: string): string | undefined {
  const bound = (tags?.[CREDENTIAL_SITE_TAG] ?? "").toLowerCase().split(/[\s,]+/).filter(Boolean);
  if (bound.includes(host.toLowerCase())) return undefined;
  const found = bound.length > 0 ? `names ${bound.join(" ")}, not ${host}` : "is missing";
  // A mistyped site address reads the same as a credential of another site: say both fixes.
  const typo = bound.length > 0 ? ` If you meant ${bound.join(" or ")}, correct the site's URL instead.` : "";
  return (
    `Key Vault secret ${secretName} is not bound to ${host}: its tag ${CREDENTIAL_SITE_TAG} ${found}. ` +
    `Whoever stores the credential binds it to the site: az keyvault secret set-attributes --vault-name <vault> --name ${secretName} --tags ${CREDENTIAL_SITE_TAG}=${host}` +
    typo
  );
}

/** A Creatio credential read from Key Vault for one site, with the values to keep out of any error text. */
export interface SiteCredential {
  credential: CreatioCredential;
  /** The secret's value and its password or client secret: redact them from messages. */
  secretParts: string[];
  /** The Key Vault version read: a reference later steps pass on instead of the value. */
  version: string | undefined;
}

type CredentialSecrets = {
  getSecret(name: string, options?: { version?: string }): Promise<{ value?: string; properties: { version?: string; tags?: Record<string, string> } }>;
};

/**
 * Credentials already read, per Key Vault client, by secret name, version and site. A Key Vault
 * version never changes (learn.microsoft.com/azure/key-vault/secrets/about-secrets), so a step
 * given the version POST /api/tenants read finds it here when it runs in the same process, instead
 * of reading it again (docs/architecture.md, "Upstream calls per onboarding"). Kept in memory only,
 * like the Creatio sessions below; entries go after CREDENTIAL_CACHE_MS.
 */
const credentialCache = new WeakMap<object, Map<string, { site: SiteCredential; at: number }>>();
export const CREDENTIAL_CACHE_MS = 15 * 60 * 1000;

/**
 * Reads and checks the credential secret for `host`: it must exist (a Key Vault 404 propagates),
 * be bound to the host and hold one of the two documented shapes; otherwise CreatioCredentialError.
 * With `version`, that version (from this process's cache when it read it already); else the latest.
 */
export async function readSiteCredential(secrets: CredentialSecrets, secretName: string, host: string, version?: string): Promise<SiteCredential> {
  let cache = credentialCache.get(secrets);
  if (!cache) credentialCache.set(secrets, (cache = new Map()));
  const now = Date.now();
  for (const [key, entry] of cache) if (now - entry.at >= CREDENTIAL_CACHE_MS) cache.delete(key);
  const keyOf = (v: string) => JSON.stringify([secretName, v, host.toLowerCase()]);
  const cached = version ? cache.get(keyOf(version)) : undefined;
  if (cached) return cached.site;
  const secret = await secrets.getSecret(secretName, version ? { version } : undefined);
  const unbound = credentialBindingProblem(secretName, secret.properties.tags, host);
  if (unbound) throw new CreatioCredentialError(unbound);
  const credential = parseCreatioCredential(secretName, secret.value);
  const site: SiteCredential = {
    credential,
    secretParts: [secret.value ?? "", "password" in credential ? credential.password : credential.clientSecret],
    version: secret.properties.version,
  };
  if (site.version) cache.set(keyOf(site.version), { site, at: now });
  return site;
}

export class CreatioError extends Error {
  override name = "CreatioError";
  constructor(
    readonly call: string,
    readonly status: number | undefined,
    readonly detail: string,
  ) {
    super(`Creatio ${call} failed${status !== undefined ? ` with ${status}` : ""}: ${detail}`);
  }
}

/**
 * Creatio refused the credential (cookie login Code 1, or the Identity Service's invalid_client).
 * Final: trying the same password again cannot succeed and can lock the account.
 */
export class CreatioLoginRefusedError extends CreatioError {
  override name = "CreatioLoginRefusedError";
  constructor(call: string, status: number | undefined, detail: string) {
    super(call, status, `${detail} ${NOT_RETRIED}`);
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
  /** Abort each request after this many ms (status reads must answer even when Creatio does not). */
  timeoutMs?: number;
}

const IDEMPOTENT = new Set(["GET", "PATCH", "PUT", "DELETE"]);
export const EMPTY_GUID = "00000000-0000-0000-0000-000000000000";

export interface MailServerRow {
  Id: string;
  Name?: string;
  OAuthApplicationId?: string | null;
}
export interface OAuthApplicationRow {
  Id: string;
  Name?: string;
  AppClassName?: string;
  ClientClassName?: string;
  ClientId?: string | null;
}
export interface MailServerLink {
  mailServer: MailServerRow | undefined;
  application: OAuthApplicationRow | undefined;
}
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
    const base = options.fetch ?? fetch;
    const timeoutMs = options.timeoutMs;
    this.fetchImpl = timeoutMs === undefined ? base : (input, init) => base(input, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.maxRetries = options.maxRetries ?? 4;
    this.baseDelayMs = options.baseDelayMs ?? 500;
  }

  /**
   * The OData 4 root in use (`/0/odata` or `/odata`), detected on first use. A root counts only when
   * it answers OData JSON: the root a site does not serve may answer 404, a 302 to the login page or
   * an HTML page with 200 (Creatio Academy "OData basics": `/0/odata` on .NET Framework, `/odata` on
   * .NET). A 401 that survives signing in again is an authentication failure, not a missing root.
   */
  /** The OData root when this client found it already (no request needed), else undefined. */
  get knownODataRoot(): string | undefined {
    return this.odataBase;
  }

  async odataRoot(): Promise<string> {
    if (this.odataBase) return this.odataBase;
    return (await this.discover("/MailServer?$select=Id&$top=1")).base;
  }

  /**
   * Finds the OData root with `query`, a collection query (its answer is `{"value": [...]}`) on an
   * entity every Creatio has, and returns that answer too: the first read a step needs doubles as
   * the probe, so first contact costs no extra request (docs/architecture.md, "Upstream calls per onboarding").
   */
  private async discover(query: string): Promise<{ base: string; value: unknown[] }> {
    const answers: string[] = [];
    for (const base of ODATA_BASES) {
      const call = `GET ${base}${query.split("?")[0]}`;
      const probe = await this.send("GET", `${base}${query}`);
      const contentType = (probe.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
      if (probe.status === 401) throw await this.authFailure(call, probe);
      if (probe.ok && contentType === "application/json") {
        const body = (await probe.json().catch(() => undefined)) as { value?: unknown } | undefined;
        if (body && Array.isArray(body.value)) {
          this.odataBase = base;
          return { base, value: body.value };
        }
        answers.push(`${base} answered ${probe.status} JSON that is not an OData collection`);
        continue;
      }
      const redirect = probe.status >= 300 && probe.status < 400;
      if (redirect || probe.status === 404 || (probe.ok && contentType !== "application/json")) {
        await probe.arrayBuffer().catch(() => undefined);
        const location = probe.headers.get("location");
        answers.push(`${base} answered ${probe.status}${redirect && location ? ` to ${pathOf(location)}` : ""}${contentType ? ` (${contentType})` : ""}`);
        continue;
      }
      // 403 (no right to use OData), 5xx after retries...: a real answer from an OData root.
      throw await this.errorFrom(call, probe);
    }
    throw new CreatioError("OData discovery", undefined, `no OData root on ${this.options.origin}: ${answers.join("; ")}`);
  }

  /**
   * Whether the signed-in user may perform a system operation (e.g. CanManageMailServers), through
   * `POST {site}[/0]/ServiceModel/RightsService.svc/GetCanExecuteOperation {"operation"}` answering
   * `{"GetCanExecuteOperationResult": bool}` (the route and shape clio, Creatio's own CLI, uses:
   * github.com/Advance-Technologies-Foundation/clio, CreatioRightsClient). `/0` goes with the
   * `/0/odata` root, as on .NET Framework sites.
   */
  async canExecuteOperation(operation: string): Promise<boolean> {
    const root = await this.odataRoot();
    const path = `${root.startsWith("/0/") ? "/0" : ""}/ServiceModel/RightsService.svc/GetCanExecuteOperation`;
    const response = await this.send("POST", path, { operation });
    if (!response.ok) throw await this.errorFrom(`POST ${path}`, response);
    const body = (await response.json().catch(() => undefined)) as { GetCanExecuteOperationResult?: unknown } | undefined;
    if (body === undefined) throw new CreatioError(`POST ${path}`, response.status, "the answer is not JSON");
    return body.GetCanExecuteOperationResult === true;
  }

  /**
   * The mail server row and the OAuth application it is linked to (undefined when unlinked or the
   * row is gone): what Creatio's mail actually uses.
   */
  async mailServerLink(mailServerId: string): Promise<MailServerLink> {
    // Before the root is known, the row is read with a collection query that also finds the root.
    const mailServer = this.odataBase
      ? (await this.get<MailServerRow>(`/MailServer(${mailServerId})?$select=Id,Name,OAuthApplicationId`)).body
      : ((await this.discover(`/MailServer?$filter=Id eq ${mailServerId}&$select=Id,Name,OAuthApplicationId`)).value[0] as MailServerRow | undefined);
    const linkedId = mailServer?.OAuthApplicationId;
    const application =
      linkedId && linkedId !== EMPTY_GUID
        ? (await this.get<OAuthApplicationRow>(`/OAuthApplications(${linkedId})?$select=Id,Name,AppClassName,ClientClassName,ClientId`)).body
        : undefined;
    return { mailServer, application };
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
  async delete(path: string): Promise<ODataResult<unknown>> {
    return this.odata("DELETE", path);
  }

  /** OData call relative to the detected root; 404 is returned (not thrown) so callers can upsert. */
  private async odata<T>(method: string, path: string, body?: unknown): Promise<ODataResult<T>> {
    const root = await this.odataRoot();
    const call = `${method} ${root}${path.split("?")[0]}`;
    const response = await this.send(method, `${root}${path}`, body);
    if (response.status === 404 && method === "GET") return { status: 404, body: undefined };
    if (response.status === 401) throw await this.authFailure(call, response);
    if (!response.ok) throw await this.errorFrom(call, response);
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as T) : undefined };
  }

  /** One HTTP exchange with authentication, one re-login on 401, and retries. */
  private async send(method: string, path: string, body?: unknown): Promise<Response> {
    await this.ensureSignedIn();
    let reloggedIn = false;
    return this.retrying(
      `${method} ${path.split("?")[0]}`,
      IDEMPOTENT.has(method),
      () =>
        this.fetchImpl(`${this.options.origin}${path}`, {
          method,
          headers: this.headers(body !== undefined),
          body: body === undefined ? undefined : JSON.stringify(body),
          redirect: "manual",
        }),
      async (response) => {
        if (response.status !== 401 || reloggedIn) return false;
        // Session expired or token revoked: sign in again, once (docs/architecture.md, "Creatio").
        reloggedIn = true;
        await response.arrayBuffer().catch(() => undefined);
        this.cookies.clear();
        this.bearer = undefined;
        await this.ensureSignedIn();
        return true;
      },
    );
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

  /** Requests sent at once share one sign-in (a second login could lock an account sooner, and costs a request). */
  private signingIn: Promise<void> | undefined;

  private async ensureSignedIn(): Promise<void> {
    if (this.bearer || this.cookies.size > 0) return;
    this.signingIn ??= (async () => {
      const credential = this.options.credential;
      if ("username" in credential) await this.cookieLogin(credential.username, credential.password);
      else await this.clientCredentialsLogin(credential.clientId, credential.clientSecret, credential.identityServerUrl);
    })().finally(() => (this.signingIn = undefined));
    return this.signingIn;
  }

  /** `POST /ServiceModel/AuthService.svc/Login` (no `/0`): 200 with Code 0 and cookies, or 200 with Code 1 and a Message. */
  private async cookieLogin(username: string, password: string): Promise<void> {
    const call = "POST /ServiceModel/AuthService.svc/Login";
    // A login has no lasting effect: sent again after a 5xx or a network failure.
    const response = await this.retrying(call, true, () =>
      this.fetchImpl(`${this.options.origin}/ServiceModel/AuthService.svc/Login`, {
        method: "POST",
        // ForceUseSession: true is a required header of Login (Creatio Academy "AuthService.svc web service",
        // https://academy.creatio.com/docs/8.x/dev/development-on-creatio-platform/integrations-and-api/authentication/authentication-basics/references/authservice-svc).
        headers: { "Content-Type": "application/json", Accept: "application/json", ForceUseSession: "true" },
        body: JSON.stringify({ UserName: username, UserPassword: password }),
      }),
    );
    if (!response.ok) throw await this.errorFrom(call, response);
    const result = (await response.json().catch(() => ({}))) as { Code?: number; Message?: string };
    if (result.Code !== 0) {
      throw new CreatioLoginRefusedError(call, response.status, `login refused (Code ${result.Code ?? "missing"}): ${result.Message ?? "no message"}`);
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
    const response = await this.retrying(call, true, () =>
      this.fetchImpl(`${base}/connect/token`, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
        body: new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, client_secret: clientSecret }).toString(),
      }),
    );
    if (response.status === 400 || response.status === 401) {
      // RFC 6749 section 5.2: invalid_client / unauthorized_client: the credential itself is wrong.
      const refused = await this.errorFrom(call, response);
      throw new CreatioLoginRefusedError(call, response.status, `client credentials refused: ${refused.message.replace(/^.*?: /, "")}`);
    }
    if (!response.ok) throw await this.errorFrom(call, response);
    const token = (await response.json().catch(() => ({}))) as { access_token?: string };
    if (!token.access_token) throw new CreatioError(call, response.status, "no access_token in the answer");
    this.bearer = token.access_token;
  }

  /**
   * The one retry loop of this client: 429 always; 5xx and network failures only when the request
   * may be sent again (`replayable`: an idempotent method, or a login, which has no lasting effect);
   * Retry-After in seconds, else exponential backoff. `again` may answer a response by asking for
   * another attempt (send's one re-login on 401). Written here rather than taken from a library:
   * the Graph SDK's RetryHandler cannot express these rules (see SafeRetryHandler in ./graph.ts),
   * and a second retry dependency for two call sites would weigh more than this loop.
   */
  private async retrying(call: string, replayable: boolean, fn: () => Promise<Response>, again?: (response: Response) => Promise<boolean>): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await fn();
      } catch (error) {
        if (replayable && attempt < this.maxRetries) {
          await this.sleep(this.backoff(attempt, null));
          continue;
        }
        throw new CreatioError(call, undefined, error instanceof Error ? causeText(error) : String(error));
      }
      if (again && (await again(response))) continue;
      const retryable = response.status === 429 || (response.status >= 500 && replayable);
      if (retryable && attempt < this.maxRetries) {
        await response.arrayBuffer().catch(() => undefined);
        await this.sleep(this.backoff(attempt, response.headers.get("retry-after")));
        continue;
      }
      return response;
    }
  }

  /** A 401 that `send` already answered by signing in again once: the credential is refused. */
  private async authFailure(call: string, response: Response): Promise<CreatioError> {
    const error = await this.errorFrom(call, response);
    return new CreatioError(call, 401, `authentication refused even after signing in again: ${error.detail}`);
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

/** The path (and query) of a Location header, absolute or relative. */
function pathOf(location: string): string {
  try {
    const url = new URL(location, "https://creatio.invalid");
    return url.pathname;
  } catch {
    return location;
  }
}

/** fetch wraps network failures as "fetch failed"; the cause says what (ECONNREFUSED, certificate...). */
function causeText(error: Error): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause ? `${error.message} (${cause.code ?? ""} ${cause.message ?? ""})`.replace(/\s+\)/, ")") : error.message;
}

/**
 * Clients per site, credential and retry behaviour, made once; a cached session is reused across
 * activity runs and status reads. (Injected fetch/sleep are for tests, which construct clients directly.)
 */
const clients = new Map<string, CreatioClient>();

export function getCreatioClient(options: CreatioClientOptions): CreatioClient {
  const c = options.credential;
  // Keyed by a hash so the map holds no credential in clear beyond the client itself.
  const key = createHash("sha256").update(JSON.stringify([options.origin, c, options.maxRetries ?? null, options.timeoutMs ?? null])).digest("hex");
  let client = clients.get(key);
  if (!client) {
    client = new CreatioClient(options);
    clients.set(key, client);
  }
  return client;
}
