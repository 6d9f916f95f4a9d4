/**
 * The pipeline every host runs (Function, local consumer, replay, demo, rule tests):
 * decode → validate → normalize → resolve (inventory) → evaluate → respond → emit.
 *
 * Data errors never throw: bad bodies and records are dead-lettered with their position and the
 * batch goes on. A failing dependency (state store, alert sink, dead-letter store) throws, so the
 * Function's retry policy redelivers the batch; redelivery is safe because the engine and the
 * sinks are idempotent by record and alert id.
 */
import type { Alert } from '../alerts/types';
import { ingestBatch, type BatchMeta, type IngestStats, emptyIngestStats, addIngestStats } from '../ingest';
import { observeAndResolve, type Inventory } from '../inventory';
import type { AgentEvent } from '../normalize/types';
import type { AlertSink, Clock, DeadLetterSink, DetectionEngine, Logger, Responder } from '../ports';
import { silentLogger, systemClock } from '../ports';

export type { BatchMeta } from '../ingest';

export interface PipelineDeps {
  inventory: Inventory;
  engine: DetectionEngine;
  alertSink: AlertSink;
  deadLetters: DeadLetterSink;
  /** Plans / takes response actions and fills `alert.actions`. Optional: without it alerts carry none. */
  responder?: Responder;
  logger?: Logger;
  clock?: Clock;
}

export interface BatchSummary extends IngestStats {
  alerts: number;
  alertsByDetection: Record<string, number>;
}

export function emptySummary(): BatchSummary {
  return { ...emptyIngestStats(), alerts: 0, alertsByDetection: {} };
}

/** Adds a batch summary into running totals. */
export function addSummary(total: BatchSummary, batch: BatchSummary): BatchSummary {
  addIngestStats(total, batch);
  total.alerts += batch.alerts;
  for (const [k, v] of Object.entries(batch.alertsByDetection)) total.alertsByDetection[k] = (total.alertsByDetection[k] ?? 0) + v;
  return total;
}

/** Orders events by event time; ties keep arrival order (Array.prototype.sort is stable). */
export function byEventTime(events: AgentEvent[]): AgentEvent[] {
  for (let i = 1; i < events.length; i++) {
    if (events[i]!.timeMs < events[i - 1]!.timeMs) return events.sort((a, b) => a.timeMs - b.timeMs);
  }
  return events;
}

/**
 * Processes one batch of Event Hub messages. `meta` arrays are index-aligned with `messages`.
 * Returns what happened; the caller logs or prints it.
 */
export async function processBatch(messages: readonly unknown[], meta: BatchMeta, deps: PipelineDeps): Promise<BatchSummary> {
  const logger = deps.logger ?? silentLogger;
  const clock = deps.clock ?? systemClock;
  await deps.inventory.refreshIfStale();

  const { events, deadLetters, stats } = ingestBatch(messages, meta, () => clock.now());
  // Dead letters first: what could not be read is on record even if a later stage fails.
  if (deadLetters.length) await deps.deadLetters.put(deadLetters);

  byEventTime(events);
  observeAndResolve(deps.inventory, events);

  let alerts: Alert[] = events.length ? await deps.engine.evaluate(events, deps.inventory) : [];
  if (alerts.length && deps.responder) alerts = await deps.responder.respond(alerts);
  if (alerts.length) {
    await deps.alertSink.send(alerts);
    // Only now are they safe: a crash before this line re-emits them (same ids) on redelivery.
    await deps.engine.acknowledge?.(alerts);
  }
  await deps.inventory.flush();

  const summary: BatchSummary = { ...stats, alerts: alerts.length, alertsByDetection: {} };
  for (const alert of alerts) summary.alertsByDetection[alert.detectionId] = (summary.alertsByDetection[alert.detectionId] ?? 0) + 1;
  logger.log(summary.rejected ? 'warn' : 'info', 'batch processed', {
    source: meta.source,
    partitionId: meta.partitionId,
    messages: summary.messages,
    records: summary.recordsRead,
    // Records per category: the health alert on a category that stops arriving reads it.
    byCategory: summary.byCategory,
    events: summary.events,
    skipped: Object.values(summary.skippedByCategory).reduce((a, b) => a + b, 0),
    rejected: summary.rejected,
    alerts: summary.alerts,
  });
  return summary;
}
