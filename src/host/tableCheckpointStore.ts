/**
 * An Event Hubs `CheckpointStore` on Azure Table Storage, for the self-hosted consumer
 * (`npm run local`). The Functions host keeps its own checkpoints in blob storage; this one exists
 * because the only published table-backed store is an alpha, and agentwatch already has a table
 * account (or Azurite) at hand.
 *
 * Layout: one partition per `namespace hub consumerGroup` (lower-cased), rows `ownership-<id>` and
 * `checkpoint-<id>`. Ownership claims are optimistic: a claim with no etag is an insert (409 = some
 * other processor got there first), a claim with an etag is a conditional replace (412 = the row
 * changed since that processor listed it). Either loss simply leaves the partition out of the
 * result, which is what the load balancer expects.
 */
import type { TableClient } from '@azure/data-tables';
import type { Checkpoint, CheckpointStore, PartitionOwnership } from '@azure/event-hubs';
import { AgentwatchError } from '../errors';

const OWNERSHIP_PREFIX = 'ownership-';
const CHECKPOINT_PREFIX = 'checkpoint-';

interface OwnershipRow {
  ownerId: string;
}

interface CheckpointRow {
  /** Edm.Int64: sequence numbers outgrow 32 bits on long-lived hubs. */
  sequenceNumber: bigint | number | string;
  offset: string;
}

export class TableCheckpointStore implements CheckpointStore {
  readonly #table: TableClient;
  #tableReady: Promise<void> | undefined;

  constructor(table: TableClient) {
    this.#table = table;
  }

  async listOwnership(fullyQualifiedNamespace: string, eventHubName: string, consumerGroup: string): Promise<PartitionOwnership[]> {
    const partitionKey = checkpointPartition(fullyQualifiedNamespace, eventHubName, consumerGroup);
    const rows = await this.#listRows<OwnershipRow>(partitionKey, OWNERSHIP_PREFIX);
    return rows.map((row) => ({
      fullyQualifiedNamespace,
      eventHubName,
      consumerGroup,
      partitionId: row.rowKey.slice(OWNERSHIP_PREFIX.length),
      ownerId: row.ownerId,
      etag: row.etag,
      // The service's own timestamp, so expiry does not depend on this machine's clock.
      lastModifiedTimeInMs: row.timestamp ? Date.parse(row.timestamp) : undefined,
    }));
  }

  async claimOwnership(partitionOwnership: PartitionOwnership[]): Promise<PartitionOwnership[]> {
    await this.#ensureTable();
    const claimed: PartitionOwnership[] = [];
    for (const ownership of partitionOwnership) {
      const entity = {
        partitionKey: checkpointPartition(ownership.fullyQualifiedNamespace, ownership.eventHubName, ownership.consumerGroup),
        rowKey: `${OWNERSHIP_PREFIX}${ownership.partitionId}`,
        ownerId: ownership.ownerId,
      };
      try {
        const response = ownership.etag
          ? await this.#table.updateEntity(entity, 'Replace', { etag: ownership.etag })
          : await this.#table.createEntity(entity);
        claimed.push({ ...ownership, etag: response.etag, lastModifiedTimeInMs: Date.now() });
      } catch (error) {
        const status = (error as { statusCode?: number }).statusCode;
        // 409: created by another processor since we listed; 412: changed since we listed. Lost the race.
        if (status === 409 || status === 412) continue;
        throw new AgentwatchError('STATE_UNAVAILABLE', `claiming Event Hubs partition ${ownership.partitionId} failed (HTTP ${status ?? '?'})`, { cause: error });
      }
    }
    return claimed;
  }

  async updateCheckpoint(checkpoint: Checkpoint): Promise<void> {
    if (!Number.isFinite(checkpoint.sequenceNumber) || typeof checkpoint.offset !== 'string') {
      throw new TypeError(`updateCheckpoint needs a sequenceNumber and a string offset, got ${checkpoint.sequenceNumber} / ${String(checkpoint.offset)}`);
    }
    await this.#ensureTable();
    try {
      await this.#table.upsertEntity(
        {
          partitionKey: checkpointPartition(checkpoint.fullyQualifiedNamespace, checkpoint.eventHubName, checkpoint.consumerGroup),
          rowKey: `${CHECKPOINT_PREFIX}${checkpoint.partitionId}`,
          sequenceNumber: { value: String(checkpoint.sequenceNumber), type: 'Int64' },
          offset: checkpoint.offset,
        },
        'Replace',
      );
    } catch (error) {
      throw new AgentwatchError('STATE_UNAVAILABLE', `writing the checkpoint of partition ${checkpoint.partitionId} failed`, { cause: error });
    }
  }

  async listCheckpoints(fullyQualifiedNamespace: string, eventHubName: string, consumerGroup: string): Promise<Checkpoint[]> {
    const partitionKey = checkpointPartition(fullyQualifiedNamespace, eventHubName, consumerGroup);
    const rows = await this.#listRows<CheckpointRow>(partitionKey, CHECKPOINT_PREFIX);
    return rows.map((row) => ({
      fullyQualifiedNamespace,
      eventHubName,
      consumerGroup,
      partitionId: row.rowKey.slice(CHECKPOINT_PREFIX.length),
      sequenceNumber: Number(row.sequenceNumber),
      offset: String(row.offset),
    }));
  }

  async #listRows<T extends object>(partitionKey: string, rowPrefix: string): Promise<(T & { rowKey: string; etag: string; timestamp?: string })[]> {
    await this.#ensureTable();
    // Row keys sharing a prefix form a contiguous range: prefix ≤ rowKey < prefix with its last char bumped.
    const upper = rowPrefix.slice(0, -1) + String.fromCharCode(rowPrefix.charCodeAt(rowPrefix.length - 1) + 1);
    const filter = `PartitionKey eq '${escapeOData(partitionKey)}' and RowKey ge '${rowPrefix}' and RowKey lt '${upper}'`;
    const rows: (T & { rowKey: string; etag: string; timestamp?: string })[] = [];
    try {
      for await (const entity of this.#table.listEntities<T>({ queryOptions: { filter } })) {
        rows.push(entity as T & { rowKey: string; etag: string; timestamp?: string });
      }
    } catch (error) {
      throw new AgentwatchError('STATE_UNAVAILABLE', `reading Event Hubs checkpoints failed`, { cause: error });
    }
    return rows;
  }

  #ensureTable(): Promise<void> {
    this.#tableReady ??= this.#table.createTable().catch((error: unknown) => {
      this.#tableReady = undefined;
      throw new AgentwatchError('STATE_UNAVAILABLE', `creating the checkpoint table failed`, { cause: error });
    });
    return this.#tableReady;
  }
}

/** Table keys may not hold `/ \ # ?` or control characters; namespaces, hubs and groups rarely do, but be safe. */
export function checkpointPartition(fullyQualifiedNamespace: string, eventHubName: string, consumerGroup: string): string {
  return [fullyQualifiedNamespace, eventHubName, consumerGroup]
    .map((part) => part.toLowerCase().replace(/[/\\#?\u0000-\u001f\u007f]/g, '_'))
    .join(' ');
}

function escapeOData(value: string): string {
  return value.replace(/'/g, "''");
}
