import type * as IdentitySdk from "@azure/identity";
import type { TokenCredential } from "@azure/identity";
import { settings, SettingsError } from "../settings";

/**
 * The app's own identity. In Azure: the user-assigned managed identity named by AZURE_CLIENT_ID.
 * AZURE_AUTHORITY_HOST and AZURE_DISABLE_INSTANCE_DISCOVERY exist for private clouds / Azure Stack
 * and are also how the local emulators are reached (docs/architecture.md, "Microsoft Graph and
 * Entra ID", "Local stack": instance discovery asks login.microsoftonline.com first unless disabled).
 * @azure/identity (with MSAL) is required on first use, not when the app loads (issue 12, cold load).
 */
let credential: TokenCredential | undefined;

/**
 * One token cache for every service: the Key Vault SDK asks for its tokens with `enableCae: true`
 * (@azure/keyvault-common, keyVaultAuthenticationPolicy), Graph and Exchange Online without, and
 * @azure/identity keeps a separate MSAL client application per CAE setting (4.13, msal/nodeFlows/msalClient.js,
 * `appKey`), each fetching the tenant's OpenID configuration on its own: two fetches on a cold host
 * with a client secret (docs/architecture.md, "Upstream calls per onboarding"). Every request here
 * goes without CAE, as Graph's and Exchange's already did: the Graph SDK cannot answer a CAE claims
 * challenge, and a token that is not CAE-capable gets none (learn.microsoft.com/entra/identity-platform/app-resilience-continuous-access-evaluation).
 * Exported for its unit test.
 */
export function withoutCae(inner: TokenCredential): TokenCredential {
  // Requests for the same scopes at once share one token request: MSAL does not join them, so two
  // first calls made together (e.g. the reads an activity overlaps) would each ask Entra.
  const inFlight = new Map<string, ReturnType<TokenCredential["getToken"]>>();
  return {
    getToken: (scopes, options) => {
      if (options?.claims || options?.abortSignal) return inner.getToken(scopes, { ...options, enableCae: false });
      const key = JSON.stringify([[scopes].flat(), options?.tenantId ?? null]);
      let pending = inFlight.get(key);
      if (!pending) {
        pending = inner.getToken(scopes, { ...options, enableCae: false }).finally(() => inFlight.delete(key));
        inFlight.set(key, pending);
      }
      return pending;
    },
  };
}

export function getCredential(): TokenCredential {
  if (!credential) {
    const s = settings();
    const { DefaultAzureCredential } = require("@azure/identity") as typeof IdentitySdk;
    credential = withoutCae(new DefaultAzureCredential({
      ...(s.AZURE_CLIENT_ID ? { managedIdentityClientId: s.AZURE_CLIENT_ID } : {}),
      ...(s.AZURE_TENANT_ID ? { tenantId: s.AZURE_TENANT_ID } : {}),
      ...(s.AZURE_AUTHORITY_HOST ? { authorityHost: s.AZURE_AUTHORITY_HOST } : {}),
      disableInstanceDiscovery: s.AZURE_DISABLE_INSTANCE_DISCOVERY,
    }));
  }
  return credential;
}

/**
 * Tenants the app reaches besides its home tenant (docs/architecture.md, "Serving several
 * tenants"): the multi-tenant provisioner application (PROVISIONER_CLIENT_ID) signs in to the
 * customer's tenant with a client assertion, and that assertion is a token of the app's own
 * managed identity for `api://AzureADTokenExchange`, which the provisioner's federated identity
 * credential trusts. No secret exists for it anywhere
 * (learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity).
 * One credential per tenant, kept for the process: MSAL caches each tenant's tokens in it.
 */
const tenantCredentials = new Map<string, TokenCredential>();
let assertionSource: TokenCredential | undefined;

/** The exchange token's audience (same source: "Configure an application to trust a managed identity"). */
export const TOKEN_EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default";

/** True when `tenantId` names the app's home tenant, or names none (a site onboarded before tenants existed). */
export function isHomeTenant(tenantId: string | undefined | null): boolean {
  if (!tenantId) return true;
  const home = settings().AZURE_TENANT_ID;
  return home !== undefined && home.toLowerCase() === tenantId.toLowerCase();
}

/** The credential for a site's tenant: the app's own for its home tenant, the provisioner's for any other. */
export function credentialFor(tenantId: string | undefined | null): TokenCredential {
  if (isHomeTenant(tenantId)) return getCredential();
  const key = tenantId!.toLowerCase();
  let credential = tenantCredentials.get(key);
  if (!credential) {
    const s = settings();
    if (!s.PROVISIONER_CLIENT_ID) throw new SettingsError(`Invalid app settings: PROVISIONER_CLIENT_ID is required but not set (a site lives in tenant ${key}, not in the home tenant)`);
    const { ClientAssertionCredential, ManagedIdentityCredential } = require("@azure/identity") as typeof IdentitySdk;
    assertionSource ??= new ManagedIdentityCredential(s.AZURE_CLIENT_ID ? { clientId: s.AZURE_CLIENT_ID } : {});
    const source = assertionSource;
    credential = withoutCae(
      new ClientAssertionCredential(key, s.PROVISIONER_CLIENT_ID, async () => {
        const token = await source.getToken(TOKEN_EXCHANGE_SCOPE);
        if (!token) throw new Error("The managed identity gave no token for api://AzureADTokenExchange");
        return token.token;
      }, {
        ...(s.AZURE_AUTHORITY_HOST ? { authorityHost: s.AZURE_AUTHORITY_HOST } : {}),
        disableInstanceDiscovery: s.AZURE_DISABLE_INSTANCE_DISCOVERY,
      }),
    );
    tenantCredentials.set(key, credential);
  }
  return credential;
}

/**
 * Drops a tenant's credential with its token cache: right after admin consent Entra may issue a
 * token without the consented roles for a while, and MSAL would serve that token until it expires.
 */
export function forgetTenantCredential(tenantId: string): void {
  tenantCredentials.delete(tenantId.toLowerCase());
}

/** A site's tenant as a cache key: "home" for the home tenant. */
export function tenantKey(tenantId: string | undefined | null): string {
  return isHomeTenant(tenantId) ? "home" : tenantId!.toLowerCase();
}

/** A credential that asks credentialFor on every request, so it follows forgetTenantCredential. */
export function tenantCredential(tenantId: string | undefined | null): TokenCredential {
  return { getToken: (scopes, options) => credentialFor(tenantId).getToken(scopes, options) };
}
