/**
 * AuditLogs (`properties` = Graph directoryAudit) → `AgentEvent` with `AuditFacts`: the operation
 * name folded, the initiator as actor, targets with decoded `modifiedProperties`, and the facts
 * detections ask about (credentials added/removed, federated credential issuers/subjects, permissions
 * granted, grantee, role/group). Shapes: reference §3.1–3.4.
 */
import { RecordError } from '../errors';
import type { AgentEvent, AuditFacts, AuditTarget, CredentialRef, ModifiedProperty, Principal, PrincipalType, Resource } from './types';
import { AGENT_TYPE_TO_PRINCIPAL, baseEvent, eventTimes, newPrincipal } from './envelope';
import type { NormalizeInput } from './input';
import { BoundedMemo } from '../memo';
import { asArray, asObject, assign, decodeJsonish, equalsIgnoreCase, foldOperation, id, isGuidShaped, lower, text, unique, type Json } from './values';

const RAW_TARGET_TYPES: Readonly<Record<string, PrincipalType>> = {
  user: 'user',
  serviceprincipal: 'servicePrincipal',
  application: 'application',
  group: 'group',
  role: 'role',
  directoryrole: 'role',
};

export function normalizeAudit(input: NormalizeInput): AgentEvent {
  const { record, properties: p, position } = input;
  const times = eventTimes(input, 'audit record has no parseable activityDateTime or envelope time', p.activityDateTime);
  const operation = foldOperation(p.activityDisplayName) ?? foldOperation(record.operationName);
  if (!operation) throw new RecordError('RECORD_INVALID', 'audit record has no activityDisplayName or operationName', position);

  const targets = targetsOf(p);
  const facts = auditFacts(operation, p, targets);
  const actor = initiatorOf(asObject(p.initiatedBy));

  const event = baseEvent(input, 'audit', text(p.id) ?? input.hashId(), times);
  event.audit = facts;
  const correlationId = id(p.correlationId) ?? id(record.correlationId);
  if (correlationId) event.correlationId = correlationId;
  if (actor) event.actor = actor.principal;
  const subject = facts.grantee ?? (targets[0] ? principalOfTarget(targets[0]) : undefined);
  if (subject) event.subject = subject;
  const ip = actor?.ip ?? text(record.callerIpAddress);
  if (ip) event.ip = ip;

  const result = lower(p.result);
  const reason = text(p.resultReason) ?? text(record.resultDescription);
  event.result = { status: result === 'success' ? 'success' : 'failure' };
  if (reason) {
    event.result.code = reason;
    event.result.reason = reason;
  }
  agentIdsFromTargets(event, targets, facts, p.targetResources);
  return event;
}

function initiatorOf(initiatedBy: Json | undefined): { principal: Principal; ip?: string } | undefined {
  if (!initiatedBy) return undefined;
  const user = asObject(initiatedBy.user);
  if (user && (text(user.id) || text(user.userPrincipalName))) {
    const principal = newPrincipal(AGENT_TYPE_TO_PRINCIPAL[lower(user.agentType) ?? ''] === 'agentUser' ? 'agentUser' : 'user');
    assign(principal, 'id', id(user.id));
    assign(principal, 'upn', lower(user.userPrincipalName));
    assign(principal, 'name', text(user.displayName));
    const ip = text(user.ipAddress);
    return ip ? { principal, ip } : { principal };
  }
  const app = asObject(initiatedBy.app);
  if (app && (text(app.servicePrincipalId) || text(app.appId) || text(app.displayName))) {
    const principal = newPrincipal(AGENT_TYPE_TO_PRINCIPAL[lower(app.agentType) ?? ''] ?? 'servicePrincipal');
    assign(principal, 'id', id(app.servicePrincipalId));
    assign(principal, 'appId', id(app.appId));
    assign(principal, 'name', text(app.displayName) ?? text(app.servicePrincipalName));
    return { principal };
  }
  return undefined;
}

function targetsOf(p: Json): AuditTarget[] {
  const raw = asArray(p.targetResources);
  if (!raw) return [];
  const out: AuditTarget[] = [];
  for (let i = 0; i < raw.length; i++) {
    const t = asObject(raw[i]);
    if (!t) continue;
    const rawType = text(t.type);
    const agentType = lower(t.agentType);
    const target: AuditTarget = {
      type: (agentType && AGENT_TYPE_TO_PRINCIPAL[agentType]) || (rawType && RAW_TARGET_TYPES[rawType.toLowerCase()]) || 'unknown',
      // Every field declared, absent ones undefined: one shape for all targets (see `baseEvent`).
      id: undefined,
      appId: undefined,
      name: undefined,
      upn: undefined,
      ownerTenantId: undefined,
      rawType: undefined,
      modifiedProperties: modifiedPropertiesOf(t.modifiedProperties),
    };
    assign(target, 'id', id(t.id));
    assign(target, 'name', text(t.displayName));
    assign(target, 'upn', lower(t.userPrincipalName));
    if (rawType) target.rawType = rawType;
    const isApp = target.type !== 'user' && target.type !== 'agentUser' && target.type !== 'group' && target.type !== 'role';
    if (isApp) {
      // The `AppId` additional detail names the first target's app when its properties do not.
      const appId = appIdOfTarget(target) ?? (i === 0 && (rawType === 'Application' || rawType === 'ServicePrincipal') ? additionalDetail(p, 'appid') : undefined);
      assign(target, 'appId', appId);
    }
    out.push(target);
  }
  return out;
}

function modifiedPropertiesOf(value: unknown): ModifiedProperty[] {
  const raw = asArray(value);
  if (!raw) return [];
  const out: ModifiedProperty[] = [];
  for (const entry of raw) {
    const m = asObject(entry);
    if (!m) continue;
    const name = text(m.displayName);
    if (!name) continue;
    out.push({ name, oldValue: decodeValue(m.oldValue), newValue: decodeValue(m.newValue) });
  }
  return out;
}

/** JSON-in-string decoded; absent/empty → null so old/new comparisons have one "nothing". */
function decodeValue(value: unknown): unknown {
  if (value === undefined || value === null) return null;
  const decoded = decodeJsonish(value);
  return decoded === '' ? null : decoded;
}

function prop(target: AuditTarget, name: string): ModifiedProperty | undefined {
  for (const m of target.modifiedProperties) if (m.name === name || equalsIgnoreCase(m.name, name)) return m;
  return undefined;
}

function propAnywhere(targets: AuditTarget[], name: string): ModifiedProperty | undefined {
  for (const t of targets) {
    const m = prop(t, name);
    if (m) return m;
  }
  return undefined;
}

const OUTER_QUOTES = /^"+|"+$/g;

/** A scalar text out of a decoded value (a one-element array counts). */
function scalar(value: unknown): string | undefined {
  if (Array.isArray(value)) return value.length === 1 ? scalar(value[0]) : undefined;
  const t = text(value);
  if (t === undefined) return undefined;
  return t.charCodeAt(0) === 34 || t.charCodeAt(t.length - 1) === 34 ? t.replace(OUTER_QUOTES, '').trim() || undefined : t;
}

function appIdOfTarget(target: AuditTarget): string | undefined {
  const direct = scalar(prop(target, 'AppId')?.newValue) ?? scalar(prop(target, 'AppId')?.oldValue);
  if (direct) return id(direct);
  const spns = scalar(prop(target, 'TargetId.ServicePrincipalNames')?.newValue);
  if (spns) {
    for (const part of spns.split(';')) {
      const candidate = part.trim();
      if (isGuidShaped(candidate)) return candidate.toLowerCase();
    }
  }
  return undefined;
}

function additionalDetail(p: Json, key: string): string | undefined {
  const details = asArray(p.additionalDetails);
  if (!details) return undefined;
  for (const d of details) {
    const o = asObject(d);
    // `key` is lower-case ASCII: compare without a lower-cased copy of every detail's key.
    if (o && typeof o.key === 'string' && equalsIgnoreCase(o.key, key)) return id(o.value);
  }
  return undefined;
}

function principalOfTarget(target: AuditTarget): Principal {
  const principal = newPrincipal(target.type);
  assign(principal, 'id', target.id);
  assign(principal, 'appId', target.appId);
  assign(principal, 'name', target.name);
  assign(principal, 'upn', target.upn);
  return principal;
}

// ---------------------------------------------------------------------------------------------
// Facts

const GRANT_OPERATIONS = /^(add delegated permission grant|update delegated permission grant|add app role assignment to service principal|consent to application)$/i;
const MEMBER_OPERATIONS = /^add (eligible |scoped |active )?member to (role|group)/i;
const REMOVAL_OPERATION = /^(remove|delete|hard delete)\b/i;
const CONSENT_OPERATION = /^consent to application$/i;

/** What the facts need to know about an operation name. */
interface OperationTraits {
  grant: boolean;
  member: boolean;
  removal: boolean;
  consent: boolean;
}

/**
 * A tenant emits a few hundred distinct activity names, and `foldOperation` hands back one string
 * per spelling: test the patterns once per name instead of on every record.
 */
const OPERATION_TRAITS = new BoundedMemo<OperationTraits>(
  (operation) => ({ grant: GRANT_OPERATIONS.test(operation), member: MEMBER_OPERATIONS.test(operation), removal: REMOVAL_OPERATION.test(operation), consent: CONSENT_OPERATION.test(operation) }),
  4096,
);

function operationTraits(operation: string): OperationTraits {
  return OPERATION_TRAITS.get(operation);
}

function auditFacts(operation: string, p: Json, targets: AuditTarget[]): AuditFacts {
  const facts: AuditFacts = {
    operation,
    targets,
    credentialsAdded: [],
    credentialsRemoved: [],
    ficIssuersAdded: [],
    ficSubjectsAdded: [],
    modifiedPropertyNames: [],
    permissionsGranted: [],
  };
  assign(facts, 'category', text(p.category));
  assign(facts, 'operationType', text(p.operationType));

  const names = new Set<string>();
  for (const t of targets) {
    for (const m of t.modifiedProperties) {
      names.add(m.name);
      if (m.name === 'Included Updated Properties') {
        const listed = scalar(m.newValue);
        if (listed) for (const n of listed.split(',')) if (n.trim()) names.add(n.trim());
      }
    }
  }
  facts.modifiedPropertyNames = [...names];

  const keys = propAnywhere(targets, 'KeyDescription');
  if (keys) diffCredentials(keyDescriptionsOf(keys.oldValue), keyDescriptionsOf(keys.newValue), facts);
  const fic = propAnywhere(targets, 'FederatedIdentityCredentials');
  if (fic) diffFederatedCredentials(fic, facts);

  const traits = operationTraits(operation);
  if (!traits.removal) facts.permissionsGranted = permissionsOf(targets);
  const grantee = granteeOf(traits, targets);
  if (grantee) facts.grantee = grantee;
  if (traits.grant || facts.permissionsGranted.length > 0) {
    const resource = permissionResourceOf(targets, grantee);
    if (resource) facts.permissionResource = resource;
  }
  roleAndGroupOf(targets, facts);
  return facts;
}

// KeyDescription entries look like `[KeyIdentifier=…,KeyType=Password,KeyUsage=Verify,DisplayName=…]`.
const KEY_IDENTIFIER = /KeyIdentifier=([^,\]]*)/i;
const KEY_TYPE = /KeyType=([^,\]]*)/i;
const KEY_USAGE = /KeyUsage=([^,\]]*)/i;
const KEY_DISPLAY_NAME = /DisplayName=(.*?)\]?\s*$/i;

export function parseKeyDescription(entry: string): CredentialRef | undefined {
  const keyId = KEY_IDENTIFIER.exec(entry)?.[1]?.trim();
  const type = KEY_TYPE.exec(entry)?.[1]?.trim();
  if (!keyId && !type) return undefined;
  const ref: CredentialRef = { type: type ? type.toLowerCase() : 'unknown' };
  if (keyId) ref.keyId = id(keyId) ?? keyId;
  const usage = KEY_USAGE.exec(entry)?.[1]?.trim();
  if (usage) ref.usage = usage.toLowerCase();
  const displayName = KEY_DISPLAY_NAME.exec(entry)?.[1]?.trim();
  if (displayName) ref.displayName = displayName;
  return ref;
}

function keyDescriptionsOf(value: unknown): CredentialRef[] {
  const out: CredentialRef[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) for (const e of v) visit(e);
    else if (typeof v === 'string') {
      // Several entries may sit in one string: `[KeyIdentifier=a,…][KeyIdentifier=b,…]`.
      const parts = v.split(/\]\s*,?\s*\[/);
      for (const part of parts) {
        const ref = parseKeyDescription(part);
        if (ref) out.push(ref);
      }
    }
  };
  visit(decodeJsonish(value));
  return out;
}

function credentialIdentity(ref: CredentialRef): string {
  return ref.keyId ?? `${ref.type}|${ref.displayName ?? ''}|${ref.issuer ?? ''}|${ref.subject ?? ''}`;
}

/** Credentials in the new value and not the old one are added; the reverse are removed. */
function diffCredentials(oldRefs: CredentialRef[], newRefs: CredentialRef[], facts: AuditFacts): void {
  const oldIds = new Set(oldRefs.map(credentialIdentity));
  const newIds = new Set(newRefs.map(credentialIdentity));
  for (const r of newRefs) if (!oldIds.has(credentialIdentity(r))) facts.credentialsAdded.push(r);
  for (const r of oldRefs) if (!newIds.has(credentialIdentity(r))) facts.credentialsRemoved.push(r);
}

/** Reads a key of a federated credential object whatever its casing (`Issuer` / `issuer`). */
function field(o: Json, name: string): unknown {
  if (o[name] !== undefined) return o[name];
  const lowered = name.toLowerCase();
  for (const k of Object.keys(o)) if (k.toLowerCase() === lowered) return o[k];
  return undefined;
}

const FIC_PAIR = /(\w+)\s*[=:]\s*([^,\]]*)/g;

function federatedCredentialsOf(value: unknown): CredentialRef[] {
  const out: CredentialRef[] = [];
  const visit = (v: unknown, depth: number): void => {
    if (depth > 4) return;
    if (Array.isArray(v)) {
      for (const e of v) visit(e, depth + 1);
      return;
    }
    if (typeof v === 'string') {
      const decoded = decodeJsonish(v);
      if (typeof decoded !== 'string') return visit(decoded, depth + 1);
      // Non-JSON rendering: `Name=…,Issuer=…,Subject=…`.
      const o: Json = {};
      for (const m of decoded.matchAll(FIC_PAIR)) o[m[1]!] = m[2]!.trim();
      if (Object.keys(o).length) visit(o, depth + 1);
      return;
    }
    const o = asObject(v);
    if (!o) return;
    const issuer = text(field(o, 'issuer'));
    const subject = text(field(o, 'subject'));
    const name = text(field(o, 'name'));
    const ficId = id(field(o, 'id') ?? field(o, 'federatedIdentityCredentialId') ?? field(o, 'keyId'));
    if (!issuer && !subject && !name && !ficId) return;
    const ref: CredentialRef = { type: 'federatedidentitycredential' };
    assign(ref, 'keyId', ficId ?? name);
    assign(ref, 'displayName', name);
    assign(ref, 'issuer', issuer);
    assign(ref, 'subject', subject);
    const audiences = field(o, 'audiences');
    const list = Array.isArray(audiences) ? audiences.map((a) => text(a)).filter((a): a is string => !!a) : text(audiences)?.split(/[\s,;]+/).filter(Boolean);
    if (list && list.length) ref.audiences = list;
    out.push(ref);
  };
  visit(value, 0);
  return out;
}

function diffFederatedCredentials(m: ModifiedProperty, facts: AuditFacts): void {
  const oldRefs = federatedCredentialsOf(m.oldValue);
  const newRefs = federatedCredentialsOf(m.newValue);
  diffCredentials(oldRefs, newRefs, facts);
  const oldIssuers = new Set(oldRefs.map((r) => r.issuer).filter(Boolean));
  const oldSubjects = new Set(oldRefs.map((r) => r.subject).filter(Boolean));
  facts.ficIssuersAdded = unique(newRefs.map((r) => r.issuer).filter((v): v is string => !!v && !oldIssuers.has(v)));
  facts.ficSubjectsAdded = unique(newRefs.map((r) => r.subject).filter((v): v is string => !!v && !oldSubjects.has(v)));
}

const WHITESPACE = /\s+/;
const CONSENT_SCOPE = /Scope:\s*([^,\]]*)/g;
const CONSENT_RESOURCE = /ResourceId:\s*([0-9a-zA-Z-]{32,40})/;

function words(value: unknown): string[] {
  const out: string[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) for (const e of v) visit(e);
    else {
      const t = scalar(v);
      if (t) for (const w of t.split(WHITESPACE)) if (w) out.push(w);
    }
  };
  visit(value);
  return out;
}

/** The part of a `ConsentAction.Permissions` string after `=>` (the new grants), or all of it. */
function consentNewPart(value: unknown): string | undefined {
  const t = typeof value === 'string' ? value : Array.isArray(value) ? value.filter((v) => typeof v === 'string').join(' ') : undefined;
  if (!t) return undefined;
  const arrow = t.lastIndexOf('=>');
  return arrow >= 0 ? t.slice(arrow + 2) : t;
}

function permissionsOf(targets: AuditTarget[]): string[] {
  const granted: string[] = [];
  const scope = propAnywhere(targets, 'DelegatedPermissionGrant.Scope');
  if (scope) {
    const before = new Set(words(scope.oldValue).map((s) => s.toLowerCase()));
    for (const s of words(scope.newValue)) if (!before.has(s.toLowerCase())) granted.push(s);
  }
  const appRole = propAnywhere(targets, 'AppRole.Value');
  if (appRole) granted.push(...words(appRole.newValue));
  const consent = propAnywhere(targets, 'ConsentAction.Permissions');
  if (consent) {
    const part = consentNewPart(consent.newValue);
    if (part) for (const m of part.matchAll(CONSENT_SCOPE)) for (const w of m[1]!.split(WHITESPACE)) if (w) granted.push(w);
  }
  return unique(granted);
}

function granteeOf(operation: OperationTraits, targets: AuditTarget[]): Principal | undefined {
  const spObject = propAnywhere(targets, 'ServicePrincipal.ObjectID');
  const spId = id(scalar(spObject?.newValue) ?? scalar(spObject?.oldValue));
  if (spId) {
    const fromTargets = targets.find((t) => t.id === spId);
    const principal: Principal = fromTargets ? principalOfTarget(fromTargets) : newPrincipal('servicePrincipal', spId);
    if (principal.type === 'unknown' || principal.type === 'application') principal.type = 'servicePrincipal';
    assign(principal, 'appId', principal.appId ?? id(scalar(propAnywhere(targets, 'ServicePrincipal.AppId')?.newValue)));
    assign(principal, 'name', principal.name ?? scalar(propAnywhere(targets, 'ServicePrincipal.DisplayName')?.newValue) ?? scalar(propAnywhere(targets, 'ServicePrincipal.Name')?.newValue));
    return principal;
  }
  if (operation.consent && targets[0]) return principalOfTarget(targets[0]);
  if (operation.member) {
    const member = targets.find((t) => t.type !== 'role' && t.type !== 'group');
    if (member) return principalOfTarget(member);
  }
  return undefined;
}

function permissionResourceOf(targets: AuditTarget[], grantee: Principal | undefined): Resource | undefined {
  const consent = propAnywhere(targets, 'ConsentAction.Permissions');
  const consentResource = consent ? id(CONSENT_RESOURCE.exec(consentNewPart(consent.newValue) ?? '')?.[1]) : undefined;
  const target = targets.find((t) => t.type !== 'user' && t.type !== 'role' && t.type !== 'group' && (!grantee?.id || t.id !== grantee.id));
  if (!target && !consentResource) return undefined;
  const resource: Resource = {};
  if (target) {
    assign(resource, 'appId', target.appId);
    assign(resource, 'id', target.id);
    assign(resource, 'name', target.name);
  } else {
    resource.id = consentResource!;
  }
  return Object.keys(resource).length ? resource : undefined;
}

function roleAndGroupOf(targets: AuditTarget[], facts: AuditFacts): void {
  const roleTarget = targets.find((t) => t.type === 'role');
  const roleName = scalar(propAnywhere(targets, 'Role.DisplayName')?.newValue) ?? scalar(propAnywhere(targets, 'Role.WellKnownObjectName')?.newValue) ?? roleTarget?.name;
  if (roleName) facts.roleName = roleName;
  const groupTarget = targets.find((t) => t.type === 'group');
  const groupId = id(scalar(propAnywhere(targets, 'Group.ObjectID')?.newValue)) ?? groupTarget?.id;
  if (groupId) facts.groupId = groupId;
  const groupName = scalar(propAnywhere(targets, 'Group.DisplayName')?.newValue) ?? groupTarget?.name;
  if (groupName) facts.groupName = groupName;
}

const BLUEPRINT_ID_PROPERTY = /blueprint(app)?id$/i;

/** Agent ids the record itself states (agentType markers, `blueprintId`, an `AgentIdentityBlueprintId` property). */
function agentIdsFromTargets(event: AgentEvent, targets: AuditTarget[], facts: AuditFacts, rawTargets: unknown): void {
  const candidates: Principal[] = facts.grantee ? [facts.grantee, ...targets] : targets;
  for (const t of candidates) {
    if (!event.blueprintAppId && t.type === 'blueprint' && t.appId) event.blueprintAppId = t.appId;
    if (!event.agentIdentityId && t.type === 'agentIdentity' && t.id) event.agentIdentityId = t.id;
    if (!event.agentUserId && t.type === 'agentUser' && t.id) event.agentUserId = t.id;
  }
  if (!event.blueprintAppId) {
    // `blueprintId` on a target is documented (reference §3.1) though rarely populated.
    for (const raw of asArray(rawTargets) ?? []) {
      const value = id(asObject(raw)?.blueprintId);
      if (value) {
        event.blueprintAppId = value;
        return;
      }
    }
    for (const t of targets) {
      for (const m of t.modifiedProperties) {
        if (BLUEPRINT_ID_PROPERTY.test(m.name)) {
          const value = id(scalar(m.newValue));
          if (value) {
            event.blueprintAppId = value;
            return;
          }
        }
      }
    }
  }
}
