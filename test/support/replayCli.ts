/**
 * Runs the real, compiled CLI (`main` of dist/src/cli/main.js — `npm test` builds first; main.ts
 * loads its commands with require(), which only resolves in the build) with captured streams, and
 * parses `--output ndjson` alerts.
 */
import { PassThrough } from 'node:stream';
import type { Alert } from '../../src/alerts/types';
import type { CliIO, ExitCode } from '../../src/cli/io';

const { main } = require('../../dist/src/cli/main.js') as { main(argv: string[], io: CliIO): Promise<ExitCode> };

export interface CliRun {
  code: ExitCode;
  stdout: string;
  stderr: string;
}

export async function runCli(argv: string[]): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk) => (out += String(chunk)));
  stderr.on('data', (chunk) => (err += String(chunk)));
  const code = await main(argv, { stdout, stderr, stdin: new PassThrough(), env: {}, cwd: process.cwd() });
  return { code, stdout: out, stderr: err };
}

/** `agentwatch replay --output ndjson [options] PATH…`: every stdout line must be one JSON alert. */
export async function replayNdjson(paths: string[], options: string[] = []): Promise<CliRun & { alerts: Alert[] }> {
  const run = await runCli(['replay', '--output', 'ndjson', ...options, ...paths]);
  const alerts = run.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Alert);
  return { ...run, alerts };
}
