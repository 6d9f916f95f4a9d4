import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ingestBatch, validateRecord } from '../../src/ingest';
import { splitMessages } from '../../src/ingest/replayInput';
import { HAVE_REAL_FIXTURES, loadRecord, realBodyLines, realRecords } from '../fixtures/records/load';

const t2 = (): Record<string, unknown> => loadRecord('t2-autonomous');
const audit = (): Record<string, unknown> => loadRecord('audit-delegated-grant');

describe('decoding Event Hub bodies', () => {
  it.each([
    ['an object (the Functions host parsed the JSON)', () => ({ records: [t2(), audit()] })],
    ['a string', () => JSON.stringify({ records: [t2(), audit()] })],
    ['a string with a byte order mark', () => `\ufeff${JSON.stringify({ records: [t2(), audit()] })}`],
    ['a Buffer', () => Buffer.from(JSON.stringify({ records: [t2(), audit()] }))],
    ['a gzip Buffer', () => gzipSync(JSON.stringify({ records: [t2(), audit()] }))],
    ['an array of bodies', () => [{ records: [t2()] }, { records: [audit()] }]],
    ['an array of bare records', () => [t2(), audit()]],
    ['two NDJSON lines in one body', () => `${JSON.stringify({ records: [t2()] })}\n${JSON.stringify(audit())}\n`],
  ])('accepts %s', (_shape, body) => {
    const { events, deadLetters, stats } = ingestBatch([body()]);
    expect(deadLetters).toEqual([]);
    expect(events.map((e) => e.kind)).toEqual(['signIn', 'audit']);
    expect(stats).toMatchObject({ messages: 1, recordsRead: 2, events: 2, rejected: 0 });
  });

  it('leaves the raw record off pipeline events unless asked to keep it', () => {
    const record = t2();
    const [lean] = ingestBatch([{ records: [record] }]).events;
    expect(lean!.raw).toBeUndefined();
    const [kept] = ingestBatch([{ records: [record] }], {}, Date.now, { keepRaw: true }).events;
    expect(kept!.raw).toBe(record);
    const { raw: _raw, ...rest } = kept!;
    expect(rest).toEqual(lean);
  });

  it('mixes shapes in one batch and keeps message order', () => {
    const { events } = ingestBatch([t2(), JSON.stringify({ records: [audit()] }), Buffer.from(JSON.stringify([loadRecord('agent-user')]))]);
    expect(events.map((e) => e.flow ?? e.kind)).toEqual(['t2Autonomous', 'audit', 'agentUser']);
  });

  it('dead-letters undecodable bodies with their position and carries on', () => {
    const { events, deadLetters, stats } = ingestBatch(
      ['{"records": [', Buffer.from([0x1f, 0x8b, 0x00, 0x01]), 42, '', { records: 'nope' }, { records: [t2()] }],
      { partitionId: '3', sequenceNumbers: [100, 101, 102, 103, 104, 105], offsets: ['9000', '9100', '9200', '9300', '9400', '9500'] },
    );
    expect(events).toHaveLength(1);
    expect(stats.rejected).toBe(5);
    expect(deadLetters.map((d) => [d.code, d.position.messageIndex, d.position.sequenceNumber])).toEqual([
      ['RECORD_UNDECODABLE', 0, '100'],
      ['RECORD_UNDECODABLE', 1, '101'],
      ['RECORD_UNDECODABLE', 2, '102'],
      ['RECORD_UNDECODABLE', 3, '103'],
      ['RECORD_UNDECODABLE', 4, '104'],
    ]);
    expect(deadLetters[0]!.reason).toMatch(/^body is not JSON/);
    expect(deadLetters[1]!.reason).toMatch(/^gzip body could not be inflated/);
    expect(deadLetters[2]!.reason).toBe('body is a number, not a JSON object or array');
    expect(deadLetters[3]!.reason).toBe('empty body');
    expect(deadLetters[4]!.reason).toBe('body "records" is not an array');
    expect(deadLetters[0]!.position).toEqual({ messageIndex: 0, partitionId: '3', sequenceNumber: '100', offset: '9000' });
  });

  it('dead-letters malformed records with partition, sequence number, message and record index; the rest of the body goes on', () => {
    const noCategory = t2();
    delete noCategory.category;
    const badProperties = { ...t2(), properties: 'not an object' };
    const badErrorCode = t2();
    (badErrorCode.properties as Record<string, unknown>).status = { errorCode: { nested: true } };
    const badTargets = audit();
    (badTargets.properties as Record<string, unknown>).targetResources = { not: 'an array' };
    const { events, deadLetters, stats } = ingestBatch([{ records: [t2(), noCategory, badProperties, 'text', badErrorCode, badTargets, audit()] }], {
      partitionId: '1',
      sequenceNumbers: [7],
    });
    expect(events.map((e) => e.kind)).toEqual(['signIn', 'audit']);
    expect(deadLetters.map((d) => [d.position.recordIndex, d.reason])).toEqual([
      [1, 'record has no category'],
      [2, 'ServicePrincipalSignInLogs record /properties must be object'],
      [3, 'record is not a JSON object'],
      [4, 'ServicePrincipalSignInLogs record /properties/status/errorCode must be integer | string | null'],
      [5, 'AuditLogs record /properties/targetResources must be array | null'],
    ]);
    for (const letter of deadLetters) expect(letter.position).toMatchObject({ partitionId: '1', sequenceNumber: '7', messageIndex: 0 });
    expect(deadLetters[1]!.category).toBe('ServicePrincipalSignInLogs');
    expect(deadLetters[1]!.payload).toBe(badProperties);
    expect(stats).toMatchObject({ recordsRead: 7, rejected: 5, events: 2 });
    expect(stats.rejectedByReason['record has no category']).toBe(1);
    expect(stats.byCategory['(none)']).toBe(2);
  });

  it('counts unused categories as skipped, not rejected, whatever their shape', () => {
    const { events, deadLetters, stats } = ingestBatch([
      { records: [{ category: 'ProvisioningLogs', properties: {} }, { category: 'ADFSSignInLogs', properties: 'x' }, { category: 'NetworkAccessTrafficLogs', properties: {} }, t2()] },
    ]);
    expect(deadLetters).toEqual([]);
    expect(events).toHaveLength(1);
    expect(stats.skippedByCategory).toEqual({ ProvisioningLogs: 1, ADFSSignInLogs: 1, NetworkAccessTrafficLogs: 1 });
    expect(stats.byCategory).toMatchObject({ ProvisioningLogs: 1, ServicePrincipalSignInLogs: 1 });
  });

  it('uses the enqueued time as event time only when a record has no time at all', () => {
    const timeless = t2();
    delete timeless.time;
    delete (timeless.properties as Record<string, unknown>).createdDateTime;
    const { events } = ingestBatch([{ records: [timeless] }, { records: [t2()] }], { enqueuedTimes: ['2026-11-24T10:00:00', '2026-11-24T10:00:00Z'] });
    expect(events[0]!.time).toBe('2026-11-24T10:00:00.000Z');
    expect(events[1]!.time).toBe('2026-10-05T10:15:58.441Z');
    const { deadLetters } = ingestBatch([{ records: [timeless] }]);
    expect(deadLetters[0]!.reason).toBe('sign-in has no parseable createdDateTime or envelope time');
  });

  it('an AgentsInfo row without an agent id is rejected; with one it is an inventory event', () => {
    const row = loadRecord('agents-info');
    const { events } = ingestBatch([row]);
    expect(events[0]!.kind).toBe('inventory');
    delete (row.properties as Record<string, unknown>).AgentId;
    const rejected = ingestBatch([row]);
    expect(rejected.deadLetters[0]!.reason).toBe('AgentsInfo record /properties is missing AgentId');
  });

  it('matches categories case-insensitively but reports them as sent', () => {
    const record = { ...t2(), category: 'servicePrincipalSignInLogs' };
    const { events, stats } = ingestBatch([record]);
    expect(events[0]!.category).toBe('servicePrincipalSignInLogs');
    expect(stats.byCategory).toEqual({ servicePrincipalSignInLogs: 1 });
  });
});

describe('record schemas', () => {
  it('accept every constructed agent-flow record', () => {
    for (const name of ['t1-exchange', 't2-autonomous', 't2-obo', 'agent-user', 'audit-add-blueprint', 'audit-fic-changed', 'agent-risk-event', 'risky-agent', 'agents-info', 'ai-agents-info']) {
      const record = loadRecord(name);
      const { deadLetters, events } = ingestBatch([record]);
      expect(deadLetters, name).toEqual([]);
      expect(events, name).toHaveLength(1);
    }
  });

  it.each([
    ['signIn', { category: 'SignInLogs', properties: { agent: 5 } }, '/properties/agent must be object | string | null'],
    ['audit', { category: 'AuditLogs', properties: { targetResources: [{ modifiedProperties: 'x' }] } }, '/properties/targetResources/0/modifiedProperties must be array | null'],
    ['riskEvent', { category: 'UserRiskEvents', properties: { riskLevel: 3 } }, '/properties/riskLevel must be string | null'],
    ['graphActivity', { category: 'MicrosoftGraphActivityLogs', properties: { responseStatusCode: true } }, '/properties/responseStatusCode must be integer | string | null'],
    ['riskyPrincipal', { category: 'RiskyAgents' }, '/ is missing properties'],
  ] as const)('%s: reject wrong types where they matter', (family, record, reason) => {
    expect(validateRecord(family, record)).toBe(reason);
  });
});

describe.skipIf(!HAVE_REAL_FIXTURES)('the real Event Hub bodies', () => {
  it('decode and validate with zero rejections (a rejection would mean a schema too strict for real data)', () => {
    const lines = realBodyLines();
    const { stats, deadLetters } = ingestBatch(lines, { source: 'eventhub-bodies.ndjson' });
    expect(deadLetters).toEqual([]);
    expect(stats).toMatchObject({ messages: 43, recordsRead: 111, rejected: 0, events: 99 });
    expect(stats.skippedByCategory).toEqual({ ADFSSignInLogs: 1, ProvisioningLogs: 4, AzureADGraphActivityLogs: 7 });
    expect(stats.byCategory).toEqual({
      SignInLogs: 5,
      NonInteractiveUserSignInLogs: 18,
      ServicePrincipalSignInLogs: 10,
      ManagedIdentitySignInLogs: 35,
      ADFSSignInLogs: 1,
      MicrosoftServicePrincipalSignInLogs: 2,
      AuditLogs: 13,
      RiskyUsers: 3,
      UserRiskEvents: 6,
      ProvisioningLogs: 4,
      MicrosoftGraphActivityLogs: 7,
      AzureADGraphActivityLogs: 7,
    });
  });

  it('each record validates against its family schema on its own', () => {
    for (const { line, record } of realRecords()) {
      const { deadLetters } = ingestBatch([record]);
      expect(deadLetters, `body line ${line}`).toEqual([]);
    }
  });

  it('the replay splitter reads the file into the same 43 bodies', () => {
    const { messages, sources } = splitMessages(`${realBodyLines().join('\n')}\n`, 'bodies.ndjson');
    expect(messages).toHaveLength(43);
    expect(sources[42]).toBe('bodies.ndjson:43');
  });
});

describe('splitting replay input', () => {
  const body = { records: [{ category: 'AuditLogs', properties: {} }] };

  it('NDJSON, a JSON array, a pretty-printed body, and a broken line in the middle', () => {
    expect(splitMessages(`${JSON.stringify(body)}\n\n${JSON.stringify(body)}\r\n`, 'f').messages).toEqual([body, body]);
    expect(splitMessages(JSON.stringify([body, body]), 'f')).toEqual({ messages: [body, body], sources: ['f[0]', 'f[1]'] });
    expect(splitMessages(JSON.stringify(body, null, 2), 'f').messages).toEqual([body]);
    const pretty = `${JSON.stringify(body, null, 2)}\n${JSON.stringify(body, null, 2)}\n`;
    expect(splitMessages(pretty, 'f').messages).toEqual([body, body]);
    const broken = splitMessages(`${JSON.stringify(body)}\n{"records": [ {"category": "x"\n${JSON.stringify(body)}\n`, 'f');
    expect(broken.messages).toHaveLength(3);
    expect(typeof broken.messages[1]).toBe('string');
    expect(broken.sources).toEqual(['f:1', 'f:2', 'f:3']);
  });

  it('keeps braces inside strings out of the depth count', () => {
    const tricky = { records: [{ category: 'AuditLogs', properties: { note: '} { [ ]' } }] };
    expect(splitMessages(`${JSON.stringify(tricky, null, 2)}\n${JSON.stringify(body)}`, 'f').messages).toEqual([tricky, body]);
  });
});
