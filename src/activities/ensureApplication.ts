import { z } from "zod";
import { graphGetOrUndefined, graphUpsert, graphCall, isNotFound, odataString, GraphCallError } from "../clients/graph";
import { applicationUniqueNameFor, redirectUriFor } from "../domain/site";
import { REQUIRED_RESOURCES } from "../domain/permissions";
import { defaultDeps, whileReplicating, type ActivityDeps } from "./shared";

/**
 * Step 2 (manual steps 2-5): the app registration, upserted by uniqueName
 * (`PATCH /applications(uniqueName='...')` + `Prefer: create-if-missing`, learn.microsoft.com/graph/api/application-upsert).
 * Single tenant, Creatio's redirect URI, delegated EWS.AccessAsUser.All and User.Read with scope
 * ids read from the resource service principals. A re-run repairs what was removed by hand and
 * keeps what an admin added (other redirect URIs, other permissions).
 */
export const ENSURE_APPLICATION = "ensureApplication";

export const ensureApplicationInput = z.object({
  host: z.string().min(1),
  displayName: z.string().min(1),
});
export type EnsureApplicationInput = z.infer<typeof ensureApplicationInput>;

export interface ResolvedResource {
  name: string;
  appId: string;
  servicePrincipalId: string;
  scopes: { value: string; id: string }[];
}

export interface EnsureApplicationResult {
  uniqueName: string;
  appId: string;
  appObjectId: string;
  redirectUri: string;
  created: boolean;
  /** Fields written on an existing application (drift repaired); empty when nothing changed. */
  repaired: string[];
  resources: ResolvedResource[];
}

// Hand-typed, unlike the passwords and grants (@microsoft/microsoft-graph-types): there resourceAppId,
// resourceAccess and a scope's value are optional, while the merge below relies on Graph returning them.
interface ResourceAccess {
  id: string;
  type: string;
}
interface RequiredResourceAccess {
  resourceAppId: string;
  resourceAccess: ResourceAccess[];
}
interface GraphApplication {
  id: string;
  appId: string;
  displayName?: string;
  signInAudience?: string;
  web?: { redirectUris?: string[]; homePageUrl?: string | null; logoutUrl?: string | null; implicitGrantSettings?: unknown };
  requiredResourceAccess?: RequiredResourceAccess[];
}

const APP_SELECT = "$select=id,appId,displayName,signInAudience,web,requiredResourceAccess";

/** Looks up each resource's service principal and the ids of the scopes Creatio needs. */
export async function resolveResources(deps: Pick<ActivityDeps, "graph">): Promise<ResolvedResource[]> {
  const resolved: ResolvedResource[] = [];
  for (const resource of REQUIRED_RESOURCES) {
    const path = `/servicePrincipals(appId=${odataString(resource.appId)})?$select=id,appId,displayName,oauth2PermissionScopes`;
    const sp = await graphGetOrUndefined<{ id: string; oauth2PermissionScopes?: { id: string; value: string }[] }>(deps.graph, path);
    if (!sp) {
      throw new Error(`${resource.name} (appId ${resource.appId}) has no service principal in this tenant; Exchange Online must be available to the tenant.`);
    }
    const scopes = resource.scopes.map((wanted) => {
      const scope = sp.oauth2PermissionScopes?.find((s) => s.value === wanted.value);
      if (!scope) throw new Error(`${resource.name} does not publish the delegated scope ${wanted.value}`);
      return { value: scope.value, id: scope.id };
    });
    resolved.push({ name: resource.name, appId: resource.appId, servicePrincipalId: sp.id, scopes });
  }
  return resolved;
}

/** requiredResourceAccess with ours merged in; entries an admin added stay. */
export function mergeRequiredResourceAccess(existing: RequiredResourceAccess[], resources: ResolvedResource[]): RequiredResourceAccess[] {
  const merged = existing.map((r) => ({ resourceAppId: r.resourceAppId, resourceAccess: r.resourceAccess.map((a) => ({ id: a.id, type: a.type })) }));
  for (const resource of resources) {
    let entry = merged.find((r) => r.resourceAppId === resource.appId);
    if (!entry) {
      entry = { resourceAppId: resource.appId, resourceAccess: [] };
      merged.push(entry);
    }
    for (const scope of resource.scopes) {
      if (!entry.resourceAccess.some((a) => a.id === scope.id && a.type === "Scope")) entry.resourceAccess.push({ id: scope.id, type: "Scope" });
    }
  }
  return merged;
}

export async function ensureApplication(rawInput: EnsureApplicationInput, deps: ActivityDeps = defaultDeps()): Promise<EnsureApplicationResult> {
  const input = ensureApplicationInput.parse(rawInput);
  const uniqueName = applicationUniqueNameFor(input.host);
  const redirectUri = redirectUriFor(input.host);
  const keyPath = `/applications(uniqueName=${odataString(uniqueName)})`;
  const resources = await resolveResources(deps);

  const existing = await graphGetOrUndefined<GraphApplication>(deps.graph, `${keyPath}?${APP_SELECT}`);
  if (!existing) {
    const body = {
      displayName: input.displayName,
      signInAudience: "AzureADMyOrg",
      web: { redirectUris: [redirectUri] },
      requiredResourceAccess: mergeRequiredResourceAccess([], resources),
    };
    const upsert = await graphUpsert<GraphApplication>(deps.graph, keyPath, body);
    if (upsert.created && upsert.body) {
      // Use the ids the write returned: a read right after a create may not see it yet.
      return { uniqueName, appId: upsert.body.appId, appObjectId: upsert.body.id, redirectUri, created: true, repaired: [], resources };
    }
    // 204: created concurrently by an earlier attempt between our read and write; read it back.
    const app = await whileReplicating(deps, isNotFound, async () => {
      const found = await graphGetOrUndefined<GraphApplication>(deps.graph, `${keyPath}?${APP_SELECT}`);
      if (!found) throw new GraphCallError(`GET ${keyPath}`, 404, "Request_ResourceNotFound", "not visible yet");
      return found;
    });
    return { uniqueName, appId: app.appId, appObjectId: app.id, redirectUri, created: false, repaired: ["displayName", "signInAudience", "web", "requiredResourceAccess"], resources };
  }

  const patch: Record<string, unknown> = {};
  if (existing.displayName !== input.displayName) patch.displayName = input.displayName;
  if (existing.signInAudience !== "AzureADMyOrg") patch.signInAudience = "AzureADMyOrg";
  const redirectUris = existing.web?.redirectUris ?? [];
  if (!redirectUris.includes(redirectUri)) {
    // `web` is a complex value: send the parts we read back so PATCH keeps them.
    const web: Record<string, unknown> = { redirectUris: [...redirectUris, redirectUri] };
    if (existing.web?.homePageUrl) web.homePageUrl = existing.web.homePageUrl;
    if (existing.web?.logoutUrl) web.logoutUrl = existing.web.logoutUrl;
    if (existing.web?.implicitGrantSettings) web.implicitGrantSettings = existing.web.implicitGrantSettings;
    patch.web = web;
  }
  const currentAccess = existing.requiredResourceAccess ?? [];
  const mergedAccess = mergeRequiredResourceAccess(currentAccess, resources);
  if (JSON.stringify(mergedAccess) !== JSON.stringify(currentAccess.map((r) => ({ resourceAppId: r.resourceAppId, resourceAccess: r.resourceAccess.map((a) => ({ id: a.id, type: a.type })) })))) {
    patch.requiredResourceAccess = mergedAccess;
  }
  const repaired = Object.keys(patch);
  if (repaired.length > 0) {
    const path = `/applications/${existing.id}`;
    await graphCall(`PATCH ${path}`, () => deps.graph.api(path).patch(patch));
  }
  return { uniqueName, appId: existing.appId, appObjectId: existing.id, redirectUri, created: false, repaired, resources };
}

export const ensureApplicationActivity = {
  name: ENSURE_APPLICATION,
  handler: (input: unknown) => ensureApplication(input as EnsureApplicationInput),
};
