/** The condition language: precedence, parentheses, quantifiers, and the errors an author sees. */
import { describe, expect, it } from 'vitest';
import { ConditionSyntaxError, compileCondition, parseCondition } from '../../src/engine/condition';

const names = ['sel_a', 'sel_b', 'filter', 'other'];

function evaluate(condition: string, truth: Record<string, boolean>): boolean {
  const tree = parseCondition(condition, names);
  return compileCondition(tree, (name) => names.indexOf(name))((index) => truth[names[index]] ?? false);
}

describe('condition parser', () => {
  it.each([
    ['sel_a and sel_b', { sel_a: true, sel_b: true }, true],
    ['sel_a and sel_b', { sel_a: true }, false],
    ['sel_a or sel_b and filter', { sel_a: true }, true], // and binds tighter than or
    ['(sel_a or sel_b) and filter', { sel_a: true }, false],
    ['not sel_a and sel_b', { sel_b: true }, true], // not binds tightest
    ['not (sel_a and sel_b)', { sel_a: true, sel_b: true }, false],
    ['not not sel_a', { sel_a: true }, true],
    ['1 of sel_*', { sel_b: true }, true],
    ['all of sel_*', { sel_a: true }, false],
    ['all of sel_* and not filter', { sel_a: true, sel_b: true }, true],
    ['1 of them', { other: true }, true],
    ['all of them', { sel_a: true, sel_b: true, filter: true }, false],
    ['any of sel_* AND NOT filter', { sel_a: true }, true],
  ] as [string, Record<string, boolean>, boolean][])('%s with %j is %s', (condition, truth, expected) => {
    expect(evaluate(condition, truth)).toBe(expected);
  });

  it.each([
    ['sel_a and', /expected a selection name/],
    ['sel_a sel_b', /unexpected "sel_b" at column 7/],
    ['(sel_a or sel_b', /expected "\)"/],
    ['sel_c', /unknown selection "sel_c" \(defined: sel_a, sel_b, filter, other\)/],
    ['1 of nothing_*', /no selection matches "nothing_\*"/],
    ['1 sel_a', /expected "of" after "1"/],
    ['sel_a & sel_b', /unexpected "&"/],
  ])('%s is refused: %s', (condition, message) => {
    expect(() => parseCondition(condition, names)).toThrow(ConditionSyntaxError);
    expect(() => parseCondition(condition, names)).toThrow(message);
  });
});
