/**
 * The instruction-count workload (bench/instructions.ts) that bench/compare-instructions.sh runs
 * under valgrind: it must run a given build's pipeline on the generated stream and refuse bad use.
 * Runs the compiled file (the pretest build), without valgrind.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const repoRoot = join(__dirname, '..', '..');
const workload = join(repoRoot, 'dist', 'bench', 'instructions.js');
const dist = join(repoRoot, 'dist');

function runWorkload(...args: string[]) {
  return spawnSync(process.execPath, [workload, ...args], { encoding: 'utf8', timeout: 60_000 });
}

describe('instruction-count workload', () => {
  it('ingests every generated record of the stream through the given build', () => {
    const result = runWorkload(dist, 'ingest', '500', '2');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toBe('ingest: 1000 events over 2 round(s) of 500 records');
  });

  it('runs the full pipeline with this checkout’s detections', () => {
    const result = runWorkload(dist, 'full', '300', '1');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^full: \d+ alerts over 1 round\(s\) of 300 records\n$/);
  });

  it('refuses an unknown mode or a bad count with usage and exit code 2', () => {
    const unknown = runWorkload(dist, 'everything');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('usage: node dist/bench/instructions.js');
    const badCount = runWorkload(dist, 'ingest', 'many');
    expect(badCount.status).toBe(2);
    expect(badCount.stderr).toContain('records must be a positive integer');
  });
});
