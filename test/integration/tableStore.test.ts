/**
 * TableStateStore against Azurite (real @azure/data-tables client, real HTTP): compare-and-swap,
 * batching into ≤100-operation transactions, per-partition atomicity, TTL, large values, key
 * escaping, restart-resume and transient failures.
 */
import { RestError, type TableClient } from '@azure/data-tables';

type PipelinePolicy = Parameters<TableClient['pipeline']['addPolicy']>[0];
import { describe, expect, it } from 'vitest';
import { isStateConflictError, StateConflictError } from '../../src/errors';
import type { StateKey, StateWrite } from '../../src/ports';
import { createTableStateStore, escapeTableKey, stateKeyId, tableClientFromSettings, TableStateStore, unescapeTableKey } from '../../src/state/tableStore';
import { useAzuriteTables } from '../support/azurite';

const azurite = useAzuriteTables();
let tableCount = 0;

interface SeenRequest {
  method: string;
  url: string;
  /** Sub-requests inside a $batch body. */
  operations: number;
}

/** A fresh table, a client that records every HTTP request it sends, and a store over it. */
async function freshStore(options: { now?: () => number; failFirst?: number; failStatus?: number } = {}) {
  const tableName = `state${process.pid}x${++tableCount}`;
  const settings = { AGENTWATCH_STATE_CONNECTION_STRING: azurite().connectionString, AGENTWATCH_STATE_TABLE: tableName };
  const seen: SeenRequest[] = [];
  let failuresLeft = options.failFirst ?? 0;
  const table = tableClientFromSettings(settings, tableName);
  await table.createTable();
  const recorder: PipelinePolicy = {
    name: 'recordRequests',
    sendRequest: async (request, next) => {
      const body = typeof request.body === 'string' ? request.body : '';
      seen.push({ method: request.method, url: request.url, operations: (body.match(/ HTTP\/1\.1\r?\n/g) ?? []).length });
      if (failuresLeft > 0) {
        failuresLeft--;
        throw new RestError('injected outage', { statusCode: options.failStatus ?? 503, request });
      }
      return next(request);
    },
  };
  table.pipeline.addPolicy(recorder);
  const clock = { now: options.now ?? (() => Date.now()) };
  const sleeps: number[] = [];
  const store = new TableStateStore(table, {
    clock,
    retry: { maxAttempts: 4, sleep: async (ms) => void sleeps.push(ms) },
  });
  return { store, table, tableName, settings, seen, sleeps };
}

const key = (partition: string, row: string): StateKey => ({ partition, row });
const put = (k: StateKey, value: unknown, extra: Partial<Extract<StateWrite, { op: 'put' }>> = {}): StateWrite => ({ op: 'put', key: k, value, ifMatch: '*', ...extra });

describe('TableStateStore: reads and writes', () => {
  it('round-trips values with etags and lists a partition by row prefix', async () => {
    const { store } = await freshStore();
    const etags = await store.commit([
      put(key('threshold|agent-a', 'window|2026-11-24T10'), { count: 3, ids: ['r1', 'r2', 'r3'] }),
      put(key('threshold|agent-a', 'window|2026-11-24T11'), { count: 1, ids: ['r4'] }),
      put(key('threshold|agent-a', 'raised|alert-1'), true),
    ]);
    expect(etags.size).toBe(3);
    const record = await store.get<{ count: number; ids: string[] }>(key('threshold|agent-a', 'window|2026-11-24T10'));
    expect(record).toEqual({ key: key('threshold|agent-a', 'window|2026-11-24T10'), value: { count: 3, ids: ['r1', 'r2', 'r3'] }, etag: etags.get(stateKeyId(key('threshold|agent-a', 'window|2026-11-24T10'))) });
    const windows = await store.list<{ count: number }>('threshold|agent-a', 'window|');
    expect(windows.map((w) => [w.key.row, w.value.count])).toEqual([
      ['window|2026-11-24T10', 3],
      ['window|2026-11-24T11', 1],
    ]);
    expect((await store.list('threshold|agent-a')).length).toBe(3);
    expect(await store.get(key('threshold|agent-a', 'window|missing'))).toBeUndefined();
    expect(await store.list('no-such-partition')).toEqual([]);
  });

  it('refuses a commit that writes one key twice, before writing anything', async () => {
    const { store } = await freshStore();
    const commit = store.commit([put(key('p', 'counter'), 1), put(key('p', 'other'), 'x'), put(key('p', 'counter'), 2)]);
    await expect(commit).rejects.toMatchObject({ code: 'STATE_WRITE_REFUSED', refusal: 'duplicateKey', key: key('p', 'counter') });
    expect(await store.list('p')).toEqual([]);
  });
});

describe('TableStateStore: compare-and-swap', () => {
  it('refuses a stale etag with StateConflictError naming the key, and keeps the stored value', async () => {
    const { store } = await freshStore();
    const k = key('firstSeen|blueprint-1', 'ips');
    await store.commit([put(k, ['10.0.0.1'], { ifMatch: undefined })]);
    const first = (await store.get<string[]>(k))!;
    const next = await store.commit([put(k, ['10.0.0.1', '10.0.0.2'], { ifMatch: first.etag })]);
    expect(next.get(stateKeyId(k))).not.toBe(first.etag);
    const stale = store.commit([put(k, ['10.0.0.9'], { ifMatch: first.etag })]);
    await expect(stale).rejects.toMatchObject({ code: 'STATE_CONFLICT', keys: [k] });
    await expect(stale).rejects.toBeInstanceOf(StateConflictError);
    expect((await store.get<string[]>(k))?.value).toEqual(['10.0.0.1', '10.0.0.2']);
    // The etag commit returned is the stored one: it wins the next swap.
    await store.commit([put(k, ['10.0.0.3'], { ifMatch: next.get(stateKeyId(k)) })]);
    expect((await store.get<string[]>(k))?.value).toEqual(['10.0.0.3']);
  });

  it('treats create-only on an existing key as a conflict and "*" as unconditional', async () => {
    const { store } = await freshStore();
    const k = key('dedup|agent-scope-burst', 'alert-7');
    await store.commit([put(k, 'first', { ifMatch: undefined })]);
    await expect(store.commit([put(k, 'second', { ifMatch: undefined })])).rejects.toMatchObject({ code: 'STATE_CONFLICT', keys: [k] });
    expect((await store.get(k))?.value).toBe('first');
    await store.commit([put(k, 'forced', { ifMatch: '*' })]);
    expect((await store.get(k))?.value).toBe('forced');
  });

  it('a duplicate delivery of the same create-only commit conflicts instead of applying twice', async () => {
    const { store } = await freshStore();
    const writes: StateWrite[] = [put(key('outbox', 'alert-1'), { state: 'pending' }, { ifMatch: undefined }), put(key('outbox', 'alert-2'), { state: 'pending' }, { ifMatch: undefined })];
    await store.commit(writes);
    const error = await store.commit(writes).catch((caught: unknown) => caught);
    expect(isStateConflictError(error)).toBe(true);
    expect((error as StateConflictError).keys).toEqual([key('outbox', 'alert-1'), key('outbox', 'alert-2')]);
    expect((await store.list('outbox')).length).toBe(2);
  });

  it('deletes conditionally and unconditionally; a deleted key can be created again', async () => {
    const { store } = await freshStore();
    const k = key('window|agent-b', 'w1');
    await store.commit([put(k, 5, { ifMatch: undefined })]);
    const stored = (await store.get(k))!;
    await expect(store.commit([{ op: 'delete', key: k, ifMatch: 'W/"datetime\'2020-01-01T00%3A00%3A00.0000000Z\'"' }])).rejects.toMatchObject({ code: 'STATE_CONFLICT', keys: [k] });
    expect((await store.get(k))?.value).toBe(5);
    await store.commit([{ op: 'delete', key: k, ifMatch: stored.etag }]);
    expect(await store.get(k)).toBeUndefined();
    expect(await store.list('window|agent-b')).toEqual([]);
    await store.commit([{ op: 'delete', key: key('window|agent-b', 'never-written') }]);
    await store.commit([put(k, 6, { ifMatch: undefined })]);
    expect((await store.get(k))?.value).toBe(6);
  });

  it('a replace of a key that no longer exists is a conflict (404), not an error', async () => {
    const { store } = await freshStore();
    const k = key('p', 'gone');
    await store.commit([put(k, 1, { ifMatch: undefined })]);
    const { etag } = (await store.get(k))!;
    await store.table.deleteEntity('p', 'gone');
    await expect(store.commit([put(k, 2, { ifMatch: etag })])).rejects.toMatchObject({ code: 'STATE_CONFLICT', keys: [k] });
  });
});

describe('TableStateStore: batching and atomicity', () => {
  it('writes 250 records across 3 partitions in transactions of at most 100 operations', async () => {
    const { store, seen } = await freshStore();
    const sizes = { 'agent|alpha': 120, 'agent|bravo': 90, 'agent|charlie': 40 };
    const writes = Object.entries(sizes).flatMap(([partition, count]) => Array.from({ length: count }, (_, i) => put(key(partition, `row-${String(i).padStart(3, '0')}`), { i }, { ifMatch: undefined })));
    seen.length = 0;
    const etags = await store.commit(writes);
    expect(etags.size).toBe(250);
    const batches = seen.filter((request) => request.method === 'POST' && request.url.includes('$batch'));
    expect(seen).toHaveLength(batches.length); // nothing but transactions went out
    expect(batches.map((b) => b.operations).sort((a, b) => b - a)).toEqual([100, 90, 40, 20]);
    expect(store.stats).toMatchObject({ transactions: 4, entityWrites: 250 });
    for (const [partition, count] of Object.entries(sizes)) {
      const rows = await store.list<{ i: number }>(partition);
      expect(rows.map((r) => r.value.i).sort((a, b) => a - b)).toEqual(Array.from({ length: count }, (_, i) => i));
    }
  });

  it('a conflict rolls back its whole partition transaction; other partitions are applied', async () => {
    const { store } = await freshStore();
    const contested = key('agent|alpha', 'window');
    await store.commit([put(contested, 'v1', { ifMatch: undefined })]);
    const stale = (await store.get(contested))!.etag;
    await store.commit([put(contested, 'v2', { ifMatch: stale })]);
    const writes: StateWrite[] = [
      put(key('agent|alpha', 'seen|r1'), true, { ifMatch: undefined }),
      put(contested, 'v3', { ifMatch: stale }),
      put(key('agent|alpha', 'seen|r2'), true, { ifMatch: undefined }),
      put(key('agent|bravo', 'window'), 'b1', { ifMatch: undefined }),
      put(key('agent|bravo', 'seen|r3'), true, { ifMatch: undefined }),
    ];
    const error = (await store.commit(writes).catch((caught: unknown) => caught)) as StateConflictError;
    expect(error).toBeInstanceOf(StateConflictError);
    expect(error.keys).toEqual([key('agent|alpha', 'seen|r1'), contested, key('agent|alpha', 'seen|r2')]);
    expect((await store.list('agent|alpha')).map((r) => [r.key.row, r.value])).toEqual([['window', 'v2']]);
    expect((await store.list('agent|bravo')).map((r) => r.key.row).sort()).toEqual(['seen|r3', 'window']);
  });

  it('in a partition larger than one transaction, a conflict rolls back only its transaction and reports all of its keys', async () => {
    const { store } = await freshStore();
    const contested = key('big', 'row-150');
    await store.commit([put(contested, 'existing', { ifMatch: undefined })]);
    const writes = Array.from({ length: 220 }, (_, i) => put(key('big', `row-${String(i).padStart(3, '0')}`), i, { ifMatch: undefined }));
    const error = (await store.commit(writes).catch((caught: unknown) => caught)) as StateConflictError;
    expect(error.code).toBe('STATE_CONFLICT');
    // Transactions: rows 0–99 applied, 100–199 hit row-150 and applied nothing, 200–219 applied.
    expect(error.keys.map((k) => k.row)).toEqual(writes.slice(100, 200).map((w) => w.key.row));
    const rows = await store.list<number | string>('big');
    expect(rows).toHaveLength(121);
    expect(rows.find((r) => r.key.row === 'row-150')?.value).toBe('existing');
    expect(rows.find((r) => r.key.row === 'row-219')?.value).toBe(219);
  });
});

describe('TableStateStore: TTL', () => {
  it('an expired record reads as absent, and a create-only write may take its place', async () => {
    let now = Date.parse('2026-11-24T10:00:00Z');
    const { store, table } = await freshStore({ now: () => now });
    const k = key('distinct|agent-c', 'scopes');
    await store.commit([put(k, ['Mail.Send'], { ifMatch: undefined, expiresAt: now + 60_000 }), put(key('distinct|agent-c', 'forever'), 1)]);
    expect((await store.get(k))?.expiresAt).toBe(now + 60_000);
    now += 60_000;
    expect(await store.get(k)).toBeUndefined();
    expect((await store.list('distinct|agent-c')).map((r) => r.key.row)).toEqual(['forever']);
    // Still physically there until the sweep; the port says absent, so create-only succeeds.
    expect((await table.getEntity('distinct|agent-c', 'scopes')).partitionKey).toBe('distinct|agent-c');
    await store.commit([put(k, ['Files.Read'], { ifMatch: undefined, expiresAt: now + 60_000 })]);
    expect((await store.get(k))?.value).toEqual(['Files.Read']);
    expect(store.stats.reusedExpiredRows).toBe(1);
  });
});

describe('TableStateStore: limits and keys', () => {
  it('splits a large value across string properties and joins it back', async () => {
    const { store, table } = await freshStore();
    const k = key('inventory', 'blueprint-big');
    const value = { ids: Array.from({ length: 9_000 }, (_, i) => `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`), note: 'ünïcödé 🔑'.repeat(2_000) };
    await store.commit([put(k, value)]);
    expect((await store.get(k))?.value).toEqual(value);
    const raw = await table.getEntity<Record<string, unknown>>('inventory', 'blueprint-big');
    expect(Number(raw.valueJsonParts)).toBeGreaterThan(5);
  });

  it('refuses a value over the 1 MiB entity limit with a typed error and writes nothing of the commit', async () => {
    const { store } = await freshStore();
    const huge = 'x'.repeat(600_000); // 1.2 MB as UTF-16
    const commit = store.commit([put(key('p', 'small'), 1), put(key('p', 'huge'), huge)]);
    await expect(commit).rejects.toMatchObject({ code: 'STATE_WRITE_REFUSED', refusal: 'entityTooLarge', key: key('p', 'huge'), limitBytes: 1024 * 1024 });
    expect(await store.get(key('p', 'small'))).toBeUndefined();
  });

  it('refuses keys longer than Table Storage allows', async () => {
    const { store } = await freshStore();
    await expect(store.commit([put(key('p', '/'.repeat(200)), 1)])).rejects.toMatchObject({ code: 'STATE_WRITE_REFUSED', refusal: 'keyTooLong' });
  });

  it('escapes the characters Table Storage forbids in keys, reversibly', async () => {
    const { store, table } = await freshStore();
    const partition = 'tenant/agent\\id#1?%41\u0001';
    const rows = ['scope/Mail.Send?x#y', 'scope/Files%2FRead', 'other\u007f'];
    await store.commit(rows.map((row, i) => put(key(partition, row), i)));
    for (const [i, row] of rows.entries()) expect((await store.get(key(partition, row)))?.value).toBe(i);
    expect((await store.list(partition, 'scope/')).map((r) => r.key).sort((a, b) => a.row.localeCompare(b.row))).toEqual([key(partition, 'scope/Files%2FRead'), key(partition, 'scope/Mail.Send?x#y')]);
    for await (const entity of table.listEntities()) {
      expect(entity.partitionKey).not.toMatch(/[/\\#?\u0000-\u001f\u007f-\u009f]/);
      expect(entity.rowKey).not.toMatch(/[/\\#?\u0000-\u001f\u007f-\u009f]/);
    }
    for (const text of [partition, ...rows, '%', '%%25', '']) expect(unescapeTableKey(escapeTableKey(text))).toBe(text);
  });
});

describe('TableStateStore: restart and failures', () => {
  it('a second store over the same table resumes with the first one\'s state and etags', async () => {
    const { store, settings } = await freshStore();
    const k = key('threshold|agent-d', 'window');
    const etags = await store.commit([put(k, { count: 4 }, { ifMatch: undefined })]);
    const restarted = await createTableStateStore(settings);
    const record = await restarted.get<{ count: number }>(k);
    expect(record).toMatchObject({ value: { count: 4 }, etag: etags.get(stateKeyId(k)) });
    await restarted.commit([put(k, { count: 5 }, { ifMatch: record!.etag })]);
    await expect(store.commit([put(k, { count: 99 }, { ifMatch: record!.etag })])).rejects.toMatchObject({ code: 'STATE_CONFLICT' });
    expect((await store.get<{ count: number }>(k))?.value.count).toBe(5);
  });

  it('keeps at most maxConcurrentRequests requests in flight however many keys are asked for', async () => {
    const { table } = await freshStore();
    let inFlight = 0;
    let peak = 0;
    table.pipeline.addPolicy({
      name: 'measureInFlight',
      sendRequest: async (request, next) => {
        peak = Math.max(peak, ++inFlight);
        try {
          return await next(request);
        } finally {
          inFlight--;
        }
      },
    });
    const store = new TableStateStore(table, { maxConcurrentRequests: 4 });
    await store.commit(Array.from({ length: 30 }, (_, i) => put(key(`p${i}`, 'r'), i)));
    const records = await Promise.all(Array.from({ length: 60 }, (_, i) => store.get<number>(key(`p${i % 30}`, 'r'))));
    expect(records.map((r) => r?.value)).toEqual(Array.from({ length: 60 }, (_, i) => i % 30));
    expect(peak).toBe(4);
  });

  it('retries transient failures (503) with back-off and then succeeds', async () => {
    const { store, seen, sleeps } = await freshStore({ failFirst: 2, failStatus: 503 });
    await store.commit([put(key('p', 'r'), 'after outage')]);
    expect(sleeps).toHaveLength(2);
    expect(seen.filter((r) => r.url.includes('$batch'))).toHaveLength(3);
    expect(store.stats.retries).toBe(2);
    expect((await store.get(key('p', 'r')))?.value).toBe('after outage');
  });

  it('gives up after the retry budget with STATE_UNAVAILABLE', async () => {
    const { store, sleeps } = await freshStore({ failFirst: 10, failStatus: 429 });
    await expect(store.commit([put(key('p', 'r'), 1)])).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE', message: expect.stringContaining('HTTP 429') });
    expect(sleeps).toHaveLength(3);
  });

  it('reports an unreachable service as STATE_UNAVAILABLE, not as a conflict', async () => {
    const table: TableClient = tableClientFromSettings({ AGENTWATCH_STATE_CONNECTION_STRING: azurite().connectionString.replace(`:${azurite().port}/`, ':1/') }, 'unreachable');
    const store = new TableStateStore(table, { retry: { maxAttempts: 2, sleep: async () => undefined } });
    await expect(store.get(key('p', 'r'))).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE' });
    await expect(store.commit([put(key('p', 'r'), 1)])).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE' });
  });

  it('reports a missing table as STATE_UNAVAILABLE', async () => {
    const table = tableClientFromSettings({ AGENTWATCH_STATE_CONNECTION_STRING: azurite().connectionString }, 'nosuchtable');
    const store = new TableStateStore(table);
    await expect(store.commit([put(key('p', 'r'), 1, { ifMatch: undefined })])).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE' });
    await expect(store.get(key('p', 'r'))).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE' });
  });

  it('the factory creates the table once and refuses settings with neither connection string nor endpoint', async () => {
    const settings = { AGENTWATCH_STATE_CONNECTION_STRING: azurite().connectionString, AGENTWATCH_STATE_TABLE: `factory${process.pid}` };
    const first = await createTableStateStore(settings);
    await first.commit([put(key('p', 'r'), 'kept')]);
    const second = await createTableStateStore(settings);
    expect((await second.get(key('p', 'r')))?.value).toBe('kept');
    await expect(createTableStateStore({})).rejects.toMatchObject({ code: 'CONFIG_INVALID', problems: [expect.objectContaining({ path: 'AGENTWATCH_STATE_TABLE_ENDPOINT' })] });
    const malformed = createTableStateStore({ AGENTWATCH_STATE_CONNECTION_STRING: 'AccountKey=not-a-real-key-but-secret-looking' });
    await expect(malformed).rejects.toMatchObject({ code: 'CONFIG_INVALID', problems: [expect.objectContaining({ path: 'AGENTWATCH_STATE_CONNECTION_STRING' })] });
    await expect(malformed).rejects.not.toThrow(/secret-looking/);
  });
});
