/**
 * The Sentinel sink end to end on real components: the real `@azure/monitor-ingestion` client over
 * TLS to a local Logs Ingestion fake (certificate made at test time), the outbox on the real Table
 * Storage state store and dead-letter table (Azurite). Time is simulated (injected clock and sleep),
 * so a one-minute outage takes no wall time, but every request really goes over HTTPS.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OutboxAlertSink } from '../../src/alerts/outbox';
import { toSentinelRow, SENTINEL_STREAM_NAME, type RowLimits } from '../../src/alerts/rows';
import { SentinelUploader, sentinelSinkFromSettings } from '../../src/alerts/sentinelSink';
import type { Alert } from '../../src/alerts/types';
import type { Logger } from '../../src/ports';
import { TableDeadLetterSink } from '../../src/state/deadLetterTable';
import { TableStateStore, tableClientFromSettings } from '../../src/state/tableStore';
import { startAzuriteTables, type AzuriteTables } from '../support/azurite';
import { FakeLogsIngestion, INGESTION_REPLIES, fixedTokenCredential, startFakeLogsIngestion } from '../support/fakeLogsIngestion';

const DCR = 'dcr-00000000000000000000000000000001';
let azurite: AzuriteTables;
let fake: FakeLogsIngestion;
let tables = 0;

beforeAll(async () => {
  [azurite, fake] = await Promise.all([startAzuriteTables(), startFakeLogsIngestion()]);
});

afterAll(async () => {
  await Promise.all([fake?.close(), azurite?.stop()]);
});

beforeEach(() => fake.reset());

function simulatedTime(start = Date.parse('2026-11-24T10:00:00Z')) {
  let now = start;
  const waits: number[] = [];
  return { clock: { now: () => now }, sleep: async (ms: number) => void (waits.push(ms), (now += ms)), advance: (ms: number) => void (now += ms), waits, start };
}

/** A fresh state table and dead-letter table on Azurite, and the Sentinel sink over them. */
async function harness(options: { logger?: Logger; limits?: RowLimits } = {}) {
  const time = simulatedTime();
  const suffix = `${process.pid}x${++tables}`;
  const settings = { AGENTWATCH_STATE_CONNECTION_STRING: azurite.connectionString };
  const stateTable = tableClientFromSettings(settings, `sentinelstate${suffix}`);
  const letterTable = tableClientFromSettings(settings, `sentinelletters${suffix}`);
  await Promise.all([stateTable.createTable(), letterTable.createTable()]);
  const store = new TableStateStore(stateTable, { clock: time.clock });
  const deadLetters = new TableDeadLetterSink(letterTable, { clock: time.clock });
  const credential = fixedTokenCredential();
  const uploader = new SentinelUploader({ endpoint: fake.endpoint, dcrImmutableId: DCR, credential, ...(options.logger ? { logger: options.logger } : {}), ...(options.limits ? { limits: options.limits } : {}) });
  const sink = new OutboxAlertSink({ store, uploader, deadLetters, clock: time.clock, sleep: time.sleep, random: () => 0.5, ...(options.logger ? { logger: options.logger } : {}) });
  return { time, store, deadLetters, credential, sink };
}

function alert(id: string, extra: Partial<Alert> = {}): Alert {
  return {
    id,
    detectionId: 'blueprint-credential-added',
    title: `Credential added to blueprint Contoso Helpdesk (${id})`,
    severity: 'medium',
    firstEventTime: '2026-11-24T09:58:00.000Z',
    lastEventTime: '2026-11-24T09:59:00.000Z',
    createdTime: '2026-11-24T10:00:00.000Z',
    entities: [
      { type: 'blueprint', id: '11111111-aaaa-4bbb-8ccc-000000000001', name: 'Contoso Helpdesk' },
      { type: 'user', id: '55555555-aaaa-4bbb-8ccc-000000000005', upn: 'mallory@contoso.example' },
    ],
    dedupKey: `blueprint-credential-added:${id}`,
    evidence: [`audit-${id}`],
    tactics: ['Persistence'],
    techniques: ['T1098.001'],
    actions: [],
    blueprintAppId: '11111111-aaaa-4bbb-8ccc-000000000001',
    ...extra,
  };
}

const batch = (count: number, prefix = 'alert', extra: Partial<Alert> = {}) => Array.from({ length: count }, (_, index) => alert(`${prefix}-${String(index).padStart(3, '0')}`, extra));

/** ~30 KB of evidence per alert, so a few dozen alerts need more than one 1 MB call. */
const heavy = (id: string) => ({ evidence: Array.from({ length: 600 }, (_, index) => `signin-${id}-${String(index).padStart(4, '0')}-c1a8e2f0-7d4b`) });

function expectEachExactlyOnce(alerts: Alert[]) {
  const counts = fake.acceptedCounts();
  expect([...counts.keys()].sort()).toEqual(alerts.map((item) => item.id).sort());
  expect([...counts.values()].every((count) => count === 1)).toBe(true);
}

describe('Sentinel sink over HTTPS (real Logs Ingestion client, local fake)', () => {
  it('posts gzip JSON rows to the DCR stream, with api-version and the bearer token for the Monitor audience', async () => {
    const { sink, credential } = await harness();
    const alerts = batch(3);
    const report = await sink.deliver(alerts);
    expect(report).toMatchObject({ delivered: 3, pending: 0, attempts: 1 });
    const [upload, ...others] = fake.uploads();
    expect(others).toEqual([]);
    expect(upload).toMatchObject({
      method: 'POST',
      path: `/dataCollectionRules/${DCR}/streams/${SENTINEL_STREAM_NAME}`,
      query: { 'api-version': '2023-01-01' },
      authorization: 'Bearer agentwatch-test-token',
      contentEncoding: 'gzip',
    });
    expect(upload!.headers['content-type']).toMatch(/^application\/json/);
    expect(upload!.wireBytes).toBeLessThan(upload!.jsonBytes);
    expect(upload!.rows).toEqual(alerts.map((item) => (toSentinelRow(item) as { row: unknown }).row));
    expect(credential.scopes).toContain('https://monitor.azure.com/.default');
  });

  it('splits a large batch into calls under 1 MB and delivers every alert once', async () => {
    const { sink } = await harness();
    const alerts = Array.from({ length: 60 }, (_, index) => alert(`big-${index}`, heavy(`big-${index}`)));
    expect(await sink.deliver(alerts)).toMatchObject({ delivered: 60, pending: 0 });
    const uploads = fake.uploads();
    expect(uploads.length).toBeGreaterThanOrEqual(2);
    for (const upload of uploads) expect(upload.jsonBytes).toBeLessThanOrEqual(1_000_000 + upload.rows.length + 2);
    expectEachExactlyOnce(alerts);
  });

  it('rides out three 503s and delivers each alert exactly once', async () => {
    const { sink, time } = await harness();
    fake.enqueue(INGESTION_REPLIES.unavailable(), INGESTION_REPLIES.unavailable(), INGESTION_REPLIES.unavailable());
    const alerts = batch(5);
    expect(await sink.deliver(alerts)).toMatchObject({ delivered: 5, attempts: 4, pending: 0 });
    expect(fake.uploads().map((upload) => upload.answered)).toEqual([503, 503, 503, 204]);
    expect(time.waits).toEqual([750, 1_500, 3_000]);
    expectEachExactlyOnce(alerts);
  });

  it('waits out a 429 for as long as Retry-After says', async () => {
    const { sink, time } = await harness();
    fake.enqueue(INGESTION_REPLIES.throttled(7));
    const alerts = batch(4);
    expect(await sink.deliver(alerts)).toMatchObject({ delivered: 4, attempts: 2 });
    expect(time.waits).toEqual([7_000]);
    expectEachExactlyOnce(alerts);
  });

  it('on a partial failure retries only the rows of the failed call', async () => {
    const { sink } = await harness();
    const alerts = Array.from({ length: 60 }, (_, index) => alert(`part-${index}`, heavy(`part-${index}`)));
    fake.when((request) => request.rows.some((row) => row.AlertId === 'part-59'), INGESTION_REPLIES.unavailable(), 1);
    expect(await sink.deliver(alerts)).toMatchObject({ delivered: 60, attempts: 2, pending: 0 });
    const uploads = fake.uploads();
    expect(uploads.length).toBeGreaterThanOrEqual(3);
    const failedIds = uploads.filter((upload) => upload.answered === 503).flatMap((upload) => upload.rows.map((row) => String(row.AlertId)));
    expect(failedIds).toContain('part-59');
    expect(failedIds.length).toBeLessThan(60);
    // Posted twice: exactly the rows of the failed call; every other row once.
    const posts = new Map<string, number>();
    for (const row of uploads.flatMap((upload) => upload.rows)) posts.set(String(row.AlertId), (posts.get(String(row.AlertId)) ?? 0) + 1);
    expect([...posts].filter(([, count]) => count === 2).map(([id]) => id).sort()).toEqual([...failedIds].sort());
    expect([...posts].filter(([, count]) => count !== 1 && count !== 2)).toEqual([]);
    expectEachExactlyOnce(alerts);
  });

  it('keeps every alert through a one-minute outage and delivers each exactly once when the timer redrives', async () => {
    const { sink, time } = await harness();
    const recoversAt = time.start + 60_000;
    fake.outage = () => time.clock.now() < recoversAt;
    const alerts = batch(8, 'outage');
    const first = await sink.deliver(alerts);
    expect(first).toMatchObject({ delivered: 0, pending: 8, attempts: 4 });
    expect(fake.uploads().every((upload) => upload.answered === 'reset')).toBe(true);
    const pending = await sink.redrive({ dryRun: true });
    expect(pending).toMatchObject({ pendingBefore: 8, pendingAfter: 8, handled: 0 });
    expect(pending.lastError).toMatch(/^no response/);
    // The timer: a redrive every 30 s of simulated time until the outbox is empty.
    const runs = [];
    for (let tick = 0; tick < 10; tick++) {
      time.advance(30_000);
      const run = await sink.redrive();
      runs.push(run);
      if (run.pendingAfter === 0) break;
    }
    expect(runs.at(-1)).toMatchObject({ pendingAfter: 0 });
    expect(runs.reduce((total, run) => total + run.delivered, 0)).toBe(8);
    expect(time.clock.now()).toBeGreaterThanOrEqual(recoversAt);
    expectEachExactlyOnce(alerts);
    // Offered again (a redelivered Event Hubs batch): nothing goes out twice.
    const requestsBefore = fake.uploads().length;
    expect(await sink.deliver(alerts)).toMatchObject({ duplicates: 8, delivered: 0 });
    expect(fake.uploads()).toHaveLength(requestsBefore);
  });

  it('dead-letters a permanently rejected batch with the reason and the response, and does not retry it', async () => {
    const { sink, deadLetters, time } = await harness();
    fake.when(() => true, INGESTION_REPLIES.invalidStream('Column AlertTitle: type mismatch.'));
    const alerts = batch(2, 'rejected');
    expect(await sink.deliver(alerts)).toMatchObject({ delivered: 0, deadLettered: 2, pending: 0, attempts: 1 });
    expect(fake.uploads()).toHaveLength(1);
    const letters = await deadLetters.list(new Date(time.start));
    expect(letters.map((letter) => (letter.payload as { alert: Alert }).alert.id).sort()).toEqual(['rejected-000', 'rejected-001']);
    for (const letter of letters) {
      expect(letter).toMatchObject({ code: 'SINK_REJECTED', reason: 'sentinel refused the alert: HTTP 400 InvalidStream: Column AlertTitle: type mismatch.', position: { source: 'outbox-sentinel' } });
      expect((letter.payload as { response: unknown }).response).toEqual({ status: 400, code: 'InvalidStream', message: 'Column AlertTitle: type mismatch.' });
    }
    time.advance(3_600_000);
    expect(await sink.redrive()).toMatchObject({ pendingBefore: 0, handled: 0 });
    expect(fake.uploads()).toHaveLength(1);
  });

  it('refuses a row too large for one call without sending it, and dead-letters it', async () => {
    const { sink, deadLetters, time } = await harness({ limits: { fieldBytes: 64_000, rowBytes: 200_000 } });
    // Every field fits its own 64 KB limit; together they are over the (test-sized) row limit.
    const huge = alert('huge', { title: 't'.repeat(60_000), description: 'd'.repeat(60_000), triage: 'r'.repeat(60_000), details: { note: 'n'.repeat(60_000) } });
    const report = await sink.deliver([huge, alert('small')]);
    expect(report).toMatchObject({ delivered: 1, deadLettered: 1, pending: 0 });
    expect(fake.uploads().flatMap((upload) => upload.rows.map((row) => row.AlertId))).toEqual(['small']);
    const [letter] = await deadLetters.list(new Date(time.start));
    expect(letter!.reason).toMatch(/^sentinel refused the alert: no response: alert huge is \d+ bytes as a Sentinel row even after trimming, over the 200000-byte limit/);
  });

  it('dead-letters an alert too large for the outbox table instead of failing every batch that carries it', async () => {
    const { sink, deadLetters, time } = await harness();
    const huge = alert('enormous', { details: Object.fromEntries(Array.from({ length: 20 }, (_, index) => [`k${index}`, 'x'.repeat(60_000)])) });
    expect(await sink.deliver([huge, alert('normal')])).toMatchObject({ delivered: 1, deadLettered: 1, pending: 0 });
    expect(fake.acceptedRows().map((row) => row.AlertId)).toEqual(['normal']);
    const [letter] = await deadLetters.list(new Date(time.start));
    expect(letter!.reason).toMatch(/^too large to keep in the sentinel outbox, not sent: state write refused .* Table Storage allows 1048576 per entity$/);
    expect(letter!.payloadTruncated).toBe(true);
    expect(await sink.deliver([huge])).toMatchObject({ duplicates: 1 });
  });

  it('keeps alerts (never dead-letters them) while the identity lacks its role, says how to fix it, and delivers once it is granted', async () => {
    const errors: string[] = [];
    const { sink, deadLetters, time } = await harness({ logger: { log: (level, message) => level === 'error' && errors.push(message) } });
    fake.when(() => true, INGESTION_REPLIES.forbidden(), 4);
    const alerts = batch(3, 'forbidden');
    expect(await sink.deliver(alerts)).toMatchObject({ delivered: 0, deadLettered: 0, pending: 3 });
    expect(errors.some((message) => message.includes('Monitoring Metrics Publisher'))).toBe(true);
    time.advance(60_000);
    expect(await sink.redrive()).toMatchObject({ delivered: 3, pendingAfter: 0 });
    expect(await deadLetters.list(new Date(time.start))).toEqual([]);
    expectEachExactlyOnce(alerts);
  });

  it('is built from the AGENTWATCH_SENTINEL_* settings, and not at all when they are unset', async () => {
    const { store, deadLetters } = await harness();
    const credential = fixedTokenCredential('from-settings');
    expect(sentinelSinkFromSettings({ settings: {}, store, deadLetters, credential })).toBeUndefined();
    expect(() => sentinelSinkFromSettings({ settings: { AGENTWATCH_SENTINEL_ENDPOINT: fake.endpoint }, store, deadLetters, credential })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', problems: [expect.objectContaining({ path: 'AGENTWATCH_SENTINEL_DCR_ID' })] }),
    );
    const sink = sentinelSinkFromSettings({
      settings: { AGENTWATCH_SENTINEL_ENDPOINT: fake.endpoint, AGENTWATCH_SENTINEL_DCR_ID: 'dcr-from-settings', AGENTWATCH_SENTINEL_STREAM: 'Custom-Other_CL' },
      store,
      deadLetters,
      credential,
    })!;
    await sink.send([alert('configured')]);
    expect(fake.uploads()[0]).toMatchObject({ dcrImmutableId: 'dcr-from-settings', streamName: 'Custom-Other_CL', authorization: 'Bearer from-settings', answered: 204 });
  });
});
