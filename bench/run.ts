/**
 * `npm run bench` (→ `node --expose-gc dist/bench/run.js [section...] [--records N]`): runs each
 * benchmark section in turn and prints its figures. Sections are modules beside this file; one
 * that is not there (not written yet) is skipped with a note.
 *
 * A section module exports either `section: { name, run(context) }` (see `BenchSection` in
 * `./ingest`) or a function `run<Name>Bench(context)`; `context` gives the record count to
 * generate, `log` and `gc`. `generateEntraBodies` in `./ingest` makes the shared realistic stream.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext } from './ingest';

/**
 * The pipeline holds a whole Event Hubs batch (100 messages, a few thousand records) while it
 * evaluates it; with V8's default young generation (16 MB semi-spaces) every scavenge during a
 * batch copies that batch, and GC becomes most of the cost. The Function runs with a larger young
 * generation (app setting `languageWorkers__node__arguments=--max-semi-space-size=64`), so the
 * bench measures under the same flag: it re-runs itself with it unless `--default-heap` is given.
 */
const TUNED_HEAP_FLAG = '--max-semi-space-size=64';

/** Sections in run order: `module` is the file name without extension, `runner` the fallback export. */
const SECTIONS = [
  { name: 'ingest', module: 'ingest', runner: 'runIngestBench' },
  { name: 'engine', module: 'engine', runner: 'runEngineBench' },
  { name: 'state', module: 'state', runner: 'runStateBench' },
] as const;

type Runner = (context: BenchContext) => Promise<unknown> | unknown;

function resolveRunner(mod: Record<string, unknown>, fallback: string): Runner | undefined {
  const section = mod.section as { run?: Runner } | undefined;
  if (section && typeof section.run === 'function') return section.run.bind(section);
  if (typeof mod[fallback] === 'function') return mod[fallback] as Runner;
  if (typeof mod.default === 'function') return mod.default as Runner;
  return undefined;
}

function parseArgs(argv: string[]): { only: Set<string>; records: number } {
  const only = new Set<string>();
  let records = 100_000;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--records') records = Number(argv[++i]);
    else if (arg.startsWith('--records=')) records = Number(arg.slice('--records='.length));
    else only.add(arg);
  }
  if (!Number.isFinite(records) || records < 1) throw new Error('--records needs a positive number');
  return { only, records };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const defaultHeap = argv.includes('--default-heap');
  const tuned = process.execArgv.some((flag) => flag.startsWith('--max-semi-space-size'));
  if (!defaultHeap && !tuned) {
    const child = spawnSync(process.execPath, [...process.execArgv, TUNED_HEAP_FLAG, __filename, ...argv], { stdio: 'inherit' });
    process.exitCode = child.status ?? 1;
    return;
  }
  const { only, records } = parseArgs(argv.filter((a) => a !== '--default-heap'));
  const gcFn = (globalThis as { gc?: () => void }).gc;
  const context: BenchContext = {
    records,
    log: (line) => process.stdout.write(`  ${line}\n`),
    gc: () => gcFn?.(),
  };
  const heap = process.execArgv.find((flag) => flag.startsWith('--max-semi-space-size')) ?? 'default young generation (--default-heap)';
  process.stdout.write(`agentwatch bench — node ${process.version}, ${records.toLocaleString('en-US')} records per section, heap: ${heap}${gcFn ? '' : ' (run with --expose-gc for steadier figures)'}\n`);
  for (const entry of SECTIONS) {
    if (only.size && !only.has(entry.name)) continue;
    const file = join(__dirname, `${entry.module}.js`);
    process.stdout.write(`\n[${entry.name}]\n`);
    if (!existsSync(file)) {
      context.log(`skipped: ${entry.module}.ts is not there yet`);
      continue;
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const runner = resolveRunner(require(file) as Record<string, unknown>, entry.runner);
    if (!runner) {
      context.log(`skipped: ${entry.module}.ts exports no section or ${entry.runner}()`);
      continue;
    }
    await runner(context);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
