// The Microsoft Entra diagnostic setting that streams the logs agentwatch reads to Event Hubs.
// Tenant scope: deploy it once, by hand, as a user who is Security Administrator or Global
// Administrator in Entra (the API does not accept service principals):
//
//   az deployment tenant create --location <region> -f infra/entra-diagnostics.bicep \
//     -p eventHubAuthorizationRuleId=<ENTRA_DIAGNOSTICS_AUTHORIZATION_RULE_ID> eventHubName=<ENTRA_HUB>
//
// Sign-in categories need Entra ID P1/P2; RiskyUsers, UserRiskEvents need P2; RiskyAgents and
// AgentRiskEvents need the Agent ID risk features. A category the tenant is not licensed for is
// rejected: remove it from `categories`.

targetScope = 'tenant'

@description('Name of the diagnostic setting (a tenant allows at most 5).')
param settingName string = 'agentwatch'

@description('Resource id of the namespace authorization rule with Listen, Send and Manage (main.bicep output ENTRA_DIAGNOSTICS_AUTHORIZATION_RULE_ID).')
param eventHubAuthorizationRuleId string

@description('Hub to stream to (main.bicep output ENTRA_HUB). Empty = one hub per category, which agentwatch does not read.')
param eventHubName string

@description('Log categories to stream: every one agentwatch reads.')
param categories array = [
  'AuditLogs'
  'SignInLogs'
  'NonInteractiveUserSignInLogs'
  'ServicePrincipalSignInLogs'
  'ManagedIdentitySignInLogs'
  'RiskyUsers'
  'UserRiskEvents'
  'RiskyAgents'
  'AgentRiskEvents'
  'MicrosoftGraphActivityLogs'
]

resource entraDiagnostics 'microsoft.aadiam/diagnosticSettings@2017-04-01' = {
  name: settingName
  properties: {
    eventHubAuthorizationRuleId: eventHubAuthorizationRuleId
    eventHubName: eventHubName
    logs: [for category in categories: {
      category: category
      enabled: true
    }]
  }
}

output diagnosticSettingName string = entraDiagnostics.name
