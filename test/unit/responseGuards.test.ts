import { describe, expect, it } from 'vitest';
import type { ResponseMode } from '../../src/alerts/types';
import {
  actionIdFor,
  alreadyDoneReason,
  capReason,
  effectiveMode,
  firstPartyLists,
  firstPartyReason,
  hourBucket,
  invalidIdReason,
  isGuid,
  protectedReason,
  wrongTypeReason,
} from '../../src/response/guards';

const AGENT = 'bbbbbbbb-1111-2222-3333-444444444444';
const BLUEPRINT_APP = 'dddddddd-1111-2222-3333-444444444444';

describe('effectiveMode: the strictest stated level wins (off < dryRun < approval < auto)', () => {
  it.each<[string, (ResponseMode | undefined)[], ResponseMode]>([
    ['nothing stated defaults to dryRun', [undefined, undefined, undefined, undefined], 'dryRun'],
    ['all auto stays auto', ['auto', 'auto', 'auto', 'auto'], 'auto'],
    ['global dryRun caps a rule in auto', ['dryRun', undefined, undefined, 'auto'], 'dryRun'],
    ['config file approval caps auto', ['auto', 'approval', undefined, 'auto'], 'approval'],
    ['detection override off beats everything', ['auto', 'auto', 'off', 'auto'], 'off'],
    ['rule dryRun is not loosened by auto elsewhere', ['auto', 'auto', 'auto', 'dryRun'], 'dryRun'],
    ['unset levels are ignored, not treated as off', [undefined, 'approval', undefined, 'auto'], 'approval'],
  ])('%s', (_name, modes, expected) => {
    expect(effectiveMode(...modes)).toBe(expected);
  });

  it('ignores a value that is not a mode instead of treating it as permissive', () => {
    expect(effectiveMode('auto', 'yolo' as ResponseMode, 'approval')).toBe('approval');
  });
});

describe('ids are validated before they can reach a URL', () => {
  it.each<[string, string | undefined, boolean]>([
    ['a lower-case GUID', AGENT, true],
    ['an upper-case GUID', AGENT.toUpperCase(), true],
    ['missing', undefined, false],
    ['empty', '', false],
    ['a path traversal', `${AGENT}/../../applications`, false],
    ['an OData function smuggled in', `${AGENT}')/owners?$x=(`, false],
    ['a UPN', 'alice@contoso.com', false],
    ['a GUID with braces', `{${AGENT}}`, false],
  ])('%s → valid %s', (_name, value, valid) => {
    expect(isGuid(value)).toBe(valid);
    const reason = invalidIdReason('target (agentIdentityId)', value);
    if (valid) expect(reason).toBeUndefined();
    else expect(reason).toMatch(value ? /is not a GUID/ : /is missing/);
  });
});

describe('protected list', () => {
  const list = new Set(['eeeeeeee-1111-2222-3333-444444444444', 'break-glass agent']);
  it.each<[string, (string | undefined)[], boolean]>([
    ['object id on the list', ['EEEEEEEE-1111-2222-3333-444444444444'], true],
    ['display name on the list, any case', [undefined, 'Break-Glass Agent'], true],
    ['parent blueprint on the list protects the agent', [AGENT, 'eeeeeeee-1111-2222-3333-444444444444'], true],
    ['nothing on the list', [AGENT, BLUEPRINT_APP], false],
  ])('%s → refused %s', (_name, candidates, refused) => {
    const reason = protectedReason(candidates, list);
    expect(reason === undefined).toBe(!refused);
    if (refused) expect(reason).toMatch(/^protected: /);
  });
});

describe('Microsoft first-party principals are never acted on', () => {
  const lists = firstPartyLists(['12345678-aaaa-bbbb-cccc-1234567890ab']);
  it.each<[string, { appIds: (string | undefined)[]; ownerTenantIds: (string | undefined)[] }, RegExp | undefined]>([
    ['the Copilot Studio blueprint (app id)', { appIds: ['25664c89-cea5-4ab6-b924-a54fd8a19ae0'], ownerTenantIds: [] }, /first-party list/],
    ['Power Virtual Agents Service', { appIds: ['9D8F559B-5984-46A4-902A-AD4271E83EFA'], ownerTenantIds: [] }, /first-party list/],
    ['Microsoft Graph', { appIds: ['00000003-0000-0000-c000-000000000000'], ownerTenantIds: [] }, /first-party list/],
    ['owned by the Microsoft services tenant', { appIds: [AGENT], ownerTenantIds: ['f8cdef31-a31e-4b4a-93e4-5f571e91255a'] }, /Microsoft tenant/],
    ['owned by the Microsoft corp tenant', { appIds: [AGENT], ownerTenantIds: ['72f988bf-86f1-41af-91ab-2d7cd011db47'] }, /Microsoft tenant/],
    ['an app id the config adds', { appIds: ['12345678-AAAA-bbbb-cccc-1234567890ab'], ownerTenantIds: [] }, /first-party list/],
    ['a customer agent in a customer tenant', { appIds: [AGENT, BLUEPRINT_APP], ownerTenantIds: ['11111111-2222-3333-4444-555555555555'] }, undefined],
  ])('%s', (_name, facts, expected) => {
    const reason = firstPartyReason(facts, lists);
    if (expected) expect(reason).toMatch(expected);
    else expect(reason).toBeUndefined();
  });
});

describe('verify: the object must be the agent type the action expects', () => {
  it.each<[string, Parameters<typeof wrongTypeReason>[0], string | undefined, boolean]>([
    ['agent identity for disableAgentIdentity', 'disableAgentIdentity', '#microsoft.graph.agentIdentity', true],
    ['type without the leading #', 'confirmCompromised', 'microsoft.graph.agentIdentity', true],
    ['a plain service principal is not an agent', 'disableAgentIdentity', '#microsoft.graph.servicePrincipal', false],
    ['no @odata.type at all', 'disableAgentIdentity', undefined, false],
    ['a blueprint principal for disableBlueprintPrincipal', 'disableBlueprintPrincipal', '#microsoft.graph.agentIdentityBlueprintPrincipal', true],
    ['an agent identity is not a blueprint principal', 'disableBlueprintPrincipal', '#microsoft.graph.agentIdentity', false],
    ['a blueprint for removeBlueprintCredential', 'removeBlueprintCredential', '#microsoft.graph.agentIdentityBlueprint', true],
    ['an ordinary application is not a blueprint', 'removeBlueprintCredential', '#microsoft.graph.application', false],
    ['an agent user for revokeAgentUserSessions', 'revokeAgentUserSessions', '#microsoft.graph.agentUser', true],
    ['a human user is not an agent user', 'revokeAgentUserSessions', '#microsoft.graph.user', false],
  ])('%s', (_name, action, odataType, ok) => {
    const reason = wrongTypeReason(action, { id: AGENT, odataType });
    expect(reason === undefined).toBe(ok);
    if (!ok) expect(reason).toMatch(/^wrong object type: /);
  });

  it('skips disabling what is already disabled, but not other actions on it', () => {
    expect(alreadyDoneReason('disableAgentIdentity', { id: AGENT, accountEnabled: false })).toBe(`already disabled: ${AGENT}`);
    expect(alreadyDoneReason('disableAgentIdentity', { id: AGENT, accountEnabled: true })).toBeUndefined();
    expect(alreadyDoneReason('confirmCompromised', { id: AGENT, accountEnabled: false })).toBeUndefined();
  });
});

describe('blast-radius cap', () => {
  const limits = { perHour: 20, perBlueprintPerHour: 3 };
  it.each<[string, { total: number; blueprint?: number }, string | undefined, RegExp | undefined]>([
    ['first action of the hour', { total: 0, blueprint: 0 }, BLUEPRINT_APP, undefined],
    ['one below the blueprint cap', { total: 2, blueprint: 2 }, BLUEPRINT_APP, undefined],
    ['at the blueprint cap', { total: 3, blueprint: 3 }, BLUEPRINT_APP, /against blueprint dddddddd.*limit 3/],
    ['at the total cap', { total: 20, blueprint: 0 }, BLUEPRINT_APP, /20 automatic actions this hour \(limit 20\)/],
    ['no blueprint known: only the total counts', { total: 19 }, undefined, undefined],
  ])('%s', (_name, taken, blueprint, expected) => {
    const reason = capReason(taken, limits, blueprint);
    if (expected) {
      expect(reason).toMatch(expected);
      expect(reason).toMatch(/queued for approval$/);
    } else expect(reason).toBeUndefined();
  });

  it('counts per UTC clock hour', () => {
    expect(hourBucket(Date.parse('2026-10-05T10:59:59.999Z'))).toBe('2026100510');
    expect(hourBucket(Date.parse('2026-10-05T11:00:00.000Z'))).toBe('2026100511');
  });
});

describe('idempotency key', () => {
  const base = { detectionId: 'agent-takeover-chain', dedupKey: `agent-takeover-chain:${BLUEPRINT_APP}`, action: 'disableAgentIdentity' as const, targetId: AGENT };
  it('is stable for the same incident, action and target, whatever the alert id or id casing', () => {
    expect(actionIdFor(base)).toBe(actionIdFor({ ...base, targetId: AGENT.toUpperCase() }));
    expect(actionIdFor(base)).toMatch(/^act-[0-9a-f]{32}$/);
  });
  it.each([
    ['another incident', { dedupKey: 'agent-takeover-chain:other' }],
    ['another action', { action: 'confirmCompromised' as const }],
    ['another target', { targetId: 'cccccccc-1111-2222-3333-444444444444' }],
    ['another detection', { detectionId: 'agent-risk-detected' }],
    ['another credential', { keyId: '0a0a0a0a-1111-2222-3333-444444444444' }],
  ])('differs for %s', (_name, change) => {
    expect(actionIdFor({ ...base, ...change })).not.toBe(actionIdFor(base));
  });
});
