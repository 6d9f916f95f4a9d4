/**
 * `agentwatch redrive [--dry-run] [--due-only] [--limit N] [--json]`
 *
 * Delivers the alerts still waiting in the Sentinel outbox (Table Storage), by hand: after an
 * outage, or once a missing role assignment is fixed. The Function's timer does the same on a
 * schedule. Prints what is pending and what happened: delivered, dead-lettered, still pending.
 * Exit 0 when nothing this run tried is left undelivered, 1 when some is, 2 on usage or
 * configuration errors.
 */
import type { TokenCredential } from '@azure/identity';
import { OutboxAlertSink, type RedriveOptions, type RedriveReport } from '../../alerts/outbox';
import { sentinelUploaderFromSettings } from '../../alerts/sentinelSink';
import { loadSettings } from '../../config';
import { isAgentwatchError } from '../../errors';
import type { Clock, Logger } from '../../ports';
import { createTableDeadLetterSink } from '../../state/deadLetterTable';
import { createTableStateStore } from '../../state/tableStore';
import { usageError, type CliCommand, type CliIO, type ExitCode } from '../io';
import { describeStartupError } from './replay';

const USAGE = `usage: agentwatch redrive [--dry-run] [--due-only] [--limit N] [--json]

  --dry-run    report what is pending in the Sentinel outbox, send nothing
  --due-only   send only alerts whose retry is due (what the timer does); default: every pending
               alert no other run is sending right now
  --limit N    send at most N alerts, oldest first
  --json       print the report as one JSON object

Reads AGENTWATCH_SENTINEL_ENDPOINT, AGENTWATCH_SENTINEL_DCR_ID (and _STREAM), and the state table
(AGENTWATCH_STATE_TABLE_ENDPOINT with DefaultAzureCredential, or AGENTWATCH_STATE_CONNECTION_STRING).
`;

export interface RedriveArgs extends RedriveOptions {
  json: boolean;
}

/** Parses redrive arguments; a string is a usage error. */
export function parseRedriveArgs(args: readonly string[]): RedriveArgs | string {
  const parsed: RedriveArgs = { json: false };
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    switch (flag) {
      case '--dry-run':
        parsed.dryRun = true;
        break;
      case '--due-only':
        break;
      case '--json':
        parsed.json = true;
        break;
      case '--limit': {
        const value = inline ?? args[++index];
        if (!value || !/^[1-9]\d*$/.test(value)) return `--limit needs a positive whole number, got ${value === undefined ? 'nothing' : JSON.stringify(value)}`;
        parsed.limit = Number(value);
        break;
      }
      default:
        return `unknown argument ${JSON.stringify(arg)}`;
    }
  }
  parsed.ignoreSchedule = !args.includes('--due-only');
  return parsed;
}

export interface RedriveDeps {
  /** Optional; defaults to DefaultAzureCredential (the state table with an endpoint, the Logs Ingestion upload). */
  credential?: TokenCredential;
  clock?: Clock;
  /** Waits between upload attempts. Optional; defaults to a real timer. */
  sleep?: (ms: number) => Promise<void>;
}

export async function redrive(options: RedriveArgs, io: CliIO, deps: RedriveDeps = {}): Promise<ExitCode> {
  const logger: Logger = {
    log: (level, message, fields) => {
      if (level === 'warn' || level === 'error') io.stderr.write(`${level}: ${message}${fields?.reasons ? ` (${(fields.reasons as string[]).join('; ')})` : ''}\n`);
    },
  };
  let outbox: OutboxAlertSink;
  try {
    const settings = loadSettings(io.env, 'replay');
    const uploader = sentinelUploaderFromSettings(settings, { logger, ...(deps.credential ? { credential: deps.credential } : {}) });
    if (!uploader) {
      io.stderr.write(`agentwatch redrive: Sentinel is not configured: set AGENTWATCH_SENTINEL_ENDPOINT and AGENTWATCH_SENTINEL_DCR_ID\n`);
      return 2;
    }
    const adapterOptions = { logger, ...(deps.credential ? { credential: deps.credential } : {}), ...(deps.clock ? { clock: deps.clock } : {}) };
    const store = await createTableStateStore(settings, adapterOptions);
    const deadLetters = await createTableDeadLetterSink(settings, adapterOptions);
    outbox = new OutboxAlertSink({ store, uploader, deadLetters, logger, ...(deps.clock ? { clock: deps.clock } : {}), ...(deps.sleep ? { sleep: deps.sleep } : {}) });
  } catch (error) {
    io.stderr.write(`agentwatch redrive: cannot start:\n${describeStartupError(error)}\n`);
    return 2;
  }
  let report: RedriveReport;
  try {
    report = await outbox.redrive(options);
  } catch (error) {
    io.stderr.write(`agentwatch redrive: ${isAgentwatchError(error) ? `${error.code}: ` : ''}${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  io.stdout.write(options.json ? `${JSON.stringify(report)}\n` : formatRedriveReport(report));
  return report.pending > 0 ? 1 : 0;
}

export function formatRedriveReport(report: RedriveReport): string {
  const lines = [
    `sentinel outbox${report.dryRun ? ' (dry run: nothing sent)' : ''}:`,
    `  pending before:   ${report.pendingBefore}${report.leased ? ` (${report.leased} being sent by another run)` : ''}${report.notDue ? ` (${report.notDue} not due yet)` : ''}`,
  ];
  if (!report.dryRun) {
    lines.push(
      `  sent now:         ${report.handled} in ${report.attempts} upload(s)`,
      `  delivered:        ${report.delivered}${report.trimmed ? ` (${report.trimmed} trimmed to fit)` : ''}`,
      `  dead-lettered:    ${report.deadLettered}`,
      `  still pending:    ${report.pendingAfter}`,
    );
  }
  if (report.oldestPendingSince) lines.push(`  oldest pending since ${report.oldestPendingSince}${report.lastError ? `; last error: ${report.lastError}` : ''}`);
  return `${lines.join('\n')}\n`;
}

export const command: CliCommand = {
  summary: 'deliver the alerts still waiting in the Sentinel outbox, and report what is pending',
  usage: USAGE,
  async run(args: string[], io: CliIO): Promise<ExitCode> {
    const parsed = parseRedriveArgs(args);
    if (typeof parsed === 'string') return usageError(io, 'redrive', parsed, USAGE);
    return redrive(parsed, io);
  },
};
