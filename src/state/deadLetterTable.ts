/**
 * Dead letters in Table Storage, so a record or alert agentwatch could not use is kept in Azure
 * with its reason and stream position instead of vanishing into a log line.
 *
 * Partition = the UTC day of `at` (`2026-11-24`), row = `at` + position + code + a content hash:
 * rows sort by time inside a day, a retried `put` of the same letter overwrites itself, and two
 * different letters at the same instant and position never overwrite each other. A payload too
 * large for one entity is cut to fit, with `payloadTruncated`, its original size and a readable
 * marker at the cut, never dropped silently.
 */
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { odata, TableClient, type TableEntity, type TransactionAction } from '@azure/data-tables';
import type { Settings } from '../config';
import { AgentwatchError, type StreamPosition } from '../errors';
import { silentLogger, systemClock, type Clock, type DeadLetter, type DeadLetterSink, type Logger } from '../ports';
import {
  ensureTable,
  escapeTableKey,
  estimateEntityBytes,
  forEachLimited,
  groupByPartition,
  joinStringParts,
  MAX_ENTITY_BYTES,
  MAX_KEY_CHARS,
  planTransactions,
  putStringParts,
  splitForStringProperties,
  tableClientFromSettings,
  unescapeTableKey,
  withTableRetry,
  type RetryPolicy,
  type TableClientFactoryOptions,
} from './tableStore';

export interface TableDeadLetterSinkOptions {
  /** Time source for letters whose `at` is unreadable and for `expiresAt`. Optional; defaults to the system clock. */
  clock?: Clock;
  logger?: Logger;
  retry?: RetryPolicy;
  /** When set, rows get `expiresAt = at + retentionMs` so `sweepExpiredState` can clear them. Optional; defaults to keeping them. */
  retentionMs?: number;
  /** Longest payload kept, in UTF-16 code units, before the entity limit. Optional; defaults to 400,000 (~800 KB). */
  maxPayloadChars?: number;
}

/** How the payload text was made from the payload, so it can be read back. */
export type DeadLetterPayloadEncoding = 'json' | 'text' | 'base64' | 'inspect' | 'none';

/** A dead letter as stored, read back by `list`. */
export interface StoredDeadLetter extends DeadLetter {
  payloadEncoding: DeadLetterPayloadEncoding;
  payloadTruncated: boolean;
  /** Size of the full payload text (UTF-8 bytes) when it was truncated. */
  payloadOriginalBytes?: number;
  rowKey: string;
}

const MAX_REASON_CHARS = 8_000;
/** Room left in the entity for property overheads the estimate does not see (part names, envelope). */
const ENTITY_MARGIN_BYTES = 16 * 1024;

export class TableDeadLetterSink implements DeadLetterSink {
  readonly table: TableClient;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly retry: RetryPolicy;
  private readonly retentionMs?: number;
  private readonly maxPayloadChars: number;

  /** The table must exist; `createTableDeadLetterSink` creates it. */
  constructor(table: TableClient, options: TableDeadLetterSinkOptions = {}) {
    this.table = table;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.retry = options.retry ?? {};
    this.retentionMs = options.retentionMs;
    this.maxPayloadChars = options.maxPayloadChars ?? 400_000;
  }

  /** Writes every letter (upserts, ≤100 per transaction per day); throws `STATE_UNAVAILABLE` if the table stays unreachable. */
  async put(letters: DeadLetter[]): Promise<void> {
    if (!letters.length) return;
    const entities = letters.map((letter) => this.toEntity(letter));
    const planned = entities.map((entity) => ({ partitionKey: entity.partitionKey, rowKey: entity.rowKey, bytes: Buffer.byteLength(JSON.stringify(entity)) + 512, entity }));
    const transactions = [...groupByPartition(planned).values()].flatMap((partition) => planTransactions(partition));
    await forEachLimited(transactions, 8, async (transaction) => {
      const actions: TransactionAction[] = transaction.map(({ entity }) => ['upsert', entity, 'Replace']);
      await withTableRetry(`dead-letter write to ${this.table.tableName}/${transaction[0]!.partitionKey}`, () => this.table.submitTransaction(actions), this.retry);
    });
    const truncated = entities.filter((entity) => entity.payloadTruncated === true).length;
    this.logger.log('info', 'dead letters stored', { table: this.table.tableName, count: letters.length, truncated });
  }

  /** The letters of one UTC day (`YYYY-MM-DD` or a Date), oldest first. */
  async list(day: string | Date): Promise<StoredDeadLetter[]> {
    const partitionKey = typeof day === 'string' ? day : dayOf(day.getTime());
    return withTableRetry(`dead-letter read of ${this.table.tableName}/${partitionKey}`, async () => {
      const letters: StoredDeadLetter[] = [];
      for await (const entity of this.table.listEntities<Record<string, unknown>>({ queryOptions: { filter: odata`PartitionKey eq ${partitionKey}` } })) {
        letters.push(fromEntity(entity));
      }
      return letters;
    }, this.retry);
  }

  private toEntity(letter: DeadLetter): TableEntity<Record<string, unknown>> {
    const parsedAt = Date.parse(letter.at);
    const atMs = Number.isFinite(parsedAt) ? parsedAt : this.clock.now();
    const position = letter.position ?? {};
    const { encoding, text } = payloadText(letter.payload);
    const reason = letter.reason.length > MAX_REASON_CHARS ? `${letter.reason.slice(0, MAX_REASON_CHARS)}… [reason truncated by agentwatch: ${letter.reason.length} characters]` : letter.reason;
    const entity: TableEntity<Record<string, unknown>> = {
      partitionKey: dayOf(atMs),
      rowKey: rowKeyFor(streamAnchored(position) ? 'stream' : new Date(atMs).toISOString(), position, letter.code, `${letter.code}\u0000${letter.reason}\u0000${text}`),
      code: letter.code,
      reason,
      at: letter.at,
      ...(letter.category !== undefined ? { category: letter.category } : {}),
      ...positionProperties(position),
      payloadEncoding: encoding,
      ...(this.retentionMs !== undefined ? { expiresAt: { value: String(Math.trunc(atMs + this.retentionMs)), type: 'Int64' } } : {}),
    };
    // What is left of the entity limit for the payload, at two bytes per code unit and ~48 bytes per part.
    const roomChars = Math.floor((MAX_ENTITY_BYTES - ENTITY_MARGIN_BYTES - estimateEntityBytes(entity)) / 2.01);
    const keepChars = Math.max(0, Math.min(this.maxPayloadChars, roomChars));
    if (text.length > keepChars) {
      const originalBytes = Buffer.byteLength(text, 'utf8');
      const marker = `… [payload truncated by agentwatch: ${originalBytes} bytes (${text.length} characters) in the original]`;
      let cut = Math.max(0, keepChars - marker.length);
      const last = text.charCodeAt(cut - 1);
      if (last >= 0xd800 && last <= 0xdbff) cut -= 1;
      putStringParts(entity, 'payload', splitForStringProperties(text.slice(0, cut) + marker));
      entity.payloadTruncated = true;
      entity.payloadOriginalBytes = originalBytes;
      entity.payloadOriginalChars = text.length;
    } else {
      putStringParts(entity, 'payload', splitForStringProperties(text));
      entity.payloadTruncated = false;
    }
    return entity;
  }
}

/** Builds the dead-letter sink on `AGENTWATCH_DEADLETTER_TABLE` in the state account, creating the table when missing. */
export async function createTableDeadLetterSink(settings: Settings, options: TableDeadLetterSinkOptions & TableClientFactoryOptions = {}): Promise<TableDeadLetterSink> {
  const table = tableClientFromSettings(settings, settings.AGENTWATCH_DEADLETTER_TABLE ?? 'agentwatchdeadletters', options);
  await ensureTable(table, options.retry);
  return new TableDeadLetterSink(table, options);
}

// ---------------------------------------------------------------------------------------------

function dayOf(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 10);
}

function payloadText(payload: unknown): { encoding: DeadLetterPayloadEncoding; text: string } {
  if (payload === undefined) return { encoding: 'none', text: '' };
  if (typeof payload === 'string') return { encoding: 'text', text: payload };
  if (Buffer.isBuffer(payload) || payload instanceof Uint8Array) return { encoding: 'base64', text: Buffer.from(payload).toString('base64') };
  try {
    const json = JSON.stringify(payload);
    if (json !== undefined) return { encoding: 'json', text: json };
  } catch {
    // Circular or BigInt payloads still deserve a readable copy: fall through to inspect.
  }
  return { encoding: 'inspect', text: inspect(payload, { depth: 6, maxArrayLength: 1_000, maxStringLength: 100_000, breakLength: Infinity }) };
}

/**
 * A letter with an Event Hubs position (partition + sequence number) is the same letter when the
 * batch is redelivered: its row key leaves out the time it was written, so the upsert replaces the
 * earlier row instead of adding a duplicate (same UTC day; a redelivery across midnight adds one).
 */
function streamAnchored(position: StreamPosition): boolean {
  return position.partitionId !== undefined && position.sequenceNumber !== undefined;
}

function rowKeyFor(atIso: string, position: StreamPosition, code: string, content: string): string {
  const hash = createHash('sha256').update(content).digest('hex').slice(0, 16);
  const parts = [atIso, position.partitionId, position.sequenceNumber, position.messageIndex, position.recordIndex, code, position.source].map((part) => (part === undefined ? '' : String(part)));
  const readable = escapeTableKey(parts.join('|'));
  // Long sources (file paths) must not push the key over the limit; the hash keeps it unique.
  const room = MAX_KEY_CHARS - hash.length - 1;
  return `${readable.length > room ? readable.slice(0, room).replace(/%[0-9A-F]?$/, '') : readable}|${hash}`;
}

function positionProperties(position: StreamPosition): Record<string, string | number> {
  const properties: Record<string, string | number> = {};
  if (position.source !== undefined) properties.source = position.source;
  if (position.partitionId !== undefined) properties.partitionId = position.partitionId;
  if (position.sequenceNumber !== undefined) properties.sequenceNumber = position.sequenceNumber;
  if (position.offset !== undefined) properties.offset = position.offset;
  if (position.messageIndex !== undefined) properties.messageIndex = position.messageIndex;
  if (position.recordIndex !== undefined) properties.recordIndex = position.recordIndex;
  return properties;
}

function fromEntity(entity: Record<string, unknown>): StoredDeadLetter {
  const encoding = String(entity.payloadEncoding ?? 'text') as DeadLetterPayloadEncoding;
  const truncated = entity.payloadTruncated === true;
  const text = joinStringParts(entity, 'payload') ?? '';
  let payload: unknown = text;
  if (encoding === 'none') payload = undefined;
  else if (encoding === 'json' && !truncated) {
    try {
      payload = JSON.parse(text);
    } catch (error) {
      throw new AgentwatchError('STATE_UNAVAILABLE', `stored dead letter ${String(entity.partitionKey)}/${String(entity.rowKey)} has an unreadable payload`, { cause: error });
    }
  }
  const position: StreamPosition = {};
  if (entity.source !== undefined) position.source = String(entity.source);
  if (entity.partitionId !== undefined) position.partitionId = String(entity.partitionId);
  if (entity.sequenceNumber !== undefined) position.sequenceNumber = String(entity.sequenceNumber);
  if (entity.offset !== undefined) position.offset = String(entity.offset);
  if (entity.messageIndex !== undefined) position.messageIndex = Number(entity.messageIndex);
  if (entity.recordIndex !== undefined) position.recordIndex = Number(entity.recordIndex);
  return {
    code: String(entity.code),
    reason: String(entity.reason),
    at: String(entity.at),
    ...(entity.category !== undefined ? { category: String(entity.category) } : {}),
    position,
    payload,
    payloadEncoding: encoding,
    payloadTruncated: truncated,
    ...(truncated ? { payloadOriginalBytes: Number(entity.payloadOriginalBytes) } : {}),
    rowKey: unescapeTableKey(String(entity.rowKey)),
  };
}
