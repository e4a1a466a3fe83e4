// What every emulator is made with: the sandbox TLS material, the token signer, and the sandbox
// tenant with the identity the app itself signs in as (EnvironmentCredential locally; a managed
// identity in Azure).
import { SANDBOX_DIR } from "../sandbox";
import { ensureSandboxTls, type SandboxTls } from "./tls";
import { loadTokenSigner, type TokenSigner } from "./jwtSigner";
import type { FaultSettings } from "./server";

export interface SandboxIdentity {
  tenantId: string;
  /** The app's own identity: AZURE_CLIENT_ID / AZURE_CLIENT_SECRET for EnvironmentCredential. */
  clientId: string;
  clientSecret: string;
  /** Object id of that identity's service principal. */
  objectId: string;
}

export const SANDBOX_IDENTITY: SandboxIdentity = {
  tenantId: "11111111-2222-4333-8444-555555555555",
  clientId: "a11ce000-0000-4000-8000-00000000a99a",
  clientSecret: "sandbox-app-identity-secret",
  objectId: "a11ce000-0000-4000-8000-0000000000b0",
};

/** A directory of the sandbox besides the home tenant: a customer's Microsoft 365 tenant (issue 10). */
export interface SandboxTenant {
  tenantId: string;
  /** Its initial verified domain, which names the tenant in Entra URLs as well as its id does. */
  domain: string;
  displayName: string;
}

/** The home tenant: where the app, its identity and Key Vault live. */
export const SANDBOX_HOME_TENANT: SandboxTenant = { tenantId: SANDBOX_IDENTITY.tenantId, domain: "sandbox.onmicrosoft.com", displayName: "Sandbox (home)" };

/** A customer's tenant: `npm start` serves it so a newcomer can onboard a site of another tenant. */
export const SANDBOX_CUSTOMER_TENANT: SandboxTenant = { tenantId: "22222222-3333-4444-8555-666666666666", domain: "customer-b.onmicrosoft.com", displayName: "Customer B" };

/**
 * The header secret of the emulated App Service managed identity endpoint (IDENTITY_HEADER): Azure
 * Functions sets IDENTITY_ENDPOINT and IDENTITY_HEADER for the app, and ManagedIdentityCredential
 * sends the header back (learn.microsoft.com/azure/app-service/overview-managed-identity, "REST endpoint reference").
 */
export const SANDBOX_IDENTITY_HEADER = "sandbox-identity-header";

/**
 * The multi-tenant "provisioner" application the sandbox seeds in the home tenant (issue 10), as infra/provisioner.sh
 * makes it in Azure: AzureADMultipleOrgs, the onboarding's application permissions in requiredResourceAccess, the
 * app's consent callback as web redirect URI, and a federated identity credential that trusts the app's own identity
 * (SANDBOX_IDENTITY, the user-assigned managed identity in Azure): the PROVISIONER_CLIENT_ID setting.
 */
export interface SandboxProvisioner {
  appId: string;
  /** Object id of the application object (not a service principal: it has none until a tenant consents). */
  objectId: string;
  uniqueName: string;
  displayName: string;
  /** The name of its federated identity credential for the app's identity. */
  federatedCredentialName: string;
  /** Registered web redirect URIs; `http://localhost/...` matches any port (Entra's localhost exception). */
  redirectUris: string[];
}

export const SANDBOX_PROVISIONER: SandboxProvisioner = {
  appId: "b0b0b0b0-0000-4000-8000-00000000c0de",
  objectId: "b0b0b0b0-0000-4000-8000-0000000000a1",
  uniqueName: "provisioner-sandbox",
  displayName: "creatio-o365-oauth provisioner (sandbox)",
  federatedCredentialName: "function-app-identity",
  redirectUris: ["http://localhost/api/consent/callback"],
};

/** Token audiences (the `aud` claim) for each resource, as Entra issues them for `<resource>/.default`. */
export const AUDIENCES = {
  graph: ["https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"],
  keyVault: ["https://vault.azure.net", "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"],
};

export interface EmulatorContext {
  sandboxDir: string;
  tls: SandboxTls;
  signer: TokenSigner;
  identity: SandboxIdentity;
  faults?: Partial<FaultSettings>;
  /**
   * Resource URIs the token endpoint accepts besides the seeded service principals' names, mapped to
   * the resource's app id: an emulator on `https://localhost:<port>` standing in for a Microsoft
   * service whose scope is `<its URL>/.default` (Exchange Online: EXCHANGE_ADMIN_URL).
   */
  resourceAliases: Record<string, string>;
  /** Directories besides the home tenant (SANDBOX_HOME_TENANT), each with its own objects. */
  otherTenants: SandboxTenant[];
  /**
   * The provisioner application seeded in the home directory (and restored by reset); none when absent.
   * startEmulators seeds SANDBOX_PROVISIONER; emulator tests that count applications leave it out.
   */
  provisioner?: SandboxProvisioner;
}

/** The context every emulator of the sandbox shares: its CA, its token signer, its tenant. */
export function sandboxContext(sandboxDir: string = SANDBOX_DIR, faults?: Partial<FaultSettings>): EmulatorContext {
  return { sandboxDir, tls: ensureSandboxTls(sandboxDir), signer: loadTokenSigner(sandboxDir), identity: SANDBOX_IDENTITY, faults, resourceAliases: {}, otherTenants: [SANDBOX_CUSTOMER_TENANT] };
}
