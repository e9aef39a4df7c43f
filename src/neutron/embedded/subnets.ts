/**
 * Subnets: CIDR given or chosen from a subnet pool, no overlap on one network, Neutron's gateway and
 * allocation-pool rules, and the delete rule (409 while user ports hold addresses; network-owned ports let go).
 */
import { neutronErrors } from '../errors.ts';
import type { AllocationPool, HostRoute, Subnet, SubnetCreate, SubnetUpdate } from '../types.ts';
import {
  bigIntToIp,
  type Cidr,
  cidrsOverlap,
  defaultAllocationPools,
  firstHost,
  formatCidr,
  ipVersion,
  parseCidr,
} from '../../util/ip.ts';
import { checkGatewayOutsidePools, isInvalidGateway, validateAllocationPools } from './allocation-pools.ts';
import { Assignments, requireExists, type StoreContext, selectRow, touch } from './context.ts';
import { NETWORK_OWNER_PREFIX } from './networks.ts';
import { subnetFromRow } from './rows.ts';
import { allocateAnySubnet, allocateSpecificSubnet } from './subnet-allocation.ts';
import { showSubnetPool } from './subnetpools.ts';
import {
  asBody,
  type Body,
  checkArray,
  checkAttributes,
  checkCidr,
  checkIp,
  checkObject,
  has,
  newId,
  optBoolean,
  optString,
  required,
  timestamp,
  toInteger,
} from './validate.ts';

const UPDATABLE = [
  'name',
  'description',
  'gateway_ip',
  'enable_dhcp',
  'allocation_pools',
  'host_routes',
  'dns_nameservers',
];
const CREATABLE = [
  ...UPDATABLE,
  'network_id',
  'ip_version',
  'cidr',
  'prefixlen',
  'subnetpool_id',
  'ipv6_address_mode',
  'ipv6_ra_mode',
  'project_id',
  'tenant_id',
];
const IPV6_MODES = ['slaac', 'dhcpv6-stateful', 'dhcpv6-stateless'];
const MAX_DNS_NAMESERVERS = 5;
const MAX_HOST_ROUTES = 20;

/** Read one subnet (404 SubnetNotFound). */
export function showSubnet(ctx: StoreContext, id: string): Subnet {
  return subnetFromRow(selectRow(ctx, 'subnets', id));
}

function matchVersion(version: number, addr: string, attr: string): void {
  const v = addr.includes('/') ? parseCidr(addr).version : ipVersion(addr);
  if (v !== version) throw neutronErrors.invalidInput(`${attr} '${addr}' does not match the ip_version '${version}'`);
}

/**
 * Neutron's default gateway: with a requested `cidr`, the first host for IPv4 and the subnet-router anycast
 * address (the network address, `fd00:ab::`) for IPv6; for a CIDR a subnet pool chose, the first host.
 */
function defaultGateway(cidr: Cidr, requested: boolean): string | null {
  if (requested && cidr.version === 6) return bigIntToIp(cidr.network, 6);
  return firstHost(cidr);
}

/** A gateway for `cidr`: `null` stays null, an address must be of the family and not network/broadcast. */
function checkGateway(cidr: Cidr, value: unknown): string | null {
  if (value === null) return null;
  const gw = checkIp(value, 'gateway_ip');
  matchVersion(cidr.version, gw, 'gateway_ip');
  if (isInvalidGateway(cidr, gw)) throw neutronErrors.invalidInput('Gateway is not valid on subnet');
  return gw;
}

function checkNameservers(version: number, value: unknown): string[] {
  const list = checkArray(value, 'dns_nameservers').map((ns) => checkIp(ns, 'dns_nameservers'));
  if (list.length > MAX_DNS_NAMESERVERS) {
    throw neutronErrors.badResourceRequest('subnets', `Exceeded maximum amount of ${MAX_DNS_NAMESERVERS} nameservers`);
  }
  for (const [i, ns] of list.entries()) {
    matchVersion(version, ns, 'dns_nameserver');
    if (list.indexOf(ns) !== i) throw neutronErrors.invalidAttribute('dns_nameservers', `Duplicate nameserver '${ns}'`);
  }
  return list;
}

function checkHostRoutes(version: number, value: unknown): HostRoute[] {
  const routes = checkArray(value, 'host_routes').map((item) => {
    const obj = checkObject(item, 'host_routes');
    return { destination: checkCidr(obj.destination, 'host_routes'), nexthop: checkIp(obj.nexthop, 'host_routes') };
  });
  if (routes.length > MAX_HOST_ROUTES) {
    throw neutronErrors.badResourceRequest('subnets', `Exceeded maximum amount of ${MAX_HOST_ROUTES} host routes`);
  }
  for (const r of routes) {
    matchVersion(version, r.destination, 'route destination');
    matchVersion(version, r.nexthop, 'route nexthop');
  }
  return routes;
}

function optIpv6Mode(b: Body, key: string, version: number): string | null {
  if (!has(b, key) || b[key] === null) return null;
  const mode = optString(b, key) ?? '';
  if (!IPV6_MODES.includes(mode)) throw neutronErrors.invalidAttribute(key, `'${mode}' is not in ${IPV6_MODES}`);
  if (version !== 6) throw neutronErrors.invalidInput(`${key} is not valid when ip_version is 4`);
  return mode;
}

/** The subnet's CIDR: as requested (checked against the pool, if any) or chosen by the pool. */
function resolveCidr(ctx: StoreContext, b: Body, version: number): { cidr: Cidr; poolId: string | null } {
  const poolId = has(b, 'subnetpool_id') && b.subnetpool_id !== null ? String(b.subnetpool_id) : null;
  const requested = has(b, 'cidr') ? parseCidr(checkCidr(b.cidr, 'cidr')) : null;
  if (requested && has(b, 'prefixlen')) {
    throw neutronErrors.badResourceRequest('subnets', 'cidr and prefixlen must not be supplied together');
  }
  if (requested && requested.version !== version) matchVersion(version, formatCidr(requested), 'cidr');
  if (poolId === null) {
    if (!requested) {
      throw neutronErrors.badResourceRequest('subnets', 'a subnetpool must be specified in the absence of a cidr');
    }
    return { cidr: requested, poolId };
  }
  const pool = showSubnetPool(ctx, poolId);
  if (pool.ip_version !== version) {
    throw neutronErrors.badResourceRequest(
      'subnets',
      `Cannot allocate IPv${version} subnet from IPv${pool.ip_version} subnet pool`,
    );
  }
  if (requested) {
    allocateSpecificSubnet(ctx, pool, requested);
    return { cidr: requested, poolId };
  }
  const prefixlen = has(b, 'prefixlen') ? toInteger(b.prefixlen, 'prefixlen') : pool.default_prefixlen;
  return { cidr: allocateAnySubnet(ctx, pool, prefixlen), poolId };
}

/** 400 InvalidInput when `cidr` overlaps another subnet of the same network. */
function checkNoOverlap(ctx: StoreContext, networkId: string, cidr: Cidr): void {
  for (const row of ctx.db.all('SELECT cidr FROM subnets WHERE network_id = ?', [networkId])) {
    if (cidrsOverlap(parseCidr(String(row.cidr)), cidr)) {
      throw neutronErrors.invalidInput(
        `Requested subnet with cidr: ${formatCidr(cidr)} for network: ${networkId} overlaps with another subnet`,
      );
    }
  }
}

/** Create one subnet of a (bulk) request; the caller's transaction makes the bulk atomic. */
export function createSubnet(ctx: StoreContext, body: SubnetCreate): Subnet {
  const b = asBody(body, 'subnets');
  checkAttributes(b, CREATABLE);
  const version = toInteger(required(b, 'ip_version'), 'ip_version');
  if (version !== 4 && version !== 6)
    throw neutronErrors.invalidAttribute('ip_version', `'${version}' is not in [4, 6]`);
  const networkId = requireExists(ctx, 'networks', required(b, 'network_id'));
  const { cidr, poolId } = resolveCidr(ctx, b, version);
  const cidrText = formatCidr(cidr);
  checkNoOverlap(ctx, networkId, cidr);
  const gateway = has(b, 'gateway_ip') ? checkGateway(cidr, b.gateway_ip) : defaultGateway(cidr, has(b, 'cidr'));
  let pools: AllocationPool[];
  if (has(b, 'allocation_pools')) {
    pools = validateAllocationPools(cidr, cidrText, b.allocation_pools);
    checkGatewayOutsidePools(gateway, pools);
  } else {
    pools = defaultAllocationPools(cidr, gateway);
  }
  const id = newId();
  const now = timestamp();
  ctx.db.run(
    `INSERT INTO subnets (id, project_id, network_id, subnetpool_id, name, description, ip_version, cidr, gateway_ip,
       enable_dhcp, allocation_pools, host_routes, dns_nameservers, ipv6_address_mode, ipv6_ra_mode,
       created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      id,
      optString(b, 'project_id') ?? optString(b, 'tenant_id') ?? ctx.projectId,
      networkId,
      poolId,
      optString(b, 'name') ?? '',
      optString(b, 'description') ?? '',
      version,
      cidrText,
      gateway,
      (optBoolean(b, 'enable_dhcp') ?? true) ? 1 : 0,
      JSON.stringify(pools),
      JSON.stringify(has(b, 'host_routes') ? checkHostRoutes(version, b.host_routes) : []),
      JSON.stringify(has(b, 'dns_nameservers') ? checkNameservers(version, b.dns_nameservers) : []),
      optIpv6Mode(b, 'ipv6_address_mode', version),
      optIpv6Mode(b, 'ipv6_ra_mode', version),
      now,
      now,
    ],
  );
  return showSubnet(ctx, id);
}

/**
 * `PUT /v2.0/subnets/<id>`. Existing allocations stay valid: addresses outside new pools are kept (as
 * explicitly requested addresses are), and the gateway cannot move onto an address a port holds (409).
 */
export function updateSubnet(ctx: StoreContext, id: string, body: SubnetUpdate): Subnet {
  const b = asBody(body, 'subnets');
  checkAttributes(b, UPDATABLE);
  const subnet = showSubnet(ctx, id);
  const cidr = parseCidr(subnet.cidr);
  const gateway = has(b, 'gateway_ip') ? checkGateway(cidr, b.gateway_ip) : subnet.gateway_ip;
  const pools = has(b, 'allocation_pools')
    ? validateAllocationPools(cidr, subnet.cidr, b.allocation_pools)
    : subnet.allocation_pools;
  if (has(b, 'gateway_ip') || has(b, 'allocation_pools')) checkGatewayOutsidePools(gateway, pools);
  if (has(b, 'gateway_ip') && gateway !== null && gateway !== subnet.gateway_ip) {
    const holder = ctx.db.get('SELECT port_id FROM ip_allocations WHERE subnet_id = ? AND ip_address = ?', [
      id,
      gateway,
    ]);
    if (holder) throw neutronErrors.gatewayIpInUse(gateway, String(holder.port_id));
  }
  new Assignments()
    .set('name', optString(b, 'name'))
    .set('description', optString(b, 'description'))
    .set('gateway_ip', has(b, 'gateway_ip') ? gateway : undefined)
    .set('enable_dhcp', optBoolean(b, 'enable_dhcp'))
    .set('allocation_pools', has(b, 'allocation_pools') ? JSON.stringify(pools) : undefined)
    .set(
      'host_routes',
      has(b, 'host_routes') ? JSON.stringify(checkHostRoutes(subnet.ip_version, b.host_routes)) : undefined,
    )
    .set(
      'dns_nameservers',
      has(b, 'dns_nameservers') ? JSON.stringify(checkNameservers(subnet.ip_version, b.dns_nameservers)) : undefined,
    )
    .apply(ctx, 'subnets', id);
  touch(ctx, 'subnets', id);
  return showSubnet(ctx, id);
}

/**
 * `DELETE /v2.0/subnets/<id>`: 409 SubnetInUse while non-network-owned ports hold addresses in it.
 * Network-owned ports lose their address here; those left without any address are deleted.
 */
export function deleteSubnet(ctx: StoreContext, id: string): void {
  showSubnet(ctx, id);
  const owners = ctx.db.all(
    `SELECT DISTINCT p.id, p.device_owner FROM ip_allocations a JOIN ports p ON p.id = a.port_id WHERE a.subnet_id = ?`,
    [id],
  );
  if (owners.some((o) => !String(o.device_owner).startsWith(NETWORK_OWNER_PREFIX))) {
    throw neutronErrors.subnetInUse(id);
  }
  ctx.db.run('DELETE FROM ip_allocations WHERE subnet_id = ?', [id]);
  for (const o of owners) {
    const portId = String(o.id);
    if (ctx.db.get('SELECT 1 FROM ip_allocations WHERE port_id = ?', [portId])) touch(ctx, 'ports', portId);
    else ctx.db.run('DELETE FROM ports WHERE id = ?', [portId]);
  }
  ctx.db.run('DELETE FROM subnets WHERE id = ?', [id]);
}
