/**
 * The one list of `kuryr.conf` options: every key kuryr-ts knows, in the original's sections, with its type,
 * default and help. The loader (load.ts) checks values against it, the Neutron client (neutron/http/config.ts)
 * takes its key names from it, and scripts/gen-config-doc.ts writes docs/configuration.md and
 * etc/kuryr.conf.sample from it.
 *
 * Types: `string`, `bool`, `int`, `choice` are checked by the loader; `client` options are read and checked by
 * the Neutron client (keystoneauth's option names); `ignored` options are accepted silently (the original or
 * oslo.log knows them, kuryr-ts has no use for them). A key in no list is logged as a warning and ignored, as
 * oslo.config ignores it.
 */

export type OptionType = 'string' | 'bool' | 'int' | 'choice' | 'client' | 'ignored';

export interface OptionSpec {
  type: OptionType;
  default?: string;
  choices?: readonly string[];
  /** Environment variable that overrides the file. */
  env?: string;
  /** A credential: never logged, and a world-readable file holding one gets a warning. */
  secret?: boolean;
  help: string;
}

export type Section = Record<string, OptionSpec>;

const ignored = (help: string, defaultValue?: string): OptionSpec => ({
  type: 'ignored',
  help,
  ...(defaultValue === undefined ? {} : { default: defaultValue }),
});
const client = (help: string, extra: Partial<OptionSpec> = {}): OptionSpec => ({ type: 'client', help, ...extra });
const OSLO_LOG = 'oslo.log option; kuryr-ts ignores it.';

/**
 * `[neutron]`: kuryr-lib's Neutron options and the keystoneauth options the original's sample lists (auth_type,
 * session options, and the options of its password, v2password, v3password, v2token and v3token plugins).
 */
export const NEUTRON_OPTIONS = {
  enable_dhcp: { type: 'bool', default: 'true', help: 'enable_dhcp of subnets kuryr creates.' },
  default_subnetpool_v4: {
    type: 'string',
    default: 'kuryr',
    help: 'IPv4 pool for networks created without --subnet.',
  },
  default_subnetpool_v6: {
    type: 'string',
    default: 'kuryr6',
    help: 'IPv6 pool for networks created without an IPv6 --subnet.',
  },
  vif_plugging_is_fatal: {
    type: 'bool',
    default: 'false',
    help: 'CreateEndpoint waits for the Neutron port to be ACTIVE and fails when it is not in time; false = no wait.',
  },
  vif_plugging_timeout: {
    type: 'int',
    default: '0',
    help: 'Seconds to wait for ACTIVE with vif_plugging_is_fatal; 0 = until the request deadline (about 20 s).',
  },
  region_name: client('Region of the Neutron endpoint in the Keystone catalog; empty = any.'),
  endpoint_type: client('Catalog interface of the Neutron endpoint: public, internal or admin.', {
    default: 'public',
  }),
  interface: client("keystoneauth's name for endpoint_type; when both are set they must agree."),
  auth_type: client(
    'Authentication type: password, v3password, v2password, v3applicationcredential, token, v3token, v2token, none (Neutron in noauth mode at `endpoint`) or admin_token (a fixed `token` sent to `endpoint`).',
  ),
  auth_plugin: client('Old name of auth_type.'),
  auth_section: client('Section from which to read the authentication options as well.'),
  auth_url: client('Keystone URL (versioned, e.g. .../v3, or unversioned: the version is discovered).'),
  username: client('User name.'),
  user_id: client('User ID.'),
  password: client("User's password.", { secret: true }),
  user_domain_name: client("User's domain name."),
  user_domain_id: client("User's domain ID."),
  project_name: client('Project name to scope to.'),
  project_id: client('Project ID to scope to.'),
  tenant_name: client('Old (Keystone v2.0) name of project_name.'),
  tenant_id: client('Old (Keystone v2.0) name of project_id.'),
  project_domain_name: client('Domain name of the project.'),
  project_domain_id: client('Domain ID of the project.'),
  domain_name: ignored('Domain name to scope to (kuryr-ts scopes to a project).'),
  domain_id: ignored('Domain ID to scope to (kuryr-ts scopes to a project).'),
  system_scope: ignored('Scope for system operations (kuryr-ts scopes to a project).'),
  trust_id: ignored('Trust ID (not supported by kuryr-ts).'),
  default_domain_name: client('Domain name of the user and the project when neither names its own.'),
  default_domain_id: client('Domain ID of the user and the project when neither names its own.'),
  token: client('Token (auth_type token, v3token, v2token or admin_token).', { secret: true }),
  endpoint: client('Neutron URL for auth_type none and admin_token (no catalog).'),
  application_credential_id: client('Application credential ID.'),
  application_credential_name: client('Application credential name.'),
  application_credential_secret: client('Application credential secret.', { secret: true }),
  cafile: client('PEM bundle of the CAs to trust for HTTPS to Keystone and Neutron; empty = the system CAs.'),
  certfile: client('PEM client certificate.'),
  keyfile: client('PEM key of the client certificate.'),
  insecure: client('Do not verify the server certificates.', { default: 'false' }),
  timeout: client('Timeout of one HTTP request, in seconds.', { default: '10' }),
  collect_timing: ignored('keystoneauth option (timing is in the metrics).'),
  split_loggers: ignored('keystoneauth option.'),
  auth_uri: ignored('keystonemiddleware option (kolla-ansible writes it); a client does not use it.'),
  www_authenticate_uri: ignored('keystonemiddleware option (new name of auth_uri); a client does not use it.'),
} satisfies Section;

/** A `[neutron]` key, as the Neutron client may read it. */
export type NeutronOption = keyof typeof NEUTRON_OPTIONS;

/** Known sections and options. */
export const OPTIONS: Record<string, Section> = {
  DEFAULT: {
    capability_scope: {
      type: 'choice',
      choices: ['local', 'global'],
      default: 'local',
      env: 'CAPABILITY_SCOPE',
      help: 'Scope reported to Docker by NetworkDriver.GetCapabilities; global (Swarm mode, docs/swarm.md) needs the neutron backend.',
    },
    local_default_address_space: {
      type: 'string',
      default: 'no_address_space',
      help: 'IPAM local address space name.',
    },
    global_default_address_space: {
      type: 'string',
      default: 'no_address_space',
      help: 'IPAM global address space name.',
    },
    subnetpool_name_prefix: {
      type: 'string',
      default: 'kuryrPool',
      help: 'Prefix of subnet pools created per network.',
    },
    process_external_connectivity: {
      type: 'bool',
      default: 'true',
      help: 'Map exposed container ports to Neutron security groups.',
    },
    kuryr_uri: {
      type: 'string',
      default: '',
      env: 'OS_KURYR_URI',
      help: 'When set (e.g. http://10.0.0.5:23750): serve the plugin API there over TCP, as --listen, and write the spec file for Docker; unset: the unix socket.',
    },
    debug: { type: 'bool', default: 'false', help: 'Log at debug level.' },
    log_level: {
      type: 'choice',
      choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'],
      default: 'info',
      env: 'LOG_LEVEL',
      help: 'Log level (kuryr-ts).',
    },
    default_port_driver: {
      type: 'string',
      default: 'kuryr_libnetwork.port_driver.drivers.veth',
      help: 'Port driver of ordinary ports: veth (containers on the host), nested (containers in a Nova VM: macvlan or ipvlan children of link_iface), vlan (a trunk subport per container, a VLAN child of link_iface). Dotted (kuryr_libnetwork.port_driver.drivers.nested) or short (nested) names. See docs/nested.md.',
    },
    enabled_port_drivers: {
      type: 'string',
      default: 'kuryr_libnetwork.port_driver.drivers.veth',
      help: 'Comma-separated port drivers; must hold default_port_driver. Add sriov to bind ports with binding:vnic_type direct, macvtap or direct-physical (their VF comes from binding:profile pci_slot); without it such ports are refused.',
    },
    port_driver: {
      type: 'string',
      default: 'kuryr_libnetwork.port_driver.drivers.veth',
      help: 'Deprecated name of default_port_driver (used when only it is set).',
    },
    enable_ssl: { type: 'bool', default: 'false', help: 'Serve HTTPS on the TCP listener (--listen).' },
    ssl_cert_file: {
      type: 'string',
      default: '/var/lib/kuryr/certs/cert.pem',
      help: 'Server certificate (PEM); Docker also presents it as its client certificate.',
    },
    ssl_key_file: {
      type: 'string',
      default: '/var/lib/kuryr/certs/key.pem',
      help: 'Private key of ssl_cert_file (PEM).',
    },
    pybasedir: ignored('Directory where the original Python module is installed (unused).'),
    bindir: { type: 'string', default: '/usr/libexec/kuryr', help: 'Directory of per-vif-type bind scripts.' },
    deployment_type: ignored('baremetal or nested-containers in kuryr-lib; kuryr-ts binds on the host only.'),
    log_file: {
      type: 'string',
      default: '',
      help: 'Log to this file (appended to; reopened on SIGHUP). Relative to log_dir when that is set; empty = stderr.',
    },
    log_dir: {
      type: 'string',
      default: '',
      help: 'Directory of the log file: <log_dir>/<log_file>, or <log_dir>/<program>.log (kuryr-server.log, kuryr.log) without log_file.',
    },
    use_stderr: {
      type: 'bool',
      default: 'false',
      help: 'Also log to stderr when logging to a file (without a file, kuryr-ts always logs to stderr).',
    },
    verbose: ignored('Removed from oslo.log (INFO is the default level).'),
    use_syslog: ignored(OSLO_LOG),
    syslog_log_facility: ignored(OSLO_LOG),
    use_journal: ignored(OSLO_LOG),
    use_json: ignored('oslo.log option; kuryr-ts writes JSON lines when not on a terminal (KURYR_LOG_FORMAT).'),
    use_eventlog: ignored(OSLO_LOG),
    log_color: ignored(OSLO_LOG),
    log_config_append: ignored(OSLO_LOG),
    log_date_format: ignored(OSLO_LOG),
    log_rotate_interval: ignored(OSLO_LOG),
    log_rotate_interval_type: ignored(OSLO_LOG),
    log_rotation_type: ignored(OSLO_LOG),
    max_logfile_count: ignored(OSLO_LOG),
    max_logfile_size_mb: ignored(OSLO_LOG),
    watch_log_file: ignored('oslo.log option; kuryr-ts reopens the log file on SIGHUP instead.'),
    default_log_levels: ignored(OSLO_LOG),
    logging_context_format_string: ignored(OSLO_LOG),
    logging_default_format_string: ignored(OSLO_LOG),
    logging_debug_format_suffix: ignored(OSLO_LOG),
    logging_exception_prefix: ignored(OSLO_LOG),
    logging_user_identity_format: ignored(OSLO_LOG),
    publish_errors: ignored(OSLO_LOG),
    instance_format: ignored(OSLO_LOG),
    instance_uuid_format: ignored(OSLO_LOG),
    rate_limit_interval: ignored(OSLO_LOG),
    rate_limit_burst: ignored(OSLO_LOG),
    rate_limit_except_level: ignored(OSLO_LOG),
    fatal_deprecations: ignored(OSLO_LOG),
    syslog_log_facility_rfc: ignored(OSLO_LOG),
    use_syslog_rfc_format: ignored(OSLO_LOG),
    log_format: ignored('Removed from oslo.log.'),
  },
  neutron: NEUTRON_OPTIONS,
  binding: {
    veth_dst_prefix: { type: 'string', default: 'eth', help: 'Prefix of container interface names.' },
    default_driver: {
      type: 'string',
      default: 'kuryr.lib.binding.drivers.veth',
      help: 'Binding driver of the default port driver: veth (veth port driver), macvlan or ipvlan (nested), vlan (vlan). Unset, the one that fits the port driver.',
    },
    driver: { type: 'string', default: 'kuryr.lib.binding.drivers.veth', help: 'Old name of default_driver.' },
    enabled_drivers: {
      type: 'string',
      default: 'kuryr.lib.binding.drivers.veth',
      help: 'Comma-separated binding drivers; when set, must hold default_driver.',
    },
    link_iface: {
      type: 'string',
      default: '',
      help: "The VM's network interface (nested and vlan port drivers): its MAC finds the VM's Neutron port, and containers' interfaces are its children.",
    },
  },
  kuryr_ts: {
    ssl_ca_file: {
      type: 'string',
      default: '',
      help: 'CA (PEM) that signed the certificates: Docker verifies the plugin with it, and with ssl_verify_client the plugin verifies Docker.',
    },
    ssl_verify_client: {
      type: 'bool',
      default: 'false',
      help: 'Require a client certificate signed by ssl_ca_file (mutual TLS).',
    },
    gc_interval: {
      type: 'int',
      default: '300',
      help: 'Seconds between reconciliation passes of `serve` (also run at start-up); 0 = only at start-up.',
    },
    backend: {
      type: 'choice',
      choices: ['embedded', 'neutron'],
      default: 'embedded',
      env: 'KURYR_BACKEND',
      help: 'Where networks live: the embedded store or a real Neutron. When neither this, --backend nor KURYR_BACKEND is set: neutron if [neutron] holds credentials (a file written for the original), else embedded.',
    },
    driver_name: {
      type: 'string',
      default: 'kuryr',
      env: 'KURYR_DRIVER_NAME',
      help: 'Name of the network and IPAM driver.',
    },
    state_dir: {
      type: 'string',
      default: '/var/lib/kuryr',
      env: 'KURYR_STATE_DIR',
      help: 'Directory of the embedded store.',
    },
    socket_group: { type: 'string', default: '', help: 'Group owning the plugin socket (mode 0660); empty = root.' },
    spec_dir: { type: 'string', default: '/usr/lib/docker/plugins', help: 'Where the TCP spec file is written.' },
    host_id: { type: 'string', default: '', help: 'binding:host_id of bound ports; empty = the hostname.' },
    metrics_listen: {
      type: 'string',
      default: '',
      help: 'HOST:PORT of the Prometheus metrics and /healthz endpoint (loopback only); empty = off.',
    },
    metrics_allow_remote: {
      type: 'bool',
      default: 'false',
      help: 'Allow metrics_listen on a non-loopback address (the endpoint has no authentication).',
    },
  },
  embedded: {
    default_pool_prefix_v4: { type: 'string', default: '10.10.0.0/16', help: 'Prefix of the default IPv4 pool.' },
    default_pool_prefixlen_v4: { type: 'int', default: '24', help: 'Size of the blocks networks get from it.' },
    default_pool_prefix_v6: {
      type: 'string',
      default: 'fd6b:7572:7972::/48',
      help: 'Prefix of the default IPv6 pool.',
    },
    default_pool_prefixlen_v6: { type: 'int', default: '64', help: 'Size of the blocks networks get from it.' },
    isolate_networks: {
      type: 'bool',
      default: 'true',
      help: 'Isolate each network (nftables table inet kuryr_ts): nothing is routed between networks, or out or in.',
    },
    allow_host_access: {
      type: 'bool',
      default: 'false',
      help: "Let containers reach every host address; false = only their own network's gateway.",
    },
  },
};
