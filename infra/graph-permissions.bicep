// Microsoft Graph application permissions (app roles) for the app's managed identity, least privilege
// (docs/architecture.md, "Microsoft Graph and Entra ID"):
//   Application.ReadWrite.OwnedBy           create the Creatio app registrations and manage only those it owns
//                                           (their passwords included)
//   Application.Read.All                    look up the Microsoft Graph and Exchange Online service principals
//                                           and their delegated scope ids
//   DelegatedPermissionGrant.ReadWrite.All  grant admin consent (oauth2PermissionGrants). Powerful: it can
//                                           grant any delegated permission to any client in the tenant.
//   Policy.ReadWrite.Authorization          only with allowUserConsentPermission (allowUserConsent requests)
//   Organization.Read.All                   unless ewsAccess is off: the tenant id and initial domain that
//                                           address Exchange Online's admin API (X-AnchorMailbox)
// and on Office 365 Exchange Online, unless ewsAccess is off:
//   Exchange.ManageAsApp                    call the Exchange Online admin API app-only (EwsAllowedAppIDs).
//                                           Exchange also requires an Entra directory role, which this
//                                           extension cannot assign: infra/grant-graph-permissions.sh does,
//                                           or assign the role output `directoryRoleToAssign` by hand.
//
// Uses the Microsoft Graph Bicep extension (GA, types v1.0.0, Bicep >= 0.36.1; learn.microsoft.com/graph/templates/bicep/whats-new),
// registered as microsoftGraphV1 in infra/bicepconfig.json. The deploying user needs the right to assign
// app roles (Privileged Role Administrator or Global Administrator). The same grants without Bicep:
// infra/grant-graph-permissions.sh. App role ids are looked up by name on the Graph service principal
// instead of being copied here.
extension microsoftGraphV1

@description('Object id of the managed identity\'s service principal (the user-assigned identity\'s principalId).')
param managedIdentityPrincipalId string

@description('Also grant Policy.ReadWrite.Authorization (tenant-wide user consent setting).')
param allowUserConsentPermission bool = false

var baseRoles = [
  'Application.ReadWrite.OwnedBy'
  'Application.Read.All'
  'DelegatedPermissionGrant.ReadWrite.All'
]
@description('EWS_ACCESS: manage, check or off (README, "Security model").')
@allowed(['manage', 'check', 'off'])
param ewsAccess string = 'check'

var ewsRoles = ewsAccess == 'off' ? [] : ['Organization.Read.All']
var appRoles = concat(baseRoles, allowUserConsentPermission ? ['Policy.ReadWrite.Authorization'] : [], ewsRoles)

// Microsoft Graph's service principal in this tenant (well-known appId).
resource graph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: '00000003-0000-0000-c000-000000000000'
}

resource assignments 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for role in appRoles: {
    appRoleId: filter(graph.appRoles, r => r.value == role && contains(r.allowedMemberTypes, 'Application'))[0].id
    principalId: managedIdentityPrincipalId
    resourceId: graph.id
  }
]

// Office 365 Exchange Online's service principal (well-known appId) and its Exchange.ManageAsApp app role
// (id dc50a0fb-09a3-484d-be87-e023b12c6440, looked up by name).
resource exchange 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: '00000002-0000-0ff1-ce00-000000000000'
}

resource manageAsApp 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (ewsAccess != 'off') {
  appRoleId: filter(exchange.appRoles, r => r.value == 'Exchange.ManageAsApp' && contains(r.allowedMemberTypes, 'Application'))[0].id
  principalId: managedIdentityPrincipalId
  resourceId: exchange.id
}

output grantedRoles array = appRoles
@description('The Entra directory role the identity also needs for EWS_ACCESS (assign it once; see README, "Security model").')
output directoryRoleToAssign string = ewsAccess == 'manage' ? 'Exchange Administrator' : ewsAccess == 'check' ? 'Global Reader' : ''

