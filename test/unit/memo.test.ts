/** The bounded memo the hot paths share: one computation per input until the bound clears it. */
import { describe, expect, it } from 'vitest';
import { BoundedMemo } from '../../src/memo';

describe('BoundedMemo', () => {
  it('computes an input once, and again only after the map was cleared at its bound', () => {
    const computed: string[] = [];
    const memo = new BoundedMemo((input) => {
      computed.push(input);
      return input.toUpperCase();
    }, 3);
    expect([memo.get('a'), memo.get('b'), memo.get('a'), memo.get('c')]).toEqual(['A', 'B', 'A', 'C']);
    expect(computed).toEqual(['a', 'b', 'c']);
    memo.get('d'); // the fourth input: the full map is dropped, then d is kept
    memo.get('d');
    memo.get('a');
    expect(computed).toEqual(['a', 'b', 'c', 'd', 'a']);
  });
});
