// Creatio emulator: cookie login through AuthService.svc with CSRF protection, an Identity Service
// token endpoint (client credentials), and OData 4 for the two objects the product writes,
// `MailServer` and `OAuthApplications`. Sources: DESIGN.md section 4 "Creatio" (a published Creatio
// 8.1 configuration dump and Creatio Academy: "Authentication of external requests", "Protection
// from CSRF attacks", "odata web service (OData 4)" reference with its request headers including
// BPMCSRF on GETs too, "Authorize external requests using OAuth 2.0").
//
// Options: `netCore` (default false) emulates a .NET Core / .NET 8 site where OData lives at
// `/odata`; otherwise a .NET Framework site with `/0/odata` (DESIGN.md section 4). The other prefix
// answers 404, so the app's prefix detection can be tested. `sessionLifetimeMs` expires idle sessions.
//
// Admin additions to the generic /_emulator API:
//   POST /_emulator/expire-sessions   every cookie session ends now (next call -> 401); answers {expired}
//   POST /_emulator/session-lifetime  body {sessionLifetimeMs: number | null}
// State (GET /_emulator/state): { MailServer: Row[], OAuthApplications: Row[] (SecretKey included),
//   users: [{UserName, ContactId, operations}], clients: [{clientId, userName}], sessions: number, odataPrefix }
import type { EmulatorContext } from "./context";
import { EmulatorRequest, EmulatorResponse, EmulatorServer } from "./server";
import { bearerToken } from "./tokens";
import { CreatioUser, IdentityClient, loginCookies, parseCookies, SEED_CLIENTS, SEED_USERS, SessionStore } from "./creatio/auth";
import { isGuid, ODataError, parseCount, parseFilter, parseOrderBy, parseSelect, project, validateBody } from "./creatio/odata";
import { completeRow, EMPTY_GUID, ENTITIES, EntityDef, Row, seedRows } from "./creatio/schema";

export { SEED_CLIENTS, SEED_USERS } from "./creatio/auth";
export type { CreatioUser, IdentityClient } from "./creatio/auth";
export { GMAIL_MAIL_SERVER_ID, OFFICE365_MAIL_SERVER_ID } from "./creatio/schema";

export interface CreatioEmulatorOptions {
  /** A .NET Core site: OData at `/odata` only. Default: .NET Framework, `/0/odata` only. */
  netCore?: boolean;
  /** Idle sessions older than this are gone (401). Default: no expiry. */
  sessionLifetimeMs?: number;
  users?: CreatioUser[];
  clients?: IdentityClient[];
}

/** Audience of the emulated Identity Service's access tokens: nothing else accepts them, and they are accepted nowhere else. */
export const CREATIO_API_AUDIENCE = "creatio-sandbox-api";
const IDENTITY_TOKEN_LIFETIME_SECONDS = 3600;

/** Lookups the emulator enforces like the database's foreign keys. */
const REFERENCES: { from: string; column: string; to: string }[] = [{ from: "MailServer", column: "OAuthApplicationId", to: "OAuthApplications" }];

export function createCreatioEmulator(ctx: EmulatorContext, options: CreatioEmulatorOptions = {}): EmulatorServer {
  const users = options.users ?? SEED_USERS;
  const clients = options.clients ?? SEED_CLIENTS;
  const supervisor = users[0];
  let sessionLifetimeMs = options.sessionLifetimeMs;
  const sessions = new SessionStore(() => sessionLifetimeMs);
  const prefix = options.netCore ? "/odata" : "/0/odata";
  let tables: Record<string, Row[]> = {};
  const seed = () => {
    tables = seedRows(supervisor.contactId);
    sessions.expireAll();
  };
  seed();

  const odataError = (status: number, message: string, code = ""): EmulatorResponse => ({
    status,
    headers: { "OData-Version": "4.0" },
    // OData 4 JSON error format, as Creatio's OData service answers.
    body: { error: { code, message } },
  });

  const server: EmulatorServer = new EmulatorServer({
    name: "creatio",
    tls: ctx.tls,
    faults: ctx.faults,
    state: () => ({
      MailServer: tables.MailServer.map((r) => ({ ...r })),
      OAuthApplications: tables.OAuthApplications.map((r) => ({ ...r })),
      users: users.map((u) => ({ UserName: u.userName, ContactId: u.contactId, operations: u.operations })),
      clients: clients.map((c) => ({ clientId: c.clientId, userName: c.userName })),
      sessions: sessions.count,
      odataPrefix: prefix,
    }),
    reset: () => {
      seed();
      sessionLifetimeMs = options.sessionLifetimeMs;
    },
    errorBody: (_status, code, message) => ({ error: { code, message } }),
  });
  const baseUrl = () => `https://localhost:${server.port}`;
  const findUser = (name: string) => users.find((u) => u.userName.toLowerCase() === name.toLowerCase());

  // --- Cookie login. Creatio answers 200 either way; Code 0 is success, Code 1 a refused login.
  server.route("POST", /^\/ServiceModel\/AuthService\.svc\/Login$/i, (req) => {
    const { UserName, UserPassword } = (req.body ?? {}) as { UserName?: unknown; UserPassword?: unknown };
    const user = typeof UserName === "string" ? findUser(UserName) : undefined;
    if (!user || UserPassword !== user.password) {
      return {
        status: 200,
        body: { Code: 1, Message: "Invalid username or password specified.", Exception: null, PasswordChangeUrl: null, RedirectUrl: null },
      };
    }
    const session = sessions.create(user.userName);
    return {
      status: 200,
      headers: { "Set-Cookie": loginCookies(session, true) },
      body: { Code: 0, Message: "", Exception: null, PasswordChangeUrl: null, RedirectUrl: null },
    };
  });

  server.route("POST", /^\/ServiceModel\/AuthService\.svc\/Logout$/i, (req) => {
    sessions.end(parseCookies(req.headers.cookie)[".ASPXAUTH"]);
    return { status: 200, body: "" };
  });

  // --- Identity Service: client credentials (IdentityServer's token endpoint; form body or Basic auth).
  server.route("POST", /^\/connect\/token$/i, (req) => {
    const form = new URLSearchParams(req.rawBody);
    let clientId = form.get("client_id") ?? undefined;
    let clientSecret = form.get("client_secret") ?? undefined;
    const basic = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? "");
    if (basic) {
      const [id, secret] = Buffer.from(basic[1], "base64").toString("utf8").split(":");
      clientId = decodeURIComponent(id ?? "");
      clientSecret = decodeURIComponent(secret ?? "");
    }
    if (form.get("grant_type") !== "client_credentials") return { status: 400, body: { error: "unsupported_grant_type" } };
    const client = clients.find((c) => c.clientId === clientId);
    if (!client || client.clientSecret !== clientSecret) return { status: 400, body: { error: "invalid_client" } };
    const user = findUser(client.userName)!;
    const { token, expiresIn } = ctx.signer.issue(
      { aud: CREATIO_API_AUDIENCE, iss: baseUrl(), tid: "creatio", appid: client.clientId, oid: user.contactId, client_id: client.clientId },
      IDENTITY_TOKEN_LIFETIME_SECONDS,
    );
    return { status: 200, body: { access_token: token, expires_in: expiresIn, token_type: "Bearer", scope: "ApplicationAccess" } };
  });

  // --- Session expiry fault.
  server.route("POST", /^\/_emulator\/expire-sessions$/, () => ({ status: 200, body: { expired: sessions.expireAll() } }));
  server.route("POST", /^\/_emulator\/session-lifetime$/, (req) => {
    const value = req.body?.sessionLifetimeMs;
    if (value !== null && (typeof value !== "number" || value < 0)) return { status: 400, body: { error: "sessionLifetimeMs must be a number or null" } };
    sessionLifetimeMs = value ?? undefined;
    return { status: 200, body: { sessionLifetimeMs: sessionLifetimeMs ?? null } };
  });

  /**
   * Who is calling: a bearer token from the Identity Service, or a cookie session whose BPMCSRF
   * header matches. Creatio answers 401 for a missing/expired session and for a missing or wrong
   * BPMCSRF header (CSRF protection since 7.10, Creatio Academy); a bearer call needs no CSRF token.
   */
  const authenticate = (req: EmulatorRequest): CreatioUser | EmulatorResponse => {
    const bearer = bearerToken(req.headers.authorization);
    if (bearer) {
      const checked = ctx.signer.check(bearer, [CREATIO_API_AUDIENCE]);
      const client = checked.ok ? clients.find((c) => c.clientId === checked.claims.appid) : undefined;
      if (!checked.ok || !client) return odataError(401, `Unauthorized: ${checked.ok ? "unknown client" : checked.reason}`);
      return findUser(client.userName)!;
    }
    const cookies = parseCookies(req.headers.cookie);
    const session = sessions.find(cookies[".ASPXAUTH"]);
    if (!session) return odataError(401, "Unauthorized: the session is missing or has expired. Log in again.");
    const csrf = req.headers.bpmcsrf;
    if (typeof csrf !== "string" || csrf !== session.csrf) return odataError(401, "Unauthorized: the BPMCSRF header is missing or does not match the session.");
    return findUser(session.userName)!;
  };

  // RightsService: may the caller perform a system operation? `{operation}` in, `{GetCanExecuteOperationResult}`
  // out; `/0/ServiceModel/...` on .NET Framework sites, `/ServiceModel/...` on .NET Core (the route
  // and shape of clio's CreatioRightsClient, github.com/Advance-Technologies-Foundation/clio).
  server.route("POST", new RegExp(`^${options.netCore ? "" : "/0"}/ServiceModel/RightsService\\.svc/GetCanExecuteOperation$`, "i"), (req) => {
    const who = authenticate(req);
    if ("status" in who) return who;
    const operation = (req.body as { operation?: unknown } | undefined)?.operation;
    if (typeof operation !== "string") return { status: 400, body: { error: { code: "", message: "operation is required" } } };
    return { status: 200, body: { GetCanExecuteOperationResult: who.operations.includes(operation) } };
  });

  /** Wraps an OData handler: auth, entity lookup, OData errors, and response headers. */
  const odata =
    (handler: (req: EmulatorRequest, entity: EntityDef, user: CreatioUser) => EmulatorResponse) =>
    (req: EmulatorRequest): EmulatorResponse => {
      const who = authenticate(req);
      if ("status" in who) return who;
      const entity = ENTITIES[req.params.entity];
      if (!entity) return odataError(404, `Resource not found for the segment '${req.params.entity}'.`);
      try {
        const response = handler(req, entity, who);
        return { ...response, headers: { "OData-Version": "4.0", ...(response.headers ?? {}) } };
      } catch (error) {
        if (error instanceof ODataError) return odataError(error.status, error.message);
        throw error;
      }
    };

  const contentType = (req: EmulatorRequest) => {
    // Responses follow the request's IEEE754Compatible choice, as OData 4 servers do.
    const ieee = /IEEE754Compatible=true/i.test(String(req.headers["content-type"] ?? "") + String(req.headers.accept ?? ""));
    return `application/json; odata.metadata=minimal; odata.streaming=true${ieee ? "; IEEE754Compatible=true" : ""}; charset=utf-8`;
  };
  const requireJson = (req: EmulatorRequest) => {
    if (!/^application\/json/i.test(String(req.headers["content-type"] ?? ""))) {
      throw new ODataError(415, "The request entity's media type is not supported: use application/json.");
    }
  };
  const requireOperation = (entity: EntityDef, user: CreatioUser) => {
    if (entity.writeOperation && !user.operations.includes(entity.writeOperation)) {
      // Creatio refuses with 403 and names the system operation (exact wording not verified).
      throw new ODataError(403, `Insufficient permissions to execute the "${entity.writeOperation}" operation.`);
    }
  };
  const parseKey = (raw: string): string => {
    const key = raw.startsWith("Id=") ? raw.slice(3) : raw;
    if (!isGuid(key)) throw new ODataError(400, `The key value '${raw}' is not a valid Edm.Guid literal.`);
    return key.toLowerCase();
  };
  const findRow = (entity: EntityDef, key: string) => {
    const row = tables[entity.name].find((r) => (r.Id as string).toLowerCase() === key);
    if (!row) throw new ODataError(404, `Resource not found for the segment '${entity.name}(${key})'.`);
    return row;
  };
  const checkReferences = (entity: EntityDef, values: Row) => {
    for (const ref of REFERENCES.filter((r) => r.from === entity.name)) {
      const target = values[ref.column];
      if (typeof target === "string" && target !== EMPTY_GUID && !tables[ref.to].some((r) => (r.Id as string).toLowerCase() === target)) {
        // The database's foreign key refuses it; Creatio surfaces the SQL error as a 500.
        throw new ODataError(500, `The UPDATE statement conflicted with the FOREIGN KEY constraint on ${entity.name}.${ref.column} (table ${ref.to}).`);
      }
    }
  };
  const readable = (entity: EntityDef, row: Row) => project(row, parseSelect(null, entity));
  const context = (entity: EntityDef, suffix = "") => `${baseUrl()}${prefix}/$metadata#${entity.name}${suffix}`;

  // Service document: GET /0/odata/ lists the entity sets (Creatio Academy "odata web service (OData 4)"
  // uses it to discover objects); a cheap probe for which prefix a site serves.
  server.route("GET", new RegExp(`^${prefix}/?$`), (req) => {
    const who = authenticate(req);
    if ("status" in who) return who;
    return {
      status: 200,
      headers: { "OData-Version": "4.0", "Content-Type": contentType(req) },
      body: { "@odata.context": `${baseUrl()}${prefix}/$metadata`, value: Object.keys(ENTITIES).map((name) => ({ name, kind: "EntitySet", url: name })) },
    };
  });

  const collection = new RegExp(`^${prefix}/(?<entity>[A-Za-z0-9_]+)$`);
  const byKey = new RegExp(`^${prefix}/(?<entity>[A-Za-z0-9_]+)\\((?<key>[^)]*)\\)$`);

  server.route(
    "GET",
    collection,
    odata((req, entity) => {
      const select = req.query.get("$select");
      const columns = parseSelect(select, entity);
      let rows = tables[entity.name];
      const filter = req.query.get("$filter");
      if (filter) rows = rows.filter(parseFilter(filter, entity));
      const order = parseOrderBy(req.query.get("$orderby"), entity);
      if (order) rows = [...rows].sort(order);
      const skip = parseCount(req.query.get("$skip"), "skip") ?? 0;
      const top = parseCount(req.query.get("$top"), "top");
      rows = rows.slice(skip, top === undefined ? undefined : skip + top);
      return {
        status: 200,
        headers: { "Content-Type": contentType(req) },
        body: { "@odata.context": context(entity, select ? `(${columns.join(",")})` : ""), value: rows.map((r) => project(r, columns)) },
      };
    }),
  );

  server.route(
    "GET",
    byKey,
    odata((req, entity) => {
      const select = req.query.get("$select");
      const columns = parseSelect(select, entity);
      const row = findRow(entity, parseKey(req.params.key));
      return {
        status: 200,
        headers: { "Content-Type": contentType(req) },
        body: { "@odata.context": context(entity, `${select ? `(${columns.join(",")})` : ""}/$entity`), ...project(row, columns) },
      };
    }),
  );

  server.route(
    "POST",
    collection,
    odata((req, entity, user) => {
      requireOperation(entity, user);
      requireJson(req);
      const values = validateBody(req.body, entity);
      if (values.Id !== undefined && tables[entity.name].some((r) => r.Id === values.Id)) {
        // A duplicate primary key is a database error in Creatio, not a 409.
        throw new ODataError(500, `Violation of PRIMARY KEY constraint 'PK${entity.name}Id'. Cannot insert duplicate key in object 'dbo.${entity.name}'.`);
      }
      checkReferences(entity, values);
      const row = completeRow(entity, values, user.contactId);
      tables[entity.name].push(row);
      return {
        status: 201,
        headers: { "Content-Type": contentType(req), Location: `${baseUrl()}${prefix}/${entity.name}(${row.Id})` },
        body: { "@odata.context": context(entity, "/$entity"), ...readable(entity, row) },
      };
    }),
  );

  server.route(
    "PATCH",
    byKey,
    odata((req, entity, user) => {
      requireOperation(entity, user);
      requireJson(req);
      const row = findRow(entity, parseKey(req.params.key));
      const values = validateBody(req.body, entity);
      delete values.Id; // the key is in the URL; Creatio ignores a changed Id.
      checkReferences(entity, values);
      Object.assign(row, values, { ModifiedOn: new Date().toISOString(), ModifiedById: user.contactId });
      return { status: 204 };
    }),
  );

  server.route(
    "DELETE",
    byKey,
    odata((req, entity, user) => {
      requireOperation(entity, user);
      const key = parseKey(req.params.key);
      findRow(entity, key);
      for (const ref of REFERENCES.filter((r) => r.to === entity.name)) {
        if (tables[ref.from].some((r) => String(r[ref.column]).toLowerCase() === key)) {
          throw new ODataError(500, `The DELETE statement conflicted with the REFERENCE constraint on ${ref.from}.${ref.column}.`);
        }
      }
      tables[entity.name] = tables[entity.name].filter((r) => (r.Id as string).toLowerCase() !== key);
      return { status: 204 };
    }),
  );
  return server;
}
