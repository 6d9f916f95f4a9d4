/**
 * Logger adapters for the hosts.
 *
 * The Function builds its app once per instance, but logs belong to the invocation that caused
 * them (Application Insights correlates by invocation id), and one instance runs invocations for
 * several partitions at once. So the app gets one logger that looks up the current invocation in
 * an AsyncLocalStorage scope entered by each handler, and falls back to the console outside one.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { LogLevel, Logger } from '../ports';

/** The part of `InvocationContext` the logger needs (so unit tests and the local host can supply their own). */
export interface InvocationLog {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

const currentLogger = new AsyncLocalStorage<Logger>();

/** Runs `work` with its logs going to `logger` (the local consumer's). */
export function withLogger<T>(logger: Logger, work: () => Promise<T>): Promise<T> {
  return currentLogger.run(logger, work);
}

/** Runs `work` with its logs attributed to the invocation (`InvocationContext`). */
export function withInvocationLog<T>(invocation: InvocationLog, work: () => Promise<T>): Promise<T> {
  return withLogger(invocationLogger(invocation), work);
}

/** Table Storage hands back Int64 as bigint, which JSON.stringify refuses. */
const bigintAsText = (_key: string, value: unknown): unknown => (typeof value === 'bigint' ? value.toString() : value);

export function formatLogLine(message: string, fields?: Record<string, unknown>): string {
  if (!fields || Object.keys(fields).length === 0) return message;
  return `${message} ${JSON.stringify(fields, bigintAsText)}`;
}

/** A structured logger writing to an invocation's log methods (or the console). */
export function invocationLogger(invocation: InvocationLog): Logger {
  return { log: (level, message, fields) => invocation[level](formatLogLine(`agentwatch: ${message}`, fields)) };
}

const consoleLogger = invocationLogger(console);

/** Logs to the current scope's logger (the invocation's, the local consumer's), or to the console outside one. */
export const invocationScopedLogger: Logger = {
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    (currentLogger.getStore() ?? consoleLogger).log(level, message, fields);
  },
};

const LEVEL_RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** One JSON object per line (time, level, message, fields) on a stream: the local consumer's stderr. */
export function jsonLinesLogger(out: NodeJS.WritableStream, minimum: LogLevel = 'info'): Logger {
  return {
    log(level, message, fields) {
      if (LEVEL_RANK[level] < LEVEL_RANK[minimum]) return;
      out.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields }, bigintAsText)}\n`);
    },
  };
}
