/**
 * Builds the `Config` from command-line flags, environment variables, `kuryr.conf` (oslo-style INI) and
 * defaults, in that order of precedence. Every invalid value is an error naming its file, section and key.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import ini from 'ini';
import ipaddr from 'ipaddr.js';
import { fail } from '../errors.ts';
import { isCidr, parseCidr } from '../util/ip.ts';
import { type Backend, type Config, type LogLevel, PLUGIN_SOCKET_DIR } from './config.ts';
import { kuryrUriListen } from './kuryr-uri.ts';
import { OPTIONS, type OptionSpec } from './options-table.ts';

/** Flags every subcommand accepts. */
export interface CommonFlags {
  config?: string | undefined;
  backend?: string | undefined;
  driverName?: string | undefined;
  stateDir?: string | undefined;
  socket?: string | undefined;
  listen?: string | undefined;
  logLevel?: string | undefined;
  metricsListen?: string | undefined;
  metricsAllowRemote?: boolean | undefined;
  dockerHost?: string | undefined;
}

/** Where the original's oslo.config looks for `kuryr.conf` when no file is named. */
export const DEFAULT_CONFIG_FILES = ['/etc/kuryr/kuryr.conf', '/etc/kuryr.conf'];

type Values = Record<string, Record<string, string>>;

/** Reads and checks an INI file: known sections must hold only known keys. */
export function readConfigFile(file: string): Values {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw fail.config(`cannot read configuration file ${file}: ${(err as Error).message}`);
  }
  const parsed = ini.parse(text) as Record<string, unknown>;
  const values: Values = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const section = key;
      const known = OPTIONS[section];
      values[section] = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (known !== undefined && known[k] === undefined) {
          throw fail.config(`${file}: [${section}] ${k}: unknown option`);
        }
        values[section][k] = String(v);
      }
    } else {
      // Keys before any section header belong to DEFAULT, as in oslo.config.
      values.DEFAULT ??= {};
      if (OPTIONS.DEFAULT![key] === undefined) throw fail.config(`${file}: [DEFAULT] ${key}: unknown option`);
      values.DEFAULT[key] = String(value);
    }
  }
  return values;
}

/** Resolves one option (env > file > default) and checks its type. */
function option(values: Values, file: string | null, section: string, key: string, env: NodeJS.ProcessEnv): string {
  const spec = OPTIONS[section]?.[key] as OptionSpec;
  const fromEnv = spec.env === undefined ? undefined : env[spec.env];
  const fromFile = values[section]?.[key];
  const raw = fromEnv !== undefined && fromEnv !== '' ? fromEnv : (fromFile ?? spec.default ?? '');
  const where =
    fromEnv !== undefined && fromEnv !== ''
      ? `environment variable ${spec.env}`
      : `${file ?? 'defaults'}: [${section}] ${key}`;
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
  const file = flags.config ?? DEFAULT_CONFIG_FILES.find((f) => existsSync(f)) ?? null;
  const values = file === null ? {} : readConfigFile(file);
  const get = (section: string, key: string) => option(values, file, section, key, env);

  const backend = (flags.backend ?? get('kuryr_ts', 'backend')) as Backend;
  if (backend !== 'embedded' && backend !== 'neutron') {
    throw fail.config(`--backend must be embedded or neutron, got ${JSON.stringify(backend)}`);
  }
  const driverName = checkDriverName(flags.driverName ?? get('kuryr_ts', 'driver_name'));
  const logLevel = (flags.logLevel ??
    (truthy(get('DEFAULT', 'debug')) ? 'debug' : get('DEFAULT', 'log_level'))) as LogLevel;
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal'].includes(logLevel)) {
    throw fail.config(
      `--log-level must be one of trace, debug, info, warn, error, fatal; got ${JSON.stringify(logLevel)}`,
    );
  }
  const v4 = get('embedded', 'default_pool_prefix_v4');
  const v4len = Number(get('embedded', 'default_pool_prefixlen_v4'));
  const v6 = get('embedded', 'default_pool_prefix_v6');
  const v6len = Number(get('embedded', 'default_pool_prefixlen_v6'));
  checkPool(`${file ?? 'defaults'}: [embedded] default_pool_prefix_v4`, v4, v4len);
  checkPool(`${file ?? 'defaults'}: [embedded] default_pool_prefix_v6`, v6, v6len);

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
      processExternalConnectivity: truthy(get('DEFAULT', 'process_external_connectivity')),
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
    tls: tlsSettings(get, listen !== null, file),
    sections: withImageVariables(values, env),
    warnings: file === null ? [] : secretWarnings(file, values),
    logLevel,
    dockerHost: flags.dockerHost ?? (env.DOCKER_HOST || undefined),
    configFile: file,
    bindir: get('DEFAULT', 'bindir'),
  };
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

/** True for `localhost`, an address in 127.0.0.0/8, `::1` or `::ffff:127.x.y.z`. */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  if (!ipaddr.IPv4.isValidFourPartDecimal(host) && !ipaddr.IPv6.isValid(host)) return false;
  return ipaddr.process(host).range() === 'loopback';
}

/** The TCP listener's TLS settings; enabling TLS without --listen is an error. */
function tlsSettings(get: (section: string, key: string) => string, tcp: boolean, file: string | null) {
  if (!truthy(get('DEFAULT', 'enable_ssl'))) return null;
  if (!tcp)
    throw fail.config(
      `${file ?? 'defaults'}: [DEFAULT] enable_ssl needs --listen HOST:PORT or kuryr_uri (the unix socket is root-only already)`,
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
    if (!existsSync(f)) throw fail.config(`${file ?? 'defaults'}: ${key}: Unable to find ${f}`);
  }
  if (verifyClient && caFile === '')
    throw fail.config(`${file ?? 'defaults'}: [kuryr_ts] ssl_verify_client needs ssl_ca_file`);
  return { certFile, keyFile, caFile: caFile === '' ? null : caFile, verifyClient };
}

const SECRET_KEYS = ['password', 'token', 'application_credential_secret'];

/** A warning when the file holds a secret and other users can read it. */
function secretWarnings(file: string, values: Values): string[] {
  const holdsSecret = Object.values(values).some((section) => SECRET_KEYS.some((k) => (section[k] ?? '') !== ''));
  if (!holdsSecret) return [];
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o004) === 0) return [];
  return [
    `${file} holds a password or token and is readable by every user (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${file}`,
  ];
}

/**
 * The original container image's variables, written into `[neutron]` as its documentation describes them
 * (the image itself swaps the two domain variables; kuryr-behaviour.md §17 item 16). They beat the file.
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
