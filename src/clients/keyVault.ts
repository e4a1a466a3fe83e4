import type * as KeyVaultSdk from "@azure/keyvault-secrets";
import type { SecretClient, SecretProperties } from "@azure/keyvault-secrets";
import { getCredential } from "./credential";
import { lazyClient } from "./lazy";
import { settings } from "../settings";

/**
 * Key Vault secrets client: the tenant registry and the only place secret values live
 * (docs/architecture.md, "The secret never enters Durable state", "Key Vault is the registry").
 * The Azure SDK's own retry policy already honours 429 + Retry-After.
 *
 * The SDK checks that the `resource` of Key Vault's 401 challenge is a parent domain of the vault's
 * host (`*.vault.azure.net` for `https://vault.azure.net`), so a vault URL pointing at a foreign host
 * cannot make the app send it a token for another resource (@azure/keyvault-common 2.x,
 * keyVaultAuthenticationPolicy.js `verifyChallengeResource`; https://aka.ms/azsdk/blog/vault-uri).
 * That check stays on; only KEY_VAULT_DISABLE_CHALLENGE_VERIFICATION=true turns it off, for a
 * vault whose host has no such parent domain, e.g. the local emulator on `localhost`
 * (docs/architecture.md, "No sandbox branches").
 *
 * The SDK (and @azure/identity behind it) is required when the client is first called, not when the
 * app loads nor when a function takes the client as a dependency, so GET /api/openapi.json and a
 * request refused by validation never load it (issue 12, cold load; see ./lazy.ts).
 */
let secretClient: SecretClient | undefined;

export function getSecretClient(): SecretClient {
  if (!secretClient) {
    // Read now, so a missing setting fails where it always did; the SDK waits for the first call.
    const s = settings();
    const url = s.KEY_VAULT_URL;
    const disableChallengeResourceVerification = s.KEY_VAULT_DISABLE_CHALLENGE_VERIFICATION;
    secretClient = lazyClient(() => {
      const { SecretClient } = require("@azure/keyvault-secrets") as typeof KeyVaultSdk;
      return new SecretClient(url, getCredential(), { disableChallengeResourceVerification });
    });
  }
  return secretClient;
}

/** The subset of SecretClient the app uses; tests pass a fake. */
export type SecretStore = Pick<
  SecretClient,
  | "getSecret"
  | "setSecret"
  | "updateSecretProperties"
  | "listPropertiesOfSecrets"
  // Offboarding (soft delete), its status and re-onboarding (recover): docs/architecture.md, "Offboarding".
  | "beginDeleteSecret"
  | "getDeletedSecret"
  | "listDeletedSecrets"
  | "beginRecoverDeletedSecret"
>;

/** True when Key Vault says the secret does not exist (404 SecretNotFound). */
export function isSecretNotFound(error: unknown): boolean {
  const e = error as { statusCode?: number; code?: string };
  return e?.statusCode === 404 || e?.code === "SecretNotFound";
}

/**
 * The properties (tags, version, expiry) of a secret's current version; undefined when there is none.
 * getSecret is Key Vault's only read of one secret, so the value comes too: it is dropped here.
 */
export async function currentSecretProperties(secrets: Pick<SecretStore, "getSecret">, secretName: string): Promise<SecretProperties | undefined> {
  try {
    return (await secrets.getSecret(secretName)).properties;
  } catch (error) {
    if (isSecretNotFound(error)) return undefined;
    throw error;
  }
}

/** Key Vault clients that have answered once: their challenge (below) is known. */
const challenged = new WeakSet<object>();

/**
 * Independent Key Vault reads at once, settled like Promise.allSettled. The SDK's first request per
 * client goes without a token to learn the vault's challenge (401, then again with a token:
 * @azure/keyvault-common, keyVaultAuthenticationPolicy); two first requests at once would both be
 * challenged. So a client's very first batch sends one read first, then the rest together
 * (docs/architecture.md, "Upstream calls per onboarding").
 */
export async function allSettledOnKeyVault<T extends readonly (() => Promise<unknown>)[]>(
  secrets: object,
  reads: T,
): Promise<{ -readonly [K in keyof T]: PromiseSettledResult<Awaited<ReturnType<T[K]>>> }> {
  type Result = { -readonly [K in keyof T]: PromiseSettledResult<Awaited<ReturnType<T[K]>>> };
  if (challenged.has(secrets) || reads.length < 2) {
    const all = await Promise.allSettled(reads.map((read) => read()));
    challenged.add(secrets);
    return all as Result;
  }
  const [first] = await Promise.allSettled([reads[0]!()]);
  challenged.add(secrets);
  const rest = await Promise.allSettled(reads.slice(1).map((read) => read()));
  return [first, ...rest] as Result;
}
