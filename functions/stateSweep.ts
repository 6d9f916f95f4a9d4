/** Timer: deletes detection state whose TTL passed, so the state table does not grow without bound. */
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { azureHost } from '../src/host/azure';
import { invocationScopedLogger, withInvocationLog } from '../src/host/logging';
import { sweepExpiredState } from '../src/state/sweep';

export const STATE_SWEEP_SCHEDULE = '0 */15 * * * *';
/** Keeps one run short; the next run carries on where this one stopped. */
export const STATE_SWEEP_MAX_DELETES = 20_000;

export async function stateSweep(_timer: Timer, context: InvocationContext): Promise<void> {
  await withInvocationLog(context, async () => {
    const host = await azureHost();
    const result = await sweepExpiredState(host.state, { logger: invocationScopedLogger, maxDeletes: STATE_SWEEP_MAX_DELETES });
    invocationScopedLogger.log('info', 'state sweep', { ...result });
  });
}

app.timer('stateSweep', { schedule: STATE_SWEEP_SCHEDULE, runOnStartup: false, useMonitor: true, handler: stateSweep });
