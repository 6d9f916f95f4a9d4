/**
 * `agentwatch replay` end to end: the DESIGN.md replay contract, through the command with
 * captured streams (the TypeScript source; `main()` loads commands with require(), which only
 * works on the compiled files) and through the compiled CLI as a child process.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { beforeAll, describe, expect, it } from 'vitest';
import alertSchema from '../../schemas/alert.schema.json';
import { command as demoCommand } from '../../src/cli/commands/demo';
import { command as replayCommand } from '../../src/cli/commands/replay';
import type { Alert } from '../../src/alerts/types';
import { HAVE_REAL_FIXTURES, REAL_BODIES, loadRecord } from '../fixtures/records/load';

const REPO = resolve(__dirname, '..', '..');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

async function replay(args: string[], stdinText = ''): Promise<Run> {
  const out = sink();
  const err = sink();
  const stdin = Readable.from([Buffer.from(stdinText)]);
  const code = await replayCommand.run(args, { stdout: out.stream, stderr: err.stream, stdin, env: {}, cwd: REPO });
  return { code, stdout: out.text(), stderr: err.text() };
}

const validateAlert = (() => {
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  return ajv.compile(alertSchema);
})();

function alertsOf(stdout: string): Alert[] {
  const lines = stdout.split('\n').filter((l) => l.length > 0);
  return lines.map((line) => {
    const alert = JSON.parse(line) as Alert;
    expect(validateAlert(alert), JSON.stringify(validateAlert.errors)).toBe(true);
    return alert;
  });
}

/** The agent-flow records as NDJSON bodies, in the order an incident would unfold. */
const FLOW = ['audit-add-blueprint', 'audit-add-agent-identity', 'audit-delegated-grant', 'audit-app-role-assignment', 'audit-blueprint-credential-added', 'audit-fic-changed', 't1-exchange', 't2-autonomous', 't2-obo', 'agent-user', 'audit-add-member-to-role', 'agent-risk-event', 'risky-agent', 'agents-info', 'ai-agents-info', 'audit-delete-blueprint'];
let dir: string;
let flowFile: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'agentwatch-replay-'));
  flowFile = join(dir, 'flow.ndjson');
  writeFileSync(flowFile, FLOW.map((name) => JSON.stringify({ records: [loadRecord(name)] })).join('\n') + '\n');
});

describe('agentwatch replay', () => {
  it('prints exactly one valid JSON alert per line on stdout, and progress plus the summary on stderr', async () => {
    const run = await replay(['--output', 'ndjson', flowFile]);
    expect(run.code).toBe(0);
    const alerts = alertsOf(run.stdout);
    expect(alerts.length).toBeGreaterThan(5);
    expect(new Set(alerts.map((a) => a.id)).size).toBe(alerts.length);
    expect(alerts.map((a) => a.detectionId)).toEqual(expect.arrayContaining(['blueprint-credential-added', 'blueprint-fic-changed', 'agent-privileged-permission-grant']));
    expect(run.stderr).toContain(`reading ${flowFile}: 16 message(s)`);
    expect(run.stderr).toContain('  records read: 16\n');
    expect(run.stderr).toContain(`  alerts: ${alerts.length}\n`);
    expect(run.stderr).toMatch(/ {4}blueprint-credential-added: 1\n/);
    expect(run.stderr).toContain('  rejected: 0\n');
  });

  it('replaying the same input twice in one run yields the same alerts once', async () => {
    const once = alertsOf((await replay([flowFile])).stdout);
    const twice = await replay([flowFile, flowFile]);
    expect(twice.code).toBe(0);
    expect(alertsOf(twice.stdout).map((a) => a.id).sort()).toEqual(once.map((a) => a.id).sort());
    expect(twice.stderr).toContain('  records read: 32\n');
  });

  it('reads a directory (*.json, *.ndjson, *.jsonl, *.gz sorted by name, nothing else) with every content shape', async () => {
    const folder = join(dir, 'export');
    mkdirSync(folder, { recursive: true });
    const [blueprint, credential, grant] = [loadRecord('audit-add-blueprint'), loadRecord('audit-blueprint-credential-added'), loadRecord('audit-delegated-grant')];
    writeFileSync(join(folder, '1-array.json'), JSON.stringify([{ records: [blueprint] }], null, 2));
    writeFileSync(join(folder, '2-bare.jsonl'), `${JSON.stringify(credential)}\n`);
    writeFileSync(join(folder, '3-body.ndjson.gz'), gzipSync(`${JSON.stringify({ records: [grant] })}\n`));
    writeFileSync(join(folder, '4-pretty.ndjson'), `${JSON.stringify({ records: [loadRecord('t1-exchange')] }, null, 2)}\n`);
    writeFileSync(join(folder, 'notes.txt'), 'not input');
    const run = await replay([folder]);
    expect(run.code).toBe(0);
    expect([...run.stderr.matchAll(/^reading (.+): /gm)].map((m) => m[1]!.slice(folder.length + 1))).toEqual(['1-array.json', '2-bare.jsonl', '3-body.ndjson.gz', '4-pretty.ndjson']);
    expect(run.stderr).toContain('  records read: 4\n');
    expect(alertsOf(run.stdout).map((a) => a.detectionId)).toContain('blueprint-credential-added');
  });

  it('reads standard input for -', async () => {
    const text = [loadRecord('audit-add-blueprint'), loadRecord('audit-blueprint-credential-added')].map((r) => JSON.stringify(r)).join('\n');
    const run = await replay(['-'], text);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('reading stdin: 2 message(s)');
    expect(alertsOf(run.stdout).map((a) => a.detectionId)).toContain('blueprint-credential-added');
  });

  it('malformed input never crashes it: warnings name the file and line, the rest is read, exit 0', async () => {
    const file = join(dir, 'mixed.ndjson');
    writeFileSync(file, [JSON.stringify(loadRecord('audit-add-blueprint')), '{"records": [ {broken', JSON.stringify({ records: [{ category: 'AuditLogs', properties: 'x' }] }), JSON.stringify(loadRecord('audit-blueprint-credential-added'))].join('\n'));
    const run = await replay([file]);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(`warning: rejected ${file}:2, message 1: body is not JSON`);
    expect(run.stderr).toContain(`warning: rejected ${file}:3, message 2, record 0: AuditLogs record /properties must be object`);
    expect(run.stderr).toContain('  rejected: 2\n');
    expect(alertsOf(run.stdout).map((a) => a.detectionId)).toContain('blueprint-credential-added');
  });

  it('--output table prints a readable table on stdout', async () => {
    const run = await replay(['--output=table', flowFile]);
    expect(run.code).toBe(0);
    const [header, rule, ...rows] = run.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^time \(UTC\)\s+severity\s+detection\s+title\s+entities/);
    expect(rule).toMatch(/^-+ +-+/);
    expect(rows.some((r) => r.includes('blueprint-credential-added'))).toBe(true);
  });

  it('--inventory seeds agents the stream has not shown: a grant to a seeded agent identity is an agent grant', async () => {
    const grantOnly = join(dir, 'grant.ndjson');
    writeFileSync(grantOnly, `${JSON.stringify({ records: [loadRecord('audit-app-role-assignment')] })}\n`);
    const without = alertsOf((await replay([grantOnly])).stdout);
    expect(without.map((a) => a.detectionId)).not.toContain('agent-privileged-permission-grant');
    const seed = join(dir, 'agents.json');
    writeFileSync(seed, JSON.stringify({ entities: [{ kind: 'agentIdentity', id: 'aaaaaaaa-1111-2222-3333-444444444444', parentId: 'dddddddd-1111-2222-3333-444444444444' }] }));
    const withSeed = alertsOf((await replay(['--inventory', seed, grantOnly])).stdout);
    const grant = withSeed.find((a) => a.detectionId === 'agent-privileged-permission-grant');
    expect(grant?.entities).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'agentIdentity', id: 'aaaaaaaa-1111-2222-3333-444444444444' })]));
  });

  it.each([
    [['--output', 'xml', 'x.ndjson'], '--output must be ndjson or table'],
    [[], 'no PATH given'],
    [['--frobnicate', 'x.ndjson'], 'unknown option --frobnicate'],
    [['--config'], '--config needs a file'],
  ])('usage error %j exits 2 with a message and nothing on stdout', async (args, message) => {
    const run = await replay(args);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(message);
    expect(run.stderr).toContain('usage: agentwatch replay');
  });

  it('an unreadable path exits 2 but what could be read is still replayed', async () => {
    const run = await replay([join(dir, 'missing.ndjson'), flowFile]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`error: cannot read ${join(dir, 'missing.ndjson')}: ENOENT`);
    expect(alertsOf(run.stdout).length).toBeGreaterThan(0);
  });

  it('a corrupt .gz file is an unreadable path', async () => {
    const bad = join(dir, 'bad.ndjson.gz');
    writeFileSync(bad, Buffer.concat([gzipSync('{"records":[]}').subarray(0, 12)]));
    const run = await replay([bad]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('gzip data is corrupt');
  });

  it('a config file that names an unknown detection stops it before reading, with exit 2', async () => {
    const config = join(dir, 'bad-config.yaml');
    writeFileSync(config, 'detections:\n  not-a-detection: {enabled: false}\n');
    const run = await replay(['--config', config, flowFile]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`${config}`);
    expect(run.stderr).toContain('/detections/not-a-detection');
  });
});

describe.skipIf(!HAVE_REAL_FIXTURES)('replaying the real Entra fixtures', () => {
  it('in process: exit 0, stdout only JSON lines, zero rejections, records counted per category', async () => {
    const run = await replay(['--output', 'ndjson', REAL_BODIES]);
    expect(run.code).toBe(0);
    alertsOf(run.stdout);
    expect(run.stderr).toContain('  records read: 111\n');
    expect(run.stderr).toContain('  rejected: 0\n');
    for (const [category, count] of [['ManagedIdentitySignInLogs', 35], ['NonInteractiveUserSignInLogs', 18], ['AuditLogs', 13], ['ServicePrincipalSignInLogs', 10], ['MicrosoftGraphActivityLogs', 7], ['UserRiskEvents', 6], ['SignInLogs', 5], ['RiskyUsers', 3], ['MicrosoftServicePrincipalSignInLogs', 2]] as const) {
      expect(run.stderr).toContain(`    ${category}: ${count}\n`);
    }
    expect(run.stderr).toMatch(/ {2}skipped by category:\n {4}AzureADGraphActivityLogs: 7\n {4}ProvisioningLogs: 4\n {4}ADFSSignInLogs: 1\n/);
  });

  const cli = join(REPO, 'dist', 'src', 'cli', 'main.js');
  it.skipIf(!existsSync(cli))('through the compiled CLI as a child process (npx agentwatch replay)', async () => {
    const child = spawn(process.execPath, [join(REPO, 'bin', 'agentwatch.js'), 'replay', '--output', 'ndjson', REAL_BODIES], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += String(c)));
    child.stderr.on('data', (c) => (stderr += String(c)));
    const code = await new Promise<number | null>((done) => child.on('close', done));
    expect(code).toBe(0);
    alertsOf(stdout);
    expect(stderr).toContain('  records read: 111\n');
    expect(stderr).toContain('  rejected: 0\n');
    expect(stderr).toContain('    AuditLogs: 13\n');
  });
});

describe('agentwatch demo', () => {
  it('replays samples/ and prints a table and the summary on stdout', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c) => (text += String(c)));
    const err = sink();
    const code = await demoCommand.run([], { stdout: out, stderr: err.stream, stdin: Readable.from([]), env: {}, cwd: REPO });
    expect(code).toBe(0);
    expect(text).toMatch(/agentwatch demo: replaying .*samples/);
    expect(text).toMatch(/\d+ alert\(s\)/);
    expect(text).toContain('summary:\n');
    expect(Number(/ {2}records read: (\d+)\n/.exec(text)?.[1])).toBeGreaterThan(0);
    expect(Number(/(\d+) alert\(s\)/.exec(text)?.[1])).toBeGreaterThan(0);
  });
});
