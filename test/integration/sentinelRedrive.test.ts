/**
 * `agentwatch redrive` against real components: alerts left pending in the Table Storage outbox
 * (Azurite) by an outage are reported by `--dry-run` and delivered by a redrive through the real
 * Logs Ingestion client to the local HTTPS fake, with the CLI's own DefaultAzureCredential getting
 * a managed identity token from the fake's identity endpoint.
 */
import { capturedIo } from '../support/capturedIo';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OutboxAlertSink } from '../../src/alerts/outbox';
import { SentinelUploader } from '../../src/alerts/sentinelSink';
import type { Alert } from '../../src/alerts/types';
import { command, parseRedriveArgs, redrive, type RedriveDeps } from '../../src/cli/commands/redrive';
import { createTableDeadLetterSink } from '../../src/state/deadLetterTable';
import { createTableStateStore } from '../../src/state/tableStore';
import { startAzuriteTables, type AzuriteTables } from '../support/azurite';
import { FakeLogsIngestion, INGESTION_REPLIES, fixedTokenCredential, startFakeLogsIngestion, useFakeManagedIdentity } from '../support/fakeLogsIngestion';

const DCR = 'dcr-redrive000000000000000000000000001';
let azurite: AzuriteTables;
let fake: FakeLogsIngestion;
let tables = 0;
let restoreEnv: () => void = () => undefined;

beforeAll(async () => {
  [azurite, fake] = await Promise.all([startAzuriteTables(), startFakeLogsIngestion()]);
  // DefaultAzureCredential reads the managed identity endpoint from the process environment.
  restoreEnv = useFakeManagedIdentity(fake);
});

afterAll(async () => {
  restoreEnv();
  await Promise.all([fake?.close(), azurite?.stop()]);
});

beforeEach(() => fake.reset());

function alert(id: string): Alert {
  return {
    id,
    detectionId: 'agent-risk-detected',
    title: `Agent at high risk (${id})`,
    severity: 'high',
    firstEventTime: '2026-11-24T09:00:00.000Z',
    lastEventTime: '2026-11-24T09:00:00.000Z',
    createdTime: '2026-11-24T09:01:00.000Z',
    entities: [{ type: 'agentIdentity', id: 'a1d00000-0000-4000-8000-000000000011' }],
    dedupKey: `agent-risk-detected:${id}`,
    evidence: [`risk-${id}`],
    tactics: ['InitialAccess'],
    techniques: ['T1078.004'],
    actions: [],
  };
}

/** Settings for a fresh pair of tables, with `count` alerts left pending there by an outage. */
async function pendingOutbox(count: number): Promise<{ env: NodeJS.ProcessEnv; alerts: Alert[] }> {
  const suffix = `${process.pid}x${++tables}`;
  const env = {
    AGENTWATCH_STATE_CONNECTION_STRING: azurite.connectionString,
    AGENTWATCH_STATE_TABLE: `redrivestate${suffix}`,
    AGENTWATCH_DEADLETTER_TABLE: `redriveletters${suffix}`,
    AGENTWATCH_SENTINEL_ENDPOINT: fake.endpoint,
    AGENTWATCH_SENTINEL_DCR_ID: DCR,
  };
  const store = await createTableStateStore(env);
  const deadLetters = await createTableDeadLetterSink(env);
  const uploader = new SentinelUploader({ endpoint: fake.endpoint, dcrImmutableId: DCR, credential: fixedTokenCredential() });
  const sink = new OutboxAlertSink({ store, uploader, deadLetters, sleep: async () => undefined });
  const alerts = Array.from({ length: count }, (_, index) => alert(`pending-${index}`));
  fake.outage = true;
  expect(await sink.deliver(alerts)).toMatchObject({ pending: count, delivered: 0 });
  fake.reset();
  return { env, alerts };
}

/** The command as the CLI runs it; with `deps`, through `redrive()` so waits can be simulated. */
async function run(args: string[], env: NodeJS.ProcessEnv, deps?: RedriveDeps): Promise<{ code: number; stdout: string; stderr: string }> {
  const captured = capturedIo(env);
  const parsed = parseRedriveArgs(args);
  const code = deps && typeof parsed !== 'string' ? await redrive(parsed, captured.io, deps) : await command.run(args, captured.io);
  return { code, stdout: captured.stdout(), stderr: captured.stderr() };
}

describe('agentwatch redrive', () => {
  it('--dry-run reports what is pending and why, and sends nothing', async () => {
    const { env } = await pendingOutbox(3);
    const result = await run(['--dry-run'], env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('sentinel outbox (dry run: nothing sent):');
    expect(result.stdout).toContain('pending before:   3');
    expect(result.stdout).toMatch(/oldest pending since \d{4}-\d\d-\d\dT.*; last error: no response/);
    expect(fake.requests).toEqual([]);
  });

  it('delivers every pending alert once and prints the counts', async () => {
    const { env, alerts } = await pendingOutbox(4);
    const result = await run([], env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('pending before:   4');
    expect(result.stdout).toContain('delivered:        4');
    expect(result.stdout).toContain('dead-lettered:    0');
    expect(result.stdout).toContain('still pending:    0');
    expect([...fake.acceptedCounts()].sort()).toEqual(alerts.map((item) => [item.id, 1]).sort());
    expect(fake.uploads()[0]!.authorization).toMatch(/^Bearer fake-mi-token-\d+$/);
    const again = await run(['--json'], env);
    expect(JSON.parse(again.stdout)).toMatchObject({ pendingBefore: 0, handled: 0, pendingAfter: 0, dryRun: false });
  });

  it('exits 1 and keeps the alerts when the service still fails; --limit caps the run', async () => {
    const { env } = await pendingOutbox(3);
    fake.when(() => true, INGESTION_REPLIES.unavailable());
    const waits: number[] = [];
    const failing = await run(['--limit', '2'], env, { sleep: async (ms) => void waits.push(ms) });
    expect(waits).toHaveLength(3);
    expect(failing.code).toBe(1);
    expect(failing.stdout).toContain('sent now:         2 in 4 upload(s)');
    expect(failing.stdout).toContain('still pending:    3');
    expect(failing.stderr).toMatch(/warn: sentinel outbox: 2 alert\(s\) still undelivered after 4 attempt\(s\)/);
  });

  it('--due-only respects the backoff the failed run scheduled', async () => {
    const { env } = await pendingOutbox(2);
    const result = await run(['--due-only', '--json'], env);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ pendingBefore: 2, notDue: 2, handled: 0, pendingAfter: 2 });
    expect(fake.requests).toEqual([]);
  });

  it('refuses to run without Sentinel or state settings, and on bad arguments', async () => {
    const noSentinel = await run([], { AGENTWATCH_STATE_CONNECTION_STRING: azurite.connectionString });
    expect(noSentinel.code).toBe(2);
    expect(noSentinel.stderr).toContain('Sentinel is not configured');
    const noState = await run([], { AGENTWATCH_SENTINEL_ENDPOINT: fake.endpoint, AGENTWATCH_SENTINEL_DCR_ID: DCR });
    expect(noState.code).toBe(2);
    expect(noState.stderr).toContain('AGENTWATCH_STATE_TABLE_ENDPOINT');
    expect(parseRedriveArgs(['--limit', '0'])).toBe('--limit needs a positive whole number, got "0"');
    expect(parseRedriveArgs(['--force'])).toBe('unknown argument "--force"');
    expect(parseRedriveArgs(['--dry-run', '--limit=5'])).toEqual({ json: false, dryRun: true, limit: 5, ignoreSchedule: true });
    expect((await run(['--bogus'], {})).code).toBe(2);
  });
});
