/** What a CLI command gets: its arguments and the three streams, so tests can capture them. */
export interface CliIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** Exit codes: 0 = did what it could, 1 = a check failed (tests, validation), 2 = usage error / unreadable input. */
export type ExitCode = 0 | 1 | 2;

/** A command's usage text ending in one line break (some are written with it, some without). */
export function usageText(usage: string): string {
  return usage.endsWith('\n') ? usage : `${usage}\n`;
}

/** A command's usage error: what was wrong, then its usage, on stderr; exit code 2. */
export function usageError(io: CliIO, commandName: string, problem: string, usage: string): ExitCode {
  io.stderr.write(`agentwatch ${commandName}: ${problem}\n\n${usageText(usage)}`);
  return 2;
}

export interface CliCommand {
  /** One line for `agentwatch help`. */
  summary: string;
  usage: string;
  run(args: string[], io: CliIO): Promise<ExitCode>;
}
