// Microsoft Graph v1.0, the subset the product calls: applications (+ addPassword/removePassword),
// servicePrincipals, oauth2PermissionGrants, policies/authorizationPolicy and $batch. Each behaviour cites the
// Graph docs page it follows (microsoft-graph-docs-contrib, api-reference/v1.0/api/<page>).
//
// Routing is our own (not EmulatorServer's) so that $batch sends every sub-request through the same table.
import { randomUUID } from "node:crypto";
import type { EmulatorResponse, FaultSettings } from "../server";
import { badRequest, forbidden, GraphError, graphErrorBody, notFound } from "./errors";
import { ALT_KEY, matches, parseFilter, parseSelect, project, unquote } from "./odata";
import { graphNow, GraphStore, Json, mergePatch, newApplication, newGrantId, newSecretText, newServicePrincipal, Stored } from "./store";

export interface Caller {
  /** Object id of the calling service principal (the token's `oid`). */
  objectId: string;
  appId: string;
  /** App roles from the token's `roles` claim. */
  roles: Set<string>;
}

export interface GraphCall {
  method: string;
  /** Path after `/v1.0`, percent-decoded, without the query string. */
  path: string;
  query: URLSearchParams;
  /** Header names in lower case. */
  headers: Record<string, string | undefined>;
  body: unknown;
  rawBody: string;
  caller: Caller;
  /** https://host:port the caller used; for @odata.context and nextLink. */
  origin: string;
}

export interface GraphApiOptions {
  store: GraphStore;
  tenantId: string;
  /** True while an object created at that time is hidden by injected replication lag. */
  isLagging: (createdAtMs: number) => boolean;
  /** The faults in force (replicationLagOnWrites, staleReadMs, removePasswordUnknownKeyStatus). Default: none. */
  faults?: () => Pick<FaultSettings, "replicationLagOnWrites" | "staleReadMs" | "removePasswordUnknownKeyStatus">;
  /** An injected fault for a `$batch` sub-request ("METHOD /v1.0/path"), if any. */
  subRequestFault?: (request: string) => EmulatorResponse | undefined;
  /** Called for each `$batch` sub-request once answered, for the request log. */
  onSubRequest?: (call: GraphCall, response: EmulatorResponse) => void;
}

type Handler = (call: GraphCall, params: Record<string, string>) => EmulatorResponse | Promise<EmulatorResponse>;

const APP_READ_ROLES = ["Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
const OWNED_BY = "Application.ReadWrite.OwnedBy";
const GRANT_READ_ROLES = ["DelegatedPermissionGrant.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
const MAX_BATCH = 20;

// Writable properties (application.md, serviceprincipal.md "Properties"); read-only ones are refused.
const APP_WRITABLE = new Set([
  "displayName", "uniqueName", "description", "notes", "signInAudience", "web", "spa", "publicClient", "requiredResourceAccess",
  "identifierUris", "tags", "api", "appRoles", "info", "optionalClaims", "groupMembershipClaims", "isFallbackPublicClient",
  "isDeviceOnlyAuthSupported", "serviceManagementReference", "tokenEncryptionKeyId", "parentalControlSettings", "defaultRedirectUri",
  "keyCredentials", "addIns",
]);
const APP_READ_ONLY = new Set(["id", "appId", "createdDateTime", "publisherDomain", "deletedDateTime", "applicationTemplateId", "disabledByMicrosoftStatus", "verifiedPublisher"]);
const SP_WRITABLE = new Set([
  "appId", "accountEnabled", "appRoleAssignmentRequired", "tags", "notes", "description", "notificationEmailAddresses",
  "preferredSingleSignOnMode", "loginUrl", "logoutUrl", "homepage", "replyUrls", "displayName", "alternativeNames", "servicePrincipalNames",
]);
const SIGN_IN_AUDIENCES = ["AzureADMyOrg", "AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount"];

export function createGraphApi(options: GraphApiOptions) {
  const { store, tenantId, isLagging } = options;
  const routes: { method: string; pattern: RegExp; handler: Handler }[] = [];
  const route = (method: string, pattern: string, handler: Handler) => routes.push({ method, pattern: new RegExp(`^${pattern}$`), handler });

  // ---------- helpers ----------
  const visible = (s: Stored<Json>) => !isLagging(s.createdAtMs);
  const faults = () => options.faults?.() ?? { replicationLagOnWrites: false, staleReadMs: 0, removePasswordUnknownKeyStatus: 400 as const };
  /**
   * Eventual consistency beyond creation ("Designing for eventual consistency for Microsoft Entra",
   * devblogs.microsoft.com/identity: a read served by a replica that has not seen a write yet returns
   * the object as it was, and a write right after a create can reach a replica that does not know the
   * object). Both off by default, so tests without these faults keep their meaning.
   */
  const view = (s: Stored<Json>): Json => (s.stale && Date.now() < s.stale.untilMs ? s.stale.object : s.object);
  const update = (s: Stored<Json>, next: Json) => {
    const staleMs = faults().staleReadMs;
    if (staleMs > 0) s.stale = { object: view(s), untilMs: Date.now() + staleMs };
    s.object = next;
  };
  const writable = (s: Stored<Json> | undefined, id: string): Stored<Json> => {
    if (!s || (faults().replicationLagOnWrites && !visible(s))) throw notFound(id);
    return s;
  };
  const has = (c: Caller, ...roles: string[]) => roles.some((r) => c.roles.has(r));
  const owns = (c: Caller, s: Stored<Json>) => c.roles.has(OWNED_BY) && s.owners.has(c.objectId);
  const canReadApp = (c: Caller, s: Stored<Json>) => has(c, ...APP_READ_ROLES) || owns(c, s);
  const canWriteApp = (c: Caller, s: Stored<Json>) => has(c, "Application.ReadWrite.All") || owns(c, s);
  const canCreateApp = (c: Caller) => has(c, "Application.ReadWrite.All", OWNED_BY, "AppRegistration.Create");
  const context = (call: GraphCall, fragment: string) => `${call.origin}/v1.0/$metadata#${fragment}`;
  const created = (call: GraphCall, set: string, object: Json, location: string): EmulatorResponse => ({
    status: 201,
    headers: { Location: `${call.origin}/v1.0/${location}` },
    body: { "@odata.context": context(call, `${set}/$entity`), ...object },
  });
  const noContent = (): EmulatorResponse => ({ status: 204 });
  const prefersCreate = (call: GraphCall) => /(^|[,;\s])create-if-missing($|[,;\s])/i.test(call.headers["prefer"] ?? "");

  function jsonBody(call: GraphCall, required = true): Json {
    if (call.rawBody.trim() && call.body === undefined)
      // Graph's answer to a body that is not JSON.
      throw new GraphError(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.");
    if (call.body === undefined || call.body === null) {
      if (required) throw new GraphError(400, "BadRequest", "Empty Payload. JSON content expected.");
      return {};
    }
    if (typeof call.body !== "object" || Array.isArray(call.body)) throw badRequest("The request body must be a JSON object.");
    return call.body as Json;
  }

  function listResponse(call: GraphCall, set: string, items: Json[], sample: Json, resource: string): EmulatorResponse {
    const select = parseSelect(call.query.get("$select"), sample, resource);
    const top = call.query.get("$top");
    const skip = Number(call.query.get("$skiptoken") ?? "0") || 0;
    let page = items.slice(skip);
    let nextLink: string | undefined;
    if (top !== null) {
      const n = Number(top);
      if (!Number.isInteger(n) || n < 1 || n > 999) throw badRequest(`Invalid page size specified: '${top}'. Must be between 1 and 999 inclusive.`);
      if (page.length > n) {
        const next = new URLSearchParams(call.query);
        next.set("$skiptoken", String(skip + n));
        nextLink = `${call.origin}/v1.0${call.path}?${next.toString()}`;
      }
      page = page.slice(0, n);
    }
    const fragment = select ? `${set}(${select.join(",")})` : set;
    return {
      status: 200,
      body: { "@odata.context": context(call, fragment), ...(nextLink ? { "@odata.nextLink": nextLink } : {}), value: page.map((o) => project(o, select)) },
    };
  }

  function entityResponse(call: GraphCall, set: string, object: Json, resource: string): EmulatorResponse {
    const select = parseSelect(call.query.get("$select"), object, resource);
    const fragment = select ? `${set}(${select.join(",")})/$entity` : `${set}/$entity`;
    return { status: 200, body: { "@odata.context": context(call, fragment), ...project(object, select) } };
  }

  function checkProperties(body: Json, writable: Set<string>, readOnly: Set<string>, type: string) {
    for (const key of Object.keys(body)) {
      if (key.startsWith("@odata.")) continue;
      if (key === "passwordCredentials")
        // application-upsert.md / application-update.md: "Using PATCH to set passwordCredential is not supported.
        // Use the addPassword and removePassword methods".
        throw badRequest(`Property 'passwordCredentials' cannot be set on '${type}'; use the addPassword and removePassword methods.`);
      if (readOnly.has(key)) throw badRequest(`Property '${key}' is read-only and cannot be set.`);
      if (!writable.has(key)) throw badRequest(`Property '${key}' does not exist on type 'microsoft.graph.${type}'.`);
    }
  }

  function invalidValue(property: string, resource: string, detail?: string): GraphError {
    // The directory's wording for a rejected value: "Invalid value specified for property 'x' of resource 'Y'."
    return badRequest(`Invalid value specified for property '${property}' of resource '${resource}'.${detail ? ` ${detail}` : ""}`, [
      { code: "InvalidValue", message: detail ?? `Invalid value for '${property}'.`, target: property },
    ]);
  }

  function validateApplication(body: Json, creating: boolean, existing?: Json) {
    checkProperties(body, APP_WRITABLE, APP_READ_ONLY, "application");
    // displayName is required on create (application-post-applications.md; application-upsert.md).
    if (creating && (typeof body.displayName !== "string" || !body.displayName.trim()))
      throw badRequest("Property 'displayName' is required and cannot be null or empty.", [{ code: "Required", message: "displayName is required", target: "displayName" }]);
    if ("displayName" in body && (typeof body.displayName !== "string" || !body.displayName.trim() || body.displayName.length > 256))
      throw invalidValue("displayName", "Application");
    if ("uniqueName" in body && existing?.uniqueName && body.uniqueName !== existing.uniqueName)
      // application.md: uniqueName "can only be set when creating the application, and it is immutable".
      throw badRequest("Property 'uniqueName' is immutable once set.");
    if ("signInAudience" in body && !SIGN_IN_AUDIENCES.includes(body.signInAudience)) throw invalidValue("signInAudience", "Application");
    for (const kind of ["web", "spa", "publicClient"] as const) {
      const uris = body[kind]?.redirectUris;
      if (uris === undefined) continue;
      if (!Array.isArray(uris)) throw invalidValue("redirectUris", "Application");
      for (const uri of uris) if (!validRedirectUri(uri, kind)) throw invalidValue("redirectUris", "Application", `'${uri}' is not a valid redirect URI.`);
    }
    for (const listProp of ["identifierUris", "tags"]) {
      if (listProp in body && (!Array.isArray(body[listProp]) || body[listProp].some((v: unknown) => typeof v !== "string"))) throw invalidValue(listProp, "Application");
    }
    if ("requiredResourceAccess" in body) validateRequiredResourceAccess(body.requiredResourceAccess);
  }

  // Redirect URI restrictions (entra-docs reply-url.md): absolute, https, or http only for localhost;
  // public clients may use custom schemes.
  function validRedirectUri(uri: unknown, kind: string): boolean {
    if (typeof uri !== "string" || uri.length > 256) return false;
    let parsed: URL;
    try {
      parsed = new URL(uri);
    } catch {
      return false;
    }
    if (parsed.hash) return false;
    if (kind === "publicClient") return true;
    return parsed.protocol === "https:" || (parsed.protocol === "http:" && ["localhost", "127.0.0.1"].includes(parsed.hostname));
  }

  // requiredResourceAccess: each resourceAccess id must be a delegated scope (type Scope) or app role (type Role)
  // of the resource's service principal (requiredresourceaccess.md, resourceaccess.md).
  function validateRequiredResourceAccess(rra: unknown) {
    if (!Array.isArray(rra)) throw invalidValue("requiredResourceAccess", "Application");
    for (const entry of rra) {
      if (typeof entry !== "object" || !entry || typeof entry.resourceAppId !== "string" || !Array.isArray(entry.resourceAccess))
        throw invalidValue("requiredResourceAccess", "Application");
      const resource = store.spByAppId(entry.resourceAppId);
      if (!resource) throw invalidValue("requiredResourceAccess", "Application", `No service principal for resourceAppId '${entry.resourceAppId}' in this tenant.`);
      for (const access of entry.resourceAccess) {
        const list: Json[] = access?.type === "Scope" ? resource.object.oauth2PermissionScopes : access?.type === "Role" ? resource.object.appRoles : [];
        if (!["Scope", "Role"].includes(access?.type)) throw invalidValue("resourceAccess", "Application", `Type '${access?.type}' must be 'Scope' or 'Role'.`);
        if (!list.some((p) => p.id === access.id))
          throw invalidValue("resourceAccess", "Application", `'${access.id}' is not a ${access.type === "Scope" ? "delegated permission (oauth2PermissionScope)" : "app role"} of '${resource.object.displayName}' (${entry.resourceAppId}).`);
      }
    }
  }

  function appByKey(key: string, value: string): Stored<Json> | undefined {
    if (key === "appId") return store.appByAppId(value);
    if (key === "uniqueName") return store.appByUniqueName(value);
    throw badRequest(`'${key}' is not an alternate key of 'microsoft.graph.application'; use appId or uniqueName.`);
  }

  /** The application a read addresses (hidden while lagging; 403 when the caller may not read it). */
  function appForRead(call: GraphCall, params: Record<string, string>): Stored<Json> {
    const stored = params.id !== undefined ? store.applications.get(params.id) : appByKey(params.key, unquote(params.value));
    if (!stored || !visible(stored)) throw notFound(params.id ?? unquote(params.value));
    if (!canReadApp(call.caller, stored)) throw forbidden();
    return stored;
  }

  /** The application a write addresses: writes reach the object even while reads lag, unless replicationLagOnWrites. */
  function appForWrite(call: GraphCall, params: Record<string, string>): Stored<Json> {
    const stored = writable(params.id !== undefined ? store.applications.get(params.id) : appByKey(params.key, unquote(params.value)), params.id ?? unquote(params.value));
    if (!canWriteApp(call.caller, stored)) throw forbidden();
    return stored;
  }

  function createApplication(call: GraphCall, body: Json): Stored<Json> {
    if (!canCreateApp(call.caller)) throw forbidden();
    if (body.uniqueName !== undefined && body.uniqueName !== null) {
      if (typeof body.uniqueName !== "string" || !body.uniqueName) throw invalidValue("uniqueName", "Application");
      if (store.appByUniqueName(body.uniqueName)) throw conflict("uniqueName");
    }
    const object = newApplication(body);
    // The caller becomes an owner of what it creates (Application.ReadWrite.OwnedBy: permissions-reference.md).
    const stored: Stored<Json> = { object, createdAtMs: Date.now(), owners: new Set([call.caller.objectId]) };
    store.applications.set(object.id, stored);
    return stored;
  }

  function conflict(property: string) {
    return badRequest(`Another object with the same value for property ${property} already exists.`, [
      { code: "ObjectConflict", message: `Another object with the same value for property ${property} already exists.`, target: property },
    ]);
  }

  // ---------- applications ----------
  // application-post-applications.md
  route("POST", "/applications", (call) => {
    const body = jsonBody(call);
    validateApplication(body, true);
    const stored = createApplication(call, body);
    return created(call, "applications", stored.object, `applications/${stored.object.id}`);
  });

  // application-list.md: $filter (eq on appId, uniqueName, displayName, id), $select, $top.
  route("GET", "/applications", (call) => {
    if (!has(call.caller, ...APP_READ_ROLES, OWNED_BY)) throw forbidden();
    const filter = call.query.get("$filter");
    const clauses = filter ? parseFilter(filter, ["appId", "uniqueName", "displayName", "id", "signInAudience"], "application") : [];
    const items = [...store.applications.values()]
      .filter((s) => visible(s) && canReadApp(call.caller, s) && matches(view(s), clauses))
      .map(view);
    return listResponse(call, "applications", items, newApplication({}), "application");
  });

  // application-get.md: by id, or by alternate key appId / uniqueName.
  for (const addr of ["/applications/(?<id>[^/()]+)", `/applications${ALT_KEY}`]) {
    route("GET", addr, (call, params) => entityResponse(call, "applications", view(appForRead(call, params)), "application"));

    // application-update.md; application-upsert.md for PATCH applications(uniqueName='...') with Prefer.
    route("PATCH", addr, (call, params) => {
      const body = jsonBody(call);
      const existing = params.id !== undefined ? store.applications.get(params.id) : appByKey(params.key, unquote(params.value));
      if (!existing) {
        if (params.key === "uniqueName" && prefersCreate(call)) {
          // "If an application object with uniqueName doesn't exist, this method returns 201 Created and a new
          // application object"; the body must contain displayName.
          const uniqueName = unquote(params.value);
          validateApplication({ ...body, uniqueName }, true);
          const stored = createApplication(call, { ...body, uniqueName });
          return created(call, "applications", stored.object, `applications/${stored.object.id}`);
        }
        // Without Prefer: create-if-missing the request is an update: 404 when missing.
        throw notFound(params.id ?? unquote(params.value));
      }
      const stored = appForWrite(call, params);
      validateApplication(body, false, stored.object);
      update(stored, mergePatch(stored.object, body));
      return noContent();
    });

    // application-delete.md. Deleting the app also removes its service principal in the home tenant and that
    // principal's delegated grants. The app goes to the directory's deleted items with its
    // deletedDateTime, restorable for 30 days (directory-deleteditems-restore.md); its issued
    // secrets are kept for a restore (the token endpoint only accepts live apps).
    route("DELETE", addr, (call, params) => {
      const stored = appForWrite(call, params);
      store.applications.delete(stored.object.id);
      store.deletedApplications.set(stored.object.id, { ...stored, object: { ...stored.object, deletedDateTime: graphNow() } });
      const sp = store.spByAppId(stored.object.appId);
      if (sp) {
        store.servicePrincipals.delete(sp.object.id);
        for (const [id, g] of store.grants) if (g.object.clientId === sp.object.id || g.object.resourceId === sp.object.id) store.grants.delete(id);
      }
      return noContent();
    });

    // application-addpassword.md: 200 + passwordCredential with secretText (returned only this once), hint =
    // first 3 characters; endDateTime defaults to start + 2 years. Not idempotent: each call adds a credential.
    route("POST", `${addr}/addPassword`, (call, params) => {
      const stored = appForWrite(call, params);
      const body = jsonBody(call, false);
      const requested: Json = body.passwordCredential ?? {};
      if (typeof requested !== "object" || Array.isArray(requested)) throw invalidValue("passwordCredential", "Application");
      const start = requested.startDateTime ? Date.parse(requested.startDateTime) : Date.now();
      if (Number.isNaN(start)) throw invalidValue("startDateTime", "PasswordCredential");
      const end = requested.endDateTime ? Date.parse(requested.endDateTime) : addYears(start, 2);
      if (Number.isNaN(end)) throw invalidValue("endDateTime", "PasswordCredential");
      if (end <= start) throw invalidValue("endDateTime", "PasswordCredential", "endDateTime must be after startDateTime.");
      const maxDays = store.settings.passwordLifetimeMaxDays;
      if (maxDays !== null && end - start > maxDays * 86_400_000)
        // A tenant app management policy (passwordLifetime restriction: tenantappmanagementpolicy.md) refuses
        // longer secrets; Entra's message, as reported by az CLI users (e.g. CIPP-API PR #1970):
        throw badRequest(`Credential lifetime exceeds the max value allowed as per assigned policy '${APP_MANAGEMENT_POLICY_ID}'.`);
      const secretText = newSecretText();
      const credential = {
        customKeyIdentifier: null,
        displayName: requested.displayName ?? null,
        endDateTime: graphNow(end),
        hint: secretText.slice(0, 3),
        keyId: randomUUID(),
        secretText: null,
        startDateTime: graphNow(start),
      };
      update(stored, { ...stored.object, passwordCredentials: [...stored.object.passwordCredentials, credential] });
      store.secrets.set(credential.keyId, { secretText, createdAtMs: Date.now() });
      return {
        status: 200,
        body: { "@odata.context": context(call, "microsoft.graph.passwordCredential"), ...credential, secretText },
      };
    });

    // application-removepassword.md: body {keyId}; 204.
    route("POST", `${addr}/removePassword`, (call, params) => {
      const stored = appForWrite(call, params);
      const body = jsonBody(call);
      if (typeof body.keyId !== "string") throw badRequest("Property 'keyId' is required.", [{ code: "Required", message: "keyId is required", target: "keyId" }]);
      const credentials = stored.object.passwordCredentials as Json[];
      if (!credentials.some((p) => p.keyId === body.keyId)) {
        // What Graph answers for an unknown keyId is not documented (application-removepassword.md lists
        // only 204; no issue or SDK source found), so it is the fault `removePasswordUnknownKeyStatus`:
        // 400 (default: an invalid value in the body), 404, or 204 (idempotent).
        const status = faults().removePasswordUnknownKeyStatus;
        if (status === 204) return noContent();
        if (status === 404) throw new GraphError(404, "Request_ResourceNotFound", `No password credential with keyId '${body.keyId}' on the application.`);
        throw invalidValue("keyId", "PasswordCredential", `No password credential with keyId '${body.keyId}'.`);
      }
      update(stored, { ...stored.object, passwordCredentials: credentials.filter((p) => p.keyId !== body.keyId) });
      store.secrets.delete(body.keyId);
      return noContent();
    });

    // application-post-federatedidentitycredentials.md: {name, issuer, subject, audiences}; 201. At most 20
    // per application; name unique (federatedidentitycredential.md "Properties").
    route("POST", `${addr}/federatedIdentityCredentials`, (call, params) => {
      const stored = appForWrite(call, params);
      const body = jsonBody(call);
      for (const field of ["name", "issuer", "subject"])
        if (typeof body[field] !== "string" || !body[field]) throw badRequest(`Property '${field}' is required.`, [{ code: "Required", message: `${field} is required`, target: field }]);
      if (!Array.isArray(body.audiences) || body.audiences.length !== 1) throw invalidValue("audiences", "FederatedIdentityCredential");
      const list = store.federatedCredentials.get(stored.object.id) ?? [];
      if (list.some((f) => f.name === body.name)) throw conflict("name");
      if (list.length >= 20) throw badRequest("An application can have at most 20 federated identity credentials.");
      const credential = { id: randomUUID(), name: body.name, issuer: body.issuer, subject: body.subject, audiences: [...body.audiences], description: body.description ?? null };
      store.federatedCredentials.set(stored.object.id, [...list, credential]);
      return created(call, `applications('${stored.object.id}')/federatedIdentityCredentials`, credential, `applications/${stored.object.id}/federatedIdentityCredentials/${credential.id}`);
    });
    route("GET", `${addr}/federatedIdentityCredentials`, (call, params) => {
      const stored = appForRead(call, params);
      return { status: 200, body: { "@odata.context": context(call, `applications('${stored.object.id}')/federatedIdentityCredentials`), value: store.federatedCredentials.get(stored.object.id) ?? [] } };
    });
    // federatedidentitycredential-update.md: PATCH by id changes issuer, subject, audiences, description (name
    // is immutable); 204. infra/provisioner.sh corrects a credential with it.
    route("PATCH", `${addr}/federatedIdentityCredentials/(?<ficId>[^/()]+)`, (call, params) => {
      const stored = appForWrite(call, params);
      const body = jsonBody(call);
      const list = store.federatedCredentials.get(stored.object.id) ?? [];
      const existing = list.find((f) => f.id === params.ficId);
      if (!existing) throw new GraphError(404, "Request_ResourceNotFound", `Resource '${params.ficId}' does not exist or one of its queried reference-property objects are not present.`);
      if ("name" in body && body.name !== existing.name) throw badRequest("Property 'name' is read-only and cannot be set.");
      for (const field of ["issuer", "subject"]) if (field in body && (typeof body[field] !== "string" || !body[field])) throw invalidValue(field, "FederatedIdentityCredential");
      if ("audiences" in body && (!Array.isArray(body.audiences) || body.audiences.length !== 1)) throw invalidValue("audiences", "FederatedIdentityCredential");
      const updated = { ...existing, ...Object.fromEntries(["issuer", "subject", "audiences", "description"].filter((k) => k in body).map((k) => [k, structuredClone(body[k])])) };
      store.federatedCredentials.set(stored.object.id, list.map((f) => (f === existing ? updated : f)));
      return noContent();
    });
  }

  // ---------- servicePrincipals ----------
  const canReadSp = (c: Caller, s: Stored<Json>) => has(c, ...APP_READ_ROLES) || owns(c, s);
  const canWriteSp = (c: Caller, s: Stored<Json>) => has(c, "Application.ReadWrite.All") || owns(c, s);

  function validateServicePrincipal(body: Json) {
    checkProperties(body, SP_WRITABLE, new Set(["id", "createdDateTime", "appOwnerOrganizationId", "servicePrincipalType", "deletedDateTime", "appDisplayName"]), "servicePrincipal");
    if ("tags" in body && (!Array.isArray(body.tags) || body.tags.some((t: unknown) => typeof t !== "string"))) throw invalidValue("tags", "ServicePrincipal");
    if ("accountEnabled" in body && typeof body.accountEnabled !== "boolean") throw invalidValue("accountEnabled", "ServicePrincipal");
  }

  function noBackingApplication(appId: string) {
    // Eventual consistency (devblogs.microsoft.com/identity "Designing for eventual consistency for Microsoft
    // Entra"): creating the service principal of a just-created app fails until the app has replicated. Shape:
    // 400 Request_BadRequest with details[0].code NoBackingApplicationObject, target appId.
    const message = `The appId '${appId}' of the service principal does not reference a valid application object.`;
    return badRequest(message, [{ code: "NoBackingApplicationObject", message, target: "appId" }]);
  }

  function createServicePrincipal(call: GraphCall, appId: string, body: Json): Stored<Json> {
    if (store.spByAppId(appId)) throw conflict("servicePrincipalNames");
    const app = store.appByAppId(appId);
    if (app && !canWriteApp(call.caller, app) && !has(call.caller, "Application.ReadWrite.All")) throw forbidden();
    if (!app || !visible(app)) throw noBackingApplication(appId);
    const a = app.object;
    const object = newServicePrincipal({
      appId,
      displayName: a.displayName,
      appDisplayName: a.displayName,
      appDescription: a.description,
      appOwnerOrganizationId: tenantId,
      signInAudience: a.signInAudience,
      replyUrls: [...(a.web?.redirectUris ?? [])],
      servicePrincipalNames: [appId, ...(a.identifierUris ?? [])],
      oauth2PermissionScopes: structuredClone(a.api?.oauth2PermissionScopes ?? []),
      appRoles: structuredClone(a.appRoles ?? []),
      ...body,
    });
    const stored: Stored<Json> = { object, createdAtMs: Date.now(), owners: new Set([call.caller.objectId]) };
    store.servicePrincipals.set(object.id, stored);
    return stored;
  }

  // serviceprincipal-post-serviceprincipals.md: body {appId, ...}; 201.
  route("POST", "/servicePrincipals", (call) => {
    const body = jsonBody(call);
    validateServicePrincipal(body);
    if (typeof body.appId !== "string" || !body.appId) throw badRequest("Property 'appId' is required.", [{ code: "Required", message: "appId is required", target: "appId" }]);
    const stored = createServicePrincipal(call, body.appId, body);
    return created(call, "servicePrincipals", stored.object, `servicePrincipals/${stored.object.id}`);
  });

  // serviceprincipal-list.md
  route("GET", "/servicePrincipals", (call) => {
    if (!has(call.caller, ...APP_READ_ROLES, OWNED_BY)) throw forbidden();
    const filter = call.query.get("$filter");
    const clauses = filter ? parseFilter(filter, ["appId", "displayName", "id", "servicePrincipalType"], "servicePrincipal") : [];
    const items = [...store.servicePrincipals.values()]
      .filter((s) => visible(s) && canReadSp(call.caller, s) && matches(view(s), clauses))
      .map(view);
    return listResponse(call, "servicePrincipals", items, newServicePrincipal({}), "servicePrincipal");
  });

  function spLookup(params: Record<string, string>): Stored<Json> | undefined {
    if (params.id !== undefined) return store.servicePrincipals.get(params.id);
    if (params.key !== "appId") throw badRequest(`'${params.key}' is not an alternate key of 'microsoft.graph.servicePrincipal'; use appId.`);
    return store.spByAppId(unquote(params.value));
  }

  for (const addr of ["/servicePrincipals/(?<id>[^/()]+)", `/servicePrincipals${ALT_KEY}`]) {
    // serviceprincipal-get.md (by id or appId; $select=id,oauth2PermissionScopes is how the product reads scope ids).
    route("GET", addr, (call, params) => {
      const stored = spLookup(params);
      if (!stored || !visible(stored)) throw notFound(params.id ?? unquote(params.value));
      if (!canReadSp(call.caller, stored)) throw forbidden();
      return entityResponse(call, "servicePrincipals", view(stored), "servicePrincipal");
    });

    // serviceprincipal-update.md; serviceprincipal-upsert.md for PATCH servicePrincipals(appId='...') with Prefer.
    route("PATCH", addr, (call, params) => {
      const body = jsonBody(call);
      validateServicePrincipal(body);
      const stored = spLookup(params);
      if (!stored) {
        if (params.key === "appId" && prefersCreate(call)) {
          const appId = unquote(params.value);
          if (body.appId !== undefined && body.appId !== appId) throw invalidValue("appId", "ServicePrincipal");
          const createdSp = createServicePrincipal(call, appId, { ...body, appId });
          return created(call, "servicePrincipals", createdSp.object, `servicePrincipals/${createdSp.object.id}`);
        }
        throw notFound(params.id ?? unquote(params.value));
      }
      writable(stored, params.id ?? unquote(params.value));
      if (!canWriteSp(call.caller, stored)) throw forbidden();
      if (body.appId !== undefined && body.appId !== stored.object.appId) throw badRequest("Property 'appId' is read-only and cannot be set.");
      update(stored, mergePatch(stored.object, body));
      return noContent();
    });

    route("DELETE", addr, (call, params) => {
      const stored = spLookup(params);
      if (!stored) throw notFound(params.id ?? unquote(params.value));
      if (!canWriteSp(call.caller, stored)) throw forbidden();
      store.servicePrincipals.delete(stored.object.id);
      for (const [id, g] of store.grants) if (g.object.clientId === stored.object.id || g.object.resourceId === stored.object.id) store.grants.delete(id);
      return noContent();
    });
  }

  // ---------- directory deleted items (applications only) ----------
  // directory-deleteditems-list.md, -get.md, -restore.md. The service principal is not restored
  // with the app (Entra soft-deletes it separately); onboarding again upserts a new one.
  route("GET", "/directory/deletedItems/microsoft.graph.application", (call) => {
    if (!has(call.caller, ...APP_READ_ROLES, OWNED_BY)) throw forbidden();
    return listResponse(call, "directory/deletedItems/microsoft.graph.application", [...store.deletedApplications.values()].map((s) => s.object), newApplication({}), "application");
  });
  route("GET", "/directory/deletedItems/(?<id>[^/]+)", (call, params) => {
    if (!has(call.caller, ...APP_READ_ROLES, OWNED_BY)) throw forbidden();
    const found = store.deletedApplications.get(params.id!);
    if (!found) throw notFound(params.id!);
    return entityResponse(call, "directory/deletedItems", found.object, "application");
  });
  route("POST", "/directory/deletedItems/(?<id>[^/]+)/restore", (call, params) => {
    const found = store.deletedApplications.get(params.id!);
    if (!found) throw notFound(params.id!);
    if (!canWriteApp(call.caller, found)) throw forbidden();
    if (found.object.uniqueName && store.appByUniqueName(found.object.uniqueName)) throw badRequest(`An application with uniqueName ${found.object.uniqueName} already exists.`);
    store.deletedApplications.delete(params.id!);
    const restored = { ...found, object: { ...found.object, deletedDateTime: null } };
    store.applications.set(params.id!, restored);
    return { status: 200, body: { "@odata.context": context(call, "directoryObjects/$entity"), "@odata.type": "#microsoft.graph.application", ...restored.object } };
  });

  // ---------- oauth2PermissionGrants (delegated permission grants: admin consent) ----------
  const GRANT_KEYS = new Set(["clientId", "consentType", "principalId", "resourceId", "scope"]);

  function visibleSp(id: unknown): Stored<Json> | undefined {
    const sp = typeof id === "string" ? store.servicePrincipals.get(id) : undefined;
    return sp && visible(sp) ? sp : undefined;
  }

  // oauth2permissiongrant-post.md: 201 + grant. clientId and resourceId are service principal object ids.
  route("POST", "/oauth2PermissionGrants", (call) => {
    if (!has(call.caller, "DelegatedPermissionGrant.ReadWrite.All", "Directory.ReadWrite.All")) throw forbidden();
    const body = jsonBody(call);
    for (const key of Object.keys(body)) if (!GRANT_KEYS.has(key) && !key.startsWith("@odata.")) throw badRequest(`Property '${key}' does not exist on type 'microsoft.graph.oAuth2PermissionGrant'.`);
    if (!visibleSp(body.clientId)) throw invalidValue("clientId", "OAuth2PermissionGrant", `No service principal with id '${body.clientId}'.`);
    if (!visibleSp(body.resourceId)) throw invalidValue("resourceId", "OAuth2PermissionGrant", `No service principal with id '${body.resourceId}'.`);
    if (!["AllPrincipals", "Principal"].includes(body.consentType)) throw invalidValue("consentType", "OAuth2PermissionGrant");
    const principalId = body.principalId ?? null;
    if (body.consentType === "Principal" ? typeof principalId !== "string" : principalId !== null) throw invalidValue("principalId", "OAuth2PermissionGrant");
    if (body.scope !== undefined && typeof body.scope !== "string") throw invalidValue("scope", "OAuth2PermissionGrant");
    const duplicate = [...store.grants.values()].some(
      (g) => g.object.clientId === body.clientId && g.object.resourceId === body.resourceId && g.object.consentType === body.consentType && g.object.principalId === principalId,
    );
    // One grant per client, resource and principal: a second POST conflicts.
    if (duplicate) throw new GraphError(409, "Request_MultipleObjectsWithSameKeyValue", "Permission entry already exists.");
    const object = { clientId: body.clientId, consentType: body.consentType, id: newGrantId(), principalId, resourceId: body.resourceId, scope: body.scope ?? "" };
    store.grants.set(object.id, { object, createdAtMs: Date.now(), owners: new Set() });
    return created(call, "oauth2PermissionGrants", object, `oauth2PermissionGrants/${object.id}`);
  });

  // oauth2permissiongrant-list.md: $filter=clientId eq '...' (and resourceId / consentType / principalId).
  route("GET", "/oauth2PermissionGrants", (call) => {
    if (!has(call.caller, ...GRANT_READ_ROLES)) throw forbidden();
    const filter = call.query.get("$filter");
    const clauses = filter ? parseFilter(filter, ["clientId", "resourceId", "consentType", "principalId", "id"], "oAuth2PermissionGrant") : [];
    const items = [...store.grants.values()].filter((g) => visible(g) && matches(view(g), clauses)).map(view);
    return listResponse(call, "oauth2PermissionGrants", items, { clientId: "", consentType: "", id: "", principalId: "", resourceId: "", scope: "" }, "oAuth2PermissionGrant");
  });

  route("GET", "/oauth2PermissionGrants/(?<id>[^/]+)", (call, params) => {
    if (!has(call.caller, ...GRANT_READ_ROLES)) throw forbidden();
    const g = store.grants.get(params.id);
    if (!g || !visible(g)) throw notFound(params.id);
    return entityResponse(call, "oauth2PermissionGrants", view(g), "oAuth2PermissionGrant");
  });

  // oauth2permissiongrant-update.md: only scope is updatable; 204.
  route("PATCH", "/oauth2PermissionGrants/(?<id>[^/]+)", (call, params) => {
    if (!has(call.caller, "DelegatedPermissionGrant.ReadWrite.All", "Directory.ReadWrite.All")) throw forbidden();
    const g = writable(store.grants.get(params.id), params.id);
    const body = jsonBody(call);
    for (const key of Object.keys(body)) if (key !== "scope" && !key.startsWith("@odata.")) throw badRequest(`Property '${key}' cannot be updated on 'microsoft.graph.oAuth2PermissionGrant'; only scope can.`);
    if (typeof body.scope !== "string") throw invalidValue("scope", "OAuth2PermissionGrant");
    update(g, { ...g.object, scope: body.scope });
    return noContent();
  });

  // oauth2permissiongrant-delete.md
  route("DELETE", "/oauth2PermissionGrants/(?<id>[^/]+)", (call, params) => {
    if (!has(call.caller, "DelegatedPermissionGrant.ReadWrite.All", "Directory.ReadWrite.All")) throw forbidden();
    if (!store.grants.delete(params.id)) throw notFound(params.id);
    return noContent();
  });

  // ---------- organization ----------
  // organization-get.md: application permission Organization.Read.All (least privileged) or
  // Directory.Read.All. Only the fields the app reads: id, displayName, verifiedDomains (the initial
  // domain, `isInitial`, anchors Exchange Online admin API calls; docs/architecture.md, "Exchange Online").
  route("GET", "/organization", (call) => {
    if (!has(call.caller, "Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")) throw forbidden();
    const org: Json = {
      id: store.tenant.tenantId,
      displayName: store.tenant.displayName,
      verifiedDomains: [{ capabilities: "Email, OfficeCommunicationsOnline", isDefault: true, isInitial: true, name: store.tenant.domain, type: "Managed" }],
    };
    const select = parseSelect(call.query.get("$select"), org, "organization");
    return { status: 200, body: { "@odata.context": context(call, select ? `organization(${select.join(",")})` : "organization"), value: [project(org, select)] } };
  });

  // ---------- policies/authorizationPolicy ----------
  // authorizationpolicy-get.md (Policy.Read.All or Policy.ReadWrite.Authorization).
  route("GET", "/policies/authorizationPolicy", (call) => {
    if (!has(call.caller, "Policy.Read.All", "Policy.ReadWrite.Authorization")) throw forbidden();
    return entityResponse(call, "policies/authorizationPolicy", store.authorizationPolicy, "authorizationPolicy");
  });

  // authorizationpolicy-update.md: 204. defaultUserRolePermissions.permissionGrantPoliciesAssigned is a
  // collection, so a PATCH replaces it wholly; entries are `ManagePermissionGrantsForSelf.{policyId}` or
  // `ManagePermissionGrantsForOwnedResource.{policyId}` (defaultuserrolepermissions.md).
  const POLICY_WRITABLE = new Set(Object.keys(store.authorizationPolicy).filter((k) => k !== "id"));
  const DURP_WRITABLE = new Set(Object.keys(store.authorizationPolicy.defaultUserRolePermissions));
  route("PATCH", "/policies/authorizationPolicy", (call) => {
    if (!has(call.caller, "Policy.ReadWrite.Authorization")) throw forbidden();
    const body = jsonBody(call);
    for (const key of Object.keys(body)) if (!POLICY_WRITABLE.has(key) && !key.startsWith("@odata.")) throw badRequest(`Property '${key}' does not exist on type 'microsoft.graph.authorizationPolicy'.`);
    const durp = body.defaultUserRolePermissions;
    if (durp !== undefined) {
      if (typeof durp !== "object" || durp === null || Array.isArray(durp)) throw invalidValue("defaultUserRolePermissions", "AuthorizationPolicy");
      for (const key of Object.keys(durp)) if (!DURP_WRITABLE.has(key)) throw badRequest(`Property '${key}' does not exist on type 'microsoft.graph.defaultUserRolePermissions'.`);
      const assigned = durp.permissionGrantPoliciesAssigned;
      if (assigned !== undefined) {
        if (!Array.isArray(assigned) || assigned.some((p: unknown) => typeof p !== "string" || !/^ManagePermissionGrantsFor(Self|OwnedResource)\.[\w.-]+$/i.test(p)))
          throw invalidValue("permissionGrantPoliciesAssigned", "AuthorizationPolicy");
      }
    }
    store.authorizationPolicy = mergePatch(store.authorizationPolicy, body) as typeof store.authorizationPolicy;
    return noContent();
  });

  // ---------- $batch ----------
  // json-batching.md: at most 20 requests; `dependsOn` orders them; a request whose dependency failed gets
  // 424 Failed Dependency; responses carry each id, status, headers and body.
  async function batch(call: GraphCall): Promise<EmulatorResponse> {
    const body = jsonBody(call);
    const requests = body.requests;
    if (!Array.isArray(requests) || requests.length === 0) throw new GraphError(400, "BadRequest", "Invalid batch payload format.");
    if (requests.length > MAX_BATCH) throw new GraphError(400, "BadRequest", `Number of requests in batch exceeds the limit of ${MAX_BATCH}.`);
    const ids = new Set<string>();
    for (const r of requests) {
      if (typeof r?.id !== "string" || !r.id || typeof r.method !== "string" || typeof r.url !== "string") throw new GraphError(400, "BadRequest", "Invalid batch payload format.");
      if (ids.has(r.id)) throw new GraphError(400, "BadRequest", `Batch request contains duplicate id '${r.id}'.`);
      ids.add(r.id);
    }
    for (const r of requests)
      for (const d of r.dependsOn ?? []) if (!ids.has(d)) throw new GraphError(400, "BadRequest", `Request '${r.id}' depends on unknown request '${d}'.`);

    const results = new Map<string, EmulatorResponse>();
    const inProgress = new Set<string>();
    const run = async (r: Json): Promise<EmulatorResponse> => {
      const done = results.get(r.id);
      if (done) return done;
      if (inProgress.has(r.id)) throw new GraphError(400, "BadRequest", `Circular dependsOn at request '${r.id}'.`);
      inProgress.add(r.id);
      let failedDependency = false;
      for (const d of r.dependsOn ?? []) {
        const dep = await run(requests.find((x: Json) => x.id === d));
        if (dep.status >= 400) failedDependency = true;
      }
      let response: EmulatorResponse;
      if (failedDependency) response = { status: 424, body: graphErrorBody("FailedDependency", "Dependent request failed.") };
      else response = await subRequest(call, r);
      results.set(r.id, response);
      return response;
    };
    const responses: Json[] = [];
    for (const r of requests) {
      const response = await run(r);
      const headers: Record<string, unknown> = { ...(response.headers ?? {}) };
      if (response.body !== undefined) headers["Content-Type"] = "application/json";
      responses.push({ id: r.id, status: response.status, headers, ...(response.body !== undefined ? { body: response.body } : {}) });
    }
    return { status: 200, body: { responses } };
  }

  async function subRequest(outer: GraphCall, r: Json): Promise<EmulatorResponse> {
    const raw = String(r.url).replace(/^\/?(v1\.0\/)?/, "/");
    if (/^https?:/i.test(r.url)) return { status: 400, body: graphErrorBody("BadRequest", "Batch request URLs must be relative.") };
    const url = new URL(raw, "https://batch.invalid");
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(r.headers ?? {})) headers[k.toLowerCase()] = String(v);
    const hasBody = r.body !== undefined;
    const call: GraphCall = {
      method: r.method.toUpperCase(),
      path: safeDecode(url.pathname),
      query: url.searchParams,
      headers,
      body: r.body,
      rawBody: hasBody ? JSON.stringify(r.body) : "",
      caller: outer.caller,
      origin: outer.origin,
    };
    if (call.path === "/$batch") return { status: 400, body: graphErrorBody("BadRequest", "Nested batch requests are not supported.") };
    // Graph throttles sub-requests individually: a throttled one comes back as a 429 inside the batch.
    const fault = options.subRequestFault?.(`${call.method} /v1.0${call.path}`);
    const response = fault ?? (await dispatch(call));
    options.onSubRequest?.(call, response);
    return response;
  }

  // ---------- dispatch ----------
  async function dispatch(call: GraphCall): Promise<EmulatorResponse> {
    try {
      if (call.method === "POST" && call.path === "/$batch") return await batch(call);
      let pathMatched = false;
      for (const r of routes) {
        const m = r.pattern.exec(call.path);
        if (!m) continue;
        pathMatched = true;
        if (r.method !== call.method) continue;
        return await r.handler(call, { ...(m.groups ?? {}) });
      }
      if (pathMatched) return { status: 405, body: graphErrorBody("Request_BadRequest", `Method '${call.method}' is not allowed on '${call.path}'.`) };
      // Graph's answer for a path it does not know.
      const segment = call.path.split("/")[1]?.replace(/\(.*$/, "") ?? "";
      return { status: 400, body: graphErrorBody("BadRequest", `Resource not found for the segment '${segment}'.`) };
    } catch (error) {
      if (error instanceof GraphError) return { status: error.status, body: graphErrorBody(error.code, error.message, error.details, call.headers["client-request-id"]) };
      throw error;
    }
  }

  return { dispatch };
}

/** Id of the (emulated) tenant app management policy named in lifetime errors. */
export const APP_MANAGEMENT_POLICY_ID = "00000000-0000-0000-0000-00000000a11c";

function addYears(ms: number, years: number): number {
  const d = new Date(ms);
  d.setUTCFullYear(d.getUTCFullYear() + years);
  return d.getTime();
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
