// The Entra ID (v2.0) endpoints MSAL calls when `authorityHost` is this emulator and instance discovery is
// off (docs/architecture.md, "Local stack"): the tenant's OpenID configuration, its signing
// keys, and the token endpoint for the client-credentials grant.
//
// Errors are shaped like Entra's OAuth errors: `{error, error_description: "AADSTSnnnn: ...", error_codes,
// timestamp, trace_id, correlation_id, error_uri}` (Microsoft identity platform, "AADSTS error codes" /
// reference-error-codes.md; v2-oauth2-client-creds-grant-flow.md "Error response").
import { randomUUID } from "node:crypto";
import { AUDIENCES, EmulatorContext } from "../context";
import type { EmulatorRequest, EmulatorResponse, EmulatorServer } from "../server";
import { GraphStore, Json } from "./store";
import { MICROSOFT_GRAPH_APP_ID } from "./seed";

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

export function registerTokenEndpoint(server: EmulatorServer, ctx: EmulatorContext, store: GraphStore): void {
  const tenantId = ctx.identity.tenantId;
  const knownTenant = (tenant: string) => tenant.toLowerCase() === tenantId || tenant.toLowerCase() === "sandbox.onmicrosoft.com";
  const unknownTenant = (tenant: string, error: string) =>
    // AADSTS90002 "Tenant '{tenant}' not found" (reference-error-codes.md).
    aadError(400, error, 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);

  // OpenID Connect discovery (v2-protocols-oidc.md "Find your app's OpenID configuration document URI").
  // MSAL reads authorization_endpoint, token_endpoint, end_session_endpoint and issuer from it.
  server.route("GET", /^\/(?<tenant>[^/]+)\/v2\.0\/\.well-known\/openid-configuration$/, (req) => {
    if (!knownTenant(req.params.tenant)) return unknownTenant(req.params.tenant, "invalid_tenant");
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
    if (!knownTenant(req.params.tenant)) return unknownTenant(req.params.tenant, "invalid_tenant");
    const jwk = ctx.signer.publicKey.export({ format: "jwk" }) as Json;
    return { status: 200, body: { keys: [{ kty: "RSA", use: "sig", kid: ctx.signer.keyId, n: jwk.n, e: jwk.e }] } };
  });

  // Token endpoint, client-credentials grant with a shared secret (v2-oauth2-client-creds-grant-flow.md).
  server.route("POST", /^\/(?<tenant>[^/]+)\/oauth2\/v2\.0\/token$/, (req) => {
    if (!knownTenant(req.params.tenant)) return unknownTenant(req.params.tenant, "invalid_request");
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
    if (!clientSecret)
      return aadError(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");

    const scopes = (form.get("scope") ?? "").split(/\s+/).filter((s) => s && !["openid", "profile", "offline_access", "email"].includes(s));
    if (scopes.length !== 1 || !scopes[0].endsWith("/.default"))
      return aadError(
        400,
        "invalid_scope",
        1002012,
        `The provided value for scope ${form.get("scope") ?? ""} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
      );
    const resource = resolveResource(scopes[0].slice(0, -"/.default".length), store, ctx.resourceAliases);
    if (!resource)
      return aadError(
        400,
        "invalid_resource",
        500011,
        `The resource principal named ${scopes[0].slice(0, -"/.default".length)} was not found in the tenant named ${tenantId}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.`,
      );

    const client = authenticateClient(clientId, clientSecret, ctx, store, (ms) => server.isLagging(ms));
    if ("error" in client) return client.error;

    const roles = resource.appId === MICROSOFT_GRAPH_APP_ID ? client.graphRoles : [];
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
 * Checks the client's id and secret: the sandbox identity (SANDBOX_IDENTITY), or an application registered in
 * this emulator with a password from addPassword (so a rotated Creatio secret can be proved to work, and an
 * expired or removed one to fail, as with Entra).
 */
function authenticateClient(clientId: string, secret: string, ctx: EmulatorContext, store: GraphStore, isLagging: (createdAtMs: number) => boolean): ClientResult {
  const identity = ctx.identity;
  const tenantId = identity.tenantId;
  const invalidSecret = () =>
    aadError(
      401,
      "invalid_client",
      7000215,
      `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
    );
  if (clientId === identity.clientId) {
    if (secret !== identity.clientSecret) return { error: invalidSecret() };
    return { objectId: identity.objectId, graphRoles: [...store.settings.identityGraphRoles] };
  }
  const app = store.appByAppId(clientId);
  if (!app || isLagging(app.createdAtMs))
    return {
      error: aadError(
        400,
        "unauthorized_client",
        700016,
        `Application with identifier '${clientId}' was not found in the directory '${tenantId}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
      ),
    };
  const now = Date.now();
  const match = (app.object.passwordCredentials as Json[]).find((p) => {
    const issued = store.secrets.get(p.keyId);
    // A secret is usable only once it has replicated ("a new secret is refused for the first seconds").
    return issued?.secretText === secret && !isLagging(issued.createdAtMs);
  });
  if (!match) return { error: invalidSecret() };
  if (Date.parse(match.endDateTime) <= now)
    return { error: aadError(401, "invalid_client", 7000222, `The provided client secret keys for app '${clientId}' are expired.`) };
  if (Date.parse(match.startDateTime) > now) return { error: invalidSecret() };
  const sp = store.spByAppId(clientId);
  if (!sp)
    return {
      error: aadError(400, "invalid_client", 7000229, `The client application ${clientId} is missing service principal in the tenant ${tenantId}.`),
    };
  return { objectId: sp.object.id, graphRoles: [] };
}
