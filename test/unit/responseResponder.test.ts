/**
 * The responder's guard order and bookkeeping, table-driven, with an in-process GraphActions fake
 * (the HTTP path is covered in test/integration/graphResponse.test.ts) and the in-memory state store.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { Alert, ResponseMode } from '../../src/alerts/types';
import { AgentwatchError } from '../../src/errors';
import type { DirectoryObjectInfo, GraphActions, InventoryEntity, InventoryView } from '../../src/ports';
import { createResponder, readAlertField, type PlannedAction, type ResponseConfig, type ResponsePlan } from '../../src/response';
import { ActionStore, logPartition } from '../../src/response/actionLog';
import { actionIdFor } from '../../src/response/guards';
import type { ActionRecord } from '../../src/response/types';
import { MemoryStateStore } from '../../src/state/memoryStore';

const AGENT = 'bbbbbbbb-1111-2222-3333-444444444444';
const BLUEPRINT_APP = 'dddddddd-1111-2222-3333-444444444444';
const BLUEPRINT_OBJECT = 'd0d0d0d0-1111-2222-3333-444444444444';
const KEY = '0a0a0a0a-1111-2222-3333-444444444444';
const NOW = Date.parse('2026-10-05T10:20:00Z');
const clock = { now: () => NOW };

type Call = [string, ...unknown[]];

/** Records every call; objects are looked up by `${kind}:${by}:${id}`. */
class RecordingGraph implements GraphActions {
  readonly calls: Call[] = [];
  readonly objects = new Map<string, DirectoryObjectInfo>();
  failures: Error[] = [];
  add(kind: string, id: string, info: DirectoryObjectInfo, by: 'id' | 'appId' = 'id'): this {
    this.objects.set(`${kind}:${by}:${id}`, info);
    return this;
  }
  writes(): Call[] {
    return this.calls.filter(([name]) => name !== 'getObject');
  }
  async getObject(kind: string, id: string, options: { by?: 'id' | 'appId' } = {}) {
    this.calls.push(['getObject', kind, id, options.by ?? 'id']);
    return this.objects.get(`${kind}:${options.by ?? 'id'}:${id}`);
  }
  private async write(...call: Call) {
    this.calls.push(call);
    const failure = this.failures.shift();
    if (failure) throw failure;
  }
  confirmCompromised = (ids: string[]) => this.write('confirmCompromised', ids);
  disableAgentIdentity = (id: string) => this.write('disableAgentIdentity', id);
  disableBlueprintPrincipal = (id: string) => this.write('disableBlueprintPrincipal', id);
  removeBlueprintCredential = (id: string, keyId: string, kind: string) => this.write('removeBlueprintCredential', id, keyId, kind);
  revokeAgentUserSessions = (id: string) => this.write('revokeAgentUserSessions', id);
}

function inventoryOf(entities: InventoryEntity[], firstPartyAppIds: string[] = []): InventoryView {
  const find = (id: string) => entities.find((e) => e.id === id || e.appId === id);
  return {
    lookup: find,
    blueprintPrincipal: (blueprintId) => entities.find((e) => e.kind === 'blueprintPrincipal' && e.appId === (find(blueprintId)?.appId ?? blueprintId)),
    children: (parentId) => entities.filter((e) => e.parentId === parentId),
    firstSeen: () => undefined,
    isFirstParty: (p) => firstPartyAppIds.includes(p.appId ?? ''),
  };
}

const agentInfo = (extra: Partial<DirectoryObjectInfo> = {}): DirectoryObjectInfo => ({ id: AGENT, odataType: '#microsoft.graph.agentIdentity', appId: AGENT, displayName: 'invoice-agent', accountEnabled: true, agentIdentityBlueprintId: BLUEPRINT_APP, ...extra });

function alertWith(actions: PlannedAction[], mode: ResponseMode | undefined, overrides: Partial<Alert> = {}): Alert & { responsePlan: ResponsePlan } {
  return {
    id: 'alert-1',
    detectionId: 'agent-takeover-chain',
    title: 'takeover',
    severity: 'critical',
    firstEventTime: '2026-10-05T09:00:00.000Z',
    lastEventTime: '2026-10-05T09:40:00.000Z',
    createdTime: '2026-10-05T10:20:00.000Z',
    entities: [{ type: 'agentIdentity', id: AGENT }],
    dedupKey: `agent-takeover-chain:${BLUEPRINT_APP}`,
    evidence: [],
    tactics: [],
    techniques: [],
    actions: [],
    blueprintAppId: BLUEPRINT_APP,
    agentIdentityId: AGENT,
    ...overrides,
    responsePlan: { ...(mode ? { mode } : {}), actions },
  };
}

const disable: PlannedAction[] = [{ action: 'disableAgentIdentity', target: 'agentIdentityId' }];
const AUTO: ResponseConfig = { globalMode: 'auto', fileMode: 'auto' };

describe('responder', () => {
  let graph: RecordingGraph;
  let state: MemoryStateStore;
  beforeEach(() => {
    graph = new RecordingGraph().add('servicePrincipal', AGENT, agentInfo());
    state = new MemoryStateStore({ clock });
  });
  const respond = (alerts: Alert[], config: ResponseConfig = AUTO, extra: { inventory?: InventoryView; graph?: GraphActions | null } = {}) =>
    createResponder({ graph: extra.graph === null ? undefined : (extra.graph ?? graph), state, config, clock, inventory: extra.inventory }).respond(alerts);

  describe('mode: the strictest level decides what happens', () => {
    it.each<[string, ResponseConfig, ResponseMode | undefined, ResponseMode, string, number]>([
      ['defaults everywhere', {}, undefined, 'dryRun', 'planned', 0],
      ['rule auto under the default global dryRun', {}, 'auto', 'dryRun', 'planned', 0],
      ['everything auto', AUTO, 'auto', 'auto', 'succeeded', 1],
      ['rule without a mode stays dryRun', AUTO, undefined, 'dryRun', 'planned', 0],
      ['config file approval caps auto', { globalMode: 'auto', fileMode: 'approval' }, 'auto', 'approval', 'pendingApproval', 0],
      ['detection override off', { ...AUTO, detectionModes: { 'agent-takeover-chain': 'off' } }, 'auto', 'off', 'skipped', 0],
      ['another detection override does not apply', { ...AUTO, detectionModes: { 'agent-risk-detected': 'off' } }, 'auto', 'auto', 'succeeded', 1],
    ])('%s', async (_name, config, ruleMode, mode, outcome, writes) => {
      const [alert] = await respond([alertWith(disable, ruleMode)], config);
      expect(alert!.actions).toMatchObject([{ action: 'disableAgentIdentity', mode, outcome, targetId: AGENT, targetType: 'agentIdentity' }]);
      expect(graph.writes()).toHaveLength(writes);
    });
  });

  describe('guards refuse with a reason and never write', () => {
    it.each<[string, () => { alert: Alert; config?: ResponseConfig; inventory?: InventoryView }, RegExp, number]>([
      ['target field missing', () => ({ alert: alertWith(disable, 'auto', { agentIdentityId: undefined, entities: [] }) }), /target \(agentIdentityId\) is missing/, 0],
      ['target not a GUID', () => ({ alert: alertWith(disable, 'auto', { agentIdentityId: 'invoice-agent' }) }), /"invoice-agent" is not a GUID/, 0],
      ['credential key id missing', () => ({ alert: alertWith([{ action: 'removeBlueprintCredential', target: 'blueprintAppId', keyId: 'credential.keyId' }], 'auto') }), /credential key id \(credential\.keyId\) is missing/, 0],
      ['protected agent', () => ({ alert: alertWith(disable, 'auto'), config: { ...AUTO, protected: [AGENT] } }), /^protected: /, 0],
      ['protected blueprint protects its agents', () => ({ alert: alertWith(disable, 'auto'), config: { ...AUTO, protected: [BLUEPRINT_APP] } }), /^protected: dddddddd/, 0],
      ['protected by the inventory chain (agent user → agent → blueprint)', () => ({
        alert: alertWith([{ action: 'revokeAgentUserSessions', target: 'agentUserId' }], 'auto', { blueprintAppId: undefined, entities: [{ type: 'agentUser', id: 'abababab-1111-2222-3333-444444444444' }] }),
        config: { ...AUTO, protected: [BLUEPRINT_APP] },
        inventory: inventoryOf([{ kind: 'agentUser', id: 'abababab-1111-2222-3333-444444444444', parentId: AGENT, live: true }, { kind: 'agentIdentity', id: AGENT, appId: AGENT, parentId: BLUEPRINT_APP, live: true }]),
      }), /^protected: dddddddd/, 0],
      ['first-party blueprint on the alert', () => ({ alert: alertWith(disable, 'auto', { blueprintAppId: '25664c89-cea5-4ab6-b924-a54fd8a19ae0' }) }), /^Microsoft first-party: app 25664c89/, 0],
      ['first-party by an app id the config adds', () => ({ alert: alertWith(disable, 'auto'), config: { ...AUTO, firstPartyAppIds: [BLUEPRINT_APP] } }), /^Microsoft first-party: app dddddddd/, 0],
      ['first-party owner tenant known to the inventory', () => ({
        alert: alertWith(disable, 'auto'),
        inventory: inventoryOf([{ kind: 'agentIdentity', id: AGENT, appId: AGENT, ownerTenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47', live: true }]),
      }), /^Microsoft first-party: owned by Microsoft tenant 72f988bf/, 0],
      ['first-party by the inventory\'s own judgement on the parent blueprint', () => ({
        alert: alertWith(disable, 'auto', { blueprintAppId: undefined }),
        inventory: inventoryOf([{ kind: 'agentIdentity', id: AGENT, appId: AGENT, parentId: BLUEPRINT_APP, live: true }, { kind: 'blueprint', id: BLUEPRINT_OBJECT, appId: BLUEPRINT_APP, live: true }], [BLUEPRINT_APP]),
      }), /^Microsoft first-party: the inventory marks bbbbbbbb/, 0],
    ])('%s', async (_name, make, reason, graphCalls) => {
      const { alert, config, inventory } = make();
      const [result] = await respond([alert], config ?? AUTO, { inventory });
      expect(result!.actions[0]).toMatchObject({ outcome: 'skipped', reason: expect.stringMatching(reason) });
      expect(graph.calls).toHaveLength(graphCalls);
    });

    it.each<[string, DirectoryObjectInfo | undefined, string, RegExp]>([
      ['gone', undefined, 'alreadyGone', /not found in Graph: already gone/],
      ['a plain service principal', agentInfo({ odataType: '#microsoft.graph.servicePrincipal' }), 'skipped', /^wrong object type/],
      ['owned by a Microsoft tenant (Graph says)', agentInfo({ appOwnerOrganizationId: 'f8cdef31-a31e-4b4a-93e4-5f571e91255a' }), 'skipped', /^Microsoft first-party: owned by Microsoft tenant/],
      ['child of the Copilot Studio blueprint (Graph says)', agentInfo({ agentIdentityBlueprintId: '25664c89-cea5-4ab6-b924-a54fd8a19ae0' }), 'skipped', /^Microsoft first-party: app 25664c89/],
      ['already disabled', agentInfo({ accountEnabled: false }), 'skipped', /^already disabled/],
    ])('after the verifying GET: %s', async (_name, info, outcome, reason) => {
      graph.objects.clear();
      if (info) graph.add('servicePrincipal', AGENT, info);
      const [alert] = await respond([alertWith(disable, 'auto', { blueprintAppId: undefined })]);
      expect(alert!.actions[0]).toMatchObject({ outcome, reason: expect.stringMatching(reason) });
      expect(graph.calls).toEqual([['getObject', 'servicePrincipal', AGENT, 'id']]);
    });
  });

  it('over the cap an action becomes an approval, per blueprint and in total', async () => {
    const agents = ['b0000001', 'b0000002', 'b0000003', 'b0000004'].map((prefix) => `${prefix}-1111-2222-3333-444444444444`);
    for (const id of agents) graph.add('servicePrincipal', id, agentInfo({ id, appId: id }));
    const blueprintOf = (i: number) => (i < 3 ? BLUEPRINT_APP : 'eeeeeeee-1111-2222-3333-444444444444');
    const alerts = agents.map((id, i) => alertWith(disable, 'auto', { id: `alert-${i}`, dedupKey: `k:${id}`, agentIdentityId: id, blueprintAppId: blueprintOf(i) }));
    const results = await respond(alerts, { ...AUTO, caps: { perHour: 3, perBlueprintPerHour: 2 } });
    expect(results.map((a) => [a.actions[0]!.outcome, a.actions[0]!.reason?.replace(/:.*/, '')])).toEqual([
      ['succeeded', 'done'],
      ['succeeded', 'done'],
      ['pendingApproval', 'blast-radius cap reached'],
      ['succeeded', 'done'],
    ]);
    const [over] = await respond([alertWith(disable, 'auto', { id: 'alert-5', dedupKey: 'k:5', agentIdentityId: agents[2], blueprintAppId: 'ffffffff-1111-2222-3333-444444444444' })], { ...AUTO, caps: { perHour: 3, perBlueprintPerHour: 2 } });
    expect(over!.actions[0]).toMatchObject({ outcome: 'pendingApproval', reason: expect.stringMatching(/3 automatic actions this hour \(limit 3\)/) });
    expect(graph.writes()).toHaveLength(3);
  });

  describe('idempotency', () => {
    it('a redelivered alert is recorded as a duplicate without any Graph call', async () => {
      await respond([alertWith(disable, 'auto')]);
      graph.calls.length = 0;
      const [again] = await respond([alertWith(disable, 'auto')]);
      expect(again!.actions[0]).toMatchObject({ outcome: 'skipped', reason: expect.stringMatching(/^duplicate: this action was already decided \(succeeded, auto\)/) });
      expect(graph.calls).toEqual([]);
    });

    it('a dryRun decision does not block the live action once the mode is raised', async () => {
      await respond([alertWith(disable, 'auto')], { globalMode: 'dryRun' });
      expect(graph.writes()).toEqual([]);
      const [live] = await respond([alertWith(disable, 'auto')], AUTO);
      expect(live!.actions[0]).toMatchObject({ outcome: 'succeeded', mode: 'auto' });
      expect(graph.writes()).toEqual([['disableAgentIdentity', AGENT]]);
    });

    it('a transient failure may be retried by a redelivery; a missing permission is not retried', async () => {
      graph.failures = [new AgentwatchError('GRAPH_TRANSIENT', 'throttled past the budget')];
      const [first] = await respond([alertWith(disable, 'auto')]);
      expect(first!.actions[0]).toMatchObject({ outcome: 'failed', reason: 'throttled past the budget' });
      const [retried] = await respond([alertWith(disable, 'auto')]);
      expect(retried!.actions[0]).toMatchObject({ outcome: 'succeeded' });

      graph.failures = [new AgentwatchError('GRAPH_PERMISSION_MISSING', 'AgentIdentity.EnableDisable.All is missing')];
      const other = { dedupKey: 'agent-takeover-chain:other' };
      await respond([alertWith(disable, 'auto', other)]);
      const [notRetried] = await respond([alertWith(disable, 'auto', other)]);
      expect(notRetried!.actions[0]).toMatchObject({ outcome: 'skipped', reason: expect.stringMatching(/^duplicate: .*\(failed, auto\)/) });
      expect(graph.writes()).toHaveLength(3);
    });

    it('a claim whose decider died is taken over once its lease lapsed; a fresh claim is left alone', async () => {
      const store = new ActionStore(state, { logMs: 1e9, approvalMs: 1e9 });
      const actionId = actionIdFor({ detectionId: 'agent-takeover-chain', dedupKey: `agent-takeover-chain:${BLUEPRINT_APP}`, action: 'disableAgentIdentity', targetId: AGENT });
      const interrupted = (minutesAgo: number): ActionRecord => ({
        actionId, action: 'disableAgentIdentity', mode: 'auto', outcome: 'planned', deciding: true, targetId: AGENT, targetType: 'agentIdentity', targetLookup: 'id',
        alertId: 'alert-1', detectionId: 'agent-takeover-chain', dedupKey: `agent-takeover-chain:${BLUEPRINT_APP}`, decidedAt: new Date(NOW - minutesAgo * 60_000).toISOString(), history: [],
      });
      await store.claim(interrupted(1), NOW);
      const [fresh] = await respond([alertWith(disable, 'auto')]);
      expect(fresh!.actions[0]).toMatchObject({ outcome: 'skipped', reason: expect.stringMatching(/^duplicate: another instance is deciding this action/) });
      expect(graph.calls).toEqual([]);

      const claimed = await store.read(actionId);
      await store.save(interrupted(10), claimed!.etag, undefined, NOW);
      const [takenOver] = await respond([alertWith(disable, 'auto')]);
      expect(takenOver!.actions[0]).toMatchObject({ outcome: 'succeeded', actionId });
      expect(graph.writes()).toEqual([['disableAgentIdentity', AGENT]]);
    });
  });

  describe('without a Graph client (replay, demo)', () => {
    it.each<[ResponseMode, string, RegExp]>([
      ['dryRun', 'planned', /^dry run: would disable agent identity bbbbbbbb-.* \(not verified: no Graph client in this host\)$/],
      ['approval', 'pendingApproval', /^waiting for approval to disable agent identity .*verified when approved$/],
      ['auto', 'failed', /no Graph client is configured/],
    ])('%s → %s', async (mode, outcome, reason) => {
      const [alert] = await respond([alertWith(disable, mode)], { globalMode: 'auto' }, { graph: null });
      expect(alert!.actions[0]).toMatchObject({ mode, outcome, reason: expect.stringMatching(reason) });
    });
  });

  it('logs every decision, skips included, in the day partition of the action log', async () => {
    await respond([alertWith([...disable, { action: 'confirmCompromised', target: 'agentIdentityId' }], 'auto'), alertWith(disable, 'auto', { id: 'a2', dedupKey: 'k2', agentIdentityId: 'nope' })]);
    const log = await new ActionStore(state, { logMs: 1e9, approvalMs: 1e9 }).logOf(NOW);
    expect(log.map((entry) => [entry.action, entry.outcome, entry.alertId])).toEqual(
      expect.arrayContaining([
        ['disableAgentIdentity', 'succeeded', 'alert-1'],
        ['confirmCompromised', 'succeeded', 'alert-1'],
        ['disableAgentIdentity', 'skipped', 'a2'],
      ]),
    );
    expect(log).toHaveLength(3);
    expect(logPartition(NOW)).toBe('response-log-20261005');
  });

  it('takes plans from the map the engine returns, and leaves alerts without a plan untouched', async () => {
    const plain: Alert = { ...alertWith([], undefined), id: 'no-plan', actions: [] };
    delete (plain as { responsePlan?: unknown }).responsePlan;
    const planned: Alert = { ...plain, id: 'with-plan' };
    const results = await createResponder({ graph, state, config: AUTO, clock }).respond([plain, planned], new Map([['with-plan', { mode: 'auto', actions: [{ action: 'confirmCompromised', target: 'agentIdentityId', targetValue: AGENT }] }]]));
    expect(results[0]).toBe(plain);
    expect(results[1]!.actions).toMatchObject([{ action: 'confirmCompromised', outcome: 'succeeded' }]);
    expect(graph.writes()).toEqual([['confirmCompromised', [AGENT]]]);
  });

  describe('removeBlueprintCredential picks the removal call that fits the key', () => {
    const blueprint = (extra: Partial<DirectoryObjectInfo>): DirectoryObjectInfo => ({ id: BLUEPRINT_OBJECT, odataType: '#microsoft.graph.agentIdentityBlueprint', appId: BLUEPRINT_APP, ...extra });
    it.each<[string, Partial<DirectoryObjectInfo>, Partial<PlannedAction>, string, string | undefined]>([
      ['a listed password', { passwordKeyIds: [KEY], certificateKeyIds: [] }, {}, 'succeeded', 'password'],
      ['a listed certificate', { passwordKeyIds: [], certificateKeyIds: [KEY] }, {}, 'succeeded', 'key'],
      ['an unlisted key with a federated type on the event', { passwordKeyIds: [], certificateKeyIds: [] }, { credentialType: 'FederatedIdentityCredential' }, 'succeeded', 'federated'],
      ['an unlisted key and no type: tried as federated', { passwordKeyIds: [], certificateKeyIds: [] }, {}, 'succeeded', 'federated'],
      ['a password no longer listed', { passwordKeyIds: [], certificateKeyIds: [] }, { credentialType: 'password' }, 'alreadyGone', undefined],
      ['the rule says password but it is gone', { passwordKeyIds: ['ffffffff-1111-2222-3333-444444444444'] }, { credentialKind: 'password' }, 'alreadyGone', undefined],
      ['the rule says federated', { passwordKeyIds: [KEY] }, { credentialKind: 'federated' }, 'succeeded', 'federated'],
    ])('%s', async (_name, info, planned, outcome, kind) => {
      graph.add('application', BLUEPRINT_APP, blueprint(info), 'appId');
      const action: PlannedAction = { action: 'removeBlueprintCredential', target: 'blueprintAppId', keyId: 'credential.keyId', ...planned };
      const [alert] = await respond([alertWith([action], 'auto', { details: { keyIds: [KEY.toUpperCase()] } })]);
      expect(alert!.actions[0]).toMatchObject({ outcome, targetId: BLUEPRINT_APP, targetType: 'blueprint' });
      expect(graph.writes()).toEqual(kind ? [['removeBlueprintCredential', BLUEPRINT_OBJECT, KEY, kind]] : []);
    });
  });

  it.each<[string, Partial<Alert>, string, string | undefined]>([
    ['a top-level copy', { agentIdentityId: AGENT }, 'agentIdentityId', AGENT],
    ['the blueprint entity (app id)', { blueprintAppId: undefined, entities: [{ type: 'blueprint', id: 'x', appId: BLUEPRINT_APP }] }, 'blueprintAppId', BLUEPRINT_APP],
    ['an agent user entity', { entities: [{ type: 'agentUser', id: 'u1' }] }, 'agentUserId', 'u1'],
    ['details by full path', { details: { 'credential.keyId': KEY } }, 'credential.keyId', KEY],
    ['details by last segment, plural list', { details: { keyIds: [KEY, 'other'] } }, 'credential.keyId', KEY],
    ['nowhere', { details: {} }, 'credential.keyId', undefined],
  ])('readAlertField finds %s', (_name, overrides, field, expected) => {
    expect(readAlertField(alertWith([], undefined, overrides), field)).toBe(expected);
  });
});
