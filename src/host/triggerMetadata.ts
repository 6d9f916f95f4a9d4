/**
 * Reads the Event Hubs trigger's `triggerMetadata` (Functions host) — or the same shape built by
 * the self-hosted consumer — into the pipeline's `BatchMeta`: where each message sits in the stream.
 *
 * The worker lower-cases the first letter of every key (`SequenceNumberArray` →
 * `sequenceNumberArray`), arrays are index-aligned with the messages, offsets are opaque (strings
 * in current SDKs, numbers in older dumps), and host-side enqueued times have been seen without a
 * zone designator: those are UTC, never local time. The metadata is untyped (`Record<string,
 * unknown>`), so every field is checked, and anything unusable is left out rather than guessed.
 */
import type { BatchMeta } from '../ingest';

export interface EventHubPartitionContext {
  fullyQualifiedNamespace?: string;
  eventHubName?: string;
  consumerGroup?: string;
  partitionId?: string;
}

/** The trigger metadata keys agentwatch reads, as the worker delivers them (and the local consumer builds them). */
export interface EventHubTriggerMetadata {
  partitionContext?: EventHubPartitionContext;
  sequenceNumberArray?: (number | string)[];
  offsetArray?: (number | string)[];
  enqueuedTimeUtcArray?: string[];
  partitionKeyArray?: (string | null)[];
}

export function batchMetaFromTrigger(triggerMetadata: Record<string, unknown> | undefined, messageCount: number): BatchMeta {
  const metadata = triggerMetadata ?? {};
  const partition = partitionContextOf(metadata.partitionContext);
  const pick = <T>(value: unknown, convert: (element: unknown) => T | undefined): (T | undefined)[] => {
    const elements = Array.isArray(value) ? value : [];
    return Array.from({ length: messageCount }, (_, index) => convert(elements[index]));
  };
  const meta: BatchMeta = {
    sequenceNumbers: pick(metadata.sequenceNumberArray, opaque),
    offsets: pick(metadata.offsetArray, opaque),
    enqueuedTimes: pick(metadata.enqueuedTimeUtcArray, utcIso),
  };
  const source = streamName(partition);
  if (source !== undefined) meta.source = source;
  if (partition.partitionId !== undefined) meta.partitionId = partition.partitionId;
  return meta;
}

function partitionContextOf(value: unknown): EventHubPartitionContext {
  if (typeof value !== 'object' || value === null) return {};
  const context = value as Record<string, unknown>;
  const parsed: EventHubPartitionContext = {};
  const namespace = nonEmptyString(context.fullyQualifiedNamespace);
  const hub = nonEmptyString(context.eventHubName);
  const group = nonEmptyString(context.consumerGroup);
  const partitionId = opaque(context.partitionId);
  if (namespace !== undefined) parsed.fullyQualifiedNamespace = namespace;
  if (hub !== undefined) parsed.eventHubName = hub;
  if (group !== undefined) parsed.consumerGroup = group;
  if (partitionId !== undefined) parsed.partitionId = partitionId;
  return parsed;
}

/** `namespace/hub/consumerGroup`, or as much of it as is known; names the stream in dead letters. */
function streamName(partition: EventHubPartitionContext): string | undefined {
  const parts = [partition.fullyQualifiedNamespace, partition.eventHubName, partition.consumerGroup].filter((part) => part !== undefined);
  return parts.length ? parts.join('/') : undefined;
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Sequence numbers, offsets and partition ids as strings, whatever type the host used. */
function opaque(value: unknown): string | undefined {
  if (typeof value === 'string') return value === '' ? undefined : value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return undefined;
}

/** An ISO instant in UTC; zone-less strings are read as UTC. Unparseable → undefined, not a guess. */
export function utcIso(value: unknown): string | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString();
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const text = value.trim();
  const hasZone = /(?:[zZ]|[+-]\d{2}:?\d{2})$/.test(text);
  const isoLike = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/.test(text);
  const parsed = Date.parse(hasZone ? text : isoLike ? `${text.replace(' ', 'T')}Z` : `${text} UTC`);
  return Number.isNaN(parsed) ? undefined : new Date(parsed).toISOString();
}
