/**
 * Every `kuryr.conf` option kuryr-ts reads, with its type and default, in the original's sections
 * (kuryr-behaviour.md §3). Options the original accepts but kuryr-ts has no use for are listed as `ignored`
 * so that an existing file loads unchanged; anything else in a known section is an error naming the key.
 */

export type OptionType = 'string' | 'bool' | 'int' | 'choice' | 'ignored';

export interface OptionSpec {
  type: OptionType;
  default?: string;
  choices?: readonly string[];
  /** Environment variable that overrides the file. */
  env?: string;
  help: string;
}

export type Section = Record<string, OptionSpec>;

const ignored = (help: string): OptionSpec => ({ type: 'ignored', help });

/** Known sections and options. */
export const OPTIONS: Record<string, Section> = {
  DEFAULT: {
    capability_scope: {
      type: 'choice',
      choices: ['local', 'global'],
      default: 'local',
      env: 'CAPABILITY_SCOPE',
      help: 'Scope reported to Docker by NetworkDriver.GetCapabilities.',
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
    default_port_driver: ignored('Port driver (the veth driver is built in).'),
    enabled_port_drivers: ignored('Port drivers (the veth driver is built in).'),
    port_driver: ignored('Deprecated in the original.'),
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
    pybasedir: ignored('Unused by the original.'),
    bindir: { type: 'string', default: '/usr/libexec/kuryr', help: 'Directory of per-vif-type bind scripts.' },
    deployment_type: ignored('Unused by kuryr-libnetwork.'),
    log_file: ignored('oslo.log option; kuryr-ts logs to stderr.'),
    log_dir: ignored('oslo.log option; kuryr-ts logs to stderr.'),
    use_stderr: ignored('oslo.log option.'),
    use_syslog: ignored('oslo.log option.'),
    syslog_log_facility: ignored('oslo.log option.'),
    use_journal: ignored('oslo.log option.'),
    use_json: ignored('oslo.log option; kuryr-ts always logs JSON lines.'),
    log_config_append: ignored('oslo.log option.'),
    log_date_format: ignored('oslo.log option.'),
    default_log_levels: ignored('oslo.log option.'),
    logging_context_format_string: ignored('oslo.log option.'),
    logging_default_format_string: ignored('oslo.log option.'),
    logging_debug_format_suffix: ignored('oslo.log option.'),
    logging_exception_prefix: ignored('oslo.log option.'),
    watch_log_file: ignored('oslo.log option.'),
  },
  neutron: {
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
    vif_plugging_is_fatal: ignored('Wait for ACTIVE ports (Neutron backend).'),
    vif_plugging_timeout: ignored('Seconds to wait for ACTIVE ports (Neutron backend).'),
    region_name: ignored('Keystone region (Neutron backend).'),
    endpoint_type: ignored('Catalog interface (Neutron backend).'),
    ...Object.fromEntries(
      [
        'auth_type',
        'auth_plugin',
        'auth_section',
        'auth_url',
        'username',
        'user_id',
        'password',
        'user_domain_name',
        'user_domain_id',
        'project_name',
        'project_id',
        'tenant_name',
        'tenant_id',
        'project_domain_name',
        'project_domain_id',
        'domain_name',
        'domain_id',
        'system_scope',
        'trust_id',
        'default_domain_name',
        'default_domain_id',
        'token',
        'endpoint',
        'application_credential_id',
        'application_credential_name',
        'application_credential_secret',
        'cafile',
        'certfile',
        'keyfile',
        'insecure',
        'timeout',
        'collect_timing',
        'split_loggers',
      ].map((k) => [k, ignored('Keystone/Neutron client option (Neutron backend).')]),
    ),
  },
  binding: {
    veth_dst_prefix: { type: 'string', default: 'eth', help: 'Prefix of container interface names.' },
    default_driver: ignored('Binding driver (veth is built in).'),
    driver: ignored('Old name of default_driver.'),
    enabled_drivers: ignored('Binding drivers (veth is built in).'),
    link_iface: ignored('Nested drivers (not supported).'),
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
      help: 'Where networks live: the embedded store or a real Neutron.',
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
