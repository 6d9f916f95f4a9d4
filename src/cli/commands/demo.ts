/**
 * `agentwatch demo` (what `npm start` runs): replays every file in `samples/` through the full
 * pipeline with in-memory state and prints the alerts as a table, then the summary.
 */
import { join } from 'node:path';
import { StreamDeadLetterSink, TableAlertSink } from '../../alerts/consoleSinks';
import { buildApp, repoRoot, type App } from '../../app';
import { usageError, type CliCommand, type CliIO, type ExitCode } from '../io';
import { describeStartupError, formatSummary, replayPaths } from './replay';

const USAGE = 'usage: agentwatch demo [PATH...]   (default: the samples/ folder)\n';

export const command: CliCommand = {
  summary: 'replay the bundled demo stream (samples/) and print the alerts as a table',
  usage: USAGE,
  async run(args: string[], io: CliIO): Promise<ExitCode> {
    const unknown = args.find((a) => a.startsWith('-') && a !== '-');
    if (unknown) return usageError(io, 'demo', `unknown option ${unknown}`, USAGE);
    const paths = args.length ? args : [join(repoRoot(), 'samples')];
    const table = new TableAlertSink();
    let app: App;
    try {
      app = await buildApp({ host: 'replay', alertSink: table, deadLetters: new StreamDeadLetterSink(io.stderr, 20), env: io.env });
    } catch (error) {
      io.stderr.write(`agentwatch demo: cannot start:\n${describeStartupError(error)}\n`);
      return 2;
    }
    io.stdout.write(`agentwatch demo: replaying ${paths.join(', ')}\n\n`);
    const run = await replayPaths(app, paths, io, (line) => io.stderr.write(`${line}\n`));
    io.stdout.write(`${table.render()}\n${table.count} alert(s)\n\n${formatSummary(app.totals, run.files, app.engine.exceptionHits?.())}`);
    return run.unreadable.length ? 2 : 0;
  },
};
