import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DOCS_RELATIVE_PATH, readRules, renderDetectionDocs } from '../../scripts/gen-detection-docs';

const repoRoot = join(__dirname, '..', '..');
const detectionsDir = join(repoRoot, 'detections');

describe('docs/detections.md', () => {
  const rules = readRules(detectionsDir);
  const generated = renderDetectionDocs(rules);

  it('is what scripts/gen-detection-docs.ts generates from the rule files now (run `npm run docs`)', () => {
    const committed = readFileSync(join(repoRoot, DOCS_RELATIVE_PATH), 'utf8');
    expect(committed).toBe(generated);
  });

  it('has one summary row and one section per rule file', () => {
    const ids = readdirSync(detectionsDir)
      .filter((name) => name.endsWith('.yaml'))
      .map((name) => name.replace(/\.yaml$/, ''))
      .sort();
    const rows = generated.split('\n').filter((line) => line.startsWith('| [`'));
    expect(rows.map((row) => /\[`([^`]+)`\]/.exec(row)?.[1]).sort()).toEqual(ids);
    for (const id of ids) expect(generated).toContain(`\n## ${id}\n`);
  });

  it('shows dynamic severity, ATT&CK from the record, and the default response of a rule', () => {
    const row = (id: string) => generated.split('\n').find((line) => line.startsWith(`| [\`${id}\`]`)) ?? '';
    expect(row('blueprint-credential-added')).toContain('**medium**; high when `by_user and not by_owner`');
    expect(row('agent-risk-detected')).toContain("the record's `risk.mitreTechniques` when present");
    expect(row('agent-takeover-chain')).toContain('`confirmCompromised`, `disableAgentIdentity` — dryRun');
    expect(row('agent-scope-burst')).toMatch(/\| none \|$/);
  });

  it('renders a rule it is given, so a change to a rule file changes the page', () => {
    const changed = rules.map((rule) => (rule.id === 'agent-scope-burst' ? { ...rule, severity: 'high' } : rule));
    expect(renderDetectionDocs(changed)).not.toBe(generated);
    expect(renderDetectionDocs(changed)).toContain('| [`agent-scope-burst`](#agent-scope-burst) | **high** |');
  });
});
