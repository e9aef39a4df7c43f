/**
 * Allocation pools for a subnet whose addresses must come from a narrower `--ip-range`.
 */
import type { AllocationPool } from '../neutron/types.ts';
import { bigIntToIp, type Cidr, ipToBigInt, lastAddress, normalizeIp } from '../util/ip.ts';

/**
 * The addresses of `range` usable as host addresses of `subnet` (not the network address, not the IPv4
 * broadcast), minus the gateway, as Neutron allocation pools.
 */
export function rangeAllocationPools(subnet: Cidr, range: Cidr, gatewayIp: string | null): AllocationPool[] {
  const lowest = subnet.network + 1n;
  const highest = subnet.version === 4 ? lastAddress(subnet) - 1n : lastAddress(subnet);
  const start = range.network > lowest ? range.network : lowest;
  const end = lastAddress(range) < highest ? lastAddress(range) : highest;
  if (end < start) return [];
  const gw = gatewayIp === null ? null : ipToBigInt(gatewayIp);
  const spans: [bigint, bigint][] = [];
  if (gw === null || gw < start || gw > end) spans.push([start, end]);
  else {
    if (gw > start) spans.push([start, gw - 1n]);
    if (gw < end) spans.push([gw + 1n, end]);
  }
  return spans.map(([s, e]) => ({ start: bigIntToIp(s, subnet.version), end: bigIntToIp(e, subnet.version) }));
}

/** True when the two pool lists cover the same ranges in the same order (addresses compared canonically). */
export function samePools(a: readonly AllocationPool[], b: readonly AllocationPool[]): boolean {
  return (
    a.length === b.length &&
    a.every(
      (p, i) => normalizeIp(p.start) === normalizeIp(b[i]!.start) && normalizeIp(p.end) === normalizeIp(b[i]!.end),
    )
  );
}
