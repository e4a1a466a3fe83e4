import type { SiteTags } from "./tags";

/**
 * What an offboarded site is and how to bring it back (docs/architecture.md, "Offboarding"). The
 * mark is the site's `lastRun` tag with kind `offboard`: offboardTenant's Key Vault step writes it
 * (outcome succeeded) just before it soft-deletes the secret, so the deleted secret's tags, which
 * Key Vault keeps readable (Get Deleted Secret, learn.microsoft.com/rest/api/keyvault/secrets/get-deleted-secret),
 * still say when and by which run; a failed offboarding writes it with outcome failed. No new tag.
 */

/** Entra keeps a deleted application restorable for 30 days (learn.microsoft.com/graph/api/directory-deleteditems-restore). */
export const ENTRA_RESTORE_DAYS = 30;

/** When the site was offboarded, from its tags; undefined when its last run was not a finished offboarding. */
export function offboardedMark(tags: SiteTags | undefined): { at: string; instanceId?: string } | undefined {
  const run = tags?.lastRun;
  if (run?.kind !== "offboard" || run.outcome !== "succeeded") return undefined;
  return { at: run.at, ...(run.instanceId ? { instanceId: run.instanceId } : {}) };
}

/** An offboarding was asked for and has not been undone by an onboarding since (finished or failed): the sweep leaves the site alone. */
export function offboardingRequested(tags: SiteTags | undefined): boolean {
  return tags?.lastRun?.kind === "offboard";
}

export interface RestoreFacts {
  host: string;
  secretName: string;
  /** The vault's name (first label of its host), for the az command; `<vault>` when unknown. */
  vaultName?: string;
  appObjectId?: string | null;
  offboardedAt: string;
  /** When Key Vault purges the deleted secret (end of the vault's retention). */
  secretPurgeOn?: string | null;
}

/** Until when Entra can restore the deleted app. */
export function applicationRestorableUntil(offboardedAt: string): string | null {
  const t = new Date(offboardedAt).getTime();
  return Number.isNaN(t) ? null : new Date(t + ENTRA_RESTORE_DAYS * 86_400_000).toISOString();
}

/** The restore procedure in words, with the dates that bound it. */
export function restoreAdvice(facts: RestoreFacts): string {
  const appUntil = applicationRestorableUntil(facts.offboardedAt);
  const app = facts.appObjectId ? `POST https://graph.microsoft.com/v1.0/directory/deletedItems/${facts.appObjectId}/restore` : "Entra admin center > App registrations > Deleted applications > Restore";
  return (
    `To restore: (1) recover the Key Vault secret${facts.secretPurgeOn ? ` before ${facts.secretPurgeOn}` : " within the vault's retention"}: ` +
    `az keyvault secret recover --vault-name ${facts.vaultName ?? "<vault>"} --name ${facts.secretName}; ` +
    `(2) restore the app registration in Entra${appUntil ? ` before ${appUntil}` : " within 30 days"}: ${app}; ` +
    `(3) POST /api/tenants again with the site's creatioUrl (https://${facts.host}) and creatioCredentialSecretName: it links Creatio and the EWS allow list again. ` +
    `POST /api/tenants alone also works: it recovers the secret and registers a new app if the old one is gone.`
  );
}
