/**
 * `--inventory FILE`: agent entities known before the stream shows them, validated against
 * `schemas/inventory.schema.json`. Seeded entities carry no event time for their live flag, so a
 * deletion seen in the stream always wins over the seed.
 */
import { readFile } from 'node:fs/promises';
import Ajv from 'ajv';
import { ConfigError, type LocatedProblem } from '../errors';
import { parseEntraTime } from '../normalize/time';
import type { InventoryEntity } from '../ports';
import inventorySchema from '../../schemas/inventory.schema.json';
import type { EntityFacts, Inventory } from './store';

/** An inventory entity as a seed file writes it: `live` optional, `firstSeen` as ISO time or epoch ms. */
export interface InventorySeedEntity extends Omit<InventoryEntity, 'live' | 'firstSeenMs'> {
  live?: boolean;
  firstSeen?: string | number;
}

export interface InventorySeed {
  entities: InventorySeedEntity[];
  firstPartyAppIds: string[];
}

let validateSeed: ReturnType<Ajv['compile']> | undefined;

/** Validates a parsed seed document; every problem is reported with its JSON path. */
export function parseInventorySeed(document: unknown, file = 'inventory'): InventorySeed {
  validateSeed ??= new Ajv({ allErrors: true, allowUnionTypes: true, strictRequired: false }).compile(inventorySchema);
  if (!validateSeed(document)) {
    const problems: LocatedProblem[] = (validateSeed.errors ?? [])
      // oneOf reports both branches; the branch matching the document's shape is the useful one.
      .filter((e) => e.keyword !== 'oneOf' && (Array.isArray(document) ? !e.schemaPath.startsWith('#/oneOf/1') : !e.schemaPath.startsWith('#/oneOf/0')))
      .map((e) => ({ file, path: e.instancePath || '/', message: e.message ?? 'invalid' }));
    throw new ConfigError(problems.length ? problems : [{ file, path: '/', message: 'expected an array of entities or {"entities": [...]}' }]);
  }
  const doc = document as InventorySeedEntity[] | { entities: InventorySeedEntity[]; firstPartyAppIds?: string[] };
  return Array.isArray(doc) ? { entities: doc, firstPartyAppIds: [] } : { entities: doc.entities, firstPartyAppIds: doc.firstPartyAppIds ?? [] };
}

export async function readInventorySeed(path: string): Promise<InventorySeed> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError([{ file: path, path: '/', message: `cannot read inventory file: ${(error as Error).message}` }], { cause: error });
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new ConfigError([{ file: path, path: '/', message: `not JSON: ${(error as Error).message}` }], { cause: error });
  }
  return parseInventorySeed(document, path);
}

/** Adds seed entities to an inventory (after its stored state was loaded). */
export function seedInventory(inventory: Inventory, entities: readonly InventorySeedEntity[]): void {
  for (const seed of entities) {
    const facts: EntityFacts = { kind: seed.kind, live: seed.live ?? true };
    for (const field of ['id', 'appId', 'name', 'upn', 'parentId', 'ownerTenantId', 'createdByAppId'] as const) {
      if (seed[field] !== undefined) facts[field] = seed[field];
    }
    if (seed.owners) facts.owners = seed.owners;
    const firstSeenMs = seed.firstSeen === undefined ? undefined : parseEntraTime(seed.firstSeen);
    if (firstSeenMs !== undefined) facts.firstSeenMs = firstSeenMs;
    inventory.upsert(facts);
  }
}
