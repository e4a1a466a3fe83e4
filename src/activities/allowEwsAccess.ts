import { z } from "zod";
import { ExchangeAccessError, type ExchangeTenant } from "../clients/exchange";
import { EWS_SHUTDOWN_ON, ewsRetired, ewsVerdict, isAppIdListed, type MailReadiness } from "../domain/ews";
import { publicMessage } from "../domain/failure";
import { activityFields, defaultDeps, type ActivityDeps } from "./shared";

/**
 * Lets the site's app use Exchange Web Services in its tenant (docs/architecture.md, "Exchange
 * Online"), before Creatio is told about the app: Creatio's Office 365 mail calls EWS, and since
 * 1 October 2026 Exchange Online refuses an app whose id is not in the organization's
 * `EwsAllowedAppIDs` while `EwsEnabled` is `$true`, and every app while it is `$false`
 * (Set-OrganizationConfig.md, MicrosoftDocs/office-docs-powershell; MC1227454).
 *
 * EWS_ACCESS:
 *   - manage: read the organization; if the id is missing, add it (`@{Add=...}`, merged by Exchange,
 *     so a concurrent onboarding's id is kept), read again and verify, retrying a few times (a
 *     change another writer made with a full list could still drop it). `EwsEnabled` is changed
 *     only when the request says `enableEwsForTenant`.
 *   - check: read and report. off: ask nothing (`unknown`).
 * A missing permission or role (401/403) is `unknown` with the reason, never a failed onboarding:
 * the status's `mail.fix` says what an administrator runs. 429/5xx/network failures are thrown for
 * the step's retry. After the shutdown on 1 April 2027 the answer is `retired` without a call.
 * Idempotent: an id already listed is not written again. Returns no secret. For a site whose
 * permission profile has no Exchange Online EWS.AccessAsUser.All the answer is `notUsed`, without a call.
 */
export const ALLOW_EWS_ACCESS = "allowEwsAccess";

export const allowEwsAccessInput = activityFields.pick({ host: true, appId: true, tenantId: true }).extend({
  enableEwsForTenant: z.boolean().default(false),
  /** The site's permission profile asks for Exchange Online's EWS.AccessAsUser.All; when not, the step is `notUsed`. */
  usesEws: z.boolean().default(true),
});
export type AllowEwsAccessInput = z.input<typeof allowEwsAccessInput>;

export interface AllowEwsAccessResult extends MailReadiness {
  mode: "manage" | "check" | "off";
  /** The Entra tenant whose Exchange organization was read (null when none was). */
  tenantId: string | null;
  /** What this run changed: `addedAppId`, `enabledEws`. */
  actions: string[];
}

/** Read-back attempts after adding the id (Exchange applies a change at once for reads; the service's own use can take longer). */
const VERIFY_ATTEMPTS = 4;

export async function allowEwsAccess(rawInput: AllowEwsAccessInput, deps: ActivityDeps = defaultDeps(rawInput)): Promise<AllowEwsAccessResult> {
  const input = allowEwsAccessInput.parse(rawInput);
  const now = deps.now();
  const mode = deps.ewsAccess ?? "check";
  const base = { mode, checkedAt: now.toISOString(), tenantId: null as string | null, actions: [] as string[] };
  // Nothing to allow: the app does not call EWS (its permission profile has no EWS.AccessAsUser.All).
  if (!input.usesEws) return { ...base, ews: "notUsed", reason: "The site's permission profile does not use Exchange Online EWS." };
  if (ewsRetired(now)) return { ...base, ews: "retired", reason: `EWS in Exchange Online was shut down on ${EWS_SHUTDOWN_ON}.` };
  if (mode === "off" || !deps.exchange) return { ...base, ews: "unknown", reason: "EWS_ACCESS is off" };
  const exchange = deps.exchange;

  let tenant: ExchangeTenant;
  try {
    tenant = await exchange.tenant();
  } catch (error) {
    const status = (error as { statusCode?: number })?.statusCode;
    if (status === 401 || status === 403)
      return { ...base, ews: "unknown", reason: `The app's identity cannot read the organization from Microsoft Graph (needs Organization.Read.All): ${publicMessage(error, 200)}` };
    throw error;
  }
  const done = { ...base, tenantId: tenant.tenantId };
  try {
    let config = await exchange.getOrganizationConfig(tenant);
    if (mode === "manage") {
      if (input.enableEwsForTenant && config.EwsEnabled !== true) {
        await exchange.setEwsEnabled(tenant, true);
        done.actions.push("enabledEws");
        config = await exchange.getOrganizationConfig(tenant);
      }
      for (let attempt = 1; !isAppIdListed(config.EwsAllowedAppIDs, input.appId); attempt++) {
        if (attempt > VERIFY_ATTEMPTS) throw new Error(`Exchange Online did not keep the app id ${input.appId} in EwsAllowedAppIDs after ${VERIFY_ATTEMPTS} writes`);
        if (attempt > 1) await deps.sleep(500 * attempt);
        await exchange.addEwsAllowedAppIds(tenant, [input.appId]);
        if (!done.actions.includes("addedAppId")) done.actions.push("addedAppId");
        config = await exchange.getOrganizationConfig(tenant);
      }
    }
    const verdict = ewsVerdict(config, input.appId);
    return { ...done, ...verdict };
  } catch (error) {
    if (error instanceof ExchangeAccessError) return { ...done, ews: "unknown", reason: publicMessage(error, 300) };
    throw error;
  }
}

export const allowEwsAccessActivity = {
  name: ALLOW_EWS_ACCESS,
  handler: (input: unknown) => allowEwsAccess(input as AllowEwsAccessInput),
};
