// Entry point for `azd up` / `azd provision`: one resource group with everything the app needs.
// azd passes environmentName, location and principalId (main.parameters.json). Subscription scope so the
// resource group is created here too, the convention of the Azure-Samples azd templates
// (e.g. Azure-Samples/functions-quickstart-typescript-azd-eventgrid-blob, infra/main.bicep).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; used to name the resource group and derive a unique token for resource names.')
param environmentName string

@minLength(1)
@description('Region for every resource. It must offer the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the person running azd (AZURE_PRINCIPAL_ID). Given Key Vault Secrets Officer on the vault so they can store the Creatio credential secret that onboarding references. Empty: no such assignment.')
param principalId string = ''

@description('Kind of principal principalId is (User for a person, ServicePrincipal for a pipeline identity).')
@allowed(['User', 'ServicePrincipal', 'Group'])
param principalType string = 'User'

@description('Resource group name; default rg-<environmentName>.')
param resourceGroupName string = ''

@description('Microsoft Graph root for this cloud (GRAPH_BASE_URL). ARM environment() has no Microsoft Graph endpoint (its `graph` is the retired Azure AD Graph), so it is a parameter: https://graph.microsoft.us for US Gov, https://microsoftgraph.chinacloudapi.cn for 21Vianet.')
param graphBaseUrl string = 'https://graph.microsoft.com'

@description('EWS_ACCESS: manage (add each site app id to the tenant EwsAllowedAppIDs; the identity needs the Exchange Administrator role), check (read and report; a reader role such as Global Reader) or off.')
@allowed(['manage', 'check', 'off'])
param ewsAccess string = 'check'

@description('EXCHANGE_ADMIN_URL: Exchange Online admin API root and token resource for this cloud (https://outlook.office365.us for GCC High).')
param exchangeAdminUrl string = 'https://outlook.office365.com'

@description('PERMISSION_PROFILES: permission profiles beside the built-in creatio-ews, as JSON (README, "Permission profiles"); empty for none.')
param permissionProfiles string = ''

@description('PROVISIONER_CLIENT_ID: app id of the multi-tenant provisioner application that serves sites of other Entra tenants (README, "Serving several Microsoft 365 tenants"); infra/provisioner.sh creates it and sets this (azd env set PROVISIONER_CLIENT_ID). Empty: sites of the home tenant only.')
param provisionerClientId string = ''

@description('ADMIN_CONSENT_WAIT_HOURS: how long onboarding a site of another tenant waits for its administrator\'s consent before it fails (README, "Serving several Microsoft 365 tenants").')
@minValue(1)
@maxValue(720)
param adminConsentWaitHours int = 168

@description('ROTATION_SCHEDULE: six-field NCRONTAB of the rotation sweep timer. The "no sweep succeeded" alert assumes at least one run a day.')
param rotationSchedule string = '0 0 3 * * *'

@minValue(1)
@maxValue(700)
@description('ROTATE_DAYS_BEFORE_EXPIRY: the sweep starts a rotation when a secret expires within this many days.')
param rotateDaysBeforeExpiry int = 30

@minValue(0)
@maxValue(720)
@description('OLD_SECRET_GRACE_HOURS: hours the previous client secret stays valid after Creatio received the new one.')
param oldSecretGraceHours int = 24

@description('Email address for alert notifications. Empty: the alert rules still fire (visible in Azure Monitor) but notify nobody.')
param alertEmail string = ''

@description('Assign the Microsoft Graph application permissions to the managed identity in this deployment (Microsoft Graph Bicep extension). Needs a deployer who may grant app roles (Privileged Role Administrator or Global Administrator). Off: run infra/grant-graph-permissions.sh once instead.')
param grantGraphPermissions bool = false

@description('Also grant Policy.ReadWrite.Authorization (only needed for onboarding requests with allowUserConsent=true). Tenant-wide power: leave off unless you use that option.')
param allowUserConsentPermission bool = false

@description('Create the Key Vault Event Grid subscription in this deployment. Event Grid refuses an AzureFunction endpoint whose function does not exist yet, so the first `azd up` leaves it off and the postdeploy hook (infra/hooks/postdeploy.sh) creates it after the code is deployed; set it true (azd env set KEYVAULT_EVENTS_ENABLED true) once the app is deployed to keep it in the main template.')
param keyVaultEventsEnabled bool = false

@description('Name of the Event Grid triggered function that receives Key Vault SecretNearExpiry/SecretExpired events (what src/functions registers).')
param keyVaultEventFunctionName string = 'keyVaultSecretNearExpiry'

@allowed([2048, 4096])
@description('Flex Consumption instance memory.')
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Flex Consumption scale-out limit.')
param maximumInstanceCount int = 40

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module resources 'resources.bicep' = {
  name: 'resources'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    principalId: principalId
    principalType: principalType
    graphBaseUrl: graphBaseUrl
    ewsAccess: ewsAccess
    exchangeAdminUrl: exchangeAdminUrl
    permissionProfiles: permissionProfiles
    provisionerClientId: provisionerClientId
    adminConsentWaitHours: adminConsentWaitHours
    rotationSchedule: rotationSchedule
    rotateDaysBeforeExpiry: rotateDaysBeforeExpiry
    oldSecretGraceHours: oldSecretGraceHours
    alertEmail: alertEmail
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
  }
}

module keyVaultEvents 'app/keyvault-events.bicep' = if (keyVaultEventsEnabled) {
  name: 'keyVaultEvents'
  scope: rg
  params: {
    systemTopicName: resources.outputs.EVENT_GRID_SYSTEM_TOPIC_NAME
    functionAppName: resources.outputs.AZURE_FUNCTION_APP_NAME
    functionName: keyVaultEventFunctionName
  }
}

module graphPermissions 'graph-permissions.bicep' = if (grantGraphPermissions) {
  name: 'graphPermissions'
  scope: rg
  params: {
    managedIdentityPrincipalId: resources.outputs.AZURE_IDENTITY_PRINCIPAL_ID
    allowUserConsentPermission: allowUserConsentPermission
    ewsAccess: ewsAccess
  }
}

// Outputs azd stores in .azure/<env>/.env; the hooks, the permission script and the README use them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = resources.outputs.AZURE_FUNCTION_APP_NAME
output SERVICE_API_NAME string = resources.outputs.AZURE_FUNCTION_APP_NAME
output SERVICE_API_URI string = resources.outputs.SERVICE_API_URI
output AZURE_IDENTITY_NAME string = resources.outputs.AZURE_IDENTITY_NAME
output AZURE_IDENTITY_CLIENT_ID string = resources.outputs.AZURE_IDENTITY_CLIENT_ID
output AZURE_IDENTITY_PRINCIPAL_ID string = resources.outputs.AZURE_IDENTITY_PRINCIPAL_ID
output KEY_VAULT_NAME string = resources.outputs.KEY_VAULT_NAME
output KEY_VAULT_URL string = resources.outputs.KEY_VAULT_URL
output EVENT_GRID_SYSTEM_TOPIC_NAME string = resources.outputs.EVENT_GRID_SYSTEM_TOPIC_NAME
output KEYVAULT_EVENT_FUNCTION_NAME string = keyVaultEventFunctionName
output APPLICATIONINSIGHTS_NAME string = resources.outputs.APPLICATIONINSIGHTS_NAME
output LOG_ANALYTICS_WORKSPACE_NAME string = resources.outputs.LOG_ANALYTICS_WORKSPACE_NAME
