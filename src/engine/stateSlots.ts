/**
 * Where the engine keeps its state in the `StateStore`, and the per-batch cache of loaded records.
 *
 * Keys are designed for Table Storage partitions: the partition mixes the detection id with a hash
 * bucket of the key, so one busy agent spreads over every rule's partitions (never one hot
 * partition), while one key of one rule always lands in one partition.
 *
 * | record | partition | row |
 * |---|---|---|
 * | stateful key (window, seen values, sequence buffer) | `k|<detectionId>|<bucket>` | key text |
 * | memory (remembered fact) | `m|<detectionId>|<bucket>` | `<memory>|<key text>` |
 * | alert raised marker | `a|<detectionId>|<bucket of dedup key>` | alert id |
 * | absence pending index | `p|<detectionId>` | `<key text>|<event hash>` |
 *
 * Every record carries `expiresAt` (wall clock) so the sweep can remove it once its event-time
 * horizon has certainly passed.
 */
import { StateConflictError, isStateConflictError } from '../errors';
import { stateKeyId, type StateKey, type StateStore, type StateWrite } from '../ports';
import { BoundedMemo } from '../memo';
import { bucketOf, shortHash } from './hash';

/**
 * Buckets per detection and record kind. A Table transaction covers one partition, so a batch costs
 * about one transaction per partition it touches: 16 buckets measured 34 transactions per 1,000
 * records, 4 buckets 16 (target ≤ 20). Keys still spread over detections × kinds × buckets, so one
 * busy agent never pins a single partition across all rules.
 */
export const PARTITION_BUCKETS = 4;
const MAX_ROW_CHARS = 400;

function rowText(text: string): string {
  // Table keys are limited to 1 KiB; long composite keys keep a readable prefix plus a hash.
  return text.length <= MAX_ROW_CHARS ? text : `${text.slice(0, 200)}~${shortHash(text)}`;
}

/** A state key with its cache id computed once (the id names the record in the batch and shared caches). */
export interface SlotKey extends StateKey {
  readonly id: string;
}

function slotKey(partition: string, row: string): SlotKey {
  return { partition, row, id: stateKeyId({ partition, row }) };
}

export function keyStateKey(detectionId: string, key: string): SlotKey {
  return slotKey(`k|${detectionId}|${bucketOf(key, PARTITION_BUCKETS)}`, rowText(key));
}

export function memoryStateKey(detectionId: string, memory: string, key: string): SlotKey {
  return slotKey(`m|${detectionId}|${bucketOf(`${memory}|${key}`, PARTITION_BUCKETS)}`, rowText(`${memory}|${key}`));
}

export function markerStateKey(detectionId: string, dedupKey: string, alertId: string): SlotKey {
  return slotKey(`a|${detectionId}|${bucketOf(dedupKey, PARTITION_BUCKETS)}`, alertId);
}

export function pendingPartition(detectionId: string): string {
  return `p|${detectionId}`;
}

export function pendingStateKey(detectionId: string, key: string, eventHash: string): SlotKey {
  return slotKey(pendingPartition(detectionId), rowText(`${key}|${eventHash}`));
}

/** A listed record's key as a slot key. */
export function slotKeyOf(key: StateKey): SlotKey {
  return slotKey(key.partition, key.row);
}

const KEY_TABLE_LIMIT = 50_000;

/**
 * The slot keys of one detection's key texts (or one memory's), memoized: a hot key (an agent, a
 * user) meets the rule on many events, and building its partition hash, row and id every time was
 * a large part of the per-event cost.
 */
export type SlotKeyTable = BoundedMemo<SlotKey>;

export function slotKeyTable(make: (text: string) => SlotKey): SlotKeyTable {
  return new BoundedMemo(make, KEY_TABLE_LIMIT);
}

/** Every partition the engine may write for these detections (the pending index and per-bucket ones). */
export function enginePartitions(detectionIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const id of detectionIds) {
    for (const prefix of ['k', 'm', 'a']) for (let b = 0; b < PARTITION_BUCKETS; b++) out.push(`${prefix}|${id}|${b}`);
    out.push(pendingPartition(id));
  }
  return out;
}

/** One record as the batch sees it: loaded value (mutated in place), its etag, and whether to write it. */
export interface Slot<T = unknown> {
  key: SlotKey;
  value: T | undefined;
  etag?: string;
  dirty: boolean;
  expiresAt?: number;
}

interface CachedRecord {
  value: unknown;
  etag?: string;
  expiresAt?: number;
  /** Wall-clock ms when read or written. */
  at: number;
}

export interface StateCacheOptions {
  /** Records kept between batches. Optional; defaults to 100,000. */
  maxEntries?: number;
  /** A record older than this is read again before use. Optional; defaults to 10 s. */
  maxAgeMs?: number;
}

/**
 * Records kept between batches, so a hot key is not read (and copied) from the store on every
 * batch. Safe with several instances: every write carries the cached etag, so a stale entry fails
 * its compare-and-swap and is read again; a record only read (a memory look-up) is at most
 * `maxAgeMs` stale. Entries a failed batch touched are dropped (their values were mutated in place).
 */
export class StateCache {
  readonly #entries = new Map<string, CachedRecord>();
  readonly #maxEntries: number;
  readonly #maxAgeMs: number;
  constructor(private readonly now: () => number, options: StateCacheOptions = {}) {
    this.#maxEntries = options.maxEntries ?? 100_000;
    this.#maxAgeMs = options.maxAgeMs ?? 10_000;
  }

  fresh(id: string): CachedRecord | undefined {
    const entry = this.#entries.get(id);
    if (!entry) return undefined;
    const now = this.now();
    if (now - entry.at > this.#maxAgeMs || (entry.expiresAt !== undefined && entry.expiresAt <= now)) {
      this.#entries.delete(id);
      return undefined;
    }
    return entry;
  }

  put(id: string, value: unknown, etag: string | undefined, expiresAt: number | undefined): void {
    const at = this.now();
    const entry = this.#entries.get(id);
    if (entry) {
      // Updated in place: a hot key keeps its first place in the eviction order (re-inserting on
      // every write churned the map); evicted, it is simply read again.
      entry.value = value;
      entry.etag = etag;
      entry.expiresAt = expiresAt;
      entry.at = at;
      return;
    }
    this.#entries.set(id, { value, etag, expiresAt, at });
    if (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value as string);
  }

  forget(id: string): void {
    this.#entries.delete(id);
  }

  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }
}

/**
 * The records one batch touches. `request` during the planning pass, `loadRequested` once
 * (concurrently, skipping what the shared cache holds), then `slot` is synchronous on the hot
 * path; `commit` writes the dirty ones.
 */
export class SlotCache {
  readonly #slots = new Map<string, Slot>();
  /** Slots requested but not read yet; `loadRequested` fills them in place. */
  #requested: Slot[] = [];
  constructor(
    private readonly store: StateStore,
    private readonly shared?: StateCache,
  ) {}

  /**
   * The slot of a key, to be read by the next `loadRequested` unless the shared cache holds it.
   * Callers may keep the slot: it is the one `slot(key)` returns, filled in place by the load.
   */
  request(key: SlotKey): Slot {
    const id = key.id;
    let slot = this.#slots.get(id);
    if (slot) return slot;
    const cached = this.shared?.fresh(id);
    if (cached) slot = { key, value: cached.value, etag: cached.etag, dirty: false, expiresAt: cached.expiresAt };
    else {
      slot = { key, value: undefined, etag: undefined, dirty: false, expiresAt: undefined };
      this.#requested.push(slot);
    }
    this.#slots.set(id, slot);
    return slot;
  }

  async loadRequested(): Promise<void> {
    if (this.#requested.length === 0) return;
    const pending = this.#requested;
    this.#requested = [];
    const records = await Promise.all(pending.map((slot) => this.store.get(slot.key)));
    for (let index = 0; index < pending.length; index++) {
      const slot = pending[index];
      const record = records[index];
      slot.value = record?.value;
      slot.etag = record?.etag;
      slot.expiresAt = record?.expiresAt;
      // Absent records are cached too: creating one later is create-only, so a concurrent creation still conflicts.
      this.shared?.put(slot.key.id, record?.value, record?.etag, record?.expiresAt);
    }
  }

  /** After a failure: cached records this batch changed in place are no longer what is stored. */
  forgetTouched(): void {
    for (const [id, slot] of this.#slots) if (slot.dirty) this.shared?.forget(id);
  }

  /** The slot of a key; one that was never requested is treated as absent (and created on write). */
  slot<T>(key: SlotKey): Slot<T> {
    const id = key.id;
    let slot = this.#slots.get(id);
    if (!slot) {
      slot = { key, value: undefined, etag: undefined, dirty: false, expiresAt: undefined };
      this.#slots.set(id, slot);
    }
    return slot as Slot<T>;
  }

  has(key: SlotKey): boolean {
    return this.#slots.has(key.id);
  }

  /** Adopts records read with `list` (their etags make the later write conditional). */
  adopt<T>(key: SlotKey, value: T, etag: string, expiresAt?: number): Slot<T> {
    const slot: Slot<T> = { key, value, etag, dirty: false, expiresAt };
    this.#slots.set(key.id, slot as Slot);
    return slot;
  }

  dirtySlots(filter?: (slot: Slot) => boolean): Slot[] {
    return [...this.#slots.values()].filter((slot) => slot.dirty && (!filter || filter(slot)));
  }

  /** Conditional writes of the dirty slots: create when never stored, replace on the etag read otherwise. */
  static writesOf(slots: readonly Slot[]): StateWrite[] {
    return slots.map((slot): StateWrite =>
      slot.value === undefined
        ? { op: 'delete', key: { partition: slot.key.partition, row: slot.key.row }, ifMatch: slot.etag ?? '*' }
        : { op: 'put', key: { partition: slot.key.partition, row: slot.key.row }, value: slot.value, expiresAt: slot.expiresAt, ifMatch: slot.etag },
    );
  }

  /** Commits the given dirty slots; on success they become clean with their new etags. */
  async commit(slots: readonly Slot[]): Promise<{ conflictedKeys: StateKey[] }> {
    const live = slots.filter((slot) => !(slot.value === undefined && slot.etag === undefined));
    for (const slot of slots) if (slot.value === undefined && slot.etag === undefined) slot.dirty = false;
    if (live.length === 0) return { conflictedKeys: [] };
    try {
      const etags = await this.store.commit(SlotCache.writesOf(live));
      for (const slot of live) {
        const id = slot.key.id;
        slot.dirty = false;
        slot.etag = slot.value === undefined ? undefined : (etags.get(id) ?? slot.etag);
        if (slot.value === undefined) this.shared?.forget(id);
        else this.shared?.put(id, slot.value, slot.etag, slot.expiresAt);
      }
      return { conflictedKeys: [] };
    } catch (error) {
      // Other partitions were applied but their new etags are unknown, and a failed transaction may
      // have taken its neighbours with it: forget every written slot so a retry reads what is stored.
      for (const slot of live) {
        this.#slots.delete(slot.key.id);
        this.shared?.forget(slot.key.id);
      }
      if (!isStateConflictError(error)) throw error;
      return { conflictedKeys: (error as StateConflictError).keys };
    }
  }

  /** Drops every cached slot of these partitions, so the next load reads them afresh. */
  forgetPartitions(partitions: ReadonlySet<string>): void {
    for (const [id, slot] of this.#slots) if (partitions.has(slot.key.partition)) this.#slots.delete(id);
  }
}
