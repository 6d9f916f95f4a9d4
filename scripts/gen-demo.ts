/**
 * Deterministic generator of agentwatch's synthetic streams for the fictional tenant "Northwind
 * Traders" (detections/fixtures/README.md):
 *
 *   node dist/scripts/gen-demo.js              → samples/demo-day.ndjson.gz (the `npm start` demo)
 *   node dist/scripts/gen-demo.js --scenarios  → test/fixtures/scenarios/catalog/<id>.ndjson(.gz)
 *
 * Every record is a patched copy of a shared fixture base (detections/fixtures/*.yaml), so the
 * rules' embedded tests, the scenario streams and the demo share one set of record shapes. A
 * seeded PRNG drives every choice: the same code writes byte-identical files.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parse } from 'yaml';

type RawRecord = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Randomness and time

/** mulberry32: small, fast, good enough for synthetic traffic; never Math.random. */
export function createRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (p) => next() < p,
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
  };
}

export interface Rng {
  next(): number;
  /** Inclusive range. */
  int(min: number, max: number): number;
  chance(probability: number): boolean;
  pick<T>(items: readonly T[]): T;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** The demo day; the day before it is history so 24 h learning periods are over when attacks start. */
export const DEMO_DAY = Date.parse('2026-10-05T00:00:00Z');
export const HISTORY_DAY = DEMO_DAY - DAY;

/** `2026-10-05T10:03:12.4410000Z`: the 7-digit fraction of the diagnostic envelopes. */
function envelopeTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');
}

/** `2026-10-05T10:00:00.0000000+00:00`: sign-in createdDateTime as observed. */
function signInTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$10000+00:00');
}

/** `10/5/2026 8:30:00 AM`: the US-style envelope time the risk categories carry. */
function usTime(ms: number): string {
  const d = new Date(ms);
  const h = d.getUTCHours();
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCMonth() + 1}/${d.getUTCDate()}/${d.getUTCFullYear()} ${h % 12 === 0 ? 12 : h % 12}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} ${h < 12 ? 'AM' : 'PM'}`;
}

/** A time on the demo day (`at(9, 30)`) or another day (`at(9, 30, 0, HISTORY_DAY)`). */
export function at(hours: number, minutes = 0, seconds = 0, day = DEMO_DAY): number {
  return day + hours * HOUR + minutes * MINUTE + seconds * 1000;
}

// ---------------------------------------------------------------------------------------------
// Fixture bases

export function repoRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'detections'))) return dir;
    dir = dirname(dir);
  }
  throw new Error(`gen-demo: cannot find the repository root above ${__dirname}`);
}

export function loadBases(root: string): Map<string, RawRecord> {
  const dir = join(root, 'detections', 'fixtures');
  const bases = new Map<string, RawRecord>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    const doc = parse(readFileSync(join(dir, file), 'utf8')) as Record<string, RawRecord>;
    for (const [name, record] of Object.entries(doc)) {
      if (bases.has(name)) throw new Error(`gen-demo: fixture base ${name} defined twice (${file})`);
      bases.set(name, record);
    }
  }
  return bases;
}

/** Sets a dotted path (array indexes as numbers), creating objects on the way. */
function setPath(target: RawRecord, path: string, value: unknown): void {
  const parts = path.split('.');
  let node: Record<string, unknown> | unknown[] = target;
  for (let i = 0; i < parts.length - 1; i++) {
    const key = parts[i]!;
    const container = node as Record<string, unknown>;
    if (container[key] === undefined || container[key] === null || typeof container[key] !== 'object') container[key] = /^\d+$/.test(parts[i + 1]!) ? [] : {};
    node = container[key] as Record<string, unknown>;
  }
  (node as Record<string, unknown>)[parts[parts.length - 1]!] = value;
}

function deletePath(target: RawRecord, path: string): void {
  const parts = path.split('.');
  let node: unknown = target;
  for (let i = 0; i < parts.length - 1; i++) node = (node as Record<string, unknown> | undefined)?.[parts[i]!];
  if (node && typeof node === 'object') delete (node as Record<string, unknown>)[parts[parts.length - 1]!];
}

// ---------------------------------------------------------------------------------------------
// The tenant

export const TENANT_ID = '7d3e9a10-4c2b-4f6e-8a1d-5b0c9e2f4a61';
const DOMAIN = 'northwind.example';

function guid(prefix: string, n: number): string {
  return `${prefix}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

export interface Person {
  id: string;
  upn: string;
  name: string;
  /** Where the person usually signs in from. */
  ip: string;
}

export interface Resource {
  appId: string;
  name: string;
  spId: string;
}

export const RESOURCES = {
  graph: { appId: '00000003-0000-0000-c000-000000000000', name: 'Microsoft Graph', spId: guid('9e000000', 1) },
  sharepoint: { appId: '00000003-0000-0ff1-ce00-000000000000', name: 'Office 365 SharePoint Online', spId: guid('9e000000', 2) },
  exchange: { appId: '00000002-0000-0ff1-ce00-000000000000', name: 'Office 365 Exchange Online', spId: guid('9e000000', 3) },
  keyVault: { appId: 'cfa8b339-82a2-471a-a3c9-0fc0be7a4093', name: 'Azure Key Vault', spId: guid('9e000000', 4) },
  arm: { appId: '797f4846-ba00-4fd7-ba43-dac1f8f63013', name: 'Windows Azure Service Management API', spId: guid('9e000000', 5) },
  storage: { appId: 'e406a681-f3d4-42a8-90b6-c2b029497af1', name: 'Azure Storage', spId: guid('9e000000', 6) },
  teams: { appId: 'cc15fd57-2c6c-4117-a88c-83b1d56b4bbe', name: 'Microsoft Teams Services', spId: guid('9e000000', 8) },
} satisfies Record<string, Resource>;

export interface Blueprint {
  appId: string;
  objectId: string;
  principalId: string;
  name: string;
  /** The blueprint's hosting egress: every T1 exchange comes from here. */
  ip: string;
  /** The client secret its workload presents. */
  keyId: string;
}

export interface Agent {
  id: string;
  name: string;
  blueprint: Blueprint;
  /** Resources it normally obtains tokens for. */
  resources: Resource[];
  /** Its agent user, when it has one. */
  agentUser?: { id: string; upn: string };
  /** People it acts for on their behalf (OBO), when it does. */
  actsFor?: Person[];
}

const blueprint = (n: number, name: string, ip: string): Blueprint => ({
  appId: guid('b1a00000', n),
  objectId: guid('b1a00000', 0x100 + n),
  principalId: guid('b1a00000', 0x200 + n),
  name,
  ip,
  keyId: guid('5ec00000', n),
});

export const BLUEPRINTS = {
  finance: blueprint(1, 'Finance Agents Blueprint', '198.51.100.10'),
  helpdesk: blueprint(2, 'Helpdesk Agents Blueprint', '198.51.100.20'),
  research: blueprint(3, 'Research Agents Blueprint', '198.51.100.30'),
  legacy: blueprint(4, 'Legacy Reporting Blueprint', '198.51.100.50'),
};

/** Microsoft's Copilot Studio blueprint (first party): its agents only show T2 sign-ins here. */
export const COPILOT_BLUEPRINT: Blueprint = {
  appId: '25664c89-cea5-4ab6-b924-a54fd8a19ae0',
  objectId: '25664c89-cea5-4ab6-b924-a54fd8a19ae0',
  principalId: guid('9e000000', 0x25),
  name: 'Microsoft Copilot Studio agent identity blueprint',
  ip: '198.51.100.40',
  keyId: '',
};

const NAMED_PEOPLE: Array<[string, string]> = [
  ['alice.admin', 'Alice Admin'],
  ['bob.finance', 'Bob Finance'],
  ['carol.maker', 'Carol Maker'],
  ['dana.ops', 'Dana Ops'],
  ['eve.contractor', 'Eve Contractor'],
  ['frank.helpdesk', 'Frank Helpdesk'],
  ['grace.research', 'Grace Research'],
];

const FIRST_NAMES = ['Anna', 'Ben', 'Chloe', 'David', 'Emma', 'Finn', 'Gina', 'Hugo', 'Iris', 'Jonas', 'Kim', 'Lars', 'Maya', 'Noah', 'Olga', 'Pieter', 'Quinn', 'Rosa', 'Sven', 'Tara', 'Umar', 'Vera', 'Wim', 'Xenia', 'Yusuf', 'Zoe'];
const LAST_NAMES = ['Bakker', 'Jansen', 'Visser', 'Smit', 'Meijer', 'de Boer', 'Mulder', 'de Groot', 'Bos', 'Vos', 'Peters', 'Hendriks'];

export interface Tenant {
  people: Person[];
  byUpn: Map<string, Person>;
  apps: Array<{ appId: string; spId: string; objectId: string; name: string; ip: string; keyId: string }>;
  managedIdentities: Array<{ appId: string; spId: string; name: string }>;
  agents: Record<string, Agent>;
}

/** `size` people (the seven named ones first), 40 line-of-business apps, 30 managed identities, 12 agents. */
export function buildTenant(size = 300): Tenant {
  const people: Person[] = [];
  NAMED_PEOPLE.forEach(([alias, name], i) => people.push({ id: guid('e5e00000', i + 1), upn: `${alias}@${DOMAIN}`, name, ip: i === 4 ? '192.0.2.77' : '192.0.2.10' }));
  for (let n = people.length + 1; n <= size; n++) {
    const first = FIRST_NAMES[n % FIRST_NAMES.length]!;
    const last = LAST_NAMES[Math.floor(n / FIRST_NAMES.length) % LAST_NAMES.length]!;
    const alias = `${first}.${last.replace(' ', '')}${n}`.toLowerCase();
    // Office workers leave through the corporate NAT; remote workers from their own address.
    const ip = n % 3 === 0 ? `198.51.100.${60 + (n % 130)}` : '192.0.2.10';
    people.push({ id: guid('e5e00000', n), upn: `${alias}@${DOMAIN}`, name: `${first} ${last}`, ip });
  }
  const byUpn = new Map(people.map((p) => [p.upn, p]));
  const apps = Array.from({ length: 40 }, (_, i) => ({
    appId: guid('5a000000', i + 1),
    spId: guid('5a000000', 0x100 + i + 1),
    objectId: guid('5a000000', 0x200 + i + 1),
    name: i === 0 ? 'Payroll Sync' : i === 1 ? 'Provisioning Robot' : `LOB App ${String(i + 1).padStart(2, '0')}`,
    ip: `192.0.2.${20 + i}`,
    keyId: guid('5ec00000', 0x500 + i + 1),
  }));
  const managedIdentities = Array.from({ length: 30 }, (_, i) => ({
    appId: guid('3a100000', i + 1),
    spId: guid('3a100000', 0x100 + i + 1),
    name: i === 0 ? 'mi-finance-agents-runtime' : `mi-workload-${String(i + 1).padStart(2, '0')}`,
  }));
  const person = (alias: string) => byUpn.get(`${alias}@${DOMAIN}`)!;
  const financeTeam = [person('bob.finance'), ...people.slice(7, 19)];
  const agent = (n: number, name: string, bp: Blueprint, resources: Resource[], extra: Partial<Agent> = {}): Agent => ({ id: guid('a1d00000', n), name, blueprint: bp, resources, ...extra });
  const R = RESOURCES;
  const agents: Record<string, Agent> = {
    invoice: agent(0x11, 'invoice-agent', BLUEPRINTS.finance, [R.graph, R.sharepoint], { agentUser: { id: guid('a0c00000', 0x11), upn: `invoice-agent@${DOMAIN}` }, actsFor: financeTeam }),
    expense: agent(0x12, 'expense-agent', BLUEPRINTS.finance, [R.graph], { actsFor: [...financeTeam, person('eve.contractor')] }),
    triage: agent(0x21, 'helpdesk-triage', BLUEPRINTS.helpdesk, [R.graph], { agentUser: { id: guid('a0c00000', 0x21), upn: `helpdesk-triage@${DOMAIN}` } }),
    reset: agent(0x22, 'password-reset-agent', BLUEPRINTS.helpdesk, [R.graph]),
    curator: agent(0x23, 'kb-curator', BLUEPRINTS.helpdesk, [R.sharepoint]),
    scout: agent(0x31, 'research-scout', BLUEPRINTS.research, [R.graph, R.storage]),
    summarizer: agent(0x32, 'research-summarizer', BLUEPRINTS.research, [R.graph], { actsFor: people.slice(19, 40) }),
    litReview: agent(0x33, 'lit-review', BLUEPRINTS.research, [R.sharepoint]),
    reportBuilder: agent(0x51, 'report-builder', BLUEPRINTS.legacy, [R.graph]),
    travel: agent(0x41, 'Travel Booking Assistant (Microsoft Copilot Studio)', COPILOT_BLUEPRINT, [R.graph, R.exchange]),
    quote: agent(0x42, 'Sales Quote Helper (Microsoft Copilot Studio)', COPILOT_BLUEPRINT, [R.graph]),
    onboarding: agent(0x43, 'HR Onboarding Guide (Microsoft Copilot Studio)', COPILOT_BLUEPRINT, [R.sharepoint]),
  };
  return { people, byUpn, apps, managedIdentities, agents };
}

// ---------------------------------------------------------------------------------------------
// Record builders (each a patched fixture base)

/** Arrival delays per family, seconds: Entra delivers sign-ins and audits minutes late. */
const DELAY_SECONDS: Record<string, [number, number]> = {
  signIn: [30, 480],
  audit: [45, 240],
  risk: [60, 240],
  graph: [120, 900],
  inventory: [5, 60],
};

export interface Emitted {
  record: RawRecord;
  eventMs: number;
  arrivalMs: number;
}

export class StreamBuilder {
  readonly records: Emitted[] = [];
  private counter = 0;

  constructor(
    private readonly bases: Map<string, RawRecord>,
    readonly rng: Rng,
    /** Distinguishes ids across generated files (4 hex digits). */
    private readonly idSpace: number,
  ) {}

  /** A fresh id: `<prefix>-<idSpace>-4000-8000-<counter>`. */
  nextId(prefix: string): string {
    this.counter++;
    return `${prefix}-${this.idSpace.toString(16).padStart(4, '0')}-4000-8000-${this.counter.toString(16).padStart(12, '0')}`;
  }

  base(name: string): RawRecord {
    const base = this.bases.get(name);
    if (!base) throw new Error(`gen-demo: no fixture base named ${name}`);
    return structuredClone(base);
  }

  private emit(record: RawRecord, eventMs: number, family: keyof typeof DELAY_SECONDS, envelope: (ms: number) => string = envelopeTime): RawRecord {
    const [min, max] = DELAY_SECONDS[family]!;
    const arrivalMs = eventMs + this.rng.int(min, max) * 1000 + this.rng.int(0, 999);
    record.time = envelope(arrivalMs);
    this.records.push({ record, eventMs, arrivalMs });
    return record;
  }

  private patch(record: RawRecord, set: Record<string, unknown>): RawRecord {
    for (const [path, value] of Object.entries(set)) setPath(record, path, value);
    return record;
  }

  // --- sign-ins ---------------------------------------------------------------------------------

  private signIn(baseName: string, eventMs: number, set: Record<string, unknown>, failure?: { code: number; reason: string }): RawRecord {
    const record = this.base(baseName);
    const id = this.nextId('51900000');
    const correlationId = this.nextId('0c1e0000');
    this.patch(record, {
      correlationId,
      'properties.id': id,
      'properties.correlationId': correlationId,
      'properties.createdDateTime': signInTime(eventMs),
      'properties.uniqueTokenIdentifier': Buffer.from(id.replace(/-/g, ''), 'hex').toString('base64url'),
      ...set,
    });
    if (set['properties.ipAddress'] !== undefined) record.callerIpAddress = set['properties.ipAddress'];
    if (failure) {
      this.patch(record, {
        resultType: String(failure.code),
        resultSignature: 'FAILURE',
        resultDescription: failure.reason,
        'properties.status': { errorCode: failure.code, failureReason: failure.reason },
      });
      if (failure.code === 53003) this.patch(record, { 'properties.conditionalAccessStatus': 'failure' });
    }
    return this.emit(record, eventMs, 'signIn');
  }

  /** T1: the blueprint exchanges its credential (its usual secret unless told otherwise). */
  t1(bp: Blueprint, eventMs: number, options: { ip?: string; keyId?: string; ficId?: string; failure?: { code: number; reason: string } } = {}): RawRecord {
    const usesFic = options.ficId !== undefined;
    return this.signIn(usesFic ? 't1ExchangeFic' : 't1Exchange', eventMs, {
      'properties.appId': bp.appId,
      'properties.appDisplayName': bp.name,
      'properties.servicePrincipalId': bp.principalId,
      'properties.servicePrincipalName': bp.name,
      'properties.ipAddress': options.ip ?? bp.ip,
      ...(usesFic ? { 'properties.federatedCredentialId': options.ficId } : { 'properties.servicePrincipalCredentialKeyId': options.keyId ?? bp.keyId }),
    }, options.failure);
  }

  private agentSet(agent: Agent, resource: Resource, ip: string | undefined): Record<string, unknown> {
    return {
      'properties.appId': agent.id,
      'properties.appDisplayName': agent.name,
      'properties.servicePrincipalId': agent.id,
      'properties.agent.parentAppId': agent.blueprint.appId,
      'properties.resourceId': resource.appId,
      'properties.resourceDisplayName': resource.name,
      'properties.resourceServicePrincipalId': resource.spId,
      'properties.ipAddress': ip ?? agent.blueprint.ip,
      'properties.appOwnerTenantId': agent.blueprint === COPILOT_BLUEPRINT ? 'f8cdef31-a31e-4b4a-93e4-5f571e91255a' : TENANT_ID,
    };
  }

  /** T2 app-only token of an agent identity. */
  t2(agent: Agent, eventMs: number, options: { resource?: Resource; ip?: string; failure?: { code: number; reason: string } } = {}): RawRecord {
    const resource = options.resource ?? agent.resources[0]!;
    return this.signIn('t2Autonomous', eventMs, {
      ...this.agentSet(agent, resource, options.ip),
      'properties.servicePrincipalName': agent.name,
      'properties.agent.agentSubjectParentId': agent.blueprint.principalId,
    }, options.failure);
  }

  /** T2 on behalf of a person. */
  obo(agent: Agent, person: Person, eventMs: number, options: { resource?: Resource; ip?: string; risk?: string; aggregatedRisk?: string; riskState?: string; failure?: { code: number; reason: string } } = {}): RawRecord {
    const resource = options.resource ?? agent.resources[0]!;
    return this.signIn('t2OnBehalfOf', eventMs, {
      ...this.agentSet(agent, resource, options.ip),
      identity: person.name,
      'properties.userId': person.id,
      'properties.userPrincipalName': person.upn,
      'properties.userDisplayName': person.name,
      'properties.riskLevelDuringSignIn': options.risk ?? 'none',
      'properties.riskLevelAggregated': options.aggregatedRisk ?? 'none',
      'properties.riskState': options.riskState ?? 'none',
    }, options.failure);
  }

  /** T2 as the agent's own user account. */
  asAgentUser(agent: Agent, eventMs: number, options: { resource?: Resource; ip?: string } = {}): RawRecord {
    const user = agent.agentUser;
    if (!user) throw new Error(`gen-demo: ${agent.name} has no agent user`);
    return this.signIn('agentUserSignIn', eventMs, {
      ...this.agentSet(agent, options.resource ?? RESOURCES.sharepoint, options.ip),
      identity: `${agent.name} (agent user)`,
      'properties.userId': user.id,
      'properties.userPrincipalName': user.upn,
      'properties.userDisplayName': `${agent.name} (agent user)`,
      'properties.agent.agentSubjectParentId': agent.id,
    });
  }

  /** A person's own sign-in: interactive to an Office app, or a client's non-interactive refresh. */
  person(person: Person, eventMs: number, options: { interactive?: boolean; resource?: Resource; ip?: string; risk?: string; failure?: { code: number; reason: string } } = {}): RawRecord {
    const interactive = options.interactive ?? true;
    const resource = options.resource ?? RESOURCES.exchange;
    return this.signIn('userInteractiveSignIn', eventMs, {
      category: interactive ? 'SignInLogs' : 'NonInteractiveUserSignInLogs',
      identity: person.name,
      'properties.userId': person.id,
      'properties.userPrincipalName': person.upn,
      'properties.userDisplayName': person.name,
      'properties.appId': resource.appId,
      'properties.appDisplayName': resource.name,
      'properties.resourceId': resource.appId,
      'properties.resourceDisplayName': resource.name,
      'properties.signInEventTypes': [interactive ? 'interactiveUser' : 'nonInteractiveUser'],
      'properties.isInteractive': interactive,
      'properties.clientAppUsed': interactive ? 'Browser' : 'Mobile Apps and Desktop clients',
      'properties.ipAddress': options.ip ?? person.ip,
      'properties.riskLevelDuringSignIn': options.risk ?? 'none',
      'properties.riskLevelAggregated': options.risk ?? 'none',
    }, options.failure);
  }

  /** A maker's non-interactive sign-in through a Copilot Studio / Power Platform connector client. */
  connector(person: Person, eventMs: number, options: { ip?: string; client?: { appId: string; name: string }; resource?: Resource } = {}): RawRecord {
    const resource = options.resource ?? RESOURCES.sharepoint;
    return this.signIn('connectorSignIn', eventMs, {
      identity: person.name,
      'properties.userId': person.id,
      'properties.userPrincipalName': person.upn,
      'properties.userDisplayName': person.name,
      'properties.ipAddress': options.ip ?? '198.51.100.200',
      'properties.resourceId': resource.appId,
      'properties.resourceDisplayName': resource.name,
      'properties.resourceServicePrincipalId': resource.spId,
      ...(options.client ? { 'properties.appId': options.client.appId, 'properties.appDisplayName': options.client.name } : {}),
    });
  }

  servicePrincipal(app: Tenant['apps'][number], eventMs: number, options: { failure?: { code: number; reason: string }; resource?: Resource } = {}): RawRecord {
    const resource = options.resource ?? RESOURCES.graph;
    return this.signIn('servicePrincipalSignIn', eventMs, {
      'properties.appId': app.appId,
      'properties.appDisplayName': app.name,
      'properties.servicePrincipalId': app.spId,
      'properties.servicePrincipalName': app.name,
      'properties.servicePrincipalCredentialKeyId': app.keyId,
      'properties.ipAddress': app.ip,
      'properties.resourceId': resource.appId,
      'properties.resourceDisplayName': resource.name,
    }, options.failure);
  }

  managedIdentity(mi: Tenant['managedIdentities'][number], eventMs: number, resource: Resource = RESOURCES.arm): RawRecord {
    return this.signIn('managedIdentitySignIn', eventMs, {
      'properties.appId': mi.appId,
      'properties.appDisplayName': mi.name,
      'properties.servicePrincipalId': mi.spId,
      'properties.servicePrincipalName': mi.name,
      'properties.resourceId': resource.appId,
      'properties.resourceDisplayName': resource.name,
    });
  }

  // --- audits -----------------------------------------------------------------------------------

  private audit(baseName: string, eventMs: number, set: Record<string, unknown>, options: { by?: Person | { appId: string; name: string; spId: string }; operation?: string; unset?: string[] } = {}): RawRecord {
    const record = this.base(baseName);
    const correlationId = this.nextId('0c2e0000');
    this.patch(record, {
      correlationId,
      'properties.id': `Directory_${correlationId}_NW${this.idSpace.toString(16).padStart(4, '0')}_${this.counter}`,
      'properties.correlationId': correlationId,
      'properties.activityDateTime': new Date(eventMs).toISOString().replace('Z', '+00:00'),
      ...set,
    });
    if (options.operation) this.patch(record, { operationName: options.operation, 'properties.activityDisplayName': options.operation });
    for (const path of options.unset ?? []) deletePath(record, path);
    const by = options.by;
    if (by && 'upn' in by) {
      this.patch(record, { 'properties.initiatedBy': { user: { id: by.id, displayName: by.name, userPrincipalName: by.upn, ipAddress: by.ip } }, callerIpAddress: by.ip });
    } else if (by) {
      this.patch(record, { 'properties.initiatedBy': { app: { appId: by.appId, displayName: by.name, servicePrincipalId: by.spId, servicePrincipalName: null } } });
      deletePath(record, 'callerIpAddress');
    }
    return this.emit(record, eventMs, 'audit');
  }

  private static keyDescription(keys: Array<{ keyId: string; type?: string; name: string }>): string {
    return JSON.stringify(keys.map((k) => `[KeyIdentifier=${k.keyId},KeyType=${k.type ?? 'Password'},KeyUsage=Verify,DisplayName=${k.name}]`));
  }

  /** `Update application – Certificates and secrets management` on any application. */
  secretAdded(app: { objectId: string; appId: string; name: string }, by: Person | { appId: string; name: string; spId: string }, eventMs: number, oldKeys: Array<{ keyId: string; name: string }>, newKey: { keyId: string; name: string }): RawRecord {
    return this.audit('blueprintSecretAdded', eventMs, {
      'properties.targetResources.0.id': app.objectId,
      'properties.targetResources.0.displayName': app.name,
      'properties.targetResources.0.modifiedProperties.0.oldValue': StreamBuilder.keyDescription(oldKeys),
      'properties.targetResources.0.modifiedProperties.0.newValue': StreamBuilder.keyDescription([...oldKeys, newKey]),
      'properties.additionalDetails.1.value': app.appId,
    }, { by });
  }

  /** `Add service principal credentials` (succeeds on a blueprint principal, refused on an agent identity). */
  spCredentialsAdded(sp: { id: string; appId: string; name: string }, by: Person | { appId: string; name: string; spId: string }, eventMs: number, key: { keyId: string; name: string; type?: string }, refused: boolean): RawRecord {
    return this.audit('agentIdentityCredentialAttempt', eventMs, {
      'properties.result': refused ? 'failure' : 'success',
      'properties.resultReason': refused ? 'Credentials cannot be added to an agent identity.' : '',
      'properties.targetResources.0.id': sp.id,
      'properties.targetResources.0.displayName': sp.name,
      'properties.targetResources.0.modifiedProperties.0.newValue': StreamBuilder.keyDescription([key]),
      'properties.additionalDetails': [{ key: 'AppId', value: sp.appId }],
    }, { by });
  }

  /** `Update application` adding a federated credential (issuer / subject) to a blueprint. */
  ficAdded(bp: Blueprint, by: Person, eventMs: number, existing: FederatedCredential[], added: FederatedCredential): RawRecord {
    return this.audit('blueprintFicAdded', eventMs, {
      'properties.targetResources.0.id': bp.objectId,
      'properties.targetResources.0.displayName': bp.name,
      'properties.targetResources.0.modifiedProperties.0.oldValue': JSON.stringify(existing.map(ficJson)),
      'properties.targetResources.0.modifiedProperties.0.newValue': JSON.stringify([...existing, added].map(ficJson)),
      'properties.additionalDetails.0.value': bp.appId,
    }, { by });
  }

  /** `Update application` re-pointing an existing federated credential (same id, new subject). */
  ficEdited(bp: Blueprint, by: Person, eventMs: number, before: FederatedCredential, after: FederatedCredential): RawRecord {
    return this.audit('blueprintFicEdited', eventMs, {
      'properties.targetResources.0.id': bp.objectId,
      'properties.targetResources.0.displayName': bp.name,
      'properties.targetResources.0.modifiedProperties.0.oldValue': JSON.stringify([ficJson(before)]),
      'properties.targetResources.0.modifiedProperties.0.newValue': JSON.stringify([ficJson(after)]),
      'properties.additionalDetails': [{ key: 'AppId', value: bp.appId }],
    }, { by });
  }

  /** Delegated scopes granted to a client service principal (`Add delegated permission grant`). */
  delegatedGrant(client: { id: string; name: string }, scopes: string[], by: Person, eventMs: number): RawRecord {
    return this.audit('delegatedGrantToAgent', eventMs, {
      'properties.targetResources.0.modifiedProperties.0.newValue': JSON.stringify(` ${scopes.join(' ')}`),
      'properties.targetResources.0.modifiedProperties.2.newValue': JSON.stringify(client.id),
      'properties.targetResources.1.id': client.id,
      'properties.targetResources.1.displayName': client.name,
    }, { by });
  }

  /** An app role of Microsoft Graph assigned to a service principal. */
  appRole(assignee: { id: string; appId: string; name: string }, role: string, by: Person, eventMs: number): RawRecord {
    return this.audit('appRoleToAgent', eventMs, {
      'properties.targetResources.0.modifiedProperties.1.newValue': JSON.stringify(role),
      'properties.targetResources.0.modifiedProperties.2.newValue': JSON.stringify(role),
      'properties.targetResources.0.modifiedProperties.5.newValue': JSON.stringify(assignee.id),
      'properties.targetResources.0.modifiedProperties.6.newValue': JSON.stringify(assignee.name),
      'properties.targetResources.0.modifiedProperties.7.newValue': JSON.stringify(assignee.appId),
      'properties.targetResources.0.modifiedProperties.8.newValue': JSON.stringify(assignee.appId),
      'properties.targetResources.1.id': assignee.id,
      'properties.targetResources.1.displayName': assignee.name,
    }, { by });
  }

  /** Admin consent of delegated scopes on a resource to a client (`Consent to application`). */
  consent(client: { id: string; name: string }, scopes: string[], by: Person, eventMs: number, resource: Resource = RESOURCES.graph): RawRecord {
    const permissions = `[] => [[Id: ${this.nextId('9a000000').replace(/-/g, '')}, ClientId: ${client.id}, PrincipalId: , ResourceId: ${resource.spId}, ConsentType: AllPrincipals, Scope:  ${scopes.join(' ')}, CreatedDateTime: , LastModifiedDateTime ]]; `;
    return this.audit('consentToAgent', eventMs, {
      'properties.targetResources.0.id': client.id,
      'properties.targetResources.0.displayName': client.name,
      'properties.targetResources.0.modifiedProperties.4.newValue': JSON.stringify(permissions),
      'properties.targetResources.0.modifiedProperties.5.newValue': JSON.stringify(client.id),
    }, { by });
  }

  roleMember(member: { id: string; upn: string; name: string }, role: { name: string; templateId: string }, by: Person, eventMs: number): RawRecord {
    return this.audit('agentUserAddedToRole', eventMs, {
      'properties.targetResources.0.id': member.id,
      'properties.targetResources.0.userPrincipalName': member.upn,
      'properties.targetResources.0.displayName': member.name,
      'properties.targetResources.0.modifiedProperties.1.newValue': JSON.stringify(role.name),
      'properties.targetResources.0.modifiedProperties.2.newValue': JSON.stringify(role.templateId),
    }, { by });
  }

  groupMember(member: { id: string; upn: string; name: string }, group: { id: string; name: string }, by: Person, eventMs: number): RawRecord {
    return this.audit('agentUserAddedToGroup', eventMs, {
      'properties.targetResources.0.id': member.id,
      'properties.targetResources.0.userPrincipalName': member.upn,
      'properties.targetResources.0.displayName': member.name,
      'properties.targetResources.0.modifiedProperties.0.newValue': JSON.stringify(group.id),
      'properties.targetResources.0.modifiedProperties.1.newValue': JSON.stringify(group.name),
      'properties.targetResources.1.id': group.id,
      'properties.targetResources.1.displayName': group.name,
    }, { by });
  }

  addBlueprint(bp: Blueprint, by: Person, eventMs: number): RawRecord {
    return this.audit('addBlueprintApplication', eventMs, {
      'properties.targetResources.0.id': bp.objectId,
      'properties.targetResources.0.displayName': bp.name,
      'properties.targetResources.0.modifiedProperties.0.newValue': JSON.stringify(bp.appId),
      'properties.targetResources.0.modifiedProperties.1.newValue': JSON.stringify(bp.name),
      'properties.additionalDetails.1.value': bp.appId,
    }, { by });
  }

  addOwner(bp: Blueprint, owner: Person, by: Person, eventMs: number): RawRecord {
    return this.audit('addOwnerToBlueprint', eventMs, {
      'properties.targetResources.0.id': owner.id,
      'properties.targetResources.0.displayName': owner.name,
      'properties.targetResources.0.userPrincipalName': owner.upn,
      'properties.targetResources.0.modifiedProperties.0.newValue': JSON.stringify(bp.objectId),
      'properties.targetResources.0.modifiedProperties.1.newValue': JSON.stringify(bp.appId),
      'properties.targetResources.0.modifiedProperties.2.newValue': JSON.stringify(bp.name),
      'properties.targetResources.1.id': bp.objectId,
      'properties.targetResources.1.displayName': bp.name,
    }, { by });
  }

  addAgentIdentity(agent: Agent, eventMs: number): RawRecord {
    const bp = agent.blueprint;
    return this.audit('addAgentIdentity', eventMs, {
      'properties.targetResources.0.id': agent.id,
      'properties.targetResources.0.displayName': agent.name,
      'properties.targetResources.0.blueprintId': bp.appId,
      'properties.targetResources.0.modifiedProperties.1.newValue': JSON.stringify([agent.id]),
      'properties.targetResources.0.modifiedProperties.2.newValue': JSON.stringify([agent.name]),
      'properties.targetResources.0.modifiedProperties.4.newValue': JSON.stringify([bp.appId]),
    }, { by: { appId: bp.appId, name: bp.name, spId: bp.principalId } });
  }

  /** A classic Copilot Studio agent's app registration, created by Power Virtual Agents Service. */
  addClassicAgent(app: ClassicAgent, eventMs: number): void {
    this.audit('addClassicAgentApplication', eventMs, {
      'properties.targetResources.0.id': app.objectId,
      'properties.targetResources.0.displayName': app.name,
      'properties.targetResources.0.modifiedProperties.0.newValue': JSON.stringify(app.appId),
      'properties.targetResources.0.modifiedProperties.1.newValue': JSON.stringify(app.name),
      'properties.additionalDetails.0.value': app.appId,
    });
    this.audit('addClassicAgentServicePrincipal', eventMs + 2000, {
      'properties.targetResources.0.id': app.spId,
      'properties.targetResources.0.displayName': app.name,
      'properties.targetResources.0.modifiedProperties.1.newValue': JSON.stringify([app.appId]),
      'properties.targetResources.0.modifiedProperties.2.newValue': JSON.stringify([app.name]),
      'properties.additionalDetails.0.value': app.appId,
    });
  }

  deleteApplication(app: { objectId: string; appId: string; name: string }, by: Person, eventMs: number, hard = false): RawRecord {
    return this.audit('deleteBlueprint', eventMs, {
      'properties.targetResources.0.id': app.objectId,
      'properties.targetResources.0.displayName': app.name,
      'properties.additionalDetails.0.value': app.appId,
    }, { by, operation: hard ? 'Hard Delete application' : undefined });
  }

  deleteServicePrincipal(sp: { id: string; name: string }, by: Person, eventMs: number): RawRecord {
    return this.audit('deleteAgentIdentity', eventMs, {
      'properties.targetResources.0.id': sp.id,
      'properties.targetResources.0.displayName': sp.name,
    }, { by });
  }

  /** Routine directory noise: `Update user` on a person (a changed attribute). */
  updateUser(target: Person, by: Person, eventMs: number): RawRecord {
    return this.audit('agentIdentityTagsUpdate', eventMs, {
      'properties.category': 'UserManagement',
      'properties.targetResources.0.id': target.id,
      'properties.targetResources.0.displayName': target.name,
      'properties.targetResources.0.userPrincipalName': target.upn,
      'properties.targetResources.0.type': 'User',
      'properties.targetResources.0.modifiedProperties': [
        { displayName: 'JobTitle', oldValue: '["Analyst"]', newValue: '["Senior Analyst"]' },
        { displayName: 'Included Updated Properties', oldValue: null, newValue: '"JobTitle"' },
      ],
    }, { by, operation: 'Update user' });
  }

  // --- risk ------------------------------------------------------------------------------------

  private risk(baseName: string, eventMs: number, set: Record<string, unknown>): RawRecord {
    const record = this.patch(this.base(baseName), set);
    return this.emit(record, eventMs, 'risk', usTime);
  }

  riskyUser(person: Person, eventMs: number, level: string, state: string, detail = 'none'): RawRecord {
    return this.risk('riskyUser', eventMs, {
      correlationId: person.id,
      identity: person.name.toLowerCase(),
      'properties.id': person.id,
      'properties.userDisplayName': person.name,
      'properties.userPrincipalName': person.upn,
      'properties.riskLastUpdatedDateTime': new Date(eventMs).toISOString(),
      'properties.riskLevel': level,
      'properties.riskState': state,
      'properties.riskDetail': detail,
    });
  }

  userRiskEvent(person: Person, eventMs: number, level: string, type: string, ip: string): RawRecord {
    const id = this.nextId('6b0e0000').replace(/-/g, '').padEnd(64, '0');
    return this.risk('userRiskEvent', eventMs, {
      correlationId: id,
      callerIpAddress: ip,
      identity: person.name.toLowerCase(),
      'properties.id': id,
      'properties.requestId': this.nextId('4e5f0000'),
      'properties.correlationId': this.nextId('4e5f0000'),
      'properties.riskType': type,
      'properties.riskEventType': type,
      'properties.riskLevel': level,
      'properties.ipAddress': ip,
      'properties.activityDateTime': new Date(eventMs - 90_000).toISOString(),
      'properties.detectedDateTime': new Date(eventMs).toISOString(),
      'properties.lastUpdatedDateTime': new Date(eventMs + 60_000).toISOString(),
      'properties.userId': person.id,
      'properties.userDisplayName': person.name,
      'properties.userPrincipalName': person.upn,
    });
  }

  agentRiskEvent(agent: Agent, eventMs: number, level: string, type: string, techniques = 'T1078'): RawRecord {
    const id = this.nextId('8a7f0000').replace(/-/g, '').padEnd(64, '0');
    return this.risk('agentRiskEvent', eventMs, {
      'properties.id': id,
      'properties.agentId': agent.id,
      'properties.identityId': agent.id,
      'properties.blueprintId': agent.blueprint.appId,
      'properties.agentDisplayName': agent.name,
      'properties.displayName': agent.name,
      'properties.activityDateTime': new Date(eventMs - 4 * HOUR).toISOString(),
      'properties.detectedDateTime': new Date(eventMs).toISOString(),
      'properties.lastModifiedDateTime': new Date(eventMs + 120_000).toISOString(),
      'properties.riskEventType': type,
      'properties.riskLevel': level,
      'properties.additionalInfo': JSON.stringify([{ Key: 'alertUrl', Value: null }, { Key: 'mitreTechniques', Value: techniques }]),
    });
  }

  riskyAgent(agent: Agent, eventMs: number, level: string, state: string, detail: string): RawRecord {
    return this.risk('riskyAgent', eventMs, {
      'properties.id': agent.id,
      'properties.blueprintId': agent.blueprint.appId,
      'properties.agentDisplayName': agent.name,
      'properties.riskLastModifiedDateTime': new Date(eventMs).toISOString(),
      'properties.riskLevel': level,
      'properties.riskState': state,
      'properties.riskDetail': detail,
    });
  }

  // --- inventory rows and Graph activity -----------------------------------------------------------

  agentsInfo(agent: Agent, copilotAgentId: string, eventMs: number, options: { published: boolean; lifecycle?: string; makerTools: boolean; owner: Person }): RawRecord {
    const record = this.patch(this.base(options.makerTools ? 'agentsInfoMaker' : 'agentsInfoInvoker'), {
      'properties.Timestamp': new Date(eventMs).toISOString().replace('.000Z', 'Z'),
      'properties.AgentId': copilotAgentId,
      'properties.AgentName': agent.name.replace(' (Microsoft Copilot Studio)', ''),
      'properties.EntraAgentId': agent.id,
      'properties.PublishedStatus': options.published ? 'Published' : 'Draft',
      'properties.LifecycleStatus': options.lifecycle ?? 'Active',
      'properties.Owners': [{ upn: options.owner.upn, id: options.owner.id }],
    });
    return this.emit(record, eventMs, 'inventory');
  }

  aiAgentsInfo(copilotAgentId: string, name: string, maker: Person, eventMs: number, options: { status: string; noAuth: boolean }): RawRecord {
    const record = this.patch(this.base('aiAgentsInfoMaker'), {
      'properties.Timestamp': new Date(eventMs).toISOString().replace('.000Z', 'Z'),
      'properties.AIAgentId': copilotAgentId,
      'properties.AIAgentName': name,
      'properties.CreatorAccountUpn': maker.upn,
      'properties.OwnerAccountUpns': [maker.upn],
      'properties.LastModifiedByUpn': maker.upn,
      'properties.AgentStatus': options.status,
      'properties.UserAuthenticationType': options.noAuth ? 'None' : 'Microsoft',
    });
    return this.emit(record, eventMs, 'inventory');
  }

  graphCall(caller: { appId: string; spId: string; ip: string; userId?: string }, eventMs: number, uri: string, options: { method?: string; status?: number; roles?: string; scopes?: string } = {}): RawRecord {
    const requestId = this.nextId('0c4e0000');
    const record = this.patch(this.base('agentGraphCall'), {
      correlationId: requestId,
      callerIpAddress: caller.ip,
      resultSignature: String(options.status ?? 200),
      'properties.timeGenerated': new Date(eventMs).toISOString(),
      'properties.requestId': requestId,
      'properties.operationId': requestId,
      'properties.clientRequestId': this.nextId('0c4e0000'),
      'properties.requestMethod': options.method ?? 'GET',
      'properties.responseStatusCode': options.status ?? 200,
      'properties.appId': caller.appId,
      'properties.servicePrincipalId': caller.userId ? '' : caller.spId,
      'properties.UserPrincipalObjectID': caller.userId ?? caller.spId,
      'properties.userId': caller.userId ?? '',
      'properties.C_Idtyp': caller.userId ? 'user' : 'app',
      'properties.roles': caller.userId ? '' : (options.roles ?? 'User.Read.All'),
      'properties.scopes': caller.userId ? (options.scopes ?? 'User.Read Mail.Read') : '',
      'properties.ipAddress': caller.ip,
      'properties.requestUri': uri,
      'properties.tokenIssuedAt': new Date(eventMs - 60_000).toISOString(),
    });
    // Graph activity's envelope time is the request time itself (reference §1.2).
    const emitted = this.emit(record, eventMs, 'graph');
    emitted.time = envelopeTime(eventMs);
    return emitted;
  }
}

export interface FederatedCredential {
  id: string;
  name: string;
  issuer: string;
  subject: string;
}

function ficJson(fic: FederatedCredential): Record<string, unknown> {
  return { Id: fic.id, Name: fic.name, Issuer: fic.issuer, Subject: fic.subject, Audiences: ['api://AzureADTokenExchange'] };
}

export interface ClassicAgent {
  appId: string;
  objectId: string;
  spId: string;
  name: string;
}

export const CLASSIC_AGENTS: Record<'hrFaq' | 'itHelp', ClassicAgent> = {
  hrFaq: { appId: guid('c1a55000', 1), objectId: guid('c1a55000', 0x101), spId: guid('c1a55000', 0x201), name: 'HR FAQ Bot' },
  itHelp: { appId: guid('c1a55000', 2), objectId: guid('c1a55000', 0x102), spId: guid('c1a55000', 0x202), name: 'IT Helpdesk Bot' },
};

export const ATTACKER_IP = '203.0.113.66';
export const POWER_VIRTUAL_AGENTS = { appId: '9d8f559b-5984-46a4-902a-ad4271e83efa', name: 'Power Virtual Agents Service', spId: guid('9e000000', 0x99) };
export const FINANCE_RUNTIME_FIC: FederatedCredential = {
  id: guid('f1c00000', 1),
  name: 'finance-runtime-mi',
  issuer: `https://login.microsoftonline.com/${TENANT_ID}/v2.0`,
  subject: guid('3a100000', 0x101),
};

// ---------------------------------------------------------------------------------------------
// Benign traffic

export interface NoiseOptions {
  from: number;
  to: number;
  /** Agents whose normal work to generate (T1 of their blueprint, T2, OBO, agent user, Graph calls). */
  agents: Agent[];
  /** People signing in (all of them when omitted). */
  people?: Person[];
  apps?: Tenant['apps'];
  managedIdentities?: Tenant['managedIdentities'];
  /** 1 = the demo's realistic volume. */
  density?: number;
  /** Agent id → when its work stops (deleted, or its blueprint deleted). */
  stopAt?: Record<string, number>;
  /** How often each agent's blueprint exchanges and the agent works. Optional; defaults to 1 h. */
  agentPeriod?: number;
}

/** Office hours in UTC for a Dutch tenant (07:00–17:00 UTC ≈ 09:00–19:00 local). */
function workWeight(ms: number): number {
  const hour = new Date(ms).getUTCHours();
  return hour >= 7 && hour < 17 ? 1 : hour >= 5 && hour < 20 ? 0.35 : 0.05;
}

/** Ordinary work for the period: the background every embedded incident hides in. */
export function benignTraffic(b: StreamBuilder, tenant: Tenant, options: NoiseOptions): void {
  const { rng } = b;
  const density = options.density ?? 1;
  const people = options.people ?? tenant.people;
  const officeResources = [RESOURCES.exchange, RESOURCES.sharepoint, RESOURCES.teams, RESOURCES.graph];
  // People: a few interactive sign-ins and background client refreshes per working day.
  for (let t = options.from; t < options.to; t += 15 * MINUTE) {
    const weight = workWeight(t) * density;
    for (const person of people) {
      if (!rng.chance(weight * 0.15)) continue;
      const when = t + rng.int(0, 15 * 60 - 1) * 1000;
      const interactive = rng.chance(0.35);
      const failed = rng.chance(0.03);
      b.person(person, when, {
        interactive,
        resource: rng.pick(officeResources),
        risk: rng.chance(0.01) ? 'low' : 'none',
        ...(failed ? { failure: { code: 50126, reason: 'Error validating credentials due to invalid username or password.' } } : {}),
      });
    }
  }
  // Line-of-business apps and managed identities: steady, around the clock.
  for (const app of options.apps ?? tenant.apps) {
    const period = (2 + (parseInt(app.appId.slice(-2), 16) % 4)) * HOUR;
    for (let t = options.from + rng.int(0, 59) * MINUTE; t < options.to; t += period) b.servicePrincipal(app, t);
  }
  for (const mi of options.managedIdentities ?? tenant.managedIdentities) {
    for (let t = options.from + rng.int(0, 59) * MINUTE; t < options.to; t += 2 * HOUR) b.managedIdentity(mi, t, rng.chance(0.7) ? RESOURCES.arm : RESOURCES.storage);
  }
  // Agents: each hour its blueprint exchanges (T1) then the agent gets its usual tokens.
  for (const agent of options.agents) {
    const firstParty = agent.blueprint === COPILOT_BLUEPRINT;
    const stopAt = options.stopAt?.[agent.id];
    // A stopped agent's last hour must end before the stop; others run to the end of the period.
    const last = stopAt === undefined ? options.to : stopAt - HOUR;
    for (let t = options.from + rng.int(0, 50) * MINUTE; t < last; t += options.agentPeriod ?? HOUR) {
      const busy = workWeight(t);
      if (!firstParty) b.t1(agent.blueprint, t);
      const tokens = Math.max(1, Math.round(busy * 3 * density));
      for (let k = 0; k < tokens; k++) {
        const when = t + (k + 1) * rng.int(20, 120) * 1000;
        b.t2(agent, when, { resource: rng.pick(agent.resources) });
        if (rng.chance(0.5)) b.graphCall({ appId: agent.id, spId: agent.id, ip: agent.blueprint.ip }, when + rng.int(2, 30) * 1000, `https://graph.microsoft.com/v1.0/users?$top=50&$select=id,displayName`);
      }
      if (agent.actsFor && busy > 0.3) {
        for (let k = 0; k < Math.round(2 * density); k++) b.obo(agent, rng.pick(agent.actsFor), t + rng.int(3, 55) * MINUTE, { resource: agent.resources[0]! });
      }
      if (agent.agentUser && rng.chance(0.5)) b.asAgentUser(agent, t + rng.int(5, 50) * MINUTE);
      // Occasional transient failure (throttled downstream, token replay by a retry) — never a burst.
      if (rng.chance(0.04)) b.t2(agent, t + rng.int(5, 55) * MINUTE, { failure: { code: 500011, reason: 'The resource principal was not found in the tenant.' }, resource: agent.resources[0]! });
    }
  }
  // Routine directory work: attribute edits by the helpdesk.
  const helpdesk = tenant.byUpn.get(`frank.helpdesk@${DOMAIN}`) ?? people[0]!;
  for (let t = options.from + 7 * HOUR; t < options.to; t += rng.int(25, 70) * MINUTE) {
    if (workWeight(t) < 1) continue;
    b.updateUser(rng.pick(people), helpdesk, t);
  }
}

// ---------------------------------------------------------------------------------------------
// Writing Event Hub bodies

/**
 * Groups records into Event Hub message bodies in arrival order (1–50 records, categories mixed),
 * then swaps a few neighbouring bodies: Event Hubs does not promise order across partitions.
 */
export function toBodies(records: Emitted[], rng: Rng, maxPerBody = 50): string[] {
  const sorted = [...records].sort((a, b) => a.arrivalMs - b.arrivalMs || a.eventMs - b.eventMs);
  const bodies: RawRecord[][] = [];
  for (let i = 0; i < sorted.length; ) {
    const size = Math.min(sorted.length - i, rng.chance(0.2) ? rng.int(1, 10) : rng.int(20, maxPerBody));
    bodies.push(sorted.slice(i, i + size).map((e) => e.record));
    i += size;
  }
  for (let i = 1; i < bodies.length; i++) {
    if (rng.chance(0.06)) [bodies[i - 1], bodies[i]] = [bodies[i]!, bodies[i - 1]!];
  }
  return bodies.map((records) => JSON.stringify({ records }));
}

function writeStream(file: string, lines: string[]): void {
  mkdirSync(dirname(file), { recursive: true });
  const text = `${lines.join('\n')}\n`;
  writeFileSync(file, file.endsWith('.gz') ? gzipSync(Buffer.from(text), { level: 9 }) : text);
}

// ---------------------------------------------------------------------------------------------
// The demo day

/**
 * The demo: 2026-10-04 (history) and 2026-10-05 (the day), ~300 people, 40 apps, 30 managed
 * identities, 4 blueprints + Copilot Studio, 12 agents, 2 classic agents, with the incidents that
 * samples/README.md narrates.
 */
export function demoDay(bases: Map<string, RawRecord>): Emitted[] {
  const b = new StreamBuilder(bases, createRng(20261005), 0xd0);
  const tenant = buildTenant(300);
  const A = tenant.agents;
  const who = (alias: string) => tenant.byUpn.get(`${alias}@${DOMAIN}`)!;
  const [alice, carol, dana, eve, frank, grace] = ['alice.admin', 'carol.maker', 'dana.ops', 'eve.contractor', 'frank.helpdesk', 'grace.research'].map(who) as [Person, Person, Person, Person, Person, Person];
  const robot = tenant.apps[1]!;

  benignTraffic(b, tenant, { from: HISTORY_DAY, to: DEMO_DAY + DAY, agents: Object.values(A), stopAt: { [A.reportBuilder!.id]: at(17, 0) } });

  // History day: the Research blueprint gets a co-owner; Power Virtual Agents creates the
  // classic HR FAQ Bot and IT Helpdesk Bot.
  b.addOwner(BLUEPRINTS.research, grace, alice, at(9, 12, 0, HISTORY_DAY));
  b.addClassicAgent(CLASSIC_AGENTS.hrFaq, at(10, 2, 0, HISTORY_DAY));
  b.addClassicAgent(CLASSIC_AGENTS.itHelp, at(14, 40, 0, HISTORY_DAY));
  // Copilot Studio inventory: the travel agent is still a draft yesterday (nothing to flag).
  for (const hour of [0, 6, 12, 18]) {
    b.agentsInfo(A.travel!, 'c0b10000-0000-4000-8000-000000000001', at(hour, 0, 0, HISTORY_DAY), { published: false, makerTools: true, owner: carol });
    b.agentsInfo(A.quote!, 'c0b10000-0000-4000-8000-000000000003', at(hour, 0, 0, HISTORY_DAY), { published: true, makerTools: false, owner: who('bob.finance') });
  }
  // Carol tests her draft: connector sign-ins from the Power Platform egress (not flagged yet).
  b.connector(carol, at(15, 5, 0, HISTORY_DAY));
  b.connector(carol, at(15, 40, 0, HISTORY_DAY));

  // --- the day ---
  // 06:00 onwards: inventory snapshots; the travel agent is published with a maker-mode Outlook tool.
  for (const hour of [0, 6, 12, 18]) {
    b.agentsInfo(A.travel!, 'c0b10000-0000-4000-8000-000000000001', at(hour, 0), { published: hour >= 6, makerTools: true, owner: carol });
    b.agentsInfo(A.quote!, 'c0b10000-0000-4000-8000-000000000003', at(hour, 0), { published: true, makerTools: false, owner: who('bob.finance') });
  }
  // 07:50 ID Protection flags eve.contractor (anonymized IP, then high user risk).
  b.userRiskEvent(eve, at(7, 50), 'high', 'anonymizedIPAddress', ATTACKER_IP);
  b.riskyUser(eve, at(7, 52), 'high', 'atRisk');
  // 09:00–09:25 takeover of the Finance blueprint from eve's account.
  const stolenKey = { keyId: '5ec00000-0000-4000-8000-0000000000e1', name: 'backup-2026' };
  b.secretAdded(BLUEPRINTS.finance, { ...eve, ip: ATTACKER_IP }, at(9, 0, 14), [{ keyId: BLUEPRINTS.finance.keyId, name: 'prod-secret' }], stolenKey);
  b.t1(BLUEPRINTS.finance, at(9, 7, 2), { ip: ATTACKER_IP, keyId: stolenKey.keyId });
  b.t2(A.invoice!, at(9, 7, 40), { ip: ATTACKER_IP, resource: RESOURCES.graph });
  b.t2(A.invoice!, at(9, 9, 5), { ip: ATTACKER_IP, resource: RESOURCES.keyVault });
  for (let k = 0; k < 6; k++) b.graphCall({ appId: A.invoice!.id, spId: A.invoice!.id, ip: ATTACKER_IP }, at(9, 10, 10 * k), `https://graph.microsoft.com/v1.0/users/${who(`bob.finance`).upn}/messages?$top=100`, { roles: 'Mail.Read User.Read.All' });
  b.appRole({ id: A.invoice!.id, appId: A.invoice!.id, name: A.invoice!.name }, 'Mail.Send', { ...eve, ip: ATTACKER_IP }, at(9, 21, 30));
  // 10:05–10:40 carol's published agent is used: connector sign-ins with her credentials.
  for (const [h, m] of [[10, 5], [10, 18], [10, 39]] as const) b.connector(carol, at(h, m));
  // 10:15 expense-agent acts on behalf of the (risky) eve.
  b.obo(A.expense!, eve, at(10, 15, 30), { ip: BLUEPRINTS.finance.ip });
  // 11:00 grace adds a GitHub Actions federated credential to the Research blueprint (planned, but flagged).
  b.ficAdded(BLUEPRINTS.research, grace, at(11, 0, 40), [], { id: 'f1c00000-0000-4000-8000-000000000031', name: 'gh-research-deploy', issuer: 'https://token.actions.githubusercontent.com', subject: 'repo:northwind/research-agents:environment:prod' });
  // 11:30 frank adds a client secret to the classic HR FAQ Bot.
  b.secretAdded({ objectId: CLASSIC_AGENTS.hrFaq.objectId, appId: CLASSIC_AGENTS.hrFaq.appId, name: CLASSIC_AGENTS.hrFaq.name }, frank, at(11, 31), [], { keyId: '5ec00000-0000-4000-8000-000000000c01', name: 'export' });
  // Power Virtual Agents rotates the IT Helpdesk Bot's own secret (benign).
  b.secretAdded({ objectId: CLASSIC_AGENTS.itHelp.objectId, appId: CLASSIC_AGENTS.itHelp.appId, name: CLASSIC_AGENTS.itHelp.name }, POWER_VIRTUAL_AGENTS, at(11, 45), [{ keyId: '5ec00000-0000-4000-8000-000000000c10', name: 'pva' }], { keyId: '5ec00000-0000-4000-8000-000000000c11', name: 'pva' });
  // 12:00 alice grants AgentIdentity.Create.All to the Provisioning Robot app.
  b.appRole({ id: robot.spId, appId: robot.appId, name: robot.name }, 'AgentIdentity.Create.All', alice, at(12, 0, 20));
  // 12:30 eve tries to add a secret to password-reset-agent (refused by the platform).
  b.spCredentialsAdded({ id: A.reset!.id, appId: A.reset!.id, name: A.reset!.name }, { ...eve, ip: ATTACKER_IP }, at(12, 30), { keyId: '5ec00000-0000-4000-8000-0000000000e3', name: 'tmp' }, true);
  // 13:00–13:25 frank widens helpdesk-triage: six new delegated scopes in three steps.
  const triage = { id: A.triage!.id, name: A.triage!.name };
  b.delegatedGrant(triage, ['User.Read.All', 'Group.Read.All'], frank, at(13, 1));
  b.consent(triage, ['Calendars.Read', 'Tasks.Read'], frank, at(13, 12));
  b.delegatedGrant(triage, ['Notes.Read', 'Sites.Read.All', 'offline_access'], frank, at(13, 24));
  // Routine: a single low-privilege scope for the kb-curator agent (below every threshold).
  b.delegatedGrant({ id: A.curator!.id, name: A.curator!.name }, ['Sites.Read.All'], alice, at(13, 40));
  // 14:00 eve adds invoice-agent's agent user to Exchange Administrator.
  const invoiceUser = { id: A.invoice!.agentUser!.id, upn: A.invoice!.agentUser!.upn, name: 'invoice-agent (agent user)' };
  b.roleMember(invoiceUser, { name: 'Exchange Administrator', templateId: '29232cdf-9323-42fd-ade2-1d097af3e4de' }, { ...eve, ip: ATTACKER_IP }, at(14, 0, 30));
  // 14:10–14:35 more maker-credential use; one from a Power Platform egress IP never seen for carol.
  b.connector(carol, at(14, 10), { ip: '198.51.100.201' });
  b.connector(carol, at(14, 35));
  // 15:00 research-scout loops: 140 Graph tokens in eight minutes.
  for (let k = 0; k < 140; k++) b.t2(A.scout!, at(15, 0, 0) + k * 3400, { resource: RESOURCES.graph });
  // 16:00 password-reset-agent is blocked by a new Conditional Access policy and keeps retrying.
  for (let k = 0; k < 14; k++) b.t2(A.reset!, at(16, 0, 0) + k * 25_000, { failure: { code: 53003, reason: 'Access has been blocked by Conditional Access policies.' } });
  // 17:00 dana deletes the legacy blueprint; its report-builder agent is still live.
  b.deleteApplication(BLUEPRINTS.legacy, dana, at(17, 2));
  // 22:40 ID Protection's offline detection catches up with the invoice agent.
  b.agentRiskEvent(A.invoice!, at(22, 38), 'high', 'suspiciousCredentialUsage', 'T1098.001,T1550.001');
  return b.records;
}

// ---------------------------------------------------------------------------------------------
// Scenario streams for the catalog e2e test

type Scenario = (b: StreamBuilder, tenant: Tenant) => void;

/**
 * One scenario per detection: the incidents it must fire on exactly once, its near misses, and
 * benign noise (a small cast over the history day and the scenario day). The expected alerts are
 * written in test/e2e/catalogScenarios.test.ts, not here.
 */
export const SCENARIOS: Record<string, Scenario> = {
  'blueprint-credential-added': (b, t) => {
    const [eve, dana, alice] = persons(t, 'eve.contractor', 'dana.ops', 'alice.admin');
    b.addOwner(BLUEPRINTS.finance, dana, alice, at(8, 0, 0, HISTORY_DAY));
    b.secretAdded(BLUEPRINTS.finance, eve, at(9, 0), [{ keyId: BLUEPRINTS.finance.keyId, name: 'prod' }], { keyId: guid('5ec00000', 0xe1), name: 'b1' });
    b.secretAdded(BLUEPRINTS.finance, eve, at(9, 20), [{ keyId: BLUEPRINTS.finance.keyId, name: 'prod' }, { keyId: guid('5ec00000', 0xe1), name: 'b1' }], { keyId: guid('5ec00000', 0xe2), name: 'b2' });
    b.spCredentialsAdded({ id: BLUEPRINTS.helpdesk.principalId, appId: BLUEPRINTS.helpdesk.appId, name: BLUEPRINTS.helpdesk.name }, { appId: t.apps[1]!.appId, name: t.apps[1]!.name, spId: t.apps[1]!.spId }, at(13, 0), { keyId: guid('ce700000', 2), name: 'CN=helpdesk', type: 'AsymmetricX509Cert' }, false);
    // Near miss: a line-of-business app's secret rotation (not a blueprint).
    b.secretAdded({ objectId: t.apps[0]!.objectId, appId: t.apps[0]!.appId, name: t.apps[0]!.name }, alice, at(10, 0), [{ keyId: t.apps[0]!.keyId, name: 'payroll' }], { keyId: guid('5ec00000', 0x5f1), name: 'payroll-2027' });
  },
  'blueprint-credential-added-then-used': (b, t) => {
    const [dana, alice] = persons(t, 'dana.ops', 'alice.admin');
    const newKey = { keyId: guid('5ec00000', 0xe1), name: 'rotation' };
    b.secretAdded(BLUEPRINTS.finance, alice, at(9, 0), [{ keyId: BLUEPRINTS.finance.keyId, name: 'prod' }], newKey);
    b.t1(BLUEPRINTS.finance, at(9, 40), { keyId: newKey.keyId });
    b.t1(BLUEPRINTS.finance, at(10, 40), { keyId: newKey.keyId });
    // Near miss: Helpdesk gets a new secret but keeps exchanging with its old one.
    b.secretAdded(BLUEPRINTS.helpdesk, dana, at(11, 0), [{ keyId: BLUEPRINTS.helpdesk.keyId, name: 'prod' }], { keyId: guid('5ec00000', 0xe2), name: 'next' });
  },
  'blueprint-fic-changed': (b, t) => {
    const [grace, dana] = persons(t, 'grace.research', 'dana.ops');
    b.ficAdded(BLUEPRINTS.research, grace, at(11, 0), [], { id: guid('f1c00000', 0x31), name: 'gh-deploy', issuer: 'https://token.actions.githubusercontent.com', subject: 'repo:northwind/research-agents:environment:prod' });
    const helpdeskFic: FederatedCredential = { id: guid('f1c00000', 0x21), name: 'helpdesk-mi', issuer: `https://login.microsoftonline.com/${TENANT_ID}/v2.0`, subject: guid('3a100000', 0x102) };
    b.ficEdited(BLUEPRINTS.helpdesk, dana, at(14, 0), helpdeskFic, { ...helpdeskFic, subject: guid('3a100000', 0x1e2) });
  },
  'agent-identity-credential-attempt': (b, t) => {
    const [eve, alice] = persons(t, 'eve.contractor', 'alice.admin');
    const { invoice, reset } = t.agents;
    b.spCredentialsAdded({ id: invoice!.id, appId: invoice!.id, name: invoice!.name }, eve, at(9, 0), { keyId: guid('5ec00000', 0xe3), name: 'a' }, true);
    b.spCredentialsAdded({ id: invoice!.id, appId: invoice!.id, name: invoice!.name }, eve, at(9, 4), { keyId: guid('5ec00000', 0xe4), name: 'b' }, true);
    b.spCredentialsAdded({ id: reset!.id, appId: reset!.id, name: reset!.name }, eve, at(12, 30), { keyId: guid('5ec00000', 0xe5), name: 'c' }, true);
    // Near miss: the same operation on an ordinary service principal succeeds and is routine.
    b.spCredentialsAdded({ id: t.apps[0]!.spId, appId: t.apps[0]!.appId, name: t.apps[0]!.name }, alice, at(10, 0), { keyId: guid('5ec00000', 0x5f2), name: 'd' }, false);
  },
  'classic-agent-owner-secret': (b, t) => {
    const [frank] = persons(t, 'frank.helpdesk');
    b.addClassicAgent(CLASSIC_AGENTS.hrFaq, at(10, 0, 0, HISTORY_DAY));
    b.addClassicAgent(CLASSIC_AGENTS.itHelp, at(11, 0, 0, HISTORY_DAY));
    b.secretAdded({ ...CLASSIC_AGENTS.hrFaq }, frank, at(11, 30), [], { keyId: guid('5ec00000', 0xc01), name: 'export' });
    b.secretAdded({ ...CLASSIC_AGENTS.itHelp }, POWER_VIRTUAL_AGENTS, at(11, 45), [{ keyId: guid('5ec00000', 0xc10), name: 'pva' }], { keyId: guid('5ec00000', 0xc11), name: 'pva' });
  },
  'blueprint-exchange-new-ip': (b, t) => {
    const [dana] = persons(t, 'dana.ops');
    b.t1(BLUEPRINTS.finance, at(9, 10), { ip: ATTACKER_IP });
    b.t1(BLUEPRINTS.finance, at(9, 40), { ip: ATTACKER_IP });
    // Near misses: a failed exchange from a new IP; a blueprint created this morning (learning).
    b.t1(BLUEPRINTS.helpdesk, at(10, 0), { ip: '203.0.113.70', failure: { code: 7000215, reason: 'Invalid client secret provided.' } });
    const fresh = blueprint(5, 'Pilot Agents Blueprint', '198.51.100.55');
    b.addBlueprint(fresh, dana, at(8, 0));
    b.t1(fresh, at(8, 30));
    b.t1(fresh, at(11, 0), { ip: '198.51.100.56' });
  },
  'agent-scope-burst': (b, t) => {
    const [frank] = persons(t, 'frank.helpdesk');
    const { triage, scout } = t.agents;
    const tr = { id: triage!.id, name: triage!.name };
    b.delegatedGrant(tr, ['User.Read.All', 'Group.Read.All'], frank, at(13, 1));
    b.consent(tr, ['Calendars.Read', 'Tasks.Read'], frank, at(13, 12));
    b.delegatedGrant(tr, ['Notes.Read', 'Sites.Read.All', 'offline_access'], frank, at(13, 24));
    // Near miss: four new scopes for research-scout (one more was granted yesterday).
    const sc = { id: scout!.id, name: scout!.name };
    b.delegatedGrant(sc, ['Files.Read.All'], frank, at(9, 0, 0, HISTORY_DAY));
    b.delegatedGrant(sc, ['Files.Read.All', 'Sites.Read.All', 'Calendars.Read'], frank, at(15, 0));
    b.consent(sc, ['Contacts.Read', 'People.Read'], frank, at(15, 20));
  },
  'agent-privileged-permission-grant': (b, t) => {
    const [eve, alice] = persons(t, 'eve.contractor', 'alice.admin');
    const { invoice } = t.agents;
    b.appRole({ id: invoice!.id, appId: invoice!.id, name: invoice!.name }, 'Mail.Send', eve, at(9, 20));
    b.delegatedGrant({ id: invoice!.id, name: invoice!.name }, ['Files.ReadWrite.All'], eve, at(9, 25));
    b.appRole({ id: BLUEPRINTS.helpdesk.principalId, appId: BLUEPRINTS.helpdesk.appId, name: BLUEPRINTS.helpdesk.name }, 'Application.ReadWrite.All', alice, at(12, 0));
    // Near miss: Mail.Send for an ordinary app.
    b.appRole({ id: t.apps[2]!.spId, appId: t.apps[2]!.appId, name: t.apps[2]!.name }, 'Mail.Send', alice, at(12, 30));
  },
  'agent-id-admin-permission-grant': (b, t) => {
    const [alice] = persons(t, 'alice.admin');
    const robot = t.apps[1]!;
    b.appRole({ id: robot.spId, appId: robot.appId, name: robot.name }, 'AgentIdentity.Create.All', alice, at(12, 0));
    b.delegatedGrant({ id: t.agents.triage!.id, name: t.agents.triage!.name }, ['AgentIdentityBlueprint.AddRemoveCreds.All'], alice, at(12, 10));
    // Near miss: Microsoft's own Power Virtual Agents Service.
    b.appRole({ id: POWER_VIRTUAL_AGENTS.spId, appId: POWER_VIRTUAL_AGENTS.appId, name: POWER_VIRTUAL_AGENTS.name }, 'AgentIdentity.ReadWrite.All', alice, at(12, 20));
  },
  'agent-user-privileged': (b, t) => {
    const [eve, alice, bob] = persons(t, 'eve.contractor', 'alice.admin', 'bob.finance');
    const { invoice, triage } = t.agents;
    b.roleMember({ id: invoice!.agentUser!.id, upn: invoice!.agentUser!.upn, name: 'invoice-agent (agent user)' }, { name: 'Exchange Administrator', templateId: '29232cdf-9323-42fd-ade2-1d097af3e4de' }, eve, at(14, 0));
    // Near misses: a person gets a role; an agent user joins a group that is not on the privileged list.
    b.roleMember({ id: bob.id, upn: bob.upn, name: bob.name }, { name: 'Reports Reader', templateId: '4a5d8f65-41da-4de4-8968-e035b65339cf' }, alice, at(10, 0));
    b.groupMember({ id: triage!.agentUser!.id, upn: triage!.agentUser!.upn, name: 'helpdesk-triage (agent user)' }, { id: guid('6f000000', 2), name: 'Helpdesk Agents' }, alice, at(10, 30));
  },
  'risky-user-obo': (b, t) => {
    const [eve, grace, bob] = persons(t, 'eve.contractor', 'grace.research', 'bob.finance');
    const { expense, summarizer, invoice } = t.agents;
    b.userRiskEvent(eve, at(7, 50), 'high', 'anonymizedIPAddress', ATTACKER_IP);
    b.riskyUser(eve, at(7, 52), 'high', 'atRisk');
    b.obo(expense!, eve, at(10, 15));
    b.obo(expense!, eve, at(10, 45));
    b.obo(summarizer!, grace, at(11, 0), { risk: 'high', riskState: 'atRisk' });
    // Near misses: a low-risk user; eve again, through another agent, after her risk was remediated.
    b.obo(invoice!, bob, at(11, 30), { risk: 'low', aggregatedRisk: 'low' });
    b.riskyUser(eve, at(12, 0), 'none', 'remediated', 'userPerformedSecuredPasswordReset');
    b.obo(invoice!, eve, at(13, 0));
  },
  'agent-unfamiliar-resource': (b, t) => {
    const [dana] = persons(t, 'dana.ops');
    const { invoice } = t.agents;
    b.t2(invoice!, at(9, 9), { resource: RESOURCES.keyVault });
    b.t2(invoice!, at(9, 30), { resource: RESOURCES.keyVault });
    // Near miss: a pilot agent created this morning tries new resources while still learning.
    const pilotBp = blueprint(5, 'Pilot Agents Blueprint', '198.51.100.55');
    const pilot: Agent = { id: guid('a1d00000', 0x61), name: 'pilot-agent', blueprint: pilotBp, resources: [RESOURCES.graph] };
    b.addBlueprint(pilotBp, dana, at(8, 0));
    b.addAgentIdentity(pilot, at(8, 5));
    b.t2(pilot, at(8, 10));
    b.t2(pilot, at(10, 0), { resource: RESOURCES.keyVault });
  },
  'agent-signin-spike': (b, t) => {
    const { scout, triage, expense } = t.agents;
    for (let k = 0; k < 140; k++) b.t2(scout!, at(15, 0) + k * 3400);
    // Near misses: 45 for helpdesk-triage; expense-agent is busy around the clock (12 per 10
    // minutes for the whole trailing day), so a burst of 52 stays under 5× its mean.
    for (let k = 0; k < 45; k++) b.t2(triage!, at(15, 30) + k * 6000);
    for (let s = at(11, 0, 0, HISTORY_DAY); s < at(12, 0); s += 10 * MINUTE) for (let k = 0; k < 12; k++) b.t2(expense!, s + k * 45_000);
    for (let k = 0; k < 52; k++) b.t2(expense!, at(12, 0) + k * 11_000);
  },
  'agent-failed-access-burst': (b, t) => {
    const { reset, scout, invoice } = t.agents;
    for (let k = 0; k < 14; k++) b.t2(reset!, at(16, 0) + k * 25_000, { failure: { code: 53003, reason: 'Access has been blocked by Conditional Access policies.' } });
    b.t2(scout!, at(11, 0), { resource: RESOURCES.keyVault, failure: { code: 65001, reason: 'The user or administrator has not consented to use the application.' } });
    b.t2(scout!, at(11, 2), { resource: RESOURCES.arm, failure: { code: 500011, reason: 'The resource principal was not found in the tenant.' } });
    b.t2(scout!, at(11, 5), { resource: RESOURCES.exchange, failure: { code: 65001, reason: 'The user or administrator has not consented to use the application.' } });
    // Near miss: nine failures against two resources.
    for (let k = 0; k < 9; k++) b.t2(invoice!, at(13, 0) + k * 40_000, { resource: k % 2 ? RESOURCES.graph : RESOURCES.sharepoint, failure: { code: 53003, reason: 'Access has been blocked by Conditional Access policies.' } });
  },
  'maker-credential-agent': (b, t) => {
    const [carol, bob] = persons(t, 'carol.maker', 'bob.finance');
    const { travel, quote, onboarding } = t.agents;
    for (const hour of [0, 6, 12, 18]) {
      b.agentsInfo(travel!, 'c0b10000-0000-4000-8000-000000000001', at(hour, 0), { published: true, makerTools: true, owner: carol });
      b.agentsInfo(quote!, 'c0b10000-0000-4000-8000-000000000003', at(hour, 0), { published: true, makerTools: false, owner: bob });
      b.agentsInfo(onboarding!, 'c0b10000-0000-4000-8000-000000000004', at(hour, 0), { published: true, lifecycle: 'Blocked', makerTools: true, owner: carol });
    }
    b.aiAgentsInfo('c0b10000-0000-4000-8000-000000000002', 'Expense Policy Bot', carol, at(6, 0), { status: 'Published', noAuth: true });
    b.aiAgentsInfo('c0b10000-0000-4000-8000-000000000005', 'Old Survey Bot', carol, at(6, 0), { status: 'Deleted', noAuth: true });
  },
  'maker-credential-use': (b, t) => {
    const [carol, bob] = persons(t, 'carol.maker', 'bob.finance');
    const { travel } = t.agents;
    b.connector(carol, at(15, 0, 0, HISTORY_DAY));
    b.agentsInfo(travel!, 'c0b10000-0000-4000-8000-000000000001', at(6, 0), { published: true, makerTools: true, owner: carol });
    b.connector(carol, at(10, 5));
    b.connector(carol, at(10, 40));
    b.connector(carol, at(14, 10), { ip: '198.51.100.201' });
    // Near misses: a colleague uses the connector; carol reads mail in Outlook.
    b.connector(bob, at(10, 20));
    b.person(carol, at(10, 30), { interactive: false, resource: RESOURCES.exchange });
  },
  'orphaned-agent-identities': (b, t) => {
    const [dana] = persons(t, 'dana.ops');
    const { scout, summarizer, litReview } = t.agents;
    b.deleteApplication(BLUEPRINTS.legacy, dana, at(17, 2));
    b.deleteApplication(BLUEPRINTS.legacy, dana, at(17, 20), true);
    // Near miss: the Research blueprint is retired in the right order (agents first).
    for (const [k, agent] of [scout!, summarizer!, litReview!].entries()) b.deleteServicePrincipal(agent, dana, at(18, k));
    b.deleteApplication(BLUEPRINTS.research, dana, at(18, 30));
  },
  'agent-risk-detected': (b, t) => {
    const { scout, invoice, curator } = t.agents;
    b.agentRiskEvent(scout!, at(4, 10), 'medium', 'unfamiliarResourceAccess');
    b.riskyAgent(invoice!, at(22, 0), 'high', 'confirmedCompromised', 'adminConfirmedAgentCompromised');
    b.riskyAgent(invoice!, at(22, 30), 'high', 'confirmedCompromised', 'adminConfirmedAgentCompromised');
    // Near miss: a low-risk detection.
    b.agentRiskEvent(curator!, at(5, 0), 'low', 'signInSpike');
  },
  'agent-takeover-chain': (b, t) => {
    const [eve, alice] = persons(t, 'eve.contractor', 'alice.admin');
    const { invoice, triage } = t.agents;
    const stolen = { keyId: guid('5ec00000', 0xe1), name: 'backup-2026' };
    b.secretAdded(BLUEPRINTS.finance, { ...eve, ip: ATTACKER_IP }, at(9, 0), [{ keyId: BLUEPRINTS.finance.keyId, name: 'prod' }], stolen);
    b.t1(BLUEPRINTS.finance, at(9, 7), { ip: ATTACKER_IP, keyId: stolen.keyId });
    b.t2(invoice!, at(9, 9), { ip: ATTACKER_IP, resource: RESOURCES.keyVault });
    b.appRole({ id: invoice!.id, appId: invoice!.id, name: invoice!.name }, 'Mail.Send', { ...eve, ip: ATTACKER_IP }, at(9, 21));
    // Near miss: on Helpdesk the same three steps are spread over more than an hour.
    b.secretAdded(BLUEPRINTS.helpdesk, alice, at(13, 0), [{ keyId: BLUEPRINTS.helpdesk.keyId, name: 'prod' }], { keyId: guid('5ec00000', 0xe2), name: 'next' });
    b.t1(BLUEPRINTS.helpdesk, at(13, 30), { ip: '203.0.113.80' });
    b.appRole({ id: triage!.id, appId: triage!.id, name: triage!.name }, 'User.ReadWrite.All', alice, at(14, 40));
  },
};

/** Agents whose work stops during a scenario (their blueprint or they themselves get deleted). */
const SCENARIO_STOPS: Record<string, (t: Tenant) => Record<string, number>> = {
  'orphaned-agent-identities': (t) => ({
    [t.agents.reportBuilder!.id]: at(17, 0),
    [t.agents.scout!.id]: at(18, 0),
    [t.agents.summarizer!.id]: at(18, 0),
    [t.agents.litReview!.id]: at(18, 0),
  }),
};

function persons(t: Tenant, ...aliases: string[]): Person[] {
  return aliases.map((alias) => {
    const p = t.byUpn.get(`${alias}@${DOMAIN}`);
    if (!p) throw new Error(`gen-demo: no person ${alias}`);
    return p;
  });
}

/** The noise every scenario sits in: 25 people, 6 apps, 4 managed identities and every agent (working every 2 h). */
export function scenarioStream(bases: Map<string, RawRecord>, id: string, index: number): Emitted[] {
  const scenario = SCENARIOS[id];
  if (!scenario) throw new Error(`gen-demo: no scenario ${id}`);
  const b = new StreamBuilder(bases, createRng(0x5ce0 + index), 0x100 + index);
  const tenant = buildTenant(25);
  const agents = Object.values(tenant.agents);
  const stopAt = SCENARIO_STOPS[id]?.(tenant);
  benignTraffic(b, tenant, { from: HISTORY_DAY, to: DEMO_DAY + DAY, agents, apps: tenant.apps.slice(0, 6), managedIdentities: tenant.managedIdentities.slice(0, 4), density: 0.3, agentPeriod: 2 * HOUR, ...(stopAt ? { stopAt } : {}) });
  scenario(b, tenant);
  return b.records;
}

// ---------------------------------------------------------------------------------------------

/** The demo's message bodies, one JSON line each, exactly as samples/demo-day.ndjson.gz holds them. */
export function demoBodies(bases: Map<string, RawRecord>): string[] {
  return toBodies(demoDay(bases), createRng(0xb0d1e5));
}

/** A scenario's message bodies, exactly as test/fixtures/scenarios/catalog/<id>.ndjson.gz holds them. */
export function scenarioBodies(bases: Map<string, RawRecord>, id: string): string[] {
  const index = Object.keys(SCENARIOS).indexOf(id);
  return toBodies(scenarioStream(bases, id, index), createRng(0xb0d1 + index));
}

function main(argv: string[]): void {
  const root = repoRoot();
  const bases = loadBases(root);
  if (argv.includes('--scenarios')) {
    for (const id of Object.keys(SCENARIOS)) {
      // Gzipped: a day and a half of realistic records per scenario; `zcat` to read one.
      const file = join(root, 'test', 'fixtures', 'scenarios', 'catalog', `${id}.ndjson.gz`);
      const lines = scenarioBodies(bases, id);
      writeStream(file, lines);
      process.stdout.write(`${file}: ${lines.length} bodies\n`);
    }
    return;
  }
  const outIndex = argv.indexOf('--out');
  const file = outIndex >= 0 && argv[outIndex + 1] ? resolve(argv[outIndex + 1]!) : join(root, 'samples', 'demo-day.ndjson.gz');
  const lines = demoBodies(bases);
  writeStream(file, lines);
  process.stdout.write(`${file}: ${lines.length} bodies\n`);
}

if (require.main === module) main(process.argv.slice(2));
