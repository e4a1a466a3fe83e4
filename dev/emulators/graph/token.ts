// The Entra ID (v2.0) endpoints MSAL calls when `authorityHost` is this emulator and instance discovery is
// off (docs/architecture.md, "Local stack"): the tenant's OpenID configuration, its signing
// keys, and the token endpoint for the client-credentials grant.
//
// Errors are shaped like Entra's OAuth errors: `{error, error_description: "AADSTSnnnn: ...", error_codes,
// timestamp, trace_id, correlation_id, error_uri}` (Microsoft identity platform, "AADSTS error codes" /
// reference-error-codes.md; v2-oauth2-client-creds-grant-flow.md "Error response").
import { randomUUID } from "node:crypto";
import { AUDIENCES, EmulatorContext, SANDBOX_IDENTITY_HEADER } from "../context";
import type { EmulatorRequest, EmulatorResponse, EmulatorServer } from "../server";
import type { GraphDirectory } from "../graph";
import { GraphStore, Json, newServicePrincipal } from "./store";
import { MICROSOFT_GRAPH_APP_ID } from "./seed";

/** The audience of tokens exchanged for a federated credential (workload-identity-federation-config-app-trust-managed-identity). */
export const TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange";
const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** Token lifetime Entra gives app-only tokens by default (3599 s in `expires_in`). */
const TOKEN_LIFETIME_SECONDS = 3599;

export function aadError(status: number, error: string, code: number, description: string): EmulatorResponse {
  const traceId = randomUUID();
  const correlationId = randomUUID();
  const timestamp = new Date().toISOString().replace("T", " ").replace(/\.\d{3}Z$/, "Z");
  return {
    status,
    body: {
      error,
      error_description: `AADSTS${code}: ${description} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `https://login.microsoftonline.com/error?code=${code}`,
    },
  };
}

/** The public origin the caller used (the authority host), from the Host header. */
export function originOf(req: Pick<EmulatorRequest, "headers">): string {
  return `https://${req.headers.host ?? "localhost"}`;
}

interface Resource {
  /** The `aud` claim Entra puts in v1 access tokens for `<resource>/.default`: the resource URI as requested. */
  audience: string;
  /** App id of the resource's service principal; roles are app roles of that service principal. */
  appId: string | null;
}

export function registerTokenEndpoint(server: EmulatorServer, ctx: EmulatorContext, directories: Map<string, GraphDirectory>): void {
  const home = directories.get(ctx.identity.tenantId)!.store;
  /** A directory by tenant id or verified domain, as Entra accepts either in its URLs. */
  const directoryOf = (tenant: string): GraphStore | undefined =>
    [...directories.values()].map((d) => d.store).find((s) => s.tenant.tenantId === tenant.toLowerCase() || s.tenant.domain === tenant.toLowerCase());
  const unknownTenant = (tenant: string, error: string) =>
    // AADSTS90002 "Tenant '{tenant}' not found" (reference-error-codes.md).
    aadError(400, error, 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);

  // OpenID Connect discovery (v2-protocols-oidc.md "Find your app's OpenID configuration document URI").
  // MSAL reads authorization_endpoint, token_endpoint, end_session_endpoint and issuer from it.
  server.route("GET", /^\/(?<tenant>[^/]+)\/v2\.0\/\.well-known\/openid-configuration$/, (req) => {
    const directory = directoryOf(req.params.tenant);
    if (!directory) return unknownTenant(req.params.tenant, "invalid_tenant");
    const tenantId = directory.tenant.tenantId;
    const base = `${originOf(req)}/${tenantId}`;
    return {
      status: 200,
      body: {
        token_endpoint: `${base}/oauth2/v2.0/token`,
        token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        jwks_uri: `${originOf(req)}/${tenantId}/discovery/v2.0/keys`,
        response_modes_supported: ["query", "fragment", "form_post"],
        subject_types_supported: ["pairwise"],
        id_token_signing_alg_values_supported: ["RS256"],
        response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
        scopes_supported: ["openid", "profile", "email", "offline_access"],
        issuer: `${base}/v2.0`,
        request_uri_parameter_supported: false,
        userinfo_endpoint: `${originOf(req)}/oidc/userinfo`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
        http_logout_supported: true,
        frontchannel_logout_supported: true,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        claims_supported: ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "roles"],
        kerberos_endpoint: `${base}/kerberos`,
        tenant_region_scope: "EU",
        cloud_instance_name: "microsoftonline.com",
        cloud_graph_host_name: "graph.windows.net",
        msgraph_host: "graph.microsoft.com",
        rbac_url: "https://pas.windows.net",
      },
    };
  });

  // The signing keys (JWKS), so a resource server could validate our tokens the standard way.
  server.route("GET", /^\/(?<tenant>[^/]+)\/discovery\/v2\.0\/keys$/, (req) => {
    if (!directoryOf(req.params.tenant)) return unknownTenant(req.params.tenant, "invalid_tenant");
    const jwk = ctx.signer.publicKey.export({ format: "jwk" }) as Json;
    return { status: 200, body: { keys: [{ kty: "RSA", use: "sig", kid: ctx.signer.keyId, n: jwk.n, e: jwk.e }] } };
  });

  // Token endpoint, client-credentials grant with a shared secret or a client assertion
  // (v2-oauth2-client-creds-grant-flow.md, "Second case: Access token request with a certificate" / federated credential).
  server.route("POST", /^\/(?<tenant>[^/]+)\/oauth2\/v2\.0\/token$/, (req) => {
    const directory = directoryOf(req.params.tenant);
    if (!directory) return unknownTenant(req.params.tenant, "invalid_request");
    const tenantId = directory.tenant.tenantId;
    const form = new URLSearchParams(req.rawBody);
    const grantType = form.get("grant_type");
    if (grantType !== "client_credentials") {
      if (!grantType) return aadError(400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.");
      return aadError(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.");
    }
    // client_secret_post, or client_secret_basic (RFC 6749 2.3.1).
    let clientId = form.get("client_id");
    let clientSecret = form.get("client_secret");
    const basic = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? "");
    if (basic) {
      const [id, secret] = Buffer.from(basic[1], "base64").toString("utf8").split(":").map(decodeURIComponent);
      clientId = clientId ?? id;
      clientSecret = clientSecret ?? secret;
    }
    if (!clientId) return aadError(400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.");
    const assertion = form.get("client_assertion_type") === JWT_BEARER ? form.get("client_assertion") : null;
    if (!clientSecret && !assertion)
      return aadError(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");

    const scopes = (form.get("scope") ?? "").split(/\s+/).filter((s) => s && !["openid", "profile", "offline_access", "email"].includes(s));
    if (scopes.length !== 1 || !scopes[0].endsWith("/.default"))
      return aadError(
        400,
        "invalid_scope",
        1002012,
        `The provided value for scope ${form.get("scope") ?? ""} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
      );
    const resource = resolveResource(scopes[0].slice(0, -"/.default".length), directory, ctx.resourceAliases);
    if (!resource)
      return aadError(
        400,
        "invalid_resource",
        500011,
        `The resource principal named ${scopes[0].slice(0, -"/.default".length)} was not found in the tenant named ${tenantId}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.`,
      );

    const credential = assertion ? { assertion } : { secret: clientSecret! };
    const client = authenticateClient(clientId, credential, ctx, [...directories.values()].map((d) => d.store), directory, (ms) => server.isLagging(ms));
    if ("error" in client) return client.error;

    const roles = resource.appId === MICROSOFT_GRAPH_APP_ID ? client.graphRoles : (directory.appRoleAssignments.get(client.objectId) ?? []).filter((a) => a.resourceAppId === resource.appId).map((a) => a.value);
    const { token, expiresIn } = ctx.signer.issue(
      {
        aud: resource.audience,
        // App-only v1 access tokens (Graph's and Key Vault's default) are issued by sts.windows.net (access-tokens.md).
        iss: `https://sts.windows.net/${tenantId}/`,
        tid: tenantId,
        appid: clientId,
        appidacr: "1",
        idtyp: "app",
        oid: client.objectId,
        sub: client.objectId,
        ver: "1.0",
        ...(roles.length ? { roles } : {}),
      },
      TOKEN_LIFETIME_SECONDS,
    );
    return {
      status: 200,
      headers: { "Cache-Control": "no-store, no-cache", Pragma: "no-cache" },
      body: { token_type: "Bearer", expires_in: expiresIn, ext_expires_in: expiresIn, access_token: token },
    };
  });

  // The managed identity endpoint Azure Functions (App Service) gives an app: IDENTITY_ENDPOINT with the
  // IDENTITY_HEADER secret, API version 2019-08-01 (learn.microsoft.com/azure/app-service/overview-managed-identity,
  // "REST endpoint reference"), so ManagedIdentityCredential runs unchanged. The identity is the sandbox identity;
  // for `api://AzureADTokenExchange` the token is the assertion a federated credential trusts: issuer
  // login.microsoftonline.com/{home tenant}/v2.0, subject the identity's principal (object) id.
  server.route("GET", /^\/msi\/token$/, (req) => {
    if (req.headers["x-identity-header"] !== SANDBOX_IDENTITY_HEADER)
      return { status: 401, body: { statusCode: 401, message: "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER." } };
    const requestedClient = req.query.get("client_id") ?? req.query.get("principal_id");
    if (requestedClient && requestedClient !== ctx.identity.clientId && requestedClient !== ctx.identity.objectId)
      return { status: 400, body: { statusCode: 400, message: `No managed identity with id '${requestedClient}' is assigned to this app.` } };
    const requested = (req.query.get("resource") ?? "").replace(/\/\.default$/, "");
    if (!requested) return { status: 400, body: { statusCode: 400, message: "The 'resource' query parameter is required." } };
    const exchange = requested === TOKEN_EXCHANGE_AUDIENCE;
    const resource = exchange ? { audience: TOKEN_EXCHANGE_AUDIENCE, appId: null } : resolveResource(requested, home, ctx.resourceAliases);
    if (!resource) return { status: 400, body: { statusCode: 400, message: `AADSTS500011: The resource principal named ${requested} was not found in the tenant named ${home.tenant.tenantId}.` } };
    const tenantId = home.tenant.tenantId;
    const roles = resource.appId === MICROSOFT_GRAPH_APP_ID ? [...home.settings.identityGraphRoles] : [];
    const { token, expiresIn } = ctx.signer.issue(
      {
        aud: resource.audience,
        iss: exchange ? `https://login.microsoftonline.com/${tenantId}/v2.0` : `https://sts.windows.net/${tenantId}/`,
        tid: tenantId,
        appid: ctx.identity.clientId,
        oid: ctx.identity.objectId,
        sub: ctx.identity.objectId,
        idtyp: "app",
        ver: exchange ? "2.0" : "1.0",
        ...(roles.length ? { roles } : {}),
      },
      TOKEN_LIFETIME_SECONDS,
    );
    return {
      status: 200,
      body: { access_token: token, expires_on: String(Math.floor(Date.now() / 1000) + expiresIn), resource: requested, token_type: "Bearer", client_id: ctx.identity.clientId },
    };
  });

  // Admin consent for a multi-tenant application (learn.microsoft.com/entra/identity-platform/v2-admin-consent):
  // GET shows the consent page an administrator of the tenant sees; its Accept and Decline buttons POST back
  // here (a test posts `decision` itself). Accepting creates the application's service principal in that
  // tenant and assigns the application permissions it requires (requiredResourceAccess, type Role); then
  // the browser goes to redirect_uri with admin_consent=True, tenant and state, or with error and
  // error_description when declined. redirect_uri must be one the application registered (AADSTS50011), with
  // the port ignored for http://localhost (redirectUriMatches).
  const consent = (req: EmulatorRequest): EmulatorResponse => {
    const params = req.method === "POST" ? new URLSearchParams(req.rawBody) : req.query;
    const directory = directoryOf(req.params.tenant);
    if (!directory) return page(400, "Sign in", `AADSTS90002: Tenant '${escapeHtml(req.params.tenant)}' not found.`);
    const clientId = params.get("client_id") ?? "";
    const redirectUri = params.get("redirect_uri") ?? "";
    const state = params.get("state");
    const appHome = [...directories.values()].map((d) => d.store).find((s) => s.appByAppId(clientId));
    const app = appHome?.appByAppId(clientId);
    if (!appHome || !app) return page(400, "Sign in", `AADSTS700016: Application with identifier '${escapeHtml(clientId)}' was not found in the directory '${directory.tenant.tenantId}'.`);
    if (appHome !== directory && app.object.signInAudience === "AzureADMyOrg")
      return page(400, "Sign in", `AADSTS700016: Application with identifier '${escapeHtml(clientId)}' was not found in the directory '${directory.tenant.tenantId}'. It is not a multi-tenant application.`);
    if (!(app.object.web?.redirectUris ?? []).some((registered: string) => redirectUriMatches(registered, redirectUri)))
      return page(400, "Sign in", `AADSTS50011: The redirect URI '${escapeHtml(redirectUri)}' specified in the request does not match the redirect URIs configured for the application '${escapeHtml(clientId)}'.`);
    const back = (fields: Record<string, string>) => {
      const url = new URL(redirectUri);
      for (const [k, v] of Object.entries({ ...fields, ...(state !== null ? { state } : {}) })) url.searchParams.set(k, v);
      return { status: 302, headers: { Location: url.toString() }, body: "" } as EmulatorResponse;
    };
    if (req.method === "GET") {
      const hidden = [...params].map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`).join("");
      const button = (decision: string, label: string) => `<form method="post">${hidden}<input type="hidden" name="decision" value="${decision}"><button type="submit">${label}</button></form>`;
      return page(
        200,
        "Permissions requested",
        `<p><b>${escapeHtml(app.object.displayName ?? clientId)}</b> asks an administrator of <b>${escapeHtml(directory.tenant.displayName)}</b> (${directory.tenant.domain}) to consent for the whole organization.</p>` +
          `<ul>${requiredRoles(app.object, directory).map((r) => `<li>${escapeHtml(r.value)}</li>`).join("")}</ul>` +
          button("accept", "Accept") +
          button("decline", "Cancel"),
      );
    }
    if (params.get("decision") !== "accept") return back({ error: "access_denied", error_subcode: "cancel", error_description: "AADSTS65004: User declined to consent to access the app." });
    let sp = directory.spByAppId(clientId);
    if (!sp) {
      const object = newServicePrincipal({ appId: clientId, displayName: app.object.displayName, appDisplayName: app.object.displayName, appOwnerOrganizationId: appHome.tenant.tenantId, signInAudience: app.object.signInAudience, servicePrincipalNames: [clientId] });
      sp = { object, createdAtMs: Date.now(), owners: new Set() };
      directory.servicePrincipals.set(object.id, sp);
    }
    directory.appRoleAssignments.set(sp.object.id, requiredRoles(app.object, directory));
    return back({ admin_consent: "True", tenant: directory.tenant.tenantId });
  };
  for (const method of ["GET", "POST"]) server.route(method, /^\/(?<tenant>[^/]+)(?:\/v2\.0)?\/adminconsent$/, consent);
}

/**
 * Whether a redirect_uri matches a registered one: exactly, except for Entra's localhost exception
 * (learn.microsoft.com/entra/identity-platform/reply-url, "Localhost exceptions"): for an `http` redirect URI
 * on a loopback host (`localhost`, `127.0.0.1`) the port is ignored, so `http://localhost/api/consent/callback`
 * accepts `http://localhost:7071/api/consent/callback`. Scheme, host (localhost and 127.0.0.1 do not
 * stand for each other), path and query must still match; the path is case-sensitive as in Entra.
 */
export function redirectUriMatches(registered: string, requested: string): boolean {
  if (registered === requested) return true;
  let a: URL;
  let b: URL;
  try {
    a = new URL(registered);
    b = new URL(requested);
  } catch {
    return false;
  }
  const loopback = (u: URL) => u.protocol === "http:" && (u.hostname === "localhost" || u.hostname === "127.0.0.1");
  if (!loopback(a) || !loopback(b)) return false;
  return a.hostname === b.hostname && a.pathname === b.pathname && a.search === b.search;
}

/** The application permissions an app requires (requiredResourceAccess, type Role), resolved against the directory's resource service principals. */
function requiredRoles(app: Json, directory: GraphStore): { resourceAppId: string; value: string }[] {
  return (app.requiredResourceAccess ?? []).flatMap((entry: Json) => {
    const resource = directory.spByAppId(entry.resourceAppId);
    return (entry.resourceAccess ?? [])
      .filter((a: Json) => a.type === "Role")
      .map((a: Json) => ({ resourceAppId: entry.resourceAppId, value: (resource?.object.appRoles as Json[] | undefined)?.find((r) => r.id === a.id)?.value }))
      .filter((r: { value?: string }) => r.value) as { resourceAppId: string; value: string }[];
  });
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(status: number, title: string, html: string): EmulatorResponse {
  return {
    status,
    headers: { "Content-Type": "text/html; charset=utf-8" },
    body: `<!doctype html><html><head><meta charset="utf-8"><title>${title} (sandbox Entra ID)</title></head><body><h1>${title}</h1>${html}</body></html>`,
  };
}

function resolveResource(resource: string, store: GraphStore, aliases: Record<string, string> = {}): Resource | undefined {
  const r = resource.replace(/\/$/, "").toLowerCase();
  const alias = Object.entries(aliases).find(([name]) => name.replace(/\/$/, "").toLowerCase() === r);
  if (alias) return { audience: resource.replace(/\/$/, ""), appId: alias[1] };
  if (AUDIENCES.graph.some((a) => a.toLowerCase() === r)) return { audience: AUDIENCES.graph[0], appId: MICROSOFT_GRAPH_APP_ID };
  if (AUDIENCES.keyVault.some((a) => a.toLowerCase() === r)) return { audience: AUDIENCES.keyVault[0], appId: AUDIENCES.keyVault[1] };
  // Any other service principal in the tenant, by app id or one of its servicePrincipalNames (e.g. Exchange).
  for (const { object: sp } of store.servicePrincipals.values()) {
    const names: string[] = [sp.appId, ...(sp.servicePrincipalNames ?? [])].map((n: string) => n.replace(/\/$/, "").toLowerCase());
    if (names.includes(r)) return { audience: resource, appId: sp.appId };
  }
  return undefined;
}

type ClientResult = { objectId: string; graphRoles: string[] } | { error: EmulatorResponse };

/**
 * Checks the client in the directory the token is asked for (`target`):
 * - the sandbox identity with its secret, in its home tenant only;
 * - an application, found in the directory that holds its object (its home), with one of its passwords
 *   (addPassword, so a rotated Creatio secret can be proved to work and an expired or removed one to
 *   fail), or with a client assertion that one of its federated identity credentials trusts (issuer,
 *   subject and audience, as Entra matches them: workload-identity-federation-config-app-trust-managed-identity);
 * - and, in the target directory, the application's service principal: in another tenant it exists only
 *   once an administrator there consented (AADSTS7000229 before).
 * Roles: app roles assigned to the client in the target directory (consent assigns them).
 */
function authenticateClient(
  clientId: string,
  credential: { secret: string } | { assertion: string },
  ctx: EmulatorContext,
  all: GraphStore[],
  target: GraphStore,
  isLagging: (createdAtMs: number) => boolean,
): ClientResult {
  const identity = ctx.identity;
  const tenantId = target.tenant.tenantId;
  const invalidSecret = () =>
    aadError(
      401,
      "invalid_client",
      7000215,
      `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
    );
  const notInDirectory = () =>
    aadError(
      400,
      "unauthorized_client",
      700016,
      `Application with identifier '${clientId}' was not found in the directory '${tenantId}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
    );
  if (clientId === identity.clientId) {
    if (!target.isHome) return { error: notInDirectory() };
    if (!("secret" in credential) || credential.secret !== identity.clientSecret) return { error: invalidSecret() };
    return { objectId: identity.objectId, graphRoles: [...target.settings.identityGraphRoles] };
  }
  const homeStore = all.find((s) => s.appByAppId(clientId));
  const app = homeStore?.appByAppId(clientId);
  if (!homeStore || !app || isLagging(app.createdAtMs)) return { error: notInDirectory() };
  if (homeStore !== target && app.object.signInAudience === "AzureADMyOrg") return { error: notInDirectory() };

  if ("secret" in credential) {
    const now = Date.now();
    const match = (app.object.passwordCredentials as Json[]).find((p) => {
      const issued = homeStore.secrets.get(p.keyId);
      // A secret is usable only once it has replicated ("a new secret is refused for the first seconds").
      return issued?.secretText === credential.secret && !isLagging(issued.createdAtMs);
    });
    if (!match) return { error: invalidSecret() };
    if (Date.parse(match.endDateTime) <= now)
      return { error: aadError(401, "invalid_client", 7000222, `The provided client secret keys for app '${clientId}' are expired.`) };
    if (Date.parse(match.startDateTime) > now) return { error: invalidSecret() };
  } else {
    const checked = ctx.signer.check(credential.assertion, [TOKEN_EXCHANGE_AUDIENCE]);
    if (!checked.ok) return { error: aadError(401, "invalid_client", 700027, `Client assertion failed signature validation or is not valid: ${checked.reason}.`) };
    const { iss, sub, aud } = checked.claims;
    const trusted = (homeStore.federatedCredentials.get(app.object.id) ?? []).some((f) => f.issuer === iss && f.subject === sub && (f.audiences as string[]).includes(aud));
    if (!trusted)
      return {
        error: aadError(
          400,
          "invalid_request",
          70021,
          `No matching federated identity record found for presented assertion. Assertion Issuer: '${iss}'. Assertion Subject: '${sub}'. Assertion Audience: '${aud}'.`,
        ),
      };
  }
  const sp = target.spByAppId(clientId);
  if (!sp)
    return {
      error: aadError(400, "invalid_client", 7000229, `The client application ${clientId} is missing service principal in the tenant ${tenantId}.`),
    };
  const graphRoles = (target.appRoleAssignments.get(sp.object.id) ?? []).filter((a) => a.resourceAppId === MICROSOFT_GRAPH_APP_ID).map((a) => a.value);
  return { objectId: sp.object.id, graphRoles };
}
