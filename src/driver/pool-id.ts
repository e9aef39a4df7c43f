/**
 * Docker pool IDs. Docker hands the PoolID back in every IPAM call but never tells the network driver, so the
 * ID carries what the IPAM needs to find its subnet again without state: the Neutron subnet pool and the CIDR
 * allocated from it, plus the `--ip-range` when one was given.
 *
 *   `<pool uuid>@<cidr>`            e.g. `1f0c…@10.10.3.0/24`
 *   `<pool uuid>@<cidr>@<ip-range>` e.g. `1f0c…@10.0.0.0/24@10.0.0.128/25`
 *   `<pool uuid>`                   kuryr-libnetwork's form (networks created by the original), CIDR unknown
 */
import { fail } from '../errors.ts';
import { isUuid } from '../util/ids.ts';
import { cidrContains, isCidr, normalizeCidr, parseCidr } from '../util/ip.ts';

export interface PoolRef {
  /** Neutron subnet pool ID. */
  poolId: string;
  /** The Docker network's CIDR inside that pool; undefined for the original's bare-UUID IDs. */
  cidr?: string;
  /** `--ip-range`: addresses are handed out from this range only. */
  ipRange?: string;
}

/** Builds the PoolID for Docker. */
export function encodePoolId(ref: PoolRef): string {
  if (ref.cidr === undefined) return ref.poolId;
  return ref.ipRange === undefined ? `${ref.poolId}@${ref.cidr}` : `${ref.poolId}@${ref.cidr}@${ref.ipRange}`;
}

/** Parses a PoolID; a malformed one is a 400. */
export function decodePoolId(poolId: string): PoolRef {
  const [id = '', cidr, ipRange, ...rest] = poolId.split('@');
  const bad = () => fail.invalid(`PoolID ${JSON.stringify(poolId)} was not issued by this IPAM driver`);
  if (!isUuid(id) || rest.length > 0) throw bad();
  if (cidr === undefined) return { poolId: id };
  if (!isCidr(cidr) || normalizeCidr(cidr) !== cidr) throw bad();
  if (ipRange === undefined) return { poolId: id, cidr };
  if (!isCidr(ipRange) || normalizeCidr(ipRange) !== ipRange) throw bad();
  if (!cidrContains(parseCidr(cidr), parseCidr(ipRange))) throw bad();
  return { poolId: id, cidr, ipRange };
}
