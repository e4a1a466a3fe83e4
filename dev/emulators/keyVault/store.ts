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
  /**
   * `Recoverable` with purge protection (our Bicep's vault), `Recoverable+Purgeable` without
   * (DeletionRecoveryLevel in the Key Vault REST reference); 90 days retention either way.
   */
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

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Version ids are 32 lower-case hex digits in Key Vault. */
export const newVersionId = () => randomUUID().replace(/-/g, "");

export class SecretStore {
  private readonly entries = new Map<string, SecretEntry>();
  /**
   * Keys in list order (lower-case name, ordinal), kept sorted on insert and purge so that a page of a
   * list costs O(log n + page size), not a sort of the whole vault per page.
   */
  private readonly sortedKeys: string[] = [];

  /** Whether purge protection is on: decides the recovery level of versions written from now on. */
  constructor(private readonly purgeProtection: () => boolean = () => true) {}
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

  /** Entries in list order whose key sorts after `afterKey` (all when undefined), lazily. */
  *after(afterKey: string | undefined): Generator<SecretEntry> {
    let index = 0;
    if (afterKey !== undefined) {
      // First key greater than afterKey (binary search).
      let lo = 0;
      let hi = this.sortedKeys.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.sortedKeys[mid]! <= afterKey) lo = mid + 1;
        else hi = mid;
      }
      index = lo;
    }
    for (; index < this.sortedKeys.length; index++) yield this.entries.get(this.sortedKeys[index]!)!;
  }

  purgedAt(name: string): number | undefined {
    return this.purgedAtMs.get(SecretStore.key(name));
  }

  clear(): void {
    this.entries.clear();
    this.sortedKeys.length = 0;
    this.purgedAtMs.clear();
  }

  private insertKey(key: string): void {
    let lo = 0;
    let hi = this.sortedKeys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sortedKeys[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    this.sortedKeys.splice(lo, 0, key);
  }

  private removeKey(key: string): void {
    const index = this.sortedKeys.indexOf(key);
    if (index >= 0) this.sortedKeys.splice(index, 1);
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
      this.insertKey(key);
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
        recoveryLevel: this.purgeProtection() ? "Recoverable" : "Recoverable+Purgeable",
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
    this.removeKey(key);
    this.purgedAtMs.set(key, Date.now());
  }
}
