/**
 * Match operators, table-driven: each operator on present values, on case and dash variants, on
 * numbers sent as strings, on arrays (any / all), and on a missing field — where every operator is
 * false except `exists: false`, so `not selection` is true for a missing field.
 */
import { describe, expect, it } from 'vitest';
import { compileRule, event, selectionHolds, TestInventory, AGENT, BLUEPRINT } from '../fixtures/rules/engineTestKit';
import type { AgentEvent } from '../../src/normalize/types';
import fc from 'fast-check';
import { OPERATOR_FACTORIES, type MatchOperator, type RuleScalar } from '../../src/engine/operators';

const audit = (operation: string, extra: Partial<NonNullable<AgentEvent['audit']>> = {}) =>
  event({
    id: 'e1',
    kind: 'audit',
    category: 'AuditLogs',
    ip: '203.0.113.7',
    result: { status: 'success', code: '0' },
    audit: { operation, targets: [], credentialsAdded: [], credentialsRemoved: [], ficIssuersAdded: [], ficSubjectsAdded: [], modifiedPropertyNames: [], permissionsGranted: ['Mail.Read', 'User.Read'], ...extra },
    graph: { statusCode: '404' as unknown as number, scopes: [], roles: [] },
  });
const bare = event({ id: 'e0' }); // no audit, no ip, no result, no graph

const cases: [string, Record<string, unknown>, AgentEvent, boolean][] = [
  // equals (default) and in
  ['equals: exact', { 'audit.operation': 'Add application' }, audit('Add application'), true],
  ['equals: case-insensitive', { 'audit.operation': 'add APPLICATION' }, audit('Add application'), true],
  ['equals: en dash and spaces fold', { 'audit.operation': 'Update application - Certificates and secrets management' }, audit('Update application \u2013  Certificates and secrets management '), true],
  ['equals: different value', { 'audit.operation': 'Add user' }, audit('Add application'), false],
  ['equals: missing field', { 'audit.operation': 'Add application' }, bare, false],
  ['equals: list value means any', { 'audit.operation': ['Add user', 'Add application'] }, audit('Add application'), true],
  ['equals: number rule vs numeric string', { 'graph.statusCode': 404 }, audit('x'), true],
  ['equals: array field, any element', { 'audit.permissionsGranted': 'user.read' }, audit('x'), true],
  ['cased: case differs', { 'audit.operation|cased': 'add application' }, audit('Add application'), false],
  ['cased: exact', { 'audit.operation|cased': 'Add application' }, audit('Add application'), true],
  ['in: any of', { 'audit.operation|in': ['Add user', 'Add application'] }, audit('Add application'), true],
  ['in: none of', { 'audit.operation|in': ['Add user'] }, audit('Add application'), false],
  ['in: empty list matches nothing', { 'audit.operation|in': [] }, audit('Add application'), false],
  ['in: missing field', { 'audit.operation|in': ['Add application'] }, bare, false],
  // substrings
  ['contains', { 'audit.operation|contains': 'CERTIFICATES' }, audit('Update application – Certificates and secrets management'), true],
  ['contains: absent', { 'audit.operation|contains': 'owner' }, audit('Add application'), false],
  ['contains: missing field', { 'audit.operation|contains': 'a' }, bare, false],
  ['startswith', { 'audit.operation|startswith': ['Remove', 'add'] }, audit('Add application'), true],
  ['startswith: missing field', { 'audit.operation|startswith': 'Add' }, bare, false],
  ['endswith', { 'audit.operation|endswith': 'APPLICATION' }, audit('Add application'), true],
  ['endswith: missing field', { 'audit.operation|endswith': 'x' }, bare, false],
  // regex
  ['regex: case-insensitive by default', { 'audit.operation|regex': '^add (application|service principal)$' }, audit('Add Application'), true],
  ['regex: cased', { 'audit.operation|regex|cased': '^add' }, audit('Add application'), false],
  ['regex: missing field', { 'audit.operation|regex': '.*' }, bare, false],
  // cidr
  ['cidr: v4 inside', { 'ip|cidr': ['10.0.0.0/8', '203.0.113.0/24'] }, audit('x'), true],
  ['cidr: v4 outside', { 'ip|cidr': '198.51.100.0/24' }, audit('x'), false],
  ['cidr: v6 inside', { 'ip|cidr': '2001:db8::/32' }, event({ id: 'v6', ip: '2001:DB8:0:1::5' }), true],
  ['cidr: v6 outside', { 'ip|cidr': '2001:db8::/32' }, event({ id: 'v6', ip: '2001:db9::1' }), false],
  ['cidr: v4-mapped v6 address against a v4 range', { 'ip|cidr': '203.0.113.0/24' }, event({ id: 'm', ip: '::ffff:203.0.113.9' }), true],
  ['cidr: not an address', { 'ip|cidr': '0.0.0.0/0' }, event({ id: 'n', ip: 'unknown' }), false],
  ['cidr: missing field', { 'ip|cidr': '0.0.0.0/0' }, bare, false],
  // numeric
  ['gt: numeric string', { 'result.code|gt': 0 }, signInWithCode('53003'), true],
  ['gt: equal is not greater', { 'result.code|gt': 53003 }, signInWithCode('53003'), false],
  ['gte', { 'result.code|gte': 53003 }, signInWithCode('53003'), true],
  ['lt', { 'result.code|lt': 1 }, signInWithCode('0'), true],
  ['lte', { 'result.code|lte': -1 }, signInWithCode('0'), false],
  ['gt: non-numeric text never compares', { 'audit.operation|gt': 1 }, audit('Add application'), false],
  ['gt: missing field', { 'result.code|gt': -1 }, bare, false],
  // exists
  ['exists true: present', { 'ip|exists': true }, audit('x'), true],
  ['exists true: missing', { 'ip|exists': true }, bare, false],
  ['exists false: missing', { 'ip|exists': false }, bare, true],
  ['exists false: present', { 'ip|exists': false }, audit('x'), false],
  ['exists true: empty array counts as missing', { 'audit.credentialsAdded|exists': true }, audit('x'), false],
  // all
  ['all: every element matches', { 'audit.permissionsGranted|endswith|all': '.read' }, audit('x'), true],
  ['all: one element differs', { 'audit.permissionsGranted|all': 'Mail.Read' }, audit('x'), false],
  ['all: empty array', { 'audit.credentialsAdded.keyId|all': 'k' }, audit('x'), false],
  ['all: missing field', { 'audit.permissionsGranted|all': 'Mail.Read' }, bare, false],
  // field-to-field
  ['field ref: equal fields', { 'actor.appId': { field: 'agentIdentityId' } }, signInWithCode('0'), true],
  ['field ref: different fields', { 'actor.appId': { field: 'blueprintAppId' } }, signInWithCode('0'), false],
  ['field ref: other side missing', { 'actor.appId': { field: 'agentUserId' } }, signInWithCode('0'), false],
  ['field ref: this side missing', { 'agentUserId': { field: 'actor.appId' } }, signInWithCode('0'), false],
];

function signInWithCode(code: string): AgentEvent {
  return event({ id: `s${code}`, flow: 't2Autonomous', agentIdentityId: AGENT, blueprintAppId: BLUEPRINT, actor: { type: 'agentIdentity', id: AGENT, appId: AGENT }, result: { status: code === '0' ? 'success' : 'failure', code } });
}

describe('match operators', () => {
  it.each(cases)('%s', (_name, selection, target, expected) => {
    expect(selectionHolds(selection, target)).toBe(expected);
  });

  it('not <selection> is true when the field is missing (the negated form of every operator)', () => {
    const detection = compileRule({ id: 'negated', selections: { op: { 'audit.operation|contains': 'x' } }, condition: 'not op' });
    expect(detection.condition!((i) => detection.selections[i].test(bare, { inventory: new TestInventory() }))).toBe(true);
  });

  it('a list of maps holds when any map holds', () => {
    const selection = [{ 'audit.operation': 'Add user' }, { 'ip|cidr': '203.0.113.0/24', 'audit.operation|startswith': 'Add' }];
    expect(selectionHolds(selection, audit('Add application'))).toBe(true);
    expect(selectionHolds(selection, audit('Delete application'))).toBe(false);
  });

  it('parameters and global lists resolve by name', () => {
    const detection = compileRule({ id: 'params', parameters: { ops: ['Add application'] }, selections: { a: { 'audit.operation|in': '$ops' }, b: { 'actor.appId|in': '$lists.firstPartyAppIds' } }, condition: 'a and not b' });
    const inventory = new TestInventory();
    expect(detection.selections[0].test(audit('add application'), { inventory })).toBe(true);
    expect(detection.selections[1].test(event({ id: 'g', actor: { type: 'servicePrincipal', appId: '00000003-0000-0000-c000-000000000000' } }), { inventory })).toBe(true);
  });
});

describe('inventory look-ups', () => {
  const inventory = new TestInventory()
    .add({ kind: 'blueprint', id: 'c0ffee00-0000-4000-8000-000000000001', appId: BLUEPRINT, live: true, owners: ['dana@northwind.example'], createdByAppId: '14d82eec-204b-4c2f-b7e8-296a70dab67e' })
    .add({ kind: 'agentIdentity', id: AGENT, appId: AGENT, parentId: BLUEPRINT, live: true })
    .add({ kind: 'agentIdentity', id: 'a1d00000-0000-4000-8000-0000000000dd', parentId: BLUEPRINT, live: false });
  const onBlueprint = event({ id: 'b', kind: 'audit', blueprintAppId: BLUEPRINT, actor: { type: 'user', upn: 'Dana@Northwind.example', id: 'u1' }, audit: { operation: 'Delete application', targets: [{ type: 'application', id: 'c0ffee00-0000-4000-8000-000000000001', appId: BLUEPRINT, modifiedProperties: [] }], credentialsAdded: [], credentialsRemoved: [], ficIssuersAdded: [], ficSubjectsAdded: [], modifiedPropertyNames: [], permissionsGranted: [] } });

  it.each([
    ['@kind through an array path', { 'audit.targets.id@kind': 'blueprint' }, true],
    ['@kind of an unknown id is missing', { 'agentUserId@kind|exists': false }, true],
    ['@liveChildren counts live children only', { 'blueprintAppId@liveChildren': 1 }, true],
    ['@liveChildren of an unknown id is 0', { 'actor.id@liveChildren': 0 }, true],
    ['@parent', { 'agentIdentityId@parent': BLUEPRINT }, false],
    ['@owners compared to another field', { 'actor.upn|in': { field: 'blueprintAppId@owners' } }, true],
    ['@createdBy', { 'blueprintAppId@createdBy': '14d82eec-204b-4c2f-b7e8-296a70dab67e' }, true],
    ['@live', { 'blueprintAppId@live': true }, true],
    ['@firstParty on an id', { 'blueprintAppId@firstParty': false }, true],
  ] as [string, Record<string, unknown>, boolean][])('%s', (_name, selection, expected) => {
    expect(selectionHolds(selection, onBlueprint, inventory)).toBe(expected);
  });

  it('@firstParty judges a principal path by its app id and owner tenant', () => {
    const graph = event({ id: 'g', audit: { operation: 'x', grantee: { type: 'servicePrincipal', appId: '00000003-0000-0000-c000-000000000000' }, targets: [], credentialsAdded: [], credentialsRemoved: [], ficIssuersAdded: [], ficSubjectsAdded: [], modifiedPropertyNames: [], permissionsGranted: [] } });
    expect(selectionHolds({ 'audit.grantee@firstParty': true }, graph, inventory)).toBe(true);
    expect(selectionHolds({ 'audit.grantee@firstParty': true }, onBlueprint, inventory)).toBe(false);
  });
});

describe('operators remember their last answer', () => {
  // Each operator keeps the last text it judged and its answer; a fresh predicate per value (no
  // memory) must agree with one long-lived predicate fed the same values in any order.
  const samples = ['Add application', 'add APPLICATION', 'Add user', '203.0.113.7', '198.51.100.1', 'agentIdentity', 'AGENTIDENTITY', '', '404', 'x'];
  const rules: [MatchOperator, RuleScalar[]][] = [
    ['equals', ['Add application']],
    ['in', ['Add user', 'agentidentity', 404]],
    ['contains', ['APP']],
    ['startswith', ['add']],
    ['endswith', ['user']],
    ['regex', ['^\\d+$']],
    ['cidr', ['203.0.113.0/24']],
  ];
  it.each(rules)('%s', (operator, values) => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constantFrom(...samples), fc.string(), fc.integer()), { maxLength: 40 }), (sequence) => {
        const remembering = OPERATOR_FACTORIES[operator](values, false);
        for (const value of sequence) expect(remembering(value)).toBe(OPERATOR_FACTORIES[operator](values, false)(value));
      }),
      { numRuns: 300 },
    );
  });
});
