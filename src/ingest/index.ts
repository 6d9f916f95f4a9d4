/**
 * Ingest stage: Event Hub messages → validated, normalized events. Decodes each body, routes each
 * record by category, validates it against its family's schema and normalizes it. Nothing here
 * throws for bad data: an undecodable body or a malformed record becomes a dead letter carrying
 * the reason and its position (partition, sequence number, message index, record index), and the
 * rest of the batch goes on. Records of categories agentwatch does not use are counted as skipped.
 */
import { RecordError, type StreamPosition } from '../errors';
import { normalizeRecord, type NormalizeOptions } from '../normalize';
import { familyOf, sharedCategoryName, type RecordFamily } from '../normalize/categories';
import { parseEntraTime } from '../normalize/time';
import type { AgentEvent } from '../normalize/types';
import type { DeadLetter } from '../ports';
import { decodeMessage, recordPosition, type DecodedMessage } from './decode';
import { validateRecord } from './validate';

export { decodeMessage, type DecodedMessage, type RawRecord } from './decode';
export { validateRecord } from './validate';

/** Where a batch came from; arrays are index-aligned with the messages (Functions trigger metadata). */
export interface BatchMeta {
  /** A label for the input (file name, hub name), carried into dead-letter positions. */
  source?: string;
  partitionId?: string;
  sequenceNumbers?: readonly (string | number | bigint | null | undefined)[];
  offsets?: readonly (string | number | null | undefined)[];
  /** Enqueued times (ISO, zone-less = UTC, or Date); used as event time only when a record has none. */
  enqueuedTimes?: readonly (string | Date | null | undefined)[];
  /** Per-message labels overriding `source` (e.g. `file.ndjson:12` for replay). */
  sources?: readonly (string | undefined)[];
}

export interface IngestStats {
  messages: number;
  /** Every record found in the bodies, used or not, valid or not. */
  recordsRead: number;
  /** Records read per category as sent (`(none)` when a record has no category). */
  byCategory: Record<string, number>;
  skippedByCategory: Record<string, number>;
  /** Undecodable bodies plus malformed records. */
  rejected: number;
  rejectedByReason: Record<string, number>;
  events: number;
}

export interface IngestResult {
  events: AgentEvent[];
  deadLetters: DeadLetter[];
  stats: IngestStats;
}

export function emptyIngestStats(): IngestStats {
  return { messages: 0, recordsRead: 0, byCategory: {}, skippedByCategory: {}, rejected: 0, rejectedByReason: {}, events: 0 };
}

function messagePosition(meta: BatchMeta, index: number): StreamPosition {
  const position: StreamPosition = { messageIndex: index };
  const source = meta.sources?.[index] ?? meta.source;
  if (source !== undefined) position.source = source;
  if (meta.partitionId !== undefined) position.partitionId = meta.partitionId;
  const sequence = meta.sequenceNumbers?.[index];
  if (sequence !== undefined && sequence !== null) position.sequenceNumber = String(sequence);
  const offset = meta.offsets?.[index];
  if (offset !== undefined && offset !== null) position.offset = String(offset);
  return position;
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

interface CategorySlot {
  count: number;
  family: RecordFamily | undefined;
  /** The category text as one string for the whole batch (see `sharedCategoryName`). */
  name: string;
}

/** A reason without record-specific values, so the summary groups like problems together. */
function reasonKey(reason: string): string {
  return reason.length > 120 ? `${reason.slice(0, 117)}...` : reason;
}

export interface IngestOptions {
  /** Keep each record on its event as `raw` (default false: nothing downstream reads it; see `AgentEvent.raw`). */
  keepRaw?: boolean;
}

/**
 * Decodes, validates and normalizes a batch. `now` stamps dead letters. Events come back in
 * message/record order; the pipeline orders them by event time.
 */
export function ingestBatch(messages: readonly unknown[], meta: BatchMeta = {}, now: () => number = Date.now, options: IngestOptions = {}): IngestResult {
  const keepRaw = options.keepRaw ?? false;
  const stats = emptyIngestStats();
  const events: AgentEvent[] = [];
  const deadLetters: DeadLetter[] = [];
  stats.messages = messages.length;
  const at = new Date(now()).toISOString();
  const reject = (code: DeadLetter['code'], reason: string, position: StreamPosition, payload: unknown, category?: string): void => {
    stats.rejected++;
    bump(stats.rejectedByReason, reasonKey(reason));
    const letter: DeadLetter = { code, reason, position, payload, at };
    if (category !== undefined) letter.category = category;
    deadLetters.push(letter);
  };

  // Counted in a Map (one per batch) and copied into the stats object once: string-keyed object
  // counters would turn into dictionaries on the hot path. The slot also holds the category's
  // family, so each record costs one look-up of its category.
  const perCategory = new Map<string, CategorySlot>();
  const decoded: DecodedMessage = { records: [], undecodable: [] };
  const normalizeOptions: NormalizeOptions = { family: undefined, category: undefined, fallbackTimeMs: undefined, keepRaw };
  for (let i = 0; i < messages.length; i++) {
    decoded.records.length = 0;
    decoded.undecodable.length = 0;
    const position = messagePosition(meta, i);
    decodeMessage(messages[i], position, decoded);
    for (const bad of decoded.undecodable) reject('RECORD_UNDECODABLE', bad.reason, bad.position, bad.payload);
    const enqueued = meta.enqueuedTimes?.[i];
    const fallbackTimeMs = enqueued === undefined || enqueued === null ? undefined : parseEntraTime(enqueued);
    for (let r = 0; r < decoded.records.length; r++) {
      const { record, recordIndex } = decoded.records[r];
      stats.recordsRead++;
      const category = typeof record === 'object' && record !== null && !Array.isArray(record) ? (record as { category?: unknown }).category : undefined;
      if (typeof category !== 'string' || category.length === 0) {
        bump(stats.byCategory, '(none)');
        const reason = typeof record !== 'object' || record === null || Array.isArray(record) ? 'record is not a JSON object' : 'record has no category';
        reject('RECORD_INVALID', reason, recordPosition(position, recordIndex), record);
        continue;
      }
      let slot = perCategory.get(category);
      if (slot === undefined) perCategory.set(category, (slot = { count: 0, family: familyOf(category), name: sharedCategoryName(category) }));
      slot.count++;
      const family = slot.family;
      if (!family) {
        bump(stats.skippedByCategory, category);
        continue;
      }
      const invalid = validateRecord(family, record);
      if (invalid) {
        reject('RECORD_INVALID', `${category} record ${invalid}`, recordPosition(position, recordIndex), record, category);
        continue;
      }
      try {
        // One options object per batch, refilled per record (normalizeRecord reads it and lets go).
        normalizeOptions.family = family;
        normalizeOptions.category = slot.name;
        normalizeOptions.fallbackTimeMs = fallbackTimeMs;
        const event = normalizeRecord(record, normalizeOptions);
        if (event) events.push(event);
      } catch (error) {
        // A normalizer bug on odd data must not sink the batch: dead-letter the record, keep going.
        const at = recordPosition(position, recordIndex);
        if (error instanceof RecordError) reject(error.code, error.message, at, record, category);
        else reject('RECORD_INVALID', `${category} record could not be normalized: ${(error as Error)?.message ?? String(error)}`, at, record, category);
      }
    }
  }
  for (const [category, { count }] of perCategory) stats.byCategory[category] = (stats.byCategory[category] ?? 0) + count;
  stats.events = events.length;
  return { events, deadLetters, stats };
}

/** Adds one batch's stats into running totals (replay prints the totals at the end). */
export function addIngestStats(total: IngestStats, batch: IngestStats): IngestStats {
  total.messages += batch.messages;
  total.recordsRead += batch.recordsRead;
  total.rejected += batch.rejected;
  total.events += batch.events;
  for (const [k, v] of Object.entries(batch.byCategory)) total.byCategory[k] = (total.byCategory[k] ?? 0) + v;
  for (const [k, v] of Object.entries(batch.skippedByCategory)) total.skippedByCategory[k] = (total.skippedByCategory[k] ?? 0) + v;
  for (const [k, v] of Object.entries(batch.rejectedByReason)) total.rejectedByReason[k] = (total.rejectedByReason[k] ?? 0) + v;
  return total;
}
