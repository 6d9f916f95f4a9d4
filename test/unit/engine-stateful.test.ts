/**
 * The stateful kinds on hand-built canonical events, through the real engine and the in-memory
 * state store: positive, one below threshold, window expiry, out-of-order within lateness,
 * too-late events counted, duplicate delivery, suppression/dedup, and a restarted engine resuming
 * from the same store. Events are delivered batch by batch, as Event Hubs would.
 */
import { describe, expect, it } from 'vitest';
import { createEngine, getResponsePlan } from '../../src/engine';
import type { CompiledDetection } from '../../src/engine';
import type { AgentEvent } from '../../src/normalize/types';
import { MemoryStateStore } from '../../src/state/memoryStore';
import { AGENT, BLUEPRINT, MINUTE, OTHER_AGENT, T0, TestInventory, compileRule, event, harness, signIn } from '../fixtures/rules/engineTestKit';

const HOUR = 60 * MINUTE;

const failure = (id: string, at: number, extra: Partial<AgentEvent> = {}) => signIn(id, at, { code: '53003', ...extra });

function thresholdRule(extra: Record<string, unknown> = {}, output: Record<string, unknown> = {}): CompiledDetection {
  return compileRule({
    id: 'failures',
    selections: { fail: { flow: 't2Autonomous', 'result.status': 'failure' } },
    condition: 'fail',
    stateful: { type: 'threshold', groupBy: ['agentIdentityId'], window: '10m', threshold: 3, ...extra },
    output: { title: '{{count}} failures in {{window}}', entities: [{ type: 'agentIdentity', id: 'agentIdentityId' }], dedupKey: ['agentIdentityId'], ...output },
  });
}

describe('threshold', () => {
  it('fires when the count reaches the threshold within the window, with every event as evidence', async () => {
    const h = harness([thresholdRule()]);
    expect(await h.deliver(failure('f1', 0), failure('f2', 1))).toEqual([]);
    const [alert] = await h.deliver(failure('f3', 2));
    expect(alert).toMatchObject({ detectionId: 'failures', title: '3 failures in 10m', dedupKey: `failures:${AGENT}`, evidence: ['f1', 'f2', 'f3'], entities: [{ type: 'agentIdentity', id: AGENT }] });
    expect(alert.firstEventTime).toBe(new Date(T0).toISOString());
    expect(alert.lastEventTime).toBe(new Date(T0 + 2 * MINUTE).toISOString());
  });

  it('one below the threshold stays silent', async () => {
    const h = harness([thresholdRule()]);
    await h.deliver(failure('f1', 0), failure('f2', 9));
    expect(h.alerts).toEqual([]);
  });

  it('events further apart than the window never meet', async () => {
    const h = harness([thresholdRule()]);
    await h.deliver(failure('f1', 0));
    await h.deliver(failure('f2', 6));
    await h.deliver(failure('f3', 12)); // windows [0,10] and [6,16] each hold two
    expect(h.alerts).toEqual([]);
  });

  it('keys do not mix: two agents with two failures each stay silent', async () => {
    const h = harness([thresholdRule()]);
    const other = { agentIdentityId: OTHER_AGENT };
    await h.deliver(failure('f1', 0), failure('f2', 1), failure('g1', 0, other), failure('g2', 1, other));
    expect(h.alerts).toEqual([]);
  });

  it('an out-of-order event within the lateness bound lands in its window', async () => {
    const h = harness([thresholdRule()]);
    await h.deliver(failure('f3', 10));
    await h.deliver(failure('f1', 2)); // 8 minutes behind the key's newest: fine
    const [alert] = await h.deliver(failure('f2', 5));
    expect(alert.evidence).toEqual(['f1', 'f2', 'f3']);
  });

  it('an event later than the lateness bound is counted as too late, not applied', async () => {
    const h = harness([thresholdRule()]);
    await h.deliver(failure('f1', 30), failure('f2', 31));
    await h.deliver(failure('late', 10)); // 21 minutes behind: would not fall in the window anyway, and is refused
    await h.deliver(failure('late2', 14)); // 17 minutes behind, inside the window of f1: refused all the same
    expect(h.alerts).toEqual([]);
    expect(h.engine.stats().tooLate).toEqual({ failures: 2 });
    await h.deliver(failure('f3', 33));
    expect(h.alerts).toHaveLength(1);
  });

  it('a redelivered event counts once and a redelivered batch raises nothing new', async () => {
    const h = harness([thresholdRule()]);
    await h.deliver(failure('f1', 0), failure('f2', 1));
    await h.deliver(failure('f2', 1)); // redelivery: still two
    expect(h.alerts).toEqual([]);
    expect(h.engine.stats().duplicates).toBe(1);
    const batch = [failure('f3', 2)];
    expect(await h.deliver(...batch)).toHaveLength(1);
    expect(await h.deliver(...batch)).toEqual([]);
    expect(await h.deliver(failure('f1', 0), failure('f2', 1), failure('f3', 2))).toEqual([]);
  });

  it('folds matches with the same dedup key into one alert per suppression bucket', async () => {
    const h = harness([thresholdRule({}, { suppress: '1h' })]);
    await h.deliver(...[0, 1, 2, 3, 4, 5].map((at) => failure(`a${at}`, at))); // fires twice in the same clock hour
    expect(h.alerts).toHaveLength(1);
    expect(h.engine.stats().alertsFolded).toBe(1);
    await h.deliver(...[61, 62, 63].map((at) => failure(`b${at}`, at))); // the next clock hour
    expect(h.alerts).toHaveLength(2);
    expect(h.alerts[0].id).not.toBe(h.alerts[1].id);
    expect(h.alerts[1].dedupKey).toBe(h.alerts[0].dedupKey);
  });

  it('consumes the events that fired: the next alert needs a fresh set', async () => {
    const h = harness([thresholdRule()]);
    await h.deliver(failure('f1', 0), failure('f2', 1), failure('f3', 2), failure('f4', 3), failure('f5', 4));
    expect(h.alerts).toHaveLength(1);
    await h.deliver(failure('f6', 5));
    expect(h.alerts).toHaveLength(2);
    expect(h.alerts[1].evidence).toEqual(['f4', 'f5', 'f6']);
  });

  it('a restarted engine on the same store resumes the window', async () => {
    const store = new MemoryStateStore();
    const first = harness([thresholdRule()], new TestInventory(), store);
    await first.deliver(failure('f1', 0), failure('f2', 1));
    const restarted = harness([thresholdRule()], new TestInventory(), store);
    await restarted.deliver(failure('f2', 1)); // redelivered after the restart
    expect(restarted.alerts).toEqual([]);
    expect(await restarted.deliver(failure('f3', 2))).toHaveLength(1);
  });

  it('a key stored with the earlier evidence ring ([hash, id] pairs) keeps its evidence and is rewritten flat', async () => {
    const store = new MemoryStateStore();
    await harness([thresholdRule()], new TestInventory(), store).deliver(failure('f1', 0), failure('f2', 1));
    // Rewrite the stored key as an earlier version wrote it: `recent` pairs, no `ids`.
    const [partition] = store.partitions().filter((name) => name.startsWith('k|failures|'));
    const [stored] = await store.list<Record<string, unknown>>(partition);
    const ids = stored.value.ids as string[];
    expect(ids).toHaveLength(4);
    const { ids: _flat, ...rest } = stored.value;
    const recent = [[ids[0], ids[1]], [ids[2], ids[3]]];
    await store.commit([{ op: 'put', key: stored.key, value: { ...rest, recent }, ifMatch: stored.etag, expiresAt: stored.expiresAt }]);

    const restarted = harness([thresholdRule()], new TestInventory(), store);
    const [alert] = await restarted.deliver(failure('f3', 2));
    expect(alert.evidence).toEqual(['f1', 'f2', 'f3']);
    const [rewritten] = await store.list<Record<string, unknown>>(partition);
    expect(rewritten.value.recent).toBeUndefined();
    expect(rewritten.value.ids).toEqual([...ids, expect.any(String), 'f3']);
  });

  it('gives the same alert id in any process for the same events', async () => {
    const events = [failure('f1', 0), failure('f2', 1), failure('f3', 2)];
    const [a] = await harness([thresholdRule()]).deliver(...events);
    const [b] = await harness([thresholdRule()]).deliver(...events);
    expect(a.id).toMatch(/^aw_[0-9a-f]{32}$/);
    expect(b.id).toBe(a.id);
  });

  it('distinct criterion: failures against enough distinct resources fire with combine any', async () => {
    const h = harness([thresholdRule({ threshold: 10, distinct: { field: 'resource.appId', threshold: 2 } }, { details: { resources: '{{distinctValues}}' } })]);
    await h.deliver(failure('f1', 0), failure('f2', 1, { resource: { appId: 'cfa8b339-82a2-471a-a3c9-0fc0be7a4093' } }));
    expect(h.alerts).toHaveLength(1);
    expect(h.alerts[0].details).toEqual({ resources: ['00000003-0000-0000-c000-000000000000', 'cfa8b339-82a2-471a-a3c9-0fc0be7a4093'] });
  });

  it('two engines sharing a store commit concurrently without losing or doubling a count', async () => {
    const store = new MemoryStateStore();
    const a = harness([thresholdRule({ threshold: 4 })], new TestInventory(), store);
    const b = harness([thresholdRule({ threshold: 4 })], new TestInventory(), store);
    await Promise.all([a.deliver(failure('f1', 0), failure('f2', 1)), b.deliver(failure('f3', 2), failure('f4', 3))]);
    expect(a.alerts.length + b.alerts.length).toBe(1);
    expect(a.engine.stats().conflictsRetried + b.engine.stats().conflictsRetried).toBeGreaterThanOrEqual(1);
    expect([...a.alerts, ...b.alerts][0].evidence.sort()).toEqual(['f1', 'f2', 'f3', 'f4']);
  });
});

describe('distinctCount', () => {
  const grant = (id: string, at: number, permissions: string[], grantee = AGENT) =>
    event({
      id,
      at,
      kind: 'audit',
      category: 'AuditLogs',
      audit: { operation: 'Add delegated permission grant', grantee: { type: 'agentIdentity', id: grantee }, targets: [], credentialsAdded: [], credentialsRemoved: [], ficIssuersAdded: [], ficSubjectsAdded: [], modifiedPropertyNames: [], permissionsGranted: permissions },
    });
  const rule = compileRule({
    id: 'scope-burst',
    parameters: { ignored: ['openid', 'offline_access'] },
    selections: { grant: { 'audit.operation': 'Add delegated permission grant' } },
    condition: 'grant',
    stateful: { type: 'distinctCount', groupBy: ['audit.grantee.id'], field: 'audit.permissionsGranted', exclude: '$ignored', newOnly: true, threshold: 3, window: '60m' },
    output: { title: '{{distinct}} new permissions', entities: [], dedupKey: ['audit.grantee.id'], details: { permissions: '{{distinctValues}}' } },
  });

  it('fires on enough distinct new values within the window, excluded values and case variants aside', async () => {
    const h = harness([rule]);
    await h.deliver(grant('g1', 0, ['Mail.Read', 'openid']), grant('g2', 20, ['mail.read', 'offline_access', 'User.Read']));
    expect(h.alerts).toEqual([]);
    const [alert] = await h.deliver(grant('g3', 40, ['Files.Read']));
    expect(alert).toMatchObject({ title: '3 new permissions', details: { permissions: ['Files.Read', 'Mail.Read', 'User.Read'] }, evidence: ['g1', 'g2', 'g3'] });
  });

  it('a value granted before the window is not new', async () => {
    const h = harness([rule]);
    await h.deliver(grant('old', -120, ['Mail.Read']));
    await h.deliver(grant('g1', 0, ['Mail.Read', 'User.Read']), grant('g2', 10, ['Files.Read']));
    expect(h.alerts).toEqual([]);
  });

  it('values spread wider than the window stay silent', async () => {
    const h = harness([rule]);
    await h.deliver(grant('g1', 0, ['Mail.Read']));
    await h.deliver(grant('g2', 40, ['User.Read']));
    await h.deliver(grant('g3', 70, ['Files.Read']));
    expect(h.alerts).toEqual([]);
  });

  it('a redelivered grant does not add its values twice', async () => {
    const h = harness([rule]);
    await h.deliver(grant('g1', 0, ['Mail.Read']), grant('g2', 5, ['User.Read']));
    await h.deliver(grant('g2', 5, ['User.Read']), grant('g2', 5, ['User.Read']));
    expect(h.alerts).toEqual([]);
  });
});

describe('firstSeen', () => {
  const resource = (id: string, at: number, appId: string, name = appId) => signIn(id, at, { resource: { appId, name } });
  const KEY_VAULT = 'cfa8b339-82a2-471a-a3c9-0fc0be7a4093';
  const GRAPH = '00000003-0000-0000-c000-000000000000';
  const rule = compileRule({
    id: 'new-resource',
    selections: { t2: { flow: 't2Autonomous', 'result.status': 'success' } },
    condition: 't2',
    stateful: { type: 'firstSeen', groupBy: ['agentIdentityId'], field: 'resource.appId', learningPeriod: '24h', ttl: '30d' },
    output: { title: 'new resource {{resource.name}}', entities: [{ type: 'resource', id: 'resource.appId' }], dedupKey: ['agentIdentityId', 'resource.appId'] },
  });
  const aged = () => {
    const inventory = new TestInventory();
    inventory.firstSeenMs.set(AGENT, T0 - 48 * HOUR);
    return inventory;
  };

  it('a new value after the learning period fires; the first value ever and known values do not', async () => {
    const h = harness([rule], aged());
    await h.deliver(resource('r1', 0, GRAPH));
    expect(h.alerts).toEqual([]);
    const [alert] = await h.deliver(resource('r2', 5, KEY_VAULT, 'Azure Key Vault'));
    expect(alert).toMatchObject({ title: 'new resource Azure Key Vault', evidence: ['r2'], dedupKey: `new-resource:${AGENT}|${KEY_VAULT}` });
    await h.deliver(resource('r3', 6, KEY_VAULT), resource('r4', 7, GRAPH));
    expect(h.alerts).toHaveLength(1);
  });

  it('stays silent during the learning period but learns the values', async () => {
    const inventory = new TestInventory();
    inventory.firstSeenMs.set(AGENT, T0 - HOUR);
    const h = harness([rule], inventory);
    await h.deliver(resource('r1', 0, GRAPH), resource('r2', 5, KEY_VAULT));
    expect(h.alerts).toEqual([]);
    await h.deliver(resource('r3', 24 * 60, KEY_VAULT));
    expect(h.alerts).toEqual([]);
  });

  it('redelivery of the event that fired raises nothing new', async () => {
    const h = harness([rule], aged());
    await h.deliver(resource('r1', 0, GRAPH));
    await h.deliver(resource('r2', 5, KEY_VAULT));
    await h.deliver(resource('r2', 5, KEY_VAULT));
    expect(h.alerts).toHaveLength(1);
  });
});

describe('baseline', () => {
  const rule = compileRule({
    id: 'spike',
    selections: { t2: { flow: 't2Autonomous', 'result.status': 'success' } },
    condition: 't2',
    stateful: { type: 'baseline', groupBy: ['agentIdentityId'], window: '10m', history: '1h', minCount: 5, factor: 2, learningPeriod: '1h' },
    output: { title: '{{count}} sign-ins vs mean {{mean}}', entities: [], dedupKey: ['agentIdentityId'] },
  });
  const quietHour = () => [-60, -50, -40, -30, -20, -10].map((at) => signIn(`q${at}`, at));

  it('fires when the window exceeds both the minimum and factor × the trailing mean', async () => {
    const h = harness([rule]);
    await h.deliver(...quietHour());
    const [alert] = await h.deliver(...[0, 1, 2, 3, 4, 5].map((at) => signIn(`s${at}`, at)));
    expect(alert.title).toBe('6 sign-ins vs mean 1');
  });

  it('a count equal to the minimum is not a spike', async () => {
    const h = harness([rule]);
    await h.deliver(...quietHour());
    await h.deliver(...[0, 1, 2, 3, 4].map((at) => signIn(`s${at}`, at)));
    expect(h.alerts).toEqual([]);
  });

  it('a busy history raises the bar', async () => {
    const h = harness([rule]);
    await h.deliver(...[-60, -50, -40, -30, -20, -10].flatMap((at) => [0, 1, 2, 3].map((i) => signIn(`q${at}.${i}`, at + i)))); // 4 per slot
    await h.deliver(...[0, 1, 2, 3, 4, 5, 6].map((at) => signIn(`s${at}`, at))); // 7 ≤ 2 × 4
    expect(h.alerts).toEqual([]);
  });

  it('is silent during the learning period', async () => {
    const h = harness([rule]);
    await h.deliver(...[0, 1, 2, 3, 4, 5].map((at) => signIn(`s${at}`, at)));
    expect(h.alerts).toEqual([]);
  });

  it('a spike delivered out of order is found in the window that contains it', async () => {
    const h = harness([rule]);
    await h.deliver(...quietHour());
    await h.deliver(...[6, 7, 8].map((at) => signIn(`s${at}`, at)));
    await h.deliver(...[1, 2, 3].map((at) => signIn(`s${at}`, at)));
    expect(h.alerts).toHaveLength(1);
  });
});

describe('sequence', () => {
  const credentialAdded = compileRule({
    id: 'cred-added',
    selections: { add: { kind: 'audit', 'audit.operation': 'Update application', 'audit.credentialsAdded|exists': true } },
    condition: 'add',
    output: { title: 'credential added', entities: [{ type: 'blueprint', id: 'blueprintAppId' }], dedupKey: ['blueprintAppId'] },
  });
  const chain = (steps: unknown[], extra: Record<string, unknown> = {}) =>
    compileRule({
      id: 'cred-then-new-ip',
      selections: { t1: { flow: 't1Exchange', 'result.status': 'success' }, rotated: { kind: 'audit', 'audit.operation': 'Remove service principal credentials' } },
      stateful: { type: 'sequence', groupBy: ['blueprintAppId'], window: '60m', steps, ...extra },
      output: { title: 'chain on {{blueprintAppId}}', entities: [{ type: 'blueprint', id: 'blueprintAppId' }, { type: 'ip', id: 'ip' }], dedupKey: ['blueprintAppId'] },
      response: { actions: [{ action: 'removeBlueprintCredential', target: 'blueprintAppId', keyId: 'credential.keyId' }] },
    });
  const steps = [
    { name: 'added', alerts: ['cred-added'] },
    { name: 'newIp', condition: 't1', newValue: 'ip' },
  ];
  const addCredential = (id: string, at: number, keyId = 'k1') =>
    event({ id, at, kind: 'audit', category: 'AuditLogs', blueprintAppId: BLUEPRINT, audit: { operation: 'Update application', targets: [], credentialsAdded: [{ type: 'password', keyId }], credentialsRemoved: [], ficIssuersAdded: [], ficSubjectsAdded: [], modifiedPropertyNames: ['KeyDescription'], permissionsGranted: [] } });
  const exchange = (id: string, at: number, ip: string, keyId = 'k1') => event({ id, at, flow: 't1Exchange', blueprintAppId: BLUEPRINT, ip, result: { status: 'success', code: '0' }, credential: { type: 'clientsecret', keyId } });

  it('fires when the steps happen in order within the window, fed by the other rule in the same batch', async () => {
    const h = harness([credentialAdded, chain(steps)]);
    await h.deliver(addCredential('c1', 0), exchange('x1', 5, '203.0.113.66'));
    const fired = h.alerts.find((a) => a.detectionId === 'cred-then-new-ip')!;
    expect(fired).toMatchObject({ title: `chain on ${BLUEPRINT}`, evidence: ['c1', 'x1'], entities: [{ type: 'blueprint', id: BLUEPRINT }, { type: 'ip', id: '203.0.113.66' }] });
    expect(getResponsePlan(fired)).toEqual({ mode: 'dryRun', actions: [{ action: 'removeBlueprintCredential', target: 'blueprintAppId', targetValue: BLUEPRINT, keyId: 'credential.keyId', keyIdValue: 'k1' }] });
  });

  it('steps in the wrong order, or wider apart than the window, do not fire', async () => {
    const wrongOrder = harness([credentialAdded, chain(steps)]);
    await wrongOrder.deliver(exchange('x1', 0, '203.0.113.66'), addCredential('c1', 5));
    expect(wrongOrder.alerts.filter((a) => a.detectionId === 'cred-then-new-ip')).toEqual([]);
    const tooSlow = harness([credentialAdded, chain(steps)]);
    await tooSlow.deliver(addCredential('c1', 0));
    await tooSlow.deliver(exchange('x1', 61, '203.0.113.66'));
    expect(tooSlow.alerts.filter((a) => a.detectionId === 'cred-then-new-ip')).toEqual([]);
  });

  it('a later step delivered before an earlier one still completes the chain (within lateness)', async () => {
    const h = harness([credentialAdded, chain(steps)]);
    await h.deliver(exchange('x1', 10, '203.0.113.66'));
    await h.deliver(addCredential('c1', 0));
    expect(h.alerts.filter((a) => a.detectionId === 'cred-then-new-ip')).toHaveLength(1);
  });

  it('newValue: an exchange from an IP already seen for the key is not the step', async () => {
    const h = harness([credentialAdded, chain(steps)]);
    await h.deliver(exchange('x0', -30, '203.0.113.66'));
    await h.deliver(addCredential('c1', 0), exchange('x1', 5, '203.0.113.66'));
    expect(h.alerts.filter((a) => a.detectionId === 'cred-then-new-ip')).toEqual([]);
  });

  it('join: the exchange must present the added key', async () => {
    const joined = chain([{ name: 'added', alerts: ['cred-added'] }, { name: 'used', condition: 't1', join: { 'credential.keyId': { step: 'added', field: 'audit.credentialsAdded.keyId' } } }]);
    const h = harness([credentialAdded, joined]);
    await h.deliver(addCredential('c1', 0, 'new-key'), exchange('x1', 5, '198.51.100.10', 'old-key'));
    expect(h.alerts.filter((a) => a.detectionId === 'cred-then-new-ip')).toEqual([]);
    await h.deliver(exchange('x2', 6, '198.51.100.10', 'NEW-KEY'));
    expect(h.alerts.filter((a) => a.detectionId === 'cred-then-new-ip')).toHaveLength(1);
  });

  it('cancel drops a partial sequence that began before it', async () => {
    const h = harness([credentialAdded, chain(steps, { cancel: 'rotated' })]);
    const rotated = event({ id: 'r1', at: 3, kind: 'audit', category: 'AuditLogs', blueprintAppId: BLUEPRINT, audit: { operation: 'Remove service principal credentials', targets: [], credentialsAdded: [], credentialsRemoved: [], ficIssuersAdded: [], ficSubjectsAdded: [], modifiedPropertyNames: [], permissionsGranted: [] } });
    await h.deliver(addCredential('c1', 0), rotated, exchange('x1', 5, '203.0.113.66'));
    expect(h.alerts.filter((a) => a.detectionId === 'cred-then-new-ip')).toEqual([]);
  });

  describe('output reading a step: steps.<name>.<path>', () => {
    const EVE = { type: 'user' as const, id: 'e5e00000-0000-4000-8000-000000000005', upn: 'eve@contoso.com', name: 'Eve' };
    const addedByEve = (id: string, at: number, keyId = 'k1') => ({ ...addCredential(id, at, keyId), actor: EVE, ip: '192.0.2.7' });
    const reporting = (extraSteps = steps) =>
      compileRule({
        id: 'cred-then-new-ip',
        selections: { t1: { flow: 't1Exchange', 'result.status': 'success' } },
        stateful: { type: 'sequence', groupBy: ['blueprintAppId'], window: '60m', steps: extraSteps },
        output: {
          title: 'added by {{steps.added.actor.name}}, used from {{ip}} (added from {{steps.added.ip}})',
          entities: [
            { type: 'user', id: 'steps.added.actor.upn', objectId: 'steps.added.actor.id', upn: 'steps.added.actor.upn' },
            { type: 'ip', id: 'steps.newIp.ip' },
          ],
          dedupKey: ['blueprintAppId'],
          details: { addedKeys: 'steps.added.audit.credentialsAdded.keyId', addedBy: 'steps.added.actor.upn', lastIp: 'ip' },
        },
      });

    it('names the fields of the event each step matched, in title, entities and details', async () => {
      const h = harness([credentialAdded, reporting()]);
      await h.deliver(addedByEve('c1', 0), exchange('x1', 5, '203.0.113.66'));
      const fired = h.alerts.find((a) => a.detectionId === 'cred-then-new-ip')!;
      expect(fired.title).toBe('added by Eve, used from 203.0.113.66 (added from 192.0.2.7)');
      expect(fired.entities).toEqual([
        { type: 'user', id: EVE.id, objectId: EVE.id, upn: EVE.upn },
        { type: 'ip', id: '203.0.113.66' },
      ]);
      // A list field stays a list; a scalar stays a scalar.
      expect(fired.details).toEqual({ addedKeys: ['k1'], addedBy: EVE.upn, lastIp: '203.0.113.66' });
    });

    it('the captured values live in the stored state: a restarted engine completes the chain with them', async () => {
      const store = new MemoryStateStore();
      await harness([credentialAdded, reporting()], new TestInventory(), store).deliver(addedByEve('c1', 0));
      const restarted = harness([credentialAdded, reporting()], new TestInventory(), store);
      await restarted.deliver(exchange('x1', 5, '203.0.113.66'));
      expect(restarted.alerts.find((a) => a.detectionId === 'cred-then-new-ip')!.title).toBe('added by Eve, used from 203.0.113.66 (added from 192.0.2.7)');
    });

    it('a step buffered before the rule read it (no captured values) still fires, its fields unknown', async () => {
      const store = new MemoryStateStore();
      await harness([credentialAdded, chain(steps)], new TestInventory(), store).deliver(addedByEve('c1', 0));
      const upgraded = harness([credentialAdded, reporting()], new TestInventory(), store);
      await upgraded.deliver(exchange('x1', 5, '203.0.113.66'));
      const fired = upgraded.alerts.find((a) => a.detectionId === 'cred-then-new-ip')!;
      expect(fired.title).toBe('added by <unknown>, used from 203.0.113.66 (added from <unknown>)');
      expect(fired.entities).toEqual([{ type: 'ip', id: '203.0.113.66' }]);
    });

    it('a path naming no step, a bad field, or a rule without a sequence is refused at load', () => {
      const withOutput = (stateful: unknown, entities: unknown[]) => () =>
        compileRule({ id: 'r', selections: { t1: { flow: 't1Exchange' } }, ...(stateful ? { stateful } : { condition: 't1' }), output: { title: 't', entities, dedupKey: [] } });
      const sequence = { type: 'sequence', groupBy: ['blueprintAppId'], window: '60m', steps: [{ name: 'first', condition: 't1' }, { name: 'second', condition: 't1' }] };
      expect(withOutput(sequence, [{ type: 'ip', id: 'steps.third.ip' }])).toThrow(/step name of first, second, got "steps\.third\.ip"/);
      expect(withOutput(sequence, [{ type: 'ip', id: 'steps.first.ipp' }])).toThrow(/unknown field "ipp".*did you mean "ip"/);
      expect(withOutput(undefined, [{ type: 'ip', id: 'steps.first.ip' }])).toThrow(/only a sequence rule's output can/);
    });
  });

  it('each first step anchors one alert; a redelivered batch raises nothing new', async () => {
    const h = harness([credentialAdded, chain(steps)]);
    const batch = [addCredential('c1', 0), exchange('x1', 5, '203.0.113.66')];
    await h.deliver(...batch);
    await h.deliver(...batch);
    await h.deliver(exchange('x2', 8, '203.0.113.67'));
    expect(h.alerts.map((a) => a.detectionId).sort()).toEqual(['cred-added', 'cred-then-new-ip']);
  });
});

describe('absence', () => {
  const rule = compileRule({
    id: 'disabled-but-used',
    selections: { disabled: { kind: 'audit', 'audit.operation': 'Disable account' }, used: { flow: 't2Autonomous' } },
    stateful: { type: 'absence', groupBy: ['agentIdentityId'], window: '30m', steps: [{ name: 'disabled', condition: 'disabled' }, { name: 'confirmed', condition: 'used' }] },
    output: { title: 'no sign-in after disabling {{agentIdentityId}}', entities: [{ type: 'agentIdentity', id: 'agentIdentityId' }], dedupKey: ['agentIdentityId'] },
  });
  const disable = (id: string, at: number) => event({ id, at, kind: 'audit', category: 'AuditLogs', agentIdentityId: AGENT, audit: { operation: 'Disable account', targets: [], credentialsAdded: [], credentialsRemoved: [], ficIssuersAdded: [], ficSubjectsAdded: [], modifiedPropertyNames: [], permissionsGranted: [] } });
  const unrelated = (id: string, at: number) => signIn(id, at, { agentIdentityId: OTHER_AGENT });

  it('fires once the watermark passes the window without the second step', async () => {
    const h = harness([rule]);
    await h.deliver(disable('d1', 0));
    await h.deliver(unrelated('u1', 40)); // watermark 40 − 15 = 25: not yet
    expect(h.alerts).toEqual([]);
    const [alert] = await h.deliver(unrelated('u2', 50)); // watermark 35 ≥ 30
    expect(alert).toMatchObject({ title: `no sign-in after disabling ${AGENT}`, evidence: ['d1'], firstEventTime: new Date(T0).toISOString() });
    await h.deliver(unrelated('u3', 90));
    expect(h.alerts).toHaveLength(1);
  });

  it('a whole timeline in one batch (a replayed file) fires in that batch', async () => {
    const h = harness([rule]);
    const [alert] = await h.deliver(disable('d1', 0), unrelated('u1', 50));
    expect(alert).toMatchObject({ detectionId: 'disabled-but-used', evidence: ['d1'] });
    await h.deliver(unrelated('u2', 90));
    expect(h.alerts).toHaveLength(1);
  });

  it('the second step within the window cancels it, even delivered first', async () => {
    const h = harness([rule]);
    await h.deliver(signIn('s1', 10));
    await h.deliver(disable('d1', 0));
    await h.deliver(unrelated('u1', 120));
    expect(h.alerts).toEqual([]);
  });

  it('a restarted engine fires the pending absence from the store', async () => {
    const store = new MemoryStateStore();
    await harness([rule], new TestInventory(), store).deliver(disable('d1', 0));
    const restarted = harness([rule], new TestInventory(), store);
    expect(await restarted.deliver(unrelated('u1', 60))).toHaveLength(1);
  });
});

describe('memories', () => {
  const USER = 'e5e00000-0000-4000-8000-000000000005';
  const riskyOboRule = (output: Record<string, unknown> = { title: 'risky user {{subject.id}}', entities: [{ type: 'user', id: 'subject.id' }], dedupKey: ['subject.id'], suppress: '24h' }) =>
    compileRule({
      id: 'risky-obo',
      selections: {
        obo: { flow: 't2OnBehalfOf' },
        raised: { category: 'RiskyUsers', 'risk.level|in': ['medium', 'high'] },
        cleared: { category: 'RiskyUsers', 'risk.state|in': ['remediated', 'dismissed'] },
        risky: { remembered: 'riskyUsers', key: ['subject.id'] },
      },
      condition: 'obo and risky',
      remember: { riskyUsers: { when: 'raised and not cleared', forget: 'cleared', key: ['subject.id'], ttl: '7d' } },
      output,
    });
  const rule = riskyOboRule();
  const risk = (id: string, at: number, level: string, state = 'atRisk') => event({ id, at, kind: 'riskyPrincipal', category: 'RiskyUsers', subject: { type: 'user', id: USER }, risk: { level, state: state.toLowerCase() } });
  const obo = (id: string, at: number) => signIn(id, at, { flow: 't2OnBehalfOf', subject: { type: 'user', id: USER } });

  it('a memory set earlier makes a later event match, and its setter is evidence', async () => {
    const h = harness([rule]);
    await h.deliver(risk('r1', 0, 'high'));
    const [alert] = await h.deliver(obo('o1', 30));
    expect(alert.evidence).toEqual(['o1', 'r1']);
  });

  it('a memory whose setting arrives later but carries an earlier time still fires the waiting event', async () => {
    const h = harness([rule]);
    expect(await h.deliver(obo('o1', 30))).toEqual([]);
    const [alert] = await h.deliver(risk('r1', 20, 'high'));
    expect(alert).toMatchObject({ detectionId: 'risky-obo', evidence: ['o1', 'r1'], lastEventTime: new Date(T0 + 30 * MINUTE).toISOString() });
  });

  it('a setting later in event time than the waiting event does not fire it', async () => {
    const h = harness([rule]);
    await h.deliver(obo('o1', 30));
    await h.deliver(risk('r1', 40, 'high'));
    expect(h.alerts).toEqual([]);
  });

  it('forget clears the memory for later events; ttl expires it', async () => {
    const h = harness([rule]);
    await h.deliver(risk('r1', 0, 'high'), risk('r2', 10, 'low', 'remediated'));
    await h.deliver(obo('o1', 30));
    expect(h.alerts).toEqual([]);
    const old = harness([rule]);
    await old.deliver(risk('r1', -8 * 24 * 60, 'high'));
    await old.deliver(obo('o1', 0));
    expect(old.alerts).toEqual([]);
  });

  it('an event never sees a memory it set itself: severity judged before its own update', async () => {
    const makerIps = compileRule({
      id: 'ip-seen',
      selections: { signin: { flow: 't2Autonomous' }, known: { remembered: 'ips', key: ['agentIdentityId', 'ip'] } },
      condition: 'signin',
      severityWhen: [{ if: 'not known', severity: 'high' }],
      remember: { ips: { when: 'signin', key: ['agentIdentityId', 'ip'], ttl: '90d' } },
      output: { title: 'sign-in', entities: [], dedupKey: ['agentIdentityId'] },
    });
    const h = harness([makerIps]);
    const [first] = await h.deliver(signIn('s1', 0));
    const [second] = await h.deliver(signIn('s2', 5));
    expect([first.severity, second.severity]).toEqual(['high', 'medium']);
  });

  describe('output reading a memory: memories.<name>.<path>', () => {
    const explainingWith = (details: Record<string, string>) =>
      riskyOboRule({ title: 'risky ({{memories.riskyUsers.risk.level}}) user {{subject.id}}', entities: [{ type: 'user', id: 'subject.id' }], dedupKey: ['subject.id'], details });
    const explaining = explainingWith({ rememberedLevel: 'memories.riskyUsers.risk.level', rememberedSince: 'memories.riskyUsers.time' });

    it('names what the setting event said, as of the event that fired', async () => {
      const h = harness([explaining]);
      await h.deliver(risk('r1', 0, 'medium'));
      const [alert] = await h.deliver(obo('o1', 30));
      expect(alert.title).toBe(`risky (medium) user ${USER}`);
      expect(alert.details).toEqual({ rememberedLevel: 'medium', rememberedSince: new Date(T0).toISOString() });
    });

    it('a later setting with other values replaces them at once; a repeat of the same values writes nothing', async () => {
      // (Reading a field every setting changes, such as `time`, makes every setting a write.)
      const store = new MemoryStateStore();
      const h = harness([explainingWith({ rememberedLevel: 'memories.riskyUsers.risk.level' })], new TestInventory(), store);
      await h.deliver(risk('r1', 0, 'medium'));
      const writes = () => store.stats.writes;
      const before = writes();
      await h.deliver(risk('r2', 5, 'medium'));
      expect(writes()).toBe(before);
      await h.deliver(risk('r3', 10, 'high'));
      expect(writes()).toBeGreaterThan(before);
      const [alert] = await h.deliver(obo('o1', 30));
      expect(alert.details).toMatchObject({ rememberedLevel: 'high' });
      expect(alert.evidence).toEqual(['o1', 'r3']);
    });

    it('the waiting event fired by a late setting names that setting', async () => {
      const h = harness([explaining]);
      await h.deliver(obo('o1', 30));
      const [alert] = await h.deliver(risk('r1', 20, 'high'));
      expect(alert.details).toMatchObject({ rememberedLevel: 'high' });
    });

    it('a memory set before the rule read its values (an older build) fires with the values unknown', async () => {
      const store = new MemoryStateStore();
      await harness([rule], new TestInventory(), store).deliver(risk('r1', 0, 'high'));
      const [alert] = await harness([explaining], new TestInventory(), store).deliver(obo('o1', 30));
      expect(alert.title).toBe(`risky (<unknown>) user ${USER}`);
      expect(alert.details).toBeUndefined();
    });

    it('a memory that is not remembered, not read by a selection, or a bad field is refused at load', () => {
      const withTitle = (title: string, selections: Record<string, unknown> = { obo: { flow: 't2OnBehalfOf' }, risky: { remembered: 'riskyUsers', key: ['subject.id'] } }) => () =>
        compileRule({ id: 'r', selections, condition: 'obo', remember: { riskyUsers: { when: 'obo', key: ['subject.id'], ttl: '7d' } }, output: { title, entities: [], dedupKey: [] } });
      expect(withTitle('{{memories.riskyUsers.risk.level}}')).not.toThrow();
      expect(withTitle('{{memories.ips.ip}}')).toThrow(/memories\.<memory name>\.<field path> naming a memory this rule remembers and reads with remembered: \(riskyUsers\), got "memories\.ips\.ip"/);
      expect(withTitle('{{memories.riskyUsers}}')).toThrow(/got "memories\.riskyUsers"/);
      expect(withTitle('{{memories.riskyUsers.risk.levl}}')).toThrow(/unknown field "risk\.levl".*did you mean "risk\.level"/);
      expect(withTitle('{{memories.riskyUsers.risk.level}}', { obo: { flow: 't2OnBehalfOf' } })).toThrow(/reads with remembered: \(none\)/);
    });
  });
});

describe('output and response', () => {
  it('dynamic severity from a field, techniques from the event, and conditional response actions', async () => {
    const rule = compileRule({
      id: 'agent-risk',
      severity: 'medium',
      techniques: ['T1078.004'],
      techniquesFromField: 'risk.mitreTechniques',
      severityWhen: [{ fromField: 'risk.level', map: { high: 'high' } }],
      selections: { risk: { category: 'AgentRiskEvents', 'risk.level|in': ['medium', 'high'] }, high: { 'risk.level': 'high' } },
      condition: 'risk',
      output: { title: 'risk {{risk.level}} on {{agentIdentityId}} ({{actor.upn}})', entities: [{ type: 'agentIdentity', id: 'agentIdentityId' }], dedupKey: ['agentIdentityId'] },
      response: { mode: 'approval', actions: [{ action: 'confirmCompromised', target: 'agentIdentityId' }, { action: 'disableAgentIdentity', target: 'agentIdentityId', if: 'high' }] },
    });
    const inventory = new TestInventory().add({ kind: 'agentIdentity', id: AGENT, appId: AGENT, name: 'invoice-agent', live: true });
    const h = harness([rule], inventory);
    const riskEvent = (id: string, level: string, techniques?: string[]) => event({ id, kind: 'risk', category: 'AgentRiskEvents', agentIdentityId: AGENT, risk: { level, ...(techniques ? { mitreTechniques: techniques } : {}) } });
    const result = await h.engine.evaluateBatch([riskEvent('r1', 'high', ['T1078']), riskEvent('r2', 'medium')], inventory);
    const [high, medium] = [...result.alerts].sort((a, b) => a.evidence[0].localeCompare(b.evidence[0]));
    expect(high).toMatchObject({ severity: 'high', techniques: ['T1078'], title: `risk high on ${AGENT} (<unknown>)`, entities: [{ type: 'agentIdentity', id: AGENT, name: 'invoice-agent' }] });
    expect(medium).toMatchObject({ severity: 'medium', techniques: ['T1078.004'] });
    expect(result.responsePlans.get(high.id)!.actions.map((a) => a.action)).toEqual(['confirmCompromised', 'disableAgentIdentity']);
    expect(result.responsePlans.get(medium.id)).toEqual({ mode: 'approval', actions: [{ action: 'confirmCompromised', target: 'agentIdentityId', targetValue: AGENT }] });
  });
});

describe('delivery acknowledgement', () => {
  const burst = (prefix: string, start: number) => [0, 1, 2].map((i) => failure(`${prefix}${i}`, start + i));

  it('an alert raised but never acknowledged (crash before send) is re-emitted, same id, by a restarted engine', async () => {
    const store = new MemoryStateStore();
    const inventory = new TestInventory();
    const first = createEngine({ detections: [thresholdRule()], state: store });
    const delivered = await first.evaluate(burst('b', 20), inventory);
    await first.acknowledge(delivered);
    const lost = await first.evaluate(burst('c', 40), inventory); // the process dies before the sink sees these
    expect(lost).toHaveLength(1);

    const restarted = createEngine({ detections: [thresholdRule()], state: store });
    const again = await restarted.evaluate(burst('c', 40), inventory);
    expect(again.map((a) => a.id)).toEqual(lost.map((a) => a.id));
    expect(again[0]).toEqual(lost[0]);
    expect(restarted.stats().alertsReemitted).toBe(1);
    await restarted.acknowledge(again);
    expect(await restarted.evaluate(burst('c', 40), inventory)).toEqual([]);
    expect(await restarted.evaluate(burst('b', 20), inventory)).toEqual([]);
  });

  it('a pipeline that never acknowledges gets nothing twice on redelivery', async () => {
    const h = harness([thresholdRule(), compileRule({ id: 'each-failure', selections: { f: { 'result.status': 'failure' } }, condition: 'f', output: { title: 'f', entities: [], dedupKey: ['id'] } })]);
    expect(await h.deliver(...burst('a', 0))).toHaveLength(4);
    expect(await h.deliver(...burst('a', 0))).toEqual([]);
    expect(h.engine.stats()).toMatchObject({ alertsFolded: 3, alertsReemitted: 0, duplicates: 3 });
  });

  it('an unacknowledged stateless alert is re-emitted too, and only until acknowledged', async () => {
    const store = new MemoryStateStore();
    const inventory = new TestInventory();
    const rule = compileRule({ id: 'each-failure', selections: { f: { 'result.status': 'failure' } }, condition: 'f', output: { title: 'f', entities: [], dedupKey: ['agentIdentityId'], suppress: '1h' } });
    const first = createEngine({ detections: [rule], state: store });
    await first.acknowledge(await first.evaluate([failure('x1', 0)], inventory));
    const lost = await first.evaluate([failure('x2', 70)], inventory);
    const restarted = createEngine({ detections: [rule], state: store });
    expect((await restarted.evaluate([failure('x2', 70)], inventory)).map((a) => a.id)).toEqual(lost.map((a) => a.id));
    await restarted.acknowledge(lost);
    expect(await restarted.evaluate([failure('x2', 70), failure('x3', 71)], inventory)).toEqual([]);
  });
});
