/**
 * A fixed workload for counting instructions, when wall-clock A/B comparisons drown in the
 * machine's noise (this VM's speed drifts by a third from minute to minute; two builds timed in
 * one process still disagreed run to run). Under valgrind the count of executed instructions is
 * repeatable to about ±0.2%, so two builds can be compared on the same workload:
 *
 *   bash bench/compare-instructions.sh <dist of build A> <dist of build B> [floor|ingest|full] [records] [rounds]
 *
 * which runs this file once per build (`node --single-threaded`, so GC work is counted on the main
 * thread too) and prints both counts and the difference. Instructions are a proxy: they miss cache
 * and memory effects (a larger young generation looks free here), so confirm a gain with
 * `npm run bench` before trusting it. Usage of this file alone:
 *
 *   node dist/bench/instructions.js <dist root> <floor|ingest|full> [records=10000] [rounds=2]
 *
 * The dist root is a compiled tree (`tsc --outDir <dir>`), so another build of agentwatch runs this
 * same workload on the same generated stream and this checkout's detections.
 */
import { join, resolve } from 'node:path';
import { BODIES_PER_BATCH, generateEntraBodies } from './ingest';

type Mode = 'floor' | 'ingest' | 'full';

interface Build {
  ingest: typeof import('../src/ingest');
  inventory: typeof import('../src/inventory');
  engine: typeof import('../src/engine');
  memoryStore: typeof import('../src/state/memoryStore');
}

function loadBuild(root: string): Build {
  // A compiled tree of another build: required by path, so both builds run the same workload.
  const from = (path: string): unknown => require(join(root, path));
  return {
    ingest: from('src/ingest') as Build['ingest'],
    inventory: from('src/inventory') as Build['inventory'],
    engine: from('src/engine') as Build['engine'],
    memoryStore: from('src/state/memoryStore') as Build['memoryStore'],
  };
}

async function run(build: Build, mode: Mode, records: number, rounds: number, detectionsDir: string): Promise<number> {
  // This checkout's generator, so both builds read the very same stream.
  const bodies = generateEntraBodies(records);
  const detections = build.engine.loadDetections([detectionsDir]);
  let produced = 0;
  for (let round = 0; round < rounds; round++) {
    if (mode === 'floor') {
      for (const body of bodies) produced += (JSON.parse(body) as { records: unknown[] }).records.length;
      continue;
    }
    if (mode === 'ingest') {
      for (let i = 0; i < bodies.length; i += BODIES_PER_BATCH) produced += build.ingest.ingestBatch(bodies.slice(i, i + BODIES_PER_BATCH)).events.length;
      continue;
    }
    const inventory = new build.inventory.Inventory();
    const engine = build.engine.createEngine({ detections, state: new build.memoryStore.MemoryStateStore() });
    for (let i = 0; i < bodies.length; i += BODIES_PER_BATCH) {
      const batch = build.ingest.ingestBatch(bodies.slice(i, i + BODIES_PER_BATCH)).events.sort((a, b) => a.timeMs - b.timeMs);
      build.inventory.observeAndResolve(inventory, batch);
      produced += (await engine.evaluate(batch, inventory)).length;
    }
  }
  return produced;
}

async function main(argv: readonly string[]): Promise<number> {
  const [rootArg, modeArg, recordsArg, roundsArg] = argv;
  const modes: readonly Mode[] = ['floor', 'ingest', 'full'];
  if (!rootArg || !modes.includes(modeArg as Mode)) {
    process.stderr.write('usage: node dist/bench/instructions.js <dist root> <floor|ingest|full> [records=10000] [rounds=2]\n');
    return 2;
  }
  const records = Number(recordsArg ?? 10_000);
  const rounds = Number(roundsArg ?? 2);
  if (!Number.isInteger(records) || records < 1 || !Number.isInteger(rounds) || rounds < 0) {
    process.stderr.write('instructions: records must be a positive integer and rounds a non-negative integer\n');
    return 2;
  }
  const root = resolve(rootArg);
  // The detections of this checkout, so both builds evaluate the same rules.
  const detectionsDir = resolve(__dirname, '..', '..', 'detections');
  const produced = await run(loadBuild(root), modeArg as Mode, records, rounds, detectionsDir);
  // Printed so the work cannot be optimized away and a broken build is visible (0 where work was expected).
  process.stdout.write(`${modeArg}: ${produced} ${modeArg === 'full' ? 'alerts' : modeArg === 'ingest' ? 'events' : 'records'} over ${rounds} round(s) of ${records} records\n`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`instructions: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}
