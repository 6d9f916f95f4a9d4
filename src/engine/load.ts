/**
 * Loading rule files: read YAML, validate against `schemas/detection.schema.json`, compile, and
 * check across files (id = file stem, unique ids, `alerts:` references exist, no cycles). Every
 * problem of every file is collected and thrown together as one `DetectionLoadError`, each with the
 * file, the JSON path inside it, what was expected, and the line when the YAML parser knows it.
 */
import Ajv, { type ValidateFunction } from 'ajv';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { ConfigError, DetectionLoadError, type LocatedProblem } from '../errors';
import { systemClock, type Clock, type Logger } from '../ports';
import detectionSchema from '../../schemas/detection.schema.json';
import { compileDetection } from './compile';
import { configProblems } from './config';
import { effectiveLists } from './lists';
import type { CompiledDetection, EngineConfig, RuleDocument } from './types';
import { parseLocated, pointerOf, problemsFromAjv, type LocatedDocument } from './yamlFile';

const ajv = new Ajv({ allErrors: true, strict: false, allowUnionTypes: true, verbose: true });
const validateRule = ajv.compile(detectionSchema);
const validateFixtureFile = ajv.compile({ $ref: `${detectionSchema.$id}#/definitions/fixtureFile` });

export interface RuleFile {
  file: string;
  document: RuleDocument;
  located: LocatedDocument;
}

/** Schema-valid rule files (every status), shared test bases, and the problems found reading them. */
export interface RuleSet {
  rules: RuleFile[];
  /** `detections/fixtures/*.yaml`: base name → raw record. */
  fixtures: Record<string, Record<string, unknown>>;
  problems: LocatedProblem[];
}

const RULE_EXTENSIONS = new Set(['.yaml', '.yml']);

function ruleFilesOf(path: string, problems: LocatedProblem[]): { files: string[]; fixtureDirs: string[] } {
  if (!existsSync(path)) {
    problems.push({ file: path, path: '/', message: 'no such file or directory' });
    return { files: [], fixtureDirs: [] };
  }
  if (statSync(path).isDirectory()) {
    const files = readdirSync(path)
      .filter((name) => RULE_EXTENSIONS.has(extname(name)))
      .sort()
      .map((name) => join(path, name))
      .filter((file) => statSync(file).isFile());
    return { files, fixtureDirs: [join(path, 'fixtures')] };
  }
  return { files: [path], fixtureDirs: [join(dirname(path), 'fixtures')] };
}

/** Parses a YAML file and checks it against a schema; problems are collected, the document returned when valid. */
function readValidated(file: string, validate: ValidateFunction, problems: LocatedProblem[]): LocatedDocument | undefined {
  const located = parseLocated(file, readFileSync(file, 'utf8'));
  if (located.problems.length) {
    problems.push(...located.problems);
    return undefined;
  }
  if (!validate(located.value)) {
    problems.push(...problemsFromAjv(validate.errors ?? [], located));
    return undefined;
  }
  return located;
}

/** Reads and schema-checks rule files and fixture files. Never throws for content problems. */
export function readRuleSet(paths: readonly string[]): RuleSet {
  const problems: LocatedProblem[] = [];
  const rules: RuleFile[] = [];
  const fixtures: Record<string, Record<string, unknown>> = {};
  const fixtureDirs = new Set<string>();
  const seenFiles = new Set<string>();
  for (const path of paths) {
    const found = ruleFilesOf(path, problems);
    for (const dir of found.fixtureDirs) fixtureDirs.add(dir);
    for (const file of found.files) {
      if (seenFiles.has(file)) continue;
      seenFiles.add(file);
      const located = readValidated(file, validateRule, problems);
      if (!located) continue;
      const document = located.value as RuleDocument;
      const stem = basename(file, extname(file));
      if (document.id !== stem) {
        problems.push({ file, path: '/id', line: located.lineOf(['id']), message: `expected the id to equal the file name ${JSON.stringify(stem)}, got ${JSON.stringify(document.id)}` });
        continue;
      }
      rules.push({ file, document, located });
    }
  }
  for (const dir of fixtureDirs) {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) continue;
    for (const name of readdirSync(dir).filter((n) => RULE_EXTENSIONS.has(extname(n))).sort()) {
      const file = join(dir, name);
      const located = readValidated(file, validateFixtureFile, problems);
      if (!located) continue;
      for (const [baseName, record] of Object.entries(located.value as Record<string, Record<string, unknown>>)) {
        if (baseName in fixtures) problems.push({ file, path: pointerOf([baseName]), line: located.lineOf([baseName]), message: `duplicate shared test base ${JSON.stringify(baseName)} (already defined in another fixtures file)` });
        else fixtures[baseName] = record;
      }
    }
  }
  const byId = new Map<string, RuleFile>();
  for (const rule of rules) {
    const other = byId.get(rule.document.id);
    if (other) problems.push({ file: rule.file, path: '/id', line: rule.located.lineOf(['id']), message: `duplicate detection id ${JSON.stringify(rule.document.id)} (also in ${other.file})` });
    else byId.set(rule.document.id, rule);
  }
  return { rules: [...byId.values()], fixtures, problems };
}

export interface CompileSetOptions {
  config?: EngineConfig;
  /** Compile exactly these ids (and what they depend on), whatever their status or config: the test runner. */
  only?: readonly string[];
  /** Per-id parameter overrides on top of the config (test cases). */
  parameterOverrides?: Readonly<Record<string, Readonly<Record<string, import('./types').ParameterValue>>>>;
  listOverrides?: Readonly<Record<string, readonly (string | number)[]>>;
  logger?: Logger;
}

/** Compiles the enabled rules of a rule set. Returns problems instead of throwing. */
export function compileRuleSet(set: RuleSet, options: CompileSetOptions = {}): { detections: CompiledDetection[]; problems: LocatedProblem[]; configProblems: LocatedProblem[] } {
  const config = options.config ?? {};
  const documents = new Map(set.rules.map((rule) => [rule.document.id, rule.document]));
  const lists = effectiveLists({ ...(config.lists ?? {}), ...(options.listOverrides ?? {}) });
  const problems: LocatedProblem[] = [];
  const wanted = new Set<string>();
  if (options.only) {
    const pending = [...options.only];
    while (pending.length) {
      const id = pending.pop()!;
      if (wanted.has(id) || !documents.has(id)) continue;
      wanted.add(id);
      pending.push(...referencedDetections(documents.get(id)!));
    }
  } else {
    for (const rule of set.rules) {
      const tuning = config.detections?.[rule.document.id];
      if (tuning?.enabled === false) continue;
      if (rule.document.status === 'experimental' && !config.includeExperimental) continue;
      wanted.add(rule.document.id);
    }
  }
  const detections: CompiledDetection[] = [];
  /** Mistakes in the config's exceptions: found while compiling the rule they belong to. */
  const exceptionProblems: LocatedProblem[] = [];
  for (const rule of set.rules) {
    if (!wanted.has(rule.document.id)) continue;
    const tuning = config.detections?.[rule.document.id];
    const result = compileDetection(rule.document, {
      file: rule.file,
      lists,
      parameterOverrides: { ...(tuning?.parameters ?? {}), ...(options.parameterOverrides?.[rule.document.id] ?? {}) },
      severityOverride: tuning?.severity,
      responseModeOverride: tuning?.response?.mode,
      responseCeiling: config.response?.mode,
      exceptions: tuning?.exceptions,
      exceptionsPath: ['detections', rule.document.id, 'exceptions'],
    });
    for (const problem of result.problems) problems.push({ file: rule.file, path: pointerOf(problem.path), line: rule.located.lineOf(problem.path), message: problem.message });
    for (const problem of result.configProblems) exceptionProblems.push({ file: config.file ?? 'config', path: pointerOf(problem.path), line: config.locate?.(problem.path), message: problem.message });
    if (result.detection) detections.push(result.detection);
  }
  // Cross-rule references: every `alerts:` id must name a rule file, and the graph must be acyclic.
  for (const detection of detections) {
    const rule = set.rules.find((r) => r.document.id === detection.id)!;
    detection.dependsOn.forEach((dependency) => {
      if (!documents.has(dependency)) {
        const stepIndex = ((rule.document.stateful as { steps?: { alerts?: string[] }[] })?.steps ?? []).findIndex((step) => step.alerts?.includes(dependency));
        const path = ['stateful', 'steps', stepIndex, 'alerts'];
        problems.push({ file: rule.file, path: pointerOf(path), line: rule.located.lineOf(path), message: `unknown detection ${JSON.stringify(dependency)} in alerts: no rule file has this id` });
      } else if (!wanted.has(dependency)) {
        options.logger?.log('warn', 'a chain detection depends on a detection that is not loaded (disabled or experimental); that step can never match', { detectionId: detection.id, dependency });
      }
    });
  }
  const cycle = findCycle(detections);
  if (cycle) {
    const rule = set.rules.find((r) => r.document.id === cycle[0])!;
    problems.push({ file: rule.file, path: '/stateful/steps', line: rule.located.lineOf(['stateful', 'steps']), message: `alerts: references form a cycle: ${cycle.join(' → ')}` });
  }
  return { detections, problems, configProblems: [...(options.config ? configProblems(config, documents) : []), ...exceptionProblems] };
}

function referencedDetections(document: RuleDocument): string[] {
  const steps = (document.stateful as { steps?: { alerts?: string[] }[] } | undefined)?.steps ?? [];
  return steps.flatMap((step) => step.alerts ?? []);
}

function findCycle(detections: CompiledDetection[]): string[] | undefined {
  const byId = new Map(detections.map((d) => [d.id, d]));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'visiting') return [...stack.slice(stack.indexOf(id)), id];
    state.set(id, 'visiting');
    stack.push(id);
    for (const dependency of byId.get(id)?.dependsOn ?? []) {
      const found = visit(dependency);
      if (found) return found;
    }
    stack.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const detection of detections) {
    const found = visit(detection.id);
    if (found) return found;
  }
  return undefined;
}

export interface LoadDetectionsOptions {
  config?: EngineConfig;
  logger?: Logger;
  /** Judges which config exceptions have expired (a start-up warning). Optional; defaults to the system clock. */
  clock?: Clock;
}

/**
 * Reads, validates and compiles the rules under `paths` (files or directories of `*.yaml`),
 * applying the config file (enablement, status filter, parameters, severity, response mode, lists).
 * Throws `DetectionLoadError` listing every rule problem, then `ConfigError` for config problems.
 */
export function loadDetections(paths: readonly string[], options: LoadDetectionsOptions = {}): CompiledDetection[] {
  const set = readRuleSet(paths);
  // A config mistake is the config's, not the rules': check it first and never compile with it.
  const badConfig = options.config ? configProblems(options.config, new Map(set.rules.map((rule) => [rule.document.id, rule.document]))) : [];
  const compiled = compileRuleSet(set, { config: badConfig.length ? undefined : options.config, logger: options.logger });
  const problems = [...set.problems, ...compiled.problems];
  if (problems.length) throw new DetectionLoadError(problems);
  if (badConfig.length) throw new ConfigError(badConfig);
  if (compiled.configProblems.length) throw new ConfigError(compiled.configProblems);
  warnExpiredExceptions(compiled.detections, options.logger, (options.clock ?? systemClock).now());
  return compiled.detections;
}

/** An exception past its date no longer keeps new events away: say so at start-up, so it is renewed or removed. */
function warnExpiredExceptions(detections: readonly CompiledDetection[], logger: Logger | undefined, now: number): void {
  for (const detection of detections) {
    for (const exception of detection.exceptions?.entries ?? []) {
      if (exception.untilMs !== undefined && exception.untilMs <= now) {
        logger?.log('warn', 'a config exception has expired: it no longer applies to events after its date', { detectionId: detection.id, exception: exception.name, expires: new Date(exception.untilMs).toISOString() });
      }
    }
  }
}
