/**
 * The engine's per-batch slot cache and the cache shared between batches: a requested slot is the
 * one the apply pass later reads (filled in place by the load), a slot key is built once per text,
 * and the shared cache serves what was last written until it is too old.
 */
import { describe, expect, it } from 'vitest';
import { SlotCache, StateCache, keyStateKey, slotKeyTable } from '../../src/engine/stateSlots';
import { MemoryStateStore } from '../../src/state';

describe('SlotCache', () => {
  it('fills a requested slot in place, so the planning pass can hand it to the apply pass', async () => {
    const store = new MemoryStateStore();
    const stored = keyStateKey('rule-a', 'agent-1');
    await store.commit([{ op: 'put', key: { partition: stored.partition, row: stored.row }, value: { n: 1 } }]);
    const cache = new SlotCache(store);
    const requested = cache.request(stored);
    const absent = cache.request(keyStateKey('rule-a', 'agent-2'));
    expect(requested.value).toBeUndefined(); // not read yet
    await cache.loadRequested();
    expect(requested.value).toEqual({ n: 1 });
    expect(requested.etag).toBeDefined();
    expect(cache.slot(stored)).toBe(requested);
    expect(absent.value).toBeUndefined();
    expect(cache.request(stored)).toBe(requested); // asked again: the same slot, nothing re-read
  });

  it('serves a slot from the shared cache without reading the store, then writes it with its etag', async () => {
    const store = new MemoryStateStore();
    const now = { ms: 0 };
    const shared = new StateCache(() => now.ms);
    const key = keyStateKey('rule-a', 'agent-1');
    const first = new SlotCache(store, shared);
    const slot = first.request(key);
    await first.loadRequested();
    slot.value = { n: 1 };
    slot.dirty = true;
    await first.commit([slot]);
    const gets = store.stats.gets;
    const second = new SlotCache(store, shared);
    const again = second.request(key);
    expect(again.value).toEqual({ n: 1 });
    expect(store.stats.gets).toBe(gets);
    (again.value as { n: number }).n = 2;
    again.dirty = true;
    expect(await second.commit([again])).toEqual({ conflictedKeys: [] });
    // Older than the shared cache's age limit: read again.
    now.ms += 60_000;
    const third = new SlotCache(store, shared);
    third.request(key);
    await third.loadRequested();
    expect(store.stats.gets).toBe(gets + 1);
    expect(third.slot(key).value).toEqual({ n: 2 });
  });
});

describe('slotKeyTable', () => {
  it('builds a key once per text and keeps building after it is full', () => {
    let built = 0;
    const table = slotKeyTable((text) => {
      built++;
      return keyStateKey('rule-a', text);
    });
    const key = table.get('agent-1');
    expect(table.get('agent-1')).toBe(key);
    expect(built).toBe(1);
    expect(key).toMatchObject({ partition: expect.stringMatching(/^k\|rule-a\|\d$/), row: 'agent-1', id: `${key.partition}\u0000agent-1` });
    for (let i = 0; i < 60_000; i++) table.get(`agent-${i}`);
    expect(table.get('agent-59999').row).toBe('agent-59999');
  });
});
