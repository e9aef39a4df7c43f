/**
 * `--ip-range` on a pre-existing Neutron network. kuryr-libnetwork takes the ip-range as the subnet itself, so
 * `docker network create -o neutron.net.name=N --subnet 10.10.0.0/16 --ip-range 10.10.0.0/24` uses the
 * operator's `10.10.0.0/24` subnet of N. kuryr-ts maps the ip-range to allocation pools of a `/16` for the
 * networks it creates, but on a pre-existing network it uses the subnet equal to `--subnet` or, failing that,
 * to `--ip-range`, and refuses clearly when neither exists and another subnet overlaps.
 *
 * Docker hands the ip-range to RequestPool only (it is in the PoolID), not to CreateNetwork: RequestPool notes
 * it here for the CreateNetwork that follows within milliseconds. A note lost to a restart in between only
 * turns the adoption into the clear refusal below.
 */
import { fail } from '../errors.ts';
import type { Network, Subnet } from '../neutron/types.ts';
import { cidrsOverlap, normalizeCidr, parseCidr } from '../util/ip.ts';
import type { DriverRuntime } from './context.ts';

const noteKey = (poolId: string, cidr: string) => `${poolId} ${cidr}`;

/** RequestPool: the Docker pool `cidr` of `poolId` hands out addresses from `ipRange` only. */
export function noteIpRange(rt: DriverRuntime, poolId: string, cidr: string, ipRange: string | undefined): void {
  if (ipRange !== undefined) rt.ipRanges.set(noteKey(poolId, cidr), ipRange);
}

/** The ip-range RequestPool noted for this Docker pool, if any (kept for two minutes: `rt.ipRanges`). */
export function notedIpRange(rt: DriverRuntime, poolId: string, cidr: string): string | undefined {
  return rt.ipRanges.get(noteKey(poolId, cidr));
}

/**
 * The subnet of a pre-existing network that stands for the Docker pool `cidr`: the one of that CIDR, else the one
 * equal to the pool's ip-range; undefined when the network has neither and nothing overlaps (a subnet is then
 * created, as for any pre-existing network). A subnet overlapping `cidr` that is neither is a clear refusal
 * instead of Neutron's overlap error.
 */
export function existingSubnetFor(
  network: Network,
  present: readonly Subnet[],
  cidr: string,
  ipRange: string | undefined,
): Subnet | undefined {
  const equal = (c: string) => present.find((s) => normalizeCidr(s.cidr) === c);
  const found = equal(cidr) ?? (ipRange === undefined ? undefined : equal(ipRange));
  if (found !== undefined) return found;
  const overlapping = present.filter((s) => cidrsOverlap(parseCidr(s.cidr), parseCidr(cidr)));
  if (overlapping.length === 0) return undefined;
  const wanted = ipRange === undefined ? `subnet ${cidr}` : `subnet ${cidr} nor ${ipRange} (--subnet, --ip-range)`;
  throw fail.conflict(
    `Neutron network ${network.name || network.id} (${network.id}) has no ${wanted}, and its subnet${overlapping.length === 1 ? '' : 's'} ${overlapping.map((s) => s.cidr).join(', ')} overlap${overlapping.length === 1 ? 's' : ''} it: give --subnet, or --ip-range inside it, equal to an existing subnet (kuryr-ts uses the existing subnet equal to either)`,
  );
}
