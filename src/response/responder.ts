/**
 * The response stage: for each freshly raised alert whose detection proposes actions, decide per
 * action under the guards and fill `alert.actions`. Order of the guards, cheapest and safest first:
 * mode off → target present and a GUID → protected list → Microsoft first-party (ids, inventory) →
 * idempotency claim → verify with a GET (exists, right agent type, protected / first-party by what
 * Graph says, not already disabled) → dryRun / approval stop here → blast-radius cap (over it: an
 * approval) → the Graph write. Every decision is logged; Graph failures never throw out of
 * `respond` (they become `failed` actions); state failures do, so the batch is redelivered and the
 * idempotency marker keeps the redelivery from acting twice.
 */
import type { Alert, AlertAction, ResponseActionName, ResponseMode } from '../alerts/types';
import { isAgentwatchError } from '../errors';
import { getResponsePlan } from '../engine/engine';
import { silentLogger, systemClock, type DirectoryObjectInfo, type InventoryView, type Responder } from '../ports';
import { ActionStore, DEFAULT_APPROVAL_TTL_MS, DEFAULT_LOG_TTL_MS } from './actionLog';
import {
  ACTION_TARGETS,
  DEFAULT_CAPS,
  MODE_ORDER,
  actionIdFor,
  alreadyDoneReason,
  effectiveMode,
  firstPartyLists,
  firstPartyReason,
  invalidIdReason,
  protectedReason,
  wrongTypeReason,
  type CapLimits,
  type FirstPartyLists,
} from './guards';
import type { ActionRecord, PlannedAction, ResponderDeps, ResponsePlan } from './types';

/** Where the responder finds an alert's plan: the alert itself (`responsePlan`, set by the engine) or the config's plans by detection id. */
export type PlanSource = (alert: Alert) => ResponsePlan | undefined;

export interface ResponderOptions {
  planFor?: PlanSource;
}

/** Everything the decision functions share; built once per responder (and per approval request). */
export interface ResponseContext {
  deps: ResponderDeps;
  store: ActionStore;
  protectedIds: ReadonlySet<string>;
  firstParty: FirstPartyLists;
  caps: CapLimits;
  now(): number;
}

export function createResponseContext(deps: ResponderDeps): ResponseContext {
  const config = deps.config ?? {};
  const clock = deps.clock ?? systemClock;
  return {
    deps,
    store: new ActionStore(deps.state, { logMs: config.logTtlMs ?? DEFAULT_LOG_TTL_MS, approvalMs: config.approvalTtlMs ?? DEFAULT_APPROVAL_TTL_MS }),
    protectedIds: new Set((config.protected ?? []).map((id) => id.toLowerCase())),
    firstParty: firstPartyLists(config.firstPartyAppIds, config.firstPartyTenantIds),
    caps: { ...DEFAULT_CAPS, ...config.caps },
    now: () => clock.now(),
  };
}

export function createResponder(deps: ResponderDeps, options: ResponderOptions = {}): Responder {
  const context = createResponseContext(deps);
  const planFor = options.planFor ?? defaultPlanSource(deps.config?.plans);
  return {
    async respond(alerts: Alert[], plans?: ReadonlyMap<string, ResponsePlan>): Promise<Alert[]> {
      const out: Alert[] = [];
      // Sequential on purpose: the cap counts exactly, and Graph sees one write at a time.
      for (const alert of alerts) {
        const plan = plans?.get(alert.id) ?? planFor(alert);
        if (!plan || plan.actions.length === 0) {
          out.push(alert);
          continue;
        }
        const actions: AlertAction[] = [];
        for (const planned of plan.actions) actions.push(await decide(context, alert, planned, plan.mode));
        out.push({ ...alert, actions });
      }
      return out;
    },
  };
}

/**
 * Where a plan comes from when `respond` is not handed one: the plan the engine attached to the
 * alert it raised (resolved values, `if:` conditions applied), an alert carrying its own
 * `responsePlan`, or the config's plans by detection id (field names, read from the alert).
 */
export function defaultPlanSource(plans: Record<string, ResponsePlan> | undefined): PlanSource {
  return (alert) => getResponsePlan(alert) ?? (alert as Alert & { responsePlan?: ResponsePlan }).responsePlan ?? plans?.[alert.detectionId];
}

async function decide(context: ResponseContext, alert: Alert, planned: PlannedAction, ruleMode: ResponseMode | undefined): Promise<AlertAction> {
  const { deps } = context;
  const config = deps.config ?? {};
  const action = planned.action;
  const target = ACTION_TARGETS[action];
  // Unset global setting or rule mode means dryRun: automation is opted into, never implied.
  const mode = effectiveMode(config.globalMode ?? 'dryRun', config.fileMode, config.detectionModes?.[alert.detectionId], ruleMode ?? 'dryRun');
  const targetId = (planned.targetValue ?? readAlertField(alert, planned.target))?.toLowerCase();
  const keyId = action === 'removeBlueprintCredential' ? (planned.keyIdValue ?? (planned.keyId ? readAlertField(alert, planned.keyId) : undefined))?.toLowerCase() : undefined;
  const nowMs = context.now();
  const decidedAt = new Date(nowMs).toISOString();
  const actionId = actionIdFor({ detectionId: alert.detectionId, dedupKey: alert.dedupKey, action, targetId: targetId ?? '', keyId });
  const record: ActionRecord = {
    actionId,
    action,
    mode,
    outcome: 'planned',
    targetId: targetId ?? '',
    targetType: target.entityType,
    targetLookup: /appid$/i.test(planned.target) && target.kind !== 'user' ? 'appId' : 'id',
    keyId,
    credentialKind: planned.credentialKind,
    credentialType: planned.credentialType?.toLowerCase() ?? credentialTypeFromAlert(alert),
    alertId: alert.id,
    detectionId: alert.detectionId,
    dedupKey: alert.dedupKey,
    blueprintAppId: alert.blueprintAppId?.toLowerCase(),
    decidedAt,
    history: [],
  };

  const refusedEarly =
    (mode === 'off' ? 'response mode is off for this detection' : undefined) ??
    invalidIdReason(`target (${planned.target})`, targetId) ??
    (action === 'removeBlueprintCredential' ? invalidIdReason(`credential key id (${planned.keyId ?? 'keyId'})`, keyId) : undefined) ??
    protectedReason([targetId, record.blueprintAppId, ...inventoryChain(deps.inventory, targetId).ids], context.protectedIds) ??
    firstPartyReason(firstPartyFacts(deps.inventory, [targetId, record.blueprintAppId]), context.firstParty) ??
    inventoryFirstPartyReason(deps.inventory, [targetId, record.blueprintAppId]);
  if (refusedEarly) return finish(context, record, 'skipped', refusedEarly, undefined);

  record.deciding = true;
  const claim = await context.store.claim(record, nowMs);
  let etag: string;
  let previousOutcome: ActionRecord['outcome'] | undefined;
  if (claim.claimed) {
    etag = claim.etag;
  } else {
    const existing = claim.existing.value;
    const duplicate = `duplicate: this action was already decided (${existing.outcome}, ${existing.mode}) at ${existing.decidedAt} for alert ${existing.alertId}`;
    if (!mayRedecide(existing, mode, nowMs)) return finish(context, record, 'skipped', existing.deciding ? `duplicate: another instance is deciding this action since ${existing.decidedAt}` : duplicate, undefined);
    record.history = existing.history;
    // Take the record over by compare-and-swap before acting: of two redeliveries, one proceeds.
    const taken = await context.store.reclaim(record, claim.existing.etag, nowMs);
    if (taken === undefined) return finish(context, record, 'skipped', duplicate, undefined);
    etag = taken;
    previousOutcome = existing.outcome;
  }

  if (mode === 'dryRun' && !deps.graph) {
    return finish(context, record, 'planned', `dry run: would ${target.describe(targetId!, keyId)} (not verified: no Graph client in this host)`, { etag, previousOutcome });
  }
  if (mode === 'approval' && !deps.graph) {
    return finish(context, record, 'pendingApproval', `waiting for approval to ${target.describe(targetId!, keyId)}; verified when approved`, { etag, previousOutcome });
  }

  const verified = await verifyTarget(context, record);
  if (!verified.ok) return finish(context, record, verified.outcome, verified.reason, { etag, previousOutcome }, verified.errorCode);
  const what = target.describe(named(verified.info), keyId);

  if (mode === 'dryRun') return finish(context, record, 'planned', `dry run: would ${what} (verified ${verified.info.odataType})`, { etag, previousOutcome });
  if (mode === 'approval') return finish(context, record, 'pendingApproval', `waiting for approval to ${what}`, { etag, previousOutcome });

  const capBlueprint = record.blueprintAppId ?? verified.info.agentIdentityBlueprintId ?? (target.entityType === 'blueprint' || target.entityType === 'blueprintPrincipal' ? verified.info.appId : undefined);
  const overCap = await context.store.reserveCap(nowMs, context.caps, capBlueprint);
  if (overCap) return finish(context, record, 'pendingApproval', overCap, { etag, previousOutcome });

  const result = await executeVerified(context, record, verified);
  return finish(context, record, result.outcome, result.reason, { etag, previousOutcome }, result.errorCode);
}

/** How long a claim may stay undecided before a redelivery may assume its decider died. Longer than a Graph call's retry budget. */
const CLAIM_LEASE_MS = 5 * 60_000;

/**
 * Final decisions stay final. Exceptions: a dry-run decision may be replaced by a live one
 * when the mode was raised; a transient Graph failure may be retried; a claim whose decider died
 * before recording a decision may be taken over once its lease lapsed.
 */
function mayRedecide(existing: ActionRecord, mode: ResponseMode, nowMs: number): boolean {
  if (existing.deciding) return nowMs - Date.parse(existing.decidedAt) > CLAIM_LEASE_MS;
  if (existing.outcome === 'planned' && MODE_ORDER.indexOf(mode) > MODE_ORDER.indexOf(existing.mode)) return true;
  return existing.outcome === 'failed' && existing.errorCode === 'GRAPH_TRANSIENT';
}

export type Verification =
  | { ok: true; info: DirectoryObjectInfo; credentialKind?: 'password' | 'key' | 'federated' }
  | { ok: false; outcome: 'skipped' | 'alreadyGone' | 'failed'; reason: string; errorCode?: string };

/** GET the object and apply every guard that needs to know what it really is. Used again at approval time. */
export async function verifyTarget(context: ResponseContext, record: ActionRecord): Promise<Verification> {
  const { graph, inventory } = context.deps;
  const target = ACTION_TARGETS[record.action];
  if (!graph) return { ok: false, outcome: 'failed', reason: `cannot ${target.describe(record.targetId, record.keyId)}: no Graph client is configured in this host` };
  let info: DirectoryObjectInfo | undefined;
  try {
    info = await graph.getObject(target.kind, record.targetId, { by: record.targetLookup });
  } catch (error) {
    return { ok: false, outcome: 'failed', reason: messageOf(error), errorCode: codeOf(error) };
  }
  if (!info) return { ok: false, outcome: 'alreadyGone', reason: `${target.kind} ${record.targetId} not found in Graph: already gone` };
  const chain = inventoryChain(inventory, info.identityParentId ?? info.agentIdentityBlueprintId);
  const refused =
    wrongTypeReason(record.action, info) ??
    protectedReason([info.id, info.appId, info.displayName, info.agentIdentityBlueprintId, info.identityParentId, ...chain.ids], context.protectedIds) ??
    firstPartyReason(
      { appIds: [info.appId, info.agentIdentityBlueprintId, ...chain.ids], ownerTenantIds: [info.appOwnerOrganizationId, ...chain.ownerTenantIds] },
      context.firstParty,
    ) ??
    inventoryFirstPartyReason(inventory, [info.identityParentId ?? info.agentIdentityBlueprintId]) ??
    alreadyDoneReason(record.action, info);
  if (refused) return { ok: false, outcome: 'skipped', reason: refused };
  if (record.action !== 'removeBlueprintCredential') return { ok: true, info };
  const kind = credentialKind(record, info);
  if (!kind) return { ok: false, outcome: 'alreadyGone', reason: `credential ${record.keyId} is no longer on blueprint ${info.id}: already gone` };
  return { ok: true, info, credentialKind: kind };
}

/** The Graph write for an already verified target. */
export async function executeVerified(context: ResponseContext, record: ActionRecord, verified: Extract<Verification, { ok: true }>): Promise<{ outcome: 'succeeded' | 'alreadyGone' | 'failed'; reason: string; errorCode?: string }> {
  const graph = context.deps.graph!;
  const objectId = verified.info.id;
  const what = ACTION_TARGETS[record.action].describe(named(verified.info), record.keyId);
  try {
    await runAction(graph, record.action, objectId, record.keyId, verified.credentialKind);
    return { outcome: 'succeeded', reason: `done: ${what}` };
  } catch (error) {
    if (isAgentwatchError(error) && error.code === 'GRAPH_NOT_FOUND') return { outcome: 'alreadyGone', reason: `already gone: ${error.message}` };
    return { outcome: 'failed', reason: messageOf(error), errorCode: codeOf(error) };
  }
}

function runAction(graph: NonNullable<ResponderDeps['graph']>, action: ResponseActionName, objectId: string, keyId: string | undefined, kind: 'password' | 'key' | 'federated' | undefined): Promise<void> {
  switch (action) {
    case 'confirmCompromised':
      return graph.confirmCompromised([objectId]);
    case 'disableAgentIdentity':
      return graph.disableAgentIdentity(objectId);
    case 'disableBlueprintPrincipal':
      return graph.disableBlueprintPrincipal(objectId);
    case 'removeBlueprintCredential':
      return graph.removeBlueprintCredential(objectId, keyId!, kind!);
    case 'revokeAgentUserSessions':
      return graph.revokeAgentUserSessions(objectId);
  }
}

/** Records the decision on the action record (when claimed), in the action log, and returns the alert's view of it. */
export async function finish(
  context: ResponseContext,
  record: ActionRecord,
  outcome: ActionRecord['outcome'],
  reason: string,
  claimed: { etag: string; previousOutcome: ActionRecord['outcome'] | undefined } | undefined,
  errorCode?: string,
  by?: string,
): Promise<AlertAction> {
  const nowMs = context.now();
  const at = new Date(nowMs).toISOString();
  delete record.deciding;
  record.outcome = outcome;
  record.reason = reason;
  record.decidedAt = at;
  record.errorCode = errorCode;
  record.history = [...record.history, { outcome, reason, at, ...(by ? { by } : {}) }];
  if (claimed) await context.store.save(record, claimed.etag, claimed.previousOutcome, nowMs);
  await context.store.log(
    { actionId: record.actionId, action: record.action, mode: record.mode, outcome, reason, targetId: record.targetId, alertId: record.alertId, detectionId: record.detectionId, at, ...(by ? { by } : {}) },
    nowMs,
  );
  (context.deps.logger ?? silentLogger).log(outcome === 'failed' ? 'warn' : 'info', `response ${record.action} ${outcome}`, {
    actionId: record.actionId,
    detectionId: record.detectionId,
    alertId: record.alertId,
    mode: record.mode,
    targetId: record.targetId,
    reason,
  });
  return toAlertAction(record);
}

export function toAlertAction(record: ActionRecord): AlertAction {
  return {
    action: record.action,
    mode: record.mode,
    targetId: record.targetId,
    targetType: record.targetType,
    outcome: record.outcome,
    ...(record.reason ? { reason: record.reason } : {}),
    actionId: record.actionId,
    decidedAt: record.decidedAt,
  };
}

/** Which removal call fits the key id: what Graph lists on the blueprint first, the event's credential type second. */
function credentialKind(record: ActionRecord, info: DirectoryObjectInfo): 'password' | 'key' | 'federated' | undefined {
  const keyId = record.keyId!;
  if (record.credentialKind) {
    const listed = record.credentialKind === 'password' ? info.passwordKeyIds : record.credentialKind === 'key' ? info.certificateKeyIds : undefined;
    return listed && !listed.includes(keyId) ? undefined : record.credentialKind;
  }
  if (info.passwordKeyIds?.includes(keyId)) return 'password';
  if (info.certificateKeyIds?.includes(keyId)) return 'key';
  const hint = record.credentialType ?? '';
  if (hint.includes('federated')) return 'federated';
  // Both lists came back and the key is on neither: a password or certificate that is already gone.
  if (info.passwordKeyIds && info.certificateKeyIds && /password|x509|cert|symmetric/.test(hint)) return undefined;
  if (/password/.test(hint)) return 'password';
  if (/x509|cert|symmetric/.test(hint)) return 'key';
  // Not a listed password or key: a federated credential id, or gone (the DELETE's 404 says which).
  return 'federated';
}

/** Reads an event-field path from the alert: its top-level copies, its entities by type, then its details. */
export function readAlertField(alert: Alert, field: string): string | undefined {
  const top = (alert as unknown as Record<string, unknown>)[field];
  if (typeof top === 'string' && top) return top;
  const entityType = FIELD_ENTITY[field];
  if (entityType) {
    const entity = alert.entities.find((candidate) => candidate.type === entityType);
    if (entity) return field === 'blueprintAppId' ? (entity.appId ?? entity.id) : entity.id;
  }
  const details = alert.details ?? {};
  const last = field.split('.').pop()!;
  for (const name of [field, last, `${last}s`]) {
    const value = details[name];
    if (typeof value === 'string' && value) return value;
    if (Array.isArray(value) && typeof value[0] === 'string') return value[0];
  }
  return undefined;
}

const FIELD_ENTITY: Record<string, string> = {
  agentIdentityId: 'agentIdentity',
  blueprintAppId: 'blueprint',
  agentUserId: 'agentUser',
};

function credentialTypeFromAlert(alert: Alert): string | undefined {
  const details = alert.details ?? {};
  for (const name of ['credentialType', 'keyType', 'credential.type']) {
    const value = details[name];
    if (typeof value === 'string') return value.toLowerCase();
    if (Array.isArray(value) && typeof value[0] === 'string') return value[0].toLowerCase();
  }
  return undefined;
}

/** Ids, owner tenants and first-party flags of an entity and its ancestors in the inventory (agent user → agent identity → blueprint). */
function inventoryChain(inventory: InventoryView | undefined, id: string | undefined): { ids: string[]; ownerTenantIds: string[]; firstParty: boolean } {
  const chain = { ids: [] as string[], ownerTenantIds: [] as string[], firstParty: false };
  let current = id;
  for (let depth = 0; inventory && current && depth < 3; depth++) {
    const entity = inventory.lookup(current);
    if (!entity) break;
    for (const value of [entity.id, entity.appId, entity.parentId]) if (value) chain.ids.push(value);
    if (entity.ownerTenantId) chain.ownerTenantIds.push(entity.ownerTenantId);
    if (entity.appId && inventory.isFirstParty({ appId: entity.appId, ownerTenantId: entity.ownerTenantId })) chain.firstParty = true;
    current = entity.parentId;
  }
  return chain;
}

/** The inventory's own first-party judgement (its list includes the config's extra app ids) on an id or its ancestors. */
function inventoryFirstPartyReason(inventory: InventoryView | undefined, ids: (string | undefined)[]): string | undefined {
  const flagged = ids.find((id) => inventoryChain(inventory, id).firstParty);
  return flagged ? `Microsoft first-party: the inventory marks ${flagged} (or its parent) first-party` : undefined;
}

function firstPartyFacts(inventory: InventoryView | undefined, ids: (string | undefined)[]): { appIds: (string | undefined)[]; ownerTenantIds: (string | undefined)[] } {
  const appIds: (string | undefined)[] = [...ids];
  const ownerTenantIds: string[] = [];
  for (const id of ids) {
    const chain = inventoryChain(inventory, id);
    appIds.push(...chain.ids);
    ownerTenantIds.push(...chain.ownerTenantIds);
  }
  return { appIds, ownerTenantIds };
}

/** An object id with its display name, for reasons an analyst reads. */
function named(info: DirectoryObjectInfo): string {
  return info.displayName ? `${info.id} '${info.displayName}'` : info.id;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function codeOf(error: unknown): string | undefined {
  return isAgentwatchError(error) ? error.code : undefined;
}
