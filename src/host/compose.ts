/**
 * Host-side composition from app settings, shared by the Function (`azure.ts`) and the self-hosted
 * consumer (`local.ts`): settings validated once (every missing or malformed one named together),
 * then the durable adapters — Table state, Table dead letters, one outbox per alert destination,
 * the Graph client and the guarded responder — handed to `buildApp`. Built once per process, never
 * per batch: clients keep their connections and the inventory its cache.
 */
import type { TokenCredential } from '@azure/identity';
import { OutboxAlertSink, type AlertUploader, type OutboxRetryPolicy } from '../alerts/outbox';
import { eventHubUploaderFromSettings } from '../alerts/eventHubSink';
import { sentinelUploaderFromSettings } from '../alerts/sentinelSink';
import type { Alert } from '../alerts/types';
import { buildApp, type App } from '../app';
import { loadSettings, parseDuration, type HostMode, type Settings } from '../config';
import { loadEngineConfig } from '../engine/config';
import type { EngineConfig } from '../engine/types';
import type { AlertSink, Clock, DeadLetterSink, Logger } from '../ports';
import { createResponder, GraphActionsAdapter, GraphHttp, isResponseMode, responseConfigFromFile, type ResponderDeps, type ResponseConfig } from '../response';
import { createTableDeadLetterSink } from '../state/deadLetterTable';
import { createTableStateStore, type TableStateStore } from '../state/tableStore';

export interface HostOptions {
  mode: Extract<HostMode, 'function' | 'local'>;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** Optional; defaults to `DefaultAzureCredential` (managed identity in Azure, `AZURE_CLIENT_ID` for a user-assigned one). */
  credential?: TokenCredential;
  /** More alert destinations behind their own outbox (the local consumer's `--alerts-file`). */
  extraUploaders?: AlertUploader[];
  /** Outbox tuning (the local consumer's `--outbox-lease`). Optional; outbox defaults otherwise. */
  outboxRetry?: Partial<OutboxRetryPolicy>;
  outboxLeaseMs?: number;
  clock?: Clock;
}

/** Everything a host's functions use: the pipeline and the adapters the timers and endpoints need. */
export interface AgentwatchHost {
  settings: Settings;
  /** The identity everything signs in with (also the local consumer's Event Hubs client). */
  credential: TokenCredential;
  app: App;
  state: TableStateStore;
  deadLetters: DeadLetterSink;
  /** One per alert destination; the redrive timer drains each. */
  outboxes: OutboxAlertSink[];
  /** For the approval endpoint: the same guards, state and Graph client the responder uses. */
  responderDeps: ResponderDeps;
  /** For the inventory pull. */
  graph: GraphHttp;
}

export async function createHost(options: HostOptions): Promise<AgentwatchHost> {
  const { logger } = options;
  const settings = loadSettings(options.env, options.mode);
  const credential = options.credential ?? defaultCredential(settings);
  const engineConfig = settings.AGENTWATCH_CONFIG ? loadEngineConfig(settings.AGENTWATCH_CONFIG) : undefined;

  const factoryOptions = { credential, logger, ...(options.clock ? { clock: options.clock } : {}) };
  const state = await createTableStateStore(settings, factoryOptions);
  const deadLetters = await createTableDeadLetterSink(settings, factoryOptions);

  // One outbox per destination: an outage of one never holds back the others.
  const sentinel = sentinelUploaderFromSettings(settings, { credential, logger });
  const alertHub = eventHubUploaderFromSettings(settings, { credential, logger });
  const uploaders = [...(sentinel ? [sentinel] : []), ...(alertHub ? [alertHub] : []), ...(options.extraUploaders ?? [])];
  const outboxes = uploaders.map(
    (uploader) =>
      new OutboxAlertSink({
        store: state,
        uploader,
        deadLetters,
        logger,
        ...(options.clock ? { clock: options.clock } : {}),
        ...(options.outboxRetry ? { retry: options.outboxRetry } : {}),
        ...(options.outboxLeaseMs !== undefined ? { leaseMs: options.outboxLeaseMs } : {}),
      }),
  );
  if (!outboxes.length) logger.log('warn', 'no alert destination configured (AGENTWATCH_SENTINEL_* or AGENTWATCH_ALERTS_EVENTHUB_NAMESPACE): alerts are only logged');
  const alertSink: AlertSink[] = outboxes.length ? outboxes : [new LoggedAlertSink(logger)];

  const graph = new GraphHttp({ credential, logger, ...(settings.AGENTWATCH_GRAPH_BASE_URL ? { baseUrl: settings.AGENTWATCH_GRAPH_BASE_URL } : {}) });
  const responderDeps: ResponderDeps = {
    graph: new GraphActionsAdapter(graph),
    state,
    config: responseConfigOf(settings, engineConfig),
    logger,
    ...(options.clock ? { clock: options.clock } : {}),
  };

  const app = await buildApp({
    host: options.mode,
    env: options.env,
    state,
    alertSink,
    deadLetters,
    responder: createResponder(responderDeps),
    logger,
    ...(settings.AGENTWATCH_CONFIG ? { configFile: settings.AGENTWATCH_CONFIG } : {}),
    ...(settings.AGENTWATCH_LATENESS ? { latenessMs: parseDuration(settings.AGENTWATCH_LATENESS) } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  // The guards read the inventory the pipeline keeps; it exists only once the app is built, and the
  // responder reads `deps.inventory` at decision time.
  responderDeps.inventory = app.inventory;
  return { settings, credential, app, state, deadLetters, outboxes, responderDeps, graph };
}

/** Global ceiling from the app setting; everything else from the config file. */
export function responseConfigOf(settings: Settings, engineConfig: EngineConfig | undefined): ResponseConfig {
  return responseConfigFromFile(engineConfig, isResponseMode(settings.AGENTWATCH_RESPONSE_MODE) ? settings.AGENTWATCH_RESPONSE_MODE : undefined);
}

/** With no destination configured, alerts still reach the Function's logs (Application Insights) instead of vanishing. */
class LoggedAlertSink implements AlertSink {
  constructor(private readonly logger: Logger) {}

  async send(alerts: Alert[]): Promise<void> {
    for (const alert of alerts) {
      this.logger.log('warn', 'alert (no destination configured)', { alertId: alert.id, detectionId: alert.detectionId, severity: alert.severity, title: alert.title, dedupKey: alert.dedupKey });
    }
  }
}

function defaultCredential(settings: Settings): TokenCredential {
  // Loaded only when no credential is injected: tests and Azurite never need the identity stack.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { DefaultAzureCredential } = require('@azure/identity') as typeof import('@azure/identity');
  return settings.AZURE_CLIENT_ID ? new DefaultAzureCredential({ managedIdentityClientId: settings.AZURE_CLIENT_ID }) : new DefaultAzureCredential();
}
