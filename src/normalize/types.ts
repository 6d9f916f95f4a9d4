/**
 * The canonical event. Every Entra record that agentwatch uses becomes exactly one `AgentEvent`;
 * detections only ever see these field names (never raw Entra keys), so a field path a rule uses
 * is checked at load against `CANONICAL_FIELDS`.
 *
 * Conventions:
 * - Ids are lower-cased GUID strings where the source is a GUID; other ids are kept as sent.
 * - Enums (risk level, agent type, result …) are lower-cased.
 * - Times are ISO-8601 UTC strings (`2026-10-05T10:15:58.441Z`); `timeMs` is the same instant in epoch ms.
 * - Optional means "the record did not say". Absent is never encoded as "" or "none"; an absent field
 *   is still a property holding `undefined` (every event has one shape, see `baseEvent`), which JSON drops.
 */

export type EventKind = 'signIn' | 'audit' | 'risk' | 'riskyPrincipal' | 'graphActivity' | 'inventory';

/** How a sign-in relates to Agent ID (reference §2.3). */
export type SignInFlow =
  /** T1: the blueprint obtains an exchange token (resource fb60f99c-…). */
  | 't1Exchange'
  /** T2 app-only: the agent identity gets a token for a real resource as itself. */
  | 't2Autonomous'
  /** T2 on behalf of a human user. */
  | 't2OnBehalfOf'
  /** T2 as the agent's own user account (agentIDuser subject). */
  | 'agentUser'
  /** Not an agent flow. */
  | 'nonAgent';

export type PrincipalType =
  | 'agentIdentity'
  | 'blueprint'
  | 'blueprintPrincipal'
  | 'agentUser'
  | 'classicAgent'
  | 'user'
  | 'servicePrincipal'
  | 'application'
  | 'managedIdentity'
  | 'group'
  | 'role'
  | 'unknown';

export interface Principal {
  type: PrincipalType;
  /** Object id (user id, service principal id, application object id). */
  id?: string;
  /** Application (client) id, when the principal is an app / SP / agent identity / blueprint. */
  appId?: string;
  name?: string;
  upn?: string;
  /** The owning tenant of the app, when known (sign-ins' appOwnerTenantId, inventory). */
  ownerTenantId?: string;
}

export interface Resource {
  /** The resource's application id (sign-in `resourceId`), lower-cased. */
  appId?: string;
  /** The resource's service principal object id. */
  id?: string;
  name?: string;
}

export interface EventResult {
  status: 'success' | 'failure';
  /** Error code as a string: sign-in `status.errorCode` ("0" on success), audit `resultReason`, Graph HTTP status. */
  code?: string;
  reason?: string;
}

export interface CredentialUse {
  /** `clientCredentialType`: clientsecret | certificate | federatedidentitycredential | clientassertion | managedidentity | none … */
  type?: string;
  keyId?: string;
  thumbprint?: string;
  federatedCredentialId?: string;
}

export interface RiskInfo {
  /** none | low | medium | high | hidden */
  level?: string;
  /** Sign-ins: `riskLevelAggregated`. */
  aggregatedLevel?: string;
  /** none | atrisk | confirmedcompromised | remediated | dismissed | confirmedsafe */
  state?: string;
  detail?: string;
  /** Risk detections: `riskEventType` (e.g. unfamiliarResourceAccess). */
  eventType?: string;
  /** ATT&CK technique ids from `additionalInfo` mitreTechniques. */
  mitreTechniques?: string[];
}

/** A credential described by an audit `KeyDescription` / `FederatedIdentityCredentials` value. */
export interface CredentialRef {
  /** `KeyIdentifier` for passwords/keys; the FIC's id or name for federated credentials. */
  keyId?: string;
  /** password | asymmetricx509cert | symmetric | federatedidentitycredential … (lower-cased KeyType) */
  type: string;
  usage?: string;
  displayName?: string;
  /** Federated credentials only. */
  issuer?: string;
  subject?: string;
  audiences?: string[];
}

export interface ModifiedProperty {
  /** `displayName` of the modified property, as sent (e.g. `KeyDescription`, `DelegatedPermissionGrant.Scope`). */
  name: string;
  /** Decoded value: JSON-in-string decoded once or twice, surrounding quotes/whitespace trimmed. */
  oldValue: unknown;
  newValue: unknown;
}

export interface AuditTarget extends Principal {
  /** Raw audit target type (User, ServicePrincipal, Application, Group, Role, Policy …). */
  rawType?: string;
  modifiedProperties: ModifiedProperty[];
}

/** Facts derived from an audit record's modified properties, independent of any one detection. */
export interface AuditFacts {
  /** Activity name with dashes (-, –, —) and whitespace runs folded to single ASCII forms, trimmed, case kept. */
  operation: string;
  /** directoryAudit `category` (ApplicationManagement, UserManagement, RoleManagement …). */
  category?: string;
  operationType?: string;
  targets: AuditTarget[];
  /** Credentials present in a new value and absent from the old one (key ids, federated credentials). */
  credentialsAdded: CredentialRef[];
  credentialsRemoved: CredentialRef[];
  /** Federated credential issuers / subjects named in the new value and absent from the old value. */
  ficIssuersAdded: string[];
  ficSubjectsAdded: string[];
  /** Names of modified properties (for "KeyDescription changed" style tests). */
  modifiedPropertyNames: string[];
  /** Permissions granted by this record: delegated scopes and app role values, split, de-duplicated. */
  permissionsGranted: string[];
  /** The principal receiving the permission / role / membership (client SP of a grant, member of a role). */
  grantee?: Principal;
  /** The resource whose permissions were granted (e.g. Microsoft Graph). */
  permissionResource?: Resource;
  /** Directory role or group the grantee was added to. */
  roleName?: string;
  groupId?: string;
  groupName?: string;
}

export interface GraphActivityFacts {
  method?: string;
  /** Request URI as sent. */
  uri?: string;
  /** Path with host, version and query stripped and GUIDs/UPNs replaced by `{id}`. */
  path?: string;
  statusCode?: number;
  scopes: string[];
  roles: string[];
  signInActivityId?: string;
  userAgent?: string;
}

/** A Copilot Studio / Agent 365 inventory row (AgentsInfo / AIAgentsInfo). */
export interface AgentInventoryFacts {
  agentId: string;
  name?: string;
  platform?: string;
  /** published | draft | created | deleted (lower-cased PublishedStatus / AgentStatus) */
  publishedStatus?: string;
  /** active | blocked | uninstalled | deleted (AgentsInfo LifecycleStatus) */
  lifecycleStatus?: string;
  /** True when published and not deleted / blocked / uninstalled. */
  live: boolean;
  /** A tool or topic runs with the maker's connection (`connectionProperties.mode` Maker). */
  usesMakerCredentials: boolean;
  /** UserAuthenticationType None (anyone can use it unauthenticated). */
  noUserAuthentication: boolean;
  /** Creator and owner UPNs, lower-cased. */
  makerUpns: string[];
  entraAgentId?: string;
  entraBlueprintId?: string;
}

export interface AgentEvent {
  /** Stable id from the record (sign-in id, audit id, risk id, request id); a content hash when absent. */
  id: string;
  /** Event time (not envelope time), ISO UTC. */
  time: string;
  timeMs: number;
  /** Envelope `time` when it parsed, ISO UTC. */
  arrival?: string;
  /** Diagnostic category exactly as sent (SignInLogs, AuditLogs, RiskyAgents, AgentsInfo …). */
  category: string;
  kind: EventKind;
  tenantId?: string;
  correlationId?: string;

  /** Sign-ins only. */
  flow?: SignInFlow;
  isInteractive?: boolean;
  /** properties.agent.agentType / agentSubjectType, lower-cased. */
  agentType?: string;
  agentSubjectType?: string;

  /** Who acted: the sign-in's calling identity, the audit initiator, the risky agent. */
  actor?: Principal;
  /** On whose behalf / what was acted on: the token subject, the primary audit target, the risky principal. */
  subject?: Principal;
  /** The client application of a user sign-in (appId/appDisplayName), when the actor is a user. */
  client?: Principal;

  /** The blueprint this event concerns (T1 client, agent's parent, target blueprint), app id. Set by normalize or resolve. */
  blueprintAppId?: string;
  /** The agent identity this event concerns (actor of T2, target of an agent audit, risky agent), object id. */
  agentIdentityId?: string;
  /** The agent user this event concerns, object id. */
  agentUserId?: string;

  resource?: Resource;
  ip?: string;
  location?: string;
  result?: EventResult;
  credential?: CredentialUse;
  risk?: RiskInfo;
  audit?: AuditFacts;
  graph?: GraphActivityFacts;
  agentInventory?: AgentInventoryFacts;

  /**
   * The original record, untouched: set by `normalizeRecord` (tools, tests), left out of the
   * pipeline's events (`ingestBatch` without `keepRaw`). No stage reads it, and keeping every
   * parsed record of a batch alive until the batch is evaluated made each young-generation
   * collection copy them all: the full pipeline ran about 15% slower.
   */
  raw?: Record<string, unknown>;
}

/**
 * Every dotted field path a detection may name. Arrays are addressed by their name (a condition on
 * an array field matches when any element matches). Keep in step with `AgentEvent`; a rule naming
 * a path outside this list is refused at load.
 */
export const CANONICAL_FIELDS: readonly string[] = (() => {
  const principal = (p: string) => [p, `${p}.type`, `${p}.id`, `${p}.appId`, `${p}.name`, `${p}.upn`, `${p}.ownerTenantId`];
  return [
    'id', 'time', 'timeMs', 'arrival', 'category', 'kind', 'tenantId', 'correlationId',
    'flow', 'isInteractive', 'agentType', 'agentSubjectType',
    ...principal('actor'), ...principal('subject'), ...principal('client'),
    'blueprintAppId', 'agentIdentityId', 'agentUserId',
    'resource', 'resource.appId', 'resource.id', 'resource.name',
    'ip', 'location',
    'result', 'result.status', 'result.code', 'result.reason',
    'credential', 'credential.type', 'credential.keyId', 'credential.thumbprint', 'credential.federatedCredentialId',
    'risk', 'risk.level', 'risk.aggregatedLevel', 'risk.state', 'risk.detail', 'risk.eventType', 'risk.mitreTechniques',
    'audit', 'audit.operation', 'audit.category', 'audit.operationType',
    'audit.targets', 'audit.targets.id', 'audit.targets.type', 'audit.targets.appId', 'audit.targets.name', 'audit.targets.upn', 'audit.targets.rawType',
    'audit.credentialsAdded', 'audit.credentialsAdded.keyId', 'audit.credentialsAdded.type', 'audit.credentialsAdded.issuer', 'audit.credentialsAdded.subject',
    'audit.credentialsRemoved', 'audit.credentialsRemoved.keyId', 'audit.credentialsRemoved.type',
    'audit.ficIssuersAdded', 'audit.ficSubjectsAdded', 'audit.modifiedPropertyNames', 'audit.permissionsGranted',
    ...principal('audit.grantee'),
    'audit.permissionResource', 'audit.permissionResource.appId', 'audit.permissionResource.id', 'audit.permissionResource.name',
    'audit.roleName', 'audit.groupId', 'audit.groupName',
    'graph', 'graph.method', 'graph.uri', 'graph.path', 'graph.statusCode', 'graph.scopes', 'graph.roles', 'graph.signInActivityId', 'graph.userAgent',
    'agentInventory', 'agentInventory.agentId', 'agentInventory.name', 'agentInventory.platform', 'agentInventory.publishedStatus',
    'agentInventory.lifecycleStatus', 'agentInventory.live', 'agentInventory.usesMakerCredentials', 'agentInventory.noUserAuthentication',
    'agentInventory.makerUpns', 'agentInventory.entraAgentId', 'agentInventory.entraBlueprintId',
  ];
})();

/** The token exchange resource of T1 ("AAD Token Exchange Endpoint: Public"). */
export const TOKEN_EXCHANGE_RESOURCE_APP_ID = 'fb60f99c-7a34-4190-8149-302f77469936';
/** Power Virtual Agents Service: creates classic Copilot Studio agents' apps and service principals. */
export const POWER_VIRTUAL_AGENTS_SERVICE_APP_ID = '9d8f559b-5984-46a4-902a-ad4271e83efa';
/** Microsoft's first-party Copilot Studio agent identity blueprint. */
export const COPILOT_STUDIO_BLUEPRINT_APP_ID = '25664c89-cea5-4ab6-b924-a54fd8a19ae0';
/** Microsoft's own tenants (first-party app owners). */
export const MICROSOFT_TENANT_IDS: readonly string[] = ['f8cdef31-a31e-4b4a-93e4-5f571e91255a', '72f988bf-86f1-41af-91ab-2d7cd011db47'];
