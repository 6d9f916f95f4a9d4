/**
 * Field paths a rule may name, compiled once into getters. A path is a canonical `AgentEvent` path
 * (`CANONICAL_FIELDS`) or an alert field of a fed-back alert, optionally followed by an inventory
 * look-up (`blueprintAppId@liveChildren`). A getter returns undefined, a scalar, an object or an
 * array (every element of every array on the way: `audit.targets.id`).
 */
import { CANONICAL_FIELDS, type AgentEvent } from '../normalize/types';
import type { InventoryEntity, InventoryView } from '../ports';

/** Fields an alert fed back to chain rules carries in addition to its last evidence event's fields. */
export const ALERT_FIELDS: readonly string[] = ['alert', 'alert.detectionId', 'alert.id', 'alert.severity', 'alert.dedupKey', 'alert.evidence'];

export const INVENTORY_LOOKUPS = ['kind', 'name', 'parent', 'liveChildren', 'firstParty', 'owners', 'live', 'createdBy'] as const;
export type InventoryLookup = (typeof INVENTORY_LOOKUPS)[number];

const KNOWN_PATHS: ReadonlySet<string> = new Set([...CANONICAL_FIELDS, ...ALERT_FIELDS]);

/** What the getters need besides the event: the inventory of the batch being evaluated. */
export interface EvalContext {
  inventory: InventoryView;
  /**
   * While a sequence rule's alert is built: per step index, the values of the `steps.<name>.<path>`
   * fields its output reads, captured from the event that satisfied the step.
   */
  stepValues?: readonly (CapturedValues | undefined)[];
}

/** Values of a step's event or a memory's setting event, by field path: a string, or a list where the field is a list. */
export type CapturedValues = Readonly<Record<string, string | string[]>>;

export type FieldGetter = (event: AgentEvent, ctx: EvalContext) => unknown;

export interface ParsedFieldPath {
  text: string;
  base: string;
  lookup?: InventoryLookup;
}

/** Parses and checks a path; returns an error message a rule author understands, or the parsed path. */
export function parseFieldPath(text: string): ParsedFieldPath | { error: string } {
  const at = text.indexOf('@');
  const base = at < 0 ? text : text.slice(0, at);
  const lookupName = at < 0 ? undefined : text.slice(at + 1);
  if (!KNOWN_PATHS.has(base)) {
    const suggestion = closestPath(base);
    return { error: `unknown field ${JSON.stringify(base)}: expected a canonical AgentEvent path (CANONICAL_FIELDS)${suggestion ? `; did you mean ${JSON.stringify(suggestion)}?` : ''}` };
  }
  if (lookupName !== undefined && !(INVENTORY_LOOKUPS as readonly string[]).includes(lookupName)) {
    return { error: `unknown inventory look-up @${lookupName}: expected one of ${INVENTORY_LOOKUPS.map((l) => '@' + l).join(', ')}` };
  }
  return { text, base, lookup: lookupName as InventoryLookup | undefined };
}

function closestPath(base: string): string | undefined {
  const lowered = base.toLowerCase();
  let best: string | undefined;
  let bestScore = Infinity;
  for (const candidate of KNOWN_PATHS) {
    const score = editDistance(lowered, candidate.toLowerCase());
    if (score < bestScore) {
      bestScore = score;
      best = candidate;
    }
  }
  return bestScore <= Math.max(2, Math.floor(base.length / 4)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

type Bag = Record<string, unknown>;

function collectInto(value: unknown, segments: readonly string[], index: number, out: unknown[]): void {
  let current = value;
  for (let i = index; i < segments.length; i++) {
    if (current === undefined || current === null) return;
    if (Array.isArray(current)) {
      for (const element of current) collectInto(element, segments, i, out);
      return;
    }
    current = (current as Bag)[segments[i]];
  }
  if (current === undefined || current === null) return;
  if (Array.isArray(current)) {
    for (const element of current) if (element !== undefined && element !== null) out.push(element);
  } else out.push(current);
}

/** Getter of a plain path. Shallow paths without arrays cost a few property reads and no allocation. */
export function compileBaseGetter(base: string): (event: AgentEvent) => unknown {
  const segments = base.split('.');
  if (segments.length === 1) {
    const [a] = segments;
    return (event) => (event as unknown as Bag)[a];
  }
  return (event) => {
    let current: unknown = event;
    for (let i = 0; i < segments.length; i++) {
      if (current === undefined || current === null) return undefined;
      if (Array.isArray(current)) {
        const out: unknown[] = [];
        for (const element of current) collectInto(element, segments, i, out);
        return out;
      }
      current = (current as Bag)[segments[i]];
    }
    return current;
  };
}

function entityOf(inventory: InventoryView, value: unknown): InventoryEntity | undefined {
  if (typeof value === 'string') return inventory.lookup(value);
  if (value && typeof value === 'object') {
    const principal = value as { id?: unknown; appId?: unknown };
    return (typeof principal.id === 'string' ? inventory.lookup(principal.id) : undefined) ?? (typeof principal.appId === 'string' ? inventory.lookup(principal.appId) : undefined);
  }
  return undefined;
}

function lookupOne(lookup: InventoryLookup, inventory: InventoryView, value: unknown): unknown {
  switch (lookup) {
    case 'kind':
      return entityOf(inventory, value)?.kind;
    case 'name':
      return entityOf(inventory, value)?.name;
    case 'parent':
      return entityOf(inventory, value)?.parentId;
    case 'owners':
      return entityOf(inventory, value)?.owners;
    case 'live':
      return entityOf(inventory, value)?.live;
    case 'createdBy':
      return entityOf(inventory, value)?.createdByAppId;
    case 'liveChildren': {
      const entity = entityOf(inventory, value);
      // Children hang off a blueprint's app id; a path may name its object id instead.
      const parentId = entity?.appId ?? (typeof value === 'string' ? value : (value as { appId?: string; id?: string }).appId ?? (value as { id?: string }).id);
      if (!parentId) return 0;
      let live = 0;
      for (const child of inventory.children(parentId)) if (child.live) live++;
      return live;
    }
    case 'firstParty': {
      const entity = entityOf(inventory, value);
      if (typeof value === 'string') return inventory.isFirstParty({ appId: entity?.appId ?? value, ownerTenantId: entity?.ownerTenantId });
      const principal = value as { appId?: string; ownerTenantId?: string };
      return inventory.isFirstParty({ appId: principal.appId ?? entity?.appId, ownerTenantId: principal.ownerTenantId ?? entity?.ownerTenantId });
    }
  }
}

/** Getter of a parsed path, inventory look-up included. */
export function compileGetter(path: ParsedFieldPath): FieldGetter {
  const base = compileBaseGetter(path.base);
  const lookup = path.lookup;
  if (!lookup) return base;
  return (event, ctx) => lookedUp(lookup, ctx.inventory, base(event));
}

/**
 * Getter of a field of a sequence step's event (`steps.<name>.<path>` in a rule's output): the value
 * captured when the step's event was buffered (`captureValue`), its look-up answered now.
 */
export function compileStepGetter(stepIndex: number, path: ParsedFieldPath): FieldGetter {
  return compileCapturedGetter((_event, ctx) => ctx.stepValues?.[stepIndex], path);
}

/** Getter of a captured field: `captures` finds the captured values (a step's, a memory's), the look-up is answered now. */
export function compileCapturedGetter(captures: (event: AgentEvent, ctx: EvalContext) => CapturedValues | undefined, path: ParsedFieldPath): FieldGetter {
  const lookup = path.lookup;
  const key = path.base;
  return (event, ctx) => {
    const captured = captures(event, ctx)?.[key];
    return lookup ? lookedUp(lookup, ctx.inventory, captured) : captured;
  };
}

/** The values of `fields` an event carries, as kept for the output; undefined when it carries none. */
export function captureFields(fields: readonly { path: string; getter: FieldGetter }[], event: AgentEvent, ctx: EvalContext): Record<string, string | string[]> | undefined {
  let captures: Record<string, string | string[]> | undefined;
  for (const field of fields) {
    const value = captureValue(field.getter(event, ctx));
    if (value !== undefined) (captures ??= {})[field.path] = value;
  }
  return captures;
}

/** Whether two sets of captured values are the same. */
export function sameCaptures(a: CapturedValues | undefined, b: CapturedValues | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) {
    const left = a[key];
    const right = b[key];
    if (typeof left === 'string' || typeof right === 'string') {
      if (left !== right) return false;
    } else if (!right || left.length !== right.length || left.some((text, index) => text !== right[index])) return false;
  }
  return true;
}

/** What a step's event keeps of a field for the output: its text, or its texts (distinct, at most 20) where it is a list. */
export function captureValue(value: unknown): string | string[] | undefined {
  if (!Array.isArray(value)) return keyText(value) || undefined;
  const texts: string[] = [];
  for (const element of value) {
    const text = keyText(element);
    if (text && !texts.includes(text) && texts.push(text) >= 20) break;
  }
  return texts.length ? texts : undefined;
}

function lookedUp(lookup: InventoryLookup, inventory: InventoryView, value: unknown): unknown {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) return lookupOne(lookup, inventory, value);
  const out: unknown[] = [];
  for (const element of value) {
    const result = lookupOne(lookup, inventory, element);
    if (result === undefined || result === null) continue;
    if (Array.isArray(result)) out.push(...result);
    else out.push(result);
  }
  return out;
}

/** Calls `visit` for every present scalar/object a getter returned (arrays flattened one level). */
export function forEachValue(value: unknown, visit: (element: unknown) => void): void {
  if (value === undefined || value === null) return;
  if (Array.isArray(value)) {
    for (const element of value) if (element !== undefined && element !== null) visit(element);
  } else visit(value);
}

/** The present values a getter returned, as a list (empty when missing). */
export function valuesOf(value: unknown): unknown[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return value.filter((element) => element !== undefined && element !== null);
  return [value];
}

/** Text of a key/dedup value: ids and names as sent, principals by id or app id. */
export function keyText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value && typeof value === 'object') {
    const principal = value as { id?: unknown; appId?: unknown };
    if (typeof principal.id === 'string') return principal.id;
    if (typeof principal.appId === 'string') return principal.appId;
  }
  return undefined;
}
