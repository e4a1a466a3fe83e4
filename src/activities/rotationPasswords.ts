import type { PasswordCredential } from "@microsoft/microsoft-graph-types";
import type { SecretProperties } from "@azure/keyvault-secrets";
import { graphCall, GraphCallError, type Selected } from "../clients/graph";
import { secretNameFor } from "../domain/site";
import { decodeSiteTags } from "../domain/tags";
import type { ActivityDeps } from "./shared";

/**
 * What the password-removal steps of a rotation share: the app's passwords, and the keyIds that
 * must never be removed, read fresh from Key Vault at removal time rather than trusted from the
 * orchestration's memory (docs/architecture.md, "Rotation never breaks mail sync": never remove the password Creatio currently holds).
 */

/** A password the app lists: Graph always sets its keyId. */
export type AppPassword = Selected<PasswordCredential, "keyId">;

export async function appPasswords(deps: Pick<ActivityDeps, "graph">, appObjectId: string): Promise<AppPassword[]> {
  const appPath = `/applications/${appObjectId}`;
  const app = await graphCall(`GET ${appPath}`, () =>
    deps.graph.api(`${appPath}?$select=id,passwordCredentials`).get() as Promise<{ passwordCredentials?: AppPassword[] }>,
  );
  return app.passwordCredentials ?? [];
}

/** A password as the removal steps pass it on: a reference (keyId, name), never a value. */
export interface ListedPassword {
  keyId: string;
  displayName: string | null;
}

export const listed = (passwords: AppPassword[]): ListedPassword[] => passwords.map((p) => ({ keyId: p.keyId, displayName: p.displayName ?? null }));

/**
 * The current keyId (Key Vault's value) and the one Creatio holds: never removed. Read from Key
 * Vault by every removal step right before it removes anything, never taken from an earlier step:
 * a failed or concurrent delivery may have changed what Creatio holds since. Also returns the
 * current version's properties, so a step that then records the site's state writes on what it
 * read (one read of the secret per activity).
 */
export async function protectedKeyIds(deps: Pick<ActivityDeps, "secrets">, host: string): Promise<Set<string>> {
  return (await readProtected(deps, host)).keep;
}

export async function readProtected(deps: Pick<ActivityDeps, "secrets">, host: string): Promise<{ keep: Set<string>; secretName: string; properties: SecretProperties }> {
  const secretName = secretNameFor(host);
  const { properties } = await deps.secrets.getSecret(secretName);
  const decoded = decodeSiteTags(properties.tags);
  // Without readable tags nothing can be proved unused: refuse rather than guess.
  if (!decoded.ok) throw new Error(`The tags of ${secretName} are not a site's tags (${decoded.problem}); no password is removed`);
  const keep = new Set([decoded.tags.keyId]);
  if (decoded.tags.creatioSyncedKeyId) keep.add(decoded.tags.creatioSyncedKeyId);
  return { keep, secretName, properties };
}

/**
 * `POST /applications/{id}/removePassword`, verified by reading the app's passwordCredentials back:
 * "removed" only once the keyId is no longer listed. 404, or a 400 for a keyId the app no longer
 * lists, is "already-gone"; any other error is a failure, never taken for success, so an old
 * password cannot stay valid while status says it was removed (docs/architecture.md, "Status tells
 * the truth"). A read that still lists the keyId right after the removal is read again (Entra
 * replicates writes within seconds: "Designing for eventual consistency for Microsoft Entra").
 */
export async function removePassword(deps: Pick<ActivityDeps, "graph" | "sleep">, appObjectId: string, keyId: string): Promise<"removed" | "already-gone"> {
  return (await removePasswordVerified(deps, appObjectId, keyId)).outcome;
}

/**
 * removePassword, and the app's passwords as the verifying read found them (undefined when Graph
 * answered 404 and nothing was read), so a later step can start from that list instead of reading
 * the app again.
 */
export async function removePasswordVerified(
  deps: Pick<ActivityDeps, "graph" | "sleep">,
  appObjectId: string,
  keyId: string,
): Promise<{ outcome: "removed" | "already-gone"; remaining?: AppPassword[] }> {
  const path = `/applications/${appObjectId}/removePassword`;
  try {
    await graphCall(`POST ${path}`, () => deps.graph.api(path).post({ keyId }));
  } catch (error) {
    if (error instanceof GraphCallError && error.status === 404) return { outcome: "already-gone" };
    if (!(error instanceof GraphCallError && error.status === 400)) throw error;
    // A 400 may mean "no such keyId" or a refused request: the app's list says which.
    const remaining = await appPasswords(deps, appObjectId);
    if (remaining.some((p) => p.keyId === keyId)) throw error;
    return { outcome: "already-gone", remaining };
  }
  for (let attempt = 0; ; attempt++) {
    const remaining = await appPasswords(deps, appObjectId);
    if (!remaining.some((p) => p.keyId === keyId)) return { outcome: "removed", remaining };
    if (attempt >= 4) {
      throw new Error(`Graph answered removePassword for keyId ${keyId} of application ${appObjectId}, but the application still lists that password`);
    }
    await deps.sleep(1000 * 2 ** attempt);
  }
}
