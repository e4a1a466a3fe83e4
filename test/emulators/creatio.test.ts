// The Creatio emulator over HTTPS with plain fetch: there is no Creatio SDK, fetch is the client the
// app itself uses. The sandbox CA is trusted through NODE_EXTRA_CA_CERTS (dev/run-tests.ts).
import { randomUUID } from "node:crypto";
import { AUDIENCES, EmulatorContext, SANDBOX_IDENTITY, sandboxContext } from "../../dev/emulators/context";
import { createCreatioEmulator, createCreatioIdentityService } from "../../dev/emulators/creatio";
import { EMPTY_GUID, EXCHANGE_ON_PREMISES_MAIL_SERVER_ID, OFFICE365_MAIL_SERVER_ID } from "../../dev/emulators/creatio/schema";
import { EmulatorServer } from "../../dev/emulators/server";

const ctx: EmulatorContext = sandboxContext();

/** The headers docs/architecture.md "Creatio" prescribes for Creatio OData calls. */
const ODATA_HEADERS = {
  Accept: "application/json",
  "Content-Type": "application/json; charset=utf-8; IEEE754Compatible=true",
  ForceUseSession: "true",
};

interface Session {
  cookie: string;
  csrf: string;
}

async function login(
  base: string,
  userName: string,
  password: string,
  headers: Record<string, string> = { ForceUseSession: "true" },
): Promise<{ status: number; body: any; setCookies: string[]; session?: Session }> {
  const response = await fetch(`${base}/ServiceModel/AuthService.svc/Login`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify({ UserName: userName, UserPassword: password }),
  });
  const setCookies = response.headers.getSetCookie();
  const pairs = setCookies.map((c) => c.split(";")[0]);
  const csrf = pairs.find((p) => p.startsWith("BPMCSRF="))?.slice("BPMCSRF=".length);
  return { status: response.status, body: await response.json(), setCookies, session: csrf ? { cookie: pairs.join("; "), csrf } : undefined };
}

function call(url: string, session: Session | undefined, init: { method?: string; body?: unknown; csrf?: string | null; bearer?: string } = {}) {
  const headers: Record<string, string> = { ...ODATA_HEADERS };
  if (session) headers.Cookie = session.cookie;
  const csrf = init.csrf === undefined ? session?.csrf : init.csrf;
  if (csrf) headers.BPMCSRF = csrf;
  if (init.bearer) headers.Authorization = `Bearer ${init.bearer}`;
  return fetch(url, { method: init.method ?? "GET", headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
}

let server: EmulatorServer;
let base: string;
let odata: string;
const state = async () => (await (await fetch(`${base}/_emulator/state`)).json()) as any;

beforeAll(async () => {
  server = createCreatioEmulator(ctx);
  base = await server.listen(0);
  odata = `${base}/0/odata`;
});

afterAll(async () => {
  await server.close();
});

beforeEach(async () => {
  await fetch(`${base}/_emulator/reset`, { method: "POST" });
});

test("login: Code 0 with the Creatio cookies; a wrong password is 200 with Code 1 and no cookies", async () => {
  const ok = await login(base, "Supervisor", "Supervisor");
  expect(ok.status).toBe(200);
  expect(ok.body).toEqual({ Code: 0, Message: "", Exception: null, PasswordChangeUrl: null, RedirectUrl: null });
  const byName = Object.fromEntries(ok.setCookies.map((c) => [c.split("=")[0], c]));
  expect(Object.keys(byName).sort()).toEqual([".ASPXAUTH", "BPMCSRF", "BPMLOADER", "UserName"]);
  expect(byName[".ASPXAUTH"]).toMatch(/HttpOnly/);
  expect(byName.BPMCSRF).not.toMatch(/HttpOnly/);
  expect(byName[".ASPXAUTH"]).toMatch(/secure/);

  const bad = await login(base, "Supervisor", "wrong");
  expect(bad.status).toBe(200);
  expect(bad.body).toMatchObject({ Code: 1, Message: expect.any(String) });
  expect(bad.setCookies).toEqual([]);
});

test("login without the ForceUseSession: true header is refused (401, Code 1, no cookies)", async () => {
  for (const headers of [{}, { ForceUseSession: "false" }] as Record<string, string>[]) {
    const refused = await login(base, "Supervisor", "Supervisor", headers);
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ Code: 1, Message: expect.stringContaining("ForceUseSession") });
    expect(refused.setCookies).toEqual([]);
  }
  expect((await state()).sessions).toBe(0);
});

test("OData needs the right to use OData: 403 with Creatio's message, for reads and the service document", async () => {
  const { session } = await login(base, "Portal", "Portal");
  expect(session).toBeDefined(); // the web UI login itself works
  for (const url of [`${odata}/MailServer`, `${odata}/`]) {
    const refused = await call(url, session);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: { code: "", message: "Current user does not have sufficient permissions to use OData" } });
  }
});

test("the root the site does not serve answers like a real site: 302 to the login page (default), an HTML page, or an HTML 404", async () => {
  const { session } = await login(base, "Supervisor", "Supervisor");
  const other = `${base}/odata/MailServer?$select=Id`;
  const redirected = await fetch(other, { headers: { ...ODATA_HEADERS, Cookie: session!.cookie, BPMCSRF: session!.csrf }, redirect: "manual" });
  expect(redirected.status).toBe(302);
  expect(redirected.headers.get("location")).toBe(`/Login/NuiLogin.aspx?ReturnUrl=${encodeURIComponent("/odata/MailServer")}`);

  const setOtherRoot = (answer: string) =>
    fetch(`${base}/_emulator/other-root`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ answer }) });
  expect((await setOtherRoot("html")).status).toBe(200);
  const page = await call(other, session);
  expect(page.status).toBe(200);
  expect(page.headers.get("content-type")).toMatch(/^text\/html/);
  expect(await page.text()).toMatch(/^<!DOCTYPE html>/);

  await setOtherRoot("notFound");
  const missing = await call(other, session);
  expect(missing.status).toBe(404);
  expect(missing.headers.get("content-type")).toMatch(/^text\/html/);
  expect((await state()).otherRoot).toBe("notFound");
  expect((await setOtherRoot("teapot")).status).toBe(400);
});

test("saving MailServer: SubscriptionTtl 10; linking clears basic-auth passwords on that server only; unlinking deletes the OAuth application and users' tokens", async () => {
  const { session } = await login(base, "Supervisor", "Supervisor");
  const mailbox = (s: any, server: string) => s.MailboxSyncSettings.find((m: any) => m.MailServerId === server && m.OAuthTokenId === null);
  const before = await state();
  expect(mailbox(before, OFFICE365_MAIL_SERVER_ID).HasPassword).toBe(true);
  expect(JSON.stringify(before.MailboxSyncSettings)).not.toMatch(/password"\s*:\s*"/i); // no password value is kept
  // Mailboxes are readable through OData by mail server; whether one stores a password is not a column.
  const listed = (await (await call(`${odata}/MailboxSyncSettings?$filter=MailServerId eq ${OFFICE365_MAIL_SERVER_ID}&$select=Id,UserName`, session)).json()) as { value: Record<string, unknown>[] };
  expect(listed.value).toEqual([{ Id: mailbox(before, OFFICE365_MAIL_SERVER_ID).Id, UserName: "Sales" }]);
  expect((await call(`${odata}/MailboxSyncSettings?$select=HasPassword`, session)).status).toBe(400);

  const app = (await (
    await call(`${odata}/OAuthApplications`, session, { method: "POST", body: { Name: "Office365OAuthAuthenticator", ClientId: "cid", SecretKey: "s" } })
  ).json()) as any;
  expect((await call(`${odata}/MailServer(${OFFICE365_MAIL_SERVER_ID})`, session, { method: "PATCH", body: { OAuthApplicationId: app.Id } })).status).toBe(204);
  const linked = await state();
  expect(mailbox(linked, OFFICE365_MAIL_SERVER_ID).HasPassword).toBe(false);
  expect(mailbox(linked, EXCHANGE_ON_PREMISES_MAIL_SERVER_ID).HasPassword).toBe(true);
  expect(linked.MailServer.find((r: any) => r.Id === OFFICE365_MAIL_SERVER_ID).SubscriptionTtl).toBe(10);
  expect(linked.MailServer.find((r: any) => r.Id === EXCHANGE_ON_PREMISES_MAIL_SERVER_ID).SubscriptionTtl).toBe(0);
  const read = (await (await call(`${odata}/MailServer(${OFFICE365_MAIL_SERVER_ID})?$select=SubscriptionTtl`, session)).json()) as any;
  expect(read.SubscriptionTtl).toBe(10);

  // A user connects a mailbox through the linked application: a token; unlinking removes it and the application.
  const connected = await fetch(`${base}/_emulator/connect-mailbox`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ userName: "Sales", email: "sales@contoso.example" }),
  });
  expect(connected.status).toBe(200);
  expect((await state()).OAuthTokens).toEqual([expect.objectContaining({ OAuthApplicationId: app.Id, UserName: "Sales" })]);
  expect((await call(`${odata}/MailServer(${OFFICE365_MAIL_SERVER_ID})`, session, { method: "PATCH", body: { OAuthApplicationId: EMPTY_GUID } })).status).toBe(204);
  const unlinked = await state();
  expect(unlinked.OAuthTokens).toEqual([]);
  expect(unlinked.OAuthApplications).toEqual([]);
  expect(unlinked.MailboxSyncSettings.every((m: any) => m.OAuthTokenId === null)).toBe(true);
});

test("OData: read the Office 365 mail server, insert an OAuth application, link it; SecretKey is write-only", async () => {
  const { session } = await login(base, "Supervisor", "Supervisor");

  const got = await call(`${odata}/MailServer(${OFFICE365_MAIL_SERVER_ID})?$select=Id,Name,OAuthApplicationId`, session);
  expect(got.status).toBe(200);
  const mailServer = (await got.json()) as any;
  expect(mailServer).toEqual({
    "@odata.context": expect.stringContaining("$metadata#MailServer(Id,Name,OAuthApplicationId)/$entity"),
    Id: OFFICE365_MAIL_SERVER_ID,
    Name: expect.any(String),
    OAuthApplicationId: "00000000-0000-0000-0000-000000000000",
  });

  const created = await call(`${odata}/OAuthApplications`, session, {
    method: "POST",
    body: {
      Name: "Office365OAuthAuthenticator",
      AppClassName: "Office365OAuthAuthenticator",
      ClientClassName: "Office365OAuthClient",
      ClientId: "app-client-id",
      SecretKey: "very-secret",
    },
  });
  expect(created.status).toBe(201);
  const app = (await created.json()) as any;
  expect(app.Id).toMatch(/^[0-9a-f-]{36}$/);
  expect(app).not.toHaveProperty("SecretKey");
  expect(created.headers.get("location")).toBe(`${odata}/OAuthApplications(${app.Id})`);

  const patched = await call(`${odata}/MailServer(${OFFICE365_MAIL_SERVER_ID})`, session, { method: "PATCH", body: { OAuthApplicationId: app.Id } });
  expect(patched.status).toBe(204);

  const filtered = await call(`${odata}/OAuthApplications?$filter=ClientId eq 'app-client-id'`, session);
  const list = (await filtered.json()) as any;
  expect(list.value).toHaveLength(1);
  expect(list.value[0]).toMatchObject({ Id: app.Id, ClientClassName: "Office365OAuthClient" });
  expect(JSON.stringify(list)).not.toContain("very-secret");
  expect((await call(`${odata}/OAuthApplications(${app.Id})`, session).then((r) => r.json())) as any).not.toHaveProperty("SecretKey");
  expect((await call(`${odata}/OAuthApplications?$select=SecretKey`, session)).status).toBe(400);

  const byId = (await (await call(`${odata}/MailServer?$filter=Id eq ${OFFICE365_MAIL_SERVER_ID}&$select=OAuthApplicationId`, session)).json()) as any;
  expect(byId.value).toEqual([{ OAuthApplicationId: app.Id }]);

  const s = await state();
  expect(s.OAuthApplications).toEqual([expect.objectContaining({ Id: app.Id, SecretKey: "very-secret" })]);
  expect(s.MailServer.find((r: any) => r.Id === OFFICE365_MAIL_SERVER_ID).OAuthApplicationId).toBe(app.Id);

  const updated = await call(`${odata}/OAuthApplications(${app.Id})`, session, { method: "PATCH", body: { SecretKey: "rotated" } });
  expect(updated.status).toBe(204);
  expect((await state()).OAuthApplications[0].SecretKey).toBe("rotated");
});

test("OData errors: unknown key 404, a quoted guid in $filter 400, a dangling lookup refused, unknown column 400", async () => {
  const { session } = await login(base, "Supervisor", "Supervisor");
  const missing = await call(`${odata}/OAuthApplications(${randomUUID()})`, session);
  expect(missing.status).toBe(404);
  expect(await missing.json()).toEqual({ error: { code: "", message: expect.any(String) } });
  expect((await call(`${odata}/MailServer?$filter=Id eq '${OFFICE365_MAIL_SERVER_ID}'`, session)).status).toBe(400);
  expect((await call(`${odata}/MailServer(${OFFICE365_MAIL_SERVER_ID})`, session, { method: "PATCH", body: { OAuthApplicationId: randomUUID() } })).status).toBe(500);
  expect((await call(`${odata}/OAuthApplications`, session, { method: "POST", body: { Nope: 1 } })).status).toBe(400);
  expect((await call(`${odata}/NoSuchEntity`, session)).status).toBe(404);
  expect((await call(`${base}/0/odata/MailServer/x/y`, session)).status).toBe(404);
});

test("a missing or wrong BPMCSRF header is 401", async () => {
  const { session } = await login(base, "Supervisor", "Supervisor");
  expect((await call(`${odata}/MailServer`, session, { csrf: null })).status).toBe(401);
  expect((await call(`${odata}/MailServer(${OFFICE365_MAIL_SERVER_ID})`, session, { method: "PATCH", csrf: "forged", body: { Name: "x" } })).status).toBe(401);
  expect((await call(`${odata}/MailServer`, undefined)).status).toBe(401);
});

test("a user without CanManageMailServers reads but cannot write MailServer (403)", async () => {
  const { session } = await login(base, "Sales", "Sales");
  expect((await call(`${odata}/MailServer`, session)).status).toBe(200);
  const refused = await call(`${odata}/MailServer(${OFFICE365_MAIL_SERVER_ID})`, session, { method: "PATCH", body: { Name: "mine" } });
  expect(refused.status).toBe(403);
  expect(((await refused.json()) as any).error.message).toContain("CanManageMailServers");
  expect((await state()).MailServer.find((r: any) => r.Id === OFFICE365_MAIL_SERVER_ID).Name).not.toBe("mine");
});

test("expired sessions answer 401 until the client logs in again", async () => {
  const first = (await login(base, "Supervisor", "Supervisor")).session;
  expect((await call(`${odata}/MailServer`, first)).status).toBe(200);
  const expired = await fetch(`${base}/_emulator/expire-sessions`, { method: "POST" });
  expect(await expired.json()).toEqual({ expired: 1 });
  expect((await call(`${odata}/MailServer`, first)).status).toBe(401);
  const second = (await login(base, "Supervisor", "Supervisor")).session;
  expect((await call(`${odata}/MailServer`, second)).status).toBe(200);

  await fetch(`${base}/_emulator/session-lifetime`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ sessionLifetimeMs: 200 }) });
  await new Promise((r) => setTimeout(r, 300));
  expect((await call(`${odata}/MailServer`, second)).status).toBe(401);
});

test("Identity Service client credentials, on its own host: the bearer token works without cookies or BPMCSRF", async () => {
  const identity = createCreatioIdentityService(ctx);
  const identityUrl = await identity.listen(0);
  try {
    // The site's own origin has no token endpoint.
    expect((await fetch(`${base}/connect/token`, { method: "POST" })).status).toBe(404);
    const token = await fetch(`${identityUrl}/connect/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: "sandbox-integration", client_secret: "sandbox-integration-secret" }),
    });
    expect(token.status).toBe(200);
    const issued = (await token.json()) as any;
    expect(issued).toMatchObject({ token_type: "Bearer", expires_in: 3600, access_token: expect.any(String) });
    expect((await call(`${odata}/MailServer(${OFFICE365_MAIL_SERVER_ID})`, undefined, { bearer: issued.access_token })).status).toBe(200);
    expect((await call(`${odata}/MailServer(${OFFICE365_MAIL_SERVER_ID})`, undefined, { method: "PATCH", bearer: issued.access_token, body: { Name: "Office 365" } })).status).toBe(204);

    const bad = await fetch(`${identityUrl}/connect/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: "sandbox-integration", client_secret: "wrong" }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: "invalid_client" });
  } finally {
    await identity.close();
  }

  // A token for another resource (Key Vault) is not a Creatio token.
  const foreign = ctx.signer.issue({ aud: AUDIENCES.keyVault[0], iss: "x", tid: SANDBOX_IDENTITY.tenantId, appid: "sandbox-integration", oid: "o" }).token;
  expect((await call(`${odata}/MailServer`, undefined, { bearer: foreign })).status).toBe(401);
});

test("a .NET Core site serves OData at /odata only", async () => {
  const core = createCreatioEmulator(ctx, { netCore: true });
  const coreBase = await core.listen(0);
  try {
    const { session } = await login(coreBase, "Supervisor", "Supervisor");
    expect((await call(`${coreBase}/odata/MailServer(${OFFICE365_MAIL_SERVER_ID})`, session)).status).toBe(200);
    const wrongRoot = await fetch(`${coreBase}/0/odata/MailServer(${OFFICE365_MAIL_SERVER_ID})`, { headers: { Cookie: session!.cookie, BPMCSRF: session!.csrf }, redirect: "manual" });
    expect(wrongRoot.status).toBe(302);
    expect(wrongRoot.headers.get("location")).toMatch(/^\/Login\/Login\.html\?ReturnUrl=/);
    const serviceDocument = (await (await call(`${coreBase}/odata/`, session)).json()) as any;
    expect(serviceDocument.value.map((e: any) => e.name)).toEqual(["MailboxSyncSettings", "MailServer", "OAuthApplications"]);
  } finally {
    await core.close();
  }
});
