/**
 * The plugin's HTTP server (node:http). Speaks libnetwork's conventions: POST only, JSON bodies without a
 * Content-Type, 200 only on success, `{"Err"}` with a non-2xx status otherwise, keep-alive connections that the
 * server never closes while idle (Docker reuses them indefinitely and resends a POST, body-less, when a
 * reused connection turns out closed).
 */
import type http from 'node:http';
import type https from 'node:https';
import type { Duplex } from 'node:stream';
import { KuryrError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { RequestDeadline } from '../util/deadline.ts';
import type { KuryrDriver } from '../driver/driver.ts';
import {
  cpuMs,
  createRequestContext,
  elapsedMs,
  type RequestContext,
  type RequestSummary,
  runInRequestContext,
} from '../observability/request-context.ts';
import { errorReply } from './error-response.ts';
import { type Route, routes } from './routes.ts';

/**
 * node:http as CommonJS: an ESM import of it builds its namespace, whose lazy getters load undici, http2, zlib and
 * tls (about 10 MiB of RSS in the plugin).
 */
const nodeHttp = process.getBuiltinModule('node:http');

export const CONTENT_TYPE = 'application/vnd.docker.plugins.v1+json';
/** Largest request body accepted; Docker's requests are a few kilobytes. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/**
 * Deepest JSON nesting accepted. Docker's requests nest 4 levels (e.g. Options → exposedports → entry); far
 * deeper bodies are hostile and would overflow the stack of any recursive code downstream (JSON.stringify).
 */
export const MAX_JSON_DEPTH = 32;
/**
 * Time a request's backend calls may take together, so that Docker gets an answer inside its plugin timeout
 * (30 s for managed plugins) even when Neutron hangs: the work itself, then the undoing of partial work.
 */
export const REQUEST_BUDGET_MS = 22_000;
export const ROLLBACK_BUDGET_MS = 28_000;

export interface PluginServerOptions {
  driver: KuryrDriver;
  log: Logger;
  maxBodyBytes?: number;
  /** Called after each reply is sent, with what the access log records (metrics); its errors are ignored. */
  onRequest?: (summary: RequestSummary) => void;
  /** Serve HTTPS (TCP listener only): PEM contents; `ca` + `verifyClient` require client certificates. */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer; verifyClient: boolean };
}

/** The plugin's server: node:http, or node:https with `tls`. */
export type PluginServer = http.Server | https.Server;

/** Requests being served, and whether the server is shutting down (`shutdownPluginServer`). */
interface ServerState {
  inFlight: Map<string, string>;
  closing: boolean;
  /** Called each time a request finishes. */
  onSettled: (() => void) | undefined;
}

const states = new WeakMap<PluginServer, ServerState>();

/** Creates the server (not yet listening). */
export function createPluginServer(
  options: PluginServerOptions & { tls: NonNullable<PluginServerOptions['tls']> },
): https.Server;
export function createPluginServer(options: PluginServerOptions): http.Server;
export function createPluginServer(options: PluginServerOptions): PluginServer {
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const state: ServerState = { inFlight: new Map(), closing: false, onSettled: undefined };
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    // Every request runs in its own context (request ID, method, start time, Neutron call count: for the logs and
    // the metrics) and has its deadline, which the driver's Neutron calls are given.
    const context = createRequestContext(requestPath(req).slice(1));
    if (state.closing) {
      // Shutting down: requests already running finish, new ones (on a kept-alive connection) are turned away.
      req.resume();
      res.setHeader('Connection', 'close');
      send(res, 503, { Err: 'KURYR_ERR_INTERNAL: kuryr-ts is shutting down; retry once it is back' });
      return;
    }
    state.inFlight.set(context.id, context.method);
    // Settled once the driver is done and the reply has been handed to the kernel (or the client went away): a
    // response emits 'close' after 'finish', or when its connection closes first. (stream.finished attaches
    // a handful of listeners per request for the same answer: CPU on every call.)
    const replied = new Promise<void>((resolve) => res.once('close', resolve));
    const deadline = new RequestDeadline(REQUEST_BUDGET_MS, ROLLBACK_BUDGET_MS);
    context.deadline = deadline;
    const driver = options.driver.forRequest(deadline);
    runInRequestContext(
      context,
      () =>
        void Promise.all([handle(req, res, driver, maxBody, options, context), replied]).finally(() => {
          deadline.dispose();
          state.inFlight.delete(context.id);
          state.onSettled?.();
        }),
    );
  };
  const tls = options.tls;
  const server =
    tls === undefined
      ? nodeHttp.createServer(onRequest)
      : // node:https (and TLS) loaded only for a TLS listener: about 1 MiB of RSS otherwise.
        process.getBuiltinModule('node:https').createServer(
          {
            cert: tls.cert,
            key: tls.key,
            ...(tls.ca === undefined ? {} : { ca: tls.ca }),
            requestCert: tls.verifyClient,
            rejectUnauthorized: tls.verifyClient,
          },
          onRequest,
        );
  // Idle keep-alive connections stay open: closing one under Docker makes it resend a POST with no body.
  server.keepAliveTimeout = 0;
  server.requestTimeout = 0;
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => rejectMalformed(err, socket, options.log));
  states.set(server, state);
  return server;
}

/**
 * Stops `server` for shutdown: no new connections, new requests on open connections answered 503, and waits
 * until every request in flight has finished (its reply sent, its work done or rolled back by the driver), at
 * most `graceMs`. Then closes every connection. Resolves with the methods of the requests still running (empty
 * when all finished): the caller must not close the store under those.
 */
export function shutdownPluginServer(server: PluginServer, graceMs: number): Promise<string[]> {
  const state = states.get(server);
  if (state === undefined) throw new Error('not a plugin server');
  state.closing = true;
  server.close();
  server.closeIdleConnections();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      state.onSettled = undefined;
      server.closeAllConnections();
      resolve([...state.inFlight.values()]);
    };
    const timer = setTimeout(done, graceMs);
    state.onSettled = () => {
      if (state.inFlight.size === 0) done();
      else server.closeIdleConnections();
    };
    if (state.inFlight.size === 0) done();
  });
}

/** Methods of the requests being served right now. */
export function requestsInFlight(server: PluginServer): string[] {
  return [...(states.get(server)?.inFlight.values() ?? [])];
}

/**
 * A request node:http cannot parse (not HTTP, a lying or doubled Content-Length, a bad chunk, headers too large)
 * gets the same `{"Err"}` form as every other rejection, and a log line; then the connection is closed.
 */
function rejectMalformed(err: NodeJS.ErrnoException, socket: Duplex, log: Logger): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  const body = JSON.stringify({ Err: `KURYR_ERR_BAD_REQUEST: malformed HTTP request (${err.code ?? err.message})` });
  log.warn({ status, code: 'KURYR_ERR_BAD_REQUEST', err: err.code ?? err.message }, 'malformed HTTP request');
  socket.end(
    `HTTP/1.1 ${status} ${nodeHttp.STATUS_CODES[status]}\r\nContent-Type: ${CONTENT_TYPE}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

async function handle(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  driver: KuryrDriver,
  maxBody: number,
  options: PluginServerOptions,
  context: RequestContext,
): Promise<void> {
  const path = requestPath(req);
  const route = routes().get(path);
  let status = 200;
  let errorCode: string | undefined;
  let errorText: string | undefined;
  try {
    const body = await readBody(req, maxBody);
    if (req.method !== 'POST') {
      throw new KuryrError(
        'KURYR_ERR_METHOD_NOT_ALLOWED',
        `method ${req.method} is not allowed: plugin calls are POSTs`,
      );
    }
    if (route === undefined) throw new KuryrError('KURYR_ERR_NO_SUCH_METHOD', `unknown plugin method ${path}`);
    const reply = await route.handle(driver, parseRequest(route, body, path), path.slice(1));
    send(res, 200, reply);
  } catch (err) {
    const reply = errorReply(err);
    status = route?.no404 && reply.status === 404 ? 500 : reply.status;
    errorCode = reply.code;
    errorText = reply.body.Err;
    send(res, status, reply.body);
  } finally {
    const summary: RequestSummary = {
      id: context.id,
      method: context.method,
      status,
      ms: elapsedMs(context),
      cpuMs: cpuMs(context),
      neutronCalls: context.neutronCalls,
      ...(errorCode ? { code: errorCode } : {}),
    };
    const entry = errorCode ? { ...summary, err: errorText } : summary;
    if (status >= 500) options.log.error(entry, 'request failed');
    else if (status >= 400) options.log.warn(entry, 'request rejected');
    else options.log.info(entry, 'request');
    try {
      options.onRequest?.(summary);
    } catch {
      // Observability must never fail a request.
    }
  }
}

function requestPath(req: http.IncomingMessage): string {
  return (req.url ?? '/').split('?')[0] ?? '/';
}

/** The decoded JSON body (`{}` for calls without arguments); the route checks it against its schema. */
function parseRequest(route: Route, body: Buffer, path: string): unknown {
  if (!route.takesBody) return {};
  if (body.length === 0) {
    throw new KuryrError(
      'KURYR_ERR_BAD_REQUEST',
      `empty request body for ${path.slice(1)} (Docker resends a POST without its body after a dropped connection; retry the command)`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new KuryrError('KURYR_ERR_BAD_REQUEST', `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new KuryrError('KURYR_ERR_BAD_REQUEST', 'request body must be a JSON object');
  }
  if (nestedDeeperThan(json, MAX_JSON_DEPTH)) {
    throw new KuryrError('KURYR_ERR_BAD_REQUEST', `request body is nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  return json;
}

/** True when objects/arrays in `value` nest more than `max` levels (iterative: no recursion on hostile input). */
function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [v, depth] = item;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** Reads the whole body; past `max` bytes the rest is drained and the request rejected with 413. */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) reject(new KuryrError('KURYR_ERR_TOO_LARGE', `request body larger than ${max} bytes`));
      else resolve(Buffer.concat(chunks));
    });
    // The client went away mid-body (or sent a broken chunked body): its fault, not ours, so a 4xx in the log
    // and the metrics, never a 500 KURYR_ERR_INTERNAL.
    req.on('error', (err) =>
      reject(new KuryrError('KURYR_ERR_BAD_REQUEST', `request body not received completely: ${err.message}`)),
    );
  });
}

function send(res: http.ServerResponse, status: number, body: object): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
