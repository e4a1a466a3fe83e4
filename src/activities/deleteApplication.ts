import { z } from "zod";
import { graphCall, isNotFound, odataString } from "../clients/graph";
import { applicationUniqueNameFor } from "../domain/site";
import { ENTRA_RESTORE_DAYS } from "../domain/offboarding";
import { activityFields, defaultDeps, type ActivityDeps } from "./shared";

/**
 * Offboarding, step 3 (docs/architecture.md, "Offboarding"): delete the site's app registration,
 * `DELETE /applications(uniqueName='creatio-o365-...')` (learn.microsoft.com/graph/api/application-delete;
 * the alternate key the onboarding upserts by). Entra moves it to deleted items, restorable for 30
 * days (learn.microsoft.com/graph/api/directory-deleteditems-restore); its service principal and
 * the delegated grants go with it. Application.ReadWrite.OwnedBy allows deleting an app the
 * identity owns. 404 is "already gone", which is success: a retry or a second offboarding.
 */
export const DELETE_APPLICATION = "deleteApplication";

export const deleteApplicationInput = activityFields.pick({ host: true, tenantId: true }).extend({
  appId: activityFields.shape.appId.optional(),
});
export type DeleteApplicationInput = z.input<typeof deleteApplicationInput>;

export interface DeleteApplicationResult {
  uniqueName: string;
  appId: string | null;
  outcome: "deleted" | "already-gone";
  /** Until when Entra can restore it (30 days from now) when this run deleted it; null when it was already gone. */
  restorableUntil: string | null;
}




export async function deleteApplication(rawInput: DeleteApplicationInput, deps: ActivityDeps = defaultDeps(rawInput)): Promise<DeleteApplicationResult> {
  const input = deleteApplicationInput.parse(rawInput);
  const uniqueName = applicationUniqueNameFor(input.host);
  const path = `/applications(uniqueName=${odataString(uniqueName)})`;
  const base = { uniqueName, appId: input.appId ?? null };
  try {
    await graphCall(`DELETE ${path}`, () => deps.graph.api(path).delete());
  } catch (error) {
    if (isNotFound(error)) return { ...base, outcome: "already-gone", restorableUntil: null };
    throw error;
  }
  return { ...base, outcome: "deleted", restorableUntil: new Date(deps.now().getTime() + ENTRA_RESTORE_DAYS * 86_400_000).toISOString() };
}

export const deleteApplicationActivity = {
  name: DELETE_APPLICATION,
  handler: (input: unknown) => deleteApplication(input as DeleteApplicationInput),
};
