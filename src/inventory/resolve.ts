/**
 * Resolve stage: types an event's principals from the inventory and fills the agent ids detections
 * group by. A grant to a service principal known to be an agent identity makes the grantee an
 * `agentIdentity` and the event's `blueprintAppId` its parent; an audit on an application known as
 * a blueprint makes the target a `blueprint`, and so on.
 */
import type { AgentEvent, Principal, PrincipalType } from '../normalize/types';
import type { InventoryEntity, InventoryKind } from '../ports';
import type { Inventory } from './store';

/** Types the record said nothing specific about, which the inventory may refine. */
const GENERIC_TYPES = new Set<PrincipalType>(['servicePrincipal', 'application', 'unknown', 'user', 'managedIdentity']);

function refinedType(principal: Principal, entity: InventoryEntity): PrincipalType | undefined {
  const kind: InventoryKind = entity.kind;
  if (principal.type === 'user') return kind === 'agentUser' ? 'agentUser' : undefined;
  if (kind === 'agentUser') return undefined;
  // A service principal carrying a blueprint's app id is that blueprint's principal.
  if (kind === 'blueprint' && principal.type === 'servicePrincipal' && principal.id && principal.id !== entity.id) return 'blueprintPrincipal';
  return kind;
}

function entityFor(inventory: Inventory, principal: Principal): InventoryEntity | undefined {
  return (principal.id ? inventory.lookup(principal.id) : undefined) ?? (principal.appId ? inventory.lookup(principal.appId) : undefined);
}

function fill(inventory: Inventory, principal: Principal | undefined): InventoryEntity | undefined {
  if (!principal) return undefined;
  const entity = entityFor(inventory, principal);
  if (!entity) return undefined;
  if (GENERIC_TYPES.has(principal.type)) {
    const type = refinedType(principal, entity);
    if (type) principal.type = type;
  }
  if (!principal.appId && entity.appId && principal.type !== 'user' && principal.type !== 'agentUser') principal.appId = entity.appId;
  if (!principal.id && entity.id && (principal.type === entity.kind || entity.kind === 'agentIdentity')) principal.id = entity.id;
  if (!principal.name && entity.name) principal.name = entity.name;
  if (!principal.upn && entity.upn) principal.upn = entity.upn;
  if (!principal.ownerTenantId && entity.ownerTenantId) principal.ownerTenantId = entity.ownerTenantId;
  return entity;
}

function blueprintOf(inventory: Inventory, entity: InventoryEntity): string | undefined {
  switch (entity.kind) {
    case 'blueprint':
      return entity.appId;
    case 'blueprintPrincipal':
    case 'agentIdentity':
      return entity.parentId ?? (entity.kind === 'blueprintPrincipal' ? entity.appId : undefined);
    case 'agentUser': {
      const parent = entity.parentId ? inventory.lookup(entity.parentId) : undefined;
      return parent?.kind === 'agentIdentity' ? parent.parentId : undefined;
    }
    default:
      return undefined;
  }
}

/** Fills principal types and `blueprintAppId` / `agentIdentityId` / `agentUserId` in place. */
export function resolveEvent(inventory: Inventory, event: AgentEvent): AgentEvent {
  // Order = precedence for the event-level ids: what was granted / acted on before who acted.
  // Filling a principal reads only it and the inventory, so each match can set the event-level
  // ids as soon as it is found: no list of matches per event.
  consider(inventory, event, event.audit?.grantee);
  consider(inventory, event, event.subject);
  if (event.audit) for (const target of event.audit.targets) consider(inventory, event, target);
  consider(inventory, event, event.actor);
  consider(inventory, event, event.client);

  // An agent identity known to the inventory names its blueprint even when the record did not.
  if (!event.blueprintAppId && event.agentIdentityId) {
    const agent = inventory.lookup(event.agentIdentityId);
    if (agent?.kind === 'agentIdentity' && agent.parentId) event.blueprintAppId = agent.parentId;
  }
  return event;
}

/** Fills one principal from the inventory and, when it matched, the event-level ids still unset. */
function consider(inventory: Inventory, event: AgentEvent, principal: Principal | undefined): void {
  const entity = fill(inventory, principal);
  if (!entity) return;
  if (!event.blueprintAppId) {
    const blueprint = blueprintOf(inventory, entity);
    if (blueprint) event.blueprintAppId = blueprint;
  }
  if (!event.agentIdentityId) {
    if (entity.kind === 'agentIdentity' && entity.id) event.agentIdentityId = entity.id;
    else if (entity.kind === 'agentUser' && entity.parentId) event.agentIdentityId = entity.parentId;
  }
  if (!event.agentUserId && entity.kind === 'agentUser' && entity.id) event.agentUserId = entity.id;
}
