/** Binds the Graph inventory pull to a host: AgentsInfo rows into the pipeline, entities into the inventory. */
import { pullAgentInventoryInto, type InventoryPullSummary } from '../inventory/graphSource';
import type { Logger } from '../ports';
import type { AgentwatchHost } from './compose';

export async function pullInventoryInto(host: Pick<AgentwatchHost, 'app' | 'graph'>, logger: Logger): Promise<InventoryPullSummary> {
  return pullAgentInventoryInto(host.app, host.graph, { logger });
}
