/**
 * The Function's own entry point (`functions/entraLogs.ts` → `azureHost()`), composed from
 * `process.env` exactly as in Azure: Table state and dead letters on Azurite, the Sentinel outbox
 * posting to the local Logs Ingestion fake with a managed-identity token from the fake identity
 * endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER, as App Service sets them).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TableClient } from '@azure/data-tables';
import { InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entraLogs } from '../../functions/entraLogs';
import { startAzuriteTables, type AzuriteTables } from '../support/azurite';
import { FAKE_IDENTITY_HEADER, startFakeLogsIngestion, type FakeLogsIngestion } from '../support/fakeLogsIngestion';

const RECORDS = join(__dirname, '..', 'fixtures', 'records');
const record = (file: string) => JSON.parse(readFileSync(join(RECORDS, file), 'utf8')) as Record<string, unknown>;

let azurite: AzuriteTables;
let ingestion: FakeLogsIngestion;
const savedEnv = { ...process.env };

function invocation(messageCount: number, firstSequenceNumber: number) {
  const logs: { level: string; text: string }[] = [];
  const context = new InvocationContext({
    invocationId: `inv-${firstSequenceNumber}`,
    functionName: 'entraLogs',
    logHandler: (level, ...args) => logs.push({ level, text: args.map(String).join(' ') }),
    triggerMetadata: {
      partitionContext: { fullyQualifiedNamespace: 'evhns-test.servicebus.windows.net', eventHubName: 'entra-logs', consumerGroup: 'agentwatch', partitionId: '0' },
      sequenceNumberArray: Array.from({ length: messageCount }, (_, index) => firstSequenceNumber + index),
      offsetArray: Array.from({ length: messageCount }, (_, index) => String((firstSequenceNumber + index) * 1024)),
      enqueuedTimeUtcArray: Array.from({ length: messageCount }, () => '2026-10-05T10:30:00'),
    },
  });
  return { context, logs };
}

beforeAll(async () => {
  [azurite, ingestion] = await Promise.all([startAzuriteTables(), startFakeLogsIngestion()]);
});

afterAll(async () => {
  process.env = savedEnv;
  await Promise.all([azurite?.stop(), ingestion?.close()]);
});

describe('functions/entraLogs in Azure mode', () => {
  it('refuses to start without its settings, naming every missing one, and starts once they are set', async () => {
    for (const name of Object.keys(process.env)) if (/^(AGENTWATCH_|ENTRA_|EntraLogsEventHub__|AzureWebJobsStorage)/.test(name)) delete process.env[name];
    const { context, logs } = invocation(1, 0);
    await expect(entraLogs([{ records: [] }], context)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    const startupError = logs.find((line) => line.level === 'error' && line.text.includes('host start-up failed'))?.text ?? '';
    for (const name of ['EntraLogsEventHub__fullyQualifiedNamespace', 'AGENTWATCH_STATE_TABLE_ENDPOINT', 'AzureWebJobsStorage__accountName']) expect(startupError).toContain(name);
  });

  it('runs a batch through Table state, dead-letters the unreadable body, sends alerts to Sentinel once, and ignores a redelivery', async () => {
    Object.assign(process.env, {
      EntraLogsEventHub__fullyQualifiedNamespace: 'evhns-test.servicebus.windows.net',
      AzureWebJobsStorage__accountName: 'stawtest',
      AGENTWATCH_STATE_TABLE_ENDPOINT: `http://127.0.0.1:${azurite.port}/devstoreaccount1`,
      // Azurite has no token auth: locally the connection string wins over the endpoint.
      AGENTWATCH_STATE_CONNECTION_STRING: azurite.connectionString,
      AGENTWATCH_SENTINEL_ENDPOINT: ingestion.endpoint,
      AGENTWATCH_SENTINEL_DCR_ID: 'dcr-0123456789abcdef0123456789abcdef',
      AGENTWATCH_RESPONSE_MODE: 'off',
      IDENTITY_ENDPOINT: ingestion.identityEndpoint,
      IDENTITY_HEADER: FAKE_IDENTITY_HEADER,
    });
    const bodies = [
      { records: [record('audit-add-blueprint.json')] },
      JSON.stringify({ records: [record('audit-blueprint-credential-added.json')] }),
      Buffer.from('\u0000\u0001 truncated gzip?'),
    ];

    const first = invocation(bodies.length, 40);
    await entraLogs(bodies, first.context);

    const deadLetters = TableClient.fromConnectionString(azurite.connectionString, 'agentwatchdeadletters', { allowInsecureConnection: true });
    const letters: Record<string, unknown>[] = [];
    for await (const entity of deadLetters.listEntities()) letters.push(entity);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ code: 'RECORD_UNDECODABLE', partitionId: '0', sequenceNumber: '42', offset: String(42 * 1024) });

    const sentRows = ingestion.requests.filter((request) => request.answered === 204).flatMap((request) => request.rows);
    expect(sentRows.length).toBeGreaterThanOrEqual(1);
    expect(ingestion.requests.every((request) => request.authorization?.startsWith('Bearer fake-mi-token-'))).toBe(true);
    expect(ingestion.tokenRequests.length).toBeGreaterThanOrEqual(1);
    const sentIds = sentRows.map((row) => row.AlertId);
    expect(new Set(sentIds).size).toBe(sentIds.length);

    // Event Hubs redelivers the same batch (crash before checkpoint): nothing new leaves.
    const redelivery = invocation(bodies.length, 40);
    await entraLogs(bodies, redelivery.context);
    const rowsAfter = ingestion.requests.filter((request) => request.answered === 204).flatMap((request) => request.rows);
    expect(rowsAfter.map((row) => row.AlertId)).toEqual(sentIds);
    expect(redelivery.logs.some((line) => line.text.includes('entraLogs batch'))).toBe(true);
  });
});
