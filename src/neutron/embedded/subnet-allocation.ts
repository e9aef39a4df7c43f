/**
 * Subnet allocation from subnet pools (`subnet_allocation`): prefix lists compacted like Neutron's
 * `SubnetPoolReader`, prefix-length bounds, and choosing or checking a CIDR against what the pool already
 * handed out (every subnet whose `subnetpool_id` is the pool).
 */
import { neutronErrors } from '../errors.ts';
import type { SubnetPool } from '../types.ts';
import {
  type Cidr,
  cidrContains,
  cidrsOverlap,
  firstFreeBlock,
  formatCidr,
  lastAddress,
  parseCidr,
} from '../../util/ip.ts';
import type { StoreContext } from './context.ts';

/** Neutron's defaults per IP version: `min_prefixlen` 8 / 64, `max_prefixlen` 32 / 128. */
export const PREFIX_DEFAULTS = { 4: { min: 8, max: 32 }, 6: { min: 64, max: 128 } } as const;

/**
 * Normalise, sort and merge prefixes: contained prefixes disappear, aligned neighbours of equal size merge
 * (`10.0.0.0/25` + `10.0.0.128/25` → `10.0.0.0/24`), as Neutron's IPSet compaction does.
 */
export function compactPrefixes(prefixes: readonly Cidr[]): Cidr[] {
  let list = [...prefixes].sort((a, b) =>
    a.network === b.network ? a.prefixLength - b.prefixLength : a.network < b.network ? -1 : 1,
  );
  let changed = true;
  while (changed) {
    changed = false;
    const out: Cidr[] = [];
    for (const c of list) {
      const prev = out[out.length - 1];
      if (prev && cidrContains(prev, c)) continue;
      if (prev && prev.prefixLength === c.prefixLength && prev.prefixLength > 0) {
        const parent: Cidr = { version: c.version, network: prev.network, prefixLength: c.prefixLength - 1 };
        const parentMasked = parseCidr(formatCidr(parent));
        if (parentMasked.network === prev.network && lastAddress(prev) + 1n === c.network) {
          out[out.length - 1] = parentMasked;
          changed = true;
          continue;
        }
      }
      out.push(c);
    }
    list = out;
  }
  return list;
}

/** CIDRs already allocated from a pool (its subnets). */
function allocatedFrom(ctx: StoreContext, poolId: string): Cidr[] {
  return ctx.db.all('SELECT cidr FROM subnets WHERE subnetpool_id = ?', [poolId]).map((r) => parseCidr(String(r.cidr)));
}

function checkPrefixLength(pool: SubnetPool, prefixlen: number): void {
  if (prefixlen > pool.max_prefixlen) throw neutronErrors.maxPrefixSubnetAllocationError(prefixlen, pool.max_prefixlen);
  if (prefixlen < pool.min_prefixlen) throw neutronErrors.minPrefixSubnetAllocationError(prefixlen, pool.min_prefixlen);
}

/**
 * Check a requested CIDR against the pool: 400 for a prefix length outside min/max, 409
 * SubnetAllocationError when it is not inside the pool's prefixes or overlaps a subnet already allocated
 * from the pool.
 */
export function allocateSpecificSubnet(ctx: StoreContext, pool: SubnetPool, cidr: Cidr): void {
  checkPrefixLength(pool, cidr.prefixLength);
  const inside = pool.prefixes.some((p) => cidrContains(parseCidr(p), cidr));
  const taken = allocatedFrom(ctx, pool.id).some((used) => cidrsOverlap(used, cidr));
  if (!inside || taken) {
    throw neutronErrors.subnetAllocationError('Cannot allocate requested subnet from the available set of prefixes');
  }
}

/**
 * Choose a free block of `prefixlen` from the pool: the first free one, prefix by prefix (Neutron picks the
 * smallest free block that fits; clients must not depend on which block they get). 409 when none is free.
 */
export function allocateAnySubnet(ctx: StoreContext, pool: SubnetPool, prefixlen: number): Cidr {
  checkPrefixLength(pool, prefixlen);
  const used = allocatedFrom(ctx, pool.id);
  for (const prefix of pool.prefixes) {
    const block = firstFreeBlock(parseCidr(prefix), prefixlen, used);
    if (block) return block;
  }
  throw neutronErrors.subnetAllocationError(`Insufficient prefix space to allocate subnet size /${prefixlen}`);
}
