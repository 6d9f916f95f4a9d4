/**
 * The `StateStore` port on Azure Table Storage (`@azure/data-tables`): the store the Function and
 * `npm run local` use, shared by every instance reading the Event Hub.
 *
 * Entity layout (one entity per state key):
 * - `PartitionKey` / `RowKey`: the key's `partition` / `row`, escaped reversibly (see `escapeTableKey`).
 * - `valueJson`, `valueJson1` … : the value as JSON, split across string properties because one
 *   string property holds at most 64 KiB; `valueJsonParts` says how many.
 * - `expiresAt` (Edm.Int64, epoch ms): a property of its own so the sweep can query it.
 * - `tombstone: true`: a deleted key. Deletes are written as tombstones so a conditional delete can
 *   sit inside an atomic, etag-checked transaction (the SDK's transaction delete ignores etags).
 *
 * Concurrency: `ifMatch` maps to Table operations — undefined → create (409 = conflict), an etag →
 * replace with that etag (412/404 = conflict), `'*'` → upsert. A record that expired (or was
 * deleted) but is still physically present counts as absent: a create on it is turned into a
 * replace with the stale entity's etag, so it stays a compare-and-swap.
 */
import { odata, TableClient, type TableEntity, type TransactionAction } from '@azure/data-tables';
import type { TokenCredential } from '@azure/identity';
import type { Settings } from '../config';
import { AgentwatchError, ConfigError, StateConflictError } from '../errors';
import { silentLogger, stateKeyId, systemClock, type Clock, type Logger, type StateKey, type StateRecord, type StateStore, type StateWrite } from '../ports';

// ---------------------------------------------------------------------------------------------
// Service limits (learn.microsoft.com "Understanding the Table service data model", "Performing entity group transactions")

/** Operations per entity group transaction. */
export const MAX_TRANSACTION_OPERATIONS = 100;
/** Request body of one transaction is limited to 4 MiB; keep room for the multipart envelope. */
export const MAX_TRANSACTION_BYTES = 4 * 1024 * 1024 - 256 * 1024;
/** One entity, keys and property names included. */
export const MAX_ENTITY_BYTES = 1024 * 1024;
/** A string property holds 64 KiB of UTF-16, i.e. 32 Ki code units. */
export const MAX_STRING_PROPERTY_CHARS = 32 * 1024;
/** PartitionKey and RowKey are limited to 1 KiB each (UTF-16 → 512 code units), counted after escaping. */
export const MAX_KEY_CHARS = 512;

// ---------------------------------------------------------------------------------------------
// Errors

export type StateWriteRefusal = 'entityTooLarge' | 'keyTooLong' | 'notSerializable' | 'duplicateKey';

/** A write the Table Storage limits cannot hold. Thrown before anything of the commit is written. */
export class StateWriteRefusedError extends AgentwatchError {
  readonly key: StateKey;
  readonly refusal: StateWriteRefusal;
  readonly sizeBytes?: number;
  readonly limitBytes?: number;
  constructor(key: StateKey, refusal: StateWriteRefusal, detail: string, sizes?: { sizeBytes?: number; limitBytes?: number }, options?: { cause?: unknown }) {
    super('STATE_WRITE_REFUSED', `state write refused for ${key.partition}/${key.row}: ${detail}`, options);
    this.key = key;
    this.refusal = refusal;
    this.sizeBytes = sizes?.sizeBytes;
    this.limitBytes = sizes?.limitBytes;
  }
}

// ---------------------------------------------------------------------------------------------
// Keys

// `%` is the escape character itself; the rest are what Table Storage forbids in keys.
const FORBIDDEN_KEY_CHARS = /[%/\\#?\u0000-\u001f\u007f-\u009f]/g;
const ESCAPED_KEY_CHAR = /%([0-9A-F]{2})/g;

/**
 * Escapes a key for PartitionKey/RowKey: `/ \ # ?`, control characters and `%` become `%XX`.
 * Per-character, so `escape(prefix)` is a prefix of `escape(prefix + rest)` and range queries on
 * an escaped prefix still find every row.
 */
export function escapeTableKey(key: string): string {
  return key.replace(FORBIDDEN_KEY_CHARS, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

export function unescapeTableKey(escaped: string): string {
  return escaped.replace(ESCAPED_KEY_CHAR, (_match, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

export { stateKeyId };

// ---------------------------------------------------------------------------------------------
// Large strings and entity size

/** Splits text into string-property-sized parts without cutting a surrogate pair in two. */
export function splitForStringProperties(text: string, maxChars = MAX_STRING_PROPERTY_CHARS): string[] {
  const parts: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(start + maxChars, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
    parts.push(text.slice(start, end));
    start = end;
  }
  return parts;
}

/** Writes `parts` as `${name}`, `${name}1`, … and `${name}Parts`. */
export function putStringParts(entity: Record<string, unknown>, name: string, parts: string[]): void {
  parts.forEach((part, index) => {
    entity[index === 0 ? name : `${name}${index}`] = part;
  });
  entity[`${name}Parts`] = parts.length;
}

/** Reads back what `putStringParts` wrote; undefined when the property set is absent, an error when it is incomplete. */
export function joinStringParts(entity: Record<string, unknown>, name: string): string | undefined {
  const count = Number(entity[`${name}Parts`] ?? 0);
  if (!count) return undefined;
  let text = '';
  for (let index = 0; index < count; index++) {
    const part = entity[index === 0 ? name : `${name}${index}`];
    if (typeof part !== 'string') {
      throw new AgentwatchError('STATE_UNAVAILABLE', `stored entity ${String(entity.partitionKey)}/${String(entity.rowKey)} lacks part ${index + 1} of ${count} of ${name}`);
    }
    text += part;
  }
  return text;
}

/**
 * Size of an entity as Table Storage bills and limits it: 4 bytes + keys as UTF-16, and per
 * property 8 bytes + its name as UTF-16 + the value (strings 4 + UTF-16, numbers 8, booleans 1).
 */
export function estimateEntityBytes(entity: Record<string, unknown>): number {
  let bytes = 4;
  for (const [name, value] of Object.entries(entity)) {
    if (name === 'partitionKey' || name === 'rowKey') {
      bytes += String(value).length * 2;
      continue;
    }
    if (value === undefined || name === 'etag') continue;
    bytes += 8 + name.length * 2;
    if (typeof value === 'string') bytes += 4 + value.length * 2;
    else if (typeof value === 'boolean') bytes += 1;
    else bytes += 8; // numbers and typed Int64 values
  }
  return bytes;
}

/** Bytes this entity adds to a transaction body (JSON as UTF-8 plus the sub-request envelope). */
function transactionBytes(entity: Record<string, unknown>): number {
  return Buffer.byteLength(JSON.stringify(entity), 'utf8') + 512;
}

// ---------------------------------------------------------------------------------------------
// Transient errors

export interface RetryPolicy {
  /** Attempts in total, first one included. Optional; defaults to 4. */
  maxAttempts?: number;
  /** First back-off; doubled per attempt with jitter. Optional; defaults to 200 ms. */
  baseDelayMs?: number;
  /** Longest single wait, `Retry-After` included. Optional; defaults to 10 s. */
  maxDelayMs?: number;
  /** Injected in tests so retries take no wall time. Optional; defaults to setTimeout. */
  sleep?: (ms: number) => Promise<void>;
}

const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const NETWORK_CODES = new Set(['REQUEST_SEND_ERROR', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_SOCKET']);

interface ServiceErrorShape {
  statusCode?: number;
  code?: string;
  message?: string;
  response?: { headers?: { get(name: string): string | undefined } };
}

/** HTTP status of an SDK error, when it has one (`code` is often undefined on 412: check this). */
export function statusOf(error: unknown): number | undefined {
  const status = (error as ServiceErrorShape | undefined)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/**
 * The service's error code (`TableNotFound`, `EntityAlreadyExists` …). Point operations often leave
 * `code` undefined and only send it in the `x-ms-error-code` header.
 */
export function serviceErrorCode(error: unknown): string | undefined {
  const shape = error as ServiceErrorShape | undefined;
  return shape?.code ?? shape?.response?.headers?.get('x-ms-error-code') ?? /"code":"([A-Za-z]+)"/.exec(shape?.message ?? '')?.[1];
}

export function isTransientTableError(error: unknown): boolean {
  const status = statusOf(error);
  if (status !== undefined) return TRANSIENT_STATUS.has(status);
  const code = (error as ServiceErrorShape | undefined)?.code;
  return typeof code === 'string' && NETWORK_CODES.has(code);
}

function retryAfterMs(error: unknown): number | undefined {
  const header = (error as ServiceErrorShape | undefined)?.response?.headers?.get('retry-after');
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `attempt`, retrying transient failures (5xx, 408, 429, network) with exponential back-off
 * that honours `Retry-After`. When the budget is spent, or on any other unexpected failure, throws
 * `STATE_UNAVAILABLE` with the cause. Errors `passThrough` accepts are rethrown untouched.
 */
export async function withTableRetry<T>(
  operation: string,
  attempt: () => Promise<T>,
  policy: RetryPolicy = {},
  hooks: { passThrough?: (error: unknown) => boolean; onRetry?: (error: unknown, attempt: number, delayMs: number) => void } = {},
): Promise<T> {
  const maxAttempts = Math.max(1, policy.maxAttempts ?? 4);
  const baseDelayMs = policy.baseDelayMs ?? 200;
  const maxDelayMs = policy.maxDelayMs ?? 10_000;
  const sleep = policy.sleep ?? defaultSleep;
  for (let attemptNumber = 1; ; attemptNumber++) {
    try {
      return await attempt();
    } catch (error) {
      if (error instanceof AgentwatchError || hooks.passThrough?.(error)) throw error;
      const transient = isTransientTableError(error);
      if (!transient || attemptNumber >= maxAttempts) {
        const status = statusOf(error);
        const what = transient ? `still failing after ${attemptNumber} attempt(s)` : 'failed';
        throw new AgentwatchError(
          'STATE_UNAVAILABLE',
          `Table Storage ${operation} ${what}${status !== undefined ? ` (HTTP ${status})` : ''}: ${(error as Error)?.message ?? String(error)}`,
          { cause: error },
        );
      }
      const backoff = Math.min(maxDelayMs, baseDelayMs * 2 ** (attemptNumber - 1));
      const delayMs = Math.min(maxDelayMs, Math.max(retryAfterMs(error) ?? 0, backoff / 2 + Math.random() * (backoff / 2)));
      hooks.onRetry?.(error, attemptNumber, delayMs);
      await sleep(delayMs);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Table client from settings

export interface TableClientFactoryOptions {
  /** Replaces DefaultAzureCredential (tests, other credential chains). */
  credential?: TokenCredential;
}

/**
 * A `TableClient` for `tableName` from the app settings: the connection string when set (local,
 * Azurite; plain http allowed), else the endpoint with `DefaultAzureCredential` (managed identity
 * in Azure; `AZURE_CLIENT_ID` picks a user-assigned one). The SDK's own retries are switched off:
 * `withTableRetry` owns the retry budget so it is bounded and visible.
 */
export function tableClientFromSettings(settings: Settings, tableName: string, options: TableClientFactoryOptions = {}): TableClient {
  const clientOptions = { retryOptions: { maxRetries: 0 } };
  const connectionString = settings.AGENTWATCH_STATE_CONNECTION_STRING;
  if (connectionString) {
    const insecure = /UseDevelopmentStorage=true/i.test(connectionString) || /TableEndpoint=http:/i.test(connectionString) || /DefaultEndpointsProtocol=http;/i.test(connectionString);
    try {
      return TableClient.fromConnectionString(connectionString, tableName, { ...clientOptions, allowInsecureConnection: insecure });
    } catch (error) {
      // The value holds an account key: name the setting, never echo it.
      throw new ConfigError([{ file: 'environment', path: 'AGENTWATCH_STATE_CONNECTION_STRING', message: 'not a usable Table Storage connection string (expected AccountName, AccountKey and TableEndpoint or EndpointSuffix)' }], { cause: error });
    }
  }
  const endpoint = settings.AGENTWATCH_STATE_TABLE_ENDPOINT;
  if (!endpoint) {
    throw new ConfigError([
      { file: 'environment', path: 'AGENTWATCH_STATE_TABLE_ENDPOINT', message: 'missing: set it (with a managed identity) or AGENTWATCH_STATE_CONNECTION_STRING for Table Storage state' },
    ]);
  }
  // Loaded here, not at module top: replay and unit tests never need the identity stack.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const credential = options.credential ?? new (require('@azure/identity') as typeof import('@azure/identity')).DefaultAzureCredential(settings.AZURE_CLIENT_ID ? { managedIdentityClientId: settings.AZURE_CLIENT_ID } : {});
  return new TableClient(endpoint, tableName, credential, { ...clientOptions, allowInsecureConnection: endpoint.startsWith('http:') });
}

/** Creates the table when missing; only "already exists" (409 TableAlreadyExists) is expected. */
export async function ensureTable(table: TableClient, retry: RetryPolicy = {}): Promise<void> {
  await withTableRetry(
    `create table ${table.tableName}`,
    async () => {
      try {
        await table.createTable();
      } catch (error) {
        const code = serviceErrorCode(error);
        if (statusOf(error) === 409 && (code === undefined || code === 'TableAlreadyExists')) return;
        throw error;
      }
    },
    retry,
  );
}

// ---------------------------------------------------------------------------------------------
// Transactions

export interface PlannedOperation {
  partitionKey: string;
  rowKey: string;
  /** Bytes the operation adds to a transaction body. */
  bytes: number;
}

/**
 * Cuts one partition's operations into transactions: at most 100 operations and 4 MiB each, and a
 * row never twice in one transaction (the service rejects that), so repeated writes stay in order.
 */
export function planTransactions<T extends PlannedOperation>(operations: T[]): T[][] {
  const transactions: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  let rows = new Set<string>();
  for (const operation of operations) {
    const full = current.length >= MAX_TRANSACTION_OPERATIONS || bytes + operation.bytes > MAX_TRANSACTION_BYTES || rows.has(operation.rowKey);
    if (full && current.length) {
      transactions.push(current);
      current = [];
      bytes = 0;
      rows = new Set();
    }
    current.push(operation);
    bytes += operation.bytes;
    rows.add(operation.rowKey);
  }
  if (current.length) transactions.push(current);
  return transactions;
}

/** Groups by partition key, keeping the order of operations inside each partition. */
export function groupByPartition<T extends { partitionKey: string }>(operations: T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const operation of operations) {
    const group = groups.get(operation.partitionKey);
    if (group) group.push(operation);
    else groups.set(operation.partitionKey, [operation]);
  }
  return groups;
}

/** Runs `task` over `items` with at most `limit` in flight; waits for all, then rethrows the first failure. */
export async function forEachLimited<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let firstError: unknown;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await task(item);
      } catch (error) {
        if (!failed) firstError = error;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  if (failed) throw firstError;
}

/**
 * Caps requests in flight. A batch can ask for thousands of keys at once; an unbounded fan-out
 * exhausts a Function instance's outbound connections (SNAT ports) long before it speeds anything up.
 */
export class RequestGate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  async run<T>(request: () => Promise<T>): Promise<T> {
    // A finishing request hands its slot straight to the next waiter, so no newcomer can slip in between.
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await request();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/** The service prefixes a failed transaction's message with the index of the failing operation ("3:The specified …"). */
function failingOperationIndex(error: unknown): number | undefined {
  const match = /^(\d+):/.exec((error as ServiceErrorShape | undefined)?.message ?? '');
  return match ? Number(match[1]) : undefined;
}

/** 409 (create on an existing row), 412 (stale etag), 404 (replace of a missing row) — not a missing table. */
function isPreconditionFailure(error: unknown): boolean {
  const status = statusOf(error);
  return (status === 409 || status === 412 || status === 404) && serviceErrorCode(error) !== 'TableNotFound';
}

/** A service-side size refusal (property, entity or body too large). */
function isSizeRefusal(error: unknown): boolean {
  const status = statusOf(error);
  const code = serviceErrorCode(error) ?? '';
  return status === 413 || (status === 400 && /TooLarge|TooLong/i.test(code));
}

// ---------------------------------------------------------------------------------------------
// The store

/** Counters of what the store sent, for the bench and for logs. */
export interface TableStateStats {
  /** Entity operations sent inside transactions (creates, replaces, upserts, tombstones). */
  entityWrites: number;
  /** Transactions (HTTP requests) sent, retries and re-submissions included. */
  transactions: number;
  /** Point reads (`get`, conflict inspection). */
  reads: number;
  /** Range queries (`list`), counted per page. */
  queryPages: number;
  /** Transactions that ended in `StateConflictError`. */
  conflicts: number;
  /** Creates turned into replaces because the stored row had expired or was a tombstone. */
  reusedExpiredRows: number;
  /** Retried transient failures. */
  retries: number;
}

export interface TableStateStoreOptions {
  /** Time source for TTL checks and tombstones. Optional; defaults to the system clock. */
  clock?: Clock;
  logger?: Logger;
  retry?: RetryPolicy;
  /** Partitions committed in parallel. Optional; defaults to 16. */
  partitionConcurrency?: number;
  /** Table requests in flight at once (reads, queries, transactions). Optional; defaults to 48. */
  maxConcurrentRequests?: number;
}

type TableAction = 'create' | 'update' | 'upsert';

interface PreparedWrite extends PlannedOperation {
  key: StateKey;
  action: TableAction;
  entity: TableEntity<Record<string, unknown>>;
  etag?: string;
  expiresAt?: number;
}

interface TransactionOutcome {
  etags?: (string | undefined)[];
  conflict?: unknown;
}

/** How many create→replace re-submissions one transaction may need before it is called a conflict. */
const MAX_RESUBMISSIONS = 8;
/** Etags whose record expiry this store remembers (see `expiryByEtag`); the oldest are forgotten first. */
const REMEMBERED_EXPIRIES = 50_000;

export class TableStateStore implements StateStore {
  readonly table: TableClient;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly retry: RetryPolicy;
  private readonly partitionConcurrency: number;
  private readonly gate: RequestGate;
  /**
   * Expiry of the records this store handed out, by etag. The service would accept a replace with
   * the etag of a record that has expired since it was read; for the port that record is gone, so
   * such a write is a conflict, decided here without a round trip.
   */
  private readonly expiryByEtag = new Map<string, number>();
  private readonly counters: TableStateStats = { entityWrites: 0, transactions: 0, reads: 0, queryPages: 0, conflicts: 0, reusedExpiredRows: 0, retries: 0 };

  /** The table must exist; `createTableStateStore` creates it. */
  constructor(table: TableClient, options: TableStateStoreOptions = {}) {
    this.table = table;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.retry = options.retry ?? {};
    this.partitionConcurrency = options.partitionConcurrency ?? 16;
    this.gate = new RequestGate(options.maxConcurrentRequests ?? 48);
  }

  get stats(): TableStateStats {
    return { ...this.counters };
  }

  async get<T>(key: StateKey): Promise<StateRecord<T> | undefined> {
    const partitionKey = escapeTableKey(key.partition);
    const rowKey = escapeTableKey(key.row);
    // A key too long to write was never written.
    if (partitionKey.length > MAX_KEY_CHARS || rowKey.length > MAX_KEY_CHARS) return undefined;
    const entity = await this.readEntity(partitionKey, rowKey);
    return entity && this.decode<T>(entity, this.clock.now());
  }

  async list<T>(partition: string, rowPrefix = ''): Promise<StateRecord<T>[]> {
    const partitionKey = escapeTableKey(partition);
    const escapedPrefix = escapeTableKey(rowPrefix);
    const filter = escapedPrefix
      ? odata`PartitionKey eq ${partitionKey} and RowKey ge ${escapedPrefix} and RowKey lt ${prefixUpperBound(escapedPrefix)}`
      : odata`PartitionKey eq ${partitionKey}`;
    return this.withRetry(`list ${partition}/${rowPrefix}*`, async () => {
      const now = this.clock.now();
      const records: StateRecord<T>[] = [];
      const pages = this.table.listEntities<Record<string, unknown>>({ queryOptions: { filter } }).byPage();
      for (let page = await this.gate.run(() => pages.next()); !page.done; page = await this.gate.run(() => pages.next())) {
        this.counters.queryPages++;
        for (const entity of page.value) {
          // The range is exact for ordinary keys; the check keeps the contract for exotic last characters.
          if (!String(entity.rowKey).startsWith(escapedPrefix)) continue;
          const record = this.decode<T>(entity, now);
          if (record) records.push(record);
        }
      }
      return records;
    });
  }

  async commit(writes: StateWrite[]): Promise<Map<string, string>> {
    const now = this.clock.now();
    // Every write is checked before anything is sent: a refused commit writes nothing.
    const seen = new Set<string>();
    for (const write of writes) {
      const id = stateKeyId(write.key);
      // One key twice would need two transactions and an order between them; the port refuses it, as the in-memory store does.
      if (seen.has(id)) throw new StateWriteRefusedError(write.key, 'duplicateKey', 'the commit writes this key more than once');
      seen.add(id);
    }
    const prepared = writes.map((write) => this.prepare(write, now));
    const etags = new Map<string, string>();
    const notApplied: StateKey[] = [];
    let conflictCause: unknown;
    await forEachLimited([...groupByPartition(prepared).values()], this.partitionConcurrency, async (partitionWrites) => {
      for (const transaction of planTransactions(partitionWrites)) {
        const outcome = await this.submit(transaction, now);
        if (outcome.conflict !== undefined) {
          // The failed transaction applied nothing: all its keys are reported (the service names only
          // the first failing one), so the caller re-reads and re-applies exactly what did not land.
          notApplied.push(...transaction.map((write) => write.key));
          conflictCause ??= outcome.conflict;
          continue;
        }
        transaction.forEach((write, position) => {
          const etag = outcome.etags?.[position];
          // A tombstone's etag is not handed out: for the port a deleted key has none.
          if (!etag || write.entity.tombstone === true) return;
          etags.set(stateKeyId(write.key), etag);
          this.rememberExpiry(etag, write.expiresAt);
        });
      }
    });
    if (notApplied.length) throw new StateConflictError(notApplied, { cause: conflictCause });
    return etags;
  }

  // -------------------------------------------------------------------------------------------

  private prepare(write: StateWrite, now: number): PreparedWrite {
    const partitionKey = escapeTableKey(write.key.partition);
    const rowKey = escapeTableKey(write.key.row);
    for (const [which, escaped] of [['partition', partitionKey], ['row', rowKey]] as const) {
      if (escaped.length > MAX_KEY_CHARS) {
        throw new StateWriteRefusedError(write.key, 'keyTooLong', `the ${which} key is ${escaped.length} characters once escaped; Table Storage allows ${MAX_KEY_CHARS}`, {
          sizeBytes: escaped.length * 2,
          limitBytes: MAX_KEY_CHARS * 2,
        });
      }
    }
    const entity: TableEntity<Record<string, unknown>> = { partitionKey, rowKey };
    if (write.op === 'put') {
      let json: string | undefined;
      try {
        json = JSON.stringify(write.value);
      } catch (error) {
        throw new StateWriteRefusedError(write.key, 'notSerializable', `the value cannot be written as JSON: ${(error as Error).message}`, undefined, { cause: error });
      }
      putStringParts(entity, 'valueJson', json === undefined ? [] : splitForStringProperties(json));
      if (write.expiresAt !== undefined) entity.expiresAt = int64(write.expiresAt);
    } else {
      entity.tombstone = true;
      // Swept at the next run; reads treat it as absent whatever its expiry.
      entity.expiresAt = int64(now);
    }
    const sizeBytes = estimateEntityBytes(entity);
    if (sizeBytes > MAX_ENTITY_BYTES) {
      throw new StateWriteRefusedError(write.key, 'entityTooLarge', `the entity would be ${sizeBytes} bytes; Table Storage allows ${MAX_ENTITY_BYTES} per entity`, {
        sizeBytes,
        limitBytes: MAX_ENTITY_BYTES,
      });
    }
    const ifMatch = write.ifMatch;
    const action: TableAction = ifMatch === '*' || (write.op === 'delete' && ifMatch === undefined) ? 'upsert' : ifMatch === undefined ? 'create' : 'update';
    return {
      key: write.key,
      partitionKey,
      rowKey,
      action,
      entity,
      etag: action === 'update' ? ifMatch : undefined,
      expiresAt: write.op === 'put' ? write.expiresAt : undefined,
      bytes: transactionBytes(entity),
    };
  }

  /** Sends one transaction; on a precondition failure decides between "conflict" and "re-submit". */
  private async submit(transaction: PreparedWrite[], now: number): Promise<TransactionOutcome> {
    const partition = transaction[0]!.key.partition;
    const expired = transaction.find((write) => write.action === 'update' && (this.expiryByEtag.get(write.etag!) ?? Infinity) <= now);
    if (expired) {
      this.counters.conflicts++;
      return { conflict: new Error(`${expired.key.partition}/${expired.key.row}: the record this etag names has expired`) };
    }
    for (let round = 0; round <= MAX_RESUBMISSIONS; round++) {
      try {
        const response = await this.withRetry(
          `transaction on partition ${partition}`,
          () => {
            this.counters.transactions++;
            this.counters.entityWrites += transaction.length;
            return this.gate.run(() => this.table.submitTransaction(transaction.map(toTransactionAction)));
          },
          (error) => isPreconditionFailure(error) || isSizeRefusal(error),
        );
        return { etags: response.subResponses.map((sub) => sub.etag) };
      } catch (error) {
        if (isSizeRefusal(error)) {
          const write = transaction[failingOperationIndex(error) ?? 0] ?? transaction[0]!;
          throw new StateWriteRefusedError(write.key, 'entityTooLarge', `Table Storage refused the entity: ${(error as Error).message}`, undefined, { cause: error });
        }
        if (!isPreconditionFailure(error)) throw error;
        if ((await this.explainFailure(transaction, error, now)) === 'conflict') {
          this.counters.conflicts++;
          this.logger.log('debug', 'state transaction conflicted', { partition, operations: transaction.length, status: statusOf(error) });
          return { conflict: error };
        }
      }
    }
    this.counters.conflicts++;
    return { conflict: new Error(`transaction on partition ${partition} still failed its preconditions after ${MAX_RESUBMISSIONS} re-submissions`) };
  }

  /**
   * A 409/412/404 is either a real conflict, or a create that ran into a row which is expired or a
   * tombstone (absent for the port): such a create becomes a replace guarded by that row's etag.
   * The service names the failing operation in its message; without that, every operation is checked.
   */
  private async explainFailure(transaction: PreparedWrite[], error: unknown, now: number): Promise<'conflict' | 'resubmit'> {
    const index = failingOperationIndex(error);
    const suspects = index !== undefined && index < transaction.length ? [transaction[index]!] : transaction.filter((write) => write.action !== 'upsert');
    const verdicts = await Promise.all(
      suspects.map(async (write): Promise<'conflict' | 'fine' | 'reused'> => {
        if (write.action === 'update' && index !== undefined) return 'conflict';
        const stored = await this.readEntity(write.partitionKey, write.rowKey);
        if (write.action === 'update') return stored && stored.etag === write.etag ? 'fine' : 'conflict';
        if (!stored) return 'fine'; // gone meanwhile: the create may now succeed
        if (this.decode(stored, now)) return 'conflict';
        write.action = 'update';
        write.etag = String(stored.etag);
        this.counters.reusedExpiredRows++;
        return 'reused';
      }),
    );
    if (verdicts.includes('conflict')) return 'conflict';
    // Nothing explained the failure: report it rather than loop.
    return verdicts.includes('reused') || index !== undefined ? 'resubmit' : 'conflict';
  }

  private async readEntity(partitionKey: string, rowKey: string): Promise<Record<string, unknown> | undefined> {
    return this.withRetry(`read ${partitionKey}/${rowKey}`, async () => {
      this.counters.reads++;
      try {
        return await this.gate.run(() => this.table.getEntity<Record<string, unknown>>(partitionKey, rowKey));
      } catch (error) {
        if (statusOf(error) === 404 && serviceErrorCode(error) !== 'TableNotFound') return undefined;
        throw error;
      }
    });
  }

  private decode<T>(entity: Record<string, unknown>, now: number): StateRecord<T> | undefined {
    if (entity.tombstone === true) return undefined;
    const expiresAt = entity.expiresAt === undefined || entity.expiresAt === null ? undefined : Number(entity.expiresAt);
    if (expiresAt !== undefined && expiresAt <= now) return undefined;
    const key = { partition: unescapeTableKey(String(entity.partitionKey)), row: unescapeTableKey(String(entity.rowKey)) };
    const json = joinStringParts(entity, 'valueJson');
    let value: T;
    try {
      value = json === undefined ? (undefined as T) : (JSON.parse(json) as T);
    } catch (error) {
      throw new AgentwatchError('STATE_UNAVAILABLE', `stored state ${key.partition}/${key.row} is not valid JSON (${json?.length ?? 0} characters in ${String(entity.valueJsonParts)} part(s))`, { cause: error });
    }
    const etag = String(entity.etag);
    this.rememberExpiry(etag, expiresAt);
    return { key, value, etag, ...(expiresAt !== undefined ? { expiresAt } : {}) };
  }

  private rememberExpiry(etag: string, expiresAt: number | undefined): void {
    if (expiresAt === undefined) return;
    if (this.expiryByEtag.size >= REMEMBERED_EXPIRIES) this.expiryByEtag.delete(this.expiryByEtag.keys().next().value!);
    this.expiryByEtag.set(etag, expiresAt);
  }

  private withRetry<T>(operation: string, attempt: () => Promise<T>, passThrough?: (error: unknown) => boolean): Promise<T> {
    return withTableRetry(operation, attempt, this.retry, {
      passThrough,
      onRetry: (error, attemptNumber, delayMs) => {
        this.counters.retries++;
        this.logger.log('warn', 'Table Storage call failed, retrying', { operation, attempt: attemptNumber, delayMs: Math.round(delayMs), status: statusOf(error), error: (error as Error)?.message });
      },
    });
  }
}

function int64(epochMs: number): { value: string; type: 'Int64' } {
  return { value: String(Math.trunc(epochMs)), type: 'Int64' };
}

function toTransactionAction(write: PreparedWrite): TransactionAction {
  switch (write.action) {
    case 'create':
      return ['create', write.entity];
    case 'update':
      return ['update', write.entity, 'Replace', { etag: write.etag }];
    default:
      return ['upsert', write.entity, 'Replace'];
  }
}

/** Smallest string greater than every string starting with `prefix` (last code unit + 1). */
function prefixUpperBound(prefix: string): string {
  let end = prefix.length;
  while (end > 0 && prefix.charCodeAt(end - 1) === 0xffff) end--;
  if (end === 0) return '\uffff';
  return prefix.slice(0, end - 1) + String.fromCharCode(prefix.charCodeAt(end - 1) + 1);
}

// ---------------------------------------------------------------------------------------------
// Factory

export interface CreateTableStateStoreOptions extends TableStateStoreOptions, TableClientFactoryOptions {}

/**
 * Builds the Table state store from the app settings (`AGENTWATCH_STATE_CONNECTION_STRING`, or
 * `AGENTWATCH_STATE_TABLE_ENDPOINT` + managed identity; table `AGENTWATCH_STATE_TABLE`) and creates
 * the table when missing. Call once per host instance, not per invocation.
 */
export async function createTableStateStore(settings: Settings, options: CreateTableStateStoreOptions = {}): Promise<TableStateStore> {
  const table = tableClientFromSettings(settings, settings.AGENTWATCH_STATE_TABLE ?? 'agentwatchstate', options);
  await ensureTable(table, options.retry);
  return new TableStateStore(table, options);
}
