/**
 * Config exceptions (`detections.<id>.exceptions` in the config file): an event matching one never
 * triggers the detection, in every rule kind, until its date; mistakes are refused with the config
 * file's path; what they keep away is counted; and each exception's own tests prove it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDetections, parseEngineConfig, runRuleTests } from '../../src/engine';
import type { ConfigException } from '../../src/engine/types';
import type { AgentEvent } from '../../src/normalize/types';
import { ConfigError } from '../../src/errors';
import { AGENT, BLUEPRINT, MINUTE, OTHER_AGENT, T0, compileRule, event, harness, signIn } from '../fixtures/rules/engineTestKit';

const REPO = join(__dirname, '..', '..');
const LAB_IP = '10.20.0.7';

const labCrawl: ConfigException = { name: 'lab-crawler', reason: 'approved crawl from the lab subnet', match: { agentIdentityId: AGENT, 'ip|cidr': '10.20.0.0/16' } };

const failure = (id: string, at: number, extra: Partial<AgentEvent> = {}) => signIn(id, at, { code: '53003', ...extra });

const thresholdRule = (exceptions?: ConfigException[]) =>
  compileRule(
    {
      id: 'failures',
      selections: { fail: { flow: 't2Autonomous', 'result.status': 'failure' } },
      condition: 'fail',
      stateful: { type: 'threshold', groupBy: ['agentIdentityId'], window: '10m', threshold: 3 },
      output: { title: 'failures', entities: [], dedupKey: ['agentIdentityId'] },
    },
    {},
    exceptions,
  );

const statelessRule = (exceptions?: ConfigException[]) =>
  compileRule({ id: 'any-signin', selections: { signin: { kind: 'signIn' } }, condition: 'signin', output: { title: 'sign-in', entities: [], dedupKey: ['id'] } }, {}, exceptions);

describe('config exceptions', () => {
  it('a matching event never fires a stateless rule; one that does not match still does', async () => {
    const h = harness([statelessRule([labCrawl])]);
    expect(await h.deliver(signIn('s1', 0, { ip: LAB_IP }))).toEqual([]);
    expect(await h.deliver(signIn('s2', 1, { ip: '203.0.113.66' }))).toHaveLength(1);
    expect(await h.deliver(signIn('s3', 2, { ip: LAB_IP, agentIdentityId: OTHER_AGENT }))).toHaveLength(1);
  });

  it('excepted events do not count towards a threshold', async () => {
    const h = harness([thresholdRule([labCrawl])]);
    await h.deliver(failure('f1', 0, { ip: LAB_IP }), failure('f2', 1, { ip: LAB_IP }), failure('f3', 2));
    expect(h.alerts).toEqual([]);
    await h.deliver(failure('f4', 3), failure('f5', 4));
    expect(h.alerts).toHaveLength(1);
    expect(h.alerts[0].evidence).toEqual(['f3', 'f4', 'f5']);
  });

  it('expires on event time: events from its date on are judged as if it did not exist', async () => {
    const until = new Date(T0 + 60 * MINUTE).toISOString();
    const h = harness([statelessRule([{ ...labCrawl, expires: until }])]);
    expect(await h.deliver(signIn('s1', 59, { ip: LAB_IP }))).toEqual([]);
    expect(await h.deliver(signIn('s2', 60, { ip: LAB_IP }))).toHaveLength(1);
  });

  it('a date alone means UTC midnight of that day', async () => {
    const h = harness([statelessRule([{ ...labCrawl, expires: '2026-10-05' }])]); // T0 is 2026-10-05T10:00Z
    expect(await h.deliver(signIn('s1', 0, { ip: LAB_IP }))).toHaveLength(1);
  });

  it("a sequence's excepted step events never advance it", async () => {
    const rule = compileRule(
      {
        id: 'fail-then-succeed',
        selections: { fail: { 'result.status': 'failure' }, ok: { 'result.status': 'success' } },
        stateful: { type: 'sequence', groupBy: ['agentIdentityId'], window: '30m', steps: [{ name: 'failed', condition: 'fail' }, { name: 'succeeded', condition: 'ok' }] },
        output: { title: 'fail then succeed', entities: [], dedupKey: ['agentIdentityId'] },
      },
      {},
      [labCrawl],
    );
    const h = harness([rule]);
    await h.deliver(failure('f1', 0, { ip: LAB_IP }), signIn('s1', 1));
    expect(h.alerts).toEqual([]);
    await h.deliver(failure('f2', 2), signIn('s2', 3, { ip: LAB_IP }));
    expect(h.alerts).toEqual([]);
    await h.deliver(signIn('s3', 4));
    expect(h.alerts).toHaveLength(1);
  });

  it("an absence's confirming step is never excepted (that would raise alerts), its first step is", async () => {
    const rule = compileRule(
      {
        id: 'disabled-but-used',
        selections: { disabled: { kind: 'audit', 'audit.operation': 'Disable account' }, used: { flow: 't2Autonomous' } },
        stateful: { type: 'absence', groupBy: ['agentIdentityId'], window: '30m', steps: [{ name: 'disabled', condition: 'disabled' }, { name: 'confirmed', condition: 'used' }] },
        output: { title: 'absence', entities: [], dedupKey: ['agentIdentityId'] },
      },
      {},
      [labCrawl],
    );
    const audit = { operation: 'Disable account', targets: [], credentialsAdded: [], credentialsRemoved: [], ficIssuersAdded: [], ficSubjectsAdded: [], modifiedPropertyNames: [], permissionsGranted: [] };
    const disable = (id: string, at: number, ip?: string) => event({ id, at, kind: 'audit', category: 'AuditLogs', agentIdentityId: AGENT, audit, ...(ip ? { ip } : {}) });
    const later = (id: string, at: number) => signIn(id, at, { agentIdentityId: OTHER_AGENT });
    const confirmed = harness([rule]);
    await confirmed.deliver(disable('d1', 0), signIn('s1', 5, { ip: LAB_IP }), later('u1', 90));
    expect(confirmed.alerts).toEqual([]);
    const excepted = harness([rule]);
    await excepted.deliver(disable('d1', 0, LAB_IP), later('u1', 90));
    expect(excepted.alerts).toEqual([]);
  });

  it('memories still see excepted events: only triggers are excepted', async () => {
    const rule = compileRule(
      {
        id: 'seen-ip',
        selections: { signin: { flow: 't2Autonomous' }, known: { remembered: 'ips', key: ['agentIdentityId', 'ip'] } },
        condition: 'signin and known',
        remember: { ips: { when: 'signin', key: ['agentIdentityId', 'ip'], ttl: '90d' } },
        output: { title: 'known ip', entities: [], dedupKey: ['id'] },
      },
      {},
      [{ name: 'first-one', reason: 'r', match: { id: 's1' } }],
    );
    const h = harness([rule]);
    expect(await h.deliver(signIn('s1', 0, { ip: LAB_IP }))).toEqual([]);
    const [alert] = await h.deliver(signIn('s2', 1, { ip: LAB_IP }));
    expect(alert.evidence).toEqual(['s2', 's1']); // s1, excepted as a trigger, still set the memory
  });

  it('an excepted event raises no alert, so a chain that consumes the alerts does not see it either', async () => {
    const ROTATION_APP = '7a3e0000-0000-4000-8000-00000000c0de';
    const added = compileRule(
      {
        id: 'cred-added',
        selections: { add: { kind: 'audit', 'audit.operation': 'Update application' } },
        condition: 'add',
        output: { title: 'credential added', entities: [], dedupKey: ['id'] },
      },
      {},
      [{ name: 'rotation', reason: 'r', match: { 'actor.appId': ROTATION_APP } }],
    );
    const chain = compileRule({
      id: 'added-then-used',
      selections: { t1: { flow: 't1Exchange' } },
      stateful: { type: 'sequence', groupBy: ['blueprintAppId'], window: '60m', steps: [{ name: 'added', alerts: ['cred-added'] }, { name: 'used', condition: 't1' }] },
      output: { title: 'chain', entities: [], dedupKey: ['blueprintAppId'] },
    });
    const audit = { operation: 'Update application', targets: [], credentialsAdded: [], credentialsRemoved: [], ficIssuersAdded: [], ficSubjectsAdded: [], modifiedPropertyNames: [], permissionsGranted: [] };
    const update = (id: string, at: number, appId: string) => event({ id, at, kind: 'audit', category: 'AuditLogs', blueprintAppId: BLUEPRINT, actor: { type: 'servicePrincipal', id: appId, appId }, audit });
    const exchange = (id: string, at: number) => event({ id, at, flow: 't1Exchange', blueprintAppId: BLUEPRINT, result: { status: 'success', code: '0' } });
    const rotated = harness([added, chain]);
    await rotated.deliver(update('u1', 0, ROTATION_APP), exchange('x1', 5));
    expect(rotated.alerts).toEqual([]);
    const other = harness([added, chain]);
    await other.deliver(update('u1', 0, '0e0c0000-0000-4000-8000-000000000001'), exchange('x1', 5));
    expect(other.alerts.map((alert) => alert.detectionId).sort()).toEqual(['added-then-used', 'cred-added']);
  });

  it('counts what each exception kept from triggering, not events the rule would not have fired on', async () => {
    const h = harness([thresholdRule([labCrawl, { name: 'other-agent', reason: 'r', match: { agentIdentityId: OTHER_AGENT } }])]);
    await h.deliver(failure('f1', 0, { ip: LAB_IP }), failure('f2', 1, { ip: LAB_IP }), signIn('s1', 2, { ip: LAB_IP }), failure('g1', 3, { agentIdentityId: OTHER_AGENT }));
    expect(h.engine.stats().exceptionHits).toEqual({ 'failures/lab-crawler': 2, 'failures/other-agent': 1 });
    expect(h.engine.exceptionHits()).toEqual({ 'failures/lab-crawler': 2, 'failures/other-agent': 1 });
  });
});

describe('config exceptions: mistakes are refused at load, in the config file', () => {
  const load = (yaml: string) => () => loadDetections([join(REPO, 'detections')], { config: parseEngineConfig('agentwatch.config.yaml', yaml) });
  const problemsOf = (yaml: string): string[] => {
    try {
      load(yaml)();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as ConfigError).problems.map((p) => `${p.file}:${p.line} ${p.path} ${p.message}`);
    }
    throw new Error('expected a ConfigError');
  };

  it('an unknown field, modifier, memory read, bad date and duplicate name each name their place', () => {
    const problems = problemsOf(`detections:
  agent-signin-spike:
    exceptions:
      - name: one
        reason: r
        match: { agentIdentityID: x }
        expires: next year
      - name: one
        reason: r
        match: [{ ip|cidrr: 10.0.0.0/8 }]
      - name: three
        reason: r
        match: { remembered: makers, key: [actor.upn] }
`);
    expect(problems).toEqual([
      'agentwatch.config.yaml:7 /detections/agent-signin-spike/exceptions/0/expires expected a date like "2027-01-31" (UTC midnight) or a date-time with its offset like "2027-01-31T18:00:00Z", got "next year"',
      'agentwatch.config.yaml:6 /detections/agent-signin-spike/exceptions/0/match/agentIdentityID unknown field "agentIdentityID": expected a canonical AgentEvent path (CANONICAL_FIELDS); did you mean "agentIdentityId"?',
      'agentwatch.config.yaml:8 /detections/agent-signin-spike/exceptions/1/name duplicate exception name "one" of agent-signin-spike: names must be unique per detection',
      expect.stringMatching(/^agentwatch\.config\.yaml:10 \/detections\/agent-signin-spike\/exceptions\/1\/match\/0\/ip\|cidrr unknown modifier "cidrr"/),
      'agentwatch.config.yaml:13 /detections/agent-signin-spike/exceptions/2/match expected field conditions on the event; an exception cannot read a memory (remembered:)',
    ]);
  });

  it('a date-time without its offset is refused (it would be read in the host time zone)', () => {
    expect(problemsOf(`detections:\n  agent-signin-spike:\n    exceptions:\n      - { name: a, reason: r, match: { ip: 10.0.0.1 }, expires: "2027-01-31T18:00:00" }\n`)).toEqual([
      expect.stringContaining('/detections/agent-signin-spike/exceptions/0/expires expected a date like'),
    ]);
    expect(load(`detections:\n  agent-signin-spike:\n    exceptions:\n      - { name: a, reason: r, match: { ip: 10.0.0.1 }, expires: "2027-01-31T18:00:00+01:00" }\n`)).not.toThrow();
  });

  it('an exception past its date loads, with a start-up warning that names it', () => {
    const warnings: unknown[] = [];
    const logger = { log: (level: string, message: string, fields?: Record<string, unknown>) => (level === 'warn' ? warnings.push({ message, ...fields }) : undefined) };
    const config = parseEngineConfig('c.yaml', `detections:\n  agent-signin-spike:\n    exceptions:\n      - { name: old, reason: r, match: { ip: 10.0.0.1 }, expires: "2026-11-01" }\n      - { name: current, reason: r, match: { ip: 10.0.0.2 }, expires: "2027-01-01" }\n`);
    loadDetections([join(REPO, 'detections')], { config, logger, clock: { now: () => Date.parse('2026-11-25T00:00:00Z') } });
    expect(warnings).toEqual([{ message: 'a config exception has expired: it no longer applies to events after its date', detectionId: 'agent-signin-spike', exception: 'old', expires: '2026-11-01T00:00:00.000Z' }]);
  });

  it('a missing reason is a schema problem', () => {
    expect(() => parseEngineConfig('c.yaml', 'detections:\n  agent-signin-spike:\n    exceptions:\n      - { name: a, match: { ip: 10.0.0.1 } }\n')).toThrow(ConfigError);
  });

  it('a well-formed exception loads, and its parameters resolve against the rule', () => {
    const detections = load(`detections:
  agent-scope-burst:
    exceptions:
      - { name: ok, reason: r, match: { agentIdentityId: ${AGENT} }, expires: "2027-01-31" }
`)();
    const burst = detections.find((d) => d.id === 'agent-scope-burst')!;
    expect(burst.exceptions?.entries).toEqual([{ name: 'ok', reason: 'r', selection: burst.selections.length - 1, untilMs: Date.parse('2027-01-31') }]);
  });
});

describe('config exceptions prove themselves: agentwatch test --config', () => {
  const configFile = (yaml: string): string => {
    const file = join(mkdtempSync(join(tmpdir(), 'agentwatch-exceptions-')), 'agentwatch.config.yaml');
    writeFileSync(file, yaml);
    return file;
  };
  const run = async (exception: string) => {
    const file = configFile(`detections:\n  blueprint-credential-added:\n    exceptions:\n${exception}`);
    const config = parseEngineConfig(file, (await import('node:fs')).readFileSync(file, 'utf8'));
    const report = await runRuleTests([join(REPO, 'detections')], { config, only: ['blueprint-credential-added'] });
    return report.results.filter((result) => result.name.startsWith('exception '));
  };
  const rotation = `        tests:
          - name: rotation
            records:
              - { base: addBlueprintApplication }
              - base: blueprintSecretAdded
                set: { properties.initiatedBy: { app: { appId: 7a3e0000-0000-4000-8000-00000000c0de, displayName: Rotation } } }
`;

  it('the shipped example config passes every rule test and its exception test', async () => {
    const file = join(REPO, 'samples', 'agentwatch.config.example.yaml');
    const config = parseEngineConfig(file, (await import('node:fs')).readFileSync(file, 'utf8'));
    const report = await runRuleTests([join(REPO, 'detections')], { config });
    expect(report.failed).toBe(0);
    expect(report.loadProblems).toEqual([]);
    expect(report.results.filter((result) => result.name.startsWith('exception ')).map((result) => [result.ruleId, result.passed])).toEqual([['blueprint-credential-added', true]]);
  });

  it("a config mistake is a load problem reported once, not a failure of every rule case", async () => {
    const file = configFile('detections:\n  blueprint-credential-added:\n    exceptions:\n      - { name: typo, reason: r, match: { actr.upn: a } }\n');
    const config = parseEngineConfig(file, (await import('node:fs')).readFileSync(file, 'utf8'));
    const report = await runRuleTests([join(REPO, 'detections')], { config, only: ['blueprint-credential-added'] });
    expect(report.loadProblems.map((problem) => `${problem.path} ${problem.message}`)).toEqual([
      expect.stringMatching(/^\/detections\/blueprint-credential-added\/exceptions\/0\/match\/actr\.upn unknown field "actr\.upn"/),
    ]);
    expect(report.failed).toBe(0);
  });

  it('an exception that covers its timeline passes', async () => {
    const [result] = await run(`      - name: rotation-app\n        reason: r\n        match: { actor.appId: 7a3e0000-0000-4000-8000-00000000c0de }\n${rotation}`);
    expect(result).toMatchObject({ name: 'exception rotation-app: rotation', passed: true, failures: [] });
  });

  it('an exception too narrow for its timeline fails, showing the alert it let through', async () => {
    const [result] = await run(`      - name: wrong-app\n        reason: r\n        match: { actor.appId: 00000000-0000-4000-8000-000000000000 }\n${rotation}`);
    expect(result.passed).toBe(false);
    expect(result.failures.join('\n')).toMatch(/with the exception blueprint-credential-added still raised 1 alert\(s\)/);
  });

  it('a timeline the detection does not fire on proves nothing, and fails', async () => {
    const [result] = await run(`      - name: rotation-app\n        reason: r\n        match: { actor.appId: 7a3e0000-0000-4000-8000-00000000c0de }\n        tests:\n          - name: nothing happens\n            records: [{ base: addBlueprintApplication }]\n`);
    expect(result.passed).toBe(false);
    expect(result.failures.join('\n')).toMatch(/without the exception blueprint-credential-added raises no alert on these records either/);
  });
});
