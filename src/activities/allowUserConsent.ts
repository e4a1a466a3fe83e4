import { z } from "zod";
import { graphCall } from "../clients/graph";
import { USER_CONSENT_POLICY } from "../domain/permissions";
import { defaultDeps, type ActivityDeps } from "./shared";

/**
 * Step 6 (manual step 9), opt-in: allow users to consent tenant-wide. The PATCH replaces the whole
 * `permissionGrantPoliciesAssigned` list (DESIGN section 4), so the current list is read first and
 * every other entry (ManagePermissionGrantsForOwnedResource.* and the like) is kept.
 */
export const ALLOW_USER_CONSENT = "allowUserConsent";

export const allowUserConsentInput = z.object({ policy: z.string().min(1).default(USER_CONSENT_POLICY) });
export type AllowUserConsentInput = z.input<typeof allowUserConsentInput>;

export interface AllowUserConsentResult {
  changed: boolean;
  permissionGrantPoliciesAssigned: string[];
}

interface AuthorizationPolicy {
  defaultUserRolePermissions?: { permissionGrantPoliciesAssigned?: string[] };
}

export async function allowUserConsent(rawInput: AllowUserConsentInput, deps: ActivityDeps = defaultDeps()): Promise<AllowUserConsentResult> {
  const input = allowUserConsentInput.parse(rawInput);
  const path = "/policies/authorizationPolicy";
  const read = await graphCall(`GET ${path}`, () => deps.graph.api(path).get() as Promise<AuthorizationPolicy & { value?: AuthorizationPolicy[] }>);
  // v1.0 answers the singleton; older answers wrapped it in a collection.
  const policy = read.value?.[0] ?? read;
  const assigned = policy.defaultUserRolePermissions?.permissionGrantPoliciesAssigned ?? [];
  if (assigned.includes(input.policy)) return { changed: false, permissionGrantPoliciesAssigned: assigned };
  const next = [...assigned, input.policy];
  await graphCall(`PATCH ${path}`, () => deps.graph.api(path).patch({ defaultUserRolePermissions: { permissionGrantPoliciesAssigned: next } }));
  return { changed: true, permissionGrantPoliciesAssigned: next };
}

export const allowUserConsentActivity = {
  name: ALLOW_USER_CONSENT,
  input: allowUserConsentInput,
  handler: (input: unknown) => allowUserConsent((input ?? {}) as AllowUserConsentInput),
};
