// The Microsoft Graph v1.0 emulator and, on the same HTTPS server, the Entra ID token endpoint it trusts (the
// local AZURE_AUTHORITY_HOST). Graph requests need a bearer token issued for Graph's audience; a Key Vault
// token is refused, as the real Graph does.
//
// Tenants (issue 10): the home tenant (the app's identity, its Key Vault) and the others of
// EmulatorContext.otherTenants (SANDBOX_CUSTOMER_TENANT), each its own directory; a token's `tid` picks the
// directory a Graph request acts in. On the same server (graph/token.ts): the token endpoint per tenant (client
// secret or a client assertion a federated credential trusts), the App Service managed identity endpoint
// (/msi/token, IDENTITY_ENDPOINT + IDENTITY_HEADER), and /{tenant}/adminconsent for multi-tenant apps.
//
// With EmulatorContext.provisioner (startEmulators: SANDBOX_PROVISIONER) the home directory also holds the
// multi-tenant provisioner application with its federated credential for the sandbox identity; reset keeps it.
//
// Admin API: the common /_emulator/{state,faults,requests,reset} (server.ts; state holds the other
// directories under `tenants`, by tenant id), plus
//   GET   /_emulator/tenant   tenant settings: {identityGraphRoles, passwordLifetimeMaxDays}
//   PATCH /_emulator/tenant   merge tenant settings (reset restores the defaults)
// Fault `replicationLagMs` hides new applications, service principals and grants from reads, and makes
// service principal creation for a new app fail with NoBackingApplicationObject, until the lag has passed;
// with `replicationLagOnWrites` writes to such an object 404 too. Fault `staleReadMs` makes reads return an
// updated object as it was before the update for that long. Both are off by default (routes.ts).
import { AUDIENCES, EmulatorContext } from "./context";
import { EmulatorRequest, EmulatorResponse, EmulatorServer } from "./server";
import { bearerToken } from "./jwtSigner";
import { graphErrorBody } from "./graph/errors";
import { Caller, createGraphApi, GraphCall } from "./graph/routes";
import { GraphStore, TenantSettings } from "./graph/store";
import { originOf, registerTokenEndpoint } from "./graph/token";

export type { TenantSettings } from "./graph/store";
export { MICROSOFT_GRAPH_APP_ID, EXCHANGE_ONLINE_APP_ID, SEEDED_SP_IDS, DEFAULT_IDENTITY_GRAPH_ROLES } from "./graph/seed";

export interface GraphEmulatorOptions {
  /** Initial tenant settings (also what POST /_emulator/reset restores). */
  tenant?: Partial<TenantSettings>;
}

/** One directory of the sandbox: its objects and the Graph API over them. */
export interface GraphDirectory {
  store: GraphStore;
  api: ReturnType<typeof createGraphApi>;
}

export function createGraphEmulator(ctx: EmulatorContext, options: GraphEmulatorOptions = {}): EmulatorServer {
  // The home tenant first; a token's `tid` picks the directory a Graph request acts in (issue 10).
  // The home directory holds the provisioner application when the context names one (startEmulators does).
  const store = new GraphStore(ctx.identity, options.tenant, undefined, ctx.provisioner);
  const stores = [store, ...(ctx.otherTenants ?? []).map((tenant) => new GraphStore(ctx.identity, options.tenant, tenant))];
  const server = new EmulatorServer({
    name: "graph",
    tls: ctx.tls,
    // The home directory's objects at the top level (as before there were other tenants), the others by tenant id.
    state: () => ({ ...store.state(), tenants: Object.fromEntries(stores.slice(1).map((s) => [s.tenant.tenantId, s.state()])) }),
    reset: () => stores.forEach((s) => s.reset()),
    errorBody: (_status, code, message) => graphErrorBody(code, message),
    faults: ctx.faults,
  });

  const directories = new Map<string, GraphDirectory>(
    stores.map((directoryStore) => [
      directoryStore.tenant.tenantId,
      {
        store: directoryStore,
        api: createGraphApi({
          store: directoryStore,
          tenantId: directoryStore.tenant.tenantId,
          isLagging: (createdAtMs) => server.isLagging(createdAtMs),
          faults: () => server.faults,
          subRequestFault: (request) => server.faultFor(request),
          onSubRequest: (call, response) =>
            server.requests.push({
              method: call.method,
              path: `/v1.0${call.path}`,
              query: call.query.toString() ? `?${call.query.toString()}` : "",
              body: call.body,
              status: response.status,
              via: "/v1.0/$batch",
            }),
        }),
      },
    ]),
  );
  registerTokenEndpoint(server, ctx, directories);

  const handle = async (req: EmulatorRequest): Promise<EmulatorResponse> => {
    const clientRequestId = header(req, "client-request-id");
    const caller = authenticate(req, ctx, directories);
    const response =
      "status" in caller
        ? caller
        : await directories.get(caller.tenantId)!.api.dispatch({
            method: req.method,
            path: req.path.slice("/v1.0".length) || "/",
            query: req.query,
            headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v.join(", ") : v])),
            body: req.body,
            rawBody: req.rawBody,
            caller,
            origin: originOf(req),
          } satisfies GraphCall);
    // Graph echoes client-request-id and adds request-id to every answer (Graph best practices, "Diagnostics").
    const requestId = (response.body as any)?.error?.innerError?.["request-id"] ?? crypto.randomUUID();
    return {
      ...response,
      headers: { ...(response.headers ?? {}), "request-id": requestId, "client-request-id": clientRequestId ?? requestId, "OData-Version": "4.0" },
    };
  };
  for (const method of ["GET", "POST", "PATCH", "PUT", "DELETE"]) server.route(method, /^\/v1\.0(\/.*)?$/, handle);

  server.route("GET", /^\/_emulator\/tenant$/, () => ({ status: 200, body: store.settings }));
  server.route("PATCH", /^\/_emulator\/tenant$/, (req) => {
    const patch = req.body ?? {};
    const unknown = Object.keys(patch).filter((k) => !(k in store.settings));
    if (unknown.length) return { status: 400, body: { error: `Unknown tenant settings: ${unknown.join(", ")}` } };
    store.settings = { ...store.settings, ...patch };
    return { status: 200, body: store.settings };
  });
  return server;
}

function header(req: EmulatorRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Graph's token check: a bearer token signed by the tenant, unexpired, for Graph's audience and this tenant;
 * otherwise 401 InvalidAuthenticationToken with a WWW-Authenticate challenge (Graph errors.md, "401 Unauthorized").
 */
function authenticate(req: EmulatorRequest, ctx: EmulatorContext, directories: Map<string, GraphDirectory>): (Caller & { tenantId: string }) | EmulatorResponse {
  const unauthorized = (message: string): EmulatorResponse => ({
    status: 401,
    headers: {
      "WWW-Authenticate": `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`,
    },
    body: graphErrorBody("InvalidAuthenticationToken", message),
  });
  const token = bearerToken(header(req, "authorization"));
  if (!token) return unauthorized("Access token is empty.");
  const checked = ctx.signer.check(token, AUDIENCES.graph);
  if (!checked.ok) {
    if (/audience/i.test(checked.reason)) return unauthorized("Access token validation failure. Invalid audience.");
    if (/expired/i.test(checked.reason)) return unauthorized("Lifetime validation failed, the token is expired.");
    return unauthorized("Access token validation failure.");
  }
  if (!directories.has(checked.claims.tid)) return unauthorized("Access token validation failure. Invalid issuer or tenant.");
  return {
    tenantId: checked.claims.tid,
    objectId: checked.claims.oid,
    appId: checked.claims.appid,
    roles: new Set(Array.isArray(checked.claims.roles) ? checked.claims.roles : []),
  };
}
