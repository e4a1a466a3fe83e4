import { SecretClient } from "@azure/keyvault-secrets";
import { getCredential } from "./credential";
import { settings } from "../settings";

/**
 * Key Vault secrets client: the tenant registry and the only place secret values live (DESIGN
 * rules 1 and 5). The Azure SDK's own retry policy already honours 429 + Retry-After.
 *
 * `disableChallengeResourceVerification: true` always, not only off Azure: the SDK's check that
 * the challenge's resource matches the vault's DNS suffix guards against a vault URL that points
 * at a foreign host; here KEY_VAULT_URL comes from the app's own configuration, so the check adds
 * nothing, and a URL-dependent switch would be the sandbox branch DESIGN rule 4 forbids. It is what
 * lets the same code reach a private cloud's vault or the local emulator (DESIGN section 4).
 */
let secretClient: SecretClient | undefined;

export function getSecretClient(): SecretClient {
  secretClient ??= new SecretClient(settings().KEY_VAULT_URL, getCredential(), {
    disableChallengeResourceVerification: true,
  });
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
