import type { OAuth2PermissionGrant } from "@microsoft/microsoft-graph-types";
import { z } from "zod";
import { graphCall, isReplicationLag, odataString, GraphCallError, type Selected } from "../clients/graph";
import { activityFields, defaultDeps, whileReplicating, type ActivityDeps } from "./shared";

/**
 * Step 4 (manual step 6, "Grant admin consent"): one `AllPrincipals` oauth2PermissionGrant per
 * resource, keyed by clientId + resourceId (docs/architecture.md, "Every activity is idempotent"). Created with exactly the needed
 * scopes, or widened with `PATCH /oauth2PermissionGrants/{id}`; scopes an admin added stay.
 * `narrow` lists the scopes of the site's previous permission profile that its profile no longer
 * asks for: those, and only those, leave the grants (PATCH of the scope string,
 * learn.microsoft.com/graph/api/oauth2permissiongrant-update). A grant left with no scope held only
 * scopes this product asked for, so it is deleted (learn.microsoft.com/graph/api/oauth2permissiongrant-delete);
 * one that still holds a scope an admin added stays.
 */
export const GRANT_ADMIN_CONSENT = "grantAdminConsent";

/** Delegated scopes of one resource (Exchange Online, Microsoft Graph): granted, or taken back. */
const resourceScopes = z.object({
  resourceName: z.string(),
  resourceServicePrincipalId: z.string().min(1),
  scopes: z.array(z.string().min(1)).min(1),
});

export const grantAdminConsentInput = activityFields.pick({ tenantId: true }).extend({
  servicePrincipalId: z.string().min(1),
  grants: z.array(resourceScopes).min(1),
  narrow: z.array(resourceScopes).default([]),
  /**
   * ensureServicePrincipal created the principal in this run, so it holds no grant yet: the first
   * attempt writes without reading. A grant an earlier attempt did create answers 409, which
   * reads again (isLagOrConflict), so this stays idempotent.
   */
  servicePrincipalCreated: z.boolean().default(false),
});
export type GrantAdminConsentInput = z.input<typeof grantAdminConsentInput>;

export interface GrantResult {
  grantId: string;
  resourceServicePrincipalId: string;
  scopes: string[];
  /** widened: scopes added; narrowed: retired scopes removed; changed: both; deleted: the grant held only retired scopes. */
  action: "created" | "widened" | "narrowed" | "changed" | "deleted" | "unchanged";
}

export interface GrantAdminConsentResult {
  grants: GrantResult[];
}

type PermissionGrant = Selected<OAuth2PermissionGrant, "id" | "clientId" | "consentType" | "resourceId">;

/**
 * Replication lag as the grant endpoint reports it: 400 "Invalid value specified for property
 * 'clientId'... No service principal with id" for a service principal created seconds ago. And 409 on
 * create: the grant exists but our read did not see it yet. Both: read again after a pause.
 */
function isLagOrConflict(error: unknown): boolean {
  if (isReplicationLag(error)) return true;
  if (!(error instanceof GraphCallError)) return false;
  if (error.status === 409) return true;
  return error.status === 400 && /No service principal with id|property '(clientId|resourceId)'/i.test(error.upstreamMessage);
}

export function scopeList(scope: string | null | undefined): string[] {
  return (scope ?? "").split(/\s+/).filter(Boolean);
}

export async function grantAdminConsent(rawInput: GrantAdminConsentInput, deps: ActivityDeps = defaultDeps(rawInput)): Promise<GrantAdminConsentResult> {
  const input = grantAdminConsentInput.parse(rawInput);
  const results: GrantResult[] = [];
  const targets = [
    ...input.grants.map((g) => ({ ...g, remove: input.narrow.find((n) => n.resourceServicePrincipalId === g.resourceServicePrincipalId)?.scopes ?? [] })),
    // Resources the profile no longer uses at all: only take scopes away.
    ...input.narrow
      .filter((n) => !input.grants.some((g) => g.resourceServicePrincipalId === n.resourceServicePrincipalId))
      .map((n) => ({ resourceName: n.resourceName, resourceServicePrincipalId: n.resourceServicePrincipalId, scopes: [] as string[], remove: n.scopes })),
  ];
  // One read of the service principal's grants serves every resource; the writes (one per
  // resource, each its own grant) go out at once (docs/architecture.md, "Upstream calls per onboarding").
  const listPath = `/oauth2PermissionGrants?$filter=clientId eq ${odataString(input.servicePrincipalId)}`;
  const readGrants = async () => (await graphCall(`GET ${listPath}`, () => deps.graph.api(listPath).get() as Promise<{ value: PermissionGrant[] }>)).value;
  const firstRead: PermissionGrant[] = input.servicePrincipalCreated ? [] : await readGrants();
  const outcomes = await Promise.all(
    targets.map((wanted) => {
      let read: PermissionGrant[] | undefined = firstRead;
      // Read before every write: an earlier attempt may have created (or deleted) the grant already;
      // after a lag or a conflict, this resource's next attempt reads again.
      return whileReplicating(deps, isLagOrConflict, async (): Promise<GrantResult | undefined> => {
        const list = read ?? (await readGrants());
        read = undefined;
        return converge(deps, input.servicePrincipalId, wanted, list);
      }).catch((error: unknown) => {
        if (error instanceof GraphCallError) {
          throw new Error(`Admin consent for ${wanted.resourceName} (${[...wanted.scopes, ...wanted.remove.map((s) => `-${s}`)].join(" ")}) failed: ${error.message}`);
        }
        throw error;
      });
    }),
  );
  for (const result of outcomes) if (result) results.push(result);
  return { grants: results };
}

type Target = { resourceName: string; resourceServicePrincipalId: string; scopes: string[]; remove: string[] };

/** Brings one resource's AllPrincipals grant to the wanted scopes, given the grants just read. */
async function converge(deps: Pick<ActivityDeps, "graph">, servicePrincipalId: string, wanted: Target, list: PermissionGrant[]): Promise<GrantResult | undefined> {
  const grant = list.find((g) => g.consentType === "AllPrincipals" && g.resourceId === wanted.resourceServicePrincipalId);
  if (!grant) {
    if (wanted.scopes.length === 0) return undefined;
    const body = {
      clientId: servicePrincipalId,
      consentType: "AllPrincipals",
      resourceId: wanted.resourceServicePrincipalId,
      scope: wanted.scopes.join(" "),
    };
    const created = await graphCall("POST /oauth2PermissionGrants", () => deps.graph.api("/oauth2PermissionGrants").post(body) as Promise<PermissionGrant>);
    return { grantId: created.id, resourceServicePrincipalId: wanted.resourceServicePrincipalId, scopes: wanted.scopes, action: "created" };
  }
  const current = scopeList(grant.scope);
  const missing = wanted.scopes.filter((s) => !current.includes(s));
  const removed = current.filter((s) => wanted.remove.includes(s) && !wanted.scopes.includes(s));
  if (missing.length === 0 && removed.length === 0) {
    return { grantId: grant.id, resourceServicePrincipalId: wanted.resourceServicePrincipalId, scopes: current, action: "unchanged" };
  }
  const scopes = [...current.filter((s) => !removed.includes(s)), ...missing];
  const path = `/oauth2PermissionGrants/${grant.id}`;
  if (scopes.length === 0) {
    await graphCall(`DELETE ${path}`, () => deps.graph.api(path).delete());
    return { grantId: grant.id, resourceServicePrincipalId: wanted.resourceServicePrincipalId, scopes: [], action: "deleted" };
  }
  await graphCall(`PATCH ${path}`, () => deps.graph.api(path).patch({ scope: scopes.join(" ") }));
  const action = missing.length > 0 && removed.length > 0 ? "changed" : missing.length > 0 ? "widened" : "narrowed";
  return { grantId: grant.id, resourceServicePrincipalId: wanted.resourceServicePrincipalId, scopes, action };
}

export const grantAdminConsentActivity = {
  name: GRANT_ADMIN_CONSENT,
  handler: (input: unknown) => grantAdminConsent(input as GrantAdminConsentInput),
};
