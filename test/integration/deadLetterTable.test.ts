/**
 * TableDeadLetterSink against Azurite: letters land in day partitions with reason and position,
 * huge payloads are cut to fit with a marker and their original size, nothing overwrites anything
 * else, and a retried put does not duplicate.
 */
import { describe, expect, it } from 'vitest';
import type { DeadLetter } from '../../src/ports';
import { createTableDeadLetterSink, TableDeadLetterSink } from '../../src/state/deadLetterTable';
import { sweepExpiredState } from '../../src/state/sweep';
import { escapeTableKey, tableClientFromSettings } from '../../src/state/tableStore';
import { useAzuriteTables } from '../support/azurite';

const azurite = useAzuriteTables();
let tableCount = 0;

async function freshSink(options: ConstructorParameters<typeof TableDeadLetterSink>[1] = {}) {
  const table = tableClientFromSettings({ AGENTWATCH_STATE_CONNECTION_STRING: azurite().connectionString }, `deadletters${process.pid}x${++tableCount}`);
  await table.createTable();
  const requests: string[] = [];
  table.pipeline.addPolicy({ name: 'recordRequests', sendRequest: (request, next) => (requests.push(`${request.method} ${new URL(request.url).pathname}`), next(request)) });
  return { sink: new TableDeadLetterSink(table, options), table, requests };
}

const undecodable: DeadLetter = {
  code: 'RECORD_UNDECODABLE',
  reason: 'body is not JSON: Unexpected token < in JSON at position 0',
  position: { source: 'entra-logs', partitionId: '3', sequenceNumber: '1042', offset: '88000', messageIndex: 7 },
  payload: '<html>gateway timeout</html>',
  at: '2026-11-24T10:15:00.123Z',
};
const invalid: DeadLetter = {
  code: 'RECORD_INVALID',
  reason: '/properties/createdDateTime: must be string',
  position: { source: 'entra-logs', partitionId: '3', sequenceNumber: '1042', messageIndex: 7, recordIndex: 2 },
  category: 'SignInLogs',
  payload: { category: 'SignInLogs', properties: { createdDateTime: 42, appId: 'b5a9e1a2-0000-4000-8000-000000000001' } },
  at: '2026-11-24T10:15:00.123Z',
};

describe('TableDeadLetterSink', () => {
  it('stores letters by day with reason, category, position and payload, and reads them back', async () => {
    const { sink, requests } = await freshSink();
    const nextDay: DeadLetter = { ...invalid, at: '2026-11-25T00:00:01Z', payload: Buffer.from([0x1f, 0x8b, 0x00]) };
    await sink.put([undecodable, invalid, nextDay]);
    expect(requests.filter((r) => r.startsWith('POST') && r.endsWith('$batch'))).toHaveLength(2); // one transaction per day
    const day = await sink.list('2026-11-24');
    expect(day).toHaveLength(2);
    const byCode = Object.fromEntries(day.map((letter) => [letter.code, letter]));
    expect(byCode.RECORD_UNDECODABLE).toMatchObject({ reason: undecodable.reason, position: undecodable.position, payload: undecodable.payload, payloadEncoding: 'text', payloadTruncated: false, at: undecodable.at });
    expect(byCode.RECORD_INVALID).toMatchObject({ category: 'SignInLogs', position: invalid.position, payload: invalid.payload, payloadEncoding: 'json' });
    // Letters with an Event Hubs position are keyed by it (not by write time), then sort by position.
    expect(day[0]!.rowKey < day[1]!.rowKey).toBe(true);
    expect(day[0]!.rowKey.startsWith('stream|3|1042|7')).toBe(true);
    const [binary] = await sink.list(new Date('2026-11-25T12:00:00Z'));
    expect(binary).toMatchObject({ payloadEncoding: 'base64', payload: Buffer.from([0x1f, 0x8b, 0x00]).toString('base64') });
  });

  it('truncates a payload too large for an entity, marking it and keeping its original size', async () => {
    const { sink, table } = await freshSink();
    const records = Array.from({ length: 40_000 }, (_, i) => ({ id: `record-${i}`, category: 'AuditLogs', note: 'ü' }));
    const originalBytes = Buffer.byteLength(JSON.stringify({ records }), 'utf8');
    await sink.put([{ ...undecodable, code: 'RECORD_INVALID', payload: { records } }]);
    const [stored] = await sink.list('2026-11-24');
    expect(stored).toMatchObject({ payloadTruncated: true, payloadOriginalBytes: originalBytes, payloadEncoding: 'json' });
    expect(typeof stored!.payload).toBe('string');
    const text = stored!.payload as string;
    expect(text.startsWith('{"records":[{"id":"record-0"')).toBe(true);
    expect(text.endsWith(`[payload truncated by agentwatch: ${originalBytes} bytes (${JSON.stringify({ records }).length} characters) in the original]`)).toBe(true);
    expect(text.length).toBeLessThanOrEqual(400_000);
    const raw = await table.getEntity<Record<string, unknown>>('2026-11-24', escapeTableKey(stored!.rowKey));
    expect(raw.payloadTruncated).toBe(true);
  });

  it('keeps different letters at the same instant and position apart, and a retried put does not duplicate', async () => {
    const { sink } = await freshSink();
    const bare = { code: 'RECORD_INVALID', position: {}, at: '2026-11-24T11:00:00Z' };
    const letters: DeadLetter[] = [
      { ...bare, reason: 'missing category', payload: { a: 1 } },
      { ...bare, reason: 'missing category', payload: { a: 2 } },
      { ...bare, reason: 'missing properties', payload: { a: 1 } },
    ];
    await sink.put(letters);
    await sink.put(letters); // redelivered batch
    await sink.put([letters[0]!, letters[0]!]); // the same letter twice in one call
    const stored = await sink.list('2026-11-24');
    expect(stored.map((l) => [l.reason, l.payload]).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)))).toEqual([
      ['missing category', { a: 1 }],
      ['missing category', { a: 2 }],
      ['missing properties', { a: 1 }],
    ]);
  });

  it('replaces, not duplicates, a letter of a redelivered Event Hubs batch written later the same day', async () => {
    const { sink } = await freshSink();
    await sink.put([invalid]);
    await sink.put([{ ...invalid, at: '2026-11-24T10:20:00Z' }]); // the host redelivered the batch five minutes later
    const stored = await sink.list('2026-11-24');
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ at: '2026-11-24T10:20:00Z', position: invalid.position });
    // Without a stream position a letter is keyed by its time, so two writes stay two rows.
    await sink.put([{ ...invalid, position: {}, at: '2026-11-24T11:00:00Z' }, { ...invalid, position: {}, at: '2026-11-24T11:05:00Z' }]);
    expect(await sink.list('2026-11-24')).toHaveLength(3);
  });

  it('writes more than 100 letters of one day in several transactions, and with a retention they can be swept', async () => {
    const { sink, requests } = await freshSink({ retentionMs: 7 * 86_400_000 });
    const letters = Array.from({ length: 230 }, (_, i): DeadLetter => ({ ...invalid, position: { ...invalid.position, recordIndex: i }, payload: { i } }));
    await sink.put(letters);
    expect(requests.filter((r) => r.endsWith('$batch'))).toHaveLength(3);
    expect(await sink.list('2026-11-24')).toHaveLength(230);
    const early = await sweepExpiredState(sink.table, { now: Date.parse('2026-11-30T00:00:00Z') });
    expect(early.deleted).toBe(0);
    const late = await sweepExpiredState(sink.table, { now: Date.parse('2026-12-01T10:15:01Z') });
    expect(late.deleted).toBe(230);
  });

  it('the factory creates the dead-letter table named by AGENTWATCH_DEADLETTER_TABLE', async () => {
    const tableName = `dlfactory${process.pid}`;
    const sink = await createTableDeadLetterSink({ AGENTWATCH_STATE_CONNECTION_STRING: azurite().connectionString, AGENTWATCH_DEADLETTER_TABLE: tableName });
    expect(sink.table.tableName).toBe(tableName);
    await sink.put([undecodable]);
    expect(await sink.list('2026-11-24')).toHaveLength(1);
  });

  it('fails loudly with STATE_UNAVAILABLE when the table cannot be reached', async () => {
    const table = tableClientFromSettings({ AGENTWATCH_STATE_CONNECTION_STRING: azurite().connectionString.replace(`:${azurite().port}/`, ':1/') }, 'unreachable');
    const sink = new TableDeadLetterSink(table, { retry: { maxAttempts: 2, sleep: async () => undefined } });
    await expect(sink.put([undecodable])).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE' });
  });
});
