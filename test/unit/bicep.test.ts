/**
 * CI cannot run `bicep build` (no binary can be downloaded here), so every template is checked for
 * syntax with the tree-sitter grammar, and its content is asserted directly: resource types, the
 * built-in role ids, the Flex Consumption plan, the Node runtime, the diagnostic categories.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  bicepFilesUnder,
  modulePaths,
  parseBicep,
  readRepoFile,
  resourceTypes,
  stringLiterals,
  targetScope,
  type ParsedBicep,
} from '../support/bicepParser';

const repoRoot = join(__dirname, '..', '..');
const ROLE = {
  eventHubsDataReceiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde',
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
  eventHubsDataSender: '2b629674-e913-4c01-ae53-ef4638d8f975',
};
const ENTRA_CATEGORIES = [
  'AuditLogs',
  'SignInLogs',
  'NonInteractiveUserSignInLogs',
  'ServicePrincipalSignInLogs',
  'ManagedIdentitySignInLogs',
  'RiskyUsers',
  'UserRiskEvents',
  'RiskyAgents',
  'AgentRiskEvents',
  'MicrosoftGraphActivityLogs',
];

const files = bicepFilesUnder('infra');
const parsed = new Map<string, ParsedBicep>();

beforeAll(async () => {
  for (const file of files) parsed.set(file, await parseBicep(readRepoFile(file)));
});

function typesWithoutVersion(file: string): string[] {
  return resourceTypes(parsed.get(file)!.root).map((type) => type.split('@')[0].toLowerCase());
}

describe('Bicep syntax (tree-sitter-bicep)', () => {
  it('finds the templates', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'infra/main.bicep',
        'infra/entra-diagnostics.bicep',
        'infra/modules/functionapp.bicep',
        'infra/modules/storage.bicep',
        'infra/modules/eventhubs.bicep',
        'infra/modules/monitoring.bicep',
        'infra/modules/roles.bicep',
        'infra/modules/appsettings.bicep',
      ]),
    );
  });

  it.each(files)('%s parses with no ERROR or MISSING node', (file) => {
    expect(parsed.get(file)!.problems).toEqual([]);
  });

  it('catches a truncated template, with its position', async () => {
    const source = readRepoFile('infra/modules/eventhubs.bicep');
    const truncated = source.slice(0, source.indexOf("resource hub '"));
    const broken = `${truncated}resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {\n  parent: namespace\n  name: hubName\n`;
    const { problems } = await parseBicep(broken);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0].line).toBeGreaterThan(truncated.split('\n').length - 1);
  });

  it('catches a missing closing bracket and a malformed decorator', async () => {
    const missingBracket = await parseBicep("param tags array = [\n  'a'\n\nresource x 'Microsoft.Web/sites@2024-04-01' = {\n  name: 'x'\n}\n");
    expect(missingBracket.problems.length).toBeGreaterThan(0);
    const badDecorator = await parseBicep("@description('unterminated)\nparam location string\n");
    expect(badDecorator.problems.length).toBeGreaterThan(0);
    const valid = await parseBicep("@description('fine')\nparam location string\n");
    expect(valid.problems).toEqual([]);
  });
});

describe('main.bicep', () => {
  it('is resource-group scoped and calls every module, each of which exists', () => {
    const root = parsed.get('infra/main.bicep')!.root;
    expect(targetScope(root) ?? 'resourceGroup').toBe('resourceGroup');
    const modules = modulePaths(root);
    expect(modules.sort()).toEqual(
      [
        'modules/appsettings.bicep',
        'modules/eventhubs.bicep',
        'modules/functionapp.bicep',
        'modules/healthalerts.bicep',
        'modules/monitoring.bicep',
        'modules/roles.bicep',
        'modules/sentinel.bicep',
        'modules/storage.bicep',
      ].sort(),
    );
    const missing = modules.filter((module) => !existsSync(join(repoRoot, 'infra', module)));
    // sentinel.bicep belongs to the Sentinel work; every other module must be here.
    expect(missing.filter((module) => module !== 'modules/sentinel.bicep')).toEqual([]);
  });

  it('passes the Sentinel module the agreed parameters and reads its agreed outputs', () => {
    const source = readRepoFile('infra/main.bicep');
    const sentinelCall = source.slice(source.indexOf("module sentinel 'modules/sentinel.bicep'"));
    const params = sentinelCall.slice(sentinelCall.indexOf('params:'), sentinelCall.indexOf('\n}\n'));
    expect(params).toMatch(/workspaceName:/);
    expect(params).toMatch(/location:/);
    expect(params).toMatch(/functionPrincipalId: functionApp\.outputs\.principalId/);
    for (const output of ['logsIngestionEndpoint', 'dcrImmutableId', 'streamName']) expect(source).toContain(`sentinel.outputs.${output}`);
  });

  it('every parameter in main.parameters.json is declared in main.bicep', () => {
    const parameters = JSON.parse(readRepoFile('infra/main.parameters.json')).parameters as Record<string, unknown>;
    const root = parsed.get('infra/main.bicep')!.root;
    const declared = root.descendantsOfType('parameter_declaration').map((node) => node.namedChildren[0].text);
    expect(Object.keys(parameters).filter((name) => !declared.includes(name))).toEqual([]);
    expect(declared).toEqual(expect.arrayContaining(['environmentName', 'location', 'responseMode']));
  });

  it('outputs what the tenant-scope step and the app need', () => {
    const source = readRepoFile('infra/main.bicep');
    for (const output of ['ENTRA_DIAGNOSTICS_AUTHORIZATION_RULE_ID', 'ENTRA_HUB', 'AZURE_FUNCTION_APP_NAME', 'AZURE_FUNCTION_PRINCIPAL_ID', 'EVENTHUB_NAMESPACE']) {
      expect(source).toMatch(new RegExp(`^output ${output} string = `, 'm'));
    }
  });
});

describe('resources', () => {
  it('declares the whole footprint across the modules', () => {
    const declared = new Set(files.flatMap(typesWithoutVersion));
    const expected = [
      'microsoft.web/serverfarms',
      'microsoft.web/sites',
      'microsoft.web/sites/config',
      'microsoft.storage/storageaccounts',
      'microsoft.storage/storageaccounts/blobservices/containers',
      'microsoft.storage/storageaccounts/tableservices/tables',
      'microsoft.eventhub/namespaces',
      'microsoft.eventhub/namespaces/eventhubs',
      'microsoft.eventhub/namespaces/eventhubs/consumergroups',
      'microsoft.eventhub/namespaces/authorizationrules',
      'microsoft.operationalinsights/workspaces',
      'microsoft.insights/components',
      'microsoft.authorization/roleassignments',
      'microsoft.aadiam/diagnosticsettings',
      'microsoft.insights/scheduledqueryrules',
      'microsoft.insights/actiongroups',
    ];
    expect(expected.filter((type) => !declared.has(type))).toEqual([]);
  });

  describe('health alerts (infra/modules/healthalerts.bicep)', () => {
    const source = () => readRepoFile('infra/modules/healthalerts.bicep');
    const queries = () => [...source().matchAll(/query: '([^']*)'/g)].map((match) => match[1]);

    it('watch the function the Event Hubs trigger registers', () => {
      const registered = /app\.eventHub\('([^']+)'/.exec(readRepoFile('functions/entraLogs.ts'))![1];
      expect(source()).toContain(`param pipelineFunctionName string = '${registered}'`);
      expect(queries().filter((query) => query.startsWith('AppRequests'))).toHaveLength(2);
    });

    it('match log messages the code writes, at the level it writes them', () => {
      const messages = new Set(queries().flatMap((query) => [...query.matchAll(/Message startswith "agentwatch: ([^"]+) "/g)].map((match) => match[1])));
      expect([...messages].sort()).toEqual(['alert redrive', 'batch processed']);
      const code = [readRepoFile('functions/alertRedrive.ts'), readRepoFile('src/pipeline/index.ts')].join('\n');
      // Each is logged as a warning only when something is wrong (SeverityLevel 2 = warning).
      for (const message of messages) expect(code).toMatch(new RegExp(`log\\([^;]*\\? 'warn' : 'info', '${message}'`));
      expect(readRepoFile('src/host/logging.ts')).toContain('formatLogLine(`agentwatch: ${message}`, fields)');
      const traceQueries = queries().filter((q) => q.startsWith('AppTraces'));
      expect(traceQueries).toHaveLength(3);
      // The warning rules look for warnings; the category rule reads every summary line's byCategory.
      expect(traceQueries.filter((q) => q.includes('SeverityLevel == 2'))).toHaveLength(2);
      expect(traceQueries.filter((q) => q.includes('fields.byCategory['))).toHaveLength(1);
    });

    it("the category rule reads the summary line's byCategory, which the pipeline logs", () => {
      const pipeline = readRepoFile('src/pipeline/index.ts');
      const summaryCall = pipeline.slice(pipeline.indexOf("'batch processed', {"), pipeline.indexOf('});', pipeline.indexOf("'batch processed', {")));
      expect(summaryCall).toMatch(/\bbyCategory: summary\.byCategory\b/);
      expect(readRepoFile('infra/main.bicep')).toMatch(/param healthExpectedCategories array = \[[^\]]*category: 'AuditLogs'/s);
    });

    it('go to an action group only when e-mail addresses are given, and main.bicep passes them', () => {
      expect(source()).toMatch(/resource actionGroup 'Microsoft\.Insights\/actionGroups@[^']+' = if \(!empty\(alertEmails\)\)/);
      expect(readRepoFile('infra/main.bicep')).toMatch(/alertEmails: healthAlertEmails/);
      expect(readRepoFile('infra/main.bicep')).toMatch(/workspaceId: monitoring\.outputs\.workspaceId/);
      expect(readRepoFile('infra/main.bicep')).toMatch(/expectedCategories: healthExpectedCategories/);
    });
  });

  it.skipIf(!existsSync(join(repoRoot, 'infra', 'modules', 'sentinel.bicep')))('the Sentinel module declares the DCR, the custom table and Sentinel', () => {
    const types = typesWithoutVersion('infra/modules/sentinel.bicep');
    expect(types).toEqual(expect.arrayContaining(['microsoft.insights/datacollectionrules', 'microsoft.operationalinsights/workspaces/tables']));
    expect(types.some((type) => type.startsWith('microsoft.securityinsights/'))).toBe(true);
  });

  it('runs the Function on Flex Consumption (FC1), Linux, Node 22, with a system-assigned identity', () => {
    const source = readRepoFile('infra/modules/functionapp.bicep');
    const literals = stringLiterals(parsed.get('infra/modules/functionapp.bicep')!.root);
    expect(literals).toEqual(expect.arrayContaining(['FlexConsumption', 'FC1', 'functionapp,linux', 'SystemAssigned', 'node', '22', 'SystemAssignedIdentity']));
    expect(source).toMatch(/runtime: \{\s*name: 'node'\s*version: '22'\s*\}/);
    expect(source).toMatch(/reserved: true/);
    expect(source).toMatch(/httpsOnly: true/);
  });

  it('gives the Entra diagnostic setting a namespace rule with Listen, Send and Manage', () => {
    const source = readRepoFile('infra/modules/eventhubs.bicep');
    const rule = source.slice(source.indexOf("resource diagnosticsRule 'Microsoft.EventHub/namespaces/authorizationRules"));
    expect(rule).toMatch(/rights: \[\s*'Listen'\s*'Send'\s*'Manage'\s*\]/);
    expect(source).toMatch(/disableLocalAuth: false/);
  });

  it('keeps shared keys off the storage account (managed identity only)', () => {
    const source = readRepoFile('infra/modules/storage.bicep');
    expect(source).toMatch(/allowSharedKeyAccess: false/);
    expect(source).toMatch(/minimumTlsVersion: 'TLS1_2'/);
  });
});

describe('role assignments', () => {
  const rolesFile = 'infra/modules/roles.bicep';

  it.each(Object.entries(ROLE))('grants %s by its built-in role id', (_name, roleId) => {
    const everyLiteral = files.flatMap((file) => stringLiterals(parsed.get(file)!.root));
    expect(everyLiteral).toContain(roleId);
  });

  it('assigns each data-plane role to the Function identity at the right scope', () => {
    const source = readRepoFile(rolesFile);
    const assignment = (resourceName: string) => source.slice(source.indexOf(`resource ${resourceName} `)).split('\n}\n')[0];
    expect(assignment('hubReceiver')).toMatch(/scope: hub\b/);
    expect(assignment('hubReceiver')).toContain('roleIds.eventHubsDataReceiver');
    expect(assignment('blobOwner')).toMatch(/scope: storage\b/);
    expect(assignment('blobOwner')).toContain('roleIds.storageBlobDataOwner');
    expect(assignment('tableContributor')).toMatch(/scope: storage\b/);
    expect(assignment('tableContributor')).toContain('roleIds.storageTableDataContributor');
    expect(assignment('telemetryPublisher')).toMatch(/scope: appInsights\b/);
    // The alerts hub is optional: its sender role exists only with it.
    expect(source).toMatch(/resource alertsHubSender '[^']+' = if \(alertsHubEnabled\) \{/);
    expect(assignment('alertsHubSender')).toMatch(/scope: alertsHub\b/);
    for (const name of ['hubReceiver', 'blobOwner', 'tableContributor', 'telemetryPublisher', 'alertsHubSender']) {
      expect(assignment(name)).toMatch(/principalType: 'ServicePrincipal'/);
      // Deterministic names: re-deploying never creates a second assignment.
      expect(assignment(name)).toMatch(/name: guid\(/);
    }
  });

  it.skipIf(!existsSync(join(repoRoot, 'infra', 'modules', 'sentinel.bicep')))('lets the Function publish to the data collection rule (Monitoring Metrics Publisher)', () => {
    expect(stringLiterals(parsed.get('infra/modules/sentinel.bicep')!.root)).toContain(ROLE.monitoringMetricsPublisher);
  });
});

describe('entra-diagnostics.bicep (tenant scope)', () => {
  const file = 'infra/entra-diagnostics.bicep';

  it('targets the tenant and declares the aadiam diagnostic setting', () => {
    const root = parsed.get(file)!.root;
    expect(targetScope(root)).toBe('tenant');
    expect(resourceTypes(root)).toEqual(['microsoft.aadiam/diagnosticSettings@2017-04-01']);
  });

  it('streams exactly the ten categories agentwatch reads', () => {
    const root = parsed.get(file)!.root;
    const categoriesParam = root.descendantsOfType('parameter_declaration').find((node) => node.namedChildren[0].text === 'categories')!;
    const categories = categoriesParam.descendantsOfType('string').map((node) => node.text.replace(/^'|'$/g, ''));
    expect(categories.sort()).toEqual([...ENTRA_CATEGORIES].sort());
    expect(readRepoFile(file)).toMatch(/logs: \[for category in categories: \{\s*category: category\s*enabled: true\s*\}\]/);
  });
});

describe('azure.yaml', () => {
  it('deploys infra/main.bicep and the Function App tagged with the service name', () => {
    const azd = parseYaml(readRepoFile('azure.yaml')) as { infra: { provider: string; path: string; module: string }; services: Record<string, { host: string; language: string }> };
    expect(azd.infra).toMatchObject({ provider: 'bicep', path: 'infra', module: 'main' });
    const [serviceName, service] = Object.entries(azd.services)[0];
    expect(service.host).toBe('function');
    expect(readRepoFile('infra/main.bicep')).toContain(`'azd-service-name': '${serviceName}'`);
  });
});
