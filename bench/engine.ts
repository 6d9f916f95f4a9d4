/**
 * Engine bench (`npm run bench -- engine`):
 * 1. The full path decode → validate → normalize → resolve → evaluate with every shipped detection
 *    (`detections/`) and in-memory state, on the shared generated stream, next to the JSON.parse
 *    floor measured in the same run.
 * 2. The stateless subset of the same rules (no `stateful`, no memories) on pre-normalized events,
 *    side by side with json-rules-engine driven the way its README shows (one Engine, rules added
 *    once, `engine.run(facts)` per event, custom operators for the language's modifiers, facts read
 *    with `path`, inventory look-ups as a dynamic fact). Both engines' matches are checked equal,
 *    per detection.
 * Figures are printed; nothing here asserts on time.
 */
import { join } from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { Engine as RulesEngine, type NestedCondition, type TopLevelCondition } from 'json-rules-engine';
import { ingestBatch } from '../src/ingest';
import { Inventory, observeAndResolve } from '../src/inventory';
import type { AgentEvent } from '../src/normalize/types';
import { createEngine, loadDetections, DEFAULT_LISTS, type CompiledDetection } from '../src/engine';
import { parseCondition, type ConditionNode } from '../src/engine/condition';
import { compileBaseGetter } from '../src/engine/fields';
import { parseIp } from '../src/engine/operators';
import { fold } from '../src/engine/text';
import { MemoryStateStore } from '../src/state/memoryStore';
import type { InventoryView } from '../src/ports';
import { BODIES_PER_BATCH, countRecords, generateEntraBodies, type BenchContext, type BenchSection } from './ingest';

function rate(records: number, ms: number): string {
  return `${Math.round(records / (ms / 1000)).toLocaleString('en-US')} records/s`;
}

function repoRoot(): string {
  // Compiled to dist/bench/engine.js, or run from bench/engine.ts: detections/ sits at the repo root.
  return __dirname.includes(`${join('dist', 'bench')}`) ? join(__dirname, '..', '..') : join(__dirname, '..');
}

interface PipelineRun {
  ms: number;
  events: number;
  alerts: number;
  /** Time inside each stage (garbage collection included where it struck) and in GC pauses overall. */
  ingestMs: number;
  resolveMs: number;
  evaluateMs: number;
  gcMs: number;
}

/** The full pipeline on fresh state; returns elapsed ms, events, alerts and where the time went. */
async function fullPipeline(bodies: readonly string[], detections: CompiledDetection[]): Promise<PipelineRun> {
  const inventory = new Inventory();
  const engine = createEngine({ detections, state: new MemoryStateStore() });
  let gcMs = 0;
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs += entry.duration;
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  let events = 0;
  let alerts = 0;
  let ingestMs = 0;
  let resolveMs = 0;
  let evaluateMs = 0;
  const t0 = performance.now();
  for (let i = 0; i < bodies.length; i += BODIES_PER_BATCH) {
    const i0 = performance.now();
    const batch = ingestBatch(bodies.slice(i, i + BODIES_PER_BATCH)).events;
    batch.sort((a, b) => a.timeMs - b.timeMs);
    const r0 = performance.now();
    observeAndResolve(inventory, batch);
    const e0 = performance.now();
    alerts += (await engine.evaluate(batch, inventory)).length;
    const e1 = performance.now();
    ingestMs += r0 - i0;
    resolveMs += e0 - r0;
    evaluateMs += e1 - e0;
    events += batch.length;
  }
  const ms = performance.now() - t0;
  // GC entries are delivered asynchronously: let the last ones arrive before reading the sum.
  await new Promise((resolve) => setTimeout(resolve, 10));
  gcObserver.disconnect();
  return { ms, events, alerts, ingestMs, resolveMs, evaluateMs, gcMs };
}

// ---------------------------------------------------------------------------------------------
// json-rules-engine translation of the stateless subset

/** Containers that are arrays in `AgentEvent`: a JSONPath needs `[*]` after them. */
const ARRAY_CONTAINERS = new Set(['audit.targets', 'audit.credentialsAdded', 'audit.credentialsRemoved']);

function jsonPathOf(path: string): string {
  const segments = path.split('.');
  let out = '$';
  for (let i = 0; i < segments.length; i++) {
    out += `.${segments[i]}`;
    if (ARRAY_CONTAINERS.has(segments.slice(0, i + 1).join('.')) && i < segments.length - 1) out += '[*]';
  }
  return out;
}

type Scalar = string | number | boolean;
type RuleValue = { values: Scalar[]; cased: boolean } | { exists: boolean };

function list(value: unknown): unknown[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]).filter((v) => v !== undefined && v !== null);
}

function text(value: unknown, cased: boolean): string | undefined {
  if (typeof value === 'string') return cased ? value : fold(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

function number(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value))) return Number(value);
  return undefined;
}

/** The custom operators a json-rules-engine user would write for the language's modifiers. */
const COMPARE: Record<string, (fact: unknown, rule: unknown, cased: boolean) => boolean> = {
  equals: (fact, rule, cased) => {
    const a = text(fact, cased);
    if (a !== undefined && a === text(rule, cased)) return true;
    const x = number(fact);
    return x !== undefined && x === number(rule);
  },
  contains: (fact, rule, cased) => !!text(fact, cased)?.includes(text(rule, cased) ?? '\u0000'),
  startswith: (fact, rule, cased) => !!text(fact, cased)?.startsWith(text(rule, cased) ?? '\u0000'),
  endswith: (fact, rule, cased) => !!text(fact, cased)?.endsWith(text(rule, cased) ?? '\u0000'),
  regex: (fact, rule, cased) => typeof fact === 'string' && new RegExp(String(rule), cased ? 'u' : 'iu').test(fact),
  gt: (fact, rule) => (number(fact) ?? NaN) > (number(rule) ?? NaN),
  gte: (fact, rule) => (number(fact) ?? NaN) >= (number(rule) ?? NaN),
  lt: (fact, rule) => (number(fact) ?? NaN) < (number(rule) ?? NaN),
  lte: (fact, rule) => (number(fact) ?? NaN) <= (number(rule) ?? NaN),
  cidr: (fact, rule) => {
    if (typeof fact !== 'string') return false;
    const ip = parseIp(fact);
    const [range, bits] = String(rule).split('/');
    const network = parseIp(range);
    if (!ip || !network || ip.v6 !== network.v6) return false;
    const width = ip.v6 ? 128 : 32;
    const shift = BigInt(width - Number(bits ?? width));
    return ip.value >> shift === network.value >> shift;
  },
};

function addOperators(engine: RulesEngine): void {
  for (const [name, compare] of Object.entries(COMPARE)) {
    for (const all of [false, true]) {
      engine.addOperator(`aw_${name}${all ? '_all' : ''}`, (factValue: unknown, ruleValue: unknown) => {
        const facts = list(factValue);
        if (facts.length === 0) return false;
        const spec = ruleValue as { values?: Scalar[]; cased?: boolean };
        const values = spec && typeof spec === 'object' && Array.isArray(spec.values) ? spec.values : list(ruleValue);
        if (values.length === 0) return false;
        const cased = !!spec?.cased;
        const one = (fact: unknown) => values.some((value) => compare(fact, value, cased));
        return all ? facts.every(one) : facts.some(one);
      });
    }
  }
  engine.addOperator('aw_exists', (factValue: unknown, ruleValue: unknown): boolean => (list(factValue).length > 0) === (ruleValue as { exists: boolean }).exists);
}

/** Inventory look-ups as one dynamic fact, computed per event the json-rules-engine way. */
function addLookupFact(engine: RulesEngine, inventory: () => InventoryView): void {
  const getters = new Map<string, (event: AgentEvent) => unknown>();
  engine.addFact('lookup', async (params: Record<string, unknown>, almanac) => {
    const event = await almanac.factValue<AgentEvent>('event');
    const path = String(params.path);
    let getter = getters.get(path);
    if (!getter) getters.set(path, (getter = compileBaseGetter(path)));
    const view = inventory();
    const out: unknown[] = [];
    for (const value of list(getter(event))) {
      const id = typeof value === 'string' ? value : ((value as { id?: string }).id ?? (value as { appId?: string }).appId);
      const entity = id ? view.lookup(id) : undefined;
      switch (params.lookup) {
        case 'kind': if (entity) out.push(entity.kind); break;
        case 'name': if (entity?.name) out.push(entity.name); break;
        case 'parent': if (entity?.parentId) out.push(entity.parentId); break;
        case 'owners': out.push(...(entity?.owners ?? [])); break;
        case 'live': if (entity) out.push(entity.live); break;
        case 'createdBy': if (entity?.createdByAppId) out.push(entity.createdByAppId); break;
        case 'liveChildren': out.push(view.children(entity?.appId ?? id ?? '').filter((c) => c.live).length); break;
        case 'firstParty': {
          const principal = typeof value === 'object' ? (value as { appId?: string; ownerTenantId?: string }) : {};
          out.push(view.isFirstParty({ appId: principal.appId ?? entity?.appId ?? id, ownerTenantId: principal.ownerTenantId ?? entity?.ownerTenantId }));
          break;
        }
      }
    }
    return out;
  });
}

function translateEntry(key: string, raw: unknown, detection: CompiledDetection): NestedCondition {
  const [fieldPath, ...modifiers] = key.split('|');
  const [base, lookup] = fieldPath.split('@');
  const resolve = (value: unknown): unknown => {
    if (typeof value !== 'string' || !value.startsWith('$')) return value;
    return value.startsWith('$lists.') ? DEFAULT_LISTS[value.slice(7)] : detection.parameters[value.slice(1)];
  };
  const value = resolve(raw);
  const operator = modifiers.find((m) => !['cased', 'all'].includes(m)) ?? 'equals';
  const fact = lookup ? { fact: 'lookup', params: { path: base, lookup } } : { fact: 'event', path: jsonPathOf(base) };
  if (operator === 'exists') return { ...fact, operator: 'aw_exists', value: { exists: value === true } satisfies RuleValue };
  const name = `aw_${operator === 'in' ? 'equals' : operator}${modifiers.includes('all') ? '_all' : ''}`;
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const other = String((value as { field: string }).field);
    const [otherBase, otherLookup] = other.split('@');
    return { ...fact, operator: name, value: otherLookup ? { fact: 'lookup', params: { path: otherBase, lookup: otherLookup } } : { fact: 'event', path: jsonPathOf(otherBase) } };
  }
  return { ...fact, operator: name, value: { values: list(value) as Scalar[], cased: modifiers.includes('cased') } satisfies RuleValue };
}

function translateCondition(node: ConditionNode, selections: Record<string, unknown>, detection: CompiledDetection): NestedCondition {
  switch (node.type) {
    case 'and':
      return { all: node.operands.map((operand) => translateCondition(operand, selections, detection)) };
    case 'or':
      return { any: node.operands.map((operand) => translateCondition(operand, selections, detection)) };
    case 'not':
      return { not: translateCondition(node.operand, selections, detection) };
    case 'ref': {
      const selection = selections[node.name];
      const maps = (Array.isArray(selection) ? selection : [selection]) as Record<string, unknown>[];
      const alternatives = maps.map((map): NestedCondition => ({ all: Object.entries(map).map(([key, value]) => translateEntry(key, value, detection)) }));
      return alternatives.length === 1 ? alternatives[0] : { any: alternatives };
    }
  }
}

function toTopLevel(condition: NestedCondition): TopLevelCondition {
  return 'all' in condition || 'any' in condition || 'not' in condition ? (condition as TopLevelCondition) : { all: [condition] };
}

/** Rules without state or memories: what a stateless rules engine can evaluate at all. */
function statelessSubset(detections: CompiledDetection[]): CompiledDetection[] {
  return detections.filter((d) => !d.stateful && d.memories.length === 0 && d.selections.every((s) => !s.memory));
}

async function preparedEvents(bodies: readonly string[]): Promise<{ batches: AgentEvent[][]; inventory: Inventory }> {
  const inventory = new Inventory();
  const batches: AgentEvent[][] = [];
  for (let i = 0; i < bodies.length; i += BODIES_PER_BATCH) {
    const events = ingestBatch(bodies.slice(i, i + BODIES_PER_BATCH)).events.sort((a, b) => a.timeMs - b.timeMs);
    observeAndResolve(inventory, events);
    batches.push(events);
  }
  return { batches, inventory };
}

/**
 * The shared stream holds no attack, so a stateless rule would never match and the comparison
 * would prove little: every third agent risk event becomes high and every fourth delegated grant
 * also grants Mail.Send (deterministic, so both engines see the same stream on every run).
 */
function withAttacks(bodies: readonly string[]): { bodies: string[]; salted: number } {
  let salted = 0;
  let riskSeen = 0;
  let grantSeen = 0;
  const out = bodies.map((body) => {
    const parsed = JSON.parse(body) as { records: { category?: string; operationName?: string; properties: Record<string, unknown> }[] };
    let changed = false;
    for (const record of parsed.records) {
      if (record.category === 'AgentRiskEvents' && riskSeen++ % 3 === 0) {
        record.properties.riskLevel = 'high';
        changed = true;
        salted++;
      } else if (record.operationName === 'Add delegated permission grant' && grantSeen++ % 4 === 0) {
        const targets = record.properties.targetResources as { modifiedProperties: { displayName: string; newValue: string }[] }[];
        const scope = targets[0]?.modifiedProperties.find((p) => p.displayName === 'DelegatedPermissionGrant.Scope');
        if (scope) {
          scope.newValue = '" Mail.Send User.Read"';
          changed = true;
          salted++;
        }
      }
    }
    return changed ? JSON.stringify(parsed) : body;
  });
  return { bodies: out, salted };
}

export async function runEngineBench({ records, log, gc }: BenchContext): Promise<void> {
  const detections = loadDetections([join(repoRoot(), 'detections')]);
  const { bodies, salted } = withAttacks(generateEntraBodies(records));
  const total = countRecords(bodies);
  log(`stream: ${total.toLocaleString('en-US')} records in ${bodies.length.toLocaleString('en-US')} bodies (${salted} salted with attacks); ${detections.length} detections loaded (${detections.filter((d) => d.stateful).length} stateful)`);

  // -- 1. full pipeline with every detection ------------------------------------------------
  // Floor and pipeline interleaved, best of five each: this machine's speed drifts by a third from
  // minute to minute, and a change hits both alike within a round.
  let parsed = 0;
  let floorMs = Infinity;
  let best: PipelineRun = { ms: Infinity, events: 0, alerts: 0, ingestMs: 0, resolveMs: 0, evaluateMs: 0, gcMs: 0 };
  for (let round = 0; round < 5; round++) {
    gc();
    const t0 = performance.now();
    for (const body of bodies) parsed += (JSON.parse(body) as { records: unknown[] }).records.length;
    floorMs = Math.min(floorMs, performance.now() - t0);
    gc();
    const run = await fullPipeline(bodies, detections);
    if (run.ms < best.ms) best = run;
  }
  log(`JSON.parse floor:                                     ${rate(total, floorMs)}`);
  log(`decode → normalize → resolve → evaluate (all rules):  ${rate(total, best.ms)}  (${(best.ms / floorMs).toFixed(2)}x the floor; targets ≥ 50,000 records/s and ≤ 3x)`);
  log(`  of which evaluate:                                  ${Math.round((best.evaluateMs / best.ms) * 100)}% (${rate(total, best.evaluateMs)} on its own); ${best.events.toLocaleString('en-US')} events, ${best.alerts} alerts`);
  const share = (ms: number) => `${(ms / floorMs).toFixed(2)}x`;
  log(`  stages in floor units:                              ingest ${share(best.ingestMs)}, resolve ${share(best.resolveMs)}, evaluate ${share(best.evaluateMs)}; GC pauses ${Math.round((best.gcMs / best.ms) * 100)}% of the run`);

  // -- 2. stateless subset: this engine vs json-rules-engine --------------------------------
  const subset = statelessSubset(detections);
  const { batches, inventory } = await preparedEvents(bodies);
  const eventCount = batches.reduce((sum, batch) => sum + batch.length, 0);

  const ours: Record<string, number> = {};
  let oursMs = Infinity;
  for (let round = 0; round < 3; round++) {
    gc();
    const engine = createEngine({ detections: subset, state: new MemoryStateStore() });
    const counts: Record<string, number> = {};
    const t0 = performance.now();
    for (const batch of batches) {
      const result = await engine.evaluateBatch(batch, inventory);
      for (const [id, count] of Object.entries(result.firingsByDetection)) counts[id] = (counts[id] ?? 0) + count;
    }
    oursMs = Math.min(oursMs, performance.now() - t0);
    Object.assign(ours, counts);
  }

  const rules = new RulesEngine([], { allowUndefinedFacts: true });
  addOperators(rules);
  addLookupFact(rules, () => inventory);
  for (const detection of subset) {
    const document = detection.document as { selections?: Record<string, unknown>; condition?: string };
    const selections = document.selections ?? {};
    const tree = parseCondition(String(document.condition), Object.keys(selections));
    rules.addRule({ name: detection.id, conditions: toTopLevel(translateCondition(tree, selections, detection)), event: { type: detection.id } });
  }
  const theirs: Record<string, number> = {};
  let theirsMs = Infinity;
  // One round: json-rules-engine is slow enough that a warm-up would double the section's time.
  for (let round = 0; round < 1; round++) {
    gc();
    const counts: Record<string, number> = {};
    const t0 = performance.now();
    for (const batch of batches) {
      for (const event of batch) {
        const { events } = await rules.run({ event });
        for (const fired of events) counts[fired.type] = (counts[fired.type] ?? 0) + 1;
      }
    }
    theirsMs = Math.min(theirsMs, performance.now() - t0);
    Object.assign(theirs, counts);
  }

  const ids = [...new Set([...Object.keys(ours), ...Object.keys(theirs)])].sort();
  const equal = ids.every((id) => ours[id] === theirs[id]);
  const matches = ids.map((id) => `${id} ${ours[id] ?? 0}${ours[id] === theirs[id] ? '' : `≠${theirs[id] ?? 0}`}`).join(', ');
  log(`stateless subset: ${subset.length} rules on ${eventCount.toLocaleString('en-US')} normalized events`);
  log(`  agentwatch engine:   ${rate(eventCount, oursMs).replace('records', 'events')}`);
  log(`  json-rules-engine:   ${rate(eventCount, theirsMs).replace('records', 'events')}  → agentwatch is ${(theirsMs / oursMs).toFixed(1)}x faster (target ≥ 20x)`);
  log(`  matches ${equal ? 'equal' : 'DIFFER'}: ${matches || 'none'}`);
  if (!equal) throw new Error('the two engines disagree on the stateless subset; see the matches above');
  if (parsed === 0) log('warning: nothing was parsed; the figures above are meaningless');
}

export const section: BenchSection = { name: 'engine', run: runEngineBench };
