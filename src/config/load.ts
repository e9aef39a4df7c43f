/**
 * Builds the `Config` from command-line flags, environment variables, the configuration files and defaults, in
 * that order of precedence. The files are read as oslo.config reads the original's (ini.ts): `--config-file`
 * (repeatable, later files win) and `--config-dir` (its `*.conf` files, sorted), in command-line order; without
 * `--config-file`, the first of DEFAULT_CONFIG_FILES that exists; without `--config-dir`, the first of
 * DEFAULT_CONFIG_DIRS that exists. Every invalid value is an error naming its file, section and key; an unknown
 * section or option is a warning (oslo.config ignores both), and an empty value means unset.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { fail } from '../errors.ts';
import { isCidr, isLoopbackHost, parseCidr } from '../util/ip.ts';
import { type Backend, type Config, type LogLevel, PLUGIN_SOCKET_DIR } from './config.ts';
import { parseIni } from './ini.ts';
import { kuryrUriListen } from './kuryr-uri.ts';
import { OPTIONS, type OptionSpec } from './options-table.ts';
import { type PortDriverSettings, portDriverSettings } from './port-drivers.ts';

/** A `--config-file FILE` or `--config-dir DIR`, in command-line order. */
export interface ConfigSource {
  kind: 'file' | 'dir';
  path: string;
}

/** Flags every subcommand accepts. */
export interface CommonFlags {
  /** `--config FILE`: one more `--config-file` (after those of `configSources`). */
  config?: string | undefined;
  /** `--config-file` and `--config-dir`, in command-line order. */
  configSources?: readonly ConfigSource[] | undefined;
  backend?: string | undefined;
  driverName?: string | undefined;
  stateDir?: string | undefined;
  socket?: string | undefined;
  listen?: string | undefined;
  logLevel?: string | undefined;
  /** `--debug` / `-d` (oslo.log's): log at debug level. */
  debug?: boolean | undefined;
  /** `--log-file`, `--log-dir` (oslo.log's): beat `[DEFAULT] log_file`, `log_dir`. */
  logFile?: string | undefined;
  logDir?: string | undefined;
  /** The program's name, for `<log_dir>/<program>.log`: `kuryr` (default) or `kuryr-server`. */
  program?: string | undefined;
  metricsListen?: string | undefined;
  metricsAllowRemote?: boolean | undefined;
  dockerHost?: string | undefined;
}

/** Where the original's oslo.config looks for `kuryr.conf` when no file is named (the first that exists). */
export const DEFAULT_CONFIG_FILES = ['/etc/kuryr/kuryr.conf', '/etc/kuryr.conf'];
/** Where it looks for a configuration directory when none is named (the first that exists). */
export const DEFAULT_CONFIG_DIRS = ['/etc/kuryr/kuryr.conf.d', '/etc/kuryr.conf.d'];

/** One value as read: the text and where it comes from. */
interface Read {
  value: string;
  file: string;
  line: number;
}

type Values = Record<string, Record<string, string>>;

/** The files the sources name, in reading order (a directory's `*.conf` files sorted by name). */
export function configFiles(
  flags: Pick<CommonFlags, 'config' | 'configSources'>,
  exists: (p: string) => boolean = existsSync,
): string[] {
  const sources: ConfigSource[] = [...(flags.configSources ?? [])];
  if (flags.config !== undefined) sources.push({ kind: 'file', path: flags.config });
  if (!sources.some((s) => s.kind === 'file')) {
    const found = DEFAULT_CONFIG_FILES.find(exists);
    if (found !== undefined) sources.unshift({ kind: 'file', path: found });
  }
  if (!sources.some((s) => s.kind === 'dir')) {
    const found = DEFAULT_CONFIG_DIRS.find(exists);
    if (found !== undefined) sources.push({ kind: 'dir', path: found });
  }
  const files: string[] = [];
  for (const source of sources) {
    if (source.kind === 'file') {
      files.push(source.path);
      continue;
    }
    let names: string[];
    try {
      names = readdirSync(source.path);
    } catch (err) {
      throw fail.config(`cannot read configuration directory ${source.path}: ${(err as Error).message}`);
    }
    for (const name of names.filter((n) => n.endsWith('.conf')).sort()) files.push(path.join(source.path, name));
  }
  return files;
}

/** Section → key → value; `where` holds the first file naming each section. */
type ReadSections = Map<string, Map<string, Read>> & { where?: Map<string, string> };

/** Reads the files in order; a later assignment of a key beats an earlier one. Empty values are dropped. */
function readFiles(files: readonly string[]): ReadSections {
  const merged: ReadSections = new Map<string, Map<string, Read>>();
  const where = new Map<string, string>();
  merged.where = where;
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw fail.config(`cannot read configuration file ${file}: ${(err as Error).message}`);
    }
    for (const [section, entries] of parseIni(text, file)) {
      const into = merged.get(section) ?? new Map<string, Read>();
      merged.set(section, into);
      if (!where.has(section)) where.set(section, file);
      for (const [key, { value, line }] of entries) {
        // An empty value means unset: the default (or an earlier file's value) applies.
        if (value.trim() === '') into.delete(key);
        else into.set(key, { value, file, line });
      }
    }
  }
  return merged;
}

function plain(read: Map<string, Map<string, Read>>): Values {
  const values: Values = {};
  for (const [section, entries] of read) {
    values[section] = Object.fromEntries([...entries].map(([k, r]) => [k, r.value]));
  }
  return values;
}

/**
 * One warning per unknown section and per unknown option of a known section; oslo.config ignores both, so a
 * file written for the original (or with a newer or older release's options) still loads. A section named by
 * `[neutron] auth_section` is known.
 */
function unknownWarnings(read: ReadSections): string[] {
  const warnings: string[] = [];
  const authSection = read.get('neutron')?.get('auth_section')?.value.trim().toLowerCase();
  for (const [section, entries] of read) {
    const known = OPTIONS[section];
    if (known === undefined) {
      if (section === authSection) continue;
      warnings.push(`${read.where?.get(section) ?? 'kuryr.conf'}: unknown section [${section}] ignored`);
      continue;
    }
    for (const [key, r] of entries) {
      if (known[key] === undefined) warnings.push(`${r.file}:${r.line}: unknown option [${section}] ${key} ignored`);
    }
  }
  return warnings;
}

/** Resolves one option (env > file > default) and checks its type. */
function option(read: ReadSections, section: string, key: string, env: NodeJS.ProcessEnv): string {
  const spec = OPTIONS[section]?.[key] as OptionSpec;
  const fromEnv = spec.env === undefined ? undefined : env[spec.env];
  const fromFile = read.get(section)?.get(key);
  const raw = fromEnv !== undefined && fromEnv !== '' ? fromEnv : (fromFile?.value ?? spec.default ?? '');
  const where =
    fromEnv !== undefined && fromEnv !== ''
      ? `environment variable ${spec.env}`
      : `${fromFile?.file ?? 'defaults'}: [${section}] ${key}`;
  const value = raw.trim();
  if (spec.type === 'bool' && !/^(true|false|yes|no|1|0|on|off)$/i.test(value)) {
    throw fail.config(`${where}: expected a boolean (true/false), got ${JSON.stringify(raw)}`);
  }
  if (spec.type === 'int' && !/^\d+$/.test(value))
    throw fail.config(`${where}: expected an integer, got ${JSON.stringify(raw)}`);
  if (spec.type === 'choice' && !spec.choices?.includes(value.toLowerCase())) {
    throw fail.config(`${where}: expected one of ${spec.choices?.join(', ')}, got ${JSON.stringify(raw)}`);
  }
  return spec.type === 'choice' ? value.toLowerCase() : value;
}

const truthy = (v: string) => /^(true|yes|1|on)$/i.test(v);

function checkDriverName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) {
    throw fail.config(`driver name ${JSON.stringify(name)} must be 1-64 characters of letters, digits, '_', '.', '-'`);
  }
  return name;
}

function checkPool(where: string, prefix: string, prefixlen: number): void {
  if (!isCidr(prefix)) throw fail.config(`${where}: ${JSON.stringify(prefix)} is not a CIDR`);
  const cidr = parseCidr(prefix);
  const max = cidr.version === 4 ? 32 : 128;
  if (prefixlen < cidr.prefixLength || prefixlen > max) {
    throw fail.config(`${where}: block size /${prefixlen} does not fit in ${prefix}`);
  }
}

/** The configuration for one process. */
export function loadConfig(flags: CommonFlags, env: NodeJS.ProcessEnv = process.env): Config {
  const files = configFiles(flags);
  const read = readFiles(files);
  const file = files.at(-1) ?? null;
  const values = plain(read);
  const get = (section: string, key: string) => option(read, section, key, env);

  const backend = chooseBackend(flags, env, read, get);
  const driverName = checkDriverName(flags.driverName ?? get('kuryr_ts', 'driver_name'));
  const logLevel = (flags.logLevel ??
    (flags.debug === true || truthy(get('DEFAULT', 'debug')) ? 'debug' : get('DEFAULT', 'log_level'))) as LogLevel;
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal'].includes(logLevel)) {
    throw fail.config(
      `--log-level must be one of trace, debug, info, warn, error, fatal; got ${JSON.stringify(logLevel)}`,
    );
  }
  const v4 = get('embedded', 'default_pool_prefix_v4');
  const v4len = Number(get('embedded', 'default_pool_prefixlen_v4'));
  const v6 = get('embedded', 'default_pool_prefix_v6');
  const v6len = Number(get('embedded', 'default_pool_prefixlen_v6'));
  const whereOf = (section: string, key: string) =>
    `${read.get(section)?.get(key)?.file ?? 'defaults'}: [${section}] ${key}`;
  checkPool(whereOf('embedded', 'default_pool_prefix_v4'), v4, v4len);
  checkPool(whereOf('embedded', 'default_pool_prefix_v6'), v6, v6len);
  const logFile = flags.logFile ?? get('DEFAULT', 'log_file');
  const logDir = flags.logDir ?? get('DEFAULT', 'log_dir');

  // --listen, else a set kuryr_uri (unless --socket asks for the unix socket), else the unix socket.
  const listen = flags.listen ?? (flags.socket === undefined ? (kuryrUriListen(values, env, file) ?? null) : null);
  const stateDir = path.resolve(flags.stateDir ?? get('kuryr_ts', 'state_dir'));
  const socketGroup = get('kuryr_ts', 'socket_group');
  const hostId = get('kuryr_ts', 'host_id');
  const metricsText = flags.metricsListen ?? get('kuryr_ts', 'metrics_listen');
  const metricsListen = metricsText === '' ? null : parseListen(metricsText, '--metrics-listen');
  const metricsAllowRemote = flags.metricsAllowRemote ?? truthy(get('kuryr_ts', 'metrics_allow_remote'));
  if (metricsListen !== null && !metricsAllowRemote && !isLoopbackHost(metricsListen.host)) {
    throw fail.config(
      `--metrics-listen ${metricsText}: ${metricsListen.host} is not a loopback address and the metrics endpoint ` +
        'has no authentication; use 127.0.0.1 or [::1], or add --metrics-allow-remote to expose it anyway',
    );
  }
  return {
    driver: {
      capabilityScope: get('DEFAULT', 'capability_scope') as 'local' | 'global',
      localDefaultAddressSpace: get('DEFAULT', 'local_default_address_space'),
      globalDefaultAddressSpace: get('DEFAULT', 'global_default_address_space'),
      subnetpoolNamePrefix: get('DEFAULT', 'subnetpool_name_prefix'),
      defaultSubnetpoolV4: get('neutron', 'default_subnetpool_v4'),
      defaultSubnetpoolV6: get('neutron', 'default_subnetpool_v6'),
      enableDhcp: truthy(get('neutron', 'enable_dhcp')),
      vethDstPrefix: get('binding', 'veth_dst_prefix'),
      hostId: hostId === '' ? hostname() : hostId,
      driverName,
      processExternalConnectivity: truthy(get('DEFAULT', 'process_external_connectivity')),
      vifPlugging: {
        fatal: truthy(get('neutron', 'vif_plugging_is_fatal')),
        timeoutSeconds: Number(get('neutron', 'vif_plugging_timeout')),
      },
    },
    embedded: {
      defaultPoolPrefixV4: v4,
      defaultPoolPrefixlenV4: v4len,
      defaultPoolPrefixV6: v6,
      defaultPoolPrefixlenV6: v6len,
      isolateNetworks: truthy(get('embedded', 'isolate_networks')),
      allowHostAccess: truthy(get('embedded', 'allow_host_access')),
    },
    driverName,
    backend,
    stateDir,
    socketPath:
      listen === null ? path.resolve(flags.socket ?? path.join(PLUGIN_SOCKET_DIR, `${driverName}.sock`)) : null,
    socketGroup: socketGroup === '' ? null : socketGroup,
    listen: listen === null ? null : parseListen(listen),
    metricsListen,
    metricsAllowRemote,
    specDir: get('kuryr_ts', 'spec_dir'),
    gcIntervalSeconds: Number(get('kuryr_ts', 'gc_interval')),
    tls: tlsSettings(get, listen !== null, whereOf),
    sections: withImageVariables(values, env),
    warnings: [...unknownWarnings(read), ...secretWarnings(read)],
    logLevel,
    logging: {
      logFile: logFile === '' ? null : logFile,
      logDir: logDir === '' ? null : logDir,
      useStderr: truthy(get('DEFAULT', 'use_stderr')),
      program: flags.program ?? 'kuryr',
    },
    dockerHost: flags.dockerHost ?? (env.DOCKER_HOST || undefined),
    configFile: file,
    configFiles: files,
    bindir: get('DEFAULT', 'bindir'),
    portDrivers: portDriversOf(read, get, whereOf, backend),
  };
}

/** The port driver options, checked; the drivers for VMs need a real Neutron. */
function portDriversOf(
  read: ReadSections,
  get: (section: string, key: string) => string,
  where: (section: string, key: string) => string,
  backend: Backend,
): PortDriverSettings {
  const settings = portDriverSettings({ get, where, set: (section, key) => read.get(section)?.get(key) !== undefined });
  const needsNeutron = settings.enabled.filter((d) => d !== 'veth');
  if (backend === 'embedded' && needsNeutron.length > 0) {
    throw fail.config(
      `${where('DEFAULT', 'enabled_port_drivers')}: the ${needsNeutron.join(', ')} port driver needs the neutron backend (the VM's port, trunks and VFs are Neutron's)`,
    );
  }
  return settings;
}

/** Parses `HOST:PORT` (`[v6]:PORT` for IPv6); `flag` names the option in the error. */
export function parseListen(text: string, flag = '--listen'): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw fail.config(`${flag} expects HOST:PORT (e.g. 127.0.0.1:23750), got ${JSON.stringify(text)}`);
  }
  return { host, port };
}

/** The TCP listener's TLS settings; enabling TLS without --listen is an error. */
function tlsSettings(
  get: (section: string, key: string) => string,
  tcp: boolean,
  whereOf: (section: string, key: string) => string,
) {
  if (!truthy(get('DEFAULT', 'enable_ssl'))) return null;
  if (!tcp)
    throw fail.config(
      `${whereOf('DEFAULT', 'enable_ssl')} needs --listen HOST:PORT or kuryr_uri (the unix socket is root-only already)`,
    );
  const certFile = get('DEFAULT', 'ssl_cert_file');
  const keyFile = get('DEFAULT', 'ssl_key_file');
  const caFile = get('kuryr_ts', 'ssl_ca_file');
  const verifyClient = truthy(get('kuryr_ts', 'ssl_verify_client'));
  for (const [key, f] of [
    ['ssl_cert_file', certFile],
    ['ssl_key_file', keyFile],
    ...(caFile ? [['ssl_ca_file', caFile]] : []),
  ] as const) {
    const section = key === 'ssl_ca_file' ? 'kuryr_ts' : 'DEFAULT';
    if (!existsSync(f)) throw fail.config(`${whereOf(section, key)}: Unable to find ${f}`);
  }
  if (verifyClient && caFile === '') throw fail.config(`${whereOf('kuryr_ts', 'ssl_verify_client')} needs ssl_ca_file`);
  return { certFile, keyFile, caFile: caFile === '' ? null : caFile, verifyClient };
}

/** Keys holding a credential, in any section (an `auth_section` holds the same keys as `[neutron]`). */
const SECRET_KEYS = new Set(
  Object.values(OPTIONS).flatMap((section) =>
    Object.entries(section)
      .filter(([, spec]) => spec.secret === true)
      .map(([key]) => key),
  ),
);

/** A warning per file that holds a secret and that other users can read. */
function secretWarnings(read: ReadSections): string[] {
  const holding = new Set<string>();
  for (const entries of read.values()) {
    for (const [key, r] of entries) if (SECRET_KEYS.has(key)) holding.add(r.file);
  }
  const warnings: string[] = [];
  for (const file of holding) {
    const mode = statSync(file).mode & 0o777;
    if ((mode & 0o004) === 0) continue;
    warnings.push(
      `${file} holds a password or token and is readable by every user (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${file}`,
    );
  }
  return warnings;
}

/** `[neutron]` keys that choose how to authenticate: their presence says the file is meant for a real Neutron. */
const CREDENTIAL_KEYS = [
  'auth_type',
  'auth_plugin',
  'auth_section',
  'auth_url',
  'endpoint',
  'username',
  'user_id',
  'password',
  'token',
  'application_credential_id',
] as const;
/** `[neutron]` keys the embedded backend uses too. */
const EMBEDDED_NEUTRON_KEYS = new Set(['enable_dhcp', 'default_subnetpool_v4', 'default_subnetpool_v6']);

/**
 * The backend: `--backend`, else KURYR_BACKEND, else `[kuryr_ts] backend`. When none of them chooses, a file
 * written for the original (a `[neutron]` section with credentials) means Neutron; a `[neutron]` section with
 * other keys but no credentials is an error that says how to choose, never a silent start on the embedded store.
 */
function chooseBackend(
  flags: CommonFlags,
  env: NodeJS.ProcessEnv,
  read: ReadSections,
  get: (section: string, key: string) => string,
): Backend {
  const chosen =
    flags.backend ?? (env.KURYR_BACKEND || undefined) ?? read.get('kuryr_ts')?.get('backend')?.value.trim();
  if (chosen !== undefined) {
    const backend = flags.backend === undefined ? get('kuryr_ts', 'backend') : flags.backend.trim().toLowerCase();
    if (backend !== 'embedded' && backend !== 'neutron') {
      throw fail.config(`--backend must be embedded or neutron, got ${JSON.stringify(flags.backend)}`);
    }
    return backend;
  }
  const neutron = read.get('neutron');
  if (neutron === undefined) return 'embedded';
  if (CREDENTIAL_KEYS.some((k) => neutron.has(k))) return 'neutron';
  const others = [...neutron.keys()].filter((k) => !EMBEDDED_NEUTRON_KEYS.has(k));
  if (others.length === 0) return 'embedded';
  const where = neutron.get(others[0] as string)?.file ?? 'kuryr.conf';
  throw fail.config(
    `${where}: [neutron] sets ${others.join(', ')} but no credentials, and no backend is chosen: ` +
      'for Neutron, set [neutron] auth_type, auth_url, username, password, project_name and the domains ' +
      '(and [kuryr_ts] backend = neutron or --backend neutron); for the embedded store, set [kuryr_ts] ' +
      'backend = embedded (or --backend embedded, or KURYR_BACKEND=embedded)',
  );
}

/**
 * The original container image's variables, written into `[neutron]` as its documentation describes them
 * (the original image itself swaps the two domain variables: docs/migration.md). They beat the file.
 */
const IMAGE_VARIABLES: readonly [string, string][] = [
  ['SERVICE_USER', 'username'],
  ['SERVICE_PASSWORD', 'password'],
  ['SERVICE_PROJECT_NAME', 'project_name'],
  ['SERVICE_DOMAIN_NAME', 'project_domain_name'],
  ['USER_DOMAIN_NAME', 'user_domain_name'],
  ['IDENTITY_URL', 'auth_url'],
];

function withImageVariables(values: Values, env: NodeJS.ProcessEnv): Record<string, Record<string, string>> {
  const neutron = { ...(values.neutron ?? {}) };
  let any = false;
  for (const [variable, key] of IMAGE_VARIABLES) {
    const value = env[variable];
    if (value !== undefined && value !== '') {
      neutron[key] = value;
      any = true;
    }
  }
  if (any && neutron.auth_type === undefined && neutron.auth_plugin === undefined) neutron.auth_type = 'password';
  return { ...values, neutron };
}
