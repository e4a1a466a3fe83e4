import { hostFromSecretName, secretNameFor } from "./site";
import { SECRET_CONTENT_TYPE, decodeSiteTags, type SiteTags } from "./tags";

/**
 * "Is this Key Vault secret one of ours, and whose?" (docs/architecture.md, "Key Vault is the
 * registry"): our contentType marks it; its tags say which site and app. The sweep, the list, the
 * rotate endpoint, the Key Vault event handler, beginRotation and the preflight all ask it; each
 * decides itself what an unreadable one means for it.
 */
export interface OurSecret {
  /** The site tag when the tags decode, else the host the name was derived from (undefined when the name is not ours). */
  host: string | undefined;
  /** The decoded tags; undefined when they do not decode (hand-edited). */
  tags: SiteTags | undefined;
  /** Why it is not a managed site's secret (tags that do not decode, or a site tag that does not match the name); undefined when it is one. */
  problem: string | undefined;
}

/** Properties only (what listPropertiesOfSecrets and getSecret's properties carry); never a value. */
export interface SecretPropertiesLike {
  name: string;
  contentType?: string;
  tags?: Record<string, string>;
}

/** undefined when the secret does not carry our contentType. */
export function ourSecret(properties: SecretPropertiesLike): OurSecret | undefined {
  if (properties.contentType !== SECRET_CONTENT_TYPE) return undefined;
  const decoded = decodeSiteTags(properties.tags);
  if (!decoded.ok) return { host: hostFromSecretName(properties.name), tags: undefined, problem: decoded.problem };
  const host = decoded.tags.site;
  return { host, tags: decoded.tags, problem: nameMatches(host, properties.name) ? undefined : "Its site tag does not match its name." };
}

/** A site tag that cannot be encoded into a name (a hand-edited one) matches no name. */
function nameMatches(host: string, name: string): boolean {
  try {
    return secretNameFor(host) === name;
  } catch {
    return false;
  }
}
