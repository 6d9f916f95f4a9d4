/**
 * `agentwatch validate [PATH...] [--config FILE]`: loads rule files (default `detections/`) the way
 * the engine does and prints every problem with file, line, JSON path and what was expected.
 * Exit 0 when all load, 1 when any problem, 2 on usage errors.
 */
import { isAbsolute, join } from 'node:path';
import { isAgentwatchError, type LocatedProblem } from '../../errors';
import { compileRuleSet, loadEngineConfig, readRuleSet } from '../../engine';
import type { CompiledDetection, EngineConfig } from '../../engine';
import { usageError, type CliCommand, type CliIO, type ExitCode } from '../io';

export function formatProblem(problem: LocatedProblem): string {
  return `${problem.file}${problem.line !== undefined ? `:${problem.line}` : ''} at ${problem.path || '/'}: ${problem.message}`;
}

/** `[PATH...] [--config FILE]`, paths resolved against the working directory; undefined on a usage error. */
export function parseRuleArgs(args: string[], io: CliIO, commandName: string, usage: string): { paths: string[]; config?: EngineConfig; only?: string[] } | undefined {
  const paths: string[] = [];
  let configFile: string | undefined;
  let only: string[] | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--config' || arg === '--only') {
      const value = args[++i];
      if (!value) {
        usageError(io, commandName, `${arg} needs a value`, usage);
        return undefined;
      }
      if (arg === '--config') configFile = value;
      else only = value.split(',').map((id) => id.trim()).filter(Boolean);
    } else if (arg.startsWith('-')) {
      usageError(io, commandName, `unknown option ${arg}`, usage);
      return undefined;
    } else paths.push(isAbsolute(arg) ? arg : join(io.cwd, arg));
  }
  if (paths.length === 0) paths.push(join(io.cwd, 'detections'));
  const configPath = configFile ?? io.env.AGENTWATCH_CONFIG;
  const config = configPath ? loadEngineConfig(isAbsolute(configPath) ? configPath : join(io.cwd, configPath)) : undefined;
  return { paths, ...(config ? { config } : {}), ...(only ? { only } : {}) };
}

/** `parseRuleArgs`, with a bad config file reported (exit 1) and a usage error mapped to exit 2. */
export function ruleArgsOrExit(args: string[], io: CliIO, commandName: string, usage: string): NonNullable<ReturnType<typeof parseRuleArgs>> | ExitCode {
  try {
    return parseRuleArgs(args, io, commandName, usage) ?? 2;
  } catch (error) {
    if (isAgentwatchError(error) && 'problems' in error) {
      for (const problem of (error as { problems: LocatedProblem[] }).problems) io.stderr.write(`${formatProblem(problem)}\n`);
      return 1;
    }
    throw error;
  }
}

/** The config's exceptions, one line each, for review: which detection, until when, why. */
export function describeExceptions(detections: readonly CompiledDetection[], now: number): string {
  const lines: string[] = [];
  for (const detection of detections) {
    for (const exception of detection.exceptions?.entries ?? []) {
      const until = exception.untilMs === undefined ? 'no expiry' : `${exception.untilMs <= now ? 'EXPIRED' : 'until'} ${new Date(exception.untilMs).toISOString()}`;
      lines.push(`exception ${detection.id}/${exception.name} (${until}): ${exception.reason}`);
    }
  }
  return lines.map((line) => `${line}\n`).join('');
}

export const command: CliCommand = {
  summary: 'check detection rule files (default detections/) and report every problem',
  usage: 'usage: agentwatch validate [PATH...] [--config FILE]',
  async run(args: string[], io: CliIO): Promise<ExitCode> {
    const parsed = ruleArgsOrExit(args, io, 'validate', this.usage);
    if (typeof parsed === 'number') return parsed;
    const set = readRuleSet(parsed.paths);
    if (set.problems.some((p) => p.message === 'no such file or directory') && set.rules.length === 0) {
      for (const problem of set.problems) io.stderr.write(`${formatProblem(problem)}\n`);
      return 2;
    }
    const compiled = compileRuleSet(set, { only: set.rules.map((rule) => rule.document.id), config: parsed.config });
    const problems = [...set.problems, ...compiled.problems, ...compiled.configProblems];
    for (const problem of problems) io.stderr.write(`${formatProblem(problem)}\n`);
    const byStatus = new Map<string, number>();
    for (const rule of set.rules) byStatus.set(String(rule.document.status), (byStatus.get(String(rule.document.status)) ?? 0) + 1);
    const statuses = [...byStatus.entries()].map(([status, count]) => `${count} ${status}`).join(', ');
    io.stdout.write(`${set.rules.length} rule file(s) read${statuses ? ` (${statuses})` : ''}, ${compiled.detections.length} compiled, ${problems.length} problem(s)\n`);
    io.stdout.write(describeExceptions(compiled.detections, Date.now()));
    return problems.length ? 1 : 0;
  },
};
