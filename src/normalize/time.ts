/**
 * Tolerant timestamp parsing for Entra records. Entra serializes times in several ways
 * (reference §1.2, PROVENANCE "Quirks"): ISO with 0–9 fraction digits, `Z` or `±hh:mm` or no zone
 * (= UTC, never local time), one-digit hours (`T9:59:27.958Z`), and US 12-hour
 * `M/D/YYYY h:mm:ss AM` on risk categories. `Date.parse` gets the zone-less forms wrong (local
 * time) and rejects some of the others, so the formats are matched explicitly.
 */

const ISO_LIKE = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:[.,](\d+))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;
const US_LIKE = /^(\d{1,2})\/(\d{1,2})\/(\d{4})(?:\s+(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d+))?)?\s*([AaPp][Mm])?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

/** Milliseconds from a fraction string of any length (`"4410000"` → 441, `"9"` → 900). */
function fractionMs(fraction: string | undefined): number {
  if (!fraction) return 0;
  const three = fraction.length >= 3 ? fraction.slice(0, 3) : fraction.padEnd(3, '0');
  return Number(three);
}

/** Offset in ms of `Z`, `+02:00`, `-0500`, `+02`; 0 when absent (zone-less = UTC). */
function offsetMs(zone: string | undefined): number {
  if (!zone || zone === 'Z' || zone === 'z') return 0;
  const sign = zone[0] === '-' ? -1 : 1;
  const digits = zone.slice(1).replace(':', '');
  const hours = Number(digits.slice(0, 2));
  const minutes = digits.length > 2 ? Number(digits.slice(2, 4)) : 0;
  return sign * (hours * 60 + minutes) * 60_000;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  if (month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) return 29;
  return DAYS_IN_MONTH[month - 1]!;
}

/** `zoneMs` is the zone's offset from UTC (`offsetMs`), 0 for UTC and zone-less times. */
function build(year: number, month: number, day: number, hour: number, minute: number, second: number, ms: number, zoneMs: number): number | undefined {
  // Date.UTC silently rolls 31 February into March: refuse dates that do not exist.
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 60) return undefined;
  // Date.UTC is a C++ builtin and runs twice per record: count days arithmetically instead. Years
  // 0–99 still go through Date.UTC, which maps them to 1900–1999.
  const utc = year >= 100 ? daysFromCivil(year, month, day) * 86_400_000 + hour * 3_600_000 + minute * 60_000 + second * 1000 + ms : Date.UTC(year, month - 1, day, hour, minute, second, ms);
  return utc - zoneMs;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (civil-to-days, after Howard Hinnant). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = (((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) | 0) + day - 1;
  const doe = yoe * 365 + ((yoe / 4) | 0) - ((yoe / 100) | 0) + doy;
  return era * 146_097 + doe - 719_468;
}

/** Two ASCII digits at `i`, or -1. */
function digits2(t: string, i: number): number {
  const a = t.charCodeAt(i) - 48;
  const b = t.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/** 100, 10, 1, 0.1 … each the previous divided by ten, as a running `scale /= 10` would give. */
const FRACTION_SCALES: number[] = [100];
for (let k = 1; k < 16; k++) FRACTION_SCALES.push(FRACTION_SCALES[k - 1]! / 10);

/** The weight of the k-th fraction digit in ms; a table look-up, not a division per digit (Entra sends 7). */
function fractionScale(k: number): number {
  if (k < FRACTION_SCALES.length) return FRACTION_SCALES[k]!;
  let scale = FRACTION_SCALES[FRACTION_SCALES.length - 1]!;
  for (let j = FRACTION_SCALES.length; j <= k; j++) scale /= 10;
  return scale;
}

/**
 * Fast path for the common shape `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±hh:mm]`: fixed positions read
 * as char codes, no regex, no allocation. Anything else goes to the regex parser.
 */
function parseIsoFast(t: string): number | undefined | null {
  if (t.length < 19 || t.charCodeAt(7) !== 45 || t.charCodeAt(10) !== 84 || t.charCodeAt(13) !== 58 || t.charCodeAt(16) !== 58) return null;
  const year = digits2(t, 0) * 100 + digits2(t, 2);
  const month = digits2(t, 5);
  const day = digits2(t, 8);
  const hour = digits2(t, 11);
  const minute = digits2(t, 14);
  const second = digits2(t, 17);
  if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return null;
  let i = 19;
  let ms = 0;
  if (t.charCodeAt(i) === 46 /* . */) {
    i++;
    for (let k = 0; i < t.length; k++, i++) {
      const d = t.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      ms += d * fractionScale(k);
    }
    ms = Math.floor(ms);
  }
  if (i === t.length) return build(year, month, day, hour, minute, second, ms, 0);
  const c = t.charCodeAt(i);
  if (i === t.length - 1 && (c === 90 || c === 122)) return build(year, month, day, hour, minute, second, ms, 0);
  if (c !== 43 && c !== 45) return null;
  // `±hh`, `±hhmm` or `±hh:mm`, read in place (as `offsetMs` reads them).
  const rest = t.length - i;
  const hours = digits2(t, i + 1);
  const minutes = rest === 3 ? 0 : rest === 5 ? digits2(t, i + 3) : rest === 6 && t.charCodeAt(i + 3) === 58 ? digits2(t, i + 4) : -1;
  if (hours < 0 || minutes < 0) return null;
  return build(year, month, day, hour, minute, second, ms, (c === 45 ? -1 : 1) * (hours * 60 + minutes) * 60_000);
}

/**
 * Parses an Entra timestamp to epoch ms, or `undefined` when it is absent or not a time.
 * Numbers are taken as epoch ms; `Date` objects as they are.
 */
export function parseEntraTime(value: unknown): number | undefined {
  if (typeof value === 'string') return parseTimeText(value);
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 && value <= 8.64e15 ? value : undefined;
  if (value instanceof Date) {
    const ms = value.getTime();
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}

function parseTimeText(raw: string): number | undefined {
  const text = raw.trim();
  if (text.length < 8) return undefined;
  const first = text.charCodeAt(4);
  if (first === 45 /* - */) {
    const fast = parseIsoFast(text);
    if (fast !== null) return fast;
    const m = ISO_LIKE.exec(text);
    if (!m) return undefined;
    return build(+m[1]!, +m[2]!, +m[3]!, m[4] ? +m[4] : 0, m[5] ? +m[5] : 0, m[6] ? +m[6] : 0, fractionMs(m[7]), offsetMs(m[8]));
  }
  const m = US_LIKE.exec(text);
  if (!m) return undefined;
  let hour = m[4] ? +m[4] : 0;
  const meridiem = m[8]?.toLowerCase();
  if (meridiem) {
    if (hour < 1 || hour > 12) return undefined;
    if (meridiem === 'am' && hour === 12) hour = 0;
    else if (meridiem === 'pm' && hour !== 12) hour += 12;
  }
  return build(+m[3]!, +m[1]!, +m[2]!, hour, m[5] ? +m[5] : 0, m[6] ? +m[6] : 0, fractionMs(m[7]), offsetMs(m[9]));
}

/**
 * Epoch ms → ISO UTC string with milliseconds (`2026-10-05T10:15:58.441Z`), exactly as
 * Date#toISOString, for years 0000–9999. It runs twice per record, so it avoids the `Date`
 * allocation and builds one flat string from char codes (civil-from-days arithmetic, after
 * Howard Hinnant) instead of concatenating pieces.
 */
export function isoTime(ms: number): string {
  if (!(ms >= 0 && ms < 253_402_300_800_000)) return new Date(ms).toISOString();
  if (ms % 1 !== 0) ms = Math.trunc(ms);
  const days = Math.floor(ms / 86_400_000);
  let rest = ms - days * 86_400_000;
  const hour = (rest / 3_600_000) | 0;
  rest -= hour * 3_600_000;
  const minute = (rest / 60_000) | 0;
  rest -= minute * 60_000;
  const second = (rest / 1000) | 0;
  const milli = rest - second * 1000;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = ((doe - ((doe / 1460) | 0) + ((doe / 36_524) | 0) - ((doe / 146_096) | 0)) / 365) | 0;
  const doy = doe - (365 * yoe + ((yoe / 4) | 0) - ((yoe / 100) | 0));
  const mp = ((5 * doy + 2) / 153) | 0;
  const day = doy - (((153 * mp + 2) / 5) | 0) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return String.fromCharCode(
    48 + ((year / 1000) | 0), 48 + (((year / 100) | 0) % 10), 48 + (((year / 10) | 0) % 10), 48 + (year % 10), 45,
    48 + ((month / 10) | 0), 48 + (month % 10), 45, 48 + ((day / 10) | 0), 48 + (day % 10), 84,
    48 + ((hour / 10) | 0), 48 + (hour % 10), 58, 48 + ((minute / 10) | 0), 48 + (minute % 10), 58,
    48 + ((second / 10) | 0), 48 + (second % 10), 46,
    48 + ((milli / 100) | 0), 48 + (((milli / 10) | 0) % 10), 48 + (milli % 10), 90,
  );
}
