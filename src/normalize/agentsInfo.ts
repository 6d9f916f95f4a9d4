/**
 * Defender `AgentsInfo` / legacy `AIAgentsInfo` rows (Copilot Studio / Agent 365 inventory,
 * reference §5.3–5.4). They reach the pipeline as records whose `category` is the table name and
 * whose `properties` are the row's columns; dynamic columns may arrive as JSON strings.
 */
import { RecordError } from '../errors';
import type { AgentEvent, AgentInventoryFacts, Principal } from './types';
import { baseEvent, eventTimes, newPrincipal } from './envelope';
import type { NormalizeInput } from './input';
import { asObject, assign, decodeJsonish, id, lower, pick, text, unique, type Json } from './values';

/** Columns that hold tools / topics whose actions may run with the maker's connection. */
const TOOL_COLUMNS = ['AgentToolsDetails', 'AgentTopicsDetails', 'DeclaredTools', 'Capabilities'] as const;
const NOT_LIVE_LIFECYCLE = new Set(['deleted', 'blocked', 'uninstalled']);

export function normalizeAgentsInfo(input: NormalizeInput): AgentEvent {
  const { properties: row, category, position } = input;
  const agentId = id(pick(row, ['AgentId', 'AIAgentId', 'agentId', 'aiAgentId']));
  if (!agentId) throw new RecordError('RECORD_INVALID', `${category} row has no AgentId / AIAgentId`, position);
  const times = eventTimes(input, `${category} row has no parseable Timestamp or envelope time`, pick(row, ['Timestamp', 'timestamp']), pick(row, ['LastUpdatedDateTime', 'LastModifiedTime']));
  const facts = agentInventoryFacts(row, agentId);
  const event = baseEvent(input, 'inventory', input.hashId(), times);
  event.agentInventory = facts;
  const subject = newPrincipal(facts.entraAgentId ? 'agentIdentity' : 'classicAgent', facts.entraAgentId ?? agentId);
  assign(subject, 'name', facts.name);
  event.subject = subject;
  if (facts.entraAgentId) event.agentIdentityId = facts.entraAgentId;
  if (facts.entraBlueprintId) event.blueprintAppId = facts.entraBlueprintId;
  return event;
}

export function agentInventoryFacts(row: Json, agentId: string): AgentInventoryFacts {
  const publishedStatus = lower(pick(row, ['PublishedStatus', 'AgentStatus']));
  const lifecycleStatus = lower(row.LifecycleStatus);
  const live = publishedStatus === 'published' && !(lifecycleStatus && NOT_LIVE_LIFECYCLE.has(lifecycleStatus));
  const facts: AgentInventoryFacts = {
    agentId,
    live,
    usesMakerCredentials: usesMakerCredentials(row),
    noUserAuthentication: lower(row.UserAuthenticationType) === 'none',
    makerUpns: makerUpns(row),
  };
  assign(facts, 'name', text(pick(row, ['AgentName', 'AIAgentName'])));
  assign(facts, 'platform', text(row.Platform));
  assign(facts, 'publishedStatus', publishedStatus);
  assign(facts, 'lifecycleStatus', lifecycleStatus);
  assign(facts, 'entraAgentId', id(pick(row, ['EntraAgentId', 'EntraAgentID'])));
  assign(facts, 'entraBlueprintId', id(pick(row, ['EntraBlueprintId', 'EntraBlueprintID'])));
  return facts;
}

function usesMakerCredentials(row: Json): boolean {
  for (const column of TOOL_COLUMNS) {
    const value = row[column];
    if (value !== undefined && value !== null && hasMakerConnection(decodeJsonish(value), 0)) return true;
  }
  return mentionsMaker(decodeJsonish(row.ToolsAuthenticationType), 0);
}

/** Any `connectionProperties.mode` of `Maker` at any depth (tools, tool actions, topic actions). */
function hasMakerConnection(value: unknown, depth: number): boolean {
  if (depth > 12) return false;
  if (Array.isArray(value)) {
    for (const v of value) if (hasMakerConnection(v, depth + 1)) return true;
    return false;
  }
  const o = asObject(value);
  if (!o) return false;
  for (const key of Object.keys(o)) {
    const v = o[key];
    if (key.length === 20 && key.toLowerCase() === 'connectionproperties') {
      const props = asObject(decodeJsonish(v));
      if (props && lower(pick(props, ['mode', 'Mode'])) === 'maker') return true;
    } else if (typeof v === 'object' && v !== null && hasMakerConnection(v, depth + 1)) return true;
    else if (typeof v === 'string' && (v.startsWith('{') || v.startsWith('[')) && hasMakerConnection(decodeJsonish(v), depth + 1)) return true;
  }
  return false;
}

/** `ToolsAuthenticationType` is dynamic: a string, a list, or an object naming the mode. */
function mentionsMaker(value: unknown, depth: number): boolean {
  if (depth > 6) return false;
  if (typeof value === 'string') return value.trim().toLowerCase() === 'maker';
  if (Array.isArray(value)) return value.some((v) => mentionsMaker(v, depth + 1));
  const o = asObject(value);
  return o ? Object.values(o).some((v) => mentionsMaker(v, depth + 1)) : false;
}

const UPN_SEPARATORS = /[\s,;]+/;

function makerUpns(row: Json): string[] {
  const out: string[] = [];
  const add = (value: unknown, depth: number): void => {
    if (depth > 4) return;
    if (typeof value === 'string') {
      const decoded = decodeJsonish(value);
      if (typeof decoded !== 'string') return add(decoded, depth + 1);
      for (const part of decoded.split(UPN_SEPARATORS)) if (part) out.push(part.toLowerCase());
    } else if (Array.isArray(value)) for (const v of value) add(v, depth + 1);
    else {
      const o = asObject(value);
      const upn = o ? lower(pick(o, ['upn', 'userPrincipalName', 'Upn', 'UserPrincipalName', 'UPN'])) : undefined;
      if (upn) out.push(upn);
    }
  };
  add(row.CreatorAccountUpn, 0);
  add(row.OwnerAccountUpns, 0);
  add(row.Owners, 0);
  return unique(out);
}
