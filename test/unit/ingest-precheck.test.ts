/**
 * The validation precheck (src/ingest/precheck.ts) may only ever accept what ajv accepts: every
 * record it passes skips ajv. Held to ajv's verdicts on the fixtures, the real records and
 * thousands of records with fields replaced at any depth; and it must actually pass good records,
 * or it saves nothing.
 */
import Ajv from 'ajv';
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { precheckRecord } from '../../src/ingest/validate';
import { compilePrecheck } from '../../src/ingest/precheck';
import { familyOf, type RecordFamily } from '../../src/normalize';
import { HAVE_REAL_FIXTURES, RECORDS_DIR, realRecords } from '../fixtures/records/load';

const SCHEMA_DIR = join(__dirname, '..', '..', 'schemas', 'records');
const schema = (name: string): object => JSON.parse(readFileSync(join(SCHEMA_DIR, `${name}.schema.json`), 'utf8')) as object;
const FAMILY_SCHEMA: Record<RecordFamily, string> = {
  signIn: 'signin',
  audit: 'audit',
  riskEvent: 'risk-event',
  riskyPrincipal: 'risky-principal',
  graphActivity: 'graph-activity',
  agentsInfo: 'agents-info',
};

const ajv = new Ajv({ allErrors: false, allowUnionTypes: true, strict: true, strictRequired: false });
ajv.addSchema(schema('envelope'));
const ajvValidators = Object.fromEntries(Object.entries(FAMILY_SCHEMA).map(([family, name]) => [family, ajv.compile(schema(name))])) as Record<RecordFamily, (r: unknown) => boolean>;

const templates = readdirSync(RECORDS_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(RECORDS_DIR, f), 'utf8')) as Record<string, unknown> & { category: string });

/** Every path into a record (object keys and array indexes), the root excluded. */
function pathsOf(value: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (prefix.length) out.push(prefix);
  if (prefix.length > 5) return out;
  if (Array.isArray(value)) value.forEach((v, i) => pathsOf(v, [...prefix, i], out));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) pathsOf(v, [...prefix, k], out);
  return out;
}

const odd = fc.oneof(
  fc.anything({ maxDepth: 2 }),
  fc.constantFrom(null, '', 0, 1.5, -1, 1e300, true, [], {}, 'x', [{}], [null], [1], { displayName: 1 }, { user: 'x' }),
);

/** A template with one or two values replaced (or removed) anywhere in it. */
const mutated = fc
  .tuple(fc.nat(templates.length - 1), fc.array(fc.tuple(fc.nat(), fc.boolean(), odd), { minLength: 1, maxLength: 2 }))
  .map(([index, edits]) => {
    const record = structuredClone(templates[index]!) as Record<string, unknown>;
    const paths = pathsOf(record);
    for (const [at, remove, value] of edits) {
      const path = paths[at % paths.length]!;
      let parent: unknown = record;
      for (const key of path.slice(0, -1)) parent = parent === null || typeof parent !== 'object' ? undefined : (parent as Record<string | number, unknown>)[key];
      if (parent === null || typeof parent !== 'object') continue;
      const last = path[path.length - 1]!;
      if (remove && !Array.isArray(parent)) delete (parent as Record<string | number, unknown>)[last];
      else (parent as Record<string | number, unknown>)[last] = value;
    }
    return record;
  });

describe('validation precheck', () => {
  it('passes every constructed fixture record', () => {
    for (const record of templates) {
      const family = familyOf(record.category)!;
      expect(ajvValidators[family](record)).toBe(true);
      expect(precheckRecord(family, record)).toBe(true);
    }
  });

  it.skipIf(!HAVE_REAL_FIXTURES)('passes exactly the real records ajv passes', () => {
    for (const { record } of realRecords()) {
      const family = familyOf(record.category);
      if (family) expect(precheckRecord(family, record)).toBe(ajvValidators[family](record));
    }
  });

  it('never passes a record ajv rejects, whatever field is replaced', () => {
    let rejected = 0;
    fc.assert(
      fc.property(mutated, (record) => {
        const category = record.category;
        const family = typeof category === 'string' ? familyOf(category) : undefined;
        for (const f of family ? [family] : (Object.keys(FAMILY_SCHEMA) as RecordFamily[])) {
          const valid = ajvValidators[f](record);
          if (!valid) rejected++;
          if (precheckRecord(f, record)) expect(valid).toBe(true);
        }
      }),
      { numRuns: 4000, seed: 20261005 },
    );
    expect(rejected).toBeGreaterThan(500);
  });

  it('is not sure about keywords it does not mirror, so ajv decides', () => {
    const check = compilePrecheck({ type: 'object', properties: { a: { type: 'string', pattern: '^x' }, b: { type: 'string', minLength: 2 } } }, []);
    expect(check({})).toBe(true);
    expect(check({ a: 'x' })).toBe(false);
    expect(check({ b: 'xy' })).toBe(false);
    expect(compilePrecheck({ $ref: 'missing.schema.json' }, [])({})).toBe(false);
  });

  it('mirrors ajv on number, integer and union types', () => {
    const check = compilePrecheck({ type: 'object', properties: { n: { type: ['integer', 'null'] }, f: { type: 'number' } } }, []);
    expect(check({ n: 3, f: 1.5 })).toBe(true);
    expect(check({ n: 3.5 })).toBe(false);
    expect(check({ f: Infinity })).toBe(false);
    expect(check({ n: null })).toBe(true);
    expect(check({ n: '3' })).toBe(false);
  });
});
