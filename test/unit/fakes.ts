import type { KeyVaultSecret, SecretProperties } from "@azure/keyvault-secrets";
import type { SecretStore } from "../../src/clients/keyVault";
import type { ActivityDeps } from "../../src/activities/shared";
import type { Client } from "@microsoft/microsoft-graph-client";

interface Version {
  value: string;
  properties: SecretProperties;
}

/** In-memory Key Vault with versions; records writes so tests can count versions and tag updates. */
export class FakeSecretStore implements SecretStore {
  readonly versions = new Map<string, Version[]>();
  readonly writes: { op: "setSecret" | "updateSecretProperties" | "deleteSecret" | "recoverDeletedSecret"; name: string; version?: string }[] = [];
  /** Soft-deleted secrets: their versions, and when (Key Vault's soft delete keeps both until purge or recover). */
  readonly deleted = new Map<string, { versions: Version[]; deletedOn: Date }>();
  /** getSecret calls, by name. */
  readonly reads: string[] = [];
  private counter = 0;

  seed(name: string, value: string, props: Partial<SecretProperties> = {}): string {
    return this.put(name, value, props);
  }

  private put(name: string, value: string, props: Partial<SecretProperties>): string {
    const version = `v${++this.counter}`;
    const list = this.versions.get(name) ?? [];
    list.push({ value, properties: { name, version, vaultUrl: "https://kv.test", enabled: true, tags: {}, ...props } as SecretProperties });
    this.versions.set(name, list);
    return version;
  }

  latest(name: string): Version | undefined {
    const list = this.versions.get(name);
    return list?.[list.length - 1];
  }

  getSecret = (async (name: string, options?: { version?: string }) => {
    this.reads.push(name);
    return this.read(name, options);
  }) as SecretStore["getSecret"];

  private read(name: string, options?: { version?: string }): KeyVaultSecret {
    const list = this.versions.get(name);
    const found = options?.version ? list?.find((v) => v.properties.version === options.version) : list?.[list.length - 1];
    if (!found) throw Object.assign(new Error(`SecretNotFound ${name}`), { statusCode: 404, code: "SecretNotFound" });
    return { name, value: found.value, properties: structuredClone(found.properties) } as KeyVaultSecret;
  }

  setSecret = (async (name: string, value: string, options?: { expiresOn?: Date; contentType?: string; tags?: Record<string, string> }) => {
    const version = this.put(name, value, { expiresOn: options?.expiresOn, contentType: options?.contentType, tags: options?.tags ?? {} });
    this.writes.push({ op: "setSecret", name, version });
    return this.read(name, { version });
  }) as SecretStore["setSecret"];

  updateSecretProperties = (async (name: string, version: string, options?: { tags?: Record<string, string> }) => {
    const found = this.versions.get(name)?.find((v) => v.properties.version === version);
    if (!found) throw Object.assign(new Error("SecretNotFound"), { statusCode: 404 });
    if (options?.tags) found.properties.tags = options.tags;
    this.writes.push({ op: "updateSecretProperties", name, version });
    return structuredClone(found.properties);
  }) as SecretStore["updateSecretProperties"];

  beginDeleteSecret = (async (name: string) => {
    const list = this.versions.get(name);
    if (!list) throw Object.assign(new Error(`SecretNotFound ${name}`), { statusCode: 404, code: "SecretNotFound" });
    this.versions.delete(name);
    this.deleted.set(name, { versions: list, deletedOn: new Date("2026-11-27T12:00:00Z") });
    this.writes.push({ op: "deleteSecret", name });
    const result = await this.getDeletedSecret(name);
    return { pollUntilDone: async () => result, getResult: () => result };
  }) as unknown as SecretStore["beginDeleteSecret"];

  getDeletedSecret = (async (name: string) => {
    const entry = this.deleted.get(name);
    if (!entry) throw Object.assign(new Error(`Deleted Secret not found: ${name}`), { statusCode: 404, code: "SecretNotFound" });
    const latest = entry.versions[entry.versions.length - 1]!;
    const scheduledPurgeDate = new Date(entry.deletedOn.getTime() + 90 * 86_400_000);
    return {
      name,
      recoveryId: `https://kv.test/deletedsecrets/${name}`,
      deletedOn: entry.deletedOn,
      scheduledPurgeDate,
      properties: { ...structuredClone(latest.properties), recoveryId: `https://kv.test/deletedsecrets/${name}`, deletedOn: entry.deletedOn, scheduledPurgeDate },
    };
  }) as unknown as SecretStore["getDeletedSecret"];

  listDeletedSecrets = (() => {
    const names = [...this.deleted.keys()];
    const get = this.getDeletedSecret;
    return (async function* () {
      for (const name of names) yield await get(name);
    })();
  }) as unknown as SecretStore["listDeletedSecrets"];

  beginRecoverDeletedSecret = (async (name: string) => {
    const entry = this.deleted.get(name);
    if (!entry) throw Object.assign(new Error(`Deleted Secret not found: ${name}`), { statusCode: 404, code: "SecretNotFound" });
    this.deleted.delete(name);
    this.versions.set(name, entry.versions);
    this.writes.push({ op: "recoverDeletedSecret", name });
    const properties = structuredClone(entry.versions[entry.versions.length - 1]!.properties);
    return { pollUntilDone: async () => properties, getResult: () => properties };
  }) as unknown as SecretStore["beginRecoverDeletedSecret"];

  listPropertiesOfSecrets = (() => {
    const all = [...this.versions.values()].map((list) => structuredClone(list[list.length - 1]!.properties));
    const items = (async function* () {
      yield* all;
    })();
    // byPage as the SDK pages: 25 items a page (Key Vault's default maxresults).
    const byPage = () =>
      (async function* () {
        for (let i = 0; i < all.length; i += 25) yield all.slice(i, i + 25);
      })();
    return Object.assign(items, { byPage });
  }) as unknown as SecretStore["listPropertiesOfSecrets"];
}

export function deps(graph: Client, secrets: FakeSecretStore, extra: Partial<ActivityDeps> = {}): ActivityDeps {
  return {
    graph,
    secrets,
    creatio: () => {
      throw new Error("no Creatio in this test");
    },
    now: () => new Date("2026-11-27T12:00:00.000Z"),
    sleep: async () => undefined,
    rotateDaysBeforeExpiry: 30,
    ...extra,
  };
}
