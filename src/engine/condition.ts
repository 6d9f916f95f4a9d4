/**
 * The `condition` language: selection names combined with `and`, `or`, `not`, parentheses, and the
 * Sigma quantifiers `1 of pattern*`, `all of pattern*`, `1 of them`, `all of them`. `not` binds
 * tightest, then `and`, then `or`. Quantifiers are expanded at load, so the compiled closure only
 * ever tests selections by index.
 */

export type ConditionNode =
  | { type: 'ref'; name: string }
  | { type: 'not'; operand: ConditionNode }
  | { type: 'and' | 'or'; operands: ConditionNode[] };

/** Tests selection number `index` for the current event (memoized by the caller). */
export type SelectionTester = (index: number) => boolean;
export type CompiledCondition = (test: SelectionTester) => boolean;

interface Token {
  text: string;
  at: number;
}

const TOKEN = /\s*(\(|\)|[A-Za-z_*][A-Za-z0-9_*]*|\d+|\S)/y;

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  let match: RegExpExecArray | null;
  while (TOKEN.lastIndex < text.length && (match = TOKEN.exec(text))) {
    if (match[1] === undefined) break;
    tokens.push({ text: match[1], at: match.index + match[0].length - match[1].length });
  }
  return tokens;
}

const KEYWORDS = new Set(['and', 'or', 'not', 'of', 'them', 'all', 'any']);

export class ConditionSyntaxError extends Error {}

/** Parses a condition against the rule's selection names; throws ConditionSyntaxError saying what was expected where. */
export function parseCondition(text: string, selectionNames: readonly string[]): ConditionNode {
  const tokens = tokenize(text);
  let position = 0;
  const fail = (message: string): never => {
    const at = tokens[position]?.at ?? text.length;
    throw new ConditionSyntaxError(`${message} at column ${at + 1} of ${JSON.stringify(text)}`);
  };
  const peek = () => tokens[position]?.text;
  const next = () => tokens[position++]?.text;

  const expandPattern = (pattern: string): string[] => {
    if (pattern === 'them') return [...selectionNames];
    const regex = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
    return selectionNames.filter((name) => regex.test(name));
  };

  // `or` over `and` over unary: one helper per binary level.
  const parseLevel = (keyword: 'and' | 'or', parseOperand: () => ConditionNode) => (): ConditionNode => {
    const operands = [parseOperand()];
    while (peek()?.toLowerCase() === keyword) {
      next();
      operands.push(parseOperand());
    }
    return operands.length === 1 ? operands[0] : { type: keyword, operands };
  };
  const parseAnd = (): ConditionNode => parseLevel('and', parseUnary)();
  const parseOr = (): ConditionNode => parseLevel('or', parseAnd)();
  const parseUnary = (): ConditionNode => {
    if (peek()?.toLowerCase() === 'not') {
      next();
      return { type: 'not', operand: parseUnary() };
    }
    return parsePrimary();
  };
  const parsePrimary = (): ConditionNode => {
    const token = peek();
    if (token === undefined) return fail('expected a selection name, "not", "(" or "1 of"/"all of"');
    if (token === '(') {
      next();
      const inner = parseOr();
      if (next() !== ')') {
        position--;
        fail('expected ")"');
      }
      return inner;
    }
    const lowered = token.toLowerCase();
    if (lowered === '1' || lowered === 'all' || lowered === 'any') {
      next();
      if (peek()?.toLowerCase() !== 'of') return fail(`expected "of" after "${token}"`);
      next();
      const pattern = next();
      if (pattern === undefined || pattern === '(' || pattern === ')') {
        position--;
        return fail('expected a selection name pattern or "them"');
      }
      const names = expandPattern(pattern);
      if (names.length === 0) {
        position--;
        return fail(`no selection matches ${JSON.stringify(pattern)}`);
      }
      const refs = names.map((name): ConditionNode => ({ type: 'ref', name }));
      if (refs.length === 1) return refs[0];
      return { type: lowered === 'all' ? 'and' : 'or', operands: refs };
    }
    if (KEYWORDS.has(lowered) || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(token)) return fail(`unexpected ${JSON.stringify(token)}`);
    if (!selectionNames.includes(token)) return fail(`unknown selection ${JSON.stringify(token)} (defined: ${selectionNames.join(', ') || 'none'})`);
    next();
    return { type: 'ref', name: token };
  };

  const tree = parseOr();
  if (position < tokens.length) fail(`unexpected ${JSON.stringify(tokens[position].text)}`);
  return tree;
}

/** Selection names a condition tree uses. */
export function referencedSelections(node: ConditionNode, into = new Set<string>()): Set<string> {
  if (node.type === 'ref') into.add(node.name);
  else if (node.type === 'not') referencedSelections(node.operand, into);
  else for (const operand of node.operands) referencedSelections(operand, into);
  return into;
}

/** Closure over selection indexes; and/or short-circuit left to right. */
export function compileCondition(node: ConditionNode, indexOf: (name: string) => number): CompiledCondition {
  switch (node.type) {
    case 'ref': {
      const index = indexOf(node.name);
      return (test) => test(index);
    }
    case 'not': {
      const operand = compileCondition(node.operand, indexOf);
      return (test) => !operand(test);
    }
    case 'and': {
      const operands = node.operands.map((operand) => compileCondition(operand, indexOf));
      if (operands.length === 2) {
        const [a, b] = operands;
        return (test) => a(test) && b(test);
      }
      return (test) => {
        for (const operand of operands) if (!operand(test)) return false;
        return true;
      };
    }
    case 'or': {
      const operands = node.operands.map((operand) => compileCondition(operand, indexOf));
      if (operands.length === 2) {
        const [a, b] = operands;
        return (test) => a(test) || b(test);
      }
      return (test) => {
        for (const operand of operands) if (operand(test)) return true;
        return false;
      };
    }
  }
}
