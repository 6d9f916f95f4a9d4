// Writes the Function App's complete app settings. A separate step because some values (the Sentinel
// data collection rule) only exist after the Function's identity does. `config/appsettings`
// replaces the whole set, so it always receives every setting.

param functionAppName string

@description('App settings, name to value.')
param appSettings object

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: appSettings
}
