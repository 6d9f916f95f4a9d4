/**
 * The ports the core talks to. Adapters (Table Storage, Logs Ingestion, Graph, console) implement
 * these and are injected at the host (Function, local runner, replay, tests); the core never
 * imports an adapter. Each port is small and names its role.
 */
import type { Alert, AlertAction } from './alerts/types';
import type { StreamPosition } from './errors';
import type { AgentEvent, Principal } from './normalize/types';
import type { ResponsePlan } from './response/types';

// ---------------------------------------------------------------------------------------------
// State

/** A key designed for Table Storage: `partition` spreads load, `row` is unique inside it. */
export interface StateKey {
  partition: string;
  row: string;
}

/** The key form `StateStore.commit` uses in the etag map it returns: `${partition}\u0000${row}`. */
export function stateKeyId(key: StateKey): string {
  return `${key.partition}\u0000${key.row}`;
}

export interface StateRecord<T = unknown> {
  key: StateKey;
  value: T;
  /** Opaque concurrency token; pass it back as `ifMatch` to update only if unchanged. */
  etag: string;
  /** Epoch ms after which the record is dead: never returned by `get`/`list`, removed by the sweep. */
  expiresAt?: number;
}

export type StateWrite =
  | {
      op: 'put';
      key: StateKey;
      value: unknown;
      expiresAt?: number;
      /** Update only if the stored etag equals this. `undefined` = create only if absent. `'*'` = unconditional. */
      ifMatch?: string;
    }
  | { op: 'delete'; key: StateKey; ifMatch?: string };

/**
 * Durable key/value state with compare-and-swap. `commit` groups writes per partition into atomic
 * transactions (≤100 per transaction on Table Storage) and throws `StateConflictError` naming the
 * keys whose condition failed; writes of the other partitions are applied.
 * A transaction that fails applies none of its writes; the Table adapter names every key of such a
 * transaction (the service reports only the first failing one), so treat the named keys as "not
 * written", re-read them and re-apply. A commit naming one key twice is refused (STATE_WRITE_REFUSED).
 */
export interface StateStore {
  get<T>(key: StateKey): Promise<StateRecord<T> | undefined>;
  /** Every live record of a partition whose row starts with `rowPrefix` (outbox, action log, sweep). */
  list<T>(partition: string, rowPrefix?: string): Promise<StateRecord<T>[]>;
  /** Returns the new etag of every written key, `${partition}\u0000${row}` → etag. */
  commit(writes: StateWrite[]): Promise<Map<string, string>>;
}

// ---------------------------------------------------------------------------------------------
// Alerts

/**
 * Where alerts go: console/NDJSON, Sentinel (Logs Ingestion), another Event Hub. `send` resolves
 * only when every alert was accepted; a partial failure throws an aggregate error carrying the
 * failed alerts so the caller can retry exactly those.
 */
export interface AlertSink {
  send(alerts: Alert[]): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Dead letters

export interface DeadLetter {
  /** RECORD_UNDECODABLE | RECORD_INVALID | SINK_REJECTED … */
  code: string;
  reason: string;
  position: StreamPosition;
  /** Category when known, for the per-category summary. */
  category?: string;
  /** The offending body or record (truncated by the adapter if huge). */
  payload: unknown;
  at: string;
}

export interface DeadLetterSink {
  put(letters: DeadLetter[]): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Graph (response and inventory refresh)

/** What a GET of a directory object tells the response guards. */
export interface DirectoryObjectInfo {
  id: string;
  /** The OData type, e.g. `#microsoft.graph.agentIdentity`. */
  odataType?: string;
  appId?: string;
  displayName?: string;
  accountEnabled?: boolean;
  appOwnerOrganizationId?: string;
  /** Agent identities: the blueprint app id they belong to. */
  agentIdentityBlueprintId?: string;
  /** Agent users: the object id of their agent identity. */
  identityParentId?: string;
  /** Applications (blueprints): key ids of their password and certificate credentials, when the GET returned them. */
  passwordKeyIds?: string[];
  certificateKeyIds?: string[];
}

/**
 * The Microsoft Graph actions agentwatch may take. Each write is called only after the response
 * guards allowed it; the adapter maps Graph errors to typed errors (403 → GRAPH_PERMISSION_MISSING
 * naming the permission, 404 → GRAPH_NOT_FOUND, 429/5xx retried then GRAPH_TRANSIENT).
 */
export interface GraphActions {
  /** Undefined when the object does not exist (404). `by: 'appId'` looks an application / service principal up by its app id. */
  getObject(kind: 'servicePrincipal' | 'application' | 'user', id: string, options?: { by?: 'id' | 'appId' }): Promise<DirectoryObjectInfo | undefined>;
  confirmCompromised(agentIds: string[]): Promise<void>;
  disableAgentIdentity(agentIdentityId: string): Promise<void>;
  disableBlueprintPrincipal(blueprintPrincipalId: string): Promise<void>;
  removeBlueprintCredential(blueprintObjectId: string, keyId: string, kind: 'password' | 'key' | 'federated'): Promise<void>;
  revokeAgentUserSessions(agentUserId: string): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Inventory (resolve stage)

export type InventoryKind = 'blueprint' | 'blueprintPrincipal' | 'agentIdentity' | 'agentUser' | 'classicAgent';

/** One agent entity as the inventory knows it. */
export interface InventoryEntity {
  kind: InventoryKind;
  /** Object id (application object id for blueprints, SP object id, user object id). */
  id?: string;
  appId?: string;
  name?: string;
  upn?: string;
  /** Agent identity → blueprint app id; agent user → agent identity object id; blueprint principal → blueprint app id. */
  parentId?: string;
  ownerTenantId?: string;
  /** Owner / maker UPNs or object ids when known. */
  owners?: string[];
  /** False once deleted / disabled. */
  live: boolean;
  /** Epoch ms of the first record in which the entity appeared (any role): learning periods start here. */
  firstSeenMs?: number;
  /** App id of the app that created the object (audit initiator of its creation), when known. Rule look-up `@createdBy`. */
  createdByAppId?: string;
}

/** Read side of the entity inventory, as detections use it. */
export interface InventoryView {
  /** By object id or app id. */
  lookup(id: string): InventoryEntity | undefined;
  /** The blueprint principal (the blueprint's service principal) of a blueprint, by its app id or application object id. */
  blueprintPrincipal(blueprintId: string): InventoryEntity | undefined;
  /** Live children of a blueprint (agent identities) or of an agent identity (agent user). */
  children(parentId: string): InventoryEntity[];
  /** Epoch ms of the first record any principal with this id appeared in, or undefined. */
  firstSeen(id: string): number | undefined;
  isFirstParty(principal: Pick<Principal, 'appId' | 'ownerTenantId'>): boolean;
}

// ---------------------------------------------------------------------------------------------
// Response

/** Plans and (per mode) executes the response actions of freshly raised alerts, filling `alert.actions`. */
export interface Responder {
  /**
   * `plans`: each raised alert's resolved response plan by alert id, as the engine returns them
   * (`EngineBatchResult.responsePlans`); an alert without one is returned unchanged.
   */
  respond(alerts: Alert[], plans?: ReadonlyMap<string, ResponsePlan>): Promise<Alert[]>;
}

export type { Alert, AlertAction };

// ---------------------------------------------------------------------------------------------
// Clock and logging

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Structured logger: a message and a flat bag of fields. Hosts map it to context.log / stderr. */
export interface Logger {
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { log: () => undefined };

// ---------------------------------------------------------------------------------------------
// Detection engine (evaluate stage)


/**
 * Evaluates normalized, resolved events against the compiled detections. Stateful: it reads and
 * writes its windows through the `StateStore` it was built with, and persists before resolving,
 * so a redelivered batch neither counts twice nor alerts twice.
 */
export interface DetectionEngine {
  evaluate(events: AgentEvent[], inventory: InventoryView): Promise<Alert[]>;
  /**
   * Optional: the pipeline calls it once the sink accepted these alerts; acknowledged alerts fold
   * on redelivery. Without it, an alert met again by another instance or after a restart is
   * re-emitted with the same id (the outbox folds it by id), so a crash between evaluate and send
   * loses nothing; the instance that returned it folds it.
   */
  acknowledge?(alerts: Alert[]): Promise<void>;
  /** Optional: events the config file's exceptions kept from triggering a detection so far, by `<detectionId>/<exception>`. */
  exceptionHits?(): Record<string, number>;
}
