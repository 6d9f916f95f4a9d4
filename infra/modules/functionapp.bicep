// The Function App on the Flex Consumption plan (FC1): Linux, Node 22, system-assigned identity,
// app package deployed from a blob container with that identity. Flex rejects the legacy
// FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION settings: the runtime is set in
// functionAppConfig instead.

@description('Azure region (must offer Flex Consumption).')
param location string

param planName string
param functionAppName string

@description('Blob container URL the app package is deployed from (https://<account>.blob.core.windows.net/<container>).')
param deploymentContainerUrl string

@description('Upper bound on instances. The Event Hubs trigger uses at most one instance per partition.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per instance.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('App settings, name to value (see SETTINGS in src/config.ts).')
param appSettings object

@description('Tags; azd finds the app to deploy to by its azd-service-name tag.')
param tags object = {}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
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
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: string(setting.value)
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

output functionAppName string = functionApp.name
output functionAppId string = functionApp.id
output principalId string = functionApp.identity.principalId
output defaultHostName string = functionApp.properties.defaultHostName
