/**
 * The Azure Monitor resource-log envelope around every record (`time`, `tenantId`, `resourceId`,
 * `correlationId`, `callerIpAddress` …): fields every family reads the same way.
 */
import { createHash } from 'node:crypto';
import { RecordError } from '../errors';
import type { NormalizeInput } from './input';
import { isoTime, parseEntraTime } from './time';
import type { AgentEvent, EventKind, Principal, PrincipalType } from './types';
import { id, text, type Json } from './values';

/** `agentType` / `agentSubjectType` values (sign-ins, audit identities) → principal types (reference §2.1, §3.1). */
export const AGENT_TYPE_TO_PRINCIPAL: Readonly<Record<string, PrincipalType>> = {
  agenticapp: 'blueprint',
  agenticappinstance: 'agentIdentity',
  agentidentityblueprintprincipal: 'blueprintPrincipal',
  agentiduser: 'agentUser',
};

const TENANT_IN_RESOURCE_ID = /^\/tenants\/([^/]+)/i;

/** Tenant id: envelope `tenantId`, else `properties.tenantId`, else the `/tenants/<id>/` of `resourceId` (any casing). */
export function tenantOf(record: Json, properties: Json): string | undefined {
  const direct = id(record.tenantId) ?? id(properties.tenantId);
  if (direct) return direct;
  const resourceId = text(record.resourceId);
  if (!resourceId) return undefined;
  const m = TENANT_IN_RESOURCE_ID.exec(resourceId);
  return m ? id(m[1]) : undefined;
}

/** Envelope `time` (ingestion time for sign-ins) as epoch ms. */
export function arrivalOf(record: Json): number | undefined {
  return parseEntraTime(record.time);
}

/**
 * A stable id for records that carry none: a hash of the record's content, so the same record
 * redelivered gets the same id (same bytes → same parse → same key order → same text).
 */
export function contentHashId(record: Json): string {
  return `h_${createHash('sha1').update(JSON.stringify(record)).digest('hex')}`;
}

/** `callerIpAddress`, with the "<null>" placeholder and empty values dropped. */
export function callerIp(record: Json): string | undefined {
  return text(record.callerIpAddress);
}

export interface EventTimes {
  timeMs: number;
  arrivalMs: number | undefined;
}

/**
 * Event time from the first parseable of the family's own time fields, else the
 * envelope time, else the enqueued time; a record with none of them cannot become an event.
 */
export function eventTimes(input: NormalizeInput, missing: string, first: unknown, second?: unknown): EventTimes {
  const arrivalMs = arrivalOf(input.record);
  const timeMs = parseEntraTime(first) ?? (second === undefined ? undefined : parseEntraTime(second)) ?? arrivalMs ?? input.fallbackTimeMs;
  if (timeMs === undefined) throw new RecordError('RECORD_INVALID', missing, input.position);
  return { timeMs, arrivalMs };
}

/** A principal with every field declared (absent ones undefined), for the same reason as `baseEvent`. */
export function newPrincipal(type: PrincipalType, id?: string, appId?: string): Principal {
  return { type, id, appId, name: undefined, upn: undefined, ownerTenantId: undefined };
}

/**
 * Every event starts with every field of `AgentEvent`, in one order, the optional ones undefined
 * (JSON output drops them). The normalizers then only assign, so all events of all families share
 * one hidden class and the engine's and inventory's field reads stay monomorphic; built field by
 * field, events took about ten shapes and every generic read went through V8's megamorphic path.
 * `normalize-agent-flows.test.ts` holds every family to this list and the list to `CANONICAL_FIELDS`.
 */
export function baseEvent(input: NormalizeInput, kind: EventKind, eventId: string, times: EventTimes): AgentEvent {
  const event: AgentEvent = {
    id: eventId,
    time: isoTime(times.timeMs),
    timeMs: times.timeMs,
    arrival: undefined,
    category: input.category,
    kind,
    tenantId: undefined,
    correlationId: undefined,
    flow: undefined,
    isInteractive: undefined,
    agentType: undefined,
    agentSubjectType: undefined,
    actor: undefined,
    subject: undefined,
    client: undefined,
    blueprintAppId: undefined,
    agentIdentityId: undefined,
    agentUserId: undefined,
    resource: undefined,
    ip: undefined,
    location: undefined,
    result: undefined,
    credential: undefined,
    risk: undefined,
    audit: undefined,
    graph: undefined,
    agentInventory: undefined,
    raw: undefined,
  };
  if (input.keepRaw) event.raw = input.record;
  if (times.arrivalMs !== undefined) event.arrival = times.arrivalMs === times.timeMs ? event.time : isoTime(times.arrivalMs);
  const tenantId = tenantOf(input.record, input.properties);
  if (tenantId) event.tenantId = tenantId;
  return event;
}
