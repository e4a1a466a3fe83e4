import { graphCall, GraphCallError } from "../clients/graph";
import { secretNameFor } from "../domain/site";
import { decodeSiteTags } from "../domain/tags";
import type { ActivityDeps } from "./shared";

/**
 * What the password-removal steps of a rotation share: the app's passwords, and the keyIds that
 * must never be removed, read fresh from Key Vault at removal time rather than trusted from the
 * orchestration's memory (DESIGN rule 6: never remove the password Creatio currently holds).
 */

export interface AppPassword {
  keyId: string;
  displayName?: string | null;
  endDateTime?: string | null;
}

export async function appPasswords(deps: Pick<ActivityDeps, "graph">, appObjectId: string): Promise<AppPassword[]> {
  const appPath = `/applications/${appObjectId}`;
  const app = await graphCall(`GET ${appPath}`, () =>
    deps.graph.api(`${appPath}?$select=id,passwordCredentials`).get() as Promise<{ passwordCredentials?: AppPassword[] }>,
  );
  return app.passwordCredentials ?? [];
}

/** The current keyId (Key Vault's value) and the one Creatio holds: never removed. */
export async function protectedKeyIds(deps: Pick<ActivityDeps, "secrets">, host: string): Promise<Set<string>> {
  const secretName = secretNameFor(host);
  const { properties } = await deps.secrets.getSecret(secretName);
  const decoded = decodeSiteTags(properties.tags);
  // Without readable tags nothing can be proved unused: refuse rather than guess.
  if (!decoded.ok) throw new Error(`The tags of ${secretName} are not a site's tags (${decoded.problem}); no password is removed`);
  const keep = new Set([decoded.tags.keyId]);
  if (decoded.tags.creatioSyncedKeyId) keep.add(decoded.tags.creatioSyncedKeyId);
  return keep;
}

/** `POST /applications/{id}/removePassword`; true when removed, false when it was already gone (400/404). */
export async function removePassword(deps: Pick<ActivityDeps, "graph">, appObjectId: string, keyId: string): Promise<boolean> {
  const path = `/applications/${appObjectId}/removePassword`;
  try {
    await graphCall(`POST ${path}`, () => deps.graph.api(path).post({ keyId }));
    return true;
  } catch (error) {
    // Graph answers 400 for a keyId the app no longer has: an earlier attempt already removed it.
    if (error instanceof GraphCallError && (error.status === 400 || error.status === 404)) return false;
    throw error;
  }
}
