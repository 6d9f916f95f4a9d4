// Azure Monitor log alerts on agentwatch's own health, over the Function's telemetry in the Log
// Analytics workspace (workspace-based Application Insights: AppRequests, AppTraces). A detection
// pipeline that stops is silent, and silence reads as "all clear": these rules make the failure
// modes loud. The message texts below are the ones the code logs ('agentwatch: <message> {json}');
// test/unit/bicep.test.ts holds them to the source.
//
// 1. No batch processed for `silentAfter` (30 min): the Entra diagnostic setting was removed or narrowed (an
//    attacker's first move, ATT&CK T1562.008), the hub or its role assignment broke, or the
//    Function is down.
// 2. Batches failing: a dependency (Table Storage, Graph, Logs Ingestion) throws; Event Hubs
//    redelivers, so nothing is lost, but alerts wait.
// 3. Alerts not reaching Sentinel: the outbox still holds alerts after its redrive.
// 4. Malformed records dead-lettered: a schema change upstream, or someone feeding the hub.
// 5. One expected category stops while batches keep coming: the category was taken out of the
//    diagnostic setting (AuditLogs hides credential and permission changes), or never added.

@description('Azure region of the rules.')
param location string

@description('Log Analytics workspace the Function\'s Application Insights writes to.')
param workspaceId string

@description('Name of the Event Hubs-triggered function (functions/entraLogs.ts).')
param pipelineFunctionName string = 'entraLogs'

@description('E-mail addresses the health alerts go to. Optional: without any, the alerts still show in Azure Monitor.')
param alertEmails array = []

@description('How long without a processed batch before the silence alert fires (ISO 8601, as log alerts accept it).')
@allowed([
  'PT15M'
  'PT30M'
  'PT1H'
  'PT2H'
])
param silentAfter string = 'PT30M'

@description('Entra log categories expected to keep arriving, each with how long it may stay silent while batches of other categories are processed: [{ category, silentAfter (ISO 8601, at most P2D) }]. The defaults live in main.bicep (healthExpectedCategories).')
param expectedCategories array

param namePrefix string = 'agentwatch'

param tags object = {}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmails)) {
  name: '${namePrefix}-health'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'agentwatch'
    enabled: true
    emailReceivers: [for (email, index) in alertEmails: {
      name: 'email-${index}'
      emailAddress: email
      useCommonAlertSchema: true
    }]
  }
}

var actions = empty(alertEmails) ? {} : {
  actionGroups: [
    actionGroup.id
  ]
}

var rules = [
  {
    name: 'pipeline-silent'
    displayName: 'agentwatch: no Entra log batch processed (${silentAfter})'
    description: 'The ${pipelineFunctionName} function processed no batch. Check the Entra diagnostic setting (still present, still sending every category), the Event Hub\'s incoming messages, and the Function\'s state. Until this clears, agentwatch detects nothing.'
    severity: 1
    query: 'AppRequests\n| where OperationName == "${pipelineFunctionName}"'
    operator: 'LessThan'
    threshold: 1
    windowSize: silentAfter
    evaluationFrequency: 'PT5M'
  }
  {
    name: 'batches-failing'
    displayName: 'agentwatch: Entra log batches failing'
    description: 'A batch threw (a dependency: Table Storage, Graph, Logs Ingestion). Event Hubs redelivers it, so nothing is lost, but alerts are delayed until the dependency recovers. See the exceptions of the ${pipelineFunctionName} operation.'
    severity: 2
    query: 'AppRequests\n| where OperationName == "${pipelineFunctionName}" and Success == false'
    operator: 'GreaterThan'
    threshold: 0
    windowSize: 'PT15M'
    evaluationFrequency: 'PT5M'
  }
  {
    name: 'sentinel-outbox-pending'
    displayName: 'agentwatch: alerts not reaching Microsoft Sentinel'
    description: 'The alert outbox still held alerts after two redrives. Check the data collection rule, the Function identity\'s Monitoring Metrics Publisher role on it, and `npx agentwatch redrive --dry-run`.'
    severity: 2
    query: 'AppTraces\n| where Message startswith "agentwatch: alert redrive " and SeverityLevel == 2'
    operator: 'GreaterThan'
    threshold: 1
    windowSize: 'PT30M'
    evaluationFrequency: 'PT15M'
  }
  {
    name: 'records-dead-lettered'
    displayName: 'agentwatch: malformed Entra records dead-lettered'
    description: 'Records failed validation and went to the dead-letter table with their reasons (the batch went on). A burst means an upstream schema change or foreign data on the hub.'
    severity: 3
    query: 'AppTraces\n| where Message startswith "agentwatch: batch processed " and SeverityLevel == 2'
    operator: 'GreaterThan'
    threshold: 0
    windowSize: 'PT1H'
    evaluationFrequency: 'PT1H'
  }
]

resource healthRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for rule in rules: {
  name: '${namePrefix}-${rule.name}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: rule.displayName
    description: rule.description
    severity: rule.severity
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: rule.evaluationFrequency
    windowSize: rule.windowSize
    criteria: {
      allOf: [
        {
          query: rule.query
          timeAggregation: 'Count'
          operator: rule.operator
          threshold: rule.threshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}]

// The per-batch summary line ('agentwatch: batch processed {json}') carries `byCategory`: records
// read per category. A category is silent when batches were processed and none of them had it.
resource categoryRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for expected in expectedCategories: {
  name: '${namePrefix}-category-silent-${toLower(expected.category)}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'agentwatch: no ${expected.category} records while other Entra logs arrive (${expected.silentAfter})'
    description: 'Batches were processed but none held ${expected.category}. Check that the Entra diagnostic setting still sends this category: taking one out hides what it records while everything else keeps flowing (ATT&CK T1562.008).'
    severity: 2
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT30M'
    windowSize: expected.silentAfter
    criteria: {
      allOf: [
        {
          query: 'AppTraces\n| where Message startswith "agentwatch: batch processed "\n| extend fields = parse_json(substring(Message, strlen("agentwatch: batch processed ")))\n| summarize batches = count(), records = sum(coalesce(tolong(fields.byCategory["${expected.category}"]), 0))\n| where batches > 0 and records == 0'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}]

output ruleNames array = [for (rule, index) in rules: healthRules[index].name]
output categoryRuleNames array = [for (expected, index) in expectedCategories: categoryRules[index].name]
