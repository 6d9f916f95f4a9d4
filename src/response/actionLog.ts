/**
 * The response stage's state on the `StateStore` port: one record per action per incident (the
 * idempotency marker, claimed create-only so two instances cannot both act), an index of pending
 * approvals, the append-only action log (a partition per UTC day) and the blast-radius counters
 * (a partition per UTC clock hour, updated by compare-and-swap).
 */
import { AgentwatchError, StateConflictError, isStateConflictError } from '../errors';
import { stateKeyId, type StateRecord, type StateStore } from '../ports';
import { capReason, hourBucket, type CapLimits } from './guards';
import type { ActionLogEntry, ActionRecord } from './types';

export const ACTION_PARTITION = 'response-action';
export const PENDING_PARTITION = 'response-pending';
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export function logPartition(epochMs: number): string {
  return `response-log-${new Date(epochMs).toISOString().slice(0, 10).replace(/-/g, '')}`;
}

export function capPartition(epochMs: number): string {
  return `response-cap-${hourBucket(epochMs)}`;
}

interface CapCounter {
  count: number;
}

export type ClaimResult = { claimed: true; etag: string } | { claimed: false; existing: StateRecord<ActionRecord> };

export class ActionStore {
  constructor(
    private readonly state: StateStore,
    private readonly ttl: { logMs: number; approvalMs: number },
  ) {}

  async read(actionId: string): Promise<StateRecord<ActionRecord> | undefined> {
    return this.state.get<ActionRecord>({ partition: ACTION_PARTITION, row: actionId });
  }

  /** Creates the action's record only if absent: the first decider wins, a redelivery sees the existing one. */
  async claim(record: ActionRecord, nowMs: number): Promise<ClaimResult> {
    const key = { partition: ACTION_PARTITION, row: record.actionId };
    try {
      const etags = await this.state.commit([{ op: 'put', key, value: record, expiresAt: nowMs + this.ttl.logMs }]);
      return { claimed: true, etag: etagOf(etags, key) };
    } catch (error) {
      if (!isStateConflictError(error)) throw error;
      const existing = await this.state.get<ActionRecord>(key);
      if (!existing) throw new AgentwatchError('STATE_CONFLICT', `action ${record.actionId} conflicted on create but cannot be read back`, { cause: error });
      return { claimed: false, existing };
    }
  }

  /** Takes over an existing record if unchanged since `etag`; undefined when someone else changed it first. */
  async reclaim(record: ActionRecord, etag: string, nowMs: number): Promise<string | undefined> {
    const key = { partition: ACTION_PARTITION, row: record.actionId };
    try {
      return etagOf(await this.state.commit([{ op: 'put', key, value: record, ifMatch: etag, expiresAt: nowMs + this.ttl.logMs }]), key);
    } catch (error) {
      if (isStateConflictError(error)) return undefined;
      throw error;
    }
  }

  /**
   * Replaces the record if unchanged since `etag` (StateConflictError otherwise) and keeps the
   * pending index in step: added on entering pendingApproval, removed on leaving it.
   */
  async save(record: ActionRecord, etag: string, previousOutcome: ActionRecord['outcome'] | undefined, nowMs: number): Promise<string> {
    const key = { partition: ACTION_PARTITION, row: record.actionId };
    const etags = await this.state.commit([{ op: 'put', key, value: record, ifMatch: etag, expiresAt: nowMs + this.ttl.logMs }]);
    const pendingKey = { partition: PENDING_PARTITION, row: record.actionId };
    if (record.outcome === 'pendingApproval' && previousOutcome !== 'pendingApproval') {
      await this.state.commit([{ op: 'put', key: pendingKey, value: { actionId: record.actionId }, ifMatch: '*', expiresAt: nowMs + this.ttl.approvalMs }]);
    } else if (record.outcome !== 'pendingApproval' && previousOutcome === 'pendingApproval') {
      await this.state.commit([{ op: 'delete', key: pendingKey }]);
    }
    return etagOf(etags, key);
  }

  /** Appends one decision to the day's log. */
  async log(entry: ActionLogEntry, nowMs: number): Promise<void> {
    const row = `${entry.at}~${entry.actionId}~${entry.outcome}`;
    await this.state.commit([{ op: 'put', key: { partition: logPartition(nowMs), row }, value: entry, ifMatch: '*', expiresAt: nowMs + this.ttl.logMs }]);
  }

  /** The day's log entries (for the approval endpoint's audit view and tests). */
  async logOf(dayEpochMs: number): Promise<ActionLogEntry[]> {
    return (await this.state.list<ActionLogEntry>(logPartition(dayEpochMs))).map((record) => record.value);
  }

  /** Pending approvals that have not lapsed, oldest first. */
  async listPending(): Promise<ActionRecord[]> {
    const index = await this.state.list<{ actionId: string }>(PENDING_PARTITION);
    const records = await Promise.all(index.map((entry) => this.read(entry.value.actionId)));
    return records
      .flatMap((record) => (record && record.value.outcome === 'pendingApproval' ? [record.value] : []))
      .sort((a, b) => a.decidedAt.localeCompare(b.decidedAt));
  }

  /**
   * Counts one automatic action against this hour's caps, or returns why it may not run. Counters
   * are updated by CAS (one transaction: same partition), so concurrent instances cannot overshoot.
   */
  async reserveCap(nowMs: number, limits: CapLimits, blueprintAppId: string | undefined): Promise<string | undefined> {
    const partition = capPartition(nowMs);
    const expiresAt = Math.floor(nowMs / HOUR_MS) * HOUR_MS + 2 * HOUR_MS;
    const totalKey = { partition, row: 'total' };
    const blueprintKey = blueprintAppId ? { partition, row: `blueprint-${blueprintAppId}` } : undefined;
    for (let attempt = 0; attempt < 8; attempt++) {
      const total = await this.state.get<CapCounter>(totalKey);
      const blueprint = blueprintKey ? await this.state.get<CapCounter>(blueprintKey) : undefined;
      const refused = capReason({ total: total?.value.count ?? 0, blueprint: blueprint?.value.count ?? 0 }, limits, blueprintAppId);
      if (refused) return refused;
      const writes = [{ op: 'put' as const, key: totalKey, value: { count: (total?.value.count ?? 0) + 1 }, ifMatch: total?.etag, expiresAt }];
      if (blueprintKey) writes.push({ op: 'put', key: blueprintKey, value: { count: (blueprint?.value.count ?? 0) + 1 }, ifMatch: blueprint?.etag, expiresAt });
      try {
        await this.state.commit(writes);
        return undefined;
      } catch (error) {
        if (!isStateConflictError(error)) throw error;
      }
    }
    throw new StateConflictError([totalKey], { cause: new Error('blast-radius counter kept changing under 8 attempts') });
  }
}

export const DEFAULT_LOG_TTL_MS = 90 * DAY_MS;
export const DEFAULT_APPROVAL_TTL_MS = 7 * DAY_MS;

function etagOf(etags: Map<string, string>, key: { partition: string; row: string }): string {
  return etags.get(stateKeyId(key)) ?? '*';
}
