/**
 * Event Hubs end to end on loopback: the real `@azure/event-hubs` producer sends Entra bodies to
 * the loopback Event Hubs endpoint (a child process, stopped by PID); the self-hosted consumer
 * (`runLocalConsumer`, the code behind `npm run local`) reads them with checkpoints in Table Storage
 * on Azurite, through the same handler the Function uses, into the pipeline with every shipped
 * detection and Table state; alerts go through the durable outbox to a capturing destination.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TableClient } from '@azure/data-tables';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../src/alerts/types';
import type { LogLevel } from '../../src/ports';
import { runLocalConsumer, type LocalRunReport } from '../../src/host/local';
import { startAzuriteTables, type AzuriteTables } from '../support/azurite';
import { startFakeEventHubsProcess, type FakeEventHubsProcess } from '../support/fakeEventHubs';
import { AGENT_A, BLUEPRINT_APP_ID, CapturingUploader, UNREADABLE_BODY, buildScenario, checkpointStoreOn, fullyCheckpointed, produceScenario, referenceAlerts, type Scenario } from './eventHubsScenario';

const HUB = 'entra-logs';
/** The alerts this scenario must raise (DETECTIONS.md); the reference run must agree. */
const EXPECTED_DETECTIONS = ['agent-failed-access-burst', 'blueprint-credential-added', 'blueprint-credential-added-then-used', 'blueprint-exchange-new-ip'];

let azurite: AzuriteTables;
let fake: FakeEventHubsProcess;
let workDir: string;
const scenario: Scenario = buildScenario(40);
let reference: Alert[];

function consumerEnv(consumerGroup: string): NodeJS.ProcessEnv {
  return {
    AGENTWATCH_EVENTHUB_CONNECTION_STRING: fake.connectionString(),
    ENTRA_HUB: HUB,
    ENTRA_CONSUMER_GROUP: consumerGroup,
    AGENTWATCH_STATE_CONNECTION_STRING: azurite.connectionString,
    AGENTWATCH_RESPONSE_MODE: 'off',
  };
}

function recordingLogger(lines: { level: LogLevel; message: string; fields?: Record<string, unknown> }[]) {
  return { log: (level: LogLevel, message: string, fields?: Record<string, unknown>) => void lines.push({ level, message, ...(fields ? { fields } : {}) }) };
}

/** Runs the consumer until every partition is checkpointed at its last event, then stops it like SIGTERM would. */
async function consumeAll(consumerGroup: string, uploader: CapturingUploader, alertsFile: string) {
  const lines: { level: LogLevel; message: string; fields?: Record<string, unknown> }[] = [];
  const stop = new AbortController();
  const run: Promise<LocalRunReport> = runLocalConsumer({
    env: consumerEnv(consumerGroup),
    logger: recordingLogger(lines),
    uploaders: [uploader],
    alertsFile,
    maxBatchSize: 7,
    maxWaitTimeInSeconds: 1,
    balanceIntervalMs: 1_000,
    signal: stop.signal,
  });
  const checkpoints = checkpointStoreOn(azurite.connectionString);
  const deadline = Date.now() + 60_000;
  while (!(await fullyCheckpointed(checkpoints, HUB, consumerGroup, scenario))) {
    if (Date.now() > deadline) throw new Error(`consumer did not finish: ${JSON.stringify(lines.slice(-5))}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  stop.abort();
  return { report: await run, lines };
}

beforeAll(async () => {
  [azurite, fake] = await Promise.all([startAzuriteTables(), startFakeEventHubsProcess({ hubs: { [HUB]: ['0', '1'] } })]);
  workDir = mkdtempSync(join(tmpdir(), 'agentwatch-roundtrip-'));
  reference = await referenceAlerts(scenario);
  await produceScenario(fake.connectionString(), HUB, scenario, 10);
});

afterAll(async () => {
  await Promise.all([azurite?.stop(), fake?.stop()]);
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe('Event Hubs round trip (producer → loopback endpoint → consumer with checkpoints → pipeline → alerts)', () => {
  const uploader = new CapturingUploader();
  let first: Awaited<ReturnType<typeof consumeAll>>;

  beforeAll(async () => {
    first = await consumeAll('agentwatch', uploader, join(workDir, 'alerts.ndjson'));
  });

  it('the reference run raises exactly the expected detections', () => {
    expect([...new Set(reference.map((alert) => alert.detectionId))].sort()).toEqual(EXPECTED_DETECTIONS);
  });

  it('delivers exactly the reference alerts, each once', () => {
    expect([...uploader.deliveredIds].sort()).toEqual(reference.map((alert) => alert.id).sort());
    const delivered = uploader.uploads.flat();
    expect([...new Set(delivered.map((alert) => alert.detectionId))].sort()).toEqual(EXPECTED_DETECTIONS);
    const takeover = delivered.find((alert) => alert.detectionId === 'blueprint-credential-added-then-used')!;
    expect(takeover.entities.map((entity) => entity.id)).toContain(BLUEPRINT_APP_ID);
  });

  it('counts agent A exactly: its burst alert carries the ten failures, and agent B (nine) raises nothing', () => {
    const bursts = uploader.uploads.flat().filter((alert) => alert.detectionId === 'agent-failed-access-burst');
    expect(bursts).toHaveLength(1);
    expect(bursts[0]!.agentIdentityId).toBe(AGENT_A);
    expect([...bursts[0]!.evidence].sort()).toEqual([...scenario.agentAFailureIds].sort());
  });

  it('reads every record once, skips the unused category and dead-letters the unreadable body with its position', async () => {
    expect(first.report.totals).toMatchObject({ recordsRead: scenario.recordCount, rejected: 1 });
    expect(first.report.totals.skippedByCategory).toEqual({ ProvisioningLogs: scenario.skippedCount });
    expect(first.report.retries).toBe(0);
    const deadLetters = TableClient.fromConnectionString(azurite.connectionString, 'agentwatchdeadletters', { allowInsecureConnection: true });
    const letters: Record<string, unknown>[] = [];
    for await (const entity of deadLetters.listEntities()) letters.push(entity);
    const unreadableAt = scenario.partitions['1']!.indexOf(UNREADABLE_BODY);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ code: 'RECORD_UNDECODABLE', source: `127.0.0.1/${HUB}/agentwatch`, partitionId: '1', sequenceNumber: String(unreadableAt) });
  });

  it('checkpoints only after batches and stops cleanly, releasing its partitions', () => {
    const checkpointLines = first.lines.filter((line) => line.message === 'checkpoint');
    expect(checkpointLines.length).toBe(first.report.checkpoints);
    expect(first.report.batches).toBe(first.report.checkpoints);
    expect(first.lines.filter((line) => line.message === 'partition released').map((line) => line.fields?.partitionId).sort()).toEqual(['0', '1']);
    expect(first.lines.at(-1)?.message).toBe('local consumer stopped');
  });

  it('a second consumer group re-reading the whole hub against the same state delivers nothing again', async () => {
    const before = uploader.deliveredIds.length;
    const again = await consumeAll('agentwatch-reread', uploader, join(workDir, 'alerts.ndjson'));
    expect(again.report.totals.recordsRead).toBe(scenario.recordCount);
    expect(uploader.deliveredIds.length).toBe(before);
  });
});
