import { CREATIO_EWS_PROFILE } from "../../src/domain/permissions";
import { ensureApplication } from "../../src/activities/ensureApplication";
import { ensureServicePrincipal } from "../../src/activities/ensureServicePrincipal";
import { grantAdminConsent } from "../../src/activities/grantAdminConsent";
import { issueClientSecret, passwordDisplayName } from "../../src/activities/issueClientSecret";
import { allowUserConsent } from "../../src/activities/allowUserConsent";
import { configureCreatio } from "../../src/activities/configureCreatio";
import { graphTokenScope } from "../../src/clients/graph";
import { encodeSiteTags } from "../../src/domain/tags";
import { FakeSecretStore, deps } from "./fakes";
import { graphError, recordingGraph, type RecordedCall, type Reply } from "./graphRecorder";

const EXO = "00000002-0000-0ff1-ce00-000000000000";
const MSGRAPH = "00000003-0000-0000-c000-000000000000";
const EWS_ID = "3b5f3d61-589b-4a3c-a359-5dd4b5ee5bd5";
const USER_READ_ID = "e1fe6dd8-ba31-4d61-89e7-88639da4683d";
const UNIQUE = "creatio-o365-acme--creatio--com";
const REDIRECT = "https://acme.creatio.com/0/rest/Office365OAuthAuthenticator/ProcessAuthenticationCode";

const EXO_SP = { id: "sp-exo", appId: EXO, oauth2PermissionScopes: [{ id: EWS_ID, value: "EWS.AccessAsUser.All" }] };
const GRAPH_SP = {
  id: "sp-graph",
  appId: MSGRAPH,
  oauth2PermissionScopes: [{ id: USER_READ_ID, value: "User.Read" }, { id: "9769c687-087d-48ac-9cb3-c37dde652038", value: "EWS.AccessAsUser.All" }],
};
const RESOURCE_QUERY = /^\/servicePrincipals\?\$filter=appId in \(([^)]*)\)&\$select=id,appId,oauth2PermissionScopes$/;

/** Answers the one resource lookup (`$filter=appId in (...)`) from these principals. */
function answerResourceSps(call: RecordedCall, principals: { appId: string }[]): Reply | undefined {
  const m = call.method === "GET" ? RESOURCE_QUERY.exec(call.path) : null;
  if (!m) return undefined;
  const ids = [...m[1]!.matchAll(/'([^']*)'/g)].map((x) => x[1]);
  return { status: 200, body: { value: principals.filter((p) => ids.includes(p.appId)) } };
}
const resourceSps = (call: RecordedCall) => answerResourceSps(call, [EXO_SP, GRAPH_SP]);

const wantedAccess = [
  { resourceAppId: EXO, resourceAccess: [{ id: EWS_ID, type: "Scope" }] },
  { resourceAppId: MSGRAPH, resourceAccess: [{ id: USER_READ_ID, type: "Scope" }] },
];

describe("Graph client", () => {
  it("asks for a token for the Graph audience and sends it to a custom host", async () => {
    const { graph, calls } = recordingGraph(() => ({ status: 200, body: {} }), "https://localhost:9443");
    await graph.api("/organization").get();
    expect(calls[0]!.url).toBe("https://localhost:9443/v1.0/organization");
    expect(calls[0]!.headers.authorization).toBe("Bearer unit-test-token");
    expect(graphTokenScope("https://localhost:9443")).toBe("https://graph.microsoft.com/.default");
    expect(graphTokenScope("https://graph.microsoft.us")).toBe("https://graph.microsoft.us/.default");
  });

  it("retries 429 honouring Retry-After and idempotent 5xx, but never re-POSTs on 5xx", async () => {
    let n = 0;
    const { graph, calls } = recordingGraph((call) => {
      n++;
      if (call.method === "GET") return n === 1 ? { status: 429, headers: { "Retry-After": "0" } } : n === 2 ? { status: 503 } : { status: 200, body: { ok: 1 } };
      return { status: 503, body: { error: { code: "serviceUnavailable", message: "busy" } } };
    });
    await expect(graph.api("/x").get()).resolves.toEqual({ ok: 1 });
    expect(calls.filter((c) => c.method === "GET")).toHaveLength(3);
    await expect(graph.api("/y").post({})).rejects.toMatchObject({ statusCode: 503 });
    expect(calls.filter((c) => c.method === "POST")).toHaveLength(1);
  });
});

describe("ensureApplication", () => {
  it("creates the app with one upsert by uniqueName and the scope ids read from the resource service principals", async () => {
    const { graph, calls } = recordingGraph((call) => {
      const sp = resourceSps(call);
      if (sp) return sp;
      if (call.method === "GET") return graphError(404, "Request_ResourceNotFound", "not found");
      return { status: 201, body: { id: "app-obj", appId: "app-id" } };
    });
    const result = await ensureApplication({ host: "acme.creatio.com", displayName: "Creatio" }, deps(graph, new FakeSecretStore()));
    const upsert = calls.find((c) => c.method === "PATCH")!;
    expect(upsert.path).toBe(`/applications(uniqueName='${UNIQUE}')`);
    expect(upsert.headers.prefer).toBe("create-if-missing");
    expect(upsert.body).toEqual({ displayName: "Creatio", signInAudience: "AzureADMyOrg", web: { redirectUris: [REDIRECT] }, requiredResourceAccess: wantedAccess });
    expect(result).toMatchObject({ appId: "app-id", appObjectId: "app-obj", created: true, redirectUri: REDIRECT });
    expect(result.resources.map((r) => r.servicePrincipalId)).toEqual(["sp-exo", "sp-graph"]);
    // One read serves both resources (issue 12), beside the read of the app.
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      `GET /servicePrincipals?$filter=appId in ('${EXO}','${MSGRAPH}')&$select=id,appId,oauth2PermissionScopes`,
      `GET /applications(uniqueName='${UNIQUE}')?$select=id,appId,displayName,signInAudience,web,requiredResourceAccess`,
      `PATCH /applications(uniqueName='${UNIQUE}')`,
    ]);
  });

  it("reads the resource service principals once per tenant within the hour, then again", async () => {
    let now = new Date("2026-12-01T10:00:00Z");
    const existing = { id: "app-obj", appId: "app-id", displayName: "Creatio", signInAudience: "AzureADMyOrg", web: { redirectUris: [REDIRECT] }, requiredResourceAccess: wantedAccess };
    const { graph, calls } = recordingGraph((call) => resourceSps(call) ?? { status: 200, body: existing });
    const d = { ...deps(graph, new FakeSecretStore()), now: () => now };
    const lookups = () => calls.filter((c) => RESOURCE_QUERY.test(c.path)).length;
    await ensureApplication({ host: "acme.creatio.com", displayName: "Creatio" }, d);
    await ensureApplication({ host: "other.creatio.com", displayName: "Creatio" }, d);
    expect(lookups()).toBe(1);
    now = new Date("2026-12-01T11:00:00Z");
    const again = await ensureApplication({ host: "acme.creatio.com", displayName: "Creatio" }, d);
    expect(lookups()).toBe(2);
    expect(again.resources.map((r) => r.servicePrincipalId)).toEqual(["sp-exo", "sp-graph"]);
    // Another client (another tenant, or a test's own recorder) has its own cache.
    const other = recordingGraph((call) => resourceSps(call) ?? { status: 200, body: existing });
    await ensureApplication({ host: "acme.creatio.com", displayName: "Creatio" }, { ...deps(other.graph, new FakeSecretStore()), now: () => now });
    expect(other.calls.filter((c) => RESOURCE_QUERY.test(c.path))).toHaveLength(1);
  });

  it("says which resource the tenant lacks, and does not remember the absence: once added, the next run finds it", async () => {
    let principals = [GRAPH_SP];
    const { graph, calls } = recordingGraph(
      (call) => answerResourceSps(call, principals) ?? (call.method === "GET" ? graphError(404, "Request_ResourceNotFound", "not found") : { status: 201, body: { id: "app-obj", appId: "app-id" } }),
    );
    await expect(ensureApplication({ host: "acme.creatio.com", displayName: "Creatio" }, deps(graph, new FakeSecretStore()))).rejects.toThrow(
      `Office 365 Exchange Online (appId ${EXO}) has no service principal in this tenant`,
    );
    principals = [GRAPH_SP, EXO_SP];
    const ok = await ensureApplication({ host: "acme.creatio.com", displayName: "Creatio" }, deps(graph, new FakeSecretStore()));
    expect(ok.resources.map((r) => r.servicePrincipalId)).toEqual(["sp-exo", "sp-graph"]);
    // Only the missing one is asked for again; Microsoft Graph's principal came from the cache.
    expect(calls.filter((c) => RESOURCE_QUERY.test(c.path)).map((c) => RESOURCE_QUERY.exec(c.path)![1])).toEqual([`'${EXO}','${MSGRAPH}'`, `'${EXO}'`]);
  });

  it("repairs a removed redirect URI and permission and keeps what an admin added", async () => {
    const existing = {
      id: "app-obj",
      appId: "app-id",
      displayName: "Creatio",
      signInAudience: "AzureADMyOrg",
      web: { redirectUris: ["https://admin.example/cb"], logoutUrl: "https://admin.example/logout" },
      requiredResourceAccess: [{ resourceAppId: MSGRAPH, resourceAccess: [{ id: USER_READ_ID, type: "Scope" }, { id: "admin-scope", type: "Scope" }] }],
    };
    const { graph, calls } = recordingGraph((call) => resourceSps(call) ?? (call.method === "GET" ? { status: 200, body: existing } : { status: 204 }));
    const result = await ensureApplication({ host: "acme.creatio.com", displayName: "Creatio" }, deps(graph, new FakeSecretStore()));
    const patch = calls.find((c) => c.method === "PATCH")!;
    expect(patch.path).toBe("/applications/app-obj");
    expect(patch.body).toEqual({
      web: { redirectUris: ["https://admin.example/cb", REDIRECT], logoutUrl: "https://admin.example/logout" },
      requiredResourceAccess: [
        { resourceAppId: MSGRAPH, resourceAccess: [{ id: USER_READ_ID, type: "Scope" }, { id: "admin-scope", type: "Scope" }] },
        { resourceAppId: EXO, resourceAccess: [{ id: EWS_ID, type: "Scope" }] },
      ],
    });
    expect(result.repaired).toEqual(["web", "requiredResourceAccess"]);
  });

  it("writes nothing when the app already matches", async () => {
    const existing = { id: "app-obj", appId: "app-id", displayName: "Creatio", signInAudience: "AzureADMyOrg", web: { redirectUris: [REDIRECT] }, requiredResourceAccess: wantedAccess };
    const { graph, calls } = recordingGraph((call) => resourceSps(call) ?? { status: 200, body: existing });
    const result = await ensureApplication({ host: "acme.creatio.com", displayName: "Creatio" }, deps(graph, new FakeSecretStore()));
    expect(calls.every((c) => c.method === "GET")).toBe(true);
    expect(result.repaired).toEqual([]);
  });
});

describe("permission profiles: moving a site to another profile", () => {
  const MAIL_SEND_ID = "e383f46e-2787-4529-855e-0e479a3ffac0";
  const graphProfile = { name: "creatio-graph", redirectPath: "/0/rest/Office365OAuthAuthenticator/ProcessAuthenticationCode", resources: [{ appId: MSGRAPH, scopes: ["Mail.Send", "User.Read"] }] };
  const sps = (call: RecordedCall): Reply | undefined =>
    answerResourceSps(call, [EXO_SP, { id: "sp-graph", appId: MSGRAPH, oauth2PermissionScopes: [{ id: USER_READ_ID, value: "User.Read" }, { id: MAIL_SEND_ID, value: "Mail.Send" }] }]);

  it("ensureApplication adds the new profile's scopes, removes the old profile's others and keeps an admin's; the emptied Exchange entry goes", async () => {
    const existing = {
      id: "app-obj",
      appId: "app-id",
      displayName: "Creatio",
      signInAudience: "AzureADMyOrg",
      web: { redirectUris: [REDIRECT] },
      requiredResourceAccess: [
        { resourceAppId: EXO, resourceAccess: [{ id: EWS_ID, type: "Scope" }] },
        { resourceAppId: MSGRAPH, resourceAccess: [{ id: USER_READ_ID, type: "Scope" }, { id: "admin-scope", type: "Scope" }] },
      ],
    };
    const { graph, calls } = recordingGraph((call) => sps(call) ?? (call.method === "GET" ? { status: 200, body: existing } : { status: 204 }));
    const result = await ensureApplication({ host: "acme.creatio.com", displayName: "Creatio", profile: graphProfile, previousProfile: CREATIO_EWS_PROFILE }, deps(graph, new FakeSecretStore()));
    const patches = calls.filter((c) => c.method === "PATCH");
    expect(patches).toHaveLength(1);
    expect(patches[0]!.path).toBe("/applications/app-obj");
    expect(patches[0]!.body).toEqual({
      requiredResourceAccess: [{ resourceAppId: MSGRAPH, resourceAccess: [{ id: USER_READ_ID, type: "Scope" }, { id: "admin-scope", type: "Scope" }, { id: MAIL_SEND_ID, type: "Scope" }] }],
    });
    expect(result.retired).toEqual([{ name: "Office 365 Exchange Online", appId: EXO, servicePrincipalId: "sp-exo", scopes: [{ value: "EWS.AccessAsUser.All", id: EWS_ID }] }]);

    // Converged: the same move again writes nothing.
    const converged = { ...existing, requiredResourceAccess: (patches[0]!.body as { requiredResourceAccess: unknown }).requiredResourceAccess };
    const again = recordingGraph((call) => sps(call) ?? { status: 200, body: converged });
    const second = await ensureApplication({ host: "acme.creatio.com", displayName: "Creatio", profile: graphProfile, previousProfile: graphProfile }, deps(again.graph, new FakeSecretStore()));
    expect(again.calls.every((c) => c.method === "GET")).toBe(true);
    expect(second).toMatchObject({ repaired: [], retired: [] });
  });

  it("ensureApplication keeps an Exchange entry that still holds a permission an admin added, and swaps the redirect URI when the path changes", async () => {
    const existing = {
      id: "app-obj",
      appId: "app-id",
      displayName: "Creatio",
      signInAudience: "AzureADMyOrg",
      web: { redirectUris: ["https://admin.example/cb", REDIRECT] },
      requiredResourceAccess: [{ resourceAppId: EXO, resourceAccess: [{ id: EWS_ID, type: "Scope" }, { id: "dc890d15-9560-4a4c-9b7f-a736ec74ec40", type: "Role" }] }],
    };
    const { graph, calls } = recordingGraph((call) => sps(call) ?? (call.method === "GET" ? { status: 200, body: existing } : { status: 204 }));
    await ensureApplication({ host: "acme.creatio.com", displayName: "Creatio", profile: { ...graphProfile, redirectPath: "/0/rest/Graph/Callback" }, previousProfile: CREATIO_EWS_PROFILE }, deps(graph, new FakeSecretStore()));
    expect(calls.find((c) => c.method === "PATCH")!.body).toEqual({
      web: { redirectUris: ["https://admin.example/cb", "https://acme.creatio.com/0/rest/Graph/Callback"] },
      requiredResourceAccess: [
        { resourceAppId: EXO, resourceAccess: [{ id: "dc890d15-9560-4a4c-9b7f-a736ec74ec40", type: "Role" }] },
        { resourceAppId: MSGRAPH, resourceAccess: [{ id: MAIL_SEND_ID, type: "Scope" }, { id: USER_READ_ID, type: "Scope" }] },
      ],
    });
  });

  it("grantAdminConsent removes only the old profile's scopes: PATCH of the scope string, DELETE of a grant that held nothing else", async () => {
    const grants = [
      { id: "g-exo", clientId: "sp-app", consentType: "AllPrincipals", resourceId: "sp-exo", scope: "EWS.AccessAsUser.All" },
      { id: "g-graph", clientId: "sp-app", consentType: "AllPrincipals", resourceId: "sp-graph", scope: "User.Read Mail.Read" },
    ];
    const { graph, calls } = recordingGraph((call) => (call.method === "GET" ? { status: 200, body: { value: grants } } : { status: 204 }));
    const result = await grantAdminConsent(
      {
        servicePrincipalId: "sp-app",
        grants: [{ resourceName: "Microsoft Graph", resourceServicePrincipalId: "sp-graph", scopes: ["Mail.Send", "User.Read"] }],
        narrow: [{ resourceName: "Office 365 Exchange Online", resourceServicePrincipalId: "sp-exo", scopes: ["EWS.AccessAsUser.All"] }],
      },
      deps(graph, new FakeSecretStore()),
    );
    const writes = calls.filter((c) => c.method !== "GET").map((c) => ({ method: c.method, path: c.path, body: c.body }));
    expect(writes).toEqual([
      { method: "PATCH", path: "/oauth2PermissionGrants/g-graph", body: { scope: "User.Read Mail.Read Mail.Send" } },
      { method: "DELETE", path: "/oauth2PermissionGrants/g-exo", body: undefined },
    ]);
    expect(result.grants.map((g) => [g.grantId, g.action, g.scopes])).toEqual([
      ["g-graph", "widened", ["User.Read", "Mail.Read", "Mail.Send"]],
      ["g-exo", "deleted", []],
    ]);
  });

  it("grantAdminConsent keeps a grant an admin widened: PATCH without the retired scope; an absent grant is left absent", async () => {
    const grants = [
      { id: "g-exo", clientId: "sp-app", consentType: "AllPrincipals", resourceId: "sp-exo", scope: "EWS.AccessAsUser.All full_access_by_admin" },
      { id: "g-graph", clientId: "sp-app", consentType: "AllPrincipals", resourceId: "sp-graph", scope: "User.Read Mail.Send Calendars.ReadWrite" },
    ];
    const { graph, calls } = recordingGraph((call) => (call.method === "GET" ? { status: 200, body: { value: grants } } : { status: 204 }));
    const result = await grantAdminConsent(
      {
        servicePrincipalId: "sp-app",
        grants: [{ resourceName: "Microsoft Graph", resourceServicePrincipalId: "sp-graph", scopes: ["Mail.Send", "User.Read", "offline_access"] }],
        narrow: [
          { resourceName: "Microsoft Graph", resourceServicePrincipalId: "sp-graph", scopes: ["Calendars.ReadWrite"] },
          { resourceName: "Office 365 Exchange Online", resourceServicePrincipalId: "sp-exo", scopes: ["EWS.AccessAsUser.All"] },
          { resourceName: "Other", resourceServicePrincipalId: "sp-none", scopes: ["X.Read"] },
        ],
      },
      deps(graph, new FakeSecretStore()),
    );
    expect(calls.filter((c) => c.method !== "GET").map((c) => ({ method: c.method, path: c.path, body: c.body }))).toEqual([
      { method: "PATCH", path: "/oauth2PermissionGrants/g-graph", body: { scope: "User.Read Mail.Send offline_access" } },
      { method: "PATCH", path: "/oauth2PermissionGrants/g-exo", body: { scope: "full_access_by_admin" } },
    ]);
    expect(result.grants.map((g) => g.action)).toEqual(["changed", "narrowed"]);
  });
});

describe("ensureServicePrincipal", () => {
  it("upserts by appId and rides out NoBackingApplicationObject", async () => {
    let patches = 0;
    const { graph, calls } = recordingGraph((call) => {
      if (call.method === "GET") return graphError(404, "Request_ResourceNotFound", "nope");
      patches++;
      return patches < 3 ? graphError(400, "NoBackingApplicationObject", "The service principal cannot be created") : { status: 201, body: { id: "sp-app" } };
    });
    const result = await ensureServicePrincipal({ appId: "app-id", displayName: "Creatio" }, deps(graph, new FakeSecretStore()));
    expect(result).toEqual({ servicePrincipalId: "sp-app", created: true });
    const upserts = calls.filter((c) => c.method === "PATCH");
    expect(upserts).toHaveLength(3);
    expect(upserts[0]!.path).toBe("/servicePrincipals(appId='app-id')");
    expect(upserts[0]!.headers.prefer).toBe("create-if-missing");
    expect(upserts[0]!.body).toEqual({ displayName: "Creatio" });
  });

  it("for an app created in this run: upserts first, without the read that could only answer 404", async () => {
    const { graph, calls } = recordingGraph(() => ({ status: 201, body: { id: "sp-app" } }));
    const result = await ensureServicePrincipal({ appId: "app-id", displayName: "Creatio", appCreated: true }, deps(graph, new FakeSecretStore()));
    expect(result).toEqual({ servicePrincipalId: "sp-app", created: true });
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual(["PATCH /servicePrincipals(appId='app-id')"]);
    expect(calls[0]!.headers.prefer).toBe("create-if-missing");
    expect(calls[0]!.body).toEqual({ displayName: "Creatio" });
  });

  it("returns the existing one without writing", async () => {
    const { graph, calls } = recordingGraph(() => ({ status: 200, body: { id: "sp-app", appId: "app-id" } }));
    await expect(ensureServicePrincipal({ appId: "app-id", displayName: "Creatio" }, deps(graph, new FakeSecretStore()))).resolves.toEqual({ servicePrincipalId: "sp-app", created: false });
    expect(calls).toHaveLength(1);
  });
});

describe("grantAdminConsent", () => {
  it("creates an AllPrincipals grant with exactly the needed scopes, and widens an existing one", async () => {
    const { graph, calls } = recordingGraph((call) => {
      if (call.method === "GET") return { status: 200, body: { value: [{ id: "g-graph", clientId: "sp-app", consentType: "AllPrincipals", resourceId: "sp-graph", scope: "openid" }] } };
      if (call.method === "POST") return { status: 201, body: { id: "g-exo" } };
      return { status: 204 };
    });
    const result = await grantAdminConsent(
      {
        servicePrincipalId: "sp-app",
        grants: [
          { resourceName: "Office 365 Exchange Online", resourceServicePrincipalId: "sp-exo", scopes: ["EWS.AccessAsUser.All"] },
          { resourceName: "Microsoft Graph", resourceServicePrincipalId: "sp-graph", scopes: ["User.Read"] },
        ],
      },
      deps(graph, new FakeSecretStore()),
    );
    expect(calls[0]!.path).toBe("/oauth2PermissionGrants?$filter=clientId eq 'sp-app'");
    const post = calls.find((c) => c.method === "POST")!;
    expect(post.path).toBe("/oauth2PermissionGrants");
    expect(post.body).toEqual({ clientId: "sp-app", consentType: "AllPrincipals", resourceId: "sp-exo", scope: "EWS.AccessAsUser.All" });
    const patch = calls.find((c) => c.method === "PATCH")!;
    expect(patch.path).toBe("/oauth2PermissionGrants/g-graph");
    expect(patch.body).toEqual({ scope: "openid User.Read" });
    expect(result.grants.map((g) => g.action)).toEqual(["created", "widened"]);
    // One read for both resources, then one write each (issue 12).
    expect(calls.filter((c) => c.method === "GET")).toHaveLength(1);
    expect(calls).toHaveLength(3);
  });

  it("for a service principal created in this run: posts both grants without reading; a grant an earlier attempt made (409) is read and kept", async () => {
    const { graph, calls } = recordingGraph((call) => {
      if (call.method === "GET") return { status: 200, body: { value: [{ id: "g-exo", clientId: "sp-app", consentType: "AllPrincipals", resourceId: "sp-exo", scope: "EWS.AccessAsUser.All" }] } };
      const body = call.body as { resourceId: string };
      if (body.resourceId === "sp-exo") return graphError(409, "Request_MultipleObjectsWithSameKeyValue", "Permission entry already exists.");
      return { status: 201, body: { id: "g-graph" } };
    });
    const result = await grantAdminConsent(
      {
        servicePrincipalId: "sp-app",
        servicePrincipalCreated: true,
        grants: [
          { resourceName: "Office 365 Exchange Online", resourceServicePrincipalId: "sp-exo", scopes: ["EWS.AccessAsUser.All"] },
          { resourceName: "Microsoft Graph", resourceServicePrincipalId: "sp-graph", scopes: ["User.Read"] },
        ],
      },
      deps(graph, new FakeSecretStore()),
    );
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      "POST /oauth2PermissionGrants",
      "POST /oauth2PermissionGrants",
      "GET /oauth2PermissionGrants?$filter=clientId eq 'sp-app'",
    ]);
    expect(calls.slice(0, 2).map((c) => c.body)).toEqual([
      { clientId: "sp-app", consentType: "AllPrincipals", resourceId: "sp-exo", scope: "EWS.AccessAsUser.All" },
      { clientId: "sp-app", consentType: "AllPrincipals", resourceId: "sp-graph", scope: "User.Read" },
    ]);
    expect(result.grants.map((g) => [g.grantId, g.action])).toEqual([
      ["g-exo", "unchanged"],
      ["g-graph", "created"],
    ]);
  });
});

describe("issueClientSecret", () => {
  const input = {
    host: "acme.creatio.com",
    instanceId: "onboard-acme.creatio.com",
    runId: "2026-11-27T12:00:00.000Z",
    purpose: "onboard" as const,
    appId: "app-id",
    appObjectId: "app-obj",
    servicePrincipalId: "sp-app",
    secretLifetimeDays: 730,
    creatioCredentialSecretName: "creatio-api-acme",
    mailServerId: "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b",
    scopes: ["EWS.AccessAsUser.All", "User.Read"],
  };
  const SECRET_TEXT = "S3cr3t~value.from.graph";
  /** The app's passwords: GET lists them, removePassword removes one, addPassword answers a new one. */
  const appWith = (passwords: { keyId: string }[]) => (call: { method: string; path: string; body: unknown }) => {
    if (call.method === "GET") return { status: 200, body: { id: "app-obj", passwordCredentials: passwords } };
    if (call.path.endsWith("/removePassword")) {
      passwords.splice(passwords.findIndex((p) => p.keyId === (call.body as { keyId: string }).keyId), 1);
      return { status: 204 };
    }
    return { status: 200, body: { keyId: "k-new", secretText: SECRET_TEXT, hint: "S3c", endDateTime: "2028-11-27T12:00:00Z", displayName: "x" } };
  };

  it("removes an earlier attempt's leftover, adds one password and stores its value in Key Vault; returns a reference only", async () => {
    const passwords = [
      { keyId: "k-admin", displayName: "added by an admin", endDateTime: "2027-01-01T00:00:00Z" },
      { keyId: "k-left", displayName: passwordDisplayName(input.instanceId, "2026-11-01T00:00:00.000Z", "dead"), endDateTime: "2028-01-01T00:00:00Z" },
    ];
    const { graph, calls } = recordingGraph(appWith(passwords));
    const store = new FakeSecretStore();
    const result = await issueClientSecret(input, deps(graph, store));

    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      "GET /applications/app-obj?$select=id,appId,passwordCredentials",
      "POST /applications/app-obj/removePassword",
      // The removal is verified by reading the app back.
      "GET /applications/app-obj?$select=id,passwordCredentials",
      "POST /applications/app-obj/addPassword",
    ]);
    expect(calls[1]!.body).toEqual({ keyId: "k-left" });
    const add = calls[3]!.body as { passwordCredential: { displayName: string; endDateTime: string } };
    expect(add.passwordCredential.endDateTime).toBe("2028-11-26T12:00:00.000Z");
    expect(add.passwordCredential.displayName).toMatch(/^creatio-o365-oauth onboard-acme\.creatio\.com 2026-11-27T12:00:00\.000Z #[0-9a-f]{8}$/);

    const stored = store.latest("creatio-o365-acme--creatio--com")!;
    expect(stored.value).toBe(SECRET_TEXT);
    expect(stored.properties.contentType).toBe("text/plain; creatio-o365-oauth");
    expect(stored.properties.expiresOn).toEqual(new Date("2028-11-27T12:00:00Z"));
    expect(stored.properties.tags).toEqual({
      site: "acme.creatio.com",
      appId: "app-id",
      appObjectId: "app-obj",
      servicePrincipalId: "sp-app",
      keyId: "k-new",
      creatioCredential: "creatio-api-acme",
      mailServerId: "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b",
      permissions: JSON.stringify({ scopes: "EWS.AccessAsUser.All User.Read" }),
      rotation: JSON.stringify({ state: "idle" }),
    });
    expect(result).toEqual({ secretName: "creatio-o365-acme--creatio--com", version: "v1", keyId: "k-new", expiresOn: "2028-11-27T12:00:00.000Z", hint: "S3c", reused: false, removedLeftovers: ["k-left"] });
    expect(JSON.stringify(result)).not.toContain(SECRET_TEXT);
  });

  it("keeps the live secret Key Vault already holds (a repeated onboarding adds no password)", async () => {
    const store = new FakeSecretStore();
    store.seed("creatio-o365-acme--creatio--com", "old", {
      expiresOn: new Date("2028-01-01T00:00:00Z"),
      tags: encodeSiteTags({ site: input.host, appId: "app-id", appObjectId: "app-obj", servicePrincipalId: "sp-app", keyId: "k-live", creatioCredential: "creatio-api-acme", mailServerId: input.mailServerId, scopes: "EWS.AccessAsUser.All User.Read" }),
    });
    const { graph, calls } = recordingGraph(() => ({ status: 200, body: { passwordCredentials: [{ keyId: "k-live", displayName: passwordDisplayName(input.instanceId, "earlier", "a"), endDateTime: "2028-01-01T00:00:00Z" }] } }));
    const result = await issueClientSecret(input, deps(graph, store));
    expect(result).toMatchObject({ keyId: "k-live", version: "v1", reused: true });
    expect(calls).toHaveLength(1);
    expect(store.writes).toEqual([]);
  });

  it("never removes the password Creatio holds, even when this instance left it behind", async () => {
    const store = new FakeSecretStore();
    store.seed("creatio-o365-acme--creatio--com", "old", {
      expiresOn: new Date("2028-01-01T00:00:00Z"),
      tags: encodeSiteTags({ site: input.host, appId: "app-id", appObjectId: "app-obj", keyId: "k-live", creatioSyncedKeyId: "k-creatio", creatioCredential: "creatio-api-acme", mailServerId: input.mailServerId }),
    });
    const passwords = [
      { keyId: "k-live", displayName: passwordDisplayName("onboard-acme.creatio.com", "earlier", "a"), endDateTime: "2028-01-01T00:00:00Z" },
      { keyId: "k-creatio", displayName: passwordDisplayName(input.instanceId, "2026-11-01T00:00:00.000Z", "b"), endDateTime: "2028-01-01T00:00:00Z" },
    ];
    const { graph, calls } = recordingGraph(appWith(passwords));
    const result = await issueClientSecret({ ...input, purpose: "rotate" }, deps(graph, store));
    expect(calls.filter((c) => c.path.endsWith("/removePassword"))).toEqual([]);
    expect(result).toMatchObject({ keyId: "k-new", reused: false, removedLeftovers: [] });
  });

  it("never removes the password Key Vault or Creatio holds when the tags no longer decode (a hand-edited tag)", async () => {
    const store = new FakeSecretStore();
    // mailServerId removed by hand: the tags fail the codec, but keyId and creatioSyncedKeyId are still there.
    store.seed("creatio-o365-acme--creatio--com", "old", {
      expiresOn: new Date("2028-01-01T00:00:00Z"),
      tags: { site: input.host, appId: "app-id", appObjectId: "app-obj", keyId: "k-live", creatioSyncedKeyId: "k-creatio", creatioCredential: "creatio-api-acme" },
    });
    const passwords = [
      { keyId: "k-live", displayName: passwordDisplayName(input.instanceId, "earlier", "a"), endDateTime: "2028-01-01T00:00:00Z" },
      { keyId: "k-creatio", displayName: passwordDisplayName(input.instanceId, "earliest", "b"), endDateTime: "2028-01-01T00:00:00Z" },
      { keyId: "k-left", displayName: passwordDisplayName(input.instanceId, "2026-11-01T00:00:00.000Z", "dead"), endDateTime: "2028-01-01T00:00:00Z" },
    ];
    const { graph, calls } = recordingGraph(appWith(passwords));
    await issueClientSecret(input, deps(graph, store));
    expect(calls.filter((c) => c.path.endsWith("/removePassword")).map((c) => c.body)).toEqual([{ keyId: "k-left" }]);
  });

  it("a re-run after a failure delivers the 20-day secret the failed run issued instead of adding another (shorter than the rotation window)", async () => {
    const store = new FakeSecretStore();
    store.seed("creatio-o365-acme--creatio--com", "issued", {
      expiresOn: new Date("2026-12-17T11:50:00Z"),
      tags: encodeSiteTags({ site: input.host, appId: "app-id", appObjectId: "app-obj", servicePrincipalId: "sp-app", keyId: "k-20", creatioCredential: "creatio-api-acme", mailServerId: input.mailServerId, scopes: "EWS.AccessAsUser.All User.Read" }),
    });
    const { graph, calls } = recordingGraph(appWith([{ keyId: "k-20", displayName: passwordDisplayName(input.instanceId, "2026-11-27T11:50:00.000Z", "a"), endDateTime: "2026-12-17T11:50:00Z" } as never]));
    const result = await issueClientSecret({ ...input, secretLifetimeDays: 20 }, deps(graph, store));
    expect(result).toMatchObject({ keyId: "k-20", reused: true });
    expect(calls.filter((c) => c.path.endsWith("/addPassword"))).toEqual([]);
    // Asking for 730 days instead: the 20-day secret is not what was asked for, so a new one is issued.
    const again = await issueClientSecret(input, deps(graph, store));
    expect(again).toMatchObject({ keyId: "k-new", reused: false });
  });

  it("a run never replaces the stored Creatio credential name or mail server: only a delivery that worked does", async () => {
    const store = new FakeSecretStore();
    store.seed("creatio-o365-acme--creatio--com", "old", {
      expiresOn: new Date("2026-12-01T00:00:00Z"),
      tags: encodeSiteTags({ site: input.host, appId: "app-id", appObjectId: "app-obj", keyId: "k-old", creatioSyncedKeyId: "k-old", creatioCredential: "creatio-api-acme", mailServerId: input.mailServerId }),
    });
    const { graph } = recordingGraph(appWith([{ keyId: "k-old" }]));
    await issueClientSecret({ ...input, creatioCredentialSecretName: "creatio-api-typo", mailServerId: "11111111-1111-4111-8111-111111111111" }, deps(graph, store));
    expect(store.latest("creatio-o365-acme--creatio--com")!.properties.tags).toMatchObject({ keyId: "k-new", creatioCredential: "creatio-api-acme", mailServerId: input.mailServerId });
  });

  it("sends addPassword once even on 503, and reports a lifetime policy clearly", async () => {
    const empty = { status: 200, body: { passwordCredentials: [] } };
    const flaky = recordingGraph((call) => (call.method === "GET" ? empty : { status: 503, body: { error: { code: "serviceUnavailable", message: "try later" } } }));
    await expect(issueClientSecret(input, deps(flaky.graph, new FakeSecretStore()))).rejects.toThrow(/503/);
    expect(flaky.calls.filter((c) => c.path.endsWith("/addPassword"))).toHaveLength(1);

    const policy = recordingGraph((call) =>
      call.method === "GET" ? empty : graphError(400, "CredentialInvalidLifetimeAsPerAppPolicy", "Credential lifetime exceeds the max value allowed as per assigned policy."),
    );
    await expect(issueClientSecret(input, deps(policy.graph, new FakeSecretStore()))).rejects.toThrow(/app management policy rejects a client secret lifetime of 730 days/);
  });

  it("removes the new password and redacts the value when Key Vault refuses it", async () => {
    const { graph, calls } = recordingGraph((call) => {
      if (call.method === "GET") return { status: 200, body: { passwordCredentials: [] } };
      if (call.path.endsWith("/removePassword")) return { status: 204 };
      return { status: 200, body: { keyId: "k-new", secretText: SECRET_TEXT, endDateTime: "2028-11-27T12:00:00Z" } };
    });
    const store = new FakeSecretStore();
    store.setSecret = (async () => {
      throw new Error(`vault said no to ${SECRET_TEXT}`);
    }) as never;
    const error = await issueClientSecret(input, deps(graph, store)).catch((e: Error) => e);
    expect(String((error as Error).message)).toBe("vault said no to [redacted]");
    expect(calls.at(-1)).toMatchObject({ path: "/applications/app-obj/removePassword", body: { keyId: "k-new" } });
  });
});

describe("allowUserConsent", () => {
  it("adds the legacy user consent policy and keeps the other entries", async () => {
    const { graph, calls } = recordingGraph((call) =>
      call.method === "GET"
        ? { status: 200, body: { defaultUserRolePermissions: { permissionGrantPoliciesAssigned: ["ManagePermissionGrantsForOwnedResource.microsoft-dynamically-managed-permissions-for-team"] } } }
        : { status: 204 },
    );
    const result = await allowUserConsent({}, deps(graph, new FakeSecretStore()));
    expect(calls[1]).toMatchObject({
      method: "PATCH",
      path: "/policies/authorizationPolicy",
      body: {
        defaultUserRolePermissions: {
          permissionGrantPoliciesAssigned: [
            "ManagePermissionGrantsForOwnedResource.microsoft-dynamically-managed-permissions-for-team",
            "ManagePermissionGrantsForSelf.microsoft-user-default-legacy",
          ],
        },
      },
    });
    expect(result.changed).toBe(true);
    expect(result.previousSelfConsentPolicies).toEqual([]);
  });

  it("replaces a tenant's microsoft-user-default-low entry (one self-consent entry, in place) and returns it for restoring", async () => {
    const { graph, calls } = recordingGraph((call) =>
      call.method === "GET"
        ? {
            status: 200,
            body: {
              defaultUserRolePermissions: {
                permissionGrantPoliciesAssigned: [
                  "ManagePermissionGrantsForOwnedResource.microsoft-dynamically-managed-permissions-for-chat",
                  "ManagePermissionGrantsForSelf.microsoft-user-default-low",
                  "ManagePermissionGrantsForOwnedResource.microsoft-dynamically-managed-permissions-for-team",
                ],
              },
            },
          }
        : { status: 204 },
    );
    const result = await allowUserConsent({}, deps(graph, new FakeSecretStore()));
    expect(calls).toHaveLength(2);
    expect(calls[1]).toMatchObject({ method: "PATCH", path: "/policies/authorizationPolicy" });
    expect(calls[1]!.body).toEqual({
      defaultUserRolePermissions: {
        permissionGrantPoliciesAssigned: [
          "ManagePermissionGrantsForOwnedResource.microsoft-dynamically-managed-permissions-for-chat",
          "ManagePermissionGrantsForSelf.microsoft-user-default-legacy",
          "ManagePermissionGrantsForOwnedResource.microsoft-dynamically-managed-permissions-for-team",
        ],
      },
    });
    expect(result).toEqual({
      changed: true,
      permissionGrantPoliciesAssigned: (calls[1]!.body as any).defaultUserRolePermissions.permissionGrantPoliciesAssigned,
      previousSelfConsentPolicies: ["ManagePermissionGrantsForSelf.microsoft-user-default-low"],
    });
  });

  it("leaves a policy that already has exactly the wanted self-consent entry alone; several self entries collapse to one", async () => {
    const answer = (assigned: string[]) =>
      recordingGraph((call) => (call.method === "GET" ? { status: 200, body: { defaultUserRolePermissions: { permissionGrantPoliciesAssigned: assigned } } } : { status: 204 }));
    const done = answer(["ManagePermissionGrantsForSelf.microsoft-user-default-legacy", "ManagePermissionGrantsForOwnedResource.x"]);
    expect(await allowUserConsent({}, deps(done.graph, new FakeSecretStore()))).toMatchObject({
      changed: false,
      previousSelfConsentPolicies: ["ManagePermissionGrantsForSelf.microsoft-user-default-legacy"],
    });
    expect(done.calls.map((c) => c.method)).toEqual(["GET"]);

    const two = answer(["ManagePermissionGrantsForSelf.microsoft-user-default-legacy", "ManagePermissionGrantsForSelf.custom-policy"]);
    const result = await allowUserConsent({}, deps(two.graph, new FakeSecretStore()));
    expect(two.calls[1]!.body).toEqual({ defaultUserRolePermissions: { permissionGrantPoliciesAssigned: ["ManagePermissionGrantsForSelf.microsoft-user-default-legacy"] } });
    expect(result.previousSelfConsentPolicies).toEqual(["ManagePermissionGrantsForSelf.microsoft-user-default-legacy", "ManagePermissionGrantsForSelf.custom-policy"]);
  });
});

describe("issueClientSecret and replication lag", () => {
  it("waits for an app created seconds ago to become readable", async () => {
    let reads = 0;
    const { graph } = recordingGraph((call) => {
      if (call.method === "GET") return ++reads < 3 ? graphError(404, "Request_ResourceNotFound", "Resource does not exist") : { status: 200, body: { passwordCredentials: [] } };
      return { status: 200, body: { keyId: "k1", secretText: "value", endDateTime: "2027-11-27T12:00:00Z" } };
    });
    const result = await issueClientSecret(
      { host: "acme.creatio.com", instanceId: "i", runId: "r", purpose: "onboard", appId: "a", appObjectId: "o", secretLifetimeDays: 365, creatioCredentialSecretName: "c", mailServerId: "m" },
      deps(graph, new FakeSecretStore()),
    );
    expect(reads).toBe(3);
    expect(result.keyId).toBe("k1");
  });
});

describe("configureCreatio", () => {
  it("keeps the Creatio credential's password out of its errors, as well as the client secret", async () => {
    const store = new FakeSecretStore();
    const clientSecretValue = "client-secret-value-123";
    const password = "creatio-password-456";
    const version = store.seed("creatio-o365-acme--creatio--com", clientSecretValue, {});
    store.seed("creatio-api-acme", JSON.stringify({ username: "Supervisor", password }), { tags: { creatioSite: "acme.creatio.com" } });
    // A Creatio (or proxy) error that quotes what it was sent.
    const fail = async () => {
      throw new Error(`POST /ServiceModel/AuthService.svc/Login: 500 {"UserName":"Supervisor","UserPassword":"${password}"} secret ${clientSecretValue}`);
    };
    const creatio = { odataRoot: fail, mailServerLink: fail };
    const { graph } = recordingGraph(() => ({ status: 404 }));
    const run = configureCreatio(
      { host: "acme.creatio.com", secretName: "creatio-o365-acme--creatio--com", secretVersion: version, creatioCredentialSecretName: "creatio-api-acme", mailServerId: "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b", appId: "app-id" },
      deps(graph, store, { creatio: (() => creatio) as never }),
    );
    const error = (await run.then(() => undefined, (e: unknown) => e)) as Error;
    expect(error.message).toMatch(/AuthService\.svc\/Login: 500/);
    expect(error.message).not.toContain(password);
    expect(error.message).not.toContain(clientSecretValue);
    expect(error.stack ?? "").not.toContain(password);
  });
});
