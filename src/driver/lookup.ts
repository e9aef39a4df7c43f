/**
 * Finding our Neutron resources again from Docker IDs (by tags, or names without them; marks.ts) and from pool
 * references.
 * Each function is one Neutron call unless its comment says otherwise, often answered by the cache in front of
 * the Neutron API (neutron/caching.ts); `fresh` asks Neutron itself.
 */
import { fail } from '../errors.ts';
import type { ListFilter } from '../neutron/api.ts';
import type { Network, Port, Subnet, SubnetPool } from '../neutron/types.ts';
import type { DriverRuntime } from './context.ts';
import type { FamilyOptions } from './options.ts';
import type { PoolRef } from './pool-id.ts';

/** The only element, undefined for none, a conflict error for several. */
export function single<T>(items: readonly T[], what: string, filter: ListFilter): T | undefined {
  if (items.length > 1) {
    const params = Object.entries(filter)
      .filter(([k]) => k !== 'fields')
      .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`)
      .join(' ');
    throw fail.conflict(`Multiple Neutron ${what} exist for the params ${params}`);
  }
  return items[0];
}

/** The Neutron network of a Docker network (tags `kuryr.net.uuid.lh/uh`, or its name without tags). */
export async function networkOfDocker(
  rt: DriverRuntime,
  dockerNetworkId: string,
  opts: { fresh?: boolean } = {},
): Promise<Network | undefined> {
  const filter = rt.marks.networkFilter(dockerNetworkId);
  const api = opts.fresh ? rt.neutron.fresh : rt.neutron;
  return single(await api.listNetworks(filter), 'networks', filter);
}

/** Like networkOfDocker, but a missing network is a 404. */
export async function requireNetworkOfDocker(rt: DriverRuntime, dockerNetworkId: string): Promise<Network> {
  const network = await networkOfDocker(rt, dockerNetworkId);
  if (network === undefined) {
    throw fail.notFound(`Neutron net associated with Docker network ${dockerNetworkId} doesn't exist`);
  }
  return network;
}

/** The Neutron port of a Docker endpoint (tags `kuryr.net.uuid.lh/uh` of the endpoint ID, or its device ID). */
export async function portOfEndpoint(
  rt: DriverRuntime,
  endpointId: string,
  opts: { fresh?: boolean; maxAgeMs?: number } = {},
): Promise<Port | undefined> {
  const filter = rt.marks.endpointFilter(endpointId);
  const api = opts.fresh
    ? rt.neutron.fresh
    : opts.maxAgeMs !== undefined
      ? rt.neutron.recent(opts.maxAgeMs)
      : rt.neutron;
  return single(await api.listPorts(filter), 'ports', filter);
}

/** A subnet pool chosen by `neutron.pool.uuid` / `neutron.pool.name`; missing → 404. */
export async function poolFromOptions(
  rt: DriverRuntime,
  opts: FamilyOptions,
  read: { fresh?: boolean } = {},
): Promise<SubnetPool | undefined> {
  if (opts.poolId === undefined && opts.poolName === undefined) return undefined;
  const filter: ListFilter = opts.poolId !== undefined ? { id: opts.poolId } : { name: opts.poolName };
  const api = read.fresh ? rt.neutron.fresh : rt.neutron;
  const pool = single(await api.listSubnetPools(filter), 'subnetpools', filter);
  if (pool === undefined) {
    throw fail.notFound(`Specified subnetpool id/name(${opts.poolId ?? opts.poolName}) does not exist.`);
  }
  return pool;
}

/**
 * A subnet pool by name (one call); several with that name → conflict. With `subnetId`, the pool of that name made
 * for that subnet: tagged with its ID, or without tags on pools, naming it in its description.
 */
export async function poolByName(
  rt: DriverRuntime,
  name: string,
  subnetId?: string,
  read: { fresh?: boolean } = {},
): Promise<SubnetPool | undefined> {
  const api = read.fresh ? rt.neutron.fresh : rt.neutron;
  if (subnetId === undefined) return single(await api.listSubnetPools({ name }), 'subnetspool', { name });
  const { filter, matches, params } = rt.marks.poolOfSubnetQuery(name, subnetId);
  return single((await api.listSubnetPools(filter)).filter(matches), 'subnetspool', params);
}

/**
 * The subnet a Docker pool stands for: allocated from the pool with the pool's CIDR, or else an existing
 * subnet of that CIDR that CreateNetwork tagged with the pool ID (one or two calls).
 */
export async function subnetOfPool(rt: DriverRuntime, ref: PoolRef): Promise<Subnet | undefined> {
  // A block or pool RequestPool has just handed out: CreateNetwork has not made its subnet yet.
  if (ref.cidr !== undefined && rt.reservations.isReserved(ref.poolId, ref.cidr)) return undefined;
  // DeleteNetwork has just deleted this pool's subnet: a release after it has nothing to look up (context.ts).
  if (ref.cidr !== undefined && rt.deletedSubnets.has(`${ref.poolId}@${ref.cidr}`)) return undefined;
  return lookupSubnetOfPool(rt, ref);
}

async function lookupSubnetOfPool(rt: DriverRuntime, ref: PoolRef): Promise<Subnet | undefined> {
  const fromPool: ListFilter = { subnetpool_id: ref.poolId, cidr: ref.cidr };
  const found = single(await rt.neutron.listSubnets(fromPool), 'subnets', fromPool);
  if (found !== undefined || ref.cidr === undefined) return found;
  // A pre-existing network's subnet may be the ip-range rather than the pool's CIDR (ip-range-subnet.ts).
  for (const cidr of ref.ipRange === undefined ? [ref.cidr] : [ref.cidr, ref.ipRange]) {
    const subnet = await existingSubnetOfPool(rt, ref.poolId, cidr);
    if (subnet !== undefined) return subnet;
  }
  return undefined;
}

/** A subnet of that CIDR that CreateNetwork tied to the pool (marks.ts). */
function existingSubnetOfPool(rt: DriverRuntime, poolId: string, cidr: string): Promise<Subnet | undefined> {
  return rt.marks.subnetTiedToPool(rt.neutron, poolId, cidr);
}
