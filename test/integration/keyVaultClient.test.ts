// The app's own Key Vault client (src/clients/keyVault.ts), built from settings, against the Key
// Vault emulator: the SDK's challenge resource check is on unless KEY_VAULT_DISABLE_CHALLENGE_VERIFICATION
// says otherwise. The emulated vault is on `localhost` and its challenge names
// `https://vault.azure.net`, a resource that is not a parent domain of `localhost`: exactly the
// "foreign resource" the check exists to refuse (@azure/keyvault-common keyVaultAuthenticationPolicy.js).
import { SANDBOX_CREATIO_CREDENTIAL_SECRET, startEmulators, type EmulatorStack } from "../../dev/emulators";
import type { LoggedRequest } from "../../dev/emulators/server";
import type * as KeyVaultClientModule from "../../src/clients/keyVault";

let stack: EmulatorStack;
const saved = { ...process.env };
let getSecretClient: typeof KeyVaultClientModule.getSecretClient;

/** The app's client as a process with these settings builds it: fresh modules, so settings and the client are made anew. */
function useSettings(settings: Record<string, string>) {
  for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
  Object.assign(process.env, { AzureWebJobsStorage: "UseDevelopmentStorage=true", ...settings });
  jest.isolateModules(() => {
    ({ getSecretClient } = require("../../src/clients/keyVault") as typeof KeyVaultClientModule);
  });
}

beforeAll(async () => {
  stack = await startEmulators();
});

afterAll(async () => {
  process.env = saved;
  await stack?.close();
});

const vaultRequests = async () => (await (await fetch(`${stack.keyVaultUrl}/_emulator/requests`)).json()) as LoggedRequest[];

test("with default settings the client refuses a challenge whose resource is not the vault's parent domain, and sends no token", async () => {
  const { KEY_VAULT_DISABLE_CHALLENGE_VERIFICATION, NODE_EXTRA_CA_CERTS, ...defaults } = stack.appSettings();
  expect(KEY_VAULT_DISABLE_CHALLENGE_VERIFICATION).toBe("true"); // the sandbox opts out explicitly; here we do not
  useSettings(defaults);
  await fetch(`${stack.keyVaultUrl}/_emulator/requests`, { method: "DELETE" });
  await expect(getSecretClient().getSecret(SANDBOX_CREATIO_CREDENTIAL_SECRET)).rejects.toThrow(
    /The challenge resource 'vault\.azure\.net' does not match the requested domain/,
  );
  // Only the unauthenticated first request reached the vault: the token was never sent.
  expect((await vaultRequests()).map((r) => r.status)).toEqual([401]);
});

test("KEY_VAULT_DISABLE_CHALLENGE_VERIFICATION=true (the sandbox's setting) turns the check off", async () => {
  const { NODE_EXTRA_CA_CERTS, ...settings } = stack.appSettings();
  useSettings(settings);
  const secret = await getSecretClient().getSecret(SANDBOX_CREATIO_CREDENTIAL_SECRET);
  expect(JSON.parse(secret.value!)).toHaveProperty("username");
});
