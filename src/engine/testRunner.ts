/**
 * Runs the `tests:` embedded in rule files. Each case gets a fresh engine with in-memory state,
 * loading the rule and every rule it references through `alerts:`, and its records go through the
 * same decode → normalize → resolve → evaluate path the pipeline uses (`buildApp().processBatch`),
 * one Event Hub message per listed record (a `{records: […]}` body stays one message), in the order
 * listed. The case passes when this rule's alert count and every expected alert match.
 *
 * With a config file, the rules run tuned by it, and each config exception's own `tests` run too:
 * the detection must fire on the timeline without that exception and stay silent with it.
 */
import { MemoryAlertSink } from '../alerts/consoleSinks';
import type { Alert, AlertEntity } from '../alerts/types';
// The app composes every stage; it is used only when a case runs, so an app → engine import cycle is harmless.
import { buildApp } from '../app';
import { parseInventorySeed } from '../inventory';
import type { LocatedProblem } from '../errors';
import type { Clock, DetectionEngine } from '../ports';
import { silentLogger, systemClock } from '../ports';
import type { ResponsePlan } from '../response/types';
import { MemoryStateStore } from '../state/memoryStore';
import { createEngine, getResponsePlan } from './engine';
import { compileRuleSet, readRuleSet, type CompileSetOptions, type RuleFile, type RuleSet } from './load';
import type { ConfigException, EngineConfig, ParameterValue } from './types';

type Bag = Record<string, unknown>;

/**
 * Feeds Event Hub messages, one batch per entry, through a pipeline built around `engine` and
 * returns every alert it emitted. The default builds the real app (`src/app.ts`).
 */
export type RecordsToEvents = (input: { batches: unknown[][]; engine: DetectionEngine; inventorySeed?: unknown; clock: Clock }) => Promise<Alert[]>;

export interface RuleTestOptions {
  /** Run only these detection ids. */
  only?: readonly string[];
  config?: EngineConfig;
  driver?: RecordsToEvents;
  clock?: Clock;
}

export interface RuleCaseResult {
  ruleId: string;
  file: string;
  name: string;
  passed: boolean;
  failures: string[];
  alerts: Alert[];
}

export interface RuleTestCase {
  ruleId: string;
  file: string;
  name: string;
  index: number;
  run(): Promise<RuleCaseResult>;
}

export interface RuleTestReport {
  /** Rule files that could not be loaded: no case of theirs ran. */
  loadProblems: LocatedProblem[];
  results: RuleCaseResult[];
  /** Rules without any test case. */
  untested: string[];
  passed: number;
  failed: number;
}

const defaultDriver: RecordsToEvents = async ({ batches, engine, inventorySeed, clock }) => {
  const sink = new MemoryAlertSink();
  const built = await buildApp({
    host: 'replay',
    engine,
    alertSink: sink,
    clock,
    sentinelFromEnv: false,
    ...(inventorySeed !== undefined ? { inventorySeed: parseInventorySeed(inventorySeed, 'test inventory') } : {}),
  });
  for (const [index, messages] of batches.entries()) await built.processBatch(messages, { source: `record ${index + 1}` });
  return sink.alerts;
};

/** Every test case of the rules under `paths`, each runnable on its own (one vitest `it` each). */
export function listRuleTestCases(paths: readonly string[], options: RuleTestOptions = {}): { cases: RuleTestCase[]; loadProblems: LocatedProblem[]; untested: string[] } {
  const set = readRuleSet(paths);
  const loadProblems = [...set.problems];
  // A rule that does not compile cannot run its cases: report it once, as a load problem.
  const compiled = compileRuleSet(set, { only: set.rules.map((rule) => rule.document.id), config: options.config });
  loadProblems.push(...compiled.problems, ...compiled.configProblems);
  const broken = new Set(compiled.problems.map((problem) => problem.file));
  const cases: RuleTestCase[] = [];
  const untested: string[] = [];
  for (const rule of set.rules) {
    const ruleId = rule.document.id;
    if (options.only && !options.only.includes(ruleId)) continue;
    if (broken.has(rule.file)) continue;
    const tests = (rule.document.tests as Bag[] | undefined) ?? [];
    if (tests.length === 0) untested.push(ruleId);
    tests.forEach((testCase, index) => {
      cases.push({ ruleId, file: rule.file, name: String(testCase.name), index, run: () => runCase(set, rule, testCase, index, options) });
    });
    // Each exception of the config proves itself on its own timelines (after the rule's cases).
    const config = options.config;
    (config?.detections?.[ruleId]?.exceptions ?? []).forEach((exception, exceptionIndex) => {
      (exception.tests ?? []).forEach((exceptionTest, index) => {
        const where = `/detections/${ruleId}/exceptions/${exceptionIndex}/tests/${index}`;
        cases.push({ ruleId, file: config!.file ?? 'config', name: `exception ${exception.name}: ${exceptionTest.name}`, index: tests.length + index, run: () => runExceptionCase(set, rule, config!, exception, exceptionTest as unknown as Bag, where, options) });
      });
    });
  }
  return { cases, loadProblems, untested };
}

/** Runs every case of the rules under `paths`. */
export async function runRuleTests(paths: readonly string[], options: RuleTestOptions = {}): Promise<RuleTestReport> {
  const { cases, loadProblems, untested } = listRuleTestCases(paths, options);
  const results: RuleCaseResult[] = [];
  for (const testCase of cases) results.push(await testCase.run());
  const passed = results.filter((result) => result.passed).length;
  return { loadProblems, results, untested, passed, failed: results.length - passed };
}

async function runCase(set: RuleSet, rule: RuleFile, testCase: Bag, index: number, options: RuleTestOptions): Promise<RuleCaseResult> {
  const ruleId = rule.document.id;
  const result: RuleCaseResult = { ruleId, file: rule.file, name: String(testCase.name), passed: false, failures: [], alerts: [] };
  const run = await runTimeline(set, rule, testCase, `tests[${index}]`, options.config, options, {
    parameterOverrides: testCase.parameters ? { [ruleId]: testCase.parameters as Record<string, ParameterValue> } : undefined,
    listOverrides: testCase.lists as Record<string, (string | number)[]> | undefined,
  });
  if ('failures' in run) {
    result.failures.push(...run.failures);
    return result;
  }
  result.alerts = run.alerts;
  result.failures.push(...checkExpectations(ruleId, testCase.expect as Bag, result.alerts));
  result.passed = result.failures.length === 0;
  return result;
}

/**
 * A config exception's test: the detection fires on the timeline without the exception (else the
 * test shows nothing) and raises nothing of its own with it.
 */
async function runExceptionCase(set: RuleSet, rule: RuleFile, config: EngineConfig, exception: ConfigException, exceptionTest: Bag, where: string, options: RuleTestOptions): Promise<RuleCaseResult> {
  const ruleId = rule.document.id;
  const result: RuleCaseResult = { ruleId, file: config.file ?? 'config', name: `exception ${exception.name}: ${String(exceptionTest.name)}`, passed: false, failures: [], alerts: [] };
  const tuning = config.detections?.[ruleId];
  const withoutIt: EngineConfig = { ...config, detections: { ...config.detections, [ruleId]: { ...tuning, exceptions: (tuning?.exceptions ?? []).filter((other) => other !== exception) } } };
  const unexcepted = await runTimeline(set, rule, exceptionTest, where, withoutIt, options);
  const excepted = await runTimeline(set, rule, exceptionTest, where, config, options);
  for (const run of [unexcepted, excepted]) if ('failures' in run) result.failures.push(...run.failures);
  if ('alerts' in unexcepted && 'alerts' in excepted) {
    result.alerts = excepted.alerts;
    if (!unexcepted.alerts.some((alert) => alert.detectionId === ruleId)) result.failures.push(`${where}: without the exception ${ruleId} raises no alert on these records either, so the test does not show the exception at work`);
    const kept = excepted.alerts.filter((alert) => alert.detectionId === ruleId);
    if (kept.length) result.failures.push(`${where}: with the exception ${ruleId} still raised ${kept.length} alert(s)\n      got: ${kept.map(describeAlert).join('\n           ')}`);
  }
  result.passed = result.failures.length === 0;
  return result;
}

/** Compiles the rule (and what it references) with `config`, and feeds the timeline's records through the pipeline. */
async function runTimeline(
  set: RuleSet,
  rule: RuleFile,
  timeline: Bag,
  where: string,
  config: EngineConfig | undefined,
  options: RuleTestOptions,
  overrides: Pick<CompileSetOptions, 'parameterOverrides' | 'listOverrides'> = {},
): Promise<{ alerts: Alert[] } | { failures: string[] }> {
  const compiled = compileRuleSet(set, { only: [rule.document.id], config, ...overrides });
  // The config's own problems are reported once, as load problems (listRuleTestCases).
  if (compiled.problems.length) return { failures: compiled.problems.map((p) => `${where}: ${p.path}: ${p.message}`) };
  const bases = { ...set.fixtures, ...((rule.document.testBases as Record<string, Bag> | undefined) ?? {}) };
  let batches: unknown[][];
  try {
    batches = ((timeline.records as unknown[]) ?? []).map((item, recordIndex) => [materializeMessage(item, bases, `${where}.records[${recordIndex}]`)]);
  } catch (error) {
    return { failures: [(error as Error).message] };
  }
  const clock = options.clock ?? systemClock;
  const engine = createEngine({ detections: compiled.detections, state: new MemoryStateStore({ clock }), logger: silentLogger, clock });
  try {
    return { alerts: await (options.driver ?? defaultDriver)({ batches, engine, inventorySeed: timeline.inventory, clock }) };
  } catch (error) {
    return { failures: [`${where}: the pipeline failed: ${(error as Error).stack ?? String(error)}`] };
  }
}

// ---------------------------------------------------------------------------------------------
// Records

function materializeMessage(item: unknown, bases: Record<string, Bag>, where: string): unknown {
  const record = item as Bag;
  if (record && Array.isArray(record.records)) {
    return { ...record, records: (record.records as unknown[]).map((inner, i) => materializeRecord(inner, bases, `${where}.records[${i}]`)) };
  }
  return { records: [materializeRecord(item, bases, where)] };
}

function materializeRecord(item: unknown, bases: Record<string, Bag>, where: string): unknown {
  const record = item as Bag;
  if (!record || typeof record !== 'object' || record.base === undefined) return item;
  const base = bases[record.base as string];
  if (!base) throw new Error(`${where}: unknown test base ${JSON.stringify(record.base)}; known: ${Object.keys(bases).sort().join(', ') || '(none)'}`);
  const copy = structuredClone(base);
  for (const [path, value] of Object.entries((record.set as Bag) ?? {})) setPath(copy, path, structuredClone(value), where);
  for (const path of (record.unset as string[]) ?? []) unsetPath(copy, path);
  return copy;
}

function setPath(target: Bag, path: string, value: unknown, where: string): void {
  const segments = path.split('.');
  let current: Bag | unknown[] = target;
  for (let i = 0; i < segments.length - 1; i++) {
    const segment = segments[i];
    const nextIsIndex = /^\d+$/.test(segments[i + 1]);
    const container = current as Bag;
    let next = container[segment];
    if (next === undefined || next === null) {
      next = nextIsIndex ? [] : {};
      container[segment] = next;
    } else if (typeof next !== 'object') {
      throw new Error(`${where}: set ${JSON.stringify(path)}: ${segments.slice(0, i + 1).join('.')} is not an object or list`);
    }
    current = next as Bag;
  }
  (current as Bag)[segments[segments.length - 1]] = value;
}

function unsetPath(target: Bag, path: string): void {
  const segments = path.split('.');
  let current: unknown = target;
  for (let i = 0; i < segments.length - 1; i++) {
    current = (current as Bag | undefined)?.[segments[i]];
    if (current === undefined || current === null || typeof current !== 'object') return;
  }
  const last = segments[segments.length - 1];
  if (Array.isArray(current) && /^\d+$/.test(last)) current.splice(Number(last), 1);
  else delete (current as Bag)[last];
}

// ---------------------------------------------------------------------------------------------
// Expectations

function looseEqual(expected: unknown, actual: unknown): boolean {
  if (typeof expected === 'string' && typeof actual === 'string') return expected.toLowerCase() === actual.toLowerCase();
  if (typeof expected === 'number' && typeof actual === 'string') return String(expected) === actual;
  // A scalar expectation matches a one-element list (an array field with one value).
  if (!Array.isArray(expected) && Array.isArray(actual) && actual.length === 1 && (expected === null || typeof expected !== 'object')) return looseEqual(expected, actual[0]);
  if (Array.isArray(expected)) {
    // Lists compare as sets: order of scopes or ids is not part of a detection's meaning.
    if (!Array.isArray(actual) || expected.length !== actual.length) return false;
    return expected.every((item) => actual.some((other) => looseEqual(item, other)));
  }
  if (expected && typeof expected === 'object') {
    if (!actual || typeof actual !== 'object') return false;
    return Object.entries(expected as Bag).every(([key, value]) => looseEqual(value, (actual as Bag)[key]));
  }
  return expected === actual;
}

function describeAlert(alert: Alert): string {
  return `${alert.detectionId} ${alert.severity} "${alert.title}" dedupKey=${alert.dedupKey} entities=${alert.entities.map((e) => `${e.type}:${e.id}`).join(',')}`;
}

function alertMismatches(expected: Bag, alert: Alert, plan: ResponsePlan | undefined): string[] {
  const problems: string[] = [];
  for (const field of ['severity', 'title', 'dedupKey'] as const) {
    if (expected[field] !== undefined && expected[field] !== alert[field]) problems.push(`${field} ${JSON.stringify(alert[field])} ≠ expected ${JSON.stringify(expected[field])}`);
  }
  for (const entity of (expected.entities as Bag[] | undefined) ?? []) {
    if (!alert.entities.some((actual: AlertEntity) => looseEqual(entity, actual))) problems.push(`no entity matches ${JSON.stringify(entity)}`);
  }
  for (const [key, value] of Object.entries((expected.details as Bag | undefined) ?? {})) {
    if (!looseEqual(value, alert.details?.[key])) problems.push(`details.${key} ${JSON.stringify(alert.details?.[key])} ≠ expected ${JSON.stringify(value)}`);
  }
  for (const id of (expected.evidence as string[] | undefined) ?? []) if (!alert.evidence.includes(id)) problems.push(`evidence lacks ${id}`);
  if (expected.techniques !== undefined && !looseEqual(expected.techniques, alert.techniques)) problems.push(`techniques ${JSON.stringify(alert.techniques)} ≠ expected ${JSON.stringify(expected.techniques)}`);
  for (const action of (expected.actions as Bag[] | undefined) ?? []) {
    const planned = (plan?.actions ?? []).map((a) => ({ action: a.action, targetId: a.targetValue, keyId: a.keyIdValue, mode: plan?.mode }));
    const taken = alert.actions.map((a) => ({ action: a.action, targetId: a.targetId, mode: a.mode }));
    if (![...planned, ...taken].some((candidate) => looseEqual(action, candidate))) problems.push(`no planned action matches ${JSON.stringify(action)}`);
  }
  return problems;
}

export function checkExpectations(ruleId: string, expect: Bag, alerts: readonly Alert[]): string[] {
  const failures: string[] = [];
  const own = alerts.filter((alert) => alert.detectionId === ruleId);
  const listing = () => (alerts.length ? `\n      got: ${alerts.map(describeAlert).join('\n           ')}` : '');
  if (own.length !== expect.count) failures.push(`expected ${String(expect.count)} alert(s) of ${ruleId}, got ${own.length}${listing()}`);
  const used = new Set<Alert>();
  ((expect.alerts as Bag[] | undefined) ?? []).forEach((expected, index) => {
    const detectionId = (expected.detectionId as string | undefined) ?? ruleId;
    const pool = alerts.filter((alert) => alert.detectionId === detectionId && !used.has(alert));
    let closest: string[] | undefined;
    for (const alert of pool) {
      const problems = alertMismatches(expected, alert, getResponsePlan(alert));
      if (problems.length === 0) {
        used.add(alert);
        closest = undefined;
        return;
      }
      if (!closest || problems.length < closest.length) closest = problems;
    }
    failures.push(`expected alert #${index + 1} (${detectionId}) not found${closest ? `; closest: ${closest.join('; ')}` : ` (no unmatched ${detectionId} alert)`}${listing()}`);
  });
  return failures;
}

/** Readable pass/fail per rule and case, for `agentwatch test`. */
export function formatRuleTestReport(report: RuleTestReport): string {
  const lines: string[] = [];
  for (const problem of report.loadProblems) lines.push(`LOAD ${problem.file}${problem.line !== undefined ? `:${problem.line}` : ''} at ${problem.path}: ${problem.message}`);
  let currentRule = '';
  for (const result of report.results) {
    if (result.ruleId !== currentRule) {
      currentRule = result.ruleId;
      const ruleResults = report.results.filter((r) => r.ruleId === currentRule);
      lines.push(`${ruleResults.every((r) => r.passed) ? 'PASS' : 'FAIL'} ${currentRule} (${ruleResults.filter((r) => r.passed).length}/${ruleResults.length})`);
    }
    lines.push(`  ${result.passed ? 'ok  ' : 'FAIL'} ${result.name}`);
    for (const failure of result.failures) lines.push(`       ${failure}`);
  }
  for (const id of report.untested) lines.push(`WARN ${id}: no tests`);
  lines.push(`${report.passed} passed, ${report.failed} failed${report.loadProblems.length ? `, ${report.loadProblems.length} load problem(s)` : ''}`);
  return lines.join('\n') + '\n';
}
