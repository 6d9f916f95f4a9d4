/**
 * Composition root. `buildApp(options)` assembles the pipeline from injected ports, with in-memory
 * defaults for everything not given: the Function host, the local consumer, `replay`, `demo` and
 * the tests all build through here, so they run the same code. Adapters (Table state, Sentinel
 * outbox, Graph responder, Table dead letters) are passed in by the hosts; the options stay open
 * for more.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MemoryAlertSink, MemoryDeadLetterSink, FanOutAlertSink } from './alerts/consoleSinks';
import { Inventory, readInventorySeed, seedInventory, type InventorySeed } from './inventory';
import type { BatchMeta } from './ingest';
import { addSummary, emptySummary, processBatch, type BatchSummary } from './pipeline';
import { createEngine, loadDetections, loadEngineConfig, type EngineConfig } from './engine';
import { createResponder, responseConfigFromFile } from './response';
import type { AlertSink, Clock, DeadLetterSink, DetectionEngine, Logger, Responder, StateStore } from './ports';
import { silentLogger, systemClock } from './ports';
import type { TokenCredential } from '@azure/identity';
import type { OutboxAlertSink } from './alerts/outbox';
import { sentinelSinkFromSettings } from './alerts/sentinelSink';
import { loadSettings, parseDuration } from './config';
import { MemoryStateStore } from './state/memoryStore';

export interface AppOptions {
  /** Which host builds the app. Replay and demo keep response actions in dryRun. Optional; defaults to replay. */
  host?: 'function' | 'local' | 'replay';
  /** App settings (`src/config.ts`) for adapters configured from the environment. Optional; defaults to none. */
  env?: NodeJS.ProcessEnv;
  /** Detection rule files or folders. Optional; defaults to the repository's `detections/`. */
  detections?: string | string[];
  /** Config file path (`--config`, `AGENTWATCH_CONFIG`). Optional. */
  configFile?: string;
  /** Durable state. Optional; defaults to an in-memory store (replay, demo, tests). */
  state?: StateStore;
  /** Persist the inventory in `state`. Optional; defaults to true when `state` is given, false otherwise. */
  persistInventory?: boolean;
  /** Inventory seed: a parsed seed or a file path (`--inventory`). Optional. */
  inventorySeed?: InventorySeed | string;
  /** Extra Microsoft first-party app ids. Optional. */
  firstPartyAppIds?: string[];
  /** Where alerts go; several are called in order. Optional; defaults to an in-memory collector. */
  alertSink?: AlertSink | AlertSink[];
  /** Where rejected records go. Optional; defaults to an in-memory collector. */
  deadLetters?: DeadLetterSink;
  /** Response stage. Optional; defaults to a dryRun responder without Graph (actions planned, never taken). */
  responder?: Responder;
  /** A ready engine (tests). Optional; defaults to the engine built from `detections`. */
  engine?: DetectionEngine;
  /** Lateness bound for windows, ms. Optional; defaults to the engine's default (AGENTWATCH_LATENESS, 15 min). */
  latenessMs?: number;
  logger?: Logger;
  clock?: Clock;
  /**
   * Also deliver alerts to Sentinel when `env` sets AGENTWATCH_SENTINEL_ENDPOINT and
   * AGENTWATCH_SENTINEL_DCR_ID: the Logs Ingestion uploader behind its durable outbox (on `state`,
   * else in memory), after the other sinks; refused alerts go to `deadLetters`. Optional; defaults
   * to true for replay, false for the function and local hosts (src/host/compose.ts builds theirs).
   */
  sentinelFromEnv?: boolean;
  /** Azure credential for adapters built here (the Sentinel uploader). Optional; defaults to DefaultAzureCredential. */
  credential?: TokenCredential;
}

export interface App {
  /** Runs one batch through the whole pipeline and adds its summary to `totals`. */
  processBatch(messages: readonly unknown[], meta?: BatchMeta): Promise<BatchSummary>;
  /** Everything processed so far by this app. */
  readonly totals: BatchSummary;
  readonly inventory: Inventory;
  readonly engine: DetectionEngine;
  /** The store state lives in: the one given, or the in-memory default. */
  readonly state: StateStore;
  readonly alertSink: AlertSink;
  readonly deadLetters: DeadLetterSink;
  /** Outboxes built here from settings (`sentinelFromEnv`): redrive or report them before exit. */
  readonly outboxes: readonly OutboxAlertSink[];
}

export async function buildApp(options: AppOptions = {}): Promise<App> {
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  // Without a durable store (replay, demo, tests) state lives in memory for the app's lifetime.
  const state = options.state ?? new MemoryStateStore({ clock });
  const seed = typeof options.inventorySeed === 'string' ? await readInventorySeed(options.inventorySeed) : options.inventorySeed;
  const config: EngineConfig | undefined = options.configFile ? loadEngineConfig(options.configFile) : undefined;

  const inventoryOptions: ConstructorParameters<typeof Inventory>[0] = {
    logger,
    now: () => clock.now(),
    firstPartyAppIds: [...(options.firstPartyAppIds ?? []), ...(seed?.firstPartyAppIds ?? []), ...(config?.lists?.firstPartyAppIds ?? []).map(String)],
  };
  if (options.state && (options.persistInventory ?? true)) inventoryOptions.state = state;
  const inventory = new Inventory(inventoryOptions);
  await inventory.load();
  if (seed) seedInventory(inventory, seed.entities);

  const engine = options.engine ?? engineFromRules(options, { state, config, logger, clock });
  const deadLetters = options.deadLetters ?? new MemoryDeadLetterSink();
  const outboxes = sentinelOutboxesFromEnv(options, { state: options.state, deadLetters, logger, clock });
  const givenSinks = Array.isArray(options.alertSink) ? options.alertSink : [options.alertSink ?? new MemoryAlertSink()];
  const alertSink = givenSinks.length === 1 && !outboxes.length ? givenSinks[0]! : new FanOutAlertSink([...givenSinks, ...outboxes]);
  const deps: Parameters<typeof processBatch>[2] = { inventory, engine, alertSink, deadLetters, logger, clock };
  // Without an injected responder (replay, demo, tests) the rules' actions are still planned — in
  // dryRun, without Graph — so every alert shows what the response stage would do.
  deps.responder = options.responder ?? createResponder({ state, inventory, config: responseConfigFromFile(config, 'dryRun'), clock, logger });

  const totals = emptySummary();
  return {
    totals,
    inventory,
    engine,
    state,
    alertSink,
    deadLetters,
    outboxes,
    async processBatch(messages, meta = {}) {
      const summary = await processBatch(messages, meta, deps);
      addSummary(totals, summary);
      return summary;
    },
  };
}

/** The declarative engine over the rule files (default: the repository's `detections/`), tuned by the config file. */
function engineFromRules(options: AppOptions, deps: { state: StateStore; config: EngineConfig | undefined; logger: Logger; clock: Clock }): DetectionEngine {
  const paths = options.detections === undefined ? [join(repoRoot(), 'detections')] : Array.isArray(options.detections) ? options.detections : [options.detections];
  const detections = loadDetections(paths, { config: deps.config, logger: deps.logger, clock: deps.clock });
  const lateness = options.env?.AGENTWATCH_LATENESS?.trim();
  const latenessMs = options.latenessMs ?? (lateness ? parseDuration(lateness) : undefined);
  return createEngine({ detections, state: deps.state, logger: deps.logger, clock: deps.clock, config: deps.config, ...(latenessMs !== undefined ? { latenessMs } : {}) });
}

/** The Sentinel outbox from `AGENTWATCH_SENTINEL_*` in `options.env`, when asked for and configured. */
function sentinelOutboxesFromEnv(options: AppOptions, deps: { state: StateStore | undefined; deadLetters: DeadLetterSink; logger: Logger; clock: Clock }): OutboxAlertSink[] {
  const wanted = options.sentinelFromEnv ?? (options.host ?? 'replay') === 'replay';
  // Either setting alone is a half configuration: let the factory name the missing one.
  if (!wanted || !(options.env?.AGENTWATCH_SENTINEL_ENDPOINT?.trim() || options.env?.AGENTWATCH_SENTINEL_DCR_ID?.trim())) return [];
  const settings = loadSettings(options.env, options.host ?? 'replay');
  const sink = sentinelSinkFromSettings({
    settings,
    store: deps.state ?? new MemoryStateStore({ clock: deps.clock }),
    deadLetters: deps.deadLetters,
    logger: deps.logger,
    clock: deps.clock,
    ...(options.credential ? { credential: options.credential } : {}),
  });
  return sink ? [sink] : [];
}

/** The repository root (where `package.json` names agentwatch), from source or from `dist/`. */
export function repoRoot(from: string = __dirname): string {
  let dir = from;
  for (let i = 0; i < 8; i++) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'agentwatch') return dir;
      } catch {
        // An unreadable manifest is not ours: keep walking up.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return process.cwd();
}
