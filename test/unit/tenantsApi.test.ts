import { CREATIO_EWS_PROFILE } from "../../src/domain/permissions";
import { HttpRequest, InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { createTenant, getTenant, listTenants } from "../../src/functions/tenants";
import { rotateTenant } from "../../src/functions/rotate";
import { encodeSiteTags, SECRET_CONTENT_TYPE } from "../../src/domain/tags";
import { FakeSecretStore } from "./fakes";

function fakeClient(status?: { runtimeStatus: string; customStatus?: unknown; output?: unknown }) {
  const started: { name: string; options: unknown }[] = [];
  const client = {
    startNew: async (name: string, options: unknown) => {
      started.push({ name, options });
      return (options as { instanceId: string }).instanceId;
    },
    getStatus: async (instanceId: string) => {
      if (!status) throw new Error(`DurableClient error: Durable Functions extension replied with HTTP 404 response. ${instanceId}`);
      return { instanceId, createdTime: new Date("2026-11-27T11:00:00Z"), lastUpdatedTime: new Date("2026-11-27T11:01:00Z"), ...status };
    },
    createCheckStatusResponse: (_req: unknown, instanceId: string) => ({
      status: 202,
      jsonBody: { id: instanceId, statusQueryGetUri: `http://localhost/runtime/webhooks/durabletask/instances/${instanceId}` },
      headers: { Location: `http://localhost/runtime/webhooks/durabletask/instances/${instanceId}` },
    }),
  };
  return { client: client as unknown as DurableClient, started };
}

function post(body: string, contentType = "application/json") {
  return new HttpRequest({ method: "POST", url: "http://localhost:7071/api/tenants", body: { string: body }, headers: { "content-type": contentType } });
}

const context = () => new InvocationContext({ functionName: "tenantsCreate" });
const now = () => new Date("2026-11-27T12:00:00Z");

function vaultWithCredential() {
  const store = new FakeSecretStore();
  store.seed("creatio-api-acme", JSON.stringify({ username: "Supervisor", password: "pw" }), { tags: { creatioSite: "acme.creatio.com xn--bcher-kva.de 10.0.0.1 127.0.0.1 127.0.0.1:7103" } });
  store.seed("creatio-api-broken", "not json", { tags: { creatioSite: "acme.creatio.com" } });
  store.seed("creatio-api-unbound", JSON.stringify({ username: "Supervisor", password: "pw" }));
  store.seed("creatio-api-other", JSON.stringify({ username: "Supervisor", password: "pw" }), { tags: { creatioSite: "other.creatio.com" } });
  return store;
}

const valid = { creatioUrl: "https://acme.creatio.com", creatioCredentialSecretName: "creatio-api-acme" };

describe("POST /api/tenants", () => {
  it("starts onboardTenant under onboard-<host> with defaults and answers 202 with the check-status body", async () => {
    const { client, started } = fakeClient();
    const response = await createTenant(post(JSON.stringify(valid)), client, context(), { secrets: vaultWithCredential(), now });
    expect(response.status).toBe(202);
    expect(started).toEqual([
      {
        name: "onboardTenant",
        options: {
          instanceId: "onboard-acme.creatio.com",
          input: {
            host: "acme.creatio.com",
            creatioCredentialSecretName: "creatio-api-acme",
            // References only (issue 12): the credential's version the steps read, and the app the site's tags name (none yet).
            creatioCredentialVersion: "v1",
            knownAppId: null,
            displayName: "Creatio",
            secretLifetimeDays: 730,
            mailServerId: "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b",
            allowUserConsent: false,
            takeOver: false,
            enableEwsForTenant: false,
            profile: CREATIO_EWS_PROFILE,
          },
        },
      },
    ]);
  });

  it("passes a profile from PERMISSION_PROFILES and the site's current one (its tags) to the orchestration; an unknown name is a 400 listing the known ones", async () => {
    const graphProfile = { name: "creatio-graph", redirectPath: CREATIO_EWS_PROFILE.redirectPath, resources: [{ appId: "00000003-0000-0000-c000-000000000000", scopes: ["Mail.Send", "User.Read"] }] };
    const secrets = vaultWithCredential();
    // The site was onboarded before profiles: its tags name none, so it has creatio-ews.
    secrets.seed("creatio-o365-acme--creatio--com", "value", {
      contentType: "text/plain; creatio-o365-oauth",
      tags: encodeSiteTags({ site: "acme.creatio.com", appId: "a", appObjectId: "o", keyId: "k", creatioCredential: "creatio-api-acme", mailServerId: "m" }),
    });
    const { client, started } = fakeClient();
    const ok = await createTenant(post(JSON.stringify({ ...valid, permissionProfile: "creatio-graph" })), client, context(), { secrets, now, permissionProfiles: [graphProfile] });
    expect(ok.status).toBe(202);
    expect((started[0]!.options as { input: unknown }).input).toMatchObject({ profile: graphProfile, previousProfile: CREATIO_EWS_PROFILE, knownAppId: "a" });

    const unknown = await createTenant(post(JSON.stringify({ ...valid, permissionProfile: "creatio-grph" })), client, context(), { secrets, now, permissionProfiles: [graphProfile] });
    expect(unknown.status).toBe(400);
    expect(unknown.jsonBody).toEqual({
      error: "Invalid request",
      errors: [{ path: "permissionProfile", message: "permissionProfile creatio-grph is not a known profile; known: creatio-ews, creatio-graph" }],
    });
    expect(started).toHaveLength(1);
  });

  it("answers 409 while an onboarding of the site runs", async () => {
    const { client, started } = fakeClient({ runtimeStatus: "Running" });
    const response = await createTenant(post(JSON.stringify(valid)), client, context(), { secrets: vaultWithCredential(), now });
    expect(response.status).toBe(409);
    expect(started).toHaveLength(0);
  });

  it("starts again after a failed run", async () => {
    const { client, started } = fakeClient({ runtimeStatus: "Failed" });
    const response = await createTenant(post(JSON.stringify(valid)), client, context(), { secrets: vaultWithCredential(), now });
    expect(response.status).toBe(202);
    expect(started).toHaveLength(1);
  });

  const cases: [string, string, string, string][] = [
    ["wrong type", JSON.stringify({ ...valid, secretLifetimeDays: "730" }), "secretLifetimeDays", "application/json"],
    ["wrong type of allowUserConsent", JSON.stringify({ ...valid, allowUserConsent: "yes" }), "allowUserConsent", "application/json"],
    ["http URL", JSON.stringify({ ...valid, creatioUrl: "http://acme.creatio.com" }), "creatioUrl", "application/json"],
    ["bad host", JSON.stringify({ ...valid, creatioUrl: "https://acme_creatio!.com" }), "creatioUrl", "application/json"],
    ["a path", JSON.stringify({ ...valid, creatioUrl: "https://acme.creatio.com/0/Nui/ViewModule.aspx" }), "creatioUrl", "application/json"],
    ["missing creatioUrl", JSON.stringify({ creatioCredentialSecretName: "creatio-api-acme" }), "creatioUrl", "application/json"],
    ["unknown field", JSON.stringify({ ...valid, tenantId: "x" }), "tenantId", "application/json"],
    ["lifetime too long", JSON.stringify({ ...valid, secretLifetimeDays: 731 }), "secretLifetimeDays", "application/json"],
    ["lifetime zero", JSON.stringify({ ...valid, secretLifetimeDays: 0 }), "secretLifetimeDays", "application/json"],
    ["lifetime fraction", JSON.stringify({ ...valid, secretLifetimeDays: 1.5 }), "secretLifetimeDays", "application/json"],
    ["password", JSON.stringify({ ...valid, password: "hunter2" }), "password", "application/json"],
    ["nested clientSecret", JSON.stringify({ ...valid, creatio: { clientSecret: "x" } }), "creatio.clientSecret", "application/json"],
    ["secretKey", JSON.stringify({ ...valid, secretKey: "x" }), "secretKey", "application/json"],
    ["malformed JSON", "{ not json", "", "application/json"],
    ["a JSON array", "[]", "", "application/json"],
    ["wrong content type", JSON.stringify(valid), "content-type", "text/plain"],
    ["bad secret name", JSON.stringify({ ...valid, creatioCredentialSecretName: "has spaces" }), "creatioCredentialSecretName", "application/json"],
    ["bad mailServerId", JSON.stringify({ ...valid, mailServerId: "office365" }), "mailServerId", "application/json"],
    ["credential secret missing", JSON.stringify({ ...valid, creatioCredentialSecretName: "nope" }), "creatioCredentialSecretName", "application/json"],
    ["credential secret not JSON", JSON.stringify({ ...valid, creatioCredentialSecretName: "creatio-api-broken" }), "creatioCredentialSecretName", "application/json"],
    ["credential not bound to any site", JSON.stringify({ ...valid, creatioCredentialSecretName: "creatio-api-unbound" }), "creatioCredentialSecretName", "application/json"],
    ["credential bound to another site", JSON.stringify({ ...valid, creatioCredentialSecretName: "creatio-api-other" }), "creatioCredentialSecretName", "application/json"],
  ];

  it("names the creatioSite tag and the command that binds a credential, and says why the broken one is refused", async () => {
    const answer = async (name: string) => {
      const response = await createTenant(post(JSON.stringify({ ...valid, creatioCredentialSecretName: name })), fakeClient().client, context(), { secrets: vaultWithCredential(), now });
      return (response.jsonBody as { errors: { message: string }[] }).errors[0]!.message;
    };
    expect(await answer("creatio-api-unbound")).toMatch(/is not bound to acme\.creatio\.com: its tag creatioSite is missing.*--tags creatioSite=acme\.creatio\.com/);
    expect(await answer("creatio-api-other")).toMatch(/its tag creatioSite names other\.creatio\.com, not acme\.creatio\.com/);
    // The same answer as for a mistyped site URL: it says that fix too.
    expect(await answer("creatio-api-other")).toMatch(/If you meant other\.creatio\.com, correct the site's URL instead\.$/);
    expect(await answer("nope")).toMatch(/has no secret named nope: check the name, or store the site's Creatio credential under it first/);
    expect(await answer("creatio-api-broken")).toMatch(/is not JSON/);
  });

  it.each(cases)("answers 400 naming the field for %s, and starts nothing", async (_name, body, field, contentType) => {
    const { client, started } = fakeClient();
    const response = await createTenant(post(body, contentType), client, context(), { secrets: vaultWithCredential(), now });
    expect(response.status).toBe(400);
    const json = response.jsonBody as { errors: { path: string; message: string }[] };
    expect(json.errors.map((e) => e.path)).toContain(field);
    expect(started).toHaveLength(0);
    // A password-like value is never echoed back.
    expect(JSON.stringify(json)).not.toContain("hunter2");
  });
});

describe("GET /api/tenants/{host} and GET /api/tenants", () => {
  const tags = encodeSiteTags({
    site: "acme.creatio.com",
    appId: "app-id",
    appObjectId: "app-obj",
    servicePrincipalId: "sp-app",
    keyId: "k1",
    creatioCredential: "creatio-api-acme",
    mailServerId: "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b",
    scopes: "EWS.AccessAsUser.All User.Read",
    creatioSyncedAt: "2026-11-27T11:02:00.000Z",
    creatioSyncedKeyId: "k1",
  });
  const store = () => {
    const s = vaultWithCredential();
    s.seed("creatio-o365-acme--creatio--com", "THE-CLIENT-SECRET", { contentType: SECRET_CONTENT_TYPE, expiresOn: new Date("2027-01-26T12:00:00Z"), tags });
    return s;
  };
  const get = (host: string) => new HttpRequest({ method: "GET", url: `http://localhost/api/tenants/${host}`, params: { host } });

  it("reports the site from tags and Durable status, with the site's EWS readiness and no secret value", async () => {
    const { client } = fakeClient({ runtimeStatus: "Completed", customStatus: { step: "done", stepNumber: 5, totalSteps: 5 } });
    const response = await getTenant(get("ACME.creatio.com"), client, context(), { secrets: store(), now });
    expect(response.status).toBe(200);
    const body = response.jsonBody as Record<string, any>;
    expect(body).toMatchObject({
      host: "acme.creatio.com",
      appId: "app-id",
      applicationObjectId: "app-obj",
      servicePrincipalId: "sp-app",
      redirectUri: "https://acme.creatio.com/0/rest/Office365OAuthAuthenticator/ProcessAuthenticationCode",
      grantedScopes: ["EWS.AccessAsUser.All", "User.Read"],
      secret: { name: "creatio-o365-acme--creatio--com", keyId: "k1", expiresOn: "2027-01-26T12:00:00.000Z", daysLeft: 60 },
      creatio: { syncedAt: "2026-11-27T11:02:00.000Z" },
      onboarding: { runtimeStatus: "Completed", currentStep: { step: "done" } },
    });
    // Never checked (tags of an earlier version): unknown, at risk, with the fix for this app id.
    expect(body.mail).toMatchObject({ ews: "unknown", checkedAt: null, fix: 'Set-OrganizationConfig -EwsAllowedAppIDs @{Add="app-id"}', ewsShutdownOn: "2027-04-01" });
    expect(body.health.problems.join(" ")).toMatch(/EWS is unknown/);
    expect(body.warnings).toEqual([]);
    expect(JSON.stringify(body)).not.toContain("THE-CLIENT-SECRET");
  });

  it("EWS readiness decides health: notAllowListed and ewsDisabled are broken with the fix, allowed near the shutdown is at risk; the list puts the broken site first", async () => {
    const { client } = fakeClient({ runtimeStatus: "Completed" });
    const vault = vaultWithCredential();
    const siteTags = (site: string, appId: string, ews: "allowed" | "notAllowListed" | "ewsDisabled") =>
      encodeSiteTags({
        site,
        appId,
        appObjectId: "obj",
        keyId: "k1",
        creatioCredential: "creatio-api-acme",
        mailServerId: "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b",
        creatioSyncedKeyId: "k1",
        mailReadiness: { ews, checkedAt: "2026-11-27T11:00:00.000Z", ...(ews === "allowed" ? {} : { reason: `reason ${ews}` }) },
      });
    const expiresOn = new Date("2028-11-27T12:00:00Z");
    vault.seed("creatio-o365-a--creatio--com", "s", { contentType: SECRET_CONTENT_TYPE, expiresOn, tags: siteTags("a.creatio.com", "app-a", "allowed") });
    vault.seed("creatio-o365-b--creatio--com", "s", { contentType: SECRET_CONTENT_TYPE, expiresOn, tags: siteTags("b.creatio.com", "app-b", "notAllowListed") });
    vault.seed("creatio-o365-c--creatio--com", "s", { contentType: SECRET_CONTENT_TYPE, expiresOn, tags: siteTags("c.creatio.com", "app-c", "ewsDisabled") });
    const b = (await getTenant(get("b.creatio.com"), client, context(), { secrets: vault, now })).jsonBody as any;
    expect(b.mail).toMatchObject({ ews: "notAllowListed", reason: "reason notAllowListed", fix: 'Set-OrganizationConfig -EwsAllowedAppIDs @{Add="app-b"}', checkedAt: "2026-11-27T11:00:00.000Z" });
    expect(b.health.state).toBe("broken");
    expect(b.health.problems.join(" ")).toContain('Set-OrganizationConfig -EwsAllowedAppIDs @{Add="app-b"}');
    const c = (await getTenant(get("c.creatio.com"), client, context(), { secrets: vault, now })).jsonBody as any;
    expect(c.mail.fix).toBe('Set-OrganizationConfig -EwsEnabled $true; Set-OrganizationConfig -EwsAllowedAppIDs @{Add="app-c"}');
    expect(c.health.state).toBe("broken");
    const a = (await getTenant(get("a.creatio.com"), client, context(), { secrets: vault, now })).jsonBody as any;
    expect(a.mail).toMatchObject({ ews: "allowed", fix: null, reason: null });
    expect(a.health.state).toBe("healthy");
    const nearShutdown = new Date("2027-02-15T00:00:00Z");
    const late = (await getTenant(get("a.creatio.com"), client, context(), { secrets: vault, now: () => nearShutdown })).jsonBody as any;
    expect(late.health).toMatchObject({ state: "atRisk", problems: [expect.stringMatching(/2027-04-01 \(45 days\)/)] });
    const list = (await listTenants(new HttpRequest({ method: "GET", url: "http://localhost/api/tenants" }), context(), { secrets: vault, now })).jsonBody as any[];
    expect(list.map((t) => [t.host, t.mail.ews, t.health.state])).toEqual([
      ["b.creatio.com", "notAllowListed", "broken"],
      ["c.creatio.com", "ewsDisabled", "broken"],
      ["a.creatio.com", "allowed", "healthy"],
    ]);
  });

  it("warns when the secret lives no longer than the rotation window (it would rotate at every sweep)", async () => {
    const { client } = fakeClient({ runtimeStatus: "Completed" });
    const long = store();
    long.seed("creatio-o365-acme--creatio--com", "v", { contentType: SECRET_CONTENT_TYPE, createdOn: new Date("2026-11-27T12:00:00Z"), expiresOn: new Date("2027-01-26T12:00:00Z"), tags });
    expect(((await getTenant(get("acme.creatio.com"), client, context(), { secrets: long, now, rotateDaysBeforeExpiry: 30 })).jsonBody as any).warnings).toHaveLength(0);
    const short = store();
    short.seed("creatio-o365-acme--creatio--com", "v", { contentType: SECRET_CONTENT_TYPE, createdOn: new Date("2026-11-27T12:00:00Z"), expiresOn: new Date("2026-12-17T12:00:00Z"), tags });
    const warnings = ((await getTenant(get("acme.creatio.com"), client, context(), { secrets: short, now, rotateDaysBeforeExpiry: 30 })).jsonBody as any).warnings as string[];
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/lives 20 days, no longer than the rotation window of 30 days/);
  });

  it("answers 404 for an unknown site and 400 for a bad host", async () => {
    const { client } = fakeClient();
    expect((await getTenant(get("other.creatio.com"), client, context(), { secrets: store(), now })).status).toBe(404);
    expect((await getTenant(get("bad_host!"), client, context(), { secrets: store(), now })).status).toBe(400);
  });

  it("answers 503 naming Key Vault, not 500, when Key Vault cannot be read", async () => {
    const throttled = Object.assign(new Error("Too many requests (429)"), { statusCode: 429 });
    const unreadable = store();
    unreadable.getSecret = (async () => {
      throw throttled;
    }) as typeof unreadable.getSecret;
    unreadable.listPropertiesOfSecrets = (() => ({
      [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(throttled) }),
    })) as unknown as typeof unreadable.listPropertiesOfSecrets;
    const { client } = fakeClient({ runtimeStatus: "Completed" });
    const one = await getTenant(get("acme.creatio.com"), client, context(), { secrets: unreadable, now });
    expect(one.status).toBe(503);
    expect(one.jsonBody).toEqual({ error: "Key Vault could not be read: Too many requests (429)" });
    const all = await listTenants(new HttpRequest({ method: "GET", url: "http://localhost/api/tenants" }), context(), { secrets: unreadable, now });
    expect(all.status).toBe(503);
  });

  it("lists managed sites from secret properties only", async () => {
    const response = await listTenants(new HttpRequest({ method: "GET", url: "http://localhost/api/tenants" }), context(), { secrets: store(), now });
    expect(response.jsonBody).toMatchObject([
      { host: "acme.creatio.com", secretName: "creatio-o365-acme--creatio--com", appId: "app-id", keyId: "k1", expiresOn: "2027-01-26T12:00:00.000Z", daysLeft: 60, creatioSyncedAt: "2026-11-27T11:02:00.000Z", rotationState: "idle" },
    ]);
  });
});

describe("review: bad input never turns into a 500 or an echoed value", () => {
  it("POST /api/tenants: malformed JSON carrying an unquoted password answers 400 without echoing the value", async () => {
    const { client, started } = fakeClient();
    const body = `{"creatioUrl":"https://acme.creatio.com","creatioCredentialSecretName":"creatio-api-acme","password":hunter2-very-secret}`;
    const response = await createTenant(post(body), client, context(), { secrets: vaultWithCredential(), now });
    expect(response.status).toBe(400);
    expect(JSON.stringify(response.jsonBody)).not.toContain("hunter2");
    expect(started).toHaveLength(0);
  });

  it("POST /api/tenants/{host}/rotate: malformed JSON answers 400 without echoing the body", async () => {
    const { client, started } = fakeClient();
    const store = new FakeSecretStore();
    store.seed("creatio-o365-acme--creatio--com", "x", {
      contentType: SECRET_CONTENT_TYPE,
      tags: encodeSiteTags({ site: "acme.creatio.com", appId: "a", appObjectId: "o", keyId: "k1", creatioCredential: "c", mailServerId: "m" }),
    });
    const request = new HttpRequest({
      method: "POST",
      url: "http://localhost/api/tenants/acme.creatio.com/rotate",
      params: { host: "acme.creatio.com" },
      body: { string: `{"gracePeriodHours":0,"clientSecret":hunter2-very-secret}` },
      headers: { "content-type": "application/json" },
    });
    const response = await rotateTenant(request, client, context(), { secrets: store, defaultGracePeriodHours: () => 24 });
    expect(response.status).toBe(400);
    expect(JSON.stringify(response.jsonBody)).not.toContain("hunter2");
    expect(started).toHaveLength(0);
  });

  it("GET /api/tenants/{host} and POST .../rotate answer 400, not 500, for a host that is not valid percent-encoding", async () => {
    const { client } = fakeClient();
    const store = new FakeSecretStore();
    const get = new HttpRequest({ method: "GET", url: "http://localhost/api/tenants/x", params: { host: "%E0%A4%A" } });
    expect((await getTenant(get, client, context(), { secrets: store, now })).status).toBe(400);
    const rotate = new HttpRequest({ method: "POST", url: "http://localhost/api/tenants/x/rotate", params: { host: "%E0%A4%A" } });
    expect((await rotateTenant(rotate, client, context(), { secrets: store, defaultGracePeriodHours: () => 24 })).status).toBe(400);
  });

  it("POST /api/tenants answers 409, not 500, when another POST for the site started it between the status read and the start", async () => {
    const { client } = fakeClient();
    (client as unknown as { startNew: () => Promise<string> }).startNew = async () => {
      throw new Error(`The operation failed with an unexpected status code: 409. Details: "An instance with ID 'onboard-acme.creatio.com' already exists."`);
    };
    const response = await createTenant(post(JSON.stringify(valid)), client, context(), { secrets: vaultWithCredential(), now });
    expect(response.status).toBe(409);
    expect(response.jsonBody).toMatchObject({ instanceId: "onboard-acme.creatio.com" });
  });
});

describe("POST /api/tenants with entraTenantId (issue 10)", () => {
  const HOME = "11111111-2222-4333-8444-555555555555";
  const B = "22222222-3333-4444-8555-666666666666";
  const names: Record<string, string> = { "contoso.onmicrosoft.com": B, [B]: B, "home.onmicrosoft.com": HOME };
  const resolved: string[] = [];
  const tenants = (provisioner = true, resolve = async (name: string) => (resolved.push(name), names[name])) => ({ provisioner, adminConsentWaitHours: 72, resolve });
  const inputOf = (started: { options: unknown }[]) => (started[0]!.options as { input: Record<string, unknown> }).input;
  const seedSite = (secrets: FakeSecretStore, tenantId?: string) =>
    secrets.seed("creatio-o365-acme--creatio--com", "value", {
      contentType: SECRET_CONTENT_TYPE,
      tags: encodeSiteTags({ site: "acme.creatio.com", appId: "a", appObjectId: "o", keyId: "k", creatioCredential: "creatio-api-acme", mailServerId: "m", ...(tenantId ? { tenantId } : {}) }),
    });

  it("resolves a verified domain to the tenant id and starts the onboarding for that tenant with the consent wait", async () => {
    const { client, started } = fakeClient();
    const r = await createTenant(post(JSON.stringify({ ...valid, entraTenantId: "Contoso.onmicrosoft.com" })), client, context(), { secrets: vaultWithCredential(), now, homeTenantId: HOME, tenants: tenants() });
    expect(r.status).toBe(202);
    expect(resolved).toContain("contoso.onmicrosoft.com");
    expect(inputOf(started)).toMatchObject({ tenantId: B, adminConsentWaitHours: 72 });
  });

  it("treats the home tenant, by id or by domain, as no tenant at all", async () => {
    for (const name of [HOME, "home.onmicrosoft.com"]) {
      const { client, started } = fakeClient();
      const r = await createTenant(post(JSON.stringify({ ...valid, entraTenantId: name })), client, context(), { secrets: vaultWithCredential(), now, homeTenantId: HOME, tenants: tenants(false) });
      expect(r.status).toBe(202);
      expect(inputOf(started)).not.toHaveProperty("tenantId");
    }
  });

  it("answers 400 naming entraTenantId for a malformed name, an unknown tenant, or another tenant without a provisioner; 503 when Entra cannot be asked", async () => {
    const ask = async (body: object, t = tenants()) => createTenant(post(JSON.stringify({ ...valid, ...body })), fakeClient().client, context(), { secrets: vaultWithCredential(), now, homeTenantId: HOME, tenants: t });
    const malformed = await ask({ entraTenantId: "contoso" });
    expect(malformed.status).toBe(400);
    expect((malformed.jsonBody as any).errors[0]).toMatchObject({ path: "entraTenantId", message: expect.stringMatching(/tenant id \(a GUID\) or a verified domain/) });
    const unknown = await ask({ entraTenantId: "nobody.onmicrosoft.com" });
    expect(unknown.status).toBe(400);
    expect((unknown.jsonBody as any).errors[0].message).toMatch(/^entraTenantId: Entra ID has no tenant nobody\.onmicrosoft\.com/);
    const noProvisioner = await ask({ entraTenantId: B }, tenants(false));
    expect(noProvisioner.status).toBe(400);
    expect((noProvisioner.jsonBody as any).errors[0].message).toMatch(/PROVISIONER_CLIENT_ID is not set \(README, "Serving several Microsoft 365 tenants"/);
    const down = await ask({ entraTenantId: B }, tenants(true, async () => Promise.reject(new Error("Entra ID (https://login.microsoftonline.com) could not be reached: ECONNREFUSED"))));
    expect(down.status).toBe(503);
    expect((down.jsonBody as any).error).toMatch(/could not be reached: ECONNREFUSED\. Try again shortly/);
  });

  it("keeps a site in its tenant: a POST without entraTenantId resumes there, another tenant is a 409 saying to offboard first", async () => {
    const secrets = vaultWithCredential();
    seedSite(secrets, B);
    const again = fakeClient();
    expect((await createTenant(post(JSON.stringify(valid)), again.client, context(), { secrets, now, homeTenantId: HOME, tenants: tenants() })).status).toBe(202);
    expect(inputOf(again.started)).toMatchObject({ tenantId: B });
    const move = await createTenant(post(JSON.stringify({ ...valid, entraTenantId: HOME })), fakeClient().client, context(), { secrets, now, homeTenantId: HOME, tenants: tenants() });
    expect(move.status).toBe(409);
    expect((move.jsonBody as any).error).toMatch(/managed in tenant 22222222-.*, not the home tenant: .*offboard it first \(DELETE \/api\/tenants\/acme\.creatio\.com\)/);
    const home = vaultWithCredential();
    seedSite(home);
    const toB = await createTenant(post(JSON.stringify({ ...valid, entraTenantId: B })), fakeClient().client, context(), { secrets: home, now, homeTenantId: HOME, tenants: tenants() });
    expect(toB.status).toBe(409);
    expect((toB.jsonBody as any).error).toMatch(/managed in the app's home tenant, not tenant 22222222-/);
  });

  it("shows each site's tenant in the list", async () => {
    const secrets = vaultWithCredential();
    seedSite(secrets, B);
    const r = await listTenants(new HttpRequest({ method: "GET", url: "http://localhost/api/tenants" }), context(), { secrets, now, homeTenantId: HOME });
    expect((r.jsonBody as any[]).map((s) => [s.host, s.entraTenantId, s.homeTenant])).toEqual([["acme.creatio.com", B, false]]);
  });
});
