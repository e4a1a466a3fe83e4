import { hostFromSecretName } from "./site";

/**
 * Screening of Key Vault Event Grid events (docs/architecture.md, "Azure Key Vault"): `Microsoft.KeyVault.SecretNearExpiry`
 * fires 30 days before the current version expires, `SecretExpired` when it has; data fields are
 * PascalCase on the wire (`Id, VaultName, ObjectType, ObjectName, Version, NBF, EXP`). Pure: the
 * trigger adds the one fact this cannot know (which version is current) afterwards.
 */

export const SECRET_NEAR_EXPIRY = "Microsoft.KeyVault.SecretNearExpiry";
export const SECRET_EXPIRED = "Microsoft.KeyVault.SecretExpired";
export const ROTATING_EVENT_TYPES: readonly string[] = [SECRET_NEAR_EXPIRY, SECRET_EXPIRED];

export interface KeyVaultEventData {
  Id?: string;
  VaultName?: string;
  ObjectType?: string;
  ObjectName?: string;
  Version?: string;
  NBF?: number | null;
  EXP?: number | null;
}

/** Event Grid schema event (and the CloudEvents `type` spelling, which the host also delivers). */
export interface GridEvent {
  id?: string;
  eventType?: string;
  type?: string;
  subject?: string;
  data?: unknown;
}

export type ScreenResult =
  | { relevant: true; eventType: string; host: string; secretName: string; version: string; expiresOn: Date | undefined }
  | { relevant: false; eventType: string | undefined; reason: string; secretName?: string };

/** The vault an event came from, as `host[:port]`, lower-cased: from `Id`, else `<VaultName>.<vault DNS suffix>`. */
function eventVaultAuthority(data: KeyVaultEventData, vaultUrl: URL): string | undefined {
  if (typeof data.Id === "string") {
    try {
      return new URL(data.Id).host.toLowerCase();
    } catch {
      return undefined;
    }
  }
  if (typeof data.VaultName === "string" && data.VaultName) {
    // <name>.vault.azure.net (or a sovereign cloud's suffix): same suffix as our vault's host.
    const suffix = vaultUrl.hostname.split(".").slice(1).join(".");
    return suffix ? `${data.VaultName}.${suffix}`.toLowerCase() + (vaultUrl.port ? `:${vaultUrl.port}` : "") : undefined;
  }
  return undefined;
}

/**
 * Decides whether an event concerns one of our secrets in our vault. Foreign events (other event
 * types, keys/certificates, other vaults, secrets not named like ours) are not relevant.
 */
export function screenKeyVaultEvent(event: GridEvent, keyVaultUrl: string): ScreenResult {
  const eventType = event.eventType ?? event.type;
  if (!eventType || !ROTATING_EVENT_TYPES.includes(eventType)) return { relevant: false, eventType, reason: `event type ${eventType ?? "(none)"} does not start a rotation` };
  const data = (event.data ?? {}) as KeyVaultEventData;
  if (typeof data !== "object" || data === null) return { relevant: false, eventType, reason: "event has no data" };
  if (data.ObjectType !== undefined && data.ObjectType !== "Secret") return { relevant: false, eventType, reason: `object type ${data.ObjectType} is not a secret` };
  const secretName = typeof data.ObjectName === "string" ? data.ObjectName : undefined;
  if (!secretName) return { relevant: false, eventType, reason: "event names no secret (ObjectName)" };
  const vaultUrl = new URL(keyVaultUrl);
  const authority = eventVaultAuthority(data, vaultUrl);
  if (authority !== vaultUrl.host.toLowerCase()) {
    return { relevant: false, eventType, secretName, reason: `event is from another vault (${authority ?? "unknown"})` };
  }
  const host = hostFromSecretName(secretName);
  if (!host) return { relevant: false, eventType, secretName, reason: `secret ${secretName} is not one of ours` };
  if (typeof data.Version !== "string" || !data.Version) return { relevant: false, eventType, secretName, reason: "event names no version" };
  const expiresOn = typeof data.EXP === "number" ? new Date(data.EXP * 1000) : undefined;
  return { relevant: true, eventType, host, secretName, version: data.Version, expiresOn };
}
