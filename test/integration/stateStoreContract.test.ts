/**
 * The StateStore contract, one table of cases run against every adapter: what the engine, the
 * outbox and the action log may rely on must not depend on where the state lives.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock, StateKey, StateStore, StateWrite } from '../../src/ports';
import { MemoryStateStore } from '../../src/state/memoryStore';
import { stateKeyId, tableClientFromSettings, TableStateStore } from '../../src/state/tableStore';
import { startAzuriteTables, type AzuriteTables } from '../support/azurite';

const T0 = Date.parse('2026-11-24T10:00:00Z');

interface Subject {
  store: StateStore;
  clock: { now(): number; advance(ms: number): void };
}

interface Adapter {
  name: string;
  make(): Promise<Subject>;
}

function fakeClock(): Subject['clock'] {
  let now = T0;
  return { now: () => now, advance: (ms) => void (now += ms) };
}

let azurite: AzuriteTables;
let tableCount = 0;

const adapters: Adapter[] = [
  {
    name: 'MemoryStateStore',
    make: async () => {
      const clock = fakeClock();
      return { store: new MemoryStateStore({ clock }), clock };
    },
  },
  {
    name: 'TableStateStore (Azurite)',
    make: async () => {
      const clock = fakeClock();
      const table = tableClientFromSettings({ AGENTWATCH_STATE_CONNECTION_STRING: azurite.connectionString }, `contract${process.pid}x${++tableCount}`);
      await table.createTable();
      return { store: new TableStateStore(table, { clock: clock as Clock }), clock };
    },
  },
];

beforeAll(async () => {
  azurite = await startAzuriteTables();
});

afterAll(async () => {
  await azurite?.stop();
});

const key = (partition: string, row: string): StateKey => ({ partition, row });
const create = (k: StateKey, value: unknown, expiresAt?: number): StateWrite => ({ op: 'put', key: k, value, expiresAt });
const replace = (k: StateKey, value: unknown, ifMatch: string, expiresAt?: number): StateWrite => ({ op: 'put', key: k, value, ifMatch, expiresAt });
const upsert = (k: StateKey, value: unknown): StateWrite => ({ op: 'put', key: k, value, ifMatch: '*' });
const rows = (records: { key: StateKey }[]): string[] => records.map((r) => r.key.row).sort();

interface ContractCase {
  name: string;
  run(subject: Subject): Promise<void>;
}

const cases: ContractCase[] = [
  {
    name: 'an absent key reads as undefined and an empty partition lists nothing',
    run: async ({ store }) => {
      expect(await store.get(key('p', 'nothing'))).toBeUndefined();
      expect(await store.list('p')).toEqual([]);
      expect(await store.list('p', 'prefix')).toEqual([]);
    },
  },
  {
    name: 'a create returns the etag that get reports, keyed partition\\u0000row',
    run: async ({ store }) => {
      const k = key('threshold|agent-a', 'window|10');
      const etags = await store.commit([create(k, { count: 1, ids: ['r1'] })]);
      expect([...etags.keys()]).toEqual([stateKeyId(k)]);
      const record = await store.get<{ count: number; ids: string[] }>(k);
      expect(record).toEqual({ key: k, value: { count: 1, ids: ['r1'] }, etag: etags.get(stateKeyId(k)) });
      expect(typeof record!.etag).toBe('string');
      expect(record!.etag.length).toBeGreaterThan(0);
    },
  },
  {
    name: 'create-only on an existing key is a conflict naming that key; the value is unchanged',
    run: async ({ store }) => {
      const k = key('dedup', 'alert-1');
      await store.commit([create(k, 'first')]);
      await expect(store.commit([create(k, 'second')])).rejects.toMatchObject({ code: 'STATE_CONFLICT', keys: [k] });
      expect((await store.get(k))?.value).toBe('first');
    },
  },
  {
    name: 'a replace with the current etag wins and makes that etag stale',
    run: async ({ store }) => {
      const k = key('firstSeen|bp', 'ips');
      const first = await store.commit([create(k, ['10.0.0.1'])]);
      const second = await store.commit([replace(k, ['10.0.0.1', '10.0.0.2'], first.get(stateKeyId(k))!)]);
      expect(second.get(stateKeyId(k))).not.toBe(first.get(stateKeyId(k)));
      await expect(store.commit([replace(k, ['lost'], first.get(stateKeyId(k))!)])).rejects.toMatchObject({ code: 'STATE_CONFLICT', keys: [k] });
      expect(await store.get(k)).toMatchObject({ value: ['10.0.0.1', '10.0.0.2'], etag: second.get(stateKeyId(k)) });
    },
  },
  {
    name: 'a replace of an absent key is a conflict',
    run: async ({ store }) => {
      const k = key('p', 'absent');
      const etags = await store.commit([create(key('p', 'present'), 1)]);
      await expect(store.commit([replace(k, 1, etags.get(stateKeyId(key('p', 'present')))!)])).rejects.toMatchObject({ code: 'STATE_CONFLICT', keys: [k] });
      expect(await store.get(k)).toBeUndefined();
    },
  },
  {
    name: '"*" writes whether or not the key exists',
    run: async ({ store }) => {
      const k = key('p', 'any');
      await store.commit([upsert(k, 1)]);
      await store.commit([upsert(k, 2)]);
      expect((await store.get(k))?.value).toBe(2);
    },
  },
  {
    name: 'deletes: with the current etag, unconditionally, of an absent key; a stale etag conflicts',
    run: async ({ store }) => {
      const a = key('p', 'a');
      const b = key('p', 'b');
      const etags = await store.commit([create(a, 1), create(b, 2)]);
      await store.commit([replace(a, 10, etags.get(stateKeyId(a))!)]);
      await expect(store.commit([{ op: 'delete', key: a, ifMatch: etags.get(stateKeyId(a)) }])).rejects.toMatchObject({ code: 'STATE_CONFLICT', keys: [a] });
      const current = (await store.get(a))!.etag;
      await store.commit([{ op: 'delete', key: a, ifMatch: current }, { op: 'delete', key: b, ifMatch: '*' }, { op: 'delete', key: key('p', 'never') }]);
      expect(await store.get(a)).toBeUndefined();
      expect(await store.get(b)).toBeUndefined();
      expect(await store.list('p')).toEqual([]);
      await store.commit([create(a, 'again')]);
      expect((await store.get(a))?.value).toBe('again');
    },
  },
  {
    name: 'TTL: live records report expiresAt; expired ones read as absent everywhere and can be created again',
    run: async ({ store, clock }) => {
      const k = key('window|agent', 'w');
      await store.commit([create(k, 'v1', T0 + 60_000), create(key('window|agent', 'forever'), 'v')]);
      expect(await store.get(k)).toMatchObject({ value: 'v1', expiresAt: T0 + 60_000 });
      clock.advance(59_999);
      expect((await store.get(k))?.value).toBe('v1');
      clock.advance(1);
      expect(await store.get(k)).toBeUndefined();
      expect(rows(await store.list('window|agent'))).toEqual(['forever']);
      await store.commit([create(k, 'v2', T0 + 120_000)]);
      expect((await store.get(k))?.value).toBe('v2');
    },
  },
  {
    name: 'TTL: a replace or delete with the etag of a record that has expired since is a conflict',
    run: async ({ store, clock }) => {
      const replaced = key('window|agent', 'replaced');
      const deleted = key('window|agent', 'deleted');
      await store.commit([create(replaced, 'v1', T0 + 1_000), create(deleted, 'v1', T0 + 1_000)]);
      const [forReplace, forDelete] = [(await store.get(replaced))!, (await store.get(deleted))!];
      clock.advance(1_000);
      await expect(store.commit([replace(replaced, 'v2', forReplace.etag, T0 + 60_000)])).rejects.toMatchObject({ code: 'STATE_CONFLICT', keys: [replaced] });
      await expect(store.commit([{ op: 'delete', key: deleted, ifMatch: forDelete.etag }])).rejects.toMatchObject({ code: 'STATE_CONFLICT', keys: [deleted] });
      expect(await store.get(replaced)).toBeUndefined();
    },
  },
  {
    name: 'list returns exactly the live rows of the partition that start with the prefix',
    run: async ({ store }) => {
      await store.commit([
        create(key('outbox', 'pending|a'), 1),
        create(key('outbox', 'pending|b'), 2),
        create(key('outbox', 'pendingX'), 3),
        create(key('outbox', 'delivered|a'), 4),
        create(key('outbox2', 'pending|c'), 5),
      ]);
      expect(rows(await store.list('outbox', 'pending|'))).toEqual(['pending|a', 'pending|b']);
      expect(rows(await store.list('outbox', 'pending'))).toEqual(['pendingX', 'pending|a', 'pending|b']);
      expect(rows(await store.list('outbox'))).toEqual(['delivered|a', 'pendingX', 'pending|a', 'pending|b']);
      const [record] = await store.list<number>('outbox', 'delivered|');
      expect(record).toMatchObject({ key: key('outbox', 'delivered|a'), value: 4 });
      expect(record!.etag).toBe((await store.get(key('outbox', 'delivered|a')))!.etag);
    },
  },
  {
    name: 'a conflict applies nothing of its partition and everything of the others',
    run: async ({ store }) => {
      const contested = key('agent|a', 'window');
      await store.commit([create(contested, 'v1')]);
      const error = await store
        .commit([create(key('agent|a', 'seen|r1'), true), create(contested, 'v2'), create(key('agent|b', 'window'), 'b1'), create(key('agent|b', 'seen|r2'), true)])
        .catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: 'STATE_CONFLICT' });
      expect((error as { keys: StateKey[] }).keys).toContainEqual(contested);
      expect((error as { keys: StateKey[] }).keys).not.toContainEqual(key('agent|b', 'window'));
      expect(rows(await store.list('agent|a'))).toEqual(['window']);
      expect((await store.get(contested))?.value).toBe('v1');
      expect(rows(await store.list('agent|b'))).toEqual(['seen|r2', 'window']);
    },
  },
  {
    name: 'a commit writing one key twice is refused before anything is written',
    run: async ({ store }) => {
      const commit = store.commit([create(key('p', 'twice'), 1), create(key('p', 'once'), 2), upsert(key('p', 'twice'), 3)]);
      await expect(commit).rejects.toMatchObject({ code: 'STATE_WRITE_REFUSED' });
      expect(await store.list('p')).toEqual([]);
    },
  },
  {
    name: 'JSON values round-trip, and changing a value after writing or reading it changes nothing stored',
    run: async ({ store }) => {
      const k = key('inventory', 'bp-1');
      const value = { kind: 'blueprint', owners: ['alice@contoso.com'], firstSeenMs: T0, nested: { scopes: ['Mail.Send'], flag: false, none: null } };
      await store.commit([create(k, value)]);
      value.owners.push('mallory@contoso.com');
      const read = (await store.get<typeof value>(k))!;
      expect(read.value).toEqual({ kind: 'blueprint', owners: ['alice@contoso.com'], firstSeenMs: T0, nested: { scopes: ['Mail.Send'], flag: false, none: null } });
      read.value.nested.scopes.push('Files.Read.All');
      expect((await store.get<typeof value>(k))!.value.nested.scopes).toEqual(['Mail.Send']);
    },
  },
  {
    name: 'keys with characters Table Storage forbids round-trip unchanged',
    run: async ({ store }) => {
      const partition = 'tenant/agent\\id#1?%2F\u0001';
      await store.commit([create(key(partition, 'scope/Mail.Send?#'), 1), create(key(partition, 'scope\\Files'), 2), create(key(partition, 'other'), 3)]);
      expect((await store.get(key(partition, 'scope/Mail.Send?#')))?.value).toBe(1);
      expect((await store.list(partition, 'scope')).map((r) => r.key).sort((x, y) => x.row.localeCompare(y.row))).toEqual([key(partition, 'scope/Mail.Send?#'), key(partition, 'scope\\Files')]);
    },
  },
];

describe.each(adapters)('StateStore contract: $name', (adapter) => {
  it.each(cases)('$name', async (contractCase) => {
    await contractCase.run(await adapter.make());
  });
});
