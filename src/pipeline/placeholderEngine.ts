/**
 * PLACEHOLDER — stands in for the declarative engine (`src/engine`) until it is wired into
 * `buildApp`; delete it then. One hard-coded check so the path decode → … → emit is proven end to
 * end: a credential added to an application or service principal (audit facts), success only.
 */
import { createHash } from 'node:crypto';
import type { Alert, AlertEntity } from '../alerts/types';
import type { AgentEvent } from '../normalize/types';
import type { Clock, DetectionEngine, InventoryView } from '../ports';
import { systemClock } from '../ports';

export const PLACEHOLDER_DETECTION_ID = 'credential-added-to-application';

export function createPlaceholderEngine(clock: Clock = systemClock): DetectionEngine {
  const raised = new Set<string>();
  return {
    async evaluate(events: AgentEvent[], _inventory: InventoryView): Promise<Alert[]> {
      const alerts: Alert[] = [];
      for (const event of events) {
        const added = event.audit?.credentialsAdded ?? [];
        if (event.kind !== 'audit' || event.result?.status !== 'success' || added.length === 0) continue;
        const target = event.audit!.targets[0];
        const dedupKey = `${target?.appId ?? target?.id ?? 'unknown'}|${added.map((c) => c.keyId ?? c.displayName ?? c.type).join(',')}`;
        const id = createHash('sha1').update(`${PLACEHOLDER_DETECTION_ID}|${dedupKey}`).digest('hex').slice(0, 32);
        if (raised.has(id)) continue;
        raised.add(id);
        const entities: AlertEntity[] = [];
        if (target?.id) entities.push({ type: target.type === 'blueprint' ? 'blueprint' : target.type === 'agentIdentity' ? 'agentIdentity' : target.rawType === 'Application' ? 'application' : 'servicePrincipal', id: target.id, ...(target.name ? { name: target.name } : {}), ...(target.appId ? { appId: target.appId } : {}) });
        if (event.actor?.id) entities.push({ type: event.actor.type === 'user' ? 'user' : 'servicePrincipal', id: event.actor.id, ...(event.actor.upn ? { upn: event.actor.upn } : {}), ...(event.actor.name ? { name: event.actor.name } : {}) });
        if (event.ip) entities.push({ type: 'ip', id: event.ip });
        const alert: Alert = {
          id,
          detectionId: PLACEHOLDER_DETECTION_ID,
          title: `Credential added to ${target?.name ?? target?.id ?? 'an application'} by ${event.actor?.upn ?? event.actor?.name ?? 'unknown'}`,
          severity: 'medium',
          firstEventTime: event.time,
          lastEventTime: event.time,
          createdTime: new Date(clock.now()).toISOString(),
          entities,
          dedupKey,
          evidence: [event.id],
          tactics: ['Persistence'],
          techniques: ['T1098.001'],
          actions: [],
          details: { keyIds: added.map((c) => c.keyId).filter(Boolean), operation: event.audit!.operation },
        };
        if (event.tenantId) alert.tenantId = event.tenantId;
        if (event.blueprintAppId) alert.blueprintAppId = event.blueprintAppId;
        alerts.push(alert);
      }
      return alerts;
    },
  };
}
