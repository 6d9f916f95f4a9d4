/**
 * Pieces of the self-hosted consumer (`agentwatch local`) that need no servers: its option parsing
 * and the NDJSON alert file, which must hold each alert once across restarts.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Alert } from '../../src/alerts/types';
import { parseLocalArgs } from '../../src/cli/commands/local';
import { NdjsonFileUploader } from '../../src/host/ndjsonFileUploader';

function alert(id: string): Alert {
  return {
    id,
    detectionId: 'blueprint-credential-added',
    title: `alert ${id}`,
    severity: 'medium',
    firstEventTime: '2026-10-05T10:10:01.700Z',
    lastEventTime: '2026-10-05T10:10:01.700Z',
    createdTime: '2026-10-05T10:11:00.000Z',
    entities: [{ type: 'blueprint', id: 'dddddddd-1111-2222-3333-444444444444' }],
    dedupKey: `blueprint-credential-added:${id}`,
    evidence: [`record-${id}`],
    tactics: ['Persistence'],
    techniques: ['T1098.001'],
    actions: [],
  };
}

describe('NdjsonFileUploader', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'agentwatch-ndjson-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const idsIn = (file: string) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as Alert).id);

  it('appends one JSON alert per line, each id once, also when a batch repeats an alert', async () => {
    const file = join(dir, 'alerts.ndjson');
    const uploader = new NdjsonFileUploader(file);
    await uploader.upload([alert('a'), alert('b'), alert('a')]);
    await uploader.upload([alert('b'), alert('c')]);
    expect(idsIn(file)).toEqual(['a', 'b', 'c']);
  });

  it('remembers what the file holds after a restart, so a resent alert is not written twice', async () => {
    const file = join(dir, 'alerts.ndjson');
    await new NdjsonFileUploader(file).upload([alert('a'), alert('b')]);
    const restarted = new NdjsonFileUploader(file);
    expect([...restarted.deliveredIds].sort()).toEqual(['a', 'b']);
    await restarted.upload([alert('b'), alert('c')]);
    expect(idsIn(file)).toEqual(['a', 'b', 'c']);
  });

  it('ends a line torn by a crash before appending, and does not count its alert as delivered', async () => {
    const file = join(dir, 'alerts.ndjson');
    writeFileSync(file, `${JSON.stringify(alert('a'))}\n`);
    appendFileSync(file, JSON.stringify(alert('b')).slice(0, 40));
    const restarted = new NdjsonFileUploader(file);
    expect([...restarted.deliveredIds]).toEqual(['a']);
    await restarted.upload([alert('b')]);
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(3);
    expect((JSON.parse(lines[2]!) as Alert).id).toBe('b');
  });

  it('reports an unwritable file as a transient sink failure', async () => {
    const uploader = new NdjsonFileUploader(join(dir, 'missing-folder', 'alerts.ndjson'));
    await expect(uploader.upload([alert('a')])).rejects.toMatchObject({ code: 'SINK_TRANSIENT' });
  });
});

describe('agentwatch local options', () => {
  it('parses durations, sizes and names', () => {
    expect(
      parseLocalArgs(['--alerts-file', 'out.ndjson', '--batch-size', '25', '--max-wait=2s', '--ownership-expiry', '30s', '--outbox-lease', '5m', '--identifier', 'soc-vm-1', '--log-level', 'debug']),
    ).toEqual({ alertsFile: 'out.ndjson', maxBatchSize: 25, maxWaitTimeInSeconds: 2, ownershipExpiryMs: 30_000, outboxLeaseMs: 300_000, identifier: 'soc-vm-1', logLevel: 'debug' });
  });

  it.each([
    [['--batch-size', '0'], /--batch-size/],
    [['--ownership-expiry', 'soon'], /--ownership-expiry/],
    [['--alerts-file'], /needs a value/],
    [['--alerts-file', '--batch-size', '5'], /needs a value/],
    [['--log-level', 'loud'], /--log-level/],
    [['--follow'], /unknown option/],
  ])('refuses %j', (args, message) => {
    expect(parseLocalArgs(args)).toMatch(message);
  });
});
