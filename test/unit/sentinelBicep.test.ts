/**
 * Content of infra/modules/sentinel.bicep (no Bicep CLI here: tree-sitter parses it, and the test
 * reads the literal values): the resources Sentinel needs, the role on the DCR, the module's
 * contract with main.bicep, columns from the generated schema file, and an NRT rule whose query
 * reads only real table columns and projects every column its mappings and details use.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type Parser from 'web-tree-sitter';
import { beforeAll, describe, expect, it } from 'vitest';
import { SENTINEL_COLUMNS, SENTINEL_STREAM_NAME, SENTINEL_TABLE_NAME, renderSentinelColumnsJson } from '../../src/alerts/rows';
import { parseBicep, readRepoFile, resourceTypes, type ParsedBicep } from '../support/bicepParser';

const repoRoot = join(__dirname, '..', '..');
const MODULE = 'infra/modules/sentinel.bicep';
const MONITORING_METRICS_PUBLISHER = '3913510d-42f4-4e42-8a64-420c390055eb';

type Literal = string | number | boolean | null | Literal[] | { [key: string]: Literal } | { expression: string };

/** A Bicep literal as a JS value; anything computed stays `{ expression: '<source>' }`. */
function literal(node: Parser.SyntaxNode): Literal {
  switch (node.type) {
    case 'object': {
      const result: Record<string, Literal> = {};
      for (const property of node.namedChildren.filter((child) => child.type === 'object_property')) {
        const [key, value] = property.namedChildren.filter((child) => child.type !== 'comment');
        result[key!.text.replace(/^'|'$/g, '')] = literal(value!);
      }
      return result;
    }
    case 'array':
      return node.namedChildren.filter((child) => child.type !== 'comment').map(literal);
    case 'string':
      return node.namedChildren.every((child) => child.type === 'string_content' || child.type === 'escape_sequence') ? node.text.slice(1, -1) : { expression: node.text };
    case 'number':
      return Number(node.text);
    case 'boolean':
      return node.text === 'true';
    default:
      return { expression: node.text };
  }
}

let parsed: ParsedBicep;
let source: string;

function resourceBody(typePrefix: string): Record<string, Literal> {
  const declaration = parsed.root
    .descendantsOfType('resource_declaration')
    .find((node) => node.namedChildren.find((child) => child.type === 'string')?.text.slice(1).startsWith(typePrefix));
  if (!declaration) throw new Error(`no resource of type ${typePrefix}`);
  return literal(declaration.namedChildren.find((child) => child.type === 'object')!) as Record<string, Literal>;
}

function declarations(kind: 'parameter_declaration' | 'output_declaration'): { name: string; text: string }[] {
  return parsed.root.descendantsOfType(kind).map((node) => ({ name: node.namedChildren.find((child) => child.type === 'identifier')!.text, text: node.text }));
}

/** `loadJsonContent('…')` / `loadTextContent('…')` paths, resolved against the module's folder. */
function loadedFile(fn: 'loadJsonContent' | 'loadTextContent'): string {
  const match = new RegExp(`${fn}\\('([^']+)'\\)`).exec(source);
  if (!match) throw new Error(`${MODULE} does not call ${fn}`);
  return join(repoRoot, dirname(MODULE), match[1]!);
}

beforeAll(async () => {
  source = readRepoFile(MODULE);
  parsed = await parseBicep(source);
});

describe('infra/modules/sentinel.bicep', () => {
  it('parses without syntax errors', () => {
    expect(parsed.problems).toEqual([]);
  });

  it('declares the table, the Direct DCR, Sentinel onboarding, the NRT rule and the role assignment', () => {
    const types = resourceTypes(parsed.root).map((type) => type.split('@')[0]);
    expect(types.sort()).toEqual(
      [
        'Microsoft.OperationalInsights/workspaces',
        'Microsoft.OperationalInsights/workspaces/tables',
        'Microsoft.Insights/dataCollectionRules',
        'Microsoft.Authorization/roleAssignments',
        'Microsoft.SecurityInsights/onboardingStates',
        'Microsoft.SecurityInsights/alertRules',
      ].sort(),
    );
    expect(resourceBody('Microsoft.SecurityInsights/onboardingStates')).toMatchObject({ name: 'default', scope: { expression: 'workspace' } });
  });

  it('keeps the contract main.bicep relies on: three required params, three outputs', () => {
    const params = declarations('parameter_declaration');
    const required = params.filter((param) => !param.text.includes('='));
    expect(required.map((param) => param.name).sort()).toEqual(['functionPrincipalId', 'location', 'workspaceName']);
    expect(declarations('output_declaration').map((output) => output.name).sort()).toEqual(['dcrImmutableId', 'logsIngestionEndpoint', 'streamName']);
    expect(source).toMatch(/output logsIngestionEndpoint string = alertsDcr\.properties\.endpoints\.logsIngestion/);
    expect(source).toMatch(/output dcrImmutableId string = alertsDcr\.properties\.immutableId/);
  });

  it('grants the Function identity Monitoring Metrics Publisher on the DCR itself', () => {
    const assignment = resourceBody('Microsoft.Authorization/roleAssignments');
    expect(assignment.scope).toEqual({ expression: 'alertsDcr' });
    expect(assignment.properties).toMatchObject({ principalId: { expression: 'functionPrincipalId' }, principalType: 'ServicePrincipal' });
    expect(source).toContain(`var monitoringMetricsPublisherRoleId = '${MONITORING_METRICS_PUBLISHER}'`);
    expect(JSON.stringify(assignment.properties)).toContain('monitoringMetricsPublisherRoleId');
  });

  it('builds the table and the stream from the generated column file, which matches the alert schema', () => {
    const columnsFile = loadedFile('loadJsonContent');
    expect(columnsFile).toBe(join(repoRoot, 'infra', 'sentinel', 'alert-columns.json'));
    expect(readFileSync(columnsFile, 'utf8')).toBe(renderSentinelColumnsJson());
    expect(source).toMatch(/var tableColumns = \[for column in alertColumns\.columns:/);
    expect(source).toMatch(/var streamColumns = \[for column in alertColumns\.columns:/);
    const table = resourceBody('Microsoft.OperationalInsights/workspaces/tables');
    expect(table).toMatchObject({ name: { expression: 'tableName' }, properties: { plan: 'Analytics', schema: { name: { expression: 'tableName' }, columns: { expression: 'tableColumns' } } } });
    const columns = JSON.parse(readFileSync(columnsFile, 'utf8')) as { tableName: string; streamName: string };
    expect([columns.tableName, columns.streamName]).toEqual([SENTINEL_TABLE_NAME, SENTINEL_STREAM_NAME]);
  });

  it('routes the stream to the table through a Direct DCR without transforming it', () => {
    const dcr = resourceBody('Microsoft.Insights/dataCollectionRules');
    expect(dcr.kind).toBe('Direct');
    expect(dcr.properties).toMatchObject({
      streamDeclarations: { '${streamName}': { columns: { expression: 'streamColumns' } } },
      dataFlows: [{ streams: [{ expression: 'streamName' }], destinations: ['agentwatchWorkspace'], transformKql: 'source', outputStream: { expression: 'streamName' } }],
      destinations: { logAnalytics: [{ name: 'agentwatchWorkspace', workspaceResourceId: { expression: 'workspace.id' } }] },
    });
  });
});

describe('the NRT analytics rule', () => {
  let rule: Record<string, Literal>;
  let properties: Record<string, Literal>;
  let kql: string;
  let projected: string[];
  const tableColumns = new Set(SENTINEL_COLUMNS.map((column) => column.name));

  beforeAll(() => {
    rule = resourceBody('Microsoft.SecurityInsights/alertRules');
    properties = rule.properties as Record<string, Literal>;
    kql = readFileSync(loadedFile('loadTextContent'), 'utf8');
    const code = stripKqlLiterals(kql);
    const tail = code.slice(code.lastIndexOf('| project'));
    projected = tail
      .replace('| project', '')
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean);
  });

  it('is an NRT rule over the agentwatch table, one alert per row, creating incidents', () => {
    expect(rule.kind).toBe('NRT');
    expect(properties.query).toEqual({ expression: expect.stringContaining('loadTextContent(') });
    expect(stripKqlLiterals(kql).trim().split('\n')[0]).toBe(SENTINEL_TABLE_NAME);
    expect(properties.eventGroupingSettings).toEqual({ aggregationKind: 'AlertPerResult' });
    expect(properties).toMatchObject({ severity: 'Medium', suppressionEnabled: false });
  });

  it('groups alerts into incidents on the dedup key', () => {
    expect(properties.incidentConfiguration).toMatchObject({
      createIncident: true,
      groupingConfiguration: { enabled: true, matchingMethod: 'Selected', groupByCustomDetails: ['DedupKey'], reopenClosedIncident: false },
    });
    expect((properties.customDetails as Record<string, string>).DedupKey).toBe('DedupKey');
  });

  it('surfaces detection id, blueprint app id, agent id and dedup key as custom details', () => {
    const details = properties.customDetails as Record<string, string>;
    expect(details).toMatchObject({ DetectionId: 'DetectionId', BlueprintAppId: 'BlueprintAppId', AgentIdentityId: 'AgentIdentityId', DedupKey: 'DedupKey' });
    expect(Object.keys(details).length).toBeLessThanOrEqual(20);
  });

  it('takes title, description, severity, tactics and techniques from the row', () => {
    expect(properties.alertDetailsOverride).toMatchObject({
      alertDisplayNameFormat: '{{AlertTitle}}',
      alertDescriptionFormat: '{{AlertDescriptionText}}',
      alertSeverityColumnName: 'AlertSeverity',
      alertTacticsColumnName: 'AlertTactics',
    });
    const dynamic = (properties.alertDetailsOverride as { alertDynamicProperties: { alertProperty: string; value: string }[] }).alertDynamicProperties;
    expect(dynamic.map((property) => property.alertProperty).sort()).toEqual(['ProductName', 'RemediationSteps', 'Techniques']);
  });

  it('maps users, agent users, agent identities, blueprints and IPs to entities with valid identifiers', () => {
    const mappings = properties.entityMappings as { entityType: string; fieldMappings: { identifier: string; columnName: string }[] }[];
    const identifiers: Record<string, string[]> = {
      Account: ['Name', 'UPNSuffix', 'AadUserId', 'AadTenantId', 'Sid', 'ObjectGuid', 'NTDomain', 'DnsDomain', 'PUID'],
      CloudApplication: ['AppId', 'Name', 'InstanceName'],
      IP: ['Address'],
    };
    expect(mappings.length).toBeLessThanOrEqual(10);
    for (const mapping of mappings) {
      expect(mapping.fieldMappings.length).toBeGreaterThanOrEqual(1);
      expect(mapping.fieldMappings.length).toBeLessThanOrEqual(3);
      for (const field of mapping.fieldMappings) expect(identifiers[mapping.entityType], `${mapping.entityType}.${field.identifier}`).toContain(field.identifier);
    }
    const byColumn = Object.fromEntries(mappings.flatMap((mapping) => mapping.fieldMappings.map((field) => [field.columnName, `${mapping.entityType}.${field.identifier}`])));
    expect(byColumn).toMatchObject({
      UserObjectId: 'Account.AadUserId',
      AgentUserObjectId: 'Account.AadUserId',
      AgentIdentityObjectId: 'Account.AadUserId',
      AgentIdentityAppId: 'CloudApplication.AppId',
      BlueprintEntityAppId: 'CloudApplication.AppId',
      BlueprintPrincipalObjectId: 'Account.AadUserId',
      IpAddress: 'IP.Address',
    });
  });

  it('projects every column the entity mappings, custom details and alert overrides use', () => {
    const mappings = properties.entityMappings as { fieldMappings: { columnName: string }[] }[];
    const override = properties.alertDetailsOverride as Record<string, unknown> & { alertDynamicProperties: { value: string }[] };
    const placeholders = [override.alertDisplayNameFormat, override.alertDescriptionFormat].flatMap((format) => [...String(format).matchAll(/\{\{(\w+)\}\}/g)].map((match) => match[1]!));
    const used = [
      ...mappings.flatMap((mapping) => mapping.fieldMappings.map((field) => field.columnName)),
      ...Object.values(properties.customDetails as Record<string, string>),
      ...placeholders,
      String(override.alertSeverityColumnName),
      String(override.alertTacticsColumnName),
      ...override.alertDynamicProperties.map((property) => property.value),
    ];
    expect(used.filter((column) => !projected.includes(column))).toEqual([]);
  });

  it('reads only columns the table has (every capitalised name is a table column or computed in the query)', () => {
    const code = stripKqlLiterals(kql);
    const computed = new Set([...code.matchAll(/\b([A-Za-z_]\w*)\s*=(?!=)/g)].map((match) => match[1]!));
    const capitalised = new Set([...code.matchAll(/\b([A-Z]\w*)\b/g)].map((match) => match[1]!));
    capitalised.delete(SENTINEL_TABLE_NAME);
    const unknown = [...capitalised].filter((name) => !computed.has(name) && !tableColumns.has(name));
    expect(unknown).toEqual([]);
    // The pass-through columns of the final projection really are table columns.
    expect(projected.filter((name) => !computed.has(name) && !tableColumns.has(name))).toEqual([]);
  });
});

/** Removes comments and string literals, so only KQL code is left to scan. */
function stripKqlLiterals(text: string): string {
  return text
    .replace(/\/\/.*$/gm, '')
    // One left-to-right pass, so the `@"` inside the ordinary string "@" is not taken for a verbatim string.
    .replace(/@"[^"]*"|"(?:[^"\\]|\\.)*"/g, '""');
}

it('the query file is where the module says', () => {
  expect(existsSync(join(repoRoot, 'infra', 'sentinel', 'agentwatch-alerts.kql'))).toBe(true);
});
