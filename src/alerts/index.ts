/**
 * Alerts: the alert model, the local sinks (NDJSON, table, memory), the durable outbox, and the
 * destinations behind it — Sentinel (Logs Ingestion API) and, optionally, another Event Hub.
 */
export type { Alert, AlertAction, AlertEntity, AlertEntityType, ActionOutcome, ResponseActionName, ResponseMode, Severity } from './types';
export { SEVERITIES } from './types';
export { FanOutAlertSink, MemoryAlertSink, MemoryDeadLetterSink, NdjsonAlertSink, StreamDeadLetterSink, TableAlertSink, describePosition, renderAlertTable } from './consoleSinks';
export {
  DEFAULT_OUTBOX_RETRY,
  OutboxAlertSink,
  redriveOutbox,
  type AlertUploader,
  type DeliveryReport,
  type OutboxDeps,
  type OutboxRetryPolicy,
  type RedriveOptions,
  type RedriveReport,
  type UploadReceipt,
} from './outbox';
export {
  SentinelUploader,
  classifyIngestionFailure,
  retryAfterFromHeaders,
  sentinelSinkFromSettings,
  sentinelUploaderFromSettings,
  type SentinelSinkDeps,
  type SentinelUploaderOptions,
} from './sentinelSink';
export {
  SENTINEL_COLUMNS,
  SENTINEL_ROW_LIMITS,
  SENTINEL_STREAM_NAME,
  SENTINEL_TABLE_NAME,
  renderSentinelColumnsJson,
  sentinelColumnsFromSchema,
  toSentinelRow,
  type ColumnTrim,
  type RowLimits,
  type RowResult,
  type SentinelColumn,
  type SentinelRow,
} from './rows';
export { ALERT_EVENT_SCHEMA, EventHubAlertUploader, alertEvent, eventHubUploaderFromSettings } from './eventHubSink';
