// Exchange Online admin API emulator: the REST transport the ExchangeOnlineManagement v3 module uses,
// `POST /adminapi/beta/{tenantId}/InvokeCommand` with `{"CmdletInput":{"CmdletName","Parameters"}}`,
// answering `{"value":[...]}` (docs/architecture.md, "Exchange Online"). Only the two cmdlets the app
// calls: Get-OrganizationConfig and Set-OrganizationConfig (`EwsEnabled`, `EwsAllowedAppIDs`).
//
// Organizations (issue 10): one per tenant of the sandbox, the home tenant (the app's identity) and each of
// EmulatorContext.otherTenants (SANDBOX_CUSTOMER_TENANT), each with its own organizationConfig, app roles,
// directory roles and initial domain. The URL's tenant (id or initial domain) picks the organization; the
// token must be for that tenant (`tid`), and its `appid` must be the application that organization's roles
// belong to: the app's identity in the home tenant, the provisioner (EmulatorContext.provisioner,
// PROVISIONER_CLIENT_ID) in another one, where an administrator consented to it and assigned it a directory role.
//
// What it checks, as the issue describes Exchange Online (issue 8; the Exchange team's and the
// module's own documentation of app-only access, "App-only authentication for unattended scripts"):
//   - a bearer token from the sandbox token endpoint whose audience is Exchange Online
//     (`https://outlook.office365.com`, its app id, or this emulator's own URL, which the sandbox
//     registers as a servicePrincipalName of the Exchange service principal: see index.ts); else 401;
//   - the URL names a tenant served here (404 otherwise) and the token's `tid` is that tenant (401 otherwise);
//   - the `X-AnchorMailbox: UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@<initial domain>`
//     header (400 without it; assumed: what the real service answers without it is not documented);
//   - the caller is that organization's application and holds the `Exchange.ManageAsApp` application
//     permission there (401 without it: another app, or the right app in another tenant's organization) and an
//     Entra directory role (403 with the app role only): a reader role (Global Reader, ...) for
//     Get-*, Exchange Administrator (or Global Administrator) for Set-*.
//     The app role is kept in this emulator's state rather than read from the token's `roles`
//     claim, so a test can take it away without waiting an hour for the cached token to expire
//     (Entra puts it in the token; the emulator's control stands in for that).
// Set-OrganizationConfig -EwsAllowedAppIDs takes a full list (a MultiValuedProperty replaces the
// whole value: Set-OrganizationConfig.md, MicrosoftDocs/office-docs-powershell). It also accepts an
// object `{Add: [...], Remove: [...]}`, the REST form of PowerShell's `@{Add=...;Remove=...}`
// (assumed shape; the app does not rely on it: it writes the full list and reads it back).
//
// Admin additions to the generic /_emulator API:
//   GET   /_emulator/tenant   the home organization: {organizationConfig, appRoles, directoryRoles, initialDomain}
//   PATCH /_emulator/tenant   merge: {organizationConfig?: {EwsEnabled?, EwsAllowedAppIDs?}, appRoles?, directoryRoles?}
//   ...?tenant=<tenant id or initial domain>   the same for another tenant's organization (404 if not served)
// State (GET /_emulator/state): the home organization's object, plus `tenants`: the other organizations by
// tenant id, each with `appId`, the application its appRoles and directoryRoles belong to.
// A reset restores every organization. Another tenant's organization starts like the home one: EWS enabled,
// empty list, and its application (the provisioner) holding Exchange.ManageAsApp (what its consent assigns)
// and Exchange Administrator (the step its administrator takes by hand: consent cannot assign directory roles).
import type { EmulatorContext, SandboxTenant } from "./context";
import { EmulatorRequest, EmulatorResponse, EmulatorServer } from "./server";
import { bearerToken } from "./jwtSigner";

export const EXCHANGE_ONLINE_RESOURCE = "https://outlook.office365.com";
export const EXCHANGE_ONLINE_APP_ID = "00000002-0000-0ff1-ce00-000000000000";
export const MANAGE_AS_APP = "Exchange.ManageAsApp";
/** The system mailbox every admin API request is anchored to (issue 8, as the EXO v3 module sends it). */
export const ANCHOR_MAILBOX_PREFIX = "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@";
export const SANDBOX_INITIAL_DOMAIN = "sandbox.onmicrosoft.com";

const READER_ROLES = ["Global Reader", "Global Administrator", "Exchange Administrator", "Exchange Recipient Administrator", "Security Reader"];
const WRITER_ROLES = ["Global Administrator", "Exchange Administrator"];

export interface OrganizationConfig {
  /** null: never set (the list has no effect); false: EWS blocked; true: only listed app ids. */
  EwsEnabled: boolean | null;
  EwsAllowedAppIDs: string[];
}

export interface ExchangeTenant {
  organizationConfig: OrganizationConfig;
  /** Application permissions of the sandbox identity on Exchange Online. */
  appRoles: string[];
  /** Entra directory roles assigned to the sandbox identity. */
  directoryRoles: string[];
  initialDomain: string;
}

type ExchangeTenantSeed = Partial<Omit<ExchangeTenant, "organizationConfig">> & { organizationConfig?: Partial<OrganizationConfig> };

export interface ExchangeEmulatorOptions {
  /** Initial home organization (also what POST /_emulator/reset restores). Default: EWS enabled, empty list, role held, Exchange Administrator. */
  tenant?: ExchangeTenantSeed;
  /**
   * Initial organizations of the other tenants (EmulatorContext.otherTenants), by tenant id; the same defaults,
   * with the tenant's domain as initial domain and `appId` the application whose roles these are (default:
   * EmulatorContext.provisioner's appId).
   */
  tenants?: Record<string, ExchangeTenantSeed & { appId?: string }>;
}

export function defaultExchangeTenant(options: ExchangeEmulatorOptions = {}, seed: ExchangeTenantSeed | undefined = options.tenant, initialDomain = SANDBOX_INITIAL_DOMAIN): ExchangeTenant {
  const { appRoles, directoryRoles, initialDomain: domain, organizationConfig } = seed ?? {};
  return {
    appRoles: appRoles ?? [MANAGE_AS_APP],
    directoryRoles: directoryRoles ?? ["Exchange Administrator"],
    initialDomain: domain ?? initialDomain,
    organizationConfig: { EwsEnabled: true, EwsAllowedAppIDs: [], ...organizationConfig },
  };
}

/** One tenant's Exchange organization, and the application its roles belong to. */
interface Organization {
  tenantId: string;
  /** The app id that appRoles and directoryRoles describe (the app's identity at home, the provisioner elsewhere). */
  appId: string | undefined;
  seed: () => ExchangeTenant;
  tenant: ExchangeTenant;
}

/** Exchange's REST errors: `{"error":{"code","message"}}`. */
const fail = (status: number, code: string, message: string): EmulatorResponse => ({ status, body: { error: { code, message } } });

export function createExchangeEmulator(ctx: EmulatorContext, options: ExchangeEmulatorOptions = {}): EmulatorServer {
  const home: Organization = { tenantId: ctx.identity.tenantId, appId: ctx.identity.clientId, seed: () => defaultExchangeTenant(options), tenant: defaultExchangeTenant(options) };
  const others: Organization[] = (ctx.otherTenants ?? []).map((t: SandboxTenant) => {
    const seed = options.tenants?.[t.tenantId];
    const make = () => defaultExchangeTenant(options, seed, t.domain);
    // The provisioner is read when a request comes: startEmulators names it on the context before any request.
    return { tenantId: t.tenantId, appId: seed?.appId, seed: make, tenant: make() };
  });
  const organizations = [home, ...others];
  const appIdOf = (org: Organization) => (org === home ? org.appId : (org.appId ?? ctx.provisioner?.appId));
  /** An organization by tenant id or initial domain, as the admin API's URL names it. */
  const organizationOf = (name: string) => organizations.find((o) => o.tenantId === name.toLowerCase() || o.tenant.initialDomain === name.toLowerCase());
  const clone = (org: Organization): ExchangeTenant => JSON.parse(JSON.stringify(org.tenant));
  const server: EmulatorServer = new EmulatorServer({
    name: "exchange",
    tls: ctx.tls,
    state: () => ({ ...clone(home), tenants: Object.fromEntries(others.map((o) => [o.tenantId, { ...clone(o), appId: appIdOf(o) ?? null }])) }),
    reset: () => {
      for (const org of organizations) org.tenant = org.seed();
    },
    errorBody: (_status, code, message) => ({ error: { code, message } }),
    faults: ctx.faults,
  });
  const audiences = () => [EXCHANGE_ONLINE_RESOURCE, `${EXCHANGE_ONLINE_RESOURCE}/`, EXCHANGE_ONLINE_APP_ID, `https://localhost:${server.port}`];

  /** The organization a control request names with `?tenant=` (the home one without it). */
  const controlled = (req: EmulatorRequest): Organization | EmulatorResponse => {
    const name = req.query.get("tenant");
    if (!name) return home;
    return organizationOf(name) ?? { status: 404, body: { error: `Tenant ${name} is not served here.` } };
  };
  server.route("GET", /^\/_emulator\/tenant$/, (req) => {
    const org = controlled(req);
    return "status" in org ? org : { status: 200, body: clone(org) };
  });
  server.route("PATCH", /^\/_emulator\/tenant$/, (req) => {
    const org = controlled(req);
    if ("status" in org) return org;
    const tenant = org.tenant;
    const body = req.body ?? {};
    const config = body.organizationConfig ?? {};
    const list = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string");
    if (
      (body.appRoles !== undefined && !list(body.appRoles)) ||
      (body.directoryRoles !== undefined && !list(body.directoryRoles)) ||
      (config.EwsAllowedAppIDs !== undefined && !list(config.EwsAllowedAppIDs)) ||
      (config.EwsEnabled !== undefined && config.EwsEnabled !== null && typeof config.EwsEnabled !== "boolean")
    )
      return { status: 400, body: { error: "appRoles, directoryRoles, organizationConfig.EwsAllowedAppIDs: string arrays; organizationConfig.EwsEnabled: boolean or null" } };
    org.tenant = {
      ...tenant,
      ...(body.appRoles ? { appRoles: body.appRoles } : {}),
      ...(body.directoryRoles ? { directoryRoles: body.directoryRoles } : {}),
      organizationConfig: { ...tenant.organizationConfig, ...config },
    };
    return { status: 200, body: clone(org) };
  });

  server.route("POST", /^\/adminapi\/beta\/(?<tenant>[^/]+)\/InvokeCommand$/, (req: EmulatorRequest) => {
    const token = bearerToken(req.headers.authorization);
    if (!token) return fail(401, "Unauthorized", "The request has no bearer token.");
    const checked = ctx.signer.check(token, audiences());
    if (!checked.ok) return fail(401, "Unauthorized", checked.reason);
    const org = organizationOf(req.params.tenant);
    if (!org) return fail(404, "NotFound", `Tenant ${req.params.tenant} is not served here.`);
    const tenant = org.tenant;
    if (checked.claims.tid !== org.tenantId) return fail(401, "Unauthorized", "The token is for another tenant.");
    const anchor = String(req.headers["x-anchormailbox"] ?? "");
    if (anchor.toLowerCase() !== `${ANCHOR_MAILBOX_PREFIX}${tenant.initialDomain}`.toLowerCase())
      return fail(400, "BadRequest", `X-AnchorMailbox must be ${ANCHOR_MAILBOX_PREFIX}<initial domain>.`);
    // The app role is held by one application in this organization: the app's identity at home, the provisioner elsewhere.
    const appId = appIdOf(org);
    if (!appId || checked.claims.appid !== appId || !tenant.appRoles.includes(MANAGE_AS_APP))
      return fail(401, "Unauthorized", `The application lacks the ${MANAGE_AS_APP} permission on Office 365 Exchange Online.`);

    const input = req.body?.CmdletInput;
    const name = typeof input?.CmdletName === "string" ? input.CmdletName : "";
    const parameters: Record<string, unknown> = input?.Parameters && typeof input.Parameters === "object" ? input.Parameters : {};
    const holds = (roles: string[]) => tenant.directoryRoles.some((r) => roles.includes(r));

    if (name === "Get-OrganizationConfig") {
      if (!holds(READER_ROLES)) return fail(403, "Forbidden", "The caller holds no Exchange role that may run Get-OrganizationConfig.");
      const c = tenant.organizationConfig;
      return {
        status: 200,
        body: {
          "@odata.context": `${`https://localhost:${server.port}`}/adminapi/beta/${req.params.tenant}/$metadata#Collection(Exchange.GenericHashTable)`,
          value: [{ Name: tenant.initialDomain.split(".")[0], Identity: tenant.initialDomain, Guid: org.tenantId, EwsEnabled: c.EwsEnabled, EwsAllowedAppIDs: [...c.EwsAllowedAppIDs] }],
        },
      };
    }
    if (name === "Set-OrganizationConfig") {
      if (!holds(WRITER_ROLES)) return fail(403, "Forbidden", "The caller holds no Exchange role that may run Set-OrganizationConfig.");
      const unknown = Object.keys(parameters).filter((k) => !["EwsEnabled", "EwsAllowedAppIDs", "Confirm"].includes(k));
      if (unknown.length) return fail(400, "BadRequest", `Parameters not supported by this emulator: ${unknown.join(", ")}`);
      const next = { ...tenant.organizationConfig, EwsAllowedAppIDs: [...tenant.organizationConfig.EwsAllowedAppIDs] };
      if ("EwsEnabled" in parameters) {
        if (typeof parameters.EwsEnabled !== "boolean" && parameters.EwsEnabled !== null) return fail(400, "BadRequest", "EwsEnabled must be true, false or null.");
        next.EwsEnabled = parameters.EwsEnabled as boolean | null;
      }
      if ("EwsAllowedAppIDs" in parameters) {
        const value = parameters.EwsAllowedAppIDs;
        const ids = (v: unknown): string[] | undefined => (v === undefined ? [] : typeof v === "string" ? [v] : Array.isArray(v) && v.every((x) => typeof x === "string") ? v : undefined);
        if (Array.isArray(value) || value === null) next.EwsAllowedAppIDs = (value ?? []) as string[];
        else if (value && typeof value === "object") {
          const add = ids((value as Record<string, unknown>).Add);
          const remove = ids((value as Record<string, unknown>).Remove);
          if (!add || !remove) return fail(400, "BadRequest", "EwsAllowedAppIDs: Add and Remove must be strings or string arrays.");
          next.EwsAllowedAppIDs = [...next.EwsAllowedAppIDs.filter((id) => !remove.some((r) => r.toLowerCase() === id.toLowerCase())), ...add];
        } else return fail(400, "BadRequest", "EwsAllowedAppIDs must be a list of application ids or {Add, Remove}.");
        if (next.EwsAllowedAppIDs.some((id) => !/^[0-9a-f-]{36}$/i.test(id))) return fail(400, "BadRequest", "EwsAllowedAppIDs holds a value that is not an application id.");
        // A MultiValuedProperty holds each value once.
        next.EwsAllowedAppIDs = next.EwsAllowedAppIDs.filter((id, i, all) => all.findIndex((x) => x.toLowerCase() === id.toLowerCase()) === i);
      }
      org.tenant = { ...tenant, organizationConfig: next };
      return { status: 200, body: { value: [] } };
    }
    return fail(400, "BadRequest", `The cmdlet '${name}' is not served by this emulator.`);
  });

  return server;
}

/** How many Get-OrganizationConfig calls the emulator served (what the sweep test counts). */
export function organizationReads(server: EmulatorServer): number {
  return server.requests.filter((r) => r.status === 200 && (r.body as { CmdletInput?: { CmdletName?: string } } | undefined)?.CmdletInput?.CmdletName === "Get-OrganizationConfig").length;
}
