/**
 * One list of app settings (`SETTINGS` in src/config.ts); the Bicep app settings, the local
 * settings sample, the Functions binding expressions, the code and the deploy docs are checked
 * against it, so a name cannot drift in one place only. And start-up validation names every
 * missing or malformed setting at once.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SETTINGS, SETTING_NAMES, loadSettings, type SettingDefinition } from '../../src/config';
import { isConfigError, type ConfigError } from '../../src/errors';
import { appSettingNames, bicepFilesUnder, parseBicep, readRepoFile } from '../support/bicepParser';

const repoRoot = join(__dirname, '..', '..');
const definitions = SETTINGS as readonly SettingDefinition[];
const byName = new Map(definitions.map((definition) => [definition.name, definition]));
const requiredInFunction = definitions.filter((definition) => definition.requiredIn?.includes('function')).map((definition) => definition.name);
const localOnly = definitions.filter((definition) => definition.localOnly).map((definition) => definition.name);
const sample = (JSON.parse(readRepoFile('local.settings.sample.json')) as { Values: Record<string, string> }).Values;

/** Settings the infrastructure itself produces values for: main.bicep must pass them on. */
const DEPLOYED_BY_INFRA = [
  'AGENTWATCH_SENTINEL_ENDPOINT',
  'AGENTWATCH_SENTINEL_DCR_ID',
  'AGENTWATCH_SENTINEL_STREAM',
  'APPLICATIONINSIGHTS_CONNECTION_STRING',
  'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
  'AGENTWATCH_STATE_TABLE',
  'AGENTWATCH_DEADLETTER_TABLE',
];

let bicepSettings: string[] = [];

beforeAll(async () => {
  const names = new Set<string>();
  for (const file of bicepFilesUnder('infra')) for (const name of appSettingNames((await parseBicep(readRepoFile(file))).root)) names.add(name);
  bicepSettings = [...names].sort();
});

function sourceFiles(folder: string): string[] {
  const found: string[] = [];
  const walk = (directory: string) => {
    for (const entry of readdirSync(directory)) {
      const path = join(directory, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (path.endsWith('.ts')) found.push(path);
    }
  };
  walk(join(repoRoot, folder));
  return found;
}

/** `%SETTING%` binding expressions and `connection:` prefixes used by the registrations. */
function bindingReferences(): { expressions: string[]; connections: string[] } {
  const text = sourceFiles('functions').map((file) => readFileSync(file, 'utf8')).join('\n');
  return {
    expressions: [...new Set([...text.matchAll(/'%([A-Za-z0-9_]+)%'/g)].map((match) => match[1]!))].sort(),
    connections: [...new Set([...text.matchAll(/connection: '([A-Za-z0-9_]+)'/g)].map((match) => match[1]!))].sort(),
  };
}

function configErrorOf(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (isConfigError(error)) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('app setting names agree', () => {
  it('Bicep sets only settings the code declares', () => {
    expect(bicepSettings.length).toBeGreaterThan(5);
    expect(bicepSettings.filter((name) => !byName.has(name))).toEqual([]);
  });

  it('the Function runs with the young generation the bench measures with', () => {
    const tuned = /TUNED_HEAP_FLAG = '([^']+)'/.exec(readRepoFile('bench/run.ts'))?.[1];
    expect(tuned).toMatch(/^--max-semi-space-size=\d+$/);
    expect(readRepoFile('infra/main.bicep')).toContain(`languageWorkers__node__arguments: '${tuned}'`);
  });

  it('Bicep never sets local-only settings, nor the runtime settings Flex Consumption rejects', () => {
    expect(bicepSettings.filter((name) => localOnly.includes(name))).toEqual([]);
    expect(bicepSettings).not.toContain('FUNCTIONS_WORKER_RUNTIME');
    expect(bicepSettings).not.toContain('FUNCTIONS_EXTENSION_VERSION');
  });

  it('Bicep sets every setting required in Azure, and every value the infrastructure produces', () => {
    expect(requiredInFunction.length).toBeGreaterThan(0);
    expect([...requiredInFunction, ...DEPLOYED_BY_INFRA].filter((name) => !bicepSettings.includes(name))).toEqual([]);
  });

  it('every binding expression and connection resolves from an app setting set in Bicep and in the sample', () => {
    // The host resolves %X% itself: our defaults do not apply there, so the setting must exist.
    const { expressions, connections } = bindingReferences();
    expect(expressions).toEqual(expect.arrayContaining(['ENTRA_HUB', 'ENTRA_CONSUMER_GROUP', 'AGENTWATCH_INVENTORY_SCHEDULE']));
    const needed = [...expressions, ...connections.map((prefix) => `${prefix}__fullyQualifiedNamespace`)];
    expect(needed.filter((name) => !byName.has(name))).toEqual([]);
    expect(needed.filter((name) => !bicepSettings.includes(name))).toEqual([]);
    expect(needed.filter((name) => !(name in sample))).toEqual([]);
  });

  it('local.settings.sample.json uses only declared names and passes start-up validation', () => {
    expect(Object.keys(sample).filter((name) => !byName.has(name))).toEqual([]);
    expect(requiredInFunction.filter((name) => !(name in sample))).toEqual([]);
    expect(() => loadSettings(sample, 'function')).not.toThrow();
  });

  it('the sample uses identity-based connections, not secrets', () => {
    expect(sample.EntraLogsEventHub__fullyQualifiedNamespace).toMatch(/\.servicebus\.windows\.net$/);
    const secretLike = Object.entries(sample).filter(([, value]) => /SharedAccessKey=|AccountKey=/i.test(value));
    expect(secretLike).toEqual([]);
  });

  it('the code reads no setting outside SETTINGS', () => {
    const used = new Set<string>();
    for (const file of [...sourceFiles('src'), ...sourceFiles('functions')]) {
      if (file.endsWith(join('src', 'config.ts'))) continue;
      // Reads look like `env.NAME`, `settings.NAME`, `env['NAME']` or `settings?.NAME`.
      for (const match of readFileSync(file, 'utf8').matchAll(/\b(?:env|settings|Settings)\??\.?(?:\.|\[')([A-Za-z][A-Za-z0-9_]*_[A-Za-z0-9_]+)/g)) used.add(match[1]!);
    }
    expect(used.size).toBeGreaterThan(5);
    const undeclared = [...used].filter((name) => !byName.has(name)).sort();
    expect(undeclared).toEqual([]);
  });

  it('docs/deploy.md lists every setting', () => {
    const deployDoc = readRepoFile('docs/deploy.md');
    expect(SETTING_NAMES.filter((name) => !deployDoc.includes(`\`${name}\``))).toEqual([]);
  });

  it('names each setting once', () => {
    expect(new Set(SETTING_NAMES).size).toBe(SETTING_NAMES.length);
  });
});

describe('start-up validation', () => {
  it('names every setting missing in Azure, all at once', () => {
    const error = configErrorOf(() => loadSettings({}, 'function'));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.problems.map((problem) => problem.path).sort()).toEqual([...requiredInFunction].sort());
    for (const name of requiredInFunction) expect(error.message).toContain(name);
    expect(error.problems.every((problem) => problem.message.startsWith('missing:'))).toBe(true);
  });

  it('reports malformed and missing settings together, each with what was expected', () => {
    const error = configErrorOf(() =>
      loadSettings(
        {
          AGENTWATCH_STATE_TABLE_ENDPOINT: 'table.core.windows.net',
          AGENTWATCH_LATENESS: 'a while',
          AGENTWATCH_RESPONSE_MODE: 'yolo',
          AGENTWATCH_SENTINEL_ENDPOINT: 'https://dcr-1.westeurope-1.ingest.monitor.azure.com',
          AzureWebJobsStorage__accountName: 'stagentwatch',
        },
        'function',
      ),
    );
    const byPath = Object.fromEntries(error.problems.map((problem) => [problem.path, problem.message]));
    expect(Object.keys(byPath).sort()).toEqual(
      ['AGENTWATCH_LATENESS', 'AGENTWATCH_RESPONSE_MODE', 'AGENTWATCH_SENTINEL_DCR_ID', 'AGENTWATCH_STATE_TABLE_ENDPOINT', 'EntraLogsEventHub__fullyQualifiedNamespace'].sort(),
    );
    expect(byPath.AGENTWATCH_STATE_TABLE_ENDPOINT).toMatch(/expected a URL/);
    expect(byPath.AGENTWATCH_LATENESS).toMatch(/duration/);
    expect(byPath.AGENTWATCH_RESPONSE_MODE).toMatch(/off \| dryRun \| approval \| auto/);
    expect(byPath.AGENTWATCH_SENTINEL_DCR_ID).toMatch(/AGENTWATCH_SENTINEL_ENDPOINT/);
  });

  it('asks the local consumer for an Event Hubs connection string or namespace, and for its state store, together', () => {
    const error = configErrorOf(() => loadSettings({}, 'local'));
    expect(error.problems.map((problem) => problem.path)).toEqual(['AGENTWATCH_EVENTHUB_CONNECTION_STRING', 'AGENTWATCH_STATE_CONNECTION_STRING']);
    expect(error.message).toContain('AGENTWATCH_EVENTHUB_NAMESPACE');
    expect(error.message).toContain('AGENTWATCH_STATE_TABLE_ENDPOINT');
    expect(loadSettings({ AGENTWATCH_EVENTHUB_NAMESPACE: 'contoso.servicebus.windows.net', AGENTWATCH_STATE_TABLE_ENDPOINT: 'https://contoso.table.core.windows.net' }, 'local')).toMatchObject({
      ENTRA_HUB: 'entra-logs',
      ENTRA_CONSUMER_GROUP: 'agentwatch',
      AGENTWATCH_CHECKPOINT_TABLE: 'agentwatchcheckpoints',
    });
  });
});
