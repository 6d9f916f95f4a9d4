/**
 * A local HTTPS stand-in for Microsoft Graph (a test double of the service, not of our code): the
 * real `@microsoft/microsoft-graph-client` talks to it over TLS with the harness certificate, so
 * the bearer token is really sent. It records every request (method, path, query, body,
 * authorization) and answers from
 *  - scripted routes (`on(method, path, ...replies)`: replies are used in order, the last repeats),
 *  - paged collections (`pages(path, [[...], [...]])`, linked by absolute `@odata.nextLink`),
 *  - a small directory of objects (`addObject`), served by id and by `(appId='…')`, whose
 *    `accountEnabled` / credentials the write calls really change,
 *  - otherwise 404 `Request_ResourceNotFound`, like Graph.
 * Loopback only; `close()` ends open keep-alive connections too.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TokenCredential } from '@azure/identity';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { testTlsOptions } from './tls';

export interface RecordedGraphRequest {
  method: string;
  /** Decoded path including the version, e.g. `/v1.0/servicePrincipals/…`. */
  path: string;
  query: Record<string, string>;
  body: unknown;
  authorization?: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface GraphReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type GraphReplyScript = GraphReply | ((request: RecordedGraphRequest) => GraphReply);

export type DirectoryCollection = 'servicePrincipals' | 'applications' | 'users';

export interface FakeDirectoryObject {
  id: string;
  '@odata.type': string;
  appId?: string;
  displayName?: string;
  accountEnabled?: boolean;
  [property: string]: unknown;
}

interface Route {
  method: string;
  path: string | RegExp;
  replies: GraphReplyScript[];
  used: number;
}

export const GRAPH_ERRORS = {
  forbidden: (message = 'Insufficient privileges to complete the operation.'): GraphReply => ({
    status: 403,
    body: { error: { code: 'Authorization_RequestDenied', message } },
  }),
  notFound: (message = 'Resource does not exist or one of its queried reference-property objects are not present.'): GraphReply => ({
    status: 404,
    body: { error: { code: 'Request_ResourceNotFound', message } },
  }),
  throttled: (retryAfterSeconds: number): GraphReply => ({
    status: 429,
    headers: { 'Retry-After': String(retryAfterSeconds) },
    body: { error: { code: 'TooManyRequests', message: 'Too many requests.' } },
  }),
  unavailable: (): GraphReply => ({ status: 503, body: { error: { code: 'ServiceUnavailable', message: 'Service unavailable.' } } }),
  badRequest: (message: string): GraphReply => ({ status: 400, body: { error: { code: 'BadRequest', message } } }),
};

export class FakeGraph {
  readonly requests: RecordedGraphRequest[] = [];
  readonly directory: Record<DirectoryCollection, Map<string, FakeDirectoryObject>> = {
    servicePrincipals: new Map(),
    applications: new Map(),
    users: new Map(),
  };
  private readonly routes: Route[] = [];

  constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  get baseUrl(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** Script a route. `path` is the decoded path with version (exact) or a RegExp. Later scripts win over earlier ones. */
  on(method: string, path: string | RegExp, ...replies: GraphReplyScript[]): this {
    this.routes.unshift({ method: method.toUpperCase(), path, replies, used: 0 });
    return this;
  }

  /** A collection served in pages linked by absolute `@odata.nextLink` (`?$skiptoken=<n>`). */
  pages(path: string, pages: unknown[][]): this {
    return this.on('GET', path, (request) => {
      const index = Number(request.query.$skiptoken ?? '0');
      const next = index + 1 < pages.length ? `${this.baseUrl}${path}?$skiptoken=${index + 1}` : undefined;
      return { status: 200, body: { '@odata.context': `${this.baseUrl}/v1.0/$metadata`, value: pages[index] ?? [], ...(next ? { '@odata.nextLink': next } : {}) } };
    });
  }

  addObject(collection: DirectoryCollection, object: FakeDirectoryObject): this {
    this.directory[collection].set(object.id.toLowerCase(), structuredClone(object));
    return this;
  }

  object(collection: DirectoryCollection, id: string): FakeDirectoryObject | undefined {
    return this.directory[collection].get(id.toLowerCase());
  }

  /** Every request that could change something. */
  writes(): RecordedGraphRequest[] {
    return this.requests.filter((request) => request.method !== 'GET');
  }

  clear(): void {
    this.requests.length = 0;
  }

  /** Back to a fresh server: no requests, no scripted routes, an empty directory. */
  reset(): this {
    this.clear();
    this.routes.length = 0;
    for (const collection of Object.values(this.directory)) collection.clear();
    return this.withDefaultRoutes();
  }

  /** The write routes Graph answers without a directory object, as it documents them. */
  withDefaultRoutes(): this {
    return this.on('POST', '/beta/identityProtection/riskyAgents/confirmCompromised', { status: 204 });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** @internal */
  answer(request: RecordedGraphRequest): GraphReply {
    for (const route of this.routes) {
      if (route.method !== request.method) continue;
      if (typeof route.path === 'string' ? route.path !== request.path : !route.path.test(request.path)) continue;
      const script = route.replies[Math.min(route.used, route.replies.length - 1)]!;
      route.used++;
      return typeof script === 'function' ? script(request) : script;
    }
    return this.directoryAnswer(request);
  }

  private directoryAnswer(request: RecordedGraphRequest): GraphReply {
    const match = /^\/(?:v1\.0|beta)\/(servicePrincipals|applications|users)(?:\/([0-9a-fA-F-]{36})|\(appId='([0-9a-fA-F-]{36})'\))(\/.*)?$/.exec(request.path);
    if (!match) return GRAPH_ERRORS.notFound(`no route for ${request.method} ${request.path}`);
    const collection = match[1] as DirectoryCollection;
    const byId = match[2]?.toLowerCase();
    const byAppId = match[3]?.toLowerCase();
    const rest = match[4] ?? '';
    const object = byId ? this.directory[collection].get(byId) : [...this.directory[collection].values()].find((candidate) => candidate.appId?.toLowerCase() === byAppId);
    if (!object) return GRAPH_ERRORS.notFound();
    const body = (request.body ?? {}) as Record<string, unknown>;
    if (request.method === 'GET' && rest === '') return { status: 200, body: object };
    if (request.method === 'PATCH' && (rest === '' || rest.startsWith('/microsoft.graph.'))) {
      if (rest && rest.slice(1) !== object['@odata.type'].replace(/^#/, '')) return GRAPH_ERRORS.badRequest(`object ${object.id} is not a ${rest.slice(1)}`);
      Object.assign(object, body);
      return { status: 204 };
    }
    if (request.method === 'POST' && rest === '/removePassword') {
      const credentials = (object.passwordCredentials as { keyId: string }[] | undefined) ?? [];
      const kept = credentials.filter((credential) => credential.keyId !== body.keyId);
      if (kept.length === credentials.length) return GRAPH_ERRORS.badRequest(`No password credential found with keyId ${String(body.keyId)}`);
      object.passwordCredentials = kept;
      return { status: 204 };
    }
    const fic = /^\/federatedIdentityCredentials\/([0-9a-fA-F-]{36})$/.exec(rest);
    if (request.method === 'DELETE' && fic) {
      const credentials = (object.federatedIdentityCredentials as { id: string }[] | undefined) ?? [];
      const kept = credentials.filter((credential) => credential.id !== fic[1]);
      if (kept.length === credentials.length) return GRAPH_ERRORS.notFound();
      object.federatedIdentityCredentials = kept;
      return { status: 204 };
    }
    if (request.method === 'POST' && rest === '/revokeSignInSessions') return { status: 200, body: { value: true } };
    return GRAPH_ERRORS.notFound(`no route for ${request.method} ${request.path}`);
  }
}

export async function startFakeGraph(): Promise<FakeGraph> {
  let fake: FakeGraph | undefined;
  const server = createServer(testTlsOptions(), (req, res) => {
    void handle(req, res, () => fake!);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  fake = new FakeGraph(server, port).withDefaultRoutes();
  return fake;
}

async function handle(req: IncomingMessage, res: ServerResponse, fake: () => FakeGraph): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  let body: unknown = undefined;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  const url = new URL(req.url ?? '/', 'https://127.0.0.1');
  const request: RecordedGraphRequest = {
    method: (req.method ?? 'GET').toUpperCase(),
    path: decodeURIComponent(url.pathname),
    query: Object.fromEntries(url.searchParams.entries()),
    body,
    authorization: req.headers.authorization,
    headers: req.headers,
  };
  fake().requests.push(request);
  let reply: GraphReply;
  try {
    reply = fake().answer(request);
  } catch (error) {
    reply = { status: 500, body: { error: { code: 'FakeGraphScriptError', message: String(error) } } };
  }
  const headers: Record<string, string> = { ...reply.headers };
  if (reply.body !== undefined) headers['Content-Type'] = 'application/json';
  res.writeHead(reply.status, headers);
  res.end(reply.body !== undefined ? JSON.stringify(reply.body) : undefined);
}

/** A credential that hands out a fixed bearer token, so tests can assert the Authorization header. */
export function fakeCredential(token: string): TokenCredential {
  return { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }) };
}

/**
 * Starts one fake Graph for the calling test file (closed after it) and resets it before each
 * test. Read `.graph` inside tests and hooks, not at collection time.
 */
export function useFakeGraph(): { readonly graph: FakeGraph } {
  let graph: FakeGraph | undefined;
  beforeAll(async () => {
    graph = await startFakeGraph();
  });
  afterAll(async () => {
    await graph?.close();
  });
  beforeEach(() => {
    graph?.reset();
  });
  return {
    get graph(): FakeGraph {
      if (!graph) throw new Error('fake Graph not started: use it inside a test or hook');
      return graph;
    },
  };
}
