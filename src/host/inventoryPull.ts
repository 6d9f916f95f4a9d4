/** Binds the Graph inventory pull to a host: AgentsInfo rows into the pipeline, entities into the inventory. */
import { pullAgentInventory, type InventoryPullSummary } from '../inventory/graphSource';
import type { Logger } from '../ports';
import type { AgentwatchHost } from './compose';

export async function pullInventoryInto(host: Pick<AgentwatchHost, 'app' | 'graph'>, logger: Logger): Promise<InventoryPullSummary> {
  return pullAgentInventory({
    graph: host.graph,
    logger,
    feed: (bodies) => host.app.processBatch(bodies, { source: 'graph:AgentsInfo' }),
    upsertEntities: async (entities) => {
      for (const entity of entities) host.app.inventory.upsert(entity);
      await host.app.inventory.flush();
    },
  });
}
