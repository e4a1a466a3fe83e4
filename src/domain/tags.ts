import { z } from "zod";

/**
 * Key Vault is the tenant registry (DESIGN rule 5): the tags of a site's secret say which app,
 * which keyId is current, which Creatio credential secret to use and the rotation state. Key Vault
 * allows at most 15 tags of at most 512 characters (DESIGN section 4). The codec has no field for
 * the secret value, and callers assert no tag carries it.
 */

/** contentType that marks a secret as one of ours; the list endpoint and the sweep filter on it. */
export const SECRET_CONTENT_TYPE = "text/plain; creatio-o365-oauth";

export const MAX_TAGS = 15;
export const MAX_TAG_LENGTH = 512;

export const rotationStates = ["idle", "rotating", "grace-period", "failed"] as const;

const isoDate = z.iso.datetime({ offset: true });
const guidish = z.string().min(1).max(64);

/** Tag fields, camelCase, stored as-is as tag names. Optional ones fill in as onboarding progresses. */
export const siteTagsSchema = z.object({
  site: z.string().min(1).describe("The Creatio site host (site key)."),
  appId: guidish.describe("Application (client) id."),
  appObjectId: guidish.describe("Application object id."),
  servicePrincipalId: guidish.optional().describe("Service principal object id."),
  keyId: guidish.describe("keyId of the password whose value is the current secret version."),
  previousKeyId: guidish.optional().describe("keyId replaced by the last rotation; its password is removed when the grace period ends, the tag stays for status."),
  creatioCredential: z.string().min(1).describe("Name of the Key Vault secret with the Creatio API credential."),
  mailServerId: guidish.describe("Creatio MailServer row linked to the OAuth application."),
  scopes: z.string().optional().describe("Granted delegated scopes, space separated, e.g. `EWS.AccessAsUser.All User.Read`."),
  instanceId: z.string().optional().describe("Durable instance that last wrote the secret."),
  creatioSyncedAt: isoDate.optional().describe("When Creatio last received the client id and secret."),
  creatioSyncedKeyId: guidish.optional().describe("keyId Creatio last received."),
  rotationState: z.enum(rotationStates).default("idle").describe("Rotation state of the site."),
  rotationUpdatedAt: isoDate.optional().describe("When rotationState last changed."),
});

export type SiteTags = z.infer<typeof siteTagsSchema>;
export type SiteTagsInput = z.input<typeof siteTagsSchema>;

export class TagCodecError extends Error {
  override name = "TagCodecError";
}

/** Site tags → Key Vault tags. Throws when a limit would be broken, rather than let Key Vault reject the write. */
export function encodeSiteTags(tags: SiteTagsInput): Record<string, string> {
  const parsed = siteTagsSchema.parse(tags);
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (value === undefined) continue;
    const text = String(value);
    if (text.length > MAX_TAG_LENGTH) throw new TagCodecError(`Tag ${key} is longer than ${MAX_TAG_LENGTH} characters`);
    out[key] = text;
  }
  if (Object.keys(out).length > MAX_TAGS) throw new TagCodecError(`More than ${MAX_TAGS} tags`);
  return out;
}

export type DecodeResult = { ok: true; tags: SiteTags } | { ok: false; problem: string };

/** Key Vault tags → site tags. Unknown tags (an admin's own) are ignored, not an error. */
export function decodeSiteTags(tags: Record<string, string> | undefined): DecodeResult {
  const result = siteTagsSchema.safeParse(tags ?? {});
  if (result.success) return { ok: true, tags: result.data };
  return { ok: false, problem: result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") };
}

/**
 * Merges a change into existing Key Vault tags: keys of the codec are replaced, tags an admin added
 * are kept (within the 15-tag limit). Used by updateSecretProperties, which replaces the tag set.
 */
export function mergeSiteTags(existing: Record<string, string> | undefined, change: SiteTagsChange): Record<string, string> {
  const known = new Set(Object.keys(siteTagsSchema.shape));
  const current = decodeSiteTags(existing);
  // A first write (no tags yet) or partial tags: start from the known keys; the result is validated by encode.
  const next: Record<string, unknown> = current.ok
    ? { ...current.tags }
    : Object.fromEntries(Object.entries(existing ?? {}).filter(([k]) => known.has(k)));
  for (const [k, v] of Object.entries(change)) {
    if (v === null) delete next[k];
    else if (v !== undefined) next[k] = v;
  }
  const merged = encodeSiteTags(next as SiteTagsInput);
  const foreign = Object.entries(existing ?? {}).filter(([k]) => !known.has(k));
  for (const [k, v] of foreign) {
    if (Object.keys(merged).length >= MAX_TAGS) break;
    merged[k] = v;
  }
  return merged;
}

/** A change to the tags: a value sets, `null` removes, `undefined` leaves as is. */
export type SiteTagsChange = { [K in keyof SiteTagsInput]?: SiteTagsInput[K] | null };

/** Throws when any tag value contains the given secret (defence in depth for DESIGN rule 1). */
export function assertTagsFreeOf(tags: Record<string, string>, secret: string): void {
  if (!secret) return;
  for (const [k, v] of Object.entries(tags)) {
    if (v.includes(secret) || k.includes(secret)) throw new TagCodecError(`Tag ${k} would carry the secret value`);
  }
}
