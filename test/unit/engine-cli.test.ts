/**
 * `agentwatch validate` and `agentwatch test` through the real, compiled command table
 * (test/support/replayCli.ts; `npm test` builds first): readable output and exit codes, on the
 * engine's test rules.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/replayCli';

const rules = join(__dirname, '..', 'fixtures', 'rules');

function cli(name: 'validate' | 'test', folder: string) {
  return runCli([name, join(rules, folder)]);
}

describe('agentwatch validate', () => {
  it('exits 0 and counts the rules when every file loads', async () => {
    const result = await cli('validate', 'passing');
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toBe('1 rule file(s) read (1 test), 1 compiled, 0 problem(s)\n');
  });

  it('exits 1 and names file, line, path and what was expected', async () => {
    const result = await cli('validate', 'failing');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${join(rules, 'failing', 'test-broken-schema.yaml')}:6 at /stateful/window: expected a duration like "10m", "24h", "7d" or a $parameter, got "ten minutes"`);
  });

  it("lists the config's exceptions for review: detection, name, expiry, reason", async () => {
    const repo = join(__dirname, '..', '..');
    const result = await runCli(['validate', join(repo, 'detections'), '--config', join(repo, 'samples', 'agentwatch.config.example.yaml')]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout.split('\n')[1]).toMatch(/^exception blueprint-credential-added\/finance-blueprint-secret-rotation \((until|EXPIRED) 2027-06-30T00:00:00\.000Z\): The Key Rotation Automation app rotates/);
  });

  it('exits 2 for a path that does not exist', async () => {
    expect((await cli('validate', 'no-such-dir')).code).toBe(2);
  });
});

describe('agentwatch test', () => {
  it('prints pass per rule and case and exits 0 when all pass', async () => {
    const result = await cli('test', 'passing');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      [
        'PASS test-failed-signins (3/3)',
        '  ok   three failures within five minutes fire once',
        '  ok   two failures stay silent',
        '  ok   with minimum 2 the same two fire',
        '3 passed, 0 failed',
        '',
      ].join('\n'),
    );
  });

  it('prints the failing case with the reason, reports unloadable files, and exits 1', async () => {
    const result = await cli('test', 'failing');
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('FAIL test-wrong-expectation (1/2)');
    expect(result.stdout).toContain('  ok   a high agent risk event raises an alert');
    expect(result.stdout).toContain('  FAIL a low agent risk event is expected (wrongly) to raise one');
    expect(result.stdout).toContain('expected 1 alert(s) of test-wrong-expectation, got 0');
    expect(result.stdout).toMatch(/LOAD .*test-broken-schema\.yaml:6 at \/stateful\/window/);
    expect(result.stdout).toContain('1 passed, 1 failed, 1 load problem(s)');
  });
});
