import type * as IdentitySdk from "@azure/identity";
import type { TokenCredential } from "@azure/identity";
import { settings } from "../settings";

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
