/**
 * App settings: the single list of every environment setting agentwatch reads. Bicep app settings,
 * `local.settings.sample.json` and the README are checked against `SETTINGS` by a test, so the
 * names cannot drift. Validation reports every missing or malformed setting at once.
 *
 * Detection tuning (parameters, response modes, protected principals, lists) lives in the config
 * *file* (`--config FILE` or `AGENTWATCH_CONFIG`), validated by `schemas/config.schema.json`.
 */
import { ConfigError, type LocatedProblem } from './errors';

export type SettingKind = 'string' | 'url' | 'duration' | 'enum' | 'int' | 'bool';

export interface SettingDefinition {
  name: string;
  kind: SettingKind;
  description: string;
  /** Optional; when absent the setting is required in the host modes listed in `requiredIn`. */
  default?: string;
  values?: readonly string[];
  /** Hosts in which the setting must be present (after defaults). */
  requiredIn?: readonly HostMode[];
  /** Deployment-only settings consumed by the Functions host, not by our code (kept here so names stay in one list). */
  hostOnly?: boolean;
  /** Read only by the self-hosted consumer / local development; never set in the Azure app settings. */
  localOnly?: boolean;
}

/** function = Azure Functions; local = `npm run local` consumer; replay/demo = CLI, in memory. */
export type HostMode = 'function' | 'local' | 'replay';

export const SETTINGS = [
  // Event Hubs input (Functions binding connection prefix; identity-based in Azure)
  { name: 'EntraLogsEventHub__fullyQualifiedNamespace', kind: 'string', hostOnly: true, requiredIn: ['function'], description: 'Event Hubs namespace host (<ns>.servicebus.windows.net) the trigger reads with the Function identity.' },
  { name: 'ENTRA_HUB', kind: 'string', default: 'entra-logs', description: 'Event hub the Entra diagnostic setting streams to.' },
  { name: 'ENTRA_CONSUMER_GROUP', kind: 'string', default: 'agentwatch', description: 'Consumer group agentwatch reads with.' },
  { name: 'AGENTWATCH_EVENTHUB_CONNECTION_STRING', kind: 'string', localOnly: true, description: 'Local runner only: an Event Hubs connection string (instead of namespace + credential).' },
  { name: 'AGENTWATCH_CHECKPOINT_TABLE', kind: 'string', localOnly: true, default: 'agentwatchcheckpoints', description: 'Local runner only: table (state account) holding Event Hubs partition ownership and checkpoints.' },
  { name: 'AGENTWATCH_EVENTHUB_NAMESPACE', kind: 'string', localOnly: true, description: 'Local runner only: fully qualified namespace, used with DefaultAzureCredential.' },
  // State
  { name: 'AGENTWATCH_STATE_TABLE_ENDPOINT', kind: 'url', requiredIn: ['function'], description: 'Table service endpoint (https://<account>.table.core.windows.net) for detection state, with the app identity.' },
  { name: 'AGENTWATCH_STATE_CONNECTION_STRING', kind: 'string', localOnly: true, description: 'Local development: a Table Storage connection string (Azurite) instead of the endpoint + identity.' },
  { name: 'AGENTWATCH_STATE_TABLE', kind: 'string', default: 'agentwatchstate', description: 'Table holding windows, first-seen sets, inventory, dedup, outbox and action log.' },
  { name: 'AGENTWATCH_DEADLETTER_TABLE', kind: 'string', default: 'agentwatchdeadletters', description: 'Table (same account as the state table) receiving records and alerts that could not be processed, partitioned by day.' },
  // Sentinel
  { name: 'AGENTWATCH_SENTINEL_ENDPOINT', kind: 'url', description: 'Logs Ingestion endpoint of the data collection rule (or DCE). Unset = alerts are not sent to Sentinel.' },
  { name: 'AGENTWATCH_SENTINEL_DCR_ID', kind: 'string', description: 'Immutable id (dcr-…) of the data collection rule.' },
  { name: 'AGENTWATCH_SENTINEL_STREAM', kind: 'string', default: 'Custom-AgentwatchAlerts_CL', description: 'DCR stream name for alerts.' },
  // Optional alert Event Hub for other SIEMs
  { name: 'AGENTWATCH_ALERTS_EVENTHUB_NAMESPACE', kind: 'string', description: 'Optional: namespace of an Event Hub that also receives every alert.' },
  { name: 'AGENTWATCH_ALERTS_HUB', kind: 'string', default: 'agentwatch-alerts', description: 'Event hub name for the optional alert stream.' },
  // Graph
  { name: 'AGENTWATCH_GRAPH_BASE_URL', kind: 'url', default: 'https://graph.microsoft.com', description: 'Microsoft Graph base URL (national clouds, tests).' },
  { name: 'AGENTWATCH_RESPONSE_MODE', kind: 'enum', values: ['off', 'dryRun', 'approval', 'auto'], default: 'dryRun', description: 'Global ceiling on response actions; a detection can be stricter, never looser.' },
  { name: 'AGENTWATCH_INVENTORY_SCHEDULE', kind: 'string', default: '0 */30 * * * *', description: 'NCRONTAB schedule of the Graph inventory and AgentsInfo pull.' },
  // Engine
  { name: 'AGENTWATCH_LATENESS', kind: 'duration', default: '15m', description: 'How far behind the newest event time of its key an event may arrive and still land in its window.' },
  { name: 'AGENTWATCH_CONFIG', kind: 'string', description: 'Path of the YAML/JSON config file (detection parameters, exceptions, response modes, protected principals, lists).' },
  // Identity
  { name: 'AZURE_CLIENT_ID', kind: 'string', description: 'Client id of a user-assigned managed identity; unset = system-assigned.' },
  // Host
  { name: 'AzureWebJobsStorage__accountName', kind: 'string', hostOnly: true, requiredIn: ['function'], description: 'Host storage account (checkpoints, leases, timers) used with the Function identity.' },
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', kind: 'string', hostOnly: true, description: 'Application Insights for the Function App.' },
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', kind: 'string', hostOnly: true, description: 'Authorization=AAD: Application Insights telemetry with the Function identity (local auth is off).' },
  { name: 'FUNCTIONS_WORKER_RUNTIME', kind: 'string', hostOnly: true, localOnly: true, description: 'Local Functions host only (node); Flex Consumption sets the runtime in the site config instead.' },
  { name: 'FUNCTIONS_EXTENSION_VERSION', kind: 'string', hostOnly: true, description: 'Functions runtime version (~4).' },
  {
    name: 'languageWorkers__node__arguments',
    kind: 'string',
    hostOnly: true,
    description: 'Node worker flags: --max-semi-space-size=64 gives V8 a young generation that holds a whole Event Hubs batch (the figures of npm run bench are measured with it).',
  },
] as const satisfies readonly SettingDefinition[];

export type SettingName = (typeof SETTINGS)[number]['name'];

export const SETTING_NAMES: readonly SettingName[] = SETTINGS.map((s) => s.name);

/** Parses `90d`, `60m`, `10s`, `24h`, `500ms` (or a bare number of ms). Throws on anything else. */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!match) throw new Error(`expected a duration like "15m", "24h" or "7d", got ${JSON.stringify(text)}`);
  const value = Number(match[1]);
  const unit = match[2] ?? 'ms';
  const factor = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit] ?? 1;
  return value * factor;
}

export type Settings = Partial<Record<SettingName, string>>;

/**
 * Reads and validates the settings a host needs. Every problem is reported together, naming the
 * setting and what was expected. Values are returned as strings (defaults applied); parse with
 * `parseDuration` etc. where used.
 */
export function loadSettings(env: NodeJS.ProcessEnv, mode: HostMode): Settings {
  const problems: LocatedProblem[] = [];
  const out: Settings = {};
  for (const def of SETTINGS as readonly SettingDefinition[]) {
    const raw = env[def.name]?.trim();
    const value = raw === undefined || raw === '' ? def.default : raw;
    if (value === undefined) {
      if (def.requiredIn?.includes(mode)) problems.push({ file: 'environment', path: def.name, message: `missing: ${def.description}` });
      continue;
    }
    const problem = checkSetting(def, value);
    if (problem) problems.push({ file: 'environment', path: def.name, message: problem });
    else out[def.name as SettingName] = value;
  }
  if (mode === 'function' || mode === 'local') {
    const sentinel = ['AGENTWATCH_SENTINEL_ENDPOINT', 'AGENTWATCH_SENTINEL_DCR_ID'] as const;
    const present = sentinel.filter((n) => out[n] !== undefined);
    if (present.length === 1) {
      const missing = sentinel.find((n) => out[n] === undefined)!;
      problems.push({ file: 'environment', path: missing, message: `missing: required together with ${present[0]} to send alerts to Sentinel` });
    }
  }
  if (mode === 'local' && !out.AGENTWATCH_EVENTHUB_CONNECTION_STRING && !out.AGENTWATCH_EVENTHUB_NAMESPACE) {
    problems.push({ file: 'environment', path: 'AGENTWATCH_EVENTHUB_CONNECTION_STRING', message: 'missing: set it, or AGENTWATCH_EVENTHUB_NAMESPACE, for the local consumer' });
  }
  if (mode === 'local' && !out.AGENTWATCH_STATE_CONNECTION_STRING && !out.AGENTWATCH_STATE_TABLE_ENDPOINT) {
    problems.push({ file: 'environment', path: 'AGENTWATCH_STATE_CONNECTION_STRING', message: 'missing: set it (Azurite), or AGENTWATCH_STATE_TABLE_ENDPOINT with an identity, for the local consumer\'s state and checkpoints' });
  }
  if (problems.length) throw new ConfigError(problems);
  return out;
}

function checkSetting(def: SettingDefinition, value: string): string | undefined {
  switch (def.kind) {
    case 'url':
      try {
        const url = new URL(value);
        if (url.protocol !== 'https:' && url.protocol !== 'http:') return `expected an http(s) URL, got ${JSON.stringify(value)}`;
      } catch {
        return `expected a URL, got ${JSON.stringify(value)}`;
      }
      return undefined;
    case 'duration':
      try {
        parseDuration(value);
        return undefined;
      } catch (error) {
        return (error as Error).message;
      }
    case 'enum':
      return def.values?.includes(value) ? undefined : `expected one of ${def.values?.join(' | ')}, got ${JSON.stringify(value)}`;
    case 'int':
      return /^-?\d+$/.test(value) ? undefined : `expected a whole number, got ${JSON.stringify(value)}`;
    case 'bool':
      return /^(true|false)$/i.test(value) ? undefined : `expected true or false, got ${JSON.stringify(value)}`;
    default:
      return undefined;
  }
}
