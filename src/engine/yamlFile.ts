/**
 * YAML/JSON documents with locations: parse once, keep the node tree, and turn a JSON path into a
 * line number. Shared by the rule loader and the config loader, and turns ajv errors into messages
 * a rule author understands.
 */
import type { ErrorObject } from 'ajv';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import type { LocatedProblem } from '../errors';
import configSchema from '../../schemas/config.schema.json';
import detectionSchema from '../../schemas/detection.schema.json';

export type JsonPath = (string | number)[];

export interface LocatedDocument {
  file: string;
  value: unknown;
  /** Syntax errors (the value is unusable when there are any). */
  problems: LocatedProblem[];
  lineOf(path: JsonPath): number | undefined;
}

export function pointerOf(path: JsonPath): string {
  return path.length === 0 ? '/' : '/' + path.map((segment) => String(segment).replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
}

export function parseLocated(file: string, text: string): LocatedDocument {
  const lineCounter = new LineCounter();
  const document: Document = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true });
  const problems: LocatedProblem[] = document.errors.map((error) => ({
    file,
    path: '/',
    line: error.linePos?.[0]?.line,
    message: `YAML syntax: ${error.message.split('\n')[0]}`,
  }));
  const lineOfNode = (node: unknown): number | undefined => {
    const range = (node as Node | null)?.range;
    return range ? lineCounter.linePos(range[0]).line : undefined;
  };
  return {
    file,
    value: problems.length ? undefined : document.toJS({ maxAliasCount: 100 }),
    problems,
    lineOf(path) {
      let node: unknown = document.contents;
      let line = lineOfNode(node);
      for (const segment of path) {
        if (isMap(node)) {
          const pair = node.items.find((item) => (isScalar(item.key) ? String(item.key.value) : String(item.key)) === String(segment));
          if (!pair) break;
          line = lineOfNode(pair.key) ?? line;
          node = pair.value;
        } else if (isSeq(node)) {
          const item = node.items[Number(segment)];
          if (item === undefined) break;
          line = lineOfNode(item) ?? line;
          node = item;
        } else break;
      }
      return line;
    },
  };
}

function pathOfPointer(pointer: string): JsonPath {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((segment) => (/^\d+$/.test(segment) ? Number(segment) : segment));
}

const PATTERN_MEANING: [RegExp, string][] = [
  [/durationOrParam|\/duration\//, 'a duration like "10m", "24h", "7d" or a $parameter'],
  [/countOrParam/, 'a whole number ≥ 1 or a $parameter'],
  [/numberOrParam/, 'a number ≥ 0 or a $parameter'],
  [/matchValue/, 'text, a number, true/false, a list of them, a $parameter or { field: path }'],
  [/definitions\/selection\//, 'a map of field|modifier: value, a list of such maps, or { remembered, key }'],
  [/fieldPathList/, 'a field path or a list of field paths'],
  [/fieldPath|groupBy|dedupKey/, 'a field path like blueprintAppId or audit.targets.id@kind'],
  [/detectionId/, 'lower-case words joined by dashes, e.g. agent-scope-burst'],
  [/selectionMap/, 'a field|modifier key, e.g. audit.operation|in'],
  [/paramRef/, 'a reference like $name or $lists.name'],
];

function meaningOf(schemaPath: string): string | undefined {
  return PATTERN_MEANING.find(([pattern]) => pattern.test(schemaPath))?.[1];
}

// ajv reports paths inside a $ref'd definition from that definition's root (`#/oneOf`); name the
// definition from the schema object itself so the message can say what the place expects.
const DEFINITION_NAMES = new Map<object, string>();
for (const root of [detectionSchema, configSchema] as { definitions?: Record<string, object> }[]) {
  for (const [name, definition] of Object.entries(root.definitions ?? {})) DEFINITION_NAMES.set(definition, `#/definitions/${name}/`);
}

function schemaPathOf(error: ErrorObject): string {
  const definition = error.parentSchema ? DEFINITION_NAMES.get(error.parentSchema as object) : undefined;
  return definition ? `${definition}${error.schemaPath.replace(/^#\//, '')}` : error.schemaPath;
}

/** Errors that only say "this branch has another shape": noise once a oneOf/anyOf is explained. */
const SHAPE_KEYWORDS = new Set(['type', 'required', 'pattern', 'additionalProperties', 'not', 'oneOf', 'anyOf', 'const']);

function describeData(data: unknown): string {
  return Array.isArray(data) ? 'a list' : data === null ? 'nothing (null)' : typeof data === 'object' ? 'a map' : JSON.stringify(data);
}

/**
 * Turns ajv's errors into one problem per real mistake. A failed oneOf/anyOf reports every
 * branch's complaint; keep the deeper errors when there are any (they name the actual mistake),
 * else the errors about content (an enum, a property name), else one "expected …" for the place.
 */
export function problemsFromAjv(errors: readonly ErrorObject[], document: LocatedDocument): LocatedProblem[] {
  const discarded = new Set<ErrorObject>();
  const summaries: ErrorObject[] = [];
  const alternatives = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf').sort((a, b) => b.instancePath.length - a.instancePath.length);
  for (const alternative of alternatives) {
    if (discarded.has(alternative)) continue;
    const at = alternative.instancePath;
    const same = errors.filter((e) => e !== alternative && e.instancePath === at && !discarded.has(e));
    const deeper = errors.some((e) => e.instancePath.startsWith(at + '/') && (!discarded.has(e) || summaries.includes(e)));
    discarded.add(alternative);
    const content = same.filter((e) => !SHAPE_KEYWORDS.has(e.keyword));
    if (deeper || content.length) {
      for (const error of same) if (SHAPE_KEYWORDS.has(error.keyword)) discarded.add(error);
      continue;
    }
    for (const error of same) discarded.add(error);
    summaries.push(alternative);
  }

  const problems: LocatedProblem[] = [];
  const seen = new Set<string>();
  for (const error of [...errors.filter((e) => !discarded.has(e)), ...summaries]) {
    if (error.keyword === 'if') continue;
    let path = pathOfPointer(error.instancePath);
    let message: string;
    const params = error.params as Record<string, unknown>;
    switch (error.keyword) {
      case 'required':
        message = `missing required property ${JSON.stringify(params.missingProperty)}`;
        break;
      case 'additionalProperties': {
        path = [...path, String(params.additionalProperty)];
        const allowed = Object.keys(((error.parentSchema as { properties?: object })?.properties) ?? {});
        message = `unknown property ${JSON.stringify(params.additionalProperty)}${allowed.length ? `; expected one of ${allowed.join(', ')}` : ''}`;
        break;
      }
      case 'enum':
        message = `expected one of ${(params.allowedValues as unknown[]).join(' | ')}, got ${JSON.stringify(error.data)}`;
        break;
      case 'const':
        message = `expected ${JSON.stringify(params.allowedValue)}, got ${JSON.stringify(error.data)}`;
        break;
      case 'type':
        message = `expected ${String(params.type).replace(/,/g, ' or ')}, got ${describeData(error.data)}`;
        break;
      case 'pattern':
        message = `expected ${meaningOf(schemaPathOf(error)) ?? `text matching ${String(params.pattern)}`}, got ${JSON.stringify(error.data)}`;
        break;
      case 'propertyNames':
        path = [...path, String(params.propertyName)];
        message = `invalid name ${JSON.stringify(params.propertyName)}: expected ${meaningOf(schemaPathOf(error)) ?? 'a name of letters, digits and _'}`;
        break;
      case 'oneOf':
      case 'anyOf':
        message = `expected ${meaningOf(schemaPathOf(error)) ?? describeForms(error)}, got ${describeData(error.data)}`;
        break;
      case 'not':
        message = schemaPathOf(error).includes('allOf/0/then')
          ? 'sequence and absence rules take their conditions from steps: remove the top-level condition'
          : schemaPathOf(error).includes('selectionMap')
            ? 'a selection map cannot use the keys remembered/key; a memory look-up is its own selection {remembered, key}'
            : 'this form is not allowed here';
        break;
      case 'dependencies':
        message = `${String(params.property)} needs ${String(params.missingProperty)}`;
        break;
      default:
        message = error.message ?? error.keyword;
    }
    const pointer = pointerOf(path);
    const dedupe = `${pointer}\u0000${message}`;
    if (seen.has(dedupe)) continue;
    seen.add(dedupe);
    problems.push({ file: document.file, path: pointer, line: document.lineOf(path), message });
  }
  return problems;
}

function describeForms(error: ErrorObject): string {
  const forms = ((error.schema as { $ref?: string; type?: string }[]) ?? []).map((form) => form.$ref?.split('/').pop() ?? (Array.isArray(form.type) ? form.type.join('/') : form.type) ?? 'object');
  return forms.length ? `one of: ${forms.join(' | ')}` : 'another form';
}
