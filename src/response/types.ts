/** Types of the response stage: the plan a rule carries, the responder's configuration, the action log. */
import type { ActionOutcome, AlertEntityType, ResponseActionName, ResponseMode } from '../alerts/types';
import type { Clock, GraphActions, InventoryView, Logger, StateStore } from '../ports';
import type { CapLimits } from './guards';

/** One action of a rule's `response:` block (docs/rule-language.md §7). */
export interface PlannedAction {
  action: ResponseActionName;
  /** Event field naming the target, e.g. `agentIdentityId`, `blueprintAppId`. */
  target: string;
  /** Event field naming the credential key id (removeBlueprintCredential). */
  keyId?: string;
  /** The values read from the alert's last event, when the engine resolved them already. */
  targetValue?: string;
  keyIdValue?: string;
  /** The rule's `credentialKind`, when it states which removal call fits. */
  credentialKind?: 'password' | 'key' | 'federated';
  /** Credential type when known from the event (`password`, `asymmetricx509cert`, `federatedidentitycredential` …). */
  credentialType?: string;
}

/** A rule's `response:` block. */
export interface ResponsePlan {
  mode?: ResponseMode;
  actions: PlannedAction[];
}

/**
 * Response settings from the app settings and the config file. Every field is optional; defaults:
 * mode `dryRun`, empty protected list, the shipped first-party lists, caps 20 per hour / 3 per
 * blueprint per hour, approvals pending for 7 days, the action log kept 90 days.
 */
export interface ResponseConfig {
  /** `AGENTWATCH_RESPONSE_MODE`: the global ceiling. Unset = dryRun. */
  globalMode?: ResponseMode;
  /** Config file `response.mode`. */
  fileMode?: ResponseMode;
  /** Config file `detections.<id>.response.mode`. */
  detectionModes?: Record<string, ResponseMode>;
  /** Config file `response.protected`: object ids, app ids or display names never acted on. */
  protected?: string[];
  /** Config file `lists.firstPartyAppIds` / tenant ids: extend the shipped first-party lists. */
  firstPartyAppIds?: string[];
  firstPartyTenantIds?: string[];
  /** Config file `response.caps`. */
  caps?: Partial<CapLimits>;
  /** Rule response blocks by detection id, for alerts that do not carry their plan. */
  plans?: Record<string, ResponsePlan>;
  /** How long an approval waits before it lapses. */
  approvalTtlMs?: number;
  /** How long action-log entries and idempotency markers are kept. */
  logTtlMs?: number;
}

export interface ResponderDeps {
  /** Absent in replay / demo: dryRun and approval still work, auto actions fail with a clear reason. */
  graph?: GraphActions;
  state: StateStore;
  inventory?: InventoryView;
  config?: ResponseConfig;
  clock?: Clock;
  logger?: Logger;
}

/** The state-store record of one action for one incident: idempotency marker, approval item and latest decision. */
export interface ActionRecord {
  actionId: string;
  action: ResponseActionName;
  mode: ResponseMode;
  outcome: ActionOutcome;
  reason?: string;
  /** The id the alert named (object id, or app id for blueprint actions). */
  targetId: string;
  targetType: AlertEntityType;
  /** How the target is looked up in Graph. */
  targetLookup: 'id' | 'appId';
  keyId?: string;
  credentialKind?: 'password' | 'key' | 'federated';
  credentialType?: string;
  alertId: string;
  detectionId: string;
  dedupKey: string;
  blueprintAppId?: string;
  decidedAt: string;
  /** Set while a decider holds the claim and has not recorded its decision yet. */
  deciding?: boolean;
  /** Error code of the last failure, so a transient one may be retried on redelivery. */
  errorCode?: string;
  approval?: { decision: 'approve' | 'reject'; approver: string; reason?: string; decidedAt: string };
  history: { outcome: ActionOutcome; reason?: string; at: string; by?: string }[];
}

/** One line of the append-only action log. */
export type ActionLogEntry = Pick<ActionRecord, 'actionId' | 'action' | 'mode' | 'outcome' | 'reason' | 'targetId' | 'alertId' | 'detectionId'> & {
  at: string;
  by?: string;
};
