import { z } from "zod";
import { graphGetOrUndefined, graphUpsert, isReplicationLag, odataString, GraphCallError } from "../clients/graph";
import { activityFields, defaultDeps, whileReplicating, type ActivityDeps } from "./shared";

/**
 * Step 3 (part of manual step 6): the app's service principal, upserted by appId
 * (`PATCH /servicePrincipals(appId='...')` + `Prefer: create-if-missing`). Right after the app is
 * created Graph may answer 400 NoBackingApplicationObject or 404 for seconds: retried with backoff.
 */
export const ENSURE_SERVICE_PRINCIPAL = "ensureServicePrincipal";

export const ensureServicePrincipalInput = activityFields.pick({ appId: true, displayName: true, tenantId: true }).extend({
  /**
   * ensureApplication created the app in this run: it cannot have a service principal yet, so the
   * read that would answer 404 is skipped and the upsert goes first (docs/architecture.md,
   * "Upstream calls per onboarding"). The upsert is idempotent either way.
   */
  appCreated: z.boolean().default(false),
});
export type EnsureServicePrincipalInput = z.input<typeof ensureServicePrincipalInput>;

export interface EnsureServicePrincipalResult {
  servicePrincipalId: string;
  created: boolean;
}

export async function ensureServicePrincipal(rawInput: EnsureServicePrincipalInput, deps: ActivityDeps = defaultDeps(rawInput)): Promise<EnsureServicePrincipalResult> {
  const input = ensureServicePrincipalInput.parse(rawInput);
  const keyPath = `/servicePrincipals(appId=${odataString(input.appId)})`;
  if (!input.appCreated) {
    const existing = await graphGetOrUndefined<{ id: string }>(deps.graph, `${keyPath}?$select=id,appId`);
    if (existing) return { servicePrincipalId: existing.id, created: false };
  }

  return whileReplicating(deps, isReplicationLag, async () => {
    const upsert = await graphUpsert<{ id: string }>(deps.graph, keyPath, { displayName: input.displayName });
    if (upsert.created && upsert.body) return { servicePrincipalId: upsert.body.id, created: true };
    const found = await graphGetOrUndefined<{ id: string }>(deps.graph, `${keyPath}?$select=id,appId`);
    if (!found) throw new GraphCallError(`GET ${keyPath}`, 404, "Request_ResourceNotFound", "service principal not visible yet");
    return { servicePrincipalId: found.id, created: false };
  });
}

export const ensureServicePrincipalActivity = {
  name: ENSURE_SERVICE_PRINCIPAL,
  handler: (input: unknown) => ensureServicePrincipal(input as EnsureServicePrincipalInput),
};
