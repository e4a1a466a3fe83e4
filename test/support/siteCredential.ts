import type { SecretClient } from "@azure/keyvault-secrets";
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
