/**
 * What the stream teaches the inventory (DESIGN.md "Entity inventory"): blueprints from
 * `Add application` audits marked agenticApp, from sign-ins' `agent.parentAppId` and from T1
 * exchanges; agent identities from sign-ins with agentType agenticAppInstance and from
 * `Add service principal` audits showing an agent marker or a blueprint id; agent users from
 * agentIDuser subjects; classic Copilot Studio agents created by Power Virtual Agents Service;
 * AgentsInfo rows; owners; deletions; and the first time every id appeared.
 */
import type { AgentEvent, AuditTarget, Principal } from '../normalize/types';
import { POWER_VIRTUAL_AGENTS_SERVICE_APP_ID } from '../normalize/types';
import { BoundedMemo } from '../memo';
import type { Inventory } from './store';

const CREATE_APPLICATION = /^(add|create) application$/i;
const CREATE_SERVICE_PRINCIPAL = /^(add|create) service principal$/i;
const CREATE_USER = /^(add|create) (agent )?user$/i;
const DELETE_OBJECT = /^(delete|hard delete|remove) (application|service principal|user)$/i;
const RESTORE_OBJECT = /^restore (application|service principal|user)$/i;
const ADD_OWNER = /^add owner to (application|service principal)$/i;
const REMOVE_OWNER = /^remove owner from (application|service principal)$/i;

/** What an audit operation means to the inventory; `other` teaches nothing beyond target markers. */
type OperationClass = 'createApplication' | 'createServicePrincipal' | 'createUser' | 'delete' | 'restore' | 'addOwner' | 'removeOwner' | 'other';

function classifyUncached(operation: string): OperationClass {
  if (CREATE_APPLICATION.test(operation)) return 'createApplication';
  if (CREATE_SERVICE_PRINCIPAL.test(operation)) return 'createServicePrincipal';
  if (CREATE_USER.test(operation)) return 'createUser';
  if (DELETE_OBJECT.test(operation)) return 'delete';
  if (RESTORE_OBJECT.test(operation)) return 'restore';
  if (ADD_OWNER.test(operation)) return 'addOwner';
  if (REMOVE_OWNER.test(operation)) return 'removeOwner';
  return 'other';
}

/**
 * A tenant emits a few hundred distinct (folded) operation names, and most audits match none of
 * the patterns above: classify each spelling once instead of running the patterns per record.
 */
const OPERATION_CLASSES = new BoundedMemo(classifyUncached, 4096);

function classifyOperation(operation: string): OperationClass {
  return OPERATION_CLASSES.get(operation);
}
const BLUEPRINT_ID_PROPERTY = /blueprint(app)?id$/i;
const PARENT_ID_PROPERTY = /^(identityparentid|agentidentityid|agentsubjectparentid)$/i;
const BLUEPRINT_MARKER = /agentidentityblueprint|agenticapp\b/i;
const OWNED_OBJECT_ID_PROPERTY = /^(Application|ServicePrincipal)\.ObjectID$/i;
const OWNED_APP_ID_PROPERTY = /^Application\.AppId$/i;

/** Learns from one event, in event order; `resolve` runs right after with what it learned. */
export function learnFromEvent(inventory: Inventory, event: AgentEvent): void {
  noteFirstSeen(inventory, event);
  switch (event.kind) {
    case 'signIn':
      learnFromSignIn(inventory, event);
      break;
    case 'audit':
      if (event.result?.status === 'success') learnFromAudit(inventory, event);
      break;
    case 'risk':
    case 'riskyPrincipal':
      learnFromRisk(inventory, event);
      break;
    case 'inventory':
      learnFromAgentsInfo(inventory, event);
      break;
    default:
      break;
  }
}

// Noting an id twice at one time changes nothing: the repeats are skipped (subject is often the
// actor, an agent identity's object id is often its app id) to save the map look-ups.
function notePrincipal(inventory: Inventory, p: Principal | undefined, t: number): void {
  if (!p) return;
  inventory.seen(p.id, t);
  if (p.appId !== p.id) inventory.seen(p.appId, t);
}

function noteFirstSeen(inventory: Inventory, event: AgentEvent): void {
  const t = event.timeMs;
  const { actor, subject, client } = event;
  notePrincipal(inventory, actor, t);
  if (subject !== actor) notePrincipal(inventory, subject, t);
  if (client !== actor && client !== subject) notePrincipal(inventory, client, t);
  if (event.audit) {
    for (const target of event.audit.targets) notePrincipal(inventory, target, t);
    notePrincipal(inventory, event.audit.grantee, t);
  }
  inventory.seen(event.blueprintAppId, t);
  inventory.seen(event.agentIdentityId, t);
  inventory.seen(event.agentUserId, t);
}

function learnFromSignIn(inventory: Inventory, event: AgentEvent): void {
  const actor = event.actor;
  const agentParentAppId = event.agentType === 'agenticappinstance' || event.agentType === 'agentiduser' ? event.blueprintAppId : undefined;
  const app = event.client ?? actor;
  if (app?.appId && app.ownerTenantId) inventory.noteAppOwnerTenant(app.appId, app.ownerTenantId);

  if (event.flow === 't1Exchange' || event.agentType === 'agenticapp' || event.agentType === 'agentidentityblueprintprincipal') {
    const blueprintAppId = app?.appId;
    if (blueprintAppId) {
      inventory.upsert({ kind: 'blueprint', appId: blueprintAppId, name: app?.name, ownerTenantId: app?.ownerTenantId });
      if (app?.id) inventory.upsert({ kind: 'blueprintPrincipal', id: app.id, appId: blueprintAppId, parentId: blueprintAppId, name: app.name, ownerTenantId: app.ownerTenantId });
    }
  }
  if (event.agentType === 'agenticappinstance' && app && (app.id || app.appId)) {
    inventory.upsert({ kind: 'agentIdentity', id: app.id ?? app.appId, appId: app.appId, name: app.name, parentId: agentParentAppId, ownerTenantId: app.ownerTenantId });
  }
  if (agentParentAppId) inventory.upsert({ kind: 'blueprint', appId: agentParentAppId });
  if (event.flow === 'agentUser' && event.subject?.id) {
    // The normalizer put the agent user's parent here (agentSubjectParentId, else the calling agent identity).
    const parentId = event.agentIdentityId;
    inventory.upsert({ kind: 'agentUser', id: event.subject.id, upn: event.subject.upn, name: event.subject.name, parentId });
    if (parentId && parentId !== (app?.id ?? app?.appId)) inventory.upsert({ kind: 'agentIdentity', id: parentId });
  }
}

function isPowerVirtualAgents(actor: Principal | undefined): boolean {
  if (!actor) return false;
  if (actor.appId === POWER_VIRTUAL_AGENTS_SERVICE_APP_ID) return true;
  return !!actor.name && /^power virtual agents/i.test(actor.name);
}

function propValue(target: AuditTarget, pattern: RegExp): string | undefined {
  for (const m of target.modifiedProperties) {
    if (!pattern.test(m.name)) continue;
    const v = Array.isArray(m.newValue) ? m.newValue[0] : m.newValue;
    if (typeof v === 'string' && v.trim()) return v.trim().toLowerCase();
  }
  return undefined;
}

function mentionsBlueprint(target: AuditTarget): boolean {
  for (const m of target.modifiedProperties) {
    if (BLUEPRINT_MARKER.test(m.name)) return true;
    if (typeof m.newValue === 'string' && BLUEPRINT_MARKER.test(m.newValue)) return true;
  }
  return false;
}

function learnFromAudit(inventory: Inventory, event: AgentEvent): void {
  const audit = event.audit!;
  const operation = audit.operation;
  const t = event.timeMs;
  const actor = event.actor;
  const createdByAppId = actor?.appId;
  const byPva = isPowerVirtualAgents(actor);

  // Agent markers on targets are documented (reference §3.1): learn from any operation that carries them.
  for (const target of audit.targets) {
    if (target.type === 'blueprint' && (target.appId || target.id)) inventory.upsert({ kind: 'blueprint', id: target.id, appId: target.appId, name: target.name });
    else if (target.type === 'agentIdentity' && target.id) inventory.upsert({ kind: 'agentIdentity', id: target.id, appId: target.appId ?? target.id, name: target.name, parentId: event.blueprintAppId });
    else if (target.type === 'blueprintPrincipal' && target.id) inventory.upsert({ kind: 'blueprintPrincipal', id: target.id, appId: target.appId, parentId: target.appId, name: target.name });
    else if (target.type === 'agentUser' && target.id) inventory.upsert({ kind: 'agentUser', id: target.id, upn: target.upn, name: target.name });
  }

  const operationClass = classifyOperation(operation);
  if (operationClass === 'createApplication') {
    for (const target of audit.targets) {
      if (target.rawType !== 'Application' && target.type !== 'blueprint' && target.type !== 'application') continue;
      const isBlueprint = target.type === 'blueprint' || actor?.type === 'blueprint' || mentionsBlueprint(target);
      if (isBlueprint) inventory.upsert({ kind: 'blueprint', id: target.id, appId: target.appId, name: target.name, createdByAppId, live: true, liveAtMs: t });
      else if (byPva) inventory.upsert({ kind: 'classicAgent', id: target.id, appId: target.appId, name: target.name, createdByAppId, live: true, liveAtMs: t });
    }
    return;
  }
  if (operationClass === 'createServicePrincipal') {
    for (const target of audit.targets) {
      if (target.rawType !== 'ServicePrincipal' && target.type !== 'agentIdentity' && target.type !== 'blueprintPrincipal' && target.type !== 'servicePrincipal') continue;
      if (!target.id) continue;
      const blueprintId = propValue(target, BLUEPRINT_ID_PROPERTY);
      const appId = target.appId;
      const knownBlueprint = appId ? inventory.lookup(appId) : undefined;
      const creator = createdByAppId ? inventory.lookup(createdByAppId) : undefined;
      if (target.type === 'agentIdentity' || blueprintId) {
        inventory.upsert({ kind: 'agentIdentity', id: target.id, appId: appId ?? target.id, name: target.name, parentId: blueprintId ?? event.blueprintAppId, createdByAppId, live: true, liveAtMs: t });
      } else if (target.type === 'blueprintPrincipal' || knownBlueprint?.kind === 'blueprint') {
        inventory.upsert({ kind: 'blueprintPrincipal', id: target.id, appId, parentId: appId, name: target.name, createdByAppId, live: true, liveAtMs: t });
      } else if (creator?.kind === 'blueprint' || creator?.kind === 'blueprintPrincipal') {
        // Blueprints create their agent identities themselves (createdByAppId = blueprint app id).
        inventory.upsert({ kind: 'agentIdentity', id: target.id, appId: appId ?? target.id, name: target.name, parentId: creator.appId, createdByAppId, live: true, liveAtMs: t });
      } else if (byPva) {
        inventory.upsert({ kind: 'classicAgent', id: target.id, appId, name: target.name, createdByAppId, live: true, liveAtMs: t });
      }
    }
    return;
  }
  if (operationClass === 'createUser') {
    for (const target of audit.targets) {
      if (!target.id) continue;
      const parentId = propValue(target, PARENT_ID_PROPERTY);
      if (target.type === 'agentUser' || parentId) inventory.upsert({ kind: 'agentUser', id: target.id, upn: target.upn, name: target.name, parentId, createdByAppId, live: true, liveAtMs: t });
    }
    return;
  }
  const deleted = operationClass === 'delete';
  if (deleted || operationClass === 'restore') {
    for (const target of audit.targets) {
      for (const candidate of [target.id, target.appId]) {
        if (!candidate) continue;
        const entity = inventory.lookup(candidate);
        if (entity) {
          inventory.upsert({ kind: entity.kind, id: entity.id, appId: entity.appId, live: !deleted, liveAtMs: t });
          break;
        }
      }
    }
    return;
  }
  const adding = operationClass === 'addOwner';
  if (adding || operationClass === 'removeOwner') {
    const objectId = ownedObjectId(audit.targets);
    if (!objectId) return;
    linkOwnedApplication(inventory, audit.targets, objectId);
    const owners: string[] = [];
    for (const target of audit.targets) {
      if (target.id === objectId) continue;
      if (target.type === 'user' || target.type === 'agentUser' || target.type === 'servicePrincipal') {
        if (target.upn) owners.push(target.upn);
        if (target.id) owners.push(target.id);
      }
    }
    if (owners.length) inventory.noteOwners(objectId, owners, !adding);
  }
}

/**
 * An owner change on an application names its app id too (`Application.AppId` on the owner's
 * target). A blueprint or classic agent known so far only by app id (from sign-ins) learns its
 * object id here, so the owners reach it and `@owners` look-ups see them.
 */
function linkOwnedApplication(inventory: Inventory, targets: AuditTarget[], objectId: string): void {
  for (const target of targets) {
    const appId = propValue(target, OWNED_APP_ID_PROPERTY);
    if (!appId) continue;
    const known = inventory.lookup(appId);
    if (known && !known.id && (known.kind === 'blueprint' || known.kind === 'classicAgent')) inventory.upsert({ kind: known.kind, id: objectId, appId: known.appId });
    return;
  }
}

/** The application / service principal an owner change is about. */
function ownedObjectId(targets: AuditTarget[]): string | undefined {
  for (const target of targets) {
    const fromProperty = propValue(target, OWNED_OBJECT_ID_PROPERTY);
    if (fromProperty) return fromProperty;
  }
  for (let i = targets.length - 1; i >= 0; i--) {
    const t = targets[i]!;
    if ((t.rawType === 'Application' || t.rawType === 'ServicePrincipal' || t.type === 'blueprint' || t.type === 'agentIdentity') && t.id) return t.id;
  }
  return undefined;
}

function learnFromRisk(inventory: Inventory, event: AgentEvent): void {
  const subject = event.subject;
  if (!subject?.id) return;
  if (subject.type === 'agentIdentity') inventory.upsert({ kind: 'agentIdentity', id: subject.id, name: subject.name, parentId: event.blueprintAppId });
  else if (subject.type === 'agentUser') inventory.upsert({ kind: 'agentUser', id: subject.id, name: subject.name, upn: subject.upn });
  else if (subject.type === 'blueprintPrincipal') inventory.upsert({ kind: 'blueprintPrincipal', id: subject.id, name: subject.name, parentId: event.blueprintAppId, appId: event.blueprintAppId });
}

function learnFromAgentsInfo(inventory: Inventory, event: AgentEvent): void {
  const facts = event.agentInventory;
  if (!facts) return;
  if (facts.entraBlueprintId) inventory.upsert({ kind: 'blueprint', appId: facts.entraBlueprintId });
  if (facts.entraAgentId) {
    inventory.upsert({ kind: 'agentIdentity', id: facts.entraAgentId, appId: facts.entraAgentId, name: facts.name, parentId: facts.entraBlueprintId, owners: facts.makerUpns });
  }
}
