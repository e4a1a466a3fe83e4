/**
 * Exchange Online EWS retirement (docs/architecture.md, "Exchange Online"): Microsoft began blocking EWS on
 * 1 October 2026 and plans to shut it down on 1 April 2027. Creatio's Office 365 integration, as
 * published, uses EWS, so every site status carries this notice.
 */
export const EWS_BLOCKING_BEGAN = "2026-10-01";
export const EWS_SHUTDOWN_PLANNED = "2027-04-01";

export function ewsRetirementNotice(): string {
  return (
    "Creatio's Office 365 mail integration uses Exchange Web Services (EWS.AccessAsUser.All). " +
    `Microsoft began blocking EWS in Exchange Online on ${EWS_BLOCKING_BEGAN} (tenants on the allow-list excepted) ` +
    `and plans to shut it down on ${EWS_SHUTDOWN_PLANNED}. Plan this site's move to a Microsoft Graph based mail integration.`
  );
}
