/**
 * At-least-once in, exactly-once out, proven on the real consumer: `agentwatch local` runs as a
 * child process against the loopback Event Hubs endpoint and Azurite, is killed with SIGKILL in the
 * middle of the stream (after some checkpoints, before the last), and is started again. Its alerts
 * go through the durable outbox (on Table state) to an NDJSON file. Afterwards: the file holds
 * exactly the alerts a clean in-memory run raises, none twice; the threshold detection counted the
 * redelivered records once (agent A's alert carries exactly its ten failures, agent B's nine raise
 * nothing); the second run stops cleanly on SIGTERM. `npm test` builds dist/ first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../src/alerts/types';
import { startAzuriteTables, type AzuriteTables } from '../support/azurite';
import { startFakeEventHubsProcess, type FakeEventHubsProcess } from '../support/fakeEventHubs';
import { AGENT_A, buildScenario, checkpointStoreOn, fullyCheckpointed, produceScenario, referenceAlerts, type Scenario } from './eventHubsScenario';

const repoRoot = join(__dirname, '..', '..');
const cli = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const HUB = 'entra-logs';
const GROUP = 'agentwatch';

let azurite: AzuriteTables;
let fake: FakeEventHubsProcess;
let workDir: string;
const scenario: Scenario = buildScenario(160);
let reference: Alert[];
const children: ChildProcess[] = [];

interface ConsumerProcess {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startConsumer(alertsFile: string): ConsumerProcess {
  const child = spawn(
    process.execPath,
    [cli, 'local', '--alerts-file', alertsFile, '--batch-size', '5', '--max-wait', '1s', '--ownership-expiry', '4s', '--balance-interval', '1s', '--redrive-interval', '1s', '--outbox-lease', '2s', '--log-level', 'debug'],
    {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH,
        AGENTWATCH_EVENTHUB_CONNECTION_STRING: fake.connectionString(),
        ENTRA_HUB: HUB,
        ENTRA_CONSUMER_GROUP: GROUP,
        AGENTWATCH_STATE_CONNECTION_STRING: azurite.connectionString,
        AGENTWATCH_RESPONSE_MODE: 'off',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  children.push(child);
  const lines: Record<string, unknown>[] = [];
  let pending = '';
  child.stderr!.on('data', (chunk) => {
    pending += String(chunk);
    const complete = pending.split('\n');
    pending = complete.pop()!;
    for (const line of complete) {
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ message: line });
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, lines, exited };
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function alertsInFile(file: string): Alert[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Alert);
}

const lastSequence = () => Object.fromEntries(Object.entries(scenario.partitions).map(([partitionId, bodies]) => [partitionId, bodies.length - 1]));

beforeAll(async () => {
  if (!existsSync(cli)) throw new Error('dist/src/cli/main.js is missing: run `npm run build` (npm test does it first)');
  [azurite, fake] = await Promise.all([startAzuriteTables(), startFakeEventHubsProcess({ hubs: { [HUB]: ['0', '1'] } })]);
  workDir = mkdtempSync(join(tmpdir(), 'agentwatch-killrestart-'));
  reference = await referenceAlerts(scenario);
  await produceScenario(fake.connectionString(), HUB, scenario, 20);
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all([azurite?.stop(), fake?.stop()]);
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe('kill the consumer mid-stream and restart it', () => {
  const alertsFile = () => join(workDir, 'alerts.ndjson');
  let firstRun: ConsumerProcess;
  let secondRun: ConsumerProcess;
  let checkpointsAtKill: { partitionId: string; sequenceNumber: number }[] = [];

  beforeAll(async () => {
    firstRun = startConsumer(alertsFile());
    // Kill as a batch holding agent failures enters the pipeline: mid-batch, some of its effects
    // (window counts) stored, its checkpoint not written — the restart must redeliver it and count
    // nothing twice.
    await waitFor('a batch with agent failures to arrive after some checkpoints', () => {
      if (!firstRun.lines.some((line) => line.message === 'checkpoint')) return false;
      return firstRun.lines.some((line) => {
        if (line.message !== 'batch received') return false;
        const positions = scenario.failureBodyPositions[String(line.partitionId)] ?? [];
        return positions.some((position) => position >= Number(line.firstSequenceNumber) && position <= Number(line.lastSequenceNumber));
      });
    });
    process.kill(firstRun.child.pid!, 'SIGKILL');
    await firstRun.exited;
    checkpointsAtKill = (await checkpointStoreOn(azurite.connectionString).listCheckpoints('127.0.0.1', HUB, GROUP)).map(({ partitionId, sequenceNumber }) => ({ partitionId, sequenceNumber }));

    secondRun = startConsumer(alertsFile());
    const checkpoints = checkpointStoreOn(azurite.connectionString);
    await waitFor('the second run to checkpoint every partition at its last event', () => fullyCheckpointed(checkpoints, HUB, GROUP, scenario), 90_000);
    const expectedIds = new Set(reference.map((alert) => alert.id));
    // Alerts a killed delivery left pending reach the file through the redrive once their lease ends.
    await waitFor('every expected alert in the file', () => [...expectedIds].every((id) => alertsInFile(alertsFile()).some((alert) => alert.id === id)), 30_000);
    process.kill(secondRun.child.pid!, 'SIGTERM');
  }, 180_000);

  it('was really killed mid-stream: some checkpoints written, not all', async () => {
    expect((await firstRun.exited).signal).toBe('SIGKILL');
    expect(checkpointsAtKill.length).toBeGreaterThan(0);
    const last = lastSequence();
    expect(checkpointsAtKill.some((checkpoint) => checkpoint.sequenceNumber < last[checkpoint.partitionId]!)).toBe(true);
  });

  it('the second run got again a batch the first run had received but not checkpointed', () => {
    const received = (run: ConsumerProcess) =>
      run.lines.filter((line) => line.message === 'batch received').map((line) => ({ partitionId: String(line.partitionId), first: Number(line.firstSequenceNumber), last: Number(line.lastSequenceNumber) }));
    const firstLast = new Map<string, number>();
    for (const batch of received(firstRun)) firstLast.set(batch.partitionId, Math.max(firstLast.get(batch.partitionId) ?? -1, batch.last));
    const redelivered = received(secondRun).filter((batch) => batch.first <= (firstLast.get(batch.partitionId) ?? -1));
    expect(redelivered.length).toBeGreaterThan(0);
  });

  it('the second run resumed from the checkpoints instead of the start', () => {
    const firstSequences = secondRun.lines.filter((line) => line.message === 'checkpoint').map((line) => ({ partitionId: String(line.partitionId), sequenceNumber: Number(line.sequenceNumber) }));
    for (const atKill of checkpointsAtKill) {
      const resumed = firstSequences.filter((checkpoint) => checkpoint.partitionId === atKill.partitionId);
      expect(resumed.length).toBeGreaterThan(0);
      expect(Math.min(...resumed.map((checkpoint) => checkpoint.sequenceNumber))).toBeGreaterThan(atKill.sequenceNumber);
    }
  });

  it('the union of alerts equals the clean run, and no alert id is in the file twice', () => {
    const inFile = alertsInFile(alertsFile());
    const ids = inFile.map((alert) => alert.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(reference.map((alert) => alert.id).sort());
    expect(reference.length).toBeGreaterThan(0);
  });

  it('state stayed consistent: the burst alert names exactly the ten failures, the nine-failure agent raised nothing', () => {
    const bursts = alertsInFile(alertsFile()).filter((alert) => alert.detectionId === 'agent-failed-access-burst');
    expect(bursts.map((alert) => alert.agentIdentityId)).toEqual([AGENT_A]);
    expect([...bursts[0]!.evidence].sort()).toEqual([...scenario.agentAFailureIds].sort());
  });

  it('the restarted consumer stops cleanly on SIGTERM', async () => {
    expect(await secondRun.exited).toEqual({ code: 0, signal: null });
    expect(secondRun.lines.at(-1)).toMatchObject({ message: 'local consumer stopped' });
  });
});
