/**
 * `agentwatch replay --output ndjson test/fixtures/scenarios/takeover.ndjson` (the compiled CLI, as
 * `npx agentwatch` runs it; `npm test` builds first): the takeover
 * scenario raises the takeover chain and the credential-used alert, and each alert's `actions`
 * shows the planned containment in `dryRun` — replay never has a Graph client and never acts.
 *
 * Fixture provenance (test/fixtures/scenarios/takeover.ndjson): constructed for agentwatch by
 * patching the shared fixture bases in detections/fixtures/ (fictional tenant "Northwind Traders",
 * fake GUIDs, documentation IP ranges; see detections/fixtures/README.md). The story, as raw Event
 * Hub bodies in delivery order:
 *   2026-10-01  the Finance Agents Blueprint (app b1a…001), its principal, owner dana.ops, the agent
 *               identity invoice-agent (a1d…011) and its agent user are created;
 *   10-02..04   routine T1 exchanges and T2 sign-ins from the Finance runtime 198.51.100.10;
 *   10-05 09:00 eve.contractor (not an owner) adds a second client secret 5ec…0e1 to the blueprint
 *               from 203.0.113.66;
 *         09:12 the blueprint's T1 exchange from 203.0.113.66 presents that new secret;
 *         09:20 eve grants invoice-agent the Graph app role Mail.ReadWrite;
 *         09:25 invoice-agent calls Graph from 203.0.113.66.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replayNdjson } from '../support/replayCli';

const SCENARIO = join(__dirname, '..', 'fixtures', 'scenarios', 'takeover.ndjson');
const BLUEPRINT_APP = 'b1a00000-0000-4000-8000-000000000001';
const AGENT = 'a1d00000-0000-4000-8000-000000000011';
const NEW_SECRET = '5ec00000-0000-4000-8000-0000000000e1';
const REQUIRED_RULES = ['agent-takeover-chain', 'blueprint-credential-added-then-used'].map((id) => join(__dirname, '..', '..', 'detections', `${id}.yaml`));

describe.skipIf(!REQUIRED_RULES.every((file) => existsSync(file)))('replay of the takeover scenario shows the planned response in dryRun', () => {
  it('prints one JSON alert per line, with the containment the rules propose planned in dryRun and nothing acted on', async () => {
    const { code, stderr, alerts } = await replayNdjson([SCENARIO]);
    expect(code, stderr).toBe(0);
    expect(alerts.length).toBeGreaterThan(0);

    const chain = alerts.filter((alert) => alert.detectionId === 'agent-takeover-chain');
    expect(chain, stderr).toHaveLength(1);
    expect(chain[0]!.actions.map((action) => [action.action, action.mode, action.outcome, action.targetId, action.targetType])).toEqual([
      ['confirmCompromised', 'dryRun', 'planned', AGENT, 'agentIdentity'],
      ['disableAgentIdentity', 'dryRun', 'planned', AGENT, 'agentIdentity'],
    ]);
    for (const action of chain[0]!.actions) {
      expect(action.reason).toMatch(/^dry run: would .* \(not verified: no Graph client in this host\)$/);
      expect(action.actionId).toMatch(/^act-[0-9a-f]{32}$/);
    }

    const used = alerts.filter((alert) => alert.detectionId === 'blueprint-credential-added-then-used');
    expect(used).toHaveLength(1);
    expect(used[0]!.actions).toMatchObject([{ action: 'removeBlueprintCredential', mode: 'dryRun', outcome: 'planned', targetId: BLUEPRINT_APP, targetType: 'blueprint' }]);
    expect(used[0]!.actions[0]!.reason).toBe(`dry run: would remove credential ${NEW_SECRET} from blueprint ${BLUEPRINT_APP} (not verified: no Graph client in this host)`);

    // No alert anywhere claims an action was taken.
    const outcomes = new Set(alerts.flatMap((alert) => alert.actions.map((action) => action.outcome)));
    expect([...outcomes].every((outcome) => outcome === 'planned' || outcome === 'skipped')).toBe(true);
  });

  it('replaying the scenario twice in one run plans each action once', async () => {
    const { code, alerts } = await replayNdjson([SCENARIO, SCENARIO]);
    expect(code).toBe(0);
    const planned = alerts.flatMap((alert) => alert.actions.filter((action) => action.outcome === 'planned').map((action) => action.actionId));
    expect(planned.length).toBeGreaterThanOrEqual(3);
    expect(new Set(planned).size).toBe(planned.length);
  });
});
