/**
 * The demo stream `npm start` replays (samples/demo-day.ndjson.gz, synthetic, written by
 * scripts/gen-demo.ts) raises exactly the alerts samples/README.md narrates: every detection the
 * table names, as many times as it says, and nothing unexpected.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../src/alerts/types';
import { demoBodies, loadBases } from '../../scripts/gen-demo';
import { replayNdjson } from '../support/replayCli';

const REPO = join(__dirname, '..', '..');
const DEMO = join(REPO, 'samples', 'demo-day.ndjson.gz');

/** Alerts per detection, as samples/README.md tells the story. */
const EXPECTED_COUNTS: Record<string, number> = {
  'maker-credential-agent': 1,
  'blueprint-credential-added': 2,
  'blueprint-credential-added-then-used': 1,
  'blueprint-exchange-new-ip': 1,
  'agent-unfamiliar-resource': 1,
  'agent-takeover-chain': 1,
  'agent-privileged-permission-grant': 1,
  'risky-user-obo': 1,
  'maker-credential-use': 2,
  'blueprint-fic-changed': 1,
  'classic-agent-owner-secret': 1,
  'agent-id-admin-permission-grant': 1,
  'agent-identity-credential-attempt': 1,
  'agent-scope-burst': 1,
  'agent-user-privileged': 1,
  'agent-signin-spike': 1,
  'agent-failed-access-burst': 1,
  'orphaned-agent-identities': 1,
  'agent-risk-detected': 1,
};

describe('the demo stream', () => {
  let alerts: Alert[] = [];
  let stderr = '';
  let code = -1;

  beforeAll(async () => {
    const run = await replayNdjson([DEMO]);
    ({ code, alerts, stderr } = run);
  }, 120_000);

  it('replays cleanly: every record read, none rejected', () => {
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/rejected: 0\b/);
    expect(Number(/records read: (\d+)/.exec(stderr)?.[1])).toBeGreaterThan(5_000);
  });

  it('raises exactly the detections the README table names, as many times as it says', () => {
    const counts: Record<string, number> = {};
    for (const alert of alerts) counts[alert.detectionId] = (counts[alert.detectionId] ?? 0) + 1;
    expect(counts).toEqual(EXPECTED_COUNTS);
  });

  it('the README table and this test name the same detections', () => {
    const readme = readFileSync(join(REPO, 'samples', 'README.md'), 'utf8');
    const lastColumn = readme
      .split('\n')
      .filter((line) => /^\| \d\d:\d\d/.test(line))
      .map((line) => line.split('|').at(-2) ?? '');
    const named = new Set(lastColumn.flatMap((cell) => [...cell.matchAll(/`([a-z0-9-]+)`/g)].map((m) => m[1]!)));
    expect([...named].sort()).toEqual(Object.keys(EXPECTED_COUNTS).sort());
  });

  it('exercises agent-takeover-chain on the Finance blueprint and invoice-agent, with dryRun containment', () => {
    const chain = alerts.filter((alert) => alert.detectionId === 'agent-takeover-chain');
    expect(chain).toHaveLength(1);
    expect(chain[0]!.severity).toBe('critical');
    expect(chain[0]!.entities).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'blueprint', id: 'b1a00000-0000-4000-8000-000000000001' }),
        expect.objectContaining({ type: 'agentIdentity', id: 'a1d00000-0000-4000-8000-000000000011' }),
        // From the chain's first step: who planted the credential.
        expect.objectContaining({ type: 'user', id: 'e5e00000-0000-4000-8000-000000000005', upn: 'eve.contractor@northwind.example' }),
      ]),
    );
    expect(chain[0]!.title).toContain('credential change by Eve Contractor, exchange from new IP 203.0.113.66');
    expect(chain[0]!.actions.map((action) => `${action.action}:${action.mode}`)).toEqual(['confirmCompromised:dryRun', 'disableAgentIdentity:dryRun']);
  });

  it('gives Sentinel an object id, never a UPN, wherever the analytics query maps an Account AadUserId', () => {
    const kql = readFileSync(join(REPO, 'infra', 'sentinel', 'agentwatch-alerts.kql'), 'utf8');
    // The query takes the first entity of a kind and reads one field of it: `UserObjectId = tostring(User.objectId)`.
    const accounts = { UserObjectId: { variable: 'User', kind: 'user' }, AgentUserObjectId: { variable: 'AgentUser', kind: 'agentUser' } };
    let mapped = 0;
    for (const [column, { variable, kind }] of Object.entries(accounts)) {
      const field = new RegExp(`\\b${column} = tostring\\(${variable}\\.(\\w+)\\)`).exec(kql)?.[1];
      expect(field, `${column} in the query`).toBeDefined();
      for (const alert of alerts) {
        const entity = alert.entities.find((candidate) => candidate.type === kind) as Record<string, unknown> | undefined;
        const value = entity?.[field!];
        if (value === undefined) continue;
        expect(value, `${alert.detectionId} ${kind}`).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
        mapped++;
      }
    }
    // Every account the demo names by object id somewhere: the users of 11 detections and the agent user.
    expect(mapped).toBeGreaterThanOrEqual(12);
  });

  it('names each blueprint with the principal object id the stream showed, in every alert', () => {
    const finance = alerts.flatMap((alert) => alert.entities.filter((entity) => entity.type === 'blueprint' && entity.id === 'b1a00000-0000-4000-8000-000000000001'));
    expect(finance.length).toBeGreaterThan(5);
    for (const entity of finance) expect(entity.principalId).toBe('b1a00000-0000-4000-8000-000000000201');
  });

  it('is byte for byte what scripts/gen-demo.ts writes now (regenerate with `node dist/scripts/gen-demo.js`)', () => {
    const committed = gunzipSync(readFileSync(DEMO)).toString('utf8');
    expect(committed).toBe(`${demoBodies(loadBases(REPO)).join('\n')}\n`);
  });
});
