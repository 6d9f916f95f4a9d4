/**
 * The durable outbox against the StateStore port, with a scripted uploader and simulated time:
 * idempotence by alert id, retrying only what failed, Retry-After, the retry budget, the redrive,
 * leases between concurrent runs, dead letters, and nothing lost when a step fails.
 */
import { describe, expect, it } from 'vitest';
import { AgentwatchError, AggregateSinkError, type SinkFailure } from '../../src/errors';
import type { Clock, DeadLetter, DeadLetterSink, StateKey, StateRecord, StateStore, StateWrite } from '../../src/ports';
import { MemoryStateStore } from '../../src/state/memoryStore';
import { OutboxAlertSink, redriveOutbox, type AlertUploader, type OutboxDeps, type UploadReceipt } from '../../src/alerts/outbox';
import type { Alert } from '../../src/alerts/types';

// ---------------------------------------------------------------------------------------------
// Test doubles

/** The shared in-memory StateStore, with one-shot failures injected into chosen commits. */
class FailingStore implements StateStore {
  /** Makes the next commits whose writes satisfy `match` throw this error (one-shot each). */
  readonly failures: { match: (writes: StateWrite[]) => boolean; error: Error }[] = [];
  private readonly inner: MemoryStateStore;
  constructor(clock: Clock) {
    this.inner = new MemoryStateStore({ clock });
  }

  get<T>(key: StateKey): Promise<StateRecord<T> | undefined> {
    return this.inner.get<T>(key);
  }

  list<T>(partition: string, rowPrefix?: string): Promise<StateRecord<T>[]> {
    return this.inner.list<T>(partition, rowPrefix);
  }

  async commit(writes: StateWrite[]): Promise<Map<string, string>> {
    const failure = this.failures.findIndex((candidate) => candidate.match(writes));
    if (failure >= 0) throw this.failures.splice(failure, 1)[0]!.error;
    return this.inner.commit(writes);
  }
}

type Outcome = { transient?: string[]; rejected?: string[]; retryAfterMs?: number; throws?: Error };

/** Follows a script of outcomes, one per call (the last repeats); records what each call carried. */
class ScriptedUploader implements AlertUploader {
  readonly name = 'testsink';
  readonly calls: string[][] = [];
  readonly delivered: string[] = [];
  constructor(private readonly script: Outcome[] = [{}]) {}

  async upload(alerts: Alert[]): Promise<UploadReceipt> {
    const outcome = this.script[Math.min(this.calls.length, this.script.length - 1)]!;
    this.calls.push(alerts.map((alert) => alert.id));
    if (outcome.throws) throw outcome.throws;
    const failures: SinkFailure<Alert>[] = [];
    const pick = (ids: string[] | undefined) => alerts.filter((alert) => ids?.includes(alert.id) || ids?.includes('*'));
    const transient = pick(outcome.transient);
    const rejected = pick(outcome.rejected);
    if (transient.length) failures.push({ code: 'SINK_TRANSIENT', items: transient, status: 503, cause: new Error('service unavailable'), ...(outcome.retryAfterMs ? { retryAfterMs: outcome.retryAfterMs, status: 429 } : {}) });
    if (rejected.length) failures.push({ code: 'SINK_REJECTED', items: rejected, status: 400, serviceCode: 'InvalidStream', cause: new Error('schema mismatch') });
    const failed = new Set([...transient, ...rejected].map((alert) => alert.id));
    this.delivered.push(...alerts.filter((alert) => !failed.has(alert.id)).map((alert) => alert.id));
    if (failures.length) throw new AggregateSinkError(this.name, failures);
    return { trimmedAlertIds: [] };
  }
}

class RecordingDeadLetters implements DeadLetterSink {
  readonly letters: DeadLetter[] = [];
  failNext = 0;
  async put(letters: DeadLetter[]): Promise<void> {
    if (this.failNext > 0) {
      this.failNext -= 1;
      throw new AgentwatchError('STATE_UNAVAILABLE', 'dead-letter table unreachable');
    }
    this.letters.push(...letters);
  }
}

function simulatedTime(start = Date.parse('2026-11-24T10:00:00Z')) {
  let now = start;
  const waits: number[] = [];
  return {
    clock: { now: () => now },
    sleep: async (ms: number) => {
      waits.push(ms);
      now += ms;
    },
    advance: (ms: number) => {
      now += ms;
    },
    waits,
  };
}

function alert(id: string): Alert {
  return {
    id,
    detectionId: 'blueprint-credential-added',
    title: `Credential added to blueprint (${id})`,
    severity: 'medium',
    firstEventTime: '2026-11-24T09:58:00.000Z',
    lastEventTime: '2026-11-24T09:59:00.000Z',
    createdTime: '2026-11-24T10:00:00.000Z',
    entities: [{ type: 'blueprint', id: 'b1a2c3d4-0000-4000-8000-000000000001' }],
    dedupKey: `blueprint-credential-added:${id}`,
    evidence: [`record-${id}`],
    tactics: ['Persistence'],
    techniques: ['T1098.001'],
    actions: [],
  };
}

function setup(script?: Outcome[], overrides: Partial<OutboxDeps> = {}) {
  const time = simulatedTime();
  const store = new FailingStore(time.clock);
  const uploader = new ScriptedUploader(script);
  const deadLetters = new RecordingDeadLetters();
  const deps: OutboxDeps = { store, uploader, deadLetters, clock: time.clock, sleep: time.sleep, random: () => 0.5, ...overrides };
  return { time, store, uploader, deadLetters, deps, sink: new OutboxAlertSink(deps) };
}

const ids = (...names: string[]) => names.map(alert);

// ---------------------------------------------------------------------------------------------

describe('OutboxAlertSink: delivery and idempotence', () => {
  it('uploads each alert once, marks it done, and skips it when the same batch is offered again', async () => {
    const { sink, uploader, store } = setup();
    const first = await sink.deliver(ids('a1', 'a2', 'a3'));
    expect(first).toEqual({ handled: 3, duplicates: 0, delivered: 3, deadLettered: 0, pending: 0, attempts: 1, trimmed: 0 });
    const again = await sink.deliver(ids('a1', 'a2', 'a3', 'a4'));
    expect(again).toMatchObject({ handled: 4, duplicates: 3, delivered: 1, pending: 0, attempts: 1 });
    expect(uploader.delivered.sort()).toEqual(['a1', 'a2', 'a3', 'a4']);
    expect(await store.list('outbox-testsink', 'pending|')).toEqual([]);
    expect((await store.list('outbox-testsink', 'done|')).map((row) => row.key.row).sort()).toEqual(['done|a1', 'done|a2', 'done|a3', 'done|a4']);
  });

  it('sends an alert offered twice in one call once', async () => {
    const { sink, uploader } = setup();
    const report = await sink.deliver([alert('dup'), alert('dup'), alert('other')]);
    expect(report).toMatchObject({ handled: 2, delivered: 2 });
    expect(uploader.calls).toEqual([['dup', 'other']]);
  });

  it('forgets delivered ids after the done TTL, so the marker does not grow the table forever', async () => {
    const { sink, uploader, time } = setup(undefined, { doneTtlMs: 60_000 });
    await sink.deliver(ids('ttl'));
    time.advance(59_000);
    expect(await sink.deliver(ids('ttl'))).toMatchObject({ duplicates: 1, delivered: 0 });
    time.advance(2_000);
    expect(await sink.deliver(ids('ttl'))).toMatchObject({ duplicates: 0, delivered: 1 });
    expect(uploader.delivered).toEqual(['ttl', 'ttl']);
  });

  it('send() resolves when the alerts are safe even if the service is down, and the redrive delivers them later', async () => {
    const { sink, uploader, time } = setup([{ transient: ['*'] }, { transient: ['*'] }, { transient: ['*'] }, { transient: ['*'] }, {}]);
    await expect(sink.send(ids('s1', 's2'))).resolves.toBeUndefined();
    expect(uploader.delivered).toEqual([]);
    time.advance(60_000);
    const report = await sink.redrive();
    expect(report).toMatchObject({ pendingBefore: 2, handled: 2, delivered: 2, pendingAfter: 0 });
    expect(uploader.delivered.sort()).toEqual(['s1', 's2']);
  });
});

describe('OutboxAlertSink: retries', () => {
  it('retries only the alerts that failed, with growing backoff', async () => {
    const { sink, uploader, time } = setup([{ transient: ['b', 'c'] }, { transient: ['c'] }, {}]);
    const report = await sink.deliver(ids('a', 'b', 'c', 'd'));
    expect(report).toMatchObject({ delivered: 4, pending: 0, attempts: 3 });
    expect(uploader.calls).toEqual([['a', 'b', 'c', 'd'], ['b', 'c'], ['c']]);
    // Equal jitter with random() = 0.5: 3/4 of 1 s, then of 2 s.
    expect(time.waits).toEqual([750, 1_500]);
  });

  it('waits at least as long as Retry-After asks', async () => {
    const { sink, time } = setup([{ transient: ['*'], retryAfterMs: 7_000 }, {}]);
    await sink.deliver(ids('throttled'));
    expect(time.waits).toEqual([7_000]);
  });

  it('leaves the alerts to the redrive when Retry-After is longer than a run may wait, and not before it is due', async () => {
    const { sink, uploader, time } = setup([{ transient: ['*'], retryAfterMs: 300_000 }, {}]);
    const first = await sink.deliver(ids('slow'));
    expect(first).toMatchObject({ delivered: 0, pending: 1, attempts: 1 });
    expect(time.waits).toEqual([]);
    time.advance(120_000);
    expect(await sink.redrive()).toMatchObject({ pendingBefore: 1, notDue: 1, handled: 0, pendingAfter: 1 });
    time.advance(181_000);
    expect(await sink.redrive()).toMatchObject({ handled: 1, delivered: 1, pendingAfter: 0 });
    expect(uploader.calls).toEqual([['slow'], ['slow']]);
  });

  it('keeps alerts pending after the retry budget, with the last error, and reports them in a dry run without sending', async () => {
    const { sink, uploader, time } = setup([{ transient: ['*'] }]);
    const report = await sink.deliver(ids('p1', 'p2'));
    expect(report).toMatchObject({ delivered: 0, pending: 2, attempts: 4 });
    expect(uploader.calls).toHaveLength(4);
    time.advance(3_600_000);
    const dry = await sink.redrive({ dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, pendingBefore: 2, pendingAfter: 2, handled: 0, attempts: 0, oldestPendingSince: '2026-11-24T10:00:00.000Z', lastError: 'HTTP 503: service unavailable' });
    expect(uploader.calls).toHaveLength(4);
  });

  it('treats an error that is not an aggregate as a failure of the whole batch, and retries it', async () => {
    const { sink, uploader } = setup([{ throws: new Error('socket hang up') }, {}]);
    expect(await sink.deliver(ids('n1', 'n2'))).toMatchObject({ delivered: 2, attempts: 2 });
    expect(uploader.calls).toEqual([['n1', 'n2'], ['n1', 'n2']]);
  });

  it('backs the redrive off per failed run, up to the cap', async () => {
    const { sink, store, time } = setup([{ transient: ['*'] }], { retry: { maxAttempts: 1, redriveBaseDelayMs: 30_000, redriveMaxDelayMs: 100_000 } });
    await sink.deliver(ids('backoff'));
    const nextAttempts: number[] = [];
    for (let run = 0; run < 4; run++) {
      const [row] = await store.list<{ nextAttemptAt: number }>('outbox-testsink', 'pending|');
      nextAttempts.push(row!.value.nextAttemptAt - time.clock.now());
      time.advance(row!.value.nextAttemptAt - time.clock.now());
      await sink.redrive();
    }
    expect(nextAttempts).toEqual([30_000, 60_000, 100_000, 100_000]);
  });
});

describe('OutboxAlertSink: rejections and dead letters', () => {
  it('dead-letters a refused alert with the response, delivers the rest, and never sends it again', async () => {
    const { sink, uploader, deadLetters } = setup([{ rejected: ['bad'] }, {}]);
    const report = await sink.deliver(ids('good', 'bad'));
    expect(report).toMatchObject({ delivered: 1, deadLettered: 1, pending: 0, attempts: 1 });
    expect(deadLetters.letters).toHaveLength(1);
    expect(deadLetters.letters[0]).toMatchObject({
      code: 'SINK_REJECTED',
      reason: 'testsink refused the alert: HTTP 400 InvalidStream: schema mismatch',
      position: { source: 'outbox-testsink' },
      payload: { alert: { id: 'bad' }, response: { status: 400, code: 'InvalidStream', message: 'schema mismatch' } },
    });
    expect(await sink.deliver(ids('bad'))).toMatchObject({ duplicates: 1 });
    expect(uploader.calls).toEqual([['good', 'bad']]);
  });

  it('keeps a refused alert pending when the dead-letter sink is down, and dead-letters it on the redrive', async () => {
    const { sink, deadLetters, uploader, time } = setup([{ rejected: ['*'] }]);
    deadLetters.failNext = 1;
    expect(await sink.deliver(ids('r1'))).toMatchObject({ deadLettered: 0, pending: 1, attempts: 1 });
    // Not uploaded again in the same run: the service already refused it.
    expect(uploader.calls).toEqual([['r1']]);
    time.advance(60_000);
    expect(await sink.redrive()).toMatchObject({ deadLettered: 1, pendingAfter: 0 });
    expect(deadLetters.letters.map((letter) => (letter.payload as { alert: Alert }).alert.id)).toEqual(['r1']);
  });

  it('dead-letters an alert the store refuses as too large instead of failing the batch forever', async () => {
    const { sink, store, uploader, deadLetters } = setup();
    store.failures.push({ match: (writes) => writes.some((write) => write.key.row === 'pending|huge'), error: new AgentwatchError('STATE_WRITE_REFUSED', 'the entity would be 2000000 bytes') });
    const report = await sink.deliver(ids('huge', 'fine'));
    expect(report).toMatchObject({ delivered: 1, deadLettered: 1, pending: 0 });
    expect(uploader.calls).toEqual([['fine']]);
    expect(deadLetters.letters[0]!.reason).toContain('too large to keep in the testsink outbox');
    expect(await sink.deliver(ids('huge'))).toMatchObject({ duplicates: 1 });
  });
});

describe('OutboxAlertSink: crashes and concurrent runs', () => {
  it('fails the call when the outbox cannot be written, so the host retries the batch', async () => {
    const { sink, store, uploader } = setup();
    store.failures.push({ match: () => true, error: new AgentwatchError('STATE_UNAVAILABLE', 'table unreachable') });
    await expect(sink.send(ids('x1'))).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE' });
    expect(uploader.calls).toEqual([]);
  });

  it('after a crash mid-delivery, a redelivered batch does not send again and the redrive finishes once the lease ran out', async () => {
    const { deps, store, uploader, time } = setup([{ transient: ['*'] }, {}]);
    // The release after the failed attempt cannot be written: the process "dies" holding the lease.
    store.failures.push({ match: (writes) => writes.some((write) => write.op === 'put' && (write.value as { failedRuns?: number }).failedRuns === 1), error: new AgentwatchError('STATE_UNAVAILABLE', 'instance lost') });
    const crashed = new OutboxAlertSink({ ...deps, retry: { maxAttempts: 1 } });
    await expect(crashed.deliver(ids('c1'))).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE' });
    const restarted = new OutboxAlertSink(deps);
    expect(await restarted.deliver(ids('c1'))).toMatchObject({ duplicates: 1, delivered: 0 });
    expect(await restarted.redrive()).toMatchObject({ leased: 1, handled: 0 });
    time.advance(10 * 60_000 + 1);
    expect(await restarted.redrive()).toMatchObject({ handled: 1, delivered: 1, pendingAfter: 0 });
    expect(uploader.calls).toEqual([['c1'], ['c1']]);
    expect(uploader.delivered).toEqual(['c1']);
  });

  it('two redrives racing over the same rows send each alert once', async () => {
    const { deps, uploader, time } = setup([{ transient: ['*'] }, {}], { retry: { maxAttempts: 1 } });
    await new OutboxAlertSink(deps).deliver(ids('k1', 'k2', 'k3'));
    time.advance(60_000);
    const [left, right] = await Promise.all([redriveOutbox(deps), redriveOutbox(deps)]);
    expect(left.delivered + right.delivered).toBe(3);
    expect(left.leased + right.leased).toBe(3);
    expect(uploader.delivered.sort()).toEqual(['k1', 'k2', 'k3']);
  });

  it('a run that lost its lease still records the alerts as done and warns', async () => {
    const warnings: string[] = [];
    const { deps, store, uploader } = setup(undefined, { logger: { log: (level, message) => level === 'warn' && warnings.push(message) } });
    // Someone else rewrote the pending row while our upload was in flight.
    const slow: AlertUploader = {
      name: 'testsink',
      upload: async (alerts) => {
        const [row] = await store.list('outbox-testsink', 'pending|');
        await store.commit([{ op: 'put', key: row!.key, value: row!.value, ifMatch: row!.etag }]);
        return uploader.upload(alerts);
      },
    };
    const report = await new OutboxAlertSink({ ...deps, uploader: slow }).deliver(ids('l1'));
    expect(report).toMatchObject({ delivered: 1 });
    expect(await store.get({ partition: 'outbox-testsink', row: 'done|l1' })).toMatchObject({ value: { outcome: 'delivered' } });
    expect(warnings.some((message) => message.includes('lease lost on 1 alert'))).toBe(true);
  });

  it('refuses a retry policy without attempts', () => {
    const { deps } = setup();
    expect(() => new OutboxAlertSink({ ...deps, retry: { maxAttempts: 0 } })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});
