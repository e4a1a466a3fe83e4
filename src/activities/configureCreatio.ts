import { z } from "zod";
import { CreatioError, CreatioLoginRefusedError, type OAuthApplicationRow } from "../clients/creatio";
import { FinalError } from "../domain/failure";
import { decodeSiteTags, lastRunSchema, mergeSiteTags, type SiteTagsChange } from "../domain/tags";
import { mailReadinessSchema } from "../domain/ews";
import { activityFields, creatioClientFor, creatioSiteInput, defaultDeps, redactError, type ActivityDeps } from "./shared";

/**
 * Step 6 (manual step 10): what Creatio's own mail settings page writes for OAuth 2.0 (docs/architecture.md,
 * "Creatio"): an `OAuthApplications` row (Name = AppClassName = Office365OAuthAuthenticator,
 * ClientClassName = Office365OAuthClient, ClientId, SecretKey) linked from the Office 365
 * `MailServer` row's OAuthApplicationId. The client secret and the Creatio credential are read
 * from Key Vault here (docs/architecture.md, "The secret never enters Durable state"). Reused by rotation.
 */
export const CONFIGURE_CREATIO = "configureCreatio";

export const configureCreatioInput = creatioSiteInput.extend({
  ...activityFields.pick({ secretName: true, appId: true }).shape,
  /** The version issued by the previous step; Creatio gets exactly that value. Latest when omitted. */
  secretVersion: z.string().min(1).optional(),
  /**
   * When this is the run's last step: how the run ended (and the EWS readiness), written with this
   * step's own tag update instead of by a separate recordSiteState afterwards (a read and a write
   * fewer; docs/architecture.md, "Upstream calls per onboarding"). Written only when Creatio took the
   * settings, so it says `succeeded` only for a run that did.
   */
  recordOnSuccess: z
    .object({
      lastRun: lastRunSchema.omit({ at: true }),
      mailReadiness: mailReadinessSchema.optional(),
    })
    .optional(),
});
export type ConfigureCreatioInput = z.input<typeof configureCreatioInput>;

export interface ConfigureCreatioResult {
  mailServerId: string;
  oauthApplicationId: string;
  odataRoot: string;
  /** What was written: nothing when Creatio already held this client id and keyId. */
  actions: ("inserted-oauth-application" | "updated-oauth-application" | "linked-mail-server")[];
  syncedAt: string | null;
  syncedKeyId: string | null;
  /** recordOnSuccess went into the tags (false when it was not asked for, or the tags do not decode). */
  recordedOutcome?: boolean;
}

export const OAUTH_APPLICATION_NAME = "Office365OAuthAuthenticator";
export const OAUTH_CLIENT_CLASS_NAME = "Office365OAuthClient";


export async function configureCreatio(rawInput: ConfigureCreatioInput, deps: ActivityDeps = defaultDeps(rawInput)): Promise<ConfigureCreatioResult> {
  const input = configureCreatioInput.parse(rawInput);
  // The Creatio credential's secret parts, kept out of error messages too (Creatio error bodies are quoted in them).
  const credentialSecrets: string[] = [];
  // The client secret (Key Vault) and the mail server's row (Creatio) do not depend on each other:
  // both are read at once (docs/architecture.md, "Upstream calls per onboarding"). Creatio is sent
  // nothing secret before the value is read, so these errors cannot quote it.
  const creatioSide = (async () => {
    const { creatio, secretParts } = await creatioClientFor(deps, input.host, input.creatioCredentialSecretName, input.creatioCredentialVersion);
    credentialSecrets.push(...secretParts);
    try {
      // The mail server's row first: on a client's first contact it also finds the OData root.
      const link = await creatio.mailServerLink(input.mailServerId);
      return { creatio, link, odataRoot: await creatio.odataRoot() };
    } catch (error) {
      if (error instanceof CreatioLoginRefusedError) {
        throw new FinalError(`Creatio refused the credential in Key Vault secret ${input.creatioCredentialSecretName}: ${error.message}. Store the right credential and run again.`);
      }
      throw error;
    }
  })();
  let clientSecret: Awaited<ReturnType<ActivityDeps["secrets"]["getSecret"]>>;
  try {
    clientSecret = await deps.secrets.getSecret(input.secretName, input.secretVersion ? { version: input.secretVersion } : undefined);
  } catch (error) {
    await creatioSide.catch(() => undefined);
    throw redactError(error, ...credentialSecrets);
  }
  const secretValue = clientSecret.value;
  try {
    if (!secretValue) throw new Error(`Key Vault secret ${input.secretName} has no value`);
    const decoded = decodeSiteTags(clientSecret.properties.tags);
    const keyId = decoded.ok ? decoded.tags.keyId : undefined;
    const { creatio, link, odataRoot } = await creatioSide;

    if (!link.mailServer) {
      throw new FinalError(`Creatio GET ${odataRoot}/MailServer(${input.mailServerId}) found no such mail server; pass the id of the site's Office 365 MailServer row as mailServerId`);
    }
    const desired = { Name: OAUTH_APPLICATION_NAME, AppClassName: OAUTH_APPLICATION_NAME, ClientClassName: OAUTH_CLIENT_CLASS_NAME, ClientId: input.appId };
    const actions: ConfigureCreatioResult["actions"] = [];

    // The row the mail server points at, if it still exists.
    let row: OAuthApplicationRow | undefined = link.application;
    if (row?.ClientId && row.ClientId !== input.appId && !input.takeOver) {
      // Someone linked another application since the preflight (or this is a rotation): never
      // overwrite it silently; status shows the drift (docs/architecture.md, "Status tells the truth").
      throw new FinalError(
        `Creatio's mail server ${input.mailServerId} is now linked to the application with client id ${row.ClientId}, not this site's ${input.appId}. ` +
          `Nothing was written to Creatio. Onboard again with "takeOver": true to link this site's application again.`,
      );
    }
    let linkNeeded = !row;
    if (!row) {
      // An earlier attempt may have inserted the row and failed before linking it: find it by ClientId.
      const found = await creatio.get<{ value: OAuthApplicationRow[] }>(
        `/OAuthApplications?$filter=ClientId eq '${input.appId}'&$select=Id,Name,AppClassName,ClientClassName,ClientId`,
      );
      row = found.body?.value?.[0];
    }
    if (!row) {
      const inserted = await creatio.post<OAuthApplicationRow>(`/OAuthApplications`, { ...desired, SecretKey: secretValue });
      if (!inserted.body?.Id) throw new CreatioError(`POST ${odataRoot}/OAuthApplications`, inserted.status, "the insert returned no Id");
      row = inserted.body;
      actions.push("inserted-oauth-application");
    } else {
      const differs = row.Name !== desired.Name || row.AppClassName !== desired.AppClassName || row.ClientClassName !== desired.ClientClassName || row.ClientId !== desired.ClientId;
      // SecretKey is write-only: the keyId tag says whether Creatio already has the current secret.
      const secretStale = !decoded.ok || decoded.tags.creatioSyncedKeyId !== keyId || linkNeeded;
      if (differs || secretStale) {
        await creatio.patch(`/OAuthApplications(${row.Id})`, { ...desired, SecretKey: secretValue });
        actions.push("updated-oauth-application");
      }
    }
    if (linkNeeded || link.mailServer.OAuthApplicationId !== row.Id) {
      await creatio.patch(`/MailServer(${input.mailServerId})`, { OAuthApplicationId: row.Id });
      actions.push("linked-mail-server");
    }

    let syncedAt = decoded.ok ? (decoded.tags.creatioSyncedAt ?? null) : null;
    let syncedKeyId = decoded.ok ? (decoded.tags.creatioSyncedKeyId ?? null) : null;
    if (decoded.ok) {
      const now = deps.now().toISOString();
      const change: SiteTagsChange = {
        // The credential that just worked becomes the site's (a failed run never replaces it).
        creatioCredential: input.creatioCredentialSecretName,
        mailServerId: input.mailServerId,
      };
      const check = decoded.tags.creatioCheck;
      if (check?.state !== "ok" || check.clientId !== input.appId) change.creatioCheck = { at: now, state: "ok", clientId: input.appId };
      if (actions.length > 0 || decoded.tags.creatioSyncedKeyId !== keyId || !decoded.tags.creatioSyncedExpiresOn) {
        syncedAt = actions.length > 0 || !syncedAt ? now : syncedAt;
        syncedKeyId = keyId ?? null;
        Object.assign(change, {
          creatioSyncedAt: syncedAt,
          creatioSyncedKeyId: syncedKeyId,
          // The day this Creatio's mail stops unless a rotation delivers a newer secret.
          creatioSyncedExpiresOn: clientSecret.properties.expiresOn?.toISOString() ?? null,
        });
      }
      if (input.recordOnSuccess) {
        change.lastRun = { ...input.recordOnSuccess.lastRun, at: now };
        if (input.recordOnSuccess.mailReadiness) change.mailReadiness = input.recordOnSuccess.mailReadiness;
      }
      const tags = mergeSiteTags(clientSecret.properties.tags, change);
      if (JSON.stringify(tags) !== JSON.stringify(clientSecret.properties.tags)) {
        // Tags of the same version: updateSecretProperties never creates a new version.
        await deps.secrets.updateSecretProperties(input.secretName, clientSecret.properties.version!, { tags });
      }
    }
    return { mailServerId: input.mailServerId, oauthApplicationId: row.Id, odataRoot, actions, syncedAt, syncedKeyId, recordedOutcome: decoded.ok && input.recordOnSuccess !== undefined };
  } catch (error) {
    throw redactError(error, secretValue, ...credentialSecrets);
  }
}

export const configureCreatioActivity = {
  name: CONFIGURE_CREATIO,
  handler: (input: unknown) => configureCreatio(input as ConfigureCreatioInput),
};
