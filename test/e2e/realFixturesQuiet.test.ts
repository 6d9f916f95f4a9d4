/**
 * Replaying the real, benign Entra records of ../shared/fixtures/entra-real/eventhub-bodies.ndjson
 * (111 records in 43 bodies; provenance in that folder's PROVENANCE.md) raises no alert.
 *
 * Why none, checked record family by record family against each detection's preconditions:
 * - Sign-ins (SignInLogs, NonInteractive, ServicePrincipal, ManagedIdentity, MicrosoftServicePrincipal):
 *   no record is agentic — the two carrying `properties.agent` say notAgentic, the rest predate the
 *   block — so every one normalizes to flow `nonAgent`: no T1 exchange, no T2, no OBO, and no
 *   client is a Copilot Studio connector of a known maker. Every sign-in detection needs one of those.
 * - AuditLogs: `Add service principal credentials` (a new certificate, key d747da7e-…) and seven
 *   `Update service principal` target "billing-test-wus", an ordinary service principal changed by
 *   Managed Service Identity, which nothing in the stream shows to be a blueprint, blueprint
 *   principal, agent identity or classic agent; `Add member to role` failed and names that service
 *   principal, not an agent user; `Update device` / `Update policy` concern no detection.
 * - RiskyUsers / UserRiskEvents put real test users at medium and high risk: risky-user-obo
 *   remembers them, but no agent acts on their behalf.
 * - No AgentRiskEvents, RiskyAgents or AgentsInfo records exist in the corpus.
 * The control case proves the quietness comes from those preconditions and not from blindness:
 * told (through `--inventory`) that "billing-test-wus" is an agent identity, the same replay raises
 * exactly agent-identity-credential-attempt for it, once.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { replayNdjson } from '../support/replayCli';

const SHARED = join(__dirname, '..', '..', '..', 'shared');
const BODIES = join(SHARED, 'fixtures', 'entra-real', 'eventhub-bodies.ndjson');
/** "billing-test-wus": the service principal of the real credential audits. */
const BILLING_SP = 'a7d5dcbe-0627-4ddf-a2f4-86b6785bcc42';

describe.skipIf(!existsSync(BODIES))('the real benign fixtures stay quiet', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'agentwatch-real-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('reads all 111 records, rejects none, and raises no alert', async () => {
    const { code, alerts, stderr } = await replayNdjson([BODIES]);
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/records read: 111\b/);
    expect(stderr).toMatch(/rejected: 0\b/);
    expect(alerts).toEqual([]);
  });

  it('control: once the inventory says the real target is an agent identity, its credential audits alert once', async () => {
    const seed = join(scratch, 'inventory.json');
    writeFileSync(seed, JSON.stringify({ entities: [{ kind: 'agentIdentity', id: BILLING_SP, name: 'billing-test-wus', parentId: 'b1a00000-0000-4000-8000-000000000001' }] }));
    const { code, alerts, stderr } = await replayNdjson([BODIES], ['--inventory', seed]);
    expect(code, stderr).toBe(0);
    expect(alerts.map((alert) => [alert.detectionId, alert.entities.find((entity) => entity.type === 'agentIdentity')?.id])).toEqual([['agent-identity-credential-attempt', BILLING_SP]]);
    expect(alerts[0]!.details?.keyIds).toEqual(['d747da7e-e11b-4af2-aede-0487c44067af']);
  });
});
