/**
 * A subnet's allocation pools and gateway, validated as Neutron's IPAM backend does: pools inside the CIDR
 * (minus network and IPv4 broadcast address), not overlapping each other, and not containing the gateway.
 */
import { neutronErrors } from '../errors.ts';
import type { AllocationPool } from '../types.ts';
import { type Cidr, cidrContainsIp, ipToBigInt, ipVersion, lastAddress } from '../../util/ip.ts';
import { checkArray, checkIp, checkObject } from './validate.ts';

/** An inclusive address range. */
export interface AddressRange {
  start: bigint;
  end: bigint;
}

const show = (pool: AllocationPool) => `${pool.start}-${pool.end}`;

/** The ranges of stored (already valid) pools. */
export function poolRanges(pools: readonly AllocationPool[]): AddressRange[] {
  return pools.map((p) => ({ start: ipToBigInt(p.start), end: ipToBigInt(p.end) }));
}

/** Neutron's `check_subnet_ip`: inside the CIDR and neither its network nor (IPv4) broadcast address. */
export function isValidHostIp(cidr: Cidr, ip: string): boolean {
  if (!cidrContainsIp(cidr, ip)) return false;
  const n = ipToBigInt(ip);
  if (n === cidr.network) return false;
  return !(cidr.version === 4 && n === lastAddress(cidr));
}

/**
 * Neutron's `check_gateway_invalid_in_subnet`: an IPv4 gateway inside the CIDR may not be the network or
 * broadcast address; an IPv6 gateway may be the subnet-router anycast address (the network address).
 */
export function isInvalidGateway(cidr: Cidr, gateway: string): boolean {
  return cidr.version === 4 && cidrContainsIp(cidr, gateway) && !isValidHostIp(cidr, gateway);
}

/**
 * Parse and validate requested `allocation_pools` for `cidr`: 400 InvalidAllocationPool /
 * OutOfBoundsAllocationPool, 409 OverlappingAllocationPools. Returns them with normalised addresses.
 */
export function validateAllocationPools(cidr: Cidr, cidrText: string, value: unknown): AllocationPool[] {
  const pools: AllocationPool[] = [];
  for (const item of checkArray(value, 'allocation_pools')) {
    const obj = checkObject(item, 'allocation_pools');
    const pool = { start: checkIp(obj.start, 'allocation_pools'), end: checkIp(obj.end, 'allocation_pools') };
    if (ipVersion(pool.start) !== cidr.version || ipVersion(pool.end) !== cidr.version) {
      throw neutronErrors.invalidAllocationPool(show(pool));
    }
    if (ipToBigInt(pool.start) > ipToBigInt(pool.end)) throw neutronErrors.invalidAllocationPool(show(pool));
    pools.push(pool);
  }
  const first = cidr.network + 1n;
  const last = cidr.version === 4 ? lastAddress(cidr) - 1n : lastAddress(cidr);
  const ranges = poolRanges(pools);
  ranges.forEach((r, i) => {
    const pool = pools[i] as AllocationPool;
    if (r.start < first || r.end > last) throw neutronErrors.outOfBoundsAllocationPool(show(pool), cidrText);
    for (let j = 0; j < i; j++) {
      const other = ranges[j] as AddressRange;
      if (r.start <= other.end && other.start <= r.end) {
        throw neutronErrors.overlappingAllocationPools(show(pools[j] as AllocationPool), show(pool), cidrText);
      }
    }
  });
  return pools;
}

/** 409 GatewayConflictWithAllocationPools when the gateway lies inside one of the pools. */
export function checkGatewayOutsidePools(gateway: string | null, pools: readonly AllocationPool[]): void {
  if (gateway === null) return;
  const gw = ipToBigInt(gateway);
  for (const pool of pools) {
    if (ipVersion(pool.start) === ipVersion(gateway) && ipToBigInt(pool.start) <= gw && gw <= ipToBigInt(pool.end)) {
      throw neutronErrors.gatewayConflictWithAllocationPools(gateway, show(pool));
    }
  }
}
