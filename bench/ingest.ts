/**
 * Ingest bench: decode + validate + normalize throughput on a generated stream of realistic Entra
 * records, next to the JSON.parse-only floor on the very same bodies, and the ratio between them.
 * Also exports the stream generator so other sections (engine, state) measure on the same data.
 */
import { performance } from 'node:perf_hooks';
import { ingestBatch } from '../src/ingest';
import { Inventory, observeAndResolve } from '../src/inventory';

export interface BenchContext {
  /** How many records a section should generate. */
  records: number;
  log(line: string): void;
  /** Collects garbage between measurements when node runs with --expose-gc. */
  gc(): void;
}

export interface BenchSection {
  name: string;
  run(context: BenchContext): Promise<void>;
}

/** Deterministic PRNG (mulberry32) so every run measures the same stream. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TENANT = '11111111-2222-3333-4444-555555555555';
const RESOURCE_ID = `/tenants/${TENANT}/providers/Microsoft.aadiam`;
const EXCHANGE = 'fb60f99c-7a34-4190-8149-302f77469936';
const GRAPH = '00000003-0000-0000-c000-000000000000';

function guid(random: () => number): string {
  const hex = (n: number): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += Math.floor(random() * 16).toString(16);
    return s;
  };
  return `${hex(8)}-${hex(4)}-4${hex(3)}-8${hex(3)}-${hex(12)}`;
}

interface Tenant {
  users: { id: string; upn: string }[];
  apps: { appId: string; spId: string; name: string }[];
  blueprints: { appId: string; spId: string; name: string }[];
  agents: { id: string; name: string; blueprint: string; userId: string; upn: string }[];
  ips: string[];
}

function makeTenant(random: () => number): Tenant {
  const users = Array.from({ length: 300 }, (_, i) => ({ id: guid(random), upn: `user${i}@contoso.com` }));
  const apps = Array.from({ length: 60 }, (_, i) => ({ appId: guid(random), spId: guid(random), name: `app-${i}` }));
  const blueprints = Array.from({ length: 4 }, (_, i) => ({ appId: guid(random), spId: guid(random), name: `blueprint-${i}` }));
  const agents = Array.from({ length: 12 }, (_, i) => {
    const id = guid(random);
    return { id, name: `agent-${i}`, blueprint: blueprints[i % blueprints.length]!.appId, userId: guid(random), upn: `agent-${i}@contoso.com` };
  });
  const ips = Array.from({ length: 80 }, () => `${20 + Math.floor(random() * 180)}.${Math.floor(random() * 255)}.${Math.floor(random() * 255)}.${1 + Math.floor(random() * 254)}`);
  return { users, apps, blueprints, agents, ips };
}

function pickOne<T>(random: () => number, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)]!;
}

function envelope(category: string, time: string, operationName: string, properties: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { time, resourceId: RESOURCE_ID, operationName, operationVersion: '1.0', category, tenantId: TENANT, resultSignature: 'SUCCESS', durationMs: 0, level: '4', ...extra, properties };
}

function signIn(random: () => number, t: Tenant, category: string, time: string, fields: Record<string, unknown>): Record<string, unknown> {
  const errorCode = random() < 0.05 ? pickOne(random, [53003, 65001, 500011, 7000112]) : 0;
  const ip = pickOne(random, t.ips);
  return envelope(
    category,
    time,
    'Sign-in activity',
    {
      id: guid(random),
      createdDateTime: time.replace('Z', '+00:00'),
      ipAddress: ip,
      status: errorCode ? { errorCode, failureReason: 'blocked' } : { errorCode: 0 },
      conditionalAccessStatus: 'notApplied',
      appliedConditionalAccessPolicies: [],
      isInteractive: category === 'SignInLogs',
      riskLevelDuringSignIn: 'none',
      riskLevelAggregated: 'none',
      riskState: 'none',
      riskDetail: 'none',
      location: { city: 'Amsterdam', state: 'Noord-Holland', countryOrRegion: 'NL', geoCoordinates: { latitude: 52.37, longitude: 4.89 } },
      correlationId: guid(random),
      uniqueTokenIdentifier: 'q1Zk0aBcdEfGhIjKlMn0AA',
      ...fields,
    },
    { resultType: String(errorCode), callerIpAddress: ip, correlationId: guid(random), location: 'NL' },
  );
}

/** One record of a realistic mix: sign-ins of every flow, audits, risk, Graph activity. */
function record(random: () => number, t: Tenant, time: string): Record<string, unknown> {
  const roll = random();
  if (roll < 0.05) {
    const b = pickOne(random, t.blueprints);
    return signIn(random, t, 'ServicePrincipalSignInLogs', time, {
      appId: b.appId, appDisplayName: b.name, servicePrincipalId: b.spId, servicePrincipalName: b.name,
      agent: { agentType: 'agentIdentityBlueprintPrincipal', agentSubjectType: 'agentIdentityBlueprintPrincipal' },
      signInEventTypes: ['servicePrincipal'], clientCredentialType: 'clientSecret', servicePrincipalCredentialKeyId: guid(random),
      resourceDisplayName: 'AAD Token Exchange Endpoint: Public', resourceId: EXCHANGE, appOwnerTenantId: TENANT,
    });
  }
  if (roll < 0.2) {
    const a = pickOne(random, t.agents);
    return signIn(random, t, 'ServicePrincipalSignInLogs', time, {
      appId: a.id, appDisplayName: a.name, servicePrincipalId: a.id, servicePrincipalName: a.name,
      agent: { agentType: 'agenticAppInstance', agentSubjectType: 'agenticAppInstance', parentAppId: a.blueprint },
      signInEventTypes: ['servicePrincipal'], clientCredentialType: 'federatedIdentityCredential',
      resourceDisplayName: 'Microsoft Graph', resourceId: GRAPH, appOwnerTenantId: TENANT,
    });
  }
  if (roll < 0.25) {
    const a = pickOne(random, t.agents);
    const u = pickOne(random, t.users);
    return signIn(random, t, 'NonInteractiveUserSignInLogs', time, {
      appId: a.id, appDisplayName: a.name, servicePrincipalId: a.id, userId: u.id, userPrincipalName: u.upn, userDisplayName: u.upn,
      agent: { agentType: 'agenticAppInstance', agentSubjectType: 'notAgentic', parentAppId: a.blueprint },
      signInEventTypes: ['nonInteractiveUser'], resourceDisplayName: 'Office 365 Exchange Online', resourceId: '00000002-0000-0ff1-ce00-000000000000',
    });
  }
  if (roll < 0.28) {
    const a = pickOne(random, t.agents);
    return signIn(random, t, 'NonInteractiveUserSignInLogs', time, {
      appId: a.id, appDisplayName: a.name, servicePrincipalId: a.id, userId: a.userId, userPrincipalName: a.upn,
      agent: { agentType: 'agenticAppInstance', agentSubjectType: 'agentIDuser', agentSubjectParentId: a.id, parentAppId: a.blueprint },
      signInEventTypes: ['nonInteractiveUser'], resourceDisplayName: 'Microsoft Graph', resourceId: GRAPH,
    });
  }
  if (roll < 0.48) {
    const u = pickOne(random, t.users);
    const app = pickOne(random, t.apps);
    return signIn(random, t, roll < 0.38 ? 'NonInteractiveUserSignInLogs' : 'SignInLogs', time, {
      appId: app.appId, appDisplayName: app.name, userId: u.id, userPrincipalName: u.upn, userDisplayName: u.upn, userType: 'Member',
      agent: { agentType: 'notAgentic', agentSubjectType: 'notAgentic' }, clientAppUsed: 'Browser',
      userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
      deviceDetail: { deviceId: '', operatingSystem: 'Windows 10', browser: 'Edge 120.0' },
      authenticationDetails: [{ authenticationStepDateTime: time, authenticationMethod: 'Password', succeeded: true, StatusSequence: 0, RequestSequence: 1 }],
      resourceDisplayName: 'Windows Azure Service Management API', resourceId: '797f4846-ba00-4fd7-ba43-dac1f8f63013',
    });
  }
  if (roll < 0.56) {
    const app = pickOne(random, t.apps);
    return signIn(random, t, 'ManagedIdentitySignInLogs', time, {
      appId: app.appId, appDisplayName: app.name, servicePrincipalId: app.spId, servicePrincipalName: app.name, userId: '',
      agent: { agentType: 'notAgentic', agentSubjectType: 'notAgentic' }, signInEventTypes: ['managedIdentity'],
      resourceDisplayName: 'Azure Resource Manager', resourceId: '797f4846-ba00-4fd7-ba43-dac1f8f63013',
    });
  }
  if (roll < 0.7) return auditRecord(random, t, time);
  if (roll < 0.75) {
    const u = pickOne(random, t.users);
    return envelope('UserRiskEvents', time, 'User Risk Detection', {
      id: guid(random).replace(/-/g, '') + guid(random).replace(/-/g, ''), riskEventType: 'unfamiliarFeatures', riskType: 'unfamiliarFeatures',
      riskState: 'atRisk', riskLevel: pickOne(random, ['low', 'medium', 'high']), riskDetail: 'none', source: 'IdentityProtection',
      detectionTimingType: 'realtime', activity: 'signin', ipAddress: pickOne(random, t.ips), activityDateTime: time, detectedDateTime: time,
      userId: u.id, userPrincipalName: u.upn, additionalInfo: '[{"Key":"userAgent","Value":"Mozilla/5.0"},{"Key":"mitreTechniques","Value":"T1078"}]',
    });
  }
  if (roll < 0.76) {
    const a = pickOne(random, t.agents);
    return envelope('AgentRiskEvents', time, 'Agent Risk Detection', {
      id: guid(random).replace(/-/g, ''), identityType: 'agentIdentity', agentId: a.id, identityId: a.id, agentDisplayName: a.name,
      activityDateTime: time, detectedDateTime: time, riskEventType: 'signInSpike', riskLevel: 'low', riskState: 'atRisk', riskDetail: 'none',
      additionalInfo: '[{"Key":"mitreTechniques","Value":"T1078"}]', source: 'IdentityProtection',
    });
  }
  const a = pickOne(random, t.agents);
  const u = pickOne(random, t.users);
  return envelope('MicrosoftGraphActivityLogs', time, 'Microsoft Graph Activity', {
    timeGenerated: time, location: 'West Europe', requestId: guid(random), operationId: guid(random), clientRequestId: guid(random),
    apiVersion: 'v1.0', requestMethod: random() < 0.8 ? 'GET' : 'POST', responseStatusCode: random() < 0.95 ? 200 : 403, tenantId: TENANT,
    durationMs: 81234, responseSizeBytes: 5120, signInActivityId: 'q1Zk0aBcdEfGhIjKlMn0AA', roles: 'Mail.Read User.Read.All', scopes: '',
    appId: a.id, servicePrincipalId: a.id, identityProvider: `https://sts.windows.net/${TENANT}/`, clientAuthMethod: '2', C_Idtyp: 'app',
    ipAddress: pickOne(random, t.ips), userAgent: 'agent-framework/1.4', isReplay: false, policyEvaluated: false,
    requestUri: `https://graph.microsoft.com/v1.0/users/${u.upn}/messages?$top=50`, tokenIssuedAt: time,
  }, { durationMs: '81234', resultSignature: '200', level: 'Informational' });
}

function auditRecord(random: () => number, t: Tenant, time: string): Record<string, unknown> {
  const u = pickOne(random, t.users);
  const app = pickOne(random, t.apps);
  const roll = random();
  const initiatedBy = { user: { id: u.id, displayName: u.upn, userPrincipalName: u.upn, ipAddress: pickOne(random, t.ips) } };
  let operation = 'Update service principal';
  let targetResources: unknown[] = [
    { id: app.spId, displayName: app.name, type: 'ServicePrincipal', modifiedProperties: [{ displayName: 'TargetId.ServicePrincipalNames', oldValue: null, newValue: `"${app.appId};https://${app.name}.contoso.com"` }] },
  ];
  if (roll < 0.3) {
    operation = 'Update application – Certificates and secrets management ';
    const oldKey = `[KeyIdentifier=${guid(random)},KeyType=Password,KeyUsage=Verify,DisplayName=old]`;
    const newKey = `[KeyIdentifier=${guid(random)},KeyType=Password,KeyUsage=Verify,DisplayName=new]`;
    targetResources = [{ id: guid(random), displayName: app.name, type: 'Application', modifiedProperties: [
      { displayName: 'KeyDescription', oldValue: JSON.stringify([oldKey]), newValue: JSON.stringify([oldKey, newKey]) },
      { displayName: 'Included Updated Properties', oldValue: null, newValue: '"KeyDescription"' },
    ] }];
  } else if (roll < 0.6) {
    const a = pickOne(random, t.agents);
    operation = 'Add delegated permission grant';
    targetResources = [
      { id: guid(random), displayName: 'Microsoft Graph', type: 'ServicePrincipal', modifiedProperties: [
        { displayName: 'DelegatedPermissionGrant.Scope', oldValue: null, newValue: '" Mail.Read offline_access User.Read"' },
        { displayName: 'DelegatedPermissionGrant.ConsentType', oldValue: null, newValue: '"AllPrincipals"' },
        { displayName: 'ServicePrincipal.ObjectID', oldValue: null, newValue: `"${a.id}"` },
        { displayName: 'TargetId.ServicePrincipalNames', oldValue: null, newValue: `"${GRAPH};https://graph.microsoft.com"` },
      ] },
      { id: a.id, displayName: null, type: 'ServicePrincipal', modifiedProperties: [] },
    ];
  }
  return envelope('AuditLogs', time, operation.trim(), {
    id: `Directory_${guid(random)}_ABCDE_${Math.floor(random() * 1e9)}`, category: 'ApplicationManagement', correlationId: guid(random),
    result: random() < 0.97 ? 'success' : 'failure', resultReason: '', activityDisplayName: operation, activityDateTime: time.replace('Z', '+00:00'),
    loggedByService: 'Core Directory', operationType: 'Update', initiatedBy, targetResources,
    additionalDetails: [{ key: 'User-Agent', value: 'python-requests/2.32' }],
  }, { Level: 4, callerIpAddress: '<null>', correlationId: guid(random) });
}

/**
 * A day of Event Hub message bodies (JSON strings, as the Functions host hands them over with
 * dataType string) holding `count` records, 1–50 records per body.
 */
export function generateEntraBodies(count: number, seed = 20261005): string[] {
  const random = prng(seed);
  const tenant = makeTenant(random);
  const start = Date.UTC(2026, 9, 5, 0, 0, 0);
  const step = 86_400_000 / count;
  const bodies: string[] = [];
  let produced = 0;
  while (produced < count) {
    const size = Math.min(count - produced, 1 + Math.floor(random() * 50));
    const records: unknown[] = [];
    for (let i = 0; i < size; i++) records.push(record(random, tenant, new Date(start + (produced + i) * step).toISOString().replace('Z', '0000Z')));
    produced += size;
    const body = JSON.stringify({ records });
    // Touch the string once so it is flat before any measurement (the first reader would pay for it).
    body.charCodeAt(body.length - 1);
    bodies.push(body);
  }
  return bodies;
}

/** Bodies per pipeline call in every bench section: host.json's maxEventBatchSize. */
export const BODIES_PER_BATCH = 100;

/** Records per body string, for rate arithmetic. */
export function countRecords(bodies: readonly string[]): number {
  let total = 0;
  for (const body of bodies) total += (JSON.parse(body) as { records: unknown[] }).records.length;
  return total;
}

function rate(records: number, ms: number): string {
  return `${Math.round(records / (ms / 1000)).toLocaleString('en-US')} records/s`;
}

/**
 * Best timing of each variant over `rounds` rounds, the variants interleaved within a round so a
 * change in machine load hits all of them alike (the ratios are what matter). In ms.
 */
function bestInterleaved(rounds: number, variants: Record<string, () => void>, gc: () => void): Record<string, number> {
  const best: Record<string, number> = {};
  for (let round = 0; round < rounds; round++) {
    for (const [name, fn] of Object.entries(variants)) {
      gc();
      const t0 = performance.now();
      fn();
      const ms = performance.now() - t0;
      best[name] = Math.min(best[name] ?? Infinity, ms);
    }
  }
  return best;
}

export const section: BenchSection = {
  name: 'ingest',
  async run({ records, log, gc }: BenchContext): Promise<void> {
    const bodies = generateEntraBodies(records);
    const total = countRecords(bodies);
    const bytes = bodies.reduce((sum, b) => sum + b.length, 0);
    log(`stream: ${total.toLocaleString('en-US')} records in ${bodies.length.toLocaleString('en-US')} bodies, ${(bytes / 1e6).toFixed(1)} MB`);

    let sink = 0;
    let events = 0;
    const inventory = new Inventory();
    const best = bestInterleaved(5, {
      floor: () => {
        for (const body of bodies) sink += (JSON.parse(body) as { records: unknown[] }).records.length;
      },
      // What a batch pipeline cannot go below: parse a batch of bodies and hold it until the batch ends.
      batchFloor: () => {
        for (let i = 0; i < bodies.length; i += BODIES_PER_BATCH) {
          const held: unknown[] = [];
          for (const body of bodies.slice(i, i + BODIES_PER_BATCH)) held.push(JSON.parse(body));
          sink += held.length;
        }
      },
      ingest: () => {
        for (let i = 0; i < bodies.length; i += BODIES_PER_BATCH) events += ingestBatch(bodies.slice(i, i + BODIES_PER_BATCH)).events.length;
      },
      resolve: () => {
        for (let i = 0; i < bodies.length; i += BODIES_PER_BATCH) observeAndResolve(inventory, ingestBatch(bodies.slice(i, i + BODIES_PER_BATCH)).events);
      },
    }, gc);
    const floorMs = best.floor!;
    const ingestMs = best.ingest!;
    const resolveMs = best.resolve!;

    const batchFloorMs = best.batchFloor!;
    log(`JSON.parse floor:                        ${rate(total, floorMs)}`);
    log(`JSON.parse floor, batches of ${BODIES_PER_BATCH} held:    ${rate(total, batchFloorMs)}`);
    log(`decode + validate + normalize:           ${rate(total, ingestMs)}  (${(ingestMs / floorMs).toFixed(2)}x the floor, target ≤ 2x; ${(ingestMs / batchFloorMs).toFixed(2)}x the batch floor)`);
    log(`decode + validate + normalize + resolve: ${rate(total, resolveMs)}  (${(resolveMs / floorMs).toFixed(2)}x the floor)`);
    if (sink === 0 || events === 0) log('warning: nothing was parsed; the figures above are meaningless');
  },
};
