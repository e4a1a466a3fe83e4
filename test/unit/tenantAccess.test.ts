import type { DurableClient } from "durable-functions";
import { HttpRequest } from "@azure/functions";
import { checkTenantAccess, PROVISIONER_GRAPH_ROLES, type CheckTenantAccessDeps } from "../../src/activities/checkTenantAccess";
import { consentCallback } from "../../src/functions/consentCallback";
import { randomBytes } from "node:crypto";
import { adminConsentUrl, consentStateFor, entraTenantNameSchema, instanceIdOfConsentState, tenantAccessProblemOf } from "../../src/domain/tenant";
import { ADMIN_CONSENT_EVENT } from "../../src/orchestrators/adminConsent";
import { recordingContext } from "./rotationFakes";

const TENANT_B = "22222222-3333-4444-8555-666666666666";
const INSTANCE = "onboard-acme.creatio.com";

/** A JWT-shaped token carrying these roles (the activity reads, never verifies, the claim). */
const tokenWith = (roles: string[]) => `h.${Buffer.from(JSON.stringify({ roles })).toString("base64url")}.s`;

function deps(answer: () => Promise<{ token: string; expiresOnTimestamp: number }>, forgotten: string[] = []): CheckTenantAccessDeps {
  return {
    credentialFor: () => ({ getToken: answer }),
    forget: (t) => forgotten.push(t),
    graphScope: "https://graph.microsoft.com/.default",
    authorityHost: "https://login.microsoftonline.com",
    provisionerClientId: "9a9a9a9a-0000-4000-8000-000000000001",
    redirectUri: "https://app.example.net/api/consent/callback",
    newState: (id) => `${Buffer.from(id).toString("base64url")}.${"S".repeat(43)}`,
  };
}
const refused = (code: string) => async () => Promise.reject(new Error(`ClientAssertionCredential authentication failed. invalid_client: ${code}: The client application … is missing service principal in the tenant.`));

describe("entraTenantId", () => {
  it("takes a tenant id or a verified domain, lower-cased, and names the field's rule otherwise", () => {
    expect(entraTenantNameSchema.parse(" Contoso.OnMicrosoft.com ")).toBe("contoso.onmicrosoft.com");
    expect(entraTenantNameSchema.parse(TENANT_B.toUpperCase())).toBe(TENANT_B);
    for (const bad of ["contoso", "https://contoso.com", "1234", "contoso..com"]) {
      expect(entraTenantNameSchema.safeParse(bad).error?.issues[0]?.message).toMatch(/^entraTenantId must be a tenant id \(a GUID\) or a verified domain/);
    }
  });
});

describe("consent state", () => {
  it("names the waiting onboarding and 32 random bytes; two states differ; a state of another kind names nothing", () => {
    const a = consentStateFor(INSTANCE, randomBytes(32));
    expect(instanceIdOfConsentState(a)).toBe(INSTANCE);
    expect(consentStateFor(INSTANCE, randomBytes(32))).not.toBe(a);
    expect(a.split(".")[1]).toHaveLength(43);
    expect(instanceIdOfConsentState(`${Buffer.from("rotate-acme").toString("base64url")}.${"A".repeat(43)}`)).toBeUndefined();
    expect(instanceIdOfConsentState("garbage")).toBeUndefined();
  });

  it("builds Entra's admin consent URL (v2-admin-consent)", () => {
    expect(adminConsentUrl({ authorityHost: "https://login.microsoftonline.com/", tenantId: TENANT_B, clientId: "c", redirectUri: "https://a/api/consent/callback", state: "s.t" })).toBe(
      `https://login.microsoftonline.com/${TENANT_B}/adminconsent?client_id=c&redirect_uri=https%3A%2F%2Fa%2Fapi%2Fconsent%2Fcallback&state=s.t`,
    );
  });

  it("reads Entra's error codes", () => {
    expect(tenantAccessProblemOf(new Error("AADSTS7000229: missing service principal"))).toBe("consentRequired");
    expect(tenantAccessProblemOf(new Error("AADSTS700016: Application with identifier"))).toBe("provisionerUnknown");
    expect(tenantAccessProblemOf(new Error("AADSTS70021: No matching federated identity record"))).toBe("federationMismatch");
    expect(tenantAccessProblemOf(new Error("AADSTS90002: Tenant not found"))).toBe("tenantNotFound");
    expect(tenantAccessProblemOf(new Error("ECONNRESET"))).toBeUndefined();
  });
});

describe("checkTenantAccess", () => {
  it("is granted when the provisioner's token carries every role the onboarding needs", async () => {
    const answer = await checkTenantAccess({ tenantId: TENANT_B, instanceId: INSTANCE }, deps(async () => ({ token: tokenWith([...PROVISIONER_GRAPH_ROLES, "Organization.Read.All"]), expiresOnTimestamp: 0 })));
    expect(answer).toEqual({ access: "granted", tenantId: TENANT_B, roles: [...PROVISIONER_GRAPH_ROLES, "Organization.Read.All"] });
  });

  it("asks for admin consent when Entra refuses a token for want of it, with a state naming this run", async () => {
    const answer = await checkTenantAccess({ tenantId: TENANT_B, instanceId: INSTANCE }, deps(refused("AADSTS7000229")));
    expect(answer.access).toBe("consentRequired");
    const url = new URL((answer as { adminConsentUrl: string }).adminConsentUrl);
    expect(url.origin + url.pathname).toBe(`https://login.microsoftonline.com/${TENANT_B}/adminconsent`);
    expect(url.searchParams.get("client_id")).toBe("9a9a9a9a-0000-4000-8000-000000000001");
    expect(url.searchParams.get("redirect_uri")).toBe("https://app.example.net/api/consent/callback");
    expect(instanceIdOfConsentState(url.searchParams.get("state")!)).toBe(INSTANCE);
  });

  it("after consent, treats a refusal or a token without the roles as replication (retried), and drops the cached token", async () => {
    await expect(checkTenantAccess({ tenantId: TENANT_B, instanceId: INSTANCE, afterConsent: true }, deps(refused("AADSTS7000229")))).rejects.toThrow(/does not show the consent in tenant .* yet/);
    const forgotten: string[] = [];
    await expect(
      checkTenantAccess({ tenantId: TENANT_B, instanceId: INSTANCE, afterConsent: true }, deps(async () => ({ token: tokenWith(["Application.Read.All"]), expiresOnTimestamp: 0 }), forgotten)),
    ).rejects.toThrow(/does not carry Application.ReadWrite.OwnedBy, DelegatedPermissionGrant.ReadWrite.All yet/);
    expect(forgotten).toEqual([TENANT_B]);
  });

  it("asks for consent again when a role is missing without a recent consent", async () => {
    const answer = await checkTenantAccess({ tenantId: TENANT_B, instanceId: INSTANCE }, deps(async () => ({ token: tokenWith([]), expiresOnTimestamp: 0 })));
    expect(answer).toMatchObject({ access: "consentRequired", reason: expect.stringMatching(/lacks Application.ReadWrite.OwnedBy, Application.Read.All, DelegatedPermissionGrant.ReadWrite.All/) });
  });

  it("asks for consent when Entra does not know the provisioner in the tenant, naming the other cause", async () => {
    const answer = await checkTenantAccess({ tenantId: TENANT_B, instanceId: INSTANCE }, deps(refused("AADSTS700016")));
    expect(answer).toMatchObject({ access: "consentRequired", reason: expect.stringMatching(/no administrator there has consented yet, or PROVISIONER_CLIENT_ID is not a multi-tenant application/) });
  });

  it("ends at once, with what to fix, when the provisioner is not trusted or not configured", async () => {
    await expect(checkTenantAccess({ tenantId: TENANT_B, instanceId: INSTANCE }, deps(refused("AADSTS70021")))).rejects.toThrow(/federated identity credential does not trust/);
    await expect(checkTenantAccess({ tenantId: TENANT_B, instanceId: INSTANCE }, { ...deps(refused("x")), provisionerClientId: undefined })).rejects.toThrow(/PROVISIONER_CLIENT_ID is not set/);
    await expect(checkTenantAccess({ tenantId: TENANT_B, instanceId: INSTANCE }, { ...deps(refused("AADSTS7000229")), redirectUri: undefined })).rejects.toThrow(/CONSENT_REDIRECT_URI/);
  });
});

describe("GET /api/consent/callback", () => {
  const state = consentStateFor(INSTANCE, randomBytes(32));
  const consentUrl = adminConsentUrl({ authorityHost: "https://login.microsoftonline.com", tenantId: TENANT_B, clientId: "c", redirectUri: "https://a/api/consent/callback", state });

  /** A Durable client whose onboarding waits with `state` until an event arrives. */
  function waitingClient(runtimeStatus = "Running") {
    const raised: { instanceId: string; name: string; data: unknown }[] = [];
    let waiting = true;
    const client = {
      getStatus: async (id: string) => {
        if (id !== INSTANCE) throw new Error("404");
        return { instanceId: id, runtimeStatus, customStatus: waiting ? { step: "awaitingAdminConsent", stepNumber: 2, totalSteps: 9, tenantId: TENANT_B, adminConsentUrl: consentUrl } : { step: "awaitingAdminConsent", stepNumber: 2, totalSteps: 9, consentReceivedAt: "now" } };
      },
      raiseEvent: async (instanceId: string, name: string, data: unknown) => {
        raised.push({ instanceId, name, data });
        waiting = false;
      },
    };
    return { client: client as unknown as DurableClient, raised };
  }
  const call = (client: DurableClient, query: Record<string, string>) =>
    consentCallback(new HttpRequest({ url: `http://localhost/api/consent/callback?${new URLSearchParams(query)}`, method: "GET" }), client, recordingContext().context, { settleMs: 1000, sleep: async () => undefined });

  it("raises the consent event once for the awaited state and tenant, then refuses the same link", async () => {
    const { client, raised } = waitingClient();
    const first = await call(client, { admin_consent: "True", tenant: TENANT_B, state });
    expect(first.status).toBe(200);
    expect(String(first.body)).toMatch(/Consent recorded/);
    expect((first.headers as Record<string, string>)["Referrer-Policy"]).toBe("no-referrer");
    expect(raised).toEqual([{ instanceId: INSTANCE, name: ADMIN_CONSENT_EVENT, data: { state, consented: true, tenant: TENANT_B } }]);
    const again = await call(client, { admin_consent: "True", tenant: TENANT_B, state });
    expect(again.status).toBe(400);
    expect(raised).toHaveLength(1);
  });

  it("refuses, raising nothing, a wrong state, another tenant, or an onboarding that no longer runs", async () => {
    const { client, raised } = waitingClient();
    const wrong = `${state.split(".")[0]}.${"B".repeat(43)}`;
    expect((await call(client, { admin_consent: "True", tenant: TENANT_B, state: wrong })).status).toBe(400);
    expect((await call(client, { admin_consent: "True", tenant: TENANT_B, state: "nonsense" })).status).toBe(400);
    // A well-formed state of an instance that does not exist: refused, not "try again".
    expect((await call(client, { admin_consent: "True", tenant: TENANT_B, state: consentStateFor("onboard-nobody.example", randomBytes(32)) })).status).toBe(400);
    const other = await call(client, { admin_consent: "True", tenant: "11111111-2222-4333-8444-555555555555", state });
    expect(other.status).toBe(400);
    expect(String(other.body)).toMatch(/waits for tenant 22222222/);
    const ended = waitingClient("Failed");
    expect((await call(ended.client, { admin_consent: "True", tenant: TENANT_B, state })).status).toBe(400);
    expect([...raised, ...ended.raised]).toEqual([]);
  });

  it("passes a decline on with Entra's words, escaped in the page", async () => {
    const { client, raised } = waitingClient();
    const answer = await call(client, { error: "access_denied", error_description: "AADSTS65004: User declined <b>", state });
    expect(answer.status).toBe(200);
    expect(String(answer.body)).toMatch(/Consent declined.*AADSTS65004: User declined &#60;b&#62;/);
    expect(raised[0]!.data).toEqual({ state, consented: false, error: "access_denied", errorDescription: "AADSTS65004: User declined <b>" });
  });
});

describe("checkTenantAccess with allowUserConsent", () => {
  it("also needs Policy.ReadWrite.Authorization, which the tenant's policy change takes", async () => {
    const answer = await checkTenantAccess(
      { tenantId: TENANT_B, instanceId: INSTANCE, extraRoles: ["Policy.ReadWrite.Authorization"] },
      deps(async () => ({ token: tokenWith([...PROVISIONER_GRAPH_ROLES]), expiresOnTimestamp: 0 })),
    );
    expect(answer).toMatchObject({ access: "consentRequired", reason: expect.stringMatching(/lacks Policy.ReadWrite.Authorization/) });
  });
});
