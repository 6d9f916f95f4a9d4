import type { StreamPosition } from '../errors';
import type { Json } from './values';

/** What a family normalizer gets: the record, its `properties`, the category as sent, and where it came from. */
export interface NormalizeInput {
  record: Json;
  properties: Json;
  category: string;
  position: StreamPosition;
  /** Used as event time only when the record carries no usable time at all (e.g. the enqueued time). */
  fallbackTimeMs?: number | undefined;
  /** Whether the event keeps the record as `raw`. */
  keepRaw: boolean;
  /** A stable content-hash id, computed only when the record has no id of its own. */
  hashId(): string;
}
