/**
 * The hosts: composition from app settings (`createHost`), the Function's per-instance host
 * (`azureHost`), the self-hosted Event Hubs consumer (`runLocalConsumer`), and the batch handler
 * both share. Functions import the modules they need directly, so a timer does not load the
 * Event Hubs client.
 */
export { createHost, responseConfigOf, type AgentwatchHost, type HostOptions } from './compose';
export { azureHost } from './azure';
export { handleEntraLogs, type EntraLogsInvocation, type EntraLogsTarget } from './entraLogsHandler';
export { runLocalConsumer, type LocalConsumerOptions, type LocalRunReport } from './local';
export { TableCheckpointStore, checkpointPartition } from './tableCheckpointStore';
export { NdjsonFileUploader } from './ndjsonFileUploader';
export { batchMetaFromTrigger, utcIso, type EventHubTriggerMetadata } from './triggerMetadata';
export { invocationScopedLogger, jsonLinesLogger, withInvocationLog, withLogger } from './logging';
export { pullInventoryInto } from './inventoryPull';
