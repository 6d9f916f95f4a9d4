/**
 * The optional second destination (alerts to another Event Hub, for SIEMs other than Sentinel)
 * behind the same outbox: the real `@azure/event-hubs` producer sends to the loopback Event Hubs
 * fake, and the real consumer reads back exactly one event per alert.
 */
import { EventHubConsumerClient, EventHubProducerClient, earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALERT_EVENT_SCHEMA, EventHubAlertUploader, eventHubUploaderFromSettings } from '../../src/alerts/eventHubSink';
import { OutboxAlertSink } from '../../src/alerts/outbox';
import type { Alert } from '../../src/alerts/types';
import type { DeadLetter } from '../../src/ports';
import { MemoryStateStore } from '../../src/state/memoryStore';
import { createFakeEventHubs, type FakeEventHubs } from '../support/fakeEventHubs';

const HUB = 'agentwatch-alerts';
let hubs: FakeEventHubs;
let uploader: EventHubAlertUploader;

beforeAll(async () => {
  hubs = await createFakeEventHubs({ hubs: { [HUB]: ['0', '1'] } });
  uploader = new EventHubAlertUploader({ producer: new EventHubProducerClient(hubs.connectionString(HUB), { retryOptions: { maxRetries: 0 } }) });
});

afterAll(async () => {
  await uploader?.close();
  await hubs?.close();
});

function alert(id: string, extra: Partial<Alert> = {}): Alert {
  return {
    id,
    detectionId: 'agent-privileged-permission-grant',
    title: `Agent granted Mail.Send (${id})`,
    severity: 'high',
    firstEventTime: '2026-11-24T09:20:00.000Z',
    lastEventTime: '2026-11-24T09:20:00.000Z',
    createdTime: '2026-11-24T09:21:00.000Z',
    entities: [{ type: 'agentIdentity', id: 'a1d00000-0000-4000-8000-000000000011' }],
    dedupKey: `agent-privileged-permission-grant:${id}`,
    evidence: [`audit-${id}`],
    tactics: ['Persistence', 'Privilege Escalation'],
    techniques: ['T1098.003'],
    actions: [],
    ...extra,
  };
}

/** Reads every event on the hub from the start until `count` arrived. */
async function readEvents(count: number): Promise<ReceivedEventData[]> {
  const consumer = new EventHubConsumerClient('$Default', hubs.connectionString(HUB));
  const received: ReceivedEventData[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const subscription = consumer.subscribe(
        {
          processEvents: async (events) => {
            received.push(...events);
            if (received.length >= count) void subscription.close().then(resolve);
          },
          processError: async (error) => reject(error),
        },
        { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
      );
    });
  } finally {
    await consumer.close();
  }
  return received;
}

describe('alerts to another Event Hub, behind the outbox', () => {
  it('sends one JSON event per alert with its id and routing properties, once even when offered twice', async () => {
    const letters: DeadLetter[] = [];
    const sink = new OutboxAlertSink({ store: new MemoryStateStore(), uploader, deadLetters: { put: async (batch) => void letters.push(...batch) } });
    const alerts = ['h1', 'h2', 'h3', 'h4'].map((id) => alert(id));
    expect(await sink.deliver(alerts)).toMatchObject({ delivered: 4, pending: 0 });
    expect(await sink.deliver(alerts)).toMatchObject({ duplicates: 4, delivered: 0 });
    // An alert bigger than the hub's largest event is refused and dead-lettered, the rest still go.
    const huge = alert('huge', { details: { blob: 'x'.repeat(1_100_000) } });
    expect(await sink.deliver([huge, alert('h5')])).toMatchObject({ delivered: 1, deadLettered: 1 });
    expect(letters.map((letter) => [letter.code, (letter.payload as { alert: Alert }).alert.id])).toEqual([['SINK_REJECTED', 'huge']]);
    expect(letters[0]!.reason).toMatch(/^eventhub refused the alert: no response: alert huge is larger than the hub's largest event/);

    expect(hubs.eventCount(HUB)).toBe(5);
    const events = await readEvents(5);
    const byId = new Map(events.map((event) => [event.messageId, event]));
    expect([...byId.keys()].sort()).toEqual(['h1', 'h2', 'h3', 'h4', 'h5']);
    const h1 = byId.get('h1')!;
    expect(h1.body).toEqual(alerts[0]);
    expect(h1.contentType).toBe('application/json');
    expect(h1.properties).toEqual({ schema: ALERT_EVENT_SCHEMA, alertId: 'h1', detectionId: 'agent-privileged-permission-grant', severity: 'high', dedupKey: 'agent-privileged-permission-grant:h1' });
  });

  it('is built only when AGENTWATCH_ALERTS_EVENTHUB_NAMESPACE is set', async () => {
    expect(eventHubUploaderFromSettings({})).toBeUndefined();
    const configured = eventHubUploaderFromSettings(
      { AGENTWATCH_ALERTS_EVENTHUB_NAMESPACE: 'contoso-alerts.servicebus.windows.net', AGENTWATCH_ALERTS_HUB: 'siem' },
      { credential: { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 60_000 }) } },
    );
    expect(configured).toBeInstanceOf(EventHubAlertUploader);
    expect(configured!.name).toBe('eventhub');
    await configured!.close();
  });
});
