/**
 * Window kinds: `threshold` (count, and optionally distinct values, within a sliding window),
 * `distinctCount` (distinct values within a window, optionally only values new for the key) and
 * `baseline` (count in the current window against the key's own trailing mean). Windows slide on
 * event time; an out-of-order event inside the lateness bound lands in every window that contains
 * it. Entries that made an alert fire are consumed, so the next alert needs a fresh set.
 */
import {
  LIMITS,
  evidenceOf,
  hasEntry,
  insertEntry,
  lowerBound,
  noteTime,
  pruneEntries,
  pruneValues,
  rememberId,
  upperBound,
  type Entry,
  type FireInfo,
  type KeyState,
  type KindOutcome,
} from './keyState';

export interface WindowInput {
  timeMs: number;
  hash: string;
  id: string;
  latenessMs: number;
}

function admitEntry(state: KeyState, input: WindowInput, values: string[] | undefined, cap: number, horizonMs: number): { duplicate: boolean; overflow: boolean } {
  const entries = (state.ev ??= []);
  if (hasEntry(entries, input.timeMs, input.hash)) return { duplicate: true, overflow: false };
  noteTime(state, input.timeMs);
  insertEntry(entries, values ? [input.timeMs, input.hash, 0, values] : [input.timeMs, input.hash, 0]);
  rememberId(state, input.hash, input.id);
  const overflow = pruneEntries(entries, state.max - horizonMs, cap);
  return { duplicate: false, overflow };
}

/** Marks the unconsumed entries in [from, to) consumed; returns their hashes and time span. */
function consume(entries: Entry[], from: number, to: number): { hashes: string[]; firstMs: number; lastMs: number; count: number } {
  const hashes: string[] = [];
  let firstMs = Infinity;
  let lastMs = -Infinity;
  for (let i = from; i < to; i++) {
    const entry = entries[i];
    if (entry[2]) continue;
    entry[2] = 1;
    hashes.push(entry[1]);
    if (entry[0] < firstMs) firstMs = entry[0];
    if (entry[0] > lastMs) lastMs = entry[0];
  }
  return { hashes, firstMs, lastMs, count: hashes.length };
}

/**
 * Tries every window [start, start + window] that contains `timeMs` and starts at an unconsumed
 * entry; returns the first index range whose entries satisfy `holds`.
 */
function findWindow(entries: Entry[], timeMs: number, windowMs: number, holds: (from: number, to: number) => boolean): [number, number] | undefined {
  for (let i = lowerBound(entries, timeMs - windowMs); i < entries.length && entries[i][0] <= timeMs; i++) {
    if (entries[i][2]) continue;
    const to = upperBound(entries, entries[i][0] + windowMs);
    if (holds(i, to)) return [i, to];
  }
  return undefined;
}

export function applyThreshold(
  state: KeyState,
  input: WindowInput,
  rule: { windowMs: number; threshold: number; distinct?: { threshold: number }; combine: 'any' | 'all' },
  distinctValues: string[] | undefined,
): KindOutcome {
  const admitted = admitEntry(state, input, rule.distinct ? distinctValues ?? [] : undefined, LIMITS.entries, rule.windowMs + input.latenessMs);
  if (admitted.duplicate) return { changed: false, duplicate: true };
  const entries = state.ev!;
  let distinctSeen: Set<string> | undefined;
  const window = findWindow(entries, input.timeMs, rule.windowMs, (from, to) => {
    let count = 0;
    const distinct = rule.distinct ? new Set<string>() : undefined;
    for (let i = from; i < to; i++) {
      if (entries[i][2]) continue;
      count++;
      if (distinct) for (const value of entries[i][3] ?? []) distinct.add(value);
    }
    const countHolds = count >= rule.threshold;
    if (!rule.distinct) return countHolds;
    const distinctHolds = distinct!.size >= rule.distinct.threshold;
    distinctSeen = distinct;
    return rule.combine === 'all' ? countHolds && distinctHolds : countHolds || distinctHolds;
  });
  if (!window) return { changed: true, overflow: admitted.overflow };
  const consumed = consume(entries, window[0], window[1]);
  const fire: FireInfo = {
    evidence: evidenceOf(state, consumed.hashes),
    firstMs: consumed.firstMs,
    lastMs: consumed.lastMs,
    count: consumed.count,
    ...(distinctSeen ? { distinct: distinctSeen.size, distinctValues: [...distinctSeen].sort() } : {}),
  };
  return { changed: true, overflow: admitted.overflow, fire };
}

export function applyDistinctCount(
  state: KeyState,
  input: WindowInput,
  rule: { windowMs: number; threshold: number; newOnly: boolean; memoryTtlMs: number },
  values: { folded: string; display: string }[],
): KindOutcome {
  if (values.length === 0) return { changed: false };
  const admitted = admitEntry(
    state,
    input,
    values.map((value) => value.folded),
    LIMITS.entries,
    rule.windowMs + input.latenessMs,
  );
  if (admitted.duplicate) return { changed: false, duplicate: true };
  const memory = (state.vals ??= {});
  let added = false;
  for (const value of values) {
    const known = memory[value.folded];
    if (!known) {
      memory[value.folded] = [input.timeMs, input.timeMs, value.display];
      added = true;
    } else {
      if (input.timeMs < known[0]) known[0] = input.timeMs;
      if (input.timeMs > known[1]) known[1] = input.timeMs;
    }
  }
  // Without newOnly the memory only serves display names; keep it as short as the window. Pruned
  // when it grows, so an event that brings nothing new does not walk it.
  const overflow = (added && pruneValues(memory, state.max, rule.newOnly ? rule.memoryTtlMs : rule.windowMs + input.latenessMs, LIMITS.values)) || admitted.overflow;
  const entries = state.ev!;
  let counted: Set<string> | undefined;
  const window = findWindow(entries, input.timeMs, rule.windowMs, (from, to) => {
    const windowStart = entries[from][0];
    const distinct = new Set<string>();
    for (let i = from; i < to; i++) {
      if (entries[i][2]) continue;
      for (const value of entries[i][3] ?? []) {
        const known = memory[value];
        // "New" = not seen for the key before this window, and not already part of an alert.
        if (rule.newOnly && known && (known[0] < windowStart || known[3])) continue;
        distinct.add(value);
      }
    }
    counted = distinct;
    return distinct.size >= rule.threshold;
  });
  if (!window) return { changed: true, overflow };
  const consumed = consume(entries, window[0], window[1]);
  const distinctValues = [...counted!].map((value) => memory[value]?.[2] ?? value).sort();
  if (rule.newOnly) for (const value of counted!) if (memory[value]) memory[value][3] = 1;
  return {
    changed: true,
    overflow,
    fire: { evidence: evidenceOf(state, consumed.hashes), firstMs: consumed.firstMs, lastMs: consumed.lastMs, count: consumed.count, distinct: counted!.size, distinctValues },
  };
}

export function applyBaseline(
  state: KeyState,
  input: WindowInput,
  rule: { windowMs: number; historyMs: number; minCount: number; factor: number; learningMs: number },
  historyStartMs: number,
): KindOutcome {
  const admitted = admitEntry(state, input, undefined, LIMITS.baselineEntries, rule.windowMs + input.latenessMs);
  if (admitted.duplicate) return { changed: false, duplicate: true };
  const slots = (state.slots ??= {});
  const slotStart = Math.floor(input.timeMs / rule.windowMs) * rule.windowMs;
  const known = slots[slotStart];
  slots[slotStart] = (known ?? 0) + 1;
  if (known === undefined) {
    // A slot opens once per window: the time to drop the ones that left the history.
    const oldestSlot = state.max - rule.historyMs - 2 * rule.windowMs - input.latenessMs;
    for (const start of Object.keys(slots)) if (Number(start) < oldestSlot) delete slots[start];
  }

  const entries = state.ev!;
  const historyStart = Math.min(historyStartMs, state.first);
  // Every window (end − window, end] containing the event: ending at it, or at a later entry within a window.
  const lastEnd = upperBound(entries, input.timeMs + rule.windowMs);
  for (let endIndex = upperBound(entries, input.timeMs) - 1; endIndex < lastEnd; endIndex++) {
    const endMs = entries[endIndex][0];
    if (endIndex + 1 < lastEnd && entries[endIndex + 1][0] === endMs) continue; // one test per end time
    if (endMs - historyStart < rule.learningMs) continue;
    const from = upperBound(entries, endMs - rule.windowMs);
    const to = endIndex + 1;
    let count = 0;
    for (let i = from; i < to; i++) if (!entries[i][2]) count++;
    if (count <= rule.minCount) continue;
    // Trailing mean over the window-sized UTC slots wholly inside [end − window − history, end − window).
    const historyEnd = endMs - rule.windowMs;
    const firstSlot = Math.ceil((historyEnd - rule.historyMs) / rule.windowMs) * rule.windowMs;
    let slotCount = 0;
    let sum = 0;
    for (let start = firstSlot; start + rule.windowMs <= historyEnd; start += rule.windowMs) {
      slotCount++;
      sum += slots[start] ?? 0;
    }
    const mean = slotCount ? sum / slotCount : 0;
    if (!(count > rule.factor * mean)) continue;
    const consumed = consume(entries, from, to);
    return {
      changed: true,
      overflow: admitted.overflow,
      fire: { evidence: evidenceOf(state, consumed.hashes), firstMs: consumed.firstMs, lastMs: consumed.lastMs, count: consumed.count, mean: Math.round(mean * 100) / 100 },
    };
  }
  return { changed: true, overflow: admitted.overflow };
}
