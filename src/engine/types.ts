/**
 * Types of the compiled detections and of the engine's public surface. A compiled detection is
 * immutable after load: closures and precomputed values only, no per-event allocation of its own.
 */
import type { Alert, ResponseActionName, ResponseMode, Severity } from '../alerts/types';
import type { Clock, Logger, StateStore } from '../ports';
import type { ResponsePlan } from '../response/types';
import type { CompiledCondition } from './condition';
import type { CapturedValues, EvalContext, FieldGetter } from './fields';
import type { AgentEvent } from '../normalize/types';

export type RuleStatus = 'experimental' | 'test' | 'stable';
export type ParameterValue = string | number | boolean | (string | number | boolean)[];

/** The rule file as parsed (schema-valid). Kept for the test runner and re-compilation with overrides. */
export type RuleDocument = Record<string, unknown> & { id: string };

/** Allowed values of a dispatch field (kind, category, operation), folded; `undefined` = any. */
export type ValueConstraint = ReadonlySet<string> | undefined;

export interface Prefilter {
  kinds: ValueConstraint;
  categories: ValueConstraint;
  flows: ValueConstraint;
  operations: ValueConstraint;
  /** Whether the rule can do anything with an event of these dispatch values (finer than the sets). */
  admits: (values: DispatchValues) => boolean;
}

/** An event's dispatch values, folded (undefined when the event has no such field): what candidate rules are chosen by. */
export interface DispatchValues {
  kind: string | undefined;
  category: string | undefined;
  flow: string | undefined;
  operation: string | undefined;
}

/** Memory access the evaluator provides while a batch runs. */
export interface MemoryAccess {
  /** Id of the event that set the memory when it holds for an event at `timeMs`, else undefined. */
  holds(detectionId: string, memory: string, key: string, timeMs: number): string | undefined;
  /** Values the latest setting event left for the output (`memories.<name>.<path>`) when the memory holds, else undefined. */
  captured(detectionId: string, memory: string, key: string, timeMs: number): CapturedValues | undefined;
}

export interface RuleEvalContext extends EvalContext {
  memory?: MemoryAccess;
  /** Memory setter ids used while evaluating the current event (evidence). */
  memoryEvidence?: string[];
}

export type SelectionTest = (event: AgentEvent, ctx: RuleEvalContext) => boolean;

export interface CompiledSelection {
  name: string;
  test: SelectionTest;
  /** Name of the memory a `{remembered, key}` selection reads. */
  memory?: string;
  /** Key fields of that look-up (the engine loads the memory records before evaluating). */
  memoryKeys?: FieldGetter[];
  /** Dispatch constraints implied by the selection (any of its maps). */
  constraints: { kind: ValueConstraint; category: ValueConstraint; flow: ValueConstraint; operation: ValueConstraint };
  /**
   * False when an event's dispatch values alone rule the selection out (its equals/in/startswith/
   * endswith/contains entries on kind, category, flow or audit.operation); true means "maybe".
   * Absent when the selection has no such entry.
   */
  dispatch?: (values: DispatchValues) => boolean;
  /** Every entry of the selection is such a dispatch entry: `dispatch` is then its exact truth. */
  dispatchDecides?: boolean;
}

export interface CompiledMemory {
  name: string;
  when: CompiledCondition;
  forget?: CompiledCondition;
  keys: FieldGetter[];
  ttlMs: number;
  /** Fields of the setting event the output reads (`memories.<name>.<path>`), kept with the memory. */
  capturedFields: { path: string; getter: FieldGetter }[];
}

export interface CompiledStep {
  name: string;
  index: number;
  /** Alert steps: detection ids whose alerts satisfy the step. */
  alerts?: ReadonlySet<string>;
  condition?: CompiledCondition;
  newValue?: FieldGetter;
  newValueTtlMs: number;
  groupBy: FieldGetter[];
  /** Alternatives (any holds); each a list of equalities (all hold). */
  joins: { field: FieldGetter; fieldPath: string; step: number; stepField: string }[][];
  /** Fields of this step's event that joins compare (its own join fields and those later steps read), path → getter. */
  exportedFields: { path: string; getter: FieldGetter }[];
  /** Fields of this step's event the output reads (`steps.<name>.<path>`), captured when the event is buffered. */
  capturedFields: { path: string; getter: FieldGetter }[];
}

export type CompiledStateful =
  | { type: 'threshold'; groupBy: FieldGetter[]; windowMs: number; threshold: number; distinct?: { field: FieldGetter; threshold: number }; combine: 'any' | 'all' }
  | { type: 'distinctCount'; groupBy: FieldGetter[]; field: FieldGetter; windowMs: number; threshold: number; exclude: ReadonlySet<string>; newOnly: boolean; memoryTtlMs: number }
  | { type: 'firstSeen'; groupBy: FieldGetter[]; field: FieldGetter; learningMs: number; ttlMs: number }
  | { type: 'baseline'; groupBy: FieldGetter[]; windowMs: number; historyMs: number; minCount: number; factor: number; learningMs: number }
  | { type: 'sequence'; groupBy: FieldGetter[]; windowMs: number; steps: CompiledStep[]; cancel?: CompiledCondition }
  | { type: 'absence'; groupBy: FieldGetter[]; windowMs: number; steps: CompiledStep[] };

export type StatefulType = CompiledStateful['type'];

export type AggregateName = 'count' | 'distinct' | 'distinctValues' | 'window' | 'mean';

export type TemplatePart = { literal: string } | { getter: FieldGetter } | { aggregate: AggregateName };

export interface CompiledEntity {
  type: Alert['entities'][number]['type'];
  id: FieldGetter;
  name?: FieldGetter;
  upn?: FieldGetter;
  appId?: FieldGetter;
  objectId?: FieldGetter;
  principalId?: FieldGetter;
}

export type CompiledDetail =
  | { name: string; literal: unknown }
  | { name: string; getter: FieldGetter }
  | { name: string; template: TemplatePart[] }
  | { name: string; aggregate: AggregateName };

export interface CompiledOutput {
  title: TemplatePart[];
  entities: CompiledEntity[];
  dedupKey: FieldGetter[];
  suppressMs: number;
  details: CompiledDetail[];
}

export interface CompiledAction {
  action: ResponseActionName;
  target: string;
  targetGetter: FieldGetter;
  keyId?: string;
  keyIdGetter?: FieldGetter;
  credentialKind?: 'password' | 'key' | 'federated';
  when?: CompiledCondition;
}

export type CompiledSeverityRule =
  | { when: CompiledCondition; severity: Severity }
  | { field: FieldGetter; map?: ReadonlyMap<string, Severity> };

export interface CompiledDetection {
  id: string;
  file: string;
  document: RuleDocument;
  title: string;
  description?: string;
  status: RuleStatus;
  version: number;
  severity: Severity;
  severityWhen: CompiledSeverityRule[];
  tactics: string[];
  techniques: string[];
  techniquesFrom?: FieldGetter;
  triage?: string;
  parameters: Record<string, ParameterValue>;
  selections: CompiledSelection[];
  condition?: CompiledCondition;
  memories: CompiledMemory[];
  stateful?: CompiledStateful;
  output: CompiledOutput;
  response?: { mode: ResponseMode; actions: CompiledAction[] };
  /** Detection ids whose alerts this rule consumes (sequence/absence `alerts:` steps). */
  dependsOn: string[];
  /** Which events can affect this rule at all (dispatch index). */
  prefilter: Prefilter;
  /** The config file's exceptions of this detection, when it has any. */
  exceptions?: CompiledExceptions;
}

/** One exception of the config file: events matching it never trigger the detection. */
export interface ConfigException {
  name: string;
  /** Why the events are benign (who approved it, ticket): shown wherever the exception is reported. */
  reason: string;
  /** A selection (a map, or a list of maps: any may hold) on the canonical event. */
  match: unknown;
  /** Applies to events before this date (`2027-01-31`, UTC midnight) or date-time. Optional. */
  expires?: string;
  /** Timelines the detection fires on without the exception and not with it. Optional. */
  tests?: { name: string; records: unknown[]; inventory?: unknown }[];
}

export interface CompiledException {
  name: string;
  reason: string;
  /** Index of its selection in `selections` (its test also checks `untilMs`). */
  selection: number;
  untilMs?: number;
}

/**
 * A detection's exceptions: `condition` and the event steps' conditions of the detection hold only
 * when no exception does; the unexcepted conditions are kept to count what the exceptions kept
 * from the detection.
 */
export interface CompiledExceptions {
  entries: CompiledException[];
  baseCondition?: CompiledCondition;
  /** By step index: the step's condition before the exceptions were applied (undefined: not excepted). */
  baseSteps: (CompiledCondition | undefined)[];
}

/** Engine settings that come from the config file. */
export interface EngineConfig {
  /** Path of the config file, for error locations. */
  file?: string;
  includeExperimental?: boolean;
  detections?: Record<string, { enabled?: boolean; parameters?: Record<string, ParameterValue>; severity?: Severity; response?: { mode?: ResponseMode }; exceptions?: ConfigException[] }>;
  lists?: Record<string, (string | number)[]>;
  response?: { mode?: ResponseMode; protected?: string[]; caps?: { perHour?: number; perBlueprintPerHour?: number } };
  /** Line of a JSON path inside the config file, when it was read from one (for error messages). */
  locate?: (path: (string | number)[]) => number | undefined;
}

export interface EngineOptions {
  detections: CompiledDetection[];
  state: StateStore;
  logger?: Logger;
  clock?: Clock;
  /** How far behind its key's newest event time an event may be and still count. Default 15 min. */
  latenessMs?: number;
  config?: EngineConfig;
  /** How long "alert raised" markers are kept (redelivery protection). Default 7 days. */
  markerTtlMs?: number;
  /** Commit attempts on optimistic-concurrency conflicts before giving up. Default 5. */
  maxConflictRetries?: number;
  /**
   * Keep state records between batches (validated by etag on write; read-only records re-read
   * after `maxAgeMs`). `false` reads every record from the store on every batch. Default on.
   */
  stateCache?: false | { maxEntries?: number; maxAgeMs?: number };
  /**
   * The pipeline acknowledges delivered alerts: re-emit an unacknowledged alert even when this
   * instance returned it before (a retry after a failed send). Optional; defaults to false until
   * the first `acknowledge` call.
   */
  awaitAcknowledgement?: boolean;
}

/** Counters a pipeline summary prints. Cumulative since the engine was created. */
export interface EngineStats {
  events: number;
  alertsRaised: number;
  /** Matches folded into an existing alert by dedup/suppression, including redelivered ones. */
  alertsFolded: number;
  /** Events a key had already counted (redelivery). */
  duplicates: number;
  /** Events older than the lateness bound behind their key's newest event, by detection. */
  tooLate: Record<string, number>;
  /** Keys that hit a state bound and dropped their oldest entries, by detection. */
  stateOverflow: Record<string, number>;
  conflictsRetried: number;
  /** Raised earlier, never acknowledged, raised again by a redelivered batch (same id). */
  alertsReemitted: number;
  alertsByDetection: Record<string, number>;
  /**
   * Events a config exception kept from triggering a detection, by `<detectionId>/<exception>`
   * (for a rule that reads memories: events that would have matched had their memories held).
   */
  exceptionHits: Record<string, number>;
}

export interface EngineBatchResult {
  alerts: Alert[];
  /** Resolved response plan of each raised alert that has one, by alert id. */
  responsePlans: Map<string, ResponsePlan>;
  /** Every firing of every detection (raised or folded), as fed to chain rules. */
  firings: number;
  /** The same, by detection id. */
  firingsByDetection: Record<string, number>;
  tooLate: number;
}
