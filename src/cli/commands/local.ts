/**
 * `agentwatch local [options]` (`npm run local`): the self-hosted Event Hubs consumer. Runs until
 * SIGINT/SIGTERM, then finishes the batches in flight, checkpoints them and releases its
 * partitions; a second signal exits at once (nothing is lost: unfinished batches were not
 * checkpointed). Settings come from the environment (docs/deploy.md); logs are JSON lines on stderr.
 */
import { isConfigError } from '../../errors';
import { parseDuration } from '../../config';
import type { LogLevel } from '../../ports';
import { jsonLinesLogger } from '../../host/logging';
import { runLocalConsumer, type LocalConsumerOptions } from '../../host/local';
import { usageError, type CliCommand, type CliIO, type ExitCode } from '../io';

const USAGE = `usage: agentwatch local [options]

Reads the Entra hub with checkpoints, runs every batch through the pipeline, sends alerts to
Sentinel (when configured) and to --alerts-file. Environment: AGENTWATCH_EVENTHUB_CONNECTION_STRING
or AGENTWATCH_EVENTHUB_NAMESPACE (+ DefaultAzureCredential), ENTRA_HUB, ENTRA_CONSUMER_GROUP,
AGENTWATCH_STATE_CONNECTION_STRING or AGENTWATCH_STATE_TABLE_ENDPOINT, AGENTWATCH_SENTINEL_* …

  --alerts-file PATH         also append every alert, once, to this NDJSON file
  --batch-size N             events per batch (default 100)
  --max-wait DURATION        longest wait to fill a batch (default 5s)
  --identifier NAME          this consumer's name in the ownership table (default agentwatch-<host>-<pid>)
  --ownership-expiry DURATION  how long a crashed consumer's partitions stay claimed (default 60s)
  --balance-interval DURATION  how often ownership is renewed and rebalanced (default 10s)
  --redrive-interval DURATION  how often pending alerts are redriven (default 60s)
  --outbox-lease DURATION    how long an interrupted delivery holds its alerts (default 10m)
  --log-level LEVEL          debug | info | warn | error (default info)
`;

export type LocalArgs = Omit<LocalConsumerOptions, 'env' | 'logger' | 'signal' | 'credential'> & { logLevel: LogLevel };

const DURATION_FLAGS = {
  '--max-wait': 'maxWaitTimeInSeconds',
  '--ownership-expiry': 'ownershipExpiryMs',
  '--balance-interval': 'balanceIntervalMs',
  '--redrive-interval': 'redriveIntervalMs',
  '--outbox-lease': 'outboxLeaseMs',
} as const;

const VALUE_FLAGS = ['--alerts-file', '--batch-size', '--identifier', '--log-level'];

/** Parses the options; a string is a usage error. */
export function parseLocalArgs(args: readonly string[]): LocalArgs | string {
  const parsed: LocalArgs = { logLevel: 'info' };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (!(flag in DURATION_FLAGS) && !VALUE_FLAGS.includes(flag)) return `unknown option ${arg}`;
    const value = inline ?? args[i + 1];
    if (inline === undefined) i++;
    if (value === undefined || (inline === undefined && value.startsWith('--'))) return `${flag} needs a value`;
    if (flag in DURATION_FLAGS) {
      let ms: number;
      try {
        ms = parseDuration(value);
      } catch (error) {
        return `${flag}: ${(error as Error).message}`;
      }
      const field = DURATION_FLAGS[flag as keyof typeof DURATION_FLAGS];
      if (field === 'maxWaitTimeInSeconds') parsed.maxWaitTimeInSeconds = Math.max(1, Math.round(ms / 1000));
      else parsed[field] = ms;
      continue;
    }
    switch (flag) {
      case '--alerts-file':
        parsed.alertsFile = value;
        break;
      case '--batch-size': {
        const size = Number(value);
        if (!Number.isInteger(size) || size < 1 || size > 5000) return `--batch-size must be a whole number from 1 to 5000, got ${JSON.stringify(value)}`;
        parsed.maxBatchSize = size;
        break;
      }
      case '--identifier':
        parsed.identifier = value;
        break;
      case '--log-level':
        if (!['debug', 'info', 'warn', 'error'].includes(value)) return `--log-level must be debug, info, warn or error, got ${JSON.stringify(value)}`;
        parsed.logLevel = value as LogLevel;
        break;
      default:
        return `unknown option ${arg}`;
    }
  }
  return parsed;
}

export const command: CliCommand = {
  summary: 'run the pipeline as a self-hosted Event Hubs consumer with checkpoints (npm run local)',
  usage: USAGE,
  async run(args: string[], io: CliIO): Promise<ExitCode> {
    const parsed = parseLocalArgs(args);
    if (typeof parsed === 'string') return usageError(io, 'local', parsed, USAGE);
    const { logLevel, ...consumerArgs } = parsed;
    const logger = jsonLinesLogger(io.stderr, logLevel);
    const stop = new AbortController();
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        logger.log('warn', 'second signal: exiting now; unfinished batches were not checkpointed and are read again next run', { signal });
        process.exit(130);
      }
      logger.log('info', 'signal received: stopping', { signal });
      stop.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      await runLocalConsumer({ ...consumerArgs, env: io.env, logger, signal: stop.signal });
      return 0;
    } catch (error) {
      if (isConfigError(error)) {
        io.stderr.write(`agentwatch local: ${error.message}\n`);
        return 2;
      }
      logger.log('error', 'local consumer failed', { code: (error as { code?: unknown }).code, error: (error as Error)?.message ?? String(error) });
      return 1;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};
