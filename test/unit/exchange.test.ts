import { createExchangeClient, ExchangeAccessError, ExchangeCallError, type ExchangeAdmin, type OrganizationEwsConfig } from "../../src/clients/exchange";
import { allowEwsAccess } from "../../src/activities/allowEwsAccess";
import { ewsFix, mailStatus } from "../../src/domain/ews";
import { siteHealth } from "../../src/domain/health";
import { planSite } from "../../src/domain/rotationPlan";
import type { ActivityDeps } from "../../src/activities/shared";

const TENANT = { tenantId: "11111111-2222-4333-8444-555555555555", initialDomain: "contoso.onmicrosoft.com" };
const APP = "aaaaaaaa-0000-4000-8000-000000000001";

interface Sent {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
}

function recorder(answers: { status: number; body?: unknown; headers?: Record<string, string> }[]) {
  const sent: Sent[] = [];
  const fetch = (async (url: string, init: RequestInit) => {
    sent.push({ url, method: String(init.method), headers: init.headers as Record<string, string>, body: String(init.body) });
    const a = answers.shift() ?? { status: 200, body: { value: [] } };
    return new Response(a.body === undefined ? "" : JSON.stringify(a.body), { status: a.status, headers: a.headers });
  }) as unknown as typeof globalThis.fetch;
  const scopes: string[] = [];
  const client = createExchangeClient({
    baseUrl: "https://outlook.office365.com/",
    credential: { getToken: async (scope: string | string[]) => (scopes.push(String(scope)), { token: "tok", expiresOnTimestamp: Date.now() + 3600_000 }) },
    organization: async () => ({ id: TENANT.tenantId, verifiedDomains: [{ name: "contoso.com" }, { name: TENANT.initialDomain, isInitial: true }] }),
    fetch,
    sleep: async () => undefined,
  });
  return { client, sent, scopes };
}

describe("Exchange Online admin client", () => {
  it("sends Get-OrganizationConfig exactly as the EXO v3 REST transport does and reads the answer", async () => {
    const { client, sent, scopes } = recorder([{ status: 200, body: { value: [{ EwsEnabled: true, EwsAllowedAppIDs: [APP] }] } }]);
    const tenant = await client.tenant();
    expect(tenant).toEqual(TENANT);
    expect(await client.getOrganizationConfig(tenant)).toEqual({ EwsEnabled: true, EwsAllowedAppIDs: [APP] });
    // Asked for beside the organization read (issue 12), then by the command (the credential caches it).
    expect(scopes).toEqual(["https://outlook.office365.com/.default", "https://outlook.office365.com/.default"]);
    expect(sent).toEqual([
      {
        url: `https://outlook.office365.com/adminapi/beta/${TENANT.tenantId}/InvokeCommand`,
        method: "POST",
        headers: {
          Authorization: "Bearer tok",
          "Content-Type": "application/json",
          "X-ResponseFormat": "json",
          "X-AnchorMailbox": "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.onmicrosoft.com",
        },
        body: '{"CmdletInput":{"CmdletName":"Get-OrganizationConfig","Parameters":{}}}',
      },
    ]);
  });

  it("adds an app id with the hashtable form (merged server side) and sets EwsEnabled alone", async () => {
    const { client, sent } = recorder([]);
    await client.addEwsAllowedAppIds(TENANT, [APP]);
    await client.setEwsEnabled(TENANT, true);
    expect(sent.map((s) => s.body)).toEqual([
      `{"CmdletInput":{"CmdletName":"Set-OrganizationConfig","Parameters":{"EwsAllowedAppIDs":{"@odata.type":"#Exchange.GenericHashTable","Add":["${APP}"]}}}}`,
      '{"CmdletInput":{"CmdletName":"Set-OrganizationConfig","Parameters":{"EwsEnabled":true}}}',
    ]);
  });

  it("401 and 403 are access errors naming what is missing; 429 is retried after Retry-After; a lasting 503 is a call error", async () => {
    const noRole = recorder([{ status: 401, body: { error: { code: "Unauthorized", message: "no" } } }]);
    await expect(noRole.client.getOrganizationConfig(TENANT)).rejects.toThrow(ExchangeAccessError);
    const reader = recorder([{ status: 403, body: { error: { code: "Forbidden", message: "no" } } }]);
    await expect(reader.client.getOrganizationConfig(TENANT)).rejects.toThrow(/no Entra directory role/);
    const throttled = recorder([{ status: 429, headers: { "Retry-After": "1" } }, { status: 200, body: { value: [{ EwsEnabled: false, EwsAllowedAppIDs: null }] } }]);
    expect(await throttled.client.getOrganizationConfig(TENANT)).toEqual({ EwsEnabled: false, EwsAllowedAppIDs: [] });
    expect(throttled.sent).toHaveLength(2);
    const down = recorder([{ status: 503 }, { status: 503 }, { status: 503 }]);
    const error = await down.client.getOrganizationConfig(TENANT).catch((e) => e);
    expect(error).toBeInstanceOf(ExchangeCallError);
    expect(error).not.toBeInstanceOf(ExchangeAccessError);
    expect(down.sent).toHaveLength(3);
  });
});

/** An Exchange organization in memory; `racer` runs before a write lands (another onboarding's full-list write). */
function fakeExchange(config: OrganizationEwsConfig, options: { racer?: (c: OrganizationEwsConfig) => void; fail?: Error } = {}) {
  const calls: string[] = [];
  const exchange: ExchangeAdmin = {
    tenant: async () => TENANT,
    async getOrganizationConfig() {
      calls.push("get");
      if (options.fail) throw options.fail;
      return { EwsEnabled: config.EwsEnabled, EwsAllowedAppIDs: [...config.EwsAllowedAppIDs] };
    },
    async addEwsAllowedAppIds(_t, ids) {
      calls.push("add");
      config.EwsAllowedAppIDs = [...config.EwsAllowedAppIDs, ...ids.filter((id) => !config.EwsAllowedAppIDs.includes(id))];
      options.racer?.(config);
    },
    async removeEwsAllowedAppIds(_t, ids) {
      calls.push("remove");
      config.EwsAllowedAppIDs = config.EwsAllowedAppIDs.filter((id) => !ids.includes(id));
    },
    async setEwsEnabled(_t, enabled) {
      calls.push(`enable:${enabled}`);
      config.EwsEnabled = enabled;
    },
  };
  return { exchange, calls, config };
}

const deps = (exchange: ExchangeAdmin | undefined, ewsAccess: ActivityDeps["ewsAccess"], now = "2026-12-01T00:00:00.000Z") =>
  ({ exchange, ewsAccess, now: () => new Date(now), sleep: async () => undefined }) as unknown as ActivityDeps;

describe("allowEwsAccess", () => {
  const input = { host: "acme.creatio.com", appId: APP };

  it("manage: adds the missing id once and verifies it; a second run reads only", async () => {
    const org = fakeExchange({ EwsEnabled: true, EwsAllowedAppIDs: ["other"] });
    expect(await allowEwsAccess(input, deps(org.exchange, "manage"))).toEqual({
      mode: "manage",
      ews: "allowed",
      checkedAt: "2026-12-01T00:00:00.000Z",
      tenantId: TENANT.tenantId,
      actions: ["addedAppId"],
    });
    expect(org.calls).toEqual(["get", "add", "get"]);
    expect(org.config.EwsAllowedAppIDs).toEqual(["other", APP]);
    org.calls.length = 0;
    expect((await allowEwsAccess(input, deps(org.exchange, "manage"))).actions).toEqual([]);
    expect(org.calls).toEqual(["get"]);
  });

  it("manage: writes again when a concurrent full-list write dropped the id", async () => {
    let races = 1;
    const org = fakeExchange(
      { EwsEnabled: true, EwsAllowedAppIDs: [] },
      {
        racer: (c) => {
          if (races-- > 0) c.EwsAllowedAppIDs = ["someone-else"];
        },
      },
    );
    expect((await allowEwsAccess(input, deps(org.exchange, "manage"))).ews).toBe("allowed");
    expect(org.calls).toEqual(["get", "add", "get", "add", "get"]);
    expect(org.config.EwsAllowedAppIDs).toEqual(["someone-else", APP]);
  });

  it("manage: never changes EwsEnabled unless asked; a disabled tenant is a result, not a failure", async () => {
    const org = fakeExchange({ EwsEnabled: false, EwsAllowedAppIDs: [] });
    const result = await allowEwsAccess(input, deps(org.exchange, "manage"));
    expect(result).toMatchObject({ ews: "ewsDisabled", reason: expect.stringMatching(/EwsEnabled is \$false/) });
    expect(org.config.EwsEnabled).toBe(false);
    expect(org.calls).not.toContain("enable:true");
    const asked = await allowEwsAccess({ ...input, enableEwsForTenant: true }, deps(org.exchange, "manage"));
    expect(asked).toMatchObject({ ews: "allowed", actions: ["enabledEws"] });
    expect(org.config.EwsEnabled).toBe(true);
  });

  it("check: reads only and reports the id missing; off: calls nothing", async () => {
    const org = fakeExchange({ EwsEnabled: true, EwsAllowedAppIDs: [] });
    expect(await allowEwsAccess(input, deps(org.exchange, "check"))).toMatchObject({ ews: "notAllowListed", reason: expect.stringContaining(APP), actions: [] });
    expect(org.calls).toEqual(["get"]);
    org.calls.length = 0;
    expect(await allowEwsAccess(input, deps(org.exchange, "off"))).toMatchObject({ ews: "unknown", reason: "EWS_ACCESS is off", tenantId: null });
    expect(org.calls).toEqual([]);
  });

  it("401/403 is unknown with the reason; a 503 is thrown for the step's retry; after 1 April 2027 retired without a call", async () => {
    const denied = fakeExchange({ EwsEnabled: true, EwsAllowedAppIDs: [] }, { fail: new ExchangeAccessError("Get-OrganizationConfig", 403, "no Entra directory role") });
    expect(await allowEwsAccess(input, deps(denied.exchange, "manage"))).toMatchObject({ ews: "unknown", reason: expect.stringMatching(/403.*directory role/) });
    const down = fakeExchange({ EwsEnabled: true, EwsAllowedAppIDs: [] }, { fail: new ExchangeCallError("Get-OrganizationConfig", 503, "busy") });
    await expect(allowEwsAccess(input, deps(down.exchange, "manage"))).rejects.toThrow(/503/);
    const later = fakeExchange({ EwsEnabled: true, EwsAllowedAppIDs: [] });
    expect(await allowEwsAccess(input, deps(later.exchange, "manage", "2027-04-01T00:00:00.000Z"))).toMatchObject({ ews: "retired" });
    expect(later.calls).toEqual([]);
  });
});

describe("mail status", () => {
  it("names the exact PowerShell for the app id whenever the site is not allowed", () => {
    expect(ewsFix("notAllowListed", APP)).toBe(`Set-OrganizationConfig -EwsAllowedAppIDs @{Add="${APP}"}`);
    expect(ewsFix("ewsDisabled", APP)).toBe(`Set-OrganizationConfig -EwsEnabled $true; Set-OrganizationConfig -EwsAllowedAppIDs @{Add="${APP}"}`);
    expect(ewsFix("allowed", APP)).toBeNull();
    const now = new Date("2026-12-02T00:00:00Z");
    expect(mailStatus({ ews: "allowed", checkedAt: now.toISOString() }, APP, now)).toEqual({
      ews: "allowed",
      checkedAt: now.toISOString(),
      reason: null,
      fix: null,
      ewsShutdownOn: "2027-04-01",
      daysToShutdown: 120,
    });
    expect(mailStatus(undefined, APP, now)).toMatchObject({ ews: "unknown", fix: `Set-OrganizationConfig -EwsAllowedAppIDs @{Add="${APP}"}` });
    expect(mailStatus({ ews: "allowed", checkedAt: now.toISOString() }, APP, new Date("2027-04-02T00:00:00Z"))).toMatchObject({ ews: "retired", fix: null, daysToShutdown: 0 });
  });
});

describe("a site whose permission profile does not use EWS", () => {
  it("allowEwsAccess reports notUsed without asking Exchange Online, whatever EWS_ACCESS says", async () => {
    const org = fakeExchange({ EwsEnabled: false, EwsAllowedAppIDs: [] });
    expect(await allowEwsAccess({ host: "acme.creatio.com", appId: APP, usesEws: false }, deps(org.exchange, "manage"))).toEqual({
      mode: "manage",
      ews: "notUsed",
      reason: "The site's permission profile does not use Exchange Online EWS.",
      checkedAt: "2026-12-01T00:00:00.000Z",
      tenantId: null,
      actions: [],
    });
    expect(org.calls).toEqual([]);
  });

  it("status has no fix, and health flags neither EWS nor its shutdown (not even after it)", () => {
    const checkedAt = "2026-12-01T00:00:00.000Z";
    for (const now of [new Date("2027-03-01T00:00:00Z"), new Date("2027-04-02T00:00:00Z")]) {
      const mail = mailStatus({ ews: "notUsed", checkedAt }, APP, now);
      expect(mail).toMatchObject({ ews: "notUsed", fix: null, checkedAt });
      const expiresOn = new Date("2028-01-01T00:00:00Z");
      const tags = { site: "acme.creatio.com", appId: APP, appObjectId: "o", keyId: "k", creatioCredential: "c", mailServerId: "m", creatioSyncedKeyId: "k", creatioSyncedAt: checkedAt, rotationState: "idle" as const };
      const plan = planSite({ host: "acme.creatio.com", secretName: "creatio-o365-acme--creatio--com", expiresOn, tags }, now, 30);
      expect(siteHealth(plan, tags, { rotateDaysBeforeExpiry: 30, now, mail })).toEqual({ state: "healthy", mailStopsOn: expiresOn.toISOString(), daysUntilMailStops: plan.daysLeft, problems: [] });
      // The same site on an EWS profile is stopped by the shutdown first.
      const ews = siteHealth(plan, tags, { rotateDaysBeforeExpiry: 30, now, mail: mailStatus({ ews: "allowed", checkedAt }, APP, now) });
      expect(ews.mailStopsOn).toBe("2027-04-01T00:00:00.000Z");
      expect(ews.state).not.toBe("healthy");
    }
  });
});
