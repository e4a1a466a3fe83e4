import { ClientSecretCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";
import { SANDBOX_IDENTITY, type EmulatorStack } from "../../dev/emulators";
import { SEED_USERS } from "../../dev/emulators/creatio";
import { CREDENTIAL_SITE_TAG } from "../../src/clients/creatio";
import { encodeHostForName } from "../../src/domain/site";

/**
 * Stores the emulated Creatio's administrator login for one site, bound to it by the creatioSite tag,
 * as an administrator does with `az keyvault secret set ... --tags creatioSite=<host>`. Returns the
 * secret's name, for the onboarding request's creatioCredentialSecretName.
 */
export async function storeSiteCredential(secrets: SecretClient, host: string, login = { username: SEED_USERS[0]!.userName, password: SEED_USERS[0]!.password }): Promise<string> {
  const name = `creatio-api-${encodeHostForName(host)}`;
  await secrets.setSecret(name, JSON.stringify(login), { contentType: "application/json", tags: { [CREDENTIAL_SITE_TAG]: host } });
  return name;
}

/** The emulated vault through the real SDK client, as an administrator with the sandbox identity reaches it. */
export function sandboxSecretClient(stack: Pick<EmulatorStack, "keyVaultUrl" | "authorityHost">): SecretClient {
  const credential = new ClientSecretCredential(SANDBOX_IDENTITY.tenantId, SANDBOX_IDENTITY.clientId, SANDBOX_IDENTITY.clientSecret, {
    authorityHost: stack.authorityHost,
    disableInstanceDiscovery: true,
  });
  // The emulator is on localhost: no parent domain a challenge could name (src/clients/keyVault.ts).
  return new SecretClient(stack.keyVaultUrl, credential, { disableChallengeResourceVerification: true });
}
