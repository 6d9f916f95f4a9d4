/**
 * Bicep syntax checking and content queries without the Bicep CLI (it cannot be downloaded here):
 * the tree-sitter-bicep grammar's WASM build on web-tree-sitter 0.22.6. Syntax only: no type
 * checking, no ARM output, so the content tests assert on what the files say.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Parser from 'web-tree-sitter';

type SyntaxNode = Parser.SyntaxNode;

export interface BicepSyntaxProblem {
  kind: 'ERROR' | 'MISSING';
  line: number;
  column: number;
  text: string;
}

export interface ParsedBicep {
  root: SyntaxNode;
  problems: BicepSyntaxProblem[];
}

const repoRoot = join(__dirname, '..', '..');
let parserReady: Promise<Parser> | undefined;

async function loadParser(): Promise<Parser> {
  await Parser.init();
  const bicep = await Parser.Language.load(join(repoRoot, 'node_modules', 'tree-sitter-bicep', 'tree-sitter-bicep.wasm'));
  const parser = new Parser();
  parser.setLanguage(bicep);
  return parser;
}

export async function parseBicep(source: string): Promise<ParsedBicep> {
  parserReady ??= loadParser();
  const parser = await parserReady;
  const root = parser.parse(source).rootNode;
  return { root, problems: syntaxProblems(root) };
}

/** Every ERROR node and every node the parser had to invent (MISSING), with 1-based positions. */
export function syntaxProblems(root: SyntaxNode): BicepSyntaxProblem[] {
  const problems: BicepSyntaxProblem[] = [];
  const visit = (node: SyntaxNode) => {
    // In 0.22.6 isMissing / hasError are properties, not methods.
    if (node.type === 'ERROR' || node.isMissing) {
      problems.push({
        kind: node.isMissing ? 'MISSING' : 'ERROR',
        line: node.startPosition.row + 1,
        column: node.startPosition.column + 1,
        text: node.text.slice(0, 80),
      });
    }
    if (node.hasError || node.isMissing) for (const child of node.children) visit(child);
  };
  visit(root);
  return problems;
}

/** `*.bicep` files under a folder, recursively, as repo-relative paths. */
export function bicepFilesUnder(folder: string): string[] {
  const found: string[] = [];
  const walk = (relative: string) => {
    for (const entry of readdirSync(join(repoRoot, relative), { withFileTypes: true })) {
      const child = join(relative, entry.name);
      if (entry.isDirectory()) walk(child);
      else if (entry.name.endsWith('.bicep')) found.push(child);
    }
  };
  walk(folder);
  return found.sort();
}

export function readRepoFile(relative: string): string {
  return readFileSync(join(repoRoot, relative), 'utf8');
}

function descendants(node: SyntaxNode, type: string): SyntaxNode[] {
  return node.descendantsOfType(type);
}

function stringValue(node: SyntaxNode | null | undefined): string | undefined {
  if (!node || node.type !== 'string') return undefined;
  return node.text.replace(/^'|'$/g, '');
}

/** Resource types with API version, e.g. `Microsoft.Web/sites@2024-04-01`, of every `resource` declaration. */
export function resourceTypes(root: SyntaxNode): string[] {
  return descendants(root, 'resource_declaration')
    .map((declaration) => stringValue(declaration.namedChildren.find((child) => child.type === 'string')))
    .filter((type): type is string => type !== undefined);
}

/** The contents of every string literal (interpolations kept as written). */
export function stringLiterals(root: SyntaxNode): string[] {
  return descendants(root, 'string').map((node) => node.text.replace(/^'|'$/g, ''));
}

/** `targetScope = '…'`, or undefined (resource group). */
export function targetScope(root: SyntaxNode): string | undefined {
  const assignment = descendants(root, 'target_scope_assignment')[0];
  return stringValue(assignment?.namedChildren.find((child) => child.type === 'string'));
}

/** Module paths of every `module` declaration. */
export function modulePaths(root: SyntaxNode): string[] {
  return descendants(root, 'module_declaration')
    .map((declaration) => stringValue(declaration.namedChildren.find((child) => child.type === 'string')))
    .filter((path): path is string => path !== undefined);
}

/** Key → value text of an object literal's direct properties. */
function objectProperties(objectNode: SyntaxNode): Map<string, SyntaxNode> {
  const properties = new Map<string, SyntaxNode>();
  for (const property of objectNode.namedChildren) {
    if (property.type !== 'object_property') continue;
    const [key, value] = property.namedChildren.filter((child) => child.type !== 'comment');
    if (key && value) properties.set(key.text.replace(/^'|'$/g, ''), value);
  }
  return properties;
}

/**
 * App setting names a template sets: keys of the object literals given to any `appSettings:`
 * property, following `union(…)` arguments and references to variables.
 */
export function appSettingNames(root: SyntaxNode): string[] {
  const variables = new Map<string, SyntaxNode>();
  for (const declaration of descendants(root, 'variable_declaration')) {
    const [name, value] = declaration.namedChildren.filter((child) => child.type !== 'comment');
    if (name && value) variables.set(name.text, value);
  }
  const names = new Set<string>();
  const collect = (value: SyntaxNode, seen: Set<string>) => {
    // `[for s in items(x): {name: …, value: …}]` turns a name → value object into the array form.
    if (value.type === 'for_statement') return;
    if (value.type === 'object') {
      for (const key of objectProperties(value).keys()) names.add(key);
      return;
    }
    if (value.type === 'identifier' && variables.has(value.text) && !seen.has(value.text)) {
      collect(variables.get(value.text)!, new Set([...seen, value.text]));
      return;
    }
    for (const child of value.namedChildren) collect(child, seen);
  };
  for (const property of descendants(root, 'object_property')) {
    const [key, value] = property.namedChildren.filter((child) => child.type !== 'comment');
    if (key?.text === 'appSettings' && value) collect(value, new Set());
  }
  return [...names].sort();
}
