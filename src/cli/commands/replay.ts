/**
 * `agentwatch replay [--output ndjson|table] [--config FILE] [--inventory FILE] PATH...`
 *
 * Runs exported Entra records through the full pipeline (the code the Function runs) with
 * in-memory state. stdout: with `--output ndjson` exactly one JSON alert per line and nothing
 * else; with `--output table` a readable table. stderr: progress, warnings about rejected input,
 * and the summary. Exit 0 when it read what it could, 2 on usage errors or unreadable paths.
 */
import { NdjsonAlertSink, StreamDeadLetterSink, TableAlertSink } from '../../alerts/consoleSinks';
import { buildApp, type App, type AppOptions } from '../../app';
import { isAgentwatchError, type AgentwatchError, type LocatedProblem } from '../../errors';
import { expandPath, readInputText, splitMessages, UnreadableInputError } from '../../ingest/replayInput';
import type { BatchSummary } from '../../pipeline';
import { usageError, type CliCommand, type CliIO, type ExitCode } from '../io';

const USAGE = 'usage: agentwatch replay [--output ndjson|table] [--config FILE] [--inventory FILE] PATH...\n       PATH is a file, a directory (*.json, *.ndjson, *.jsonl, *.gz) or - for standard input\n';

/** Messages per pipeline batch: large enough that events inside a batch are ordered by event time. */
const BATCH_MESSAGES = 2_000;

export interface ReplayArgs {
  output: 'ndjson' | 'table';
  config?: string;
  inventory?: string;
  quiet: boolean;
  paths: string[];
}

/** Parses replay arguments; a string is a usage error. */
export function parseReplayArgs(args: readonly string[]): ReplayArgs | string {
  const parsed: ReplayArgs = { output: 'ndjson', quiet: false, paths: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string | undefined => inline ?? args[++i];
    switch (flag) {
      case '--output':
      case '-o': {
        const v = value();
        if (v !== 'ndjson' && v !== 'table') return `--output must be ndjson or table, got ${v === undefined ? 'nothing' : JSON.stringify(v)}`;
        parsed.output = v;
        break;
      }
      case '--config': {
        const v = value();
        if (!v) return '--config needs a file';
        parsed.config = v;
        break;
      }
      case '--inventory': {
        const v = value();
        if (!v) return '--inventory needs a file';
        parsed.inventory = v;
        break;
      }
      case '--quiet':
      case '-q':
        parsed.quiet = true;
        break;
      default:
        if (arg !== '-' && arg.startsWith('-')) return `unknown option ${arg}`;
        parsed.paths.push(arg);
    }
  }
  if (parsed.paths.length === 0) return 'no PATH given';
  return parsed;
}

export interface ReplayRun {
  app: App;
  unreadable: string[];
  files: number;
}

/**
 * Replays paths through an app: reads each file, splits it into bodies, feeds batches, and reports
 * progress on `progress`. Unreadable paths are reported and skipped.
 */
export async function replayPaths(app: App, paths: readonly string[], io: Pick<CliIO, 'stdin'>, progress: (line: string) => void): Promise<ReplayRun> {
  const unreadable: string[] = [];
  let files = 0;
  let pending: unknown[] = [];
  let pendingSources: string[] = [];
  const flush = async (): Promise<void> => {
    if (!pending.length) return;
    const messages = pending;
    const sources = pendingSources;
    pending = [];
    pendingSources = [];
    await app.processBatch(messages, { source: 'replay', sources });
  };
  for (const path of paths) {
    let expanded: string[];
    try {
      expanded = await expandPath(path);
    } catch (error) {
      if (!(error instanceof UnreadableInputError)) throw error;
      unreadable.push(path);
      progress(`error: ${error.message}`);
      continue;
    }
    if (expanded.length === 0) progress(`warning: ${path} holds no *.json, *.ndjson, *.jsonl or *.gz file`);
    for (const file of expanded) {
      let text: string;
      try {
        text = await readInputText(file, io.stdin);
      } catch (error) {
        if (!(error instanceof UnreadableInputError)) throw error;
        unreadable.push(file);
        progress(`error: ${error.message}`);
        continue;
      }
      const label = file === '-' ? 'stdin' : file;
      const { messages, sources } = splitMessages(text, label);
      files++;
      progress(`reading ${label}: ${messages.length} message(s)`);
      for (let i = 0; i < messages.length; i++) {
        pending.push(messages[i]);
        pendingSources.push(sources[i]!);
        if (pending.length >= BATCH_MESSAGES) await flush();
      }
    }
  }
  await flush();
  return { app, unreadable, files };
}

function section(title: string, counts: Record<string, number>): string[] {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (entries.length === 0) return [`  ${title}: none`];
  return [`  ${title}:`, ...entries.map(([k, v]) => `    ${k}: ${v}`)];
}

/** The summary block printed at the end of replay / demo. */
export function formatSummary(totals: BatchSummary, files: number, exceptionHits: Record<string, number> = {}): string {
  return [
    'summary:',
    `  files: ${files}`,
    `  messages: ${totals.messages}`,
    `  records read: ${totals.recordsRead}`,
    ...section('records per category', totals.byCategory),
    ...section('skipped by category', totals.skippedByCategory),
    `  rejected: ${totals.rejected}`,
    ...(totals.rejected ? section('rejected reasons', totals.rejectedByReason) : []),
    `  events evaluated: ${totals.events}`,
    `  alerts: ${totals.alerts}`,
    ...section('alerts by detection', totals.alertsByDetection),
    // Only with a config that has exceptions: what they kept from triggering, by detection/exception.
    ...(Object.keys(exceptionHits).length ? section('kept from detections by config exceptions', exceptionHits) : []),
  ].join('\n') + '\n';
}

/** Prints a load error's problems (file, path, message) the way a rule author or operator reads them. */
export function describeStartupError(error: unknown): string {
  if (isAgentwatchError(error)) {
    const problems = (error as AgentwatchError & { problems?: LocatedProblem[] }).problems;
    if (problems?.length) return problems.map((p) => `${p.file}${p.line !== undefined ? `:${p.line}` : ''} ${p.path}: ${p.message}`).join('\n');
    return `${error.code}: ${error.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}

export const command: CliCommand = {
  summary: 'replay exported Entra records (files, folders, -) through the full pipeline',
  usage: USAGE,
  async run(args: string[], io: CliIO): Promise<ExitCode> {
    const parsed = parseReplayArgs(args);
    if (typeof parsed === 'string') return usageError(io, 'replay', parsed, USAGE);
    const progress = (line: string): void => {
      if (!parsed.quiet || line.startsWith('error')) io.stderr.write(`${line}\n`);
    };
    const table = parsed.output === 'table' ? new TableAlertSink() : undefined;
    const options: AppOptions = {
      host: 'replay',
      alertSink: table ?? new NdjsonAlertSink(io.stdout),
      deadLetters: new StreamDeadLetterSink(io.stderr, parsed.quiet ? 0 : 20),
      env: io.env,
    };
    const configFile = parsed.config ?? io.env.AGENTWATCH_CONFIG;
    if (configFile) options.configFile = configFile;
    if (parsed.inventory) options.inventorySeed = parsed.inventory;
    let app: App;
    try {
      app = await buildApp(options);
    } catch (error) {
      io.stderr.write(`agentwatch replay: cannot start:\n${describeStartupError(error)}\n`);
      return 2;
    }
    const run = await replayPaths(app, parsed.paths, io, progress);
    if (table) io.stdout.write(table.render());
    io.stderr.write(formatSummary(app.totals, run.files, app.engine.exceptionHits?.()));
    const undelivered = await drainOutboxes(app, io);
    if (run.unreadable.length) {
      io.stderr.write(`agentwatch replay: ${run.unreadable.length} path(s) could not be read: ${run.unreadable.join(', ')}\n`);
      return 2;
    }
    return undelivered > 0 ? 1 : 0;
  },
};

/**
 * Replay's outboxes live in memory: before exiting, one last redrive of whatever a transient
 * failure left pending, and a loud count of what still did not reach its destination.
 */
async function drainOutboxes(app: App, io: CliIO): Promise<number> {
  let undelivered = 0;
  for (const outbox of app.outboxes) {
    const report = await outbox.redrive({ ignoreSchedule: true });
    undelivered += report.pendingAfter;
    if (report.pendingAfter > 0) {
      io.stderr.write(`agentwatch replay: ${report.pendingAfter} alert(s) NOT delivered to ${outbox.partition.replace(/^outbox-/, '')}${report.lastError ? ` (last error: ${report.lastError})` : ''}\n`);
    }
  }
  return undelivered;
}
