/**
 * One Microsoft Graph client for response actions, inventory reads and grant-permissions:
 * `@microsoft/microsoft-graph-client` with a token credential (managed identity in Azure), its
 * default middleware chain minus the built-in RetryHandler. Retries are ours, so there is exactly
 * one bounded budget: 429 / 5xx / network errors are retried honouring `Retry-After` while the total
 * wait stays within `budgetMs`; 403 becomes GRAPH_PERMISSION_MISSING naming the permission the
 * call needs, 404 GRAPH_NOT_FOUND, anything else GRAPH_REQUEST_FAILED.
 */
import type { TokenCredential } from '@azure/identity';
import {
  AuthenticationHandler,
  Client,
  GraphError,
  HTTPMessageHandler,
  RedirectHandler,
  RedirectHandlerOptions,
  TelemetryHandler,
} from '@microsoft/microsoft-graph-client';
import { TokenCredentialAuthenticationProvider } from '@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials';
import { AgentwatchError, type ErrorCode } from '../errors';
import { silentLogger, type Logger } from '../ports';
import type { GraphPermission } from './permissions';

/** Graph hosts of the public and national clouds: a token for `<host>/.default` is valid there. */
const GRAPH_CLOUD_HOSTS = new Set(['graph.microsoft.com', 'graph.microsoft.us', 'dod-graph.microsoft.us', 'microsoftgraph.chinacloudapi.cn']);

export interface GraphRetryOptions {
  /** Attempts per call including the first. Optional; defaults to 4. */
  maxAttempts?: number;
  /** Total time a call may spend waiting between attempts. Optional; defaults to 30 s. */
  budgetMs?: number;
  /** Wait when the service gives no Retry-After (doubled per attempt). Optional; defaults to 1 s. */
  baseDelayMs?: number;
}

export interface GraphClientOptions {
  credential: TokenCredential;
  /** `AGENTWATCH_GRAPH_BASE_URL`. Optional; defaults to https://graph.microsoft.com. */
  baseUrl?: string;
  /** Token scopes. Optional; defaults to `<cloud graph host>/.default`. */
  scopes?: string[];
  retry?: GraphRetryOptions;
  logger?: Logger;
  /** Injected so unit tests need not wait; defaults to a real timer. */
  sleep?: (ms: number) => Promise<void>;
}

/** What a call is for, so an error can say which action failed and which permission it needs. */
export interface GraphCallPurpose {
  operation: string;
  permission?: GraphPermission;
}

/** A Graph call that failed after retries, with the HTTP status and Graph error code it ended on. */
export class GraphRequestError extends AgentwatchError {
  readonly statusCode: number;
  readonly graphCode?: string;
  readonly operation: string;
  /** The permission that was missing (GRAPH_PERMISSION_MISSING only). */
  readonly missingPermission?: string;
  readonly path: string;
  constructor(
    code: ErrorCode,
    message: string,
    details: { statusCode: number; graphCode?: string; operation: string; missingPermission?: string; path: string },
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.statusCode = details.statusCode;
    this.graphCode = details.graphCode;
    this.operation = details.operation;
    this.missingPermission = details.missingPermission;
    this.path = details.path;
  }
}

export function isGraphRequestError(value: unknown): value is GraphRequestError {
  return value instanceof GraphRequestError;
}

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface GraphPage<T> {
  value: T[];
  '@odata.nextLink'?: string;
}

export class GraphHttp {
  readonly baseUrl: string;
  private readonly client: Client;
  private readonly origin: string;
  private readonly logger: Logger;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly maxAttempts: number;
  private readonly budgetMs: number;
  private readonly baseDelayMs: number;

  constructor(options: GraphClientOptions) {
    const base = new URL(options.baseUrl ?? 'https://graph.microsoft.com');
    if (base.protocol !== 'https:') {
      // The auth middleware never attaches a bearer token to plain http: fail here, not with a 401 later.
      throw new AgentwatchError('CONFIG_INVALID', `AGENTWATCH_GRAPH_BASE_URL must be https, got ${base.origin}`);
    }
    this.origin = base.origin;
    this.baseUrl = base.origin;
    const scopes = options.scopes ?? [`https://${GRAPH_CLOUD_HOSTS.has(base.hostname) ? base.hostname : 'graph.microsoft.com'}/.default`];
    const authProvider = new TokenCredentialAuthenticationProvider(options.credential, { scopes });
    // The default chain without RetryHandler: its retries (3 × up to 180 s) would sit under ours unbounded.
    const middleware = [new AuthenticationHandler(authProvider), new RedirectHandler(new RedirectHandlerOptions()), new TelemetryHandler(), new HTTPMessageHandler()];
    this.client = Client.initWithMiddleware({
      baseUrl: base.origin,
      middleware,
      // Hosts outside the Graph list (a test server, a proxy) only get the bearer token when named here.
      customHosts: GRAPH_CLOUD_HOSTS.has(base.hostname) ? undefined : new Set([base.hostname]),
      defaultVersion: 'v1.0',
    });
    this.logger = options.logger ?? silentLogger;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.maxAttempts = Math.max(1, options.retry?.maxAttempts ?? 4);
    this.budgetMs = Math.max(0, options.retry?.budgetMs ?? 30_000);
    this.baseDelayMs = Math.max(0, options.retry?.baseDelayMs ?? 1_000);
  }

  /**
   * One Graph call. `path` starts with the version (`/v1.0/…`, `/beta/…`) or is an absolute URL on
   * the same origin (an `@odata.nextLink`). Resolves to the parsed body, undefined on 204.
   */
  async request<T>(method: Method, path: string, purpose: GraphCallPurpose, body?: unknown, headers?: Record<string, string>): Promise<T | undefined> {
    const { version, relative } = this.split(path);
    let waited = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        const call = this.client.api(relative).version(version);
        if (headers) call.headers(headers);
        switch (method) {
          case 'GET':
            return (await call.get()) as T;
          case 'POST':
            return (await call.post(body)) as T;
          case 'PATCH':
            return (await call.patch(body ?? {})) as T;
          case 'DELETE':
            return (await call.delete()) as T;
        }
      } catch (error) {
        const status = statusOf(error);
        if (!isRetryable(status) || attempt >= this.maxAttempts) throw this.mapError(error, method, path, purpose, attempt);
        const delay = retryDelayMs(error, this.baseDelayMs * 2 ** (attempt - 1));
        if (waited + delay > this.budgetMs) throw this.mapError(error, method, path, purpose, attempt, delay);
        this.logger.log('warn', 'graph call throttled or failing, retrying', { operation: purpose.operation, method, path, status, attempt, delayMs: delay });
        waited += delay;
        await this.sleep(delay);
      }
    }
  }

  /** Every page of a collection, following `@odata.nextLink` on this origin only (the bearer token never leaves it). */
  async *pages<T>(path: string, purpose: GraphCallPurpose, options: { maxPages?: number; headers?: Record<string, string> } = {}): AsyncGenerator<T[]> {
    const maxPages = options.maxPages ?? 1_000;
    const seen = new Set<string>();
    let next: string | undefined = path;
    for (let pageCount = 0; next !== undefined; pageCount++) {
      if (pageCount >= maxPages) throw new GraphRequestError('GRAPH_REQUEST_FAILED', `${purpose.operation}: more than ${maxPages} pages at ${path}; stopping`, { statusCode: 0, operation: purpose.operation, path });
      if (seen.has(next)) throw new GraphRequestError('GRAPH_REQUEST_FAILED', `${purpose.operation}: @odata.nextLink repeats ${next}`, { statusCode: 0, operation: purpose.operation, path: next });
      seen.add(next);
      const page: GraphPage<T> | undefined = await this.request<GraphPage<T>>('GET', next, purpose, undefined, options.headers);
      yield Array.isArray(page?.value) ? page.value : [];
      next = page?.['@odata.nextLink'];
    }
  }

  private split(path: string): { version: string; relative: string } {
    let rest = path;
    if (/^https?:\/\//i.test(path)) {
      const url = new URL(path);
      if (url.origin !== this.origin) {
        throw new GraphRequestError('GRAPH_REQUEST_FAILED', `refusing to call ${url.origin}: not the configured Graph origin ${this.origin}`, { statusCode: 0, operation: 'follow link', path });
      }
      rest = url.pathname + url.search;
    }
    const match = /^\/?(v1\.0|beta)(\/.*)$/.exec(rest);
    if (!match) throw new GraphRequestError('GRAPH_REQUEST_FAILED', `Graph path must start with /v1.0 or /beta: ${path}`, { statusCode: 0, operation: 'build request', path });
    return { version: match[1]!, relative: match[2]! };
  }

  private mapError(error: unknown, method: Method, path: string, purpose: GraphCallPurpose, attempts: number, nextDelayMs?: number): GraphRequestError {
    const status = statusOf(error);
    const graphCode = error instanceof GraphError ? (error.code ?? undefined) : undefined;
    const serviceMessage = error instanceof Error ? error.message : String(error);
    const where = `${method} ${path}`;
    const details = { statusCode: status, graphCode, operation: purpose.operation, path };
    if (status === 403) {
      const needed = purpose.permission;
      const what = needed
        ? `the application permission ${needed.permission} is missing${needed.alternatives.length ? ` (or one of ${needed.alternatives.join(', ')})` : ''}`
        : 'a permission is missing';
      return new GraphRequestError(
        'GRAPH_PERMISSION_MISSING',
        `${purpose.operation}: Graph refused ${where} (403 ${graphCode ?? 'Forbidden'}): ${what}. Grant it to the Function's managed identity with \`agentwatch grant-permissions --principal-id <object id>\`. Service said: ${serviceMessage}`,
        { ...details, missingPermission: needed?.permission },
        { cause: error },
      );
    }
    if (status === 404) {
      return new GraphRequestError('GRAPH_NOT_FOUND', `${purpose.operation}: ${where} returned 404 — the object is already gone`, details, { cause: error });
    }
    if (isRetryable(status)) {
      const why = nextDelayMs !== undefined ? `the next wait (${nextDelayMs} ms) would exceed the ${this.budgetMs} ms retry budget` : `${attempts} attempt(s) used`;
      return new GraphRequestError('GRAPH_TRANSIENT', `${purpose.operation}: ${where} still failing with ${status || 'a network error'} after ${attempts} attempt(s); ${why}: ${serviceMessage}`, details, { cause: error });
    }
    return new GraphRequestError('GRAPH_REQUEST_FAILED', `${purpose.operation}: ${where} failed with ${status} ${graphCode ?? ''}: ${serviceMessage}`.replace(/\s+:/, ':'), details, { cause: error });
  }
}

function statusOf(error: unknown): number {
  if (error instanceof GraphError) return error.statusCode;
  const status = (error as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof status === 'number' ? status : -1;
}

/** 429, 5xx, and -1 (no response: network failure, reset) are worth another attempt. */
function isRetryable(status: number): boolean {
  return status === 429 || status === -1 || (status >= 500 && status <= 599);
}

/** Retry-After in seconds or as an HTTP date; else the exponential fallback. */
function retryDelayMs(error: unknown, fallbackMs: number): number {
  const headers = error instanceof GraphError ? error.headers : undefined;
  const raw = headers?.get?.('retry-after');
  if (raw) {
    const seconds = Number(raw);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
    const at = Date.parse(raw);
    if (!Number.isNaN(at)) return Math.max(0, at - Date.now());
  }
  return fallbackMs;
}
