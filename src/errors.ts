/**
 * Typed errors. Every error agentwatch raises carries a literal `code` and, where it has one, the
 * offending location (file, JSON path inside it, line; or stream position). Never swallow one:
 * wrap with `{ cause }` so the chain survives.
 */

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'DETECTION_INVALID'
  | 'RECORD_UNDECODABLE'
  | 'RECORD_INVALID'
  | 'STATE_CONFLICT'
  | 'STATE_UNAVAILABLE'
  | 'STATE_WRITE_REFUSED'
  | 'SINK_TRANSIENT'
  | 'SINK_REJECTED'
  | 'GRAPH_PERMISSION_MISSING'
  | 'GRAPH_NOT_FOUND'
  | 'GRAPH_TRANSIENT'
  | 'GRAPH_REQUEST_FAILED'
  | 'RESPONSE_REFUSED'
  | 'USAGE';

export class AgentwatchError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Where a problem sits in a file: the file, a JSON path inside it, and a line when the parser knows it. */
export interface FileLocation {
  file: string;
  /** JSON-pointer-like path inside the document, e.g. `/stateful/window`. */
  path: string;
  line?: number;
}

export interface LocatedProblem extends FileLocation {
  /** What was expected, in words a rule author understands. */
  message: string;
}

function formatProblems(problems: LocatedProblem[]): string {
  return problems
    .map((p) => `${p.file}${p.line !== undefined ? `:${p.line}` : ''} at ${p.path || '/'}: ${p.message}`)
    .join('\n');
}

/** A configuration file or environment setting is wrong. Lists every problem found, not just the first. */
export class ConfigError extends AgentwatchError {
  readonly problems: LocatedProblem[];
  constructor(problems: LocatedProblem[], options?: { cause?: unknown }) {
    super('CONFIG_INVALID', `invalid configuration:\n${formatProblems(problems)}`, options);
    this.problems = problems;
  }
}

/** A detection rule file is wrong. Loading collects every problem in every file and reports them together. */
export class DetectionLoadError extends AgentwatchError {
  readonly problems: LocatedProblem[];
  constructor(problems: LocatedProblem[], options?: { cause?: unknown }) {
    super('DETECTION_INVALID', `invalid detection rule(s):\n${formatProblems(problems)}`, options);
    this.problems = problems;
  }
}

/** Where a record came from in the stream, so a dead letter can be traced back to its event. */
export interface StreamPosition {
  source?: string;
  partitionId?: string;
  sequenceNumber?: string;
  offset?: string;
  /** Index of the Event Hub message within the batch. */
  messageIndex?: number;
  /** Index of the record within the message's `records` array. */
  recordIndex?: number;
}

/** A body or record that cannot be used. Never thrown across a batch: it becomes a dead letter. */
export class RecordError extends AgentwatchError {
  readonly position: StreamPosition;
  constructor(code: 'RECORD_UNDECODABLE' | 'RECORD_INVALID', message: string, position: StreamPosition, options?: { cause?: unknown }) {
    super(code, message, options);
    this.position = position;
  }
}

/** An optimistic-concurrency write lost the race (HTTP 412 / 409). The caller re-reads and re-applies. */
export class StateConflictError extends AgentwatchError {
  readonly keys: { partition: string; row: string }[];
  constructor(keys: { partition: string; row: string }[], options?: { cause?: unknown }) {
    super('STATE_CONFLICT', `state changed underneath us for ${keys.length} key(s): ${keys.map((k) => `${k.partition}/${k.row}`).join(', ')}`, options);
    this.keys = keys;
  }
}

export function isAgentwatchError(value: unknown): value is AgentwatchError {
  return value instanceof AgentwatchError || (typeof value === 'object' && value !== null && typeof (value as { code?: unknown }).code === 'string' && (value as Error).name !== undefined && 'code' in value);
}

export function isDetectionLoadError(value: unknown): value is DetectionLoadError {
  return value instanceof DetectionLoadError;
}

export function isConfigError(value: unknown): value is ConfigError {
  return value instanceof ConfigError;
}

export function isStateConflictError(value: unknown): value is StateConflictError {
  return value instanceof StateConflictError;
}

/**
 * One group of alerts a sink could not deliver, and why. `SINK_TRANSIENT` (throttled, 5xx, network,
 * missing role assignment) is worth retrying; `SINK_REJECTED` (the service refused the data itself)
 * is not, and goes to the dead letter.
 */
export interface SinkFailure<Item = unknown> {
  code: 'SINK_TRANSIENT' | 'SINK_REJECTED';
  items: Item[];
  cause: unknown;
  /** HTTP status of the response, when there was one. */
  status?: number;
  /** The service's error code (e.g. `InvalidStream`, `TooManyRequests`), when it sent one. */
  serviceCode?: string;
  /** How long the service asked us to wait (Retry-After), in ms. */
  retryAfterMs?: number;
}

/**
 * A sink delivered some items and not others (Azure SDK `AggregateLogsUploadError` pattern): the
 * failures carry exactly the items to retry or dead-letter, never a status string to ignore. The
 * code is `SINK_REJECTED` only when every failure is a rejection.
 */
export class AggregateSinkError<Item = unknown> extends AgentwatchError {
  readonly sink: string;
  readonly failures: SinkFailure<Item>[];
  constructor(sink: string, failures: SinkFailure<Item>[], options?: { cause?: unknown }) {
    const count = failures.reduce((total, failure) => total + failure.items.length, 0);
    const code = failures.length > 0 && failures.every((failure) => failure.code === 'SINK_REJECTED') ? 'SINK_REJECTED' : 'SINK_TRANSIENT';
    const summary = failures.map((failure) => `${failure.code} (${failure.items.length}) ${describeSinkFailure(failure)}`).join('; ');
    super(code, `${sink}: ${count} item(s) not delivered in ${failures.length} failure(s): ${summary}`, {
      cause: options?.cause ?? failures[0]?.cause,
    });
    this.sink = sink;
    this.failures = failures;
  }
}

/** `HTTP 400 InvalidStream: <message>` / `no response: <message>`, for logs and dead-letter reasons. */
export function describeSinkFailure(failure: SinkFailure): string {
  const status = failure.status !== undefined ? `HTTP ${failure.status}` : 'no response';
  return `${status}${failure.serviceCode ? ` ${failure.serviceCode}` : ''}: ${ensureError(failure.cause).message}`;
}

export function isAggregateSinkError(value: unknown): value is AggregateSinkError {
  return value instanceof AggregateSinkError || (value instanceof Error && value.name === 'AggregateSinkError' && Array.isArray((value as { failures?: unknown }).failures));
}

/** Turns any thrown value into an Error, so logs and dead letters always have a message. */
export function ensureError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : JSON.stringify(value));
}
