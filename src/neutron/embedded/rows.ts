/**
 * Row ↔ resource mapping. Each `SELECT_*` reads one resource kind with its dependent lists (tags, subnets,
 * fixed IPs, security groups, rules) gathered by correlated, index-backed subqueries as JSON, so a list of
 * N resources is one statement. The mappers build fresh objects every time: callers may mutate them.
 */
import type {
  AllocationPool,
  AllowedAddressPair,
  FixedIp,
  HostRoute,
  Network,
  Port,
  SecurityGroup,
  SecurityGroupRule,
  Subnet,
  SubnetPool,
} from '../types.ts';
import type { Row } from './database.ts';

/** Resource kinds of the store, named like Neutron's collections (and the tag table's `resource_type`). */
export type ResourceKind = 'networks' | 'subnets' | 'subnetpools' | 'ports' | 'security-groups';

/** SQL table of each resource kind. */
export const TABLES: Readonly<Record<ResourceKind, string>> = {
  networks: 'networks',
  subnets: 'subnets',
  subnetpools: 'subnetpools',
  ports: 'ports',
  'security-groups': 'security_groups',
};

const tagsOf = (type: ResourceKind) =>
  `(SELECT json_group_array(t.tag) FROM tags t WHERE t.resource_type = '${type}' AND t.resource_id = r.id) AS tags_json`;

const RULE_JSON = `json_object('id', x.id, 'security_group_id', x.security_group_id, 'direction', x.direction,
  'ethertype', x.ethertype, 'protocol', x.protocol, 'port_range_min', x.port_range_min,
  'port_range_max', x.port_range_max, 'remote_ip_prefix', x.remote_ip_prefix, 'remote_group_id', x.remote_group_id,
  'description', x.description, 'project_id', x.project_id)`;

/** `SELECT` for each kind; the main table is aliased `r`. Append `WHERE ...` and `ORDER BY r.rowid`. */
export const SELECTS: Readonly<Record<ResourceKind, string>> = {
  networks: `SELECT r.*, ${tagsOf('networks')},
    (SELECT json_group_array(s.id ORDER BY s.rowid) FROM subnets s WHERE s.network_id = r.id) AS subnets_json
    FROM networks r`,
  subnets: `SELECT r.*, ${tagsOf('subnets')} FROM subnets r`,
  subnetpools: `SELECT r.*, ${tagsOf('subnetpools')} FROM subnetpools r`,
  ports: `SELECT r.*, ${tagsOf('ports')},
    (SELECT json_group_array(json_object('subnet_id', a.subnet_id, 'ip_address', a.ip_address) ORDER BY a.rowid)
       FROM ip_allocations a WHERE a.port_id = r.id) AS fixed_ips_json,
    (SELECT json_group_array(g.security_group_id ORDER BY g.rowid)
       FROM port_security_groups g WHERE g.port_id = r.id) AS security_groups_json
    FROM ports r`,
  'security-groups': `SELECT r.*, ${tagsOf('security-groups')},
    (SELECT json_group_array(${RULE_JSON} ORDER BY x.rowid) FROM security_group_rules x
       WHERE x.security_group_id = r.id) AS rules_json
    FROM security_groups r`,
};

function text(row: Row, col: string): string {
  const v = row[col];
  if (typeof v !== 'string') throw new Error(`embedded store: column ${col} is not text`);
  return v;
}

function textOrNull(row: Row, col: string): string | null {
  const v = row[col];
  return v === null || v === undefined ? null : text(row, col);
}

function int(row: Row, col: string): number {
  const v = row[col];
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  throw new Error(`embedded store: column ${col} is not an integer`);
}

function bool(row: Row, col: string): boolean {
  return int(row, col) !== 0;
}

function json<T>(row: Row, col: string): T {
  return JSON.parse(text(row, col)) as T;
}

function tags(row: Row): string[] {
  return json<string[]>(row, 'tags_json').sort();
}

function standard(row: Row) {
  const project = text(row, 'project_id');
  return {
    tags: tags(row),
    project_id: project,
    tenant_id: project,
    created_at: text(row, 'created_at'),
    updated_at: text(row, 'updated_at'),
    revision_number: int(row, 'revision_number'),
  };
}

/** A `networks` row (from `SELECTS.networks`) as a Network. */
export function networkFromRow(row: Row): Network {
  return {
    id: text(row, 'id'),
    name: text(row, 'name'),
    description: text(row, 'description'),
    admin_state_up: bool(row, 'admin_state_up'),
    shared: bool(row, 'shared'),
    status: 'ACTIVE',
    subnets: json<string[]>(row, 'subnets_json'),
    mtu: int(row, 'mtu'),
    ...standard(row),
  };
}

/** A `subnets` row as a Subnet. */
export function subnetFromRow(row: Row): Subnet {
  return {
    id: text(row, 'id'),
    name: text(row, 'name'),
    description: text(row, 'description'),
    network_id: text(row, 'network_id'),
    ip_version: int(row, 'ip_version') === 6 ? 6 : 4,
    cidr: text(row, 'cidr'),
    gateway_ip: textOrNull(row, 'gateway_ip'),
    enable_dhcp: bool(row, 'enable_dhcp'),
    allocation_pools: json<AllocationPool[]>(row, 'allocation_pools'),
    host_routes: json<HostRoute[]>(row, 'host_routes'),
    dns_nameservers: json<string[]>(row, 'dns_nameservers'),
    subnetpool_id: textOrNull(row, 'subnetpool_id'),
    ipv6_address_mode: textOrNull(row, 'ipv6_address_mode'),
    ipv6_ra_mode: textOrNull(row, 'ipv6_ra_mode'),
    ...standard(row),
  };
}

/** A `subnetpools` row as a SubnetPool. */
export function subnetPoolFromRow(row: Row): SubnetPool {
  return {
    id: text(row, 'id'),
    name: text(row, 'name'),
    description: text(row, 'description'),
    prefixes: json<string[]>(row, 'prefixes'),
    ip_version: int(row, 'ip_version') === 6 ? 6 : 4,
    default_prefixlen: int(row, 'default_prefixlen'),
    min_prefixlen: int(row, 'min_prefixlen'),
    max_prefixlen: int(row, 'max_prefixlen'),
    shared: bool(row, 'shared'),
    is_default: bool(row, 'is_default'),
    address_scope_id: textOrNull(row, 'address_scope_id'),
    ...standard(row),
  };
}

/**
 * SQL for a port's computed `status`: the embedded plugin wires a port synchronously when it is bound, so a
 * port is `ACTIVE` while bound to a host with `admin_state_up`, otherwise `DOWN`.
 */
export const PORT_STATUS_SQL = `(CASE WHEN r.host_id <> '' AND r.admin_state_up <> 0 THEN 'ACTIVE' ELSE 'DOWN' END)`;

/** `binding:vif_details` of a port bound by the embedded store. */
export const BOUND_VIF_DETAILS: Readonly<Record<string, unknown>> = { connectivity: 'l2', port_filter: false };

/** A `ports` row as a Port; `vifType` is what binding to a host yields in this store. */
export function portFromRow(row: Row, vifType: string): Port {
  const host = text(row, 'host_id');
  const adminUp = bool(row, 'admin_state_up');
  return {
    id: text(row, 'id'),
    name: text(row, 'name'),
    description: text(row, 'description'),
    network_id: text(row, 'network_id'),
    admin_state_up: adminUp,
    mac_address: text(row, 'mac_address'),
    fixed_ips: json<FixedIp[]>(row, 'fixed_ips_json'),
    device_id: text(row, 'device_id'),
    device_owner: text(row, 'device_owner'),
    status: host !== '' && adminUp ? 'ACTIVE' : 'DOWN',
    security_groups: json<string[]>(row, 'security_groups_json'),
    allowed_address_pairs: json<AllowedAddressPair[]>(row, 'allowed_address_pairs'),
    port_security_enabled: bool(row, 'port_security_enabled'),
    'binding:host_id': host,
    'binding:vif_type': host !== '' ? vifType : 'unbound',
    'binding:vif_details': host !== '' ? { ...BOUND_VIF_DETAILS } : {},
    'binding:vnic_type': text(row, 'vnic_type'),
    'binding:profile': json<Record<string, unknown>>(row, 'profile'),
    ...standard(row),
  };
}

/** A `security_groups` row as a SecurityGroup with its rules. */
export function securityGroupFromRow(row: Row): SecurityGroup {
  const rules = json<Omit<SecurityGroupRule, 'tenant_id'>[]>(row, 'rules_json');
  return {
    id: text(row, 'id'),
    name: text(row, 'name'),
    description: text(row, 'description'),
    security_group_rules: rules.map((rule) => ({ ...rule, tenant_id: rule.project_id })),
    stateful: bool(row, 'stateful'),
    ...standard(row),
  };
}
