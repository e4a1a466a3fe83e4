/**
 * The delegated permissions Creatio's Office 365 integration needs (manual procedure steps 4-5).
 * Ids from docs/architecture.md, "Microsoft Graph and Entra ID": Office 365 Exchange Online `EWS.AccessAsUser.All`
 * (office-developer-exchange-docs, how-to-authenticate-an-ews-application-by-using-oauth.md) and
 * Microsoft Graph `User.Read` (microsoft-graph-devx-content permissions/new/provisioningInfo.json).
 * Scope ids are resolved at run time from the resource service principals; the ids here are the
 * documented values, used to cross-check and in tests.
 */

export interface RequiredResource {
  /** Human name for messages. */
  name: string;
  /** appId of the resource's service principal. */
  appId: string;
  /** Delegated scopes (oauth2PermissionScopes values) Creatio needs. */
  scopes: readonly { value: string; knownId: string }[];
}

export const EXCHANGE_ONLINE: RequiredResource = {
  name: "Office 365 Exchange Online",
  appId: "00000002-0000-0ff1-ce00-000000000000",
  // Not Microsoft Graph's own EWS.AccessAsUser.All (9769c687-...): Creatio calls EWS at outlook.office365.com.
  scopes: [{ value: "EWS.AccessAsUser.All", knownId: "3b5f3d61-589b-4a3c-a359-5dd4b5ee5bd5" }],
};

export const MICROSOFT_GRAPH: RequiredResource = {
  name: "Microsoft Graph",
  appId: "00000003-0000-0000-c000-000000000000",
  scopes: [{ value: "User.Read", knownId: "e1fe6dd8-ba31-4d61-89e7-88639da4683d" }],
};

export const REQUIRED_RESOURCES: readonly RequiredResource[] = [EXCHANGE_ONLINE, MICROSOFT_GRAPH];

/** Policy assigned by step 9 ("allow user consent"): the tenant-wide legacy user consent policy (learn.microsoft.com/entra/identity/enterprise-apps/configure-user-consent). */
export const USER_CONSENT_POLICY = "ManagePermissionGrantsForSelf.microsoft-user-default-legacy";
