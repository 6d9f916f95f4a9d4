/**
 * The response guards as small pure functions. The responder runs them in a fixed order (mode, id,
 * protected, first-party, idempotency, verify, type, cap); each returns the reason it refuses, or
 * undefined when it lets the action through, so every refusal is explainable in the action log.
 */
import { createHash } from 'node:crypto';
import type { AlertEntityType, ResponseActionName, ResponseMode } from '../alerts/types';
import type { DirectoryObjectInfo } from '../ports';
import { COPILOT_STUDIO_BLUEPRINT_APP_ID, MICROSOFT_TENANT_IDS, POWER_VIRTUAL_AGENTS_SERVICE_APP_ID } from '../normalize/types';

/** From most to least restrictive. */
export const MODE_ORDER: readonly ResponseMode[] = ['off', 'dryRun', 'approval', 'auto'];

/**
 * The effective mode: the strictest of every level that states one (global setting, config file,
 * the detection's config override, the rule). Unset everywhere → `dryRun`.
 */
export function effectiveMode(...modes: (ResponseMode | undefined)[]): ResponseMode {
  const stated = modes.filter((mode): mode is ResponseMode => mode !== undefined && MODE_ORDER.includes(mode));
  if (stated.length === 0) return 'dryRun';
  return stated.reduce((strictest, mode) => (MODE_ORDER.indexOf(mode) < MODE_ORDER.indexOf(strictest) ? mode : strictest));
}

export function isResponseMode(value: unknown): value is ResponseMode {
  return typeof value === 'string' && (MODE_ORDER as readonly string[]).includes(value);
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Only GUIDs go into a Graph URL: no path segments, no query, no OData function calls smuggled in an id. */
export function isGuid(value: unknown): value is string {
  return typeof value === 'string' && GUID.test(value);
}

export function invalidIdReason(what: string, value: string | undefined): string | undefined {
  if (value === undefined || value === '') return `${what} is missing on the alert`;
  return isGuid(value) ? undefined : `${what} ${JSON.stringify(String(value).slice(0, 80))} is not a GUID; refusing to build a Graph URL from it`;
}

/** Which object each action acts on, the OData type the verify GET must return, and how to say what it does. */
export const ACTION_TARGETS: Record<
  ResponseActionName,
  { kind: 'servicePrincipal' | 'application' | 'user'; odataType: string; entityType: AlertEntityType; describe(target: string, keyId?: string): string }
> = {
  confirmCompromised: { kind: 'servicePrincipal', odataType: '#microsoft.graph.agentIdentity', entityType: 'agentIdentity', describe: (t) => `confirm agent identity ${t} compromised in ID Protection` },
  disableAgentIdentity: { kind: 'servicePrincipal', odataType: '#microsoft.graph.agentIdentity', entityType: 'agentIdentity', describe: (t) => `disable agent identity ${t}` },
  disableBlueprintPrincipal: { kind: 'servicePrincipal', odataType: '#microsoft.graph.agentIdentityBlueprintPrincipal', entityType: 'blueprintPrincipal', describe: (t) => `disable blueprint principal ${t}, stopping every agent of the blueprint` },
  removeBlueprintCredential: { kind: 'application', odataType: '#microsoft.graph.agentIdentityBlueprint', entityType: 'blueprint', describe: (t, keyId) => `remove credential ${keyId ?? '?'} from blueprint ${t}` },
  revokeAgentUserSessions: { kind: 'user', odataType: '#microsoft.graph.agentUser', entityType: 'agentUser', describe: (t) => `revoke the sessions of agent user ${t}` },
};

/** Refuses unless the verified object is the agent type the action expects (a blueprint is not an agent, a human is not an agent user). */
export function wrongTypeReason(action: ResponseActionName, info: DirectoryObjectInfo): string | undefined {
  const expected = ACTION_TARGETS[action].odataType;
  const actual = info.odataType ? (info.odataType.startsWith('#') ? info.odataType : `#${info.odataType}`) : undefined;
  if (actual?.toLowerCase() === expected.toLowerCase()) return undefined;
  return `wrong object type: ${action} expects ${expected}, Graph returned ${actual ?? 'no @odata.type'} for ${info.id}`;
}

/** Disabling something already disabled is a no-op write: skip it (and do not spend the cap on it). */
export function alreadyDoneReason(action: ResponseActionName, info: DirectoryObjectInfo): string | undefined {
  if ((action === 'disableAgentIdentity' || action === 'disableBlueprintPrincipal') && info.accountEnabled === false) return `already disabled: ${info.id}`;
  return undefined;
}

/** The protected list holds object ids, app ids or display names (compared case-insensitively). */
export function protectedReason(candidates: (string | undefined)[], protectedList: ReadonlySet<string>): string | undefined {
  for (const candidate of candidates) {
    if (candidate && protectedList.has(candidate.toLowerCase())) return `protected: ${candidate} is on the response.protected list`;
  }
  return undefined;
}

/** The shipped first-party app ids (DETECTIONS.md "Clarifications"); the config list extends it. */
export const SHIPPED_FIRST_PARTY_APP_IDS: readonly string[] = [
  '00000003-0000-0000-c000-000000000000', // Microsoft Graph
  POWER_VIRTUAL_AGENTS_SERVICE_APP_ID,
  COPILOT_STUDIO_BLUEPRINT_APP_ID,
];

export interface FirstPartyLists {
  appIds: ReadonlySet<string>;
  tenantIds: ReadonlySet<string>;
}

export function firstPartyLists(extraAppIds: readonly string[] = [], extraTenantIds: readonly string[] = []): FirstPartyLists {
  return {
    appIds: new Set([...SHIPPED_FIRST_PARTY_APP_IDS, ...extraAppIds].map((id) => id.toLowerCase())),
    tenantIds: new Set([...MICROSOFT_TENANT_IDS, ...extraTenantIds].map((id) => id.toLowerCase())),
  };
}

/**
 * Never act on Microsoft's own principals: the object, its app, or its parent blueprint is
 * first-party by app id, or the app is owned by a Microsoft tenant.
 */
export function firstPartyReason(facts: { appIds: (string | undefined)[]; ownerTenantIds: (string | undefined)[] }, lists: FirstPartyLists): string | undefined {
  for (const appId of facts.appIds) {
    if (appId && lists.appIds.has(appId.toLowerCase())) return `Microsoft first-party: app ${appId} is on the first-party list`;
  }
  for (const tenantId of facts.ownerTenantIds) {
    if (tenantId && lists.tenantIds.has(tenantId.toLowerCase())) return `Microsoft first-party: owned by Microsoft tenant ${tenantId}`;
  }
  return undefined;
}

export interface CapLimits {
  /** Automatic actions per clock hour, all blueprints together. */
  perHour: number;
  /** Automatic actions per clock hour against one blueprint (its agents, principal, credentials). */
  perBlueprintPerHour: number;
}

export const DEFAULT_CAPS: CapLimits = { perHour: 20, perBlueprintPerHour: 3 };

/** Over the blast-radius cap the action becomes an approval, never a silent drop. */
export function capReason(taken: { total: number; blueprint?: number }, limits: CapLimits, blueprintAppId?: string): string | undefined {
  if (taken.total >= limits.perHour) return `blast-radius cap reached: ${taken.total} automatic actions this hour (limit ${limits.perHour}); queued for approval`;
  if (blueprintAppId !== undefined && (taken.blueprint ?? 0) >= limits.perBlueprintPerHour) {
    return `blast-radius cap reached: ${taken.blueprint} automatic actions this hour against blueprint ${blueprintAppId} (limit ${limits.perBlueprintPerHour}); queued for approval`;
  }
  return undefined;
}

/** UTC clock hour, `2026100510`: the cap's counting bucket. */
export function hourBucket(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 13).replace(/[-T]/g, '');
}

/**
 * The idempotency key of one action for one incident: detection, dedup key, action, target (and
 * key id). Not the alert id, which changes with the suppression bucket — a re-raised alert for the
 * same incident must map to the same action.
 */
export function actionIdFor(parts: { detectionId: string; dedupKey: string; action: ResponseActionName; targetId: string; keyId?: string }): string {
  const digest = createHash('sha256')
    .update([parts.detectionId, parts.dedupKey, parts.action, parts.targetId.toLowerCase(), (parts.keyId ?? '').toLowerCase()].join('\u0000'))
    .digest('hex');
  return `act-${digest.slice(0, 32)}`;
}
