/**
 * Graph as a source: what the Event Hubs stream cannot show, pulled on a timer.
 *  1. Defender's `AgentsInfo` (falling back to the legacy `AIAgentsInfo` when the tenant does not
 *     know the table) through `POST /v1.0/security/runHuntingQuery` — the latest row per agent,
 *     fed into the pipeline as records of that category, so `maker-credential-agent` and
 *     `maker-credential-use` see Copilot Studio agents that run on their maker's credentials.
 *  2. Blueprints, blueprint principals, agent identities and agent users through the Graph type
 *     casts (paged by `@odata.nextLink`) → inventory entities, so detections know what an id is
 *     even when the stream never showed its creation.
 * A source Graph refuses with 403 (no licence, or a permission not granted) is logged once per run
 * and skipped; the others carry on. Throttling is the Graph client's bounded retry.
 */
import type { GraphCallPurpose, GraphHttp } from '../response/graphClient';
import { isGraphRequestError } from '../response/graphClient';
import { READ_PERMISSIONS } from '../response/permissions';
import { silentLogger, systemClock, type Clock, type InventoryEntity, type Logger } from '../ports';

/** The two calls the pull needs from the Graph client (`GraphHttp` has them). */
export type GraphReader = Pick<GraphHttp, 'pages' | 'request'>;

export interface InventoryPullDeps {
  graph: GraphReader;
  /** Runs Event Hub–style bodies (`{records:[…]}`) through the pipeline: decode → … → alerts. Bound by the host to `processBatch`. */
  feed(bodies: { records: AgentsInfoRecord[] }[]): Promise<unknown>;
  /** Adds or refreshes entities in the inventory. Bound by the host to the inventory module. */
  upsertEntities(entities: InventoryEntity[]): Promise<void>;
  logger?: Logger;
  clock?: Clock;
  /** How far back the hunting query looks for each agent's latest row. Optional; defaults to 30 days (Advanced Hunting keeps 30). */
  huntingLookbackDays?: number;
  /** Records per body fed to the pipeline. Optional; defaults to 500. */
  recordsPerBody?: number;
}

export interface AgentsInfoRecord {
  category: 'AgentsInfo' | 'AIAgentsInfo';
  time: string;
  properties: Record<string, unknown>;
}

export type DirectorySource = 'blueprints' | 'blueprintPrincipals' | 'agentIdentities' | 'agentUsers';

export interface InventoryPullSummary {
  /** The hunting table that answered, if any. */
  huntingTable?: 'AgentsInfo' | 'AIAgentsInfo';
  agentsInfoRows: number;
  entities: Record<DirectorySource, number>;
  pages: number;
  /** Sources skipped this run, and why (403 unlicensed / permission missing, table unknown, …). */
  skipped: { source: string; code: string; reason: string }[];
  /** What the pipeline returned for the fed records. */
  pipeline?: unknown;
}

interface DirectoryListing {
  source: DirectorySource;
  path: string;
  permission: GraphCallPurpose['permission'];
  toEntity(object: GraphObject): InventoryEntity | undefined;
}

interface GraphObject {
  id?: string;
  appId?: string;
  displayName?: string;
  userPrincipalName?: string;
  accountEnabled?: boolean;
  appOwnerOrganizationId?: string;
  agentIdentityBlueprintId?: string;
  identityParentId?: string;
  createdByAppId?: string;
  owners?: { id?: string; userPrincipalName?: string }[];
}

const DIRECTORY: DirectoryListing[] = [
  {
    source: 'blueprints',
    path: '/v1.0/applications/microsoft.graph.agentIdentityBlueprint?$select=id,appId,displayName&$expand=owners($select=id,userPrincipalName)',
    permission: READ_PERMISSIONS.readApplications,
    toEntity: (o) => entity('blueprint', o, { owners: ownersOf(o) }),
  },
  {
    source: 'blueprintPrincipals',
    path: '/v1.0/servicePrincipals/microsoft.graph.agentIdentityBlueprintPrincipal?$select=id,appId,displayName,accountEnabled,appOwnerOrganizationId',
    permission: READ_PERMISSIONS.readApplications,
    toEntity: (o) => entity('blueprintPrincipal', o, { parentId: lower(o.appId), ownerTenantId: lower(o.appOwnerOrganizationId) }),
  },
  {
    source: 'agentIdentities',
    path: '/v1.0/servicePrincipals/microsoft.graph.agentIdentity?$select=id,appId,displayName,accountEnabled,appOwnerOrganizationId,agentIdentityBlueprintId,createdByAppId',
    permission: READ_PERMISSIONS.readAgentIdentities,
    toEntity: (o) => entity('agentIdentity', o, { parentId: lower(o.agentIdentityBlueprintId), ownerTenantId: lower(o.appOwnerOrganizationId), createdByAppId: lower(o.createdByAppId) }),
  },
  {
    source: 'agentUsers',
    path: '/v1.0/users/microsoft.graph.agentUser?$select=id,displayName,userPrincipalName,accountEnabled,identityParentId',
    permission: READ_PERMISSIONS.readUsers,
    toEntity: (o) => entity('agentUser', o, { parentId: lower(o.identityParentId), upn: lower(o.userPrincipalName) }),
  },
];

/** Hunting queries per table: the latest row of every agent. */
const HUNTING_QUERIES: Record<'AgentsInfo' | 'AIAgentsInfo', (days: number) => string> = {
  AgentsInfo: (days) => `AgentsInfo | where Timestamp > ago(${days}d) | summarize arg_max(Timestamp, *) by AgentId`,
  AIAgentsInfo: (days) => `AIAgentsInfo | where Timestamp > ago(${days}d) | summarize arg_max(Timestamp, *) by AIAgentId`,
};

export async function pullAgentInventory(deps: InventoryPullDeps): Promise<InventoryPullSummary> {
  const logger = deps.logger ?? silentLogger;
  const clock = deps.clock ?? systemClock;
  const summary: InventoryPullSummary = { agentsInfoRows: 0, entities: { blueprints: 0, blueprintPrincipals: 0, agentIdentities: 0, agentUsers: 0 }, pages: 0, skipped: [] };
  const skip = (source: string, error: unknown) => {
    const code = isGraphRequestError(error) ? error.code : 'GRAPH_REQUEST_FAILED';
    const reason = error instanceof Error ? error.message : String(error);
    summary.skipped.push({ source, code, reason });
    // Once per source per run: an unlicensed tenant is a steady state, not an incident.
    logger.log('warn', `inventory pull: ${source} skipped this run`, { source, code, reason });
  };

  const rows = await huntAgents(deps, summary, skip);
  if (rows.length > 0) {
    const now = new Date(clock.now()).toISOString();
    const records = rows.map((row): AgentsInfoRecord => ({ category: summary.huntingTable!, time: typeof row.Timestamp === 'string' ? row.Timestamp : now, properties: row }));
    const size = Math.max(1, deps.recordsPerBody ?? 500);
    const bodies: { records: AgentsInfoRecord[] }[] = [];
    for (let start = 0; start < records.length; start += size) bodies.push({ records: records.slice(start, start + size) });
    summary.pipeline = await deps.feed(bodies);
  }

  for (const listing of DIRECTORY) {
    const entities: InventoryEntity[] = [];
    try {
      for await (const page of deps.graph.pages<GraphObject>(listing.path, { operation: `inventory pull: list ${listing.source}`, permission: listing.permission })) {
        summary.pages++;
        for (const object of page) {
          const converted = listing.toEntity(object);
          if (converted) entities.push(converted);
        }
      }
    } catch (error) {
      if (!isGraphRequestError(error)) throw error;
      skip(listing.source, error);
      continue;
    }
    if (entities.length > 0) await deps.upsertEntities(entities);
    summary.entities[listing.source] = entities.length;
  }
  logger.log('info', 'inventory pull done', { huntingTable: summary.huntingTable, agentsInfoRows: summary.agentsInfoRows, ...summary.entities, pages: summary.pages, skipped: summary.skipped.map((s) => s.source) });
  return summary;
}

/** What the binding needs from the app `buildApp` returns (its pipeline and its inventory). */
export interface InventoryPullTarget {
  processBatch(messages: readonly unknown[], meta?: { source?: string }): Promise<unknown>;
  inventory: { upsert(facts: InventoryEntity & { liveAtMs?: number }): unknown; flush(): Promise<number> };
}

/**
 * The timer function's one call: pull into an app's pipeline and inventory. Graph's view is as of
 * now, so its live flags override older stream knowledge; entities are persisted at once.
 */
export function pullAgentInventoryInto(app: InventoryPullTarget, graph: GraphReader, options: Pick<InventoryPullDeps, 'logger' | 'clock' | 'huntingLookbackDays'> = {}): Promise<InventoryPullSummary> {
  const clock = options.clock ?? systemClock;
  return pullAgentInventory({
    ...options,
    graph,
    feed: (bodies) => app.processBatch(bodies, { source: 'graph:runHuntingQuery' }),
    upsertEntities: async (entities) => {
      const liveAtMs = clock.now();
      for (const pulled of entities) app.inventory.upsert({ ...pulled, liveAtMs });
      await app.inventory.flush();
    },
  });
}

/** AgentsInfo first; AIAgentsInfo only when the service does not know AgentsInfo (a 400 naming the table). */
async function huntAgents(deps: InventoryPullDeps, summary: InventoryPullSummary, skip: (source: string, error: unknown) => void): Promise<Record<string, unknown>[]> {
  const days = Math.max(1, Math.floor(deps.huntingLookbackDays ?? 30));
  for (const table of ['AgentsInfo', 'AIAgentsInfo'] as const) {
    try {
      const response = await deps.graph.request<{ results?: unknown[] }>(
        'POST',
        '/v1.0/security/runHuntingQuery',
        { operation: `inventory pull: hunting query on ${table}`, permission: READ_PERMISSIONS.runHuntingQuery },
        { Query: HUNTING_QUERIES[table](days) },
      );
      const rows = (response?.results ?? []).filter((row): row is Record<string, unknown> => typeof row === 'object' && row !== null && !Array.isArray(row));
      summary.huntingTable = table;
      summary.agentsInfoRows = rows.length;
      return rows;
    } catch (error) {
      if (!isGraphRequestError(error)) throw error;
      if (table === 'AgentsInfo' && isUnknownTable(error, table)) continue;
      skip(table, error);
      return [];
    }
  }
  return [];
}

function isUnknownTable(error: { statusCode: number; message: string }, table: string): boolean {
  return error.statusCode === 400 && error.message.includes(table) && /resolve|unknown|not found|not exist|doesn't exist|not a valid|invalid/i.test(error.message);
}

function entity(kind: InventoryEntity['kind'], object: GraphObject, extra: Partial<InventoryEntity>): InventoryEntity | undefined {
  const id = lower(object.id);
  if (!id) return undefined;
  const result: InventoryEntity = { kind, id, live: object.accountEnabled !== false };
  const appId = lower(object.appId);
  if (appId) result.appId = appId;
  if (object.displayName) result.name = object.displayName;
  for (const [key, value] of Object.entries(extra)) {
    if (value !== undefined && !(Array.isArray(value) && value.length === 0)) (result as unknown as Record<string, unknown>)[key] = value;
  }
  return result;
}

function ownersOf(object: GraphObject): string[] {
  return (object.owners ?? []).flatMap((owner) => [lower(owner.userPrincipalName), lower(owner.id)].filter((value): value is string => value !== undefined));
}

function lower(value: string | undefined): string | undefined {
  return typeof value === 'string' && value !== '' ? value.toLowerCase() : undefined;
}
