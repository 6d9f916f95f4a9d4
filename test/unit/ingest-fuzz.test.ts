/**
 * Generated input: thousands of malformed bodies and records mixed with good ones. Ingest must
 * never throw, must account for every record (event, skipped or dead letter), must give every dead
 * letter a reason and a position, and must still turn every good record into an event.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/ingest';
import { USED_CATEGORIES } from '../../src/normalize';
import { loadRecord } from '../fixtures/records/load';

const TEMPLATES = ['t1-exchange', 't2-autonomous', 't2-obo', 'agent-user', 'audit-add-blueprint', 'audit-blueprint-credential-added', 'audit-fic-changed', 'audit-delegated-grant', 'audit-consent', 'agent-risk-event', 'risky-agent', 'agents-info', 'ai-agents-info'].map(loadRecord);

let goodCounter = 0;
/** A valid record with a unique id, so the test can find its event. */
const goodRecord = fc.constantFrom(...TEMPLATES).map((template) => {
  const record = structuredClone(template);
  const tag = `good-${++goodCounter}`;
  if (record.category === 'AgentsInfo') (record.properties as Record<string, unknown>).AgentId = tag;
  else if (record.category === 'AIAgentsInfo') (record.properties as Record<string, unknown>).AIAgentId = tag;
  else if (record.category === 'RiskyAgents') (record.properties as Record<string, unknown>).id = tag;
  else (record.properties as Record<string, unknown>).id = tag;
  return { record, tag };
});

/** A valid record with one field replaced by anything at all (may or may not stay valid). */
const mutatedRecord = fc
  .tuple(fc.constantFrom(...TEMPLATES), fc.constantFrom('time', 'category', 'properties', 'properties.id', 'properties.createdDateTime', 'properties.status', 'properties.agent', 'properties.targetResources', 'properties.initiatedBy', 'properties.additionalInfo', 'properties.riskLastModifiedDateTime', 'properties.DeclaredTools', 'properties.Owners', 'properties.appId', 'properties.activityDisplayName'), fc.anything({ maxDepth: 3 }))
  .map(([template, path, value]) => {
    const record = structuredClone(template) as Record<string, unknown>;
    const [head, tail] = path.split('.') as [string, string | undefined];
    if (tail === undefined) record[head] = value;
    else if (typeof record[head] === 'object' && record[head] !== null) (record[head] as Record<string, unknown>)[tail] = value;
    return record;
  });

/** Objects with a used category and random properties. */
const randomRecord = fc.record({ category: fc.constantFrom(...USED_CATEGORIES), properties: fc.oneof(fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 })), fc.anything({ maxDepth: 1 })) }, { requiredKeys: ['category'] });

const anyRecord = fc.oneof(mutatedRecord, randomRecord, fc.anything({ maxDepth: 2 }));

/** A generated records envelope, told apart from generated JSON values by its class. */
class Envelope {
  constructor(
    readonly good: { record: unknown; tag: string }[],
    readonly bad: unknown[],
  ) {}
}

/** A body: any JSON value, text, bytes (sometimes gzip magic), or a records envelope mixing good and bad records. */
const body = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.array(goodRecord, { maxLength: 3 }), fc.array(anyRecord, { maxLength: 5 })).map(([good, bad]) => new Envelope(good, bad)) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 20 }).map((bytes) => Buffer.from([0x1f, 0x8b, ...bytes])) },
);

describe('ingest on generated malformed input', () => {
  it('never throws, accounts for every record, and keeps every good record', () => {
    let bodies = 0;
    let rejected = 0;
    fc.assert(
      fc.property(fc.array(body, { minLength: 1, maxLength: 12 }), fc.boolean(), (generated, asText) => {
        const goodTags: string[] = [];
        const messages = generated.map((b) => {
          if (!(b instanceof Envelope)) return b;
          const { good, bad } = b;
          goodTags.push(...good.map((g) => g.tag));
          // Interleave good and bad records in one envelope; sometimes as text, as the host may send it.
          const records: unknown[] = [];
          for (let i = 0; i < Math.max(good.length, bad.length); i++) {
            if (i < bad.length) records.push(bad[i]);
            if (i < good.length) records.push(good[i]!.record);
          }
          const envelope = { records };
          return asText ? JSON.stringify(envelope) : envelope;
        });
        bodies += messages.length;
        const sequenceNumbers = messages.map((_, i) => 1000 + i);
        const result = ingestBatch(messages, { partitionId: '0', sequenceNumbers });
        rejected += result.stats.rejected;

        const skipped = Object.values(result.stats.skippedByCategory).reduce((a, b) => a + b, 0);
        const recordLetters = result.deadLetters.filter((d) => d.code !== 'RECORD_UNDECODABLE').length;
        expect(result.events.length + skipped + recordLetters).toBe(result.stats.recordsRead);
        expect(result.stats.rejected).toBe(result.deadLetters.length);
        for (const letter of result.deadLetters) {
          expect(letter.reason.length).toBeGreaterThan(0);
          expect(letter.position.partitionId).toBe('0');
          expect(letter.position.messageIndex).toBeGreaterThanOrEqual(0);
          expect(letter.position.sequenceNumber).toBe(String(1000 + letter.position.messageIndex!));
          if (letter.code === 'RECORD_INVALID') expect(letter.position.recordIndex).toBeGreaterThanOrEqual(0);
        }
        const seen = new Set<string>();
        for (const e of result.events) {
          seen.add(e.id.split('@')[0]!);
          if (e.agentInventory) seen.add(e.agentInventory.agentId);
          expect(Number.isFinite(e.timeMs)).toBe(true);
        }
        for (const tag of goodTags) expect(seen.has(tag), `good record ${tag} lost`).toBe(true);
      }),
      { numRuns: 400, seed: 20261005 },
    );
    // The generator really produced thousands of bodies and plenty of bad input.
    expect(bodies).toBeGreaterThan(2000);
    expect(rejected).toBeGreaterThan(500);
  });
});
