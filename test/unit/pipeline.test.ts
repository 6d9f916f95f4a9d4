import { describe, expect, it } from 'vitest';
import { MemoryAlertSink, MemoryDeadLetterSink } from '../../src/alerts/consoleSinks';
import type { Alert } from '../../src/alerts/types';
import { buildApp } from '../../src/app';
import { AgentwatchError, ConfigError } from '../../src/errors';
import { Inventory, INVENTORY_PARTITION } from '../../src/inventory';
import type { AgentEvent } from '../../src/normalize';
import { processBatch, type PipelineDeps } from '../../src/pipeline';
import type { AlertSink, DeadLetter, DetectionEngine, InventoryView, Responder } from '../../src/ports';
import { MemoryStateStore } from '../../src/state/memoryStore';
import { loadRecord } from '../fixtures/records/load';

const AGENT = 'aaaaaaaa-1111-2222-3333-444444444444';
const BLUEPRINT_APP = 'dddddddd-1111-2222-3333-444444444444';

/** A hand-written engine double: records what it was given and raises one alert per audit. */
class RecordingEngine implements DetectionEngine {
  readonly batches: { ids: string[]; times: number[]; grantee?: string; known?: string }[] = [];
  async evaluate(events: AgentEvent[], inventory: InventoryView): Promise<Alert[]> {
    const grant = events.find((e) => e.audit?.operation === 'Add delegated permission grant');
    this.batches.push({ ids: events.map((e) => e.id), times: events.map((e) => e.timeMs), grantee: grant?.audit?.grantee?.type, known: inventory.lookup(AGENT)?.kind });
    return events
      .filter((e) => e.kind === 'audit')
      .map((e) => ({
        id: `alert-${e.id}`,
        detectionId: 'test-audit',
        title: e.audit!.operation,
        severity: 'low',
        firstEventTime: e.time,
        lastEventTime: e.time,
        createdTime: e.time,
        entities: [],
        dedupKey: e.id,
        evidence: [e.id],
        tactics: [],
        techniques: [],
        actions: [],
      }));
  }
}

function deps(overrides: Partial<PipelineDeps> = {}): PipelineDeps & { engine: RecordingEngine; alertSink: MemoryAlertSink; deadLetters: MemoryDeadLetterSink } {
  return { inventory: new Inventory(), engine: new RecordingEngine(), alertSink: new MemoryAlertSink(), deadLetters: new MemoryDeadLetterSink(), ...overrides } as never;
}

describe('processBatch', () => {
  it('evaluates in event-time order, after the inventory learned from earlier events of the batch', async () => {
    const d = deps();
    // Delivered out of order: the grant (09:02) first, the agent's creation (10-01) last.
    await processBatch([{ records: [loadRecord('audit-delegated-grant'), loadRecord('t2-autonomous')] }, { records: [loadRecord('audit-add-agent-identity')] }], {}, d);
    const [batch] = d.engine.batches;
    expect(batch!.times).toEqual([...batch!.times].sort((a, b) => a - b));
    expect(batch!.ids[0]).toBe('Directory_a2a2a2a2-0001-4000-8000-000000000001_ABCDE_1000002');
    expect(batch!.grantee).toBe('agentIdentity');
    expect(batch!.known).toBe('agentIdentity');
  });

  it('dead-letters bad input first, then evaluates, sends alerts and summarizes', async () => {
    const order: string[] = [];
    const letters: DeadLetter[] = [];
    const alerts: Alert[] = [];
    const d = deps({
      deadLetters: { put: async (l: DeadLetter[]) => void (order.push('deadLetters'), letters.push(...l)) },
      alertSink: { send: async (a: Alert[]) => void (order.push('alerts'), alerts.push(...a)) } as AlertSink,
    });
    const summary = await processBatch(['not json', { records: [loadRecord('audit-add-blueprint'), { category: 'AuditLogs' }, { category: 'ProvisioningLogs', properties: {} }] }], { partitionId: '2', sequenceNumbers: [5, 6] }, d);
    expect(order).toEqual(['deadLetters', 'alerts']);
    expect(letters.map((l) => [l.code, l.position.sequenceNumber, l.position.recordIndex])).toEqual([
      ['RECORD_UNDECODABLE', '5', undefined],
      ['RECORD_INVALID', '6', 1],
    ]);
    expect(alerts.map((a) => a.detectionId)).toEqual(['test-audit']);
    expect(summary).toMatchObject({ messages: 2, recordsRead: 3, events: 1, rejected: 2, skippedByCategory: { ProvisioningLogs: 1 }, alerts: 1, alertsByDetection: { 'test-audit': 1 } });
  });

  it("logs one summary line per batch with the records of each category (the health alerts read it)", async () => {
    const lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
    const d = deps({ logger: { log: (level, message, fields) => void lines.push({ level, message, fields }) } });
    await processBatch([{ records: [loadRecord('audit-add-blueprint'), loadRecord('t2-autonomous'), loadRecord('t2-autonomous')] }], { partitionId: '1' }, d);
    const summaries = lines.filter((line) => line.message === 'batch processed');
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatchObject({ level: 'info', fields: { partitionId: '1', records: 3, byCategory: { AuditLogs: 1, ServicePrincipalSignInLogs: 2 } } });
  });

  it('passes alerts through the responder and sends what it returns', async () => {
    const responder: Responder = {
      respond: async (alerts) => alerts.map((a) => ({ ...a, actions: [{ action: 'disableAgentIdentity', mode: 'dryRun', targetId: AGENT, outcome: 'planned', actionId: `${a.id}:disable`, decidedAt: a.createdTime }] })),
    };
    const d = deps({ responder });
    await processBatch([loadRecord('audit-add-blueprint')], {}, d);
    expect(d.alertSink.alerts[0]!.actions).toEqual([expect.objectContaining({ action: 'disableAgentIdentity', outcome: 'planned' })]);
  });

  it('a failing alert sink fails the batch (so the host retries it) after the dead letters were kept', async () => {
    const d = deps({ alertSink: { send: async () => Promise.reject(new AgentwatchError('SINK_TRANSIENT', 'sentinel is down')) } as AlertSink });
    await expect(processBatch(['{', loadRecord('audit-add-blueprint')], {}, d)).rejects.toMatchObject({ code: 'SINK_TRANSIENT' });
    expect(d.deadLetters.letters).toHaveLength(1);
  });

  it('writes the inventory learned in the batch through the state store at batch end', async () => {
    const state = new MemoryStateStore();
    const d = deps({ inventory: new Inventory({ state }) });
    await processBatch([{ records: [loadRecord('audit-add-blueprint'), loadRecord('audit-add-agent-identity')] }], {}, d);
    expect((await state.list(INVENTORY_PARTITION)).map((r) => r.key.row).sort()).toEqual([`agentIdentity:${AGENT}`, `blueprint:${BLUEPRINT_APP}`]);
  });
});

describe('buildApp', () => {
  it('runs the shipped detections with in-memory state; a redelivered batch raises nothing new', async () => {
    const sink = new MemoryAlertSink();
    const app = await buildApp({ alertSink: sink });
    const batch = [{ records: [loadRecord('audit-add-blueprint'), loadRecord('audit-blueprint-credential-added')] }];
    const first = await app.processBatch(batch, { partitionId: '0', sequenceNumbers: [1] });
    expect(first.alertsByDetection['blueprint-credential-added']).toBe(1);
    const again = await app.processBatch(batch, { partitionId: '0', sequenceNumbers: [1] });
    expect(again.alerts).toBe(0);
    expect(app.totals).toMatchObject({ messages: 2, recordsRead: 4, alerts: first.alerts });
    expect(sink.alerts.filter((a) => a.detectionId === 'blueprint-credential-added')).toHaveLength(1);
  });

  it('a config file that disables a detection silences it; a broken one is refused with its location', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'agentwatch-config-'));
    const off = join(dir, 'off.yaml');
    writeFileSync(off, 'detections:\n  blueprint-credential-added:\n    enabled: false\n');
    const sink = new MemoryAlertSink();
    const app = await buildApp({ alertSink: sink, configFile: off });
    await app.processBatch([{ records: [loadRecord('audit-add-blueprint'), loadRecord('audit-blueprint-credential-added')] }]);
    expect(sink.alerts.map((a) => a.detectionId)).not.toContain('blueprint-credential-added');

    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'detections:\n  no-such-detection:\n    enabled: false\n');
    const error = await buildApp({ configFile: broken }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems[0]).toMatchObject({ file: broken, path: '/detections/no-such-detection' });
  });

  it('an unreadable inventory seed is a config error naming the file', async () => {
    await expect(buildApp({ inventorySeed: '/nonexistent/agents.json' })).rejects.toMatchObject({ code: 'CONFIG_INVALID', problems: [{ file: '/nonexistent/agents.json' }] });
  });
});
