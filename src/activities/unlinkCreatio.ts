import { z } from "zod";
import { CreatioError, CreatioLoginRefusedError, EMPTY_GUID, type OAuthApplicationRow } from "../clients/creatio";
import { FinalError } from "../domain/failure";
import { activityFields, creatioClientFor, defaultDeps, redactError, type ActivityDeps } from "./shared";

/**
 * Offboarding, step 1 (docs/architecture.md, "Offboarding"): undo manual step 10 in Creatio. The
 * Office 365 `MailServer` row's OAuthApplicationId is cleared (the empty guid, as an unset lookup
 * reads in OData) and then our `OAuthApplications` row is deleted, but only while that row still
 * holds this site's client id: a mail server an administrator has since linked to another
 * application is left exactly as it is, and the result says so. Unlinking first, because the mail
 * server's reference keeps the row from being deleted. This disconnects every user's Office 365
 * mailbox in that Creatio (README, "Offboarding").
 *
 * The Creatio credential is read from Key Vault as in configureCreatio and stays there (it is the
 * administrator's). Idempotent: a mail server no longer linked and a row already gone are
 * "nothing to do"; a row with our client id left behind by an earlier attempt (unlinked, not yet
 * deleted) is found by ClientId and deleted. Creatio down: thrown, the step retries, and a later
 * DELETE resumes here. A site whose tags name no Creatio settings (an onboarding that never
 * reached Creatio) is skipped.
 */
export const UNLINK_CREATIO = "unlinkCreatio";

export const unlinkCreatioInput = activityFields.pick({ host: true }).extend({
  appId: activityFields.shape.appId.optional(),
  creatioCredentialSecretName: activityFields.shape.creatioCredentialSecretName.optional(),
  mailServerId: activityFields.shape.mailServerId.optional(),
});
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type UnlinkCreatioInput = z.input<typeof unlinkCreatioInput>;

export interface UnlinkCreatioResult {
  /** What this run changed. */
  actions: ("unlinked-mail-server" | "deleted-oauth-application")[];
  /** Client id of the application the mail server is linked to when it is not ours (left alone); null otherwise. */
  linkedToOtherClientId: string | null;
  /** What was left and why, in words; null when Creatio holds nothing of this site any more. */
  note: string | null;
}

export async function unlinkCreatio(rawInput: UnlinkCreatioInput, deps: ActivityDeps = defaultDeps(rawInput)): Promise<UnlinkCreatioResult> {
  const input = unlinkCreatioInput.parse(rawInput);
  if (!input.appId || !input.creatioCredentialSecretName || !input.mailServerId) {
    return { actions: [], linkedToOtherClientId: null, note: "The site's tags name no Creatio settings of this product: nothing was changed in Creatio." };
  }
  const { appId, mailServerId } = input;
  // Both go into OData paths and a $filter: a hand-edited tag must not change the query.
  if (!GUID.test(appId) || !GUID.test(mailServerId)) throw new FinalError(`The site's tags name an appId or mailServerId that is not a GUID; nothing was changed in Creatio.`);
  const credentialSecrets: string[] = [];
  try {
    const { creatio, secretParts } = await creatioClientFor(deps, input.host, input.creatioCredentialSecretName);
    credentialSecrets.push(...secretParts);
    try {
      await creatio.odataRoot();
    } catch (error) {
      if (error instanceof CreatioLoginRefusedError) {
        throw new FinalError(`Creatio refused the credential in Key Vault secret ${input.creatioCredentialSecretName}: ${error.message}. Store the right credential, then DELETE again.`);
      }
      throw error;
    }
    const actions: UnlinkCreatioResult["actions"] = [];
    const link = await creatio.mailServerLink(mailServerId);
    const linked = link.application;
    if (linked && linked.ClientId?.toLowerCase() !== appId.toLowerCase()) {
      // Linked to a row that is not ours (another client id, or none): not ours to undo.
      return {
        actions,
        linkedToOtherClientId: linked.ClientId || null,
        note:
          `Creatio's mail server ${mailServerId} is linked to the application with client id ${linked.ClientId || "(none)"}, not this site's ${appId}: ` +
          `the mail server and that OAuth application were left as they are.`,
      };
    }
    let note: string | null = null;
    if (!link.mailServer) note = `Creatio has no mail server ${mailServerId}: nothing to unlink.`;
    const linkedId = link.mailServer?.OAuthApplicationId;
    if (link.mailServer && linkedId && linkedId !== EMPTY_GUID) {
      // Linked to our row, or to a row that no longer exists: clear the link.
      await creatio.patch(`/MailServer(${mailServerId})`, { OAuthApplicationId: EMPTY_GUID });
      actions.push("unlinked-mail-server");
    }
    // Our rows: the one the mail server pointed at, and any other holding our client id (an insert
    // whose link was lost, or this step's own earlier attempt).
    const found = await creatio.get<{ value: OAuthApplicationRow[] }>(`/OAuthApplications?$filter=ClientId eq '${appId}'&$select=Id,ClientId`);
    for (const row of found.body?.value ?? []) {
      if (row.ClientId?.toLowerCase() !== appId.toLowerCase()) continue;
      try {
        await creatio.delete(`/OAuthApplications(${row.Id})`);
        actions.push("deleted-oauth-application");
      } catch (error) {
        // Already gone (Creatio removes an OAuth application no mail server uses any more, or a retry): done.
        if (!(error instanceof CreatioError && error.status === 404)) throw error;
      }
    }
    return { actions: [...new Set(actions)], linkedToOtherClientId: null, note };
  } catch (error) {
    throw redactError(error, ...credentialSecrets);
  }
}

export const unlinkCreatioActivity = {
  name: UNLINK_CREATIO,
  handler: (input: unknown) => unlinkCreatio(input as UnlinkCreatioInput),
};
