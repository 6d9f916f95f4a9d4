/**
 * The Event Hubs integration scenario: a blueprint takeover and two agents' failure bursts hidden in
 * ordinary traffic, as the Entra diagnostic setting would stream it, laid out per partition.
 *
 * Built from the constructed records in test/fixtures/records (see its README for provenance: fake
 * tenant, GUIDs and names; shapes from the reference notes) with ids and times varied here:
 * - partition 0, in order: the blueprint is created (Oct 1) with its agent identity, exchanges a
 *   token from its usual host (Oct 2), a password is added to it (Oct 5 10:10) and the new key is
 *   used for a token exchange from a new IP (10:15);
 * - agent A fails 10 token requests within 10 minutes (Conditional Access 53003), spread over both
 *   partitions: exactly the threshold of `agent-failed-access-burst`;
 * - agent B fails 9 times: one short of it, so any double counting on redelivery shows as an alert;
 * - filler: ordinary (non-agent) service principal sign-ins, ProvisioningLogs records (a category
 *   agentwatch skips), and one body that is not JSON (dead-lettered).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TableClient } from '@azure/data-tables';
import { EventHubProducerClient } from '@azure/event-hubs';
import { MemoryAlertSink } from '../../src/alerts/consoleSinks';
import type { AlertUploader, UploadReceipt } from '../../src/alerts/outbox';
import type { Alert } from '../../src/alerts/types';
import { buildApp } from '../../src/app';
import { TableCheckpointStore } from '../../src/host/tableCheckpointStore';

const RECORDS = join(__dirname, '..', 'fixtures', 'records');
type EntraRecord = Record<string, unknown> & { properties: Record<string, unknown> };

function fixture(file: string): EntraRecord {
  return JSON.parse(readFileSync(join(RECORDS, file), 'utf8')) as EntraRecord;
}

export const BLUEPRINT_APP_ID = 'dddddddd-1111-2222-3333-444444444444';
export const AGENT_A = 'aaaaaaaa-1111-2222-3333-444444444444';
export const AGENT_B = 'aaaaaaaa-2222-2222-3333-444444444444';
export const UNREADABLE_BODY = '{"records":[{"category":"SignInLogs", <truncated by a proxy>';

/** A body as the diagnostic setting sends it, or the unreadable one. */
export type EntraBody = { records: EntraRecord[] } | string;

export interface Scenario {
  /** Bodies per partition id, in the order they are produced. */
  partitions: Record<string, EntraBody[]>;
  /** Record ids of agent A's ten failures (the evidence of its alert). */
  agentAFailureIds: string[];
  agentBFailureIds: string[];
  /** Sequence numbers (positions) of the failure bodies, per partition. */
  failureBodyPositions: Record<string, number[]>;
  recordCount: number;
  skippedCount: number;
}

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, '0');
}

function failedT2(agentId: string, index: number, minuteOffsetSeconds: number, idPrefix: string): EntraRecord {
  const record = fixture('t2-autonomous.json');
  const created = new Date(Date.parse('2026-10-05T10:20:00Z') + minuteOffsetSeconds * 1000);
  const id = `${idPrefix}-0000-4000-8000-${hex(index, 12)}`;
  record.time = new Date(created.getTime() + 95_000).toISOString();
  record.resultType = '53003';
  record.resultSignature = 'FAILURE';
  Object.assign(record.properties, {
    id,
    createdDateTime: created.toISOString(),
    appId: agentId,
    servicePrincipalId: agentId,
    appDisplayName: agentId === AGENT_A ? 'invoice-agent-07' : 'invoice-agent-12',
    servicePrincipalName: agentId === AGENT_A ? 'invoice-agent-07' : 'invoice-agent-12',
    status: { errorCode: 53003, failureReason: 'Access has been blocked by Conditional Access policies.' },
    conditionalAccessStatus: 'failure',
  });
  return record;
}

/** The blueprint's usual exchange, with its old key from its usual host, days before the attack. */
function routineExchange(): EntraRecord {
  const record = fixture('t1-exchange.json');
  record.time = '2026-10-02T07:31:12.0000000Z';
  Object.assign(record.properties, {
    id: 'c1c1c1c1-0000-4000-8000-00000000e001',
    createdDateTime: '2026-10-02T07:30:00.0000000+00:00',
    servicePrincipalCredentialKeyId: '1a1a1a1a-0000-4000-8000-000000000001',
    ipAddress: '20.61.10.4',
  });
  record.callerIpAddress = '20.61.10.4';
  return record;
}

function ordinarySignIn(index: number): EntraRecord {
  const record = fixture('t2-autonomous.json');
  const appId = `c0ffee00-0000-4000-8000-${hex(index % 7, 12)}`;
  const created = new Date(Date.parse('2026-10-05T09:00:00Z') + index * 7_000);
  record.time = new Date(created.getTime() + 60_000).toISOString();
  Object.assign(record.properties, {
    id: `0e0e0e0e-0000-4000-8000-${hex(index, 12)}`,
    createdDateTime: created.toISOString(),
    appId,
    servicePrincipalId: appId,
    appDisplayName: `payroll-sync-${index % 7}`,
    servicePrincipalName: `payroll-sync-${index % 7}`,
    agent: { agentType: 'notAgentic' },
    clientCredentialType: 'clientSecret',
    status: { errorCode: 0 },
  });
  return record;
}

function provisioningRecord(index: number): EntraRecord {
  return {
    time: new Date(Date.parse('2026-10-05T09:30:00Z') + index * 11_000).toISOString(),
    resourceId: '/tenants/11111111-2222-3333-4444-555555555555/providers/Microsoft.aadiam',
    operationName: 'Provisioning activity',
    category: 'ProvisioningLogs',
    tenantId: '11111111-2222-3333-4444-555555555555',
    properties: { id: `p0p0p0p0-${index}`, activityDateTime: '2026-10-05T09:30:00Z', action: 'Update' },
  };
}

/**
 * @param fillerBodies ordinary bodies spread over both partitions (each holds 3 sign-ins and one
 * provisioning record), so the interesting records sit mid-stream.
 */
export function buildScenario(fillerBodies: number): Scenario {
  const agentAFailures = Array.from({ length: 10 }, (_, index) => failedT2(AGENT_A, index, index * 55, 'fa11a000'));
  const agentBFailures = Array.from({ length: 9 }, (_, index) => failedT2(AGENT_B, index, index * 50, 'fa11b000'));
  const filler = (index: number): EntraBody => ({ records: [ordinarySignIn(index * 3), ordinarySignIn(index * 3 + 1), ordinarySignIn(index * 3 + 2), provisioningRecord(index)] });

  const partition0: EntraBody[] = [];
  const partition1: EntraBody[] = [];
  const half = Math.floor(fillerBodies / 2);
  for (let index = 0; index < half; index++) (index % 2 ? partition1 : partition0).push(filler(index));
  // The takeover, in order, on one partition (Entra sends no key; order within a partition is kept).
  partition0.push({ records: [fixture('audit-add-blueprint.json'), fixture('audit-add-agent-identity.json')] });
  partition0.push({ records: [routineExchange()] });
  partition0.push({ records: [fixture('audit-blueprint-credential-added.json')] });
  partition1.push(UNREADABLE_BODY);
  partition0.push({ records: [fixture('t1-exchange.json')] });
  // Failures in bodies of two or three records, alternating partitions.
  const failureBodies: EntraBody[] = [];
  for (let index = 0; index < agentAFailures.length; index += 2) failureBodies.push({ records: agentAFailures.slice(index, index + 2) });
  for (let index = 0; index < agentBFailures.length; index += 3) failureBodies.push({ records: agentBFailures.slice(index, index + 3) });
  failureBodies.forEach((body, index) => (index % 2 ? partition1 : partition0).push(body));
  for (let index = half; index < fillerBodies; index++) (index % 2 ? partition1 : partition0).push(filler(index));

  const all = [...partition0, ...partition1];
  const records = all.flatMap((body) => (typeof body === 'string' ? [] : body.records));
  return {
    partitions: { '0': partition0, '1': partition1 },
    agentAFailureIds: agentAFailures.map((record) => String(record.properties.id)),
    agentBFailureIds: agentBFailures.map((record) => String(record.properties.id)),
    failureBodyPositions: {
      '0': failureBodies.filter((_, index) => index % 2 === 0).map((body) => partition0.indexOf(body)),
      '1': failureBodies.filter((_, index) => index % 2 === 1).map((body) => partition1.indexOf(body)),
    },
    recordCount: records.length,
    skippedCount: records.filter((record) => record.category === 'ProvisioningLogs').length,
  };
}

/** What the same bodies raise through the same pipeline in memory, in one pass: the reference the hosts must match. */
export async function referenceAlerts(scenario: Scenario): Promise<Alert[]> {
  const app = await buildApp();
  const bodies = [...scenario.partitions['0']!, ...scenario.partitions['1']!];
  await app.processBatch(bodies);
  return [...(app.alertSink as MemoryAlertSink).alerts];
}

/** An alert destination that keeps every upload call, to count deliveries per alert id. */
export class CapturingUploader implements AlertUploader {
  readonly name = 'capture';
  readonly uploads: Alert[][] = [];

  async upload(alerts: Alert[]): Promise<UploadReceipt> {
    this.uploads.push(alerts.map((alert) => ({ ...alert })));
    return { trimmedAlertIds: [] };
  }

  get deliveredIds(): string[] {
    return this.uploads.flat().map((alert) => alert.id);
  }
}

/** Sends every body with the real producer, partition by partition, `perSend` events per batch (as a diagnostic setting sends several). */
export async function produceScenario(connectionString: string, hub: string, scenario: Scenario, perSend: number): Promise<void> {
  const producer = new EventHubProducerClient(connectionString, hub);
  try {
    for (const [partitionId, bodies] of Object.entries(scenario.partitions)) {
      for (let index = 0; index < bodies.length; index += perSend) await producer.sendBatch(bodies.slice(index, index + perSend).map((body) => ({ body })), { partitionId });
    }
  } finally {
    await producer.close();
  }
}

/** The checkpoint table the local consumer writes (on the state account). */
export function checkpointStoreOn(tableConnectionString: string): TableCheckpointStore {
  return new TableCheckpointStore(TableClient.fromConnectionString(tableConnectionString, 'agentwatchcheckpoints', { allowInsecureConnection: true }));
}

/** True once the consumer group has checkpointed every partition at its last event. The loopback endpoint's namespace is 127.0.0.1. */
export async function fullyCheckpointed(store: TableCheckpointStore, hub: string, consumerGroup: string, scenario: Scenario): Promise<boolean> {
  const checkpoints = await store.listCheckpoints('127.0.0.1', hub, consumerGroup).catch(() => []);
  return Object.entries(scenario.partitions).every(([partitionId, bodies]) => checkpoints.some((checkpoint) => checkpoint.partitionId === partitionId && checkpoint.sequenceNumber === bodies.length - 1));
}
