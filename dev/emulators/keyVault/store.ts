// In-memory secrets of the Key Vault emulator and the rules Key Vault applies to them: names are
// case-insensitive, every set makes a new version, soft delete reserves the name until purge or
// recover. Wire shapes live in ./wire.ts; HTTP in ../keyVault.ts.
import { randomUUID } from "node:crypto";

/** Secret attributes in Key Vault's wire form (dates in Unix seconds). */
export interface SecretAttributes {
  enabled: boolean;
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
  /** Soft delete with purge protection off: what a new vault has had since 2020 (90 days retention). */
  recoveryLevel: string;
  recoverableDays: number;
}

export interface SecretVersion {
  version: string;
  value: string;
  contentType?: string;
  attributes: SecretAttributes;
  tags?: Record<string, string>;
  /** When the version was written (ms): replication lag is measured from it. */
  createdAtMs: number;
}

export interface DeletedInfo {
  deletedDate: number;
  scheduledPurgeDate: number;
}

export interface SecretEntry {
  /** The name as first written: Key Vault keeps the original casing in ids. */
  name: string;
  /** Oldest first. */
  versions: SecretVersion[];
  deleted?: DeletedInfo;
}

export interface SeedSecret {
  name: string;
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  expiresOn?: Date;
}

export const RECOVERABLE_DAYS = 90;
const RECOVERY_LEVEL = "Recoverable+Purgeable";

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Version ids are 32 lower-case hex digits in Key Vault. */
export const newVersionId = () => randomUUID().replace(/-/g, "");

export class SecretStore {
  private readonly entries = new Map<string, SecretEntry>();
  /** Names purged at (ms): Key Vault answers 409 ObjectIsBeingDeleted for a short while after a purge. */
  private readonly purgedAtMs = new Map<string, number>();

  static key(name: string): string {
    return name.toLowerCase();
  }

  get(name: string): SecretEntry | undefined {
    return this.entries.get(SecretStore.key(name));
  }

  all(): SecretEntry[] {
    return [...this.entries.values()];
  }

  purgedAt(name: string): number | undefined {
    return this.purgedAtMs.get(SecretStore.key(name));
  }

  clear(): void {
    this.entries.clear();
    this.purgedAtMs.clear();
  }

  addVersion(
    name: string,
    input: { value: string; contentType?: string; tags?: Record<string, string>; enabled?: boolean; nbf?: number; exp?: number },
  ): { entry: SecretEntry; version: SecretVersion } {
    const key = SecretStore.key(name);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { name, versions: [] };
      this.entries.set(key, entry);
      this.purgedAtMs.delete(key);
    }
    const now = nowSeconds();
    const version: SecretVersion = {
      version: newVersionId(),
      value: input.value,
      contentType: input.contentType,
      attributes: {
        enabled: input.enabled ?? true,
        ...(input.nbf !== undefined ? { nbf: input.nbf } : {}),
        ...(input.exp !== undefined ? { exp: input.exp } : {}),
        created: now,
        updated: now,
        recoveryLevel: RECOVERY_LEVEL,
        recoverableDays: RECOVERABLE_DAYS,
      },
      tags: input.tags,
      createdAtMs: Date.now(),
    };
    entry.versions.push(version);
    return { entry, version };
  }

  softDelete(entry: SecretEntry): DeletedInfo {
    const deletedDate = nowSeconds();
    entry.deleted = { deletedDate, scheduledPurgeDate: deletedDate + RECOVERABLE_DAYS * 24 * 3600 };
    return entry.deleted;
  }

  recover(entry: SecretEntry): void {
    delete entry.deleted;
  }

  purge(entry: SecretEntry): void {
    const key = SecretStore.key(entry.name);
    this.entries.delete(key);
    this.purgedAtMs.set(key, Date.now());
  }
}
