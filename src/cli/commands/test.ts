/**
 * `agentwatch test [PATH...] [--only id,id] [--config FILE]`: runs every rule's embedded tests
 * (default `detections/`) through the pipeline with in-memory state and prints pass/fail per rule
 * and case. Exit 0 when all pass, 1 when any case fails or a rule does not load, 2 on usage errors.
 */
import { formatRuleTestReport, runRuleTests } from '../../engine';
import type { CliCommand, CliIO, ExitCode } from '../io';
import { ruleArgsOrExit } from './validate';

export const command: CliCommand = {
  summary: "run the detection rules' embedded tests (default detections/)",
  usage: 'usage: agentwatch test [PATH...] [--only id,id] [--config FILE]',
  async run(args: string[], io: CliIO): Promise<ExitCode> {
    const parsed = ruleArgsOrExit(args, io, 'test', this.usage);
    if (typeof parsed === 'number') return parsed;
    const report = await runRuleTests(parsed.paths, { ...(parsed.config ? { config: parsed.config } : {}), ...(parsed.only ? { only: parsed.only } : {}) });
    io.stdout.write(formatRuleTestReport(report));
    if (report.results.length === 0 && report.loadProblems.length === 0) io.stderr.write('no test cases found\n');
    return report.failed || report.loadProblems.length ? 1 : 0;
  },
};
