import { lastSweepSchema, type LastSweep } from "../api/schemas";
import { isSecretNotFound, type SecretStore } from "../clients/keyVault";

/**
 * Where the rotation sweep leaves its outcome for GET /api/rotation-plan (issue 11 part 4;
 * docs/architecture.md, "The sweep's record"): one Key Vault secret beside the sites' secrets.
 * Key Vault is already the app's only store and the app's identity may already write it, so this
 * needs no new dependency, no storage connection and no new role, and works the same under the
 * local host and in Azure. The value is a non-secret JSON summary (counts and a time); every sweep
 * writes a new version. Its name has no `creatio-o365-` prefix, so no site's secret name can be
 * it, and its contentType is not the sites' one, so `ourSecret` (src/domain/managedSecret.ts), the
 * list, the sweep and the Key Vault event handler never take it for a site.
 */
export const SWEEP_RECORD_SECRET = "rotation-sweep-last-run";
export const SWEEP_RECORD_CONTENT_TYPE = "application/json; creatio-o365-oauth sweep-summary";

export async function storeSweepRecord(secrets: Pick<SecretStore, "setSecret">, record: LastSweep): Promise<void> {
  await secrets.setSecret(SWEEP_RECORD_SECRET, JSON.stringify(lastSweepSchema.parse(record)), {
    contentType: SWEEP_RECORD_CONTENT_TYPE,
    tags: { purpose: "creatio-o365-oauth rotation sweep summary (not a secret)" },
  });
}

/** The last sweep's record; null before the first sweep or when the value is not one (edited by hand). */
export async function readSweepRecord(secrets: Pick<SecretStore, "getSecret">): Promise<LastSweep | null> {
  let value: string | undefined;
  let contentType: string | undefined;
  try {
    const secret = await secrets.getSecret(SWEEP_RECORD_SECRET);
    value = secret.value;
    contentType = secret.properties.contentType;
  } catch (error) {
    if (isSecretNotFound(error)) return null;
    throw error;
  }
  if (contentType !== SWEEP_RECORD_CONTENT_TYPE || !value) return null;
  try {
    const parsed = lastSweepSchema.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
