import { z } from "zod";
import { lastRunSchema, mergeSiteTags, type SiteTagsChange } from "../domain/tags";
import { appPasswords, readProtected, removePassword, type ListedPassword } from "./rotationPasswords";
import { activityFields, defaultDeps, type ActivityDeps } from "./shared";

/**
 * Rotation step, last clean-up: remove every other password of the site's app, neither the
 * current one nor one still in its grace period (issue 4): passwords of crashed or abandoned
 * attempts and any that an earlier rotation could not remove. The app is this product's own
 * (uniqueName creatio-o365-<host>), so its passwords exist only for Creatio. Never removes the
 * current keyId or the one Creatio holds, read fresh from Key Vault right before removing
 * (docs/architecture.md, "Rotation never breaks mail sync"). Idempotent.
 *
 * Fewer calls (issue 12, docs/architecture.md, "Calls per rotation"):
 * - `passwords`: the app's list as removeOldPassword's verifying read found it moments ago, in the
 *   same run. A password that appeared since is left for the next rotation; one that went since is
 *   "already gone" to removePassword. Without it the app is read here.
 * - `finish`: the run's last record (rotation state `idle`, the last run, previousKeyId) is written
 *   on the Key Vault version this step read for the protected keyIds, after every removal
 *   succeeded, instead of by a separate recordSiteState that reads the secret again.
 */
export const REMOVE_STRAY_PASSWORDS = "removeStrayPasswords";

export const removeStrayPasswordsInput = activityFields.pick({ host: true, appObjectId: true, tenantId: true }).extend({
  passwords: z.array(z.object({ keyId: z.string().min(1), displayName: z.string().nullable() })).optional(),
  finish: z
    .object({
      lastRun: lastRunSchema.omit({ at: true }),
      /** Sets previousKeyId (null removes it); left as is when omitted. */
      previousKeyId: z.string().min(1).nullable().optional(),
    })
    .optional(),
});
export type RemoveStrayPasswordsInput = z.input<typeof removeStrayPasswordsInput>;

export interface RemoveStrayPasswordsResult {
  removed: { keyId: string; displayName: string | null }[];
  kept: string[];
  /** The site's state was recorded (`finish`): rotation state idle, at this time. */
  recordedAt?: string;
}

export async function removeStrayPasswords(rawInput: RemoveStrayPasswordsInput, deps: ActivityDeps = defaultDeps(rawInput)): Promise<RemoveStrayPasswordsResult> {
  const input = removeStrayPasswordsInput.parse(rawInput);
  const { keep, secretName, properties } = await readProtected(deps, input.host);
  const passwords: ListedPassword[] = input.passwords ?? (await appPasswords(deps, input.appObjectId)).map((p) => ({ keyId: p.keyId, displayName: p.displayName ?? null }));
  const removed: RemoveStrayPasswordsResult["removed"] = [];
  const kept: string[] = [];
  for (const password of passwords) {
    if (keep.has(password.keyId)) {
      kept.push(password.keyId);
      continue;
    }
    if ((await removePassword(deps, input.appObjectId, password.keyId)) === "removed") removed.push({ keyId: password.keyId, displayName: password.displayName });
  }
  if (!input.finish) return { removed, kept };
  const recordedAt = deps.now().toISOString();
  const change: SiteTagsChange = { rotationState: "idle", rotationUpdatedAt: recordedAt, lastRun: { ...input.finish.lastRun, at: recordedAt } };
  if (input.finish.previousKeyId !== undefined) change.previousKeyId = input.finish.previousKeyId;
  // Tags of the version just read: updateSecretProperties never creates a version.
  await deps.secrets.updateSecretProperties(secretName, properties.version!, { tags: mergeSiteTags(properties.tags, change) });
  return { removed, kept, recordedAt };
}

export const removeStrayPasswordsActivity = {
  name: REMOVE_STRAY_PASSWORDS,
  handler: (input: unknown) => removeStrayPasswords(input as RemoveStrayPasswordsInput),
};
