import type * as KeyVaultSdk from "@azure/keyvault-secrets";
import type { SecretClient } from "@azure/keyvault-secrets";
import { getCredential } from "./credential";
import { lazyClient } from "./lazy";
import { settings } from "../settings";

/**
 * Key Vault secrets client: the tenant registry and the only place secret values live
 * (docs/architecture.md, "The secret never enters Durable state", "Key Vault is the registry").
 * The Azure SDK's own retry policy already honours 429 + Retry-After.
 *
 * `disableChallengeResourceVerification: true` always, not only off Azure: the SDK's check that
 * the challenge's resource matches the vault's DNS suffix guards against a vault URL that points
 * at a foreign host; here KEY_VAULT_URL comes from the app's own configuration, so the check adds
 * nothing, and a URL-dependent switch would be a sandbox branch (docs/architecture.md, "No sandbox
 * branches"). It is what lets the same code reach a private cloud's vault or the local emulator
 * (docs/architecture.md, "Azure Key Vault").
 *
 * The SDK (and @azure/identity behind it) is required when the client is first called, not when the
 * app loads nor when a function takes the client as a dependency, so GET /api/openapi.json and a
 * request refused by validation never load it (issue 12, cold load; see ./lazy.ts).
 */
let secretClient: SecretClient | undefined;

export function getSecretClient(): SecretClient {
  if (!secretClient) {
    // Read now, so a missing setting fails where it always did; the SDK waits for the first call.
    const url = settings().KEY_VAULT_URL;
    secretClient = lazyClient(() => {
      const { SecretClient } = require("@azure/keyvault-secrets") as typeof KeyVaultSdk;
      return new SecretClient(url, getCredential(), { disableChallengeResourceVerification: true });
    });
  }
  return secretClient;
}

/** The subset of SecretClient the app uses; tests pass a fake. */
export type SecretStore = Pick<
  SecretClient,
  "getSecret" | "setSecret" | "updateSecretProperties" | "listPropertiesOfSecrets"
>;

/** True when Key Vault says the secret does not exist (404 SecretNotFound). */
export function isSecretNotFound(error: unknown): boolean {
  const e = error as { statusCode?: number; code?: string };
  return e?.statusCode === 404 || e?.code === "SecretNotFound";
}
