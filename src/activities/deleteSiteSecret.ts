import { z } from "zod";
import type { DeletedSecret } from "@azure/keyvault-secrets";
import { currentSecretProperties, isSecretNotFound } from "../clients/keyVault";
import { ourSecret } from "../domain/managedSecret";
import { offboardedMark } from "../domain/offboarding";
import { secretNameFor } from "../domain/site";
import { mergeSiteTags } from "../domain/tags";
import { activityFields, defaultDeps, type ActivityDeps } from "./shared";

/**
 * Offboarding, step 4, last (docs/architecture.md, "Offboarding"): mark the site offboarded in the
 * tags of its secret's current version (`lastRun` = offboard, succeeded, this instance), then
 * soft-delete the secret (`beginDeleteSecret`: every version, recoverable for the vault's retention;
 * learn.microsoft.com/azure/key-vault/general/soft-delete-overview). In that order, because a
 * deleted secret's tags stay readable (Get Deleted Secret) but can no longer be changed: status
 * reads the mark there. The Creatio credential secret is the administrator's and is not touched.
 * Idempotent: a secret already deleted is reported as such; one marked but not yet deleted (a
 * retry) is deleted. The value is never read into the result: getSecret is Key Vault's only read
 * of one secret's current version, and only its properties are kept.
 */
export const DELETE_SITE_SECRET = "deleteSiteSecret";

export const deleteSiteSecretInput = activityFields.pick({ host: true, instanceId: true });
export type DeleteSiteSecretInput = z.input<typeof deleteSiteSecretInput>;

export interface DeleteSiteSecretResult {
  secretName: string;
  outcome: "deleted" | "already-deleted" | "absent" | "not-ours";
  /** When the site was marked offboarded (this run, or the run that deleted it). */
  offboardedAt: string | null;
  deletedOn: string | null;
  /** When Key Vault purges it for good: the end of the window for `az keyvault secret recover`. */
  scheduledPurgeDate: string | null;
}

export async function deleteSiteSecret(rawInput: DeleteSiteSecretInput, deps: ActivityDeps = defaultDeps(rawInput)): Promise<DeleteSiteSecretResult> {
  const input = deleteSiteSecretInput.parse(rawInput);
  const secretName = secretNameFor(input.host);
  const properties = await currentSecretProperties(deps.secrets, secretName);
  if (!properties) {
    try {
      const deleted = await deps.secrets.getDeletedSecret(secretName);
      return { ...deletedFacts(secretName, deleted), outcome: "already-deleted" };
    } catch (error) {
      if (!isSecretNotFound(error)) throw error;
      return { secretName, outcome: "absent", offboardedAt: null, deletedOn: null, scheduledPurgeDate: null };
    }
  }
  const ours = ourSecret({ ...properties, name: secretName });
  if (!ours?.tags || ours.problem) {
    // A secret under the site's name that is not a managed site's: not ours to delete.
    return { secretName, outcome: "not-ours", offboardedAt: null, deletedOn: null, scheduledPurgeDate: null };
  }
  if (!offboardedMark(ours.tags)) {
    const tags = mergeSiteTags(properties.tags, { lastRun: { kind: "offboard", outcome: "succeeded", at: deps.now().toISOString(), instanceId: input.instanceId } });
    await deps.secrets.updateSecretProperties(secretName, properties.version!, { tags });
  }
  const poller = await deps.secrets.beginDeleteSecret(secretName);
  const deleted = await poller.pollUntilDone();
  return { ...deletedFacts(secretName, deleted), outcome: "deleted" };
}

function deletedFacts(secretName: string, deleted: DeletedSecret): Omit<DeleteSiteSecretResult, "outcome"> {
  const ours = ourSecret({ ...deleted.properties, name: secretName });
  return {
    secretName,
    offboardedAt: offboardedMark(ours?.tags)?.at ?? null,
    deletedOn: deleted.properties.deletedOn?.toISOString() ?? null,
    scheduledPurgeDate: deleted.properties.scheduledPurgeDate?.toISOString() ?? null,
  };
}

export const deleteSiteSecretActivity = {
  name: DELETE_SITE_SECRET,
  handler: (input: unknown) => deleteSiteSecret(input as DeleteSiteSecretInput),
};
