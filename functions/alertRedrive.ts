/** Timer: delivers alerts still pending in each outbox (a destination was down when they fired). */
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { azureHost } from '../src/host/azure';
import { invocationScopedLogger, withInvocationLog } from '../src/host/logging';

export const ALERT_REDRIVE_SCHEDULE = '0 */5 * * * *';

export async function alertRedrive(_timer: Timer, context: InvocationContext): Promise<void> {
  await withInvocationLog(context, async () => {
    const host = await azureHost();
    for (const outbox of host.outboxes) {
      const report = await outbox.redrive();
      invocationScopedLogger.log(report.pendingAfter ? 'warn' : 'info', 'alert redrive', { outbox: outbox.partition, ...report });
    }
  });
}

app.timer('alertRedrive', { schedule: ALERT_REDRIVE_SCHEDULE, runOnStartup: false, useMonitor: true, handler: alertRedrive });
