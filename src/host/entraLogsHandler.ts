/**
 * The Event Hubs batch handler, shared by the Function's trigger (`functions/entraLogs.ts`) and the
 * self-hosted consumer (`npm run local`), so both run the same code on the same batch metadata.
 *
 * Messages arrive as parsed objects, strings or Buffers (the trigger's `dataType: 'string'` hands
 * over JSON already parsed and anything else as text); the pipeline decodes all three and
 * dead-letters what it cannot read, so data errors never throw. What does throw is a dependency
 * failing (Table Storage, the alert outbox): that is rethrown so the trigger's retry policy runs the
 * batch again — safe, because every effect is idempotent by record and alert id. On the retry
 * policy's last attempt the batch's bodies are dead-lettered as `BATCH_ABANDONED` first, because
 * the host checkpoints past it after that and the records would otherwise be lost silently.
 */
import { ensureError } from '../errors';
import type { App } from '../app';
import type { BatchSummary } from '../pipeline';
import type { DeadLetter, DeadLetterSink } from '../ports';
import { invocationScopedLogger } from './logging';
import { batchMetaFromTrigger } from './triggerMetadata';

/** What the handler needs from the host. */
export interface EntraLogsTarget {
  app: Pick<App, 'processBatch'>;
  deadLetters: DeadLetterSink;
}

/** The part of `InvocationContext` the handler reads. Logs go to the caller's scope (`withInvocationLog` / `withLogger`). */
export interface EntraLogsInvocation {
  triggerMetadata?: Record<string, unknown>;
  retryContext?: { retryCount: number; maxRetryCount: number };
}

export async function handleEntraLogs(messages: unknown[], invocation: EntraLogsInvocation, resolveTarget: () => Promise<EntraLogsTarget>): Promise<BatchSummary> {
  const batch = Array.isArray(messages) ? messages : [messages];
  const meta = batchMetaFromTrigger(invocation.triggerMetadata, batch.length);
  const target = await resolveTarget();
  try {
    const summary = await target.app.processBatch(batch, meta);
    invocationScopedLogger.log(summary.rejected ? 'warn' : 'info', 'entraLogs batch', {
      partitionId: meta.partitionId,
      firstSequenceNumber: meta.sequenceNumbers?.[0],
      lastSequenceNumber: meta.sequenceNumbers?.[batch.length - 1],
      messages: summary.messages,
      records: summary.recordsRead,
      events: summary.events,
      skippedByCategory: summary.skippedByCategory,
      rejectedByReason: summary.rejectedByReason,
      alertsByDetection: summary.alertsByDetection,
    });
    return summary;
  } catch (error) {
    const failure = ensureError(error);
    const code = (error as { code?: unknown }).code;
    const retry = invocation.retryContext;
    const lastAttempt = retry !== undefined && retry.maxRetryCount >= 0 && retry.retryCount >= retry.maxRetryCount;
    invocationScopedLogger.log('error', lastAttempt ? 'batch failed on its last retry' : 'batch failed: the retry policy will run it again', {
      code,
      error: failure.message,
      partitionId: meta.partitionId,
      retryCount: retry?.retryCount,
      maxRetryCount: retry?.maxRetryCount,
    });
    if (lastAttempt) await abandon(batch, meta, target.deadLetters, failure, code);
    throw failure;
  }
}

async function abandon(batch: unknown[], meta: ReturnType<typeof batchMetaFromTrigger>, deadLetters: DeadLetterSink, failure: Error, code: unknown): Promise<void> {
  const at = new Date().toISOString();
  const letters: DeadLetter[] = batch.map((body, messageIndex) => {
    const position: DeadLetter['position'] = { messageIndex };
    if (meta.source !== undefined) position.source = meta.source;
    if (meta.partitionId !== undefined) position.partitionId = meta.partitionId;
    const sequenceNumber = meta.sequenceNumbers?.[messageIndex];
    const offset = meta.offsets?.[messageIndex];
    if (sequenceNumber !== undefined && sequenceNumber !== null) position.sequenceNumber = String(sequenceNumber);
    if (offset !== undefined && offset !== null) position.offset = String(offset);
    return { code: 'BATCH_ABANDONED', reason: `retries exhausted (${typeof code === 'string' ? `${code}: ` : ''}${failure.message}); replay this body`, position, payload: body, at };
  });
  try {
    await deadLetters.put(letters);
    invocationScopedLogger.log('warn', 'abandoned batch dead-lettered', { messages: letters.length, partitionId: meta.partitionId });
  } catch (deadLetterError) {
    invocationScopedLogger.log('error', 'abandoned batch could not be dead-lettered either: it is lost past the checkpoint', {
      error: ensureError(deadLetterError).message,
      partitionId: meta.partitionId,
      firstSequenceNumber: meta.sequenceNumbers?.[0],
      lastSequenceNumber: meta.sequenceNumbers?.[batch.length - 1],
    });
  }
}
