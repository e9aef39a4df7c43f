/**
 * Port address management like Neutron's reference IPAM: resolve a `fixed_ips` request (subnet only, address
 * only, or both) against the network's subnets, reuse what a port already holds on update, and pick free
 * addresses pseudo-randomly among the first free ones of the allocation pools (never the gateway).
 */
import { randomInt } from '../../util/random.ts';
import { neutronErrors } from '../errors.ts';
import type { FixedIp } from '../types.ts';
import { bigIntToIp, type Cidr, ipToBigInt, parseCidr } from '../../util/ip.ts';
import { type AddressRange, isValidHostIp, poolRanges } from './allocation-pools.ts';
import type { StoreContext } from './context.ts';
import type { AllocationPool } from '../types.ts';
import { checkArray, checkIp, checkObject } from './validate.ts';

/** Neutron's reference IPAM picks at random among this many free addresses (its `MAX_WIN`). */
const RANDOM_WINDOW = 1000;
/** Neutron's `max_fixed_ips_per_port` default. */
const MAX_FIXED_IPS_PER_PORT = 5;

/** What address allocation needs to know about a subnet. */
interface SubnetInfo {
  id: string;
  version: 4 | 6;
  cidr: Cidr;
  gateway: string | null;
  pools: AddressRange[];
}

/** The subnets of a network, in creation order. */
function networkSubnets(ctx: StoreContext, networkId: string): SubnetInfo[] {
  return ctx.db
    .all('SELECT id, ip_version, cidr, gateway_ip, allocation_pools FROM subnets WHERE network_id = ? ORDER BY rowid', [
      networkId,
    ])
    .map((r) => ({
      id: String(r.id),
      version: Number(r.ip_version) === 6 ? 6 : 4,
      cidr: parseCidr(String(r.cidr)),
      gateway: r.gateway_ip === null ? null : String(r.gateway_ip),
      pools: poolRanges(JSON.parse(String(r.allocation_pools)) as AllocationPool[]),
    }));
}

/** The k-th (0-based) free address of `range`, given the taken addresses inside it in ascending order. */
function nthFree(range: AddressRange, takenSorted: readonly bigint[], k: bigint): bigint {
  let candidate = range.start + k;
  for (const t of takenSorted) {
    if (t <= candidate) candidate++;
    else break;
  }
  return candidate;
}

/** A free address of the subnet's pools, or null when they are exhausted. `reserved` counts as taken. */
function pickAddress(ctx: StoreContext, subnet: SubnetInfo, reserved: ReadonlySet<string>): string | null {
  const taken = new Set<bigint>();
  for (const r of ctx.db.all('SELECT ip_address FROM ip_allocations WHERE subnet_id = ?', [subnet.id])) {
    taken.add(ipToBigInt(String(r.ip_address)));
  }
  for (const ip of reserved) taken.add(ipToBigInt(ip));
  if (subnet.gateway !== null) taken.add(ipToBigInt(subnet.gateway));
  const sorted = [...taken].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const range of subnet.pools) {
    const inside = sorted.filter((n) => n >= range.start && n <= range.end);
    const free = range.end - range.start + 1n - BigInt(inside.length);
    if (free <= 0n) continue;
    const window = free < BigInt(RANDOM_WINDOW) ? Number(free) : RANDOM_WINDOW;
    return bigIntToIp(nthFree(range, inside, BigInt(randomInt(window))), subnet.version);
  }
  return null;
}

interface ParsedRequest {
  subnet: SubnetInfo;
  ip: string | null;
}

function parseRequests(ctx: StoreContext, networkId: string, value: unknown, subnets: SubnetInfo[]): ParsedRequest[] {
  const items = checkArray(value, 'fixed_ips');
  if (items.length > MAX_FIXED_IPS_PER_PORT)
    throw neutronErrors.invalidInput('Exceeded maximum amount of fixed ips per port');
  if (items.length > 0 && subnets.length === 0)
    throw neutronErrors.invalidInput('IP allocation requires subnets for network');
  return items.map((item) => {
    const obj = checkObject(item, 'fixed_ips');
    const ip = obj.ip_address === undefined ? null : checkIp(obj.ip_address, 'fixed_ips');
    if (obj.subnet_id !== undefined) {
      const subnetId = String(obj.subnet_id);
      const subnet = subnets.find((s) => s.id === subnetId);
      if (!subnet) {
        if (!ctx.db.get('SELECT 1 FROM subnets WHERE id = ?', [subnetId])) throw neutronErrors.subnetNotFound(subnetId);
        throw neutronErrors.invalidInput(
          `Failed to create port on network ${networkId}, because fixed_ips included invalid subnet ${subnetId}`,
        );
      }
      if (ip !== null && !isValidHostIp(subnet.cidr, ip)) throw neutronErrors.invalidIpForSubnet(ip);
      return { subnet, ip };
    }
    if (ip === null) throw neutronErrors.invalidInput('IP allocation requires subnet_id or ip_address');
    const subnet = subnets.find((s) => isValidHostIp(s.cidr, ip));
    if (!subnet) throw neutronErrors.invalidIpForNetwork(ip);
    return { subnet, ip };
  });
}

/** The outcome of resolving a port's `fixed_ips`: what to add to / remove from the allocation table. */
export interface FixedIpPlan {
  add: FixedIp[];
  remove: FixedIp[];
}

/**
 * Resolve a requested `fixed_ips` list (`undefined` on create: one address from the first IPv4 subnet with
 * room and one from the first IPv6 subnet with room) against the port's `current` addresses, as Neutron's
 * `_get_changed_ips_for_port` does: requested addresses the port holds are kept, a subnet-only entry reuses
 * the port's address in that subnet, the rest is allocated; unclaimed addresses are released.
 */
export function planFixedIps(
  ctx: StoreContext,
  networkId: string,
  requested: unknown,
  current: readonly FixedIp[] = [],
): FixedIpPlan {
  const subnets = networkSubnets(ctx, networkId);
  if (requested === undefined) return { add: defaultAddresses(ctx, networkId, subnets), remove: [] };
  const requests = parseRequests(ctx, networkId, requested, subnets);
  const unclaimed = [...current];
  const claim = (match: (f: FixedIp) => boolean): FixedIp | undefined => {
    const i = unclaimed.findIndex(match);
    return i < 0 ? undefined : unclaimed.splice(i, 1)[0];
  };
  const add: FixedIp[] = [];
  // Addresses taken by this request, per subnet (not yet in the table).
  const reserved = new Map<string, Set<string>>(subnets.map((sub) => [sub.id, new Set<string>()]));
  const reserve = (subnetId: string, ip: string) => {
    reserved.get(subnetId)?.add(ip);
    add.push({ subnet_id: subnetId, ip_address: ip });
  };
  // Explicit addresses first, so a random pick cannot take an address requested in the same call.
  for (const req of requests) {
    const ip = req.ip;
    if (ip === null || claim((f) => f.ip_address === ip)) continue;
    const holder = ctx.db.get('SELECT 1 FROM ip_allocations WHERE subnet_id = ? AND ip_address = ?', [
      req.subnet.id,
      ip,
    ]);
    if (holder || reserved.get(req.subnet.id)?.has(ip)) throw neutronErrors.ipAlreadyAllocated(ip, req.subnet.id);
    reserve(req.subnet.id, ip);
  }
  for (const req of requests) {
    if (req.ip !== null || claim((f) => f.subnet_id === req.subnet.id)) continue;
    const ip = pickAddress(ctx, req.subnet, reserved.get(req.subnet.id) ?? new Set());
    if (ip === null) throw neutronErrors.ipGenerationFailure(networkId);
    reserve(req.subnet.id, ip);
  }
  return { add, remove: unclaimed };
}

function defaultAddresses(ctx: StoreContext, networkId: string, subnets: readonly SubnetInfo[]): FixedIp[] {
  const out: FixedIp[] = [];
  for (const version of [4, 6] as const) {
    const family = subnets.filter((s) => s.version === version);
    if (family.length === 0) continue;
    let picked: FixedIp | null = null;
    for (const subnet of family) {
      const ip = pickAddress(ctx, subnet, new Set());
      if (ip !== null) {
        picked = { subnet_id: subnet.id, ip_address: ip };
        break;
      }
    }
    if (!picked) throw neutronErrors.ipGenerationFailure(networkId);
    out.push(picked);
  }
  return out;
}

/** Apply a plan to the allocation table for `portId` (releases first, then allocations). */
export function applyFixedIps(ctx: StoreContext, portId: string, plan: FixedIpPlan): void {
  for (const f of plan.remove) {
    ctx.db.run('DELETE FROM ip_allocations WHERE port_id = ? AND subnet_id = ? AND ip_address = ?', [
      portId,
      f.subnet_id,
      f.ip_address,
    ]);
  }
  for (const f of plan.add) {
    ctx.db.run('INSERT INTO ip_allocations (port_id, subnet_id, ip_address) VALUES (?, ?, ?)', [
      portId,
      f.subnet_id,
      f.ip_address,
    ]);
  }
}
