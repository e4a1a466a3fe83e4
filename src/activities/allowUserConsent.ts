import type { AuthorizationPolicy } from "@microsoft/microsoft-graph-types";
import { z } from "zod";
import { graphCall } from "../clients/graph";
import { USER_CONSENT_POLICY } from "../domain/permissions";
import { activityFields, defaultDeps, type ActivityDeps } from "./shared";

/**
 * Step 7 (manual step 9), opt-in: allow users to consent tenant-wide. The PATCH replaces the whole
 * `permissionGrantPoliciesAssigned` list (docs/architecture.md "Microsoft Graph and Entra ID";
 * https://learn.microsoft.com/graph/api/authorizationpolicy-update), so the current list is read
 * first. A tenant has one user consent setting: Microsoft's docs set exactly one
 * `ManagePermissionGrantsForSelf.{policy}` entry
 * (https://learn.microsoft.com/entra/identity/enterprise-apps/configure-user-consent, "Microsoft Graph"
 * tab), so any existing one is replaced, not joined; every other entry
 * (ManagePermissionGrantsForOwnedResource.* and the like) is kept. The replaced value(s) come back
 * in the result so an administrator can restore them.
 */
export const ALLOW_USER_CONSENT = "allowUserConsent";

const SELF_CONSENT_PREFIX = "ManagePermissionGrantsForSelf.";

export const allowUserConsentInput = activityFields.pick({ tenantId: true }).extend({ policy: z.string().min(1).default(USER_CONSENT_POLICY) });
export type AllowUserConsentInput = z.input<typeof allowUserConsentInput>;

export interface AllowUserConsentResult {
  changed: boolean;
  permissionGrantPoliciesAssigned: string[];
  /** The ManagePermissionGrantsForSelf.* entries before this step (empty when there was none). */
  previousSelfConsentPolicies: string[];
}


export async function allowUserConsent(rawInput: AllowUserConsentInput, deps: ActivityDeps = defaultDeps(rawInput)): Promise<AllowUserConsentResult> {
  const input = allowUserConsentInput.parse(rawInput);
  const path = "/policies/authorizationPolicy";
  const read = await graphCall(`GET ${path}`, () => deps.graph.api(path).get() as Promise<AuthorizationPolicy & { value?: AuthorizationPolicy[] }>);
  // v1.0 answers the singleton; older answers wrapped it in a collection.
  const policy = read.value?.[0] ?? read;
  const assigned = policy.defaultUserRolePermissions?.permissionGrantPoliciesAssigned ?? [];
  const isSelf = (entry: string) => entry.toLowerCase().startsWith(SELF_CONSENT_PREFIX.toLowerCase());
  const previousSelfConsentPolicies = assigned.filter(isSelf);
  // The wanted entry takes the place of the first self-consent entry; the others go.
  const firstSelf = assigned.findIndex(isSelf);
  const next = assigned.filter((entry) => !isSelf(entry));
  next.splice(firstSelf < 0 ? next.length : assigned.slice(0, firstSelf).filter((e) => !isSelf(e)).length, 0, input.policy);
  if (next.length === assigned.length && next.every((entry, i) => entry === assigned[i])) {
    return { changed: false, permissionGrantPoliciesAssigned: assigned, previousSelfConsentPolicies };
  }
  await graphCall(`PATCH ${path}`, () => deps.graph.api(path).patch({ defaultUserRolePermissions: { permissionGrantPoliciesAssigned: next } }));
  return { changed: true, permissionGrantPoliciesAssigned: next, previousSelfConsentPolicies };
}

export const allowUserConsentActivity = {
  name: ALLOW_USER_CONSENT,
  handler: (input: unknown) => allowUserConsent((input ?? {}) as AllowUserConsentInput),
};
