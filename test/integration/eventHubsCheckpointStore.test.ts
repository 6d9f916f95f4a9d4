/**
 * TableCheckpointStore on Azurite: ownership claims race correctly on etags, checkpoints round-trip,
 * and the real EventHubConsumerClient resumes from them against the loopback Event Hubs endpoint.
 */
import { TableClient } from '@azure/data-tables';
import { EventHubConsumerClient, EventHubProducerClient, earliestEventPosition, type PartitionOwnership, type ReceivedEventData } from '@azure/event-hubs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TableCheckpointStore, checkpointPartition } from '../../src/host/tableCheckpointStore';
import { startAzuriteTables, type AzuriteTables } from '../support/azurite';
import { startFakeEventHubsProcess, type FakeEventHubsProcess } from '../support/fakeEventHubs';

const NAMESPACE = 'contoso-agentwatch.servicebus.windows.net';
const HUB = 'entra-logs';
const GROUP = '$Default';

let azurite: AzuriteTables;
let fake: FakeEventHubsProcess;
let tableCounter = 0;

beforeAll(async () => {
  [azurite, fake] = await Promise.all([startAzuriteTables(), startFakeEventHubsProcess({ hubs: { [HUB]: ['0', '1'] } })]);
});

afterAll(async () => {
  await Promise.all([azurite?.stop(), fake?.stop()]);
});

function freshStore(): { store: TableCheckpointStore; table: TableClient } {
  const table = TableClient.fromConnectionString(azurite.connectionString, `checkpoints${++tableCounter}`, { allowInsecureConnection: true });
  return { store: new TableCheckpointStore(table), table };
}

function ownership(partitionId: string, ownerId: string, etag?: string): PartitionOwnership {
  return { fullyQualifiedNamespace: NAMESPACE, eventHubName: HUB, consumerGroup: GROUP, partitionId, ownerId, etag };
}

describe('TableCheckpointStore', () => {
  it('lets exactly one of two processors claim an unowned partition', async () => {
    const { store } = freshStore();
    const [first, second] = await Promise.all([store.claimOwnership([ownership('0', 'processor-a')]), store.claimOwnership([ownership('0', 'processor-b')])]);
    expect(first.length + second.length).toBe(1);
    const owners = await store.listOwnership(NAMESPACE, HUB, GROUP);
    expect(owners).toHaveLength(1);
    expect(owners[0].ownerId).toBe([...first, ...second][0].ownerId);
    expect(owners[0].etag).toBe([...first, ...second][0].etag);
    expect(owners[0].lastModifiedTimeInMs).toBeGreaterThan(0);
  });

  it('refuses a claim made with a stale etag and accepts one made with the current etag', async () => {
    const { store } = freshStore();
    const [claimedByA] = await store.claimOwnership([ownership('1', 'processor-a')]);
    const [renewedByA] = await store.claimOwnership([ownership('1', 'processor-a', claimedByA.etag)]);
    expect(renewedByA.etag).not.toBe(claimedByA.etag);
    // B listed before A renewed: its etag is stale, so the steal must fail.
    expect(await store.claimOwnership([ownership('1', 'processor-b', claimedByA.etag)])).toEqual([]);
    const [stolenByB] = await store.claimOwnership([ownership('1', 'processor-b', renewedByA.etag)]);
    expect(stolenByB.ownerId).toBe('processor-b');
    expect((await store.listOwnership(NAMESPACE, HUB, GROUP)).map((o) => [o.partitionId, o.ownerId])).toEqual([['1', 'processor-b']]);
  });

  it('claims several partitions at once, returning only the ones it won', async () => {
    const { store } = freshStore();
    await store.claimOwnership([ownership('0', 'processor-a')]);
    const won = await store.claimOwnership([ownership('0', 'processor-b'), ownership('1', 'processor-b')]);
    expect(won.map((o) => o.partitionId)).toEqual(['1']);
  });

  it('stores checkpoints per namespace, hub and consumer group, and overwrites them', async () => {
    const { store } = freshStore();
    await store.updateCheckpoint({ fullyQualifiedNamespace: NAMESPACE, eventHubName: HUB, consumerGroup: GROUP, partitionId: '0', sequenceNumber: 4, offset: '1400' });
    await store.updateCheckpoint({ fullyQualifiedNamespace: NAMESPACE, eventHubName: HUB, consumerGroup: GROUP, partitionId: '0', sequenceNumber: 2 ** 40, offset: '99999999999' });
    await store.updateCheckpoint({ fullyQualifiedNamespace: NAMESPACE, eventHubName: HUB, consumerGroup: 'other', partitionId: '0', sequenceNumber: 1, offset: '10' });
    expect(await store.listCheckpoints(NAMESPACE, HUB, GROUP)).toEqual([
      { fullyQualifiedNamespace: NAMESPACE, eventHubName: HUB, consumerGroup: GROUP, partitionId: '0', sequenceNumber: 2 ** 40, offset: '99999999999' },
    ]);
    expect(await store.listCheckpoints(NAMESPACE, 'another-hub', GROUP)).toEqual([]);
  });

  it('rejects a checkpoint without a sequence number or offset', async () => {
    const { store } = freshStore();
    await expect(
      store.updateCheckpoint({ fullyQualifiedNamespace: NAMESPACE, eventHubName: HUB, consumerGroup: GROUP, partitionId: '0', sequenceNumber: Number.NaN, offset: '1' }),
    ).rejects.toBeInstanceOf(TypeError);
  });

  it('reports an unreachable table service as STATE_UNAVAILABLE', async () => {
    const table = TableClient.fromConnectionString(azurite.connectionString.replace(`:${azurite.port}/`, ':1/'), 'unreachable', {
      allowInsecureConnection: true,
      retryOptions: { maxRetries: 0 },
    });
    await expect(new TableCheckpointStore(table).listOwnership(NAMESPACE, HUB, GROUP)).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE' });
  });

  it('keeps table keys legal for any consumer group name', () => {
    expect(checkpointPartition('NS.servicebus.windows.net', 'Hub', 'a/b#c?d')).toBe('ns.servicebus.windows.net hub a_b_c_d');
  });

  it('lets the real consumer resume after the last checkpoint', async () => {
    const { store } = freshStore();
    const producer = new EventHubProducerClient(fake.connectionString(), HUB);
    await producer.sendBatch(
      Array.from({ length: 6 }, (_, index) => ({ body: { records: [{ marker: `first-${index}` }] } })),
      { partitionId: '0' },
    );

    const readUntil = async (count: number): Promise<ReceivedEventData[]> => {
      const consumer = new EventHubConsumerClient(GROUP, fake.connectionString(), HUB, store);
      const received: ReceivedEventData[] = [];
      await new Promise<void>((resolve, reject) => {
        const subscription = consumer.subscribe(
          '0',
          {
            processEvents: async (events, context) => {
              received.push(...events);
              if (events.length) await context.updateCheckpoint(events[events.length - 1]);
              if (received.length >= count) await subscription.close().then(resolve, reject);
            },
            processError: async () => undefined,
          },
          { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1, maxBatchSize: 4 },
        );
      });
      await consumer.close();
      return received;
    };

    const firstRun = await readUntil(6);
    expect(firstRun.map((event) => (event.body as { records: { marker: string }[] }).records[0].marker)).toEqual(
      Array.from({ length: 6 }, (_, index) => `first-${index}`),
    );
    await producer.sendBatch([{ body: { records: [{ marker: 'second-0' }] } }, { body: { records: [{ marker: 'second-1' }] } }], { partitionId: '0' });
    await producer.close();
    const secondRun = await readUntil(2);
    expect(secondRun.map((event) => (event.body as { records: { marker: string }[] }).records[0].marker)).toEqual(['second-0', 'second-1']);
    const [checkpoint] = (await store.listCheckpoints('127.0.0.1', HUB, GROUP)).filter((c) => c.partitionId === '0');
    expect(checkpoint.sequenceNumber).toBe(7);
  });
});
