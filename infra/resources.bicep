// Every Azure resource of creatio-o365-oauth, in one resource group (called from main.bicep).
//
// Hosting: Flex Consumption (FC1). Durable Functions run there with the default Azure Storage
// backend, the one this app uses ("Only the Azure Storage backend is supported for Durable Functions
// apps hosted in the Flex Consumption plan", Azure/azure-functions-durable-extension#2957; see
// learn.microsoft.com/azure/azure-functions/durable/durable-functions-azure-storage-provider#flex-consumption-plan).
// Resource shapes follow the Flex Consumption samples (Azure-Samples/azure-functions-flex-consumption-samples,
// nzthiago/flex-consumption-bicep-basic basic-onefile-managedidentity/main.bicep).
//
// Secrets: none. Storage, Application Insights and Key Vault are reached with the user-assigned
// identity; shared keys and local auth are disabled so no key can leak into an app setting.

param location string
param tags object
param resourceToken string
param principalId string
param principalType string
param graphBaseUrl string
param ewsAccess string
param exchangeAdminUrl string
param permissionProfiles string
param provisionerClientId string
param adminConsentWaitHours int
param rotationSchedule string
param rotateDaysBeforeExpiry int
param oldSecretGraceHours int
param alertEmail string
param instanceMemoryMB int
param maximumInstanceCount int

var functionAppName = 'func-${resourceToken}'
// Flex Consumption reads the deployment package from a blob container (functionAppConfig.deployment).
var deploymentContainerName = 'app-package-${take(resourceToken, 7)}'

// Built-in role ids (learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
}

// ---------------------------------------------------------------------------------------------
// Identity: one user-assigned identity for storage, Key Vault, Application Insights and Graph.
// User-assigned (not system-assigned) so it exists before the app, its Graph permissions survive a
// re-created app, and AZURE_CLIENT_ID can name it for DefaultAzureCredential.
// ---------------------------------------------------------------------------------------------
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${resourceToken}'
  location: location
  tags: tags
}

// ---------------------------------------------------------------------------------------------
// Storage: host storage + Durable task hub (blobs, queues, tables) + the deployment container.
// ---------------------------------------------------------------------------------------------
resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    // No account keys: Flex Consumption deploys with the identity (deployment.storage.authentication)
    // and the host uses AzureWebJobsStorage__* identity settings.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }

  resource blobServices 'blobServices' = {
    name: 'default'
    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: { publicAccess: 'None' }
    }
  }
}

// Durable Functions with an identity-based AzureWebJobsStorage needs blob, queue and table data
// roles on the account (learn.microsoft.com/azure/azure-functions/durable/durable-functions-configure-managed-identity).
// Blob Data Owner covers the host's blob leases and the Flex deployment container.
resource storageBlobRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource storageQueueRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource storageTableRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---------------------------------------------------------------------------------------------
// Key Vault: the tenant registry and the only place a client secret is kept (docs/architecture.md "Key Vault is the registry").
// ---------------------------------------------------------------------------------------------
resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv-${resourceToken}'
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // Cannot be turned off again; a deleted vault or secret can only be recovered, never purged early.
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// The app sets, reads, lists, soft-deletes (offboarding) and recovers (onboarding an offboarded site
// again) secrets on this vault and nowhere else; Key Vault Secrets Officer covers all of them.
resource keyVaultIdentityRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, identity.id, roles.keyVaultSecretsOfficer)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The operator stores the Creatio credential secret that POST /api/tenants references by name.
resource keyVaultOperatorRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(keyVault.id, principalId, roles.keyVaultSecretsOfficer)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: principalId
    principalType: principalType
  }
}

// ---------------------------------------------------------------------------------------------
// Monitoring: Log Analytics + workspace-based Application Insights, Entra-only ingestion.
// ---------------------------------------------------------------------------------------------
resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${resourceToken}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${resourceToken}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    // Only Entra-authenticated ingestion (APPLICATIONINSIGHTS_AUTHENTICATION_STRING below): the
    // connection string's instrumentation key alone cannot write telemetry.
    DisableLocalAuth: true
  }
}

resource appInsightsPublisherRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---------------------------------------------------------------------------------------------
// Function App on Flex Consumption.
// ---------------------------------------------------------------------------------------------
resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${resourceToken}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  // azd finds the deployment target of service "api" (azure.yaml) by this tag.
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      // Flex Consumption takes the runtime here, not from FUNCTIONS_WORKER_RUNTIME /
      // WEBSITE_NODE_DEFAULT_VERSION app settings (which it rejects).
      runtime: {
        name: 'node'
        version: '20'
      }
    }
  }

  // Every setting local.settings.example.json lists and src/settings.ts validates, plus the
  // identity-based host storage and monitoring settings. No value here is a secret:
  // test/infra/bicep.test.ts fails on keys, AccountKey= connection strings and passwords.
  resource appSettings 'config' = {
    name: 'appsettings'
    properties: {
      // Identity-based host storage (learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity).
      AzureWebJobsStorage__accountName: storage.name
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__clientId: identity.properties.clientId
      APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
      // App settings (src/settings.ts).
      KEY_VAULT_URL: keyVault.properties.vaultUri
      GRAPH_BASE_URL: graphBaseUrl
      AZURE_CLIENT_ID: identity.properties.clientId
      AZURE_TENANT_ID: tenant().tenantId
      ROTATION_SCHEDULE: rotationSchedule
      ROTATE_DAYS_BEFORE_EXPIRY: string(rotateDaysBeforeExpiry)
      OLD_SECRET_GRACE_HOURS: string(oldSecretGraceHours)
      ROTATION_SWEEP_CONCURRENCY: '8'
      AZURE_AUTHORITY_HOST: environment().authentication.loginEndpoint
      AZURE_DISABLE_INSTANCE_DISCOVERY: 'false'
      KEY_VAULT_DISABLE_CHALLENGE_VERIFICATION: 'false'
      // Loopback Creatio addresses are for the local emulators only (src/domain/address.ts).
      CREATIO_ALLOW_LOOPBACK: 'false'
      // Exchange Online EWS access of each site's app (docs/architecture.md, "Exchange Online").
      EWS_ACCESS: ewsAccess
      EXCHANGE_ADMIN_URL: exchangeAdminUrl
      // Permission profiles beside the built-in creatio-ews (src/domain/permissions.ts); empty for none.
      PERMISSION_PROFILES: permissionProfiles
      // The multi-tenant provisioner for sites of other Entra tenants (infra/provisioner.sh); empty for the
      // home tenant only. Declared here because this resource replaces all app settings on every provision.
      PROVISIONER_CLIENT_ID: provisionerClientId
      // Where Entra sends a customer's administrator after consent: the redirect URI infra/provisioner.sh
      // registers on the provisioner (https://<default host name>/api/consent/callback), set rather than
      // derived from WEBSITE_HOSTNAME so both name the same address.
      CONSENT_REDIRECT_URI: 'https://${functionApp.properties.defaultHostName}/api/consent/callback'
      ADMIN_CONSENT_WAIT_HOURS: string(adminConsentWaitHours)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Event Grid system topic on the vault. Its subscription to the app's Event Grid function is in
// app/keyvault-events.bicep: Event Grid validates an AzureFunction endpoint at creation, so it can
// only be created after the code is deployed (azd postdeploy hook).
// ---------------------------------------------------------------------------------------------
resource keyVaultTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: 'evgt-kv-${resourceToken}'
  location: location
  tags: tags
  properties: {
    source: keyVault.id
    topicType: 'Microsoft.KeyVault.vaults'
  }
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    workspaceId: logAnalytics.id
    alertEmail: alertEmail
  }
}

output AZURE_FUNCTION_APP_NAME string = functionApp.name
output SERVICE_API_URI string = 'https://${functionApp.properties.defaultHostName}'
output AZURE_IDENTITY_NAME string = identity.name
output AZURE_IDENTITY_CLIENT_ID string = identity.properties.clientId
output AZURE_IDENTITY_PRINCIPAL_ID string = identity.properties.principalId
output KEY_VAULT_NAME string = keyVault.name
output KEY_VAULT_URL string = keyVault.properties.vaultUri
output EVENT_GRID_SYSTEM_TOPIC_NAME string = keyVaultTopic.name
output APPLICATIONINSIGHTS_NAME string = appInsights.name
output LOG_ANALYTICS_WORKSPACE_NAME string = logAnalytics.name
