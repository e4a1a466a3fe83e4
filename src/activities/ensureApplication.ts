import { z } from "zod";
import { graphGetOrUndefined, graphUpsert, graphCall, isNotFound, odataString, GraphCallError } from "../clients/graph";
import { applicationUniqueNameFor, redirectUriFor } from "../domain/site";
import { CREATIO_EWS_PROFILE, permissionProfileSchema, resourceName, retiredScopes } from "../domain/permissions";
import { activityFields, defaultDeps, whileReplicating, type ActivityDeps } from "./shared";

/**
 * Step 2 (manual steps 2-5): the app registration, upserted by uniqueName
 * (`PATCH /applications(uniqueName='...')` + `Prefer: create-if-missing`, learn.microsoft.com/graph/api/application-upsert).
 * Single tenant, the profile's redirect URI and delegated scopes (src/domain/permissions.ts; by
 * default creatio-ews: EWS.AccessAsUser.All and User.Read) with scope ids read from the resource
 * service principals. A re-run repairs what was removed by hand and keeps what an admin added
 * (other redirect URIs, other permissions). When the site moves from `previousProfile` to another
 * profile, only what the old profile asked for and the new one does not (its scopes, its redirect
 * URI) is taken away; the result names those scopes (`retired`) so grantAdminConsent narrows the grants.
 */
export const ENSURE_APPLICATION = "ensureApplication";

export const ensureApplicationInput = activityFields.pick({ host: true, displayName: true, tenantId: true }).extend({
  /** What the app asks for; creatio-ews when absent (an input from before profiles). */
  profile: permissionProfileSchema.default(CREATIO_EWS_PROFILE),
  /** The profile the site was onboarded with before (its tags); absent on a first onboarding. */
  previousProfile: permissionProfileSchema.optional(),
});
export type EnsureApplicationInput = z.input<typeof ensureApplicationInput>;

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
  /** Scopes of the previous profile the profile no longer asks for, now gone from requiredResourceAccess. */
  retired: ResolvedResource[];
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

type WantedResource = { name?: string; appId: string; scopes: readonly string[] };

interface ResourceServicePrincipal {
  id: string;
  appId: string;
  oauth2PermissionScopes?: { id: string; value: string }[];
}

/**
 * How long a resource's service principal (its object id and published scope ids) is reused: they
 * are constants of the tenant (Microsoft's first-party resources keep their ids), so one read
 * serves every onboarding for an hour (docs/architecture.md, "Upstream calls per onboarding").
 */
export const RESOURCE_CACHE_MS = 60 * 60 * 1000;

/** Per Graph client (one client = the app's home tenant): appId (lower case) -> the principal and when it was read. */
const resourceCache = new WeakMap<object, Map<string, { sp: ResourceServicePrincipal; at: number }>>();

/**
 * The service principals of these resource app ids, one Graph read for all of them
 * (`GET /servicePrincipals?$filter=appId in ('...','...')`, learn.microsoft.com/graph/filter-query-parameter,
 * "in" operator), cached per tenant for RESOURCE_CACHE_MS.
 */
async function resourcePrincipals(deps: Pick<ActivityDeps, "graph" | "now">, appIds: readonly string[]): Promise<Map<string, ResourceServicePrincipal | null>> {
  let cache = resourceCache.get(deps.graph);
  if (!cache) resourceCache.set(deps.graph, (cache = new Map()));
  const now = deps.now().getTime();
  const wanted = [...new Set(appIds.map((a) => a.toLowerCase()))];
  const missing = wanted.filter((a) => {
    const hit = cache.get(a);
    return !hit || now - hit.at >= RESOURCE_CACHE_MS || now < hit.at;
  });
  if (missing.length > 0) {
    const path = `/servicePrincipals?$filter=appId in (${missing.map(odataString).join(",")})&$select=id,appId,oauth2PermissionScopes`;
    const answer = await graphCall(`GET ${path}`, () => deps.graph.api(path).get() as Promise<{ value?: ResourceServicePrincipal[] }>);
    const found = new Map((answer.value ?? []).map((sp) => [sp.appId.toLowerCase(), sp]));
    // A resource the tenant lacks is not remembered: once an administrator adds it, the next run sees it.
    for (const appId of missing) {
      const sp = found.get(appId);
      if (sp) cache.set(appId, { sp, at: now });
      else cache.delete(appId);
    }
  }
  return new Map(wanted.map((a) => [a, cache.get(a)?.sp ?? null]));
}

/** Forgets the cached resource principals of this Graph client (tests; a tenant whose resources changed). */
export function forgetResourcePrincipals(graph: object): void {
  resourceCache.delete(graph);
}

/**
 * Looks up each resource's service principal and the ids of the scopes a profile asks for. With
 * `lenient` (scopes being taken away), a scope the resource no longer publishes is skipped: there is
 * nothing of it to remove. `principals` are the resources' service principals by lower-case appId.
 */
export function resolveResources(principals: Map<string, ResourceServicePrincipal | null>, wanted: readonly WantedResource[], lenient = false): ResolvedResource[] {
  const resolved: ResolvedResource[] = [];
  for (const resource of wanted) {
    const name = resourceName(resource);
    const sp = principals.get(resource.appId.toLowerCase());
    if (!sp) {
      if (lenient) continue;
      throw new Error(`${name} (appId ${resource.appId}) has no service principal in this tenant; the resource must be available to the tenant.`);
    }
    const scopes: { value: string; id: string }[] = [];
    for (const value of resource.scopes) {
      const scope = sp.oauth2PermissionScopes?.find((s) => s.value === value);
      if (scope) scopes.push({ value: scope.value, id: scope.id });
      else if (!lenient) throw new Error(`${name} does not publish the delegated scope ${value}`);
    }
    if (scopes.length > 0) resolved.push({ name, appId: resource.appId, servicePrincipalId: sp.id, scopes });
  }
  return resolved;
}

/**
 * requiredResourceAccess with the retired scopes (the old profile's, not the new one's) taken out
 * and ours merged in; entries an admin added stay. A resource entry left empty by the removal goes.
 */
export function mergeRequiredResourceAccess(existing: RequiredResourceAccess[], resources: ResolvedResource[], retired: ResolvedResource[] = []): RequiredResourceAccess[] {
  const isRetired = (appId: string, access: ResourceAccess) =>
    access.type === "Scope" && retired.some((r) => r.appId.toLowerCase() === appId.toLowerCase() && r.scopes.some((s) => s.id === access.id));
  const merged = existing
    .map((r) => ({ resourceAppId: r.resourceAppId, resourceAccess: r.resourceAccess.map((a) => ({ id: a.id, type: a.type })) }))
    .map((r) => ({ ...r, removed: r.resourceAccess.some((a) => isRetired(r.resourceAppId, a)), resourceAccess: r.resourceAccess.filter((a) => !isRetired(r.resourceAppId, a)) }))
    .filter((r) => !(r.removed && r.resourceAccess.length === 0))
    .map(({ resourceAppId, resourceAccess }) => ({ resourceAppId, resourceAccess }));
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

export async function ensureApplication(rawInput: EnsureApplicationInput, deps: ActivityDeps = defaultDeps(rawInput)): Promise<EnsureApplicationResult> {
  const input = ensureApplicationInput.parse(rawInput);
  const uniqueName = applicationUniqueNameFor(input.host);
  const redirectUri = redirectUriFor(input.host, input.profile);
  // The old profile's redirect URI goes only when the new profile uses another path.
  const retiredRedirectUri = input.previousProfile && input.previousProfile.redirectPath !== input.profile.redirectPath ? redirectUriFor(input.host, input.previousProfile) : undefined;
  const keyPath = `/applications(uniqueName=${odataString(uniqueName)})`;
  const retiring = retiredScopes(input.previousProfile, input.profile);
  // The resources (one read, or none while cached) and the application: independent reads, at once.
  const [principals, existing] = await Promise.all([
    resourcePrincipals(deps, [...input.profile.resources, ...retiring].map((r) => r.appId)),
    graphGetOrUndefined<GraphApplication>(deps.graph, `${keyPath}?${APP_SELECT}`),
  ]);
  const resources = resolveResources(principals, input.profile.resources);
  const retired = resolveResources(principals, retiring, true);

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
      return { uniqueName, appId: upsert.body.appId, appObjectId: upsert.body.id, redirectUri, created: true, repaired: [], resources, retired };
    }
    // 204: created concurrently by an earlier attempt between our read and write; read it back.
    const app = await whileReplicating(deps, isNotFound, async () => {
      const found = await graphGetOrUndefined<GraphApplication>(deps.graph, `${keyPath}?${APP_SELECT}`);
      if (!found) throw new GraphCallError(`GET ${keyPath}`, 404, "Request_ResourceNotFound", "not visible yet");
      return found;
    });
    return { uniqueName, appId: app.appId, appObjectId: app.id, redirectUri, created: false, repaired: ["displayName", "signInAudience", "web", "requiredResourceAccess"], resources, retired };
  }

  const patch: Record<string, unknown> = {};
  if (existing.displayName !== input.displayName) patch.displayName = input.displayName;
  if (existing.signInAudience !== "AzureADMyOrg") patch.signInAudience = "AzureADMyOrg";
  const redirectUris = existing.web?.redirectUris ?? [];
  if (!redirectUris.includes(redirectUri) || (retiredRedirectUri && redirectUris.includes(retiredRedirectUri))) {
    // `web` is a complex value: send the parts we read back so PATCH keeps them.
    const kept = redirectUris.filter((u) => u !== retiredRedirectUri);
    const web: Record<string, unknown> = { redirectUris: kept.includes(redirectUri) ? kept : [...kept, redirectUri] };
    if (existing.web?.homePageUrl) web.homePageUrl = existing.web.homePageUrl;
    if (existing.web?.logoutUrl) web.logoutUrl = existing.web.logoutUrl;
    if (existing.web?.implicitGrantSettings) web.implicitGrantSettings = existing.web.implicitGrantSettings;
    patch.web = web;
  }
  const currentAccess = existing.requiredResourceAccess ?? [];
  const mergedAccess = mergeRequiredResourceAccess(currentAccess, resources, retired);
  if (JSON.stringify(mergedAccess) !== JSON.stringify(currentAccess.map((r) => ({ resourceAppId: r.resourceAppId, resourceAccess: r.resourceAccess.map((a) => ({ id: a.id, type: a.type })) })))) {
    patch.requiredResourceAccess = mergedAccess;
  }
  const repaired = Object.keys(patch);
  if (repaired.length > 0) {
    const path = `/applications/${existing.id}`;
    await graphCall(`PATCH ${path}`, () => deps.graph.api(path).patch(patch));
  }
  return { uniqueName, appId: existing.appId, appObjectId: existing.id, redirectUri, created: false, repaired, resources, retired };
}

export const ensureApplicationActivity = {
  name: ENSURE_APPLICATION,
  handler: (input: unknown) => ensureApplication(input as EnsureApplicationInput),
};
