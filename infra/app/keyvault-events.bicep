// Delivers Key Vault SecretNearExpiry / SecretExpired events to the app's Event Grid function.
//
// Deployed after the code (infra/hooks/postdeploy.sh runs `az deployment group create` on this file),
// because Event Grid checks that an AzureFunction endpoint exists when the subscription is created;
// the Azure-Samples Event Grid quickstarts create their subscriptions after deployment for the same
// reason (Azure-Samples/functions-quickstart-typescript-azd-eventgrid-blob, postdeploy hook).
// main.bicep can also include it (keyVaultEventsEnabled) once the function exists.
//
// AzureFunction endpoint type: Event Grid calls the function through the platform with no webhook
// URL or system key to manage (learn.microsoft.com/azure/event-grid/handler-functions).

@description('Event Grid system topic whose source is the Key Vault.')
param systemTopicName string

@description('Function App name.')
param functionAppName string

@description('Event Grid triggered function registered by the app (src/functions).')
param functionName string = 'keyVaultSecretNearExpiry'

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: systemTopicName
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource subscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: topic
  name: 'keyvault-secret-expiry'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionApp.id}/functions/${functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      // Key Vault event types: learn.microsoft.com/azure/event-grid/event-schema-key-vault.
      // NearExpiry fires 30 days before expiry; Expired is the last-chance signal if a rotation failed.
      includedEventTypes: [
        'Microsoft.KeyVault.SecretNearExpiry'
        'Microsoft.KeyVault.SecretExpired'
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

output subscriptionName string = subscription.name
output functionResourceId string = '${functionApp.id}/functions/${functionName}'
