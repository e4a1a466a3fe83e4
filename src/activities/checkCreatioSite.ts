import { z } from "zod";
import { CreatioError, CreatioLoginRefusedError, type CreatioClient, type MailServerLink } from "../clients/creatio";
import { isSecretNotFound } from "../clients/keyVault";
import { FinalError } from "../domain/failure";
import { resolveCreatioHostProblem } from "../domain/address";
import { ourSecret } from "../domain/managedSecret";
import { applicationUniqueNameFor, secretNameFor } from "../domain/site";
import { graphGetOrUndefined, odataString } from "../clients/graph";
import { decodeSiteTags } from "../domain/tags";
import { creatioClientFor, creatioSiteInput, defaultDeps, type ActivityDeps } from "./shared";

/**
 * Step 1, before anything is created in Entra: can this Creatio site take the OAuth settings at all?
 * Reachable over https, the credential logs in, the account may change mail server settings
 * (system operation CanManageMailServers, which saving a MailServer needs: Creatio Academy,
 * "System operation reference"), the MailServer row exists, and that mail server is not already
 * linked to another application (another URL of the same Creatio, or a hand-made setup) unless the
 * request says `takeOver`. Every "no" is final (not retried): a refused login retried can lock the
 * account, and the others do not clear by waiting. Only an unreachable site is retried.
 * Reads only: it changes nothing anywhere (docs/architecture.md, "Status tells the truth").
 */
export const CHECK_CREATIO_SITE = "checkCreatioSite";

export const checkCreatioSiteInput = creatioSiteInput.extend({
  /** The app id the site's Key Vault tags name, as POST /api/tenants read them (null: none); read here when omitted. */
  knownAppId: z.string().min(1).nullable().optional(),
});
export type CheckCreatioSiteInput = z.input<typeof checkCreatioSiteInput>;

export interface CheckCreatioSiteResult {
  odataRoot: string;
  mailServerName: string | null;
  /** Client id of the OAuth application the mail server is linked to now, if any. */
  linkedClientId: string | null;
  /** This site's app id as Key Vault records it (a re-onboarding), else null. */
  knownAppId: string | null;
  /** The mail server is linked to another application and the request said takeOver. */
  takingOver: boolean;
  /**
   * Mailboxes on this mail server while it has no OAuth application: they use a stored password
   * (basic authentication), which linking the application clears, as Creatio's own mail server page
   * does; their users must connect again with Microsoft sign-in. null when the server is linked
   * already, or when Creatio would not list them.
   */
  passwordMailboxes: number | null;
}

export const MANAGE_MAIL_SERVERS_OPERATION = "CanManageMailServers";

export async function checkCreatioSite(rawInput: CheckCreatioSiteInput, deps: ActivityDeps = defaultDeps(rawInput)): Promise<CheckCreatioSiteResult> {
  const input = checkCreatioSiteInput.parse(rawInput);
  const origin = `https://${input.host}`;
  // Where the name points, before any request goes there: never a metadata or link-local address,
  // loopback only where CREATIO_ALLOW_LOOPBACK says so (src/domain/address.ts).
  const hostname = new URL(origin).hostname;
  const addressProblem = await resolveCreatioHostProblem(hostname, deps.creatioAllowLoopback ?? false, deps.lookup);
  if (addressProblem) {
    // A resolver that timed out may answer next time; every other answer stands.
    if (/\(EAI_AGAIN\)/.test(addressProblem)) throw new Error(addressProblem);
    throw new FinalError(`${addressProblem} Nothing was created.`);
  }
  const { creatio } = await creatioClientFor(deps, input.host, input.creatioCredentialSecretName, input.creatioCredentialVersion);

  // The mail server's row is the first read: on first contact it also finds the OData root, which
  // the rights check needs; on a client that knows it, both go at once (docs/architecture.md,
  // "Upstream calls per onboarding").
  let odataRoot: string;
  let link: MailServerLink;
  let canManage: boolean | undefined;
  try {
    if (creatio.knownODataRoot) [link, canManage] = await Promise.all([creatio.mailServerLink(input.mailServerId), creatio.canExecuteOperation(MANAGE_MAIL_SERVERS_OPERATION)]);
    else link = await creatio.mailServerLink(input.mailServerId);
    odataRoot = await creatio.odataRoot();
  } catch (error) {
    if (error instanceof CreatioLoginRefusedError) {
      throw new FinalError(
        `Creatio at ${origin} refused the credential in Key Vault secret ${input.creatioCredentialSecretName} (${error.message.replace(/^Creatio /, "")}). ` +
          `Store the right credential in that secret and onboard again; the login is not repeated so the account is not locked out.`,
      );
    }
    if (isUnresolvable(error)) {
      throw new FinalError(`${origin} cannot be resolved (${(error as Error).message}). Check creatioUrl: it must be the Creatio site's address.`);
    }
    throw error;
  }

  // An unlinked mail server's mailboxes are counted beside the rights check: both only read.
  let counted: number | null | undefined;
  if (canManage === undefined) {
    const unlinked = link.mailServer !== undefined && !link.application;
    [canManage, counted] = await Promise.all([creatio.canExecuteOperation(MANAGE_MAIL_SERVERS_OPERATION), unlinked ? mailboxCount(creatio, input.mailServerId) : undefined]);
  }
  if (!canManage) {
    throw new FinalError(
      `The Creatio account in Key Vault secret ${input.creatioCredentialSecretName} may not change mail server settings: ` +
        `grant it the system operation ${MANAGE_MAIL_SERVERS_OPERATION} in Creatio (System Designer > Operation permissions), or store another account's credential.`,
    );
  }

  if (!link.mailServer) {
    throw new FinalError(
      `Creatio at ${origin} has no MailServer row ${input.mailServerId}. Pass the id of the site's Office 365 mail server as mailServerId ` +
        `(Creatio: System Designer > Email > Mail servers, or GET ${odataRoot}/MailServer?$select=Id,Name).`,
    );
  }
  const mailServerName = link.mailServer.Name ?? input.mailServerId;
  const linkedClientId = link.application?.ClientId || null;
  // This site's app: as Key Vault records it, else (its secret deleted by hand) as Entra has it.
  const recorded = input.knownAppId !== undefined ? input.knownAppId : await knownAppIdOf(deps, input.host);
  const knownAppId = recorded ?? (linkedClientId ? await registeredAppIdOf(deps, input.host) : null);
  const foreign = linkedClientId !== null && linkedClientId !== knownAppId;
  if (foreign && !input.takeOver) {
    const owner = await managedSiteWithAppId(deps, linkedClientId!);
    throw new FinalError(
      `Creatio's mail server "${mailServerName}" at ${origin} is already linked to the application with client id ${linkedClientId}` +
        (owner ? `, which this app manages for the site ${owner}: the same Creatio is onboarded under another URL. Use that site, or offboard it first.` : ", which this app did not register for this site (a setup by hand, or another tool).") +
        ` To replace it anyway, onboard again with "takeOver": true; Creatio's users then reconnect their mailboxes.`,
    );
  }
  const passwordMailboxes = link.application ? null : counted !== undefined ? counted : await mailboxCount(creatio, input.mailServerId);
  return { odataRoot, mailServerName: link.mailServer.Name ?? null, linkedClientId, knownAppId, takingOver: foreign, passwordMailboxes };
}

/** How many mailboxes use the mail server; null when Creatio refuses the read (a count is not worth failing for). */
async function mailboxCount(creatio: CreatioClient, mailServerId: string): Promise<number | null> {
  try {
    const rows = await creatio.get<{ value?: unknown[] }>(`/MailboxSyncSettings?$filter=MailServerId eq ${mailServerId}&$select=Id`);
    return rows.body?.value?.length ?? null;
  } catch {
    return null;
  }
}

/** A DNS failure: the name does not exist, so retrying cannot help. */
function isUnresolvable(error: unknown): boolean {
  return error instanceof CreatioError && /ENOTFOUND|EAI_NONAME|getaddrinfo/i.test(error.message);
}

async function knownAppIdOf(deps: Pick<ActivityDeps, "secrets">, host: string): Promise<string | null> {
  try {
    const decoded = decodeSiteTags((await deps.secrets.getSecret(secretNameFor(host))).properties.tags);
    return decoded.ok ? decoded.tags.appId : null;
  } catch (error) {
    if (isSecretNotFound(error)) return null;
    throw error;
  }
}

/** The app id of the site's app registration (by its uniqueName), if one exists. */
async function registeredAppIdOf(deps: Pick<ActivityDeps, "graph">, host: string): Promise<string | null> {
  const app = await graphGetOrUndefined<{ appId: string }>(deps.graph, `/applications(uniqueName=${odataString(applicationUniqueNameFor(host))})?$select=appId`);
  return app?.appId ?? null;
}

/** The managed site whose app has this client id, from the registry's tags (no values are read). */
async function managedSiteWithAppId(deps: Pick<ActivityDeps, "secrets">, appId: string): Promise<string | undefined> {
  for await (const properties of deps.secrets.listPropertiesOfSecrets()) {
    const ours = ourSecret(properties);
    if (ours?.tags && ours.tags.appId === appId) return ours.host;
  }
  return undefined;
}

export const checkCreatioSiteActivity = {
  name: CHECK_CREATIO_SITE,
  handler: (input: unknown) => checkCreatioSite(input as CheckCreatioSiteInput),
};
