/**
 * The one HTTP client for Keystone and Neutron: keep-alive connections (node:http/https agents), a timeout per
 * attempt, TLS (`cafile`, client `certfile`/`keyfile`, `insecure`), and bounded retries with exponential
 * backoff and jitter on connection errors, timeouts and 5xx answers — for idempotent requests only, and for any
 * request that never reached the server (connection refused). A 429 (rate limited) is retried for every
 * method, since the server did not process the request, after the `Retry-After` it asks for (seconds or an
 * HTTP date) when that fits before the deadline.
 *
 * Proxies come from `http_proxy`/`https_proxy`/`all_proxy`/`no_proxy` as python-requests reads them (proxy.ts):
 * a plain-HTTP request goes to the proxy with the absolute URL, an https one through a CONNECT tunnel.
 *
 * Every call has a deadline (an absolute time) shared by all its attempts, and may have a signal (the deadline of
 * the plugin request it serves), so a call never outlives Docker's 30 s plugin timeout however many retries it
 * would like. Giving up is a `KuryrError` (`KURYR_ERR_NEUTRON`) that
 * names the call (service, method and path, never the query string, a header or a body).
 */
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { KuryrError } from '../../errors.ts';
import type { RetryOptions, TlsOptions } from './config.ts';
import { describeProxy, type ProxyEnv, proxiesFromEnv, proxyAuthorization, proxyFor } from './proxy.ts';

/**
 * node:http as CommonJS: an ESM import of it builds its namespace, whose lazy getters load undici, http2, zlib and
 * tls (about 10 MiB of RSS in the plugin).
 */
const nodeHttp = process.getBuiltinModule('node:http');

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface TransportRequest {
  method: HttpMethod;
  /** Where to send it (scheme, host, port; and the path unless `path` is given). */
  url: URL;
  /**
   * Path and query exactly as to be sent, already percent-encoded; overrides `url`'s. (WHATWG URL parsing would
   * resolve encoded dot segments such as a tag `..` sent as `%2E%2E`.)
   */
  path?: string;
  /** Extra headers (the token). `Accept` and, with a body, `Content-Type` are always sent. */
  headers?: Readonly<Record<string, string>>;
  /** JSON text. */
  body?: string;
  /** Service name used in error messages: `Neutron`, `Keystone`. */
  service: string;
  /** May the request be sent again after a failure? Default: every method but POST. */
  idempotent?: boolean;
  /** Absolute time (`Date.now()` scale) by which the call, retries included, must be over. */
  deadline: number;
  /**
   * Aborts the call, retries and their sleeps included (the deadline of the plugin request it serves:
   * util/deadline.ts). An aborted call gives up as one that reached its deadline.
   */
  signal?: AbortSignal;
  /** Called before each attempt is sent (request counting). */
  onAttempt?: () => void;
}

export interface TransportResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Body text (may be empty). */
  body: string;
  /** Attempts made, this one included. */
  attempts: number;
  /** Set when the answer is a 5xx the transport gave up retrying. */
  gaveUp?: string;
}

export interface TransportOptions {
  tls: TlsOptions;
  timeoutMs: number;
  retry: RetryOptions;
  maxSockets: number;
  /** Idle time after which a pooled connection is closed (below common server keep-alive timeouts). */
  idleSocketMs?: number;
  /** Random source for jitter (tests). */
  random?: () => number;
  /** The wait between attempts (tests record the backoff with it); false: ended early by `signal`. */
  sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<boolean | undefined>;
  /** Where the proxy variables are read (default `process.env`, once). */
  env?: NodeJS.ProcessEnv;
}

/** Socket error codes that mean "the request may not have reached the server, or the answer was lost". */
const RETRYABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
]);
const RETRYABLE_STATUS = new Set([500, 502, 503, 504]);

class AttemptTimeout extends Error {
  override readonly name = 'AttemptTimeout';
}

/** The call for messages: service, method and path, without the query string (which may carry names or filters). */
export function describeCall(service: string, method: string, url: URL, path?: string): string {
  return `${service} ${method} ${path === undefined ? url.pathname : path.replace(/\?.*$/, '')}`;
}

function readPem(key: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new KuryrError('KURYR_ERR_CONFIG', `[neutron] ${key}: cannot read ${file} (${code})`);
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function reasonOf(e: unknown, timeoutMs: number): string {
  if (e instanceof AttemptTimeout) return `timed out after ${seconds(timeoutMs)}`;
  const err = e as NodeJS.ErrnoException;
  const code = err.code && !err.message.includes(err.code) ? ` (${err.code})` : '';
  return `${err.message}${code}`;
}

function isRetryableError(e: unknown): boolean {
  if (e instanceof AttemptTimeout) return true;
  const code = (e as NodeJS.ErrnoException).code;
  return code !== undefined && RETRYABLE_CODES.has(code);
}

/**
 * The attempt failed before a connection existed (connection refused, no route, name lookup): the server never
 * saw the request, so even a POST may be sent again (as keystoneauth's `connect_retries` do). A reset, a timeout
 * or a lost answer may come after the server acted, and only idempotent requests are repeated after those.
 */
function neverSent(e: unknown): boolean {
  if (e instanceof AttemptTimeout) return false;
  const { syscall } = e as NodeJS.ErrnoException;
  return (syscall === 'connect' || syscall === 'getaddrinfo') && isRetryableError(e);
}

/**
 * Milliseconds a `Retry-After` header asks to wait (RFC 9110 §10.2.3: delay-seconds or an HTTP date);
 * undefined when absent or unreadable.
 */
export function retryAfterMs(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (value === undefined || value === '') return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // Every HTTP date form (IMF-fixdate, RFC 850, asctime) starts with the day's name.
  if (!/^[A-Za-z]{3}/.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Waits `ms`; resolves false, early, when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * An https agent whose connections are CONNECT tunnels through an http proxy (keep-alive pooled like direct
 * ones); TLS is negotiated with the target inside the tunnel, with the agent's TLS options.
 */
class TunnelAgent extends https.Agent {
  private readonly proxy: URL;
  private readonly connectTimeoutMs: number;

  constructor(proxy: URL, connectTimeoutMs: number, options: https.AgentOptions) {
    super(options);
    this.proxy = proxy;
    this.connectTimeoutMs = connectTimeoutMs;
  }

  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const done = callback ?? (() => undefined);
    const host = options.host ?? options.hostname ?? 'localhost';
    const target = `${host.includes(':') ? `[${host}]` : host}:${options.port}`;
    const connect = nodeHttp.request({
      host: this.proxy.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: this.proxy.port || 80,
      method: 'CONNECT',
      path: target,
      headers: { Host: target, ...proxyAuthorization(this.proxy) },
      agent: false,
      timeout: this.connectTimeoutMs,
    });
    connect.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        done(
          Object.assign(
            new Error(`proxy ${describeProxy(this.proxy)} answered ${res.statusCode} to CONNECT ${target}`),
            {
              code: 'EPROXY',
            },
          ),
          socket,
        );
        return;
      }
      const secure = tls.connect({ ...(options as tls.ConnectionOptions), socket, servername: host });
      done(null, secure);
    });
    connect.once('timeout', () =>
      connect.destroy(Object.assign(new Error('proxy CONNECT timed out'), { code: 'ETIMEDOUT' })),
    );
    connect.once('error', (e) => done(e, undefined as unknown as Duplex));
    connect.end();
    return undefined;
  }
}

/** Keep-alive HTTP(S) client with timeouts, TLS options, proxies and bounded retries. */
export class HttpTransport {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly httpsOptions: https.AgentOptions;
  private readonly tunnels = new Map<string, TunnelAgent>();
  private readonly proxies: ProxyEnv;
  private readonly options: TransportOptions;
  private readonly random: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal | undefined) => Promise<boolean | undefined>;

  constructor(options: TransportOptions) {
    this.options = options;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? sleep;
    this.proxies = proxiesFromEnv(options.env ?? process.env);
    const common = { keepAlive: true, maxSockets: options.maxSockets, timeout: options.idleSocketMs ?? 4_000 };
    this.httpAgent = new nodeHttp.Agent(common);
    const { tls } = options;
    this.httpsOptions = {
      ...common,
      rejectUnauthorized: !tls.insecure,
      ...(tls.cafile === undefined ? {} : { ca: readPem('cafile', tls.cafile) }),
      ...(tls.certfile === undefined ? {} : { cert: readPem('certfile', tls.certfile) }),
      ...(tls.keyfile === undefined ? {} : { key: readPem('keyfile', tls.keyfile) }),
    };
    this.httpsAgent = new https.Agent(this.httpsOptions);
  }

  /** The agent for an https target through `proxy` (one per proxy). */
  private tunnel(proxy: URL): TunnelAgent {
    const key = proxy.href;
    let agent = this.tunnels.get(key);
    if (agent === undefined) {
      agent = new TunnelAgent(proxy, this.options.timeoutMs, this.httpsOptions);
      this.tunnels.set(key, agent);
    }
    return agent;
  }

  /**
   * Send a request; answers with any status (4xx/5xx included, after retries for 5xx). Throws a `KuryrError`
   * when no answer could be had (connection errors, timeouts) or the deadline left no time for an attempt.
   */
  async request(req: TransportRequest): Promise<TransportResponse> {
    const started = Date.now();
    const call = describeCall(req.service, req.method, req.url, req.path);
    const idempotent = req.idempotent ?? req.method !== 'POST';
    const { attempts: maxAttempts, baseDelayMs, maxDelayMs } = this.options.retry;
    let lastReason = 'no attempt made: the call had no time left';
    let lastError: unknown;
    const proxy = proxyFor(req.url, this.proxies);
    const via = proxy === undefined ? '' : ` (via proxy ${describeProxy(proxy)})`;
    for (let attempt = 1; ; attempt++) {
      const remaining = req.deadline - Date.now();
      if (remaining <= 0 || req.signal?.aborted) break;
      const timeoutMs = Math.min(this.options.timeoutMs, remaining);
      let outcome: TransportResponse | undefined;
      try {
        req.onAttempt?.();
        outcome = await this.attempt(req, timeoutMs, attempt, proxy);
      } catch (e) {
        lastError = e;
        if (req.signal?.aborted) {
          lastReason = `the request's deadline passed during attempt ${attempt}${via}`;
          break;
        }
        lastReason = `${reasonOf(e, timeoutMs)}${via}`;
        if (!idempotent && !neverSent(e)) {
          const note = isRetryableError(e) ? `; not retried: ${req.method} is not idempotent` : '';
          throw new KuryrError('KURYR_ERR_NEUTRON', `${call}: ${lastReason}${note}`, { cause: e });
        }
        if (!isRetryableError(e)) {
          throw new KuryrError('KURYR_ERR_NEUTRON', `${call}: ${lastReason}`, { cause: e });
        }
      }
      let asked: number | undefined;
      if (outcome !== undefined) {
        const limited = outcome.status === 429;
        if (!limited && (!idempotent || !RETRYABLE_STATUS.has(outcome.status))) return outcome;
        lastReason = `answered ${outcome.status}`;
        lastError = undefined;
        if (limited) asked = retryAfterMs(outcome.headers['retry-after']);
      }
      const giveUp = (why: string): TransportResponse | never => {
        const summary = `${why} (${attempt} attempt${attempt === 1 ? '' : 's'} in ${seconds(Date.now() - started)})`;
        if (outcome !== undefined) return { ...outcome, gaveUp: summary };
        throw new KuryrError('KURYR_ERR_NEUTRON', `${call}: gave up: ${lastReason}, ${summary}`, {
          cause: lastError,
        });
      };
      if (attempt >= maxAttempts) return giveUp('no attempts left');
      const backoff = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)) * (0.5 + this.random() / 2);
      const delay = asked ?? backoff;
      if (asked !== undefined && req.deadline - Date.now() < delay + Math.min(1_000, this.options.timeoutMs / 4)) {
        return giveUp(`Retry-After ${(asked / 1000).toFixed(1)} s does not fit before the deadline`);
      }
      // Give up early rather than start an attempt that could only time out at the deadline.
      if (req.deadline - Date.now() < delay + Math.min(1_000, this.options.timeoutMs / 4)) {
        return giveUp('no time left before the deadline');
      }
      if ((await this.sleep(delay, req.signal)) === false) break;
    }
    throw new KuryrError(
      'KURYR_ERR_NEUTRON',
      `${call}: gave up: ${lastReason} (deadline reached after ${seconds(Date.now() - started)})`,
      { cause: lastError },
    );
  }

  private attempt(
    req: TransportRequest,
    timeoutMs: number,
    attempts: number,
    proxy: URL | undefined,
  ): Promise<TransportResponse> {
    const { url } = req;
    const secure = url.protocol === 'https:';
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'User-Agent': 'kuryr-ts',
      ...req.headers,
    };
    if (req.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(req.body));
    }
    const path = req.path ?? `${url.pathname}${url.search}`;
    const options: http.RequestOptions = {
      method: req.method,
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port || (secure ? 443 : 80),
      path,
      headers,
      agent: secure ? this.httpsAgent : this.httpAgent,
      ...(req.signal === undefined ? {} : { signal: req.signal }),
    };
    if (proxy !== undefined && secure) options.agent = this.tunnel(proxy);
    else if (proxy !== undefined) {
      // Plain HTTP through a proxy: the absolute URL goes to the proxy, which forwards it.
      Object.assign(options, {
        protocol: 'http:',
        hostname: proxy.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: proxy.port || 80,
        path: `${url.protocol}//${url.host}${path}`,
      });
      Object.assign(headers, { Host: url.host, ...proxyAuthorization(proxy) });
    }
    return new Promise<TransportResponse>((resolve, reject) => {
      let settled = false;
      const done = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      const request = (secure ? https : nodeHttp).request(options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => done(() => reject(e)));
        res.on('aborted', () =>
          done(() => reject(Object.assign(new Error('response aborted'), { code: 'ECONNRESET' }))),
        );
        res.on('end', () =>
          done(() =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
              attempts,
            }),
          ),
        );
      });
      const timer = setTimeout(() => {
        const e = new AttemptTimeout('timeout');
        request.destroy(e);
        done(() => reject(e));
      }, timeoutMs);
      request.on('error', (e) => done(() => reject(e)));
      request.end(req.body);
    });
  }

  /** Close pooled connections. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    for (const agent of this.tunnels.values()) agent.destroy();
  }
}
