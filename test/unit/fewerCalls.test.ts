// Issue 12: the mechanisms that keep an onboarding at the documented minimum of upstream calls
// (docs/architecture.md, "Upstream calls per onboarding"), each against fakes.
import type { TokenCredential } from "@azure/identity";
import { withoutCae } from "../../src/clients/credential";
import { CreatioClient, readSiteCredential } from "../../src/clients/creatio";
import { configureCreatio } from "../../src/activities/configureCreatio";
import { encodeSiteTags, decodeSiteTags } from "../../src/domain/tags";
import { FakeSecretStore, deps } from "./fakes";
import { recordingGraph } from "./graphRecorder";

describe("the app's credential", () => {
  it("asks every resource without CAE, so one MSAL application serves them all; requests for the same scopes at once share one", async () => {
    const asked: { scopes: string | string[]; enableCae?: boolean }[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inner: TokenCredential = {
      getToken: async (scopes, options) => {
        const n = asked.push({ scopes, enableCae: options?.enableCae });
        await gate;
        return { token: `t${n}`, expiresOnTimestamp: Date.now() + 3600_000 };
      },
    };
    const credential = withoutCae(inner);
    const graphA = credential.getToken("https://graph.microsoft.com/.default");
    const graphB = credential.getToken(["https://graph.microsoft.com/.default"]);
    const vault = credential.getToken("https://vault.azure.net/.default", { enableCae: true });
    release();
    const [a, b, v] = await Promise.all([graphA, graphB, vault]);
    expect(a).toBe(b);
    expect(v?.token).not.toBe(a?.token);
    expect(asked).toEqual([
      { scopes: "https://graph.microsoft.com/.default", enableCae: false },
      { scopes: "https://vault.azure.net/.default", enableCae: false },
    ]);
    // Once answered, the next request goes to the inner credential (and its cache) again.
    await credential.getToken("https://graph.microsoft.com/.default");
    expect(asked).toHaveLength(3);
  });
});

describe("the Creatio credential by Key Vault version", () => {
  it("is read once per process for a version POST /api/tenants read; the latest is read every time", async () => {
    const store = new FakeSecretStore();
    store.seed("creatio-api", JSON.stringify({ username: "u", password: "p" }), { tags: { creatioSite: "acme.creatio.com" } });
    let reads = 0;
    const getSecret = store.getSecret;
    store.getSecret = ((...args: Parameters<typeof getSecret>) => (reads++, getSecret(...args))) as typeof getSecret;
    const first = await readSiteCredential(store, "creatio-api", "acme.creatio.com");
    expect(first.version).toBe("v1");
    await readSiteCredential(store, "creatio-api", "acme.creatio.com", "v1");
    await readSiteCredential(store, "creatio-api", "ACME.creatio.com", "v1");
    expect(reads).toBe(1);
    await readSiteCredential(store, "creatio-api", "acme.creatio.com");
    expect(reads).toBe(2);
    // Another site is checked against the binding, not served from the cache.
    await expect(readSiteCredential(store, "creatio-api", "other.creatio.com", "v1")).rejects.toThrow(/not bound to other\.creatio\.com/);
  });
});

describe("CreatioClient on first contact", () => {
  it("reads the mail server with a collection query that also finds the OData root: no separate probe", async () => {
    const sent: string[] = [];
    const fetch = (async (url: string, init: RequestInit) => {
      const path = decodeURIComponent(new URL(url).pathname + new URL(url).search);
      sent.push(`${init.method} ${path}`);
      if (path.endsWith("/Login")) return new Response(JSON.stringify({ Code: 0 }), { status: 200, headers: { "set-cookie": "BPMCSRF=c; path=/", "content-type": "application/json" } });
      if (path.startsWith("/0/odata/MailServer?")) return new Response(JSON.stringify({ value: [{ Id: "ms", Name: "Office 365", OAuthApplicationId: null }] }), { status: 200, headers: { "content-type": "application/json" } });
      return new Response(JSON.stringify({ value: [] }), { status: 200, headers: { "content-type": "application/json" } });
    }) as unknown as typeof globalThis.fetch;
    const client = new CreatioClient({ origin: "https://acme.creatio.com", credential: { username: "u", password: "p" }, fetch, sleep: async () => undefined });
    expect(client.knownODataRoot).toBeUndefined();
    const link = await client.mailServerLink("ms");
    expect(link).toEqual({ mailServer: { Id: "ms", Name: "Office 365", OAuthApplicationId: null }, application: undefined });
    expect(client.knownODataRoot).toBe("/0/odata");
    await client.mailServerLink("ms");
    expect(sent).toEqual([
      "POST /ServiceModel/AuthService.svc/Login",
      "GET /0/odata/MailServer?$filter=Id eq ms&$select=Id,Name,OAuthApplicationId",
      "GET /0/odata/MailServer(ms)?$select=Id,Name,OAuthApplicationId",
    ]);
  });

  it("requests sent at once share one sign-in", async () => {
    let logins = 0;
    const fetch = (async (url: string) => {
      if (url.endsWith("/Login")) {
        logins++;
        await new Promise((r) => setTimeout(r, 5));
        return new Response(JSON.stringify({ Code: 0 }), { status: 200, headers: { "set-cookie": "BPMCSRF=c; path=/", "content-type": "application/json" } });
      }
      return new Response(JSON.stringify({ value: [] }), { status: 200, headers: { "content-type": "application/json" } });
    }) as unknown as typeof globalThis.fetch;
    const client = new CreatioClient({ origin: "https://acme.creatio.com", credential: { username: "u", password: "p" }, fetch, sleep: async () => undefined });
    await Promise.all([client.odataRoot(), client.odataRoot()]);
    expect(logins).toBe(1);
  });
});

describe("configureCreatio as the last step", () => {
  it("records the run's outcome and the EWS readiness with its own tag update (no recordSiteState after it)", async () => {
    const store = new FakeSecretStore();
    store.seed("creatio-api-acme", JSON.stringify({ username: "Supervisor", password: "pw" }), { tags: { creatioSite: "acme.creatio.com" } });
    const version = store.seed("creatio-o365-acme--creatio--com", "client-secret", {
      tags: encodeSiteTags({ site: "acme.creatio.com", appId: "app-id", appObjectId: "o", keyId: "k1", creatioCredential: "creatio-api-acme", mailServerId: "ms" }),
      expiresOn: new Date("2028-11-27T12:00:00Z"),
    });
    const creatio = {
      mailServerLink: async () => ({ mailServer: { Id: "ms", OAuthApplicationId: "row" }, application: { Id: "row", Name: "Office365OAuthAuthenticator", AppClassName: "Office365OAuthAuthenticator", ClientClassName: "Office365OAuthClient", ClientId: "app-id" } }),
      odataRoot: async () => "/0/odata",
      patch: async () => ({ status: 204, body: undefined }),
      get: async () => ({ status: 200, body: { value: [] } }),
      post: async () => ({ status: 201, body: { Id: "row" } }),
    };
    const { graph } = recordingGraph(() => ({ status: 404 }));
    const result = await configureCreatio(
      {
        host: "acme.creatio.com",
        secretName: "creatio-o365-acme--creatio--com",
        secretVersion: version,
        creatioCredentialSecretName: "creatio-api-acme",
        creatioCredentialVersion: "v1",
        mailServerId: "ms",
        appId: "app-id",
        recordOnSuccess: { lastRun: { kind: "onboard", outcome: "succeeded", instanceId: "onboard-acme.creatio.com" }, mailReadiness: { ews: "allowed", checkedAt: "2026-11-27T12:00:03.000Z" } },
      },
      deps(graph, store, { creatio: (() => creatio) as never }),
    );
    expect(result.recordedOutcome).toBe(true);
    expect(store.writes).toEqual([{ op: "updateSecretProperties", name: "creatio-o365-acme--creatio--com", version }]);
    const tags = decodeSiteTags(store.latest("creatio-o365-acme--creatio--com")!.properties.tags);
    expect(tags.ok && tags.tags.lastRun).toEqual({ kind: "onboard", outcome: "succeeded", instanceId: "onboard-acme.creatio.com", at: "2026-11-27T12:00:00.000Z" });
    expect(tags.ok && tags.tags.mailReadiness).toEqual({ ews: "allowed", checkedAt: "2026-11-27T12:00:03.000Z" });
  });
});
