/**
 * A local HTTPS stand-in for the Azure Monitor Logs Ingestion API (a test double of the service,
 * not of our code): the real `@azure/monitor-ingestion` client posts to it over TLS with the
 * harness certificate, so the bearer token, gzip and chunking are the real ones.
 *
 * It records every request — decoded path parts, the percent-encoded query decoded
 * (`api%2Dversion`), headers, the gunzipped JSON rows — and answers from, in order:
 *  1. the outage switch (`outage`): the connection is reset, like an unreachable endpoint;
 *  2. rules added with `when(predicate, reply, times)`, e.g. "refuse the chunk holding alert X";
 *  3. one-shot replies queued with `enqueue(...)`, e.g. three 503s then a 429;
 *  4. otherwise 204 No Content, and the rows count as accepted.
 *
 * It also serves an App Service-style managed identity endpoint (`identityEndpoint`, with header
 * `X-IDENTITY-HEADER`), so `DefaultAzureCredential` in a child process gets a token from it exactly
 * as it does inside Azure Functions. Loopback only; `close()` ends keep-alive connections too.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { testTlsOptions } from './tls';

export interface IngestionRequest {
  method: string;
  /** Path without the query, e.g. `/dataCollectionRules/dcr-1/streams/Custom-AgentwatchAlerts_CL`. */
  path: string;
  /** Query parameters with percent-encoded keys and values decoded (`api-version`). */
  query: Record<string, string>;
  dcrImmutableId?: string;
  streamName?: string;
  headers: Record<string, string | string[] | undefined>;
  authorization?: string;
  contentEncoding?: string;
  /** Bytes on the wire (gzip) and once decompressed. */
  wireBytes: number;
  jsonBytes: number;
  /** The JSON array posted; empty when the body was not a JSON array. */
  rows: Record<string, unknown>[];
  /** The answer given: an HTTP status, or `reset` for a dropped connection. */
  answered: number | 'reset';
}

export type IngestionReply = { status: number; headers?: Record<string, string>; body?: unknown } | 'reset';

/** Replies shaped like the service's own (`{"error":{"code","message"}}`). */
export const INGESTION_REPLIES = {
  throttled: (retryAfterSeconds: number): IngestionReply => ({
    status: 429,
    headers: { 'Retry-After': String(retryAfterSeconds) },
    body: { error: { code: 'TooManyRequests', message: 'Rate limit of requests per minute for the data collection rule exceeded.' } },
  }),
  unavailable: (): IngestionReply => ({ status: 503, body: { error: { code: 'ServiceUnavailable', message: 'The service is temporarily unavailable.' } } }),
  invalidStream: (message = 'The stream schema does not match the data sent.'): IngestionReply => ({ status: 400, body: { error: { code: 'InvalidStream', message } } }),
  tooLarge: (): IngestionReply => ({ status: 413, body: { error: { code: 'ContentLengthLimitExceeded', message: 'Maximum allowed content length: 1048576 bytes (1 MB).' } } }),
  forbidden: (): IngestionReply => ({ status: 403, body: { error: { code: 'OperationFailed', message: 'The authentication token provided does not have access to ingest data for the data collection rule.' } } }),
};

interface Rule {
  matches: (request: IngestionRequest) => boolean;
  reply: IngestionReply;
  remaining: number;
}

const UPLOAD_PATH = /^\/dataCollectionRules\/([^/]+)\/streams\/([^/]+)$/;
export const FAKE_IDENTITY_HEADER = 'agentwatch-test-identity-header';

export class FakeLogsIngestion {
  readonly requests: IngestionRequest[] = [];
  /** Token requests made to the managed identity endpoint (resource asked for). */
  readonly tokenRequests: { resource?: string; identityHeader?: string }[] = [];
  /** `true`, or a function consulted per request (e.g. a simulated clock): connections are reset. */
  outage: boolean | (() => boolean) = false;
  private readonly rules: Rule[] = [];
  private readonly queue: IngestionReply[] = [];
  private server?: Server;
  private port = 0;

  get endpoint(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** Set as `IDENTITY_ENDPOINT` (with `IDENTITY_HEADER` = `FAKE_IDENTITY_HEADER`) for a managed identity token. */
  get identityEndpoint(): string {
    return `https://127.0.0.1:${this.port}/msi/token`;
  }

  async start(): Promise<this> {
    this.server = createServer(testTlsOptions(), (request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        response.writeHead(500);
        response.end(String(error));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  /** Answers the next requests, one reply each, in order. */
  enqueue(...replies: IngestionReply[]): this {
    this.queue.push(...replies);
    return this;
  }

  /** Answers requests matching `predicate` with `reply`, `times` times (default: always). */
  when(predicate: (request: IngestionRequest) => boolean, reply: IngestionReply, times = Number.POSITIVE_INFINITY): this {
    this.rules.push({ matches: predicate, reply, remaining: times });
    return this;
  }

  /** Forgets scripts, the outage and recorded requests. */
  reset(): void {
    this.rules.length = 0;
    this.queue.length = 0;
    this.requests.length = 0;
    this.tokenRequests.length = 0;
    this.outage = false;
  }

  uploads(): IngestionRequest[] {
    return this.requests.filter((request) => request.dcrImmutableId !== undefined);
  }

  /** Rows of every request answered 204, in arrival order. */
  acceptedRows(): Record<string, unknown>[] {
    return this.uploads()
      .filter((request) => request.answered === 204)
      .flatMap((request) => request.rows);
  }

  /** How many times each `AlertId` was accepted: a value above 1 is a duplicate. */
  acceptedCounts(idColumn = 'AlertId'): Map<string, number> {
    const counts = new Map<string, number>();
    for (const row of this.acceptedRows()) counts.set(String(row[idColumn]), (counts.get(String(row[idColumn])) ?? 0) + 1);
    return counts;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await readBody(request);
    const url = new URL(request.url ?? '/', 'https://127.0.0.1');
    if (url.pathname === '/msi/token') return this.issueToken(request, url, response);
    const query: Record<string, string> = {};
    // The SDK sends `api%2Dversion`: URLSearchParams decodes keys and values alike.
    for (const [key, value] of url.searchParams) query[key] = value;
    const encoding = header(request, 'content-encoding');
    const json = encoding === 'gzip' ? gunzipSync(body) : body;
    const parsed = safeJson(json.toString('utf8'));
    const upload = UPLOAD_PATH.exec(url.pathname);
    const recorded: IngestionRequest = {
      method: request.method ?? '',
      path: url.pathname,
      query,
      ...(upload ? { dcrImmutableId: decodeURIComponent(upload[1]!), streamName: decodeURIComponent(upload[2]!) } : {}),
      headers: request.headers,
      ...(header(request, 'authorization') ? { authorization: header(request, 'authorization') } : {}),
      ...(encoding ? { contentEncoding: encoding } : {}),
      wireBytes: body.length,
      jsonBytes: json.length,
      rows: Array.isArray(parsed) ? (parsed as Record<string, unknown>[]) : [],
      answered: 204,
    };
    this.requests.push(recorded);
    const reply: IngestionReply = !upload || request.method !== 'POST' ? { status: 404, body: { error: { code: 'NotFound', message: `no route for ${request.method} ${url.pathname}` } } } : this.choose(recorded);
    if (reply === 'reset') {
      recorded.answered = 'reset';
      request.socket.destroy();
      return;
    }
    recorded.answered = reply.status;
    const payload = reply.body === undefined ? '' : JSON.stringify(reply.body);
    response.writeHead(reply.status, { ...(payload ? { 'content-type': 'application/json' } : {}), ...reply.headers });
    response.end(payload);
  }

  private choose(request: IngestionRequest): IngestionReply {
    const outage = typeof this.outage === 'function' ? this.outage() : this.outage;
    if (outage) return 'reset';
    const rule = this.rules.find((candidate) => candidate.remaining > 0 && candidate.matches(request));
    if (rule) {
      rule.remaining -= 1;
      return rule.reply;
    }
    return this.queue.shift() ?? { status: 204 };
  }

  private issueToken(request: IncomingMessage, url: URL, response: ServerResponse): void {
    const identityHeader = header(request, 'x-identity-header');
    this.tokenRequests.push({ ...(url.searchParams.get('resource') ? { resource: url.searchParams.get('resource')! } : {}), ...(identityHeader ? { identityHeader } : {}) });
    if (identityHeader !== FAKE_IDENTITY_HEADER) {
      response.writeHead(401, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: 'invalid identity header' }));
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(
      JSON.stringify({
        access_token: `fake-mi-token-${this.tokenRequests.length}`,
        expires_on: String(Math.floor(Date.now() / 1000) + 3600),
        resource: url.searchParams.get('resource'),
        token_type: 'Bearer',
      }),
    );
  }
}

export async function startFakeLogsIngestion(): Promise<FakeLogsIngestion> {
  return new FakeLogsIngestion().start();
}

/** Environment variables through which `DefaultAzureCredential` could find a real credential. */
const CREDENTIAL_ENV = ['IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'MSI_ENDPOINT', 'MSI_SECRET', 'AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_CLIENT_SECRET', 'AZURE_FEDERATED_TOKEN_FILE'];

/**
 * Makes `DefaultAzureCredential` in this test process take its managed identity token from the
 * fake (as an App Service / Functions identity endpoint would serve it), and from nothing real.
 * Returns the function that puts the environment back.
 */
export function useFakeManagedIdentity(fake: FakeLogsIngestion): () => void {
  const saved = new Map(CREDENTIAL_ENV.map((name) => [name, process.env[name]]));
  for (const name of CREDENTIAL_ENV) delete process.env[name];
  process.env.IDENTITY_ENDPOINT = fake.identityEndpoint;
  process.env.IDENTITY_HEADER = FAKE_IDENTITY_HEADER;
  return () => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}

/** A `TokenCredential` with a fixed token, counting the scopes it was asked for. */
export function fixedTokenCredential(token = 'agentwatch-test-token'): { getToken(scopes: string | string[]): Promise<{ token: string; expiresOnTimestamp: number }>; scopes: string[] } {
  const scopes: string[] = [];
  return {
    scopes,
    getToken: async (requested) => {
      scopes.push(...(Array.isArray(requested) ? requested : [requested]));
      return { token, expiresOnTimestamp: Date.now() + 3_600_000 };
    },
  };
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
