/**
 * `firstSeen`: a value never seen for the key before (remembered for `ttl`), once the key has
 * `learningPeriod` of history. The first value a key ever shows is learned silently. Naturally
 * idempotent: a redelivered event finds its value known.
 */
import { LIMITS, noteTime, pruneValues, type KeyState, type KindOutcome } from './keyState';

export function applyFirstSeen(
  state: KeyState,
  input: { timeMs: number; hash: string; id: string },
  rule: { learningMs: number; ttlMs: number },
  values: { folded: string; display: string }[],
  historyStartMs: number,
): KindOutcome {
  if (values.length === 0) return { changed: false };
  // The key's very first value only sets the baseline: there is nothing it could differ from.
  const firstValues = state.vals === undefined;
  const memory = (state.vals ??= {});
  const fresh: string[] = [];
  let changed = false;
  for (const value of values) {
    const known = memory[value.folded];
    if (!known || known[1] + rule.ttlMs < input.timeMs) {
      fresh.push(value.display);
      memory[value.folded] = [input.timeMs, input.timeMs, value.display];
      changed = true;
    } else {
      if (input.timeMs < known[0]) {
        known[0] = input.timeMs;
        changed = true;
      }
      if (input.timeMs > known[1]) {
        known[1] = input.timeMs;
        changed = true;
      }
    }
  }
  if (!changed) return { changed: false, duplicate: true };
  const historyStart = Math.min(historyStartMs, state.first);
  noteTime(state, input.timeMs);
  const overflow = fresh.length > 0 && pruneValues(memory, state.max, rule.ttlMs, LIMITS.values);
  if (fresh.length === 0 || firstValues || input.timeMs - historyStart < rule.learningMs) return { changed: true, overflow };
  return { changed: true, overflow, fire: { evidence: [input.id], firstMs: input.timeMs, lastMs: input.timeMs, count: 1, distinct: fresh.length, distinctValues: fresh.sort() } };
}
