/**
 * The response stage end to end over real HTTP: the responder and the approval handler drive the
 * real Graph client (TokenCredentialAuthenticationProvider, TLS) against the local HTTPS Graph
 * stand-in, and every test asserts the exact requests the server saw.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Alert } from '../../src/alerts/types';
import { MemoryStateStore } from '../../src/state/memoryStore';
import { createTableStateStore } from '../../src/state/tableStore';
import { startAzuriteTables, type AzuriteTables } from '../support/azurite';
import { createGraphActions, createResponder, handleApprovalRequest, type ResponseConfig, type ResponsePlan } from '../../src/response';
import type { GraphActionsAdapter } from '../../src/response/graphActions';
import { GRAPH_ERRORS, fakeCredential, useFakeGraph, type FakeGraph } from '../support/fakeGraph';

const TENANT = '11111111-2222-3333-4444-555555555555';
const BLUEPRINT_APP = 'dddddddd-1111-2222-3333-444444444444';
const BLUEPRINT_OBJECT = 'd0d0d0d0-1111-2222-3333-444444444444';
const BLUEPRINT_PRINCIPAL = 'cccccccc-1111-2222-3333-444444444444';
const AGENT = 'bbbbbbbb-1111-2222-3333-444444444444';
const AGENT_USER = 'abababab-1111-2222-3333-444444444444';
const PASSWORD_KEY = '0a0a0a0a-1111-2222-3333-444444444444';
const CERT_KEY = '0b0b0b0b-1111-2222-3333-444444444444';
const FIC_ID = '0c0c0c0c-1111-2222-3333-444444444444';
const NOW = Date.parse('2026-10-05T10:20:00Z');
const TOKEN = 'graph-fake-token';

function agentIdentity(id: string, blueprintAppId = BLUEPRINT_APP, extra: Record<string, unknown> = {}) {
  return { id, '@odata.type': '#microsoft.graph.agentIdentity', appId: id, displayName: `agent ${id.slice(0, 8)}`, accountEnabled: true, agentIdentityBlueprintId: blueprintAppId, appOwnerOrganizationId: TENANT, ...extra };
}

function alertWith(plan: ResponsePlan, overrides: Partial<Alert> = {}): Alert & { responsePlan: ResponsePlan } {
  return {
    id: `alert-${overrides.dedupKey ?? 'takeover'}`,
    detectionId: 'agent-takeover-chain',
    title: 'Blueprint takeover chain',
    severity: 'critical',
    firstEventTime: '2026-10-05T09:00:00.000Z',
    lastEventTime: '2026-10-05T09:40:00.000Z',
    createdTime: '2026-10-05T10:20:00.000Z',
    entities: [],
    dedupKey: `agent-takeover-chain:${BLUEPRINT_APP}`,
    evidence: ['r1'],
    tactics: [],
    techniques: [],
    actions: [],
    blueprintAppId: BLUEPRINT_APP,
    agentIdentityId: AGENT,
    ...overrides,
    responsePlan: plan,
  };
}

const autoDisable: ResponsePlan = { mode: 'auto', actions: [{ action: 'disableAgentIdentity', target: 'agentIdentityId' }] };
const ALL_AUTO: ResponseConfig = { globalMode: 'auto', fileMode: 'auto' };

describe('response actions through the real Graph client against a local HTTPS Graph', () => {
  let graph: FakeGraph;
  let actions: GraphActionsAdapter;
  let state: MemoryStateStore;
  const clock = { now: () => NOW };

  const fake = useFakeGraph();
  beforeEach(() => {
    graph = fake.graph;
    state = new MemoryStateStore({ clock });
    actions = createGraphActions({
      credential: fakeCredential(TOKEN),
      baseUrl: graph.baseUrl,
      retry: { budgetMs: 5_000 },
    });
    graph.addObject('servicePrincipals', agentIdentity(AGENT));
  });

  function responder(config: ResponseConfig = ALL_AUTO) {
    return createResponder({ graph: actions, state, config, clock });
  }

  describe('each action sends the documented request with the bearer token, after a verifying GET', () => {
    it('confirmCompromised: POST /beta/identityProtection/riskyAgents/confirmCompromised {agentIds}', async () => {
      const [alert] = await responder().respond([alertWith({ mode: 'auto', actions: [{ action: 'confirmCompromised', target: 'agentIdentityId' }] })]);
      expect(alert!.actions).toMatchObject([{ action: 'confirmCompromised', mode: 'auto', outcome: 'succeeded', targetId: AGENT, targetType: 'agentIdentity' }]);
      expect(graph.requests.map((r) => [r.method, r.path, r.body, r.authorization])).toEqual([
        ['GET', `/v1.0/servicePrincipals/${AGENT}`, undefined, `Bearer ${TOKEN}`],
        ['POST', '/beta/identityProtection/riskyAgents/confirmCompromised', { agentIds: [AGENT] }, `Bearer ${TOKEN}`],
      ]);
    });

    it('disableAgentIdentity: PATCH /servicePrincipals/{id}/microsoft.graph.agentIdentity {accountEnabled:false}', async () => {
      const [alert] = await responder().respond([alertWith(autoDisable)]);
      expect(alert!.actions[0]).toMatchObject({ outcome: 'succeeded', reason: `done: disable agent identity ${AGENT} 'agent bbbbbbbb'` });
      expect(graph.writes().map((r) => [r.method, r.path, r.body, r.authorization])).toEqual([
        ['PATCH', `/v1.0/servicePrincipals/${AGENT}/microsoft.graph.agentIdentity`, { accountEnabled: false }, `Bearer ${TOKEN}`],
      ]);
      expect(graph.object('servicePrincipals', AGENT)?.accountEnabled).toBe(false);
    });

    it('disableBlueprintPrincipal: finds the principal by the blueprint app id, then PATCH /servicePrincipals/{id}', async () => {
      graph.addObject('servicePrincipals', { id: BLUEPRINT_PRINCIPAL, '@odata.type': '#microsoft.graph.agentIdentityBlueprintPrincipal', appId: BLUEPRINT_APP, displayName: 'invoice blueprint', accountEnabled: true, appOwnerOrganizationId: TENANT });
      const [alert] = await responder().respond([alertWith({ mode: 'auto', actions: [{ action: 'disableBlueprintPrincipal', target: 'blueprintAppId' }] })]);
      expect(alert!.actions[0]).toMatchObject({ outcome: 'succeeded', targetId: BLUEPRINT_APP, targetType: 'blueprintPrincipal' });
      expect(graph.requests.map((r) => [r.method, r.path, r.body, r.authorization])).toEqual([
        ['GET', `/v1.0/servicePrincipals(appId='${BLUEPRINT_APP}')`, undefined, `Bearer ${TOKEN}`],
        ['PATCH', `/v1.0/servicePrincipals/${BLUEPRINT_PRINCIPAL}`, { accountEnabled: false }, `Bearer ${TOKEN}`],
      ]);
    });

    it.each([
      ['password', PASSWORD_KEY, 'POST', `/v1.0/applications/${BLUEPRINT_OBJECT}/removePassword`, { keyId: PASSWORD_KEY }],
      ['certificate', CERT_KEY, 'PATCH', `/v1.0/applications/${BLUEPRINT_OBJECT}`, { keyCredentials: [{ keyId: 'ffffffff-1111-2222-3333-444444444444', type: 'AsymmetricX509Cert' }] }],
      ['federated credential', FIC_ID, 'DELETE', `/v1.0/applications/${BLUEPRINT_OBJECT}/federatedIdentityCredentials/${FIC_ID}`, undefined],
    ])('removeBlueprintCredential (%s): the call that removes exactly that key', async (kind, keyId, method, path, body) => {
      graph.addObject('applications', {
        id: BLUEPRINT_OBJECT,
        '@odata.type': '#microsoft.graph.agentIdentityBlueprint',
        appId: BLUEPRINT_APP,
        displayName: 'invoice blueprint',
        passwordCredentials: [{ keyId: PASSWORD_KEY }],
        keyCredentials: [{ keyId: CERT_KEY, type: 'AsymmetricX509Cert' }, { keyId: 'ffffffff-1111-2222-3333-444444444444', type: 'AsymmetricX509Cert' }],
        federatedIdentityCredentials: [{ id: FIC_ID, issuer: 'https://token.actions.githubusercontent.com' }],
      });
      const plan: ResponsePlan = { mode: 'auto', actions: [{ action: 'removeBlueprintCredential', target: 'blueprintAppId', keyId: 'credential.keyId', credentialType: kind === 'federated credential' ? 'federatedidentitycredential' : undefined }] };
      const [alert] = await responder().respond([alertWith(plan, { details: { keyId } })]);
      expect(alert!.actions[0]).toMatchObject({ action: 'removeBlueprintCredential', outcome: 'succeeded', targetId: BLUEPRINT_APP, targetType: 'blueprint' });
      expect(graph.requests[0]).toMatchObject({ method: 'GET', path: `/v1.0/applications(appId='${BLUEPRINT_APP}')` });
      expect(graph.writes().map((r) => [r.method, r.path, r.body, r.authorization])).toEqual([[method, path, body, `Bearer ${TOKEN}`]]);
    });

    it('revokeAgentUserSessions: POST /users/{id}/revokeSignInSessions', async () => {
      graph.addObject('users', { id: AGENT_USER, '@odata.type': '#microsoft.graph.agentUser', displayName: 'invoice agent user', identityParentId: AGENT, accountEnabled: true });
      const [alert] = await responder().respond([alertWith({ mode: 'auto', actions: [{ action: 'revokeAgentUserSessions', target: 'agentUserId' }] }, { entities: [{ type: 'agentUser', id: AGENT_USER }] })]);
      expect(alert!.actions[0]).toMatchObject({ outcome: 'succeeded', targetId: AGENT_USER, targetType: 'agentUser' });
      expect(graph.requests.map((r) => [r.method, r.path, r.body, r.authorization])).toEqual([
        ['GET', `/v1.0/users/${AGENT_USER}`, undefined, `Bearer ${TOKEN}`],
        ['POST', `/v1.0/users/${AGENT_USER}/revokeSignInSessions`, undefined, `Bearer ${TOKEN}`],
      ]);
    });
  });

  it('dryRun makes no write call: it verifies, records what it would do, and changes nothing', async () => {
    const [alert] = await responder({ globalMode: 'dryRun', fileMode: 'auto' }).respond([alertWith(autoDisable)]);
    expect(alert!.actions).toMatchObject([{ mode: 'dryRun', outcome: 'planned', reason: `dry run: would disable agent identity ${AGENT} 'agent bbbbbbbb' (verified #microsoft.graph.agentIdentity)` }]);
    expect(graph.requests.map((r) => r.method)).toEqual(['GET']);
    expect(graph.writes()).toEqual([]);
    expect(graph.object('servicePrincipals', AGENT)?.accountEnabled).toBe(true);
  });

  describe('approval', () => {
    const approvalPlan: ResponsePlan = { mode: 'approval', actions: [{ action: 'disableAgentIdentity', target: 'agentIdentityId' }] };
    const request = (method: string, body?: unknown, headers: Record<string, string> = {}, query: Record<string, string> = {}) => ({
      method,
      headers: new Headers(headers),
      query: new URLSearchParams(query),
      json: async () => body,
    });

    it('makes no write until approved; approving re-verifies and then writes once, recording who approved', async () => {
      const deps = { graph: actions, state, config: ALL_AUTO, clock };
      const [alert] = await createResponder(deps).respond([alertWith(approvalPlan)]);
      const queued = alert!.actions[0]!;
      expect(queued).toMatchObject({ mode: 'approval', outcome: 'pendingApproval' });
      expect(graph.writes()).toEqual([]);

      const listed = await handleApprovalRequest(request('GET'), deps);
      expect(listed).toMatchObject({ status: 200, jsonBody: { pending: [{ actionId: queued.actionId, action: 'disableAgentIdentity', targetId: AGENT, detectionId: 'agent-takeover-chain' }] } });
      expect(graph.writes()).toEqual([]);

      graph.clear();
      const decided = await handleApprovalRequest(request('POST', { actionId: queued.actionId, decision: 'approve', approver: 'forged@contoso.com', reason: 'confirmed with app owner' }, { 'x-ms-client-principal-name': 'soc.lead@contoso.com' }), deps);
      expect(decided).toMatchObject({ status: 200, jsonBody: { action: { actionId: queued.actionId, outcome: 'succeeded' } } });
      expect(graph.requests.map((r) => [r.method, r.path])).toEqual([
        ['GET', `/v1.0/servicePrincipals/${AGENT}`],
        ['PATCH', `/v1.0/servicePrincipals/${AGENT}/microsoft.graph.agentIdentity`],
      ]);
      const record = await handleApprovalRequest(request('GET', undefined, {}, { actionId: queued.actionId }), deps);
      expect(record.jsonBody).toMatchObject({ action: { outcome: 'succeeded', approval: { decision: 'approve', approver: 'soc.lead@contoso.com (Entra authenticated)', reason: 'confirmed with app owner' } } });
      expect((record.jsonBody as { action: { history: { outcome: string }[] } }).action.history.map((h) => h.outcome)).toEqual(['pendingApproval', 'approved', 'succeeded']);
      expect(await handleApprovalRequest(request('GET'), deps)).toMatchObject({ status: 200, jsonBody: { pending: [] } });

      const again = await handleApprovalRequest(request('POST', { actionId: queued.actionId, decision: 'approve', approver: 'someone@contoso.com' }), deps);
      expect(again.status).toBe(409);
      expect(graph.writes()).toHaveLength(1);
    });

    it('a rejection is recorded and nothing is written', async () => {
      const deps = { graph: actions, state, config: ALL_AUTO, clock };
      const [alert] = await createResponder(deps).respond([alertWith(approvalPlan)]);
      const decided = await handleApprovalRequest(request('POST', { actionId: alert!.actions[0]!.actionId, decision: 'reject', approver: 'analyst@contoso.com', reason: 'test agent' }), deps);
      expect(decided).toMatchObject({ status: 200, jsonBody: { action: { outcome: 'rejected', reason: 'rejected by analyst@contoso.com (claimed; function key): test agent' } } });
      expect(graph.writes()).toEqual([]);
    });

    it('refuses malformed decisions with 400 and unknown actions with 404, writing nothing', async () => {
      const deps = { graph: actions, state, config: ALL_AUTO, clock };
      expect((await handleApprovalRequest(request('POST', { actionId: '../etc', decision: 'approve', approver: 'a' }), deps)).status).toBe(400);
      expect((await handleApprovalRequest(request('POST', { actionId: `act-${'0'.repeat(32)}`, decision: 'maybe', approver: 'a' }), deps)).status).toBe(400);
      expect((await handleApprovalRequest(request('POST', { actionId: `act-${'0'.repeat(32)}`, decision: 'approve' }), deps)).status).toBe(400);
      expect((await handleApprovalRequest(request('POST', { actionId: `act-${'0'.repeat(32)}`, decision: 'approve', approver: 'a' }), deps)).status).toBe(404);
      expect((await handleApprovalRequest(request('DELETE'), deps)).status).toBe(405);
      expect(graph.requests).toEqual([]);
    });
  });

  describe('protected and first-party principals are never written to', () => {
    it('an id on the protected list is refused before any Graph call', async () => {
      const [alert] = await responder({ ...ALL_AUTO, protected: [AGENT.toUpperCase()] }).respond([alertWith(autoDisable)]);
      expect(alert!.actions[0]).toMatchObject({ outcome: 'skipped', reason: `protected: ${AGENT} is on the response.protected list` });
      expect(graph.requests).toEqual([]);
    });

    it('a protected display name is caught by the verifying GET, and nothing is written', async () => {
      graph.addObject('servicePrincipals', agentIdentity(AGENT, BLUEPRINT_APP, { displayName: 'Break-glass agent' }));
      const [alert] = await responder({ ...ALL_AUTO, protected: ['break-glass agent'] }).respond([alertWith(autoDisable)]);
      expect(alert!.actions[0]).toMatchObject({ outcome: 'skipped', reason: 'protected: Break-glass agent is on the response.protected list' });
      expect(graph.writes()).toEqual([]);
    });

    it('an agent of the Copilot Studio blueprint (learned only from Graph) is not written to', async () => {
      graph.addObject('servicePrincipals', agentIdentity(AGENT, '25664c89-cea5-4ab6-b924-a54fd8a19ae0', { appOwnerOrganizationId: TENANT }));
      const [alert] = await responder().respond([alertWith(autoDisable, { blueprintAppId: undefined })]);
      expect(alert!.actions[0]).toMatchObject({ outcome: 'skipped', reason: 'Microsoft first-party: app 25664c89-cea5-4ab6-b924-a54fd8a19ae0 is on the first-party list' });
      expect(graph.writes()).toEqual([]);
    });

    it('an app owned by the Microsoft services tenant is not written to', async () => {
      graph.addObject('servicePrincipals', agentIdentity(AGENT, BLUEPRINT_APP, { appOwnerOrganizationId: 'f8cdef31-a31e-4b4a-93e4-5f571e91255a' }));
      const [alert] = await responder().respond([alertWith(autoDisable)]);
      expect(alert!.actions[0]).toMatchObject({ outcome: 'skipped', reason: 'Microsoft first-party: owned by Microsoft tenant f8cdef31-a31e-4b4a-93e4-5f571e91255a' });
      expect(graph.writes()).toEqual([]);
    });

    it('an object of the wrong type (a plain service principal) is not written to', async () => {
      graph.addObject('servicePrincipals', { ...agentIdentity(AGENT), '@odata.type': '#microsoft.graph.servicePrincipal' });
      const [alert] = await responder().respond([alertWith(autoDisable)]);
      expect(alert!.actions[0]).toMatchObject({ outcome: 'skipped', reason: expect.stringMatching(/^wrong object type: disableAgentIdentity expects #microsoft.graph.agentIdentity/) });
      expect(graph.writes()).toEqual([]);
    });
  });

  it('the blast-radius cap holds under a burst of 50 alerts: the rest become approvals, none is dropped', async () => {
    // 10 blueprints × 5 agents each, in blueprint order; per blueprint 3 an hour, 20 in total.
    const alerts = Array.from({ length: 50 }, (_, index) => {
      const blueprint = `d${String(Math.floor(index / 5)).padStart(7, '0')}-1111-2222-3333-444444444444`;
      const agent = `b${String(index).padStart(7, '0')}-1111-2222-3333-444444444444`;
      graph.addObject('servicePrincipals', agentIdentity(agent, blueprint));
      return alertWith(autoDisable, { id: `alert-${index}`, dedupKey: `agent-takeover-chain:${agent}`, blueprintAppId: blueprint, agentIdentityId: agent });
    });
    const results = await responder({ ...ALL_AUTO, caps: { perHour: 20, perBlueprintPerHour: 3 } }).respond(alerts);
    const outcomes = results.map((alert) => alert.actions[0]!.outcome);
    expect(outcomes.filter((o) => o === 'succeeded')).toHaveLength(20);
    expect(outcomes.filter((o) => o === 'pendingApproval')).toHaveLength(30);
    const capReasons = results.filter((a) => a.actions[0]!.outcome === 'pendingApproval').map((a) => a.actions[0]!.reason ?? '');
    expect(capReasons.every((reason) => /^blast-radius cap reached/.test(reason))).toBe(true);
    expect(capReasons.filter((reason) => /against blueprint/.test(reason))).toHaveLength(6 * 2);
    expect(capReasons.filter((reason) => /limit 20/.test(reason))).toHaveLength(18);
    const writes = graph.writes();
    expect(writes).toHaveLength(20);
    const perBlueprint = new Map<string, number>();
    for (const alert of results.filter((a) => a.actions[0]!.outcome === 'succeeded')) perBlueprint.set(alert.blueprintAppId!, (perBlueprint.get(alert.blueprintAppId!) ?? 0) + 1);
    expect(Math.max(...perBlueprint.values())).toBe(3);
    const pending = await handleApprovalRequest({ method: 'GET', headers: new Headers(), json: async () => undefined }, { graph: actions, state, clock });
    expect((pending.jsonBody as { pending: unknown[] }).pending).toHaveLength(30);
  });

  it('a duplicate alert (redelivered, or re-raised for the same incident) triggers no second call', async () => {
    const first = alertWith(autoDisable);
    const [taken] = await responder().respond([first]);
    expect(taken!.actions[0]).toMatchObject({ outcome: 'succeeded' });
    expect(graph.writes()).toHaveLength(1);
    graph.clear();
    const [redelivered] = await responder().respond([first]);
    const [reraised] = await responder().respond([{ ...first, id: 'alert-next-suppression-bucket' }]);
    for (const alert of [redelivered!, reraised!]) {
      expect(alert.actions[0]).toMatchObject({ outcome: 'skipped', actionId: taken!.actions[0]!.actionId, reason: expect.stringMatching(/^duplicate: this action was already decided \(succeeded, auto\)/) });
    }
    expect(graph.requests).toEqual([]);
  });

  it('429 with Retry-After, then success: retried once after the wait, and the action succeeds', async () => {
    graph.on('PATCH', `/v1.0/servicePrincipals/${AGENT}/microsoft.graph.agentIdentity`, GRAPH_ERRORS.throttled(1), { status: 204 });
    const [alert] = await responder().respond([alertWith(autoDisable)]);
    expect(alert!.actions[0]).toMatchObject({ outcome: 'succeeded' });
    expect(graph.writes().map((r) => [r.method, r.path])).toEqual([
      ['PATCH', `/v1.0/servicePrincipals/${AGENT}/microsoft.graph.agentIdentity`],
      ['PATCH', `/v1.0/servicePrincipals/${AGENT}/microsoft.graph.agentIdentity`],
    ]);
  });

  it('the retry budget is bounded: a Retry-After beyond it fails at once as GRAPH_TRANSIENT', async () => {
    graph.on('PATCH', `/v1.0/servicePrincipals/${AGENT}/microsoft.graph.agentIdentity`, GRAPH_ERRORS.throttled(3600));
    await expect(actions.disableAgentIdentity(AGENT)).rejects.toMatchObject({ code: 'GRAPH_TRANSIENT', statusCode: 429, message: expect.stringMatching(/would exceed the 5000 ms retry budget/) });
    expect(graph.writes()).toHaveLength(1);
  });

  it('5xx is retried up to the attempt limit, then reported', async () => {
    graph.on('POST', '/beta/identityProtection/riskyAgents/confirmCompromised', { ...GRAPH_ERRORS.unavailable(), headers: { 'Retry-After': '0' } });
    await expect(actions.confirmCompromised([AGENT])).rejects.toMatchObject({ code: 'GRAPH_TRANSIENT', statusCode: 503 });
    expect(graph.writes()).toHaveLength(4);
  });

  it('403 is reported as the missing permission the action needs', async () => {
    graph.on('PATCH', `/v1.0/servicePrincipals/${AGENT}/microsoft.graph.agentIdentity`, GRAPH_ERRORS.forbidden());
    await expect(actions.disableAgentIdentity(AGENT)).rejects.toMatchObject({
      code: 'GRAPH_PERMISSION_MISSING',
      missingPermission: 'AgentIdentity.EnableDisable.All',
      message: expect.stringMatching(/the application permission AgentIdentity\.EnableDisable\.All is missing .*agentwatch grant-permissions/),
    });
    const [alert] = await responder().respond([alertWith(autoDisable)]);
    expect(alert!.actions[0]).toMatchObject({ outcome: 'failed', reason: expect.stringContaining('AgentIdentity.EnableDisable.All') });
  });

  it('a 403 on the verifying read names the read permission', async () => {
    graph.on('GET', `/v1.0/servicePrincipals/${AGENT}`, GRAPH_ERRORS.forbidden());
    const [alert] = await responder().respond([alertWith(autoDisable)]);
    expect(alert!.actions[0]).toMatchObject({ outcome: 'failed', reason: expect.stringContaining('AgentIdentity.Read.All') });
    expect(graph.writes()).toEqual([]);
  });

  it('404 means already gone: on the verifying GET no write is attempted; on the write it is not a failure', async () => {
    graph.directory.servicePrincipals.clear();
    const [gone] = await responder().respond([alertWith(autoDisable)]);
    expect(gone!.actions[0]).toMatchObject({ outcome: 'alreadyGone', reason: `servicePrincipal ${AGENT} not found in Graph: already gone` });
    expect(graph.writes()).toEqual([]);

    graph.addObject('servicePrincipals', agentIdentity(AGENT));
    graph.on('PATCH', `/v1.0/servicePrincipals/${AGENT}/microsoft.graph.agentIdentity`, GRAPH_ERRORS.notFound());
    const [raced] = await responder().respond([alertWith(autoDisable, { dedupKey: 'agent-takeover-chain:raced' })]);
    expect(raced!.actions[0]).toMatchObject({ outcome: 'alreadyGone', reason: expect.stringMatching(/^already gone: /) });
  });

  it('never builds a URL from a non-GUID id, whoever calls the adapter', async () => {
    await expect(actions.disableAgentIdentity(`${AGENT}/../../applications`)).rejects.toMatchObject({ code: 'RESPONSE_REFUSED' });
    await expect(actions.getObject('user', "x')?$select=passwordProfile")).rejects.toMatchObject({ code: 'RESPONSE_REFUSED' });
    const [alert] = await responder().respond([alertWith(autoDisable, { agentIdentityId: 'not-a-guid' })]);
    expect(alert!.actions[0]).toMatchObject({ outcome: 'skipped', reason: expect.stringMatching(/is not a GUID/) });
    expect(graph.requests).toEqual([]);
  });
});

describe('the action log, approval queue, idempotency markers and cap counters on Table Storage (Azurite)', () => {
  const fake = useFakeGraph();
  let azurite: AzuriteTables;
  beforeAll(async () => {
    azurite = await startAzuriteTables();
  });
  afterAll(async () => {
    await azurite?.stop();
  });

  it('queues, approves once, refuses a duplicate and holds the cap across two responder instances sharing the table', async () => {
    const graph = fake.graph;
    const clock = { now: () => NOW };
    const state = await createTableStateStore({ AGENTWATCH_STATE_CONNECTION_STRING: azurite.connectionString, AGENTWATCH_STATE_TABLE: 'responsestate' }, { clock });
    const actions = createGraphActions({ credential: fakeCredential(TOKEN), baseUrl: graph.baseUrl });
    const other = 'b0b0b0b0-1111-2222-3333-444444444444';
    graph.addObject('servicePrincipals', agentIdentity(AGENT)).addObject('servicePrincipals', agentIdentity(other));
    const deps = { graph: actions, state, config: { ...ALL_AUTO, caps: { perHour: 1, perBlueprintPerHour: 1 } }, clock };

    const [first] = await createResponder(deps).respond([alertWith(autoDisable)]);
    const [capped] = await createResponder(deps).respond([alertWith(autoDisable, { id: 'alert-2', dedupKey: 'agent-takeover-chain:second', agentIdentityId: other })]);
    const [duplicate] = await createResponder(deps).respond([alertWith(autoDisable)]);
    expect([first, capped, duplicate].map((alert) => alert!.actions[0]!.outcome)).toEqual(['succeeded', 'pendingApproval', 'skipped']);
    expect(graph.writes().map((r) => r.path)).toEqual([`/v1.0/servicePrincipals/${AGENT}/microsoft.graph.agentIdentity`]);

    const pending = await handleApprovalRequest({ method: 'GET', headers: new Headers(), json: async () => undefined }, deps);
    expect(pending.jsonBody).toMatchObject({ pending: [{ actionId: capped!.actions[0]!.actionId, targetId: other }] });
    const approved = await handleApprovalRequest({ method: 'POST', headers: new Headers(), json: async () => ({ actionId: capped!.actions[0]!.actionId, decision: 'approve', approver: 'soc@contoso.com' }) }, deps);
    expect(approved).toMatchObject({ status: 200, jsonBody: { action: { outcome: 'succeeded' } } });
    expect(graph.writes().map((r) => r.path)).toEqual([`/v1.0/servicePrincipals/${AGENT}/microsoft.graph.agentIdentity`, `/v1.0/servicePrincipals/${other}/microsoft.graph.agentIdentity`]);
    expect(await handleApprovalRequest({ method: 'GET', headers: new Headers(), json: async () => undefined }, deps)).toMatchObject({ jsonBody: { pending: [] } });
  });
});
