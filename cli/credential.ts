import type * as IdentitySdk from "@azure/identity";
import type * as KeyVaultSdk from "@azure/keyvault-secrets";
import { CREDENTIAL_SITE_TAG, creatioCredentialSchema } from "../src/clients/creatio";
import { KEY_VAULT_NAME_PATTERN, parseCreatioUrl, parseSiteHost } from "../src/domain/site";
import { CliError, EXIT } from "./api";

/**
 * `creatio-o365 credential set <name> --site <host>`: stores a Creatio login in Key Vault with the
 * user's own Azure sign-in, bound to the site by the `creatioSite` tag the app checks before it
 * sends the credential anywhere (src/clients/creatio.ts, credentialBindingProblem). The value is
 * validated with the app's own schema (creatioCredentialSchema) and never printed.
 *
 * The sign-in is DefaultAzureCredential's (`az login`, environment, managed identity...). It reads
 * the same settings as the app (src/clients/credential.ts, src/clients/keyVault.ts): AZURE_TENANT_ID,
 * AZURE_AUTHORITY_HOST, AZURE_DISABLE_INSTANCE_DISCOVERY and KEY_VAULT_DISABLE_CHALLENGE_VERIFICATION,
 * which only a sandbox or private cloud sets. `npm start` writes them for its emulators to
 * .sandbox/cli.env (dev/cliEnv.ts).
 */

export interface StoredCredential {
  name: string;
  version: string | undefined;
  vaultUrl: string;
  site: string;
}

export interface CredentialStore {
  set(name: string, value: string, tags: Record<string, string>): Promise<{ version: string | undefined }>;
}

const SHAPES = '{"username","password"} (Creatio login) or {"clientId","clientSecret","identityServerUrl"?} (Identity Service client credentials)';

/** The site key a --site value names: a host (acme.creatio.com) or the site's URL. */
export function siteKeyOf(text: string): string {
  const parsed = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? parseCreatioUrl(text, { allowLoopback: true }) : parseSiteHost(text);
  if (!parsed.ok) throw new CliError(`--site ${parsed.problem}`, EXIT.usage);
  return parsed.site.host;
}

/** Validates standard input's JSON with the app's schema; the message names the shape, never the value. */
export function parseCredentialInput(text: string): string {
  if (text.trim() === "") throw new CliError(`nothing on standard input: pipe the credential JSON in, ${SHAPES}, e.g. creatio-o365 credential set <name> --site <host> < login.json`, EXIT.usage);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CliError(`standard input is not JSON; expected ${SHAPES}`, EXIT.usage);
  }
  const parsed = creatioCredentialSchema.safeParse(json);
  if (!parsed.success) {
    const keys = json && typeof json === "object" && !Array.isArray(json) ? Object.keys(json).join(", ") : typeof json;
    throw new CliError(`the credential JSON must be ${SHAPES}; it has ${keys || "no fields"}`, EXIT.usage);
  }
  return JSON.stringify(parsed.data);
}

export function checkSecretName(name: string): void {
  if (!KEY_VAULT_NAME_PATTERN.test(name)) throw new CliError(`${JSON.stringify(name)} is not a Key Vault secret name (letters, digits, hyphens; at most 127)`, EXIT.usage);
}

/** The real store: SecretClient with DefaultAzureCredential (required on use, so other commands never load the SDKs). */
export function keyVaultStore(vaultUrl: string, env: NodeJS.ProcessEnv): CredentialStore {
  const { DefaultAzureCredential } = require("@azure/identity") as typeof IdentitySdk;
  const { SecretClient } = require("@azure/keyvault-secrets") as typeof KeyVaultSdk;
  const credential = new DefaultAzureCredential({
    ...(env.AZURE_TENANT_ID ? { tenantId: env.AZURE_TENANT_ID } : {}),
    ...(env.AZURE_AUTHORITY_HOST ? { authorityHost: env.AZURE_AUTHORITY_HOST } : {}),
    disableInstanceDiscovery: env.AZURE_DISABLE_INSTANCE_DISCOVERY === "true",
  });
  const client = new SecretClient(vaultUrl, credential, { disableChallengeResourceVerification: env.KEY_VAULT_DISABLE_CHALLENGE_VERIFICATION === "true" });
  return {
    async set(name, value, tags) {
      const stored = await client.setSecret(name, value, { contentType: "application/json", tags });
      return { version: stored.properties.version };
    },
  };
}

/** One line for a failure of the Azure SDKs, with what to do; never the value. */
export function keyVaultErrorText(error: unknown, vaultUrl: string): string {
  const e = error as { name?: string; statusCode?: number; code?: string; message?: string };
  const first = String(e?.message ?? error).split("\n")[0]!.slice(0, 300);
  if (e?.name === "CredentialUnavailableError" || e?.name === "AggregateAuthenticationError") {
    return `no Azure sign-in found (${first}): run \`az login\`, or on \`npm start\` load the sandbox's settings first: set -a; . .sandbox/cli.env; set +a`;
  }
  if (e?.statusCode === 403) return `${vaultUrl} refused to store the secret (403 ${e.code ?? ""}): your identity needs the Key Vault Secrets Officer role on the vault`;
  if (e?.statusCode === 401) return `${vaultUrl} refused the sign-in (401): check AZURE_TENANT_ID and that you signed in to the vault's tenant`;
  const cause = (error as { cause?: { code?: string } })?.cause?.code ?? e?.code;
  if (cause === "ECONNREFUSED" || cause === "ENOTFOUND" || /ECONNREFUSED|ENOTFOUND/.test(first)) {
    return `cannot reach ${vaultUrl}: check --vault-url or KEY_VAULT_URL (on \`npm start\`: is it running? load .sandbox/cli.env)`;
  }
  if (/certificate|self.signed|UNABLE_TO_VERIFY/i.test(first)) {
    return `${vaultUrl}: TLS certificate not trusted (${first}); on \`npm start\` load .sandbox/cli.env, which sets NODE_EXTRA_CA_CERTS to the sandbox CA`;
  }
  return `storing the secret in ${vaultUrl} failed: ${first}`;
}

export async function setCredential(options: { name: string; site: string; vaultUrl: string | undefined; input: string; store?: CredentialStore; env: NodeJS.ProcessEnv }): Promise<StoredCredential> {
  checkSecretName(options.name);
  const site = siteKeyOf(options.site);
  if (!options.vaultUrl) throw new CliError("no vault: set --vault-url or KEY_VAULT_URL to the vault's URI (https://<vault>.vault.azure.net; on `npm start`: load .sandbox/cli.env)", EXIT.usage);
  let vaultUrl: string;
  try {
    vaultUrl = new URL(options.vaultUrl).toString().replace(/\/+$/, "");
  } catch {
    throw new CliError(`--vault-url ${JSON.stringify(options.vaultUrl)} is not a URL`, EXIT.usage);
  }
  const value = parseCredentialInput(options.input);
  const store = options.store ?? keyVaultStore(vaultUrl, options.env);
  try {
    const { version } = await store.set(options.name, value, { [CREDENTIAL_SITE_TAG]: site });
    return { name: options.name, version, vaultUrl, site };
  } catch (error) {
    throw new CliError(keyVaultErrorText(error, vaultUrl), EXIT.failed);
  }
}
