import type { Client } from "@microsoft/microsoft-graph-client";
import { z } from "zod";
import { getGraphClient } from "../clients/graph";
import { getSecretClient, isSecretNotFound, type SecretStore } from "../clients/keyVault";
import { CreatioCredentialError, getCreatioClient, readSiteCredential, type CreatioClient, type CreatioClientOptions, type SiteCredential } from "../clients/creatio";
import { FinalError } from "../domain/failure";
import { defaultIdentityServerUrlFor } from "../domain/site";
import { getExchangeClient, type ExchangeAdmin } from "../clients/exchange";
import { consentRedirectUriOf, settings } from "../settings";
import type { Lookup } from "../domain/address";

/** What activities talk to. Production uses the memoised clients; unit tests pass recorders. */
export interface ActivityDeps {
  graph: Client;
  secrets: SecretStore;
  creatio: (options: CreatioClientOptions) => CreatioClient;
  now: () => Date;
  sleep: (ms: number) => Promise<void>;
  /** Days before expiry at which a secret counts as due for rotation (ROTATE_DAYS_BEFORE_EXPIRY). */
  rotateDaysBeforeExpiry: number;
  /** CREATIO_ALLOW_LOOPBACK: a Creatio host may resolve to a loopback address (false when omitted). */
  creatioAllowLoopback?: boolean;
  /** Name resolution for the Creatio address check; the system resolver when omitted. */
  lookup?: Lookup;
  /** Exchange Online admin API (allowEwsAccess); not asked when omitted. */
  exchange?: ExchangeAdmin;
  /** EWS_ACCESS: manage, check (when omitted) or off. */
  ewsAccess?: "manage" | "check" | "off";
}

/**
 * The production clients for an activity's input: Graph and Exchange Online of the site's tenant
 * (its `tenantId`, the home tenant when absent; docs/architecture.md, "Serving several tenants").
 * Key Vault and Creatio do not depend on the tenant.
 */
export function defaultDeps(input?: unknown): ActivityDeps {
  const tenantId = tenantIdOf(input);
  return {
    graph: getGraphClient(tenantId),
    secrets: getSecretClient(),
    creatio: getCreatioClient,
    now: () => new Date(),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    rotateDaysBeforeExpiry: settings().ROTATE_DAYS_BEFORE_EXPIRY,
    creatioAllowLoopback: settings().CREATIO_ALLOW_LOOPBACK,
    exchange: getExchangeClient(tenantId),
    ewsAccess: settings().EWS_ACCESS,
  };
}

/** What checkTenantAccess needs of the settings: the provisioner, where Entra is, where consent returns to. */
export function provisionerSettings(): { provisionerClientId: string | undefined; authorityHost: string; redirectUri: string | undefined; graphBaseUrl: string } {
  const s = settings();
  return {
    provisionerClientId: s.PROVISIONER_CLIENT_ID,
    authorityHost: s.AZURE_AUTHORITY_HOST ?? "https://login.microsoftonline.com",
    redirectUri: consentRedirectUriOf(s),
    graphBaseUrl: s.GRAPH_BASE_URL,
  };
}

/** The `tenantId` an activity input names, if any. */
function tenantIdOf(input: unknown): string | undefined {
  const value = input && typeof input === "object" ? (input as { tenantId?: unknown }).tenantId : undefined;
  return typeof value === "string" && value !== "" ? value : undefined;
}

/**
 * Rides out Entra replication lag (docs/architecture.md, "Microsoft Graph and Entra ID"; devblogs.microsoft.com/identity, "Designing for eventual consistency"): a
 * just-created object can be "not found" for seconds. Retries `fn` while `isLag(error)`, with
 * exponential backoff; the last error propagates so the orchestrator's retry policy takes over.
 */
export async function whileReplicating<T>(
  deps: Pick<ActivityDeps, "sleep">,
  isLag: (error: unknown) => boolean,
  fn: () => Promise<T>,
  { attempts = 6, baseDelayMs = 1000 }: { attempts?: number; baseDelayMs?: number } = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= attempts || !isLag(error)) throw error;
      await deps.sleep(Math.min(baseDelayMs * 2 ** (attempt - 1), 16_000));
    }
  }
}

/**
 * Fields the activity inputs share, each defined once: an input picks the ones it takes
 * (`activityFields.pick({ host: true, ... })`), so a site's host or an app's ids are validated the
 * same way in every step.
 */
export const activityFields = z.object({
  /** The site key: the Creatio site's lower-cased host. */
  host: z.string().min(1),
  /** The orchestration instance the step runs for. */
  instanceId: z.string().min(1),
  appId: z.string().min(1),
  appObjectId: z.string().min(1),
  displayName: z.string().min(1),
  /** A password of the app, by keyId. */
  keyId: z.string().min(1),
  secretName: z.string().min(1),
  creatioCredentialSecretName: z.string().min(1),
  mailServerId: z.string().min(1),
  /** The site's Entra tenant id when it is not the app's home tenant (src/domain/tenant.ts); absent: the home tenant. */
  tenantId: z.string().min(1).optional(),
});

/** The Creatio site, the Key Vault secret holding its credential and its mail server: what the Creatio steps share. */
export const creatioSiteInput = activityFields.pick({ host: true, creatioCredentialSecretName: true, mailServerId: true }).extend({
  /** The credential's Key Vault version POST /api/tenants read (a reference, never the value); the latest when omitted. */
  creatioCredentialVersion: z.string().min(1).optional(),
  /** Replace a link to another application's row (checkCreatioSite said so); otherwise that is a conflict. */
  takeOver: z.boolean().default(false),
});

export { redactError } from "../domain/failure";

/**
 * The credential secret bound to the site (its creatioSite tag). Missing, unbound or malformed is
 * final: waiting does not fix a credential.
 */
export async function siteCredentialFor(deps: Pick<ActivityDeps, "secrets">, host: string, credentialSecretName: string, version?: string): Promise<SiteCredential> {
  try {
    return await readSiteCredential(deps.secrets, credentialSecretName, host, version);
  } catch (error) {
    if (isSecretNotFound(error)) throw new FinalError(`The Creatio credential secret ${credentialSecretName} does not exist in Key Vault`);
    if (error instanceof CreatioCredentialError) throw new FinalError(error.message);
    throw error;
  }
}

/** The site's Creatio client from its bound credential, and the values to keep out of error text. */
export async function creatioClientFor(
  deps: Pick<ActivityDeps, "secrets" | "creatio">,
  host: string,
  credentialSecretName: string,
  version?: string,
): Promise<{ creatio: CreatioClient; secretParts: string[] }> {
  const site = await siteCredentialFor(deps, host, credentialSecretName, version);
  const creatio = deps.creatio({ origin: `https://${host}`, credential: site.credential, defaultIdentityServerUrl: defaultIdentityServerUrlFor(host) });
  return { creatio, secretParts: site.secretParts };
}
