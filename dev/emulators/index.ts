// Starts the emulators (Graph with the Entra token endpoint, Key Vault, Creatio and its Identity
// Service, Exchange Online's admin API) on HTTPS with
// the sandbox CA, and says which app settings point the unchanged app at them.
import { SANDBOX_DIR } from "../sandbox";
import { AUDIENCES, EmulatorContext, SANDBOX_CUSTOMER_TENANT, SANDBOX_IDENTITY, SANDBOX_IDENTITY_HEADER, SANDBOX_PROVISIONER, sandboxContext } from "./context";
import { createCreatioEmulator, createCreatioIdentityService, CreatioEmulatorOptions, SEED_USERS } from "./creatio";
import { createGraphEmulator } from "./graph";
import { createExchangeEmulator, EXCHANGE_ONLINE_APP_ID, type ExchangeEmulatorOptions } from "./exchange";
import { createKeyVaultEmulator, SeedSecret } from "./keyVault";
import type { EmulatorServer, FaultSettings } from "./server";
import { extraCaBundle } from "./tls";
import { CREDENTIAL_SITE_TAG } from "../../src/clients/creatio";

export { AUDIENCES, SANDBOX_CUSTOMER_TENANT, SANDBOX_IDENTITY, SANDBOX_PROVISIONER };

/** The Key Vault secret `npm start` seeds: the sandbox Creatio site's administrator login. */
export const SANDBOX_CREATIO_CREDENTIAL_SECRET = "creatio-sandbox-admin";

export interface EmulatorStackOptions {
  sandboxDir?: string;
  /** 0 picks a free port (tests); `npm start` uses 7101, 7102, 7103, 7104. */
  graphPort?: number;
  keyVaultPort?: number;
  creatioPort?: number;
  creatioIdentityPort?: number;
  /** Exchange Online admin API; `npm start` uses 7105 (7104 is the Creatio Identity Service). */
  exchangePort?: number;
  exchange?: ExchangeEmulatorOptions;
  /** EWS_ACCESS the sandbox app gets (default `manage`: the sandbox identity is Exchange Administrator). */
  ewsAccess?: "manage" | "check" | "off";
  /** Seed `creatio-sandbox-admin` in Key Vault with the Creatio Supervisor login. Default true. */
  seedCreatioCredential?: boolean;
  keyVaultSeed?: SeedSecret[];
  creatio?: CreatioEmulatorOptions;
  faults?: Partial<FaultSettings>;
  /**
   * Seed the multi-tenant provisioner application (SANDBOX_PROVISIONER) in the home directory, with its
   * federated credential for the sandbox identity (issue 10). Default true.
   */
  seedProvisioner?: boolean;
}

export interface EmulatorStack {
  /** Graph emulator base URL: the GRAPH_BASE_URL setting (the client adds `/v1.0`). */
  graphUrl: string;
  /** Entra token endpoint host (same server as Graph): the AZURE_AUTHORITY_HOST setting. */
  authorityHost: string;
  keyVaultUrl: string;
  /** The sandbox Creatio site, e.g. https://localhost:7103. */
  creatioUrl: string;
  /** Its Identity Service, on a host of its own (the `identityServerUrl` of a client-credentials login), e.g. https://localhost:7104. */
  creatioIdentityUrl: string;
  /** Exchange Online admin API: the EXCHANGE_ADMIN_URL setting, e.g. https://localhost:7105. */
  exchangeUrl: string;
  caCertPath: string;
  identity: typeof SANDBOX_IDENTITY;
  servers: { graph: EmulatorServer; keyVault: EmulatorServer; creatio: EmulatorServer; creatioIdentity: EmulatorServer; exchange: EmulatorServer };
  /** App settings that point the app at this stack (no local.settings.json needed). */
  appSettings(): Record<string, string>;
  close(): Promise<void>;
}

export async function startEmulators(options: EmulatorStackOptions = {}): Promise<EmulatorStack> {
  const sandboxDir = options.sandboxDir ?? SANDBOX_DIR;
  const ctx: EmulatorContext = sandboxContext(sandboxDir, options.faults);
  if (options.seedProvisioner !== false) ctx.provisioner = SANDBOX_PROVISIONER;
  const supervisor = SEED_USERS[0];

  const graph = createGraphEmulator(ctx);
  const creatio = createCreatioEmulator(ctx, options.creatio);
  const creatioIdentity = createCreatioIdentityService(ctx, { clients: options.creatio?.clients });
  const exchange = createExchangeEmulator(ctx, options.exchange);
  const started: EmulatorServer[] = [graph, creatio, creatioIdentity, exchange];
  let graphUrl: string;
  let exchangeUrl: string;
  let keyVaultUrl: string;
  let creatioUrl: string;
  let creatioIdentityUrl: string;
  let keyVault: EmulatorServer;
  try {
    graphUrl = await graph.listen(options.graphPort ?? 0);
    creatioUrl = await creatio.listen(options.creatioPort ?? 0);
    creatioIdentityUrl = await creatioIdentity.listen(options.creatioIdentityPort ?? 0);
    // Seeded once the Creatio site's address is known: the credential is bound to it (its creatioSite tag).
    const seed: SeedSecret[] = [...(options.keyVaultSeed ?? [])];
    if (options.seedCreatioCredential !== false) {
      seed.push({
        name: SANDBOX_CREATIO_CREDENTIAL_SECRET,
        value: JSON.stringify({ username: supervisor.userName, password: supervisor.password }),
        contentType: "application/json",
        // Bound to the site under both of its loopback names: `npm run bench` and the request-count
        // test onboard https://127.0.0.1:<port> as a second, new site on a warm host.
        tags: { [CREDENTIAL_SITE_TAG]: `${new URL(creatioUrl).host} ${new URL(creatioUrl).host.replace("localhost", "127.0.0.1")}` },
      });
    }
    keyVault = createKeyVaultEmulator(ctx, { authorityHost: () => graphUrl, seed });
    started.push(keyVault);
    keyVaultUrl = await keyVault.listen(options.keyVaultPort ?? 0);
    exchangeUrl = await exchange.listen(options.exchangePort ?? 0);
    // The app asks for a token for `${EXCHANGE_ADMIN_URL}/.default`: the sandbox tenant's Exchange
    // Online service principal answers to the emulator's URL too.
    ctx.resourceAliases[exchangeUrl] = EXCHANGE_ONLINE_APP_ID;
  } catch (error) {
    await Promise.allSettled(started.map((s) => s.close()));
    throw error;
  }
  const all = started;

  return {
    graphUrl,
    authorityHost: graphUrl,
    keyVaultUrl,
    creatioUrl,
    creatioIdentityUrl,
    exchangeUrl,
    caCertPath: ctx.tls.caCertPath,
    identity: SANDBOX_IDENTITY,
    servers: { graph, keyVault, creatio, creatioIdentity, exchange },
    appSettings: () => ({
      KEY_VAULT_URL: keyVaultUrl,
      GRAPH_BASE_URL: graphUrl,
      AZURE_AUTHORITY_HOST: graphUrl,
      AZURE_DISABLE_INSTANCE_DISCOVERY: "true",
      // The emulated vault lives on `localhost`, which has no parent domain a challenge `resource`
      // could name, so the SDK's challenge check cannot pass there (src/clients/keyVault.ts).
      KEY_VAULT_DISABLE_CHALLENGE_VERIFICATION: "true",
      AZURE_TENANT_ID: SANDBOX_IDENTITY.tenantId,
      AZURE_CLIENT_ID: SANDBOX_IDENTITY.clientId,
      AZURE_CLIENT_SECRET: SANDBOX_IDENTITY.clientSecret,
      // The sandbox Creatio is https://localhost:<port>: a loopback address the app refuses by default.
      CREATIO_ALLOW_LOOPBACK: "true",
      EXCHANGE_ADMIN_URL: exchangeUrl,
      EWS_ACCESS: options.ewsAccess ?? "manage",
      // Other tenants (issue 10): the provisioner the app's identity signs in as in a customer tenant, through
      // the App Service managed identity endpoint Azure Functions gives the app (graph/token.ts, /msi/token).
      // DefaultAzureCredential still signs the app in through EnvironmentCredential (AZURE_CLIENT_SECRET above),
      // which it tries before ManagedIdentityCredential.
      ...(ctx.provisioner ? { PROVISIONER_CLIENT_ID: ctx.provisioner.appId } : {}),
      IDENTITY_ENDPOINT: `${graphUrl}/msi/token`,
      IDENTITY_HEADER: SANDBOX_IDENTITY_HEADER,
      NODE_EXTRA_CA_CERTS: extraCaBundle(sandboxDir),
    }),
    async close() {
      await Promise.allSettled(all.map((s) => s.close()));
    },
  };
}
