/**
 * Removes state whose `expiresAt` has passed. Reads already treat such records as absent; the sweep
 * keeps the table from growing without bound. Run by a timer function (and usable on any table
 * whose entities carry an Int64 `expiresAt`, e.g. the dead-letter table with a retention).
 *
 * Each delete is conditional on the etag seen by the scan: a record rewritten since (a window that
 * restarted on an expired row) answers 412 and is kept. The SDK's transaction delete cannot carry
 * an etag, so deletes are single requests, grouped by partition and run with bounded concurrency.
 */
import { odata, TableClient } from '@azure/data-tables';
import { AgentwatchError } from '../errors';
import { silentLogger, type Logger } from '../ports';
import { forEachLimited, groupByPartition, statusOf, TableStateStore, unescapeTableKey, withTableRetry, type RetryPolicy } from './tableStore';

export interface SweepOptions {
  /** Epoch ms; records with `expiresAt <= now` are removed. Optional; defaults to `Date.now()`. */
  now?: number;
  logger?: Logger;
  retry?: RetryPolicy;
  /** Deletes in flight at once. Optional; defaults to 16. */
  concurrency?: number;
  /** Stop after this many deletes so one timer run stays short; the next run continues. Optional; defaults to no limit. */
  maxDeletes?: number;
}

export interface SweepResult {
  table: string;
  /** Expired entities the scan returned. */
  scanned: number;
  deleted: number;
  /** Already deleted by someone else (404). */
  alreadyGone: number;
  /** Rewritten after the scan (412): kept. */
  changedSinceScan: number;
  /** Partitions that had expired entities. */
  partitions: number;
  /** True when `maxDeletes` stopped the run before the scan ended. */
  stoppedEarly: boolean;
}

interface ExpiredEntity {
  partitionKey: string;
  rowKey: string;
  etag: string;
}

export async function sweepExpiredState(target: TableStateStore | TableClient, options: SweepOptions = {}): Promise<SweepResult> {
  const table = target instanceof TableStateStore ? target.table : target;
  const now = Math.trunc(options.now ?? Date.now());
  const logger = options.logger ?? silentLogger;
  const retry = options.retry ?? {};
  const budget = options.maxDeletes ?? Number.POSITIVE_INFINITY;
  const result: SweepResult = { table: table.tableName, scanned: 0, deleted: 0, alreadyGone: 0, changedSinceScan: 0, partitions: 0, stoppedEarly: false };
  const partitionsSeen = new Set<string>();
  const failures: unknown[] = [];

  const deleteOne = async (entity: ExpiredEntity): Promise<void> => {
    try {
      await withTableRetry(`delete expired ${entity.partitionKey}/${entity.rowKey}`, () => table.deleteEntity(entity.partitionKey, entity.rowKey, { etag: entity.etag }), retry, {
        passThrough: (error) => statusOf(error) === 404 || statusOf(error) === 412,
      });
      result.deleted++;
    } catch (error) {
      const status = statusOf(error);
      if (status === 404) result.alreadyGone++;
      else if (status === 412) result.changedSinceScan++;
      else {
        failures.push(error);
        logger.log('error', 'state sweep could not delete an expired record', {
          table: table.tableName,
          partition: unescapeTableKey(entity.partitionKey),
          row: unescapeTableKey(entity.rowKey),
          error: (error as Error).message,
        });
      }
    }
  };

  const filter = odata`expiresAt le ${now}L`;
  await withTableRetry(
    `scan for expired entities in ${table.tableName}`,
    async () => {
      // Deleting while paging is safe: continuation tokens are key positions, not offsets.
      for await (const page of table.listEntities<Record<string, unknown>>({ queryOptions: { filter, select: ['PartitionKey', 'RowKey', 'expiresAt'] } }).byPage()) {
        let expired: ExpiredEntity[] = page.map((entity) => ({ partitionKey: String(entity.partitionKey), rowKey: String(entity.rowKey), etag: String(entity.etag) }));
        result.scanned += expired.length;
        const room = budget - (result.deleted + result.alreadyGone + result.changedSinceScan + failures.length);
        if (expired.length > room) {
          expired = expired.slice(0, Math.max(0, room));
          result.stoppedEarly = true;
        }
        const partitions = [...groupByPartition(expired).entries()];
        for (const [partitionKey] of partitions) partitionsSeen.add(partitionKey);
        const ordered = partitions.flatMap(([, entities]) => entities);
        await forEachLimited(ordered, options.concurrency ?? 16, deleteOne);
        if (result.stoppedEarly) return;
      }
    },
    retry,
  );
  result.partitions = partitionsSeen.size;
  logger.log(failures.length ? 'error' : 'info', 'state sweep finished', { ...result, failed: failures.length });
  if (failures.length) {
    throw new AgentwatchError(
      'STATE_UNAVAILABLE',
      `state sweep of ${table.tableName} could not delete ${failures.length} expired record(s) (deleted ${result.deleted}, already gone ${result.alreadyGone}, changed ${result.changedSinceScan})`,
      { cause: failures[0] },
    );
  }
  return result;
}
