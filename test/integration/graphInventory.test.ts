/**
 * The Graph inventory pull over real HTTP: the real Graph client against the local HTTPS Graph
 * stand-in — hunting rows becoming AgentsInfo / AIAgentsInfo records, paged directory lists
 * becoming inventory entities, throttling, an unlicensed tenant, a foreign nextLink.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryAlertSink } from '../../src/alerts/consoleSinks';
import { buildApp } from '../../src/app';
import { pullAgentInventory, pullAgentInventoryInto, type AgentsInfoRecord } from '../../src/inventory/graphSource';
import type { InventoryEntity, LogLevel } from '../../src/ports';
import { GraphHttp } from '../../src/response/graphClient';
import { GRAPH_ERRORS, fakeCredential, useFakeGraph, type FakeGraph } from '../support/fakeGraph';

const TOKEN = 'graph-fake-token';
const BLUEPRINT_APP = 'dddddddd-1111-2222-3333-444444444444';
const AGENTS_PATH = '/v1.0/servicePrincipals/microsoft.graph.agentIdentity';
const BLUEPRINTS_PATH = '/v1.0/applications/microsoft.graph.agentIdentityBlueprint';
const PRINCIPALS_PATH = '/v1.0/servicePrincipals/microsoft.graph.agentIdentityBlueprintPrincipal';
const USERS_PATH = '/v1.0/users/microsoft.graph.agentUser';
const HUNTING_PATH = '/v1.0/security/runHuntingQuery';

/** An AgentsInfo row shaped like reference §5.4 (constructed values): a published agent whose tool runs with the maker's connection. */
const makerRow = {
  Timestamp: '2026-10-05T08:00:00Z',
  AgentId: 'a9a9a9a9-1111-2222-3333-444444444444',
  AgentName: 'HR helper',
  Platform: 'Copilot Studio',
  PublishedStatus: 'Published',
  LifecycleStatus: 'Active',
  Owners: ['maker@contoso.com'],
  DeclaredTools: [{ name: 'Send mail', connectionProperties: { mode: 'Maker' } }],
};

function agent(index: number) {
  const id = `b${String(index).padStart(7, '0')}-1111-2222-3333-444444444444`;
  return { id, appId: id, displayName: `agent ${index}`, accountEnabled: index !== 4, agentIdentityBlueprintId: BLUEPRINT_APP.toUpperCase(), appOwnerOrganizationId: '11111111-2222-3333-4444-555555555555', createdByAppId: BLUEPRINT_APP };
}

describe('Graph inventory pull through the real Graph client', () => {
  let graph: FakeGraph;
  let http: GraphHttp;
  let fed: { records: AgentsInfoRecord[] }[][];
  let upserted: InventoryEntity[][];
  let logs: { level: LogLevel; message: string; fields?: Record<string, unknown> }[];

  const fake = useFakeGraph();
  beforeEach(() => {
    graph = fake.graph;
    http = new GraphHttp({ credential: fakeCredential(TOKEN), baseUrl: graph.baseUrl, retry: { budgetMs: 5_000 } });
    fed = [];
    upserted = [];
    logs = [];
    graph
      .pages(AGENTS_PATH, [[agent(1), agent(2)], [agent(3), agent(4)], [agent(5)]])
      .pages(BLUEPRINTS_PATH, [[{ id: 'd0d0d0d0-1111-2222-3333-444444444444', appId: BLUEPRINT_APP, displayName: 'invoice blueprint', owners: [{ id: '0f0f0f0f-1111-2222-3333-444444444444', userPrincipalName: 'Owner@Contoso.com' }] }], []])
      .pages(PRINCIPALS_PATH, [[{ id: 'cccccccc-1111-2222-3333-444444444444', appId: BLUEPRINT_APP, displayName: 'invoice blueprint', accountEnabled: true, appOwnerOrganizationId: '11111111-2222-3333-4444-555555555555' }]])
      .pages(USERS_PATH, [[{ id: 'abababab-1111-2222-3333-444444444444', displayName: 'agent 1 user', userPrincipalName: 'Agent1@contoso.com', accountEnabled: true, identityParentId: agent(1).id }]])
      .on('POST', HUNTING_PATH, { status: 200, body: { schema: [{ name: 'Timestamp', type: 'DateTime' }], results: [makerRow] } });
  });

  function pull() {
    return pullAgentInventory({
      graph: http,
      feed: async (bodies) => {
        fed.push(bodies);
        return { records: bodies.reduce((n, b) => n + b.records.length, 0) };
      },
      upsertEntities: async (entities) => {
        upserted.push(entities);
      },
      logger: { log: (level, message, fields) => logs.push({ level, message, fields }) },
    });
  }

  it('runs the AgentsInfo hunting query and feeds each row into the pipeline as an AgentsInfo record', async () => {
    const summary = await pull();
    const hunts = graph.requests.filter((r) => r.path === HUNTING_PATH);
    expect(hunts).toHaveLength(1);
    expect(hunts[0]).toMatchObject({ method: 'POST', authorization: `Bearer ${TOKEN}`, body: { Query: 'AgentsInfo | where Timestamp > ago(30d) | summarize arg_max(Timestamp, *) by AgentId' } });
    expect(fed).toEqual([[{ records: [{ category: 'AgentsInfo', time: '2026-10-05T08:00:00Z', properties: makerRow }] }]]);
    expect(summary).toMatchObject({ huntingTable: 'AgentsInfo', agentsInfoRows: 1, pipeline: { records: 1 } });
  });

  it('follows @odata.nextLink through every page and turns each object into an inventory entity', async () => {
    const summary = await pull();
    expect(graph.requests.filter((r) => r.path === AGENTS_PATH).map((r) => r.query.$skiptoken ?? 'first')).toEqual(['first', '1', '2']);
    expect(graph.requests.filter((r) => r.method === 'GET').every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(graph.requests.find((r) => r.path === AGENTS_PATH)?.query.$select).toBe('id,appId,displayName,accountEnabled,appOwnerOrganizationId,agentIdentityBlueprintId,createdByAppId');
    expect(summary.entities).toEqual({ blueprints: 1, blueprintPrincipals: 1, agentIdentities: 5, agentUsers: 1 });
    expect(summary.pages).toBe(3 + 2 + 1 + 1);
    const all = upserted.flat();
    expect(all.find((e) => e.kind === 'blueprint')).toEqual({ kind: 'blueprint', id: 'd0d0d0d0-1111-2222-3333-444444444444', appId: BLUEPRINT_APP, name: 'invoice blueprint', live: true, owners: ['owner@contoso.com', '0f0f0f0f-1111-2222-3333-444444444444'] });
    expect(all.find((e) => e.kind === 'blueprintPrincipal')).toMatchObject({ id: 'cccccccc-1111-2222-3333-444444444444', parentId: BLUEPRINT_APP, ownerTenantId: '11111111-2222-3333-4444-555555555555' });
    expect(all.filter((e) => e.kind === 'agentIdentity').map((e) => [e.id, e.parentId, e.live])).toEqual([1, 2, 3, 4, 5].map((i) => [agent(i).id, BLUEPRINT_APP, i !== 4]));
    expect(all.find((e) => e.kind === 'agentUser')).toEqual({ kind: 'agentUser', id: 'abababab-1111-2222-3333-444444444444', name: 'agent 1 user', upn: 'agent1@contoso.com', parentId: agent(1).id, live: true });
  });

  it('falls back to AIAgentsInfo when the tenant does not know the AgentsInfo table', async () => {
    const legacyRow = { Timestamp: '2026-06-01T08:00:00Z', AIAgentId: 'a8a8a8a8-1111-2222-3333-444444444444', AgentStatus: 'Published', AgentToolsDetails: [{ action: { connectionProperties: { mode: 'Maker' } } }] };
    graph.on('POST', HUNTING_PATH, (request) =>
      String((request.body as { Query: string }).Query).startsWith('AgentsInfo')
        ? GRAPH_ERRORS.badRequest("Query could not be parsed at 'AgentsInfo': Failed to resolve table or column expression named 'AgentsInfo'")
        : { status: 200, body: { results: [legacyRow] } },
    );
    const summary = await pull();
    expect(graph.requests.filter((r) => r.path === HUNTING_PATH).map((r) => (r.body as { Query: string }).Query.split(' ')[0])).toEqual(['AgentsInfo', 'AIAgentsInfo']);
    expect(summary).toMatchObject({ huntingTable: 'AIAgentsInfo', agentsInfoRows: 1, skipped: [] });
    expect(fed.flat()[0]!.records).toEqual([{ category: 'AIAgentsInfo', time: '2026-06-01T08:00:00Z', properties: legacyRow }]);
  });

  it('an unlicensed tenant (403 on hunting) is logged once and the directory pull carries on', async () => {
    graph.on('POST', HUNTING_PATH, GRAPH_ERRORS.forbidden('Your tenant is not licensed for this feature.'));
    const summary = await pull();
    expect(graph.requests.filter((r) => r.path === HUNTING_PATH)).toHaveLength(1);
    expect(summary.skipped).toEqual([{ source: 'AgentsInfo', code: 'GRAPH_PERMISSION_MISSING', reason: expect.stringMatching(/ThreatHunting\.Read\.All.*not licensed/) }]);
    expect(logs.filter((l) => l.level === 'warn')).toHaveLength(1);
    expect(fed).toEqual([]);
    expect(summary.entities.agentIdentities).toBe(5);
  });

  it('a directory list Graph refuses is skipped with the permission it needs; the rest are still pulled', async () => {
    graph.on('GET', USERS_PATH, GRAPH_ERRORS.forbidden());
    const summary = await pull();
    expect(summary.skipped).toEqual([{ source: 'agentUsers', code: 'GRAPH_PERMISSION_MISSING', reason: expect.stringContaining('User.Read.All') }]);
    expect(summary.entities).toEqual({ blueprints: 1, blueprintPrincipals: 1, agentIdentities: 5, agentUsers: 0 });
  });

  it('a throttled page is retried after Retry-After and paging continues', async () => {
    let served = 0;
    graph.on('GET', AGENTS_PATH, (request) => {
      const index = Number(request.query.$skiptoken ?? '0');
      if (index === 1 && served++ === 0) return GRAPH_ERRORS.throttled(1);
      return { status: 200, body: { value: [agent(index + 1)], ...(index < 2 ? { '@odata.nextLink': `${graph.baseUrl}${AGENTS_PATH}?$skiptoken=${index + 1}` } : {}) } };
    });
    const summary = await pull();
    expect(graph.requests.filter((r) => r.path === AGENTS_PATH).map((r) => r.query.$skiptoken ?? 'first')).toEqual(['first', '1', '1', '2']);
    expect(summary.entities.agentIdentities).toBe(3);
  });

  it('never follows a nextLink to another host with the bearer token', async () => {
    graph.on('GET', AGENTS_PATH, { status: 200, body: { value: [agent(1)], '@odata.nextLink': 'https://attacker.example/v1.0/servicePrincipals?$skiptoken=1' } });
    const summary = await pull();
    expect(summary.skipped).toEqual([{ source: 'agentIdentities', code: 'GRAPH_REQUEST_FAILED', reason: expect.stringMatching(/refusing to call https:\/\/attacker\.example/) }]);
    expect(upserted.flat().filter((e) => e.kind === 'agentIdentity')).toEqual([]);
  });
});

/**
 * Graph → pipeline → engine: the pulled rows go through the same processBatch the Function runs,
 * with the real engine and the shipped rules, and the directory entities land in its inventory.
 */
const MAKER_RULE = join(__dirname, '..', '..', 'detections', 'maker-credential-agent.yaml');

describe.skipIf(!existsSync(MAKER_RULE))('Graph inventory pull into the pipeline (needs detections/maker-credential-agent.yaml)', () => {
  const fake = useFakeGraph();

  it('hunting rows become AgentsInfo records that fire maker-credential-agent; directory objects fill the inventory', async () => {
    const graph = fake.graph;
    const invokerRow = { ...makerRow, AgentId: 'a7a7a7a7-1111-2222-3333-444444444444', AgentName: 'FAQ bot', ToolsAuthenticationType: ['Invoker'], DeclaredTools: [{ name: 'Search', connectionProperties: { mode: 'Invoker' } }] };
    const deletedMakerRow = { ...makerRow, AgentId: 'a6a6a6a6-1111-2222-3333-444444444444', AgentName: 'Old helper', LifecycleStatus: 'Deleted' };
    graph
      .on('POST', HUNTING_PATH, { status: 200, body: { results: [makerRow, invokerRow, deletedMakerRow] } })
      .pages(AGENTS_PATH, [[agent(1)], [agent(2)]])
      .pages(BLUEPRINTS_PATH, [[{ id: 'd0d0d0d0-1111-2222-3333-444444444444', appId: BLUEPRINT_APP, displayName: 'invoice blueprint' }]])
      .pages(PRINCIPALS_PATH, [[]])
      .pages(USERS_PATH, [[]]);
    const alerts = new MemoryAlertSink();
    const app = await buildApp({ alertSink: alerts, clock: { now: () => Date.parse('2026-10-05T09:00:00Z') } });
    const http = new GraphHttp({ credential: fakeCredential(TOKEN), baseUrl: graph.baseUrl });

    const summary = await pullAgentInventoryInto(app, http);

    expect(summary).toMatchObject({ huntingTable: 'AgentsInfo', agentsInfoRows: 3, entities: { blueprints: 1, agentIdentities: 2 } });
    expect(app.totals.recordsRead).toBe(3);
    expect(app.totals.rejected).toBe(0);
    expect(alerts.alerts.map((alert) => [alert.detectionId, alert.dedupKey])).toEqual([['maker-credential-agent', `maker-credential-agent:${makerRow.AgentId}`]]);
    expect(alerts.alerts[0]!.entities).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'user', id: 'maker@contoso.com' })]));
    expect(app.inventory.lookup(agent(2).id)).toMatchObject({ kind: 'agentIdentity', parentId: BLUEPRINT_APP, live: true });
    expect(app.inventory.lookup(BLUEPRINT_APP)).toMatchObject({ kind: 'blueprint', id: 'd0d0d0d0-1111-2222-3333-444444444444' });
  });
});
