/**
 * The match operators (`field|modifier: value`), as a typed table of factories. Each factory checks
 * its rule-side values once at load and precomputes what the hot path needs (folded strings, Sets,
 * compiled regexes, parsed CIDRs), then returns a predicate over one event value. Missing values
 * never reach a predicate: the selection entry answers false for them (`exists: false` aside).
 */
import { fold, numericValue, scalarText } from './text';

export type RuleScalar = string | number | boolean;
export type ElementPredicate = (value: unknown) => boolean;

export const MATCH_OPERATORS = ['equals', 'in', 'contains', 'startswith', 'endswith', 'regex', 'cidr', 'gt', 'gte', 'lt', 'lte', 'exists'] as const;
export type MatchOperator = (typeof MATCH_OPERATORS)[number];
export const MATCH_FLAGS = ['cased', 'all'] as const;
export type MatchFlag = (typeof MATCH_FLAGS)[number];

/** A factory either returns a predicate or throws an Error whose message says what was expected. */
type OperatorFactory = (values: readonly RuleScalar[], cased: boolean) => ElementPredicate;

function textOf(value: unknown, cased: boolean): string | undefined {
  const text = scalarText(value);
  if (text === undefined) return undefined;
  return cased ? text : fold(text);
}

function equalsFactory(values: readonly RuleScalar[], cased: boolean): ElementPredicate {
  const texts = new Set<string>();
  const numbers = new Set<number>();
  for (const value of values) {
    texts.add(cased ? String(value) : fold(String(value)));
    const number = numericValue(value);
    if (number !== undefined) numbers.add(number);
  }
  const byNumber = numbers.size > 0;
  if (texts.size === 1 && !byNumber) {
    const [only] = texts;
    return (value) => textOf(value, cased) === only;
  }
  return (value) => {
    const text = textOf(value, cased);
    if (text === undefined) return false;
    if (texts.has(text)) return true;
    if (!byNumber) return false;
    const number = numericValue(value);
    return number !== undefined && numbers.has(number);
  };
}

function substringFactory(test: (haystack: string, needle: string) => boolean): OperatorFactory {
  return (values, cased) => {
    const needles = values.map((value) => (cased ? String(value) : fold(String(value))));
    return (value) => {
      const text = textOf(value, cased);
      if (text === undefined) return false;
      for (const needle of needles) if (test(text, needle)) return true;
      return false;
    };
  };
}

function regexFactory(values: readonly RuleScalar[], cased: boolean): ElementPredicate {
  const patterns = values.map((value) => {
    try {
      return new RegExp(String(value), cased ? 'u' : 'iu');
    } catch (error) {
      throw new Error(`invalid regular expression ${JSON.stringify(value)}: ${(error as Error).message}`);
    }
  });
  return (value) => {
    const text = scalarText(value);
    if (text === undefined) return false;
    for (const pattern of patterns) if (pattern.test(text)) return true;
    return false;
  };
}

function numericFactory(compare: (a: number, b: number) => boolean): OperatorFactory {
  return (values) => {
    if (values.length !== 1) throw new Error('expected one number');
    const bound = numericValue(values[0]);
    if (bound === undefined) throw new Error(`expected a number, got ${JSON.stringify(values[0])}`);
    return (value) => {
      const number = numericValue(value);
      return number !== undefined && compare(number, bound);
    };
  };
}

// ---------------------------------------------------------------------------------------------
// CIDR

interface CidrRange {
  v6: boolean;
  network: bigint;
  mask: bigint;
}

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let result = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    result = (result << 8n) | BigInt(octet);
  }
  return result;
}

function parseIpv6(text: string): bigint | undefined {
  let address = text;
  const zone = address.indexOf('%');
  if (zone >= 0) address = address.slice(0, zone);
  const lastColon = address.lastIndexOf(':');
  if (address.includes('.', lastColon)) {
    // Embedded IPv4 (::ffff:192.0.2.1): rewrite the dotted tail as two hex groups.
    const v4 = parseIpv4(address.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    address = `${address.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const parse = (half: string): bigint[] | undefined => {
    if (half === '') return [];
    const groups = half.split(':');
    const out: bigint[] = [];
    for (const group of groups) {
      if (!/^[0-9a-f]{1,4}$/i.test(group)) return undefined;
      out.push(BigInt(parseInt(group, 16)));
    }
    return out;
  };
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  if (!head || !rest) return undefined;
  const total = head.length + rest.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return undefined;
  const groups = [...head, ...Array<bigint>(8 - total).fill(0n), ...rest];
  let result = 0n;
  for (const group of groups) result = (result << 16n) | group;
  return result;
}

const V4_MAPPED_PREFIX = 0xffffn << 32n;

/** An address as (family, value); IPv4-mapped IPv6 addresses count as IPv4. */
export function parseIp(text: string): { v6: boolean; value: bigint } | undefined {
  const trimmed = text.trim();
  if (!trimmed.includes(':')) {
    const v4 = parseIpv4(trimmed);
    return v4 === undefined ? undefined : { v6: false, value: v4 };
  }
  const v6 = parseIpv6(trimmed.replace(/^\[|\]$/g, ''));
  if (v6 === undefined) return undefined;
  if (v6 >> 32n === 0xffffn && (v6 & ~0xffffffffn) === V4_MAPPED_PREFIX) return { v6: false, value: v6 & 0xffffffffn };
  return { v6: true, value: v6 };
}

function parseCidr(text: string): CidrRange {
  const [address, lengthText, extra] = text.trim().split('/');
  const ip = address === undefined ? undefined : parseIp(address);
  const bits = ip?.v6 ? 128 : 32;
  const length = lengthText === undefined ? bits : Number(lengthText);
  if (!ip || extra !== undefined || !Number.isInteger(length) || length < 0 || length > bits) {
    throw new Error(`invalid CIDR ${JSON.stringify(text)}: expected e.g. 203.0.113.0/24 or 2001:db8::/32`);
  }
  const all = (1n << BigInt(bits)) - 1n;
  const mask = length === 0 ? 0n : (all << BigInt(bits - length)) & all;
  return { v6: ip.v6, network: ip.value & mask, mask };
}

function cidrFactory(values: readonly RuleScalar[]): ElementPredicate {
  const ranges = values.map((value) => parseCidr(String(value)));
  return (value) => {
    if (typeof value !== 'string') return false;
    const ip = parseIp(value);
    if (!ip) return false;
    for (const range of ranges) if (range.v6 === ip.v6 && (ip.value & range.mask) === range.network) return true;
    return false;
  };
}

/**
 * Remembers the last text a predicate judged and its answer. Event values repeat from one event to
 * the next (a flow, a result, a category, an IP), and a repeat then costs one string comparison
 * instead of a fold, a set look-up, a regex or an address parse. Predicates are pure, so this
 * cannot change an answer.
 */
function rememberingLast(factory: OperatorFactory): OperatorFactory {
  return (values, cased) => {
    const predicate = factory(values, cased);
    let lastText: string | undefined;
    let lastAnswer = false;
    return (value) => {
      if (typeof value !== 'string') return predicate(value);
      if (value !== lastText) {
        lastAnswer = predicate(value);
        lastText = value;
      }
      return lastAnswer;
    };
  };
}

export const OPERATOR_FACTORIES = {
  equals: rememberingLast(equalsFactory),
  in: rememberingLast(equalsFactory),
  contains: rememberingLast(substringFactory((haystack, needle) => haystack.includes(needle))),
  startswith: rememberingLast(substringFactory((haystack, needle) => haystack.startsWith(needle))),
  endswith: rememberingLast(substringFactory((haystack, needle) => haystack.endsWith(needle))),
  regex: rememberingLast(regexFactory),
  cidr: rememberingLast(cidrFactory),
  gt: numericFactory((a, b) => a > b),
  gte: numericFactory((a, b) => a >= b),
  lt: numericFactory((a, b) => a < b),
  lte: numericFactory((a, b) => a <= b),
} satisfies Record<Exclude<MatchOperator, 'exists'>, OperatorFactory>;

/** Operators that may compare against another field of the event (`{ field: path }`). */
export const FIELD_REFERENCE_OPERATORS: ReadonlySet<MatchOperator> = new Set(['equals', 'in', 'contains', 'startswith', 'endswith', 'gt', 'gte', 'lt', 'lte']);

/** Compares two event values at evaluation time (field-to-field). */
export function compareDynamic(operator: MatchOperator, cased: boolean, left: unknown, right: unknown): boolean {
  switch (operator) {
    case 'equals':
    case 'in': {
      const a = textOf(left, cased);
      const b = textOf(right, cased);
      if (a !== undefined && a === b) return true;
      const x = numericValue(left);
      const y = numericValue(right);
      return x !== undefined && x === y;
    }
    case 'contains':
    case 'startswith':
    case 'endswith': {
      const a = textOf(left, cased);
      const b = textOf(right, cased);
      if (a === undefined || b === undefined) return false;
      return operator === 'contains' ? a.includes(b) : operator === 'startswith' ? a.startsWith(b) : a.endsWith(b);
    }
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      const x = numericValue(left);
      const y = numericValue(right);
      if (x === undefined || y === undefined) return false;
      return operator === 'gt' ? x > y : operator === 'gte' ? x >= y : operator === 'lt' ? x < y : x <= y;
    }
    default:
      return false;
  }
}
