/**
 * Writes `infra/sentinel/alert-columns.json` — the column list of the Sentinel custom table
 * `AgentwatchAlerts_CL` and of its DCR stream declaration, which `infra/modules/sentinel.bicep`
 * loads with `loadJsonContent()` — from `schemas/alert.schema.json`, through the same code that
 * maps alerts to rows (`src/alerts/rows.ts`), so the table, the DCR and the rows cannot drift.
 *
 *   npm run build && node dist/scripts/gen-sentinel-columns.js           # rewrite the file
 *   npm run build && node dist/scripts/gen-sentinel-columns.js --check   # exit 1 if it is stale
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { renderSentinelColumnsJson } from '../src/alerts/rows';

export const SENTINEL_COLUMNS_FILE = join('infra', 'sentinel', 'alert-columns.json');

/** The repository root: the nearest folder above this file holding package.json (works from scripts/ and dist/scripts/). */
export function repoRoot(from: string = __dirname): string {
  let folder = from;
  while (!existsSync(join(folder, 'package.json'))) {
    const parent = dirname(folder);
    if (parent === folder) throw new Error(`no package.json above ${from}`);
    folder = parent;
  }
  return folder;
}

export function main(argv: string[], root: string = repoRoot()): number {
  const target = join(root, SENTINEL_COLUMNS_FILE);
  const expected = renderSentinelColumnsJson();
  const current = existsSync(target) ? readFileSync(target, 'utf8') : undefined;
  const shown = relative(process.cwd(), target) || target;
  if (argv.includes('--check')) {
    if (current === expected) return 0;
    process.stderr.write(`${shown} is stale: run \`npm run build && node dist/scripts/gen-sentinel-columns.js\` and commit the result\n`);
    return 1;
  }
  if (current !== expected) writeFileSync(target, expected);
  process.stdout.write(`${shown}: ${current === expected ? 'up to date' : 'written'}\n`);
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
