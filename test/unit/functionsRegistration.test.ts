/**
 * What the Functions host will see: the compiled registration modules (`package.json` `main` is
 * `dist/functions/*.js`) are required the way the worker requires them, with a stand-in for the
 * worker's `@azure/functions-core` module, so `@azure/functions` hands over exactly the function
 * metadata (bindings, retry options) it would send to the host. `npm test` builds first.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repoRoot = join(__dirname, '..', '..');
const compiledFunctions = join(repoRoot, 'dist', 'functions');

interface RegisteredFunction {
  metadata: { name: string; bindings: Record<string, Record<string, unknown>>; retryOptions?: Record<string, unknown> };
  handler: unknown;
}

const registered = new Map<string, RegisteredFunction>();
const workerCore = {
  setProgrammingModel: () => undefined,
  getProgrammingModel: () => undefined,
  registerHook: () => ({ dispose: () => undefined }),
  log: () => undefined,
  registerFunction: (metadata: RegisteredFunction['metadata'], handler: unknown) => {
    registered.set(metadata.name, { metadata, handler });
    return { dispose: () => undefined };
  },
};

type ModuleLoad = (request: string, parent: unknown, isMain: boolean) => unknown;
const moduleInternals = Module as unknown as { _load: ModuleLoad };
const originalLoad = moduleInternals._load;
const compiledModules: Record<string, Record<string, unknown>> = {};

function triggerOf(name: string): Record<string, unknown> {
  const bindings = Object.values(registered.get(name)!.metadata.bindings);
  const triggers = bindings.filter((binding) => String(binding.type).endsWith('Trigger'));
  expect(triggers).toHaveLength(1);
  return triggers[0]!;
}

beforeAll(() => {
  if (!existsSync(compiledFunctions)) throw new Error('dist/functions is missing: run `npm run build` (npm test does it first)');
  moduleInternals._load = function load(this: unknown, request: string, parent: unknown, isMain: boolean) {
    if (request === '@azure/functions-core') return workerCore;
    return originalLoad.call(this, request, parent, isMain);
  };
  // A fresh @azure/functions, so it looks for the worker again and finds the stand-in.
  const requireFromRoot = createRequire(join(repoRoot, 'package.json'));
  for (const key of Object.keys(requireFromRoot.cache)) {
    if (key.includes(`${join('node_modules', '@azure', 'functions')}`) || key.startsWith(join(repoRoot, 'dist'))) delete requireFromRoot.cache[key];
  }
  for (const file of readdirSync(compiledFunctions).filter((name) => name.endsWith('.js'))) {
    compiledModules[file] = requireFromRoot(join(compiledFunctions, file)) as Record<string, unknown>;
  }
});

afterAll(() => {
  moduleInternals._load = originalLoad;
});

describe('compiled registrations', () => {
  it('package.json main points at one compiled module per functions/*.ts', () => {
    const manifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { main: string };
    expect(manifest.main).toBe('dist/functions/*.js');
    const sources = readdirSync(join(repoRoot, 'functions')).filter((name) => name.endsWith('.ts')).map((name) => name.replace(/\.ts$/, '.js'));
    expect(Object.keys(compiledModules).sort()).toEqual(sources.sort());
  });

  it('registers exactly the five functions', () => {
    expect([...registered.keys()].sort()).toEqual(['alertRedrive', 'entraLogs', 'inventoryPull', 'responseApproval', 'stateSweep']);
  });

  it('binds entraLogs to the Entra hub in batches, as strings, with the identity-based connection', () => {
    expect(triggerOf('entraLogs')).toMatchObject({
      type: 'eventHubTrigger',
      direction: 'in',
      connection: 'EntraLogsEventHub',
      eventHubName: '%ENTRA_HUB%',
      consumerGroup: '%ENTRA_CONSUMER_GROUP%',
      cardinality: 'many',
      dataType: 'string',
    });
  });

  it('gives entraLogs an exponential retry policy the host understands', () => {
    expect(registered.get('entraLogs')!.metadata.retryOptions).toMatchObject({
      retryStrategy: 'exponentialBackoff',
      maxRetryCount: 5,
      minimumInterval: { seconds: 10 },
      maximumInterval: { seconds: 300 },
    });
  });

  it('registers the exported handlers, so the tested code is the code that runs', () => {
    expect(registered.get('entraLogs')!.handler).toBe(compiledModules['entraLogs.js']!.entraLogs);
    expect(registered.get('stateSweep')!.handler).toBe(compiledModules['stateSweep.js']!.stateSweep);
    expect(registered.get('alertRedrive')!.handler).toBe(compiledModules['alertRedrive.js']!.alertRedrive);
    expect(registered.get('inventoryPull')!.handler).toBe(compiledModules['inventoryPull.js']!.inventoryPull);
    expect(registered.get('responseApproval')!.handler).toBe(compiledModules['responseApproval.js']!.responseApproval);
  });

  it('schedules the timers (6-field NCRONTAB or an app setting) and the approval endpoint behind a function key', () => {
    expect(triggerOf('stateSweep')).toMatchObject({ type: 'timerTrigger', schedule: '0 */15 * * * *', runOnStartup: false, useMonitor: true });
    expect(triggerOf('alertRedrive')).toMatchObject({ type: 'timerTrigger', schedule: '0 */5 * * * *' });
    expect(triggerOf('inventoryPull')).toMatchObject({ type: 'timerTrigger', schedule: '%AGENTWATCH_INVENTORY_SCHEDULE%' });
    expect(triggerOf('responseApproval')).toMatchObject({ type: 'httpTrigger', authLevel: 'function', methods: ['GET', 'POST'], route: 'response/approvals' });
  });
});

describe('host.json', () => {
  const hostJson = JSON.parse(readFileSync(join(repoRoot, 'host.json'), 'utf8')) as {
    version: string;
    extensionBundle: { id: string; version: string };
    extensions: { eventHubs: Record<string, unknown> };
  };

  it('uses the v4 extension bundle and checkpoints after every batch', () => {
    expect(hostJson.version).toBe('2.0');
    expect(hostJson.extensionBundle).toEqual({ id: 'Microsoft.Azure.Functions.ExtensionBundle', version: '[4.*, 5.0.0)' });
    expect(hostJson.extensions.eventHubs).toMatchObject({ maxEventBatchSize: 100, batchCheckpointFrequency: 1, prefetchCount: 300, initialOffsetOptions: { type: 'fromStart' } });
  });

  it('keeps prefetch at least as large as a batch', () => {
    expect(Number(hostJson.extensions.eventHubs.prefetchCount)).toBeGreaterThanOrEqual(Number(hostJson.extensions.eventHubs.maxEventBatchSize));
  });
});
