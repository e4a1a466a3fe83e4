/**
 * Issue 8, item 5 end to end: permission profiles as data. The built app in the local Functions host
 * on Azurite, real SDK clients, the Graph/Entra, Key Vault, Creatio and Exchange Online emulators. A
 * site onboarded with the built-in creatio-ews moves to a Graph-only profile given through
 * PERMISSION_PROFILES; the app's requiredResourceAccess and its admin-consent grants converge to the
 * new profile, keeping what an administrator added by hand (README, "Permission profiles").
 */
import { GRAPH_SCOPES, EXCHANGE_SCOPES } from "../../dev/emulators/graph/seed";
import { storeSiteCredential } from "../support/siteCredential";
import { JSON_HEADERS as json, startAppStack, type AppStack } from "../support/appStack";

const EXO = "00000002-0000-0ff1-ce00-000000000000";
const MSGRAPH = "00000003-0000-0000-c000-000000000000";
const GRAPH_PROFILE_SCOPES = ["Mail.ReadWrite", "Mail.Send", "Calendars.ReadWrite", "User.Read", "offline_access"];
const PERMISSION_PROFILES = { "creatio-graph": { resources: [{ appId: MSGRAPH, name: "Microsoft Graph", scopes: GRAPH_PROFILE_SCOPES }] } };
/** The scope an administrator adds by hand; no profile asks for it. */
const ADMIN_SCOPE = "Mail.Read";

const scopeId = (value: string, scopes = GRAPH_SCOPES) => {
  const found = scopes.find((s) => s.value === value);
  if (!found) throw new Error(`the Graph emulator's seed publishes no ${value}`);
  return found.id;
};

let app: AppStack;
let creatioUrl: string;
const api: AppStack["api"] = (path, init) => app.api(path, init);
const onboard = (body: { creatioUrl: string } & Record<string, unknown>) => app.onboard(body);
const graphState = (): Promise<any> => app.emulatorState(app.stack.graphUrl);
/** The app's requiredResourceAccess and its AllPrincipals grants, as sorted scope ids and values per resource appId. */
async function appAndGrants(appId: string, servicePrincipalId: string) {
  const state = await graphState();
  const registration = state.applications.find((a: any) => a.appId === appId);
  const access = Object.fromEntries(registration.requiredResourceAccess.map((r: any) => [r.resourceAppId, r.resourceAccess.map((a: any) => `${a.type}:${a.id}`).sort()]));
  const spAppId = (id: string) => state.servicePrincipals.find((s: any) => s.id === id)?.appId;
  const grants = Object.fromEntries(
    state.oauth2PermissionGrants
      .filter((g: any) => g.clientId === servicePrincipalId && g.consentType === "AllPrincipals")
      .map((g: any) => [spAppId(g.resourceId), g.scope.split(" ").filter(Boolean).sort()]),
  );
  return { app: registration, access, grants };
}
/** Writes the app made to the app registration and grants (an administrator's writes use their own token, before counting). */
const graphWrites = () =>
  app.stack.servers.graph.requests.filter((q) => q.method !== "GET" && /^\/v1\.0\/(applications|oauth2PermissionGrants)/.test(q.path)).length;

async function asAdmin(method: string, path: string, body: object): Promise<void> {
  const r = await fetch(`${app.stack.graphUrl}/v1.0${path}`, { method, headers: { Authorization: `Bearer ${await app.graphToken()}`, ...json }, body: JSON.stringify(body) });
  expect(r.status).toBe(204);
}

beforeAll(async () => {
  app = await startAppStack({ env: { EWS_ACCESS: "manage", PERMISSION_PROFILES: JSON.stringify(PERMISSION_PROFILES) } });
  creatioUrl = (await app.newCreatio()).url;
}, 180_000);

afterAll(() => app?.close());

describe("permission profiles", () => {
  test("a site moves from creatio-ews to creatio-graph (PERMISSION_PROFILES): app and grants hold exactly the new profile's scopes plus the admin's; again: nothing changes", async () => {
    const site = new URL(creatioUrl).host;
    const creatioCredentialSecretName = await storeSiteCredential(app.secrets, site);

    // 1. The default profile: today's procedure.
    const first = await onboard({ creatioUrl, creatioCredentialSecretName });
    expect(first.runtimeStatus).toBe("Completed");
    const { appId, servicePrincipalId } = first.output as any;
    expect(first.output).toMatchObject({ permissionProfile: "creatio-ews", mail: { ews: "allowed" } });
    const ews = await appAndGrants(appId, servicePrincipalId);
    expect(ews.access).toEqual({ [EXO]: [`Scope:${scopeId("EWS.AccessAsUser.All", EXCHANGE_SCOPES)}`], [MSGRAPH]: [`Scope:${scopeId("User.Read")}`] });
    expect(ews.grants).toEqual({ [EXO]: ["EWS.AccessAsUser.All"], [MSGRAPH]: ["User.Read"] });
    expect((await api(`/api/tenants/${site}`)).body).toMatchObject({ permissionProfile: "creatio-ews", mail: { ews: "allowed" } });

    // 2. An administrator adds Mail.Read by hand: to the app's permissions and to the Graph grant.
    const graphEntry = ews.app.requiredResourceAccess.find((r: any) => r.resourceAppId === MSGRAPH);
    await asAdmin("PATCH", `/applications/${ews.app.id}`, {
      requiredResourceAccess: [
        ...ews.app.requiredResourceAccess.filter((r: any) => r.resourceAppId !== MSGRAPH),
        { resourceAppId: MSGRAPH, resourceAccess: [...graphEntry.resourceAccess, { id: scopeId(ADMIN_SCOPE), type: "Scope" }] },
      ],
    });
    const graphGrant = (await graphState()).oauth2PermissionGrants.find((g: any) => g.clientId === servicePrincipalId && g.scope.includes("User.Read"));
    await asAdmin("PATCH", `/oauth2PermissionGrants/${graphGrant.id}`, { scope: `User.Read ${ADMIN_SCOPE}` });

    // 3. Onboarded again with the operator's Graph profile.
    const moved = await onboard({ creatioUrl, creatioCredentialSecretName, permissionProfile: "creatio-graph" });
    expect(moved.runtimeStatus).toBe("Completed");
    expect(moved.output).toMatchObject({ appId, permissionProfile: "creatio-graph", mail: { ews: "notUsed", actions: [] } });
    const wanted = [...GRAPH_PROFILE_SCOPES, ADMIN_SCOPE].sort();
    const graph = await appAndGrants(appId, servicePrincipalId);
    expect(graph.access).toEqual({ [MSGRAPH]: wanted.map((s) => `Scope:${scopeId(s)}`).sort() });
    // Exchange Online's grant held only EWS.AccessAsUser.All, which this product added: it is gone.
    expect(graph.grants).toEqual({ [MSGRAPH]: wanted });
    const status = (await api(`/api/tenants/${site}`)).body;
    expect(status).toMatchObject({ permissionProfile: "creatio-graph", mail: { ews: "notUsed", fix: null }, health: { state: "healthy", problems: [] } });
    expect(status.grantedScopes.sort()).toEqual(wanted);
    expect(status.redirectUri).toBe(`https://${site}/0/rest/Office365OAuthAuthenticator/ProcessAuthenticationCode`);

    // 4. Again with the same profile: converged, no write to the app or the grants.
    const writes = graphWrites();
    const again = await onboard({ creatioUrl, creatioCredentialSecretName, permissionProfile: "creatio-graph" });
    expect(again.runtimeStatus).toBe("Completed");
    expect(graphWrites()).toBe(writes);
    expect(await appAndGrants(appId, servicePrincipalId)).toEqual(graph);
  }, 360_000);

  test("an unknown profile is a 400 naming the field and listing the known profiles", async () => {
    const r = await api("/api/tenants", { method: "POST", headers: json, body: JSON.stringify({ creatioUrl, creatioCredentialSecretName: "creatio-sandbox-admin", permissionProfile: "creatio-imap" }) });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual([{ path: "permissionProfile", message: "permissionProfile creatio-imap is not a known profile; known: creatio-ews, creatio-graph" }]);
  });
});
