/**
 * The Function App's host: built from `process.env` in `function` mode the first time any function
 * of this instance runs, then shared by every invocation (clients, inventory cache and compiled
 * detections live as long as the instance). A failed build — a missing setting, Table Storage
 * unreachable at start — is not cached: it is logged with every problem named, the invocation
 * throws (the Event Hubs retry policy redelivers), and the next invocation tries again.
 */
import { createHost, type AgentwatchHost } from './compose';
import { invocationScopedLogger } from './logging';

let building: Promise<AgentwatchHost> | undefined;

export function azureHost(): Promise<AgentwatchHost> {
  building ??= createHost({ mode: 'function', env: process.env, logger: invocationScopedLogger }).catch((error: unknown) => {
    building = undefined;
    invocationScopedLogger.log('error', 'host start-up failed', { code: (error as { code?: unknown }).code, error: (error as Error)?.message ?? String(error) });
    throw error;
  });
  return building;
}
