/**
 * Sign-in records (all five sign-in categories) → `AgentEvent`, including the Agent ID flow
 * (reference §2.2–2.3):
 * - `t1Exchange`: a blueprint obtains an exchange token (resource fb60f99c-…). The caller is the
 *   blueprint (agentType agenticApp / agentIdentityBlueprintPrincipal, or an unmarked service
 *   principal sign-in — only blueprints can ask for `fmi_path`). Managed identities also get tokens
 *   for that audience when used as a federated credential; those are not T1.
 * - `agentUser`: the token subject is an agent's user account (agentSubjectType agentIDuser).
 * - `t2OnBehalfOf`: an agent identity (agenticAppInstance) with a human subject: a `userId` is present
 *   and `agentSubjectType` is absent or notAgentic, in any sign-in category.
 * - `t2Autonomous`: any other sign-in whose caller is an agent identity (app-only). The agent
 *   identity's own leg to the exchange endpoint in the agent-user flow lands here too, with the
 *   exchange resource as `resource`: it is an app-only token of the agent, not a blueprint's T1.
 */
import type { AgentEvent, CredentialUse, EventResult, Principal, PrincipalType, RiskInfo, SignInFlow } from './types';
import { TOKEN_EXCHANGE_RESOURCE_APP_ID } from './types';
import { AGENT_TYPE_TO_PRINCIPAL, baseEvent, eventTimes, newPrincipal } from './envelope';
import { asObject, bool, decodeJsonish, equalsIgnoreCase, id, lower, text, type Json } from './values';
import type { NormalizeInput } from './input';

export function normalizeSignIn(input: NormalizeInput): AgentEvent {
  const { record, properties: p, category } = input;
  const times = eventTimes(input, 'sign-in has no parseable createdDateTime or envelope time', p.createdDateTime);

  const agent = asObject(typeof p.agent === 'string' ? decodeJsonish(p.agent) : p.agent);
  const agentType = lower(agent?.agentType);
  const agentSubjectType = lower(agent?.agentSubjectType);
  const parentAppId = id(agent?.parentAppId);
  const subjectParentId = id(agent?.agentSubjectParentId);

  const appId = id(p.appId);
  const servicePrincipalId = id(p.servicePrincipalId);
  const userId = id(p.userId);
  const resourceAppId = id(p.resourceId);
  const isExchange = resourceAppId === TOKEN_EXCHANGE_RESOURCE_APP_ID;
  const isManagedIdentity = category === 'ManagedIdentitySignInLogs' || hasEventType(p.signInEventTypes, 'managedidentity');
  const isServicePrincipalSignIn =
    category === 'ServicePrincipalSignInLogs' || category === 'MicrosoftServicePrincipalSignInLogs' || hasEventType(p.signInEventTypes, 'serviceprincipal');

  const flow = classifyFlow(agentType, agentSubjectType, userId, isExchange, isManagedIdentity, isServicePrincipalSignIn);
  const ownerTenantId = id(p.appOwnerTenantId);
  const appName = text(p.appDisplayName) ?? text(p.servicePrincipalName);

  const app = newPrincipal(appType(agentType, flow, isManagedIdentity), undefined, appId);
  const appObjectId = servicePrincipalId ?? (app.type === 'agentIdentity' ? appId : undefined);
  if (appObjectId) app.id = appObjectId;
  if (appName) app.name = appName;
  if (ownerTenantId) app.ownerTenantId = ownerTenantId;

  let user: Principal | undefined;
  if (userId) {
    user = newPrincipal(agentSubjectType === 'agentiduser' ? 'agentUser' : 'user', userId);
    const upn = lower(p.userPrincipalName);
    if (upn) user.upn = upn;
    const userName = text(p.userDisplayName);
    if (userName) user.name = userName;
  }

  // Who acted and for whom: an agent (or any app-only caller) acts itself; a plain user sign-in
  // is the user acting through a client application.
  let actor: Principal;
  let subject: Principal;
  let client: Principal | undefined;
  if (flow === 'nonAgent' && user && !isServicePrincipalSignIn) {
    actor = user;
    subject = user;
    client = app;
  } else {
    actor = app;
    subject = user ?? app;
    if (user) client = app;
  }

  const event = baseEvent(input, 'signIn', text(p.id) ?? text(p.uniqueTokenIdentifier) ?? input.hashId(), times);
  event.flow = flow;
  event.actor = actor;
  event.subject = subject;
  const correlationId = id(p.correlationId) ?? id(record.correlationId);
  if (correlationId) event.correlationId = correlationId;
  const isInteractive = bool(p.isInteractive);
  if (isInteractive !== undefined) event.isInteractive = isInteractive;
  if (agentType) event.agentType = agentType;
  if (agentSubjectType) event.agentSubjectType = agentSubjectType;
  if (client) event.client = client;

  if (flow === 't1Exchange') {
    if (appId) event.blueprintAppId = appId;
  } else if (parentAppId && (agentType === 'agenticappinstance' || agentType === 'agentiduser' || flow === 'agentUser')) {
    event.blueprintAppId = parentAppId;
  }
  if (agentType === 'agenticappinstance' && appObjectId) event.agentIdentityId = appObjectId;
  if (flow === 'agentUser') {
    if (subjectParentId) event.agentIdentityId = subjectParentId;
    if (userId) event.agentUserId = userId;
  }

  const resource = resourceOf(p, resourceAppId);
  if (resource) event.resource = resource;
  const ip = text(p.ipAddress) ?? text(record.callerIpAddress);
  if (ip) event.ip = ip;
  const location = text(asObject(p.location)?.countryOrRegion) ?? text(record.location);
  if (location) event.location = location;
  event.result = resultOf(p, record);
  const credential = credentialOf(p);
  if (credential) event.credential = credential;
  const risk = riskOf(p);
  if (risk) event.risk = risk;
  return event;
}

function classifyFlow(
  agentType: string | undefined,
  agentSubjectType: string | undefined,
  userId: string | undefined,
  isExchange: boolean,
  isManagedIdentity: boolean,
  isServicePrincipalSignIn: boolean,
): SignInFlow {
  if (agentSubjectType === 'agentiduser') return 'agentUser';
  if (agentType === 'agenticappinstance') {
    if (userId && (agentSubjectType === undefined || agentSubjectType === 'notagentic')) return 't2OnBehalfOf';
    return 't2Autonomous';
  }
  if (isExchange && !isManagedIdentity) {
    if (agentType === 'agenticapp' || agentType === 'agentidentityblueprintprincipal') return 't1Exchange';
    if (agentType === undefined || agentType === 'notagentic') {
      if (isServicePrincipalSignIn && !userId) return 't1Exchange';
    }
  }
  return 'nonAgent';
}

function appType(agentType: string | undefined, flow: SignInFlow, isManagedIdentity: boolean): PrincipalType {
  const agentic = agentType ? AGENT_TYPE_TO_PRINCIPAL[agentType] : undefined;
  if (agentic && agentic !== 'agentUser') return agentic;
  if (flow === 't1Exchange') return 'blueprint';
  return isManagedIdentity ? 'managedIdentity' : 'servicePrincipal';
}

function hasEventType(value: unknown, wanted: string): boolean {
  if (!Array.isArray(value)) return typeof value === 'string' && value.toLowerCase().includes(wanted);
  // `wanted` is lower-case ASCII: compare without a lower-cased copy per value.
  for (const v of value) if (typeof v === 'string' && equalsIgnoreCase(v, wanted)) return true;
  return false;
}

function resourceOf(p: Json, appId: string | undefined): AgentEvent['resource'] {
  const spId = id(p.resourceServicePrincipalId);
  const name = text(p.resourceDisplayName);
  if (!appId && !spId && !name) return undefined;
  const resource: NonNullable<AgentEvent['resource']> = {};
  if (appId) resource.appId = appId;
  if (spId) resource.id = spId;
  if (name) resource.name = name;
  return resource;
}

/** `status.errorCode` (number or string) decides; `resultType` is the envelope's copy when `status` is missing. */
function resultOf(p: Json, record: Json): EventResult {
  const status = asObject(p.status);
  const code = text(status?.errorCode) ?? text(record.resultType);
  const result: EventResult = { status: code === undefined || code === '0' ? 'success' : 'failure' };
  if (code !== undefined) result.code = code;
  const reason = text(status?.failureReason) ?? text(record.resultDescription);
  if (reason && result.status === 'failure') result.reason = reason;
  return result;
}

function credentialOf(p: Json): CredentialUse | undefined {
  const type = lower(p.clientCredentialType);
  const keyId = id(p.servicePrincipalCredentialKeyId);
  const thumbprint = text(p.servicePrincipalCredentialThumbprint);
  const federatedCredentialId = id(p.federatedCredentialId);
  if (!type && !keyId && !thumbprint && !federatedCredentialId) return undefined;
  const credential: CredentialUse = {};
  if (type) credential.type = type;
  if (keyId) credential.keyId = keyId;
  if (thumbprint) credential.thumbprint = thumbprint;
  if (federatedCredentialId) credential.federatedCredentialId = federatedCredentialId;
  return credential;
}

function riskOf(p: Json): RiskInfo | undefined {
  const level = lower(p.riskLevelDuringSignIn);
  const aggregatedLevel = lower(p.riskLevelAggregated);
  const state = lower(p.riskState);
  const detail = lower(p.riskDetail);
  if (!level && !aggregatedLevel && !state && !detail) return undefined;
  const risk: RiskInfo = {};
  if (level) risk.level = level;
  if (aggregatedLevel) risk.aggregatedLevel = aggregatedLevel;
  if (state) risk.state = state;
  if (detail) risk.detail = detail;
  return risk;
}
