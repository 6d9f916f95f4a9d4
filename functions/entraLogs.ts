/**
 * Event Hubs trigger: batches of Entra diagnostic-log bodies → the pipeline.
 *
 * - `cardinality: 'many'`: one invocation per batch (host.json: up to 100 events, checkpoint after
 *   every batch).
 * - `dataType: 'string'` on the binding (not in the library's trigger options, hence the spread):
 *   without it the host binds the batch with Json.NET and one non-JSON body fails the whole batch
 *   before our code runs. As strings, JSON bodies still arrive parsed and the rest as text; the
 *   pipeline dead-letters what it cannot read.
 * - Identity-based connection: app setting `EntraLogsEventHub__fullyQualifiedNamespace`.
 * - The retry policy re-runs a batch that threw; only dependency failures throw (docs/deploy.md).
 */
import { app, trigger, type InvocationContext } from '@azure/functions';
import { azureHost } from '../src/host/azure';
import { handleEntraLogs } from '../src/host/entraLogsHandler';
import { withInvocationLog } from '../src/host/logging';

export const ENTRA_LOGS_TRIGGER = {
  connection: 'EntraLogsEventHub',
  eventHubName: '%ENTRA_HUB%',
  consumerGroup: '%ENTRA_CONSUMER_GROUP%',
  cardinality: 'many',
} as const;

export const ENTRA_LOGS_RETRY = {
  strategy: 'exponentialBackoff',
  maxRetryCount: 5,
  minimumInterval: { seconds: 10 },
  maximumInterval: { minutes: 5 },
} as const;

export async function entraLogs(messages: unknown, context: InvocationContext): Promise<void> {
  await withInvocationLog(context, () => handleEntraLogs(Array.isArray(messages) ? messages : [messages], context, azureHost));
}

app.eventHub('entraLogs', {
  ...ENTRA_LOGS_TRIGGER,
  trigger: { ...trigger.eventHub(ENTRA_LOGS_TRIGGER), dataType: 'string' },
  retry: ENTRA_LOGS_RETRY,
  handler: entraLogs,
});
