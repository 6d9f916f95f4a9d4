/** A `CliIO` whose stdout and stderr are captured as text, for running CLI commands in tests. */
import { PassThrough } from 'node:stream';
import type { CliIO } from '../../src/cli/io';

export interface CapturedIo {
  io: CliIO;
  stdout(): string;
  stderr(): string;
}

export function capturedIo(env: NodeJS.ProcessEnv = {}, cwd: string = process.cwd()): CapturedIo {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk) => (out += String(chunk)));
  stderr.on('data', (chunk) => (err += String(chunk)));
  return { io: { stdout, stderr, stdin: new PassThrough(), env, cwd }, stdout: () => out, stderr: () => err };
}
