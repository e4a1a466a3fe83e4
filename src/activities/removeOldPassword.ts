import { z } from "zod";
import { listed, protectedKeyIds, removePasswordVerified, type ListedPassword } from "./rotationPasswords";
import { activityFields, defaultDeps, type ActivityDeps } from "./shared";

/**
 * Rotation step: when the grace period has ended, remove the password Creatio used before the
 * rotation, by keyId (`POST /applications/{id}/removePassword`, docs/architecture.md, "Microsoft Graph and Entra ID").
 * Refuses to remove the current keyId or the one Creatio holds, read fresh from Key Vault right
 * before the removal (docs/architecture.md, "Rotation never breaks mail sync").
 *
 * Idempotent without reading the app first (issue 12): a replayed step sends the removal again,
 * Graph refuses it (400, no such keyId, or 404) and the app's list, read to tell that refusal from
 * another, says "already-gone". The removal is verified by reading the app back; that list, what
 * the app holds after the removal, is returned for removeStrayPasswords so it need not read the app
 * again. Three calls in all: the Key Vault secret, the POST, the verifying GET.
 */
export const REMOVE_OLD_PASSWORD = "removeOldPassword";

export const removeOldPasswordInput = activityFields.pick({ host: true, appObjectId: true, keyId: true, tenantId: true });
export type RemoveOldPasswordInput = z.infer<typeof removeOldPasswordInput>;

export interface RemoveOldPasswordResult {
  keyId: string;
  outcome: "removed" | "already-gone" | "kept-in-use";
  /** The app's passwords as read after the removal (keyIds and names only); absent when not read. */
  remaining?: ListedPassword[];
}

export async function removeOldPassword(rawInput: RemoveOldPasswordInput, deps: ActivityDeps = defaultDeps(rawInput)): Promise<RemoveOldPasswordResult> {
  const input = removeOldPasswordInput.parse(rawInput);
  const keep = await protectedKeyIds(deps, input.host);
  if (keep.has(input.keyId)) return { keyId: input.keyId, outcome: "kept-in-use" };
  const { outcome, remaining } = await removePasswordVerified(deps, input.appObjectId, input.keyId);
  return { keyId: input.keyId, outcome, ...(remaining ? { remaining: listed(remaining) } : {}) };
}

export const removeOldPasswordActivity = {
  name: REMOVE_OLD_PASSWORD,
  handler: (input: unknown) => removeOldPassword(input as RemoveOldPasswordInput),
};
