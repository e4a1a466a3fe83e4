// Azure Key Vault secrets emulator: the subset of the data-plane REST API (api-version 7.x and
// 2025-07-01) that @azure/keyvault-secrets' SecretClient calls, behind Key Vault's challenge
// handshake. Sources: Key Vault REST reference (Set Secret, Get Secret, Get Secrets, Get Secret
// Versions, Update Secret, Delete Secret, Get Deleted Secret(s), Recover Deleted Secret, Purge
// Deleted Secret), "About Azure Key Vault secrets" / "Soft-delete overview" on Microsoft Learn, and
// the SDK's own sources (node_modules/@azure/keyvault-common/dist/commonjs/keyVaultAuthenticationPolicy.js
// and parseWWWAuthenticate.js for the challenge, @azure/keyvault-secrets api/operations.js for paths).
//
// Stricter behaviours, each sourced where it is implemented below: Azure RBAC (a caller needs a Key
// Vault secrets role; the sandbox identity holds Key Vault Secrets Officer, as our Bicep grants it),
// purge protection (on by default, as in infra/resources.bicep), contentType at most 255 characters,
// versions of an unknown name -> 404, and lists paged in O(page size) from a sorted index.
//
// Admin additions to the generic /_emulator API:
//   GET /_emulator/role-assignments               { <principal object id>: [role names] }
//   PUT /_emulator/role-assignments/{principalId}  body {roles: string[]} ([] removes every role)
//   GET|PATCH /_emulator/vault                     {purgeProtection: boolean}
// State (GET /_emulator/state):
//   { secrets: { <name>: { versions: [{ version, value, contentType, attributes, tags }], deleted?: { deletedDate, scheduledPurgeDate, recoveryId } } },
//     roleAssignments, purgeProtection }
import type { EmulatorContext } from "./context";
import { AUDIENCES } from "./context";
import { EmulatorRequest, EmulatorResponse, EmulatorServer } from "./server";
import { bearerToken } from "./jwtSigner";
import { SecretEntry, SecretStore, SeedSecret } from "./keyVault/store";
import { deletedSecretBundle, deletedSecretItem, kvError, secretBundle, secretItem } from "./keyVault/wire";

export type { SeedSecret } from "./keyVault/store";

export interface KeyVaultEmulatorOptions {
  /** The Entra authority host (the token emulator's URL) named in the challenge; read per request since it may be known late. */
  authorityHost: () => string;
  /** Secrets present at start and after POST /_emulator/reset (e.g. `creatio-sandbox-admin` for `npm start`). */
  seed?: SeedSecret[];
  /** Purge protection (default true, as infra/resources.bicep sets `enablePurgeProtection: true`). */
  purgeProtection?: boolean;
}

/**
 * Azure built-in roles with secret data actions ("Azure built-in roles for Key Vault data plane
 * operations", https://learn.microsoft.com/azure/key-vault/general/rbac-guide): Secrets User reads
 * values; Reader reads metadata only; Officer and Administrator do everything with secrets.
 */
const SECRET_ROLES: Record<string, "all" | "read" | "metadata"> = {
  "Key Vault Administrator": "all",
  "Key Vault Secrets Officer": "all",
  "Key Vault Secrets User": "read",
  "Key Vault Reader": "metadata",
};
type DataAction = "getSecret/action" | "readMetadata/action" | "setSecret/action" | "update/action" | "delete" | "recover/action" | "purge/action";
const allows = (role: string, action: DataAction) => {
  const grant = SECRET_ROLES[role];
  if (grant === "all") return true;
  if (grant === "read") return action === "getSecret/action" || action === "readMetadata/action";
  if (grant === "metadata") return action === "readMetadata/action";
  return false;
};

/**
 * Key Vault limits: "About Azure Key Vault secrets" (25 KB values), "Azure Key Vault service limits"
 * (15 tags, 512 chars each); contentType at most 255 characters (issue 9; the error wording is assumed).
 */
const LIMITS = { maxTags: 15, maxTagChars: 512, maxValueBytes: 25 * 1024, maxContentTypeChars: 255, defaultPage: 25, maxPage: 25 };
/** Object names: "About keys, secrets, and certificates" - 1-127 characters, 0-9 a-z A-Z and -. */
const NAME = /^[0-9a-zA-Z-]{1,127}$/;
const NAME_GROUP = "(?<name>[^/]+)";

export function createKeyVaultEmulator(ctx: EmulatorContext, options: KeyVaultEmulatorOptions): EmulatorServer {
  let purgeProtection = options.purgeProtection ?? true;
  const store = new SecretStore(() => purgeProtection);
  // Azure RBAC: who holds which role on the vault. The sandbox identity is Key Vault Secrets Officer,
  // as infra/resources.bicep makes the app's identity.
  let roleAssignments: Record<string, string[]> = {};
  const seed = () => {
    purgeProtection = options.purgeProtection ?? true;
    roleAssignments = { [ctx.identity.objectId]: ["Key Vault Secrets Officer"] };
    store.clear();
    for (const s of options.seed ?? []) {
      store.addVersion(s.name, {
        value: s.value,
        contentType: s.contentType,
        tags: s.tags,
        exp: s.expiresOn ? Math.floor(s.expiresOn.getTime() / 1000) : undefined,
      });
    }
    // Seeded versions are old news: never hidden by replication lag.
    for (const entry of store.all()) for (const v of entry.versions) v.createdAtMs = 0;
  };
  seed();

  const server: EmulatorServer = new EmulatorServer({
    name: "keyvault",
    tls: ctx.tls,
    faults: ctx.faults,
    state: () => ({ ...state(store, vaultUrl()), roleAssignments, purgeProtection }),
    reset: seed,
    // Key Vault's throttling answer: 429 with code "Throttled" (Key Vault throttling guidance).
    errorBody: (status, code, message) => kvError(status === 429 ? "Throttled" : code, message),
  });
  // The vault URL as clients address it; ids in answers must be absolute and parse back to it.
  const vaultUrl = () => `https://localhost:${server.port}`;

  /** Wraps a handler with Key Vault's api-version, bearer and RBAC checks. */
  const api = (action: DataAction, handler: (req: EmulatorRequest) => EmulatorResponse) => (req: EmulatorRequest): EmulatorResponse => {
    // The challenge comes first: the SDK's first request carries no token (and no body) on purpose.
    const caller = authenticate(req);
    if ("status" in caller) return caller;
    // URLSearchParams decodes the SDK's `api%2Dversion` key to `api-version`.
    if (!req.query.get("api-version")) {
      return { status: 400, body: kvError("BadParameter", "The api-version query parameter is missing.") };
    }
    const forbidden = authorize(caller, action, req);
    if (forbidden) return forbidden;
    return handler(req);
  };

  /**
   * Azure RBAC's refusal: 403 Forbidden, inner code ForbiddenByRbac, a message naming caller, data
   * action and decision ("Troubleshooting Azure Key Vault access policy / RBAC issues",
   * https://learn.microsoft.com/azure/key-vault/general/troubleshooting-access-issues; the message's
   * exact layout is as Key Vault sends it, to our knowledge).
   */
  const authorize = (caller: { oid: string; appid: string; tid: string }, action: DataAction, req: EmulatorRequest): EmulatorResponse | undefined => {
    const roles = roleAssignments[caller.oid] ?? [];
    if (roles.some((role) => allows(role, action))) return undefined;
    const dataAction = `Microsoft.KeyVault/vaults/secrets/${action}`;
    return {
      status: 403,
      body: kvError(
        "Forbidden",
        `Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=${caller.appid};oid=${caller.oid};iss=https://sts.windows.net/${caller.tid}/\r\nAction: '${dataAction}'\r\nResource: '${req.path}'\r\nAssignment: (not found)\r\nDecisionReason: 'DeniedWithNoValidRBAC' \r\nVault: localhost;location=local\r\n`,
        "ForbiddenByRbac",
      ),
    };
  };

  const authenticate = (req: EmulatorRequest): EmulatorResponse | { oid: string; appid: string; tid: string } => {
    // WWW-Authenticate as Key Vault sends it; keyvault-common's parser reads `authorization`
    // (tenant = its path) and `resource` (scope = resource + "/.default").
    const challenge = `Bearer authorization="${options.authorityHost().replace(/\/+$/, "")}/${ctx.identity.tenantId}", resource="https://vault.azure.net"`;
    const unauthorized = (message: string): EmulatorResponse => ({
      status: 401,
      headers: { "WWW-Authenticate": challenge },
      body: kvError("Unauthorized", message),
    });
    const token = bearerToken(req.headers.authorization);
    if (!token) return unauthorized("AKV10000: Request is missing a Bearer or PoP token.");
    const checked = ctx.signer.check(token, AUDIENCES.keyVault);
    if (!checked.ok) return unauthorized(`AKV10022: ${checked.reason}`);
    if (checked.claims.tid !== ctx.identity.tenantId) {
      return unauthorized(`AKV10032: Invalid issuer. Expected the tenant ${ctx.identity.tenantId}, found ${checked.claims.tid}.`);
    }
    return { oid: checked.claims.oid, appid: checked.claims.appid, tid: checked.claims.tid };
  };

  /** Versions a read may see: replication lag hides versions written less than `replicationLagMs` ago. */
  const visible = (entry: SecretEntry) => entry.versions.filter((v) => !server.isLagging(v.createdAtMs));
  const latestVisible = (entry: SecretEntry) => visible(entry).at(-1);

  const notFound = (name: string, version?: string): EmulatorResponse => ({
    status: 404,
    body: kvError(
      "SecretNotFound",
      `A secret with (name/id) ${name}${version ? `/${version}` : ""} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
    ),
  });
  const deletedNotFound = (name: string): EmulatorResponse => ({
    status: 404,
    body: kvError("SecretNotFound", `Deleted Secret not found: ${name}`),
  });
  const badParameter = (message: string): EmulatorResponse => ({ status: 400, body: kvError("BadParameter", message) });

  /** The live (not deleted) entry, else undefined. */
  const live = (name: string) => {
    const entry = store.get(name);
    return entry && !entry.deleted ? entry : undefined;
  };

  // --- Set Secret: PUT /secrets/{name} -> a new version every time.
  server.route(
    "PUT",
    new RegExp(`^/secrets/${NAME_GROUP}$`),
    api("setSecret/action", (req) => {
      const name = req.params.name;
      if (!NAME.test(name)) return badParameter(`The request URI contains an invalid name: ${name}`);
      const body = req.body;
      if (!body || typeof body !== "object" || typeof body.value !== "string") {
        return badParameter("The parameter 'value' is required and must be a string.");
      }
      if (Buffer.byteLength(body.value, "utf8") > LIMITS.maxValueBytes) return badParameter("Secret value exceeds the maximum size of 25 KB.");
      const tagsError = validateTags(body.tags) ?? validateContentType(body.contentType);
      if (tagsError) return badParameter(tagsError);
      const existing = store.get(name);
      if (existing?.deleted) {
        // Soft delete reserves the name (Microsoft Learn "Soft-delete overview"; message as Key Vault sends it).
        return {
          status: 409,
          body: kvError(
            "Conflict",
            `Secret ${existing.name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`,
            "ObjectIsDeletedButRecoverable",
          ),
        };
      }
      const purgedAt = store.purgedAt(name);
      if (!existing && purgedAt !== undefined && server.isLagging(purgedAt)) {
        // A purge takes a moment to finish; meanwhile Key Vault answers 409 (Azure/azure-sdk-for-net#26027).
        return { status: 409, body: kvError("Conflict", `Secret ${name} is currently being deleted.`, "ObjectIsBeingDeleted") };
      }
      const attributes = body.attributes ?? {};
      const { entry, version } = store.addVersion(name, {
        value: body.value,
        contentType: typeof body.contentType === "string" ? body.contentType : undefined,
        tags: body.tags ?? undefined,
        enabled: typeof attributes.enabled === "boolean" ? attributes.enabled : undefined,
        nbf: typeof attributes.nbf === "number" ? attributes.nbf : undefined,
        exp: typeof attributes.exp === "number" ? attributes.exp : undefined,
      });
      return { status: 200, body: secretBundle(vaultUrl(), entry, version) };
    }),
  );

  // --- Get Secret Versions: GET /secrets/{name}/versions (before the by-version route).
  server.route(
    "GET",
    new RegExp(`^/secrets/${NAME_GROUP}/versions$`),
    api("readMetadata/action", (req) => {
      const entry = live(req.params.name);
      // An unknown (or deleted) name is 404 SecretNotFound here as on Get Secret (issue 9; assumed
      // from Key Vault addressing the collection through the secret).
      if (!entry) return notFound(req.params.name);
      const versions = visible(entry);
      return page(req, "versions", (after) => {
        const start = after === undefined ? 0 : versions.findIndex((v) => v.version === after) + 1;
        return versions.slice(start).map((v) => ({ key: v.version, item: () => secretItem(vaultUrl(), entry, v, true) }));
      });
    }),
  );

  // --- Get Secret: GET /secrets/{name}/ (latest; the SDK sends an empty version) or /secrets/{name}/{version}.
  server.route(
    "GET",
    new RegExp(`^/secrets/${NAME_GROUP}(?:/(?<version>[^/]*))?$`),
    api("getSecret/action", (req) => {
      const { name, version } = req.params;
      const entry = live(name);
      if (!entry) return notFound(name, version || undefined);
      // By version: an exact address, answered even while the version is still replicating.
      const found = version ? entry.versions.find((v) => v.version === version) : latestVisible(entry);
      if (!found) return notFound(name, version || undefined);
      if (!found.attributes.enabled) {
        return { status: 403, body: kvError("Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled") };
      }
      // `exp` and `nbf` are informational for secrets: Key Vault still returns the value (docs/architecture.md "Azure Key Vault").
      return { status: 200, body: secretBundle(vaultUrl(), entry, found) };
    }),
  );

  // --- Get Secrets: GET /secrets (latest version of each, no values).
  server.route(
    "GET",
    /^\/secrets\/?$/,
    api("readMetadata/action", (req) =>
      page(req, "secrets", function* (after) {
        for (const entry of store.after(after)) {
          if (entry.deleted) continue;
          const latest = latestVisible(entry);
          if (latest) yield { key: SecretStore.key(entry.name), item: () => secretItem(vaultUrl(), entry, latest, false) };
        }
      }),
    ),
  );

  // --- Update Secret: PATCH /secrets/{name}/{version} - properties only, no new version.
  server.route(
    "PATCH",
    new RegExp(`^/secrets/${NAME_GROUP}(?:/(?<version>[^/]*))?$`),
    api("update/action", (req) => {
      const { name, version } = req.params;
      const entry = live(name);
      const found = entry && (version ? entry.versions.find((v) => v.version === version) : entry.versions.at(-1));
      if (!entry || !found) return notFound(name, version || undefined);
      const body = req.body ?? {};
      const tagsError = validateTags(body.tags) ?? validateContentType(body.contentType);
      if (tagsError) return badParameter(tagsError);
      // Only what is sent changes; tags, when sent, replace the whole set (Update Secret reference).
      if (typeof body.contentType === "string") found.contentType = body.contentType;
      if (body.tags !== undefined && body.tags !== null) found.tags = body.tags;
      const attributes = body.attributes ?? {};
      if (typeof attributes.enabled === "boolean") found.attributes.enabled = attributes.enabled;
      if (typeof attributes.nbf === "number") found.attributes.nbf = attributes.nbf;
      if (typeof attributes.exp === "number") found.attributes.exp = attributes.exp;
      found.attributes.updated = Math.floor(Date.now() / 1000);
      return { status: 200, body: secretBundle(vaultUrl(), entry, found, false) };
    }),
  );

  // --- Delete Secret: DELETE /secrets/{name} -> soft delete, DeletedSecretBundle.
  server.route(
    "DELETE",
    new RegExp(`^/secrets/${NAME_GROUP}$`),
    api("delete", (req) => {
      const entry = live(req.params.name);
      if (!entry) return notFound(req.params.name);
      const deleted = store.softDelete(entry);
      return { status: 200, body: deletedSecretBundle(vaultUrl(), entry, entry.versions.at(-1)!, deleted) };
    }),
  );

  // --- Get Deleted Secrets: GET /deletedsecrets.
  server.route(
    "GET",
    /^\/deletedsecrets\/?$/,
    api("readMetadata/action", (req) =>
      page(req, "deletedsecrets", function* (after) {
        for (const e of store.after(after)) {
          if (e.deleted) yield { key: SecretStore.key(e.name), item: () => deletedSecretItem(vaultUrl(), e, e.versions.at(-1)!, e.deleted!) };
        }
      }),
    ),
  );

  // --- Get Deleted Secret: GET /deletedsecrets/{name}.
  server.route(
    "GET",
    new RegExp(`^/deletedsecrets/${NAME_GROUP}$`),
    api("readMetadata/action", (req) => {
      const entry = store.get(req.params.name);
      if (!entry?.deleted) return deletedNotFound(req.params.name);
      return { status: 200, body: deletedSecretBundle(vaultUrl(), entry, entry.versions.at(-1)!, entry.deleted) };
    }),
  );

  // --- Recover Deleted Secret: POST /deletedsecrets/{name}/recover -> SecretBundle (no value).
  server.route(
    "POST",
    new RegExp(`^/deletedsecrets/${NAME_GROUP}/recover$`),
    api("recover/action", (req) => {
      const entry = store.get(req.params.name);
      if (!entry?.deleted) return deletedNotFound(req.params.name);
      store.recover(entry);
      return { status: 200, body: secretBundle(vaultUrl(), entry, entry.versions.at(-1)!, false) };
    }),
  );

  // --- Purge Deleted Secret: DELETE /deletedsecrets/{name} -> 204.
  server.route(
    "DELETE",
    new RegExp(`^/deletedsecrets/${NAME_GROUP}$`),
    api("purge/action", (req) => {
      const entry = store.get(req.params.name);
      if (!entry?.deleted) return deletedNotFound(req.params.name);
      if (purgeProtection) {
        // Purge protection: nobody can purge before the retention period ends ("Azure Key Vault
        // soft-delete overview", https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview#purge-protection).
        // 403 Forbidden as Key Vault answers a disallowed operation; the message wording is assumed.
        return {
          status: 403,
          body: kvError(
            "Forbidden",
            `Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.`,
          ),
        };
      }
      store.purge(entry);
      return { status: 204 };
    }),
  );

  /**
   * One page of a list. Key Vault pages with `maxresults` (1-25, default 25) and answers a
   * `nextLink` carrying an opaque `$skiptoken`; the SDK follows nextLink as is. The token here is
   * the sort key of the last item returned, so items added meanwhile are neither skipped nor repeated.
   * `items(after)` yields the items after that key in order, lazily: a page takes `size + 1` of them
   * (the extra one only says whether there is a next page) and builds only the `size` it returns.
   */
  function page(req: EmulatorRequest, collection: string, items: (after: string | undefined) => Iterable<{ key: string; item: () => unknown }>): EmulatorResponse {
    const raw = req.query.get("maxresults");
    const size = raw === null ? LIMITS.defaultPage : Number(raw);
    if (!Number.isInteger(size) || size < 1 || size > LIMITS.maxPage) {
      return badParameter(`maxresults must be an integer between 1 and ${LIMITS.maxPage}.`);
    }
    const token = req.query.get("$skiptoken");
    const after = token ? Buffer.from(token, "base64url").toString("utf8") : undefined;
    const slice: { key: string; item: () => unknown }[] = [];
    let more = false;
    for (const x of items(after)) {
      if (slice.length === size) {
        more = true;
        break;
      }
      slice.push(x);
    }
    let nextLink: string | null = null;
    if (more) {
      const params = new URLSearchParams({
        "api-version": req.query.get("api-version") ?? "",
        $skiptoken: Buffer.from(slice.at(-1)!.key, "utf8").toString("base64url"),
        maxresults: String(size),
      });
      const path = collection === "versions" ? `/secrets/${req.params.name}/versions` : `/${collection}`;
      nextLink = `${vaultUrl()}${path}?${params}`;
    }
    return { status: 200, body: { value: slice.map((x) => x.item()), nextLink } };
  }

  // --- Admin: role assignments and vault properties.
  server.route("GET", /^\/_emulator\/role-assignments$/, () => ({ status: 200, body: roleAssignments }));
  server.route("PUT", /^\/_emulator\/role-assignments\/(?<principal>[^/]+)$/, (req) => {
    const roles = req.body?.roles;
    if (!Array.isArray(roles) || roles.some((r: unknown) => typeof r !== "string" || !(r in SECRET_ROLES))) {
      return { status: 400, body: { error: `roles must be an array of: ${Object.keys(SECRET_ROLES).join(", ")}` } };
    }
    if (roles.length === 0) delete roleAssignments[req.params.principal];
    else roleAssignments[req.params.principal] = roles;
    return { status: 200, body: roleAssignments };
  });
  server.route("GET", /^\/_emulator\/vault$/, () => ({ status: 200, body: { purgeProtection } }));
  server.route("PATCH", /^\/_emulator\/vault$/, (req) => {
    const value = req.body?.purgeProtection;
    if (typeof value !== "boolean" || Object.keys(req.body).length !== 1) return { status: 400, body: { error: "body {purgeProtection: boolean} expected" } };
    purgeProtection = value;
    return { status: 200, body: { purgeProtection } };
  });

  return server;
}

/** contentType: a string of at most 255 characters. */
function validateContentType(contentType: unknown): string | undefined {
  if (contentType === undefined || contentType === null) return undefined;
  if (typeof contentType !== "string") return "The parameter 'contentType' must be a string.";
  if (contentType.length > LIMITS.maxContentTypeChars) return `The parameter 'contentType' exceeds the maximum length of ${LIMITS.maxContentTypeChars} characters.`;
  return undefined;
}

/** At most 15 tags, names and values at most 512 characters ("Azure Key Vault service limits"). */
function validateTags(tags: unknown): string | undefined {
  if (tags === undefined || tags === null) return undefined;
  if (typeof tags !== "object" || Array.isArray(tags)) return "Tags must be an object of strings.";
  const entries = Object.entries(tags as Record<string, unknown>);
  if (entries.length > LIMITS.maxTags) return `The number of tags (${entries.length}) exceeds the maximum of ${LIMITS.maxTags}.`;
  for (const [name, value] of entries) {
    if (typeof value !== "string") return `The value of tag '${name}' must be a string.`;
    if (name.length > LIMITS.maxTagChars) return `Tag name '${name.slice(0, 40)}...' exceeds ${LIMITS.maxTagChars} characters.`;
    if (value.length > LIMITS.maxTagChars) return `The value of tag '${name}' exceeds ${LIMITS.maxTagChars} characters.`;
  }
  return undefined;
}

function state(store: SecretStore, vaultUrl: string) {
  const secrets: Record<string, unknown> = {};
  for (const entry of store.all()) {
    secrets[entry.name] = {
      versions: entry.versions.map((v) => ({
        version: v.version,
        value: v.value,
        contentType: v.contentType,
        attributes: { ...v.attributes },
        tags: v.tags,
      })),
      ...(entry.deleted ? { deleted: { ...entry.deleted, recoveryId: `${vaultUrl}/deletedsecrets/${entry.name}` } } : {}),
    };
  }
  return { secrets };
}
