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
}

/** The context every emulator of the sandbox shares: its CA, its token signer, its tenant. */
export function sandboxContext(sandboxDir: string = SANDBOX_DIR, faults?: Partial<FaultSettings>): EmulatorContext {
  return { sandboxDir, tls: ensureSandboxTls(sandboxDir), signer: loadTokenSigner(sandboxDir), identity: SANDBOX_IDENTITY, faults, resourceAliases: {} };
}
