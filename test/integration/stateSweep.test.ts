/**
 * sweepExpiredState against Azurite: expired records (and tombstones) are deleted across
 * partitions, live ones kept, and records rewritten after the scan survive (etag-conditional delete).
 */
import { describe, expect, it } from 'vitest';
import type { LogLevel, StateKey, StateWrite } from '../../src/ports';
import { sweepExpiredState } from '../../src/state/sweep';
import { tableClientFromSettings, TableStateStore } from '../../src/state/tableStore';
import { useAzuriteTables } from '../support/azurite';

const azurite = useAzuriteTables();
let tableCount = 0;

const T0 = Date.parse('2026-11-24T10:00:00Z');

async function freshStore(clock: { now(): number }) {
  const table = tableClientFromSettings({ AGENTWATCH_STATE_CONNECTION_STRING: azurite().connectionString }, `sweep${process.pid}x${++tableCount}`);
  await table.createTable();
  return new TableStateStore(table, { clock });
}

async function physicalRows(store: TableStateStore): Promise<string[]> {
  const rows: string[] = [];
  for await (const entity of store.table.listEntities()) rows.push(`${entity.partitionKey}/${entity.rowKey}`);
  return rows.sort();
}

const key = (partition: string, row: string): StateKey => ({ partition, row });
const put = (k: StateKey, value: unknown, expiresAt?: number): StateWrite => ({ op: 'put', key: k, value, ifMatch: '*', expiresAt });

describe('sweepExpiredState', () => {
  it('deletes expired records and tombstones in every partition and keeps live ones', async () => {
    let now = T0;
    const store = await freshStore({ now: () => now });
    const writes: StateWrite[] = [];
    for (const partition of ['window|a', 'window|b', 'window|c']) {
      for (let i = 0; i < 30; i++) writes.push(put(key(partition, `expired-${i}`), i, T0 + 1_000));
      writes.push(put(key(partition, 'live'), 'keep', T0 + 3_600_000));
      writes.push(put(key(partition, 'no-ttl'), 'keep'));
    }
    writes.push(put(key('window|a', 'deleted-later'), 'x'));
    await store.commit(writes);
    await store.commit([{ op: 'delete', key: key('window|a', 'deleted-later') }]);
    now = T0 + 5_000;

    const logs: { level: LogLevel; message: string; fields?: Record<string, unknown> }[] = [];
    const result = await sweepExpiredState(store, { now, logger: { log: (level, message, fields) => logs.push({ level, message, fields }) } });

    expect(result).toMatchObject({ scanned: 91, deleted: 91, alreadyGone: 0, changedSinceScan: 0, partitions: 3, stoppedEarly: false });
    expect(await physicalRows(store)).toEqual(['window|a/live', 'window|a/no-ttl', 'window|b/live', 'window|b/no-ttl', 'window|c/live', 'window|c/no-ttl']);
    expect(logs.at(-1)).toMatchObject({ level: 'info', message: 'state sweep finished', fields: expect.objectContaining({ deleted: 91 }) });
    // A second run finds nothing.
    expect(await sweepExpiredState(store.table, { now })).toMatchObject({ scanned: 0, deleted: 0 });
  });

  it('keeps a record rewritten between the scan and its delete (412) and counts one deleted by someone else (404)', async () => {
    let now = T0;
    const store = await freshStore({ now: () => now });
    await store.commit([put(key('p', 'rewritten'), 'old', T0 + 1_000), put(key('p', 'raced'), 'old', T0 + 1_000), put(key('p', 'plain'), 'old', T0 + 1_000)]);
    now = T0 + 2_000;
    // Interpose on the sweep's own requests: right before its first delete, another instance
    // revives one row and a concurrent sweep removes another.
    let interfered = false;
    store.table.pipeline.addPolicy({
      name: 'interfere',
      sendRequest: async (request, next) => {
        if (request.method === 'DELETE' && !interfered) {
          interfered = true;
          const other = new TableStateStore(tableClientFromSettings({ AGENTWATCH_STATE_CONNECTION_STRING: azurite().connectionString }, store.table.tableName), { clock: { now: () => now } });
          await other.commit([{ op: 'put', key: key('p', 'rewritten'), value: 'new', ifMatch: undefined, expiresAt: now + 60_000 }]);
          await other.table.deleteEntity('p', 'raced');
        }
        return next(request);
      },
    });
    const result = await sweepExpiredState(store, { now, concurrency: 1 });
    expect(result).toMatchObject({ scanned: 3, deleted: 1, changedSinceScan: 1, alreadyGone: 1 });
    expect((await store.get(key('p', 'rewritten')))?.value).toBe('new');
    expect(await physicalRows(store)).toEqual(['p/rewritten']);
  });

  it('stops after maxDeletes and finishes on the next run', async () => {
    const store = await freshStore({ now: () => T0 });
    await store.commit(Array.from({ length: 25 }, (_, i) => put(key(`p${i % 5}`, `r${i}`), i, T0 + 10)));
    const first = await sweepExpiredState(store, { now: T0 + 20, maxDeletes: 10 });
    expect(first).toMatchObject({ deleted: 10, stoppedEarly: true });
    const second = await sweepExpiredState(store, { now: T0 + 20 });
    expect(second).toMatchObject({ deleted: 15, stoppedEarly: false });
    expect(await physicalRows(store)).toEqual([]);
  });

  it('reports a table it cannot reach as STATE_UNAVAILABLE', async () => {
    const table = tableClientFromSettings({ AGENTWATCH_STATE_CONNECTION_STRING: azurite().connectionString.replace(`:${azurite().port}/`, ':1/') }, 'unreachable');
    await expect(sweepExpiredState(table, { now: T0, retry: { maxAttempts: 2, sleep: async () => undefined } })).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE' });
  });
});
