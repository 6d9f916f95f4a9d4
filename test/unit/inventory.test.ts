import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors';
import { Inventory, INVENTORY_PARTITION, observeAndResolve, parseInventorySeed, seedInventory } from '../../src/inventory';
import { normalizeRecord, type AgentEvent } from '../../src/normalize';
import { MemoryStateStore } from '../../src/state/memoryStore';
import { loadRecord, type RawRecord } from '../fixtures/records/load';

const BLUEPRINT_APP = 'dddddddd-1111-2222-3333-444444444444';
const BLUEPRINT_OBJECT = 'd0d0d0d0-1111-2222-3333-444444444444';
const BLUEPRINT_PRINCIPAL = 'd1d1d1d1-1111-2222-3333-444444444444';
const AGENT = 'aaaaaaaa-1111-2222-3333-444444444444';
const AGENT_USER = '77777777-1111-2222-3333-444444444444';
const PVA = '9d8f559b-5984-46a4-902a-ad4271e83efa';

function ev(name: string, patch?: (record: RawRecord) => void): AgentEvent {
  const record = loadRecord(name);
  patch?.(record);
  return normalizeRecord(record)!;
}

function learn(inventory: Inventory, ...events: AgentEvent[]): AgentEvent[] {
  observeAndResolve(inventory, events);
  return events;
}

/** An audit whose first target gets another id / activity (for creation, deletion and owner cases). */
function auditWith(name: string, activity: string, targetPatch: Record<string, unknown> = {}, when?: string): AgentEvent {
  return ev(name, (r) => {
    r.properties.activityDisplayName = activity;
    if (when) r.properties.activityDateTime = when;
    Object.assign((r.properties.targetResources as Record<string, unknown>[])[0]!, targetPatch);
  });
}

describe('learning agent entities from the stream', () => {
  it('blueprint from Add application (agentType + AppId), agent identity from Add service principal, principal from T1', () => {
    const inventory = new Inventory();
    learn(inventory, ev('audit-add-blueprint'), ev('audit-add-agent-identity'), ev('t1-exchange'));
    expect(inventory.lookup(BLUEPRINT_APP)).toMatchObject({ kind: 'blueprint', id: BLUEPRINT_OBJECT, appId: BLUEPRINT_APP, name: 'invoice-blueprint', live: true });
    // Created by a user, so no creating app id.
    expect(inventory.lookup(BLUEPRINT_APP)).not.toHaveProperty('createdByAppId');
    expect(inventory.lookup(BLUEPRINT_OBJECT)!.kind).toBe('blueprint');
    expect(inventory.lookup(AGENT)).toMatchObject({ kind: 'agentIdentity', parentId: BLUEPRINT_APP, createdByAppId: BLUEPRINT_APP });
    expect(inventory.lookup(BLUEPRINT_PRINCIPAL)).toMatchObject({ kind: 'blueprintPrincipal', appId: BLUEPRINT_APP, parentId: BLUEPRINT_APP });
    expect(inventory.children(BLUEPRINT_APP).map((c) => c.id)).toEqual([AGENT]);
    expect(inventory.children(BLUEPRINT_OBJECT).map((c) => c.id)).toEqual([AGENT]);
    // A blueprint's principal, by the blueprint's app id or application object id (alert entities carry its id).
    expect(inventory.blueprintPrincipal(BLUEPRINT_APP)?.id).toBe(BLUEPRINT_PRINCIPAL);
    expect(inventory.blueprintPrincipal(BLUEPRINT_OBJECT.toUpperCase())?.id).toBe(BLUEPRINT_PRINCIPAL);
    expect(inventory.blueprintPrincipal(AGENT)).toBeUndefined();
  });

  it('blueprints and agent identities named by sign-ins alone (parentAppId, agentType), and the agent user with its parent', () => {
    const inventory = new Inventory();
    learn(inventory, ev('t2-autonomous'), ev('agent-user'));
    expect(inventory.lookup(BLUEPRINT_APP)).toMatchObject({ kind: 'blueprint', appId: BLUEPRINT_APP });
    expect(inventory.lookup(AGENT)).toMatchObject({ kind: 'agentIdentity', parentId: BLUEPRINT_APP, name: 'invoice-agent-07' });
    expect(inventory.lookup(AGENT_USER)).toMatchObject({ kind: 'agentUser', parentId: AGENT, upn: 'invoice-agent-07@contoso.com' });
    expect(inventory.children(AGENT).map((c) => c.id)).toEqual([AGENT_USER]);
  });

  it('a service principal created by a known blueprint is an agent identity; one carrying the blueprint app id is its principal', () => {
    const inventory = new Inventory();
    const createdByBlueprint = ev('audit-add-agent-identity', (r) => {
      const target = (r.properties.targetResources as Record<string, unknown>[])[0]!;
      target.modifiedProperties = [];
    });
    const principalCreated = auditWith('audit-add-agent-identity', 'Add service principal', {
      id: BLUEPRINT_PRINCIPAL,
      modifiedProperties: [{ displayName: 'TargetId.ServicePrincipalNames', oldValue: null, newValue: `"${BLUEPRINT_APP}"` }],
    });
    learn(inventory, ev('audit-add-blueprint'), principalCreated, createdByBlueprint);
    expect(inventory.lookup(BLUEPRINT_PRINCIPAL)!.kind).toBe('blueprintPrincipal');
    expect(inventory.lookup(AGENT)).toMatchObject({ kind: 'agentIdentity', parentId: BLUEPRINT_APP });
  });

  it('classic Copilot Studio agents: apps and service principals created by Power Virtual Agents Service', () => {
    const inventory = new Inventory();
    const byPva = (name: string, activity: string, targetId: string, appId: string): AgentEvent =>
      ev(name, (r) => {
        r.properties.activityDisplayName = activity;
        r.properties.initiatedBy = { app: { appId: PVA, displayName: 'Power Virtual Agents Service', servicePrincipalId: 'f0f0f0f0-1111-2222-3333-444444444444' } };
        const target = (r.properties.targetResources as Record<string, unknown>[])[0]!;
        delete target.agentType;
        target.id = targetId;
        target.modifiedProperties = [{ displayName: 'AppId', oldValue: null, newValue: JSON.stringify([appId]) }];
      });
    learn(inventory, byPva('audit-add-blueprint', 'Add application', 'c1a55100-1111-2222-3333-444444444444', 'c1a55101-1111-2222-3333-444444444444'));
    learn(inventory, byPva('audit-add-agent-identity', 'Add service principal', 'c1a55102-1111-2222-3333-444444444444', 'c1a55101-1111-2222-3333-444444444444'));
    expect(inventory.lookup('c1a55100-1111-2222-3333-444444444444')).toMatchObject({ kind: 'classicAgent', createdByAppId: PVA });
    expect(inventory.lookup('c1a55102-1111-2222-3333-444444444444')).toMatchObject({ kind: 'classicAgent', appId: 'c1a55101-1111-2222-3333-444444444444' });
    // An ordinary app made by an admin is not an agent at all.
    learn(inventory, auditWith('audit-add-blueprint', 'Add application', { agentType: undefined, id: 'a0000000-1111-2222-3333-444444444444', modifiedProperties: [] }));
    expect(inventory.lookup('a0000000-1111-2222-3333-444444444444')).toBeUndefined();
  });

  it('AgentsInfo rows, agent risk events and risky agents add agent identities', () => {
    const inventory = new Inventory();
    learn(inventory, ev('agents-info'), ev('agent-risk-event'));
    expect(inventory.lookup('c5c5c5c5-1111-2222-3333-444444444444')).toMatchObject({ kind: 'agentIdentity', parentId: '25664c89-cea5-4ab6-b924-a54fd8a19ae0', owners: ['bob@contoso.com', 'carol@contoso.com'] });
    expect(inventory.lookup(AGENT)!.kind).toBe('agentIdentity');
  });

  it('failed audits teach nothing', () => {
    const inventory = new Inventory();
    learn(inventory, ev('audit-add-agent-identity', (r) => (r.properties.result = 'failure')));
    expect(inventory.lookup(AGENT)).toBeUndefined();
  });
});

describe('live flag and event time', () => {
  it('deletes, hard deletes and restores; a blueprint deletion leaves its agent identities live', () => {
    const inventory = new Inventory();
    learn(inventory, ev('audit-add-blueprint'), ev('audit-add-agent-identity'), ev('audit-delete-blueprint'));
    expect(inventory.lookup(BLUEPRINT_APP)!.live).toBe(false);
    expect(inventory.children(BLUEPRINT_APP).map((c) => c.id)).toEqual([AGENT]);
    learn(inventory, auditWith('audit-add-agent-identity', 'Delete service principal', {}, '2026-10-06T08:00:00Z'));
    expect(inventory.lookup(AGENT)!.live).toBe(false);
    expect(inventory.children(BLUEPRINT_APP)).toEqual([]);
    learn(inventory, auditWith('audit-add-agent-identity', 'Restore service principal', {}, '2026-10-06T09:00:00Z'));
    expect(inventory.lookup(AGENT)!.live).toBe(true);
  });

  it('an older creation delivered after a newer deletion does not bring the object back', () => {
    const inventory = new Inventory();
    learn(inventory, ev('audit-delete-blueprint'));
    expect(inventory.lookup(BLUEPRINT_APP)).toBeUndefined();
    learn(inventory, ev('audit-add-blueprint'), ev('audit-delete-blueprint'));
    expect(inventory.lookup(BLUEPRINT_APP)!.live).toBe(false);
    learn(inventory, ev('audit-add-blueprint'));
    expect(inventory.lookup(BLUEPRINT_APP)!.live).toBe(false);
  });

  it('first seen is the earliest event time in any role, whatever the delivery order', () => {
    const inventory = new Inventory();
    learn(inventory, ev('t2-autonomous'));
    expect(inventory.firstSeen(AGENT)).toBe(Date.parse('2026-10-05T10:15:58.441Z'));
    learn(inventory, ev('audit-add-agent-identity'));
    expect(inventory.firstSeen(AGENT)).toBe(Date.parse('2026-10-01T08:05:09.900Z'));
    expect(inventory.lookup(AGENT)!.firstSeenMs).toBe(Date.parse('2026-10-01T08:05:09.900Z'));
    // The blueprint's app id appears as the initiator of that audit and in the T2 sign-in's parentAppId.
    expect(inventory.firstSeen(BLUEPRINT_APP)).toBe(Date.parse('2026-10-01T08:05:09.900Z'));
    expect(inventory.firstSeen('12345678-0000-0000-0000-000000000000')).toBeUndefined();
  });
});

describe('resolving events from the inventory', () => {
  it('a grant to a service principal known as an agent identity: grantee typed, blueprint and agent ids filled', () => {
    const inventory = new Inventory();
    const [, , grant] = learn(inventory, ev('audit-add-blueprint'), ev('audit-add-agent-identity'), ev('audit-delegated-grant'));
    expect(grant!.audit!.grantee).toMatchObject({ type: 'agentIdentity', id: AGENT, name: 'invoice-agent-07' });
    expect(grant!.subject!.type).toBe('agentIdentity');
    expect(grant!.agentIdentityId).toBe(AGENT);
    expect(grant!.blueprintAppId).toBe(BLUEPRINT_APP);
    // The resource of the grant (Microsoft Graph) is not an agent and stays as sent.
    expect(grant!.audit!.targets[0]!.type).toBe('servicePrincipal');
    expect(grant!.audit!.targets[1]!.type).toBe('agentIdentity');
  });

  it('observe-then-resolve in event order: a grant before the creation is not resolved by it', () => {
    const inventory = new Inventory();
    const [grant] = learn(inventory, ev('audit-delegated-grant'), ev('audit-add-agent-identity'));
    expect(grant!.audit!.grantee!.type).toBe('servicePrincipal');
    expect(grant!.agentIdentityId).toBeUndefined();
  });

  it('an audit on the blueprint application: target typed blueprint; its principal as an SP target is a blueprintPrincipal', () => {
    const inventory = new Inventory();
    learn(inventory, ev('audit-add-blueprint'), ev('t1-exchange'));
    const [credential] = learn(inventory, ev('audit-blueprint-credential-added', (r) => delete (r.properties.targetResources as Record<string, unknown>[])[0]!.agentType));
    expect(credential!.audit!.targets[0]!.type).toBe('blueprint');
    expect(credential!.blueprintAppId).toBe(BLUEPRINT_APP);
    const [spCredential] = learn(inventory, auditWith('audit-blueprint-credential-added', 'Add service principal credentials', { id: BLUEPRINT_PRINCIPAL, type: 'ServicePrincipal', modifiedProperties: [{ displayName: 'TargetId.ServicePrincipalNames', oldValue: null, newValue: `"${BLUEPRINT_APP}"` }] }));
    expect(spCredential!.audit!.targets[0]!.type).toBe('blueprintPrincipal');
    expect(spCredential!.blueprintAppId).toBe(BLUEPRINT_APP);
  });

  it('role membership of a known agent user: grantee agentUser, agent and blueprint ids from its parents', () => {
    const inventory = new Inventory();
    learn(inventory, ev('t2-autonomous'), ev('agent-user'));
    const [role] = learn(inventory, ev('audit-add-member-to-role'));
    expect(role!.audit!.grantee!.type).toBe('agentUser');
    expect(role).toMatchObject({ agentUserId: AGENT_USER, agentIdentityId: AGENT, blueprintAppId: BLUEPRINT_APP });
  });

  it('an AgentRiskEvents record without blueprint gets it from the known agent', () => {
    const inventory = new Inventory();
    const [, risk] = learn(inventory, ev('t2-autonomous'), ev('agent-risk-event'));
    expect(risk!.blueprintAppId).toBe(BLUEPRINT_APP);
  });
});

describe('owners and first-party checks', () => {
  const ownerAdded = (objectId: string): AgentEvent =>
    ev('audit-add-blueprint', (r) => {
      r.properties.activityDisplayName = 'Add owner to application';
      r.properties.targetResources = [
        { id: 'b0b00000-1111-2222-3333-444444444444', type: 'User', userPrincipalName: 'Bob@Contoso.com', modifiedProperties: [{ displayName: 'Application.ObjectID', oldValue: null, newValue: `"${objectId}"` }] },
        { id: objectId, type: 'Application', displayName: 'invoice-blueprint', modifiedProperties: [] },
      ];
    });

  it('Add owner to application records the owner on the blueprint, also when the owner came first', () => {
    const early = new Inventory();
    learn(early, ownerAdded(BLUEPRINT_OBJECT), ev('audit-add-blueprint'));
    expect(early.lookup(BLUEPRINT_APP)!.owners).toEqual(['bob@contoso.com', 'b0b00000-1111-2222-3333-444444444444']);
    const removal = ownerAdded(BLUEPRINT_OBJECT);
    removal.audit!.operation = 'Remove owner from application';
    learn(early, removal);
    expect(early.lookup(BLUEPRINT_APP)!.owners).toEqual([]);
  });

  it('a blueprint known only by app id (from its sign-ins) gets its owners and object id from Add owner to application', () => {
    const inventory = new Inventory();
    learn(inventory, ev('t2-autonomous'));
    expect(inventory.lookup(BLUEPRINT_APP)).not.toHaveProperty('id');
    const added = ownerAdded(BLUEPRINT_OBJECT);
    added.audit!.targets[0]!.modifiedProperties.push({ name: 'Application.AppId', oldValue: undefined, newValue: BLUEPRINT_APP.toUpperCase() });
    learn(inventory, added);
    expect(inventory.lookup(BLUEPRINT_APP)).toMatchObject({ kind: 'blueprint', id: BLUEPRINT_OBJECT, owners: ['bob@contoso.com', 'b0b00000-1111-2222-3333-444444444444'] });
    // Without the app id the owners wait for the object id to become known, as before.
    const unlinked = new Inventory();
    learn(unlinked, ev('t2-autonomous'), ownerAdded(BLUEPRINT_OBJECT));
    expect(unlinked.lookup(BLUEPRINT_APP)!.owners).toBeUndefined();
  });

  it('first party: shipped ids, Microsoft owner tenants from sign-ins or entities, configured ids', () => {
    const inventory = new Inventory({ firstPartyAppIds: ['ABCDEF00-1111-2222-3333-444444444444'] });
    expect(inventory.isFirstParty({ appId: '00000003-0000-0000-c000-000000000000' })).toBe(true);
    expect(inventory.isFirstParty({ appId: PVA })).toBe(true);
    expect(inventory.isFirstParty({ appId: 'abcdef00-1111-2222-3333-444444444444' })).toBe(true);
    expect(inventory.isFirstParty({ ownerTenantId: 'F8CDEF31-A31E-4B4A-93E4-5F571E91255A' })).toBe(true);
    expect(inventory.isFirstParty({ appId: BLUEPRINT_APP })).toBe(false);
    learn(inventory, ev('t2-autonomous', (r) => (r.properties.appOwnerTenantId = '72f988bf-86f1-41af-91ab-2d7cd011db47')));
    expect(inventory.isFirstParty({ appId: AGENT })).toBe(true);
    expect(inventory.isFirstParty({})).toBe(false);
  });
});

describe('the --inventory seed', () => {
  it('accepts an array or an object, seeds entities that resolve later events, and a stream deletion wins', () => {
    const seed = parseInventorySeed({
      entities: [
        { kind: 'blueprint', appId: BLUEPRINT_APP, id: BLUEPRINT_OBJECT, name: 'invoice-blueprint', owners: ['admin@contoso.com'], firstSeen: '2026-09-01T00:00:00Z' },
        { kind: 'agentIdentity', id: AGENT, appId: AGENT, parentId: BLUEPRINT_APP },
      ],
      firstPartyAppIds: ['11110000-1111-2222-3333-444444444444'],
    });
    expect(parseInventorySeed([{ kind: 'agentUser', id: AGENT_USER, parentId: AGENT }]).entities).toHaveLength(1);
    const inventory = new Inventory({ firstPartyAppIds: seed.firstPartyAppIds });
    seedInventory(inventory, seed.entities);
    expect(inventory.firstSeen(BLUEPRINT_APP)).toBe(Date.parse('2026-09-01T00:00:00Z'));
    expect(inventory.isFirstParty({ appId: '11110000-1111-2222-3333-444444444444' })).toBe(true);
    const [grant] = learn(inventory, ev('audit-delegated-grant'));
    expect(grant).toMatchObject({ agentIdentityId: AGENT, blueprintAppId: BLUEPRINT_APP });
    learn(inventory, ev('audit-delete-blueprint'));
    expect(inventory.lookup(BLUEPRINT_APP)!.live).toBe(false);
  });

  it('refuses a malformed seed with every problem located', () => {
    const attempt = (document: unknown) => {
      try {
        parseInventorySeed(document, 'agents.json');
        return undefined;
      } catch (error) {
        return error;
      }
    };
    const error = attempt({ entities: [{ kind: 'robot', id: 'x' }, { kind: 'blueprint' }, { kind: 'agentIdentity', id: AGENT, live: 'yes' }] });
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
    const paths = (error as ConfigError).problems.map((p) => p.path);
    expect(paths).toEqual(expect.arrayContaining(['/entities/0/kind', '/entities/1', '/entities/2/live']));
    expect((error as ConfigError).problems.every((p) => p.file === 'agents.json')).toBe(true);
    expect(attempt('nope')).toMatchObject({ code: 'CONFIG_INVALID' });
  });
});

describe('persistence through the StateStore port', () => {
  it('writes changed entities at flush, and a new instance on the same store loads them', async () => {
    const store = new MemoryStateStore();
    const first = new Inventory({ state: store });
    await first.load();
    learn(first, ev('audit-add-blueprint'), ev('audit-add-agent-identity'));
    expect(await first.flush()).toBe(2);
    expect(await first.flush()).toBe(0);
    const rows = await store.list(INVENTORY_PARTITION);
    expect(rows.map((r) => r.key.row).sort()).toEqual([`agentIdentity:${AGENT}`, `blueprint:${BLUEPRINT_APP}`]);

    const second = new Inventory({ state: store });
    expect(await second.load()).toBe(2);
    expect(second.lookup(AGENT)).toMatchObject({ kind: 'agentIdentity', parentId: BLUEPRINT_APP });
    expect(second.children(BLUEPRINT_APP)).toHaveLength(1);
    expect(second.firstSeen(AGENT)).toBe(Date.parse('2026-10-01T08:05:09.900Z'));
  });

  it('two instances changing one entity converge: owners merged, the newer deletion kept', async () => {
    const store = new MemoryStateStore();
    const a = new Inventory({ state: store });
    const b = new Inventory({ state: store });
    await a.load();
    await b.load();
    learn(a, ev('audit-add-blueprint'));
    learn(b, ev('audit-add-blueprint'));
    await a.flush();
    a.noteOwners(BLUEPRINT_OBJECT, ['alice@contoso.com']);
    b.noteOwners(BLUEPRINT_OBJECT, ['bob@contoso.com']);
    learn(b, ev('audit-delete-blueprint'));
    await a.flush();
    // b wrote nothing yet: its create-only write now conflicts with a's row, is merged and retried.
    await b.flush();
    const row = await store.get<{ owners: string[]; live: boolean }>({ partition: INVENTORY_PARTITION, row: `blueprint:${BLUEPRINT_APP}` });
    expect(row!.value.owners.sort()).toEqual(['alice@contoso.com', 'bob@contoso.com']);
    expect(row!.value.live).toBe(false);
    const fresh = new Inventory({ state: store });
    await fresh.load();
    expect(fresh.lookup(BLUEPRINT_APP)).toMatchObject({ live: false });
  });

  it('refreshIfStale re-reads what other instances wrote once the interval passed', async () => {
    let now = 0;
    const store = new MemoryStateStore();
    const reader = new Inventory({ state: store, refreshIntervalMs: 60_000, now: () => now });
    await reader.load();
    const writer = new Inventory({ state: store });
    learn(writer, ev('audit-add-agent-identity'));
    await writer.flush();
    await reader.refreshIfStale();
    expect(reader.lookup(AGENT)).toBeUndefined();
    now = 61_000;
    await reader.refreshIfStale();
    expect(reader.lookup(AGENT)!.kind).toBe('agentIdentity');
  });
});
