/**
 * Compiles one schema-valid rule document into a `CompiledDetection`, checking its meaning: field
 * paths, modifiers, parameter and list references, selection / memory / step names, durations and
 * conditions. Problems are collected (never thrown) with the JSON path inside the document, so the
 * loader can add the file and the line.
 */
import type { ResponseMode, Severity } from '../alerts/types';
import { SEVERITIES } from '../alerts/types';
import { parseDuration } from '../config';
import type { AgentEvent } from '../normalize/types';
import type { ResponseActionName } from '../alerts/types';
import { ConditionSyntaxError, compileCondition, parseCondition, referencedSelections, type CompiledCondition, type ConditionNode } from './condition';
import { compileBaseGetter, compileCapturedGetter, compileGetter, compileStepGetter, keyText, parseFieldPath, valuesOf, type FieldGetter } from './fields';
import { FIELD_REFERENCE_OPERATORS, MATCH_FLAGS, MATCH_OPERATORS, OPERATOR_FACTORIES, compareDynamic, type ElementPredicate, type MatchOperator, type RuleScalar } from './operators';
import { fold } from './text';
import type {
  AggregateName,
  CompiledAction,
  CompiledDetail,
  CompiledDetection,
  CompiledEntity,
  CompiledException,
  CompiledExceptions,
  CompiledMemory,
  CompiledSelection,
  CompiledSeverityRule,
  CompiledStateful,
  CompiledStep,
  ConfigException,
  DispatchValues,
  ParameterValue,
  Prefilter,
  RuleDocument,
  RuleEvalContext,
  RuleStatus,
  SelectionTest,
  TemplatePart,
  ValueConstraint,
} from './types';

export type JsonPath = (string | number)[];

export interface CompileProblem {
  path: JsonPath;
  message: string;
}

export interface CompileOptions {
  file: string;
  /** Global lists (`$lists.name`), shipped defaults already merged with the config file's. */
  lists: Readonly<Record<string, readonly (string | number)[]>>;
  parameterOverrides?: Readonly<Record<string, ParameterValue>>;
  severityOverride?: Severity;
  responseModeOverride?: ResponseMode;
  /** Global ceiling from the config file's `response.mode`. */
  responseCeiling?: ResponseMode;
  /** The config file's exceptions of this detection, and where they sit in the config (for problems). */
  exceptions?: readonly ConfigException[];
  exceptionsPath?: JsonPath;
}

export const RESPONSE_MODE_ORDER: readonly ResponseMode[] = ['off', 'dryRun', 'approval', 'auto'];
export const DEFAULT_MEMORY_TTL_MS = 90 * 86_400_000;
const AGGREGATES: ReadonlySet<string> = new Set<AggregateName>(['count', 'distinct', 'distinctValues', 'window', 'mean']);
const DISPATCH_FIELDS = { kind: 'kind', category: 'category', flow: 'flow', operation: 'audit.operation' } as const;

type Bag = Record<string, unknown>;

/** Adds a field to what a step's or a memory's event keeps for the output (once per path). */
function captureField(fields: { path: string; getter: FieldGetter }[], base: string): void {
  if (!fields.some((captured) => captured.path === base)) fields.push({ path: base, getter: compileBaseGetter(base) });
}

/** An exception's `expires`: a date, or a date-time with seconds optional and an explicit offset. */
const EXPIRES_FORMAT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/;

/**
 * Compiles one rule document. `problems` are the rule file's; `configProblems` are those of the
 * config file's exceptions for it (paths inside the config file).
 */
export function compileDetection(document: RuleDocument, options: CompileOptions): { detection?: CompiledDetection; problems: CompileProblem[]; configProblems: CompileProblem[] } {
  const problems: CompileProblem[] = [];
  const problem = (path: JsonPath, message: string): undefined => {
    problems.push({ path, message });
    return undefined;
  };
  const id = document.id;
  const doc = document as Bag;

  // -- parameters ----------------------------------------------------------------------------
  const parameters: Record<string, ParameterValue> = { ...((doc.parameters as Record<string, ParameterValue>) ?? {}) };
  for (const [name, value] of Object.entries(options.parameterOverrides ?? {})) parameters[name] = value;

  /** Resolves `$name` / `$lists.name`; other values pass through. */
  const resolve = (raw: unknown, path: JsonPath): unknown => {
    if (typeof raw !== 'string' || !raw.startsWith('$')) return raw;
    if (raw.startsWith('$lists.')) {
      const name = raw.slice('$lists.'.length);
      const list = options.lists[name];
      if (list === undefined) return problem(path, `unknown list ${JSON.stringify(name)}: expected one of ${Object.keys(options.lists).join(', ')} (or add it under lists: in the config file)`);
      return list;
    }
    const name = raw.slice(1);
    if (!(name in parameters)) return problem(path, `unknown parameter ${JSON.stringify(name)}: expected one of ${Object.keys(parameters).join(', ') || '(no parameters defined)'}`);
    return parameters[name];
  };
  const durationMs = (raw: unknown, path: JsonPath, fallback?: number): number | undefined => {
    if (raw === undefined) return fallback;
    const value = resolve(raw, path);
    if (value === undefined) return undefined;
    if (typeof value === 'string') {
      try {
        return parseDuration(value);
      } catch {
        return problem(path, `expected a duration like "10m", "24h" or "7d", got ${JSON.stringify(value)}`);
      }
    }
    return problem(path, `expected a duration like "10m", got ${JSON.stringify(value)}`);
  };
  const positiveNumber = (raw: unknown, path: JsonPath, integer: boolean): number | undefined => {
    const value = resolve(raw, path);
    if (value === undefined) return undefined;
    if (typeof value === 'number' && value >= 0 && (!integer || Number.isInteger(value))) return value;
    return problem(path, `expected ${integer ? 'a whole number' : 'a number'} ≥ 0, got ${JSON.stringify(value)}`);
  };
  const field = (raw: unknown, path: JsonPath): FieldGetter | undefined => {
    if (typeof raw !== 'string') return problem(path, 'expected a field path');
    const parsed = parseFieldPath(raw);
    if ('error' in parsed) return problem(path, parsed.error);
    return compileGetter(parsed);
  };
  const fieldList = (raw: unknown, path: JsonPath): FieldGetter[] => {
    const list = Array.isArray(raw) ? raw : [raw];
    const getters: FieldGetter[] = [];
    list.forEach((entry, index) => {
      const getter = field(entry, Array.isArray(raw) ? [...path, index] : path);
      if (getter) getters.push(getter);
    });
    return getters;
  };

  // -- selections ----------------------------------------------------------------------------
  const selectionDocs = (doc.selections as Record<string, unknown>) ?? {};
  const selectionNames = Object.keys(selectionDocs);
  const selections: CompiledSelection[] = [];
  const memoryDocs = (doc.remember as Record<string, Bag>) ?? {};
  for (const name of selectionNames) {
    const compiled = compileSelection(id, name, selectionDocs[name], ['selections', name], { resolve, field, fieldList, problem, memoryNames: Object.keys(memoryDocs) });
    if (compiled) selections.push(compiled);
  }
  const selectionIndex = new Map(selections.map((selection, index) => [selection.name, index]));

  const conditionTrees: ConditionNode[] = [];
  const condition = (raw: unknown, path: JsonPath, options: { noMemory?: boolean; trigger?: boolean } = {}): CompiledCondition | undefined => {
    if (typeof raw !== 'string') return problem(path, 'expected a condition expression');
    let tree: ConditionNode;
    try {
      tree = parseCondition(raw, selectionNames);
    } catch (error) {
      if (error instanceof ConditionSyntaxError) return problem(path, error.message);
      throw error;
    }
    if (options.noMemory) {
      for (const name of referencedSelections(tree)) {
        if (selections[selectionIndex.get(name) ?? -1]?.memory) return problem(path, `selection ${JSON.stringify(name)} reads a memory; a memory's when/forget cannot depend on memories`);
      }
    }
    if (selections.length !== selectionNames.length) return undefined; // a selection failed: its problem is reported
    if (options.trigger) conditionTrees.push(tree);
    return compileCondition(tree, (name) => selectionIndex.get(name)!);
  };

  let mainCondition = doc.condition === undefined ? undefined : condition(doc.condition, ['condition'], { trigger: true });

  // -- memories ------------------------------------------------------------------------------
  const memories: CompiledMemory[] = [];
  for (const [name, memoryDoc] of Object.entries(memoryDocs)) {
    const path: JsonPath = ['remember', name];
    const when = condition(memoryDoc.when, [...path, 'when'], { noMemory: true, trigger: true });
    const forget = memoryDoc.forget === undefined ? undefined : condition(memoryDoc.forget, [...path, 'forget'], { noMemory: true, trigger: true });
    const keys = fieldList(memoryDoc.key, [...path, 'key']);
    const ttlMs = durationMs(memoryDoc.ttl, [...path, 'ttl']);
    if (when && ttlMs !== undefined && (memoryDoc.forget === undefined || forget)) memories.push({ name, when, forget, keys, ttlMs, capturedFields: [] });
  }
  for (const selection of selections) {
    if (selection.memory && !(selection.memory in memoryDocs)) problem(['selections', selection.name, 'remembered'], `unknown memory ${JSON.stringify(selection.memory)}: expected one of ${Object.keys(memoryDocs).join(', ') || '(no remember: block)'}`);
  }

  // -- stateful ------------------------------------------------------------------------------
  let stateful: CompiledStateful | undefined;
  const dependsOn = new Set<string>();
  const statefulDoc = doc.stateful as Bag | undefined;
  if (statefulDoc) {
    stateful = compileStateful(statefulDoc, { durationMs, positiveNumber, field, fieldList, condition, problem, resolve, dependsOn });
  }

  // -- severity, techniques -------------------------------------------------------------------
  const severityWhen: CompiledSeverityRule[] = [];
  ((doc.severityWhen as Bag[]) ?? []).forEach((entry, index) => {
    const path: JsonPath = ['severityWhen', index];
    if ('if' in entry) {
      const when = condition(entry.if, [...path, 'if']);
      if (when) severityWhen.push({ when, severity: entry.severity as Severity });
    } else {
      const getter = field(entry.fromField, [...path, 'fromField']);
      const map = entry.map ? new Map(Object.entries(entry.map as Record<string, Severity>).map(([k, v]) => [fold(k), v])) : undefined;
      if (getter) severityWhen.push({ field: getter, map });
    }
  });
  const techniquesFrom = doc.techniquesFromField === undefined ? undefined : field(doc.techniquesFromField, ['techniquesFromField']);

  // -- output --------------------------------------------------------------------------------
  const outputDoc = doc.output as Bag;
  // The output reads the event that fired; in a sequence rule, the event of a step (`steps.<name>.<path>`);
  // in a rule that reads a memory, the event that last set it (`memories.<name>.<path>`).
  const memoryField = (raw: string, path: JsonPath): FieldGetter | undefined => {
    const rest = raw.slice('memories.'.length);
    const dot = rest.indexOf('.');
    const name = dot < 0 ? rest : rest.slice(0, dot);
    const memory = memories.find((candidate) => candidate.name === name);
    const reader = selections.find((selection) => selection.memory === name && selection.memoryKeys);
    if (dot < 0 || !memory || !reader) {
      const readable = memories.filter((candidate) => selections.some((selection) => selection.memory === candidate.name)).map((candidate) => candidate.name);
      return problem(path, `expected memories.<memory name>.<field path> naming a memory this rule remembers and reads with remembered: (${readable.join(', ') || 'none'}), got ${JSON.stringify(raw)}`);
    }
    const parsed = parseFieldPath(rest.slice(dot + 1));
    if ('error' in parsed) return problem(path, parsed.error);
    captureField(memory.capturedFields, parsed.base);
    const keys = reader.memoryKeys!;
    return compileCapturedGetter((event, ctx) => {
      const access = (ctx as RuleEvalContext).memory;
      if (!access) return undefined;
      for (const key of compositeKeys(keys, event, ctx as RuleEvalContext)) {
        const captured = access.captured(id, name, key, event.timeMs);
        if (captured) return captured;
      }
      return undefined;
    }, parsed);
  };
  const outputField = (raw: unknown, path: JsonPath): FieldGetter | undefined => {
    if (typeof raw === 'string' && raw.startsWith('memories.')) return memoryField(raw, path);
    if (typeof raw !== 'string' || !raw.startsWith('steps.')) return field(raw, path);
    if (stateful?.type !== 'sequence') return problem(path, `${JSON.stringify(raw)}: steps.<name>.<path> reads a step's event, which only a sequence rule's output can`);
    const rest = raw.slice('steps.'.length);
    const dot = rest.indexOf('.');
    const step = dot < 0 ? undefined : stateful.steps.find((candidate) => candidate.name === rest.slice(0, dot));
    if (!step) return problem(path, `expected steps.<step name>.<field path> with a step name of ${stateful.steps.map((candidate) => candidate.name).join(', ')}, got ${JSON.stringify(raw)}`);
    const parsed = parseFieldPath(rest.slice(dot + 1));
    if ('error' in parsed) return problem(path, parsed.error);
    captureField(step.capturedFields, parsed.base);
    return compileStepGetter(step.index, parsed);
  };
  const template = (raw: string, path: JsonPath): TemplatePart[] => compileTemplate(raw, path, { field: outputField, problem, resolve });
  const entities: CompiledEntity[] = [];
  ((outputDoc.entities as Bag[]) ?? []).forEach((entity, index) => {
    const path: JsonPath = ['output', 'entities', index];
    const idGetter = outputField(entity.id, [...path, 'id']);
    if (!idGetter) return;
    const compiled: CompiledEntity = { type: entity.type as CompiledEntity['type'], id: idGetter };
    for (const key of ['name', 'upn', 'appId', 'objectId', 'principalId'] as const) {
      if (entity[key] !== undefined) compiled[key] = outputField(entity[key], [...path, key]);
    }
    entities.push(compiled);
  });
  const details: CompiledDetail[] = [];
  for (const [name, raw] of Object.entries((outputDoc.details as Bag) ?? {})) {
    const path: JsonPath = ['output', 'details', name];
    if (typeof raw !== 'string') details.push({ name, literal: raw });
    else if (raw.startsWith('$')) {
      const value = resolve(raw, path);
      if (value !== undefined) details.push({ name, literal: value });
    } else if (raw.includes('{{')) {
      const single = /^\{\{\s*([A-Za-z]+)\s*\}\}$/.exec(raw);
      if (single && AGGREGATES.has(single[1])) details.push({ name, aggregate: single[1] as AggregateName });
      else details.push({ name, template: template(raw, path) });
    } else {
      const getter = outputField(raw, path);
      if (getter) details.push({ name, getter });
    }
  }
  const output = {
    title: template(outputDoc.title as string, ['output', 'title']),
    entities,
    dedupKey: ((outputDoc.dedupKey as unknown[]) ?? []).map((entry, index) => field(entry, ['output', 'dedupKey', index])!).filter(Boolean),
    suppressMs: durationMs(outputDoc.suppress, ['output', 'suppress'], 0) ?? 0,
    details,
  };

  // -- response ------------------------------------------------------------------------------
  let response: CompiledDetection['response'];
  const responseDoc = doc.response as Bag | undefined;
  if (responseDoc) {
    const actions: CompiledAction[] = [];
    ((responseDoc.actions as Bag[]) ?? []).forEach((action, index) => {
      const path: JsonPath = ['response', 'actions', index];
      const targetGetter = field(action.target, [...path, 'target']);
      const keyIdGetter = action.keyId === undefined ? undefined : field(action.keyId, [...path, 'keyId']);
      const when = action.if === undefined ? undefined : condition(action.if, [...path, 'if']);
      if (action.action === 'removeBlueprintCredential' && action.keyId === undefined) problem([...path, 'keyId'], 'removeBlueprintCredential needs keyId: the field holding the credential key id');
      if (!targetGetter) return;
      actions.push({
        action: action.action as ResponseActionName,
        target: action.target as string,
        targetGetter,
        keyId: action.keyId as string | undefined,
        keyIdGetter,
        credentialKind: action.credentialKind as CompiledAction['credentialKind'],
        when,
      });
    });
    const ruleMode = (options.responseModeOverride ?? (responseDoc.mode as ResponseMode | undefined)) ?? 'dryRun';
    response = { mode: stricterMode(ruleMode, options.responseCeiling), actions };
  }

  // -- exceptions (config file) --------------------------------------------------------------
  // Problems here are the config file's, not the rule's: they are returned apart.
  const exceptionProblemsFrom = problems.length;
  const exceptionEntries: CompiledException[] = [];
  const exceptionNames = new Set<string>();
  (options.exceptions ?? []).forEach((exception, index) => {
    const path: JsonPath = [...(options.exceptionsPath ?? ['exceptions']), index];
    if (exceptionNames.has(exception.name)) problem([...path, 'name'], `duplicate exception name ${JSON.stringify(exception.name)} of ${id}: names must be unique per detection`);
    exceptionNames.add(exception.name);
    let untilMs: number | undefined;
    if (exception.expires !== undefined) {
      untilMs = Date.parse(exception.expires);
      // A date-time must say its offset: without one, Date.parse would read the host's local time.
      if (!EXPIRES_FORMAT.test(exception.expires) || Number.isNaN(untilMs)) problem([...path, 'expires'], `expected a date like "2027-01-31" (UTC midnight) or a date-time with its offset like "2027-01-31T18:00:00Z", got ${JSON.stringify(exception.expires)}`);
    }
    const match = exception.match as Bag | undefined;
    if (match && typeof match === 'object' && !Array.isArray(match) && 'remembered' in match) {
      problem([...path, 'match'], 'expected field conditions on the event; an exception cannot read a memory (remembered:)');
      return;
    }
    const compiled = compileSelection(id, `exception:${exception.name}`, exception.match, [...path, 'match'], { resolve, field, fieldList, problem, memoryNames: [] });
    if (!compiled) return;
    if (untilMs !== undefined && !Number.isNaN(untilMs)) {
      const until = untilMs;
      const matches = compiled.test;
      compiled.test = (event, ctx) => event.timeMs < until && matches(event, ctx);
    }
    exceptionEntries.push({ name: exception.name, reason: exception.reason, selection: selections.length, ...(untilMs !== undefined ? { untilMs } : {}) });
    selections.push(compiled);
  });
  const configProblems = problems.splice(exceptionProblemsFrom);
  let exceptions: CompiledExceptions | undefined;
  if (exceptionEntries.length) {
    const indexes = exceptionEntries.map((entry) => entry.selection);
    const unlessExcepted = (base: CompiledCondition): CompiledCondition => (test) => {
      if (!base(test)) return false;
      for (let i = 0; i < indexes.length; i++) if (test(indexes[i])) return false;
      return true;
    };
    exceptions = { entries: exceptionEntries, baseCondition: mainCondition, baseSteps: [] };
    if (mainCondition) mainCondition = unlessExcepted(mainCondition);
    if (stateful?.type === 'sequence' || stateful?.type === 'absence') {
      // The steps that trigger: every event step of a sequence, an absence's first step only
      // (excepting its confirming step would raise alerts instead of keeping them away).
      const excepted = stateful.type === 'sequence' ? stateful.steps : stateful.steps.slice(0, 1);
      for (const step of excepted) {
        if (!step.condition) continue;
        exceptions.baseSteps[step.index] = step.condition;
        step.condition = unlessExcepted(step.condition);
      }
    }
  }

  // -- dispatch prefilter --------------------------------------------------------------------
  const constraintOf = (key: keyof CompiledSelection['constraints']) => (name: string) => selections[selectionIndex.get(name)!]?.constraints[key];
  const prefilter: Prefilter = {
    kinds: unionOver(conditionTrees, constraintOf('kind')),
    categories: unionOver(conditionTrees, constraintOf('category')),
    flows: unionOver(conditionTrees, constraintOf('flow')),
    operations: unionOver(conditionTrees, constraintOf('operation')),
    admits: admitsOver(conditionTrees, (name) => selections[selectionIndex.get(name)!]),
  };
  if (stateful?.type === 'sequence' || stateful?.type === 'absence') {
    // Alert steps are fed separately; event steps were collected above through `trigger`.
    if (stateful.steps.every((step) => step.alerts)) {
      prefilter.kinds = new Set();
      prefilter.admits = () => false;
    }
  }
  if (doc.condition === undefined && !(stateful?.type === 'sequence' || stateful?.type === 'absence')) problem(['condition'], 'expected a condition');

  if (problems.length) return { problems, configProblems };
  return {
    problems,
    configProblems,
    detection: {
      id,
      file: options.file,
      document,
      title: doc.title as string,
      description: doc.description as string | undefined,
      status: doc.status as RuleStatus,
      version: (doc.version as number | undefined) ?? 1,
      severity: options.severityOverride ?? (doc.severity as Severity),
      severityWhen,
      tactics: (doc.tactics as string[]) ?? [],
      techniques: (doc.techniques as string[]) ?? [],
      techniquesFrom,
      triage: doc.triage as string | undefined,
      parameters,
      selections,
      condition: mainCondition,
      memories,
      stateful,
      output,
      response,
      dependsOn: [...dependsOn],
      prefilter,
      ...(exceptions ? { exceptions } : {}),
    },
  };
}

/** The stricter (lower) of two modes in off < dryRun < approval < auto. */
export function stricterMode(mode: ResponseMode, ceiling: ResponseMode | undefined): ResponseMode {
  if (!ceiling) return mode;
  return RESPONSE_MODE_ORDER.indexOf(ceiling) < RESPONSE_MODE_ORDER.indexOf(mode) ? ceiling : mode;
}

// ---------------------------------------------------------------------------------------------
// Selections

interface SelectionTools {
  resolve: (raw: unknown, path: JsonPath) => unknown;
  field: (raw: unknown, path: JsonPath) => FieldGetter | undefined;
  fieldList: (raw: unknown, path: JsonPath) => FieldGetter[];
  problem: (path: JsonPath, message: string) => undefined;
  memoryNames: string[];
}

/**
 * What an entry on a dispatch field says about the field's folded value: the allowed values (equals /
 * in, also used for the per-dimension prefilter sets) and in every case a test of the value.
 */
type EntryConstraint = { key: keyof CompiledSelection['constraints']; values?: Set<string>; test: (folded: string) => boolean };

function compileSelection(detectionId: string, name: string, raw: unknown, path: JsonPath, tools: SelectionTools): CompiledSelection | undefined {
  if (raw && typeof raw === 'object' && !Array.isArray(raw) && 'remembered' in raw) {
    const memoryRef = raw as { remembered: string; key: unknown };
    const keys = tools.fieldList(memoryRef.key, [...path, 'key']);
    const memory = memoryRef.remembered;
    const test: SelectionTest = (event, ctx) => {
      if (!ctx.memory) return false;
      for (const key of compositeKeys(keys, event, ctx)) {
        const setter = ctx.memory.holds(detectionId, memory, key, event.timeMs);
        if (setter !== undefined) {
          ctx.memoryEvidence?.push(setter);
          return true;
        }
      }
      return false;
    };
    return { name, test, memory, memoryKeys: keys, constraints: { kind: undefined, category: undefined, flow: undefined, operation: undefined } };
  }
  const maps = Array.isArray(raw) ? (raw as Bag[]) : [raw as Bag];
  const compiledMaps: { test: SelectionTest; constraints: EntryConstraint[]; entries: number }[] = [];
  let failed = false;
  maps.forEach((map, mapIndex) => {
    const mapPath = Array.isArray(raw) ? [...path, mapIndex] : path;
    const tests: SelectionTest[] = [];
    const constraints: EntryConstraint[] = [];
    for (const [key, value] of Object.entries(map)) {
      const compiled = compileEntry(key, value, [...mapPath, key], tools);
      if (!compiled) {
        failed = true;
        continue;
      }
      tests.push(compiled.test);
      if (compiled.constraint) constraints.push(compiled.constraint);
    }
    compiledMaps.push({ test: allOf(tests), constraints, entries: tests.length });
  });
  if (failed) return undefined;
  const constraint = (key: EntryConstraint['key']): ValueConstraint => {
    // A list of maps holds when any map holds: the selection allows the union of what each map allows.
    const union = new Set<string>();
    for (const map of compiledMaps) {
      const own = map.constraints.filter((c) => c.key === key && c.values !== undefined);
      if (own.length === 0) return undefined;
      let allowed = own[0].values!;
      for (const other of own.slice(1)) allowed = new Set([...allowed].filter((v) => other.values!.has(v)));
      for (const value of allowed) union.add(value);
    }
    return union;
  };
  // Any map may hold; within a map every dispatch entry must. A map without one can always hold.
  const dispatch = compiledMaps.every((map) => map.constraints.length > 0)
    ? (values: DispatchValues): boolean =>
        compiledMaps.some((map) =>
          map.constraints.every((c) => {
            const value = values[c.key];
            return value !== undefined && c.test(value); // an entry on a missing field never holds
          }),
        )
    : undefined;
  const dispatchDecides = dispatch !== undefined && compiledMaps.every((map) => map.constraints.length === map.entries);
  const tests = compiledMaps.map((map) => map.test);
  const test: SelectionTest =
    tests.length === 1
      ? tests[0]
      : (event, ctx) => {
          for (const one of tests) if (one(event, ctx)) return true;
          return false;
        };
  return { name, test, constraints: { kind: constraint('kind'), category: constraint('category'), flow: constraint('flow'), operation: constraint('operation') }, dispatch, dispatchDecides };
}

function allOf(tests: SelectionTest[]): SelectionTest {
  switch (tests.length) {
    case 1:
      return tests[0];
    case 2: {
      const [a, b] = tests;
      return (event, ctx) => a(event, ctx) && b(event, ctx);
    }
    case 3: {
      const [a, b, c] = tests;
      return (event, ctx) => a(event, ctx) && b(event, ctx) && c(event, ctx);
    }
    default:
      return (event, ctx) => {
        for (const test of tests) if (!test(event, ctx)) return false;
        return true;
      };
  }
}

function compileEntry(key: string, rawValue: unknown, path: JsonPath, tools: SelectionTools): { test: SelectionTest; constraint?: EntryConstraint } | undefined {
  const [fieldText, ...modifiers] = key.split('|');
  const parsed = parseFieldPath(fieldText);
  if ('error' in parsed) return tools.problem(path, parsed.error);
  let operator: MatchOperator | undefined;
  let cased = false;
  let all = false;
  for (const modifier of modifiers) {
    const lowered = modifier.toLowerCase();
    if ((MATCH_FLAGS as readonly string[]).includes(lowered)) {
      if (lowered === 'cased') cased = true;
      else all = true;
    } else if ((MATCH_OPERATORS as readonly string[]).includes(lowered)) {
      if (operator) return tools.problem(path, `two operators (${operator}, ${lowered}): use one of ${MATCH_OPERATORS.join(', ')} plus the flags cased / all`);
      operator = lowered as MatchOperator;
    } else {
      return tools.problem(path, `unknown modifier ${JSON.stringify(modifier)}: expected ${[...MATCH_OPERATORS, ...MATCH_FLAGS].join(', ')}`);
    }
  }
  operator ??= 'equals';
  const getter = compileGetter(parsed);
  const value = tools.resolve(rawValue, path);
  if (value === undefined) return undefined;

  if (operator === 'exists') {
    if (typeof value !== 'boolean') return tools.problem(path, `exists expects true or false, got ${JSON.stringify(value)}`);
    if (cased || all) return tools.problem(path, 'exists takes no other modifier');
    const want = value;
    return {
      test: (event, ctx) => {
        const found = getter(event, ctx);
        const present = found !== undefined && found !== null && !(Array.isArray(found) && found.length === 0);
        return present === want;
      },
    };
  }
  if (cased && ['cidr', 'gt', 'gte', 'lt', 'lte'].includes(operator)) return tools.problem(path, `cased does not apply to ${operator}`);

  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const reference = (value as { field?: unknown }).field;
    if (!FIELD_REFERENCE_OPERATORS.has(operator)) return tools.problem(path, `${operator} cannot compare against another field; expected a literal value`);
    const other = tools.field(reference, [...path, 'field']);
    if (!other) return undefined;
    const op = operator;
    const predicate = (event: AgentEvent, ctx: RuleEvalContext) => {
      const right = valuesOf(other(event, ctx));
      if (right.length === 0) return undefined;
      return (left: unknown) => {
        for (const candidate of right) if (compareDynamic(op, cased, left, candidate)) return true;
        return false;
      };
    };
    return {
      test: (event, ctx) => {
        const element = predicate(event, ctx);
        return element ? matchValue(getter(event, ctx), element, all) : false;
      },
    };
  }

  const values = (Array.isArray(value) ? value : [value]) as unknown[];
  // An empty list (e.g. a user list left empty) matches nothing.
  if (values.length === 0) return { test: () => false };
  for (const element of values) {
    if (typeof element !== 'string' && typeof element !== 'number' && typeof element !== 'boolean') return tools.problem(path, `expected text, numbers or booleans, got ${JSON.stringify(element)}`);
  }
  let element: ElementPredicate;
  try {
    element = OPERATOR_FACTORIES[operator](values as RuleScalar[], cased);
  } catch (error) {
    return tools.problem(path, (error as Error).message);
  }
  const test: SelectionTest = all ? (event, ctx) => matchValue(getter(event, ctx), element, true) : (event, ctx) => matchValue(getter(event, ctx), element, false);

  let constraint: EntryConstraint | undefined;
  const dispatchKey = (Object.keys(DISPATCH_FIELDS) as (keyof typeof DISPATCH_FIELDS)[]).find((k) => DISPATCH_FIELDS[k] === parsed.base);
  if (dispatchKey && !parsed.lookup && !cased && !all) {
    // These operators fold the value themselves, so they judge a folded dispatch value as they would the event's.
    if (operator === 'equals' || operator === 'in') {
      const allowed = new Set(values.map((v) => fold(String(v))));
      constraint = { key: dispatchKey, values: allowed, test: (folded) => allowed.has(folded) };
    } else if (operator === 'startswith' || operator === 'endswith' || operator === 'contains') {
      constraint = { key: dispatchKey, test: element };
    }
  }
  return { test, constraint };
}

/** Any element matches (or, with `all`, every element and at least one); missing → false. */
export function matchValue(found: unknown, element: ElementPredicate, all: boolean): boolean {
  if (found === undefined || found === null) return false;
  if (!Array.isArray(found)) return element(found);
  if (found.length === 0) return false;
  if (all) {
    for (const item of found) if (item === undefined || item === null || !element(item)) return false;
    return true;
  }
  for (const item of found) if (item !== undefined && item !== null && element(item)) return true;
  return false;
}

/** Key texts of an event for a list of key fields: one per combination of values, folded. Empty when a field is missing. */
export function compositeKeys(getters: readonly FieldGetter[], event: AgentEvent, ctx: RuleEvalContext): string[] {
  let keys: string[] = [''];
  for (let i = 0; i < getters.length; i++) {
    const found = getters[i](event, ctx);
    if (found === undefined || found === null) return [];
    if (!Array.isArray(found)) {
      // One scalar value (the common case): extend every key without the list machinery.
      const text = keyText(found);
      if (text === undefined || text === '') return [];
      const folded = fold(text);
      if (i === 0) keys = [folded];
      else for (let k = 0; k < keys.length; k++) keys[k] = `${keys[k]}|${folded}`;
      continue;
    }
    const texts: string[] = [];
    for (const value of valuesOf(found)) {
      const text = keyText(value);
      if (text !== undefined && text !== '') texts.push(fold(text));
    }
    if (texts.length === 0) return [];
    if (texts.length === 1) keys = keys.map((key) => (i === 0 ? texts[0] : `${key}|${texts[0]}`));
    else keys = keys.flatMap((key) => [...new Set(texts)].map((text) => (i === 0 ? text : `${key}|${text}`)));
  }
  return keys;
}

/** Three-valued truth of a condition judged on dispatch values alone. */
const FALSE = 0;
const UNKNOWN = 1;
const TRUE = 2;

/**
 * Whether any of the trees could hold for an event with these (folded) dispatch values. Each
 * selection is judged on its dispatch constraints alone: false when one excludes the event's value,
 * unknown otherwise; the trees are then evaluated in three-valued logic. Finer than the
 * per-dimension sets, which must give up on `a or b` when `a` constrains the flow and `b` the
 * category (a rule that remembers risky users from risk records and fires on sign-ins); the engine
 * asks once per combination of values and caches the answer.
 */
function admitsOver(trees: ConditionNode[], selectionOf: (name: string) => CompiledSelection | undefined): (values: DispatchValues) => boolean {
  const judge = (node: ConditionNode, values: DispatchValues): number => {
    switch (node.type) {
      case 'ref': {
        const selection = selectionOf(node.name);
        if (!selection?.dispatch) return UNKNOWN;
        if (!selection.dispatch(values)) return FALSE;
        return selection.dispatchDecides ? TRUE : UNKNOWN;
      }
      case 'not':
        return TRUE - judge(node.operand, values);
      case 'and': {
        let result = TRUE;
        for (const operand of node.operands) result = Math.min(result, judge(operand, values));
        return result;
      }
      case 'or': {
        let result = FALSE;
        for (const operand of node.operands) result = Math.max(result, judge(operand, values));
        return result;
      }
    }
  };
  return (values) => trees.some((tree) => judge(tree, values) !== FALSE);
}

function unionOver(trees: ConditionNode[], constraintOf: (name: string) => ValueConstraint): ValueConstraint {
  const union = new Set<string>();
  for (const tree of trees) {
    const allowed = constraintOfTree(tree, constraintOf);
    if (allowed === undefined) return undefined;
    for (const value of allowed) union.add(value);
  }
  return union;
}

function constraintOfTree(node: ConditionNode, constraintOf: (name: string) => ValueConstraint): ValueConstraint {
  switch (node.type) {
    case 'ref':
      return constraintOf(node.name);
    case 'not':
      return undefined;
    case 'and': {
      let result: ValueConstraint;
      for (const operand of node.operands) {
        const allowed = constraintOfTree(operand, constraintOf);
        if (allowed === undefined) continue;
        result = result === undefined ? allowed : new Set([...result].filter((value) => allowed.has(value)));
      }
      return result;
    }
    case 'or': {
      const union = new Set<string>();
      for (const operand of node.operands) {
        const allowed = constraintOfTree(operand, constraintOf);
        if (allowed === undefined) return undefined;
        for (const value of allowed) union.add(value);
      }
      return union;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Stateful kinds

interface StatefulTools {
  durationMs: (raw: unknown, path: JsonPath, fallback?: number) => number | undefined;
  positiveNumber: (raw: unknown, path: JsonPath, integer: boolean) => number | undefined;
  field: (raw: unknown, path: JsonPath) => FieldGetter | undefined;
  fieldList: (raw: unknown, path: JsonPath) => FieldGetter[];
  condition: (raw: unknown, path: JsonPath, options?: { noMemory?: boolean; trigger?: boolean }) => CompiledCondition | undefined;
  problem: (path: JsonPath, message: string) => undefined;
  resolve: (raw: unknown, path: JsonPath) => unknown;
  dependsOn: Set<string>;
}

function compileStateful(doc: Bag, tools: StatefulTools): CompiledStateful | undefined {
  const path: JsonPath = ['stateful'];
  const groupBy = tools.fieldList(doc.groupBy, [...path, 'groupBy']);
  const at = (key: string): JsonPath => [...path, key];
  const windowMs = doc.window === undefined ? 0 : tools.durationMs(doc.window, at('window'));
  if (windowMs === undefined) return undefined;
  if (doc.window !== undefined && windowMs <= 0) return tools.problem(at('window'), 'expected a window longer than 0');
  switch (doc.type) {
    case 'threshold': {
      const threshold = tools.positiveNumber(doc.threshold, at('threshold'), true);
      let distinct: { field: FieldGetter; threshold: number } | undefined;
      if (doc.distinct) {
        const distinctDoc = doc.distinct as Bag;
        const distinctField = tools.field(distinctDoc.field, [...at('distinct'), 'field']);
        const distinctThreshold = tools.positiveNumber(distinctDoc.threshold, [...at('distinct'), 'threshold'], true);
        if (distinctField && distinctThreshold !== undefined) distinct = { field: distinctField, threshold: distinctThreshold };
      }
      if (threshold === undefined) return undefined;
      return { type: 'threshold', groupBy, windowMs, threshold, distinct, combine: (doc.combine as 'any' | 'all') ?? 'any' };
    }
    case 'distinctCount': {
      const threshold = tools.positiveNumber(doc.threshold, at('threshold'), true);
      const field = tools.field(doc.field, at('field'));
      const excludeValue = doc.exclude === undefined ? [] : tools.resolve(doc.exclude, at('exclude'));
      if (excludeValue !== undefined && !Array.isArray(excludeValue)) return tools.problem(at('exclude'), `expected a list, got ${JSON.stringify(excludeValue)}`);
      const memoryTtlMs = tools.durationMs(doc.memoryTtl, at('memoryTtl'), DEFAULT_MEMORY_TTL_MS);
      if (threshold === undefined || !field || memoryTtlMs === undefined) return undefined;
      const exclude = new Set(((excludeValue as unknown[]) ?? []).map((v) => fold(String(v))));
      return { type: 'distinctCount', groupBy, field, windowMs, threshold, exclude, newOnly: doc.newOnly === true, memoryTtlMs };
    }
    case 'firstSeen': {
      const field = tools.field(doc.field, at('field'));
      const learningMs = tools.durationMs(doc.learningPeriod, at('learningPeriod'), 0);
      const ttlMs = tools.durationMs(doc.ttl, at('ttl'), DEFAULT_MEMORY_TTL_MS);
      if (!field || learningMs === undefined || ttlMs === undefined) return undefined;
      return { type: 'firstSeen', groupBy, field, learningMs, ttlMs };
    }
    case 'baseline': {
      const historyMs = tools.durationMs(doc.history, at('history'));
      const minCount = tools.positiveNumber(doc.minCount, at('minCount'), false);
      const factor = tools.positiveNumber(doc.factor, at('factor'), false);
      const learningMs = tools.durationMs(doc.learningPeriod, at('learningPeriod'), historyMs);
      if (historyMs === undefined || minCount === undefined || factor === undefined || learningMs === undefined) return undefined;
      if (historyMs < windowMs) return tools.problem(at('history'), 'expected history to be at least one window long');
      return { type: 'baseline', groupBy, windowMs, historyMs, minCount, factor, learningMs };
    }
    case 'sequence':
    case 'absence': {
      const stepDocs = (doc.steps as Bag[]) ?? [];
      const steps: CompiledStep[] = [];
      const names: string[] = [];
      let failed = false;
      stepDocs.forEach((stepDoc, index) => {
        const stepPath: JsonPath = [...path, 'steps', index];
        const name = stepDoc.name as string;
        if (names.includes(name)) {
          tools.problem([...stepPath, 'name'], `duplicate step name ${JSON.stringify(name)}`);
          failed = true;
        }
        names.push(name);
        const step: CompiledStep = { name, index, groupBy, joins: [], exportedFields: [], capturedFields: [], newValueTtlMs: DEFAULT_MEMORY_TTL_MS };
        if (stepDoc.alerts) {
          step.alerts = new Set(stepDoc.alerts as string[]);
          for (const dependency of stepDoc.alerts as string[]) tools.dependsOn.add(dependency);
        } else {
          step.condition = tools.condition(stepDoc.condition, [...stepPath, 'condition'], { trigger: true });
          if (!step.condition) failed = true;
        }
        if (stepDoc.newValue !== undefined) {
          if (doc.type === 'absence') tools.problem([...stepPath, 'newValue'], 'newValue applies to sequence steps only');
          if (stepDoc.alerts) tools.problem([...stepPath, 'newValue'], 'newValue needs a condition step, not an alert step');
          step.newValue = tools.field(stepDoc.newValue, [...stepPath, 'newValue']);
          const ttl = tools.durationMs(stepDoc.newValueTtl, [...stepPath, 'newValueTtl'], DEFAULT_MEMORY_TTL_MS);
          if (ttl !== undefined) step.newValueTtlMs = ttl;
        }
        if (stepDoc.groupBy !== undefined) {
          const own = tools.fieldList(stepDoc.groupBy, [...stepPath, 'groupBy']);
          if (own.length !== groupBy.length) tools.problem([...stepPath, 'groupBy'], `expected ${groupBy.length} field(s), like the rule's groupBy`);
          step.groupBy = own;
        }
        if (stepDoc.join !== undefined) {
          if (doc.type === 'absence') tools.problem([...stepPath, 'join'], 'join applies to sequence steps only');
          const alternatives = Array.isArray(stepDoc.join) ? (stepDoc.join as Bag[]) : [stepDoc.join as Bag];
          alternatives.forEach((alternative, altIndex) => {
            const altPath = Array.isArray(stepDoc.join) ? [...stepPath, 'join', altIndex] : [...stepPath, 'join'];
            const equalities: CompiledStep['joins'][number] = [];
            for (const [ownField, target] of Object.entries(alternative)) {
              const ownGetter = tools.field(ownField, [...altPath, ownField]);
              const ref = target as { step: string; field: string };
              const targetIndex = names.indexOf(ref.step);
              if (targetIndex < 0 || targetIndex >= index) {
                tools.problem([...altPath, ownField, 'step'], `expected the name of an earlier step (${names.slice(0, index).join(', ') || 'none'}), got ${JSON.stringify(ref.step)}`);
                failed = true;
                continue;
              }
              const targetGetter = tools.field(ref.field, [...altPath, ownField, 'field']);
              if (!ownGetter || !targetGetter) {
                failed = true;
                continue;
              }
              equalities.push({ field: ownGetter, fieldPath: ownField, step: targetIndex, stepField: ref.field });
              if (!step.exportedFields.some((f) => f.path === ownField)) step.exportedFields.push({ path: ownField, getter: ownGetter });
              const targetStep = steps[targetIndex];
              if (targetStep && !targetStep.exportedFields.some((f) => f.path === ref.field)) targetStep.exportedFields.push({ path: ref.field, getter: targetGetter });
            }
            step.joins.push(equalities);
          });
        }
        steps.push(step);
      });
      const cancel = doc.cancel === undefined ? undefined : tools.condition(doc.cancel, at('cancel'), { trigger: true });
      if (failed || (doc.cancel !== undefined && !cancel)) return undefined;
      if (doc.type === 'absence') return { type: 'absence', groupBy, windowMs, steps };
      return { type: 'sequence', groupBy, windowMs, steps, cancel };
    }
  }
  return tools.problem(at('type'), `unknown stateful type ${JSON.stringify(doc.type)}`);
}

// ---------------------------------------------------------------------------------------------
// Templates

function compileTemplate(
  raw: string,
  path: JsonPath,
  tools: { field: (raw: unknown, path: JsonPath) => FieldGetter | undefined; problem: (path: JsonPath, message: string) => undefined; resolve: (raw: unknown, path: JsonPath) => unknown },
): TemplatePart[] {
  const parts: TemplatePart[] = [];
  const pattern = /\{\{\s*([^}]*?)\s*\}\}/g;
  let last = 0;
  let match: RegExpExecArray | null;
  while ((match = pattern.exec(raw))) {
    if (match.index > last) parts.push({ literal: raw.slice(last, match.index) });
    const name = match[1];
    if (AGGREGATES.has(name)) parts.push({ aggregate: name as AggregateName });
    else if (name.startsWith('$')) {
      const value = tools.resolve(name, path);
      if (value !== undefined) parts.push({ literal: Array.isArray(value) ? value.join(', ') : String(value) });
    } else if (name.includes('??')) {
      // `{{a ?? b}}`: the first alternative with a value (a name the inventory may not know, then the id).
      const getters = name.split('??').map((alternative) => tools.field(alternative.trim(), path));
      if (getters.every((getter) => getter !== undefined)) parts.push({ getter: firstPresent(getters as FieldGetter[]) });
    } else {
      const getter = tools.field(name, path);
      if (getter) parts.push({ getter });
    }
    last = match.index + match[0].length;
  }
  if (last < raw.length) parts.push({ literal: raw.slice(last) });
  return parts;
}

function firstPresent(getters: readonly FieldGetter[]): FieldGetter {
  return (event, ctx) => {
    for (const getter of getters) {
      const value = getter(event, ctx);
      if (valuesOf(value).some((element) => element !== '')) return value;
    }
    return undefined;
  };
}

/** True when `value` names a severity. */
export function isSeverity(value: unknown): value is Severity {
  return typeof value === 'string' && (SEVERITIES as readonly string[]).includes(value);
}
