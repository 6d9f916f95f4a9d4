/**
 * The Microsoft Graph application permissions agentwatch needs, per action and per read. One
 * table feeds three things: the 403 message (which permission is missing), `agentwatch
 * grant-permissions` (what to grant) and docs/response.md (what an admin reviews).
 *
 * Sources: reference/entra-agent-logs.md §4.1 and §4.3. Entries marked `confirmed: false` are the
 * narrowest permission we could find documented or observed, not one Microsoft states as least.
 */
import type { ResponseActionName } from '../alerts/types';

export interface GraphPermission {
  /** App role value on the Microsoft Graph service principal, e.g. `AgentIdentity.EnableDisable.All`. */
  permission: string;
  /** Broader permissions that also work (never granted by agentwatch, listed so a 403 is explainable). */
  alternatives: string[];
  /** What agentwatch does with it. */
  usedFor: string;
  /** The HTTP calls it authorises. */
  calls: string[];
  /** False where the least-privileged permission is not stated by Microsoft (reference §7 item 11). */
  confirmed: boolean;
}

export type GraphReadName = 'readAgentIdentities' | 'readApplications' | 'readUsers' | 'runHuntingQuery';

export const ACTION_PERMISSIONS: Record<ResponseActionName, GraphPermission> = {
  confirmCompromised: {
    permission: 'IdentityRiskyAgent.ReadWrite.All',
    alternatives: [],
    usedFor: 'confirm an agent compromised in ID Protection (risk high; CA policies on agent risk apply)',
    calls: ['POST /beta/identityProtection/riskyAgents/confirmCompromised'],
    confirmed: true,
  },
  disableAgentIdentity: {
    permission: 'AgentIdentity.EnableDisable.All',
    alternatives: ['AgentIdentity.ReadWrite.All', 'Directory.ReadWrite.All'],
    usedFor: 'disable one agent identity (its sign-ins then fail with AADSTS7000112)',
    calls: ['PATCH /v1.0/servicePrincipals/{id}/microsoft.graph.agentIdentity'],
    confirmed: true,
  },
  disableBlueprintPrincipal: {
    permission: 'Application.ReadWrite.All',
    alternatives: ['Directory.ReadWrite.All'],
    usedFor: 'disable a blueprint principal, which stops every agent identity of the blueprint',
    calls: ['PATCH /v1.0/servicePrincipals/{id}'],
    confirmed: false,
  },
  removeBlueprintCredential: {
    permission: 'AgentIdentityBlueprint.AddRemoveCreds.All',
    alternatives: ['AgentIdentityBlueprint.ReadWrite.All', 'Application.ReadWrite.All'],
    usedFor: 'remove the password, certificate or federated credential just added to a blueprint',
    calls: [
      'POST /v1.0/applications/{id}/removePassword',
      'PATCH /v1.0/applications/{id} (keyCredentials without the key)',
      'DELETE /v1.0/applications/{id}/federatedIdentityCredentials/{credentialId}',
    ],
    confirmed: false,
  },
  revokeAgentUserSessions: {
    permission: 'User.RevokeSessions.All',
    alternatives: ['User.ReadWrite.All', 'Directory.ReadWrite.All'],
    usedFor: "revoke the refresh tokens and sessions of an agent's user account",
    calls: ['POST /v1.0/users/{id}/revokeSignInSessions'],
    confirmed: false,
  },
};

export const READ_PERMISSIONS: Record<GraphReadName, GraphPermission> = {
  readAgentIdentities: {
    permission: 'AgentIdentity.Read.All',
    alternatives: ['Application.Read.All', 'Directory.Read.All'],
    usedFor: 'verify an agent identity before acting; refresh the agent identity inventory',
    calls: ['GET /v1.0/servicePrincipals/{id}', 'GET /v1.0/servicePrincipals/microsoft.graph.agentIdentity'],
    confirmed: true,
  },
  readApplications: {
    permission: 'Application.Read.All',
    alternatives: ['Directory.Read.All'],
    usedFor: 'verify blueprints and blueprint principals before acting; refresh the blueprint inventory',
    calls: [
      'GET /v1.0/applications/{id}',
      "GET /v1.0/applications(appId='{appId}')",
      "GET /v1.0/servicePrincipals(appId='{appId}')",
      'GET /v1.0/applications/microsoft.graph.agentIdentityBlueprint',
      'GET /v1.0/servicePrincipals/microsoft.graph.agentIdentityBlueprintPrincipal',
    ],
    confirmed: true,
  },
  readUsers: {
    permission: 'User.Read.All',
    alternatives: ['User.ReadWrite.All', 'Directory.Read.All'],
    usedFor: 'verify an agent user before revoking its sessions; refresh the agent user inventory',
    calls: ['GET /v1.0/users/{id}', 'GET /v1.0/users/microsoft.graph.agentUser'],
    confirmed: false,
  },
  runHuntingQuery: {
    permission: 'ThreatHunting.Read.All',
    alternatives: [],
    usedFor: 'pull the Defender AgentsInfo / AIAgentsInfo inventory (Copilot Studio maker credentials)',
    calls: ['POST /v1.0/security/runHuntingQuery'],
    confirmed: true,
  },
};

/** The actions the shipped detections propose (DETECTIONS.md "Response defaults"): granted unless told otherwise. */
export const DEFAULT_GRANTED_ACTIONS: readonly ResponseActionName[] = ['confirmCompromised', 'disableAgentIdentity', 'removeBlueprintCredential'];

/** Which read permission a verify GET of an object kind needs. */
export function readPermissionFor(kind: 'servicePrincipal' | 'application' | 'user'): GraphPermission {
  if (kind === 'user') return READ_PERMISSIONS.readUsers;
  if (kind === 'application') return READ_PERMISSIONS.readApplications;
  return READ_PERMISSIONS.readAgentIdentities;
}

/** The app role values to grant for a set of actions, reads always included, de-duplicated, in table order. */
export function permissionsToGrant(actions: readonly ResponseActionName[]): string[] {
  const values = [...Object.values(READ_PERMISSIONS).map((p) => p.permission), ...actions.map((a) => ACTION_PERMISSIONS[a].permission)];
  return [...new Set(values)];
}
