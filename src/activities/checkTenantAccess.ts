import type { TokenCredential } from "@azure/identity";
import { z } from "zod";
import { credentialFor, forgetTenantCredential } from "../clients/credential";
import { graphTokenScope } from "../clients/graph";
import { FinalError, publicMessage } from "../domain/failure";
import { randomBytes } from "node:crypto";
import { adminConsentUrl, consentStateFor, rolesOfToken, tenantAccessProblemOf } from "../domain/tenant";
import { activityFields, provisionerSettings } from "./shared";

/**
 * Step 1 for a site in another Entra tenant (docs/architecture.md, "Serving several tenants"):
 * can the provisioner work there? It asks Entra for a Graph token in that tenant, with the client
 * assertion of the app's managed identity, and reads the roles the token carries. Before an
 * administrator of the tenant consented, Entra refuses the token (AADSTS7000229, the provisioner
 * has no service principal there): the answer is the admin consent URL, with a fresh `state` the
 * callback must bring back. Right after consent, Entra may still refuse, or issue a token without
 * the roles (the role assignments replicate): with `afterConsent` that is a retryable failure.
 */
export const CHECK_TENANT_ACCESS = "checkTenantAccess";

/** What an onboarding does in a customer's tenant: register and delete apps, grant their delegated permissions. */
export const PROVISIONER_GRAPH_ROLES = ["Application.ReadWrite.OwnedBy", "Application.Read.All", "DelegatedPermissionGrant.ReadWrite.All"] as const;
/** allowUserConsent changes the tenant's authorization policy. */
export const USER_CONSENT_ROLE = "Policy.ReadWrite.Authorization";

export const checkTenantAccessInput = activityFields.pick({ instanceId: true }).extend({
  tenantId: z.string().min(1),
  /** An administrator just consented: a refusal or missing roles is replication, retried, not a new consent request. */
  afterConsent: z.boolean().default(false),
  /** Roles this onboarding needs beyond PROVISIONER_GRAPH_ROLES (allowUserConsent: Policy.ReadWrite.Authorization). */
  extraRoles: z.array(z.string().min(1)).default([]),
});
export type CheckTenantAccessInput = z.input<typeof checkTenantAccessInput>;

export type CheckTenantAccessResult =
  | { access: "granted"; tenantId: string; roles: string[] }
  | { access: "consentRequired"; tenantId: string; adminConsentUrl: string; reason: string };

export interface CheckTenantAccessDeps {
  credentialFor: (tenantId: string) => TokenCredential;
  forget: (tenantId: string) => void;
  graphScope: string;
  authorityHost: string;
  provisionerClientId: string | undefined;
  redirectUri: string | undefined;
  newState: (instanceId: string) => string;
}

function defaultDeps(): CheckTenantAccessDeps {
  const { graphBaseUrl, ...provisioner } = provisionerSettings();
  return {
    credentialFor,
    forget: forgetTenantCredential,
    graphScope: graphTokenScope(graphBaseUrl),
    ...provisioner,
    // 32 random bytes: nobody can guess the state (src/domain/tenant.ts, consentStateFor).
    newState: (instanceId) => consentStateFor(instanceId, randomBytes(32)),
  };
}

export async function checkTenantAccess(rawInput: CheckTenantAccessInput, deps: CheckTenantAccessDeps = defaultDeps()): Promise<CheckTenantAccessResult> {
  const input = checkTenantAccessInput.parse(rawInput);
  if (!deps.provisionerClientId) throw new FinalError("PROVISIONER_CLIENT_ID is not set: this deployment serves its home tenant only (README, \"Serving several Microsoft 365 tenants\")");
  const consentRequired = (reason: string): CheckTenantAccessResult => {
    if (!deps.redirectUri) throw new FinalError("CONSENT_REDIRECT_URI is not set and WEBSITE_HOSTNAME is unknown: set CONSENT_REDIRECT_URI to this app's https://<host>/api/consent/callback");
    const state = deps.newState(input.instanceId);
    return { access: "consentRequired", tenantId: input.tenantId, reason, adminConsentUrl: adminConsentUrl({ authorityHost: deps.authorityHost, tenantId: input.tenantId, clientId: deps.provisionerClientId!, redirectUri: deps.redirectUri, state }) };
  };

  let token: string;
  try {
    const answer = await deps.credentialFor(input.tenantId).getToken(deps.graphScope);
    if (!answer) throw new Error("Entra gave no token");
    token = answer.token;
  } catch (error) {
    const problem = tenantAccessProblemOf(error);
    const detail = publicMessage(error, 300);
    if (problem === "consentRequired" || problem === "provisionerUnknown") {
      if (input.afterConsent) throw new Error(`Entra does not show the consent in tenant ${input.tenantId} yet (replication): ${detail}`);
      return consentRequired(
        problem === "consentRequired"
          ? `No administrator of tenant ${input.tenantId} has consented to the provisioner yet.`
          : `Entra does not know the provisioner in tenant ${input.tenantId}: no administrator there has consented yet, or PROVISIONER_CLIENT_ID is not a multi-tenant application (signInAudience AzureADMultipleOrgs) of the home tenant, which the consent page then says.`,
      );
    }
    if (problem === "federationMismatch")
      throw new FinalError(`The provisioner's federated identity credential does not trust this app's managed identity (issuer, subject or audience differ; infra/grant-graph-permissions.sh sets it). ${detail}`);
    if (problem === "tenantNotFound") throw new FinalError(`Entra has no tenant ${input.tenantId}. ${detail}`);
    throw error;
  }

  const roles = rolesOfToken(token);
  const missing = [...PROVISIONER_GRAPH_ROLES, ...input.extraRoles].filter((r) => !roles.includes(r));
  if (missing.length > 0) {
    // The token stays in MSAL's cache for an hour: the next attempt must ask Entra again.
    deps.forget(input.tenantId);
    if (input.afterConsent) throw new Error(`The provisioner's token in tenant ${input.tenantId} does not carry ${missing.join(", ")} yet (role assignments replicate after consent)`);
    // Consented before, to a provisioner that asked for less, or a role was removed since: consenting again grants what it asks for now.
    return consentRequired(`The provisioner lacks ${missing.join(", ")} in tenant ${input.tenantId}: an administrator of the tenant must consent (again).`);
  }
  return { access: "granted", tenantId: input.tenantId, roles };
}

export const checkTenantAccessActivity = {
  name: CHECK_TENANT_ACCESS,
  handler: (input: unknown) => checkTenantAccess(input as CheckTenantAccessInput),
};
