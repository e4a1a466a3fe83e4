// Who may call the Creatio emulator: users with passwords and system operations (cookie login via
// AuthService.svc), OAuth clients of the Identity Service (client credentials), and the sessions
// and bearer tokens they obtain. Sources: Creatio Academy "Authentication of external requests"
// (AuthService.svc/Login, the .ASPXAUTH / BPMCSRF / BPMLOADER / UserName cookies, CSRF protection
// since 7.10: the BPMCSRF cookie value goes back in a BPMCSRF header) and "Authorize external
// requests using OAuth 2.0" (Identity Service `/connect/token`, client_credentials; each client
// acts as a system user).
import { randomBytes, randomUUID } from "node:crypto";

export interface CreatioUser {
  userName: string;
  password: string;
  /** The user's contact id: what CreatedById/ModifiedById point to. */
  contactId: string;
  /** System operations granted (e.g. CanManageMailServers). */
  operations: string[];
}

export interface IdentityClient {
  clientId: string;
  clientSecret: string;
  /** The system user the client acts as. */
  userName: string;
}

/**
 * System operation "Access to OData" that every OData call needs (code assumed: CanUseODataService;
 * the refusal message is the one Creatio answers, see ../creatio.ts).
 */
export const ODATA_OPERATION = "CanUseODataService";

export const SEED_USERS: CreatioUser[] = [
  // Creatio's default administrator on a fresh (trial/dev) site.
  { userName: "Supervisor", password: "Supervisor", contactId: "410006e1-ca4e-4502-a9ec-e54d922d2c00", operations: ["CanManageMailServers", ODATA_OPERATION] },
  { userName: "Sales", password: "Sales", contactId: "5a0f3c3e-2c8e-4f44-8f5b-4f1c8b0b5a11", operations: [ODATA_OPERATION] },
  // A user of the web UI only: no access to OData.
  { userName: "Portal", password: "Portal", contactId: "6b1e4d4f-3d9f-4a55-9a2d-5a2d9c1c6b22", operations: [] },
];

export const SEED_CLIENTS: IdentityClient[] = [
  { clientId: "sandbox-integration", clientSecret: "sandbox-integration-secret", userName: "Supervisor" },
  { clientId: "sandbox-readonly", clientSecret: "sandbox-readonly-secret", userName: "Sales" },
];

export interface Session {
  id: string;
  userName: string;
  csrf: string;
  lastUsedMs: number;
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly lifetimeMs: () => number | undefined) {}

  create(userName: string): Session {
    const session: Session = { id: randomBytes(48).toString("hex").toUpperCase(), userName, csrf: randomBytes(16).toString("base64url"), lastUsedMs: Date.now() };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session for an `.ASPXAUTH` value; sliding expiry like ASP.NET forms authentication. */
  find(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const session = this.sessions.get(id);
    if (!session) return undefined;
    const lifetime = this.lifetimeMs();
    if (lifetime !== undefined && Date.now() - session.lastUsedMs > lifetime) {
      this.sessions.delete(id);
      return undefined;
    }
    session.lastUsedMs = Date.now();
    return session;
  }

  end(id: string | undefined): void {
    if (id) this.sessions.delete(id);
  }

  expireAll(): number {
    const count = this.sessions.size;
    this.sessions.clear();
    return count;
  }

  get count(): number {
    return this.sessions.size;
  }
}

/** Cookies of a request, by name. */
export function parseCookies(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = {};
  for (const part of (header ?? "").split(";")) {
    const index = part.indexOf("=");
    if (index > 0) cookies[part.slice(0, index).trim()] = part.slice(index + 1).trim();
  }
  return cookies;
}

/**
 * The Set-Cookie headers of a successful login. `.ASPXAUTH` and `BPMLOADER` are HttpOnly; `BPMCSRF`
 * is readable by script (the browser client copies it into the header); `UserName` carries the
 * login as char codes joined by `|`, as Creatio writes it.
 */
export function loginCookies(session: Session, secure: boolean): string[] {
  const attrs = `path=/;${secure ? " secure;" : ""} SameSite=None`;
  const userName = [...session.userName].map((ch) => ch.charCodeAt(0)).join("|");
  return [
    `.ASPXAUTH=${session.id}; ${attrs}; HttpOnly`,
    `BPMCSRF=${session.csrf}; ${attrs}`,
    `BPMLOADER=${randomUUID().replace(/-/g, "")}; ${attrs}; HttpOnly`,
    `UserName=${userName}; ${attrs}; HttpOnly`,
  ];
}
