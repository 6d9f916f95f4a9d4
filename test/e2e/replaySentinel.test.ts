/**
 * `agentwatch replay --output ndjson` with AGENTWATCH_SENTINEL_* set delivers to Sentinel exactly
 * the alerts it prints: the real replay command, the real `@azure/monitor-ingestion` client and the
 * real `DefaultAzureCredential` (managed identity through an App Service-style identity endpoint,
 * as inside Azure Functions), against the local HTTPS Logs Ingestion fake.
 *
 * Input: the demo stream in samples/ when it is there; until then the takeover scenario
 * (test/fixtures/scenarios/, provenance in test/e2e/replayResponse.test.ts).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Alert } from '../../src/alerts/types';
import { command as replay } from '../../src/cli/commands/replay';
import { capturedIo } from '../support/capturedIo';
import { FAKE_IDENTITY_HEADER, FakeLogsIngestion, INGESTION_REPLIES, startFakeLogsIngestion, useFakeManagedIdentity } from '../support/fakeLogsIngestion';

const repoRoot = join(__dirname, '..', '..');
const DEMO = [join(repoRoot, 'samples'), join(repoRoot, 'test', 'fixtures', 'scenarios')].find((folder) => existsSync(folder) && readdirSync(folder).some((file) => /\.(json|ndjson|jsonl|gz)$/.test(file)))!;
const DCR = 'dcr-e2e00000000000000000000000000001';

let fake: FakeLogsIngestion;
let restoreEnv: () => void = () => undefined;

beforeAll(async () => {
  fake = await startFakeLogsIngestion();
  // DefaultAzureCredential reads the managed identity endpoint from the process environment.
  restoreEnv = useFakeManagedIdentity(fake);
});

afterAll(async () => {
  restoreEnv();
  await fake?.close();
});

beforeEach(() => fake.reset());

async function runReplay(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  const captured = capturedIo(env, repoRoot);
  const code = await replay.run(args, captured.io);
  return { code, stdout: captured.stdout(), stderr: captured.stderr() };
}

const sentinelEnv = (): NodeJS.ProcessEnv => ({ AGENTWATCH_SENTINEL_ENDPOINT: fake.endpoint, AGENTWATCH_SENTINEL_DCR_ID: DCR });

function printedAlertIds(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => (JSON.parse(line) as Alert).id);
}

describe('replay with the Sentinel sink configured', () => {
  it('delivers every alert the NDJSON output prints, each exactly once, and nothing else', async () => {
    const { code, stdout, stderr } = await runReplay(['--output', 'ndjson', DEMO], sentinelEnv());
    expect(code, stderr).toBe(0);
    const printed = printedAlertIds(stdout);
    expect(printed.length, stderr).toBeGreaterThan(0);
    expect(new Set(printed).size).toBe(printed.length);
    const accepted = fake.acceptedCounts();
    expect([...accepted.keys()].sort()).toEqual([...printed].sort());
    expect([...accepted.values()].every((count) => count === 1)).toBe(true);
    // Through the supported path: the DCR stream, with a managed identity token for Azure Monitor.
    for (const upload of fake.uploads()) {
      expect(upload).toMatchObject({ dcrImmutableId: DCR, streamName: 'Custom-AgentwatchAlerts_CL', query: { 'api-version': '2023-01-01' }, contentEncoding: 'gzip' });
      expect(upload.authorization).toMatch(/^Bearer fake-mi-token-\d+$/);
    }
    expect(fake.tokenRequests[0]).toEqual({ resource: 'https://monitor.azure.com', identityHeader: FAKE_IDENTITY_HEADER });
  });

  it('still delivers each alert once when the service answers 503 first', async () => {
    fake.enqueue(INGESTION_REPLIES.unavailable());
    const { code, stdout, stderr } = await runReplay(['--output', 'ndjson', DEMO], sentinelEnv());
    expect(code, stderr).toBe(0);
    const printed = printedAlertIds(stdout);
    expect(fake.uploads()[0]!.answered).toBe(503);
    expect([...fake.acceptedCounts()].sort()).toEqual(printed.map((id) => [id, 1]).sort());
  });

  it('exits 1 and says how many alerts did not reach Sentinel when it stays unavailable', async () => {
    const takeover = join(repoRoot, 'test', 'fixtures', 'scenarios', 'takeover.ndjson');
    fake.when(() => true, INGESTION_REPLIES.forbidden());
    const { code, stdout, stderr } = await runReplay(['--output', 'ndjson', takeover], sentinelEnv());
    const printed = printedAlertIds(stdout);
    expect(printed.length).toBeGreaterThan(0);
    expect(fake.acceptedCounts().size).toBe(0);
    expect(stderr).toContain(`${printed.length} alert(s) NOT delivered to sentinel`);
    expect(code).toBe(1);
  });

  it('sends nothing to Sentinel when the settings are absent, and refuses to start on half a configuration', async () => {
    const plain = await runReplay(['--output', 'ndjson', DEMO], {});
    expect(plain.code).toBe(0);
    expect(printedAlertIds(plain.stdout).length).toBeGreaterThan(0);
    expect(fake.requests).toEqual([]);
    const half = await runReplay(['--output', 'ndjson', DEMO], { AGENTWATCH_SENTINEL_DCR_ID: DCR });
    expect(half.code).toBe(2);
    expect(half.stderr).toContain('AGENTWATCH_SENTINEL_ENDPOINT');
    expect(half.stdout).toBe('');
  });
});
