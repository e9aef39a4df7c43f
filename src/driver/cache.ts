/**
 * What this process created or looked up, kept to save Neutron round trips (neutron-subset.md §15.3).
 * Never the only record: after a restart it is empty and every lookup goes to Neutron (by tags) again; an
 * entry is dropped as soon as its resource is deleted here. Used only for resources kuryr owns, or for reads
 * whose staleness is harmless; decisions about shared resources always read Neutron afresh.
 */
import type { Network, Port, Subnet, SubnetPool } from '../neutron/types.ts';

/** Key of a Docker pool's subnet: the subnet pool ID and the CIDR allocated from it. */
export function poolKey(poolId: string, cidr: string): string {
  return `${poolId}@${cidr}`;
}

/** Key of an address on a Neutron network. */
export function addressKey(networkId: string, ip: string): string {
  return `${networkId}/${ip}`;
}

export class DriverCache {
  /** Docker network ID → its Neutron network. */
  readonly networks = new Map<string, Network>();
  /** Neutron network ID → its subnets, as CreateNetwork left them. */
  readonly networkSubnets = new Map<string, Subnet[]>();
  /** `poolKey` → the subnet, or null when it is known not to exist yet (a pool RequestPool just made). */
  readonly subnetsByPool = new Map<string, Subnet | null>();
  readonly subnetsById = new Map<string, Subnet>();
  /** Subnet pools by ID and by name (pools kuryr created or looked up). */
  readonly pools = new Map<string, SubnetPool>();
  readonly poolsByName = new Map<string, SubnetPool>();
  /** Docker endpoint ID → its port. */
  readonly endpoints = new Map<string, Port>();
  /** `addressKey` → the port holding that address. */
  readonly addresses = new Map<string, Port>();

  rememberPool(pool: SubnetPool): void {
    this.pools.set(pool.id, pool);
    if (pool.name !== '') this.poolsByName.set(pool.name, pool);
  }

  forgetPool(poolId: string): void {
    const pool = this.pools.get(poolId);
    this.pools.delete(poolId);
    if (pool !== undefined && this.poolsByName.get(pool.name)?.id === poolId) this.poolsByName.delete(pool.name);
    for (const key of [...this.subnetsByPool.keys()]) if (key.startsWith(`${poolId}@`)) this.subnetsByPool.delete(key);
  }

  rememberSubnet(subnet: Subnet): void {
    this.subnetsById.set(subnet.id, subnet);
    if (subnet.subnetpool_id !== null) this.subnetsByPool.set(poolKey(subnet.subnetpool_id, subnet.cidr), subnet);
  }

  /** A port as last written by this process (under its endpoint and every address it holds). */
  rememberPort(port: Port, endpointId?: string): void {
    if (endpointId !== undefined) this.endpoints.set(endpointId, port);
    for (const ip of port.fixed_ips) this.addresses.set(addressKey(port.network_id, ip.ip_address), port);
  }

  forgetPort(port: Port): void {
    for (const [endpoint, p] of this.endpoints) if (p.id === port.id) this.endpoints.delete(endpoint);
    for (const [key, p] of this.addresses) if (p.id === port.id) this.addresses.delete(key);
  }

  /** Drops a deleted network, its subnets (those cached and those given) and the addresses on it. */
  forgetNetwork(dockerNetworkId: string, neutronNetworkId: string, subnets: readonly Subnet[] = []): void {
    this.networks.delete(dockerNetworkId);
    for (const subnet of [...(this.networkSubnets.get(neutronNetworkId) ?? []), ...subnets]) {
      this.subnetsById.delete(subnet.id);
      if (subnet.subnetpool_id !== null) this.subnetsByPool.delete(poolKey(subnet.subnetpool_id, subnet.cidr));
    }
    this.networkSubnets.delete(neutronNetworkId);
    // Also the entries keyed by a pool the subnet is only tagged with (a pre-existing subnet).
    for (const [key, subnet] of this.subnetsByPool)
      if (subnet?.network_id === neutronNetworkId) this.subnetsByPool.delete(key);
    for (const [key, p] of this.addresses) if (p.network_id === neutronNetworkId) this.addresses.delete(key);
    for (const [endpoint, p] of this.endpoints) if (p.network_id === neutronNetworkId) this.endpoints.delete(endpoint);
  }
}
