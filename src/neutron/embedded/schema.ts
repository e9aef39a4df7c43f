/**
 * Versioned schema of the embedded Neutron store. Migration N brings a database from `user_version` N-1 to N;
 * `database.ts` applies the missing ones in a single transaction. Never edit a released migration: append one.
 *
 * Layout follows Neutron's own tables where it matters: IP allocations are rows keyed by (subnet, address) so
 * uniqueness is enforced by the database; tags live in one table indexed by tag; port ↔ security group is a
 * join table. Each `revision_number`/`created_at`/`updated_at` sits on its resource row (Neutron's
 * standard attributes).
 */

/** One schema step: applied when the database's `user_version` is below `version`. */
export interface Migration {
  version: number;
  description: string;
  sql: string;
}

const TAGGED_TABLES: readonly [table: string, resourceType: string][] = [
  ['networks', 'networks'],
  ['subnets', 'subnets'],
  ['subnetpools', 'subnetpools'],
  ['ports', 'ports'],
  ['security_groups', 'security-groups'],
];

const v1 = `
CREATE TABLE networks (
  id TEXT PRIMARY KEY NOT NULL,
  project_id TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '',
  admin_state_up INTEGER NOT NULL DEFAULT 1,
  shared INTEGER NOT NULL DEFAULT 0,
  mtu INTEGER NOT NULL DEFAULT 1500,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  revision_number INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE subnetpools (
  id TEXT PRIMARY KEY NOT NULL,
  project_id TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '',
  prefixes TEXT NOT NULL,
  ip_version INTEGER NOT NULL,
  default_prefixlen INTEGER NOT NULL,
  min_prefixlen INTEGER NOT NULL,
  max_prefixlen INTEGER NOT NULL,
  shared INTEGER NOT NULL DEFAULT 0,
  is_default INTEGER NOT NULL DEFAULT 0,
  address_scope_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  revision_number INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE subnets (
  id TEXT PRIMARY KEY NOT NULL,
  project_id TEXT NOT NULL,
  network_id TEXT NOT NULL REFERENCES networks(id),
  subnetpool_id TEXT REFERENCES subnetpools(id),
  name TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '',
  ip_version INTEGER NOT NULL,
  cidr TEXT NOT NULL,
  gateway_ip TEXT,
  enable_dhcp INTEGER NOT NULL DEFAULT 1,
  allocation_pools TEXT NOT NULL DEFAULT '[]',
  host_routes TEXT NOT NULL DEFAULT '[]',
  dns_nameservers TEXT NOT NULL DEFAULT '[]',
  ipv6_address_mode TEXT,
  ipv6_ra_mode TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  revision_number INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX subnets_network_id ON subnets(network_id);
CREATE INDEX subnets_subnetpool_id ON subnets(subnetpool_id);

CREATE TABLE ports (
  id TEXT PRIMARY KEY NOT NULL,
  project_id TEXT NOT NULL,
  network_id TEXT NOT NULL REFERENCES networks(id),
  name TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '',
  admin_state_up INTEGER NOT NULL DEFAULT 1,
  mac_address TEXT NOT NULL,
  device_id TEXT NOT NULL DEFAULT '',
  device_owner TEXT NOT NULL DEFAULT '',
  port_security_enabled INTEGER NOT NULL DEFAULT 1,
  allowed_address_pairs TEXT NOT NULL DEFAULT '[]',
  host_id TEXT NOT NULL DEFAULT '',
  vnic_type TEXT NOT NULL DEFAULT 'normal',
  profile TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  revision_number INTEGER NOT NULL DEFAULT 0
);
-- MAC addresses are unique per network; the index also serves lookups by network_id.
CREATE UNIQUE INDEX ports_network_id_mac_address ON ports(network_id, mac_address);
CREATE INDEX ports_mac_address ON ports(mac_address);

CREATE TABLE ip_allocations (
  port_id TEXT NOT NULL REFERENCES ports(id) ON DELETE CASCADE,
  subnet_id TEXT NOT NULL REFERENCES subnets(id),
  ip_address TEXT NOT NULL,
  UNIQUE (subnet_id, ip_address)
);
CREATE INDEX ip_allocations_port_id ON ip_allocations(port_id);
CREATE INDEX ip_allocations_ip_address ON ip_allocations(ip_address);

CREATE TABLE security_groups (
  id TEXT PRIMARY KEY NOT NULL,
  project_id TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '',
  stateful INTEGER NOT NULL DEFAULT 1,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  revision_number INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE security_group_rules (
  id TEXT PRIMARY KEY NOT NULL,
  project_id TEXT NOT NULL,
  security_group_id TEXT NOT NULL REFERENCES security_groups(id) ON DELETE CASCADE,
  direction TEXT NOT NULL,
  ethertype TEXT NOT NULL,
  protocol TEXT,
  port_range_min INTEGER,
  port_range_max INTEGER,
  remote_ip_prefix TEXT,
  remote_group_id TEXT REFERENCES security_groups(id) ON DELETE CASCADE,
  description TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL
);
CREATE INDEX security_group_rules_security_group_id ON security_group_rules(security_group_id);
CREATE INDEX security_group_rules_remote_group_id ON security_group_rules(remote_group_id);

CREATE TABLE port_security_groups (
  port_id TEXT NOT NULL REFERENCES ports(id) ON DELETE CASCADE,
  security_group_id TEXT NOT NULL REFERENCES security_groups(id),
  PRIMARY KEY (port_id, security_group_id)
);
CREATE INDEX port_security_groups_security_group_id ON port_security_groups(security_group_id);

CREATE TABLE default_security_groups (
  project_id TEXT PRIMARY KEY NOT NULL,
  security_group_id TEXT NOT NULL REFERENCES security_groups(id) ON DELETE CASCADE
);

CREATE TABLE tags (
  resource_type TEXT NOT NULL,
  resource_id TEXT NOT NULL,
  tag TEXT NOT NULL,
  PRIMARY KEY (resource_type, resource_id, tag)
) WITHOUT ROWID;

${TAGGED_TABLES.map(
  ([table, type]) => `CREATE TRIGGER ${table}_delete_tags AFTER DELETE ON ${table} BEGIN
  DELETE FROM tags WHERE resource_type = '${type}' AND resource_id = OLD.id;
END;`,
).join('\n')}
`;

/** v2: indexes for the lookups kuryr makes by name, CIDR, device ID and tag (no full scans at scale). */
const v2 = `
CREATE INDEX networks_name ON networks(name);
CREATE INDEX subnets_name ON subnets(name);
CREATE INDEX subnets_cidr ON subnets(cidr);
CREATE INDEX subnetpools_name ON subnetpools(name);
CREATE INDEX ports_name ON ports(name);
CREATE INDEX ports_device_id ON ports(device_id);
CREATE INDEX security_groups_name ON security_groups(name);
CREATE INDEX tags_tag_resource_type ON tags(tag, resource_type);
`;

/**
 * v3: MAC addresses are kept in the case they were given (as Neutron does), so uniqueness per network and the
 * `mac_address` lookup ignore case. Rows of older versions hold lower-case MACs: they stay valid and unique.
 */
const v3 = `
DROP INDEX ports_network_id_mac_address;
DROP INDEX ports_mac_address;
CREATE UNIQUE INDEX ports_network_id_mac_address ON ports(network_id, mac_address COLLATE NOCASE);
CREATE INDEX ports_mac_address ON ports(mac_address COLLATE NOCASE);
`;

/** Every migration, in order. The last one's `version` is the schema version this code writes. */
export const migrations: readonly Migration[] = [
  { version: 1, description: 'networks, subnets, subnet pools, ports, IP allocations, security groups, tags', sql: v1 },
  { version: 2, description: 'lookup indexes on names, CIDRs, device IDs and tags', sql: v2 },
  { version: 3, description: 'MAC addresses unique per network regardless of case', sql: v3 },
];

/** The schema version a freshly opened database ends up at. */
export const SCHEMA_VERSION: number = migrations[migrations.length - 1]?.version ?? 0;
