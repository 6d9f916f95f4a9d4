/**
 * A durable outbox in front of any alert uploader (Sentinel Logs Ingestion, an Event Hub).
 *
 * An alert is written to the state store before it is uploaded and marked done only after the
 * service accepted it, so no outage loses one:
 *
 *   send ──► pending|<id> (create-only: the create is the claim) ──► upload ──► done|<id> (TTL)
 *                 │                                   │ transient, after the retry budget
 *                 │                                   └──► stays pending, released for the redrive
 *                 └── already pending or done ⇒ a redelivered batch: not sent again
 *
 * A rejected alert (the service refused the data) goes to the dead-letter sink with the response
 * and is marked done. The timer and `agentwatch redrive` call `redrive()`, which claims due pending
 * rows with compare-and-swap (so two instances never send the same row at once) and runs the same
 * delivery loop. Waiting goes through an injected `sleep` and `clock`, so tests can simulate a
 * one-minute outage in no time.
 *
 * Exactly-once is on our side of the wire: when the service accepted a batch but its answer never
 * reached us, the batch is sent again (the API has no idempotency key). The analytics rule groups
 * by dedup key and the rows carry AlertId, so such a duplicate folds into the same incident.
 */
import { AgentwatchError, describeSinkFailure, ensureError, isAgentwatchError, isAggregateSinkError, isStateConflictError, type SinkFailure } from '../errors';
import { silentLogger, systemClock, type AlertSink, type Clock, type DeadLetter, type DeadLetterSink, type Logger, type StateKey, type StateStore, type StateWrite } from '../ports';
import type { Alert } from './types';

/** What the outbox wraps: one upload of a batch of alerts to one service. */
export interface AlertUploader {
  /** Short name (`sentinel`, `eventhub`): names the outbox partition, logs and dead letters. */
  readonly name: string;
  /**
   * Delivers every alert, or throws an `AggregateSinkError` whose failures name exactly the alerts
   * not delivered. Any other error means none was delivered (treated as transient).
   */
  upload(alerts: Alert[]): Promise<UploadReceipt>;
}

export interface UploadReceipt {
  /** Ids of alerts delivered with a field trimmed to fit the service's limits. */
  trimmedAlertIds: string[];
}

export interface OutboxRetryPolicy {
  /** Upload attempts in one delivery run, the first included. Optional; defaults to 4. */
  maxAttempts: number;
  /** First wait between attempts; doubles per attempt, with jitter. Optional; defaults to 1 s. */
  baseDelayMs: number;
  /** Cap on one wait between attempts. Optional; defaults to 30 s. */
  maxDelayMs: number;
  /** Longest Retry-After waited for inside a run; a longer one ends the run and leaves the alerts to the redrive. Optional; defaults to 60 s. */
  maxRetryAfterMs: number;
  /** Earliest redrive of an alert after its first failed run; doubles per failed run. Optional; defaults to 30 s. */
  redriveBaseDelayMs: number;
  /** Cap on the wait before a redrive. Optional; defaults to 15 min. */
  redriveMaxDelayMs: number;
}

export const DEFAULT_OUTBOX_RETRY: OutboxRetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 1_000,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 60_000,
  redriveBaseDelayMs: 30_000,
  redriveMaxDelayMs: 15 * 60_000,
};

export interface OutboxDeps {
  store: StateStore;
  uploader: AlertUploader;
  deadLetters: DeadLetterSink;
  /** Optional; defaults to the system clock. */
  clock?: Clock;
  /** Waits between attempts. Optional; defaults to a real timer. */
  sleep?: (ms: number) => Promise<void>;
  /** Jitter source in [0, 1). Optional; defaults to Math.random. */
  random?: () => number;
  /** Optional; defaults to silent. */
  logger?: Logger;
  /** Optional; each field defaults as documented on `OutboxRetryPolicy`. */
  retry?: Partial<OutboxRetryPolicy>;
  /** How long a delivered or dead-lettered alert id is remembered, so a redelivered batch is not sent again. Optional; defaults to 7 days (the longest Event Hubs retention). */
  doneTtlMs?: number;
  /** How long a run owns the alerts it is sending before a redrive may take them over; keep it above a whole run's retry time. Optional; defaults to 10 min. */
  leaseMs?: number;
}

export interface RedriveOptions {
  /** Only report what is pending; send nothing. Optional; defaults to false. */
  dryRun?: boolean;
  /** At most this many alerts in this run, oldest first. Optional; defaults to all that are due. */
  limit?: number;
  /** Send every pending alert not leased by another run, due or not. Optional; defaults to false (the timer respects the backoff). */
  ignoreSchedule?: boolean;
}

/** What one `deliver` or `redrive` did. Every alert handled is in exactly one of the outcome counts. */
export interface DeliveryReport {
  /** Distinct alerts handled (offered to `deliver`, or due and claimed by `redrive`). */
  handled: number;
  /** Already delivered, dead-lettered or pending elsewhere: not sent again. */
  duplicates: number;
  delivered: number;
  deadLettered: number;
  /** Left pending for the redrive. */
  pending: number;
  /** Upload calls made. */
  attempts: number;
  /** Delivered with a field trimmed to fit. */
  trimmed: number;
}

export interface RedriveReport extends DeliveryReport {
  dryRun: boolean;
  /** Pending rows found before this run. */
  pendingBefore: number;
  /** Of those, rows whose next attempt is not due yet. */
  notDue: number;
  /** Of those, rows another run is sending right now (lease held). */
  leased: number;
  /** Pending rows left after this run. */
  pendingAfter: number;
  /** Enqueue time of the oldest row still pending after this run. */
  oldestPendingSince?: string;
  /** Why the oldest pending row last failed. */
  lastError?: string;
}

/** The stored pending row. */
interface PendingEntry {
  alert: Alert;
  enqueuedAt: string;
  /** Upload attempts so far, over every run. */
  attempts: number;
  /** Delivery runs that ended with the alert still pending. */
  failedRuns: number;
  nextAttemptAt: number;
  leaseUntil: number;
  lastError?: string;
  lastStatus?: number;
}

/** The stored marker that an alert is finished with. */
interface DoneEntry {
  outcome: 'delivered' | 'deadLettered';
  at: string;
  attempts: number;
}

/** A pending row this run holds the lease on. */
interface Claimed {
  key: StateKey;
  etag: string;
  entry: PendingEntry;
}

/** Store calls in flight at once for one batch. */
const WRITE_CONCURRENCY = 16;
const DAY_MS = 86_400_000;

export class OutboxAlertSink implements AlertSink {
  readonly partition: string;
  private readonly store: StateStore;
  private readonly uploader: AlertUploader;
  private readonly deadLetters: DeadLetterSink;
  private readonly clock: Clock;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly logger: Logger;
  private readonly retry: OutboxRetryPolicy;
  private readonly doneTtlMs: number;
  private readonly leaseMs: number;

  constructor(deps: OutboxDeps) {
    this.store = deps.store;
    this.uploader = deps.uploader;
    this.deadLetters = deps.deadLetters;
    this.clock = deps.clock ?? systemClock;
    this.sleep = deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = deps.random ?? Math.random;
    this.logger = deps.logger ?? silentLogger;
    this.retry = { ...DEFAULT_OUTBOX_RETRY, ...deps.retry };
    this.doneTtlMs = deps.doneTtlMs ?? 7 * DAY_MS;
    this.leaseMs = deps.leaseMs ?? 10 * 60_000;
    if (this.retry.maxAttempts < 1) throw new AgentwatchError('CONFIG_INVALID', `outbox retry.maxAttempts must be at least 1, got ${this.retry.maxAttempts}`);
    this.partition = `outbox-${this.uploader.name}`;
  }

  /**
   * `AlertSink`: resolves once every alert is safe — delivered, dead-lettered, or stored for the
   * redrive. Throws only when the outbox itself cannot be written (the caller's batch is then
   * retried and nothing is lost).
   */
  async send(alerts: Alert[]): Promise<void> {
    await this.deliver(alerts);
  }

  /** Like `send`, and says what happened to each alert. */
  async deliver(alerts: Alert[]): Promise<DeliveryReport> {
    const report = emptyReport();
    const unique = [...new Map(alerts.map((alert) => [alert.id, alert])).values()];
    report.handled = unique.length;
    if (!unique.length) return report;
    const claimed = await this.admit(unique, report);
    await this.run(claimed, report);
    this.logOutcome('delivery', report);
    return report;
  }

  /**
   * Sends the pending alerts whose next attempt is due (oldest first, at most `limit`); with
   * `ignoreSchedule`, every pending alert no run is sending right now (an operator's redrive after
   * fixing the cause). With `dryRun`, only reports what is pending.
   */
  async redrive(options: RedriveOptions = {}): Promise<RedriveReport> {
    const now = this.clock.now();
    const rows = await this.store.list<PendingEntry>(this.partition, 'pending|');
    const isDue = (entry: PendingEntry) => options.ignoreSchedule === true || entry.nextAttemptAt <= now;
    const leased = rows.filter((row) => row.value.leaseUntil > now);
    const notDue = rows.filter((row) => row.value.leaseUntil <= now && !isDue(row.value));
    const due = rows
      .filter((row) => row.value.leaseUntil <= now && isDue(row.value))
      .sort((a, b) => a.value.enqueuedAt.localeCompare(b.value.enqueuedAt))
      .slice(0, options.limit ?? Number.POSITIVE_INFINITY);
    const report: RedriveReport = { ...emptyReport(), dryRun: options.dryRun === true, pendingBefore: rows.length, notDue: notDue.length, leased: leased.length, pendingAfter: rows.length };
    if (!options.dryRun && due.length) {
      const claimed = await this.claim(due.map((row) => ({ key: row.key, etag: row.etag, entry: row.value })));
      report.leased += due.length - claimed.length;
      report.handled = claimed.length;
      await this.run(claimed, report);
    }
    const stillPending = options.dryRun ? rows : await this.store.list<PendingEntry>(this.partition, 'pending|');
    report.pendingAfter = stillPending.length;
    const oldest = stillPending.map((row) => row.value).sort((a, b) => a.enqueuedAt.localeCompare(b.enqueuedAt))[0];
    if (oldest) {
      report.oldestPendingSince = oldest.enqueuedAt;
      if (oldest.lastError) report.lastError = oldest.lastError;
    }
    if (!options.dryRun) this.logOutcome('redrive', report);
    return report;
  }

  // -------------------------------------------------------------------------------------------

  private pendingKey(alertId: string): StateKey {
    return { partition: this.partition, row: `pending|${alertId}` };
  }

  private doneKey(alertId: string): StateKey {
    return { partition: this.partition, row: `done|${alertId}` };
  }

  /**
   * Stores new alerts as pending rows this run holds; counts the rest as duplicates. An alert too
   * large for the store is dead-lettered here (it cannot be kept durably, so it is not sent).
   */
  private async admit(alerts: Alert[], report: DeliveryReport): Promise<Claimed[]> {
    const done = await mapLimit(alerts, WRITE_CONCURRENCY, (alert) => this.store.get<DoneEntry>(this.doneKey(alert.id)));
    const fresh = alerts.filter((_, index) => done[index] === undefined);
    report.duplicates += alerts.length - fresh.length;
    const now = this.clock.now();
    const enqueuedAt = new Date(now).toISOString();
    const candidates: Claimed[] = fresh.map((alert) => ({
      key: this.pendingKey(alert.id),
      etag: '',
      entry: { alert, enqueuedAt, attempts: 0, failedRuns: 0, nextAttemptAt: now, leaseUntil: now + this.leaseMs },
    }));
    // ifMatch undefined = create only: a row that already exists belongs to another delivery (or to
    // an earlier attempt at this batch, which the redrive finishes).
    const outcome = await this.writeEach(candidates, (item) => ({ op: 'put', key: item.key, value: item.entry }));
    report.duplicates += outcome.conflicted.length;
    if (outcome.refused.length) {
      const errors = new Map(outcome.refused.map(({ item, error }) => [item, error]));
      const taken = await this.deadLetter([...errors.keys()], 0, (item) => ({ reason: `too large to keep in the ${this.uploader.name} outbox, not sent: ${errors.get(item)!.message}` }));
      report.deadLettered += taken.length;
      // Neither the outbox nor the dead letter could keep it: fail the batch so the host retries it.
      if (taken.length < outcome.refused.length) throw outcome.refused.find(({ item }) => !taken.includes(item))!.error;
    }
    return outcome.written;
  }

  /** Takes the lease of due rows with compare-and-swap; rows another run took meanwhile are skipped. */
  private async claim(rows: Claimed[]): Promise<Claimed[]> {
    const leaseUntil = this.clock.now() + this.leaseMs;
    const leased = rows.map((row) => ({ ...row, entry: { ...row.entry, leaseUntil } }));
    return (await this.writeEach(leased, (item) => ({ op: 'put', key: item.key, value: item.entry, ifMatch: item.etag }))).written;
  }

  /**
   * One commit per item, a few in flight: a conflict then names exactly that item (the Table
   * adapter reports every key of a failed transaction, and returns no etags when one fails).
   */
  private async writeEach(
    items: Claimed[],
    write: (item: Claimed) => StateWrite,
    alsoWrite: (item: Claimed) => StateWrite[] = () => [],
  ): Promise<{ written: Claimed[]; conflicted: Claimed[]; refused: { item: Claimed; error: Error }[] }> {
    const written: Claimed[] = [];
    const conflicted: Claimed[] = [];
    const refused: { item: Claimed; error: Error }[] = [];
    await mapLimit(items, WRITE_CONCURRENCY, async (item) => {
      try {
        const etags = await this.store.commit([...alsoWrite(item), write(item)]);
        written.push({ ...item, etag: etags.get(`${item.key.partition}\u0000${item.key.row}`) ?? '' });
      } catch (error) {
        if (isStateConflictError(error)) conflicted.push(item);
        else if (isAgentwatchError(error) && error.code === 'STATE_WRITE_REFUSED') refused.push({ item, error });
        else throw error;
      }
    });
    return { written, conflicted, refused };
  }

  /** The delivery loop: upload, settle what was accepted or refused, retry the rest, release leftovers. */
  private async run(claimed: Claimed[], report: DeliveryReport): Promise<void> {
    let remaining = claimed;
    let attempt = 0;
    const lastFailures = new Map<string, SinkFailure<Alert>>();
    const undeadLettered: Claimed[] = [];
    let deferMs = 0;
    while (remaining.length && attempt < this.retry.maxAttempts) {
      attempt += 1;
      report.attempts += 1;
      const failures = await this.uploadOnce(remaining, report);
      const failureById = new Map<string, SinkFailure<Alert>>();
      for (const failure of failures) for (const alert of failure.items) failureById.set(alert.id, failure);
      const delivered = remaining.filter((item) => !failureById.has(item.entry.alert.id));
      const rejected = remaining.filter((item) => failureById.get(item.entry.alert.id)?.code === 'SINK_REJECTED');
      const transient = remaining.filter((item) => failureById.get(item.entry.alert.id)?.code === 'SINK_TRANSIENT');
      await this.settle(delivered, 'delivered', attempt);
      report.delivered += delivered.length;
      const deadLettered = await this.deadLetter(rejected, attempt, (item) => {
        const failure = failureById.get(item.entry.alert.id)!;
        return {
          reason: `${this.uploader.name} refused the alert: ${describeSinkFailure(failure)}`,
          response: { status: failure.status, code: failure.serviceCode, message: ensureError(failure.cause).message },
        };
      });
      report.deadLettered += deadLettered.length;
      // A rejection the dead-letter sink could not take stays pending for the redrive (never lost),
      // but is not uploaded again in this run: the service already said no.
      undeadLettered.push(...rejected.filter((item) => !deadLettered.includes(item)));
      remaining = transient;
      for (const [id, failure] of failureById) lastFailures.set(id, failure);
      if (!remaining.length || attempt >= this.retry.maxAttempts) break;
      const retryAfterMs = Math.max(0, ...remaining.map((item) => failureById.get(item.entry.alert.id)?.retryAfterMs ?? 0));
      if (retryAfterMs > this.retry.maxRetryAfterMs) {
        deferMs = retryAfterMs;
        break;
      }
      await this.sleep(Math.max(this.backoffMs(attempt), retryAfterMs));
    }
    const leftover = [...remaining, ...undeadLettered];
    if (leftover.length) await this.release(leftover, lastFailures, attempt, deferMs);
    report.pending += leftover.length;
  }

  private async uploadOnce(items: Claimed[], report: DeliveryReport): Promise<SinkFailure<Alert>[]> {
    try {
      const receipt = await this.uploader.upload(items.map((item) => item.entry.alert));
      report.trimmed += receipt.trimmedAlertIds.length;
      return [];
    } catch (error) {
      if (isAggregateSinkError(error)) return error.failures as SinkFailure<Alert>[];
      return [{ code: 'SINK_TRANSIENT', items: items.map((item) => item.entry.alert), cause: error }];
    }
  }

  /** Replaces each pending row by its done marker, in one atomic commit per alert. */
  private async settle(items: Claimed[], outcome: DoneEntry['outcome'], attemptsThisRun: number): Promise<void> {
    if (!items.length) return;
    const at = new Date(this.clock.now()).toISOString();
    const expiresAt = this.clock.now() + this.doneTtlMs;
    const doneWrite = (item: Claimed): StateWrite => ({
      op: 'put',
      key: this.doneKey(item.entry.alert.id),
      value: { outcome, at, attempts: item.entry.attempts + attemptsThisRun } satisfies DoneEntry,
      expiresAt,
      ifMatch: '*',
    });
    // A row admitted without an etag (refused by the store) has no pending row to delete.
    const { conflicted } = await this.writeEach(items, (item) => doneWrite(item), (item) => (item.etag ? [{ op: 'delete', key: item.key, ifMatch: item.etag }] : []));
    if (conflicted.length) {
      // Another run took these over after our lease ran out and may send them again. Record that
      // they are done so later redeliveries stop, and say so.
      await this.writeEach(conflicted, doneWrite);
      this.logger.log('warn', `${this.uploader.name} outbox: lease lost on ${conflicted.length} alert(s) while sending; they may reach ${this.uploader.name} twice (raise the outbox lease above the run time)`, {
        alertIds: conflicted.map((item) => item.entry.alert.id),
      });
    }
  }

  /** Dead-letters alerts (with the service's answer, when there is one), loudly. Returns those the sink took. */
  private async deadLetter(items: Claimed[], attemptsThisRun: number, describe: (item: Claimed) => { reason: string; response?: Record<string, unknown> }): Promise<Claimed[]> {
    if (!items.length) return [];
    const at = new Date(this.clock.now()).toISOString();
    const letters: DeadLetter[] = items.map((item) => {
      const { reason, response } = describe(item);
      return { code: 'SINK_REJECTED', reason, position: { source: this.partition }, payload: { alert: item.entry.alert, ...(response ? { response } : {}) }, at };
    });
    try {
      await this.deadLetters.put(letters);
    } catch (error) {
      this.logger.log('error', `${this.uploader.name} outbox: ${items.length} refused alert(s) could not be dead-lettered; kept pending`, {
        alertIds: items.map((item) => item.entry.alert.id),
        error: ensureError(error).message,
      });
      return [];
    }
    await this.settle(items, 'deadLettered', attemptsThisRun);
    this.logger.log('error', `${this.uploader.name} refused ${items.length} alert(s); dead-lettered with the response`, {
      alertIds: items.map((item) => item.entry.alert.id),
      reasons: [...new Set(letters.map((letter) => letter.reason))],
    });
    return items;
  }

  /** Gives the lease back and schedules the redrive, recording why the alerts are still pending. */
  private async release(items: Claimed[], failureById: Map<string, SinkFailure<Alert>>, attemptsThisRun: number, deferMs: number): Promise<void> {
    const now = this.clock.now();
    const released = items.map((item) => {
      const failure = failureById.get(item.entry.alert.id);
      const failedRuns = item.entry.failedRuns + 1;
      const entry: PendingEntry = {
        ...item.entry,
        attempts: item.entry.attempts + attemptsThisRun,
        failedRuns,
        leaseUntil: 0,
        nextAttemptAt: now + Math.max(deferMs, failure?.retryAfterMs ?? 0, this.redriveDelayMs(failedRuns)),
        ...(failure ? { lastError: describeSinkFailure(failure) } : {}),
        ...(failure?.status !== undefined ? { lastStatus: failure.status } : {}),
      };
      return { ...item, entry };
    });
    // A release that loses its race means another run already took the rows over: nothing to do.
    await this.writeEach(released, (item) => ({ op: 'put', key: item.key, value: item.entry, ifMatch: item.etag }));
    const reasons = [...new Set(released.map((item) => item.entry.lastError).filter(Boolean))];
    this.logger.log('warn', `${this.uploader.name} outbox: ${items.length} alert(s) still undelivered after ${attemptsThisRun} attempt(s); left for the redrive`, {
      alertIds: items.map((item) => item.entry.alert.id),
      reasons,
      nextAttemptAt: new Date(Math.min(...released.map((item) => item.entry.nextAttemptAt))).toISOString(),
    });
  }

  private backoffMs(attempt: number): number {
    const ceiling = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
    // Equal jitter: several instances throttled by the same DCR do not retry in lockstep.
    return ceiling / 2 + this.random() * (ceiling / 2);
  }

  private redriveDelayMs(failedRuns: number): number {
    return Math.min(this.retry.redriveMaxDelayMs, this.retry.redriveBaseDelayMs * 2 ** (failedRuns - 1));
  }

  private logOutcome(what: 'delivery' | 'redrive', report: DeliveryReport): void {
    if (!report.handled) return;
    const level = report.pending || report.deadLettered ? 'warn' : 'info';
    this.logger.log(level, `${this.uploader.name} ${what}: ${report.delivered} delivered, ${report.deadLettered} dead-lettered, ${report.pending} pending, ${report.duplicates} duplicate(s)`, {
      ...report,
    });
  }
}

/** The timer / CLI entry point: redrives the outbox of one uploader. */
export function redriveOutbox(deps: OutboxDeps, options: RedriveOptions = {}): Promise<RedriveReport> {
  return new OutboxAlertSink(deps).redrive(options);
}

function emptyReport(): DeliveryReport {
  return { handled: 0, duplicates: 0, delivered: 0, deadLettered: 0, pending: 0, attempts: 0, trimmed: 0 };
}

async function mapLimit<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
