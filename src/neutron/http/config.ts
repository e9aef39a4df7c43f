/**
 * `[neutron]` section (oslo.config / keystoneauth option names) → typed `NeutronClientOptions`.
 *
 * Supported `auth_type`s (keystoneauth plugin names): `password` (version from the URL, or discovered),
 * `v3password`, `v2password`; `token`, `v3token`, `v2token` (a token exchanged for a project-scoped one with
 * the catalog); `v3applicationcredential`; `none` (Neutron in noauth mode at a fixed `endpoint`) and
 * `admin_token` (a fixed token and endpoint). Every invalid or missing value is a configuration error whose
 * message names the key: `[neutron] auth_url: required ...`.
 */
import type { NeutronOption } from '../../config/options-table.ts';
import { fail } from '../../errors.ts';

/** Keystone catalog interface of the Neutron endpoint (`endpoint_type`). */
export type EndpointInterface = 'public' | 'internal' | 'admin';

/** Keystone API version used for password authentication; `auto` asks the unversioned `auth_url`. */
export type KeystoneVersion = 'v3' | 'v2.0' | 'auto';

/** Password authentication against Keystone; user and project by name (with domains) or by ID. */
export interface PasswordAuthOptions {
  type: 'password';
  version: KeystoneVersion;
  /** As configured (versioned or not). */
  authUrl: string;
  username?: string;
  userId?: string;
  password: string;
  userDomainName?: string;
  userDomainId?: string;
  projectName?: string;
  projectId?: string;
  projectDomainName?: string;
  projectDomainId?: string;
}

/** The project a token is scoped to (by ID, or by name with its domain for v3). */
export interface ProjectScope {
  projectName?: string;
  projectId?: string;
  projectDomainName?: string;
  projectDomainId?: string;
}

/** keystoneauth `token`/`v3token`/`v2token`: an existing token exchanged for a project-scoped one (and a catalog). */
export interface TokenAuthOptions extends ProjectScope {
  type: 'token';
  version: KeystoneVersion;
  authUrl: string;
  token: string;
}

/**
 * keystoneauth `v3applicationcredential`: by `application_credential_id`, or by `application_credential_name`
 * with its user (ID, or name and domain). The credential carries its project: no scope is sent.
 */
export interface ApplicationCredentialAuthOptions {
  type: 'v3applicationcredential';
  version: 'v3';
  authUrl: string;
  id?: string;
  name?: string;
  secret: string;
  username?: string;
  userId?: string;
  userDomainName?: string;
  userDomainId?: string;
}

/** Authentication that asks Keystone for a token (and the Neutron endpoint from its catalog). */
export type KeystoneAuthOptions = PasswordAuthOptions | TokenAuthOptions | ApplicationCredentialAuthOptions;

/** No Keystone: Neutron runs with `auth_strategy = noauth`; requests carry no token. */
export interface NoAuthOptions {
  type: 'none';
  endpoint: string;
}

/** A fixed token sent to a fixed endpoint (keystoneauth `admin_token`); never renewed. */
export interface AdminTokenAuthOptions {
  type: 'admin_token';
  endpoint: string;
  token: string;
}

export type AuthOptions = KeystoneAuthOptions | NoAuthOptions | AdminTokenAuthOptions;

/** TLS settings for Keystone and Neutron (`cafile`, `certfile`, `keyfile`, `insecure`). */
export interface TlsOptions {
  /** PEM bundle of the CAs to trust instead of the system ones. */
  cafile?: string;
  /** PEM client certificate (may hold the key too). */
  certfile?: string;
  /** PEM private key of the client certificate. */
  keyfile?: string;
  /** Skip server certificate verification. */
  insecure: boolean;
}

/** Retry policy for idempotent requests (GET/PUT/DELETE) on connection errors, timeouts and 5xx answers. */
export interface RetryOptions {
  /** Attempts in total, the first included. */
  attempts: number;
  /** Backoff before retry n (1-based) is `baseDelayMs * 2^(n-1)`, capped, with jitter (50–100 %). */
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface NeutronClientOptions {
  auth: AuthOptions;
  /** Catalog interface (`endpoint_type`, or keystoneauth's `interface`), `public` by default. */
  interface: EndpointInterface;
  /** Catalog region (`region_name`); any region when unset. */
  regionName?: string;
  tls: TlsOptions;
  /** Timeout of one HTTP attempt (`timeout`, in seconds in the file). */
  timeoutMs: number;
  /**
   * Budget of one whole API call: token request, retries, a 401 replay and every page of a list together.
   * Docker gives a plugin call 30 s; the default leaves room for the driver's own work.
   */
  deadlineMs: number;
  retry: RetryOptions;
  /** Most concurrent connections per host (bounds bursts towards Neutron). */
  maxSockets: number;
}

/** Defaults applied by `neutronClientOptions` (and by hand-built options through `withDefaults`). */
export const DEFAULTS = {
  interface: 'public',
  timeoutMs: 10_000,
  deadlineMs: 20_000,
  retry: { attempts: 4, baseDelayMs: 250, maxDelayMs: 2_000 },
  maxSockets: 16,
  insecure: false,
} as const;

const SUPPORTED_AUTH_TYPES = [
  'password',
  'v3password',
  'v2password',
  'token',
  'v3token',
  'v2token',
  'v3applicationcredential',
  'none',
  'admin_token',
];

/** Options other sections can be read from (`auth_section`). */
export type SectionLookup = (name: string) => Readonly<Record<string, string>> | undefined;

// Key names are typed against the option table (src/config/options-table.ts), the one list of `[neutron]` keys.
const err = (key: NeutronOption, message: string) => fail.config(`[neutron] ${key}: ${message}`);

/** Parse an oslo.config boolean. */
function parseBool(key: NeutronOption, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['true', 'yes', 'on', '1'].includes(v)) return true;
  if (['false', 'no', 'off', '0'].includes(v)) return false;
  throw err(key, `expected a boolean (true/false), got ${JSON.stringify(value)}`);
}

function parseUrl(key: NeutronOption, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw err(key, `not a URL: ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw err(key, `must be an http:// or https:// URL, got ${JSON.stringify(value)}`);
  }
  if (url.username || url.password) throw err(key, 'must not contain credentials');
  return value.trim();
}

function parseInterface(key: NeutronOption, value: string): EndpointInterface {
  const v = value.trim().replace(/URL$/, '');
  if (v === 'public' || v === 'internal' || v === 'admin') return v;
  throw err(key, `expected public, internal or admin, got ${JSON.stringify(value)}`);
}

/** `endpoint_type` (kuryr-lib) or `interface` (keystoneauth); both set and different is an error. */
function catalogInterface(get: (key: NeutronOption) => string | undefined): EndpointInterface {
  const endpointType = get('endpoint_type');
  const iface = get('interface');
  const a = endpointType === undefined ? undefined : parseInterface('endpoint_type', endpointType);
  const b = iface === undefined ? undefined : parseInterface('interface', iface);
  if (a !== undefined && b !== undefined && a !== b) {
    throw err('interface', `${b} contradicts endpoint_type = ${a}: set one of them`);
  }
  return a ?? b ?? DEFAULTS.interface;
}

/** Keystone version named by the end of `auth_url` (`.../v3`, `.../v2.0`), if any. */
export function versionOfAuthUrl(authUrl: string): 'v3' | 'v2.0' | undefined {
  const path = new URL(authUrl).pathname.replace(/\/+$/, '');
  if (/\/v3$/.test(path)) return 'v3';
  if (/\/v2\.0$/.test(path)) return 'v2.0';
  return undefined;
}

/**
 * Check that a v3 password request can be built: a user with a domain unless given by ID, a project with a
 * domain unless given by ID. Throws a configuration error naming the missing key.
 */
export function checkV3(auth: KeystoneAuthOptions): void {
  if (auth.type === 'v3applicationcredential') return;
  if (
    auth.type === 'password' &&
    auth.userId === undefined &&
    auth.userDomainId === undefined &&
    auth.userDomainName === undefined
  ) {
    throw err(
      'user_domain_name',
      'required with username for Keystone v3 (or user_domain_id, default_domain_name, default_domain_id, or user_id)',
    );
  }
  if (auth.projectId === undefined && auth.projectDomainId === undefined && auth.projectDomainName === undefined) {
    throw err(
      'project_domain_name',
      'required with project_name for Keystone v3 (or project_domain_id, default_domain_name, default_domain_id, or project_id)',
    );
  }
}

/**
 * Build the client options from a `[neutron]` section. Keys outside authentication and transport
 * (`enable_dhcp`, `default_subnetpool_v4`, ...) are ignored here.
 */
export function neutronClientOptions(
  section: Readonly<Record<string, string>>,
  lookupSection?: SectionLookup,
): NeutronClientOptions {
  let s: Readonly<Record<string, string>> = section;
  const authSection = s.auth_section?.trim();
  if (authSection) {
    const other = lookupSection?.(authSection);
    if (other === undefined) throw err('auth_section', `section [${authSection}] not found`);
    s = { ...section, ...other };
  }
  const get = (key: NeutronOption): string | undefined => {
    const v = s[key];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };

  const tls: TlsOptions = { insecure: DEFAULTS.insecure };
  const insecure = get('insecure');
  if (insecure !== undefined) tls.insecure = parseBool('insecure', insecure);
  for (const [key, field] of [
    ['cafile', 'cafile'],
    ['certfile', 'certfile'],
    ['keyfile', 'keyfile'],
  ] as const) {
    const v = get(key);
    if (v !== undefined) tls[field] = v;
  }
  if (tls.keyfile !== undefined && tls.certfile === undefined) throw err('certfile', 'required with keyfile');

  let timeoutMs: number = DEFAULTS.timeoutMs;
  const timeout = get('timeout');
  if (timeout !== undefined) {
    const seconds = Number(timeout);
    if (!Number.isFinite(seconds) || seconds <= 0) {
      throw err('timeout', `expected a positive number of seconds, got ${JSON.stringify(timeout)}`);
    }
    timeoutMs = Math.round(seconds * 1000);
  }

  const options: NeutronClientOptions = {
    auth: parseAuth(get),
    interface: catalogInterface(get),
    tls,
    timeoutMs,
    deadlineMs: Math.max(DEFAULTS.deadlineMs, timeoutMs),
    retry: { ...DEFAULTS.retry },
    maxSockets: DEFAULTS.maxSockets,
  };
  const region = get('region_name');
  if (region !== undefined) options.regionName = region;
  return options;
}

function parseAuth(get: (key: NeutronOption) => string | undefined): AuthOptions {
  const authType = get('auth_type') ?? get('auth_plugin');
  const typeKey = get('auth_type') === undefined && get('auth_plugin') !== undefined ? 'auth_plugin' : 'auth_type';
  if (authType === undefined) {
    throw err('auth_type', `required (one of ${SUPPORTED_AUTH_TYPES.join(', ')})`);
  }
  if (!SUPPORTED_AUTH_TYPES.includes(authType)) {
    throw err(
      typeKey,
      `${JSON.stringify(authType)} is not supported by kuryr-ts (supported: ${SUPPORTED_AUTH_TYPES.join(', ')})`,
    );
  }

  if (authType === 'none' || authType === 'admin_token') {
    const endpoint = get('endpoint');
    if (endpoint === undefined) throw err('endpoint', `required for auth_type ${authType} (the Neutron URL)`);
    const url = parseUrl('endpoint', endpoint);
    if (authType === 'none') return { type: 'none', endpoint: url };
    const token = get('token');
    if (token === undefined) throw err('token', 'required for auth_type admin_token');
    return { type: 'admin_token', endpoint: url, token };
  }

  const authUrlRaw = get('auth_url');
  if (authUrlRaw === undefined) throw err('auth_url', `required for auth_type ${authType}`);
  const authUrl = parseUrl('auth_url', authUrlRaw);
  const fromUrl = versionOfAuthUrl(authUrl);
  let version: KeystoneVersion;
  if (authType.startsWith('v3')) version = 'v3';
  else if (authType.startsWith('v2')) version = 'v2.0';
  else version = fromUrl ?? 'auto';
  if (fromUrl !== undefined && fromUrl !== version) {
    throw err('auth_url', `${authUrl} is a Keystone ${fromUrl} URL but auth_type ${authType} needs ${version}`);
  }
  const defaultDomainId = get('default_domain_id');
  const defaultDomainName = get('default_domain_name');
  /** A v3 domain by ID or name, the `default_domain_*` keys standing in for both. */
  const domain = (idKey: NeutronOption, nameKey: NeutronOption): { id?: string; name?: string } => {
    const id = get(idKey);
    const name = get(nameKey);
    if (id !== undefined) return { id };
    if (name !== undefined) return { name };
    if (defaultDomainId !== undefined) return { id: defaultDomainId };
    if (defaultDomainName !== undefined) return { name: defaultDomainName };
    return {};
  };
  const userDomain = (auth: { userDomainId?: string; userDomainName?: string }) => {
    const d = domain('user_domain_id', 'user_domain_name');
    if (d.id !== undefined) auth.userDomainId = d.id;
    if (d.name !== undefined) auth.userDomainName = d.name;
  };

  if (authType === 'v3applicationcredential') {
    const secret = get('application_credential_secret');
    if (secret === undefined) throw err('application_credential_secret', `required for auth_type ${authType}`);
    const auth: ApplicationCredentialAuthOptions = { type: authType, version: 'v3', authUrl, secret };
    const id = get('application_credential_id');
    const name = get('application_credential_name');
    if (id !== undefined) auth.id = id;
    else if (name !== undefined) {
      auth.name = name;
      const userId = get('user_id');
      const username = get('username');
      if (userId !== undefined) auth.userId = userId;
      else if (username !== undefined) {
        auth.username = username;
        userDomain(auth);
        if (auth.userDomainId === undefined && auth.userDomainName === undefined) {
          throw err('user_domain_name', 'required with username for application_credential_name (or user_domain_id)');
        }
      } else throw err('user_id', 'required with application_credential_name (or username and user_domain_name)');
    } else
      throw err('application_credential_id', `required for auth_type ${authType} (or application_credential_name)`);
    return auth;
  }

  const scope: ProjectScope = {};
  const projectId = get('project_id') ?? get('tenant_id');
  const projectName = get('project_name') ?? get('tenant_name');
  if (projectId === undefined && projectName === undefined) {
    throw err('project_name', `required for auth_type ${authType} (or project_id; old names tenant_name, tenant_id)`);
  }
  if (projectId !== undefined) scope.projectId = projectId;
  else if (projectName !== undefined) scope.projectName = projectName;
  if (version !== 'v2.0' && scope.projectId === undefined) {
    const d = domain('project_domain_id', 'project_domain_name');
    if (d.id !== undefined) scope.projectDomainId = d.id;
    if (d.name !== undefined) scope.projectDomainName = d.name;
  }

  if (authType === 'token' || authType === 'v3token' || authType === 'v2token') {
    const token = get('token');
    if (token === undefined) throw err('token', `required for auth_type ${authType}`);
    const auth: TokenAuthOptions = { type: 'token', version, authUrl, token, ...scope };
    if (version === 'v3') checkV3(auth);
    return auth;
  }

  const password = get('password');
  if (password === undefined) throw err('password', `required for auth_type ${authType}`);
  const auth: PasswordAuthOptions = { type: 'password', version, authUrl, password };
  const username = get('username');
  const userId = get('user_id');
  if (username === undefined && userId === undefined) {
    throw err('username', `required for auth_type ${authType} (or user_id)`);
  }
  if (userId !== undefined) auth.userId = userId;
  else if (username !== undefined) auth.username = username;
  Object.assign(auth, scope);
  if (version !== 'v2.0' && auth.userId === undefined) userDomain(auth);
  if (version === 'v3') checkV3(auth);
  return auth;
}

/** Fill in the defaults of a partial, hand-built options object (tests, programmatic use). */
export function withDefaults(options: Pick<NeutronClientOptions, 'auth'> & Partial<NeutronClientOptions>) {
  const full: NeutronClientOptions = {
    interface: DEFAULTS.interface,
    tls: { insecure: DEFAULTS.insecure },
    timeoutMs: DEFAULTS.timeoutMs,
    deadlineMs: DEFAULTS.deadlineMs,
    maxSockets: DEFAULTS.maxSockets,
    ...options,
    retry: { ...DEFAULTS.retry, ...options.retry },
  };
  return full;
}
