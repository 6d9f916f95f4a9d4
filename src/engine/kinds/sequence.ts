/**
 * `sequence`: ordered steps within a window, joined on the key (and optionally on other fields).
 * Step events are buffered per key for window + lateness, so a step that arrives before an earlier
 * one (out of order within the lateness bound) still completes the chain when the earlier one
 * lands. Each first-step event anchors at most one alert.
 *
 * `absence`: the first step not followed by the second within the window. Pending first steps wait
 * in the key state and in a per-detection pending index the engine sweeps once the event-time
 * watermark has passed their deadline.
 */
import type { CapturedValues } from '../fields';
import { LIMITS, noteTime, type FireInfo, type KeyState, type KindOutcome, type PendingAbsence, type SequenceEntry } from './keyState';

export interface StepView {
  /** Joins of each step: alternatives (any), each a list of equalities (all). */
  joins: { fieldPath: string; step: number; stepField: string }[][];
}

export interface SequenceInput {
  timeMs: number;
  hash: string;
  /** Steps this event satisfies for this key (newValue qualification not yet applied). */
  mask: number;
  /** Per newValue step index: the event's folded values of the step's field. */
  newValues?: Map<number, string[]>;
  cancel: boolean;
  evidence: string[];
  exports?: Record<string, string[]>;
  /** Values the output reads from this event's steps (`SequenceEntry.o`). */
  captures?: CapturedValues;
  latenessMs: number;
}

const MAX_SEARCH_NODES = 20_000;

function intersects(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (!a || !b) return false;
  for (const value of a) if (b.includes(value)) return true;
  return false;
}

export function applySequence(state: KeyState, input: SequenceInput, rule: { windowMs: number; steps: StepView[]; newValueTtlMs: number[] }): KindOutcome {
  let changed = false;
  let mask = input.mask;
  if (input.cancel) {
    const cancels = (state.cancels ??= []);
    if (!cancels.some(([t, h]) => t === input.timeMs && h === input.hash)) {
      cancels.push([input.timeMs, input.hash]);
      changed = true;
    }
  }
  // newValue steps: only the earliest event carrying a value (for this key) satisfies the step.
  if (input.newValues) {
    const tracked = (state.nv ??= {});
    for (const [stepIndex, values] of input.newValues) {
      const seen = (tracked[stepIndex] ??= {});
      let isNew = false;
      for (const value of values) {
        const first = seen[value];
        if (!first || input.timeMs < first[0] || first[0] + rule.newValueTtlMs[stepIndex] < input.timeMs) {
          seen[value] = [input.timeMs, input.hash];
          changed = true;
        }
        if (seen[value][1] === input.hash) isNew = true;
      }
      if (!isNew) mask &= ~(1 << stepIndex);
      const names = Object.keys(seen);
      if (names.length > LIMITS.values) {
        names.sort((a, b) => seen[a][0] - seen[b][0]);
        for (const name of names.slice(0, names.length - LIMITS.values)) delete seen[name];
      }
    }
  }
  if (mask === 0) {
    if (changed) noteTime(state, input.timeMs);
    return { changed };
  }
  const buffer = (state.buf ??= []);
  if (buffer.some((entry) => entry.h === input.hash)) return { changed, duplicate: true };
  noteTime(state, input.timeMs);
  const entry: SequenceEntry = { t: input.timeMs, h: input.hash, m: mask, ev: input.evidence.slice(0, LIMITS.evidence), ...(input.exports ? { x: input.exports } : {}), ...(input.captures ? { o: input.captures } : {}) };
  let at = buffer.length;
  while (at > 0 && buffer[at - 1].t > entry.t) at--;
  buffer.splice(at, 0, entry);

  const chain = findChain(buffer, entry, rule, state);
  if (chain) (state.fired ??= []).push([chain[0].h, chain[0].t]);
  const overflow = pruneSequence(state, rule.windowMs, input.latenessMs);
  if (!chain) return { changed: true, overflow };
  const evidence = [...new Set(chain.flatMap((step) => step.ev))].slice(0, LIMITS.evidence);
  const fire: FireInfo = { evidence, firstMs: chain[0].t, lastMs: chain[chain.length - 1].t, count: chain.length };
  if (chain.some((step) => step.o)) fire.steps = chain.map((step) => step.o);
  return { changed: true, overflow, fire };
}

/**
 * Keeps what a future chain can still use: unfired first steps within window + lateness; a later
 * step while an unfired first step precedes it within the window, or while an earlier step could
 * still arrive late (its time is within the lateness bound). Then the oldest beyond the cap.
 */
function pruneSequence(state: KeyState, windowMs: number, latenessMs: number): boolean {
  const horizon = state.max - windowMs - latenessMs;
  const lateHorizon = state.max - latenessMs;
  if (state.fired) state.fired = state.fired.filter(([, t]) => t >= horizon);
  if (state.cancels) state.cancels = state.cancels.filter(([t]) => t >= horizon);
  const fired = new Set((state.fired ?? []).map(([h]) => h));
  const buffer = state.buf ?? [];
  const anchors = buffer.filter((entry) => entry.m & 1 && !fired.has(entry.h) && entry.t >= horizon);
  state.buf = buffer.filter((entry) => {
    if (entry.t < horizon) return false;
    if (entry.m & 1 && !fired.has(entry.h)) return true;
    if (entry.t >= lateHorizon) return true;
    return anchors.some((anchor) => anchor.t <= entry.t && entry.t - anchor.t <= windowMs);
  });
  if (state.buf.length <= LIMITS.sequenceBuffer) return false;
  state.buf.splice(0, state.buf.length - LIMITS.sequenceBuffer);
  return true;
}

/** A complete, ordered chain within the window that uses `mustInclude`, has an unfired anchor and no cancel inside. */
function findChain(buffer: SequenceEntry[], mustInclude: SequenceEntry, rule: { windowMs: number; steps: StepView[] }, state: KeyState): SequenceEntry[] | undefined {
  const steps = rule.steps;
  const chain: SequenceEntry[] = [];
  const fired = new Set((state.fired ?? []).map(([h]) => h));
  const cancels = (state.cancels ?? []).map(([t]) => t);
  let nodes = 0;
  const search = (stepIndex: number, minTime: number): boolean => {
    if (stepIndex === steps.length) {
      if (!chain.includes(mustInclude)) return false;
      const start = chain[0].t;
      const end = chain[chain.length - 1].t;
      return !cancels.some((t) => t > start && t <= end);
    }
    const bit = 1 << stepIndex;
    for (const candidate of buffer) {
      if (++nodes > MAX_SEARCH_NODES) return false;
      if (!(candidate.m & bit) || candidate.t < minTime || chain.includes(candidate)) continue;
      if (stepIndex === 0) {
        if (fired.has(candidate.h)) continue;
      } else if (candidate.t - chain[0].t > rule.windowMs) break;
      const joins = steps[stepIndex].joins;
      if (joins.length && !joins.some((equalities) => equalities.every((eq) => intersects(candidate.x?.[eq.fieldPath], chain[eq.step]?.x?.[eq.stepField])))) continue;
      chain.push(candidate);
      if (search(stepIndex + 1, candidate.t)) return true;
      chain.pop();
    }
    return false;
  };
  return search(0, -Infinity) ? chain : undefined;
}

export interface AbsenceInput {
  timeMs: number;
  hash: string;
  first: boolean;
  second: boolean;
  /** The first step's event without `raw`, kept until the window closes. */
  snapshot?: Record<string, unknown>;
  latenessMs: number;
}

/** Returns the pending first-step hashes added and cancelled, so the engine can keep its pending index in step. */
export function applyAbsence(state: KeyState, input: AbsenceInput, rule: { windowMs: number }): KindOutcome & { added?: PendingAbsence; cancelled: string[] } {
  const cancelled: string[] = [];
  let changed = false;
  let duplicate = true;
  let added: PendingAbsence | undefined;
  const pending = (state.pend ??= []);
  const seconds = (state.bs ??= []);
  if (input.second && !seconds.some(([t, h]) => t === input.timeMs && h === input.hash)) {
    duplicate = false;
    seconds.push([input.timeMs, input.hash]);
    changed = true;
    for (let i = pending.length - 1; i >= 0; i--) {
      const first = pending[i];
      if (first.t <= input.timeMs && input.timeMs <= first.t + rule.windowMs) {
        cancelled.push(first.h);
        pending.splice(i, 1);
      }
    }
  }
  if (input.first && !pending.some((p) => p.h === input.hash)) {
    duplicate = false;
    const followed = seconds.some(([t]) => input.timeMs <= t && t <= input.timeMs + rule.windowMs);
    if (!followed && input.snapshot) {
      added = { t: input.timeMs, h: input.hash, e: input.snapshot };
      pending.push(added);
      if (pending.length > LIMITS.sequenceBuffer) pending.shift();
    }
    changed = true;
  }
  if (!changed) return { changed: false, duplicate, cancelled };
  noteTime(state, input.timeMs);
  const horizon = state.max - rule.windowMs - input.latenessMs;
  state.bs = seconds.filter(([t]) => t >= horizon);
  return { changed, cancelled, added };
}

/** Removes a pending first step that is due; returns it when it was still pending (not cancelled). */
export function takeDueAbsence(state: KeyState, hash: string): PendingAbsence | undefined {
  const pending = state.pend ?? [];
  const index = pending.findIndex((p) => p.h === hash);
  if (index < 0) return undefined;
  const [due] = pending.splice(index, 1);
  return due;
}
