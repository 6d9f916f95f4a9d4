/**
 * The Azure Monitor resource-log envelope around every record (`time`, `tenantId`, `resourceId`,
 * `correlationId`, `callerIpAddress` …): fields every family reads the same way.
 */
import { createHash } from 'node:crypto';
import { parseEntraTime } from './time';
import { id, text, type Json } from './values';

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
