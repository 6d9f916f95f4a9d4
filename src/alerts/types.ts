/**
 * The alert model. `schemas/alert.schema.json` is the single source of the field list: the
 * Sentinel custom table, the DCR stream declaration and this type must agree (a test checks).
 */

export type Severity = 'informational' | 'low' | 'medium' | 'high' | 'critical';

export const SEVERITIES: readonly Severity[] = ['informational', 'low', 'medium', 'high', 'critical'];

export type AlertEntityType =
  | 'agentIdentity'
  | 'blueprint'
  | 'blueprintPrincipal'
  | 'agentUser'
  | 'classicAgent'
  | 'user'
  | 'servicePrincipal'
  | 'application'
  | 'managedIdentity'
  | 'ip'
  | 'resource';

/** An entity in an alert, carrying every id known for the object (DETECTIONS.md "Entities in alerts"). */
export interface AlertEntity {
  type: AlertEntityType;
  /** Primary id: object id (agent identity, user, SP), blueprint app id, IP string. */
  id: string;
  name?: string;
  appId?: string;
  objectId?: string;
  upn?: string;
  /** Blueprints: the blueprint principal's object id, when known. */
  principalId?: string;
}

export type ResponseActionName =
  | 'confirmCompromised'
  | 'disableAgentIdentity'
  | 'disableBlueprintPrincipal'
  | 'removeBlueprintCredential'
  | 'revokeAgentUserSessions';

export type ResponseMode = 'off' | 'dryRun' | 'approval' | 'auto';

export type ActionOutcome =
  /** dryRun: what would have been done. */
  | 'planned'
  /** approval: queued, waiting for a human. */
  | 'pendingApproval'
  | 'approved'
  | 'rejected'
  | 'succeeded'
  /** 404: the object is already gone. */
  | 'alreadyGone'
  /** A guard refused (protected, first-party, wrong type, cap reached, invalid id, duplicate). */
  | 'skipped'
  | 'failed';

export interface AlertAction {
  action: ResponseActionName;
  mode: ResponseMode;
  /** The object acted on (object id, or key id for credential removal with `targetObjectId`). */
  targetId: string;
  targetType?: AlertEntityType;
  outcome: ActionOutcome;
  /** Why: the guard that skipped it, the error, the approval reference. */
  reason?: string;
  /** Idempotency key: alert id + action + target. */
  actionId: string;
  decidedAt: string;
}

export interface Alert {
  /** Deterministic: derived from detection id, dedup key and the suppression bucket, so a redelivered batch yields the same id. */
  id: string;
  detectionId: string;
  detectionVersion?: number;
  title: string;
  description?: string;
  severity: Severity;
  /** experimental | test | stable: the rule's maturity. */
  status?: string;
  /** Event time of the earliest and latest evidence, ISO UTC. */
  firstEventTime: string;
  lastEventTime: string;
  /** When agentwatch raised it, ISO UTC. */
  createdTime: string;
  tenantId?: string;
  entities: AlertEntity[];
  /** One incident = one dedup key: Sentinel groups alerts on it. */
  dedupKey: string;
  /** Ids of the records that fired it. */
  evidence: string[];
  /** ATT&CK tactic names (e.g. Persistence) and technique ids (e.g. T1098.001). */
  tactics: string[];
  techniques: string[];
  actions: AlertAction[];
  /** What the analyst checks first. */
  triage?: string;
  /** Detection-specific values (counts, scopes, key ids, IPs …) for the analyst and Sentinel custom details. */
  details?: Record<string, unknown>;
  /** Convenience copies for Sentinel custom details / incident grouping. */
  blueprintAppId?: string;
  agentIdentityId?: string;
}
