import { z } from "zod";
import { secretNameFor } from "../domain/site";
import { mergeSiteTags, rotationStates, type SiteTagsChange } from "../domain/tags";
import { defaultDeps, type ActivityDeps } from "./shared";

/**
 * Records a rotation's state in the tags of the site's current Key Vault version (DESIGN rule 5:
 * Key Vault is the registry, so the sweep and the status API see it): `grace-period` with the keyId
 * whose grace runs (previousKeyId), `failed`, or `idle`. Tags only: updateSecretProperties never
 * creates a version. Idempotent: a retry writes the same tags.
 */
export const MARK_ROTATION_STATE = "markRotationState";

export const markRotationStateInput = z.object({
  host: z.string().min(1),
  state: z.enum(rotationStates),
  /** Sets previousKeyId when given (null removes it); left as is when omitted. */
  previousKeyId: z.string().min(1).nullable().optional(),
});
export type MarkRotationStateInput = z.infer<typeof markRotationStateInput>;

export interface MarkRotationStateResult {
  version: string;
  keyId: string | null;
  state: string;
  updatedAt: string;
}

export async function markRotationState(rawInput: MarkRotationStateInput, deps: ActivityDeps = defaultDeps()): Promise<MarkRotationStateResult> {
  const input = markRotationStateInput.parse(rawInput);
  const secretName = secretNameFor(input.host);
  const { properties } = await deps.secrets.getSecret(secretName);
  const updatedAt = deps.now().toISOString();
  const change: SiteTagsChange = { rotationState: input.state, rotationUpdatedAt: updatedAt };
  if (input.previousKeyId !== undefined) change.previousKeyId = input.previousKeyId;
  const tags = mergeSiteTags(properties.tags, change);
  await deps.secrets.updateSecretProperties(secretName, properties.version!, { tags });
  return { version: properties.version!, keyId: tags.keyId ?? null, state: input.state, updatedAt };
}

export const markRotationStateActivity = {
  name: MARK_ROTATION_STATE,
  input: markRotationStateInput,
  handler: (input: unknown) => markRotationState(input as MarkRotationStateInput),
};
