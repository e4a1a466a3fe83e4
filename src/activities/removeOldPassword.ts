import { z } from "zod";
import { appPasswords, protectedKeyIds, removePassword } from "./rotationPasswords";
import { activityFields, defaultDeps, type ActivityDeps } from "./shared";

/**
 * Rotation step: when the grace period has ended, remove the password Creatio used before the
 * rotation, by keyId (`POST /applications/{id}/removePassword`, docs/architecture.md, "Microsoft Graph and Entra ID"). Idempotent: a
 * password already gone is success, and the app's list is read first so a replayed step sends no
 * second removal. Refuses to remove the current keyId or the one Creatio holds (docs/architecture.md, "Rotation never breaks mail sync").
 */
export const REMOVE_OLD_PASSWORD = "removeOldPassword";

export const removeOldPasswordInput = activityFields.pick({ host: true, appObjectId: true, keyId: true });
export type RemoveOldPasswordInput = z.infer<typeof removeOldPasswordInput>;

export interface RemoveOldPasswordResult {
  keyId: string;
  outcome: "removed" | "already-gone" | "kept-in-use";
}

export async function removeOldPassword(rawInput: RemoveOldPasswordInput, deps: ActivityDeps = defaultDeps()): Promise<RemoveOldPasswordResult> {
  const input = removeOldPasswordInput.parse(rawInput);
  const keep = await protectedKeyIds(deps, input.host);
  if (keep.has(input.keyId)) return { keyId: input.keyId, outcome: "kept-in-use" };
  const passwords = await appPasswords(deps, input.appObjectId);
  if (!passwords.some((p) => p.keyId === input.keyId)) return { keyId: input.keyId, outcome: "already-gone" };
  return { keyId: input.keyId, outcome: await removePassword(deps, input.appObjectId, input.keyId) };
}

export const removeOldPasswordActivity = {
  name: REMOVE_OLD_PASSWORD,
  handler: (input: unknown) => removeOldPassword(input as RemoveOldPasswordInput),
};
