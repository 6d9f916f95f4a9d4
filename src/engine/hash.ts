/**
 * Small non-cryptographic hashes for state keys and processed-id memory (compact, stable across
 * processes), and a SHA-256 based id for alerts (collision-free in practice, computed once per alert).
 */
import { createHash } from 'node:crypto';

function fnv1a(text: string, seed: number): number {
  let hash = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

const SECOND_SEED = 0x01000193 ^ 0x5bd1e995;

/**
 * 64 bits of FNV-1a (two seeds) in base 36: a compact stand-in for a record id in per-key memory.
 * Both lanes in one pass (it runs once per event); stored state holds these, so the value must never change.
 */
export function shortHash(text: string): string {
  let first = 0x811c9dc5;
  let second = SECOND_SEED >>> 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    first = Math.imul(first ^ code, 0x01000193);
    second = Math.imul(second ^ code, 0x01000193);
  }
  return (first >>> 0).toString(36) + '.' + (second >>> 0).toString(36);
}

/** A bucket in [0, buckets) for spreading keys over Table partitions. */
export function bucketOf(text: string, buckets: number): number {
  return fnv1a(text, 0x811c9dc5) % buckets;
}

/** Deterministic alert id: the same inputs give the same id in every process, on every delivery. */
export function alertIdOf(parts: readonly string[]): string {
  return 'aw_' + createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 32);
}
