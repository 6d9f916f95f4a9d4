/**
 * State bench: the full pipeline (decode → normalize → resolve → every shipped detection → alerts)
 * with its state in Table Storage on an Azurite it starts and stops by PID, over the shared
 * generated stream. Prints what the state costs per 1,000 records — entity operations and HTTP
 * transactions written, point reads, all requests — and records/s, next to the same run on the
 * in-memory store. Target: ≤ 20 transactions per 1,000 records.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { MemoryAlertSink, MemoryDeadLetterSink } from '../src/alerts/consoleSinks';
import { buildApp, repoRoot } from '../src/app';
import { createEngine, loadDetections } from '../src/engine';
import type { StateStore } from '../src/ports';
import { MemoryStateStore } from '../src/state/memoryStore';
import { tableClientFromSettings, TableStateStore } from '../src/state/tableStore';
import { BODIES_PER_BATCH, countRecords, generateEntraBodies, type BenchContext, type BenchSection } from './ingest';

/** Azurite keeps everything in memory and answers one request at a time; beyond this the bench measures Azurite, not us. */
const MAX_RECORDS = 20_000;
const MIN_RECORDS = 10_000;
const DEV_ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

interface RunFigures {
  records: number;
  ms: number;
  alerts: number;
}

async function runPipeline(bodies: string[], state: StateStore): Promise<RunFigures> {
  const detections = loadDetections([join(repoRoot(__dirname), 'detections')]);
  const engine = createEngine({ detections, state });
  const alertSink = new MemoryAlertSink();
  const app = await buildApp({ state, engine, alertSink, deadLetters: new MemoryDeadLetterSink() });
  const t0 = performance.now();
  for (let i = 0; i < bodies.length; i += BODIES_PER_BATCH) {
    await app.processBatch(bodies.slice(i, i + BODIES_PER_BATCH), { source: 'bench', partitionId: '0' });
  }
  return { records: app.totals.recordsRead, ms: performance.now() - t0, alerts: alertSink.alerts.length };
}

export const section: BenchSection = {
  name: 'state',
  async run({ records, log, gc }: BenchContext): Promise<void> {
    const wanted = Math.min(MAX_RECORDS, Math.max(MIN_RECORDS, records));
    const bodies = generateEntraBodies(wanted);
    const total = countRecords(bodies);
    log(`stream: ${total.toLocaleString('en-US')} records in ${bodies.length.toLocaleString('en-US')} bodies, ${BODIES_PER_BATCH} bodies per batch, every shipped detection${wanted !== records ? ` (record count held to ${MIN_RECORDS.toLocaleString('en-US')}–${MAX_RECORDS.toLocaleString('en-US')} for Azurite)` : ''}`);

    gc();
    const memory = new MemoryStateStore();
    const inMemory = await runPipeline(bodies, memory);

    const azurite = await startAzurite();
    try {
      const table = tableClientFromSettings({ AGENTWATCH_STATE_CONNECTION_STRING: azurite.connectionString }, 'benchstate');
      await table.createTable();
      const requests = { pointReads: 0, queries: 0, transactions: 0, other: 0 };
      const transactionsByKind = new Map<string, number>();
      const counter: Parameters<typeof table.pipeline.addPolicy>[0] = {
        name: 'countStateRequests',
        sendRequest: (request, next) => {
          if (request.method === 'POST' && request.url.includes('$batch')) {
            requests.transactions++;
            // The engine's partitions start with a kind (`k|` keys, `m|` memories, `a|` alert markers, `p|` pendings).
            const partition = /"PartitionKey":"([^"]*)"/.exec(typeof request.body === 'string' ? request.body : '')?.[1] ?? '?';
            const kind = partition.includes('|') ? `${partition.split('|')[0]}|` : partition;
            transactionsByKind.set(kind, (transactionsByKind.get(kind) ?? 0) + 1);
          }
          else if (request.method === 'GET' && /\(PartitionKey=/.test(request.url)) requests.pointReads++;
          else if (request.method === 'GET') requests.queries++;
          else requests.other++;
          return next(request);
        },
      };
      table.pipeline.addPolicy(counter);
      const store = new TableStateStore(table);
      gc();
      const onTables = await runPipeline(bodies, store);
      const stats = store.stats;
      const per1k = (n: number): string => ((n * 1000) / onTables.records).toFixed(1);
      const rate = (figures: RunFigures): string => `${Math.round(figures.records / (figures.ms / 1000)).toLocaleString('en-US')} records/s`;
      const allRequests = requests.pointReads + requests.queries + requests.transactions + requests.other;

      log(`records processed:                      ${onTables.records.toLocaleString('en-US')} (alerts: ${onTables.alerts} on Tables, ${inMemory.alerts} in memory)`);
      log(`state writes per 1,000 records:         ${per1k(stats.entityWrites)} entity operations in ${per1k(requests.transactions)} HTTP transactions (target ≤ 20 transactions)`);
      log(`transactions by partition kind:         ${[...transactionsByKind].sort((x, y) => y[1] - x[1]).map(([kind, n]) => `${kind} ${per1k(n)}`).join(', ')} (per 1,000 records)`);
      log(`state reads per 1,000 records:          ${per1k(requests.pointReads)} point reads, ${per1k(requests.queries)} query pages`);
      log(`all Table requests per 1,000 records:   ${per1k(allRequests)} (conflicts ${stats.conflicts}, retries ${stats.retries})`);
      log(`in-memory store, same stream:           ${per1k(memory.stats.writes)} entity operations per 1,000 records`);
      log(`throughput on Table Storage (Azurite):  ${rate(onTables)}`);
      log(`throughput on the in-memory store:      ${rate(inMemory)}`);
    } finally {
      await azurite.stop();
    }
  },
};

// ---------------------------------------------------------------------------------------------
// Azurite, started as its own node process on a free loopback port and stopped by PID

interface RunningAzurite {
  connectionString: string;
  stop(): Promise<void>;
}

async function startAzurite(): Promise<RunningAzurite> {
  const port = await freePort();
  const entry = require.resolve('azurite/dist/src/table/main.js');
  const child = spawn(process.execPath, [entry, '--inMemoryPersistence', '--tableHost', '127.0.0.1', '--tablePort', String(port), '--disableTelemetry', '--silent', '--skipApiVersionCheck'], {
    stdio: 'ignore',
  });
  const stop = (): Promise<void> => stopByPid(child);
  try {
    await waitForListener(port, child);
  } catch (error) {
    await stop();
    throw error;
  }
  return { connectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${DEV_ACCOUNT_KEY};TableEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`, stop };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function waitForListener(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`azurite exited with code ${child.exitCode}`);
    const listening = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (listening) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`azurite did not listen on 127.0.0.1:${port} within 20 s`);
}

function stopByPid(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => process.kill(child.pid!, 'SIGKILL'), 5_000);
    child.once('exit', () => (clearTimeout(kill), resolve()));
    process.kill(child.pid!, 'SIGTERM');
  });
}
