/**
 * Identity Protection records: risk detections (UserRiskEvents, ServicePrincipalRiskEvents,
 * AgentRiskEvents; kind `risk`) and risky-principal snapshots (RiskyUsers, RiskyServicePrincipals,
 * RiskyAgents; kind `riskyPrincipal`). Envelope `time` on these is often US-formatted and is never
 * the event time (reference §1.2).
 */
import type { AgentEvent, Principal, PrincipalType, RiskInfo } from './types';
import { baseEvent, eventTimes, newPrincipal } from './envelope';
import type { NormalizeInput } from './input';
import { isoTime } from './time';
import { asArray, asObject, assign, decodeJsonish, id, lower, pick, text, unique, type Json } from './values';

const AGENT_IDENTITY_TYPES: Readonly<Record<string, PrincipalType>> = {
  agentidentity: 'agentIdentity',
  agentuser: 'agentUser',
  agentidentityblueprintprincipal: 'blueprintPrincipal',
  user: 'user',
};

const ODATA_AGENT_TYPES: Readonly<Record<string, PrincipalType>> = {
  '#microsoft.graph.riskyagentidentity': 'agentIdentity',
  '#microsoft.graph.riskyagentuser': 'agentUser',
  '#microsoft.graph.riskyagentidentityblueprintprincipal': 'blueprintPrincipal',
};

export function normalizeRiskEvent(input: NormalizeInput): AgentEvent {
  const { record, properties: p } = input;
  const times = eventTimes(input, 'risk detection has no parseable detectedDateTime, activityDateTime or envelope time', p.detectedDateTime, p.activityDateTime);
  const event = baseEvent(input, 'risk', text(p.id) ?? input.hashId(), times);
  const principal = riskPrincipal(input.category, p);
  if (principal) {
    event.subject = principal;
    event.actor = principal;
    agentIds(event, principal, p);
  }
  const ip = text(p.ipAddress) ?? text(record.callerIpAddress);
  if (ip) event.ip = ip;
  const location = text(asObject(p.location)?.countryOrRegion) ?? text(record.location);
  if (location) event.location = location;
  const correlationId = id(p.correlationId) ?? id(p.signInCorrelationId);
  if (correlationId) event.correlationId = correlationId;
  event.risk = riskInfo(p);
  return event;
}

export function normalizeRiskyPrincipal(input: NormalizeInput): AgentEvent {
  const p = input.properties;
  const times = eventTimes(input, 'risky principal has no parseable riskLastUpdatedDateTime / riskLastModifiedDateTime or envelope time', p.riskLastUpdatedDateTime, p.riskLastModifiedDateTime);
  const principal = riskPrincipal(input.category, p);
  // `properties.id` is the principal's own id, the same in every snapshot of it: the snapshot's
  // time makes the event id unique per state change while staying stable on redelivery.
  const principalKey = text(p.id) ?? principal?.id;
  const event = baseEvent(input, 'riskyPrincipal', principalKey ? `${principalKey}@${isoTime(times.timeMs)}` : input.hashId(), times);
  if (principal) {
    event.subject = principal;
    event.actor = principal;
    agentIds(event, principal, p);
  }
  event.risk = riskInfo(p);
  return event;
}

function riskPrincipal(category: string, p: Json): Principal | undefined {
  const lowered = category.toLowerCase();
  if (lowered === 'agentriskevents' || lowered === 'riskyagents') {
    const odata = lower(p['@odata.type']);
    const type = (odata && ODATA_AGENT_TYPES[odata]) || AGENT_IDENTITY_TYPES[lower(p.identityType) ?? ''] || 'agentIdentity';
    const principalId = lowered === 'riskyagents' ? id(pick(p, ['id', 'agentId', 'identityId'])) : id(pick(p, ['agentId', 'identityId']));
    const principal = newPrincipal(type);
    assign(principal, 'id', principalId);
    assign(principal, 'name', text(pick(p, ['agentDisplayName', 'displayName'])));
    assign(principal, 'upn', lower(p.userPrincipalName));
    return principal;
  }
  if (lowered === 'serviceprincipalriskevents' || lowered === 'riskyserviceprincipals') {
    const principal = newPrincipal('servicePrincipal');
    assign(principal, 'id', id(lowered === 'riskyserviceprincipals' ? pick(p, ['id', 'servicePrincipalId']) : p.servicePrincipalId));
    assign(principal, 'appId', id(p.appId));
    assign(principal, 'name', text(pick(p, ['servicePrincipalDisplayName', 'displayName'])));
    return principal;
  }
  const principal = newPrincipal('user');
  assign(principal, 'id', id(lowered === 'riskyusers' ? pick(p, ['id', 'userId']) : p.userId));
  assign(principal, 'upn', lower(p.userPrincipalName));
  assign(principal, 'name', text(p.userDisplayName));
  return principal.id || principal.upn ? principal : undefined;
}

function agentIds(event: AgentEvent, principal: Principal, p: Json): void {
  if (principal.type === 'agentIdentity' && principal.id) event.agentIdentityId = principal.id;
  if (principal.type === 'agentUser' && principal.id) event.agentUserId = principal.id;
  const blueprintId = id(p.blueprintId);
  if (blueprintId) event.blueprintAppId = blueprintId;
}

function riskInfo(p: Json): RiskInfo {
  const risk: RiskInfo = {};
  assign(risk, 'level', lower(p.riskLevel));
  assign(risk, 'state', lower(p.riskState));
  assign(risk, 'detail', lower(p.riskDetail));
  assign(risk, 'eventType', lower(pick(p, ['riskEventType', 'riskType'])));
  const techniques = mitreTechniques(p.additionalInfo);
  if (techniques.length) risk.mitreTechniques = techniques;
  return risk;
}

const TECHNIQUE = /T\d{4}(?:\.\d{3})?/gi;

/** `additionalInfo` is `[{"Key":"mitreTechniques","Value":"T1078,T1110"}]` as a string, sometimes encoded twice. */
export function mitreTechniques(additionalInfo: unknown): string[] {
  const decoded = decodeJsonish(additionalInfo);
  const entries = asArray(decoded) ?? (asObject(decoded) ? [decoded] : []);
  const out: string[] = [];
  for (const entry of entries) {
    const o = asObject(entry);
    if (!o) continue;
    const key = text(o.Key ?? o.key);
    if (!key || key.toLowerCase() !== 'mitretechniques') continue;
    const value = decodeJsonish(o.Value ?? o.value);
    const flat = Array.isArray(value) ? value.join(',') : (text(value) ?? '');
    for (const m of flat.matchAll(TECHNIQUE)) out.push(m[0].toUpperCase());
  }
  return unique(out);
}
