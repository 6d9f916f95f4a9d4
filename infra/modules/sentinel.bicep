// Sentinel content for agentwatch alerts, as code:
//   custom table AgentwatchAlerts_CL ◄── DCR (kind Direct, stream Custom-AgentwatchAlerts_CL) ◄── Function (Logs Ingestion API)
//   Sentinel on the workspace, and an NRT analytics rule turning each row into an alert and
//   grouping alerts into incidents by the alert's dedup key.
// The table and stream columns come from ../sentinel/alert-columns.json, generated from
// schemas/alert.schema.json by scripts/gen-sentinel-columns.ts (a test fails when it is stale).
// The Function's identity gets Monitoring Metrics Publisher on the DCR, the role the upload needs.

@description('Existing Log Analytics workspace in this resource group (created by main.bicep).')
param workspaceName string

@description('Azure region of the data collection rule.')
param location string

@description('Object id of the Function App identity that uploads alerts.')
param functionPrincipalId string

@description('Data collection rule name.')
param dcrName string = 'dcr-agentwatch-alerts-${uniqueString(resourceGroup().id, workspaceName)}'

@description('Incidents group the alerts of one dedup key raised within this window (ISO 8601, 5 minutes to 7 days).')
param incidentGroupingLookback string = 'P1D'

@description('Create the analytics rule enabled.')
param analyticsRuleEnabled bool = true

var alertColumns = loadJsonContent('../sentinel/alert-columns.json')
var tableName = alertColumns.tableName
var streamName = alertColumns.streamName
var tableColumns = [for column in alertColumns.columns: {
  name: column.name
  type: column.type
  description: column.description
}]
var streamColumns = [for column in alertColumns.columns: {
  name: column.name
  type: column.type
}]

// Monitoring Metrics Publisher: allows posting to the DCR's Logs Ingestion endpoint.
var monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb'

resource workspace 'Microsoft.OperationalInsights/workspaces@2022-10-01' existing = {
  name: workspaceName
}

resource alertsTable 'Microsoft.OperationalInsights/workspaces/tables@2022-10-01' = {
  parent: workspace
  name: tableName
  properties: {
    plan: 'Analytics'
    schema: {
      name: tableName
      description: 'agentwatch alerts: one row per alert raised on Entra Agent ID identities.'
      columns: tableColumns
    }
  }
}

resource alertsDcr 'Microsoft.Insights/dataCollectionRules@2023-03-11' = {
  name: dcrName
  location: location
  // Direct: the rule has its own logsIngestion endpoint, no data collection endpoint needed.
  kind: 'Direct'
  properties: {
    description: 'agentwatch alerts into ${tableName}'
    streamDeclarations: {
      '${streamName}': {
        columns: streamColumns
      }
    }
    destinations: {
      logAnalytics: [
        {
          name: 'agentwatchWorkspace'
          workspaceResourceId: workspace.id
        }
      ]
    }
    dataFlows: [
      {
        streams: [
          streamName
        ]
        destinations: [
          'agentwatchWorkspace'
        ]
        // Rows already carry TimeGenerated (the alert's createdTime) and the table's columns.
        transformKql: 'source'
        outputStream: streamName
      }
    ]
  }
  dependsOn: [
    alertsTable
  ]
}

resource dcrPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(alertsDcr.id, functionPrincipalId, monitoringMetricsPublisherRoleId)
  scope: alertsDcr
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource sentinelOnboarding 'Microsoft.SecurityInsights/onboardingStates@2024-03-01' = {
  scope: workspace
  name: 'default'
  properties: {}
}

// NRT (runs every minute on ingestion time): agentwatch already decided each row is an alert, so
// the rule only shapes it; one Sentinel alert per row, incidents grouped by the dedup key.
// NRT is only in the preview API versions of alertRules.
resource alertsRule 'Microsoft.SecurityInsights/alertRules@2024-10-01-preview' = {
  scope: workspace
  name: guid(workspace.id, 'agentwatch', 'alerts-nrt')
  kind: 'NRT'
  properties: {
    displayName: 'agentwatch: Entra Agent ID alert'
    description: 'Raises the alerts agentwatch writes to ${tableName} (attacks on Entra Agent ID blueprints, agent identities and agent users). Title, severity, tactics and techniques come from each row; the dedup key groups alerts into incidents.'
    enabled: analyticsRuleEnabled
    severity: 'Medium'
    query: loadTextContent('../sentinel/agentwatch-alerts.kql')
    suppressionEnabled: false
    suppressionDuration: 'PT1H'
    tactics: [
      'InitialAccess'
      'Persistence'
      'PrivilegeEscalation'
      'DefenseEvasion'
      'CredentialAccess'
      'LateralMovement'
    ]
    techniques: [
      'T1078'
      'T1098'
      'T1484'
      'T1528'
      'T1550'
    ]
    eventGroupingSettings: {
      aggregationKind: 'AlertPerResult'
    }
    alertDetailsOverride: {
      alertDisplayNameFormat: '{{AlertTitle}}'
      alertDescriptionFormat: '{{AlertDescriptionText}}'
      alertSeverityColumnName: 'AlertSeverity'
      alertTacticsColumnName: 'AlertTactics'
      alertDynamicProperties: [
        {
          alertProperty: 'ProductName'
          value: 'ProductName'
        }
        {
          alertProperty: 'RemediationSteps'
          value: 'Triage'
        }
        {
          alertProperty: 'Techniques'
          value: 'AlertTechniques'
        }
      ]
    }
    customDetails: {
      DetectionId: 'DetectionId'
      DedupKey: 'DedupKey'
      AlertId: 'AlertId'
      BlueprintAppId: 'BlueprintAppId'
      AgentIdentityId: 'AgentIdentityId'
      AgentwatchSeverity: 'Severity'
      FirstEventTime: 'FirstEventTime'
      LastEventTime: 'LastEventTime'
      Evidence: 'Evidence'
      ResponseActions: 'Actions'
    }
    entityMappings: [
      // A human user (on-behalf-of flows, owners, initiators).
      {
        entityType: 'Account'
        fieldMappings: [
          {
            identifier: 'AadUserId'
            columnName: 'UserObjectId'
          }
          {
            identifier: 'Name'
            columnName: 'UserName'
          }
          {
            identifier: 'UPNSuffix'
            columnName: 'UserUpnSuffix'
          }
        ]
      }
      // The agent's own user account (agentIDuser).
      {
        entityType: 'Account'
        fieldMappings: [
          {
            identifier: 'AadUserId'
            columnName: 'AgentUserObjectId'
          }
          {
            identifier: 'Name'
            columnName: 'AgentUserName'
          }
          {
            identifier: 'UPNSuffix'
            columnName: 'AgentUserUpnSuffix'
          }
        ]
      }
      // The agent identity as a principal (service principal object id)…
      {
        entityType: 'Account'
        fieldMappings: [
          {
            identifier: 'AadUserId'
            columnName: 'AgentIdentityObjectId'
          }
          {
            identifier: 'Name'
            columnName: 'AgentIdentityName'
          }
        ]
      }
      // …and as an application (its app id).
      {
        entityType: 'CloudApplication'
        fieldMappings: [
          {
            identifier: 'AppId'
            columnName: 'AgentIdentityAppId'
          }
          {
            identifier: 'Name'
            columnName: 'AgentIdentityName'
          }
        ]
      }
      // The blueprint application, by app id.
      {
        entityType: 'CloudApplication'
        fieldMappings: [
          {
            identifier: 'AppId'
            columnName: 'BlueprintEntityAppId'
          }
          {
            identifier: 'Name'
            columnName: 'BlueprintName'
          }
        ]
      }
      // The blueprint's service principal, by object id.
      {
        entityType: 'Account'
        fieldMappings: [
          {
            identifier: 'AadUserId'
            columnName: 'BlueprintPrincipalObjectId'
          }
        ]
      }
      {
        entityType: 'IP'
        fieldMappings: [
          {
            identifier: 'Address'
            columnName: 'IpAddress'
          }
        ]
      }
    ]
    incidentConfiguration: {
      createIncident: true
      groupingConfiguration: {
        enabled: true
        matchingMethod: 'Selected'
        groupByCustomDetails: [
          'DedupKey'
        ]
        groupByEntities: []
        groupByAlertDetails: []
        lookbackDuration: incidentGroupingLookback
        reopenClosedIncident: false
      }
    }
  }
  dependsOn: [
    sentinelOnboarding
    alertsTable
  ]
}

@description('Logs Ingestion endpoint of the DCR (AGENTWATCH_SENTINEL_ENDPOINT).')
output logsIngestionEndpoint string = alertsDcr.properties.endpoints.logsIngestion

@description('Immutable id of the DCR (AGENTWATCH_SENTINEL_DCR_ID).')
output dcrImmutableId string = alertsDcr.properties.immutableId

@description('DCR stream the alerts are posted to (AGENTWATCH_SENTINEL_STREAM).')
output streamName string = streamName
