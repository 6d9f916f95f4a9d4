/** The responder's settings, read from the config file (+ the global ceiling) in one place for every host. */
import type { ResponseMode } from '../alerts/types';
import type { EngineConfig } from '../engine';
import type { ResponseConfig } from './types';

/**
 * Maps the config file onto `ResponseConfig`: `response.mode` / `.protected` / `.caps`, per-detection
 * `response.mode` overrides (opt-in, still capped by the ceilings), and the lists that extend the
 * guards (`lists.protectedPrincipals`, `lists.firstPartyAppIds`, `lists.microsoftTenantIds`).
 * `globalMode` is the ceiling: `AGENTWATCH_RESPONSE_MODE` in the hosts, always `dryRun` in replay.
 */
export function responseConfigFromFile(engineConfig: EngineConfig | undefined, globalMode: ResponseMode | undefined): ResponseConfig {
  const config: ResponseConfig = {};
  if (globalMode) config.globalMode = globalMode;
  const fileResponse = engineConfig?.response;
  if (fileResponse?.mode) config.fileMode = fileResponse.mode;
  const protectedIds = [...(fileResponse?.protected ?? []), ...listOf(engineConfig, 'protectedPrincipals')];
  if (protectedIds.length) config.protected = protectedIds;
  if (fileResponse?.caps) config.caps = fileResponse.caps;
  const detectionModes: NonNullable<ResponseConfig['detectionModes']> = {};
  for (const [detectionId, tuning] of Object.entries(engineConfig?.detections ?? {})) {
    if (tuning.response?.mode) detectionModes[detectionId] = tuning.response.mode;
  }
  if (Object.keys(detectionModes).length) config.detectionModes = detectionModes;
  const firstPartyAppIds = listOf(engineConfig, 'firstPartyAppIds');
  if (firstPartyAppIds.length) config.firstPartyAppIds = firstPartyAppIds;
  const firstPartyTenantIds = listOf(engineConfig, 'microsoftTenantIds');
  if (firstPartyTenantIds.length) config.firstPartyTenantIds = firstPartyTenantIds;
  return config;
}

function listOf(engineConfig: EngineConfig | undefined, name: string): string[] {
  return (engineConfig?.lists?.[name] ?? []).map(String);
}
