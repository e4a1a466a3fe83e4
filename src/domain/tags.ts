import { z } from "zod";
import { mailReadinessSchema } from "./ews";

/**
 * Key Vault is the tenant registry (docs/architecture.md, "Key Vault is the registry"): the tags of
 * a site's secret say which app, which keyId is current, which password Creatio holds and until
 * when, which Creatio credential secret to use, and how the last run ended. Key Vault allows at
 * most 15 tags of at most 512 characters each
 * (learn.microsoft.com/azure/key-vault/general/about-keys-secrets-certificates#object-types), so
 * related facts share one tag as compact JSON (`creatio`, `rotation` with `previousKeyId`, `permissions`
 * with the profile name and granted scopes, `lastRun`,
 * `creatioCheck`, `mail`);
 * the codec hides that: callers see one flat object (SiteTags). The codec has no field for the
 * secret value, and callers assert no tag carries it.
 */

/** contentType that marks a secret as one of ours; the list endpoint and the sweep filter on it. */
export const SECRET_CONTENT_TYPE = "text/plain; creatio-o365-oauth";

export const MAX_TAGS = 15;
export const MAX_TAG_LENGTH = 512;

export const rotationStates = ["idle", "rotating", "grace-period", "failed"] as const;

const isoDate = z.iso.datetime({ offset: true });
const guidish = z.string().min(1).max(64);

/** What a run of the site does: onboardTenant, rotateSecret, offboardTenant. */
export const runKinds = ["onboard", "rotate", "offboard"] as const;

/** How the last onboarding, rotation or offboarding of the site ended; a failure stays here until a later run succeeds. */
export const lastRunSchema = z.object({
  kind: z.enum(runKinds),
  outcome: z.enum(["succeeded", "failed"]),
  /** The step that failed. */
  step: z.string().max(64).optional(),
  at: isoDate,
  instanceId: z.string().max(200).optional(),
});
export type LastRun = z.infer<typeof lastRunSchema>;

/** What the last look at Creatio's mail server found (onboarding, rotation or the sweep). */
export const creatioCheckSchema = z.object({
  at: isoDate,
  /**
   * ok: the mail server is linked to an OAuth application row holding this site's client id.
   * drift: it is not (unlinked, row gone, or another client id: `clientId` says which).
   * unreachable: Creatio could not be asked (down, login refused): `detail` says why.
   */
  state: z.enum(["ok", "drift", "unreachable"]),
  clientId: z.string().max(64).optional(),
  detail: z.string().max(200).optional(),
});
export type CreatioCheck = z.infer<typeof creatioCheckSchema>;

/** The logical site record: flat fields, whatever tag each is stored in. */
export const siteTagsSchema = z.object({
  site: z.string().min(1).describe("The Creatio site host (site key)."),
  appId: guidish.describe("Application (client) id."),
  appObjectId: guidish.describe("Application object id."),
  servicePrincipalId: guidish.optional().describe("Service principal object id."),
  keyId: guidish.describe("keyId of the password whose value is the current secret version."),
  previousKeyId: guidish.optional().describe("keyId replaced by the last rotation; its password is removed when the grace period ends, the tag stays for status."),
  creatioCredential: z.string().min(1).describe("Name of the Key Vault secret with the Creatio API credential; changes only when an onboarding succeeds."),
  mailServerId: guidish.describe("Creatio MailServer row linked to the OAuth application."),
  scopes: z.string().optional().describe("Granted delegated scopes, space separated, e.g. `EWS.AccessAsUser.All User.Read`."),
  permissionProfile: z.string().min(1).max(63).optional().describe("Name of the permission profile the site was last onboarded with (src/domain/permissions.ts); absent means creatio-ews, the only profile before there were others."),
  tenantId: guidish.optional().describe("The Entra tenant id of the site's app when it is not the app's home tenant (docs/architecture.md, \"Serving several tenants\"); absent: the home tenant."),
  creatioSyncedAt: isoDate.optional().describe("When Creatio last received the client id and secret."),
  creatioSyncedKeyId: guidish.optional().describe("keyId Creatio last received."),
  creatioSyncedExpiresOn: isoDate.optional().describe("Expiry of the password Creatio holds: the day its mail sync stops unless a rotation delivers a newer one."),
  rotationState: z.enum(rotationStates).default("idle").describe("Rotation state of the site."),
  rotationUpdatedAt: isoDate.optional().describe("When rotationState last changed."),
  lastRun: lastRunSchema.optional().describe("How the last onboarding or rotation ended."),
  creatioCheck: creatioCheckSchema.optional().describe("What the last look at Creatio's mail server found."),
  mailReadiness: mailReadinessSchema.optional().describe("Whether Exchange Online lets this app use EWS, when it was checked and why not (tag `mail`)."),
});

export type SiteTags = z.infer<typeof siteTagsSchema>;
export type SiteTagsInput = z.input<typeof siteTagsSchema>;

/** Physical tags that hold several logical fields, as JSON with short keys. */
const PACKED = {
  creatio: { keyId: "creatioSyncedKeyId", at: "creatioSyncedAt", expiresOn: "creatioSyncedExpiresOn" },
  // previousKeyId moved in here when the `mail` tag came (issue 8), to keep two of the 15 tags free.
  rotation: { state: "rotationState", at: "rotationUpdatedAt", prev: "previousKeyId" },
  // The profile name joined the granted scopes in one tag when profiles came (issue 8, item 5): the
  // flat `scopes` tag of earlier versions became this one, so the count stays at 13 of 15.
  // The tenant the grants (and the app) live in joined them when sites could live in other tenants
  // (issue 10): absent means the app's home tenant, as for every site onboarded before.
  permissions: { profile: "permissionProfile", scopes: "scopes", tenant: "tenantId" },
} as const satisfies Record<string, Record<string, keyof SiteTags>>;
/** Logical fields stored whole as a JSON tag: logical name -> tag name. */
const JSON_FIELDS = { lastRun: "lastRun", creatioCheck: "creatioCheck", mailReadiness: "mail" } as const satisfies Partial<Record<keyof SiteTags, string>>;
const JSON_TAG_NAMES: ReadonlySet<string> = new Set(Object.values(JSON_FIELDS));
/** Tag names written by earlier versions, read when the packed tag is absent and dropped on the next write. */
const LEGACY_TAGS = ["creatioSyncedAt", "creatioSyncedKeyId", "rotationState", "rotationUpdatedAt", "instanceId", "previousKeyId", "scopes"] as const;

const PACKED_FIELDS = new Set<string>(Object.values(PACKED).flatMap((p) => Object.values(p)));
/** Every tag name the codec owns; any other tag is an administrator's and is kept. */
export const CODEC_TAG_NAMES: ReadonlySet<string> = new Set([
  ...Object.keys(siteTagsSchema.shape).filter((k) => !PACKED_FIELDS.has(k) && !(k in JSON_FIELDS)),
  ...Object.keys(PACKED),
  ...JSON_TAG_NAMES,
  ...LEGACY_TAGS,
]);

export class TagCodecError extends Error {
  override name = "TagCodecError";
}

/** Site tags → Key Vault tags. Throws when a limit would be broken, rather than let Key Vault reject the write. */
export function encodeSiteTags(tags: SiteTagsInput): Record<string, string> {
  const parsed: Record<string, unknown> = siteTagsSchema.parse(tags);
  const out: Record<string, string> = {};
  for (const [tag, fields] of Object.entries(PACKED)) {
    const packed: Record<string, unknown> = {};
    for (const [short, field] of Object.entries(fields)) {
      if (parsed[field] !== undefined) packed[short] = parsed[field];
      delete parsed[field];
    }
    if (Object.keys(packed).length > 0) out[tag] = JSON.stringify(packed);
  }
  for (const [field, tag] of Object.entries(JSON_FIELDS)) {
    if (parsed[field] !== undefined) out[tag] = JSON.stringify(parsed[field]);
    delete parsed[field];
  }
  for (const [key, value] of Object.entries(parsed)) {
    if (value !== undefined) out[key] = String(value);
  }
  for (const [key, text] of Object.entries(out)) {
    if (text.length > MAX_TAG_LENGTH) throw new TagCodecError(`Tag ${key} is longer than ${MAX_TAG_LENGTH} characters`);
  }
  if (Object.keys(out).length > MAX_TAGS) throw new TagCodecError(`More than ${MAX_TAGS} tags`);
  return out;
}

/**
 * What unpack reads, worked out once: it runs for every site of every sweep (issue 12), where
 * iterating the constant maps afresh per site cost more than validating the result.
 */
const PLAIN_TAGS: ReadonlySet<string> = new Set(
  // instanceId (legacy) now lives in lastRun; packed and JSON tags are read below.
  [...CODEC_TAG_NAMES].filter((key) => key !== "instanceId" && !(key in PACKED) && !JSON_TAG_NAMES.has(key)),
);
const PACKED_TAGS = Object.entries(PACKED).map(([tag, map]) => ({ tag, fields: Object.entries(map) }));
const JSON_TAGS = Object.entries(JSON_FIELDS).map(([field, tag]) => ({ field, tag }));

/** A tag's JSON object, or undefined when the tag is absent; null when it is not a JSON object. */
function jsonTag(text: string | undefined): Record<string, unknown> | undefined | null {
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (value && typeof value === "object" && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported as unreadable
  }
  return null;
}

/** Key Vault tags → the logical fields, before validation: packed and JSON tags unpacked, legacy names read. */
function unpack(tags: Record<string, string>): { fields: Record<string, unknown>; unreadable: string[] } {
  const fields: Record<string, unknown> = {};
  const unreadable: string[] = [];
  for (const key of Object.keys(tags)) {
    if (PLAIN_TAGS.has(key)) fields[key] = tags[key];
  }
  for (const { tag, fields: map } of PACKED_TAGS) {
    const packed = jsonTag(tags[tag]);
    if (packed === null) unreadable.push(tag);
    if (!packed) continue;
    for (const [short, field] of map) {
      if (packed[short] !== undefined) fields[field] = packed[short];
    }
  }
  for (const { field, tag } of JSON_TAGS) {
    const value = jsonTag(tags[tag]);
    if (value === null) unreadable.push(tag);
    else if (value) fields[field] = value;
  }
  return { fields, unreadable };
}

export type DecodeResult = { ok: true; tags: SiteTags } | { ok: false; problem: string };

/** Key Vault tags → site tags. Unknown tags (an admin's own) are ignored, not an error. */
export function decodeSiteTags(tags: Record<string, string> | undefined): DecodeResult {
  const { fields, unreadable } = unpack(tags ?? {});
  if (unreadable.length > 0) return { ok: false, problem: `tag ${unreadable.join(", ")} is not a JSON object` };
  const result = siteTagsSchema.safeParse(fields);
  if (result.success) return { ok: true, tags: result.data };
  return { ok: false, problem: result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") };
}

/**
 * Merges a change into existing Key Vault tags: the codec's fields are replaced, tags an admin added
 * are kept (within the 15-tag limit). Used by updateSecretProperties, which replaces the tag set.
 */
export function mergeSiteTags(existing: Record<string, string> | undefined, change: SiteTagsChange): Record<string, string> {
  const current = decodeSiteTags(existing);
  // A first write (no tags yet) or partial tags: start from what decodes; the result is validated by encode.
  const next: Record<string, unknown> = current.ok ? { ...current.tags } : lenientFields(existing ?? {});
  for (const [k, v] of Object.entries(change)) {
    if (v === null) delete next[k];
    else if (v !== undefined) next[k] = v;
  }
  const merged = encodeSiteTags(next as SiteTagsInput);
  for (const [k, v] of Object.entries(existing ?? {})) {
    if (CODEC_TAG_NAMES.has(k)) continue;
    if (Object.keys(merged).length >= MAX_TAGS) break;
    merged[k] = v;
  }
  return merged;
}

/** The fields of tags that do not decode as a whole, each kept only when it is valid on its own. */
function lenientFields(tags: Record<string, string>): Record<string, unknown> {
  const shape = siteTagsSchema.shape as Record<string, z.ZodType>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(unpack(tags).fields)) {
    if (shape[key]?.safeParse(value).success) out[key] = value;
  }
  return out;
}

/** A change to the tags: a value sets, `null` removes, `undefined` leaves as is. */
export type SiteTagsChange = { [K in keyof SiteTagsInput]?: SiteTagsInput[K] | null };

/** Throws when any tag value contains the given secret (defence in depth: the secret never leaves Key Vault's value). */
export function assertTagsFreeOf(tags: Record<string, string>, secret: string): void {
  if (!secret) return;
  for (const [k, v] of Object.entries(tags)) {
    if (v.includes(secret) || k.includes(secret)) throw new TagCodecError(`Tag ${k} would carry the secret value`);
  }
}
