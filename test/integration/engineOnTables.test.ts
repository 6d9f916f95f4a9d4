/**
 * The detection engine with its state in Table Storage (Azurite), driven through the whole
 * pipeline (buildApp): redelivery counts nothing twice, a new
 * instance resumes a window, and two instances racing on one key converge through etag conflicts.
 *
 * Records: the shared fixture base `t2Autonomous` (detections/fixtures/signins.yaml, constructed
 * data, see its README) patched into failed sign-ins of one agent identity, so that
 * `agent-failed-access-burst` (10 failures in 10 minutes) is the detection under test.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TableClient } from '@azure/data-tables';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { MemoryAlertSink } from '../../src/alerts/consoleSinks';
import type { Alert } from '../../src/alerts/types';
import { buildApp } from '../../src/app';
import { createEngine, loadDetections } from '../../src/engine';
import type { Clock } from '../../src/ports';
import { tableClientFromSettings, TableStateStore } from '../../src/state/tableStore';
import { useAzuriteTables } from '../support/azurite';

type PipelinePolicy = Parameters<TableClient['pipeline']['addPolicy']>[0];

const repoRoot = join(__dirname, '..', '..');
// The detection under test only: these cases are about state, and other rules may carry config needs of their own.
const detections = loadDetections([join(repoRoot, 'detections', 'agent-failed-access-burst.yaml')]);
const t2Autonomous = (parse(readFileSync(join(repoRoot, 'detections', 'fixtures', 'signins.yaml'), 'utf8')) as Record<string, Record<string, unknown>>).t2Autonomous!;
const AGENT = (t2Autonomous.properties as { appId: string }).appId;
const clock: Clock = { now: () => Date.parse('2026-10-05T11:00:00Z') };

const azurite = useAzuriteTables();
let tableCount = 0;

/** Failed T2 sign-in number `n` of the agent, 50 s apart from 10:00. */
function failure(n: number): Record<string, unknown> {
  const record = structuredClone(t2Autonomous) as { properties: Record<string, unknown> } & Record<string, unknown>;
  const at = new Date(Date.parse('2026-10-05T10:00:00Z') + n * 50_000).toISOString();
  record.time = at;
  record.properties.id = `51900000-0000-4000-8000-${String(n).padStart(12, '0')}`;
  record.properties.createdDateTime = at;
  record.properties.status = { errorCode: 53003, failureReason: 'Access has been blocked by Conditional Access policies.' };
  return record;
}

const body = (numbers: number[]): string => JSON.stringify({ records: numbers.map(failure) });
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function newTableName(): string {
  return `engine${process.pid}x${++tableCount}`;
}

/** One pipeline instance (as one Function instance would be) over the shared table. */
async function instance(tableName: string, policies: PipelinePolicy[] = []) {
  const table = tableClientFromSettings({ AGENTWATCH_STATE_CONNECTION_STRING: azurite().connectionString }, tableName);
  await table.createTable();
  for (const policy of policies) table.pipeline.addPolicy(policy);
  const state = new TableStateStore(table, { clock });
  const engine = createEngine({ detections, state, clock });
  const alertSink = new MemoryAlertSink();
  const app = await buildApp({ state, engine, alertSink, clock });
  return { app, engine, state, alerts: alertSink.alerts };
}

const burstAlerts = (alerts: Alert[]): Alert[] => alerts.filter((alert) => alert.detectionId === 'agent-failed-access-burst');

describe('engine on TableStateStore', () => {
  it('a redelivered batch neither counts nor alerts twice', async () => {
    const { app, alerts } = await instance(newTableName());
    const nine = body(range(1, 9));
    await app.processBatch([nine], { partitionId: '0', sequenceNumbers: [100] } as never);
    await app.processBatch([nine], { partitionId: '0', sequenceNumbers: [100] } as never); // redelivery
    expect(burstAlerts(alerts)).toEqual([]); // 18 counted would have crossed 10
    await app.processBatch([body([10])]);
    await app.processBatch([body([10])]); // the firing batch redelivered too
    const fired = burstAlerts(alerts);
    expect(fired).toHaveLength(1);
    expect(fired[0]!.title).toContain(': 10 failed token requests');
    expect(fired[0]!.entities).toContainEqual(expect.objectContaining({ type: 'agentIdentity', id: AGENT }));
  });

  it('a new instance over the same table resumes a window the first one started', async () => {
    const tableName = newTableName();
    const first = await instance(tableName);
    await first.app.processBatch([body(range(1, 6))]);
    expect(burstAlerts(first.alerts)).toEqual([]);
    const restarted = await instance(tableName);
    await restarted.app.processBatch([body(range(7, 10))]);
    const fired = burstAlerts(restarted.alerts);
    expect(fired).toHaveLength(1);
    expect(fired[0]!.title).toContain(': 10 failed token requests');
  });

  it('two instances racing on the same key converge: one alert, every failure counted once', async () => {
    const tableName = newTableName();
    // Hold each instance's first transaction until both have read their (empty) state, so both
    // write from the same snapshot and one of them must lose the compare-and-swap.
    let arrived = 0;
    let release!: () => void;
    const bothLoaded = new Promise<void>((resolve) => (release = resolve));
    const barrier = (): PipelinePolicy => {
      let held = false;
      return {
        name: 'holdFirstTransaction',
        sendRequest: async (request, next) => {
          if (!held && request.method === 'POST' && request.url.includes('$batch')) {
            held = true;
            if (++arrived === 2) release();
            await Promise.race([bothLoaded, new Promise((resolve) => setTimeout(resolve, 5_000))]);
          }
          return next(request);
        },
      };
    };
    const a = await instance(tableName, [barrier()]);
    const b = await instance(tableName, [barrier()]);
    await Promise.all([a.app.processBatch([body(range(1, 5))]), b.app.processBatch([body(range(6, 10))])]);
    expect(arrived).toBe(2);
    const conflicts = a.state.stats.conflicts + b.state.stats.conflicts;
    expect(conflicts).toBeGreaterThanOrEqual(1);
    const fired = [...burstAlerts(a.alerts), ...burstAlerts(b.alerts)];
    expect(fired).toHaveLength(1);
    expect(fired[0]!.title).toContain(': 10 failed token requests');
    // Both redeliver: still nothing new anywhere.
    await Promise.all([a.app.processBatch([body(range(1, 5))]), b.app.processBatch([body(range(6, 10))])]);
    expect([...burstAlerts(a.alerts), ...burstAlerts(b.alerts)]).toHaveLength(1);
  });
});
