// Key Vault secrets REST shapes (api-version 7.x / 2025-07-01): SecretBundle, SecretItem,
// DeletedSecretBundle, DeletedSecretItem, KeyVaultError. Field names as in the REST reference
// ("Get Secret", "Get Secrets", "Delete Secret", "Get Deleted Secrets") and as
// @azure/keyvault-secrets' generated deserializers read them (models/models.js).
import type { DeletedInfo, SecretEntry, SecretVersion } from "./store";

export interface KeyVaultErrorBody {
  error: { code: string; message: string; innererror?: { code: string } };
}

export function kvError(code: string, message: string, innerCode?: string): KeyVaultErrorBody {
  return { error: { code, message, ...(innerCode ? { innererror: { code: innerCode } } : {}) } };
}

/** `https://localhost:<port>/secrets/{name}/{version}`: the SDK parses name and version out of it. */
export function secretId(vaultUrl: string, entry: SecretEntry, version?: SecretVersion): string {
  return `${vaultUrl}/secrets/${entry.name}${version ? `/${version.version}` : ""}`;
}

const optional = <T>(key: string, value: T | undefined) => (value === undefined ? {} : { [key]: value });

/** SecretBundle: value included unless `withValue` is false (recover answers without it). */
export function secretBundle(vaultUrl: string, entry: SecretEntry, version: SecretVersion, withValue = true) {
  return {
    ...(withValue ? { value: version.value } : {}),
    id: secretId(vaultUrl, entry, version),
    ...optional("contentType", version.contentType),
    attributes: { ...version.attributes },
    ...optional("tags", version.tags),
  };
}

/** SecretItem (list and list versions): never a value. `managed` appears only for certificate-backed secrets, so never here. */
export function secretItem(vaultUrl: string, entry: SecretEntry, version: SecretVersion, withVersionInId: boolean) {
  return {
    id: secretId(vaultUrl, entry, withVersionInId ? version : undefined),
    ...optional("contentType", version.contentType),
    attributes: { ...version.attributes },
    ...optional("tags", version.tags),
  };
}

function deletedFields(vaultUrl: string, entry: SecretEntry, deleted: DeletedInfo) {
  return {
    recoveryId: `${vaultUrl}/deletedsecrets/${entry.name}`,
    scheduledPurgeDate: deleted.scheduledPurgeDate,
    deletedDate: deleted.deletedDate,
  };
}

/** DeletedSecretBundle (delete, get deleted): the latest version's properties, no value. */
export function deletedSecretBundle(vaultUrl: string, entry: SecretEntry, latest: SecretVersion, deleted: DeletedInfo) {
  return { ...deletedFields(vaultUrl, entry, deleted), ...secretBundle(vaultUrl, entry, latest, false) };
}

/** DeletedSecretItem (list deleted): id without version. */
export function deletedSecretItem(vaultUrl: string, entry: SecretEntry, latest: SecretVersion, deleted: DeletedInfo) {
  return { ...deletedFields(vaultUrl, entry, deleted), ...secretItem(vaultUrl, entry, latest, false) };
}
