/**
 * MicrosoftGraphActivityLogs → `AgentEvent` (kind `graphActivity`): who called which Graph path
 * with which token scopes/roles (reference §6). Delegated calls (`userId` set: an agent user or a
 * human on whose behalf an agent acts) have the user as actor and the app as client; app-only calls
 * have the calling service principal as actor.
 */
import type { AgentEvent, GraphActivityFacts, Principal } from './types';
import { baseEvent, eventTimes, newPrincipal } from './envelope';
import type { NormalizeInput } from './input';
import { BoundedMemo } from '../memo';
import { assign, id, isGuidShaped, num, pick, splitList, text } from './values';

const MICROSOFT_GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';

export function normalizeGraphActivity(input: NormalizeInput): AgentEvent {
  const { record, properties: p } = input;
  const times = eventTimes(input, 'Graph activity record has no parseable timeGenerated or envelope time', p.timeGenerated);

  const appId = id(p.appId);
  const servicePrincipalId = id(pick(p, ['servicePrincipalId', 'UserPrincipalObjectID']));
  const app = newPrincipal('servicePrincipal');
  assign(app, 'id', servicePrincipalId);
  assign(app, 'appId', appId);
  const userId = id(p.userId);

  // `requestId` is the record's own id (one per request); a content hash only when it is missing.
  const event = baseEvent(input, 'graphActivity', text(p.id) ?? text(p.requestId) ?? input.hashId(), times);
  event.resource = { appId: MICROSOFT_GRAPH_APP_ID, name: 'Microsoft Graph' };
  event.graph = graphFacts(p);
  if (userId) {
    const user = newPrincipal('user', userId);
    event.actor = user;
    event.subject = user;
    event.client = app;
  } else {
    event.actor = app;
    event.subject = app;
  }
  const correlationId = id(p.operationId) ?? id(record.correlationId);
  if (correlationId) event.correlationId = correlationId;
  const ip = text(p.ipAddress) ?? text(record.callerIpAddress);
  if (ip) event.ip = ip;
  const location = text(p.location) ?? text(record.location);
  if (location) event.location = location;
  const status = event.graph!.statusCode;
  if (status !== undefined) event.result = { status: status < 400 ? 'success' : 'failure', code: String(status) };
  return event;
}

function graphFacts(p: Record<string, unknown>): GraphActivityFacts {
  const facts: GraphActivityFacts = { scopes: splitList(p.scopes), roles: splitList(p.roles) };
  const method = text(p.requestMethod);
  if (method) facts.method = method.toUpperCase();
  const uri = text(p.requestUri);
  if (uri) {
    facts.uri = uri;
    facts.path = normalizeGraphPath(uri);
  }
  assign(facts, 'statusCode', num(pick(p, ['responseStatusCode', 'statusCode'])));
  assign(facts, 'signInActivityId', text(p.signInActivityId));
  assign(facts, 'userAgent', text(p.userAgent));
  return facts;
}

const VERSION_SEGMENT = /^(v1\.0|beta|v\d+(\.\d+)?)$/i;
const QUOTED = /'[^']*'/g;
/** Opaque ids Graph puts in paths: long tokens mixing letters and digits (message ids, base64). */
const OPAQUE_ID = /^(?=.*\d)[A-Za-z0-9=_+\-!]{20,}$/;

/** The same request URIs repeat (an app polling one mailbox): normalize each distinct one once. */
const GRAPH_PATHS = new BoundedMemo(normalizeGraphPathUncached, 4096);

/**
 * `https://graph.microsoft.com/v1.0/users/alice@contoso.com/messages?$top=50` → `/users/{id}/messages`:
 * host, version, query and fragment stripped; GUIDs, UPNs, quoted keys and opaque ids replaced by `{id}`.
 */
export function normalizeGraphPath(uri: string): string {
  return uri.length > 2048 ? normalizeGraphPathUncached(uri) : GRAPH_PATHS.get(uri);
}

function normalizeGraphPathUncached(uri: string): string {
  let rest = uri.includes('\\u0026') ? uri.replace(/\\u0026/gi, '&') : uri;
  const scheme = rest.indexOf('://');
  if (scheme >= 0) {
    const slash = rest.indexOf('/', scheme + 3);
    rest = slash >= 0 ? rest.slice(slash) : '/';
  }
  const cut = rest.search(/[?#]/);
  if (cut >= 0) rest = rest.slice(0, cut);
  const segments = rest.split('/').filter((s) => s.length > 0);
  if (segments.length && VERSION_SEGMENT.test(segments[0]!)) segments.shift();
  const normalized = segments.map((segment) => {
    let s = segment;
    if (s.includes('%')) {
      try {
        s = decodeURIComponent(segment);
      } catch {
        // Keep a malformed escape as sent: the path is for grouping, not for requests.
      }
    }
    if (isGuidShaped(s) || s.includes('@') || OPAQUE_ID.test(s)) return '{id}';
    if (s.includes("'")) return s.replace(QUOTED, '{id}');
    return s;
  });
  return `/${normalized.join('/')}`;
}

