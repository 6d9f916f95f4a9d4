/**
 * The Sentinel table columns come from the alert schema only, the committed column file (loaded by
 * the Bicep) is what the schema produces now, and the row mapper emits exactly those columns —
 * trimming oversize fields explicitly and refusing rows that still do not fit.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  RESERVED_COLUMN_NAMES,
  SENTINEL_COLUMNS,
  SENTINEL_ROW_LIMITS,
  SENTINEL_STREAM_NAME,
  SENTINEL_TABLE_NAME,
  renderSentinelColumnsJson,
  sentinelColumnsFromSchema,
  toSentinelRow,
  type SentinelRow,
} from '../../src/alerts/rows';
import type { Alert } from '../../src/alerts/types';
import { main as generateColumns } from '../../scripts/gen-sentinel-columns';

const repoRoot = join(__dirname, '..', '..');
const alertSchema = JSON.parse(readFileSync(join(repoRoot, 'schemas', 'alert.schema.json'), 'utf8')) as { properties: Record<string, { 'x-sentinelType': string }> };

function fullAlert(overrides: Partial<Alert> = {}): Alert {
  return {
    id: 'awa-7f3c2e1d9b8a',
    detectionId: 'agent-takeover-chain',
    detectionVersion: 2,
    title: 'Agent takeover chain on blueprint Contoso Helpdesk',
    description: 'A credential was added to the blueprint, exchanged from a new IP, then an agent gained Mail.Send.',
    severity: 'critical',
    status: 'stable',
    firstEventTime: '2026-11-24T09:01:00.000Z',
    lastEventTime: '2026-11-24T09:40:00.000Z',
    createdTime: '2026-11-24T09:41:02.000Z',
    tenantId: '3f1c9e2a-5b6d-4e7f-8a9b-0c1d2e3f4a5b',
    entities: [
      { type: 'blueprint', id: '11111111-aaaa-4bbb-8ccc-000000000001', name: 'Contoso Helpdesk', objectId: '22222222-aaaa-4bbb-8ccc-000000000002', principalId: '33333333-aaaa-4bbb-8ccc-000000000003' },
      { type: 'agentIdentity', id: '44444444-aaaa-4bbb-8ccc-000000000004', appId: '44444444-aaaa-4bbb-8ccc-000000000004', name: 'Helpdesk agent 7' },
      { type: 'user', id: '55555555-aaaa-4bbb-8ccc-000000000005', upn: 'mallory@contoso.example' },
      { type: 'ip', id: '203.0.113.77' },
    ],
    dedupKey: 'agent-takeover-chain:11111111-aaaa-4bbb-8ccc-000000000001',
    evidence: ['audit-1', 'signin-2', 'audit-3'],
    tactics: ['Persistence', 'Privilege Escalation'],
    techniques: ['T1098.001', 'T1550.001', 'T1078.004'],
    actions: [{ action: 'disableAgentIdentity', mode: 'dryRun', targetId: '44444444-aaaa-4bbb-8ccc-000000000004', targetType: 'agentIdentity', outcome: 'planned', actionId: 'act-1', decidedAt: '2026-11-24T09:41:02.000Z' }],
    triage: 'Check who added the key and whether the exchange IP is yours.',
    details: { newIp: '203.0.113.77', keyId: 'k-1' },
    blueprintAppId: '11111111-aaaa-4bbb-8ccc-000000000001',
    agentIdentityId: '44444444-aaaa-4bbb-8ccc-000000000004',
    ...overrides,
  };
}

function minimalAlert(): Alert {
  return {
    id: 'awa-min',
    detectionId: 'agent-risk-detected',
    title: 'Agent at risk',
    severity: 'high',
    firstEventTime: '2026-11-24T09:01:00.000Z',
    lastEventTime: '2026-11-24T09:01:00.000Z',
    createdTime: '2026-11-24T09:02:00.000Z',
    entities: [],
    dedupKey: 'agent-risk-detected:x',
    evidence: [],
    tactics: [],
    techniques: [],
    actions: [],
  };
}

function rowOf(alert: Alert): SentinelRow {
  const result = toSentinelRow(alert);
  if (result.kind !== 'row') throw new Error(`expected a row, got ${JSON.stringify(result)}`);
  return result.row;
}

const columnNames = SENTINEL_COLUMNS.map((column) => column.name);

describe('Sentinel columns from the alert schema', () => {
  it('has TimeGenerated first and one column per schema property, typed by x-sentinelType', () => {
    expect(SENTINEL_COLUMNS[0]).toMatchObject({ name: 'TimeGenerated', type: 'datetime', field: 'createdTime' });
    expect(SENTINEL_COLUMNS.slice(1).map((column) => column.field)).toEqual(Object.keys(alertSchema.properties));
    for (const column of SENTINEL_COLUMNS.slice(1)) expect(column.type).toBe(alertSchema.properties[column.field]!['x-sentinelType']);
  });

  it('uses only names Log Analytics accepts: valid, unique, none reserved (id, Title and TenantId are renamed)', () => {
    const lower = columnNames.map((name) => name.toLowerCase());
    expect(new Set(lower).size).toBe(columnNames.length);
    for (const name of columnNames) expect(name).toMatch(/^[A-Za-z][A-Za-z0-9_]{0,44}$/);
    const reserved = RESERVED_COLUMN_NAMES.filter((name) => name !== 'TimeGenerated').map((name) => name.toLowerCase());
    expect(lower.filter((name) => reserved.includes(name))).toEqual([]);
    expect(SENTINEL_COLUMNS.filter((column) => ['id', 'title', 'tenantId'].includes(column.field)).map((column) => column.name)).toEqual(['AlertId', 'AlertTitle', 'EntraTenantId']);
  });

  it('reports every schema problem at once, with its location', () => {
    const broken = {
      properties: {
        id: { type: 'string', 'x-sentinelType': 'string' },
        alertId: { type: 'string', 'x-sentinelType': 'string' },
        type: { type: 'string', 'x-sentinelType': 'string' },
        size: { type: 'number' },
        when: { type: 'string', 'x-sentinelType': 'guid' },
      },
    };
    let thrown: unknown;
    try {
      sentinelColumnsFromSchema(broken, 'broken.json');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'CONFIG_INVALID' });
    expect((thrown as { problems: { path: string; message: string }[] }).problems).toEqual([
      { file: 'broken.json', path: '/properties/alertId', message: 'column name "AlertId" collides with the column of id' },
      { file: 'broken.json', path: '/properties/type', message: 'column name "Type" is reserved by Log Analytics; add a rename in src/alerts/rows.ts' },
      { file: 'broken.json', path: '/properties/size/x-sentinelType', message: 'expected one of string | int | long | real | boolean | datetime | dynamic, got undefined' },
      { file: 'broken.json', path: '/properties/when/x-sentinelType', message: 'expected one of string | int | long | real | boolean | datetime | dynamic, got "guid"' },
    ]);
  });

  it('the committed infra/sentinel/alert-columns.json is exactly what the schema produces now', () => {
    const committed = readFileSync(join(repoRoot, 'infra', 'sentinel', 'alert-columns.json'), 'utf8');
    expect(committed).toBe(renderSentinelColumnsJson());
    const parsed = JSON.parse(committed) as { tableName: string; streamName: string; columns: { name: string; type: string }[] };
    expect(parsed.tableName).toBe(SENTINEL_TABLE_NAME);
    expect(parsed.streamName).toBe(SENTINEL_STREAM_NAME);
    expect(parsed.columns.map((column) => column.name)).toEqual(columnNames);
  });

  it('the generator script checks and reports a stale file', () => {
    expect(generateColumns(['--check'], repoRoot)).toBe(0);
    const stderr: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => stderr.push(chunk) > 0) as typeof process.stderr.write;
    try {
      expect(generateColumns(['--check'], join(repoRoot, 'test'))).toBe(1);
    } finally {
      process.stderr.write = write;
    }
    expect(stderr.join('')).toContain('alert-columns.json is stale');
  });
});

describe('alert → Sentinel row', () => {
  it('emits exactly the table columns, for a full alert and for a minimal one', () => {
    expect(Object.keys(rowOf(fullAlert()))).toEqual(columnNames);
    expect(Object.keys(rowOf(minimalAlert()))).toEqual(columnNames);
  });

  it('maps values by column type: TimeGenerated is createdTime, ids stay strings, dynamic columns carry JSON, absent fields are null', () => {
    const alert = fullAlert();
    const row = rowOf(alert);
    expect(row).toMatchObject({
      TimeGenerated: alert.createdTime,
      AlertId: alert.id,
      AlertTitle: alert.title,
      DetectionVersion: 2,
      EntraTenantId: alert.tenantId,
      Severity: 'critical',
      DedupKey: alert.dedupKey,
      BlueprintAppId: alert.blueprintAppId,
      AgentIdentityId: alert.agentIdentityId,
    });
    expect(row.Entities).toEqual(alert.entities);
    expect(row.Evidence).toEqual(alert.evidence);
    expect(row.Techniques).toEqual(alert.techniques);
    expect(row.Details).toEqual(alert.details);
    const minimal = rowOf(minimalAlert());
    expect([minimal.Description, minimal.Triage, minimal.Details, minimal.EntraTenantId, minimal.DetectionVersion, minimal.BlueprintAppId]).toEqual([null, null, null, null, null, null]);
    for (const column of SENTINEL_COLUMNS) {
      const value = row[column.name];
      if (column.type === 'string') expect(typeof value, column.name).toBe('string');
      if (column.type === 'datetime') expect(Number.isNaN(Date.parse(value as string)), column.name).toBe(false);
      if (column.type === 'int') expect(Number.isInteger(value), column.name).toBe(true);
      if (column.type === 'dynamic') expect(typeof value, column.name).toBe('object');
    }
  });

  it('caps a huge evidence list with a count in Details, instead of letting the service cut the JSON', () => {
    const evidence = Array.from({ length: 5_000 }, (_, index) => `signin-${String(index).padStart(6, '0')}-c1a8e2f0-7d4b-4f5e-9a3c-2b1d0e9f8a7b`);
    const result = toSentinelRow(fullAlert({ evidence }));
    expect(result.kind).toBe('row');
    const { row, trims } = result as Extract<typeof result, { kind: 'row' }>;
    const kept = row.Evidence as string[];
    expect(kept).toEqual(evidence.slice(0, kept.length));
    expect(Buffer.byteLength(JSON.stringify(kept))).toBeLessThanOrEqual(SENTINEL_ROW_LIMITS.fieldBytes);
    expect(kept.length).toBeGreaterThan(500);
    expect(trims).toEqual([{ column: 'Evidence', kept: kept.length, total: 5_000, unit: 'items' }]);
    expect((row.Details as Record<string, unknown>).agentwatchTruncated).toEqual(trims);
    expect((row.Details as Record<string, unknown>).keyId).toBe('k-1');
  });

  it('cuts an over-long string at the limit with a visible marker, and drops the largest detail keys first', () => {
    const result = toSentinelRow(fullAlert({ description: 'é'.repeat(40_000), details: { small: 1, blob: 'x'.repeat(70_000) } }));
    const { row, trims } = result as Extract<typeof result, { kind: 'row' }>;
    expect(Buffer.byteLength(row.Description as string)).toBeLessThanOrEqual(SENTINEL_ROW_LIMITS.fieldBytes);
    expect(row.Description as string).toMatch(/^é+ …\[truncated\]$/);
    expect(row.Details).toEqual({ small: 1, agentwatchTruncated: trims });
    expect(trims).toEqual([
      { column: 'Description', kept: expect.any(Number), total: 80_000, unit: 'bytes' },
      { column: 'Details', kept: 1, total: 2, unit: 'keys' },
    ]);
  });

  it('refuses a row that does not fit one call even after trimming, saying how big it is', () => {
    const result = toSentinelRow(fullAlert(), { fieldBytes: 64_000, rowBytes: 1_000 });
    expect(result).toEqual({ kind: 'oversize', bytes: expect.any(Number), limit: 1_000 });
    expect((result as { bytes: number }).bytes).toBeGreaterThan(1_000);
  });

  it('for any alert, the row has exactly the columns and no field over the limit', () => {
    const text = fc.string({ maxLength: 40 });
    const arbitraryAlert = fc.record({
      id: fc.string({ minLength: 1, maxLength: 20 }),
      title: fc.string({ minLength: 1, maxLength: 200_000 }),
      evidence: fc.array(text, { maxLength: 4_000 }),
      tactics: fc.array(text, { maxLength: 5 }),
      details: fc.option(fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 30_000 }), { maxKeys: 6 }), { nil: undefined }),
    });
    fc.assert(
      fc.property(arbitraryAlert, (partial) => {
        const result = toSentinelRow({ ...minimalAlert(), ...partial });
        if (result.kind !== 'row') return false;
        expect(Object.keys(result.row)).toEqual(columnNames);
        for (const name of columnNames) {
          const value = result.row[name];
          const bytes = typeof value === 'string' ? Buffer.byteLength(value) : Buffer.byteLength(JSON.stringify(value));
          expect(bytes, name).toBeLessThanOrEqual(SENTINEL_ROW_LIMITS.fieldBytes);
        }
        return true;
      }),
      { numRuns: 60 },
    );
  });
});
