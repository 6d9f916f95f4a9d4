/**
 * Normalization of the real (captured, redacted or hand-edited) records in
 * ../shared/fixtures/entra-real: one concrete case per category family and per published quirk.
 */
import { describe, expect, it } from 'vitest';
import { normalizeRecord, type AgentEvent } from '../../src/normalize';
import { HAVE_REAL_FIXTURES, realBodyLines, realRecords } from '../fixtures/records/load';

/** The normalized record `index` of body line `line` (1-based, as in eventhub-bodies.index.tsv). */
function event(line: number, index = 0): AgentEvent {
  const body = JSON.parse(realBodyLines()[line - 1]!) as { records: unknown[] };
  const normalized = normalizeRecord(body.records[index]);
  if (!normalized) throw new Error(`line ${line} record ${index} was skipped`);
  return normalized;
}

describe.skipIf(!HAVE_REAL_FIXTURES)('normalizing the real Entra fixtures', () => {
  it('turns every record of a used category into an event and skips only the unused categories', () => {
    const skipped = new Set<string>();
    let events = 0;
    for (const { record } of realRecords()) {
      const e = normalizeRecord(record);
      if (e) {
        events++;
        expect(e.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
        expect(e.id.length).toBeGreaterThan(0);
        expect(e.raw).toBe(record);
      } else skipped.add(record.category);
    }
    expect(events).toBe(99);
    expect([...skipped].sort()).toEqual(['ADFSSignInLogs', 'AzureADGraphActivityLogs', 'ProvisioningLogs']);
  });

  it('SignInLogs: an interactive user through Azure Portal', () => {
    const e = event(1);
    expect(e).toMatchObject({
      id: '933f20c0-efdf-477f-9586-e5cc566d2e00',
      time: '2022-01-24T05:10:08.681Z',
      category: 'SignInLogs',
      kind: 'signIn',
      flow: 'nonAgent',
      isInteractive: true,
      tenantId: '4bbb79f7-5724-4c9e-95f3-de075f6ec090',
      actor: { type: 'user', id: '2ce85a15-8640-465d-b916-d2eac620a717', upn: 'mpliftrelastic20210901@outlook.com' },
      client: { appId: 'c44b4083-3bb0-49c1-b47d-974e53cbdf3c', name: 'Azure Portal' },
      resource: { appId: '797f4846-ba00-4fd7-ba43-dac1f8f63013', name: 'Windows Azure Service Management API' },
      ip: '1.128.3.4',
      location: 'IN',
      result: { status: 'success', code: '0' },
    });
    expect(e.subject).toEqual(e.actor);
  });

  it('NonInteractiveUserSignInLogs: Level as int, no agent block', () => {
    const e = event(2);
    expect(e).toMatchObject({ category: 'NonInteractiveUserSignInLogs', flow: 'nonAgent', isInteractive: false, actor: { type: 'user' } });
    expect(e.agentType).toBeUndefined();
  });

  it('ServicePrincipalSignInLogs: the app acts as itself, with the key it used', () => {
    const e = event(5);
    expect(e).toMatchObject({
      flow: 'nonAgent',
      actor: { type: 'servicePrincipal', id: 'b029d485-a308-4311-8720-fb3192e5284e', appId: '6131d760-7fda-4db5-8bb1-b771898e9f15', name: 'Terraform-Datadog-CLI' },
      credential: { keyId: 'dbcd79c0-c3ea-46b9-9604-ff40d43b8618' },
      risk: { level: 'low', aggregatedLevel: 'low', state: 'none' },
    });
    expect(e.client).toBeUndefined();
  });

  it('a failed service principal sign-in (expired secret) with a tenant id that is not a GUID', () => {
    const e = event(15);
    expect(e.result).toEqual({ status: 'failure', code: '7000222' });
    expect(e.tenantId).toBe('1111111111-902d-4dea-8026-5a790862fede');
  });

  it('ManagedIdentitySignInLogs: empty ipAddress and no location stay absent', () => {
    const e = event(7);
    expect(e.actor).toMatchObject({ type: 'managedIdentity', id: '9d370547-cb61-4753-be23-68534909af90' });
    expect(e.ip).toBeUndefined();
    expect(e.location).toBeUndefined();
  });

  it('a notAgentic agent block is kept, lower-cased, and the flow stays nonAgent', () => {
    const e = event(40);
    expect(e).toMatchObject({ category: 'ManagedIdentitySignInLogs', agentType: 'notagentic', agentSubjectType: 'notagentic', flow: 'nonAgent' });
    expect(e.arrival).toBe('2026-07-20T08:33:45.379Z');
    expect(e.time).toBe('2026-07-20T08:31:21.331Z');
  });

  it('MicrosoftServicePrincipalSignInLogs: failure code from status, empty userId ignored', () => {
    const e = event(39);
    expect(e.result).toMatchObject({ status: 'failure', code: '7000113' });
    expect(e.actor).toMatchObject({ type: 'servicePrincipal', appId: '1b912ec3-a9dd-4c4d-a53e-76aa7adb28d7', ownerTenantId: 'f8cdef31-a31e-4b4a-93e4-5f571e91255a' });
    expect(e.client).toBeUndefined();
  });

  it('a US 12-hour envelope time, durationMs and level as strings', () => {
    const e = event(17);
    expect(e.arrival).toBe('2025-11-14T01:48:53.000Z');
    expect(e.time).toBe('2025-11-14T01:46:16.428Z');
  });

  it('a sign-in without createdDateTime falls back to the envelope time', () => {
    const e = event(20, 1);
    expect(e.time).toBe(e.arrival);
    expect(e.time).toBe('2026-07-10T20:03:31.273Z');
  });

  it('AuditLogs: a key added to a service principal by a managed identity', () => {
    const e = event(21);
    expect(e).toMatchObject({
      id: 'Directory_53161141-e3f4-4944-85b6-7b953f17265e_6X649_134684731',
      kind: 'audit',
      time: '2022-01-22T18:15:02.516Z',
      actor: { type: 'servicePrincipal', id: 'b9814691-9ca1-4e55-a1ac-8ef5dd010ec0', name: 'Managed Service Identity' },
      subject: { type: 'servicePrincipal', id: 'a7d5dcbe-0627-4ddf-a2f4-86b6785bcc42', appId: 'a70a7931-c387-4dce-9f35-fbf95bdcc91e' },
      ip: '1.128.3.4',
      result: { status: 'success' },
    });
    expect(e.audit).toMatchObject({ operation: 'Add service principal credentials', category: 'ApplicationManagement', operationType: 'Update' });
    expect(e.audit!.credentialsAdded).toEqual([
      { keyId: 'd747da7e-e11b-4af2-aede-0487c44067af', type: 'asymmetricx509cert', usage: 'verify', displayName: 'CN=a70a7931-c387-4dce-9f35-fbf95bdcc91e' },
    ]);
    expect(e.audit!.credentialsRemoved).toEqual([]);
    expect(e.audit!.modifiedPropertyNames).toEqual(expect.arrayContaining(['KeyDescription', 'Included Updated Properties', 'TargetId.ServicePrincipalNames']));
    const keyDescription = e.audit!.targets[0]!.modifiedProperties.find((m) => m.name === 'KeyDescription')!;
    expect(Array.isArray(keyDescription.newValue)).toBe(true);
    expect((keyDescription.newValue as string[]).length).toBe(3);
    expect(e.audit!.targets[0]!.modifiedProperties.find((m) => m.name === 'Included Updated Properties')!.newValue).toBe('KeyDescription');
  });

  it('AuditLogs: an invalid IPv6 caller address is kept as sent, a tenant only in resourceId is found', () => {
    expect(event(22, 1).ip).toBe('::2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6');
    expect(event(24).tenantId).toBe('c7f1e3ce-ba66-40a7-91bd-9594b36223fc');
  });

  it('AuditLogs: a failed role assignment keeps its reason and names the member as grantee', () => {
    const e = event(26);
    expect(e.result).toMatchObject({ status: 'failure', reason: 'The directory object quota limit for the tenant has been exceeded.' });
    expect(e.audit!.grantee).toMatchObject({ id: 'a7d5dcbe-0627-4ddf-a2f4-86b6785bcc42', type: 'servicePrincipal' });
  });

  it('AuditLogs: roles as a string and a lower-case level do not get in the way', () => {
    const e = event(27, 1);
    expect(e.actor).toMatchObject({ type: 'user', upn: 'username', name: 'User Registration Service' });
    expect(e.audit!.targets[0]).toMatchObject({ rawType: 'Device', type: 'unknown', name: 'LAPTOP-12' });
  });

  it('RiskyUsers: snapshot time from riskLastUpdatedDateTime, one-digit hour, a per-snapshot id', () => {
    const first = event(28, 0);
    expect(first).toMatchObject({
      kind: 'riskyPrincipal',
      id: '51e26eae-d07b-44e5-bb0b-249f49569a8c@2022-08-22T18:11:52.702Z',
      arrival: '2022-08-22T18:11:52.000Z',
      subject: { type: 'user', id: '51e26eae-d07b-44e5-bb0b-249f49569a8c', upn: 'joe.danger@mauriziobrancaoutlook.onmicrosoft.com' },
      risk: { level: 'medium', state: 'atrisk' },
    });
    expect(event(28, 1).time).toBe('2022-09-09T09:59:27.958Z');
  });

  it('UserRiskEvents: detection time, event type, correlation id from properties (not the envelope copy of the id)', () => {
    const e = event(29);
    expect(e).toMatchObject({
      kind: 'risk',
      id: 'ce0ed07f9ccf5be15e4b97d2979af6569b1f67db87ddc9b88b5bb743ea091e47',
      time: '2022-08-22T18:05:06.133Z',
      correlationId: '266133c2-fabb-492f-9ebf-bdf12317b817',
      ip: '67.43.156.42',
      risk: { level: 'high', state: 'atrisk', eventType: 'anonymizedipaddress' },
    });
  });

  it('UserRiskEvents: mitreTechniques from additionalInfo JSON-in-string', () => {
    expect(event(43).risk).toMatchObject({ level: 'high', eventType: 'maliciousipaddress', mitreTechniques: ['T1078'] });
  });

  it('MicrosoftGraphActivityLogs: app-only call with a UPN in the path', () => {
    const e = event(41);
    expect(e).toMatchObject({
      kind: 'graphActivity',
      time: '2026-07-16T02:00:45.015Z',
      tenantId: '4b8c18bd-2f9f-4227-af55-9f1061cf9c32',
      actor: { type: 'servicePrincipal', id: '87d30957-9758-4040-949e-9e9fe9c7cfcf', appId: 'c98e5057-edde-4666-b301-186a01b4dc58' },
      result: { status: 'success', code: '200' },
      graph: {
        method: 'POST',
        path: '/users/{id}/informationProtection/batchClassifyAndEvaluate',
        statusCode: 200,
        roles: ['Device.Read.All', 'GroupMember.Read.All', 'User.Read.All'],
        scopes: [],
        signInActivityId: 'OPD3UZnmTkud24wRw6ATAA',
      },
    });
  });

  it('MicrosoftGraphActivityLogs: upper-case resourceId, invalid GUIDs lower-cased, query stripped from the path', () => {
    const e = event(35);
    expect(e.actor).toMatchObject({ id: 'f2aq4c71-31e3-5066-92g3-4b3dfbav50f0', appId: 'a5a68e12-268a-3c91-a5e2-b9254e67hb29' });
    expect(e.graph!.path).toBe('/organization/{id}');
    expect(e.id).toBe('f7739da0-e6d1-4e3f-985a-64937fbge347');
  });
});
