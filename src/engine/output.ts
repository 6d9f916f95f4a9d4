/**
 * From a firing to an alert: deterministic identity (dedup key, suppression bucket, alert id), title
 * and details templates, entities enriched from the inventory, dynamic severity, ATT&CK, and the
 * resolved response plan the response stage executes.
 */
import type { Alert, AlertEntity, Severity } from '../alerts/types';
import type { AgentEvent } from '../normalize/types';
import { isGuidShaped } from '../normalize/values';
import type { PlannedAction, ResponsePlan } from '../response/types';
import type { CompiledCondition } from './condition';
import { isSeverity } from './compile';
import { keyText, valuesOf, type FieldGetter } from './fields';
import { alertIdOf } from './hash';
import type { FireInfo } from './kinds/keyState';
import { LIMITS } from './kinds/keyState';
import { fold } from './text';
import type { AggregateName, CompiledDetection, RuleEvalContext, TemplatePart } from './types';

const UNKNOWN = '<unknown>';
const MAX_PLANNED_ACTIONS = 20;

export interface AlertIdentity {
  dedupKey: string;
  alertId: string;
}

/** `<detectionId>:<v1>|<v2>`; the alert id adds the suppression bucket, or the triggering event when there is no suppression. */
export function alertIdentity(detection: CompiledDetection, event: AgentEvent, ctx: RuleEvalContext, lastMs: number, triggerId: string): AlertIdentity {
  const parts = detection.output.dedupKey.map((getter) =>
    valuesOf(getter(event, ctx))
      .map((value) => keyText(value))
      .filter((text): text is string => text !== undefined)
      .map((text) => text.toLowerCase())
      .sort()
      .join(','),
  );
  const dedupKey = `${detection.id}:${parts.join('|')}`;
  const suppressMs = detection.output.suppressMs;
  const scope = suppressMs > 0 ? `bucket:${Math.floor(lastMs / suppressMs)}` : `event:${triggerId}`;
  return { dedupKey, alertId: alertIdOf([detection.id, dedupKey, scope]) };
}

function renderValue(value: unknown): string | undefined {
  const texts = valuesOf(value)
    .map((element) => (typeof element === 'object' ? keyText(element) : String(element)))
    .filter((text): text is string => text !== undefined && text !== '');
  return texts.length ? [...new Set(texts)].join(', ') : undefined;
}

function aggregateValue(name: AggregateName, fire: FireInfo, windowText: string | undefined): unknown {
  switch (name) {
    case 'count':
      return fire.count;
    case 'distinct':
      return fire.distinct;
    case 'distinctValues':
      return fire.distinctValues;
    case 'mean':
      return fire.mean;
    case 'window':
      return windowText;
  }
}

function renderTemplate(parts: readonly TemplatePart[], event: AgentEvent, ctx: RuleEvalContext, fire: FireInfo, windowText: string | undefined): string {
  let out = '';
  for (const part of parts) {
    if ('literal' in part) out += part.literal;
    else if ('getter' in part) out += renderValue(part.getter(event, ctx)) ?? UNKNOWN;
    else out += renderValue(aggregateValue(part.aggregate, fire, windowText)) ?? UNKNOWN;
  }
  return out;
}

function firstText(getter: FieldGetter | undefined, event: AgentEvent, ctx: RuleEvalContext): string | undefined {
  if (!getter) return undefined;
  for (const value of valuesOf(getter(event, ctx))) {
    const text = keyText(value);
    if (text) return text;
  }
  return undefined;
}

function entitiesOf(detection: CompiledDetection, event: AgentEvent, ctx: RuleEvalContext): AlertEntity[] {
  const out: AlertEntity[] = [];
  const seen = new Set<string>();
  for (const entity of detection.output.entities) {
    for (const value of valuesOf(entity.id(event, ctx))) {
      const id = keyText(value);
      if (!id) continue;
      const built: AlertEntity = { type: entity.type, id };
      const name = firstText(entity.name, event, ctx);
      const upn = firstText(entity.upn, event, ctx);
      const appId = firstText(entity.appId, event, ctx);
      const objectId = firstText(entity.objectId, event, ctx);
      const principalId = firstText(entity.principalId, event, ctx);
      if (entity.type !== 'ip') {
        // The inventory adds the ids it knows (DETECTIONS.md "Entities in alerts").
        const known = ctx.inventory.lookup(id);
        if (known) {
          if (known.appId && known.appId !== id) built.appId = known.appId;
          // A blueprint known only through its principal: that object id is the principal's, not the application's.
          if (known.id && known.id !== id) {
            if (entity.type === 'blueprint' && known.kind === 'blueprintPrincipal') built.principalId = known.id;
            else built.objectId = known.id;
          }
          if (known.name) built.name = known.name;
          if (known.upn) built.upn = known.upn;
        }
      }
      if (name) built.name = name;
      if (upn) built.upn = upn;
      if (appId) built.appId = appId;
      if (objectId) built.objectId = objectId;
      if (principalId) built.principalId = principalId;
      if (entity.type === 'user' || entity.type === 'agentUser') identifyAccount(built);
      else if (entity.type === 'blueprint' && !built.principalId) {
        const principal = ctx.inventory.blueprintPrincipal(built.appId ?? id);
        if (principal?.id) built.principalId = principal.id;
      }
      // After the ids are settled: one user named by UPN in one field and by object id in another is one entity.
      const dedupe = `${built.type}\u0000${built.id.toLowerCase()}`;
      if (seen.has(dedupe)) continue;
      seen.add(dedupe);
      out.push(built);
    }
  }
  return out;
}

/**
 * A user's or agent user's entity is named by its object id whenever one is known, by its UPN
 * otherwise, and carries both when both are known: every detection then names one person alike,
 * and Sentinel's Account mapping (AadUserId from `objectId`) never receives a UPN.
 */
function identifyAccount(entity: AlertEntity): void {
  if (entity.upn === undefined && entity.id.includes('@')) entity.upn = entity.id;
  if (entity.objectId === undefined && isGuidShaped(entity.id)) entity.objectId = entity.id;
  if (entity.objectId !== undefined && isGuidShaped(entity.objectId)) entity.id = entity.objectId;
}

function severityOf(detection: CompiledDetection, event: AgentEvent, ctx: RuleEvalContext, test: (condition: CompiledCondition) => boolean): Severity {
  for (const rule of detection.severityWhen) {
    if ('when' in rule) {
      if (test(rule.when)) return rule.severity;
      continue;
    }
    for (const value of valuesOf(rule.field(event, ctx))) {
      const text = typeof value === 'string' ? fold(value) : undefined;
      if (text === undefined) continue;
      const mapped = rule.map ? rule.map.get(text) : isSeverity(text) ? text : undefined;
      if (mapped) return mapped;
    }
  }
  return detection.severity;
}

function responsePlanOf(detection: CompiledDetection, event: AgentEvent, ctx: RuleEvalContext, test: (condition: CompiledCondition) => boolean): ResponsePlan | undefined {
  if (!detection.response) return undefined;
  const actions: PlannedAction[] = [];
  for (const action of detection.response.actions) {
    if (action.when && !test(action.when)) continue;
    const targets = valuesOf(action.targetGetter(event, ctx)).map(keyText).filter((text): text is string => !!text);
    const keyIds = action.keyIdGetter ? valuesOf(action.keyIdGetter(event, ctx)).map(keyText).filter((text): text is string => !!text) : [undefined];
    for (const targetValue of [...new Set(targets)]) {
      for (const keyIdValue of [...new Set(keyIds)]) {
        if (action.keyIdGetter && !keyIdValue) continue;
        if (actions.length >= MAX_PLANNED_ACTIONS) break;
        actions.push({
          action: action.action,
          target: action.target,
          targetValue,
          ...(action.keyId ? { keyId: action.keyId } : {}),
          ...(keyIdValue ? { keyIdValue } : {}),
          ...(action.credentialKind ? { credentialType: { password: 'password', key: 'asymmetricx509cert', federated: 'federatedidentitycredential' }[action.credentialKind] } : {}),
        });
      }
    }
  }
  if (actions.length === 0) return undefined;
  return { mode: detection.response.mode, actions };
}

function windowTextOf(detection: CompiledDetection): string | undefined {
  const stateful = detection.stateful;
  if (!stateful || !('windowMs' in stateful) || !stateful.windowMs) return undefined;
  const ms = stateful.windowMs;
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1_000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

export interface BuiltAlert {
  alert: Alert;
  plan?: ResponsePlan;
}

export function buildAlert(
  detection: CompiledDetection,
  event: AgentEvent,
  ctx: RuleEvalContext,
  fire: FireInfo,
  identity: AlertIdentity,
  evidence: readonly string[],
  nowMs: number,
  test: (condition: CompiledCondition) => boolean,
): BuiltAlert {
  const windowText = windowTextOf(detection);
  const details: Record<string, unknown> = {};
  for (const detail of detection.output.details) {
    let value: unknown;
    if ('literal' in detail) value = detail.literal;
    else if ('getter' in detail) {
      const raw = detail.getter(event, ctx);
      const values = valuesOf(raw).map((v) => (typeof v === 'object' ? keyText(v) : v)).filter((v) => v !== undefined);
      // An array field stays a list even with one element, so consumers see one shape per detail.
      value = values.length === 0 ? undefined : Array.isArray(raw) ? [...new Set(values)] : values[0];
    } else if ('aggregate' in detail) value = aggregateValue(detail.aggregate, fire, windowText);
    else value = renderTemplate(detail.template, event, ctx, fire, windowText);
    if (value !== undefined) details[detail.name] = value;
  }
  const techniquesFromEvent = detection.techniquesFrom ? valuesOf(detection.techniquesFrom(event, ctx)).filter((v): v is string => typeof v === 'string' && v !== '') : [];
  const alert: Alert = {
    id: identity.alertId,
    detectionId: detection.id,
    detectionVersion: detection.version,
    title: renderTemplate(detection.output.title, event, ctx, fire, windowText),
    ...(detection.description ? { description: detection.description.trim() } : {}),
    severity: severityOf(detection, event, ctx, test),
    status: detection.status,
    firstEventTime: new Date(fire.firstMs).toISOString(),
    lastEventTime: new Date(fire.lastMs).toISOString(),
    createdTime: new Date(nowMs).toISOString(),
    ...(event.tenantId ? { tenantId: event.tenantId } : {}),
    entities: entitiesOf(detection, event, ctx),
    dedupKey: identity.dedupKey,
    evidence: [...new Set(evidence)].slice(0, LIMITS.evidence),
    tactics: [...detection.tactics],
    techniques: techniquesFromEvent.length ? [...new Set(techniquesFromEvent)] : [...detection.techniques],
    actions: [],
    ...(detection.triage ? { triage: detection.triage.trim() } : {}),
    ...(Object.keys(details).length ? { details } : {}),
    ...(event.blueprintAppId ? { blueprintAppId: event.blueprintAppId } : {}),
    ...(event.agentIdentityId ? { agentIdentityId: event.agentIdentityId } : {}),
  };
  return { alert, plan: responsePlanOf(detection, event, ctx, test) };
}
