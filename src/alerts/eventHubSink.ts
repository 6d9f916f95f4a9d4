/**
 * A second alert destination for SIEMs other than Sentinel (most read an Event Hub natively): each
 * alert becomes one JSON event, with its id as `messageId` and its detection, severity and dedup
 * key as application properties, so a consumer can route and de-duplicate without parsing.
 *
 * It is an `AlertUploader` like the Sentinel one: put it behind its own `OutboxAlertSink` (outbox
 * partition `outbox-eventhub`), and an outage of one destination never holds back the other. One
 * attempt per call — the SDK's retries are off — so the outbox owns retrying and the redrive.
 */
import type { TokenCredential } from '@azure/identity';
import type { EventData, EventDataBatch, EventHubProducerClient } from '@azure/event-hubs';
import type { Settings } from '../config';
import { AgentwatchError, AggregateSinkError, ensureError, type SinkFailure } from '../errors';
import { silentLogger, type Logger } from '../ports';
import type { AlertUploader, UploadReceipt } from './outbox';
import type { Alert } from './types';

/** Content type of the events; the `schema` property names the alert schema version. */
export const ALERT_EVENT_CONTENT_TYPE = 'application/json';
export const ALERT_EVENT_SCHEMA = 'agentwatch.alert.v1';

/** Event Hubs errors that sending the same event again cannot fix. */
const REJECTED_CODES = new Set(['MessageTooLargeError', 'ArgumentError', 'ArgumentOutOfRangeError']);

export class EventHubAlertUploader implements AlertUploader {
  readonly name = 'eventhub';
  private readonly producer: EventHubProducerClient;
  private readonly logger: Logger;

  constructor(options: { producer: EventHubProducerClient; logger?: Logger }) {
    this.producer = options.producer;
    this.logger = options.logger ?? silentLogger;
  }

  async upload(alerts: Alert[]): Promise<UploadReceipt> {
    const failures: SinkFailure<Alert>[] = [];
    const settled = new Set<string>();
    let batch: EventDataBatch | undefined;
    let batched: Alert[] = [];
    const send = async () => {
      if (!batch || !batched.length) return;
      const sending = batched;
      batched = [];
      try {
        await this.producer.sendBatch(batch);
      } catch (error) {
        failures.push(classifyEventHubsFailure(error, sending));
      }
      for (const alert of sending) settled.add(alert.id);
      batch = await this.producer.createBatch();
    };
    try {
      batch = await this.producer.createBatch();
      for (const alert of alerts) {
        const event = alertEvent(alert);
        if (batch.tryAdd(event)) {
          batched.push(alert);
          continue;
        }
        await send();
        if (batch.tryAdd(event)) {
          batched.push(alert);
          continue;
        }
        // Alone in an empty batch and still too big: no retry will make it fit.
        const cause = new AgentwatchError('SINK_REJECTED', `alert ${alert.id} is larger than the hub's largest event (${batch.maxSizeInBytes} bytes)`);
        failures.push({ code: 'SINK_REJECTED', items: [alert], cause });
        settled.add(alert.id);
      }
      await send();
    } catch (error) {
      // The connection failed outside a send (creating a batch): nothing after it went out.
      const unsent = alerts.filter((alert) => !settled.has(alert.id));
      if (unsent.length) failures.push(classifyEventHubsFailure(error, unsent));
    }
    if (failures.length) {
      this.logger.log('warn', `Event Hub alert stream: ${failures.reduce((count, failure) => count + failure.items.length, 0)} alert(s) not sent`, { codes: failures.map((failure) => failure.serviceCode ?? failure.code) });
      throw new AggregateSinkError(this.name, failures);
    }
    return { trimmedAlertIds: [] };
  }

  /** Closes the AMQP connection; call on host shutdown. */
  close(): Promise<void> {
    return this.producer.close();
  }
}

/** The event for one alert: the alert as JSON, and what a consumer routes or de-duplicates on. */
export function alertEvent(alert: Alert): EventData {
  return {
    body: alert,
    contentType: ALERT_EVENT_CONTENT_TYPE,
    messageId: alert.id,
    properties: { schema: ALERT_EVENT_SCHEMA, alertId: alert.id, detectionId: alert.detectionId, severity: alert.severity, dedupKey: alert.dedupKey },
  };
}

/** Too large or malformed: rejected. Anything else (network, throttling, auth not ready): transient. */
export function classifyEventHubsFailure<Item>(error: unknown, items: Item[]): SinkFailure<Item> {
  const code = (error as { code?: unknown } | undefined)?.code;
  const serviceCode = typeof code === 'string' ? code : undefined;
  return {
    code: serviceCode && REJECTED_CODES.has(serviceCode) ? 'SINK_REJECTED' : 'SINK_TRANSIENT',
    items,
    cause: ensureError(error),
    ...(serviceCode ? { serviceCode } : {}),
  };
}

/**
 * The uploader for `AGENTWATCH_ALERTS_EVENTHUB_NAMESPACE` / `AGENTWATCH_ALERTS_HUB`, with the app
 * identity (Azure Event Hubs Data Sender on the hub), or undefined when the namespace is unset.
 */
export function eventHubUploaderFromSettings(settings: Settings, options: { credential?: TokenCredential; logger?: Logger } = {}): EventHubAlertUploader | undefined {
  const namespace = settings.AGENTWATCH_ALERTS_EVENTHUB_NAMESPACE;
  if (!namespace) return undefined;
  // Loaded on first use, like the other Azure clients: hosts without the alert hub never pay for it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { EventHubProducerClient } = require('@azure/event-hubs') as typeof import('@azure/event-hubs');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const credential = options.credential ?? new (require('@azure/identity') as typeof import('@azure/identity')).DefaultAzureCredential(settings.AZURE_CLIENT_ID ? { managedIdentityClientId: settings.AZURE_CLIENT_ID } : {});
  const producer = new EventHubProducerClient(namespace, settings.AGENTWATCH_ALERTS_HUB ?? 'agentwatch-alerts', credential, { retryOptions: { maxRetries: 0 } });
  return new EventHubAlertUploader({ producer, ...(options.logger ? { logger: options.logger } : {}) });
}
