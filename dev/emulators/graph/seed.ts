// What a fresh sandbox tenant holds before the product touches it: the first-party service principals the
// product consents to (with their real, tenant-independent scope and app-role ids), the app's own identity,
// and the tenant-wide authorization policy.
import type { SandboxIdentity, SandboxProvisioner } from "../context";

export const MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000";
export const EXCHANGE_ONLINE_APP_ID = "00000002-0000-0ff1-ce00-000000000000";

export interface PermissionScope {
  adminConsentDescription: string;
  adminConsentDisplayName: string;
  id: string;
  isEnabled: boolean;
  type: "User" | "Admin";
  userConsentDescription: string | null;
  userConsentDisplayName: string | null;
  value: string;
}

export interface AppRole {
  allowedMemberTypes: string[];
  description: string;
  displayName: string;
  id: string;
  isEnabled: boolean;
  origin: string;
  value: string;
}

const scope = (id: string, value: string, type: "User" | "Admin", description: string): PermissionScope => ({
  adminConsentDescription: description,
  adminConsentDisplayName: description,
  id,
  isEnabled: true,
  type,
  userConsentDescription: type === "User" ? description : null,
  userConsentDisplayName: type === "User" ? description : null,
  value,
});

const role = (id: string, value: string, description: string): AppRole => ({
  allowedMemberTypes: ["Application"],
  description,
  displayName: description,
  id,
  isEnabled: true,
  origin: "Application",
  value,
});

// Microsoft Graph delegated scopes. Ids: microsoft-graph-devx-content permissions/new/provisioningInfo.json
// (docs/architecture.md, "Microsoft Graph and Entra ID"); Graph's own EWS.AccessAsUser.All is 9769c687-..., not Exchange Online's.
export const GRAPH_SCOPES: PermissionScope[] = [
  scope("e1fe6dd8-ba31-4d61-89e7-88639da4683d", "User.Read", "User", "Sign in and read user profile"),
  scope("7427e0e9-2fba-42fe-b0c0-848c9e6a8182", "offline_access", "User", "Maintain access to data you have given it access to"),
  scope("37f7f235-527c-4136-accd-4a02d197296e", "openid", "User", "Sign users in"),
  scope("14dad69e-099b-42c9-810b-d002981feec1", "profile", "User", "View users' basic profile"),
  scope("64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0", "email", "User", "View users' email address"),
  scope("9769c687-087d-48ac-9cb3-c37dde652038", "EWS.AccessAsUser.All", "User", "Access mailboxes as the signed-in user via Exchange Web Services"),
  scope("570282fd-fa5c-430d-a7fd-fc8dc98a9dca", "Mail.Read", "User", "Read user mail"),
  // Mail.ReadWrite (DelegatedWork) as in microsoft-graph-devx-content permissions/new/provisioningInfo.json; for
  // the Graph-based permission profile of the e2e tests (README, "Permission profiles").
  scope("024d486e-b451-40bb-833d-3e66d98c5c73", "Mail.ReadWrite", "User", "Read and write access to user mail"),
  scope("e383f46e-2787-4529-855e-0e479a3ffac0", "Mail.Send", "User", "Send mail as a user"),
  scope("1ec239c2-d7c9-4623-a91a-a9775856bb36", "Calendars.ReadWrite", "User", "Have full access to user calendars"),
];

// Microsoft Graph application permissions (app roles) the product's identity may hold. Ids: Graph
// permissions reference (permissions-reference.md), the same in every tenant.
export const GRAPH_APP_ROLES: AppRole[] = [
  role("18a4783c-866b-4cc7-a460-3d5e5662c884", "Application.ReadWrite.OwnedBy", "Manage apps that this app creates or owns"),
  role("9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30", "Application.Read.All", "Read all applications"),
  role("1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9", "Application.ReadWrite.All", "Read and write all applications"),
  role("8e8e4742-1d95-4f68-9d56-6ee75648c72a", "DelegatedPermissionGrant.ReadWrite.All", "Manage all delegated permission grants"),
  role("fb221be6-99f2-473f-bd32-01c6a0e9ca3b", "Policy.ReadWrite.Authorization", "Read and write your organization's authorization policy"),
  role("246dd0d5-5bd0-4def-940b-0421030a5b68", "Policy.Read.All", "Read your organization's policies"),
  role("7ab1d382-f21e-4acd-a863-ba3e13f7da61", "Directory.Read.All", "Read directory data"),
  role("498476ce-e0fe-48b0-b801-37ba7e2685c6", "Organization.Read.All", "Read organization information"),
];

// Office 365 Exchange Online. EWS.AccessAsUser.All = 3b5f3d61-...: office-developer-exchange-docs,
// how-to-authenticate-an-ews-application-by-using-oauth.md. App roles full_access_as_app (same page) and the
// IMAP/POP/SMTP app-only roles (Exchange "Authenticate an IMAP, POP or SMTP connection using OAuth").
export const EXCHANGE_SCOPES: PermissionScope[] = [
  scope("3b5f3d61-589b-4a3c-a359-5dd4b5ee5bd5", "EWS.AccessAsUser.All", "User", "Access mailboxes as the signed-in user via Exchange Web Services"),
];
export const EXCHANGE_APP_ROLES: AppRole[] = [
  role("dc890d15-9560-4a4c-9b7f-a736ec74ec40", "full_access_as_app", "Use Exchange Web Services with full access to all mailboxes"),
  role("5e5addcd-3e8d-4e90-baf5-964efab2b20a", "IMAP.AccessAsApp", "IMAP.AccessAsApp"),
  role("cb842b43-da6e-4506-86fe-bb12199c656d", "POP.AccessAsApp", "POP.AccessAsApp"),
  role("7146a1f0-8703-45b3-9eae-527a64c00995", "SMTP.SendAsApp", "SMTP.SendAsApp"),
  // Exchange Online's app-only management role (infra/grant-graph-permissions.sh; "App-only authentication for
  // unattended scripts in Exchange Online PowerShell").
  role("dc50a0fb-09a3-484d-be87-e023b12c6440", "Exchange.ManageAsApp", "Manage Exchange As Application"),
];

/** The Graph app roles the product needs (docs/architecture.md, "Microsoft Graph and Entra ID"; least privilege): the default for the sandbox identity. */
export const DEFAULT_IDENTITY_GRAPH_ROLES = [
  "Application.ReadWrite.OwnedBy",
  "Application.Read.All",
  "DelegatedPermissionGrant.ReadWrite.All",
  "Policy.ReadWrite.Authorization",
  // The tenant's initial domain for Exchange Online's X-AnchorMailbox (EWS_ACCESS check/manage).
  "Organization.Read.All",
];

/**
 * The application permissions the provisioner requires (issue 10): on Microsoft Graph the same set the app's
 * identity holds in its home tenant (DEFAULT_IDENTITY_GRAPH_ROLES), on Exchange Online Exchange.ManageAsApp
 * (of use only with EWS_ACCESS=manage/check, and only once the customer's administrator also assigns a
 * directory role to the provisioner's service principal: consent cannot assign directory roles).
 */
export const PROVISIONER_REQUIRED_ROLES: { resourceAppId: string; roles: string[] }[] = [
  { resourceAppId: MICROSOFT_GRAPH_APP_ID, roles: DEFAULT_IDENTITY_GRAPH_ROLES },
  { resourceAppId: EXCHANGE_ONLINE_APP_ID, roles: ["Exchange.ManageAsApp"] },
];

/**
 * What the provisioner application holds when seeded, in Graph's request shapes: its writable properties
 * (requiredResourceAccess with the role ids resolved from the resource service principals' appRoles, as
 * Entra resolves them) and its federated identity credential. The credential's issuer is exactly the `iss`
 * of the token the managed identity endpoint (/msi/token) issues for api://AzureADTokenExchange, its
 * subject the identity's principal (object) id (workload-identity-federation-config-app-trust-managed-identity).
 */
export function seedProvisioner(provisioner: SandboxProvisioner, identity: SandboxIdentity, appRolesOf: (resourceAppId: string) => AppRole[]) {
  const requiredResourceAccess = PROVISIONER_REQUIRED_ROLES.map(({ resourceAppId, roles }) => ({
    resourceAppId,
    resourceAccess: roles.map((value) => {
      const found = appRolesOf(resourceAppId).find((r) => r.value === value && r.allowedMemberTypes.includes("Application"));
      if (!found) throw new Error(`Seed: no application permission ${value} on ${resourceAppId}`);
      return { id: found.id, type: "Role" };
    }),
  }));
  return {
    application: {
      id: provisioner.objectId,
      appId: provisioner.appId,
      uniqueName: provisioner.uniqueName,
      displayName: provisioner.displayName,
      signInAudience: "AzureADMultipleOrgs",
      requiredResourceAccess,
      web: { redirectUris: [...provisioner.redirectUris] },
    },
    federatedCredential: {
      id: "f1c00000-0000-4000-8000-00000000f1c0",
      name: provisioner.federatedCredentialName,
      issuer: `https://login.microsoftonline.com/${identity.tenantId}/v2.0`,
      subject: identity.objectId,
      audiences: ["api://AzureADTokenExchange"],
      description: "The Function App's user-assigned managed identity (sandbox identity)",
    },
  };
}

/** Fixed object ids for the seeded service principals, so tests and logs are stable across resets. */
export const SEEDED_SP_IDS = {
  graph: "5e0d0b1c-0000-4000-8000-00000000a001",
  exchange: "5e0d0b1c-0000-4000-8000-00000000a002",
};

export interface SeedServicePrincipal {
  id: string;
  appId: string;
  displayName: string;
  servicePrincipalType: string;
  appOwnerOrganizationId: string | null;
  oauth2PermissionScopes: PermissionScope[];
  appRoles: AppRole[];
  servicePrincipalNames: string[];
}

// Microsoft's first-party apps are owned by Microsoft's own tenant (f8cdef31-a31e-4b4a-93e4-5f571e91255a), as
// GET servicePrincipals(appId='00000003-...') shows in any tenant.
const MICROSOFT_SERVICES_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";

export function seedServicePrincipals(identity: SandboxIdentity): SeedServicePrincipal[] {
  return [
    {
      id: SEEDED_SP_IDS.graph,
      appId: MICROSOFT_GRAPH_APP_ID,
      displayName: "Microsoft Graph",
      servicePrincipalType: "Application",
      appOwnerOrganizationId: MICROSOFT_SERVICES_TENANT,
      oauth2PermissionScopes: GRAPH_SCOPES,
      appRoles: GRAPH_APP_ROLES,
      servicePrincipalNames: [MICROSOFT_GRAPH_APP_ID, "https://graph.microsoft.com", "https://graph.microsoft.com/"],
    },
    {
      id: SEEDED_SP_IDS.exchange,
      appId: EXCHANGE_ONLINE_APP_ID,
      displayName: "Office 365 Exchange Online",
      servicePrincipalType: "Application",
      appOwnerOrganizationId: MICROSOFT_SERVICES_TENANT,
      oauth2PermissionScopes: EXCHANGE_SCOPES,
      appRoles: EXCHANGE_APP_ROLES,
      servicePrincipalNames: [EXCHANGE_ONLINE_APP_ID, "https://outlook.office365.com/", "https://outlook.office.com/"],
    },
    {
      // The app's own identity. In Azure it is a user-assigned managed identity (AZURE_CLIENT_ID), which has a
      // service principal but no application object; locally it signs in with a client secret.
      id: identity.objectId,
      appId: identity.clientId,
      displayName: "creatio-o365-oauth (sandbox identity)",
      servicePrincipalType: "ManagedIdentity",
      appOwnerOrganizationId: null,
      oauth2PermissionScopes: [],
      appRoles: [],
      servicePrincipalNames: [identity.clientId],
    },
  ];
}

/**
 * The tenant's authorization policy as a fresh tenant has it. Default user consent is on ("By default, all users
 * are allowed to consent to applications for permissions that don't require administrator consent":
 * entra-docs configure-user-consent.md, i.e. microsoft-user-default-legacy), and tenants also carry the
 * group/chat resource-specific consent entries `ManagePermissionGrantsForOwnedResource.*`, which a PATCH
 * must keep because the list is replaced wholly (authorizationpolicy-update.md).
 */
export function seedAuthorizationPolicy() {
  return {
    id: "authorizationPolicy",
    allowInvitesFrom: "everyone",
    allowedToSignUpEmailBasedSubscriptions: true,
    allowedToUseSSPR: true,
    allowEmailVerifiedUsersToJoinOrganization: false,
    allowUserConsentForRiskyApps: null as boolean | null,
    blockMsolPowerShell: false,
    displayName: "Authorization Policy",
    description: "Used to manage authorization related settings across the company.",
    guestUserRoleId: "10dae51f-b6af-4016-8d66-8c2a99b929b3",
    defaultUserRolePermissions: {
      allowedToCreateApps: true,
      allowedToCreateSecurityGroups: true,
      allowedToCreateTenants: true,
      allowedToReadBitlockerKeysForOwnedDevice: true,
      allowedToReadOtherUsers: true,
      permissionGrantPoliciesAssigned: [
        "ManagePermissionGrantsForSelf.microsoft-user-default-legacy",
        "ManagePermissionGrantsForOwnedResource.microsoft-dynamically-managed-permissions-for-team",
        "ManagePermissionGrantsForOwnedResource.microsoft-dynamically-managed-permissions-for-chat",
      ],
    },
  };
}
export type AuthorizationPolicy = ReturnType<typeof seedAuthorizationPolicy>;
