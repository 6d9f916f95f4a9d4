/**
 * Timer: pulls the agent inventory (blueprints, principals, agent identities, agent users) and the
 * Defender `AgentsInfo` rows from Microsoft Graph. The rows go through the same pipeline as the
 * stream (source `graph:AgentsInfo`); the entities into the shared inventory.
 */
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { azureHost } from '../src/host/azure';
import { pullInventoryInto } from '../src/host/inventoryPull';
import { invocationScopedLogger, withInvocationLog } from '../src/host/logging';

export const INVENTORY_PULL_SCHEDULE = '%AGENTWATCH_INVENTORY_SCHEDULE%';

export async function inventoryPull(_timer: Timer, context: InvocationContext): Promise<void> {
  await withInvocationLog(context, async () => {
    const summary = await pullInventoryInto(await azureHost(), invocationScopedLogger);
    invocationScopedLogger.log(summary.skipped.length ? 'warn' : 'info', 'inventory pull', { ...summary, pipeline: undefined });
  });
}

app.timer('inventoryPull', { schedule: INVENTORY_PULL_SCHEDULE, runOnStartup: false, useMonitor: true, handler: inventoryPull });
