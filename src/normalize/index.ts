/**
 * Normalize stage: one raw Entra record → one canonical `AgentEvent` (`./types`). Schema
 * validation happens before, in `src/ingest`; this stage assumes the record's shape is sane but
 * still reads every field defensively.
 */
import { RecordError, type StreamPosition } from '../errors';
import { normalizeAgentsInfo } from './agentsInfo';
import { normalizeAudit } from './audit';
import { familyOf, type RecordFamily } from './categories';
import { contentHashId } from './envelope';
import { normalizeGraphActivity } from './graphActivity';
import type { NormalizeInput } from './input';
import { normalizeRiskEvent, normalizeRiskyPrincipal } from './risk';
import { normalizeSignIn } from './signIn';
import type { AgentEvent } from './types';
import { asObject, type Json } from './values';

export * from './types';
export { CATEGORY_FAMILIES, USED_CATEGORIES, familyOf, type RecordFamily } from './categories';
export { parseEntraTime, isoTime } from './time';
export { foldOperation, decodeJsonish } from './values';
export { normalizeGraphPath } from './graphActivity';
export { parseKeyDescription } from './audit';
export { mitreTechniques } from './risk';

const NO_POSITION: StreamPosition = Object.freeze({}) as StreamPosition;

/** One object per record, no closures: the hash id is computed only when a record has no id. */
class RecordInput implements NormalizeInput {
  constructor(
    readonly record: Json,
    readonly properties: Json,
    readonly category: string,
    readonly position: StreamPosition,
    readonly fallbackTimeMs: number | undefined,
    readonly keepRaw: boolean,
  ) {}

  hashId(): string {
    return contentHashId(this.record);
  }
}

const NORMALIZERS: Readonly<Record<RecordFamily, (input: NormalizeInput) => AgentEvent>> = {
  signIn: normalizeSignIn,
  audit: normalizeAudit,
  riskEvent: normalizeRiskEvent,
  riskyPrincipal: normalizeRiskyPrincipal,
  graphActivity: normalizeGraphActivity,
  agentsInfo: normalizeAgentsInfo,
};

export interface NormalizeOptions {
  /** Where the record came from; carried into any `RecordError`. */
  position?: StreamPosition;
  /** Event time to use when the record has none at all (the Event Hub enqueued time). */
  fallbackTimeMs?: number;
  /** The record's family when the caller already resolved it (saves a look-up). */
  family?: RecordFamily;
  /** The record's `category`, when the caller already read it (the same text, possibly a shared string). */
  category?: string;
  /** Keep the record on the event as `raw` (default true; the pipeline's ingest passes false). */
  keepRaw?: boolean;
}

/**
 * Normalizes one record. Returns `undefined` when its category is one agentwatch does not use;
 * throws `RecordError` (RECORD_INVALID) when the record cannot become an event.
 */
export function normalizeRecord(record: unknown, options: NormalizeOptions = {}): AgentEvent | undefined {
  const position = options.position ?? NO_POSITION;
  const envelope = asObject(record);
  if (!envelope) throw new RecordError('RECORD_INVALID', 'record is not a JSON object', position);
  const category = options.category ?? (typeof envelope.category === 'string' ? envelope.category : undefined);
  if (!category) throw new RecordError('RECORD_INVALID', 'record has no category', position);
  const family = options.family ?? familyOf(category);
  if (!family) return undefined;
  const properties = asObject(envelope.properties);
  if (!properties) throw new RecordError('RECORD_INVALID', 'record properties is not an object', position);
  return NORMALIZERS[family](new RecordInput(envelope, properties, category, position, options.fallbackTimeMs, options.keepRaw ?? true));
}
