/**
 * The IPAM driver's pools (`RequestPool`, `ReleasePool`): a Docker pool is a Neutron subnet pool, or a block of
 * one (the PoolID carries which: pool-id.ts). Unlike the original kuryr-libnetwork IPAM driver,
 * deliberately:
 * - without `--subnet`, a free block of the default pool's `default_prefixlen` is handed out (the original hands
 *   out the whole default prefix and then fails), and the shared default pool is never deleted;
 * - `--ip-range` is carried in the PoolID and narrows the subnet's allocation pools (ipam-addresses.ts);
 * - ReleasePool never deletes a subnet: a failed `docker network create` cannot damage another network.
 */
import { EMBEDDED_GLOBAL_SCOPE_REFUSED } from '../config/scope.ts';
import { fail } from '../errors.ts';
import { isNotFound, isPoolInUse } from '../neutron/errors.ts';
import type { SubnetPool } from '../neutron/types.ts';
import type { RequestPoolRequest } from './requests.ts';
import { cidrContains, firstFreeBlock, formatCidr, type IpVersion, normalizeCidr, parseCidr } from '../util/ip.ts';
import { hostReservedCidrs, type RoutesAhead, readRoutesAhead, refuseHostRouteOverlap } from './embedded-subnets.ts';
import { faultPoint } from './faults.ts';
import { noteIpRange } from './ip-range-subnet.ts';
import { lockKeys } from './locks.ts';
import type { DriverRuntime } from './context.ts';
import { poolByName, poolFromOptions, single } from './lookup.ts';
import { familyOptions, parseNeutronOptions } from './options.ts';
import { decodePoolId, encodePoolId, type PoolRef } from './pool-id.ts';
import { isOwnPool } from './pools.ts';
import { releaseSwarmNetwork } from './swarm.ts';
import { poolName } from './tags.ts';

/** The request, typed by its schema (requests.ts). */
export type RequestPoolInput = RequestPoolRequest;

export interface RequestPoolResult {
  PoolID: string;
  Pool: string;
  Data: Record<string, string>;
}

/** `IpamDriver.RequestPool`. */
export async function requestPool(rt: DriverRuntime, req: RequestPoolInput): Promise<RequestPoolResult> {
  // The embedded backend serves one host (its plugin plays the agent): never a network shared by hosts.
  if (rt.agent !== undefined && rt.settings.capabilityScope === 'global')
    throw fail.invalid(EMBEDDED_GLOBAL_SCOPE_REFUSED);
  const version: IpVersion = req.V6 === true ? 6 : 4;
  const options = parseNeutronOptions(req.Options);
  const opts = familyOptions(options, version);
  const pool = req.Pool ?? '';
  const subPool = req.SubPool ?? '';
  if (subPool !== '' && pool === '') throw fail.invalid('SubPool (--ip-range) given without Pool (--subnet)');
  // Embedded backend: the host's routes, read while the store is asked (the block or the subnet must avoid them).
  const ahead = readRoutesAhead(rt, version);

  if (pool === '') {
    // Read afresh: the PoolID handed to Docker names the pool for the network's whole life.
    const shared = (await poolFromOptions(rt, opts, FRESH)) ?? (await defaultPool(rt, version));
    // Reserved: a block just chosen has no subnet yet (and the gateway request needs no lookup).
    const cidr = await allocateBlock(rt, shared, ahead);
    return reply({ poolId: shared.id, cidr });
  }

  const cidr = normalizeCidr(pool);
  const parsed = parseCidr(cidr);
  if (parsed.version !== version) throw fail.invalid(`Pool ${pool} is not an IPv${version} CIDR`);
  await refuseHostRouteOverlap(rt, cidr, ahead);
  let ipRange: string | undefined;
  if (subPool !== '') {
    ipRange = normalizeCidr(subPool);
    if (!cidrContains(parsed, parseCidr(ipRange)))
      throw fail.invalid(`ip-range ${subPool} is not inside subnet ${pool}`);
  }

  const userPool = await poolFromOptions(rt, opts, FRESH);
  if (userPool !== undefined) {
    if (!userPool.prefixes.some((p) => cidrContains(parseCidr(p), parsed))) {
      throw fail.conflict(
        `subnet ${cidr} is not inside subnet pool ${userPool.name || userPool.id} (${userPool.prefixes.join(', ')})`,
      );
    }
    if (options.shared !== undefined && options.shared !== userPool.shared) {
      throw fail.conflict(
        `There is already existing subnet pool with ${cidr} but with shared = ${userPool.shared} (requested ${options.shared})`,
      );
    }
    await rt.marks.markExistingPool(rt.neutron, userPool);
    noteIpRange(rt, userPool.id, cidr, ipRange);
    return reply({ poolId: userPool.id, cidr, ...(ipRange === undefined ? {} : { ipRange }) });
  }

  const own = await ownPoolFor(rt, cidr, await subnetIdFromOptions(rt, opts), options.shared ?? false);
  noteIpRange(rt, own.id, cidr, ipRange);
  return reply({ poolId: own.id, cidr, ...(ipRange === undefined ? {} : { ipRange }) });
}

/** RequestPool reads pools afresh: another process may have deleted or replaced what the cache holds. */
const FRESH = { fresh: true } as const;

function reply(ref: PoolRef): RequestPoolResult {
  return { PoolID: encodePoolId(ref), Pool: ref.cidr ?? '', Data: {} };
}

async function defaultPool(rt: DriverRuntime, version: IpVersion): Promise<SubnetPool> {
  const name = version === 4 ? rt.settings.defaultSubnetpoolV4 : rt.settings.defaultSubnetpoolV6;
  const pool = await poolByName(rt, name, undefined, FRESH);
  if (pool === undefined) {
    throw fail.notFound(
      `No subnetpools with {'name': '${name}'} is found: create the default IPv${version} subnet pool, or give --subnet`,
    );
  }
  return pool;
}

/** A free block of the pool's default prefix length, reserved until CreateNetwork makes a subnet of it. */
async function allocateBlock(rt: DriverRuntime, pool: SubnetPool, ahead?: RoutesAhead): Promise<string> {
  return rt.locks.run(`pool:${pool.id}`, async () => {
    const subnets = await rt.neutron.listSubnets({ subnetpool_id: pool.id, fields: ['id', 'cidr'] });
    const used = [...subnets.map((s) => s.cidr), ...rt.reservations.reserved(pool.id)].map(parseCidr);
    // Embedded backend: blocks over the host's own routes are skipped, as Docker's default pools do.
    used.push(...(await hostReservedCidrs(rt, parseCidr(pool.prefixes[0] ?? '0.0.0.0/0').version, ahead)));
    for (const prefix of pool.prefixes) {
      const block = firstFreeBlock(parseCidr(prefix), pool.default_prefixlen, used);
      if (block !== null) {
        const cidr = formatCidr(block);
        rt.reservations.reserve(pool.id, cidr);
        return cidr;
      }
    }
    throw fail.exhausted(
      `subnet pool ${pool.name || pool.id} (${pool.prefixes.join(', ')}) has no free /${pool.default_prefixlen} left`,
    );
  });
}

async function subnetIdFromOptions(
  rt: DriverRuntime,
  opts: { subnetId?: string; subnetName?: string },
): Promise<string | undefined> {
  if (opts.subnetId !== undefined || opts.subnetName === undefined) return opts.subnetId;
  const filter = { name: opts.subnetName };
  const subnet = single(await rt.neutron.listSubnets(filter), 'subnets', filter);
  if (subnet === undefined) throw fail.notFound(`The subnet doesn't exist for the name ${opts.subnetName}`);
  return subnet.id;
}

/**
 * Creates or reuses our pool `<prefix>-<cidr>`, tagged with the subnet ID when one was named (without tags on
 * pools the description names the subnet: marks.ts).
 */
async function ownPoolFor(rt: DriverRuntime, cidr: string, subnetId: string | undefined, shared: boolean) {
  const name = poolName(rt.settings.subnetpoolNamePrefix, cidr);
  // The same lock as ReleasePool and DeleteNetwork take before deleting a pool of this name.
  return rt.locks.run(lockKeys.poolName(name), async () => {
    const existing = await poolByName(rt, name, subnetId, FRESH);
    if (existing !== undefined) {
      rt.leases.take(existing.id);
      return existing;
    }
    const created = await rt.neutron.createSubnetPool({
      name,
      ...rt.marks.poolOfSubnetFields(subnetId),
      prefixes: [cidr],
      default_prefixlen: parseCidr(cidr).prefixLength,
      shared,
    });
    faultPoint('request-pool:after-create');
    // A pool just made has no subnet: the gateway request needs no lookup (CreateNetwork releases it).
    rt.reservations.reserve(created.id, cidr);
    if (subnetId !== undefined) {
      try {
        await rt.marks.tieNewPoolToSubnet(rt.neutron, created, subnetId);
      } catch (err) {
        await rt.neutron.deleteSubnetPool(created.id).catch(() => undefined);
        throw err;
      }
    }
    rt.leases.take(created.id);
    return created;
  });
}

/** `IpamDriver.ReleasePool`: deletes our pool only when no subnet uses it (DeleteNetwork handles the rest). */
export async function releasePool(rt: DriverRuntime, poolIdText: string): Promise<void> {
  const ref = decodePoolId(poolIdText);
  if (ref.cidr !== undefined) rt.reservations.release(ref.poolId, ref.cidr);
  // Swarm (global scope): the network the IPAM made for the pool goes once no port is left on it (swarm.ts).
  await releaseSwarmNetwork(rt, ref);
  let pool: SubnetPool;
  try {
    pool = await rt.neutron.showSubnetPool(ref.poolId);
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  if (!isOwnPool(rt.settings, pool)) {
    // The default pool (or another we only read) is left alone; a pool the user named only loses our mark.
    await rt.marks.releaseExistingPool(rt.neutron, pool);
    return;
  }
  rt.leases.release(pool.id);
  // Its subnet still there: DeleteNetwork removes both (usually from what the cache holds: no call).
  if (ref.cidr !== undefined && (await rt.neutron.listSubnets({ subnetpool_id: pool.id, cidr: ref.cidr })).length > 0) {
    return;
  }
  await deleteUnusedOwnPool(rt, pool);
}

/**
 * Deletes a pool of ours unless a subnet is allocated from it or a Docker network of this process holds a lease
 * on it, under the pool-name lock RequestPool takes (ReleasePool, DeleteNetwork). A pool gone already is fine.
 */
export async function deleteUnusedOwnPool(rt: DriverRuntime, pool: SubnetPool, now = Date.now()): Promise<void> {
  await rt.locks.run(lockKeys.poolName(pool.name), async () => {
    // Another Docker network may have been given the pool a moment ago and not have made its subnet yet.
    if (rt.leases.isHeld(pool.id, now)) return;
    // Neutron refuses while a subnet is allocated from it (`SubnetPoolInUse`): then it stays.
    await rt.neutron.deleteSubnetPool(pool.id).catch((err: unknown) => {
      if (!isNotFound(err) && !isPoolInUse(err)) throw err;
    });
  });
}
