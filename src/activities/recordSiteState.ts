import { z } from "zod";
import { currentSecretProperties } from "../clients/keyVault";
import { secretNameFor } from "../domain/site";
import { lastRunSchema, mergeSiteTags, rotationStates, type SiteTagsChange } from "../domain/tags";
import { mailReadinessSchema } from "../domain/ews";
import { activityFields, defaultDeps, type ActivityDeps } from "./shared";

/**
 * Records where a site stands in the tags of its current Key Vault version, so the sweep, the list
 * and the status see it (docs/architecture.md, "Key Vault is the registry"): a rotation's state
 * (`grace-period` with the keyId whose grace runs, `failed`, `idle`), how the last onboarding
 * or rotation ended, with the failing step, and the Exchange Online EWS readiness allowEwsAccess
 * found (recorded here, at the end of the onboarding, because on a first onboarding the secret
 * whose tags hold it does not exist yet when allowEwsAccess runs). A failure stays recorded until a later run succeeds
 * ("Status tells the truth"). Tags only: updateSecretProperties never creates a version. A site
 * with no secret yet (an onboarding that failed before issuing one) has nothing to record.
 * Idempotent: a retry writes the same tags.
 */
export const RECORD_SITE_STATE = "recordSiteState";

export const recordSiteStateInput = activityFields.pick({ host: true }).extend({
  rotationState: z.enum(rotationStates).optional(),
  /** Sets previousKeyId when given (null removes it); left as is when omitted. */
  previousKeyId: z.string().min(1).nullable().optional(),
  /** How the run ended; `at` is the activity's clock. */
  lastRun: lastRunSchema.omit({ at: true }).optional(),
  /** What allowEwsAccess found (tag `mail`), with its own `checkedAt`. */
  mailReadiness: mailReadinessSchema.optional(),
});
export type RecordSiteStateInput = z.infer<typeof recordSiteStateInput>;

export interface RecordSiteStateResult {
  recorded: boolean;
  version: string | null;
  keyId: string | null;
  updatedAt: string;
}

export async function recordSiteState(rawInput: RecordSiteStateInput, deps: ActivityDeps = defaultDeps(rawInput)): Promise<RecordSiteStateResult> {
  const input = recordSiteStateInput.parse(rawInput);
  const secretName = secretNameFor(input.host);
  const updatedAt = deps.now().toISOString();
  const properties = await currentSecretProperties(deps.secrets, secretName);
  if (!properties) return { recorded: false, version: null, keyId: null, updatedAt };
  const change: SiteTagsChange = {};
  if (input.rotationState) Object.assign(change, { rotationState: input.rotationState, rotationUpdatedAt: updatedAt });
  if (input.previousKeyId !== undefined) change.previousKeyId = input.previousKeyId;
  if (input.lastRun) change.lastRun = { ...input.lastRun, at: updatedAt };
  if (input.mailReadiness) change.mailReadiness = input.mailReadiness;
  const tags = mergeSiteTags(properties.tags, change);
  await deps.secrets.updateSecretProperties(secretName, properties.version!, { tags });
  return { recorded: true, version: properties.version!, keyId: tags.keyId ?? null, updatedAt };
}

export const recordSiteStateActivity = {
  name: RECORD_SITE_STATE,
  handler: (input: unknown) => recordSiteState(input as RecordSiteStateInput),
};
