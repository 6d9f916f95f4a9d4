/**
 * Runs the real, compiled CLI (`main` of dist/src/cli/main.js — `npm test` builds first; main.ts
 * loads its commands with require(), which only resolves in the build) with captured streams, and
 * parses `--output ndjson` alerts.
 */
import type { Alert } from '../../src/alerts/types';
import type { CliIO, ExitCode } from '../../src/cli/io';
import { capturedIo } from './capturedIo';

const { main } = require('../../dist/src/cli/main.js') as { main(argv: string[], io: CliIO): Promise<ExitCode> };

export interface CliRun {
  code: ExitCode;
  stdout: string;
  stderr: string;
}

export async function runCli(argv: string[]): Promise<CliRun> {
  const captured = capturedIo();
  const code = await main(argv, captured.io);
  return { code, stdout: captured.stdout(), stderr: captured.stderr() };
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
