// The Creatio client against the Creatio emulator over HTTPS: both OData roots, both sign-in kinds,
// Creatio's Code 1 refusal, one re-login after the session ends, and errors that name the call.
import { createCreatioEmulator, SEED_CLIENTS, SEED_USERS, OFFICE365_MAIL_SERVER_ID } from "../../dev/emulators/creatio";
import { SANDBOX_IDENTITY, type EmulatorContext, sandboxContext } from "../../dev/emulators/context";
import type { EmulatorServer } from "../../dev/emulators/server";
import { CreatioClient } from "../../src/clients/creatio";

const ctx: EmulatorContext = sandboxContext();
const supervisor = { username: SEED_USERS[0]!.userName, password: SEED_USERS[0]!.password };
const fast = { sleep: async () => undefined, baseDelayMs: 1 };

let framework: EmulatorServer;
let netCore: EmulatorServer;
let frameworkUrl: string;
let netCoreUrl: string;

beforeAll(async () => {
  framework = createCreatioEmulator(ctx);
  netCore = createCreatioEmulator(ctx, { netCore: true });
  frameworkUrl = await framework.listen(0);
  netCoreUrl = await netCore.listen(0);
});

afterAll(async () => {
  await Promise.all([framework?.close(), netCore?.close()]);
});

describe("CreatioClient", () => {
  it("detects /0/odata on a .NET Framework site and /odata on a .NET Core site", async () => {
    const a = new CreatioClient({ origin: frameworkUrl, credential: supervisor, ...fast });
    const b = new CreatioClient({ origin: netCoreUrl, credential: supervisor, ...fast });
    expect(await a.odataRoot()).toBe("/0/odata");
    expect(await b.odataRoot()).toBe("/odata");
    const row = await b.get<{ Id: string }>(`/MailServer(${OFFICE365_MAIL_SERVER_ID})?$select=Id,Name,OAuthApplicationId`);
    expect(row.body?.Id).toBe(OFFICE365_MAIL_SERVER_ID);
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
    const client = new CreatioClient({ origin: frameworkUrl, credential: { clientId: cc.clientId, clientSecret: cc.clientSecret, identityServerUrl: frameworkUrl }, ...fast });
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
