/**
 * The in-memory StateStore keeps the Table Storage contract the engine relies on: create-only /
 * etag / unconditional writes, per-partition atomic transactions of ≤100 operations, conflicts
 * named and other partitions still applied, TTL enforced on read, values copied in and out.
 */
import { describe, expect, it } from 'vitest';
import { StateConflictError } from '../../src/errors';
import type { StateWrite } from '../../src/ports';
import { MemoryStateStore } from '../../src/state';

const key = (partition: string, row: string) => ({ partition, row });

async function conflictOf(promise: Promise<unknown>): Promise<StateConflictError> {
  await expect(promise).rejects.toMatchObject({ code: 'STATE_CONFLICT' });
  return promise.catch((error: StateConflictError) => error) as Promise<StateConflictError>;
}

describe('MemoryStateStore', () => {
  it('ifMatch undefined creates only when absent; a second create is a conflict naming the key', async () => {
    const store = new MemoryStateStore();
    const etags = await store.commit([{ op: 'put', key: key('p', 'r'), value: { n: 1 } }]);
    expect(etags.get('p\u0000r')).toMatch(/^W\/"\d+"$/);
    const error = await conflictOf(store.commit([{ op: 'put', key: key('p', 'r'), value: { n: 2 } }]));
    expect(error.keys).toEqual([key('p', 'r')]);
    expect((await store.get<{ n: number }>(key('p', 'r')))?.value).toEqual({ n: 1 });
  });

  it('an etag replaces only the version it names; * replaces any', async () => {
    const store = new MemoryStateStore();
    const first = (await store.commit([{ op: 'put', key: key('p', 'r'), value: 1 }])).get('p\u0000r')!;
    const second = (await store.commit([{ op: 'put', key: key('p', 'r'), value: 2, ifMatch: first }])).get('p\u0000r')!;
    expect(second).not.toBe(first);
    await conflictOf(store.commit([{ op: 'put', key: key('p', 'r'), value: 3, ifMatch: first }]));
    await store.commit([{ op: 'put', key: key('p', 'r'), value: 4, ifMatch: '*' }]);
    expect((await store.get(key('p', 'r')))?.value).toBe(4);
  });

  it('deletes: a stale etag conflicts, an absent record with no condition is already done', async () => {
    const store = new MemoryStateStore();
    const etag = (await store.commit([{ op: 'put', key: key('p', 'r'), value: 1 }])).get('p\u0000r')!;
    await store.commit([{ op: 'put', key: key('p', 'r'), value: 2, ifMatch: etag }]);
    await conflictOf(store.commit([{ op: 'delete', key: key('p', 'r'), ifMatch: etag }]));
    await store.commit([{ op: 'delete', key: key('p', 'r') }, { op: 'delete', key: key('p', 'never') }]);
    expect(await store.get(key('p', 'r'))).toBeUndefined();
  });

  it('a conflict rolls back its whole partition transaction and still applies the other partitions', async () => {
    const store = new MemoryStateStore();
    await store.commit([{ op: 'put', key: key('a', 'taken'), value: 0 }]);
    const error = await conflictOf(
      store.commit([
        { op: 'put', key: key('a', 'taken'), value: 1 },
        { op: 'put', key: key('a', 'fresh'), value: 1 },
        { op: 'put', key: key('b', 'other'), value: 1 },
      ]),
    );
    expect(error.keys).toEqual([key('a', 'taken')]);
    expect(await store.get(key('a', 'fresh'))).toBeUndefined();
    expect((await store.get(key('b', 'other')))?.value).toBe(1);
  });

  it('splits a partition into transactions of at most 100 operations', async () => {
    const store = new MemoryStateStore();
    await store.commit([{ op: 'put', key: key('p', 'row150'), value: 'existing' }]);
    const writes: StateWrite[] = Array.from({ length: 160 }, (_, i) => ({ op: 'put', key: key('p', `row${i}`), value: i }));
    await conflictOf(store.commit(writes)); // row150 sits in the second transaction
    expect((await store.get(key('p', 'row99')))?.value).toBe(99);
    expect(await store.get(key('p', 'row100'))).toBeUndefined();
  });

  it('refuses one commit that writes the same key twice, before writing anything', async () => {
    const store = new MemoryStateStore();
    await expect(store.commit([{ op: 'put', key: key('p', 'r'), value: 1 }, { op: 'put', key: key('p', 'r'), value: 2, ifMatch: '*' }])).rejects.toMatchObject({ code: 'STATE_WRITE_REFUSED' });
    expect(store.size()).toBe(0);
  });

  it('enforces TTL on read, lets a create replace an expired record, and sweeps it', async () => {
    let now = 1_000;
    const store = new MemoryStateStore({ clock: { now: () => now } });
    await store.commit([{ op: 'put', key: key('p', 'r1'), value: 1, expiresAt: 2_000 }, { op: 'put', key: key('p', 'r2'), value: 2 }]);
    expect((await store.list('p')).map((r) => r.key.row)).toEqual(['r1', 'r2']);
    now = 2_000;
    expect(await store.get(key('p', 'r1'))).toBeUndefined();
    expect((await store.list('p')).map((r) => r.key.row)).toEqual(['r2']);
    expect(store.sweepExpired()).toBe(1);
    await store.commit([{ op: 'put', key: key('p', 'r1'), value: 'again' }]);
    expect((await store.get(key('p', 'r1')))?.value).toBe('again');
  });

  it('lists a partition by row prefix, in row order', async () => {
    const store = new MemoryStateStore();
    await store.commit(['m|b', 'k|a', 'm|a'].map((row) => ({ op: 'put' as const, key: key('p', row), value: row })));
    expect((await store.list('p', 'm|')).map((r) => r.value)).toEqual(['m|a', 'm|b']);
  });

  it('copies values in and out', async () => {
    const store = new MemoryStateStore();
    const value = { list: [1] };
    await store.commit([{ op: 'put', key: key('p', 'r'), value }]);
    value.list.push(2);
    const read = await store.get<{ list: number[] }>(key('p', 'r'));
    read!.value.list.push(3);
    expect((await store.get<{ list: number[] }>(key('p', 'r')))!.value).toEqual({ list: [1] });
  });
});
