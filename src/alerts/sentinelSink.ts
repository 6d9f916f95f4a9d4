/**
 * Sentinel adapter: uploads alert rows to the custom table `AgentwatchAlerts_CL` through the
 * Logs Ingestion API (a data collection rule stream), with the app's managed identity.
 *
 * The uploader makes exactly one attempt per call — the SDK's own retry policy is switched off —
 * and reports per-alert outcomes as an `AggregateSinkError`; the durable outbox in front of it
 * (`OutboxAlertSink`) owns waiting, retrying, the redrive and the dead letter, so there is one
 * retry policy, testable with simulated time.
 */
import type { TokenCredential } from '@azure/identity';
import type { LogsIngestionClient } from '@azure/monitor-ingestion';
import type { Settings } from '../config';
import { AgentwatchError, AggregateSinkError, ConfigError, ensureError, type SinkFailure } from '../errors';
import { silentLogger, type Clock, type DeadLetterSink, type Logger, type StateStore } from '../ports';
import { OutboxAlertSink, type AlertUploader, type OutboxDeps, type UploadReceipt } from './outbox';
import { SENTINEL_ROW_LIMITS, SENTINEL_STREAM_NAME, alertIdOfRow, toSentinelRow, type RowLimits, type SentinelRow } from './rows';
import type { Alert } from './types';

export interface SentinelUploaderOptions {
  /** Logs Ingestion endpoint of the DCR (`properties.endpoints.logsIngestion`) or of a DCE. */
  endpoint: string;
  /** The DCR's immutable id (`dcr-…`), not its resource id. */
  dcrImmutableId: string;
  /** Optional; defaults to `Custom-AgentwatchAlerts_CL`. */
  streamName?: string;
  credential: TokenCredential;
  /** Token audience for sovereign clouds, e.g. `https://monitor.azure.us`. Optional; defaults to the public cloud. */
  audience?: string;
  /** Chunks (≈1 MB each) uploaded in parallel. Optional; defaults to 2. */
  maxConcurrency?: number;
  /** Optional; defaults to `SENTINEL_ROW_LIMITS` (64 KB per field, 950 KB per row). */
  limits?: RowLimits;
  /** Optional; defaults to silent. */
  logger?: Logger;
}

export class SentinelUploader implements AlertUploader {
  readonly name = 'sentinel';
  private readonly client: LogsIngestionClient;
  private readonly dcrImmutableId: string;
  private readonly streamName: string;
  private readonly maxConcurrency: number;
  private readonly limits: RowLimits;
  private readonly logger: Logger;

  constructor(options: SentinelUploaderOptions) {
    this.client = new (ingestionSdk().LogsIngestionClient)(options.endpoint, options.credential, {
      ...(options.audience ? { audience: options.audience } : {}),
      // One attempt per call: the outbox retries with backoff, Retry-After and the redrive.
      retryOptions: { maxRetries: 0 },
    });
    this.dcrImmutableId = options.dcrImmutableId;
    this.streamName = options.streamName ?? SENTINEL_STREAM_NAME;
    this.maxConcurrency = options.maxConcurrency ?? 2;
    this.limits = options.limits ?? SENTINEL_ROW_LIMITS;
    this.logger = options.logger ?? silentLogger;
  }

  async upload(alerts: Alert[]): Promise<UploadReceipt> {
    const failures: SinkFailure<Alert>[] = [];
    const rows: SentinelRow[] = [];
    const alertById = new Map<string, Alert>();
    const trimmed = new Set<string>();
    for (const alert of alerts) {
      const result = toSentinelRow(alert, this.limits);
      if (result.kind === 'oversize') {
        const cause = new AgentwatchError('SINK_REJECTED', `alert ${alert.id} is ${result.bytes} bytes as a Sentinel row even after trimming, over the ${result.limit}-byte limit of one Logs Ingestion call`);
        failures.push({ code: 'SINK_REJECTED', items: [alert], cause });
        continue;
      }
      if (result.trims.length) {
        trimmed.add(alert.id);
        this.logger.log('warn', `alert ${alert.id} trimmed to fit a Sentinel row`, { alertId: alert.id, trims: result.trims });
      }
      rows.push(result.row);
      alertById.set(alert.id, alert);
    }
    if (rows.length) {
      try {
        await this.client.upload(this.dcrImmutableId, this.streamName, rows, { maxConcurrency: this.maxConcurrency });
      } catch (error) {
        const chunks = ingestionSdk().isAggregateLogsUploadError(error) ? error.errors.map((failure) => ({ rows: failure.failedLogs, cause: failure.cause })) : [{ rows, cause: error }];
        for (const chunk of chunks) {
          const items = chunk.rows.map((row) => alertById.get(alertIdOfRow(row))).filter((alert): alert is Alert => alert !== undefined);
          const failure = classifyIngestionFailure(chunk.cause, items);
          failures.push(failure);
          for (const alert of items) trimmed.delete(alert.id);
          this.warnAboutConfiguration(failure);
        }
      }
    }
    if (failures.length) throw new AggregateSinkError(this.name, failures);
    return { trimmedAlertIds: [...trimmed] };
  }

  private warnAboutConfiguration(failure: SinkFailure<Alert>): void {
    const hint = CONFIGURATION_HINTS[failure.status ?? 0];
    if (hint) this.logger.log('error', `Sentinel refused the upload (HTTP ${failure.status}): ${hint}; the alerts stay in the outbox until it is fixed`, { status: failure.status, serviceCode: failure.serviceCode, dcrImmutableId: this.dcrImmutableId, streamName: this.streamName });
  }
}

/** Statuses that mean our configuration is wrong, not the data: retried (never dead-lettered) until fixed. */
const CONFIGURATION_HINTS: Record<number, string> = {
  401: 'the token was not accepted; check the identity and the token audience',
  403: 'grant the app identity "Monitoring Metrics Publisher" on the data collection rule (a new role assignment can take several minutes to take effect)',
  404: 'no such data collection rule or stream; check AGENTWATCH_SENTINEL_ENDPOINT, AGENTWATCH_SENTINEL_DCR_ID (the immutable id) and AGENTWATCH_SENTINEL_STREAM',
};

interface RestErrorLike {
  statusCode?: number;
  code?: string;
  response?: { headers?: { get(name: string): string | undefined } };
}

/**
 * Transient: no response (network, token), 408, 429, 5xx, and 401/403/404 (identity, role or DCR
 * not ready — not the alert's fault, so kept and retried). Rejected: every other 4xx (schema
 * mismatch, payload too large), which sending again cannot fix.
 */
export function classifyIngestionFailure<Item>(cause: unknown, items: Item[], now: number = Date.now()): SinkFailure<Item> {
  const rest = (typeof cause === 'object' && cause !== null ? cause : {}) as RestErrorLike;
  const status = typeof rest.statusCode === 'number' ? rest.statusCode : undefined;
  const retryAfterMs = retryAfterFromHeaders(rest.response?.headers, now);
  const transient = status === undefined || status === 408 || status === 429 || status >= 500 || status in CONFIGURATION_HINTS;
  return {
    code: transient ? 'SINK_TRANSIENT' : 'SINK_REJECTED',
    items,
    cause: ensureError(cause),
    ...(status !== undefined ? { status } : {}),
    ...(typeof rest.code === 'string' ? { serviceCode: rest.code } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  };
}

/** `retry-after-ms` / `x-ms-retry-after-ms` (ms), else `Retry-After` (seconds or an HTTP date). */
export function retryAfterFromHeaders(headers: { get(name: string): string | undefined } | undefined, now: number = Date.now()): number | undefined {
  if (!headers) return undefined;
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const value = Number(headers.get(name));
    if (headers.get(name) !== undefined && Number.isFinite(value) && value >= 0) return value;
  }
  const retryAfter = headers.get('retry-after')?.trim();
  if (!retryAfter) return undefined;
  if (/^\d+(\.\d+)?$/.test(retryAfter)) return Number(retryAfter) * 1_000;
  const date = Date.parse(retryAfter);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

// ---------------------------------------------------------------------------------------------
// Composition from app settings

export interface SentinelSinkDeps {
  settings: Settings;
  store: StateStore;
  deadLetters: DeadLetterSink;
  /** Optional; defaults to `DefaultAzureCredential` (managed identity in Azure, `AZURE_CLIENT_ID` for a user-assigned one). */
  credential?: TokenCredential;
  logger?: Logger;
  clock?: Clock;
  sleep?: OutboxDeps['sleep'];
  retry?: OutboxDeps['retry'];
}

/** The Sentinel uploader from `AGENTWATCH_SENTINEL_*`, or undefined when Sentinel is not configured. */
export function sentinelUploaderFromSettings(settings: Settings, options: { credential?: TokenCredential; logger?: Logger } = {}): SentinelUploader | undefined {
  const endpoint = settings.AGENTWATCH_SENTINEL_ENDPOINT;
  const dcrImmutableId = settings.AGENTWATCH_SENTINEL_DCR_ID;
  if (!endpoint && !dcrImmutableId) return undefined;
  if (!endpoint || !dcrImmutableId) {
    const missing = endpoint ? 'AGENTWATCH_SENTINEL_DCR_ID' : 'AGENTWATCH_SENTINEL_ENDPOINT';
    throw new ConfigError([{ file: 'environment', path: missing, message: 'missing: AGENTWATCH_SENTINEL_ENDPOINT and AGENTWATCH_SENTINEL_DCR_ID go together' }]);
  }
  return new SentinelUploader({
    endpoint,
    dcrImmutableId,
    streamName: settings.AGENTWATCH_SENTINEL_STREAM ?? SENTINEL_STREAM_NAME,
    credential: options.credential ?? defaultCredential(settings),
    ...(options.logger ? { logger: options.logger } : {}),
  });
}

/** The Sentinel sink (outbox + uploader) from settings, or undefined when Sentinel is not configured. */
export function sentinelSinkFromSettings(deps: SentinelSinkDeps): OutboxAlertSink | undefined {
  const uploader = sentinelUploaderFromSettings(deps.settings, { ...(deps.credential ? { credential: deps.credential } : {}), ...(deps.logger ? { logger: deps.logger } : {}) });
  if (!uploader) return undefined;
  return new OutboxAlertSink({
    store: deps.store,
    uploader,
    deadLetters: deps.deadLetters,
    ...(deps.logger ? { logger: deps.logger } : {}),
    ...(deps.clock ? { clock: deps.clock } : {}),
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
    ...(deps.retry ? { retry: deps.retry } : {}),
  });
}

// The SDKs load on first use: replay without Sentinel never pays for them (@azure/identity alone
// takes about half a second to load).
function ingestionSdk(): typeof import('@azure/monitor-ingestion') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('@azure/monitor-ingestion') as typeof import('@azure/monitor-ingestion');
}

function defaultCredential(settings: Settings): TokenCredential {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { DefaultAzureCredential } = require('@azure/identity') as typeof import('@azure/identity');
  return settings.AZURE_CLIENT_ID ? new DefaultAzureCredential({ managedIdentityClientId: settings.AZURE_CLIENT_ID }) : new DefaultAzureCredential();
}
