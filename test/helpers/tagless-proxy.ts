/**
 * An HTTP proxy on loopback in front of a real Neutron that makes it look like a Neutron without any tag
 * extension (no `standard-attr-tag`, `tag`, `tag-ext`, `tag-ports-during-bulk-creation`). It records every
 * request it answers, and every attempt to use tags.
 *
 *   const proxy = await startTaglessProxy({ target: lab.noauth.neutronUrl });
 *   // [neutron] auth_type = none, endpoint = proxy.url
 *   ...
 *   assert.deepEqual(proxy.violations, []);
 *   await proxy.close();
 *
 * Rules, first match wins (all but the last answered by the proxy itself, never forwarded):
 * - a path with a `tags` segment (`/v2.0/ports/<id>/tags`, `.../tags/<tag>`): 404 `HTTPNotFound`, a violation;
 * - a query with a `tags`, `tags-any`, `not-tags` or `not-tags-any` parameter: 400 `HTTPBadRequest`, a violation;
 * - a JSON body with a `tags` key, at its top level or in a resource object (`{"port": {"tags": ...}}`,
 *   `{"ports": [{"tags": ...}]}`): 400 `HTTPBadRequest` (`Unrecognized attribute(s) 'tags'`), a violation;
 * - `GET /v2.0/extensions/<alias>` for a hidden alias: 404 `ExtensionNotFound` (feature detection, not a violation);
 * - anything else is forwarded as it came (method, path, headers but hop-by-hop ones, body). From the answer,
 *   `GET /v2.0/extensions` loses the hidden aliases, and every JSON answer loses every `tags` key, at any depth.
 *   Other answers are passed on byte for byte.
 * Error bodies are Neutron's: `{"NeutronError": {"type", "message", "detail"}}`.
 *
 * `Accept-Encoding` is not forwarded, so that answers come back uncompressed and can be rewritten. A path in
 * `target` is prepended to the request's path. Upstream unreachable: 502 with a text body.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { HOP_BY_HOP } from './fault-proxy.ts';

/** Extension aliases the proxy hides. */
export const HIDDEN_EXTENSIONS: ReadonlySet<string> = new Set([
  'standard-attr-tag',
  'tag',
  'tag-ext',
  'tag-ports-during-bulk-creation',
]);

/** Query parameters that need a tag extension. */
export const TAG_QUERY_KEYS: readonly string[] = ['tags', 'tags-any', 'not-tags', 'not-tags-any'];

/** One request as the proxy answered it. */
export interface TaglessProxyRequest {
  method: string;
  /** Path and query as sent to the proxy. */
  path: string;
  /** Status answered to the client (absent when the client went away before an answer). */
  status?: number;
  /** True when it was sent to the upstream (false: answered by the proxy itself). */
  forwarded: boolean;
}

export interface TaglessProxyOptions {
  /** The Neutron endpoint, e.g. `http://127.0.0.1:9696` (a path there is prepended to every request's). */
  target: string;
}

export interface TaglessProxy {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Every attempt to use tags, in arrival order: `PUT /v2.0/ports/<id>/tags`, `GET /v2.0/ports filter tags`, ... */
  readonly violations: readonly string[];
  /** Every request, in arrival order. */
  readonly requests: readonly TaglessProxyRequest[];
  /** Stop listening, close every connection (both sides). */
  close(): Promise<void>;
}

/** Neutron's error body. */
function neutronErrorBody(type: string, message: string): string {
  return JSON.stringify({ NeutronError: { type, message, detail: '' } });
}

/** `value` without any `tags` key, at any depth; `changed` tells whether one was removed. */
function withoutTags(value: unknown, found: { changed: boolean }): unknown {
  if (Array.isArray(value)) return value.map((v) => withoutTags(v, found));
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === 'tags') {
      found.changed = true;
      continue;
    }
    out[k] = withoutTags(v, found);
  }
  return out;
}

/** True when a request body has `tags` at its top level or in one of its resource objects. */
function bodyHasTags(doc: unknown): boolean {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return false;
  const isTagged = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v) && 'tags' in v;
  if ('tags' in doc) return true;
  return Object.values(doc).some((v) => (Array.isArray(v) ? v.some(isTagged) : isTagged(v)));
}

function parseJson(text: string): { ok: true; doc: unknown } | { ok: false } {
  const t = text.trim();
  if (!t.startsWith('{') && !t.startsWith('[')) return { ok: false };
  try {
    return { ok: true, doc: JSON.parse(t) };
  } catch {
    return { ok: false };
  }
}

function decodeSegment(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

const EXTENSIONS_LIST = /^\/v2\.0\/extensions\/?$/;
const EXTENSION_SHOW = /^\/v2\.0\/extensions\/([^/]+)$/;

export async function startTaglessProxy(opts: TaglessProxyOptions): Promise<TaglessProxy> {
  const target = new URL(opts.target);
  const prefix = target.pathname.replace(/\/+$/, '');
  const violations: string[] = [];
  const log: TaglessProxyRequest[] = [];
  const sockets = new Set<Socket>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const method = req.method ?? 'GET';
      const rawPath = req.url ?? '/';
      const q = rawPath.indexOf('?');
      const path = q < 0 ? rawPath : rawPath.slice(0, q);
      const query = new URLSearchParams(q < 0 ? '' : rawPath.slice(q + 1));
      const entry: TaglessProxyRequest = { method, path: rawPath, forwarded: false };
      log.push(entry);
      const body = Buffer.concat(chunks);

      const answer = (status: number, headers: http.OutgoingHttpHeaders, payload: string | Buffer) => {
        if (req.socket.destroyed) return;
        entry.status = status;
        res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(payload) });
        res.end(payload);
      };
      const neutronError = (status: number, type: string, message: string) =>
        answer(status, { 'content-type': 'application/json' }, neutronErrorBody(type, message));

      // 1. The tag routes do not exist.
      if (path.split('/').includes('tags')) {
        violations.push(`${method} ${path}`);
        return neutronError(404, 'HTTPNotFound', 'The resource could not be found.');
      }
      // 2. Nor do the tag filters (Neutron's filter validation).
      const tagKeys = TAG_QUERY_KEYS.filter((k) => query.has(k));
      if (tagKeys.length > 0) {
        for (const k of tagKeys) violations.push(`${method} ${path} filter ${k}`);
        return neutronError(400, 'HTTPBadRequest', `${tagKeys[0]} is invalid attribute for filtering`);
      }
      // 3. Nor does the attribute.
      const sent = body.length > 0 ? parseJson(body.toString('utf8')) : { ok: false as const };
      if (sent.ok && bodyHasTags(sent.doc)) {
        violations.push(`${method} ${path} body tags`);
        return neutronError(400, 'HTTPBadRequest', "Unrecognized attribute(s) 'tags'");
      }
      // 4. Nor the extensions (kuryr-libnetwork probes them one by one).
      const shown = EXTENSION_SHOW.exec(path);
      const alias = shown?.[1] === undefined ? undefined : decodeSegment(shown[1]);
      if (method === 'GET' && alias !== undefined && HIDDEN_EXTENSIONS.has(alias)) {
        return neutronError(404, 'ExtensionNotFound', `Extension with alias ${alias} does not exist`);
      }

      // 5. Forward.
      const headers: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (!HOP_BY_HOP.has(k) && k !== 'accept-encoding') headers[k] = v;
      }
      headers.host = target.host;
      if (body.length > 0) headers['content-length'] = body.length;
      entry.forwarded = true;
      const up = http.request(
        {
          protocol: target.protocol,
          hostname: target.hostname,
          port: target.port,
          method,
          path: `${prefix}${rawPath}`,
          headers,
          agent,
        },
        (upRes) => {
          const upChunks: Buffer[] = [];
          upRes.on('data', (c: Buffer) => upChunks.push(c));
          upRes.on('end', () => {
            const status = upRes.statusCode ?? 502;
            const outHeaders: http.OutgoingHttpHeaders = {};
            for (const [k, v] of Object.entries(upRes.headers)) if (!HOP_BY_HOP.has(k)) outHeaders[k] = v;
            let payload: string | Buffer = Buffer.concat(upChunks);
            const encoded = (upRes.headers['content-encoding'] ?? 'identity') !== 'identity';
            const got = encoded ? { ok: false as const } : parseJson(payload.toString('utf8'));
            if (got.ok) {
              let doc = got.doc;
              let changed = false;
              if (method === 'GET' && EXTENSIONS_LIST.test(path) && typeof doc === 'object' && doc !== null) {
                const list = (doc as { extensions?: unknown }).extensions;
                if (Array.isArray(list)) {
                  const kept = list.filter(
                    (e) => !HIDDEN_EXTENSIONS.has((e as { alias?: unknown } | null)?.alias as string),
                  );
                  if (kept.length !== list.length) {
                    doc = { ...doc, extensions: kept };
                    changed = true;
                  }
                }
              }
              const found = { changed: false };
              doc = withoutTags(doc, found);
              if (changed || found.changed) payload = JSON.stringify(doc);
            }
            answer(status, outHeaders, payload);
          });
          upRes.on('error', () => req.socket.destroy());
        },
      );
      up.on('error', (e) => answer(502, { 'content-type': 'text/plain' }, `tagless-proxy: upstream: ${e.message}`));
      up.end(body);
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    violations,
    requests: log,
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        if (!server.listening) return resolve();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
