/**
 * Neutron v2.0 resource shapes, with Neutron's own field names.
 * Only the attributes kuryr-ts reads or writes are typed; both backends return at least these.
 */

/** One `fixed_ips` entry of a port. */
export interface FixedIp {
  subnet_id: string;
  ip_address: string;
}

export interface Network {
  id: string;
  name: string;
  description: string;
  admin_state_up: boolean;
  shared: boolean;
  status: string;
  subnets: string[];
  mtu: number;
  tags: string[];
  project_id: string;
  tenant_id: string;
  created_at: string;
  updated_at: string;
  revision_number: number;
}

export interface AllocationPool {
  start: string;
  end: string;
}

export interface HostRoute {
  destination: string;
  nexthop: string;
}

export interface Subnet {
  id: string;
  name: string;
  description: string;
  network_id: string;
  ip_version: 4 | 6;
  cidr: string;
  gateway_ip: string | null;
  enable_dhcp: boolean;
  allocation_pools: AllocationPool[];
  host_routes: HostRoute[];
  dns_nameservers: string[];
  subnetpool_id: string | null;
  ipv6_address_mode: string | null;
  ipv6_ra_mode: string | null;
  tags: string[];
  project_id: string;
  tenant_id: string;
  created_at: string;
  updated_at: string;
  revision_number: number;
}

export interface SubnetPool {
  id: string;
  name: string;
  description: string;
  prefixes: string[];
  ip_version: 4 | 6;
  default_prefixlen: number;
  min_prefixlen: number;
  max_prefixlen: number;
  shared: boolean;
  is_default: boolean;
  address_scope_id: string | null;
  tags: string[];
  project_id: string;
  tenant_id: string;
  created_at: string;
  updated_at: string;
  revision_number: number;
}

export interface AllowedAddressPair {
  ip_address: string;
  mac_address: string;
}

export interface Port {
  id: string;
  name: string;
  description: string;
  network_id: string;
  admin_state_up: boolean;
  mac_address: string;
  fixed_ips: FixedIp[];
  device_id: string;
  device_owner: string;
  status: string;
  security_groups: string[];
  allowed_address_pairs: AllowedAddressPair[];
  port_security_enabled: boolean;
  tags: string[];
  project_id: string;
  tenant_id: string;
  'binding:host_id': string;
  'binding:vif_type': string;
  'binding:vif_details': Record<string, unknown>;
  'binding:vnic_type': string;
  'binding:profile': Record<string, unknown>;
  created_at: string;
  updated_at: string;
  revision_number: number;
}

export interface SecurityGroupRule {
  id: string;
  security_group_id: string;
  direction: 'ingress' | 'egress';
  ethertype: 'IPv4' | 'IPv6';
  protocol: string | null;
  port_range_min: number | null;
  port_range_max: number | null;
  remote_ip_prefix: string | null;
  remote_group_id: string | null;
  description: string;
  project_id: string;
  tenant_id: string;
}

export interface SecurityGroup {
  id: string;
  name: string;
  description: string;
  security_group_rules: SecurityGroupRule[];
  stateful: boolean;
  tags: string[];
  project_id: string;
  tenant_id: string;
  created_at: string;
  updated_at: string;
  revision_number: number;
}

export interface Extension {
  alias: string;
  name: string;
  description: string;
}

// ---- request bodies (what a client may send; Neutron fills the rest) ----

export interface NetworkCreate {
  name?: string;
  description?: string;
  admin_state_up?: boolean;
  shared?: boolean;
  mtu?: number;
}
export type NetworkUpdate = Partial<Pick<Network, 'name' | 'description' | 'admin_state_up' | 'shared' | 'mtu'>>;

export interface SubnetCreate {
  network_id: string;
  ip_version: 4 | 6;
  /** Required unless `subnetpool_id` + `prefixlen` lets the pool choose. */
  cidr?: string;
  prefixlen?: number;
  subnetpool_id?: string;
  name?: string;
  description?: string;
  /** Omitted: first host address of the CIDR. `null`: no gateway. */
  gateway_ip?: string | null;
  enable_dhcp?: boolean;
  allocation_pools?: AllocationPool[];
  host_routes?: HostRoute[];
  dns_nameservers?: string[];
  ipv6_address_mode?: string | null;
  ipv6_ra_mode?: string | null;
}
export type SubnetUpdate = Partial<
  Pick<
    Subnet,
    'name' | 'description' | 'gateway_ip' | 'enable_dhcp' | 'allocation_pools' | 'host_routes' | 'dns_nameservers'
  >
>;

export interface SubnetPoolCreate {
  name?: string;
  description?: string;
  prefixes: string[];
  default_prefixlen?: number;
  min_prefixlen?: number;
  max_prefixlen?: number;
  shared?: boolean;
  is_default?: boolean;
}
export type SubnetPoolUpdate = Partial<
  Pick<SubnetPool, 'name' | 'description' | 'default_prefixlen' | 'min_prefixlen' | 'max_prefixlen' | 'is_default'>
> & { prefixes?: string[] };

/** A `fixed_ips` entry in a request: `subnet_id` only, `ip_address` only, or both. */
export interface FixedIpRequest {
  subnet_id?: string;
  ip_address?: string;
}

export interface PortCreate {
  network_id: string;
  name?: string;
  description?: string;
  admin_state_up?: boolean;
  mac_address?: string;
  fixed_ips?: FixedIpRequest[];
  device_id?: string;
  device_owner?: string;
  security_groups?: string[];
  allowed_address_pairs?: AllowedAddressPair[];
  port_security_enabled?: boolean;
  'binding:host_id'?: string;
  'binding:vnic_type'?: string;
  'binding:profile'?: Record<string, unknown>;
  /** Only with the `tag-ports-during-bulk-creation` extension (the ML2 extension driver of that name). */
  tags?: string[];
}
/** Neutron takes no `tags` in a port update (the tags API sets them). */
export type PortUpdate = Partial<Omit<PortCreate, 'network_id' | 'tags'>>;

export interface SecurityGroupCreate {
  name?: string;
  description?: string;
  stateful?: boolean;
}

export interface SecurityGroupRuleCreate {
  security_group_id: string;
  direction: 'ingress' | 'egress';
  ethertype?: 'IPv4' | 'IPv6';
  protocol?: string | null;
  port_range_min?: number | null;
  port_range_max?: number | null;
  remote_ip_prefix?: string | null;
  remote_group_id?: string | null;
  description?: string;
}

/** Resource collections that carry tags (`standard-attr-tag`). */
export type TaggedResource = 'networks' | 'subnets' | 'subnetpools' | 'ports' | 'security-groups';
