/**
 * Every test case embedded in the shipped rules (`detections/*.yaml`), one `it` each, through the
 * same decode → normalize → resolve → evaluate path as the pipeline. Picks up new rules as they
 * land; with no rules it skips with a clear message.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listRuleTestCases } from '../../src/engine';

const detectionsDir = join(__dirname, '..', '..', 'detections');
const hasRules = existsSync(detectionsDir) && readdirSync(detectionsDir).some((name) => /\.ya?ml$/.test(name));

describe.skipIf(!hasRules)('detection catalog (detections/*.yaml)', () => {
  const { cases, loadProblems, untested } = hasRules ? listRuleTestCases([detectionsDir]) : { cases: [], loadProblems: [], untested: [] };

  it('loads every rule file without problems', () => {
    expect(loadProblems.map((p) => `${p.file}${p.line !== undefined ? `:${p.line}` : ''} at ${p.path}: ${p.message}`)).toEqual([]);
  });

  it('every rule carries at least one test case', () => {
    expect(untested).toEqual([]);
  });

  const byRule = new Map<string, typeof cases>();
  for (const testCase of cases) byRule.set(testCase.ruleId, [...(byRule.get(testCase.ruleId) ?? []), testCase]);
  for (const [ruleId, ruleCases] of byRule) {
    describe(ruleId, () => {
      for (const testCase of ruleCases) {
        it(testCase.name, async () => {
          const result = await testCase.run();
          expect(result.failures).toEqual([]);
          expect(result.passed).toBe(true);
        });
      }
    });
  }
});

describe.skipIf(hasRules)('detection catalog (detections/*.yaml)', () => {
  it.skip('no rule files in detections/ yet: nothing to run', () => undefined);
});
