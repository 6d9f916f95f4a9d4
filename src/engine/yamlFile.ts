/**
 * YAML/JSON documents with locations: parse once, keep the node tree, and turn a JSON path into a
 * line number. Shared by the rule loader and the config loader, and turns ajv errors into messages
 * a rule author understands.
 */
import type { ErrorObject } from 'ajv';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import type { LocatedProblem } from '../errors';

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
  const document: Document = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
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
  [/fieldPath|groupBy|dedupKey/, 'a field path like blueprintAppId or audit.targets.id@kind'],
  [/detectionId/, 'lower-case words joined by dashes, e.g. agent-scope-burst'],
  [/selectionMap/, 'a field|modifier key, e.g. audit.operation|in'],
  [/paramRef/, 'a reference like $name or $lists.name'],
];

function meaningOf(schemaPath: string): string | undefined {
  return PATTERN_MEANING.find(([pattern]) => pattern.test(schemaPath))?.[1];
}

/**
 * Turns ajv's errors into one problem per real mistake: for a failed oneOf/anyOf only the branch
 * that got furthest is kept (the others just say "not this form"), and if/then bookkeeping is dropped.
 */
export function problemsFromAjv(errors: readonly ErrorObject[], document: LocatedDocument): LocatedProblem[] {
  const discarded = new Set<ErrorObject>();
  const alternatives = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf').sort((a, b) => a.schemaPath.length - b.schemaPath.length);
  for (const alternative of alternatives) {
    if (discarded.has(alternative)) continue;
    const prefix = alternative.schemaPath + '/';
    const byBranch = new Map<string, ErrorObject[]>();
    for (const error of errors) {
      if (error === alternative || !error.schemaPath.startsWith(prefix)) continue;
      const branch = error.schemaPath.slice(prefix.length).split('/')[0];
      byBranch.set(branch, [...(byBranch.get(branch) ?? []), error]);
    }
    const score = (branch: ErrorObject[]) => {
      const depth = Math.max(...branch.map((e) => e.instancePath.length));
      const shapeMismatch = branch.every((e) => (e.keyword === 'type' || e.keyword === 'required' || e.keyword === 'not') && e.instancePath === alternative.instancePath);
      return shapeMismatch ? -1 : depth;
    };
    const branches = [...byBranch.values()];
    if (branches.length === 0) continue;
    const best = branches.reduce((a, b) => (score(b) > score(a) || (score(b) === score(a) && b.length < a.length) ? b : a));
    if (score(best) < 0) {
      // No branch matched the shape at all: one message listing the accepted forms.
      for (const branch of branches) for (const error of branch) discarded.add(error);
      continue;
    }
    discarded.add(alternative);
    for (const branch of branches) if (branch !== best) for (const error of branch) discarded.add(error);
  }

  const problems: LocatedProblem[] = [];
  const seen = new Set<string>();
  for (const error of errors) {
    if (discarded.has(error) || error.keyword === 'if') continue;
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
        message = `expected ${String(params.type).replace(/,/g, ' or ')}, got ${Array.isArray(error.data) ? 'a list' : error.data === null ? 'nothing (null)' : typeof error.data}`;
        break;
      case 'pattern':
        message = `expected ${meaningOf(error.schemaPath) ?? `text matching ${String(params.pattern)}`}, got ${JSON.stringify(error.data)}`;
        break;
      case 'propertyNames':
        path = [...path, String(params.propertyName)];
        message = `invalid name ${JSON.stringify(params.propertyName)}: expected ${meaningOf(error.schemaPath) ?? 'a name of letters, digits and _'}`;
        break;
      case 'oneOf':
      case 'anyOf':
        message = `expected ${describeForms(error)}, got ${Array.isArray(error.data) ? 'a list' : JSON.stringify(error.data)}`;
        break;
      case 'not':
        message = error.schemaPath.includes('allOf/0/then')
          ? 'sequence and absence rules take their conditions from steps: remove the top-level condition'
          : error.schemaPath.includes('selectionMap')
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
