/**
 * Alert entities (src/engine/output.ts): every id known for the object (DETECTIONS.md "Entities in
 * alerts"), accounts named by object id whenever one is known so every detection names a person
 * alike, and Sentinel's Account mapping (infra/sentinel/agentwatch-alerts.kql reads `objectId`)
 * never receives a UPN.
 */
import { describe, expect, it } from 'vitest';
import type { AlertEntity } from '../../src/alerts/types';
import { createEngine } from '../../src/engine';
import type { AgentEvent } from '../../src/normalize/types';
import { MemoryStateStore } from '../../src/state/memoryStore';
import { AGENT, BLUEPRINT, TestInventory, compileRule, event } from '../fixtures/rules/engineTestKit';

const EVE_ID = 'e5e00000-0000-4000-8000-000000000005';
const EVE_UPN = 'eve.contractor@northwind.example';
const BLUEPRINT_PRINCIPAL = 'b1a00000-0000-4000-8000-000000000201';

/** A stateless rule on audits with the given entity mappings; returns the entities of its one alert. */
async function entitiesFor(entities: Record<string, string>[], audit: Partial<AgentEvent>, inventory = new TestInventory()): Promise<AlertEntity[]> {
  const rule = compileRule({
    id: 'credential-added',
    selections: { audit: { kind: 'audit' } },
    condition: 'audit',
    output: { title: 't', entities, dedupKey: ['blueprintAppId'] },
  });
  const engine = createEngine({ detections: [rule], state: new MemoryStateStore() });
  const alerts = await engine.evaluate([event({ id: 'a1', kind: 'audit', category: 'AuditLogs', blueprintAppId: BLUEPRINT, ...audit })], inventory);
  expect(alerts).toHaveLength(1);
  return alerts[0]!.entities;
}

const USER_BY_UPN = { type: 'user', id: 'actor.upn', objectId: 'actor.id', upn: 'actor.upn', name: 'actor.name' };

describe('account entities', () => {
  it('a user mapped by UPN is named by its object id when the record carries one, and keeps both', async () => {
    const entities = await entitiesFor([USER_BY_UPN], { actor: { type: 'user', id: EVE_ID, upn: EVE_UPN, name: 'Eve Contractor' } });
    expect(entities).toEqual([{ type: 'user', id: EVE_ID, objectId: EVE_ID, upn: EVE_UPN, name: 'Eve Contractor' }]);
  });

  it('a user mapped by object id gains objectId and the UPN', async () => {
    const entities = await entitiesFor([{ type: 'user', id: 'actor.id', upn: 'actor.upn' }], { actor: { type: 'user', id: EVE_ID, upn: EVE_UPN } });
    expect(entities).toEqual([{ type: 'user', id: EVE_ID, objectId: EVE_ID, upn: EVE_UPN }]);
  });

  it('a user known only by UPN keeps the UPN as its id, and has no objectId for Sentinel to take for one', async () => {
    const entities = await entitiesFor([USER_BY_UPN], { actor: { type: 'user', upn: EVE_UPN } });
    expect(entities).toEqual([{ type: 'user', id: EVE_UPN, upn: EVE_UPN }]);
  });

  it('one person named by UPN in one mapping and by object id in another is one entity', async () => {
    const entities = await entitiesFor([USER_BY_UPN, { type: 'user', id: 'subject.id' }], {
      actor: { type: 'user', id: EVE_ID, upn: EVE_UPN },
      subject: { type: 'user', id: EVE_ID },
    });
    expect(entities.filter((entity) => entity.type === 'user')).toHaveLength(1);
  });

  it('an agent user gets its UPN from the inventory and is named by its object id', async () => {
    const agentUser = 'a0c00000-0000-4000-8000-000000000011';
    const inventory = new TestInventory().add({ kind: 'agentUser', id: agentUser, upn: 'invoice-agent@northwind.example', live: true });
    const entities = await entitiesFor([{ type: 'agentUser', id: 'subject.id' }], { subject: { type: 'agentUser', id: agentUser } }, inventory);
    expect(entities).toEqual([{ type: 'agentUser', id: agentUser, objectId: agentUser, upn: 'invoice-agent@northwind.example' }]);
  });
});

describe('blueprint entities', () => {
  const BLUEPRINT_ENTITY = { type: 'blueprint', id: 'blueprintAppId' };

  it('carry the blueprint principal object id and the application object id the inventory knows', async () => {
    const inventory = new TestInventory()
      .add({ kind: 'blueprint', id: 'b1a00000-0000-4000-8000-000000000101', appId: BLUEPRINT, name: 'Finance Agents Blueprint', live: true })
      .add({ kind: 'blueprintPrincipal', id: BLUEPRINT_PRINCIPAL, appId: BLUEPRINT, parentId: BLUEPRINT, live: true });
    const entities = await entitiesFor([BLUEPRINT_ENTITY], {}, inventory);
    expect(entities).toEqual([{ type: 'blueprint', id: BLUEPRINT, objectId: 'b1a00000-0000-4000-8000-000000000101', principalId: BLUEPRINT_PRINCIPAL, name: 'Finance Agents Blueprint' }]);
  });

  it('a principal id mapped from the record wins over the inventory; none known, none invented', async () => {
    const inventory = new TestInventory().add({ kind: 'blueprintPrincipal', id: BLUEPRINT_PRINCIPAL, appId: BLUEPRINT, live: true });
    const fromRecord = 'b1a00000-0000-4000-8000-0000000002ff';
    expect(await entitiesFor([{ ...BLUEPRINT_ENTITY, principalId: 'actor.id' }], { actor: { type: 'blueprintPrincipal', id: fromRecord } }, inventory)).toEqual([
      { type: 'blueprint', id: BLUEPRINT, principalId: fromRecord },
    ]);
    expect(await entitiesFor([BLUEPRINT_ENTITY], {})).toEqual([{ type: 'blueprint', id: BLUEPRINT }]);
  });
});

describe('titles', () => {
  async function titleOf(title: string, inventory = new TestInventory()): Promise<string> {
    const rule = compileRule({ id: 'chain', selections: { audit: { kind: 'audit' } }, condition: 'audit', output: { title, entities: [], dedupKey: [] } });
    const engine = createEngine({ detections: [rule], state: new MemoryStateStore() });
    const [alert] = await engine.evaluate([event({ id: 'a1', kind: 'audit', category: 'AuditLogs', blueprintAppId: BLUEPRINT, agentIdentityId: AGENT })], inventory);
    return alert!.title;
  }

  it('@name gives the inventory display name; `a ?? b` falls back to b when a has no value', async () => {
    const inventory = new TestInventory().add({ kind: 'blueprint', appId: BLUEPRINT, name: 'Finance Agents Blueprint', live: true });
    const template = 'chain on {{blueprintAppId@name ?? blueprintAppId}} via {{agentIdentityId@name ?? agentIdentityId}}';
    expect(await titleOf(template, inventory)).toBe(`chain on Finance Agents Blueprint via ${AGENT}`);
    expect(await titleOf('{{agentIdentityId@name}}', inventory)).toBe('<unknown>');
    expect(await titleOf('{{ip ?? agentUserId}}')).toBe('<unknown>');
  });

  it('an unknown path inside `??` is refused at load', () => {
    expect(() => compileRule({ id: 'bad', selections: { audit: { kind: 'audit' } }, condition: 'audit', output: { title: '{{blueprintAppId@name ?? nope.field}}', entities: [], dedupKey: [] } })).toThrow(/nope\.field/);
  });
});
