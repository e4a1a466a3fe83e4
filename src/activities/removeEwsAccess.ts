import { z } from "zod";
import { ExchangeAccessError } from "../clients/exchange";
import { isAppIdListed } from "../domain/ews";
import { publicMessage } from "../domain/failure";
import { activityFields, defaultDeps, type ActivityDeps } from "./shared";

/**
 * Offboarding, step 2 (docs/architecture.md, "Offboarding", "Exchange Online"): the reverse of
 * allowEwsAccess. With EWS_ACCESS=manage, removes the site's app id from the tenant's
 * `EwsAllowedAppIDs` with the hashtable form `@{Remove=...}` (the other ids stay; Exchange merges),
 * then reads the list back. With check or off this product does not manage the list: nothing is
 * changed and the result says what an Exchange administrator may run. A missing permission or role
 * (401/403) is a note with that command, not a failed offboarding: the app is deleted next, and an
 * id of a deleted app on the list grants nothing. Idempotent: an id not on the list is not written.
 */
export const REMOVE_EWS_ACCESS = "removeEwsAccess";

export const removeEwsAccessInput = activityFields.pick({ host: true, tenantId: true }).extend({
  appId: activityFields.shape.appId.optional(),
});
export type RemoveEwsAccessInput = z.input<typeof removeEwsAccessInput>;

export interface RemoveEwsAccessResult {
  mode: "manage" | "check" | "off";
  tenantId: string | null;
  /** `removedAppId` when this run took the id off the list. */
  actions: "removedAppId"[];
  /** Why nothing was removed, with the command to run by hand when it may still be listed; null when the list no longer holds the id. */
  note: string | null;
}

const VERIFY_ATTEMPTS = 4;

export async function removeEwsAccess(rawInput: RemoveEwsAccessInput, deps: ActivityDeps = defaultDeps(rawInput)): Promise<RemoveEwsAccessResult> {
  const input = removeEwsAccessInput.parse(rawInput);
  const mode = deps.ewsAccess ?? "check";
  const base = { mode, tenantId: null as string | null, actions: [] as "removedAppId"[] };
  if (!input.appId) return { ...base, note: "No app id is known for the site: nothing to remove from EwsAllowedAppIDs." };
  const appId = input.appId;
  const byHand = `Set-OrganizationConfig -EwsAllowedAppIDs @{Remove="${appId}"}`;
  if (mode !== "manage" || !deps.exchange) {
    return { ...base, note: `EWS_ACCESS is ${mode}: this product does not manage EwsAllowedAppIDs, so it was not changed. An Exchange administrator may run: ${byHand}` };
  }
  const exchange = deps.exchange;
  try {
    const tenant = await exchange.tenant();
    const done = { ...base, tenantId: tenant.tenantId };
    let config = await exchange.getOrganizationConfig(tenant);
    for (let attempt = 1; isAppIdListed(config.EwsAllowedAppIDs, appId); attempt++) {
      if (attempt > VERIFY_ATTEMPTS) throw new Error(`Exchange Online still lists the app id ${appId} in EwsAllowedAppIDs after ${VERIFY_ATTEMPTS} removals`);
      if (attempt > 1) await deps.sleep(500 * attempt);
      await exchange.removeEwsAllowedAppIds(tenant, [appId]);
      if (!done.actions.includes("removedAppId")) done.actions.push("removedAppId");
      config = await exchange.getOrganizationConfig(tenant);
    }
    return { ...done, note: null };
  } catch (error) {
    const status = (error as { statusCode?: number })?.statusCode;
    if (error instanceof ExchangeAccessError || status === 401 || status === 403) {
      return { ...base, note: `Exchange Online could not be changed (${publicMessage(error, 200)}). An Exchange administrator may run: ${byHand}` };
    }
    throw error;
  }
}

export const removeEwsAccessActivity = {
  name: REMOVE_EWS_ACCESS,
  handler: (input: unknown) => removeEwsAccess(input as RemoveEwsAccessInput),
};
