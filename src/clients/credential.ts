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

export function getCredential(): TokenCredential {
  if (!credential) {
    const s = settings();
    const { DefaultAzureCredential } = require("@azure/identity") as typeof IdentitySdk;
    credential = new DefaultAzureCredential({
      ...(s.AZURE_CLIENT_ID ? { managedIdentityClientId: s.AZURE_CLIENT_ID } : {}),
      ...(s.AZURE_TENANT_ID ? { tenantId: s.AZURE_TENANT_ID } : {}),
      ...(s.AZURE_AUTHORITY_HOST ? { authorityHost: s.AZURE_AUTHORITY_HOST } : {}),
      disableInstanceDiscovery: s.AZURE_DISABLE_INSTANCE_DISCOVERY,
    });
  }
  return credential;
}
