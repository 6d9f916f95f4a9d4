import { describe, expect, it } from 'vitest';
import { runCli } from '../support/replayCli';

describe('agentwatch <command> --help', () => {
  it.each(['replay', 'demo', 'validate', 'test', 'redrive', 'local', 'grant-permissions'])('%s prints its usage and exits 0 without running', async (name) => {
    const run = await runCli([name, '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/usage: agentwatch /);
    expect(run.stderr).toBe('');
  });

  it.each(['replay', 'demo', 'validate', 'test', 'redrive', 'local', 'grant-permissions'])('%s refuses an unknown option the same way: exit 2, the problem, then its usage', async (name) => {
    const run = await runCli([name, '--frobnicate']);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(new RegExp(`^agentwatch ${name}: .*--frobnicate.*\\n\\nusage: agentwatch ${name}`, 's'));
  });

  it.each(['validate', 'test'])('%s refuses an option without its value the same way', async (name) => {
    const run = await runCli([name, '--config']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(new RegExp(`^agentwatch ${name}: --config needs a value\\n\\nusage: agentwatch ${name}`));
  });

  it('refuses an unknown command with exit 2 and the command list', async () => {
    const run = await runCli(['nope']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('unknown command "nope"');
    expect(run.stderr).toContain('replay');
    expect(run.stdout).toBe('');
  });
});
