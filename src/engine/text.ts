/**
 * Text comparison helpers shared by the operators. Entra sends the same activity name with a
 * hyphen, an en dash or an em dash and with stray whitespace, and enums in any casing; rules
 * compare folded text so authors never have to care.
 */
import { BoundedMemo } from '../memo';

const DASHES = /[\u2010-\u2015\u2212\uFE58\uFE63\uFF0D]/g;
const WHITESPACE_RUN = /\s+/g;

/** Lower-case, every dash folded to `-`, whitespace runs to one space, ends trimmed. */
export function foldUncached(value: string): string {
  return value.toLowerCase().replace(DASHES, '-').replace(WHITESPACE_RUN, ' ').trim();
}

// Event values repeat heavily (categories, operation names, app ids), so a bounded cache turns the
// fold into one Map lookup on the hot path.
const FOLDED = new BoundedMemo(foldUncached, 50_000);

/**
 * True when folding cannot change the text: printable ASCII without upper case, whitespace or
 * dashes other than `-` (ids, IPs, lower-case UPNs). Such text skips the cache, so a stream of
 * unique keys neither allocates cache entries nor flushes the cache of repeating values.
 */
function alreadyFolded(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code <= 0x20 || code >= 0x7f || (code >= 0x41 && code <= 0x5a)) return false;
  }
  return true;
}

export function fold(value: string): string {
  return alreadyFolded(value) ? value : FOLDED.get(value);
}

/** The text form a scalar compares as (numbers and booleans by their JSON text). */
export function scalarText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : undefined;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return undefined;
}

const NUMERIC = /^\s*-?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?\s*$/i;

/** A number from a number or a numeric string ("4", " 0 "), else undefined. */
export function numericValue(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && NUMERIC.test(value)) return Number(value);
  return undefined;
}
