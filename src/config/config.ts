/**
 * The validated configuration of one kuryr-ts process. Built by config/load.ts from, in order of precedence:
 * command-line flags, environment variables, `kuryr.conf`, defaults.
 */
import type { PortDriverSettings } from './port-drivers.ts';

export type Backend = 'embedded' | 'neutron';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** `[neutron] vif_plugging_is_fatal` / `vif_plugging_timeout` (driver/vif-plugging.ts). */
export interface VifPluggingSettings {
  /** Fail CreateEndpoint when the port is not ACTIVE in time (default false: no wait). */
  fatal: boolean;
  /** Seconds to wait; 0 (the default) = until the request's deadline. */
  timeoutSeconds: number;
}

/** What the driver needs to know (a slice of `Config`, so unit tests can build it directly). */
export interface DriverSettings {
  /** `[DEFAULT] capability_scope`: `Scope` reported to Docker. */
  capabilityScope: 'local' | 'global';
  localDefaultAddressSpace: string;
  globalDefaultAddressSpace: string;
  /** `[DEFAULT] subnetpool_name_prefix`: pools we create are `<prefix>-<cidr>`. */
  subnetpoolNamePrefix: string;
  /** `[neutron] default_subnetpool_v4` / `_v6`: pools for networks created without `--subnet`. */
  defaultSubnetpoolV4: string;
  defaultSubnetpoolV6: string;
  /** `[neutron] enable_dhcp` for subnets we create. */
  enableDhcp: boolean;
  /** `[binding] veth_dst_prefix`: container interfaces are `<prefix>0`, `<prefix>1`, ... */
  vethDstPrefix: string;
  /** `binding:host_id` of the ports we bind (default: the hostname). */
  hostId: string;
  /**
   * The plugin's driver name (`Config.driverName`), recorded with the host in the description of the networks it
   * creates so that two instances on one host tell their networks apart (driver/network-description.ts).
   */
  driverName?: string;
  /** `[DEFAULT] process_external_connectivity`: map exposed ports to security groups. */
  processExternalConnectivity: boolean;
  /** `[neutron] vif_plugging_is_fatal` / `vif_plugging_timeout` (driver/vif-plugging.ts); absent = not fatal. */
  vifPlugging?: VifPluggingSettings;
}

/** Settings of the embedded backend. */
export interface EmbeddedSettings {
  /** Prefix of the default IPv4 pool created on first start (kuryr/devstack: 10.10.0.0/16, /24 blocks). */
  defaultPoolPrefixV4: string;
  defaultPoolPrefixlenV4: number;
  defaultPoolPrefixV6: string;
  defaultPoolPrefixlenV6: number;
  /** `[embedded] isolate_networks`: no traffic between networks (binding/isolation.ts). */
  isolateNetworks: boolean;
  /** `[embedded] allow_host_access`: containers may reach every host address, not only their gateway. */
  allowHostAccess: boolean;
}

export interface Config {
  driver: DriverSettings;
  embedded: EmbeddedSettings;
  /** Name of both the network and the IPAM driver (`-d NAME --ipam-driver NAME`). */
  driverName: string;
  backend: Backend;
  /** Directory of the embedded store (`<stateDir>/kuryr.db`). */
  stateDir: string;
  /** Unix socket to serve on; null when serving TCP. */
  socketPath: string | null;
  /** Group owning the unix socket (mode 0660); null = root. */
  socketGroup: string | null;
  /** TCP address to serve on (`--listen`); null when serving the unix socket. */
  listen: { host: string; port: number } | null;
  /** Loopback address of the opt-in Prometheus metrics + `/healthz` endpoint (`--metrics-listen`); null = off. */
  metricsListen: { host: string; port: number } | null;
  /** Let `metricsListen` be a non-loopback address (`--metrics-allow-remote`): the endpoint has no authentication. */
  metricsAllowRemote: boolean;
  /** Directory holding `<name>/<name>.spec` when serving TCP (`/usr/lib/docker/plugins`, like the original). */
  specDir: string;
  /**
   * The configuration file's sections as read (for the Neutron client: `[neutron]` and its `auth_section`),
   * with the original container image's variables (SERVICE_USER, ...) applied to `[neutron]`.
   */
  sections: Record<string, Record<string, string>>;
  /** HTTPS on the TCP listener; null for plain HTTP. */
  tls: TlsSettings | null;
  /** Problems that do not stop the start (e.g. a world-readable file holding a password). */
  warnings: string[];
  /** Seconds between reconciliation passes while serving (0: only at start-up). */
  gcIntervalSeconds: number;
  logLevel: LogLevel;
  /** Where logs go (oslo.log's options: observability/log-destination.ts). */
  logging: LoggingSettings;
  /** Docker engine asked by reconciliation (`--docker-host`, else DOCKER_HOST, else the local socket). */
  dockerHost: string | undefined;
  /** The last configuration file read (the one that wins), if any. */
  configFile: string | null;
  /** Every configuration file read, in order (`--config-file`, `--config-dir`, or the default). */
  configFiles: string[];
  /** `[DEFAULT] bindir`: directory of the bind scripts `<bindir>/<vif_type>` of vif types not built in. */
  bindir: string;
  /** Port and binding drivers (`[DEFAULT] default_port_driver`, `[binding] default_driver`, `link_iface`, ...). */
  portDrivers: PortDriverSettings;
}

/** `[DEFAULT] log_file`, `log_dir`, `use_stderr` (or `--log-file`, `--log-dir`) and the program's name. */
export interface LoggingSettings {
  logFile: string | null;
  logDir: string | null;
  useStderr: boolean;
  /** `kuryr` or `kuryr-server`: the log file is `<log_dir>/<program>.log` when only log_dir is set. */
  program: string;
}

/** TLS files of the TCP listener (`[DEFAULT] enable_ssl`, as the original, plus a CA for mutual TLS). */
export interface TlsSettings {
  certFile: string;
  keyFile: string;
  /** Written into the JSON spec for Docker, and used to verify client certificates when `verifyClient`. */
  caFile: string | null;
  verifyClient: boolean;
}

export const DEFAULT_DRIVER_NAME = 'kuryr';
export const DEFAULT_STATE_DIR = '/var/lib/kuryr';
export const DEFAULT_SPEC_DIR = '/usr/lib/docker/plugins';
export const PLUGIN_SOCKET_DIR = '/run/docker/plugins';
