/**
 * Authentication for Neutron calls: Keystone v3 / v2.0 tokens (from a password, an existing token or a v3
 * application credential) with the Neutron endpoint from the service catalog, or a fixed endpoint (`none`,
 * `admin_token`).
 *
 * The token is cached and shared by every call; it is renewed when it expires within 120 s (keystoneauth's
 * rule) and after Neutron answers 401 (once per call). Concurrent callers share one token request. A token or
 * password never appears in a log line or an error message.
 */
import { KuryrError } from '../../errors.ts';
import {
  checkV3,
  type AuthOptions,
  type EndpointInterface,
  type KeystoneAuthOptions,
  type NeutronClientOptions,
  versionOfAuthUrl,
} from './config.ts';
import { describeCall, type HttpMethod, type HttpTransport, type TransportResponse } from './transport.ts';

/** What a Neutron request needs from authentication. */
export interface Credentials {
  /** Neutron base URL without a trailing slash (`http://controller:9696`). */
  endpoint: string;
  /** `X-Auth-Token` value; absent without Keystone. */
  token?: string;
}

export interface AuthProvider {
  /** Credentials for one request; fetches or renews the token when needed (within `deadline`). */
  credentials(deadline: number): Promise<Credentials>;
  /**
   * Neutron refused `token` (401): forget it. True when asking again can help (a new token will be fetched);
   * false for fixed credentials.
   */
  invalidate(token: string | undefined): boolean;
  /** Token requests sent to Keystone so far (successful or not). */
  readonly tokenRequests: number;
}

/** Renew a token that expires within this many milliseconds (keystoneauth's `STALE_TOKEN_DURATION`). */
export const RENEW_BEFORE_EXPIRY_MS = 120_000;
/** A token still valid this long may be used when its early renewal fails. */
const MIN_USABLE_MS = 10_000;

/** Neutron base URL as a prefix for `/v2.0/...` paths. */
export function normalizeEndpoint(url: string): string {
  return url
    .trim()
    .replace(/\/+$/, '')
    .replace(/\/v2\.0$/, '');
}

/** Credentials fixed by configuration: `auth_type = none` or `admin_token`. */
class FixedAuth implements AuthProvider {
  private readonly fixed: Credentials;
  readonly tokenRequests = 0;

  constructor(fixed: Credentials) {
    this.fixed = fixed;
  }

  async credentials(): Promise<Credentials> {
    return this.fixed;
  }

  invalidate(): boolean {
    return false;
  }
}

interface CachedToken {
  token: string;
  /** `Number.POSITIVE_INFINITY` when Keystone gave no (parsable) expiry. */
  expiresAt: number;
  endpoint: string;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Parse Keystone's `expires_at`/`expires` (microsecond fractions allowed); Infinity when absent or invalid. */
export function parseExpiry(value: unknown): number {
  if (typeof value !== 'string') return Number.POSITIVE_INFINITY;
  const iso = value.replace(/(\.\d{3})\d+/, '$1').replace(/([+-]\d{2}:\d{2}|Z)?$/, (tz) => tz || 'Z');
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
}

/** Pick the `network` endpoint from a v3 catalog (interface, then region). */
export function endpointFromV3Catalog(catalog: unknown, iface: EndpointInterface, region?: string): string | undefined {
  for (const service of asArray(catalog)) {
    if (!isObject(service) || service.type !== 'network') continue;
    for (const ep of asArray(service.endpoints)) {
      if (!isObject(ep) || ep.interface !== iface) continue;
      if (region !== undefined && ep.region_id !== region && ep.region !== region) continue;
      const url = asString(ep.url);
      if (url) return url;
    }
  }
  return undefined;
}

/** Pick the `network` endpoint from a v2.0 catalog (`publicURL`/`internalURL`/`adminURL`, then region). */
export function endpointFromV2Catalog(catalog: unknown, iface: EndpointInterface, region?: string): string | undefined {
  for (const service of asArray(catalog)) {
    if (!isObject(service) || service.type !== 'network') continue;
    for (const ep of asArray(service.endpoints)) {
      if (!isObject(ep)) continue;
      if (region !== undefined && ep.region !== region && ep.region_id !== region) continue;
      const url = asString(ep[`${iface}URL`]);
      if (url) return url;
    }
  }
  return undefined;
}

/**
 * Keystone authentication (v3 or v2.0, or discovered from an unversioned `auth_url`) by password, token or
 * application credential.
 */
export class KeystoneAuth implements AuthProvider {
  private readonly auth: KeystoneAuthOptions;
  private readonly iface: EndpointInterface;
  private readonly region: string | undefined;
  private readonly transport: HttpTransport;
  private readonly now: () => number;
  private cached: CachedToken | undefined;
  private pending: Promise<CachedToken> | undefined;
  /** Version and base URL (`.../v3`, `.../v2.0`), known after the first authentication. */
  private base: { version: 'v3' | 'v2.0'; url: string } | undefined;
  private requests = 0;

  constructor(
    auth: KeystoneAuthOptions,
    options: Pick<NeutronClientOptions, 'interface' | 'regionName'>,
    transport: HttpTransport,
    now: () => number = Date.now,
  ) {
    this.auth = auth;
    this.iface = options.interface;
    this.region = options.regionName;
    this.transport = transport;
    this.now = now;
  }

  get tokenRequests(): number {
    return this.requests;
  }

  async credentials(deadline: number): Promise<Credentials> {
    const cached = this.cached;
    if (cached && cached.expiresAt - this.now() > RENEW_BEFORE_EXPIRY_MS) {
      return { endpoint: cached.endpoint, token: cached.token };
    }
    this.pending ??= this.authenticate(deadline).finally(() => {
      this.pending = undefined;
    });
    try {
      const fresh = await this.pending;
      return { endpoint: fresh.endpoint, token: fresh.token };
    } catch (e) {
      // An early renewal failed: the old token is still good for a while, keep using it.
      if (cached && cached === this.cached && cached.expiresAt - this.now() > MIN_USABLE_MS) {
        return { endpoint: cached.endpoint, token: cached.token };
      }
      throw e;
    }
  }

  invalidate(token: string | undefined): boolean {
    if (this.cached !== undefined && this.cached.token === token) this.cached = undefined;
    return true;
  }

  private async authenticate(deadline: number): Promise<CachedToken> {
    const base = this.base ?? (await this.discover(deadline));
    this.base = base;
    const fresh = base.version === 'v3' ? await this.v3(base.url, deadline) : await this.v2(base.url, deadline);
    this.cached = fresh;
    return fresh;
  }

  /** Version and base URL: from the URL when it names one, else from Keystone's version document. */
  private async discover(deadline: number): Promise<{ version: 'v3' | 'v2.0'; url: string }> {
    const configured = this.auth.authUrl.replace(/\/+$/, '');
    const fromUrl = versionOfAuthUrl(this.auth.authUrl);
    if (fromUrl !== undefined) return { version: fromUrl, url: configured };
    if (this.auth.version !== 'auto') return { version: this.auth.version, url: `${configured}/${this.auth.version}` };
    const url = new URL(configured);
    const res = await this.send('GET', url, undefined, deadline);
    const doc = this.json(res, url, 'GET');
    if (res.status !== 200 && res.status !== 300) throw this.failure('GET', url, res, doc);
    const versions = isObject(doc.versions) ? asArray(doc.versions.values) : asArray(doc.versions);
    if (isObject(doc.version)) versions.push(doc.version);
    const usable = versions.filter(
      (v): v is Json =>
        isObject(v) && ['stable', 'current', 'supported'].includes(String(v.status ?? '').toLowerCase()),
    );
    const hrefOf = (v: Json) =>
      asString(asArray(v.links).find((l): l is Json => isObject(l) && l.rel === 'self')?.href);
    const v3 = usable.find((v) => String(v.id).startsWith('v3'));
    const v2 = usable.find((v) => String(v.id).startsWith('v2.0'));
    const a = this.auth;
    const hasDomains = (a.type === 'password' ? (a.userDomainId ?? a.userDomainName) : undefined) ?? a.projectDomainId;
    // Like keystoneauth's generic plugin: v3 when offered; v2.0 only when v3 is not (and no domain was given).
    const pick = v3 ?? (hasDomains === undefined ? v2 : undefined);
    const href = pick ? hrefOf(pick) : undefined;
    if (!pick || !href) {
      throw new KuryrError(
        'KURYR_ERR_NEUTRON',
        `Keystone at ${url.origin}${url.pathname} offers no usable identity API version (v3 or v2.0)`,
      );
    }
    return { version: String(pick.id).startsWith('v3') ? 'v3' : 'v2.0', url: href.replace(/\/+$/, '') };
  }

  /** The v3 `auth` request body for the configured method. */
  private v3Body(): Json {
    const a = this.auth;
    checkV3(a);
    const domain = (id?: string, name?: string) => (id !== undefined ? { id } : { name });
    const user = (u: { userId?: string; username?: string; userDomainId?: string; userDomainName?: string }) =>
      u.userId !== undefined
        ? { id: u.userId }
        : { name: u.username, domain: domain(u.userDomainId, u.userDomainName) };
    if (a.type === 'v3applicationcredential') {
      // The credential is bound to its project: keystone refuses a scope with it.
      const credential =
        a.id !== undefined ? { id: a.id, secret: a.secret } : { name: a.name, user: user(a), secret: a.secret };
      return { identity: { methods: ['application_credential'], application_credential: credential } };
    }
    const project =
      a.projectId !== undefined
        ? { id: a.projectId }
        : { name: a.projectName, domain: domain(a.projectDomainId, a.projectDomainName) };
    if (a.type === 'token') return { identity: { methods: ['token'], token: { id: a.token } }, scope: { project } };
    return {
      identity: { methods: ['password'], password: { user: { ...user(a), password: a.password } } },
      scope: { project },
    };
  }

  private async v3(baseUrl: string, deadline: number): Promise<CachedToken> {
    const body = { auth: this.v3Body() };
    const url = new URL(`${baseUrl}/auth/tokens`);
    const res = await this.send('POST', url, body, deadline);
    const doc = this.json(res, url, 'POST');
    if (res.status !== 201 && res.status !== 200) throw this.failure('POST', url, res, doc);
    const header = res.headers['x-subject-token'];
    const token = Array.isArray(header) ? header[0] : header;
    const tokenDoc = isObject(doc.token) ? doc.token : undefined;
    if (!token || !tokenDoc) throw this.malformed('POST', url, 'no X-Subject-Token header or token body');
    const endpoint = endpointFromV3Catalog(tokenDoc.catalog, this.iface, this.region);
    if (endpoint === undefined) throw this.noEndpoint(tokenDoc.catalog, 'v3');
    return { token, expiresAt: parseExpiry(tokenDoc.expires_at), endpoint: normalizeEndpoint(endpoint) };
  }

  private async v2(baseUrl: string, deadline: number): Promise<CachedToken> {
    const a = this.auth;
    if (a.type === 'v3applicationcredential')
      throw this.malformed('POST', new URL(baseUrl), 'application credentials need Keystone v3');
    const scope = a.projectId !== undefined ? { tenantId: a.projectId } : { tenantName: a.projectName };
    const credentials =
      a.type === 'token'
        ? { token: { id: a.token } }
        : {
            passwordCredentials: {
              ...(a.userId !== undefined ? { userId: a.userId } : { username: a.username }),
              password: a.password,
            },
          };
    const body = { auth: { ...credentials, ...scope } };
    const url = new URL(`${baseUrl}/tokens`);
    const res = await this.send('POST', url, body, deadline);
    const doc = this.json(res, url, 'POST');
    if (res.status !== 200 && res.status !== 201) throw this.failure('POST', url, res, doc);
    const access = isObject(doc.access) ? doc.access : undefined;
    const tokenDoc = access && isObject(access.token) ? access.token : undefined;
    const token = asString(tokenDoc?.id);
    if (!access || !tokenDoc || !token) throw this.malformed('POST', url, 'no access.token.id in the answer');
    const endpoint = endpointFromV2Catalog(access.serviceCatalog, this.iface, this.region);
    if (endpoint === undefined) throw this.noEndpoint(access.serviceCatalog, 'v2.0');
    return { token, expiresAt: parseExpiry(tokenDoc.expires), endpoint: normalizeEndpoint(endpoint) };
  }

  private send(method: HttpMethod, url: URL, body: unknown, deadline: number): Promise<TransportResponse> {
    return this.transport.request({
      method,
      url,
      service: 'Keystone',
      // Asking for a token creates nothing: safe to send again after a connection error or a 5xx.
      idempotent: true,
      deadline,
      onAttempt: () => {
        if (method === 'POST') this.requests++;
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  }

  private json(res: TransportResponse, url: URL, method: HttpMethod): Json {
    if (res.body.trim() === '') return {};
    try {
      const doc: unknown = JSON.parse(res.body);
      return isObject(doc) ? doc : {};
    } catch {
      if (res.status < 400 && res.status !== 300) throw this.malformed(method, url, 'the answer is not JSON');
      return {};
    }
  }

  /** Remove anything secret from text that came from the wire. */
  private scrub(text: string): string {
    let out = text;
    const a = this.auth;
    const configured = a.type === 'password' ? a.password : a.type === 'token' ? a.token : a.secret;
    for (const secret of [configured, this.cached?.token]) {
      if (secret) out = out.split(secret).join('[redacted]');
    }
    return out;
  }

  private who(): string {
    const a = this.auth;
    if (a.type === 'v3applicationcredential') {
      return a.id !== undefined ? `application credential ID ${a.id}` : `application credential ${a.name}`;
    }
    if (a.type === 'token')
      return `token auth, ${a.projectId !== undefined ? `project ID ${a.projectId}` : `project ${a.projectName}`}`;
    const user = a.userId !== undefined ? `user ID ${a.userId}` : `user ${a.username}`;
    const project = a.projectId !== undefined ? `project ID ${a.projectId}` : `project ${a.projectName}`;
    return `${user}, ${project}`;
  }

  private failure(method: HttpMethod, url: URL, res: TransportResponse, doc: Json): KuryrError {
    const e = isObject(doc.error) ? doc.error : {};
    const detail = asString(e.message) ?? asString(e.title) ?? '';
    const what = res.status === 401 ? 'authentication failed (401)' : `answered ${res.status}`;
    const tail = detail ? `: ${this.scrub(detail).slice(0, 300)}` : '';
    const gaveUp = res.gaveUp === undefined ? '' : ` [gave up: ${res.gaveUp}]`;
    return new KuryrError(
      'KURYR_ERR_NEUTRON',
      `${describeCall('Keystone', method, url)}: ${what} for ${this.who()}${tail}${gaveUp}`,
    );
  }

  private malformed(method: HttpMethod, url: URL, why: string): KuryrError {
    return new KuryrError('KURYR_ERR_NEUTRON', `${describeCall('Keystone', method, url)}: unexpected answer: ${why}`);
  }

  private noEndpoint(catalog: unknown, version: 'v3' | 'v2.0'): KuryrError {
    const offered: string[] = [];
    for (const service of asArray(catalog)) {
      if (!isObject(service) || service.type !== 'network') continue;
      for (const ep of asArray(service.endpoints)) {
        if (!isObject(ep)) continue;
        const region = asString(ep.region_id) ?? asString(ep.region) ?? '?';
        if (version === 'v3') offered.push(`${String(ep.interface)}@${region}`);
        else for (const i of ['public', 'internal', 'admin']) if (ep[`${i}URL`]) offered.push(`${i}@${region}`);
      }
    }
    const region = this.region === undefined ? '' : ` in region ${this.region}`;
    return new KuryrError(
      'KURYR_ERR_NEUTRON',
      `Keystone catalog has no network endpoint for interface ${this.iface}${region} (offered: ${offered.join(', ') || 'none'}); check [neutron] endpoint_type and region_name`,
    );
  }
}

/** The provider for the configured `auth_type`. */
export function createAuthProvider(
  options: Pick<NeutronClientOptions, 'auth' | 'interface' | 'regionName'>,
  transport: HttpTransport,
  now: () => number = Date.now,
): AuthProvider {
  const auth: AuthOptions = options.auth;
  switch (auth.type) {
    case 'none':
      return new FixedAuth({ endpoint: normalizeEndpoint(auth.endpoint) });
    case 'admin_token':
      return new FixedAuth({ endpoint: normalizeEndpoint(auth.endpoint), token: auth.token });
    case 'password':
    case 'token':
    case 'v3applicationcredential':
      return new KeystoneAuth(auth, options, transport, now);
  }
}
