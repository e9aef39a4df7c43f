/**
 * A fault-injecting HTTP proxy on loopback, between the plugin and a real Neutron (and Keystone), switchable at
 * run time. It records every request it sees.
 *
 *   const proxy = await startFaultProxy({ target: lab.noauth.neutronUrl });
 *   // [neutron] auth_type = none, endpoint = proxy.url
 *   proxy.failNext(2, { status: 503, method: 'GET' });   // the next 2 GETs answer 503
 *   proxy.resetNext(1, { method: 'PUT' });               // the next PUT: socket destroyed after reading it
 *   proxy.resetNext(1, { method: 'DELETE', forward: true }); // forwarded, then the answer is lost
 *   proxy.delay(2_000);                                  // every request waits 2 s before it is forwarded
 *   proxy.hang({ path: /^\/v2\.0\/ports/ });             // no answer at all (until clearFaults)
 *   proxy.unauthorizedOnce();                            // 401 for the next request carrying a token
 *   await proxy.refuse();                                // listener closed, open connections destroyed
 *   await proxy.accept();                                // listening again on the same port
 *   proxy.clearFaults();                                 // plain forwarding again (held requests dropped)
 *   proxy.since(mark)                                    // what was seen after `const mark = proxy.mark()`
 *
 * Keystone too: `routes: [{ prefix: '/v3', target: authOrigin, name: 'keystone' }]` sends `/v3/...` to
 * Keystone, and `proxy.rewriteAnswers(neutronUrl, proxy.url)` points the token's catalog at the proxy, so that
 * Neutron calls made with the catalog's endpoint pass through it as well.
 *
 * Faults are rules tried in the order they were added; the first that matches a request and has uses left
 * applies (and uses one). Requests no rule matches are forwarded as they are.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** Which requests a fault applies to (every request when empty). */
export interface FaultMatch {
  /** One method or several (`GET`, `POST`, ...). */
  method?: string | readonly string[];
  /** Tested against the path with its query string (`/v2.0/ports?device_owner=...`). */
  path?: RegExp;
  /** Only requests that carry (true) or do not carry (false) an `X-Auth-Token`. */
  withToken?: boolean;
  /** Only requests sent to this route (`neutron` for the default target). */
  route?: string;
}

export type FaultAction =
  /** Answer this status with a small error body (the request is not forwarded). */
  | { kind: 'status'; status: number }
  /** Destroy the client's socket: after reading the request (not forwarded), or after forwarding it (answer lost). */
  | { kind: 'reset'; forward: boolean }
  /** Never answer (the request is held until the client gives up or the fault is cleared). */
  | { kind: 'hang' }
  /** Wait before forwarding (not forwarded at all if the client gave up meanwhile). */
  | { kind: 'delay'; ms: number };

export interface FaultRule {
  match: FaultMatch;
  action: FaultAction;
  /** Uses left (Infinity: until cleared). */
  remaining: number;
}

/** One request as the proxy saw it. */
export interface ProxiedRequest {
  seq: number;
  /** When it arrived (`Date.now()` scale). */
  at: number;
  method: string;
  /** Path and query as sent. */
  path: string;
  /** The route it was sent to (`neutron`, or a route's name). */
  route: string;
  /** The `X-Auth-Token` it carried. */
  token?: string;
  /** The fault applied, e.g. `status 503`, `reset`, `reset after forward`, `hang`, `delay 2000 ms`. */
  fault?: string;
  /** Status answered to the client; absent when it got no answer (reset, hang, upstream failure). */
  status?: number;
  /** Status the upstream answered (also when the client never saw it: `reset after forward`). */
  upstreamStatus?: number;
  /** Milliseconds until the answer (or the reset / the client going away). */
  ms?: number;
  /** The client closed the connection before an answer (its timeout). */
  clientGaveUp?: boolean;
  /** IDs of the resources a successful POST created (from the upstream's answer). */
  created?: string[];
  /** `X-Subject-Token` of a Keystone answer (a token issued). */
  issuedToken?: string;
  /** Why forwarding failed (upstream unreachable). */
  error?: string;
}

export interface FaultProxyRoute {
  /** Path prefix, e.g. `/v3`. */
  prefix: string;
  /** Origin to forward to, e.g. `http://127.0.0.1:5000`. */
  target: string;
  name: string;
}

export interface FaultProxyOptions {
  /** Origin of the default route (Neutron), e.g. `http://127.0.0.1:9697`; a path is ignored. */
  target: string;
  /** Other upstreams by path prefix (Keystone). */
  routes?: readonly FaultProxyRoute[];
  /** Port to listen on (default: any free port on 127.0.0.1). */
  port?: number;
}

export interface FaultProxy {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Every request seen, in arrival order. */
  readonly requests: readonly ProxiedRequest[];
  /** The active rules (with their uses left). */
  readonly rules: readonly FaultRule[];
  /** True while the listener is closed (`refuse`). */
  readonly refusing: boolean;
  /** A position in the log, for `since`. */
  mark(): number;
  /** Requests seen after `mark` (default: all). */
  since(mark?: number): ProxiedRequest[];
  /** Add a fault rule; `times` uses (default: until cleared). */
  inject(action: FaultAction, match?: FaultMatch, times?: number): void;
  /** The next `times` matching requests answer `status` (default 503). */
  failNext(times: number, opts?: FaultMatch & { status?: number }): void;
  /** The next `times` matching requests lose their connection (after being forwarded with `forward: true`). */
  resetNext(times: number, opts?: FaultMatch & { forward?: boolean }): void;
  /** Matching requests get no answer until `clearFaults`. */
  hang(match?: FaultMatch): void;
  /** Matching requests wait `ms` before being forwarded. */
  delay(ms: number, match?: FaultMatch): void;
  /** The next matching request carrying a token answers 401 (as Neutron does for an expired or revoked token). */
  unauthorizedOnce(match?: FaultMatch): void;
  /** Remove every rule and drop the requests held by `hang`. */
  clearFaults(): void;
  /** Close the listener and destroy every open connection: connections are refused until `accept`. */
  refuse(): Promise<void>;
  /** Listen again on the same port. */
  accept(): Promise<void>;
  /** Replace `from` with `to` in the bodies of every answer forwarded from now on (catalog endpoints). */
  rewriteAnswers(from: string, to: string): void;
  /** Every token seen: `X-Auth-Token` values sent and `X-Subject-Token` values issued. */
  tokens(): string[];
  /** Stop listening, drop held requests and close upstream connections. */
  close(): Promise<void>;
}

/** Headers that belong to one connection and are never forwarded (also used by tagless-proxy.ts). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'host',
  'content-length',
]);

const matches = (m: FaultMatch, method: string, path: string, token: string | undefined, route: string) => {
  if (m.method !== undefined) {
    const methods = typeof m.method === 'string' ? [m.method] : m.method;
    if (!methods.includes(method)) return false;
  }
  if (m.path !== undefined && !m.path.test(path)) return false;
  if (m.withToken !== undefined && m.withToken !== (token !== undefined)) return false;
  if (m.route !== undefined && m.route !== route) return false;
  return true;
};

const describeAction = (a: FaultAction): string => {
  switch (a.kind) {
    case 'status':
      return `status ${a.status}`;
    case 'reset':
      return a.forward ? 'reset after forward' : 'reset';
    case 'hang':
      return 'hang';
    case 'delay':
      return `delay ${a.ms} ms`;
  }
};

/** IDs in a create answer: `{"port": {"id"}}` or `{"subnets": [{"id"}, ...]}`. */
function createdIds(body: string): string[] {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return [];
  }
  if (typeof doc !== 'object' || doc === null) return [];
  const ids: string[] = [];
  for (const value of Object.values(doc)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      const id = (item as { id?: unknown } | null)?.id;
      if (typeof id === 'string') ids.push(id);
    }
  }
  return ids;
}

function errorBody(status: number): string {
  const phrase = http.STATUS_CODES[status] ?? 'Error';
  if (status === 401) {
    return JSON.stringify({
      error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' },
    });
  }
  // As a load balancer in front of Neutron would answer.
  return `<html><head><title>${status} ${phrase}</title></head><body><h1>${status} ${phrase}</h1>fault-proxy: injected</body></html>`;
}

export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const defaultTarget = new URL(opts.target);
  const routes = [...(opts.routes ?? [])].sort((a, b) => b.prefix.length - a.prefix.length);
  const log: ProxiedRequest[] = [];
  let rules: FaultRule[] = [];
  const rewrites: [string, string][] = [];
  const held = new Set<Socket>();
  const sockets = new Set<Socket>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let refusing = false;
  let seq = 0;

  const routeOf = (path: string): { name: string; target: URL } => {
    const r = routes.find(
      (x) => path === x.prefix || path.startsWith(`${x.prefix}/`) || path.startsWith(`${x.prefix}?`),
    );
    return r === undefined ? { name: 'neutron', target: defaultTarget } : { name: r.name, target: new URL(r.target) };
  };

  const takeRule = (method: string, path: string, token: string | undefined, route: string) => {
    for (const rule of rules) {
      if (rule.remaining <= 0 || !matches(rule.match, method, path, token, route)) continue;
      rule.remaining--;
      return rule.action;
    }
    return undefined;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const started = Date.now();
      const method = req.method ?? 'GET';
      const path = req.url ?? '/';
      const header = req.headers['x-auth-token'];
      const token = Array.isArray(header) ? header[0] : header;
      const route = routeOf(path);
      const entry: ProxiedRequest = {
        seq: ++seq,
        at: started,
        method,
        path,
        route: route.name,
        ...(token === undefined ? {} : { token }),
      };
      log.push(entry);
      const body = Buffer.concat(chunks);
      const socket = req.socket;
      let answered = false;
      res.once('close', () => {
        if (answered) return;
        entry.clientGaveUp = true;
        entry.ms ??= Date.now() - started;
      });

      const answer = (status: number, headers: http.OutgoingHttpHeaders, text: string) => {
        if (socket.destroyed) return;
        answered = true;
        entry.status = status;
        entry.ms = Date.now() - started;
        res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      const reset = () => {
        entry.ms = Date.now() - started;
        answered = true;
        socket.destroy();
      };
      const forward = (then: 'answer' | 'reset') => {
        if (socket.destroyed) return;
        const headers: http.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
        headers.host = route.target.host;
        if (body.length > 0) headers['content-length'] = body.length;
        const up = http.request(
          {
            protocol: route.target.protocol,
            hostname: route.target.hostname,
            port: route.target.port,
            method,
            path,
            headers,
            agent,
          },
          (upRes) => {
            const upChunks: Buffer[] = [];
            upRes.on('data', (c: Buffer) => upChunks.push(c));
            upRes.on('end', () => {
              let text = Buffer.concat(upChunks).toString('utf8');
              const status = upRes.statusCode ?? 502;
              entry.upstreamStatus = status;
              if (method === 'POST' && status === 201) entry.created = createdIds(text);
              const subject = upRes.headers['x-subject-token'];
              if (typeof subject === 'string') entry.issuedToken = subject;
              for (const [from, to] of rewrites) text = text.split(from).join(to);
              if (then === 'reset') return reset();
              const outHeaders: http.OutgoingHttpHeaders = {};
              for (const [k, v] of Object.entries(upRes.headers)) if (!HOP_BY_HOP.has(k)) outHeaders[k] = v;
              answer(status, outHeaders, text);
            });
            upRes.on('error', (e) => {
              entry.error = e.message;
              reset();
            });
          },
        );
        up.on('error', (e) => {
          entry.error = e.message;
          reset();
        });
        up.end(body);
      };

      const action = takeRule(method, path, token, route.name);
      if (action !== undefined) entry.fault = describeAction(action);
      switch (action?.kind) {
        case undefined:
          return forward('answer');
        case 'status':
          return answer(
            action.status,
            { 'content-type': action.status === 401 ? 'application/json' : 'text/html' },
            errorBody(action.status),
          );
        case 'reset':
          return action.forward ? forward('reset') : reset();
        case 'hang':
          held.add(socket);
          res.once('close', () => held.delete(socket));
          return;
        case 'delay': {
          const timer = setTimeout(() => forward('answer'), action.ms);
          res.once('close', () => clearTimeout(timer));
          return;
        }
      }
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stopListening = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  const dropHeld = () => {
    for (const s of held) s.destroy();
    held.clear();
  };

  await listen(opts.port ?? 0);
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;

  const proxy: FaultProxy = {
    url,
    port,
    get requests() {
      return log;
    },
    get rules() {
      return rules;
    },
    get refusing() {
      return refusing;
    },
    mark: () => log.length,
    since: (mark = 0) => log.slice(mark),
    inject(action, match = {}, times = Number.POSITIVE_INFINITY) {
      rules.push({ match, action, remaining: times });
    },
    failNext(times, o = {}) {
      const { status = 503, ...match } = o;
      proxy.inject({ kind: 'status', status }, match, times);
    },
    resetNext(times, o = {}) {
      const { forward = false, ...match } = o;
      proxy.inject({ kind: 'reset', forward }, match, times);
    },
    hang(match = {}) {
      proxy.inject({ kind: 'hang' }, match);
    },
    delay(ms, match = {}) {
      proxy.inject({ kind: 'delay', ms }, match);
    },
    unauthorizedOnce(match = {}) {
      proxy.inject({ kind: 'status', status: 401 }, { withToken: true, ...match }, 1);
    },
    clearFaults() {
      rules = [];
      dropHeld();
    },
    async refuse() {
      refusing = true;
      dropHeld();
      await stopListening();
    },
    async accept() {
      if (server.listening) return;
      await listen(port);
      refusing = false;
    },
    rewriteAnswers(from, to) {
      rewrites.push([from, to]);
    },
    tokens() {
      const all = new Set<string>();
      for (const r of log) {
        if (r.token !== undefined) all.add(r.token);
        if (r.issuedToken !== undefined) all.add(r.issuedToken);
      }
      return [...all];
    },
    async close() {
      rules = [];
      dropHeld();
      await stopListening();
      agent.destroy();
    },
  };
  return proxy;
}
