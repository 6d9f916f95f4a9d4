/**
 * The per-key state of a stateful detection, as stored (plain JSON: the Table adapter serializes
 * it) and the helpers every kind shares: admission (lateness, duplicates), sorted entries, the
 * bounded ring of record ids kept for evidence.
 */
import type { CapturedValues } from '../fields';

/** [event time, id hash, consumed by an alert (1) or not (0), values for distinct counting]. */
export type Entry = [number, string, 0 | 1, string[]?];
/** [first seen (event time), last seen, display form, already used by an alert (1)]. */
export type ValueMemory = [number, number, string, (0 | 1)?];

export interface SequenceEntry {
  t: number;
  /** Id hash. */
  h: string;
  /** Bit mask of the steps this event satisfies. */
  m: number;
  /** Evidence record ids (an alert step: the alert's evidence). */
  ev: string[];
  /** Folded values of the fields joins compare, by path. */
  x?: Record<string, string[]>;
  /** Values of the fields the output reads from this step (`steps.<name>.<path>`), by path, as sent. */
  o?: CapturedValues;
}

export interface PendingAbsence {
  t: number;
  h: string;
  /** The first step's event (without `raw`): the alert is built from it when the window closes. */
  e: Record<string, unknown>;
}

export interface KeyState {
  v: 1;
  /** The key text (folded groupBy values joined by `|`). */
  key: string;
  /** Event time of the first event counted for the key: history for learning periods. */
  first: number;
  /** Newest event time counted for the key: the lateness bound hangs off it. */
  max: number;
  ev?: Entry[];
  /**
   * Last record ids for evidence, flat and oldest first: hash, id, hash, id … One array of strings
   * instead of one pair per event, because every dirty key is copied on each commit.
   */
  ids?: string[];
  /** The same ring as written before: [hash, id] pairs. Read, and replaced by `ids`, on the key's next event. */
  recent?: [string, string][];
  vals?: Record<string, ValueMemory>;
  /** Baseline: UTC-aligned window slot start (ms, as text) → count. */
  slots?: Record<string, number>;
  buf?: SequenceEntry[];
  /** Sequence anchors (first-step event hashes) that already fired, with their time. */
  fired?: [string, number][];
  cancels?: [number, string][];
  /** newValue tracking per step index: folded value → [earliest time, its event hash]. */
  nv?: Record<string, Record<string, [number, string]>>;
  /** Alerts this key fired: [trigger event hash, alert id, dedup key, event time] (a redelivered trigger re-offers its alert). */
  fa?: [string, string, string, number][];
  pend?: PendingAbsence[];
  /** Absence second-step events: [time, hash]. */
  bs?: [number, string][];
}

export const LIMITS = {
  entries: 2_000,
  baselineEntries: 5_000,
  values: 2_000,
  recentIds: 50,
  sequenceBuffer: 64,
  evidence: 50,
} as const;

export interface FireInfo {
  evidence: string[];
  firstMs: number;
  lastMs: number;
  count?: number;
  distinct?: number;
  distinctValues?: string[];
  mean?: number;
  /** A sequence's chain: per step, what its event captured for the output. */
  steps?: (CapturedValues | undefined)[];
}

export interface KindOutcome {
  changed: boolean;
  duplicate?: boolean;
  tooLate?: boolean;
  overflow?: boolean;
  fire?: FireInfo;
}

export const NOTHING: KindOutcome = { changed: false };

export function newKeyState(key: string, timeMs: number): KeyState {
  return { v: 1, key, first: timeMs, max: timeMs };
}

/** False when the event is further behind the key's newest event than the lateness bound. */
export function withinLateness(state: KeyState, timeMs: number, latenessMs: number): boolean {
  return timeMs >= state.max - latenessMs;
}

export function noteTime(state: KeyState, timeMs: number): void {
  if (timeMs > state.max) state.max = timeMs;
  if (timeMs < state.first) state.first = timeMs;
}

/** First index whose time is ≥ `timeMs` (entries sorted by time). */
export function lowerBound(entries: readonly { 0: number }[], timeMs: number): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid][0] < timeMs) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose time is > `timeMs`. */
export function upperBound(entries: readonly { 0: number }[], timeMs: number): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid][0] <= timeMs) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** True when an entry with this time and id hash exists (a redelivered event). */
export function hasEntry(entries: readonly Entry[], timeMs: number, hash: string): boolean {
  for (let i = lowerBound(entries, timeMs); i < entries.length && entries[i][0] === timeMs; i++) if (entries[i][1] === hash) return true;
  return false;
}

/** Inserts keeping time order (after equal times, so arrival order breaks ties). */
export function insertEntry(entries: Entry[], entry: Entry): void {
  const at = upperBound(entries, entry[0]);
  if (at === entries.length) entries.push(entry);
  else entries.splice(at, 0, entry);
}

/** Drops entries older than `horizonMs`, then the oldest beyond `cap`. Returns true when the cap bit. */
export function pruneEntries(entries: Entry[], horizonMs: number, cap: number): boolean {
  const old = lowerBound(entries, horizonMs);
  if (old > 0) entries.splice(0, old);
  if (entries.length > cap) {
    entries.splice(0, entries.length - cap);
    return true;
  }
  return false;
}

export function rememberId(state: KeyState, hash: string, id: string): void {
  const ring = state.ids ?? adoptPairRing(state);
  ring.push(hash, id);
  if (ring.length > 2 * LIMITS.recentIds) ring.splice(0, ring.length - 2 * LIMITS.recentIds);
}

/** Moves a ring stored as pairs (`recent`) into the flat `ids` ring. */
function adoptPairRing(state: KeyState): string[] {
  const ring: string[] = [];
  for (const [hash, id] of state.recent ?? []) ring.push(hash, id);
  delete state.recent;
  state.ids = ring;
  return ring;
}

/** Record ids of the given hashes (in the order given: event time) still in the recent ring, capped. */
export function evidenceOf(state: KeyState, hashes: readonly string[]): string[] {
  const ring = state.ids ?? adoptPairRing(state);
  const ids = new Map<string, string>();
  for (let i = 0; i + 1 < ring.length; i += 2) ids.set(ring[i], ring[i + 1]);
  const out: string[] = [];
  for (const hash of hashes) {
    const id = ids.get(hash);
    if (id !== undefined) out.push(id);
  }
  return out.slice(-LIMITS.evidence);
}

/** Drops the least recently seen values beyond the cap and values not seen within `ttlMs` of `nowMs`. */
export function pruneValues(values: Record<string, ValueMemory>, nowMs: number, ttlMs: number, cap: number): boolean {
  for (const [value, memory] of Object.entries(values)) if (memory[1] + ttlMs < nowMs) delete values[value];
  const names = Object.keys(values);
  if (names.length <= cap) return false;
  names.sort((a, b) => values[a][1] - values[b][1]);
  for (const name of names.slice(0, names.length - cap)) delete values[name];
  return true;
}
