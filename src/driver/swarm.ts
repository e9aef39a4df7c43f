/**
 * Swarm mode (`capability_scope = global`, docs/swarm.md). The Swarm MANAGER's allocator asks its plugin's IPAM
 * for every task's address (RequestPool, the gateway, then RequestAddress without a MAC) before any node has
 * called CreateNetwork; each node that gets a task then repeats RequestPool and the gateway on its own plugin,
 * calls CreateNetwork, asks for the manager's address again (with a MAC) and CreateEndpoint binds the port to
 * itself. So, in global scope only:
 * - the IPAM makes the Neutron network and subnet of a pool that has none ("Swarm network": named
 *   `kuryr-swarm-<cidr>`, its subnet's description marks it); a second host racing it loses at the subnet
 *   (Neutron allocates a CIDR once from a subnet pool), deletes its empty network and uses the winner's;
 * - CreateNetwork on each node adopts that network (tags or names it for the Docker network) instead of making one;
 * - the ports the IPAM makes on it are "Swarm addresses": unbound, named by no host (so no host's DeleteNetwork or
 *   `kuryr gc` takes them for its leftovers), counting who holds the address (the manager's allocation, and the
 *   node's own RequestAddress of it); ReleaseAddress counts down, unbinds the port while someone still holds the
 *   address, and deletes it at zero. CreateEndpoint binds it to the node as any IPAM port;
 * - DeleteNetwork keeps the Neutron network while Swarm addresses remain on it; ReleasePool removes a Swarm
 *   network with no port left, and the manager's next RequestAddress makes it again (the pool too, when the
 *   nodes' ReleasePool removed it).
 */
import { fail } from '../errors.ts';
import { ignoreNotFound, isConflict, isNotFound } from '../neutron/errors.ts';
import type { Network, Port, Subnet, SubnetPool } from '../neutron/types.ts';
import { firstHost, normalizeCidr, parseCidr } from '../util/ip.ts';
import type { DriverRuntime } from './context.ts';
import { deleteUnusedOwnPool } from './ipam-pools.ts';
import { lockKeys } from './locks.ts';
import { endpointHolding, releasePort } from './ipam-addresses.ts';
import { networkOfDocker, poolByName, subnetOfPool } from './lookup.ts';
import { networkDescription } from './network-description.ts';
import type { PoolRef } from './pool-id.ts';
import { isOwnPool } from './pools.ts';
import { DEVICE_OWNER, poolName, subnetName } from './tags.ts';

/** True when the IPAM stands on its own (Swarm): only with `capability_scope = global`. */
export function isSwarmCapable(rt: DriverRuntime): boolean {
  return rt.settings.capabilityScope === 'global' && rt.agent === undefined;
}

const SUBNET_MARK = 'kuryr-ts: Swarm subnet';

export function swarmNetworkName(cidr: string): string {
  return `kuryr-swarm-${cidr}`;
}

export function isSwarmSubnet(subnet: Pick<Subnet, 'description'>): boolean {
  return (subnet.description ?? '').startsWith(SUBNET_MARK);
}

/**
 * Who holds a Swarm address: `m:HOST` for the allocation of the manager on HOST (RequestAddress without a MAC),
 * `n:HOST` for the node HOST whose own RequestAddress asked for it (libnetwork always sends the MAC).
 */
export type SwarmHolder = `${'m' | 'n'}:${string}`;

const PORT_PREFIX = 'kuryr-ts Swarm address, held by';
const PORT = /^kuryr-ts Swarm address, held by((?: [mn]:[^ ]+)*)$/;

/** The description of a Swarm address's port: who holds the address (one entry per holder). */
export function swarmPortDescription(holders: readonly SwarmHolder[]): string {
  return [PORT_PREFIX, ...holders].join(' ');
}

/** A holder entry for this host (host IDs are written without spaces). */
export function swarmHolder(kind: 'm' | 'n', host: string): SwarmHolder {
  return `${kind}:${host.replace(/\s/g, '_')}`;
}

export function isSwarmPort(port: Pick<Port, 'description'>): boolean {
  return PORT.test(port.description ?? '');
}

function holdersOf(port: Pick<Port, 'description'>): SwarmHolder[] {
  const m = PORT.exec(port.description ?? '');
  return (m?.[1] ?? '').split(' ').filter((h): h is SwarmHolder => h !== '');
}

/**
 * The host a Swarm address belongs to as a leftover: the node whose RequestAddress took it, once no manager's
 * allocation holds it any more (the manager released it, the node never did: a crash). Undefined while the
 * manager's allocation stands (nobody's leftover: a task about to start, a VIP) or for other ports.
 */
export function soleSwarmHolder(port: Pick<Port, 'description'>): string | undefined {
  if (!isSwarmPort(port)) return undefined;
  const holders = holdersOf(port);
  if (holders.length === 0 || holders.some((h) => h.startsWith('m:'))) return undefined;
  const hosts = new Set(holders.map((h) => h.slice(2)));
  return hosts.size === 1 ? [...hosts][0] : undefined;
}

/** The gateway the manager's allocator asked for before the pool had a subnet (this process only). */
export function noteSwarmGateway(rt: DriverRuntime, ref: PoolRef & { cidr: string }, gateway: string): void {
  rt.swarmGateways.set(`${ref.poolId}@${ref.cidr}`, gateway);
}

/** The Swarm subnet of a pool's CIDR (also when the pool was made again under a new ID), or undefined. */
async function swarmSubnetByCidr(rt: DriverRuntime, cidr: string): Promise<Subnet | undefined> {
  const found = (await rt.neutron.fresh.listSubnets({ cidr })).filter(isSwarmSubnet);
  if (found.length > 1)
    throw fail.conflict(`Multiple Swarm subnets of ${cidr} exist: ${found.map((s) => s.id).join(', ')}`);
  return found[0];
}

/** The subnet of a pool: as lookup.ts finds it, else (global scope) the Swarm subnet of its CIDR. */
export async function subnetOfPoolOrSwarm(rt: DriverRuntime, ref: PoolRef): Promise<Subnet | undefined> {
  const subnet = await subnetOfPool(rt, ref);
  if (subnet !== undefined || !isSwarmCapable(rt) || ref.cidr === undefined) return subnet;
  return swarmSubnetByCidr(rt, normalizeCidr(ref.cidr));
}

/**
 * The Swarm network and subnet of a pool that has no subnet yet, made by the IPAM (the manager's allocator asks
 * for task addresses before any CreateNetwork). Under one lock per CIDR; another host racing it is told apart by
 * Neutron itself, which allocates a CIDR from a subnet pool once: the loser deletes its empty network.
 */
export async function ensureSwarmSubnet(rt: DriverRuntime, ref: PoolRef & { cidr: string }): Promise<Subnet> {
  return rt.locks.run(`swarm-subnet:${ref.cidr}`, async () => {
    const existing = await subnetOfPoolOrSwarm(rt, ref);
    if (existing !== undefined) return existing;
    const pool = await poolToAllocateFrom(rt, ref);
    const key = `${ref.poolId}@${ref.cidr}`;
    const gateway = rt.swarmGateways.get(key) ?? firstHost(parseCidr(ref.cidr));
    rt.swarmGateways.delete(key);
    const network = await rt.neutron.createNetwork({
      name: swarmNetworkName(ref.cidr),
      description: `kuryr-ts: Swarm network of ${ref.cidr}, made by the IPAM on ${rt.settings.hostId}`,
      admin_state_up: true,
      shared: false,
    });
    try {
      const [subnet] = await rt.neutron.createSubnets([
        {
          name: subnetName(ref.cidr),
          description: `${SUBNET_MARK} of pool ${pool.id}, made by the IPAM on ${rt.settings.hostId}`,
          network_id: network.id,
          ip_version: parseCidr(ref.cidr).version,
          cidr: ref.cidr,
          subnetpool_id: pool.id,
          enable_dhcp: rt.settings.enableDhcp,
          ...(gateway === null ? {} : { gateway_ip: gateway }),
        },
      ]);
      rt.reservations.release(ref.poolId, ref.cidr);
      rt.log.info({ network: network.id, cidr: ref.cidr }, 'Swarm: the IPAM made the network of a pool');
      return subnet!;
    } catch (err) {
      await rt.neutron.deleteNetwork(network.id).catch(ignoreNotFound);
      // Another host made it a moment ago: its subnet is the one.
      const winner = await swarmSubnetByCidr(rt, ref.cidr);
      if (winner !== undefined) return winner;
      throw err;
    }
  });
}

/** The pool of the reference; our `<prefix>-<cidr>` made again when the nodes' ReleasePool removed it. */
async function poolToAllocateFrom(rt: DriverRuntime, ref: PoolRef & { cidr: string }): Promise<SubnetPool> {
  try {
    return await rt.neutron.fresh.showSubnetPool(ref.poolId);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const name = poolName(rt.settings.subnetpoolNamePrefix, ref.cidr);
  return rt.locks.run(lockKeys.poolName(name), async () => {
    const again = await poolByName(rt, name, undefined, { fresh: true });
    if (again !== undefined) return again;
    return rt.neutron.createSubnetPool({
      name,
      prefixes: [ref.cidr],
      default_prefixlen: parseCidr(ref.cidr).prefixLength,
      shared: false,
    });
  });
}

/**
 * CreateNetwork of a node: the Swarm network the IPAM made for one of the network's pools, tagged (or named,
 * without tags) for the Docker network. Undefined when there is none (CreateNetwork makes the network as usual).
 */
export async function adoptSwarmNetwork(
  rt: DriverRuntime,
  dockerId: string,
  pools: readonly { poolId: string; cidr: string }[],
): Promise<Network | undefined> {
  if (!isSwarmCapable(rt)) return undefined;
  for (const ref of pools) {
    const subnet = await subnetOfPoolOrSwarm(rt, ref);
    if (subnet === undefined || !isSwarmSubnet(subnet)) continue;
    const network = await rt.neutron.fresh.showNetwork(subnet.network_id);
    const owner = rt.marks.dockerIdOfNetwork(network);
    if (owner === dockerId) return network;
    if (owner !== undefined) continue;
    const named = await rt.neutron.updateNetwork(network.id, {
      name: rt.marks.createdNetworkName(dockerId),
      description: networkDescription(dockerId, rt.settings),
    });
    rt.log.info({ network: network.id, docker: dockerId }, 'Swarm: CreateNetwork adopts the network the IPAM made');
    return rt.marks.markNetwork(rt.neutron, named, dockerId);
  }
  return undefined;
}

/**
 * A node's RequestAddress of the address the manager allocated: the unclaimed Swarm port holding it is taken
 * (one more holder). True when it was.
 */
export async function takeSwarmAddress(rt: DriverRuntime, port: Port): Promise<boolean> {
  // `port` was read afresh (ipam-addresses.ts asks Neutron itself who holds an address).
  if (!isSwarmPort(port) || port.device_id !== '' || port['binding:host_id'] !== '') return false;
  const holders = holdersOf(port);
  const mine = swarmHolder('n', rt.settings.hostId);
  // Once per node (a retried request): the description stays within Neutron's 255 characters.
  if (!holders.includes(mine)) {
    await rt.neutron.updatePort(port.id, { description: swarmPortDescription([...holders, mine]) });
  }
  return true;
}

/**
 * ReleaseAddress of a Swarm address: one holder of this host less. While an endpoint holds the address the call
 * is the manager's (a node releases after DeleteEndpoint): its allocation goes; otherwise this node's hold goes
 * first, else the manager's. With no holder left the port goes (`release`); before, it is unbound once no
 * endpoint holds it, so that it waits for the other holder as nobody's leftover.
 */
export async function releaseSwarmAddress(
  rt: DriverRuntime,
  listed: Port,
  heldByEndpoint: boolean,
  release: (port: Port) => Promise<void>,
): Promise<void> {
  // Read afresh: the other hosts change who holds it.
  let port: Port;
  try {
    port = await rt.neutron.fresh.showPort(listed.id);
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  const holders = holdersOf(port);
  const mine = (kind: 'm' | 'n') => holders.indexOf(swarmHolder(kind, rt.settings.hostId));
  const order: ('m' | 'n')[] = heldByEndpoint ? ['m', 'n'] : ['n', 'm'];
  const at = order.map(mine).find((i) => i >= 0) ?? (holders.length > 0 ? 0 : -1);
  const left = holders.filter((_, i) => i !== at);
  if (left.length === 0 && !heldByEndpoint) {
    await release(port);
    return;
  }
  const unclaim =
    !heldByEndpoint && (port.device_id !== '' || port['binding:host_id'] !== '')
      ? {
          device_id: '',
          device_owner: port.device_owner === DEVICE_OWNER ? '' : port.device_owner,
          'binding:host_id': '',
          ...rt.marks.unclaimChanges(),
        }
      : {};
  await rt.neutron.updatePort(port.id, { description: swarmPortDescription(left), ...unclaim });
  // The ended endpoint's marks go too (DeleteEndpoint leaves them to ReleaseAddress): the port waits for its
  // other holder as nobody's, so the manager's FreeNetwork or release can delete it.
  if (!heldByEndpoint) await rt.marks.unmarkEndpointPort(rt.neutron, port);
}

/** DeleteNetwork: true while Swarm addresses remain on the network (the manager still allocates them). */
export async function swarmAddressesRemain(rt: DriverRuntime, networkId: string): Promise<boolean> {
  if (!isSwarmCapable(rt)) return false;
  return (await rt.neutron.fresh.listPorts({ network_id: networkId })).some(isSwarmPort);
}

/**
 * ReleasePool: a Swarm network with no port left goes, with its subnet and (when it was made again under a new
 * ID) the pool it came from. A network that still has ports stays (the last holder's ReleasePool removes it).
 */
export async function releaseSwarmNetwork(rt: DriverRuntime, ref: PoolRef): Promise<void> {
  if (!isSwarmCapable(rt) || ref.cidr === undefined) return;
  rt.swarmGateways.delete(`${ref.poolId}@${ref.cidr}`);
  const subnet = await subnetOfPoolOrSwarm(rt, ref);
  if (subnet === undefined || !isSwarmSubnet(subnet)) return;
  const ports = await rt.neutron.fresh.listPorts({ network_id: subnet.network_id });
  if (ports.some((p) => !p.device_owner.startsWith('network:'))) return;
  try {
    await rt.neutron.deleteSubnet(subnet.id);
    await rt.neutron.deleteNetwork(subnet.network_id);
  } catch (err) {
    if (isNotFound(err)) return;
    if (isConflict(err)) return; // a port came meanwhile: the network stays for it
    throw err;
  }
  rt.log.info({ network: subnet.network_id, cidr: subnet.cidr }, 'Swarm: removed the network of a released pool');
  if (subnet.subnetpool_id !== null && subnet.subnetpool_id !== ref.poolId) {
    const pool = await rt.neutron.showSubnetPool(subnet.subnetpool_id).catch(() => undefined);
    if (pool !== undefined && isOwnPool(rt.settings, pool)) await deleteUnusedOwnPool(rt, pool);
  }
}

/**
 * `NetworkDriver.FreeNetwork`, on the Swarm manager once the network is removed from the swarm: every manager's
 * allocation on it is void. Swarm does not always release them first (Docker 20.10 leaves the nodes' load-balancer
 * addresses allocated when it no longer finds a node's attachment: "Failed to find network ... on node ..."), so
 * the manager's holds are dropped here: a port nobody else holds goes; one a node still holds goes with that
 * node's own ReleaseAddress. ReleasePool, next, removes the network once no port is left.
 */
export async function freeSwarmNetwork(rt: DriverRuntime, dockerId: string): Promise<void> {
  if (!isSwarmCapable(rt)) return;
  const network = await networkOfDocker(rt, dockerId, { fresh: true });
  if (network === undefined) return;
  const ports = (await rt.neutron.fresh.listPorts({ network_id: network.id })).filter(isSwarmPort);
  for (const port of ports) {
    const holders = holdersOf(port);
    const left = holders.filter((h) => !h.startsWith('m:'));
    if (left.length === holders.length) continue;
    await rt.locks.run(lockKeys.address(network.id, port.fixed_ips[0]?.ip_address ?? port.id), async () => {
      if (left.length === 0 && endpointHolding(rt, port) === undefined) {
        await releasePort(rt, port);
      } else {
        await rt.neutron.updatePort(port.id, { description: swarmPortDescription(left) }).catch(ignoreNotFound);
      }
    });
  }
  rt.log.info({ network: network.id, docker: dockerId }, "Swarm: FreeNetwork dropped the manager's allocations");
}
