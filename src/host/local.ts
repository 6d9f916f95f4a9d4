/**
 * The self-hosted consumer (`npm run local`): the same pipeline and the same batch handler as the
 * Function, driven by the real `EventHubConsumerClient` instead of the Functions host.
 *
 * At-least-once, like the Function:
 * - a batch is checkpointed only after the pipeline finished it (state, alerts in the outbox);
 * - a batch that throws (a dependency is down) is retried in place with backoff until it succeeds
 *   or the consumer stops — the partition waits, nothing is skipped, and a stop without success
 *   leaves the checkpoint behind the batch so the next run reads it again;
 * - everything downstream is idempotent by record and alert id, so a batch read twice (after a
 *   crash between processing and checkpoint) changes nothing.
 * Checkpoints and partition ownership live in a table of the state account
 * (`AGENTWATCH_CHECKPOINT_TABLE`); with no checkpoint a partition is read from its earliest event
 * (the SDK's default with a checkpoint store would be the latest, silently skipping the backlog).
 * Timers of the Function have local counterparts: the outbox redrive and the state sweep.
 */
import { hostname } from 'node:os';
import { EventHubConsumerClient, earliestEventPosition, type ReceivedEventData, type PartitionContext, type Subscription } from '@azure/event-hubs';
import type { TokenCredential } from '@azure/identity';
import type { AlertUploader } from '../alerts/outbox';
import type { BatchSummary } from '../pipeline';
import type { Logger } from '../ports';
import { sweepExpiredState } from '../state/sweep';
import { tableClientFromSettings } from '../state/tableStore';
import { createHost, type AgentwatchHost } from './compose';
import { handleEntraLogs } from './entraLogsHandler';
import { withLogger } from './logging';
import { NdjsonFileUploader } from './ndjsonFileUploader';
import { TableCheckpointStore } from './tableCheckpointStore';
import type { EventHubTriggerMetadata } from './triggerMetadata';

export interface LocalConsumerOptions {
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** Also deliver every alert (through its own outbox) to this NDJSON file. Optional. */
  alertsFile?: string;
  /** More alert destinations, each behind its own outbox (embedding, tests). Optional. */
  uploaders?: AlertUploader[];
  /** Events per batch. Optional; defaults to 100 (as host.json). */
  maxBatchSize?: number;
  /** Longest wait to fill a batch. Optional; defaults to 5 s. */
  maxWaitTimeInSeconds?: number;
  /** Name of this consumer in the ownership table. Optional; defaults to `agentwatch-<hostname>-<pid>`. */
  identifier?: string;
  /** How long a crashed consumer's partitions stay claimed before another takes them. Optional; defaults to 60 s. */
  ownershipExpiryMs?: number;
  /** How often ownership is renewed and rebalanced (greedy: free and expired partitions are claimed at once). Optional; defaults to 10 s. */
  balanceIntervalMs?: number;
  /** Outbox redrive interval. Optional; defaults to 60 s. */
  redriveIntervalMs?: number;
  /** How long an interrupted outbox delivery holds its alerts before the redrive takes them over. Optional; defaults to the outbox's 10 min. */
  outboxLeaseMs?: number;
  /** State sweep interval. Optional; defaults to 15 min. */
  sweepIntervalMs?: number;
  /** Longest pause between retries of a failing batch. Optional; defaults to 5 min. */
  maxRetryDelayMs?: number;
  credential?: TokenCredential;
  /** Stops the consumer (SIGINT/SIGTERM in the CLI). */
  signal: AbortSignal;
}

export interface LocalRunReport {
  batches: number;
  checkpoints: number;
  /** Batch attempts that threw and were retried. */
  retries: number;
  totals: BatchSummary;
}

/** Runs until `signal` aborts; resolves after the batches in flight finished and ownership was released. */
export async function runLocalConsumer(options: LocalConsumerOptions): Promise<LocalRunReport> {
  const { logger, signal } = options;
  const fileUploader = options.alertsFile ? new NdjsonFileUploader(options.alertsFile) : undefined;
  const host = await createHost({
    mode: 'local',
    env: options.env,
    logger,
    ...(options.credential ? { credential: options.credential } : {}),
    extraUploaders: [...(fileUploader ? [fileUploader] : []), ...(options.uploaders ?? [])],
    ...(options.outboxLeaseMs !== undefined ? { outboxLeaseMs: options.outboxLeaseMs } : {}),
  });
  const settings = host.settings;
  const checkpointTable = tableClientFromSettings(settings, settings.AGENTWATCH_CHECKPOINT_TABLE ?? 'agentwatchcheckpoints', { credential: host.credential });
  const checkpointStore = new TableCheckpointStore(checkpointTable);
  const consumer = createConsumer(host, checkpointStore, options);
  const report: LocalRunReport = { batches: 0, checkpoints: 0, retries: 0, totals: host.app.totals };

  const inFlight = new Set<Promise<void>>();
  const processPartitionBatch = async (events: ReceivedEventData[], partition: PartitionContext): Promise<void> => {
    // A batch that arrives while stopping is left unread: without a checkpoint it comes again next run.
    if (!events.length || signal.aborted) return;
    logger.log('debug', 'batch received', { partitionId: partition.partitionId, firstSequenceNumber: events[0]!.sequenceNumber, lastSequenceNumber: events[events.length - 1]!.sequenceNumber });
    const invocation = { triggerMetadata: triggerMetadataOf(events, partition) };
    const bodies = events.map((event) => event.body);
    for (let attempt = 0; ; attempt++) {
      try {
        await withLogger(logger, () => handleEntraLogs(bodies, invocation, async () => host));
        break;
      } catch (error) {
        report.retries++;
        const delayMs = Math.min(options.maxRetryDelayMs ?? 300_000, 1_000 * 2 ** Math.min(attempt, 16));
        logger.log('warn', 'batch will be retried', { partitionId: partition.partitionId, attempt: attempt + 1, delayMs, code: (error as { code?: unknown }).code });
        if (!(await pause(delayMs, signal))) {
          logger.log('warn', 'stopping with a failed batch: not checkpointed, it is read again next run', { partitionId: partition.partitionId, firstSequenceNumber: events[0]!.sequenceNumber });
          return;
        }
      }
    }
    report.batches++;
    const last = events[events.length - 1]!;
    try {
      await partition.updateCheckpoint(last);
      report.checkpoints++;
      logger.log('info', 'checkpoint', { partitionId: partition.partitionId, sequenceNumber: last.sequenceNumber, offset: last.offset });
    } catch (error) {
      // The batch is done; a lost checkpoint only means it may be read again, which is harmless.
      logger.log('warn', 'checkpoint write failed: the batch may be read again', { partitionId: partition.partitionId, error: (error as Error).message });
    }
  };

  const subscription: Subscription = consumer.subscribe(
    {
      processEvents: (events, partition) => {
        const batch = processPartitionBatch(events, partition);
        inFlight.add(batch);
        return batch.finally(() => inFlight.delete(batch));
      },
      processError: async (error, partition) => {
        logger.log('warn', 'Event Hubs client error', { partitionId: partition.partitionId, error: error.message, code: (error as { code?: unknown }).code });
      },
      processInitialize: async (partition) => {
        logger.log('info', 'partition claimed', { partitionId: partition.partitionId });
      },
      processClose: async (reason, partition) => {
        logger.log('info', 'partition released', { partitionId: partition.partitionId, reason });
      },
    },
    { startPosition: earliestEventPosition, maxBatchSize: options.maxBatchSize ?? 100, maxWaitTimeInSeconds: options.maxWaitTimeInSeconds ?? 5 },
  );

  const timers = startMaintenance(host, options);
  logger.log('info', 'local consumer started', {
    hub: settings.ENTRA_HUB,
    consumerGroup: settings.ENTRA_CONSUMER_GROUP,
    identifier: consumer.identifier,
    alertsFile: options.alertsFile,
    outboxes: host.outboxes.map((outbox) => outbox.partition),
  });

  await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
  logger.log('info', 'stopping: finishing the batches in flight', { inFlight: inFlight.size });
  for (const timer of timers) clearInterval(timer);
  await Promise.allSettled([...inFlight]);
  await subscription.close();
  await consumer.close();
  logger.log('info', 'local consumer stopped', { ...report, totals: undefined, alerts: report.totals.alerts, records: report.totals.recordsRead, rejected: report.totals.rejected });
  return report;
}

function createConsumer(host: AgentwatchHost, checkpointStore: TableCheckpointStore, options: LocalConsumerOptions): EventHubConsumerClient {
  const settings = host.settings;
  const group = settings.ENTRA_CONSUMER_GROUP ?? 'agentwatch';
  const hub = settings.ENTRA_HUB ?? 'entra-logs';
  const clientOptions = {
    identifier: options.identifier ?? `agentwatch-${hostname()}-${process.pid}`,
    loadBalancingOptions: {
      // Greedy: a lone consumer takes every partition in its first pass instead of one per interval.
      strategy: 'greedy' as const,
      updateIntervalInMs: options.balanceIntervalMs ?? 10_000,
      partitionOwnershipExpirationIntervalInMs: options.ownershipExpiryMs ?? 60_000,
    },
  };
  const connectionString = settings.AGENTWATCH_EVENTHUB_CONNECTION_STRING;
  if (connectionString) {
    // A connection string that names its hub (EntityPath) must not be given the hub again.
    return /;\s*EntityPath=/i.test(connectionString)
      ? new EventHubConsumerClient(group, connectionString, checkpointStore, clientOptions)
      : new EventHubConsumerClient(group, connectionString, hub, checkpointStore, clientOptions);
  }
  // loadSettings('local') guarantees one of the two.
  return new EventHubConsumerClient(group, settings.AGENTWATCH_EVENTHUB_NAMESPACE!, hub, host.credential, checkpointStore, clientOptions);
}

/** The trigger metadata the Functions host would pass for this batch, so the handler cannot tell the hosts apart. */
function triggerMetadataOf(events: ReceivedEventData[], partition: PartitionContext): Record<string, unknown> {
  const metadata: EventHubTriggerMetadata = {
    partitionContext: {
      fullyQualifiedNamespace: partition.fullyQualifiedNamespace,
      eventHubName: partition.eventHubName,
      consumerGroup: partition.consumerGroup,
      partitionId: partition.partitionId,
    },
    sequenceNumberArray: events.map((event) => event.sequenceNumber),
    offsetArray: events.map((event) => event.offset),
    enqueuedTimeUtcArray: events.map((event) => event.enqueuedTimeUtc.toISOString()),
    partitionKeyArray: events.map((event) => event.partitionKey ?? null),
  };
  return { ...metadata };
}

function startMaintenance(host: AgentwatchHost, options: LocalConsumerOptions): NodeJS.Timeout[] {
  const { logger } = options;
  const redrive = async () => {
    for (const outbox of host.outboxes) {
      try {
        const result = await outbox.redrive();
        if (result.handled || result.pendingAfter) logger.log(result.pendingAfter ? 'warn' : 'info', 'alert redrive', { outbox: outbox.partition, ...result });
      } catch (error) {
        logger.log('warn', 'alert redrive failed; next interval retries', { outbox: outbox.partition, error: (error as Error).message });
      }
    }
  };
  const sweep = async () => {
    try {
      const result = await sweepExpiredState(host.state, { logger, maxDeletes: 20_000 });
      if (result.deleted) logger.log('info', 'state sweep', { ...result });
    } catch (error) {
      logger.log('warn', 'state sweep failed; next interval retries', { error: (error as Error).message });
    }
  };
  // A predecessor killed mid-delivery may have left alerts pending: pick them up right away.
  void redrive();
  return [setInterval(() => void redrive(), options.redriveIntervalMs ?? 60_000), setInterval(() => void sweep(), options.sweepIntervalMs ?? 15 * 60_000)];
}

/** Waits `ms`, or less if `signal` aborts; true when the full wait passed. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
