/**
 * Small coercions shared by the per-category normalizers. Entra drifts between strings and
 * numbers, sends "" / null / "<null>" for "not known", and nests JSON inside strings; every
 * normalizer reads fields through these so the quirks are handled in one place.
 */
import { BoundedMemo } from '../memo';

export type Json = Record<string, unknown>;

export function asObject(value: unknown): Json | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}

export function asArray(value: unknown): unknown[] | undefined {
  return Array.isArray(value) ? value : undefined;
}

/** A non-empty trimmed string; numbers and booleans become their text; "", null, "<null>" → undefined. */
export function text(value: unknown): string | undefined {
  if (typeof value === 'string') {
    if (value.length === 0) return undefined;
    const trimmed = value.charCodeAt(0) <= 32 || value.charCodeAt(value.length - 1) <= 32 ? value.trim() : value;
    if (trimmed.length === 0 || trimmed === '<null>' || trimmed === 'null') return undefined;
    return trimmed;
  }
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : undefined;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return undefined;
}

/**
 * Lower-cased `text`, for enums (risk level, agent type, result …). V8's `toLowerCase` scans
 * one-byte text natively and returns the same string when nothing changes (most enum values:
 * "none", "success"): measured cheaper than a JS scan plus a cache of lowered spellings.
 */
export function lower(value: unknown): string | undefined {
  const t = text(value);
  return t === undefined ? undefined : t.toLowerCase();
}

/** A number from a number or a numeric string ("4", "0", "497815"). */
export function num(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

export function bool(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const v = value.trim().toLowerCase();
    if (v === 'true') return true;
    if (v === 'false') return false;
  }
  return undefined;
}

/**
 * Object ids: GUID-shaped values (including the hand-edited ones with non-hex letters that real
 * exports carry) are lower-cased so joins work whatever casing the emitter chose; anything else
 * (`Directory_…` audit ids, 64-hex risk ids, URLs) is kept as sent.
 */
const GUID_SHAPED = /^[0-9a-z]{6,12}-[0-9a-z]{3,6}-[0-9a-z]{3,6}-[0-9a-z]{3,6}-[0-9a-z]{8,14}$/i;

export function id(value: unknown): string | undefined {
  const t = text(value);
  if (t === undefined) return undefined;
  // Fast path for the canonical 8-4-4-4-12 shape. Lower-casing allocates, so it only runs when
  // there is an upper-case letter; the check is a native regex scan, several times faster than a
  // char-code loop here.
  if (t.length === 36 && t.charCodeAt(8) === 45 && t.charCodeAt(13) === 45 && t.charCodeAt(18) === 45 && t.charCodeAt(23) === 45) return ASCII_CAPITAL.test(t) ? t.toLowerCase() : t;
  // GUID-shaped text is ASCII only, so `toLowerCase` changes exactly its A–Z (none: same string back).
  return t.length > 40 || t.indexOf('-') === -1 || !GUID_SHAPED.test(t) ? t : t.toLowerCase();
}

const ASCII_CAPITAL = /[A-Z]/;

/** ASCII case-insensitive equality without allocating lower-cased copies. */
export function equalsIgnoreCase(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if ((x | 32) !== (y | 32) || (x | 32) < 97 || (x | 32) > 122) return false;
  }
  return true;
}

export function isGuidShaped(value: string): boolean {
  return GUID_SHAPED.test(value);
}

const STRICT_GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isGuid(value: string): boolean {
  return STRICT_GUID.test(value);
}

/** Reads the first present key of several spellings (`Level` / `level`, `EntraAgentId` / `EntraAgentID`). */
export function pick(source: Json, keys: readonly string[]): unknown {
  for (const key of keys) {
    const v = source[key];
    if (v !== undefined && v !== null) return v;
  }
  return undefined;
}

/** Could this string be JSON text? A cheap check so `JSON.parse` is only tried when it can succeed. */
function looksLikeJson(t: string): boolean {
  const c = t.charCodeAt(0);
  if (c === 34 /* " */ || c === 123 /* { */) return true;
  if (c === 91 /* [ */) {
    // `[KeyIdentifier=…]` is not JSON; a JSON array continues with a value or `]`.
    for (let i = 1; i < t.length; i++) {
      const d = t.charCodeAt(i);
      if (d === 32 || d === 9 || d === 10 || d === 13) continue;
      return d === 34 || d === 123 || d === 91 || d === 93 || d === 45 || (d >= 48 && d <= 57) || d === 116 || d === 102 || d === 110;
    }
    return false;
  }
  return false;
}

/**
 * Decodes a value that may be JSON inside a string, once or twice (`"\"AllPrincipals\""`,
 * `"[\"[KeyIdentifier=…]\"]"`, double-encoded `additionalInfo`), and trims surrounding whitespace
 * and stray quotes from a resulting string. Non-JSON text is returned trimmed.
 */
export function decodeJsonish(value: unknown): unknown {
  let current = value;
  for (let round = 0; round < 3 && typeof current === 'string'; round++) {
    const t = current.trim();
    if (!looksLikeJson(t)) return t;
    try {
      current = JSON.parse(t);
    } catch {
      // Quoted text with an unescaped quote inside: strip the outer quotes by hand.
      return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1).trim() : t;
    }
  }
  return typeof current === 'string' ? current.trim() : current;
}

/** Splits space/comma/semicolon separated lists (`roles`, `scopes`, `wids`), dropping empties. */
const LIST_SEPARATORS = /[\s,;]+/;

/** `roles` / `scopes` strings repeat on every call an app makes: split each distinct one once. */
const SPLIT_CACHE = new BoundedMemo<readonly string[]>((value) => Object.freeze(splitListUncached(value)), 2048);

/** Split lists are shared between events (cached): frozen so no consumer can change another's. */
export function splitList(value: unknown): string[] {
  if (typeof value === 'string' && value.length <= 2048) return SPLIT_CACHE.get(value) as string[];
  return splitListUncached(value);
}

function splitListUncached(value: unknown): string[] {
  if (Array.isArray(value)) {
    const out: string[] = [];
    for (const v of value) {
      const t = text(v);
      if (t !== undefined) out.push(...splitListUncached(t));
    }
    return out;
  }
  const t = text(value);
  if (t === undefined) return [];
  if (t.indexOf(' ') === -1 && t.indexOf(',') === -1 && t.indexOf(';') === -1 && t.indexOf('\t') === -1) return [t];
  return t.split(LIST_SEPARATORS).filter((s) => s.length > 0);
}

/** Order-preserving de-duplication. */
export function unique<T>(values: T[]): T[] {
  return values.length < 2 ? values : [...new Set(values)];
}

const DASHES = /[\u2010-\u2015\u2212]/g;
const SPACES = /\s+/g;

/** A few hundred distinct activity names exist: fold each spelling once. */
const FOLDED = new Map<string, string>();

/** Activity names: en/em dashes folded to `-`, whitespace runs to one space, ends trimmed, case kept. */
export function foldOperation(value: unknown): string | undefined {
  if (typeof value !== 'string') return text(value);
  let out = FOLDED.get(value);
  if (out === undefined) {
    out = value;
    if (/[\u2010-\u2015\u2212]/.test(out)) out = out.replace(DASHES, '-');
    out = out.replace(SPACES, ' ').trim();
    if (value.length <= 200) {
      if (FOLDED.size >= 4096) FOLDED.clear();
      FOLDED.set(value, out);
    }
  }
  return out.length ? out : undefined;
}

/** Sets `target[key]` only when the value is defined, so an absent field stays undefined (never "" or "none"). */
export function assign<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value;
}
