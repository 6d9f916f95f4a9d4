// agentwatch: everything in one resource group. Deploy with `azd up` (azure.yaml) or
// `az deployment group create -g <rg> -f infra/main.bicep -p infra/main.parameters.json`.
// The Entra diagnostic setting is tenant-scoped and deployed separately (entra-diagnostics.bicep),
// using the outputs ENTRA_DIAGNOSTICS_AUTHORIZATION_RULE_ID and ENTRA_HUB below.

targetScope = 'resourceGroup'

@description('Name of the environment (azd passes AZURE_ENV_NAME); part of every resource name.')
@minLength(1)
@maxLength(20)
param environmentName string

@description('Azure region for every resource. Must offer Flex Consumption.')
param location string = resourceGroup().location

@description('Hub the Entra diagnostic setting streams to.')
param entraHubName string = 'entra-logs'

@description('Consumer group the Function reads with.')
param consumerGroupName string = 'agentwatch'

@description('Partitions of the Entra hub.')
@minValue(1)
@maxValue(32)
param eventHubPartitionCount int = 4

@description('Days the hub keeps events (how long agentwatch may be down and still catch up).')
@minValue(1)
@maxValue(7)
param eventHubRetentionDays int = 3

@description('Table for detection state.')
param stateTableName string = 'agentwatchstate'

@description('Table for dead letters (unreadable records, refused alerts).')
param deadLetterTableName string = 'agentwatchdeadletters'

@description('Global ceiling on Graph response actions. Start with dryRun; see docs/response.md.')
@allowed([
  'off'
  'dryRun'
  'approval'
  'auto'
])
param responseMode string = 'dryRun'

@description('How late an event may arrive and still land in its detection window.')
param lateness string = '15m'

@description('NCRONTAB schedule of the Graph inventory and AgentsInfo pull.')
param inventorySchedule string = '0 */30 * * * *'

@description('Upper bound on Function instances.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Also send every alert to an Event Hub (for SIEMs other than Sentinel).')
param alertsHubEnabled bool = false

@description('Log Analytics retention in days.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 90

@description('E-mail addresses for agentwatch\'s own health alerts (pipeline silent, batches failing, alerts not reaching Sentinel, records dead-lettered). Optional: without any, the alerts show in Azure Monitor only.')
param healthAlertEmails array = []

@description('Entra log categories the health alerts expect to keep arriving, each with how long it may be silent while other batches are processed (ISO 8601). Empty: no category alerts. Optional; defaults to AuditLogs 6 h, service principal and non-interactive user sign-ins 2 h.')
param healthExpectedCategories array = [
  {
    category: 'AuditLogs'
    silentAfter: 'PT6H'
  }
  {
    category: 'ServicePrincipalSignInLogs'
    silentAfter: 'PT2H'
  }
  {
    category: 'NonInteractiveUserSignInLogs'
    silentAfter: 'PT2H'
  }
]

var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var tags = {
  'azd-env-name': environmentName
  application: 'agentwatch'
}
var deploymentContainerName = 'app-package-${take(resourceToken, 7)}'

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    workspaceName: 'log-agentwatch-${resourceToken}'
    appInsightsName: 'appi-agentwatch-${resourceToken}'
    retentionInDays: logRetentionInDays
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    storageAccountName: take('staw${resourceToken}', 24)
    deploymentContainerName: deploymentContainerName
    stateTableName: stateTableName
    deadLetterTableName: deadLetterTableName
    tags: tags
  }
}

module eventHubs 'modules/eventhubs.bicep' = {
  name: 'eventhubs'
  params: {
    location: location
    namespaceName: 'evhns-agentwatch-${resourceToken}'
    hubName: entraHubName
    consumerGroupName: consumerGroupName
    partitionCount: eventHubPartitionCount
    messageRetentionInDays: eventHubRetentionDays
    alertsHubEnabled: alertsHubEnabled
    tags: tags
  }
}

// The Function is created first (its identity is needed by the role assignments and the DCR); the
// Sentinel settings it reads come from the sentinel module, so they are set in a second pass below.
module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    planName: 'plan-agentwatch-${resourceToken}'
    functionAppName: 'func-agentwatch-${resourceToken}'
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    maximumInstanceCount: maximumInstanceCount
    tags: union(tags, {
      'azd-service-name': 'agentwatch'
    })
    appSettings: baseAppSettings
  }
}

module sentinel 'modules/sentinel.bicep' = {
  name: 'sentinel'
  params: {
    workspaceName: monitoring.outputs.workspaceName
    location: location
    functionPrincipalId: functionApp.outputs.principalId
  }
}

module healthAlerts 'modules/healthalerts.bicep' = {
  name: 'healthalerts'
  params: {
    location: location
    workspaceId: monitoring.outputs.workspaceId
    alertEmails: healthAlertEmails
    expectedCategories: healthExpectedCategories
    namePrefix: 'agentwatch-${take(resourceToken, 7)}'
    tags: tags
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: functionApp.outputs.principalId
    storageAccountName: storage.outputs.storageAccountName
    eventHubNamespaceName: eventHubs.outputs.namespaceName
    eventHubName: eventHubs.outputs.hubName
    appInsightsName: monitoring.outputs.appInsightsName
    alertsHubEnabled: alertsHubEnabled
  }
}

// Every setting the app reads in Azure; the names are checked against SETTINGS in src/config.ts by
// test/unit/settings.test.ts.
var baseAppSettings = {
  AzureWebJobsStorage__accountName: storage.outputs.storageAccountName
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
  EntraLogsEventHub__fullyQualifiedNamespace: eventHubs.outputs.fullyQualifiedNamespace
  ENTRA_HUB: eventHubs.outputs.hubName
  ENTRA_CONSUMER_GROUP: eventHubs.outputs.consumerGroupName
  AGENTWATCH_STATE_TABLE_ENDPOINT: storage.outputs.tableEndpoint
  AGENTWATCH_STATE_TABLE: storage.outputs.stateTableName
  AGENTWATCH_DEADLETTER_TABLE: storage.outputs.deadLetterTableName
  AGENTWATCH_RESPONSE_MODE: responseMode
  AGENTWATCH_LATENESS: lateness
  AGENTWATCH_INVENTORY_SCHEDULE: inventorySchedule
  // A young generation that holds a whole Event Hubs batch: with V8's default every scavenge copies
  // the batch being evaluated and GC dominates (bench/run.ts measures with the same flag).
  languageWorkers__node__arguments: '--max-semi-space-size=64'
}

module functionAppSettings 'modules/appsettings.bicep' = {
  name: 'functionapp-settings'
  dependsOn: [
    roles
  ]
  params: {
    functionAppName: functionApp.outputs.functionAppName
    appSettings: union(baseAppSettings, {
      AGENTWATCH_SENTINEL_ENDPOINT: sentinel.outputs.logsIngestionEndpoint
      AGENTWATCH_SENTINEL_DCR_ID: sentinel.outputs.dcrImmutableId
      AGENTWATCH_SENTINEL_STREAM: sentinel.outputs.streamName
    }, alertsHubEnabled ? {
      AGENTWATCH_ALERTS_EVENTHUB_NAMESPACE: eventHubs.outputs.fullyQualifiedNamespace
      AGENTWATCH_ALERTS_HUB: eventHubs.outputs.alertsHubName
    } : {})
  }
}

output AZURE_LOCATION string = location
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.functionAppName
output AZURE_FUNCTION_PRINCIPAL_ID string = functionApp.outputs.principalId
output EVENTHUB_NAMESPACE string = eventHubs.outputs.fullyQualifiedNamespace
output ENTRA_HUB string = eventHubs.outputs.hubName
output ENTRA_CONSUMER_GROUP string = eventHubs.outputs.consumerGroupName
output ENTRA_DIAGNOSTICS_AUTHORIZATION_RULE_ID string = eventHubs.outputs.diagnosticsAuthorizationRuleId
output AGENTWATCH_STATE_TABLE_ENDPOINT string = storage.outputs.tableEndpoint
output LOG_ANALYTICS_WORKSPACE_NAME string = monitoring.outputs.workspaceName
output AGENTWATCH_SENTINEL_ENDPOINT string = sentinel.outputs.logsIngestionEndpoint
output AGENTWATCH_SENTINEL_DCR_ID string = sentinel.outputs.dcrImmutableId
