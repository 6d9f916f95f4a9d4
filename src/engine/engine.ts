/**
 * The detection engine: evaluates normalized events against compiled detections, with state on
 * event time in a `StateStore`.
 *
 * One batch:
 * 1. Events are sorted by event time. Detections run in dependency levels, so a chain sees the
 *    alerts of the detections it names (raised, or folded by suppression) in the same batch.
 * 2. Per level, a planning pass evaluates the conditions that need no state and lists the state
 *    records the matching events touch (stateful keys, memories); those are loaded concurrently.
 * 3. An apply pass walks the work in event-time order: conditions that read memories, memory
 *    updates, and the stateful kinds. Firings get a deterministic alert id at once.
 * 4. Absences whose window closed under the watermark fire.
 * 5. Alerts: a create-only "raised" marker per alert id is committed first (a marker that exists
 *    means the alert was raised before: redelivery, or another instance); then the state records
 *    are committed in one `commit`. A conflict re-reads what was written and re-runs the batch:
 *    events already counted are duplicates for their keys, so nothing counts or alerts twice.
 */
import type { Alert } from '../alerts/types';
import { StateConflictError } from '../errors';
import type { AgentEvent } from '../normalize/types';
import { silentLogger, stateKeyId, systemClock, type Clock, type DetectionEngine, type InventoryView, type Logger, type StateKey, type StateStore, type StateWrite } from '../ports';
import type { ResponsePlan } from '../response/types';
import { compositeKeys } from './compile';
import type { CompiledCondition } from './condition';
import { captureFields, keyText, sameCaptures, valuesOf, type CapturedValues } from './fields';
import { shortHash } from './hash';
import { newKeyState, withinLateness, type FireInfo, type KeyState, type KindOutcome } from './kinds/keyState';
import { applyAbsence, applySequence, takeDueAbsence, type StepView } from './kinds/sequence';
import { applyFirstSeen } from './kinds/firstSeen';
import { applyBaseline, applyDistinctCount, applyThreshold } from './kinds/window';
import { alertIdentity, buildAlert, type AlertIdentity, type BuiltAlert } from './output';
import { SlotCache, StateCache, slotKeyTable, type SlotKeyTable, keyStateKey, markerStateKey, memoryStateKey, pendingPartition, pendingStateKey, slotKeyOf, type Slot } from './stateSlots';
import { fold } from './text';
import type { CompiledDetection, CompiledStep, DispatchValues, EngineBatchResult, EngineOptions, EngineStats, MemoryAccess, RuleEvalContext } from './types';

export const DEFAULT_LATENESS_MS = 15 * 60_000;
export const DEFAULT_MARKER_TTL_MS = 7 * 86_400_000;
const HOUR_MS = 3_600_000;
/** How often an absence detection lists its pending index even when no deadline is known to be due (other instances' pendings). */
const ABSENCE_LIST_INTERVAL_MS = 60_000;

interface RuleRuntime {
  detection: CompiledDetection;
  level: number;
  /** The rule reads memories in its conditions: evaluate in the apply pass, after the load. */
  deferred: boolean;
  stepViews: StepView[];
  newValueTtlMs: number[];
  retentionMs: number;
  /** Slot keys of the rule's stateful key texts. */
  stateKeys: SlotKeyTable;
  /** Slot keys and ttl of each memory the rule sets or reads, by memory name. */
  memoryKeys: Map<string, { keys: SlotKeyTable; ttlMs: number }>;
  /** The slot-key tables of `detection.memories`, index-aligned. */
  memoryTables: SlotKeyTable[];
}

/** Which parts of a rule an event satisfies. */
interface RuleMatch {
  main: boolean;
  /** Bit mask of event steps whose condition holds (alert steps are added for alert events). */
  steps: number;
  cancel: boolean;
  sets: number;
  forgets: number;
}

interface WorkItem {
  event: AgentEvent;
  rule: RuleRuntime;
  /** Known in the planning pass; otherwise (memory-reading conditions) evaluated in the apply pass. */
  match: RuleMatch | undefined;
  /**
   * The planning pass listed these records, so the apply pass neither rebuilds the keys nor looks the
   * slots up again: the groupBy key texts and their slots (window kinds, firstSeen), and per memory
   * index the slots of the memory records the event sets or forgets.
   */
  groupKeys: string[] | undefined;
  groupSlots: Slot[] | undefined;
  memorySlots: (Slot[] | undefined)[] | undefined;
}

function workItem(event: AgentEvent, rule: RuleRuntime, match: RuleMatch | undefined): WorkItem {
  return { event, rule, match, groupKeys: undefined, groupSlots: undefined, memorySlots: undefined };
}

interface Firing {
  rule: RuleRuntime;
  event: AgentEvent;
  fire: FireInfo;
  triggerId: string;
  identity: AlertIdentity;
  /**
   * Built when it fired, so severity and response conditions see the memories as they were then.
   * Not built for a firing of an alert id this attempt already fired (suppression folds it) when no
   * chain consumes the detection's alerts.
   */
  built: BuiltAlert | undefined;
}

/** An event that would have matched had a memory held: re-evaluated when the memory is set late. */
type MemoryWaiter = [number, string, Record<string, unknown>];

/** A redelivered event that once triggered an alert of a stateful key: the alert may need re-emitting. */
interface Refire {
  detectionId: string;
  alertId: string;
  dedupKey: string;
}

interface MemoryValue {
  /** Events waiting for this memory (time, id hash, event without raw), within the lateness bound. */
  w?: MemoryWaiter[];
  /** Earliest setting time still in force. */
  s?: number;
  /** Latest setting time. */
  l?: number;
  /** Latest forgetting time. */
  c?: number;
  /** Id of the event of the latest setting. */
  id?: string;
  /** Values of the latest setting event that the output reads (`memories.<name>.<path>`). */
  o?: CapturedValues;
}

interface AlertEventFields {
  alert: { detectionId: string; id: string; severity: string; dedupKey: string; evidence: string[] };
}

/** Evaluates a compiled condition for one event with per-selection memoization, allocation-free. */
class ConditionRunner {
  memo = new Int8Array(32);
  #detection!: CompiledDetection;
  #event!: AgentEvent;
  #ctx!: RuleEvalContext;
  readonly test = (index: number): boolean => {
    let known = this.memo[index];
    if (known === 0) {
      known = this.#detection.selections[index].test(this.#event, this.#ctx) ? 1 : 2;
      this.memo[index] = known;
    }
    return known === 1;
  };

  reset(detection: CompiledDetection, event: AgentEvent, ctx: RuleEvalContext): void {
    const count = detection.selections.length;
    if (count > this.memo.length) this.memo = new Int8Array(count * 2);
    else this.memo.fill(0, 0, count);
    this.#detection = detection;
    this.#event = event;
    this.#ctx = ctx;
  }

  run(condition: CompiledCondition): boolean {
    return condition(this.test);
  }
}

function stepBit(index: number): number {
  return 1 << index;
}

function retentionOf(detection: CompiledDetection, latenessMs: number): number {
  const stateful = detection.stateful;
  if (!stateful) return 0;
  const base = latenessMs + HOUR_MS;
  switch (stateful.type) {
    case 'threshold':
      return stateful.windowMs + base;
    case 'distinctCount':
      return (stateful.newOnly ? Math.max(stateful.memoryTtlMs, stateful.windowMs) : stateful.windowMs) + base;
    case 'firstSeen':
      return stateful.ttlMs + base;
    case 'baseline':
      return stateful.historyMs + 2 * stateful.windowMs + base;
    case 'sequence':
      return Math.max(stateful.windowMs, ...stateful.steps.filter((s) => s.newValue).map((s) => s.newValueTtlMs)) + base;
    case 'absence':
      return stateful.windowMs + base + 86_400_000;
  }
}

/** Dependency level of each detection: 0 without `alerts:` steps, else 1 + the deepest dependency. */
function levelsOf(detections: readonly CompiledDetection[]): Map<string, number> {
  const byId = new Map(detections.map((d) => [d.id, d]));
  const levels = new Map<string, number>();
  const levelOf = (id: string, depth = 0): number => {
    const known = levels.get(id);
    if (known !== undefined) return known;
    if (depth > detections.length) return 0; // cycles are refused at load; stay finite anyway
    const detection = byId.get(id);
    const level = detection && detection.dependsOn.length ? 1 + Math.max(...detection.dependsOn.map((dep) => (byId.has(dep) ? levelOf(dep, depth + 1) : -1))) : 0;
    levels.set(id, level);
    return level;
  };
  for (const detection of detections) levelOf(detection.id);
  return levels;
}

export class Engine implements DetectionEngine {
  readonly #rules: RuleRuntime[];
  readonly #levels: RuleRuntime[][];
  readonly #dependents = new Map<string, RuleRuntime[]>();
  readonly #byId = new Map<string, RuleRuntime>();
  readonly #state: StateStore;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #latenessMs: number;
  readonly #markerTtlMs: number;
  readonly #maxRetries: number;
  readonly #runner = new ConditionRunner();
  /** Candidate rules per kind, category, flow and operation, split by dependency level. */
  readonly #dispatch = new Map<string | undefined, Map<string | undefined, Map<string | undefined, Map<string | undefined, RuleRuntime[][]>>>>();
  readonly #stats: EngineStats = { events: 0, alertsRaised: 0, alertsFolded: 0, duplicates: 0, tooLate: {}, stateOverflow: {}, conflictsRetried: 0, alertsReemitted: 0, alertsByDetection: {}, exceptionHits: {} };
  /** Whether this engine's pipeline acknowledges delivered alerts (it called `acknowledge`, or was told so). */
  #acknowledges: boolean;
  /** Alert ids this instance returned from `evaluate` (bounded): a pipeline that never acknowledges got them. */
  readonly #returned = new Set<string>();
  /** Newest event time this engine has seen: the absence watermark hangs off it. */
  #newestEventMs = -Infinity;
  readonly #absenceNextDue = new Map<string, number>();
  /** Earliest deadline of pendings added since the last sweep (not yet in the store when it listed). */
  readonly #absenceAddedDue = new Map<string, number>();
  readonly #absenceListedAt = new Map<string, number>();
  readonly #stateCache: StateCache | undefined;

  constructor(options: EngineOptions) {
    this.#state = options.state;
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? systemClock;
    this.#latenessMs = options.latenessMs ?? DEFAULT_LATENESS_MS;
    this.#markerTtlMs = options.markerTtlMs ?? DEFAULT_MARKER_TTL_MS;
    this.#maxRetries = options.maxConflictRetries ?? 5;
    this.#stateCache = options.stateCache === false ? undefined : new StateCache(() => this.#clock.now(), options.stateCache);
    this.#acknowledges = options.awaitAcknowledgement ?? false;
    const levels = levelsOf(options.detections);
    this.#rules = options.detections.map((detection) => {
      const stateful = detection.stateful;
      const steps = stateful && (stateful.type === 'sequence' || stateful.type === 'absence') ? stateful.steps : [];
      const memoryKeys = memoryKeyTables(detection);
      return {
        detection,
        level: levels.get(detection.id) ?? 0,
        deferred: detection.selections.some((selection) => selection.memory !== undefined),
        stepViews: steps.map((step) => ({ joins: step.joins.map((alternative) => alternative.map((eq) => ({ fieldPath: eq.fieldPath, step: eq.step, stepField: eq.stepField }))) })),
        newValueTtlMs: steps.map((step) => step.newValueTtlMs),
        retentionMs: retentionOf(detection, options.latenessMs ?? DEFAULT_LATENESS_MS),
        stateKeys: slotKeyTable((key) => keyStateKey(detection.id, key)),
        memoryKeys,
        memoryTables: detection.memories.map((memory) => memoryKeys.get(memory.name)!.keys),
      };
    });
    for (const rule of this.#rules) this.#byId.set(rule.detection.id, rule);
    const depth = Math.max(0, ...this.#rules.map((rule) => rule.level));
    this.#levels = Array.from({ length: depth + 1 }, (_, level) => this.#rules.filter((rule) => rule.level === level));
    for (const rule of this.#rules) {
      for (const dependency of rule.detection.dependsOn) this.#dependents.set(dependency, [...(this.#dependents.get(dependency) ?? []), rule]);
    }
  }

  /**
   * The sink accepted these alerts: their markers become final (and drop the copy of the alert),
   * so a redelivered batch folds them instead of re-emitting.
   */
  async acknowledge(alerts: Alert[]): Promise<void> {
    this.#acknowledges = true;
    if (alerts.length === 0) return;
    const now = this.#clock.now();
    const writes: StateWrite[] = [];
    const seen = new Set<string>();
    for (const alert of alerts) {
      if (seen.has(alert.id)) continue;
      seen.add(alert.id);
      const detection = this.#rules.find((rule) => rule.detection.id === alert.detectionId)?.detection;
      const marker: RaisedMarker = { alertId: alert.id, dedupKey: alert.dedupKey, raisedAt: alert.createdTime, acknowledged: true };
      writes.push({ op: 'put', key: markerStateKey(alert.detectionId, alert.dedupKey, alert.id), value: marker, ifMatch: '*', expiresAt: now + Math.max(this.#markerTtlMs, (detection?.output.suppressMs ?? 0) + this.#latenessMs) });
    }
    await this.#state.commit(writes);
    for (const write of writes) this.#stateCache?.forget(stateKeyId(write.key));
  }
  /** Refires seen by the current attempt (reset per attempt). */
  #refires: Refire[] = [];

  get detections(): CompiledDetection[] {
    return this.#rules.map((rule) => rule.detection);
  }

  stats(): EngineStats {
    return structuredClone(this.#stats);
  }

  exceptionHits(): Record<string, number> {
    return { ...this.#stats.exceptionHits };
  }

  async evaluate(events: AgentEvent[], inventory: InventoryView): Promise<Alert[]> {
    return (await this.evaluateBatch(events, inventory)).alerts;
  }

  async evaluateBatch(events: readonly AgentEvent[], inventory: InventoryView): Promise<EngineBatchResult> {
    this.#stats.events += events.length;
    const sorted = events.filter((event) => Number.isFinite(event.timeMs)).sort((a, b) => a.timeMs - b.timeMs);
    if (sorted.length < events.length) this.#logger.log('warn', 'events without a usable event time were not evaluated', { count: events.length - sorted.length });
    for (const event of sorted) if (event.timeMs > this.#newestEventMs) this.#newestEventMs = event.timeMs;

    const cache = new SlotCache(this.#state, this.#stateCache);
    try {
      return await this.#evaluateSorted(sorted, inventory, cache);
    } catch (error) {
      cache.forgetTouched();
      throw error;
    }
  }

  async #evaluateSorted(sorted: readonly AgentEvent[], inventory: InventoryView, cache: SlotCache): Promise<EngineBatchResult> {
    const raised = new Map<string, { alert: Alert; plan?: ResponsePlan }>();
    const carriedAlertEvents = new Map<string, AgentEvent>();
    let tooLate = 0;
    let firings: Firing[] = [];
    for (let attempt = 0; ; attempt++) {
      const run = await this.#runAttempt(sorted, inventory, cache, carriedAlertEvents);
      tooLate += run.tooLate;
      if (run.firings.length > firings.length) firings = run.firings;
      await this.#raiseAlerts(run.firings, cache, raised);
      await this.#reemitRefires(this.#refires, cache, raised);
      const stateSlots = cache.dirtySlots((slot) => !slot.key.partition.startsWith('a|'));
      const { conflictedKeys } = await cache.commit(stateSlots);
      if (conflictedKeys.length === 0) break;
      this.#stats.conflictsRetried++;
      if (attempt + 1 >= this.#maxRetries) {
        // Give up on this delivery: Event Hubs will redeliver, and redelivery is harmless.
        throw new StateConflictError(conflictedKeys);
      }
      this.#logger.log('info', 'state changed underneath this batch; re-reading and re-applying', { keys: conflictedKeys.length, attempt: attempt + 1 });
    }
    if (tooLate) this.#logger.log('warn', 'events arrived later than the lateness bound behind their key and were not counted', { count: tooLate, latenessMs: this.#latenessMs });
    if (this.#exceptionHits.size) {
      for (const [key, count] of this.#exceptionHits) this.#stats.exceptionHits[key] = (this.#stats.exceptionHits[key] ?? 0) + count;
      this.#logger.log('info', 'config exceptions kept events from triggering detections', { hits: Object.fromEntries(this.#exceptionHits) });
    }
    const alerts = [...raised.values()].map((entry) => entry.alert);
    for (const alert of alerts) this.#returned.add(alert.id);
    if (this.#returned.size > MAX_RETURNED_IDS) this.#returned.clear();
    const responsePlans = new Map<string, ResponsePlan>();
    for (const entry of raised.values()) {
      if (entry.plan) {
        responsePlans.set(entry.alert.id, entry.plan);
        RESPONSE_PLANS.set(entry.alert, entry.plan);
      }
    }
    const firingsByDetection: Record<string, number> = {};
    for (const firing of firings) firingsByDetection[firing.rule.detection.id] = (firingsByDetection[firing.rule.detection.id] ?? 0) + 1;
    return { alerts, responsePlans, firings: firings.length, firingsByDetection, tooLate };
  }

  // -------------------------------------------------------------------------------------------
  // One attempt over the batch

  async #runAttempt(
    events: readonly AgentEvent[],
    inventory: InventoryView,
    cache: SlotCache,
    carriedAlertEvents: Map<string, AgentEvent>,
  ): Promise<{ firings: Firing[]; tooLate: number }> {
    const memory = this.#memoryAccess(cache);
    const ctx: RuleEvalContext = { inventory, memory };
    this.#refires = [];
    this.#firedAlertIds = new Set();
    this.#exceptionHits.clear();
    const firings: Firing[] = [];
    const alertEvents: AgentEvent[] = [...carriedAlertEvents.values()];
    let tooLate = 0;
    // Each event's candidates once per attempt (already split by level), not once per level.
    const candidates = new Array<RuleRuntime[][]>(events.length);
    for (let index = 0; index < events.length; index++) candidates[index] = this.#candidates(events[index]);
    for (let levelIndex = 0; levelIndex < this.#levels.length; levelIndex++) {
      const level = this.#levels[levelIndex];
      if (level.length === 0) continue;
      const inLevel = new Set(level);
      // Alert events of lower levels, routed to the chains that name them.
      const routed: WorkItem[] = [];
      for (const alertEvent of alertEvents) {
        const detectionId = (alertEvent as unknown as AlertEventFields).alert.detectionId;
        for (const rule of this.#dependents.get(detectionId) ?? []) if (inLevel.has(rule)) routed.push(workItem(alertEvent, rule, undefined));
      }
      const work: WorkItem[] = [];
      for (let index = 0; index < events.length; index++) {
        const event = events[index];
        for (const rule of candidates[index][levelIndex]) {
          const item = this.#plan(rule, event, ctx, cache);
          if (item) work.push(item);
        }
      }
      for (const item of routed) this.#requestKeys(item, ctx, cache, undefined, true);
      if (routed.length) {
        work.push(...routed);
        work.sort((a, b) => a.event.timeMs - b.event.timeMs);
      }
      await cache.loadRequested();
      const fired: Firing[] = [];
      for (const item of work) {
        fired.length = 0;
        tooLate += this.#apply(item, ctx, cache, fired);
        for (const firing of fired) {
          firings.push(firing);
          if (this.#dependents.has(firing.rule.detection.id)) {
            const alertEvent = this.#alertEvent(firing);
            if (!carriedAlertEvents.has(alertEvent.id)) {
              carriedAlertEvents.set(alertEvent.id, alertEvent);
              alertEvents.push(alertEvent);
            }
          }
        }
      }
    }
    firings.push(...(await this.#sweepAbsences(ctx, cache)));
    return { firings, tooLate };
  }

  /** Rules whose prefilter admits the event's kind, category, flow and operation, per level (cached per combination). */
  #candidates(event: AgentEvent): RuleRuntime[][] {
    // A missing field is its own key (undefined): no entry on it can hold, unlike on an empty value.
    const kind = event.kind ?? undefined;
    const category = event.category ?? undefined;
    const flow = event.flow ?? undefined;
    const operation = event.audit?.operation ?? undefined;
    let byCategory = this.#dispatch.get(kind);
    if (!byCategory) this.#dispatch.set(kind, (byCategory = new Map()));
    let byFlow = byCategory.get(category);
    if (!byFlow) byCategory.set(category, (byFlow = new Map()));
    let byOperation = byFlow.get(flow);
    if (!byOperation) byFlow.set(flow, (byOperation = new Map()));
    let byLevel = byOperation.get(operation);
    if (!byLevel) {
      const values: DispatchValues = { kind: foldPresent(kind), category: foldPresent(category), flow: foldPresent(flow), operation: foldPresent(operation) };
      const allows = (allowed: ReadonlySet<string> | undefined, value: string | undefined): boolean => !allowed || (value !== undefined && allowed.has(value));
      const rules = this.#rules.filter(
        ({ detection: { prefilter } }) =>
          allows(prefilter.kinds, values.kind) &&
          allows(prefilter.categories, values.category) &&
          allows(prefilter.flows, values.flow) &&
          allows(prefilter.operations, values.operation) &&
          prefilter.admits(values),
      );
      byLevel = this.#levels.map((_, level) => rules.filter((rule) => rule.level === level));
      byOperation.set(operation, byLevel);
    }
    return byLevel;
  }

  /**
   * What of the rule the event satisfies; `undefined` when nothing (no allocation on that, the
   * common, path). `countExceptions`: the planning pass counts what config exceptions kept away.
   */
  #match(rule: RuleRuntime, event: AgentEvent, ctx: RuleEvalContext, countExceptions = false): RuleMatch | undefined {
    const detection = rule.detection;
    const runner = this.#runner;
    runner.reset(detection, event, ctx);
    const main = detection.condition ? runner.run(detection.condition) : false;
    let steps = 0;
    let cancel = false;
    let sets = 0;
    let forgets = 0;
    const stateful = detection.stateful;
    if (stateful && (stateful.type === 'sequence' || stateful.type === 'absence')) {
      for (const step of stateful.steps) if (step.condition && runner.run(step.condition)) steps |= stepBit(step.index);
      if (stateful.type === 'sequence' && stateful.cancel) cancel = runner.run(stateful.cancel);
    }
    if (countExceptions && detection.exceptions) this.#countExceptionHit(detection, main, steps);
    const memories = detection.memories;
    for (let index = 0; index < memories.length; index++) {
      if (runner.run(memories[index].when)) sets |= stepBit(index);
      const forget = memories[index].forget;
      if (forget && runner.run(forget)) forgets |= stepBit(index);
    }
    if (!main && !steps && !cancel && !sets && !forgets) return undefined;
    return { main, steps, cancel, sets, forgets };
  }

  /** Exceptions kept in this attempt, by `<detectionId>/<exception>` (added to the stats when the batch commits). */
  #exceptionHits = new Map<string, number>();

  /** After `#match` (runner still on the event): did an exception keep a trigger of the rule from holding? */
  #countExceptionHit(detection: CompiledDetection, main: boolean, steps: number): void {
    const exceptions = detection.exceptions!;
    const runner = this.#runner;
    let kept = !main && exceptions.baseCondition !== undefined && runner.run(exceptions.baseCondition);
    for (let index = 0; !kept && index < exceptions.baseSteps.length; index++) {
      const base = exceptions.baseSteps[index];
      kept = base !== undefined && !(steps & stepBit(index)) && runner.run(base);
    }
    if (!kept) return;
    const hit = exceptions.entries.find((entry) => runner.test(entry.selection));
    if (!hit) return;
    const key = `${detection.id}/${hit.name}`;
    this.#exceptionHits.set(key, (this.#exceptionHits.get(key) ?? 0) + 1);
  }

  /** Planning pass: evaluate what needs no state; return work only when the event can affect the rule. */
  #plan(rule: RuleRuntime, event: AgentEvent, ctx: RuleEvalContext, cache: SlotCache): WorkItem | undefined {
    if (rule.deferred) {
      // With every memory assumed to hold, a condition that still fails can never match: skip the
      // event without loading anything (the common case for memory-reading rules).
      const optimistic = this.#match(rule, event, this.#optimisticContext(ctx), true);
      if (!optimistic) return undefined;
      if (!optimistic.main && !optimistic.steps && !optimistic.cancel) {
        // Only its memories change (their when/forget read no memory, so this match is exact).
        const item = workItem(event, rule, optimistic);
        this.#requestKeys(item, ctx, cache, optimistic, false);
        return item;
      }
      const item = workItem(event, rule, undefined);
      this.#requestKeys(item, ctx, cache, undefined, false);
      return item;
    }
    const match = this.#match(rule, event, ctx, true);
    if (!match) return undefined;
    const item = workItem(event, rule, match);
    this.#requestKeys(item, ctx, cache, match, false);
    return item;
  }

  #optimistic: RuleEvalContext | undefined;
  /** The batch's context with every memory assumed held (one object per batch, not per event). */
  #optimisticContext(ctx: RuleEvalContext): RuleEvalContext {
    if (this.#optimistic?.inventory !== ctx.inventory) this.#optimistic = { inventory: ctx.inventory, memory: ALWAYS_REMEMBERED };
    return this.#optimistic;
  }

  /** Lists the state records the event may touch for the rule (all of them when the match is not known yet). */
  #requestKeys(item: WorkItem, ctx: RuleEvalContext, cache: SlotCache, match: RuleMatch | undefined, isAlert: boolean): void {
    const { rule, event } = item;
    const detection = rule.detection;
    const memories = detection.memories;
    for (let index = 0; index < memories.length; index++) {
      if (match && !(match.sets & stepBit(index)) && !(match.forgets & stepBit(index))) continue;
      const table = rule.memoryTables[index];
      const slots: Slot[] = [];
      for (const key of compositeKeys(memories[index].keys, event, ctx)) slots.push(cache.request(table.get(key)));
      (item.memorySlots ??= [])[index] = slots;
    }
    if (!match) {
      for (const selection of detection.selections) {
        if (selection.memory && selection.memoryKeys) for (const key of compositeKeys(selection.memoryKeys, event, ctx)) cache.request(rule.memoryKeys.get(selection.memory)!.keys.get(key));
      }
    }
    const stateful = detection.stateful;
    if (!stateful) return;
    if (stateful.type === 'sequence' || stateful.type === 'absence') {
      for (const step of stateful.steps) {
        if (isAlert ? !step.alerts : match && !(match.steps & stepBit(step.index))) continue;
        for (const key of compositeKeys(step.groupBy, event, ctx)) cache.request(rule.stateKeys.get(key));
      }
      if (!isAlert && (!match || match.cancel)) for (const key of compositeKeys(stateful.groupBy, event, ctx)) cache.request(rule.stateKeys.get(key));
      return;
    }
    if (match && !match.main) return;
    const keys = compositeKeys(stateful.groupBy, event, ctx);
    const slots: Slot[] = new Array(keys.length);
    for (let index = 0; index < keys.length; index++) slots[index] = cache.request(rule.stateKeys.get(keys[index]));
    item.groupKeys = keys;
    item.groupSlots = slots;
  }

  // -------------------------------------------------------------------------------------------
  // Apply pass

  /** Applies one work item; its firings are appended to `firings`. Returns how many events were too late. */
  #apply(item: WorkItem, ctx: RuleEvalContext, cache: SlotCache, firings: Firing[]): number {
    const { rule, event } = item;
    const detection = rule.detection;
    const alertFields = (event as unknown as Partial<AlertEventFields>).alert;
    const isAlert = (event.kind as string) === 'alert' && alertFields !== undefined;
    ctx.memoryEvidence = rule.deferred ? [] : undefined;
    let match: RuleMatch;
    if (isAlert) {
      match = { main: false, steps: 0, cancel: false, sets: 0, forgets: 0 };
      const stateful = detection.stateful;
      if (stateful && (stateful.type === 'sequence' || stateful.type === 'absence')) {
        for (const step of stateful.steps) if (step.alerts?.has(alertFields.detectionId)) match.steps |= stepBit(step.index);
      }
    } else match = item.match ?? this.#match(rule, event, ctx) ?? NO_MATCH;
    const memoryEvidence = ctx.memoryEvidence ?? [];
    ctx.memoryEvidence = undefined;

    let tooLate = 0;
    const stateful = detection.stateful;
    if (!stateful) {
      if (match.main) firings.push(this.#firing(rule, event, ctx, { evidence: [event.id, ...memoryEvidence], firstMs: event.timeMs, lastMs: event.timeMs, count: 1 }, event.id));
      // A match the planning pass already knew exactly (memories assumed held) cannot be waiting for one.
      else if (rule.deferred && !isAlert && item.match === undefined) this.#waitForMemories(rule, event, ctx, cache);
    } else {
      tooLate += this.#applyStateful(item, ctx, cache, match, memoryEvidence, isAlert, alertFields, firings);
    }
    // Memories change after the event's own conditions and alert were evaluated: an event never sees what it set.
    if (match.sets || match.forgets) this.#updateMemories(item, ctx, cache, match, firings);
    return tooLate;
  }

  #applyStateful(
    item: WorkItem,
    ctx: RuleEvalContext,
    cache: SlotCache,
    match: RuleMatch,
    memoryEvidence: string[],
    isAlert: boolean,
    alertFields: AlertEventFields['alert'] | undefined,
    firings: Firing[],
  ): number {
    const { rule, event } = item;
    const detection = rule.detection;
    const stateful = detection.stateful!;
    let tooLate = 0;
    const hash = this.#idHash(event.id);
    const applyToKey = (key: string, apply: (state: KeyState) => KindOutcome, planned?: Slot): void => {
      const slot = (planned ?? cache.slot(rule.stateKeys.get(key))) as Slot<KeyState>;
      const state = slot.value ?? newKeyState(key, event.timeMs);
      const triggered = state.fa?.find(([h]) => h === hash);
      if (triggered) {
        this.#refires.push({ detectionId: detection.id, alertId: triggered[1], dedupKey: triggered[2] });
        this.#stats.duplicates++;
        return;
      }
      if (slot.value && !withinLateness(state, event.timeMs, this.#latenessMs)) {
        tooLate++;
        this.#stats.tooLate[detection.id] = (this.#stats.tooLate[detection.id] ?? 0) + 1;
        return;
      }
      const outcome = apply(state);
      if (outcome.duplicate) this.#stats.duplicates++;
      if (outcome.overflow) {
        this.#stats.stateOverflow[detection.id] = (this.#stats.stateOverflow[detection.id] ?? 0) + 1;
        this.#logger.log('warn', 'a detection key reached its state bound; its oldest entries were dropped', { detectionId: detection.id, key });
      }
      if (outcome.changed) this.#touch(slot, state, rule);
      if (outcome.fire) {
        outcome.fire.evidence.push(...memoryEvidence);
        const firing = this.#firing(rule, event, ctx, outcome.fire, event.id);
        firings.push(firing);
        const fired = (state.fa ??= []);
        fired.push([hash, firing.identity.alertId, firing.identity.dedupKey, event.timeMs]);
        if (fired.length > MAX_FIRED_TRIGGERS) fired.splice(0, fired.length - MAX_FIRED_TRIGGERS);
        this.#touch(slot, state, rule);
      }
    };
    const window = { timeMs: event.timeMs, hash, id: event.id, latenessMs: this.#latenessMs };
    switch (stateful.type) {
      case 'threshold': {
        if (!match.main) break;
        const keys = item.groupKeys ?? compositeKeys(stateful.groupBy, event, ctx);
        const distinctValues = stateful.distinct && keys.length ? foldedValues(stateful.distinct.field(event, ctx)).map((v) => v.folded) : undefined;
        for (let index = 0; index < keys.length; index++) applyToKey(keys[index], (state) => applyThreshold(state, window, stateful, distinctValues), item.groupSlots?.[index]);
        break;
      }
      case 'distinctCount': {
        if (!match.main) break;
        const keys = item.groupKeys ?? compositeKeys(stateful.groupBy, event, ctx);
        const values = keys.length ? foldedValues(stateful.field(event, ctx)).filter((v) => !stateful.exclude.has(v.folded)) : [];
        for (let index = 0; index < keys.length; index++) applyToKey(keys[index], (state) => applyDistinctCount(state, window, stateful, values), item.groupSlots?.[index]);
        break;
      }
      case 'firstSeen': {
        if (!match.main) break;
        const keys = item.groupKeys ?? compositeKeys(stateful.groupBy, event, ctx);
        const values = keys.length ? foldedValues(stateful.field(event, ctx)) : [];
        for (let index = 0; index < keys.length; index++) {
          const historyStart = ctx.inventory.firstSeen(firstKeyPart(keys[index])) ?? Infinity;
          applyToKey(keys[index], (state) => applyFirstSeen(state, window, stateful, values, historyStart), item.groupSlots?.[index]);
        }
        break;
      }
      case 'baseline': {
        if (!match.main) break;
        const keys = item.groupKeys ?? compositeKeys(stateful.groupBy, event, ctx);
        for (let index = 0; index < keys.length; index++) {
          const historyStart = ctx.inventory.firstSeen(firstKeyPart(keys[index])) ?? Infinity;
          applyToKey(keys[index], (state) => applyBaseline(state, window, stateful, historyStart), item.groupSlots?.[index]);
        }
        break;
      }
      case 'sequence': {
        const masks = stepMasksByKey(stateful.steps, match.steps, event, ctx);
        if (match.cancel) for (const key of compositeKeys(stateful.groupBy, event, ctx)) if (!masks.has(key)) masks.set(key, 0);
        const evidence = isAlert ? [...alertFields!.evidence] : [event.id, ...memoryEvidence];
        for (const [key, mask] of masks) {
          let newValues: Map<number, string[]> | undefined;
          const exports: Record<string, string[]> = {};
          let exported = false;
          let captures: Record<string, string | string[]> | undefined;
          for (const step of stateful.steps) {
            if (!(mask & stepBit(step.index))) continue;
            if (step.newValue) (newValues ??= new Map()).set(step.index, foldedValues(step.newValue(event, ctx)).map((v) => v.folded));
            for (const field of step.exportedFields) {
              exports[field.path] = foldedValues(field.getter(event, ctx)).map((v) => v.folded);
              exported = true;
            }
            const stepCaptures = step.capturedFields.length ? captureFields(step.capturedFields, event, ctx) : undefined;
            // Usually one step per event: keep its object; several steps merge into the first.
            if (stepCaptures) captures = captures ? Object.assign(captures, stepCaptures) : stepCaptures;
          }
          applyToKey(key, (state) =>
            applySequence(state, { timeMs: event.timeMs, hash, mask, newValues, cancel: match.cancel, evidence, exports: exported ? exports : undefined, captures, latenessMs: this.#latenessMs }, { windowMs: stateful.windowMs, steps: rule.stepViews, newValueTtlMs: rule.newValueTtlMs }),
          );
        }
        break;
      }
      case 'absence': {
        const masks = stepMasksByKey(stateful.steps, match.steps, event, ctx);
        for (const [key, mask] of masks) {
          applyToKey(key, (state) => {
            const outcome = applyAbsence(state, { timeMs: event.timeMs, hash, first: !!(mask & 1), second: !!(mask & 2), snapshot: mask & 1 ? snapshotOf(event) : undefined, latenessMs: this.#latenessMs }, stateful);
            const retention = this.#clock.now() + rule.retentionMs;
            if (outcome.added) {
              const slot = cache.slot<PendingIndexRow>(pendingStateKey(detection.id, key, outcome.added.h));
              slot.value = { key, h: outcome.added.h, due: outcome.added.t + stateful.windowMs };
              slot.dirty = true;
              slot.expiresAt = retention;
              const due = outcome.added.t + stateful.windowMs;
              this.#absenceAddedDue.set(detection.id, Math.min(this.#absenceAddedDue.get(detection.id) ?? Infinity, due));
            }
            for (const cancelled of outcome.cancelled) {
              const slot = cache.slot(pendingStateKey(detection.id, key, cancelled));
              slot.value = undefined;
              slot.dirty = true;
            }
            return outcome;
          });
        }
        break;
      }
    }
    return tooLate;
  }

  #lastHashedId: string | undefined;
  #lastIdHash = '';
  /** `shortHash` of an event id, remembered for the last id: one event meets several stateful rules in a row. */
  #idHash(id: string): string {
    if (id !== this.#lastHashedId) {
      this.#lastIdHash = shortHash(id);
      this.#lastHashedId = id;
    }
    return this.#lastIdHash;
  }

  #touch(slot: Slot<KeyState>, state: KeyState, rule: RuleRuntime): void {
    slot.value = state;
    slot.dirty = true;
    slot.expiresAt = this.#clock.now() + rule.retentionMs;
  }

  #updateMemories(item: WorkItem, ctx: RuleEvalContext, cache: SlotCache, match: RuleMatch, firings: Firing[]): void {
    const { rule, event } = item;
    const memories = rule.detection.memories;
    for (let index = 0; index < memories.length; index++) {
      const memoryRule = memories[index];
      const set = !!(match.sets & stepBit(index));
      const forget = !!(match.forgets & stepBit(index));
      if (!set && !forget) continue;
      const slots = item.memorySlots?.[index] ?? compositeKeys(memoryRule.keys, event, ctx).map((key) => cache.slot(rule.memoryTables[index].get(key)));
      const captures = set && memoryRule.capturedFields.length ? captureFields(memoryRule.capturedFields, event, ctx) : undefined;
      for (const memorySlot of slots) {
        const slot = memorySlot as Slot<MemoryValue>;
        const value: MemoryValue = slot.value ?? {};
        const setBefore = value.s;
        const lastBefore = value.l;
        const forgotBefore = value.c;
        const idBefore = value.id;
        const capturedBefore = value.o;
        const t = event.timeMs;
        if (forget) {
          if (value.l === undefined || t > value.l) {
            value.c = Math.max(value.c ?? -Infinity, t);
            delete value.s;
            delete value.l;
            delete value.id;
            delete value.o;
          } else {
            // Set again after this forgetting: conservatively, the memory holds from the latest setting.
            value.c = Math.max(value.c ?? -Infinity, t);
            value.s = value.l;
          }
        }
        if (set && !(value.c !== undefined && t <= value.c)) {
          value.s = value.s === undefined ? t : Math.min(value.s, t);
          // Re-setting a memory only extends its ttl; doing it in steps of 1% of the ttl saves a
          // write per event for memories set by frequent events (IPs seen, makers). A later setting
          // whose output values differ (a new risk level) is recorded at once.
          const changedValues = memoryRule.capturedFields.length > 0 && value.l !== undefined && t >= value.l && !sameCaptures(captures, value.o);
          if (value.l === undefined || t - value.l > memoryRule.ttlMs / 100 || changedValues) {
            value.l = t;
            value.id = event.id;
            if (captures) value.o = captures;
            else delete value.o;
          }
        }
        if (setBefore === value.s && lastBefore === value.l && forgotBefore === value.c && idBefore === value.id && capturedBefore === value.o) continue;
        slot.value = value;
        slot.dirty = true;
        slot.expiresAt = this.#clock.now() + memoryRule.ttlMs + this.#latenessMs + HOUR_MS;
        if (set && value.w?.length) firings.push(...this.#wakeWaiters(rule, slot, ctx));
      }
    }
  }

  /**
   * A memory-reading rule whose condition failed only for want of a memory: keep the event (without
   * `raw`) in the memory records it read, for the lateness bound, so a setting that arrives later
   * but carries an earlier event time still fires it (events are judged in event-time order).
   */
  #waitForMemories(rule: RuleRuntime, event: AgentEvent, ctx: RuleEvalContext, cache: SlotCache): void {
    const detection = rule.detection;
    if (!detection.condition) return;
    this.#runner.reset(detection, event, this.#optimisticContext(ctx));
    if (!this.#runner.run(detection.condition)) return;
    const hash = this.#idHash(event.id);
    for (const selection of detection.selections) {
      if (!selection.memory || !selection.memoryKeys) continue;
      for (const key of compositeKeys(selection.memoryKeys, event, ctx)) {
        const slot = cache.slot<MemoryValue>(rule.memoryKeys.get(selection.memory)!.keys.get(key));
        const value: MemoryValue = slot.value ?? {};
        const waiters = (value.w ??= []);
        if (waiters.some(([, h]) => h === hash)) continue;
        waiters.push([event.timeMs, hash, snapshotOf(event)]);
        const newest = Math.max(...waiters.map(([t]) => t));
        value.w = waiters.filter(([t]) => t >= newest - this.#latenessMs).slice(-MAX_MEMORY_WAITERS);
        slot.value = value;
        slot.dirty = true;
        slot.expiresAt = Math.max(slot.expiresAt ?? 0, this.#clock.now() + this.#latenessMs + HOUR_MS);
      }
    }
  }

  /** Re-evaluates the events waiting on a memory that was just set; those that now match fire. */
  #wakeWaiters(rule: RuleRuntime, slot: Slot<MemoryValue>, ctx: RuleEvalContext): Firing[] {
    const detection = rule.detection;
    const firings: Firing[] = [];
    const value = slot.value!;
    value.w = (value.w ?? []).filter(([, , snapshot]) => {
      const waiting = snapshot as unknown as AgentEvent;
      const waitCtx: RuleEvalContext = { inventory: ctx.inventory, memory: ctx.memory, memoryEvidence: [] };
      this.#runner.reset(detection, waiting, waitCtx);
      if (!detection.condition || !this.#runner.run(detection.condition)) return true;
      const evidence = [waiting.id, ...(waitCtx.memoryEvidence ?? [])];
      firings.push(this.#firing(rule, waiting, ctx, { evidence, firstMs: waiting.timeMs, lastMs: waiting.timeMs, count: 1 }, waiting.id));
      return false;
    });
    if (value.w.length === 0) delete value.w;
    return firings;
  }

  #memoryAccess(cache: SlotCache): MemoryAccess {
    /** The memory record when it holds for an event at `timeMs`. */
    const held = (detectionId: string, memory: string, key: string, timeMs: number): MemoryValue | undefined => {
      const table = this.#byId.get(detectionId)?.memoryKeys.get(memory);
      if (!table) return undefined;
      const value = cache.slot<MemoryValue>(table.keys.get(key)).value;
      if (!value || value.s === undefined || value.l === undefined) return undefined;
      if (timeMs < value.s || timeMs > value.l + table.ttlMs) return undefined;
      if (value.c !== undefined && value.c >= value.s && timeMs >= value.c) return undefined;
      return value;
    };
    return {
      holds: (detectionId, memory, key, timeMs) => held(detectionId, memory, key, timeMs)?.id,
      captured: (detectionId, memory, key, timeMs) => held(detectionId, memory, key, timeMs)?.o,
    };
  }

  /** Alert ids fired in the current attempt. */
  #firedAlertIds = new Set<string>();

  #firing(rule: RuleRuntime, event: AgentEvent, ctx: RuleEvalContext, fire: FireInfo, triggerId: string): Firing {
    const detection = rule.detection;
    const identity = alertIdentity(detection, event, ctx, fire.lastMs, triggerId);
    const foldsIntoEarlier = this.#firedAlertIds.has(identity.alertId);
    this.#firedAlertIds.add(identity.alertId);
    if (foldsIntoEarlier && !this.#dependents.has(detection.id)) return { rule, event, fire, triggerId, identity, built: undefined };
    const alertCtx: RuleEvalContext = { inventory: ctx.inventory, memory: ctx.memory };
    if (fire.steps) alertCtx.stepValues = fire.steps;
    const built = buildAlert(detection, event, alertCtx, fire, identity, fire.evidence, this.#clock.now(), this.#conditionTester(detection, event, alertCtx));
    return { rule, event, fire, triggerId, identity, built };
  }

  #conditionTester(detection: CompiledDetection, event: AgentEvent, ctx: RuleEvalContext): (condition: CompiledCondition) => boolean {
    return (condition) => {
      this.#runner.reset(detection, event, ctx);
      return this.#runner.run(condition);
    };
  }

  /** A firing as an event for the chains that consume it: its last event's fields plus `alert.*`. */
  #alertEvent(firing: Firing): AgentEvent {
    const detection = firing.rule.detection;
    const built = firing.built!; // always built for a detection chains consume
    const fields: AlertEventFields = {
      alert: { detectionId: detection.id, id: firing.identity.alertId, severity: built.alert.severity, dedupKey: firing.identity.dedupKey, evidence: built.alert.evidence },
    };
    return {
      ...firing.event,
      ...fields,
      kind: 'alert' as AgentEvent['kind'],
      id: `alert:${firing.identity.alertId}:${firing.triggerId}`,
      timeMs: firing.fire.lastMs,
      time: new Date(firing.fire.lastMs).toISOString(),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Absence: fire pending first steps whose window closed under the watermark

  async #sweepAbsences(ctx: RuleEvalContext, cache: SlotCache): Promise<Firing[]> {
    const firings: Firing[] = [];
    const watermark = this.#newestEventMs - this.#latenessMs;
    const now = this.#clock.now();
    for (const rule of this.#rules) {
      const stateful = rule.detection.stateful;
      if (stateful?.type !== 'absence') continue;
      const id = rule.detection.id;
      const addedDue = this.#absenceAddedDue.get(id) ?? Infinity;
      this.#absenceAddedDue.delete(id);
      const nextDue = this.#absenceNextDue.get(id) ?? -Infinity; // unknown after a restart: look once
      const listedAt = this.#absenceListedAt.get(id) ?? -Infinity;
      if (Math.min(nextDue, addedDue) > watermark && now - listedAt < ABSENCE_LIST_INTERVAL_MS) {
        this.#absenceNextDue.set(id, Math.min(nextDue, addedDue));
        continue;
      }
      this.#absenceListedAt.set(id, now);
      const partition = pendingPartition(id);
      const rows: { key: StateKey; value: PendingIndexRow; etag?: string; expiresAt?: number }[] = await this.#state.list<PendingIndexRow>(partition);
      // Pendings this batch added are not in the store yet, and their window may already have
      // closed under the watermark (a whole timeline in one batch: a replayed file).
      const listed = new Set(rows.map((row) => stateKeyId(row.key)));
      for (const slot of cache.dirtySlots((candidate) => candidate.key.partition === partition && candidate.value !== undefined && !listed.has(candidate.key.id))) {
        rows.push({ key: slot.key, value: slot.value as PendingIndexRow, etag: slot.etag, expiresAt: slot.expiresAt });
      }
      let remaining = Infinity;
      const due: typeof rows = [];
      for (const row of rows) {
        const rowKey = slotKeyOf(row.key);
        if (cache.has(rowKey) && cache.slot(rowKey).value === undefined) continue; // cancelled in this batch
        if (row.value.due <= watermark) due.push(row);
        else remaining = Math.min(remaining, row.value.due);
      }
      this.#absenceNextDue.set(id, Math.min(remaining, addedDue));
      if (due.length === 0) continue;
      for (const row of due) cache.request(rule.stateKeys.get(row.value.key));
      await cache.loadRequested();
      for (const row of due) {
        const keySlot = cache.slot<KeyState>(rule.stateKeys.get(row.value.key));
        const pending = keySlot.value ? takeDueAbsence(keySlot.value, row.value.h) : undefined;
        if (keySlot.value && pending) this.#touch(keySlot, keySlot.value, rule);
        const rowKey = slotKeyOf(row.key);
        // A row not in the batch's cache came from the store, with its etag.
        const indexSlot = cache.has(rowKey) ? cache.slot(rowKey) : cache.adopt(rowKey, row.value, row.etag!, row.expiresAt);
        indexSlot.value = undefined;
        indexSlot.dirty = true;
        if (!pending) continue;
        const event = pending.e as unknown as AgentEvent;
        firings.push(this.#firing(rule, event, ctx, { evidence: [event.id], firstMs: pending.t, lastMs: pending.t, count: 1 }, event.id));
      }
    }
    return firings;
  }

  // -------------------------------------------------------------------------------------------
  // Alerts: dedup by id, "raised" markers committed first

  /**
   * A raised alert met again (redelivery, restart, another instance) is sent again, same id and
   * content, while unacknowledged; except when this very instance already returned it and its
   * pipeline does not acknowledge (the same input twice in one run: once is enough).
   */
  #shouldReemit(marker: RaisedMarker): marker is RaisedMarker & { alert: Alert } {
    if (marker.acknowledged || !marker.alert) return false;
    return this.#acknowledges || !this.#returned.has(marker.alertId);
  }

  /** Pending (unacknowledged) alerts whose trigger event was redelivered: send them again, same id. */
  async #reemitRefires(refires: readonly Refire[], cache: SlotCache, raised: Map<string, { alert: Alert; plan?: ResponsePlan }>): Promise<void> {
    if (refires.length === 0) return;
    for (const refire of refires) cache.request(markerStateKey(refire.detectionId, refire.dedupKey, refire.alertId));
    await cache.loadRequested();
    for (const refire of refires) {
      if (raised.has(refire.alertId)) continue;
      const marker = cache.slot<RaisedMarker>(markerStateKey(refire.detectionId, refire.dedupKey, refire.alertId)).value;
      if (!marker || !this.#shouldReemit(marker)) continue;
      raised.set(refire.alertId, { alert: marker.alert, ...(marker.plan ? { plan: marker.plan } : {}) });
      this.#stats.alertsReemitted++;
    }
  }

  async #raiseAlerts(firings: readonly Firing[], cache: SlotCache, raised: Map<string, { alert: Alert; plan?: ResponsePlan }>): Promise<void> {
    const candidates = new Map<string, Firing>();
    for (const firing of firings) {
      if (candidates.has(firing.identity.alertId) || raised.has(firing.identity.alertId) || !firing.built) {
        if (!raised.has(firing.identity.alertId)) this.#stats.alertsFolded++;
        continue;
      }
      candidates.set(firing.identity.alertId, firing);
    }
    for (let attempt = 0; candidates.size > 0; attempt++) {
      for (const firing of candidates.values()) cache.request(markerStateKey(firing.rule.detection.id, firing.identity.dedupKey, firing.identity.alertId));
      await cache.loadRequested();
      const built = new Map<string, { alert: Alert; plan?: ResponsePlan }>();
      const markers: Slot[] = [];
      for (const [alertId, firing] of candidates) {
        const detection = firing.rule.detection;
        const slot = cache.slot<RaisedMarker>(markerStateKey(detection.id, firing.identity.dedupKey, alertId));
        if (slot.value !== undefined) {
          candidates.delete(alertId);
          const stored = slot.value;
          if (this.#shouldReemit(stored)) {
            // Raised by an earlier delivery that never confirmed it reached the sink: send it again,
            // same id and content (the outbox folds it if it did arrive).
            raised.set(alertId, { alert: stored.alert, ...(stored.plan ? { plan: stored.plan } : {}) });
            this.#stats.alertsReemitted++;
            continue;
          }
          // Raised and delivered before (a redelivered batch, another instance): fold.
          this.#stats.alertsFolded++;
          continue;
        }
        const now = this.#clock.now();
        const firingAlert = firing.built!; // candidates are built firings
        built.set(alertId, firingAlert);
        // Pending until acknowledged: the marker keeps the alert so a redelivery can send it again.
        const marker: RaisedMarker = { alertId, dedupKey: firing.identity.dedupKey, raisedAt: new Date(now).toISOString(), alert: firingAlert.alert };
        if (firingAlert.plan) marker.plan = firingAlert.plan;
        slot.value = marker;
        slot.dirty = true;
        slot.expiresAt = now + Math.max(this.#markerTtlMs, detection.output.suppressMs + this.#latenessMs);
        markers.push(slot);
      }
      const { conflictedKeys } = await cache.commit(markers);
      const conflicted = new Set(conflictedKeys.map((key) => key.partition));
      for (const slot of markers) {
        const alertId = slot.key.row;
        if (conflicted.has(slot.key.partition)) continue; // re-read: raised elsewhere, or rolled back with a neighbour
        const entry = built.get(alertId)!;
        raised.set(alertId, entry);
        candidates.delete(alertId);
        this.#stats.alertsRaised++;
        this.#stats.alertsByDetection[entry.alert.detectionId] = (this.#stats.alertsByDetection[entry.alert.detectionId] ?? 0) + 1;
      }
      if (candidates.size > 0 && attempt + 1 >= this.#maxRetries) {
        this.#logger.log('error', 'could not record alert markers after repeated conflicts; these alerts will be retried on redelivery', { alerts: [...candidates.keys()] });
        throw new StateConflictError(conflictedKeys);
      }
    }
  }
}

/**
 * A row of an absence's pending index (`pendingStateKey`): the key text, the first step's event
 * hash and its deadline. The pending step itself lives in the key state (`PendingAbsence`).
 */
interface PendingIndexRow {
  key: string;
  h: string;
  due: number;
}

/** The "raised" marker of an alert id; pending (holding the alert) until the pipeline acknowledges it. */
interface RaisedMarker {
  alertId: string;
  dedupKey: string;
  raisedAt: string;
  acknowledged?: true;
  alert?: Alert;
  plan?: ResponsePlan;
}

function foldPresent(value: string | undefined): string | undefined {
  return value === undefined ? undefined : fold(value);
}

/** The first groupBy value of a key text (inventory history hangs off the first key field). */
function firstKeyPart(key: string): string {
  const bar = key.indexOf('|');
  return bar < 0 ? key : key.slice(0, bar);
}

/** Slot-key tables of every memory a detection sets or reads (a read-only name gets ttl 0: it never holds). */
function memoryKeyTables(detection: CompiledDetection): Map<string, { keys: SlotKeyTable; ttlMs: number }> {
  const tables = new Map<string, { keys: SlotKeyTable; ttlMs: number }>();
  const add = (name: string, ttlMs: number): void => {
    if (!tables.has(name)) tables.set(name, { keys: slotKeyTable((key) => memoryStateKey(detection.id, name, key)), ttlMs });
  };
  for (const memory of detection.memories) add(memory.name, memory.ttlMs);
  for (const selection of detection.selections) if (selection.memory) add(selection.memory, 0);
  return tables;
}

/** The steps an event satisfies, grouped by the key each step's groupBy gives it. */
function stepMasksByKey(steps: readonly CompiledStep[], matched: number, event: AgentEvent, ctx: RuleEvalContext): Map<string, number> {
  const masks = new Map<string, number>();
  for (const step of steps) {
    if (!(matched & stepBit(step.index))) continue;
    for (const key of compositeKeys(step.groupBy, event, ctx)) masks.set(key, (masks.get(key) ?? 0) | stepBit(step.index));
  }
  return masks;
}

function foldedValues(value: unknown): { folded: string; display: string }[] {
  if (!Array.isArray(value)) {
    // One value (the usual case): no list or set to build.
    const text = value === undefined || value === null ? undefined : keyText(value);
    return text === undefined || text === '' ? [] : [{ folded: fold(text), display: text }];
  }
  const out: { folded: string; display: string }[] = [];
  const seen = new Set<string>();
  for (const element of valuesOf(value)) {
    const text = keyText(element);
    if (text === undefined || text === '') continue;
    const folded = fold(text);
    if (seen.has(folded)) continue;
    seen.add(folded);
    out.push({ folded, display: text });
  }
  return out;
}

/** The event as kept in state until an absence window closes: everything but the raw record. */
function snapshotOf(event: AgentEvent): Record<string, unknown> {
  // Shares the event's nested objects: events are never mutated, and the store copies on commit.
  const { raw: _raw, ...snapshot } = event;
  return snapshot as unknown as Record<string, unknown>;
}

const MAX_MEMORY_WAITERS = 16;
const MAX_RETURNED_IDS = 200_000;
/** Triggers remembered per key for re-emitting unacknowledged alerts on redelivery. */
const MAX_FIRED_TRIGGERS = 16;
const NO_MATCH: RuleMatch = Object.freeze({ main: false, steps: 0, cancel: false, sets: 0, forgets: 0 });

/** Memory access that answers "held" for everything: tells whether an event failed only for want of a memory. */
const ALWAYS_REMEMBERED: MemoryAccess = { holds: () => 'pending', captured: () => undefined };

/** Response plans of alerts raised by any engine in this process (the alert object is the key). */
const RESPONSE_PLANS = new WeakMap<Alert, ResponsePlan>();

/** The resolved response plan the engine attached to an alert it raised, if the rule has one. */
export function getResponsePlan(alert: Alert): ResponsePlan | undefined {
  return RESPONSE_PLANS.get(alert);
}

export function createEngine(options: EngineOptions): Engine {
  return new Engine(options);
}
