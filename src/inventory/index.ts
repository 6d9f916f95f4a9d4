/**
 * Inventory stage: the agent entities learned from the stream (or seeded), the `InventoryView`
 * detections query, and the resolve step that types events from it.
 */
import type { AgentEvent } from '../normalize/types';
import { learnFromEvent } from './learn';
import { resolveEvent } from './resolve';
import type { Inventory } from './store';

export { Inventory, INVENTORY_PARTITION, type EntityFacts, type InventoryOptions, type StoredEntity } from './store';
export { FIRST_PARTY_APP_IDS, isMicrosoftTenant } from './firstParty';
export { parseInventorySeed, readInventorySeed, seedInventory, type InventorySeed, type InventorySeedEntity } from './seed';
export { learnFromEvent } from './learn';
export { resolveEvent } from './resolve';

/**
 * Observe-then-resolve, one event at a time in the order given (the pipeline sorts by event time),
 * so an entity created earlier in the batch is known to the events after it.
 */
export function observeAndResolve(inventory: Inventory, events: readonly AgentEvent[]): void {
  for (const event of events) {
    learnFromEvent(inventory, event);
    resolveEvent(inventory, event);
  }
}
