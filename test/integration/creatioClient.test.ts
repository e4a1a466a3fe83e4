// The Creatio client against the Creatio emulator over HTTPS: both OData roots (whatever the other
// root answers), both sign-in kinds, Creatio's Code 1 refusal, the ForceUseSession header the
// emulator requires at login, one re-login after the session ends, and errors that name the call.
import { createCreatioEmulator, createCreatioIdentityService, SEED_CLIENTS, SEED_USERS, OFFICE365_MAIL_SERVER_ID } from "../../dev/emulators/creatio";
import { type EmulatorContext, sandboxContext } from "../../dev/emulators/context";
import type { EmulatorServer } from "../../dev/emulators/server";
import { CreatioClient } from "../../src/clients/creatio";

const ctx: EmulatorContext = sandboxContext();
const supervisor = { username: SEED_USERS[0]!.userName, password: SEED_USERS[0]!.password };
const fast = { sleep: async () => undefined, baseDelayMs: 1 };

let framework: EmulatorServer;
let netCore: EmulatorServer;
let identity: EmulatorServer;
let frameworkUrl: string;
let netCoreUrl: string;
let identityUrl: string;

const setOtherRoot = (url: string, answer: string) =>
  fetch(`${url}/_emulator/other-root`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ answer }) });

beforeAll(async () => {
  framework = createCreatioEmulator(ctx);
  netCore = createCreatioEmulator(ctx, { netCore: true });
  identity = createCreatioIdentityService(ctx);
  frameworkUrl = await framework.listen(0);
  netCoreUrl = await netCore.listen(0);
  identityUrl = await identity.listen(0);
});

afterAll(async () => {
  await Promise.all([framework?.close(), netCore?.close(), identity?.close()]);
});

beforeEach(async () => {
  await Promise.all([frameworkUrl, netCoreUrl].map((url) => fetch(`${url}/_emulator/reset`, { method: "POST" })));
});

describe("CreatioClient", () => {
  it("detects /0/odata on a .NET Framework site and /odata on a .NET Core site", async () => {
    const a = new CreatioClient({ origin: frameworkUrl, credential: supervisor, ...fast });
    const b = new CreatioClient({ origin: netCoreUrl, credential: supervisor, ...fast });
    expect(await a.odataRoot()).toBe("/0/odata");
    expect(await b.odataRoot()).toBe("/odata");
    const row = await b.get<{ Id: string }>(`/MailServer(${OFFICE365_MAIL_SERVER_ID})?$select=Id,Name,OAuthApplicationId`);
    expect(row.body?.Id).toBe(OFFICE365_MAIL_SERVER_ID);
    // The emulator refuses a login without ForceUseSession: true, so getting here shows the client sends it.
    const logins = ((await (await fetch(`${netCoreUrl}/_emulator/requests`)).json()) as { path: string; status: number }[]).filter((r) => /Login$/.test(r.path));
    expect(logins).toEqual([expect.objectContaining({ status: 200 })]);
  });

  it.each(["loginRedirect", "html", "notFound"])("on a .NET Core site, /0/odata answering %s means /odata", async (answer) => {
    await setOtherRoot(netCoreUrl, answer);
    const client = new CreatioClient({ origin: netCoreUrl, credential: supervisor, ...fast });
    expect(await client.odataRoot()).toBe("/odata");
  });

  it.each(["loginRedirect", "html", "notFound"])("on a .NET Framework site, /0/odata is used whatever /odata answers (%s)", async (answer) => {
    await setOtherRoot(frameworkUrl, answer);
    const client = new CreatioClient({ origin: frameworkUrl, credential: supervisor, ...fast });
    expect(await client.odataRoot()).toBe("/0/odata");
  });

  it("when no root answers OData, the error says what each root answered", async () => {
    // A .NET site whose /0/odata redirects to the login page and whose /odata shows a maintenance page.
    const client = new CreatioClient({ origin: netCoreUrl, credential: supervisor, ...fast });
    const fetchAllHtml: typeof fetch = async (input, init) => {
      const url = String(input);
      if (/\/odata\//.test(url) && !url.includes("/0/odata")) return new Response("<html>maintenance</html>", { status: 200, headers: { "Content-Type": "text/html" } });
      return fetch(input, init);
    };
    const htmlEverywhere = new CreatioClient({ origin: netCoreUrl, credential: supervisor, ...fast, fetch: fetchAllHtml });
    await expect(htmlEverywhere.odataRoot()).rejects.toThrow(
      `Creatio OData discovery failed: no OData root on ${netCoreUrl}: /0/odata answered 302 to /Login/Login.html (text/html); /odata answered 200 (text/html)`,
    );
    await setOtherRoot(netCoreUrl, "notFound");
    await expect(client.odataRoot()).resolves.toBe("/odata");
  });

  it("a user without the right to use OData gets Creatio's 403, not a missing root", async () => {
    const portal = new CreatioClient({ origin: frameworkUrl, credential: { username: "Portal", password: "Portal" }, ...fast });
    await expect(portal.odataRoot()).rejects.toThrow(
      "Creatio GET /0/odata/MailServer failed with 403: Current user does not have sufficient permissions to use OData",
    );
  });

  it("a 401 that survives signing in again is an authentication failure", async () => {
    // Every OData call answers 401 (e.g. a session that Creatio drops at once).
    const always401: typeof fetch = async (input, init) =>
      /odata/.test(String(input)) ? new Response(JSON.stringify({ error: { code: "", message: "Unauthorized" } }), { status: 401, headers: { "Content-Type": "application/json" } }) : fetch(input, init);
    const client = new CreatioClient({ origin: frameworkUrl, credential: supervisor, ...fast, fetch: always401 });
    await expect(client.odataRoot()).rejects.toThrow(
      "Creatio GET /0/odata/MailServer failed with 401: authentication refused even after signing in again: Unauthorized",
    );
    // It signed in twice: once at first, once again after the first 401.
    const logins = ((await (await fetch(`${frameworkUrl}/_emulator/requests`)).json()) as { path: string }[]).filter((r) => /Login$/.test(r.path));
    expect(logins).toHaveLength(2);
  });

  it("turns Creatio's Code 1 login answer into a clear error", async () => {
    const client = new CreatioClient({ origin: frameworkUrl, credential: { username: "Supervisor", password: "wrong" }, ...fast });
    await expect(client.odataRoot()).rejects.toThrow(/Creatio POST \/ServiceModel\/AuthService\.svc\/Login failed with 200: login refused \(Code 1\): Invalid username or password/);
  });

  it("signs in again once when the session ends", async () => {
    const client = new CreatioClient({ origin: frameworkUrl, credential: supervisor, ...fast });
    await client.odataRoot();
    await fetch(`${frameworkUrl}/_emulator/expire-sessions`, { method: "POST" });
    const row = await client.get<{ Id: string }>(`/MailServer(${OFFICE365_MAIL_SERVER_ID})?$select=Id`);
    expect(row.body?.Id).toBe(OFFICE365_MAIL_SERVER_ID);
  });

  it("uses Identity Service client credentials", async () => {
    const cc = SEED_CLIENTS[0]!;
    const client = new CreatioClient({ origin: frameworkUrl, credential: { clientId: cc.clientId, clientSecret: cc.clientSecret, identityServerUrl: identityUrl }, ...fast });
    const row = await client.get<{ Id: string }>(`/MailServer(${OFFICE365_MAIL_SERVER_ID})?$select=Id`);
    expect(row.body?.Id).toBe(OFFICE365_MAIL_SERVER_ID);
  });

  it("names the call and status when a write is refused", async () => {
    const sales = new CreatioClient({ origin: frameworkUrl, credential: { username: "Sales", password: "Sales" }, ...fast });
    await expect(sales.patch(`/MailServer(${OFFICE365_MAIL_SERVER_ID})`, { OAuthApplicationId: "00000000-0000-0000-0000-000000000000" })).rejects.toThrow(
      /^Creatio PATCH \/0\/odata\/MailServer\(4bde7ec8-061f-46a3-ab24-49f5ec9cce8b\) failed with 403/,
    );
  });

  it("retries 429 and 503 on reads", async () => {
    const client = new CreatioClient({ origin: frameworkUrl, credential: supervisor, ...fast });
    await client.odataRoot();
    await fetch(`${frameworkUrl}/_emulator/faults`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ throttleNext: 1, serverErrorNext: 1, retryAfterSeconds: 0 }) });
    try {
      const row = await client.get<{ Id: string }>(`/MailServer(${OFFICE365_MAIL_SERVER_ID})?$select=Id`);
      expect(row.body?.Id).toBe(OFFICE365_MAIL_SERVER_ID);
    } finally {
      await fetch(`${frameworkUrl}/_emulator/faults`, { method: "DELETE" });
    }
  });
});
