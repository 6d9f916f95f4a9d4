/**
 * Every catalog detection against its scenario stream, through the real CLI:
 * `agentwatch replay --output ndjson test/fixtures/scenarios/catalog/<id>.ndjson.gz`.
 *
 * Each scenario (written by `node dist/scripts/gen-demo.js --scenarios` from the shared fixture
 * bases; fictional tenant, fake ids — see detections/fixtures/README.md) holds a day of history and
 * a day of benign traffic from 25 people, 6 apps, 4 managed identities and 12 agents, the incidents
 * the detection must catch, and its near misses. The test asserts the exact multiset of
 * (detection id, key entity ids) the replay prints: right detection, right entities, exactly once
 * per incident, and nothing else — the other detections listed under a scenario are the
 * side effects the incident is expected to raise too (a takeover also adds a credential, exchanges
 * from a new IP …).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../src/alerts/types';
import { loadBases, scenarioBodies } from '../../scripts/gen-demo';
import { replayNdjson } from '../support/replayCli';

const SCENARIOS = join(__dirname, '..', 'fixtures', 'scenarios', 'catalog');

const FINANCE = 'b1a00000-0000-4000-8000-000000000001';
const HELPDESK = 'b1a00000-0000-4000-8000-000000000002';
const RESEARCH = 'b1a00000-0000-4000-8000-000000000003';
const LEGACY = 'b1a00000-0000-4000-8000-000000000004';
const INVOICE_AGENT = 'a1d00000-0000-4000-8000-000000000011';
const EXPENSE_AGENT = 'a1d00000-0000-4000-8000-000000000012';
const TRIAGE_AGENT = 'a1d00000-0000-4000-8000-000000000021';
const RESET_AGENT = 'a1d00000-0000-4000-8000-000000000022';
const SCOUT_AGENT = 'a1d00000-0000-4000-8000-000000000031';
const SUMMARIZER_AGENT = 'a1d00000-0000-4000-8000-000000000032';
const INVOICE_AGENT_USER = 'a0c00000-0000-4000-8000-000000000011';
const EVE = 'e5e00000-0000-4000-8000-000000000005';
const GRACE = 'e5e00000-0000-4000-8000-000000000007';
const CAROL_UPN = 'carol.maker@northwind.example';
const PROVISIONING_ROBOT_SP = '5a000000-0000-4000-8000-000000000102';
const HR_FAQ_BOT = 'c1a55000-0000-4000-8000-000000000001';
const TRAVEL_AGENT = 'c0b10000-0000-4000-8000-000000000001';
const EXPENSE_POLICY_BOT = 'c0b10000-0000-4000-8000-000000000002';
const KEY_VAULT = 'cfa8b339-82a2-471a-a3c9-0fc0be7a4093';
const ATTACKER_IP = '203.0.113.66';

/** Which entities identify the incident of each detection (the rest are context). */
const KEY_ENTITY_TYPES: Record<string, string[]> = {
  'blueprint-credential-added': ['blueprint'],
  'blueprint-credential-added-then-used': ['blueprint'],
  'blueprint-fic-changed': ['blueprint'],
  'agent-identity-credential-attempt': ['agentIdentity'],
  'classic-agent-owner-secret': ['classicAgent'],
  'blueprint-exchange-new-ip': ['blueprint', 'ip'],
  'agent-scope-burst': ['agentIdentity'],
  'agent-privileged-permission-grant': ['agentIdentity', 'blueprint'],
  'agent-id-admin-permission-grant': ['servicePrincipal'],
  'agent-user-privileged': ['agentUser', 'agentIdentity'],
  'risky-user-obo': ['agentIdentity', 'user'],
  'agent-unfamiliar-resource': ['agentIdentity', 'resource'],
  'agent-signin-spike': ['agentIdentity'],
  'agent-failed-access-burst': ['agentIdentity'],
  'maker-credential-agent': ['classicAgent'],
  'maker-credential-use': ['user'],
  'orphaned-agent-identities': ['blueprint'],
  'agent-risk-detected': ['agentIdentity'],
  'agent-takeover-chain': ['blueprint', 'agentIdentity'],
};

/** `detectionId type:id …` with the key entities sorted: one line per expected alert. */
function incident(detectionId: string, ...entities: string[]): string {
  return `${detectionId} ${[...entities].sort().join(' ')}`;
}

function incidentOf(alert: Alert): string {
  const types = KEY_ENTITY_TYPES[alert.detectionId] ?? [];
  const keys = alert.entities.filter((entity) => types.includes(entity.type)).map((entity) => `${entity.type}:${entity.id}`);
  return incident(alert.detectionId, ...keys);
}

const EXPECTED: Record<string, string[]> = {
  'blueprint-credential-added': [
    // eve adds two secrets to Finance within the hour (one incident); an app adds a certificate to Helpdesk's principal.
    incident('blueprint-credential-added', `blueprint:${FINANCE}`),
    incident('blueprint-credential-added', `blueprint:${HELPDESK}`),
  ],
  'blueprint-credential-added-then-used': [
    incident('blueprint-credential-added', `blueprint:${FINANCE}`),
    incident('blueprint-credential-added-then-used', `blueprint:${FINANCE}`),
    // Helpdesk gets a new secret but keeps using its old one: added, never "then used".
    incident('blueprint-credential-added', `blueprint:${HELPDESK}`),
  ],
  'blueprint-fic-changed': [
    incident('blueprint-fic-changed', `blueprint:${RESEARCH}`),
    incident('blueprint-credential-added', `blueprint:${RESEARCH}`),
    // An edit of an existing credential's subject: changed, but nothing added.
    incident('blueprint-fic-changed', `blueprint:${HELPDESK}`),
  ],
  'agent-identity-credential-attempt': [
    incident('agent-identity-credential-attempt', `agentIdentity:${INVOICE_AGENT}`),
    incident('agent-identity-credential-attempt', `agentIdentity:${RESET_AGENT}`),
  ],
  'classic-agent-owner-secret': [incident('classic-agent-owner-secret', `classicAgent:${HR_FAQ_BOT}`)],
  'blueprint-exchange-new-ip': [incident('blueprint-exchange-new-ip', `blueprint:${FINANCE}`, `ip:${ATTACKER_IP}`)],
  'agent-scope-burst': [incident('agent-scope-burst', `agentIdentity:${TRIAGE_AGENT}`)],
  'agent-privileged-permission-grant': [
    incident('agent-privileged-permission-grant', `agentIdentity:${INVOICE_AGENT}`, `blueprint:${FINANCE}`),
    incident('agent-privileged-permission-grant', `blueprint:${HELPDESK}`),
  ],
  'agent-id-admin-permission-grant': [
    incident('agent-id-admin-permission-grant', `servicePrincipal:${PROVISIONING_ROBOT_SP}`),
    incident('agent-id-admin-permission-grant', `servicePrincipal:${TRIAGE_AGENT}`),
  ],
  'agent-user-privileged': [incident('agent-user-privileged', `agentUser:${INVOICE_AGENT_USER}`, `agentIdentity:${INVOICE_AGENT}`)],
  'risky-user-obo': [
    incident('risky-user-obo', `agentIdentity:${EXPENSE_AGENT}`, `user:${EVE}`),
    incident('risky-user-obo', `agentIdentity:${SUMMARIZER_AGENT}`, `user:${GRACE}`),
  ],
  'agent-unfamiliar-resource': [incident('agent-unfamiliar-resource', `agentIdentity:${INVOICE_AGENT}`, `resource:${KEY_VAULT}`)],
  'agent-signin-spike': [incident('agent-signin-spike', `agentIdentity:${SCOUT_AGENT}`)],
  'agent-failed-access-burst': [
    incident('agent-failed-access-burst', `agentIdentity:${RESET_AGENT}`),
    incident('agent-failed-access-burst', `agentIdentity:${SCOUT_AGENT}`),
  ],
  'maker-credential-agent': [
    incident('maker-credential-agent', `classicAgent:${TRAVEL_AGENT}`),
    incident('maker-credential-agent', `classicAgent:${EXPENSE_POLICY_BOT}`),
  ],
  'maker-credential-use': [
    incident('maker-credential-agent', `classicAgent:${TRAVEL_AGENT}`),
    // 10:05 and 10:40 are one clock hour; 14:10 (from a new connector IP) is the next incident.
    incident('maker-credential-use', `user:e5e00000-0000-4000-8000-000000000003`),
    incident('maker-credential-use', `user:e5e00000-0000-4000-8000-000000000003`),
  ],
  'orphaned-agent-identities': [incident('orphaned-agent-identities', `blueprint:${LEGACY}`)],
  'agent-risk-detected': [
    incident('agent-risk-detected', `agentIdentity:${SCOUT_AGENT}`),
    incident('agent-risk-detected', `agentIdentity:${INVOICE_AGENT}`),
  ],
  'agent-takeover-chain': [
    incident('agent-takeover-chain', `blueprint:${FINANCE}`, `agentIdentity:${INVOICE_AGENT}`),
    incident('blueprint-credential-added', `blueprint:${FINANCE}`),
    incident('blueprint-credential-added-then-used', `blueprint:${FINANCE}`),
    incident('blueprint-exchange-new-ip', `blueprint:${FINANCE}`, `ip:${ATTACKER_IP}`),
    incident('agent-unfamiliar-resource', `agentIdentity:${INVOICE_AGENT}`, `resource:${KEY_VAULT}`),
    incident('agent-privileged-permission-grant', `agentIdentity:${INVOICE_AGENT}`, `blueprint:${FINANCE}`),
    // Helpdesk: the same three steps spread over 100 minutes — each step alerts, no chain.
    incident('blueprint-credential-added', `blueprint:${HELPDESK}`),
    incident('blueprint-exchange-new-ip', `blueprint:${HELPDESK}`, 'ip:203.0.113.80'),
    incident('agent-privileged-permission-grant', `agentIdentity:${TRIAGE_AGENT}`, `blueprint:${HELPDESK}`),
  ],
};

describe('catalog scenarios replayed through `agentwatch replay --output ndjson`', () => {
  it('has a scenario stream for every detection in detections/', () => {
    for (const id of Object.keys(KEY_ENTITY_TYPES)) {
      expect(existsSync(join(__dirname, '..', '..', 'detections', `${id}.yaml`)), id).toBe(true);
      expect(existsSync(join(SCENARIOS, `${id}.ndjson.gz`)), id).toBe(true);
    }
  });

  it('the committed streams are what scripts/gen-demo.ts writes now (`node dist/scripts/gen-demo.js --scenarios`)', () => {
    const bases = loadBases(join(__dirname, '..', '..'));
    for (const id of Object.keys(EXPECTED)) {
      const committed = gunzipSync(readFileSync(join(SCENARIOS, `${id}.ndjson.gz`))).toString('utf8');
      expect(committed, id).toBe(`${scenarioBodies(bases, id).join('\n')}\n`);
    }
  });

  it.each(Object.entries(EXPECTED))('%s fires on its incidents exactly once each, with the right entities', async (scenario, expected) => {
    const { code, alerts, stderr } = await replayNdjson([join(SCENARIOS, `${scenario}.ndjson.gz`)]);
    expect(code, stderr).toBe(0);
    expect(alerts.map(incidentOf).sort(), stderr).toEqual([...expected].sort());
    for (const alert of alerts) {
      expect(alert.dedupKey.startsWith(`${alert.detectionId}:`)).toBe(true);
      expect(alert.evidence.length).toBeGreaterThan(0);
      expect(Date.parse(alert.firstEventTime)).toBeLessThanOrEqual(Date.parse(alert.lastEventTime));
    }
  });

  it('plans the takeover containment in dryRun on the chain alert', async () => {
    const { alerts } = await replayNdjson([join(SCENARIOS, 'agent-takeover-chain.ndjson.gz')]);
    const chain = alerts.find((alert) => alert.detectionId === 'agent-takeover-chain');
    expect(chain?.severity).toBe('critical');
    expect(chain?.actions.map((action) => [action.action, action.mode, action.targetId])).toEqual([
      ['confirmCompromised', 'dryRun', INVOICE_AGENT],
      ['disableAgentIdentity', 'dryRun', INVOICE_AGENT],
    ]);
  });

  it('maker-credential-use is medium from a known connector IP and high from a new one', async () => {
    const { alerts } = await replayNdjson([join(SCENARIOS, 'maker-credential-use.ndjson.gz')]);
    const uses = alerts.filter((alert) => alert.detectionId === 'maker-credential-use').sort((a, b) => a.firstEventTime.localeCompare(b.firstEventTime));
    expect(uses.map((alert) => [alert.severity, alert.entities.find((e) => e.type === 'user')?.upn])).toEqual([
      ['medium', CAROL_UPN],
      ['high', CAROL_UPN],
    ]);
  });

  describe('thresholds and lists are parameters a config file overrides without editing the rule', () => {
    const scratch = mkdtempSync(join(tmpdir(), 'agentwatch-config-'));
    afterAll(() => rmSync(scratch, { recursive: true, force: true }));

    it('raising minNewPermissions above the six scopes of the burst silences agent-scope-burst', async () => {
      const config = join(scratch, 'scope.yaml');
      writeFileSync(config, 'detections:\n  agent-scope-burst:\n    parameters: { minNewPermissions: 7 }\n');
      const { code, alerts, stderr } = await replayNdjson([join(SCENARIOS, 'agent-scope-burst.ndjson.gz')], ['--config', config]);
      expect(code, stderr).toBe(0);
      expect(alerts.map(incidentOf)).toEqual([]);
    });

    it('an exception for the onboarding of helpdesk-triage silences its burst, and the summary says what it kept', async () => {
      const config = join(scratch, 'exception.yaml');
      writeFileSync(
        config,
        `detections:\n  agent-scope-burst:\n    exceptions:\n      - name: triage-onboarding\n        reason: helpdesk-triage onboarding grants, change CHG-1234\n        match: { agentIdentityId: ${TRIAGE_AGENT} }\n        expires: "2026-10-06"\n`,
      );
      const { code, alerts, stderr } = await replayNdjson([join(SCENARIOS, 'agent-scope-burst.ndjson.gz')], ['--config', config]);
      expect(code, stderr).toBe(0);
      expect(alerts.map(incidentOf)).toEqual([]);
      expect(stderr).toMatch(/kept from detections by config exceptions:\n {4}agent-scope-burst\/triage-onboarding: [1-9]\d*\n/);
    });

    it('adding the Provisioning Robot to firstPartyAppIds leaves only the agent identity grant', async () => {
      const config = join(scratch, 'lists.yaml');
      writeFileSync(
        config,
        'lists:\n  firstPartyAppIds: [00000003-0000-0000-c000-000000000000, 9d8f559b-5984-46a4-902a-ad4271e83efa, 25664c89-cea5-4ab6-b924-a54fd8a19ae0, 5a000000-0000-4000-8000-000000000002]\n',
      );
      const { code, alerts, stderr } = await replayNdjson([join(SCENARIOS, 'agent-id-admin-permission-grant.ndjson.gz')], ['--config', config]);
      expect(code, stderr).toBe(0);
      expect(alerts.map(incidentOf)).toEqual([incident('agent-id-admin-permission-grant', `servicePrincipal:${TRIAGE_AGENT}`)]);
    });
  });
});
