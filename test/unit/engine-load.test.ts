/**
 * Loading rules: a mistake is refused at load with the file, the JSON path inside it, what was
 * expected and the line; every problem of every file is reported together. Config files are
 * checked against the rules they tune.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, DetectionLoadError, type LocatedProblem } from '../../src/errors';
import { loadDetections, parseEngineConfig } from '../../src/engine';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function ruleDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'agentwatch-rules-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

const VALID = `schemaVersion: 1
id: sample-rule
title: Sample
status: stable
severity: medium
parameters:
  window: 10m
  minimum: 3
selections:
  failure:
    flow: t2Autonomous
    result.status: failure
condition: failure
stateful:
  type: threshold
  groupBy: [agentIdentityId]
  window: $window
  threshold: $minimum
output:
  title: "{{count}} failures"
  entities: [{ type: agentIdentity, id: agentIdentityId }]
  dedupKey: [agentIdentityId]
`;

async function problemsOf(dir: string): Promise<LocatedProblem[]> {
  try {
    loadDetections([dir]);
  } catch (error) {
    expect(error).toBeInstanceOf(DetectionLoadError);
    expect(error).toMatchObject({ code: 'DETECTION_INVALID' });
    return (error as DetectionLoadError).problems;
  }
  throw new Error('expected DetectionLoadError');
}

describe('loadDetections', () => {
  it('compiles a valid rule with its parameters resolved', () => {
    const [detection] = loadDetections([ruleDir({ 'sample-rule.yaml': VALID })]);
    expect(detection.id).toBe('sample-rule');
    expect(detection.stateful).toMatchObject({ type: 'threshold', windowMs: 600_000, threshold: 3 });
    expect([...(detection.prefilter.flows ?? [])]).toEqual(['t2autonomous']);
  });

  describe('dispatch prefilter', () => {
    const ruleWith = (condition: string) =>
      VALID.replace(
        /selections:[\s\S]*?condition: failure\n/,
        `selections:
  obo:
    flow: t2OnBehalfOf
  raised:
    category|in: [RiskyUsers, UserRiskEvents]
    risk.level: high
  membership:
    audit.operation|startswith: Add member
condition: ${condition}
`,
      );
    const signIn = (flow: string | undefined) => ({ kind: 'signin', category: 'noninteractiveusersigninlogs', flow, operation: undefined });
    const audit = (operation: string) => ({ kind: 'audit', category: 'auditlogs', flow: undefined, operation });
    const risk = { kind: 'risk', category: 'riskyusers', flow: undefined, operation: undefined };

    it('admits exactly the events some branch of an or across different fields can take', () => {
      const [detection] = loadDetections([ruleDir({ 'sample-rule.yaml': ruleWith('obo or raised or membership') })]);
      // One set per field cannot say "this flow, or that category": the per-field sets give up ...
      expect(detection.prefilter.flows).toBeUndefined();
      expect(detection.prefilter.categories).toBeUndefined();
      // ... the three-valued judgement does not.
      expect(detection.prefilter.admits(signIn('t2onbehalfof'))).toBe(true);
      expect(detection.prefilter.admits(signIn('t2autonomous'))).toBe(false);
      expect(detection.prefilter.admits(signIn(undefined))).toBe(false);
      expect(detection.prefilter.admits(risk)).toBe(true);
      expect(detection.prefilter.admits(audit('add member to group.'))).toBe(true);
      expect(detection.prefilter.admits(audit('update user'))).toBe(false);
    });

    it('never rules out an event a negation can take', () => {
      const [detection] = loadDetections([ruleDir({ 'sample-rule.yaml': ruleWith('not obo') })]);
      expect(detection.prefilter.admits(signIn('t2autonomous'))).toBe(true);
      expect(detection.prefilter.admits(risk)).toBe(true);
      // `not obo` on an OBO sign-in is false whatever else the event holds.
      expect(detection.prefilter.admits(signIn('t2onbehalfof'))).toBe(false);
    });
  });

  it.each([
    ['an unknown field', VALID.replace('result.status: failure', 'result.stauts: failure'), '/selections/failure/result.stauts', 12, /unknown field "result.stauts".*did you mean "result.status"/],
    ['an unknown modifier', VALID.replace('flow: t2Autonomous', 'flow|startwith: t2'), '/selections/failure/flow|startwith', 11, /unknown modifier "startwith"/],
    ['a bad duration', VALID.replace('window: 10m', 'window: 10 minutes'), '/stateful/window', 17, /expected a duration like "10m"/],
    ['an unknown parameter', VALID.replace('threshold: $minimum', 'threshold: $minimal'), '/stateful/threshold', 18, /unknown parameter "minimal": expected one of window, minimum/],
    ['an unknown selection in the condition', VALID.replace('condition: failure', 'condition: failure and not allowed'), '/condition', 13, /unknown selection "allowed"/],
    ['a missing required property', VALID.replace('title: Sample\n', ''), '/', 1, /missing required property "title"/],
    ['an unknown top-level property', VALID.replace('status: stable', 'status: stable\nseverty: high'), '/severty', 5, /unknown property "severty"; expected one of/],
    ['a wrong enum', VALID.replace('severity: medium', 'severity: urgent'), '/severity', 5, /expected one of informational \| low \| medium \| high \| critical, got "urgent"/],
    ['an id that is not the file name', VALID.replace('id: sample-rule', 'id: other-rule'), '/id', 2, /expected the id to equal the file name "sample-rule"/],
    ['a top-level condition on a sequence', VALID.replace(/stateful:[\s\S]*?\noutput:/, 'stateful:\n  type: sequence\n  groupBy: [agentIdentityId]\n  window: 1h\n  steps:\n    - { name: a, condition: failure }\n    - { name: b, condition: failure }\noutput:'), '/', 1, /take their conditions from steps/],
  ])('refuses %s with file, path, line and what was expected', async (_name, text, path, line, message) => {
    const dir = ruleDir({ 'sample-rule.yaml': text });
    const problems = await problemsOf(dir);
    const problem = problems.find((p) => p.path.startsWith(path));
    expect(problem, JSON.stringify(problems, null, 1)).toBeDefined();
    expect(problem).toMatchObject({ file: join(dir, 'sample-rule.yaml'), line });
    expect(problem!.message).toMatch(message);
  });

  it('reports a YAML syntax error with its line', async () => {
    const dir = ruleDir({ 'sample-rule.yaml': VALID.replace('  window: 10m', '  window: [10m') });
    const [problem] = await problemsOf(dir);
    expect(problem.message).toMatch(/^YAML syntax/);
    expect(problem.line).toBeGreaterThanOrEqual(7);
  });

  it('collects every problem of every file at once', async () => {
    const dir = ruleDir({
      'sample-rule.yaml': VALID.replace('severity: medium', 'severity: urgent').replace('flow: t2Autonomous', 'flow|bogus: x'),
      'second-rule.yaml': VALID.replace('id: sample-rule', 'id: second-rule').replace('window: $window', 'window: 5 mins'),
      'chain-rule.yaml': VALID.replace('id: sample-rule', 'id: chain-rule').replace('condition: failure\n', '').replace(/stateful:[\s\S]*?\noutput:/, 'stateful:\n  type: sequence\n  groupBy: [blueprintAppId]\n  window: 1h\n  steps:\n    - { name: a, alerts: [no-such-rule] }\n    - { name: b, condition: failure }\noutput:'),
    });
    const problems = await problemsOf(dir);
    const files = new Set(problems.map((p) => p.file.split('/').pop()));
    expect(files).toEqual(new Set(['sample-rule.yaml', 'second-rule.yaml', 'chain-rule.yaml']));
    expect(problems.find((p) => p.file.endsWith('chain-rule.yaml'))).toMatchObject({ path: '/stateful/steps/0/alerts', message: expect.stringMatching(/unknown detection "no-such-rule"/) });
  });

  it('refuses a cycle of alerts: references', async () => {
    const chain = (id: string, dependency: string) =>
      VALID.replace('id: sample-rule', `id: ${id}`).replace('condition: failure\n', '').replace(/stateful:[\s\S]*?\noutput:/, `stateful:\n  type: sequence\n  groupBy: [blueprintAppId]\n  window: 1h\n  steps:\n    - { name: a, alerts: [${dependency}] }\n    - { name: b, condition: failure }\noutput:`);
    const problems = await problemsOf(ruleDir({ 'loop-a.yaml': chain('loop-a', 'loop-b'), 'loop-b.yaml': chain('loop-b', 'loop-a') }));
    expect(problems.some((p) => /cycle: loop-a → loop-b → loop-a|cycle: loop-b → loop-a → loop-b/.test(p.message))).toBe(true);
  });

  it('loads experimental rules only when the config asks for them, and skips disabled ones', () => {
    const dir = ruleDir({ 'sample-rule.yaml': VALID, 'trial-rule.yaml': VALID.replace('id: sample-rule', 'id: trial-rule').replace('status: stable', 'status: experimental') });
    expect(loadDetections([dir]).map((d) => d.id)).toEqual(['sample-rule']);
    expect(loadDetections([dir], { config: { includeExperimental: true } }).map((d) => d.id)).toEqual(['sample-rule', 'trial-rule']);
    expect(loadDetections([dir], { config: { includeExperimental: true, detections: { 'sample-rule': { enabled: false } } } }).map((d) => d.id)).toEqual(['trial-rule']);
  });

  it('applies config parameters and refuses unknown ids, unknown parameters and wrong types with file and path', () => {
    const dir = ruleDir({ 'sample-rule.yaml': VALID });
    const tuned = loadDetections([dir], { config: parseEngineConfig('tuning.yaml', 'detections:\n  sample-rule:\n    parameters: { minimum: 7 }\n') });
    expect(tuned[0].stateful).toMatchObject({ threshold: 7 });
    const config = parseEngineConfig(
      'tuning.yaml',
      'detections:\n  sample-rule:\n    parameters:\n      minimum: "7"\n      maximum: 9\n  missing-rule:\n    enabled: false\n',
    );
    let caught: unknown;
    try {
      loadDetections([dir], { config });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems).toEqual([
      { file: 'tuning.yaml', path: '/detections/sample-rule/parameters/minimum', line: 4, message: 'expected a number like the rule\'s default 3, got "7"' },
      { file: 'tuning.yaml', path: '/detections/sample-rule/parameters/maximum', line: 5, message: 'unknown parameter "maximum" of sample-rule; expected one of window, minimum' },
      { file: 'tuning.yaml', path: '/detections/missing-rule', line: 6, message: 'unknown detection id "missing-rule"; known: sample-rule' },
    ]);
  });

  it('refuses a config file that breaks its schema, with the line', () => {
    expect(() => parseEngineConfig('bad.yaml', 'response:\n  mode: yolo\n')).toThrow(ConfigError);
    try {
      parseEngineConfig('bad.yaml', 'response:\n  mode: yolo\n');
    } catch (error) {
      expect((error as ConfigError).problems[0]).toMatchObject({ file: 'bad.yaml', path: '/response/mode', line: 2, message: expect.stringMatching(/expected one of off \| dryRun \| approval \| auto/) });
    }
  });
});
