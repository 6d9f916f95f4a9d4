/**
 * The loopback Event Hubs endpoint answers the real SDK the way the service does for what the
 * other tests rely on: hub and partition properties, batches kept whole on one partition, start
 * positions (sequence number, offset, enqueued time, latest), unknown hubs refused, and a stop by PID.
 */
import { EventHubConsumerClient, EventHubProducerClient, earliestEventPosition, latestEventPosition, type EventPosition, type ReceivedEventData } from '@azure/event-hubs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeEventHubsProcess, type FakeEventHubsProcess } from '../support/fakeEventHubs';

let fake: FakeEventHubsProcess;

beforeAll(async () => {
  fake = await startFakeEventHubsProcess({ hubs: { 'entra-logs': ['0', '1', '2'], quiet: ['0'] } });
});

afterAll(async () => {
  await fake?.stop();
});

async function readPartition(hub: string, partitionId: string, startPosition: EventPosition, count: number, whileReading?: () => Promise<void>): Promise<ReceivedEventData[]> {
  const consumer = new EventHubConsumerClient('$Default', fake.connectionString(), hub);
  const received: ReceivedEventData[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let started = false;
      const subscription = consumer.subscribe(
        partitionId,
        {
          processEvents: async (events) => {
            received.push(...events);
            if (!started && whileReading) {
              started = true;
              await whileReading();
            }
            if (received.length >= count) await subscription.close().then(resolve, reject);
          },
          processError: async (error) => reject(error),
        },
        { startPosition, maxWaitTimeInSeconds: 1 },
      );
    });
  } finally {
    await consumer.close();
  }
  return received;
}

describe('loopback Event Hubs endpoint', () => {
  it('reports the hub and its partitions', async () => {
    const producer = new EventHubProducerClient(fake.connectionString(), 'entra-logs');
    try {
      expect(await producer.getPartitionIds()).toEqual(['0', '1', '2']);
      const empty = await producer.getPartitionProperties('2');
      expect(empty).toMatchObject({ partitionId: '2', isEmpty: true, lastEnqueuedSequenceNumber: -1 });
    } finally {
      await producer.close();
    }
  });

  it('keeps a batch whole on one partition, numbering events and growing offsets', async () => {
    const producer = new EventHubProducerClient(fake.connectionString(), 'entra-logs');
    try {
      const batch = await producer.createBatch();
      for (let index = 0; index < 6; index++) expect(batch.tryAdd({ body: { records: [{ index }] } })).toBe(true);
      await producer.sendBatch(batch);
      const counts = await Promise.all(['0', '1', '2'].map(async (id) => (await producer.getPartitionProperties(id)).lastEnqueuedSequenceNumber + 1));
      expect(counts.sort()).toEqual([0, 0, 6]);
    } finally {
      await producer.close();
    }
  });

  it('starts a reader after a sequence number, after an offset, or from an enqueued time', async () => {
    const producer = new EventHubProducerClient(fake.connectionString(), 'entra-logs');
    await producer.sendBatch(Array.from({ length: 5 }, (_, index) => ({ body: `event-${index}` })), { partitionId: '1' });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const cutoff = new Date();
    // `enqueuedOn` admits events enqueued strictly after it (as the service does): without this pause
    // event-5 could be stamped in the cutoff's own millisecond, and the reader would wait forever.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await producer.sendBatch([{ body: 'event-5' }], { partitionId: '1' });
    await producer.close();

    const all = await readPartition('entra-logs', '1', earliestEventPosition, 6);
    expect(all.map((event) => event.body)).toEqual(['event-0', 'event-1', 'event-2', 'event-3', 'event-4', 'event-5']);
    expect(all.map((event) => event.sequenceNumber)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(new Set(all.map((event) => event.offset)).size).toBe(6);

    expect((await readPartition('entra-logs', '1', { sequenceNumber: 2 }, 3)).map((event) => event.body)).toEqual(['event-3', 'event-4', 'event-5']);
    expect((await readPartition('entra-logs', '1', { sequenceNumber: 2, isInclusive: true }, 4)).map((event) => event.body)).toEqual(['event-2', 'event-3', 'event-4', 'event-5']);
    expect((await readPartition('entra-logs', '1', { offset: all[3]!.offset }, 2)).map((event) => event.body)).toEqual(['event-4', 'event-5']);
    expect((await readPartition('entra-logs', '1', { enqueuedOn: cutoff }, 1)).map((event) => event.body)).toEqual(['event-5']);
  });

  it('a reader from the latest position sees only what arrives after it attached', async () => {
    const producer = new EventHubProducerClient(fake.connectionString(), 'quiet');
    await producer.sendBatch([{ body: 'before' }], { partitionId: '0' });
    const pending = readPartition('quiet', '0', latestEventPosition, 1);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await producer.sendBatch([{ body: 'after' }], { partitionId: '0' });
    await producer.close();
    expect((await pending).map((event) => event.body)).toEqual(['after']);
  });

  it('refuses a hub that does not exist', async () => {
    const producer = new EventHubProducerClient(fake.connectionString(), 'no-such-hub', { retryOptions: { maxRetries: 0 } });
    try {
      await expect(producer.getEventHubProperties()).rejects.toMatchObject({ code: 'MessagingEntityNotFoundError' });
    } finally {
      await producer.close();
    }
  });

  it('is a child process stopped by its PID', async () => {
    const extra = await startFakeEventHubsProcess();
    expect(() => process.kill(extra.pid, 0)).not.toThrow();
    await extra.stop();
    expect(() => process.kill(extra.pid, 0)).toThrow();
  });
});
