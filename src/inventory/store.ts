/**
 * The entity inventory: blueprints, blueprint principals, agent identities, agent users and
 * classic Copilot Studio agents, with object id ↔ app id, parent ↔ child, owners, live flag and
 * first-seen time. It implements `InventoryView` for detections; `learn.ts` feeds it from the
 * stream and `resolve.ts` uses it to type events. Persisted through the `StateStore` port (one
 * row per entity, written at batch end when changed) so Function instances share what each learns.
 */
import { isStateConflictError } from '../errors';
import type { Principal } from '../normalize/types';
import type { InventoryEntity, InventoryKind, InventoryView, Logger, StateStore, StateWrite } from '../ports';
import { silentLogger, stateKeyId } from '../ports';
import { FIRST_PARTY_APP_IDS, isMicrosoftTenant } from './firstParty';

/** An entity as stored: the port's shape plus the event time of its last live/not-live change. */
export interface StoredEntity extends InventoryEntity {
  /** Event time (ms) of the record that set `live`; an older record never overrides a newer one. */
  liveAtMs?: number;
}

/** What a learner knows about an entity: any subset of its fields; `live` with the time it was learned. */
export interface EntityFacts extends Partial<Omit<InventoryEntity, 'kind' | 'owners'>> {
  kind: InventoryKind;
  owners?: string[];
  removedOwners?: string[];
  liveAtMs?: number;
}

export interface InventoryOptions {
  /** Persist entities here (Function, local runner). Without it the inventory lives in memory (replay, demo). */
  state?: StateStore;
  /** Extra first-party app ids (config `firstPartyAppIds`). */
  firstPartyAppIds?: Iterable<string>;
  logger?: Logger;
  /** Re-read entities other instances wrote when the last read is older than this. Optional; defaults to 5 minutes. */
  refreshIntervalMs?: number;
  now?: () => number;
}

export const INVENTORY_PARTITION = 'inventory';

/** Which entity a bare app id names when several kinds share it (a blueprint and its principal do). */
const APP_ID_PRECEDENCE: Readonly<Record<InventoryKind, number>> = {
  blueprint: 0,
  agentIdentity: 1,
  agentUser: 2,
  classicAgent: 3,
  blueprintPrincipal: 4,
};

export class Inventory implements InventoryView {
  private readonly byKey = new Map<string, StoredEntity>();
  private readonly byObjectId = new Map<string, StoredEntity[]>();
  private readonly byAppId = new Map<string, StoredEntity[]>();
  private readonly byParent = new Map<string, Set<StoredEntity>>();
  private readonly keyOf = new WeakMap<StoredEntity, string>();
  /** First event time of every id seen in any role; only agent entities are persisted (`firstSeenMs`). */
  private readonly firstSeenById = new Map<string, number>();
  /** App id → owner tenant, from sign-ins' appOwnerTenantId (any app, not only agents). */
  private readonly ownerTenantByAppId = new Map<string, string>();
  /** Owners learned for objects not (yet) known as agent entities, merged when they become known. */
  private readonly pendingOwners = new Map<string, Set<string>>();
  private readonly dirty = new Set<string>();
  private readonly etags = new Map<string, string>();
  private readonly firstParty: Set<string>;
  private readonly state: StateStore | undefined;
  private readonly logger: Logger;
  private readonly refreshIntervalMs: number;
  private readonly now: () => number;
  private lastLoadMs: number | undefined;

  constructor(options: InventoryOptions = {}) {
    this.state = options.state;
    this.logger = options.logger ?? silentLogger;
    this.refreshIntervalMs = options.refreshIntervalMs ?? 5 * 60_000;
    this.now = options.now ?? Date.now;
    this.firstParty = new Set(FIRST_PARTY_APP_IDS);
    for (const appId of options.firstPartyAppIds ?? []) this.firstParty.add(appId.toLowerCase());
  }

  // -------------------------------------------------------------------------------------------
  // InventoryView

  lookup(id: string): InventoryEntity | undefined {
    // Ids are stored lower-cased and normalized events carry them so: try as given before copying.
    return this.lookupExact(id) ?? (/[A-Z]/.test(id) ? this.lookupExact(id.toLowerCase()) : undefined);
  }

  private lookupExact(key: string): StoredEntity | undefined {
    const byObject = this.byObjectId.get(key);
    if (byObject?.length) return byObject.length === 1 ? byObject[0] : preferred(byObject);
    const byApp = this.byAppId.get(key);
    return byApp?.length ? preferred(byApp) : undefined;
  }

  blueprintPrincipal(blueprintId: string): InventoryEntity | undefined {
    const blueprint = this.lookup(blueprintId);
    const appId = blueprint?.appId ?? blueprintId.toLowerCase();
    return this.byAppId.get(appId)?.find((entity) => entity.kind === 'blueprintPrincipal');
  }

  children(parentId: string): InventoryEntity[] {
    const parent = this.lookup(parentId);
    // Children of a blueprint hang off its app id; a caller may name its object id instead.
    const anchor = parent?.kind === 'blueprint' || parent?.kind === 'blueprintPrincipal' ? (parent.appId ?? parentId) : (parent?.id ?? parentId);
    const set = this.byParent.get(anchor.toLowerCase());
    if (!set) return [];
    const out: InventoryEntity[] = [];
    for (const child of set) if (child.live && child.kind !== 'blueprintPrincipal') out.push(child);
    return out;
  }

  firstSeen(id: string): number | undefined {
    // Asked once per event by the history-based detections: no candidate array.
    const key = ASCII_CAPITAL.test(id) ? id.toLowerCase() : id;
    const entity = this.lookup(key);
    let earliest = this.firstSeenById.get(key);
    if (entity) {
      earliest = earlier(earliest, entity.firstSeenMs);
      if (entity.id) earliest = earlier(earliest, this.firstSeenById.get(entity.id));
      if (entity.appId) earliest = earlier(earliest, this.firstSeenById.get(entity.appId));
    }
    return earliest;
  }

  isFirstParty(principal: Pick<Principal, 'appId' | 'ownerTenantId'>): boolean {
    if (isMicrosoftTenant(principal.ownerTenantId)) return true;
    const appId = principal.appId?.toLowerCase();
    if (!appId) return false;
    if (this.firstParty.has(appId)) return true;
    if (isMicrosoftTenant(this.ownerTenantByAppId.get(appId))) return true;
    const entity = this.lookup(appId);
    return isMicrosoftTenant(entity?.ownerTenantId);
  }

  // -------------------------------------------------------------------------------------------
  // Learning

  /** Every entity, for inspection and the `--inventory` round trip. */
  entities(): InventoryEntity[] {
    return [...this.byKey.values()];
  }

  /** Notes that an id appeared at `timeMs`; returns nothing, only lowers first-seen times. */
  seen(id: string | undefined, timeMs: number): void {
    if (!id) return;
    const current = this.firstSeenById.get(id);
    if (current === undefined || timeMs < current) {
      this.firstSeenById.set(id, timeMs);
      for (const entity of this.entitiesFor(id)) {
        if (entity.firstSeenMs === undefined || timeMs < entity.firstSeenMs) {
          entity.firstSeenMs = timeMs;
          this.markDirty(entity);
        }
      }
    }
  }

  noteAppOwnerTenant(appId: string | undefined, ownerTenantId: string | undefined): void {
    if (appId && ownerTenantId && this.ownerTenantByAppId.get(appId) !== ownerTenantId) this.ownerTenantByAppId.set(appId, ownerTenantId);
  }

  /** Owners of an object that may not be known as an agent entity yet. */
  noteOwners(objectId: string, owners: string[], removed = false): void {
    const entities = this.entitiesFor(objectId);
    if (entities.length) {
      for (const entity of entities) this.upsert(removed ? { kind: entity.kind, id: entity.id, appId: entity.appId, removedOwners: owners } : { kind: entity.kind, id: entity.id, appId: entity.appId, owners });
      return;
    }
    let pending = this.pendingOwners.get(objectId);
    if (!pending) this.pendingOwners.set(objectId, (pending = new Set()));
    for (const owner of owners) {
      if (removed) pending.delete(owner);
      else pending.add(owner);
    }
  }

  /**
   * Merges facts into the entity of that kind matching by object id or app id, creating it when
   * none matches. Returns the entity.
   */
  upsert(facts: EntityFacts): InventoryEntity {
    const id = facts.id?.toLowerCase();
    const appId = facts.appId?.toLowerCase();
    let entity = this.find(facts.kind, id, appId);
    if (!entity) {
      entity = { kind: facts.kind, live: facts.live ?? true };
      if (id) entity.id = id;
      if (appId) entity.appId = appId;
      const key = `${facts.kind}:${appId ?? id ?? 'unknown'}`;
      this.byKey.set(key, entity);
      this.keyOf.set(entity, key);
      if (this.state) this.dirty.add(key);
      if (facts.liveAtMs !== undefined) entity.liveAtMs = facts.liveAtMs;
    } else if (facts.live !== undefined && facts.live !== entity.live && (facts.liveAtMs ?? 0) >= (entity.liveAtMs ?? 0)) {
      entity.live = facts.live;
      if (facts.liveAtMs !== undefined) entity.liveAtMs = facts.liveAtMs;
      this.markDirty(entity);
    } else if (facts.live !== undefined && facts.liveAtMs !== undefined && facts.live === entity.live && facts.liveAtMs > (entity.liveAtMs ?? 0)) {
      entity.liveAtMs = facts.liveAtMs;
    }
    this.applyFacts(entity, facts, id, appId);
    // The entity's ids may be new (just created, or gained here): take owners noted before it was
    // known, and the first-seen time of each id.
    this.adoptNotedFacts(entity, entity.id);
    this.adoptNotedFacts(entity, entity.appId);
    return entity;
  }

  private adoptNotedFacts(entity: StoredEntity, candidate: string | undefined): void {
    if (!candidate) return;
    // Owners are rarely waiting for an entity: skip the look-up when none are.
    const pending = this.pendingOwners.size === 0 ? undefined : this.pendingOwners.get(candidate);
    if (pending) {
      this.pendingOwners.delete(candidate);
      this.applyFacts(entity, { kind: entity.kind, owners: [...pending] });
    }
    const seen = this.firstSeenById.get(candidate);
    if (seen !== undefined && (entity.firstSeenMs === undefined || seen < entity.firstSeenMs)) {
      entity.firstSeenMs = seen;
      this.markDirty(entity);
    }
  }

  /** `id` / `appId` override the facts' own (upsert passes them lower-cased; no copy of `facts`). */
  private applyFacts(entity: StoredEntity, facts: EntityFacts, id = facts.id, appId = facts.appId): void {
    if (!this.indexed(entity)) this.index(entity);
    // Not short-circuited: every field is applied, `changed` collects whether any was new.
    let changed = this.setId(entity, 'id', id);
    changed = this.setId(entity, 'appId', appId) || changed;
    changed = setText(entity, 'name', facts.name) || changed;
    changed = setText(entity, 'upn', facts.upn?.toLowerCase()) || changed;
    changed = this.setParent(entity, facts.parentId?.toLowerCase()) || changed;
    changed = setText(entity, 'ownerTenantId', facts.ownerTenantId?.toLowerCase()) || changed;
    changed = setText(entity, 'createdByAppId', facts.createdByAppId?.toLowerCase()) || changed;
    if (facts.owners?.length || facts.removedOwners?.length) {
      const owners = new Set(entity.owners ?? []);
      const before = owners.size;
      for (const owner of facts.owners ?? []) owners.add(owner.toLowerCase());
      let removed = false;
      for (const owner of facts.removedOwners ?? []) removed = owners.delete(owner.toLowerCase()) || removed;
      if (owners.size !== before || removed) {
        entity.owners = [...owners];
        changed = true;
      }
    }
    if (facts.firstSeenMs !== undefined && (entity.firstSeenMs === undefined || facts.firstSeenMs < entity.firstSeenMs)) {
      entity.firstSeenMs = facts.firstSeenMs;
      changed = true;
    }
    if (changed) this.markDirty(entity);
  }

  /** Ids never change once known: only an unknown id is set (and indexed). */
  private setId(entity: StoredEntity, key: 'id' | 'appId', value: string | undefined): boolean {
    if (value === undefined || value === '' || entity[key] !== undefined) return false;
    this.unindex(entity);
    entity[key] = value;
    this.index(entity);
    return true;
  }

  /** Parents take the newest value; the entity moves to its new parent's children. */
  private setParent(entity: StoredEntity, value: string | undefined): boolean {
    if (value === undefined || value === '' || entity.parentId === value) return false;
    if (entity.parentId) this.byParent.get(entity.parentId)?.delete(entity);
    entity.parentId = value;
    this.addChild(entity);
    return true;
  }

  private find(kind: InventoryKind, id: string | undefined, appId: string | undefined): StoredEntity | undefined {
    // Object id first, then app id, then each id looked up in the other index.
    return (
      (id ? this.findIn(this.byObjectId.get(id), kind, id, appId) : undefined) ??
      (appId ? this.findIn(this.byAppId.get(appId), kind, id, appId) : undefined) ??
      (id ? this.findIn(this.byAppId.get(id), kind, id, appId) : undefined) ??
      (appId ? this.findIn(this.byObjectId.get(appId), kind, id, appId) : undefined)
    );
  }

  private findIn(candidates: StoredEntity[] | undefined, kind: InventoryKind, id: string | undefined, appId: string | undefined): StoredEntity | undefined {
    if (!candidates) return undefined;
    for (const entity of candidates) {
      if (entity.kind !== kind) continue;
      // A known object id must agree; an entity known only by app id may gain an object id.
      if (id && entity.id && entity.id !== id && !(kind === 'agentIdentity' && (entity.appId === id || entity.id === appId))) continue;
      return entity;
    }
    return undefined;
  }

  private entitiesFor(id: string): StoredEntity[] {
    const a = this.byObjectId.get(id) ?? [];
    const b = this.byAppId.get(id) ?? [];
    return b.length === 0 ? a : a.length === 0 ? b : [...new Set([...a, ...b])];
  }

  private indexedSet = new WeakSet<StoredEntity>();

  private indexed(entity: StoredEntity): boolean {
    return this.indexedSet.has(entity);
  }

  private index(entity: StoredEntity): void {
    if (entity.id) pushUnique(this.byObjectId, entity.id, entity);
    if (entity.appId) pushUnique(this.byAppId, entity.appId, entity);
    this.addChild(entity);
    this.indexedSet.add(entity);
  }

  private unindex(entity: StoredEntity): void {
    if (entity.id) removeFrom(this.byObjectId, entity.id, entity);
    if (entity.appId) removeFrom(this.byAppId, entity.appId, entity);
  }

  private addChild(entity: StoredEntity): void {
    if (!entity.parentId) return;
    let set = this.byParent.get(entity.parentId);
    if (!set) this.byParent.set(entity.parentId, (set = new Set()));
    set.add(entity);
  }

  private markDirty(entity: StoredEntity): void {
    if (!this.state) return;
    const key = this.keyOf.get(entity);
    if (key) this.dirty.add(key);
  }

  // -------------------------------------------------------------------------------------------
  // Persistence

  /** Reads every stored entity (at start, and again when older than the refresh interval). */
  async load(): Promise<number> {
    if (!this.state) return 0;
    const rows = await this.state.list<StoredEntity>(INVENTORY_PARTITION);
    for (const row of rows) this.absorb(row.key.row, row.value, row.etag);
    this.lastLoadMs = this.now();
    return rows.length;
  }

  /** Re-reads when the last read is stale, so entities other instances learned become visible. */
  async refreshIfStale(): Promise<void> {
    if (!this.state) return;
    if (this.lastLoadMs !== undefined && this.now() - this.lastLoadMs < this.refreshIntervalMs) return;
    await this.load();
  }

  private absorb(key: string, stored: StoredEntity, etag: string): void {
    let entity = this.byKey.get(key);
    if (!entity) {
      entity = { kind: stored.kind, live: stored.live };
      this.byKey.set(key, entity);
      this.keyOf.set(entity, key);
    }
    const wasDirty = this.dirty.has(key);
    if ((stored.liveAtMs ?? 0) > (entity.liveAtMs ?? 0) || (!wasDirty && entity.liveAtMs === undefined)) {
      entity.live = stored.live;
      if (stored.liveAtMs !== undefined) entity.liveAtMs = stored.liveAtMs;
    }
    const facts: EntityFacts = { kind: stored.kind };
    for (const field of ['id', 'appId', 'name', 'upn', 'parentId', 'ownerTenantId', 'createdByAppId', 'firstSeenMs'] as const) {
      if (stored[field] !== undefined) (facts as unknown as Record<string, unknown>)[field] = stored[field];
    }
    if (stored.owners) facts.owners = stored.owners;
    this.applyFacts(entity, facts);
    this.etags.set(key, etag);
    if (!wasDirty) this.dirty.delete(key);
  }

  /**
   * Writes the entities changed since the last flush. A row another instance changed meanwhile is
   * re-read, merged (owners unioned, earliest first-seen kept, the newer live change wins) and
   * written again.
   */
  async flush(): Promise<number> {
    if (!this.state || this.dirty.size === 0) return 0;
    let written = 0;
    for (let attempt = 0; attempt < 4 && this.dirty.size > 0; attempt++) {
      const keys = [...this.dirty];
      const writes: StateWrite[] = keys.map((row) => {
        const write: StateWrite = { op: 'put', key: { partition: INVENTORY_PARTITION, row }, value: toStored(this.byKey.get(row)!) };
        const etag = this.etags.get(row);
        if (etag !== undefined) write.ifMatch = etag;
        return write;
      });
      try {
        const etags = await this.state.commit(writes);
        for (const row of keys) {
          const etag = etags.get(stateKeyId({ partition: INVENTORY_PARTITION, row }));
          if (etag !== undefined) this.etags.set(row, etag);
          this.dirty.delete(row);
        }
        written += keys.length;
      } catch (error) {
        if (!isStateConflictError(error)) throw error;
        const conflicted = new Set(error.keys.filter((k) => k.partition === INVENTORY_PARTITION).map((k) => k.row));
        // Writes of the other keys went through (the port applies non-conflicting partitions; ours is one partition, so nothing did).
        for (const row of conflicted) {
          const current = await this.state.get<StoredEntity>({ partition: INVENTORY_PARTITION, row });
          if (current) this.absorb(row, current.value, current.etag);
          else this.etags.delete(row);
          this.dirty.add(row);
        }
        this.logger.log('debug', 'inventory write conflict, merged and retrying', { keys: conflicted.size, attempt });
      }
    }
    if (this.dirty.size > 0) this.logger.log('warn', 'inventory entities still conflicting after retries; kept in memory for the next batch', { keys: this.dirty.size });
    return written;
  }
}

/** Names and other descriptive fields take the newest non-empty value. */
function setText(entity: StoredEntity, key: 'name' | 'upn' | 'ownerTenantId' | 'createdByAppId', value: string | undefined): boolean {
  if (value === undefined || value === '' || entity[key] === value) return false;
  entity[key] = value;
  return true;
}

function toStored(entity: StoredEntity): StoredEntity {
  const out: StoredEntity = { kind: entity.kind, live: entity.live };
  for (const field of ['id', 'appId', 'name', 'upn', 'parentId', 'ownerTenantId', 'owners', 'firstSeenMs', 'createdByAppId', 'liveAtMs'] as const) {
    if (entity[field] !== undefined) (out as unknown as Record<string, unknown>)[field] = entity[field];
  }
  return out;
}

function preferred(entities: StoredEntity[]): StoredEntity {
  let best = entities[0]!;
  for (const e of entities) if (APP_ID_PRECEDENCE[e.kind] < APP_ID_PRECEDENCE[best.kind]) best = e;
  return best;
}

function pushUnique(map: Map<string, StoredEntity[]>, key: string, entity: StoredEntity): void {
  const list = map.get(key);
  if (!list) map.set(key, [entity]);
  else if (!list.includes(entity)) list.push(entity);
}

function removeFrom(map: Map<string, StoredEntity[]>, key: string, entity: StoredEntity): void {
  const list = map.get(key);
  if (!list) return;
  const i = list.indexOf(entity);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) map.delete(key);
}

const ASCII_CAPITAL = /[A-Z]/;

function earlier(a: number | undefined, b: number | undefined): number | undefined {
  if (typeof b !== 'number') return a;
  return a === undefined || b < a ? b : a;
}
