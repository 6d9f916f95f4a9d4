/**
 * The Event Hubs batch handler the Function and the local consumer share, driven the way the
 * Functions worker drives it: `new InvocationContext({ triggerMetadata, retryContext, logHandler })`
 * and message bodies as the `dataType: 'string'` binding delivers them (parsed JSON, text, Buffers).
 * The pipeline behind it is the real one, in memory.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvocationContext } from '@azure/functions';
import { describe, expect, it } from 'vitest';
import { MemoryDeadLetterSink } from '../../src/alerts/consoleSinks';
import { buildApp } from '../../src/app';
import { AgentwatchError } from '../../src/errors';
import { handleEntraLogs, type EntraLogsTarget } from '../../src/host/entraLogsHandler';
import { withInvocationLog } from '../../src/host/logging';
import { batchMetaFromTrigger, utcIso } from '../../src/host/triggerMetadata';
import type { DeadLetter } from '../../src/ports';

const RECORDS = join(__dirname, '..', 'fixtures', 'records');
const record = (file: string) => JSON.parse(readFileSync(join(RECORDS, file), 'utf8')) as Record<string, unknown>;
const t2Autonomous = record('t2-autonomous.json');
const credentialAdded = record('audit-blueprint-credential-added.json');
const t1Exchange = record('t1-exchange.json');

const PARTITION = { fullyQualifiedNamespace: 'contoso-ns.servicebus.windows.net', eventHubName: 'entra-logs', consumerGroup: 'agentwatch', partitionId: '3' };

function invocation(messageCount: number, extra: { retryContext?: { retryCount: number; maxRetryCount: number } } = {}) {
  const logs: { level: string; text: string }[] = [];
  const context = new InvocationContext({
    invocationId: 'inv-1',
    functionName: 'entraLogs',
    logHandler: (level, ...args) => logs.push({ level, text: args.map(String).join(' ') }),
    triggerMetadata: {
      partitionContext: PARTITION,
      sequenceNumberArray: Array.from({ length: messageCount }, (_, index) => 100 + index),
      offsetArray: Array.from({ length: messageCount }, (_, index) => String(5000 + index * 700)),
      // Zone-less, as the host has been seen to send them.
      enqueuedTimeUtcArray: Array.from({ length: messageCount }, () => '2026-10-05T10:20:00.25'),
    },
    ...(extra.retryContext ? { retryContext: { ...extra.retryContext, exception: undefined } } : {}),
  });
  return { context, logs };
}

async function run(messages: unknown[], context: InvocationContext, target: EntraLogsTarget) {
  return withInvocationLog(context, () => handleEntraLogs(messages, context, async () => target));
}

describe('entraLogs handler', () => {
  it('reads parsed-JSON, string and Buffer bodies and dead-letters the one body that is not JSON, with its stream position', async () => {
    const app = await buildApp();
    const deadLetters = app.deadLetters as MemoryDeadLetterSink;
    const { context, logs } = invocation(4);
    const messages = [
      { records: [credentialAdded] },
      JSON.stringify({ records: [t1Exchange] }),
      Buffer.from(JSON.stringify({ records: [t2Autonomous] })),
      '<html>502 Bad Gateway</html>',
    ];

    const summary = await run(messages, context, { app, deadLetters });

    expect(summary).toMatchObject({ messages: 4, recordsRead: 3, events: 3, rejected: 1 });
    expect(deadLetters.letters).toHaveLength(1);
    expect(deadLetters.letters[0]).toMatchObject({
      code: 'RECORD_UNDECODABLE',
      position: { source: 'contoso-ns.servicebus.windows.net/entra-logs/agentwatch', partitionId: '3', sequenceNumber: '103', offset: '7100', messageIndex: 3 },
    });
    const summaryLine = logs.find((line) => line.text.includes('entraLogs batch'));
    expect(summaryLine?.level).toBe('warning');
    expect(summaryLine?.text).toContain('"firstSequenceNumber":"100"');
    expect(summaryLine?.text).toContain('"lastSequenceNumber":"103"');
  });

  it('accepts a single body when the host delivers one message outside an array', async () => {
    const app = await buildApp();
    const { context } = invocation(1);
    const summary = await run([{ records: [t2Autonomous] }], context, { app, deadLetters: app.deadLetters });
    expect(summary).toMatchObject({ messages: 1, events: 1, rejected: 0 });
  });

  it('rethrows a dependency failure with its code so the retry policy runs the batch again, dead-lettering nothing', async () => {
    const deadLetters = new MemoryDeadLetterSink();
    const failing = { processBatch: async () => Promise.reject(new AgentwatchError('STATE_UNAVAILABLE', 'Table Storage unreachable')) };
    const { context, logs } = invocation(2, { retryContext: { retryCount: 1, maxRetryCount: 5 } });
    await expect(run([{ records: [t2Autonomous] }, { records: [credentialAdded] }], context, { app: failing, deadLetters })).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE' });
    expect(deadLetters.letters).toEqual([]);
    expect(logs.some((line) => line.level === 'error' && line.text.includes('the retry policy will run it again'))).toBe(true);
  });

  it('on the last retry dead-letters every body as BATCH_ABANDONED before giving the batch up', async () => {
    const deadLetters = new MemoryDeadLetterSink();
    const failing = { processBatch: async () => Promise.reject(new AgentwatchError('SINK_TRANSIENT', 'outbox write failed')) };
    const bodies = [{ records: [t2Autonomous] }, '{"records":[]}'];
    const { context } = invocation(2, { retryContext: { retryCount: 5, maxRetryCount: 5 } });
    await expect(run(bodies, context, { app: failing, deadLetters })).rejects.toMatchObject({ code: 'SINK_TRANSIENT' });
    expect(deadLetters.letters.map((letter: DeadLetter) => [letter.code, letter.position.sequenceNumber, letter.position.offset, letter.payload])).toEqual([
      ['BATCH_ABANDONED', '100', '5000', bodies[0]],
      ['BATCH_ABANDONED', '101', '5700', bodies[1]],
    ]);
    expect(deadLetters.letters[0]!.reason).toContain('SINK_TRANSIENT');
  });

  it('still reports the original failure when the abandoned batch cannot be dead-lettered either', async () => {
    const failing = { processBatch: async () => Promise.reject(new AgentwatchError('STATE_UNAVAILABLE', 'Table Storage unreachable')) };
    const brokenDeadLetters = { put: async () => Promise.reject(new AgentwatchError('STATE_UNAVAILABLE', 'dead-letter table unreachable')) };
    const { context, logs } = invocation(1, { retryContext: { retryCount: 3, maxRetryCount: 3 } });
    await expect(run([{ records: [t2Autonomous] }], context, { app: failing, deadLetters: brokenDeadLetters })).rejects.toThrow('Table Storage unreachable');
    expect(logs.some((line) => line.level === 'error' && line.text.includes('lost past the checkpoint'))).toBe(true);
  });

  it('never abandons under an unbounded retry policy (maxRetryCount -1)', async () => {
    const deadLetters = new MemoryDeadLetterSink();
    const failing = { processBatch: async () => Promise.reject(new AgentwatchError('STATE_UNAVAILABLE', 'down')) };
    const { context } = invocation(1, { retryContext: { retryCount: 40, maxRetryCount: -1 } });
    await expect(run([{ records: [t2Autonomous] }], context, { app: failing, deadLetters })).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE' });
    expect(deadLetters.letters).toEqual([]);
  });
});

describe('trigger metadata → batch meta', () => {
  it('maps the index-aligned arrays and the partition context', () => {
    const meta = batchMetaFromTrigger(
      {
        partitionContext: PARTITION,
        sequenceNumberArray: [7, '8'],
        offsetArray: [4096, '8192'],
        enqueuedTimeUtcArray: ['2023-03-13T01:25:02.25', '2026-10-05T12:00:00+02:00'],
      },
      2,
    );
    expect(meta).toEqual({
      source: 'contoso-ns.servicebus.windows.net/entra-logs/agentwatch',
      partitionId: '3',
      sequenceNumbers: ['7', '8'],
      offsets: ['4096', '8192'],
      enqueuedTimes: ['2023-03-13T01:25:02.250Z', '2026-10-05T10:00:00.000Z'],
    });
  });

  it('leaves out what is missing or malformed instead of guessing', () => {
    const meta = batchMetaFromTrigger({ partitionContext: 'nope', sequenceNumberArray: [null, {}], enqueuedTimeUtcArray: ['not a time'] }, 3);
    expect(meta).toEqual({ sequenceNumbers: [undefined, undefined, undefined], offsets: [undefined, undefined, undefined], enqueuedTimes: [undefined, undefined, undefined] });
    expect(batchMetaFromTrigger(undefined, 0)).toEqual({ sequenceNumbers: [], offsets: [], enqueuedTimes: [] });
  });

  it.each([
    ['2023-03-13T01:25:02.25', '2023-03-13T01:25:02.250Z'],
    ['2023-03-13 01:25:02', '2023-03-13T01:25:02.000Z'],
    ['2026-07-18T14:03:03Z', '2026-07-18T14:03:03.000Z'],
    ['7/18/2026 2:03:03 PM', '2026-07-18T14:03:03.000Z'],
  ])('reads %s as UTC (%s)', (text, iso) => {
    expect(utcIso(text)).toBe(iso);
  });
});
