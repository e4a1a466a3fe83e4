import { z } from "zod";
import { CreatioError, parseCreatioCredential } from "../clients/creatio";
import { isSecretNotFound } from "../clients/keyVault";
import { defaultIdentityServerUrlFor } from "../domain/site";
import { decodeSiteTags, mergeSiteTags } from "../domain/tags";
import { defaultDeps, redactError, type ActivityDeps } from "./shared";

/**
 * Step 5 (manual step 10): what Creatio's own mail settings page writes for OAuth 2.0 (DESIGN
 * section 4): an `OAuthApplications` row (Name = AppClassName = Office365OAuthAuthenticator,
 * ClientClassName = Office365OAuthClient, ClientId, SecretKey) linked from the Office 365
 * `MailServer` row's OAuthApplicationId. The client secret and the Creatio credential are read
 * from Key Vault here (DESIGN rule 1). Reused by rotation.
 */
export const CONFIGURE_CREATIO = "configureCreatio";

export const configureCreatioInput = z.object({
  host: z.string().min(1),
  secretName: z.string().min(1),
  /** The version issued by the previous step; Creatio gets exactly that value. Latest when omitted. */
  secretVersion: z.string().min(1).optional(),
  creatioCredentialSecretName: z.string().min(1),
  mailServerId: z.string().min(1),
  appId: z.string().min(1),
});
export type ConfigureCreatioInput = z.infer<typeof configureCreatioInput>;

export interface ConfigureCreatioResult {
  mailServerId: string;
  oauthApplicationId: string;
  odataRoot: string;
  /** What was written: nothing when Creatio already held this client id and keyId. */
  actions: ("inserted-oauth-application" | "updated-oauth-application" | "linked-mail-server")[];
  syncedAt: string | null;
  syncedKeyId: string | null;
}

export const OAUTH_APPLICATION_NAME = "Office365OAuthAuthenticator";
export const OAUTH_CLIENT_CLASS_NAME = "Office365OAuthClient";
const EMPTY_GUID = "00000000-0000-0000-0000-000000000000";

interface MailServerRow {
  Id: string;
  Name?: string;
  OAuthApplicationId?: string | null;
}
interface OAuthApplicationRow {
  Id: string;
  Name?: string;
  AppClassName?: string;
  ClientClassName?: string;
  ClientId?: string;
}

export async function configureCreatio(rawInput: ConfigureCreatioInput, deps: ActivityDeps = defaultDeps()): Promise<ConfigureCreatioResult> {
  const input = configureCreatioInput.parse(rawInput);
  const clientSecret = await deps.secrets.getSecret(input.secretName, input.secretVersion ? { version: input.secretVersion } : undefined);
  const secretValue = clientSecret.value;
  // The Creatio credential's secret parts, kept out of error messages too (Creatio error bodies are quoted in them).
  const credentialSecrets: string[] = [];
  try {
    if (!secretValue) throw new Error(`Key Vault secret ${input.secretName} has no value`);
    const decoded = decodeSiteTags(clientSecret.properties.tags);
    const keyId = decoded.ok ? decoded.tags.keyId : undefined;

    let credentialValue: string | undefined;
    try {
      credentialValue = (await deps.secrets.getSecret(input.creatioCredentialSecretName)).value;
    } catch (error) {
      if (isSecretNotFound(error)) throw new Error(`The Creatio credential secret ${input.creatioCredentialSecretName} does not exist in Key Vault`);
      throw error;
    }
    if (credentialValue) credentialSecrets.push(credentialValue);
    const credential = parseCreatioCredential(input.creatioCredentialSecretName, credentialValue);
    credentialSecrets.push("password" in credential ? credential.password : credential.clientSecret);
    const creatio = deps.creatio({ origin: `https://${input.host}`, credential, defaultIdentityServerUrl: defaultIdentityServerUrlFor(input.host) });
    const odataRoot = await creatio.odataRoot();

    const mailServer = await creatio.get<MailServerRow>(`/MailServer(${input.mailServerId})?$select=Id,Name,OAuthApplicationId`);
    if (!mailServer.body) {
      throw new CreatioError(`GET ${odataRoot}/MailServer(${input.mailServerId})`, 404, "no such mail server; pass the id of the site's Office 365 MailServer row as mailServerId");
    }
    const desired = { Name: OAUTH_APPLICATION_NAME, AppClassName: OAUTH_APPLICATION_NAME, ClientClassName: OAUTH_CLIENT_CLASS_NAME, ClientId: input.appId };
    const actions: ConfigureCreatioResult["actions"] = [];

    // The row the mail server points at, if it still exists.
    let row: OAuthApplicationRow | undefined;
    const linkedId = mailServer.body.OAuthApplicationId;
    if (linkedId && linkedId !== EMPTY_GUID) {
      row = (await creatio.get<OAuthApplicationRow>(`/OAuthApplications(${linkedId})?$select=Id,Name,AppClassName,ClientClassName,ClientId`)).body;
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
    if (linkNeeded || mailServer.body.OAuthApplicationId !== row.Id) {
      await creatio.patch(`/MailServer(${input.mailServerId})`, { OAuthApplicationId: row.Id });
      actions.push("linked-mail-server");
    }

    let syncedAt = decoded.ok ? (decoded.tags.creatioSyncedAt ?? null) : null;
    let syncedKeyId = decoded.ok ? (decoded.tags.creatioSyncedKeyId ?? null) : null;
    if (actions.length > 0 && decoded.ok) {
      syncedAt = deps.now().toISOString();
      syncedKeyId = keyId ?? null;
      // Tags of the same version: updateSecretProperties never creates a new version.
      await deps.secrets.updateSecretProperties(input.secretName, clientSecret.properties.version!, {
        tags: mergeSiteTags(clientSecret.properties.tags, { creatioSyncedAt: syncedAt, creatioSyncedKeyId: syncedKeyId }),
      });
    }
    return { mailServerId: input.mailServerId, oauthApplicationId: row.Id, odataRoot, actions, syncedAt, syncedKeyId };
  } catch (error) {
    throw redactError(error, secretValue, ...credentialSecrets);
  }
}

export const configureCreatioActivity = {
  name: CONFIGURE_CREATIO,
  input: configureCreatioInput,
  handler: (input: unknown) => configureCreatio(input as ConfigureCreatioInput),
};
