// Creatio emulator: cookie login through AuthService.svc with CSRF protection, and OData 4 for the
// objects the product touches, `MailServer` and `OAuthApplications`. The Identity Service (client
// credentials) runs on a host of its own: ./creatio/identity.ts. Sources: docs/architecture.md
// "Creatio" and Creatio Academy: "AuthService.svc web service" (https://academy.creatio.com/docs/8.x/dev/development-on-creatio-platform/integrations-and-api/authentication/authentication-basics/references/authservice-svc),
// "Protection from CSRF attacks", "odata web service (OData 4)" reference with its request headers
// including BPMCSRF on GETs too, "OData basics" (`/0/odata` on .NET Framework, `/odata` on .NET).
//
// Stricter behaviours (each with its source or marked assumed where it is defined below):
//   - AuthService.svc/Login requires the `ForceUseSession: true` header;
//   - OData needs the "Access to OData" system operation (403 otherwise);
//   - the OData root the site does not serve answers like a real site: a 302 to the login page
//     (default), an HTML page, or an HTML 404 (option `otherRoot`, or POST /_emulator/other-root);
//   - saving a MailServer sets SubscriptionTtl to 10; linking an OAuth application clears the stored
//     passwords of the basic-auth mailboxes on that server; unlinking deletes the OAuthApplications
//     row and the users' tokens issued through it.
//
// Options: `netCore` (default false) emulates a .NET Core / .NET 8 site where OData lives at
// `/odata`; otherwise a .NET Framework site with `/0/odata`. `sessionLifetimeMs` expires idle sessions.
//
// Admin additions to the generic /_emulator API:
//   POST /_emulator/expire-sessions   every cookie session ends now (next call -> 401); answers {expired}
//   POST /_emulator/session-lifetime  body {sessionLifetimeMs: number | null}
//   POST /_emulator/other-root        body {answer: "loginRedirect" | "html" | "notFound"}
//   POST /_emulator/connect-mailbox   body {userName, email}: a user connects a mailbox on the Office 365
//                                     server through the linked OAuth application (a token row)
// State (GET /_emulator/state): { MailServer: Row[], OAuthApplications: Row[] (SecretKey included),
//   MailboxSyncSettings: [{Id, MailServerId, SenderEmailAddress, UserName, HasPassword, OAuthTokenId}],
//   OAuthTokens: [{Id, OAuthApplicationId, UserName}],
//   users: [{UserName, ContactId, operations}], clients: [{clientId, userName}], sessions: number, odataPrefix, otherRoot }
import { randomUUID } from "node:crypto";
import type { EmulatorContext } from "./context";
import { EmulatorRequest, EmulatorResponse, EmulatorServer } from "./server";
import { bearerToken } from "./jwtSigner";
import { CreatioUser, IdentityClient, loginCookies, ODATA_OPERATION, parseCookies, SEED_CLIENTS, SEED_USERS, SessionStore } from "./creatio/auth";
import { CREATIO_API_AUDIENCE } from "./creatio/identity";
import { isGuid, ODataError, parseCount, parseFilter, parseOrderBy, parseSelect, project, validateBody } from "./creatio/odata";
import { completeRow, EMPTY_GUID, ENTITIES, EntityDef, Row, seedMailboxes, seedRows } from "./creatio/schema";

export { ODATA_OPERATION, SEED_CLIENTS, SEED_USERS } from "./creatio/auth";
export { CREATIO_API_AUDIENCE, createCreatioIdentityService } from "./creatio/identity";
export type { CreatioUser, IdentityClient } from "./creatio/auth";
import { OFFICE365_MAIL_SERVER_ID } from "./creatio/schema";
export { EXCHANGE_ON_PREMISES_MAIL_SERVER_ID, GMAIL_MAIL_SERVER_ID, OFFICE365_MAIL_SERVER_ID } from "./creatio/schema";

/** How the OData root a site does not serve answers (a .NET Framework site's `/odata`, a .NET site's `/0/odata`). */
export type OtherRootAnswer = "loginRedirect" | "html" | "notFound";
const OTHER_ROOT_ANSWERS: OtherRootAnswer[] = ["loginRedirect", "html", "notFound"];

export interface CreatioEmulatorOptions {
  /** A .NET Core site: OData at `/odata` only. Default: .NET Framework, `/0/odata` only. */
  netCore?: boolean;
  /** Idle sessions older than this are gone (401). Default: no expiry. */
  sessionLifetimeMs?: number;
  /** How the root the site does not serve answers. Default `loginRedirect`. */
  otherRoot?: OtherRootAnswer;
  users?: CreatioUser[];
  clients?: IdentityClient[];
}

/** Lookups the emulator enforces like the database's foreign keys. */
const REFERENCES: { from: string; column: string; to: string }[] = [{ from: "MailServer", column: "OAuthApplicationId", to: "OAuthApplications" }];

export function createCreatioEmulator(ctx: EmulatorContext, options: CreatioEmulatorOptions = {}): EmulatorServer {
  const users = options.users ?? SEED_USERS;
  const clients = options.clients ?? SEED_CLIENTS;
  const supervisor = users[0];
  let sessionLifetimeMs = options.sessionLifetimeMs;
  const sessions = new SessionStore(() => sessionLifetimeMs);
  const prefix = options.netCore ? "/odata" : "/0/odata";
  const otherPrefix = options.netCore ? "/0/odata" : "/odata";
  let otherRoot: OtherRootAnswer = options.otherRoot ?? "loginRedirect";
  let tables: Record<string, Row[]> = {};
  const seed = () => {
    tables = { ...seedRows(supervisor.contactId), ...seedMailboxes() };
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
      MailboxSyncSettings: tables.MailboxSyncSettings.map((r) => ({ ...r })),
      OAuthTokens: tables.OAuthTokens.map((r) => ({ ...r })),
      users: users.map((u) => ({ UserName: u.userName, ContactId: u.contactId, operations: u.operations })),
      clients: clients.map((c) => ({ clientId: c.clientId, userName: c.userName })),
      sessions: sessions.count,
      odataPrefix: prefix,
      otherRoot,
    }),
    reset: () => {
      seed();
      sessionLifetimeMs = options.sessionLifetimeMs;
      otherRoot = options.otherRoot ?? "loginRedirect";
    },
    errorBody: (_status, code, message) => ({ error: { code, message } }),
  });
  const baseUrl = () => `https://localhost:${server.port}`;
  const findUser = (name: string) => users.find((u) => u.userName.toLowerCase() === name.toLowerCase());

  // --- Cookie login. Creatio answers 200 either way; Code 0 is success, Code 1 a refused login.
  server.route("POST", /^\/ServiceModel\/AuthService\.svc\/Login$/i, (req) => {
    // Creatio Academy "AuthService.svc web service" marks `ForceUseSession: true` as a required
    // header. What Creatio answers without it is assumed: 401 with a Code 1 login answer.
    if (String(req.headers.forceusesession ?? "").toLowerCase() !== "true") {
      return {
        status: 401,
        body: { Code: 1, Message: "The ForceUseSession: true header is required.", Exception: null, PasswordChangeUrl: null, RedirectUrl: null },
      };
    }
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

  // The Identity Service's /connect/token is not on the site's origin (./creatio/identity.ts): no route here.

  // --- Session expiry fault.
  server.route("POST", /^\/_emulator\/expire-sessions$/, () => ({ status: 200, body: { expired: sessions.expireAll() } }));
  server.route("POST", /^\/_emulator\/session-lifetime$/, (req) => {
    const value = req.body?.sessionLifetimeMs;
    if (value !== null && (typeof value !== "number" || value < 0)) return { status: 400, body: { error: "sessionLifetimeMs must be a number or null" } };
    sessionLifetimeMs = value ?? undefined;
    return { status: 200, body: { sessionLifetimeMs: sessionLifetimeMs ?? null } };
  });
  server.route("POST", /^\/_emulator\/other-root$/, (req) => {
    const answer = req.body?.answer;
    if (!OTHER_ROOT_ANSWERS.includes(answer)) return { status: 400, body: { error: `answer must be one of ${OTHER_ROOT_ANSWERS.join(", ")}` } };
    otherRoot = answer;
    return { status: 200, body: { otherRoot } };
  });
  // A user connects a mailbox on the Office 365 server with Microsoft sign-in: Creatio keeps the
  // user's token against the OAuth application the server links to.
  server.route("POST", /^\/_emulator\/connect-mailbox$/, (req) => {
    const { userName, email } = (req.body ?? {}) as { userName?: unknown; email?: unknown };
    if (typeof userName !== "string" || typeof email !== "string") return { status: 400, body: { error: "body {userName, email} expected" } };
    const office365 = tables.MailServer.find((r) => r.Id === OFFICE365_MAIL_SERVER_ID)!;
    const appId = String(office365.OAuthApplicationId);
    if (appId === EMPTY_GUID) return { status: 409, body: { error: "the Office 365 mail server links no OAuth application" } };
    const token = { Id: randomUUID(), OAuthApplicationId: appId, UserName: userName };
    tables.OAuthTokens.push(token);
    const mailbox = { Id: randomUUID(), MailServerId: OFFICE365_MAIL_SERVER_ID, SenderEmailAddress: email, UserName: userName, HasPassword: false, OAuthTokenId: token.Id };
    tables.MailboxSyncSettings.push(mailbox);
    return { status: 200, body: mailbox };
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
  /**
   * OData is a system operation of its own ("Access to OData"; code assumed, see ./creatio/auth.ts).
   * A user without it gets 403 and this message (wording per issue 9, from a Creatio site's answer).
   */
  const odataRefused = (user: CreatioUser): EmulatorResponse | undefined =>
    user.operations.includes(ODATA_OPERATION) ? undefined : odataError(403, "Current user does not have sufficient permissions to use OData");

  /** Wraps an OData handler: auth, entity lookup, OData errors, and response headers. */
  const odata =
    (handler: (req: EmulatorRequest, entity: EntityDef, user: CreatioUser) => EmulatorResponse) =>
    (req: EmulatorRequest): EmulatorResponse => {
      const who = authenticate(req);
      if ("status" in who) return who;
      const refused = odataRefused(who);
      if (refused) return refused;
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

  /**
   * What saving a MailServer does besides storing the row, as Creatio's mail server page does it
   * (issue 9; no public source, so assumed in the details): SubscriptionTtl becomes 10; saving it
   * with an OAuth application linked (the link itself, or any later save) clears the stored password
   * of every basic-auth mailbox on that server (those users must connect again with Microsoft
   * sign-in); unlinking deletes the OAuthApplications row and the users' tokens issued through it.
   */
  const mailServerSaved = (row: Row, linkedBefore: string) => {
    row.SubscriptionTtl = 10;
    const linked = String(row.OAuthApplicationId ?? EMPTY_GUID);
    if (linked !== EMPTY_GUID) {
      for (const mailbox of tables.MailboxSyncSettings) if (mailbox.MailServerId === row.Id && mailbox.HasPassword) mailbox.HasPassword = false;
    } else if (linkedBefore !== EMPTY_GUID) {
      const tokenIds = new Set(tables.OAuthTokens.filter((t) => t.OAuthApplicationId === linkedBefore).map((t) => t.Id));
      tables.OAuthTokens = tables.OAuthTokens.filter((t) => !tokenIds.has(t.Id));
      for (const mailbox of tables.MailboxSyncSettings) if (tokenIds.has(mailbox.OAuthTokenId as string)) mailbox.OAuthTokenId = null;
      if (!tables.MailServer.some((m) => String(m.OAuthApplicationId) === linkedBefore)) {
        tables.OAuthApplications = tables.OAuthApplications.filter((a) => String(a.Id).toLowerCase() !== linkedBefore);
      }
    }
  };
  const context = (entity: EntityDef, suffix = "") => `${baseUrl()}${prefix}/$metadata#${entity.name}${suffix}`;

  // Service document: GET /0/odata/ lists the entity sets (Creatio Academy "odata web service (OData 4)"
  // uses it to discover objects); a cheap probe for which prefix a site serves.
  server.route("GET", new RegExp(`^${prefix}/?$`), (req) => {
    const who = authenticate(req);
    if ("status" in who) return who;
    const refused = odataRefused(who);
    if (refused) return refused;
    return {
      status: 200,
      headers: { "OData-Version": "4.0", "Content-Type": contentType(req) },
      body: { "@odata.context": `${baseUrl()}${prefix}/$metadata`, value: Object.keys(ENTITIES).map((name) => ({ name, kind: "EntitySet", url: name })) },
    };
  });

  // The root this site does not serve. Real sites put their web UI there: an anonymous or unknown
  // path gets a 302 to the login page or an HTML page, rarely a bare 404 (issue 9; login page paths
  // assumed: /Login/NuiLogin.aspx on .NET Framework, /Login/Login.html on .NET).
  const otherRootAnswer = (req: EmulatorRequest): EmulatorResponse => {
    const html = (title: string) => `<!DOCTYPE html><html><head><title>${title}</title></head><body><div id="app">Creatio</div></body></html>`;
    switch (otherRoot) {
      case "loginRedirect": {
        const login = options.netCore ? "/Login/Login.html" : "/Login/NuiLogin.aspx";
        return { status: 302, headers: { Location: `${login}?ReturnUrl=${encodeURIComponent(req.rawPath)}`, "Content-Type": "text/html; charset=utf-8" }, body: html("Object moved") };
      }
      case "html":
        return { status: 200, headers: { "Content-Type": "text/html; charset=utf-8" }, body: html("Creatio") };
      case "notFound":
        return { status: 404, headers: { "Content-Type": "text/html; charset=utf-8" }, body: html("404 - File or directory not found.") };
    }
  };
  for (const method of ["GET", "POST", "PATCH", "DELETE"]) server.route(method, new RegExp(`^${otherPrefix}(/.*)?$`), otherRootAnswer);

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
      if (entity.name === "MailServer") mailServerSaved(row, EMPTY_GUID);
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
      const linkedBefore = String(row.OAuthApplicationId ?? EMPTY_GUID);
      Object.assign(row, values, { ModifiedOn: new Date().toISOString(), ModifiedById: user.contactId });
      if (entity.name === "MailServer") mailServerSaved(row, linkedBefore);
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
