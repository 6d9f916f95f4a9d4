/**
 * A lean acceptance test compiled from the same record schemas ajv compiles, for the hot path:
 * it answers "certainly valid" (then ajv is not run) or "not sure" (then ajv decides and explains).
 * ajv stays the contract and the only source of rejection reasons; the precheck only saves its cost
 * on the records that pass, which are nearly all of them. It reads each property once, where ajv's
 * generated code reads a present property twice and keeps error bookkeeping, and property reads on
 * records of many shapes are what validation costs.
 *
 * It understands the keywords the record schemas use (type, properties, required, items, allOf,
 * anyOf, $ref to a sibling schema, minLength up to 1) with ajv's semantics (`number` is finite,
 * `integer` has no fraction, `properties` / `required` / `items` apply only to data of their
 * type). Any other keyword makes its part "not sure", so a schema change can never make the
 * precheck accept what ajv rejects; `test/unit/ingest-precheck.test.ts` checks the two agree.
 */

type Schema = Record<string, unknown>;

/** Keys that only document a schema; they never constrain data. */
const ANNOTATIONS = new Set(['$schema', '$id', 'title', 'description']);
const HANDLED = new Set(['type', 'properties', 'required', 'items', 'allOf', 'anyOf', '$ref', 'minLength']);

const TYPE_TESTS: Readonly<Record<string, (v: string) => string>> = {
  string: (v) => `typeof ${v} === "string"`,
  number: (v) => `(typeof ${v} === "number" && isFinite(${v}))`,
  integer: (v) => `(typeof ${v} === "number" && !(${v} % 1) && !isNaN(${v}) && isFinite(${v}))`,
  boolean: (v) => `typeof ${v} === "boolean"`,
  null: (v) => `${v} === null`,
  object: (v) => `(${v} !== null && typeof ${v} === "object" && !Array.isArray(${v}))`,
  array: (v) => `Array.isArray(${v})`,
};

class Emitter {
  private lines: string[] = [];
  private names = 0;
  private helpers: string[] = [];

  constructor(private readonly resolveRef: (ref: string) => Schema | undefined) {}

  fresh(prefix: string): string {
    return `${prefix}${this.names++}`;
  }

  /** Statements that `return false` unless `value` (a variable name) certainly satisfies `schema`. */
  emit(schema: Schema, value: string, depth: number): void {
    if (depth > 16 || !this.understands(schema)) {
      this.lines.push('return false;');
      return;
    }
    if (schema.type !== undefined) {
      const types = (Array.isArray(schema.type) ? schema.type : [schema.type]) as string[];
      this.lines.push(`if (!(${types.map((t) => TYPE_TESTS[t]!(value)).join(' || ')})) return false;`);
    }
    // A non-empty string has at least one code point (ajv counts code points): limits 0 and 1 only.
    if (schema.minLength === 1) this.lines.push(`if (typeof ${value} === "string" && ${value}.length === 0) return false;`);
    if (schema.$ref !== undefined) this.emit(this.resolveRef(schema.$ref as string)!, value, depth + 1);
    for (const part of (schema.allOf as Schema[] | undefined) ?? []) this.emit(part, value, depth + 1);
    if (schema.anyOf !== undefined) {
      const branches = (schema.anyOf as Schema[]).map((part) => this.helper(part, depth + 1));
      this.lines.push(`if (!(${branches.map((f) => `${f}(${value})`).join(' || ')})) return false;`);
    }
    const requiredKeys = new Set((schema.required as string[] | undefined) ?? []);
    const propertySchemas = (schema.properties as Record<string, Schema> | undefined) ?? {};
    if (requiredKeys.size > 0 || Object.keys(propertySchemas).length > 0) {
      this.lines.push(`if (${TYPE_TESTS.object!(value)}) {`);
      for (const key of requiredKeys) if (!(key in propertySchemas)) this.lines.push(`if (${value}[${JSON.stringify(key)}] === undefined) return false;`);
      for (const [key, propertySchema] of Object.entries(propertySchemas)) {
        const v = this.fresh('v');
        this.lines.push(`const ${v} = ${value}[${JSON.stringify(key)}];`);
        if (requiredKeys.has(key)) this.lines.push(`if (${v} === undefined) return false;`);
        this.lines.push(`if (${v} !== undefined) {`);
        this.emit(propertySchema, v, depth + 1);
        this.lines.push('}');
      }
      this.lines.push('}');
    }
    if (schema.items !== undefined) {
      const item = this.fresh('item');
      this.lines.push(`if (Array.isArray(${value})) for (const ${item} of ${value}) {`);
      this.emit(schema.items as Schema, item, depth + 1);
      this.lines.push('}');
    }
  }

  /** Whether every keyword of `schema` (not of its sub-schemas) is one this precheck mirrors exactly. */
  private understands(schema: Schema): boolean {
    for (const key of Object.keys(schema)) if (!ANNOTATIONS.has(key) && !HANDLED.has(key)) return false;
    const { type, minLength, $ref, allOf, anyOf, required, properties, items } = schema;
    if (type !== undefined && !(Array.isArray(type) ? type : [type]).every((t) => typeof t === 'string' && Object.hasOwn(TYPE_TESTS, t))) return false;
    if (minLength !== undefined && minLength !== 0 && minLength !== 1) return false;
    if ($ref !== undefined && (typeof $ref !== 'string' || !this.resolveRef($ref))) return false;
    if (allOf !== undefined && !isSchemaList(allOf)) return false;
    if (anyOf !== undefined && !isSchemaList(anyOf)) return false;
    if (required !== undefined && !(Array.isArray(required) && required.every((k) => typeof k === 'string'))) return false;
    if (properties !== undefined && !(isPlainObject(properties) && Object.values(properties).every(isPlainObject))) return false;
    if (items !== undefined && !isPlainObject(items)) return false;
    return true;
  }

  /** A named function for a sub-schema used as an expression (anyOf branches). */
  private helper(schema: Schema, depth: number): string {
    const name = this.fresh('branch');
    const outer = this.lines;
    this.lines = [];
    this.emit(schema, 'x', depth);
    this.helpers.push(`function ${name}(x) {\n${this.lines.join('\n')}\nreturn true;\n}`);
    this.lines = outer;
    return name;
  }

  source(): string {
    return `${this.helpers.join('\n')}\nreturn function precheck(record) {\n${this.lines.join('\n')}\nreturn true;\n};`;
  }
}

function isPlainObject(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSchemaList(value: unknown): value is Schema[] {
  return Array.isArray(value) && value.length > 0 && value.every(isPlainObject);
}

/**
 * Compiles `schema` (with `$ref`s resolved among `siblings` by `$id` or file name) into a function
 * that returns true only for data the schema certainly accepts.
 */
export function compilePrecheck(schema: object, siblings: readonly object[]): (record: unknown) => boolean {
  const byRef = new Map<string, Schema>();
  for (const sibling of siblings) {
    const id = (sibling as Schema).$id;
    if (typeof id === 'string') {
      byRef.set(id, sibling as Schema);
      byRef.set(id.slice(id.lastIndexOf('/') + 1), sibling as Schema);
    }
  }
  const emitter = new Emitter((ref) => byRef.get(ref));
  emitter.emit(schema as Schema, 'record', 0);
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  return new Function(emitter.source())() as (record: unknown) => boolean;
}
