import { z } from "zod";

/**
 * What the app requests for a site, as data: named permission profiles (issue 8, item 5). A profile
 * lists the delegated scopes per resource and Creatio's redirect path. `creatio-ews` is Creatio
 * Academy's procedure (manual steps 2-5, docs/architecture.md, "The procedure, step by step") and the
 * default; an operator adds others with the setting PERMISSION_PROFILES (src/settings.ts).
 * Ids from docs/architecture.md, "Microsoft Graph and Entra ID": Office 365 Exchange Online `EWS.AccessAsUser.All`
 * (office-developer-exchange-docs, how-to-authenticate-an-ews-application-by-using-oauth.md) and
 * Microsoft Graph `User.Read` (microsoft-graph-devx-content permissions/new/provisioningInfo.json).
 * Scope ids are resolved at run time from the resource service principals' oauth2PermissionScopes;
 * the ids here are the documented values, used in tests.
 */

export interface RequiredResource {
  /** Human name for messages. */
  name: string;
  /** appId of the resource's service principal. */
  appId: string;
  /** Delegated scopes (oauth2PermissionScopes values) the profile needs. */
  scopes: readonly { value: string; knownId?: string }[];
}

export const EXCHANGE_ONLINE_APP_ID = "00000002-0000-0ff1-ce00-000000000000";
export const MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000";
/** Exchange Online's delegated EWS scope: a profile with it needs the tenant's EWS allow-list (allowEwsAccess). */
export const EWS_SCOPE = "EWS.AccessAsUser.All";

export const EXCHANGE_ONLINE: RequiredResource = {
  name: "Office 365 Exchange Online",
  appId: EXCHANGE_ONLINE_APP_ID,
  // Not Microsoft Graph's own EWS.AccessAsUser.All (9769c687-...): Creatio calls EWS at outlook.office365.com.
  scopes: [{ value: EWS_SCOPE, knownId: "3b5f3d61-589b-4a3c-a359-5dd4b5ee5bd5" }],
};

export const MICROSOFT_GRAPH: RequiredResource = {
  name: "Microsoft Graph",
  appId: MICROSOFT_GRAPH_APP_ID,
  scopes: [{ value: "User.Read", knownId: "e1fe6dd8-ba31-4d61-89e7-88639da4683d" }],
};

/** Creatio's Office 365 authenticator callback, under the site's origin (Creatio 8.x; 7.16 used Microsoft365OAuthAuthenticator). */
export const CREATIO_REDIRECT_PATH = "/0/rest/Office365OAuthAuthenticator/ProcessAuthenticationCode";

export const PROFILE_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
const profileName = z.string().regex(PROFILE_NAME_PATTERN, "must be lower-case letters, digits and hyphens (at most 63)");
const guid = z.guid("must be a GUID");
/** Scope values as Entra publishes them: no spaces (a grant's scope string is space separated). */
const scopeValue = z.string().regex(/^[A-Za-z0-9._-]{1,120}$/, "must be a scope value such as Mail.Send");

/** One profile (data only; the zod schema validates PERMISSION_PROFILES and the orchestration input). */
export const permissionProfileSchema = z.strictObject({
  name: profileName,
  redirectPath: z.string().regex(/^\/[A-Za-z0-9/._-]*$/, "must be a path starting with /").default(CREATIO_REDIRECT_PATH),
  resources: z
    .array(
      z.strictObject({
        name: z.string().min(1).max(120).optional(),
        appId: guid,
        scopes: z.array(scopeValue).min(1),
      }),
    )
    .min(1)
    .refine((rs) => new Set(rs.map((r) => r.appId.toLowerCase())).size === rs.length, "must name each resource appId once"),
});
export type PermissionProfile = z.output<typeof permissionProfileSchema>;

export const DEFAULT_PERMISSION_PROFILE = "creatio-ews";

/** The built-in profile: today's Academy procedure, Exchange Online EWS.AccessAsUser.All + Microsoft Graph User.Read. */
export const CREATIO_EWS_PROFILE: PermissionProfile = {
  name: DEFAULT_PERMISSION_PROFILE,
  redirectPath: CREATIO_REDIRECT_PATH,
  resources: [EXCHANGE_ONLINE, MICROSOFT_GRAPH].map((r) => ({ name: r.name, appId: r.appId, scopes: r.scopes.map((s) => s.value) })),
};

export const BUILT_IN_PROFILES: readonly PermissionProfile[] = [CREATIO_EWS_PROFILE];

/** The profiles an app knows: the built-in ones, then the operator's (PERMISSION_PROFILES). */
export function knownProfiles(extra: readonly PermissionProfile[] = []): PermissionProfile[] {
  return [...BUILT_IN_PROFILES, ...extra];
}

export function findProfile(name: string | undefined, extra: readonly PermissionProfile[] = []): PermissionProfile | undefined {
  return knownProfiles(extra).find((p) => p.name === (name ?? DEFAULT_PERMISSION_PROFILE));
}

/** Human name of a resource of a profile. */
export function resourceName(resource: { name?: string; appId: string }): string {
  if (resource.name) return resource.name;
  if (resource.appId === EXCHANGE_ONLINE_APP_ID) return EXCHANGE_ONLINE.name;
  if (resource.appId === MICROSOFT_GRAPH_APP_ID) return MICROSOFT_GRAPH.name;
  return `resource ${resource.appId}`;
}

/** The profile asks for Exchange Online's EWS.AccessAsUser.All, so the tenant's EWS allow-list matters. */
export function profileUsesEws(profile: PermissionProfile): boolean {
  return profile.resources.some((r) => r.appId.toLowerCase() === EXCHANGE_ONLINE_APP_ID && r.scopes.includes(EWS_SCOPE));
}

/**
 * Scopes of `previous` that `next` does not ask for, per resource appId: what this product added
 * for the old profile and must take away when the site moves to the new one.
 */
export function retiredScopes(previous: PermissionProfile | undefined, next: PermissionProfile): { name?: string; appId: string; scopes: string[] }[] {
  if (!previous) return [];
  const out: { name?: string; appId: string; scopes: string[] }[] = [];
  for (const old of previous.resources) {
    const kept = next.resources.find((r) => r.appId.toLowerCase() === old.appId.toLowerCase())?.scopes ?? [];
    const scopes = old.scopes.filter((s) => !kept.includes(s));
    if (scopes.length > 0) out.push({ ...(old.name ? { name: old.name } : {}), appId: old.appId, scopes });
  }
  return out;
}

/** Policy assigned by step 9 ("allow user consent"): the tenant-wide legacy user consent policy (learn.microsoft.com/entra/identity/enterprise-apps/configure-user-consent). */
export const USER_CONSENT_POLICY = "ManagePermissionGrantsForSelf.microsoft-user-default-legacy";
