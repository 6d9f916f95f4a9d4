// The Event Hubs namespace the Entra diagnostic setting streams to, the hub, agentwatch's own
// consumer group, and the namespace authorization rule the diagnostic setting needs.
//
// Azure Monitor streams with a SAS rule holding Listen, Send and Manage (all three are required),
// so local (SAS) auth stays enabled on the namespace even though the Function reads with its
// managed identity (Azure Event Hubs Data Receiver, granted in roles.bicep).

@description('Azure region.')
param location string

@description('Event Hubs namespace name (6-50 characters, globally unique).')
param namespaceName string

@description('Hub the Entra diagnostic setting streams to.')
param hubName string

@description('Consumer group agentwatch reads with (keep $Default free for ad-hoc readers).')
param consumerGroupName string

@description('Partitions of the hub. The Functions host runs at most one instance per partition; Entra sends no partition key.')
@minValue(1)
@maxValue(32)
param partitionCount int = 4

@description('Days events stay in the hub: how long agentwatch can be down and still catch up.')
@minValue(1)
@maxValue(7)
param messageRetentionInDays int = 3

@description('Throughput units. Auto-inflate raises them up to maximumThroughputUnits under load.')
@minValue(1)
@maxValue(20)
param capacity int = 1

@maxValue(40)
param maximumThroughputUnits int = 4

@description('Also create a hub that receives every alert, for SIEMs other than Sentinel.')
param alertsHubEnabled bool = false

@description('Name of that alerts hub.')
param alertsHubName string = 'agentwatch-alerts'

@description('Name of the Listen/Send/Manage rule the tenant diagnostic setting uses.')
param diagnosticsAuthorizationRuleName string = 'entra-diagnostics'

param tags object = {}

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
    capacity: capacity
  }
  properties: {
    minimumTlsVersion: '1.2'
    disableLocalAuth: false
    isAutoInflateEnabled: true
    maximumThroughputUnits: maximumThroughputUnits
    publicNetworkAccess: 'Enabled'
  }
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: namespace
  name: hubName
  properties: {
    partitionCount: partitionCount
    messageRetentionInDays: messageRetentionInDays
  }
}

resource consumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: hub
  name: consumerGroupName
  properties: {
    userMetadata: 'agentwatch Function (Event Hubs trigger)'
  }
}

resource alertsHub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = if (alertsHubEnabled) {
  parent: namespace
  name: alertsHubName
  properties: {
    partitionCount: 2
    messageRetentionInDays: messageRetentionInDays
  }
}

resource diagnosticsRule 'Microsoft.EventHub/namespaces/authorizationRules@2024-01-01' = {
  parent: namespace
  name: diagnosticsAuthorizationRuleName
  properties: {
    rights: [
      'Listen'
      'Send'
      'Manage'
    ]
  }
}

output namespaceName string = namespace.name
output namespaceId string = namespace.id
// serviceBusEndpoint is https://<ns>.servicebus.windows.net:443/ (cloud-specific suffix): keep the host.
output fullyQualifiedNamespace string = split(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':')[0]
output hubName string = hub.name
output hubId string = hub.id
output consumerGroupName string = consumerGroup.name
output alertsHubName string = alertsHubEnabled ? alertsHub.name : ''
output diagnosticsAuthorizationRuleId string = diagnosticsRule.id
