/**
 * In-memory `StateStore` with the same concurrency contract as the Table Storage adapter:
 * - `ifMatch` undefined = create only (a live record with that key is a conflict; an expired one is absent),
 *   an etag = replace only if unchanged, `'*'` = unconditional; deletes the same, absent = done.
 * - `commit` groups writes per partition into transactions of at most 100 operations; a transaction
 *   applies entirely or not at all, other partitions' transactions still apply, and the conflicting
 *   keys are thrown as one `StateConflictError` afterwards.
 * - Expired records (`expiresAt` ≤ clock) are never returned; `sweepExpired` removes them.
 * - Values are copied in and out (structuredClone), so a caller mutating what it read cannot change
 *   the store behind its own back, exactly as with a remote store.
 */
import { AgentwatchError, StateConflictError } from '../errors';
import { stateKeyId, systemClock, type Clock, type StateKey, type StateRecord, type StateStore, type StateWrite } from '../ports';

export const MEMORY_TRANSACTION_LIMIT = 100;

interface StoredRecord {
  value: unknown;
  etag: string;
  expiresAt?: number;
}

export interface MemoryStateStoreOptions {
  clock?: Clock;
  /** Copy values on read and write (default true). Off only for benchmarks that never mutate what they read. */
  copyValues?: boolean;
}

export interface MemoryStateStoreStats {
  gets: number;
  lists: number;
  commits: number;
  writes: number;
  conflicts: number;
}

/**
 * Deep copy of a stored value. State values are JSON-shaped (the Table adapter serializes them),
 * so plain objects and arrays are copied by hand, which is several times faster than
 * structuredClone for the small records the engine writes; anything else falls back to it.
 */
function cloneValue<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  // Primitives are copied inline: most nodes of engine state are numbers and strings inside small
  // arrays, and a call per primitive made the copy several times slower.
  if (Array.isArray(value)) {
    const length = value.length;
    const out = new Array(length);
    for (let i = 0; i < length; i++) {
      const element: unknown = value[i];
      out[i] = element !== null && typeof element === 'object' ? cloneValue(element) : element;
    }
    return out as T;
  }
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return structuredClone(value);
  const source = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key in source) {
    const element = source[key];
    out[key] = element !== null && typeof element === 'object' ? cloneValue(element) : element;
  }
  return out as T;
}

export class MemoryStateStore implements StateStore {
  readonly #partitions = new Map<string, Map<string, StoredRecord>>();
  readonly #clock: Clock;
  readonly #copy: <T>(value: T) => T;
  #etagCounter = 0;
  readonly stats: MemoryStateStoreStats = { gets: 0, lists: 0, commits: 0, writes: 0, conflicts: 0 };

  constructor(options: MemoryStateStoreOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#copy = options.copyValues === false ? (value) => value : cloneValue;
  }

  #live(partition: string, row: string): StoredRecord | undefined {
    const record = this.#partitions.get(partition)?.get(row);
    if (!record) return undefined;
    if (record.expiresAt !== undefined && record.expiresAt <= this.#clock.now()) return undefined;
    return record;
  }

  async get<T>(key: StateKey): Promise<StateRecord<T> | undefined> {
    this.stats.gets++;
    const record = this.#live(key.partition, key.row);
    if (!record) return undefined;
    return { key: { ...key }, value: this.#copy(record.value) as T, etag: record.etag, ...(record.expiresAt !== undefined ? { expiresAt: record.expiresAt } : {}) };
  }

  async list<T>(partition: string, rowPrefix = ''): Promise<StateRecord<T>[]> {
    this.stats.lists++;
    const rows = this.#partitions.get(partition);
    if (!rows) return [];
    const out: StateRecord<T>[] = [];
    for (const row of [...rows.keys()].sort()) {
      if (!row.startsWith(rowPrefix)) continue;
      const record = this.#live(partition, row);
      if (record) out.push({ key: { partition, row }, value: this.#copy(record.value) as T, etag: record.etag, ...(record.expiresAt !== undefined ? { expiresAt: record.expiresAt } : {}) });
    }
    return out;
  }

  async commit(writes: StateWrite[]): Promise<Map<string, string>> {
    this.stats.commits++;
    const etags = new Map<string, string>();
    const conflicts: StateKey[] = [];
    const byPartition = new Map<string, StateWrite[]>();
    for (const write of writes) {
      const list = byPartition.get(write.key.partition) ?? [];
      if (list.some((other) => other.key.row === write.key.row)) {
        // Table Storage refuses a transaction naming one entity twice; so do we, before writing anything.
        throw new AgentwatchError('STATE_WRITE_REFUSED', `one commit writes ${write.key.partition}/${write.key.row} twice`);
      }
      list.push(write);
      byPartition.set(write.key.partition, list);
    }
    for (const [partition, partitionWrites] of byPartition) {
      for (let start = 0; start < partitionWrites.length; start += MEMORY_TRANSACTION_LIMIT) {
        const transaction = partitionWrites.slice(start, start + MEMORY_TRANSACTION_LIMIT);
        const failed = transaction.filter((write) => !this.#conditionHolds(write));
        if (failed.length) {
          this.stats.conflicts += failed.length;
          conflicts.push(...failed.map((write) => ({ ...write.key })));
          continue;
        }
        let rows = this.#partitions.get(partition);
        if (!rows) {
          rows = new Map();
          this.#partitions.set(partition, rows);
        }
        for (const write of transaction) {
          this.stats.writes++;
          if (write.op === 'delete') {
            rows.delete(write.key.row);
            continue;
          }
          const etag = `W/"${++this.#etagCounter}"`;
          rows.set(write.key.row, { value: this.#copy(write.value), etag, ...(write.expiresAt !== undefined ? { expiresAt: write.expiresAt } : {}) });
          etags.set(stateKeyId(write.key), etag);
        }
      }
    }
    if (conflicts.length) throw new StateConflictError(conflicts);
    return etags;
  }

  #conditionHolds(write: StateWrite): boolean {
    const current = this.#live(write.key.partition, write.key.row);
    if (write.ifMatch === '*') return true;
    if (write.op === 'delete') return write.ifMatch === undefined || current?.etag === write.ifMatch;
    if (write.ifMatch === undefined) return current === undefined;
    return current?.etag === write.ifMatch;
  }

  /** Removes expired records; returns how many. */
  sweepExpired(): number {
    const now = this.#clock.now();
    let removed = 0;
    for (const [partition, rows] of this.#partitions) {
      for (const [row, record] of rows) {
        if (record.expiresAt !== undefined && record.expiresAt <= now) {
          rows.delete(row);
          removed++;
        }
      }
      if (rows.size === 0) this.#partitions.delete(partition);
    }
    return removed;
  }

  /** Live records, for tests and summaries. */
  size(): number {
    let count = 0;
    for (const [partition, rows] of this.#partitions) for (const row of rows.keys()) if (this.#live(partition, row)) count++;
    return count;
  }

  partitions(): string[] {
    return [...this.#partitions.keys()].sort();
  }
}

export function createMemoryStateStore(options: MemoryStateStoreOptions = {}): MemoryStateStore {
  return new MemoryStateStore(options);
}
