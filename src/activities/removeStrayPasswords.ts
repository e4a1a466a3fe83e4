import { z } from "zod";
import { appPasswords, protectedKeyIds, removePassword } from "./rotationPasswords";
import { activityFields, defaultDeps, type ActivityDeps } from "./shared";

/**
 * Rotation step, last clean-up: remove every other password of the site's app, neither the
 * current one nor one still in its grace period (issue 4): passwords of crashed or abandoned
 * attempts and any that an earlier rotation could not remove. The app is this product's own
 * (uniqueName creatio-o365-<host>), so its passwords exist only for Creatio. Never removes the
 * current keyId or the one Creatio holds, read fresh from Key Vault (docs/architecture.md, "Rotation never breaks mail sync"). Idempotent.
 */
export const REMOVE_STRAY_PASSWORDS = "removeStrayPasswords";

export const removeStrayPasswordsInput = activityFields.pick({ host: true, appObjectId: true });
export type RemoveStrayPasswordsInput = z.input<typeof removeStrayPasswordsInput>;

export interface RemoveStrayPasswordsResult {
  removed: { keyId: string; displayName: string | null }[];
  kept: string[];
}

export async function removeStrayPasswords(rawInput: RemoveStrayPasswordsInput, deps: ActivityDeps = defaultDeps()): Promise<RemoveStrayPasswordsResult> {
  const input = removeStrayPasswordsInput.parse(rawInput);
  const keep = await protectedKeyIds(deps, input.host);
  const removed: RemoveStrayPasswordsResult["removed"] = [];
  const kept: string[] = [];
  for (const password of await appPasswords(deps, input.appObjectId)) {
    if (keep.has(password.keyId)) {
      kept.push(password.keyId);
      continue;
    }
    if ((await removePassword(deps, input.appObjectId, password.keyId)) === "removed") removed.push({ keyId: password.keyId, displayName: password.displayName ?? null });
  }
  return { removed, kept };
}

export const removeStrayPasswordsActivity = {
  name: REMOVE_STRAY_PASSWORDS,
  handler: (input: unknown) => removeStrayPasswords(input as RemoveStrayPasswordsInput),
};
