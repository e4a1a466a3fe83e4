import { z } from "zod";

/**
 * Exchange Online EWS access of a site's app (docs/architecture.md, "Exchange Online"). Creatio's
 * Office 365 mail integration calls EWS with the app this product registers. Since 1 October 2026
 * Exchange Online blocks EWS unless the organization has `EwsEnabled` = `$true` and the calling
 * app's id is in `EwsAllowedAppIDs`; tenants that never acted were switched to `$false`
 * (Set-OrganizationConfig.md, MicrosoftDocs/office-docs-powershell, EwsAllowedAppIDs: "when
 * EwsEnabled is $true only listed app ids may use EWS; when $false all EWS is blocked; when $null
 * the list has no effect"; message center MC1227454 as reported by redmondmag.com, 2026-06-22, and
 * petri.com). EWS in Exchange Online shuts down for good on 1 April 2027.
 */
export const EWS_BLOCKING_BEGAN = "2026-10-01";
export const EWS_SHUTDOWN_ON = "2027-04-01";
const SHUTDOWN_MS = Date.parse(`${EWS_SHUTDOWN_ON}T00:00:00Z`);
/** An allowed site counts as at risk this many days before the shutdown. */
export const EWS_SHUTDOWN_WARNING_DAYS = 60;

/** notUsed: the site's permission profile does not use EWS (src/domain/permissions.ts), so neither the list nor the shutdown matter. */
export const ewsStates = ["allowed", "notAllowListed", "ewsDisabled", "unknown", "retired", "notUsed"] as const;
export type EwsState = (typeof ewsStates)[number];

/** What a look at the tenant found for one app (stored in the site's `mail` tag; no secrets). */
export const mailReadinessSchema = z.object({
  ews: z.enum(ewsStates),
  checkedAt: z.iso.datetime({ offset: true }),
  reason: z.string().max(300).optional(),
});
export type MailReadiness = z.infer<typeof mailReadinessSchema>;

export const ewsRetired = (now: Date): boolean => now.getTime() >= SHUTDOWN_MS;

/** Whole days until the shutdown, rounded down like every other days-left figure (0 once it has happened). */
export const daysToEwsShutdown = (now: Date): number => Math.max(0, Math.floor((SHUTDOWN_MS - now.getTime()) / 86_400_000));

/** Whether `ids` (a tenant's EwsAllowedAppIDs) lists `appId`; Exchange compares app ids without regard to case. */
export function isAppIdListed(ids: readonly string[], appId: string): boolean {
  const wanted = appId.toLowerCase();
  return ids.some((id) => id.toLowerCase() === wanted);
}

/**
 * The verdict for an app from the organization's settings. `EwsEnabled` $null: the list has no
 * effect, and Microsoft switched such tenants to blocked from 1 October 2026 (MC1227454), so it is
 * treated as disabled (an interpretation: a tenant still reading $null is not documented).
 */
export function ewsVerdict(
  config: { EwsEnabled: boolean | null; EwsAllowedAppIDs: string[] },
  appId: string,
  /** The list lower-cased, when one config is checked for many apps (the sweep): a lookup instead of a scan per app. */
  allowed?: ReadonlySet<string>,
): { ews: Exclude<EwsState, "unknown" | "retired" | "notUsed">; reason?: string } {
  if (config.EwsEnabled !== true) {
    return {
      ews: "ewsDisabled",
      reason: config.EwsEnabled === false ? "EwsEnabled is $false in this tenant: Exchange Online blocks every EWS call." : "EwsEnabled is not set in this tenant: since 1 October 2026 Exchange Online blocks EWS for such tenants.",
    };
  }
  if (allowed ? allowed.has(appId.toLowerCase()) : isAppIdListed(config.EwsAllowedAppIDs, appId)) return { ews: "allowed" };
  return { ews: "notAllowListed", reason: `The app id ${appId} is not in the tenant's EwsAllowedAppIDs: Exchange Online refuses its EWS calls.` };
}

/** The exact PowerShell an Exchange administrator runs (Connect-ExchangeOnline first) to let this app use EWS. */
export function ewsFix(state: EwsState, appId: string | null): string | null {
  if (state === "allowed" || state === "retired" || state === "notUsed" || !appId) return null;
  const add = `Set-OrganizationConfig -EwsAllowedAppIDs @{Add="${appId}"}`;
  return state === "ewsDisabled" ? `Set-OrganizationConfig -EwsEnabled $true; ${add}` : add;
}

/** The `mail` block of status answers: the stored readiness plus what follows from it today. */
export interface MailStatus {
  ews: EwsState;
  checkedAt: string | null;
  reason: string | null;
  fix: string | null;
  ewsShutdownOn: string;
  daysToShutdown: number;
}

export function mailStatus(readiness: MailReadiness | undefined, appId: string | null, now: Date): MailStatus {
  if (readiness?.ews === "notUsed") {
    return { ews: "notUsed", checkedAt: readiness.checkedAt, reason: readiness.reason ?? null, fix: null, ewsShutdownOn: EWS_SHUTDOWN_ON, daysToShutdown: daysToEwsShutdown(now) };
  }
  const retired = ewsRetired(now);
  const ews: EwsState = retired ? "retired" : (readiness?.ews ?? "unknown");
  const reason = retired
    ? `EWS in Exchange Online was shut down on ${EWS_SHUTDOWN_ON}: Creatio's Office 365 mail sync through EWS cannot work; the site needs a Microsoft Graph based mail integration.`
    : (readiness?.reason ?? (readiness ? null : "EWS access has not been checked yet for this site (onboard it again or wait for the next sweep)."));
  return { ews, checkedAt: readiness?.checkedAt ?? null, reason, fix: ewsFix(ews, appId), ewsShutdownOn: EWS_SHUTDOWN_ON, daysToShutdown: daysToEwsShutdown(now) };
}
