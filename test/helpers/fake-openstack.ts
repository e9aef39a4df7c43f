/**
 * Fake Keystone and Neutron servers (node:http/https on 127.0.0.1, random ports) for the HTTP client's tests.
 *
 * - `FakeKeystone`: v3 and v2.0 tokens (password or token methods; v3 application credentials), version discovery, a catalog built from `endpoints`, token
 *   expiry and revocation, and a record of every token request.
 * - `FakeNeutron`: records every request; answers from a script of replies first (status/body, `drop` to cut the
 *   connection, `hang` to never answer), then from `handler`. With `validToken` set, requests without a valid
 *   `X-Auth-Token` get keystonemiddleware's 401.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NeutronClientOptions, NeutronHttpClient, withDefaults } from '../../src/neutron/http/index.ts';

export interface RecordedRequest {
  method: string;
  /** Path and query as sent. */
  url: string;
  path: string;
  /** Raw query string (without `?`). */
  query: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: unknown;
  /** Client port of the connection (the same for requests on one keep-alive connection). */
  remotePort: number;
  /** `Date.now()` when the request had arrived whole. */
  at: number;
}

/** An answer: a status with a JSON (object) or text (string) body, or a transport-level misbehaviour. */
export type Reply =
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | 'drop'
  | 'hang'
  | { delayMs: number; then: Reply };

export interface TlsMaterial {
  cert: string;
  key: string;
  /** Ask for (and verify against `ca`) a client certificate. */
  requestCert?: boolean;
  ca?: string;
}

type Handler = (req: RecordedRequest) => Reply | Promise<Reply>;

/** A handler answering every method successfully about one network `n` (the transport tests' default). */
export const networkOk: Handler = (req) => {
  if (req.method === 'GET') return { status: 200, body: { networks: [{ id: 'n' }], network: { id: 'n' } } };
  if (req.method === 'PUT') return { status: 200, body: { network: { id: 'n' } } };
  if (req.method === 'POST') return { status: 201, body: { network: { id: 'n' } } };
  return { status: 204 };
};

/** A noauth Neutron client of `url` with fast retries and fixed jitter, for the transport tests. */
export function fastRetryClient(
  url: string,
  extra: Partial<NeutronClientOptions> = {},
  sent?: { onRequest: (call: string) => void },
): NeutronHttpClient {
  return new NeutronHttpClient(
    withDefaults({
      auth: { type: 'none', endpoint: url },
      retry: { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 },
      ...extra,
    }),
    { random: () => 0.5, ...(sent === undefined ? {} : { onRequest: sent.onRequest }) },
  );
}

abstract class FakeServer {
  readonly requests: RecordedRequest[] = [];
  url = '';
  private server: http.Server | undefined;
  private readonly sockets = new Set<import('node:net').Socket>();
  private readonly hanging: http.ServerResponse[] = [];

  protected abstract answer(req: RecordedRequest): Promise<Reply>;

  async start(tls?: TlsMaterial): Promise<this> {
    const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const url = req.url ?? '/';
        const q = url.indexOf('?');
        let json: unknown;
        try {
          json = body ? JSON.parse(body) : undefined;
        } catch {
          json = undefined;
        }
        const recorded: RecordedRequest = {
          method: req.method ?? 'GET',
          url,
          path: q < 0 ? url : url.slice(0, q),
          query: q < 0 ? '' : url.slice(q + 1),
          headers: req.headers,
          body,
          json,
          remotePort: req.socket.remotePort ?? 0,
          at: Date.now(),
        };
        this.requests.push(recorded);
        void this.answer(recorded).then((reply) => this.send(req, res, reply));
      });
    };
    this.server = tls
      ? https.createServer(
          {
            cert: tls.cert,
            key: tls.key,
            ...(tls.requestCert ? { requestCert: true, rejectUnauthorized: true, ca: tls.ca ?? tls.cert } : {}),
          },
          listener,
        )
      : http.createServer(listener);
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('secureConnection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
    return this;
  }

  private send(req: http.IncomingMessage, res: http.ServerResponse, reply: Reply): void {
    if (reply === 'drop') {
      req.socket.destroy();
      return;
    }
    if (reply === 'hang') {
      this.hanging.push(res);
      return;
    }
    if ('delayMs' in reply) {
      setTimeout(() => this.send(req, res, reply.then), reply.delayMs);
      return;
    }
    const headers: Record<string, string> = { 'X-Openstack-Request-Id': `req-${randomUUID()}`, ...reply.headers };
    let text = '';
    if (typeof reply.body === 'string') {
      text = reply.body;
      headers['Content-Type'] ??= 'text/html; charset=UTF-8';
    } else if (reply.body !== undefined) {
      text = JSON.stringify(reply.body);
      headers['Content-Type'] = 'application/json';
    }
    headers['Content-Length'] = String(Buffer.byteLength(text));
    res.writeHead(reply.status, headers);
    res.end(text);
  }

  /** Requests whose method and path match. */
  calls(method: string, path: string | RegExp): RecordedRequest[] {
    return this.requests.filter(
      (r) => r.method === method && (typeof path === 'string' ? r.path === path : path.test(r.path)),
    );
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** Neutron: a script of replies, then `handler` (default: 404 for everything). */
export class FakeNeutron extends FakeServer {
  private readonly script: Reply[] = [];
  handler: Handler = () => ({ status: 404, body: { NeutronError: { type: 'HTTPNotFound', message: 'no handler' } } });
  /** When set, a request needs an `X-Auth-Token` this accepts, else keystonemiddleware's 401. */
  validToken: ((token: string) => boolean) | undefined;

  /** Answer the next requests with these replies, in order, before `handler`. */
  queue(...replies: Reply[]): this {
    this.script.push(...replies);
    return this;
  }

  protected async answer(req: RecordedRequest): Promise<Reply> {
    const token = req.headers['x-auth-token'];
    if (this.validToken && (typeof token !== 'string' || !this.validToken(token))) {
      return {
        status: 401,
        body: {
          error: {
            code: 401,
            title: 'Unauthorized',
            message: 'The request you have made requires authentication.',
          },
        },
        headers: { 'WWW-Authenticate': 'Keystone uri="http://127.0.0.1:5000"' },
      };
    }
    const scripted = this.script.shift();
    return scripted ?? (await this.handler(req));
  }
}

export interface FakeUser {
  id: string;
  name: string;
  domainId: string;
  domainName: string;
  password: string;
}

export interface FakeProject {
  id: string;
  name: string;
  domainId: string;
  domainName: string;
}

export interface FakeApplicationCredential {
  id: string;
  name: string;
  userId: string;
  secret: string;
  projectId: string;
}

export interface CatalogEndpoint {
  interface: 'public' | 'internal' | 'admin';
  region: string;
  url: string;
}

/** Keystone with one domain `Default` (id `default`), users, projects and a network catalog. */
export class FakeKeystone extends FakeServer {
  users: FakeUser[] = [
    { id: 'u-kuryr', name: 'kuryr', domainId: 'default', domainName: 'Default', password: 's3cret-Pa55' },
  ];
  projects: FakeProject[] = [{ id: 'p-service', name: 'service', domainId: 'default', domainName: 'Default' }];
  applicationCredentials: FakeApplicationCredential[] = [];
  /** Tokens issued, and the user each was issued to (for the `token` method). */
  private readonly owners = new Map<string, FakeUser>();
  endpoints: CatalogEndpoint[] = [];
  /** Versions offered by discovery (`GET /`). */
  versions: ('v3' | 'v2.0')[] = ['v3', 'v2.0'];
  tokenLifetimeMs = 3_600_000;
  /** Tokens issued and not revoked, with their expiry. */
  readonly tokens = new Map<string, number>();
  /** Replies to use for the next token requests before issuing (failures). */
  readonly failures: Reply[] = [];

  /** Token requests received (v3 and v2.0). */
  get tokenRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === 'POST');
  }

  isValid(token: string): boolean {
    const exp = this.tokens.get(token);
    return exp !== undefined && exp > Date.now();
  }

  revokeAll(): void {
    this.tokens.clear();
  }

  private issue(user: FakeUser): { token: string; expires: string } {
    const token = `gAAAAA${randomUUID().replace(/-/g, '')}`;
    const exp = Date.now() + this.tokenLifetimeMs;
    this.tokens.set(token, exp);
    this.owners.set(token, user);
    return { token, expires: new Date(exp).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') };
  }

  private unauthorized(): Reply {
    return {
      status: 401,
      body: {
        error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' },
      },
    };
  }

  private versionDoc(v: 'v3' | 'v2.0') {
    return {
      id: v === 'v3' ? 'v3.14' : 'v2.0',
      status: v === 'v3' ? 'stable' : 'deprecated',
      links: [{ rel: 'self', href: `${this.url}/${v}/` }],
    };
  }

  protected async answer(req: RecordedRequest): Promise<Reply> {
    if (req.method === 'GET' && (req.path === '/' || req.path === '')) {
      // Keystone marks v2.0 "deprecated" in discovery; offer it as "stable" when it is the only version.
      const values = this.versions.map((v) => ({
        ...this.versionDoc(v),
        ...(this.versions.length === 1 ? { status: 'stable' } : {}),
      }));
      return { status: 300, body: { versions: { values } } };
    }
    if (req.method === 'GET' && /^\/v3\/?$/.test(req.path))
      return { status: 200, body: { version: this.versionDoc('v3') } };
    if (req.method === 'POST' && req.path === '/v3/auth/tokens') return this.failures.shift() ?? this.v3(req.json);
    if (req.method === 'POST' && req.path === '/v2.0/tokens') return this.failures.shift() ?? this.v2(req.json);
    return {
      status: 404,
      body: { error: { code: 404, title: 'Not Found', message: 'The resource could not be found.' } },
    };
  }

  private v3(doc: unknown): Reply {
    type Ref = { id?: string; name?: string; domain?: { id?: string; name?: string }; password?: string };
    type Identity = {
      methods?: string[];
      password?: { user?: Ref };
      token?: { id?: string };
      application_credential?: { id?: string; name?: string; secret?: string; user?: Ref };
    };
    const auth = (doc as { auth?: { identity?: Identity; scope?: { project?: Ref } } }).auth;
    const identity = auth?.identity;
    const method = identity?.methods?.[0];
    const p = auth?.scope?.project;
    const inDomain = (d: { domainId: string; domainName: string }, ref?: { id?: string; name?: string }) =>
      ref !== undefined && (ref.id === d.domainId || ref.name === d.domainName);
    const userOf = (u?: Ref) =>
      this.users.find((x) => (u?.id !== undefined ? x.id === u.id : x.name === u?.name && inDomain(x, u?.domain)));
    let user: FakeUser | undefined;
    let project: FakeProject | undefined;
    if (method === 'application_credential') {
      const c = identity?.application_credential;
      if (auth?.scope !== undefined) {
        return { status: 401, body: { error: { code: 401, message: 'scope with an application credential' } } };
      }
      const credential = this.applicationCredentials.find((x) =>
        c?.id !== undefined ? x.id === c.id : x.name === c?.name && x.userId === userOf(c?.user)?.id,
      );
      if (!credential || credential.secret !== c?.secret) return this.unauthorized();
      user = this.users.find((x) => x.id === credential.userId);
      project = this.projects.find((x) => x.id === credential.projectId);
    } else {
      if (method === 'token') {
        const id = identity?.token?.id;
        user = id !== undefined && this.isValid(id) ? this.owners.get(id) : undefined;
      } else {
        const u = identity?.password?.user;
        user = userOf(u);
        if (user?.password !== u?.password) user = undefined;
      }
      project = this.projects.find((x) =>
        p?.id !== undefined ? x.id === p.id : x.name === p?.name && inDomain(x, p?.domain),
      );
    }
    if (!user || !project) return this.unauthorized();
    const { token, expires } = this.issue(user);
    return {
      status: 201,
      headers: { 'X-Subject-Token': token },
      body: {
        token: {
          methods: [method ?? 'password'],
          expires_at: expires,
          issued_at: new Date().toISOString(),
          user: { id: user.id, name: user.name, domain: { id: user.domainId, name: user.domainName } },
          project: { id: project.id, name: project.name, domain: { id: project.domainId, name: project.domainName } },
          roles: [{ id: 'r-admin', name: 'admin' }],
          catalog: [
            { type: 'identity', name: 'keystone', id: 's-1', endpoints: [] },
            {
              type: 'network',
              name: 'neutron',
              id: 's-2',
              endpoints: this.endpoints.map((e, i) => ({
                id: `e-${i}`,
                interface: e.interface,
                region: e.region,
                region_id: e.region,
                url: e.url,
              })),
            },
          ],
        },
      },
    };
  }

  private v2(doc: unknown): Reply {
    type V2 = {
      auth?: {
        passwordCredentials?: { username?: string; userId?: string; password?: string };
        token?: { id?: string };
        tenantName?: string;
        tenantId?: string;
      };
    };
    const auth = (doc as V2).auth;
    const c = auth?.passwordCredentials;
    const byToken = auth?.token?.id;
    const user =
      byToken !== undefined
        ? this.isValid(byToken)
          ? this.owners.get(byToken)
          : undefined
        : this.users.find((x) => (c?.userId !== undefined ? x.id === c.userId : x.name === c?.username));
    if (!user || (byToken === undefined && user.password !== c?.password)) return this.unauthorized();
    const project = this.projects.find((x) =>
      auth?.tenantId !== undefined ? x.id === auth.tenantId : x.name === auth?.tenantName,
    );
    if (!project) return this.unauthorized();
    const { token, expires } = this.issue(user);
    const regions = [...new Set(this.endpoints.map((e) => e.region))];
    return {
      status: 200,
      body: {
        access: {
          token: { id: token, issued_at: new Date().toISOString(), expires: expires.replace(/\.\d+Z$/, 'Z') },
          serviceCatalog: [
            {
              type: 'network',
              name: 'neutron',
              endpoints_links: [],
              endpoints: regions.map((region) => {
                const ep: Record<string, string> = { id: `e-${region}`, region };
                for (const e of this.endpoints.filter((x) => x.region === region)) ep[`${e.interface}URL`] = e.url;
                return ep;
              }),
            },
          ],
          user: { id: user.id, name: user.name, roles: [{ name: 'admin' }] },
        },
      },
    };
  }
}

export async function startFakeNeutron(tls?: TlsMaterial): Promise<FakeNeutron> {
  return new FakeNeutron().start(tls);
}

export async function startFakeKeystone(tls?: TlsMaterial): Promise<FakeKeystone> {
  return new FakeKeystone().start(tls);
}

/** A Keystone whose catalog points at `neutron` (public, RegionOne) and a Neutron that checks its tokens. */
export async function startFakeCloud(): Promise<{
  keystone: FakeKeystone;
  neutron: FakeNeutron;
  close(): Promise<void>;
}> {
  const keystone = await startFakeKeystone();
  const neutron = await startFakeNeutron();
  keystone.endpoints = [{ interface: 'public', region: 'RegionOne', url: neutron.url }];
  neutron.validToken = (t) => keystone.isValid(t);
  return {
    keystone,
    neutron,
    async close() {
      await Promise.all([keystone.close(), neutron.close()]);
    },
  };
}

/** A self-signed certificate for 127.0.0.1 made with the `openssl` CLI, or the reason it could not be made. */
export function selfSignedCertificate():
  | { certFile: string; keyFile: string; cert: string; key: string; dir: string }
  | { skip: string } {
  const dir = mkdtempSync(join(tmpdir(), 'kuryr-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-addext',
        'extendedKeyUsage=serverAuth,clientAuth',
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ],
      { stdio: 'pipe' },
    );
  } catch (e) {
    return { skip: `openssl could not make a certificate: ${(e as Error).message.split('\n')[0]}` };
  }
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), dir };
}
