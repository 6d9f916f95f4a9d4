/**
 * Alert → row of the Sentinel custom table `AgentwatchAlerts_CL`.
 *
 * The column list is derived from `schemas/alert.schema.json` (every top-level property, typed by
 * its `x-sentinelType`) and nowhere else: the table and DCR stream declaration in Bicep load
 * `infra/sentinel/alert-columns.json`, which `scripts/gen-sentinel-columns.ts` writes from
 * `renderSentinelColumnsJson()` below, and a test fails when the committed file is stale.
 *
 * Column names are the property names in PascalCase (Log Analytics convention), except the three
 * Log Analytics reserves on every table (`id`, `Title`, `TenantId`), which are renamed.
 */
import { ConfigError, type LocatedProblem } from '../errors';
import type { Alert } from './types';
import alertSchema from '../../schemas/alert.schema.json';

export const SENTINEL_TABLE_NAME = 'AgentwatchAlerts_CL';
/** The DCR stream the rows are posted to (`AGENTWATCH_SENTINEL_STREAM` default). */
export const SENTINEL_STREAM_NAME = 'Custom-AgentwatchAlerts_CL';

/** Column types a DCR stream declaration and a custom table both accept. */
export type SentinelColumnType = 'string' | 'int' | 'long' | 'real' | 'boolean' | 'datetime' | 'dynamic';
const COLUMN_TYPES: readonly SentinelColumnType[] = ['string', 'int', 'long', 'real', 'boolean', 'datetime', 'dynamic'];

export interface SentinelColumn {
  name: string;
  type: SentinelColumnType;
  description: string;
  /** The alert property the column carries. */
  field: string;
}

/**
 * Names Log Analytics refuses for a custom column (Azure Monitor "Add or delete tables and
 * columns"), compared case-insensitively because the service does.
 */
export const RESERVED_COLUMN_NAMES: readonly string[] = ['id', '_ResourceId', '_SubscriptionId', 'TenantId', 'Type', 'UniqueId', 'Title', 'TimeGenerated'];

/** Alert properties whose PascalCase name is reserved, and what the column is called instead. */
const RESERVED_RENAMES: Readonly<Record<string, string>> = {
  id: 'AlertId',
  title: 'AlertTitle',
  tenantId: 'EntraTenantId',
};

/** Column names: a letter, then letters, digits or underscores, 45 characters at most. */
const COLUMN_NAME = /^[A-Za-z][A-Za-z0-9_]{0,44}$/;

/**
 * TimeGenerated = the alert's `createdTime` (when agentwatch raised it), not `lastEventTime`:
 * Sentinel's own SecurityAlert uses raise time, raise time is always within minutes of ingestion
 * (the Logs Ingestion API re-stamps rows that are too old, and replays of old exports carry event
 * times days back), and the event times stay queryable as FirstEventTime / LastEventTime.
 */
const TIME_GENERATED: SentinelColumn = {
  name: 'TimeGenerated',
  type: 'datetime',
  field: 'createdTime',
  description: 'When agentwatch raised the alert (the alert createdTime).',
};

export function sentinelColumnName(property: string): string {
  return RESERVED_RENAMES[property] ?? property.charAt(0).toUpperCase() + property.slice(1);
}

interface SchemaProperty {
  'x-sentinelType'?: unknown;
  description?: unknown;
}

/**
 * The table's columns, `TimeGenerated` first, then one per top-level schema property in schema
 * order. Throws a `ConfigError` listing every property without a usable type or name.
 */
export function sentinelColumnsFromSchema(schema: unknown, file = 'schemas/alert.schema.json'): SentinelColumn[] {
  const properties = (schema as { properties?: Record<string, SchemaProperty> } | undefined)?.properties;
  if (!properties || typeof properties !== 'object') {
    throw new ConfigError([{ file, path: '/properties', message: 'the alert schema has no top-level properties to derive Sentinel columns from' }]);
  }
  const problems: LocatedProblem[] = [];
  const columns: SentinelColumn[] = [TIME_GENERATED];
  const seen = new Map<string, string>([[TIME_GENERATED.name.toLowerCase(), '(TimeGenerated)']]);
  for (const [property, definition] of Object.entries(properties)) {
    const path = `/properties/${property}`;
    const type = definition?.['x-sentinelType'];
    const name = sentinelColumnName(property);
    if (typeof type !== 'string' || !COLUMN_TYPES.includes(type as SentinelColumnType)) {
      problems.push({ file, path: `${path}/x-sentinelType`, message: `expected one of ${COLUMN_TYPES.join(' | ')}, got ${JSON.stringify(type)}` });
      continue;
    }
    if (!COLUMN_NAME.test(name)) problems.push({ file, path, message: `column name ${JSON.stringify(name)} is not a valid Log Analytics column name` });
    else if (RESERVED_COLUMN_NAMES.some((reserved) => reserved.toLowerCase() === name.toLowerCase())) {
      problems.push({ file, path, message: `column name ${JSON.stringify(name)} is reserved by Log Analytics; add a rename in src/alerts/rows.ts` });
    } else if (seen.has(name.toLowerCase())) {
      problems.push({ file, path, message: `column name ${JSON.stringify(name)} collides with the column of ${seen.get(name.toLowerCase())}` });
    }
    seen.set(name.toLowerCase(), property);
    const description = typeof definition.description === 'string' ? definition.description : `Alert field ${property}.`;
    columns.push({ name, type: type as SentinelColumnType, field: property, description });
  }
  if (problems.length) throw new ConfigError(problems);
  return columns;
}

/** The columns of `AgentwatchAlerts_CL`, from the schema shipped with this build. */
export const SENTINEL_COLUMNS: readonly SentinelColumn[] = sentinelColumnsFromSchema(alertSchema);

/** The content of `infra/sentinel/alert-columns.json`, byte for byte. */
export function renderSentinelColumnsJson(columns: readonly SentinelColumn[] = SENTINEL_COLUMNS): string {
  const document = {
    $comment: 'Generated from schemas/alert.schema.json by scripts/gen-sentinel-columns.ts (npm run build && node dist/scripts/gen-sentinel-columns.js). Do not edit by hand.',
    tableName: SENTINEL_TABLE_NAME,
    streamName: SENTINEL_STREAM_NAME,
    columns: columns.map(({ name, type, description, field }) => ({ name, type, description, field })),
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------------
// Rows

export type SentinelRow = Record<string, unknown>;

export interface RowLimits {
  /** Largest value of one column, serialized. The service truncates longer fields at 64 KB, which would break a dynamic column's JSON, so we trim first. */
  fieldBytes: number;
  /** Largest whole row, serialized. One Logs Ingestion call carries at most 1 MB. */
  rowBytes: number;
}

export const SENTINEL_ROW_LIMITS: RowLimits = { fieldBytes: 64_000, rowBytes: 950_000 };

/** What was cut from one column to fit, recorded in the row's `Details.agentwatchTruncated`. */
export interface ColumnTrim {
  column: string;
  /** Arrays: elements kept / present. Strings: bytes kept / present. Objects: keys kept / present. */
  kept: number;
  total: number;
  unit: 'items' | 'bytes' | 'keys';
}

export type RowResult =
  | { kind: 'row'; row: SentinelRow; trims: ColumnTrim[] }
  /** Even trimmed, the row is over the per-call limit: the caller refuses it and counts it. */
  | { kind: 'oversize'; bytes: number; limit: number };

const TRUNCATION_KEY = 'agentwatchTruncated';

function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? 'null', 'utf8');
}

/**
 * Maps an alert to exactly the table's columns (absent optional fields are `null`, dynamic columns
 * carry the JSON value itself). A column over the field limit is trimmed explicitly: lists keep
 * their first items, objects drop their largest keys, strings are cut, and every cut is written to
 * `Details.agentwatchTruncated` so the analyst sees it.
 */
export function toSentinelRow(alert: Alert, limits: RowLimits = SENTINEL_ROW_LIMITS, columns: readonly SentinelColumn[] = SENTINEL_COLUMNS): RowResult {
  const source = alert as unknown as Record<string, unknown>;
  const row: SentinelRow = {};
  const trims: ColumnTrim[] = [];
  let detailsColumn: SentinelColumn | undefined;
  for (const column of columns) {
    const value = source[column.field];
    if (column.field === 'details') detailsColumn = column;
    const fitted = value === undefined || value === null ? { value: null } : fitColumn(column.name, value, limits.fieldBytes);
    if ('trim' in fitted && fitted.trim) trims.push(fitted.trim);
    row[column.name] = fitted.value;
  }
  if (trims.length && detailsColumn) {
    const details = { ...((row[detailsColumn.name] as Record<string, unknown> | null) ?? {}), [TRUNCATION_KEY]: trims };
    const fitted = fitObject(detailsColumn.name, details, limits.fieldBytes, TRUNCATION_KEY);
    row[detailsColumn.name] = fitted.value;
    if (fitted.trim) trims.push(fitted.trim);
  }
  const bytes = jsonBytes(row);
  if (bytes > limits.rowBytes) return { kind: 'oversize', bytes, limit: limits.rowBytes };
  return { kind: 'row', row, trims };
}

/** The alert id a row carries (the uploader maps failed rows back to alerts with it). */
export function alertIdOfRow(row: SentinelRow): string {
  return String(row[sentinelColumnName('id')]);
}

type Fitted = { value: unknown; trim?: ColumnTrim };

function fitColumn(column: string, value: unknown, limit: number): Fitted {
  if (typeof value === 'string') return fitString(column, value, limit);
  if (jsonBytes(value) <= limit) return { value };
  if (Array.isArray(value)) return fitArray(column, value, limit);
  if (typeof value === 'object') return fitObject(column, value as Record<string, unknown>, limit);
  return { value };
}

function fitString(column: string, value: string, limit: number): Fitted {
  const total = Buffer.byteLength(value, 'utf8');
  if (total <= limit) return { value };
  const marker = ' …[truncated]';
  const cut = Buffer.from(value, 'utf8')
    .subarray(0, limit - Buffer.byteLength(marker, 'utf8'))
    .toString('utf8')
    .replace(/\uFFFD+$/, '');
  return { value: cut + marker, trim: { column, kept: Buffer.byteLength(cut, 'utf8'), total, unit: 'bytes' } };
}

function fitArray(column: string, values: unknown[], limit: number): Fitted {
  const kept: unknown[] = [];
  let bytes = 2; // the brackets
  for (const item of values) {
    const itemBytes = jsonBytes(item) + (kept.length ? 1 : 0);
    if (bytes + itemBytes > limit) break;
    kept.push(item);
    bytes += itemBytes;
  }
  return { value: kept, trim: { column, kept: kept.length, total: values.length, unit: 'items' } };
}

/** Drops the largest keys first (they are the ones worth dropping), never `keep`. */
function fitObject(column: string, value: Record<string, unknown>, limit: number, keep?: string): Fitted {
  if (jsonBytes(value) <= limit) return { value };
  const entries = Object.entries(value);
  const bySize = entries.filter(([key]) => key !== keep).sort((a, b) => jsonBytes(b[1]) - jsonBytes(a[1]));
  const result = { ...value };
  for (const [key] of bySize) {
    delete result[key];
    if (jsonBytes(result) <= limit) break;
  }
  return { value: result, trim: { column, kept: Object.keys(result).length, total: entries.length, unit: 'keys' } };
}
