/**
 * Local sinks behind the `AlertSink` / `DeadLetterSink` ports: NDJSON and a readable table for the
 * CLI, in-memory collectors for tests and `buildApp` defaults, a fan-out to several sinks, and a
 * dead-letter sink that warns on a stream. Each console sink prints an alert id once per run, so a
 * batch delivered twice never prints twice.
 */
import type { AlertSink, DeadLetter, DeadLetterSink } from '../ports';
import type { Alert } from './types';

/** One JSON alert per line, nothing else. */
export class NdjsonAlertSink implements AlertSink {
  private readonly printed = new Set<string>();
  constructor(private readonly out: NodeJS.WritableStream) {}

  async send(alerts: Alert[]): Promise<void> {
    let chunk = '';
    for (const alert of alerts) {
      if (this.printed.has(alert.id)) continue;
      this.printed.add(alert.id);
      chunk += `${JSON.stringify(alert)}\n`;
    }
    if (chunk) await write(this.out, chunk);
  }
}

/** Collects alerts (deduplicated by id); `render()` draws them as a table ordered by event time. */
export class TableAlertSink implements AlertSink {
  private readonly alerts = new Map<string, Alert>();

  async send(alerts: Alert[]): Promise<void> {
    for (const alert of alerts) if (!this.alerts.has(alert.id)) this.alerts.set(alert.id, alert);
  }

  get count(): number {
    return this.alerts.size;
  }

  render(): string {
    return renderAlertTable([...this.alerts.values()]);
  }
}

const SEVERITY_RANK: Readonly<Record<string, number>> = { critical: 0, high: 1, medium: 2, low: 3, informational: 4 };

function clip(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

function entitySummary(alert: Alert): string {
  return alert.entities
    .filter((e) => e.type !== 'ip' && e.type !== 'resource')
    .map((e) => `${e.type}:${e.name ?? e.upn ?? e.id}`)
    .concat(alert.entities.filter((e) => e.type === 'ip').map((e) => `ip:${e.id}`))
    .join(', ');
}

/** A fixed-width table: time, severity, detection, title, entities, planned actions. */
export function renderAlertTable(alerts: readonly Alert[]): string {
  if (alerts.length === 0) return 'No alerts.\n';
  const sorted = [...alerts].sort((a, b) => a.lastEventTime.localeCompare(b.lastEventTime) || (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9));
  const rows = sorted.map((a) => [
    a.lastEventTime.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    a.severity,
    a.detectionId,
    clip(a.title, 70),
    clip(entitySummary(a), 80),
    a.actions.length ? a.actions.map((x) => `${x.action}(${x.mode}:${x.outcome})`).join(' ') : '',
  ]);
  const header = ['time (UTC)', 'severity', 'detection', 'title', 'entities', 'actions'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

/** Keeps every alert it is sent (tests, the demo, `buildApp` default). */
export class MemoryAlertSink implements AlertSink {
  readonly alerts: Alert[] = [];
  async send(alerts: Alert[]): Promise<void> {
    this.alerts.push(...alerts);
  }
}

/** Sends to every sink in order; resolves only when all accepted (a failure propagates to the caller). */
export class FanOutAlertSink implements AlertSink {
  constructor(private readonly sinks: readonly AlertSink[]) {}
  async send(alerts: Alert[]): Promise<void> {
    for (const sink of this.sinks) await sink.send(alerts);
  }
}

/** Keeps dead letters in memory, for the replay summary and tests. */
export class MemoryDeadLetterSink implements DeadLetterSink {
  readonly letters: DeadLetter[] = [];
  async put(letters: DeadLetter[]): Promise<void> {
    this.letters.push(...letters);
  }
}

/** Writes one warning line per dead letter (up to `limit`, then a count) to a stream, e.g. stderr. */
export class StreamDeadLetterSink implements DeadLetterSink {
  private written = 0;
  private suppressed = 0;
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly limit = 50,
  ) {}

  async put(letters: DeadLetter[]): Promise<void> {
    let chunk = '';
    for (const letter of letters) {
      if (this.written >= this.limit) {
        this.suppressed++;
        continue;
      }
      this.written++;
      chunk += `warning: rejected ${describePosition(letter.position)}: ${letter.reason}\n`;
    }
    if (chunk) await write(this.out, chunk);
  }

  /** How many letters were not printed because of the limit. */
  get notPrinted(): number {
    return this.suppressed;
  }
}

export function describePosition(position: DeadLetter['position']): string {
  const parts: string[] = [];
  if (position.source) parts.push(position.source);
  if (position.partitionId !== undefined) parts.push(`partition ${position.partitionId}`);
  if (position.sequenceNumber !== undefined) parts.push(`seq ${position.sequenceNumber}`);
  if (position.offset !== undefined) parts.push(`offset ${position.offset}`);
  if (position.messageIndex !== undefined) parts.push(`message ${position.messageIndex}`);
  if (position.recordIndex !== undefined) parts.push(`record ${position.recordIndex}`);
  return parts.join(', ') || 'unknown position';
}

function write(out: NodeJS.WritableStream, chunk: string): Promise<void> {
  return new Promise((resolve, reject) => {
    out.write(chunk, (error?: Error | null) => (error ? reject(error) : resolve()));
  });
}
