/**
 * The IPAM driver's addresses (`RequestAddress`, `ReleaseAddress`): a Docker address is held by a Neutron port.
 * Unlike the original kuryr-libnetwork IPAM driver, deliberately:
 * - without `--gateway`, the gateway is the subnet's first host, as Neutron would choose;
 * - one port per endpoint: the IPv6 address is added to the port that got the IPv4 address (same MAC);
 * - ports the IPAM made are deleted and taken-over ports handed back, with tags or without (marks.ts).
 */
import { fail } from '../errors.ts';
import { ignoreNotFound, isNotFound, NeutronError } from '../neutron/errors.ts';
import type { Port, Subnet, SubnetPool } from '../neutron/types.ts';
import type { ReleaseAddressRequest, RequestAddressRequest } from './requests.ts';
import { cidrContainsIp, firstHost, isMac, normalizeCidr, normalizeIp, parseCidr } from '../util/ip.ts';
import { rangeAllocationPools, samePools } from './address-range.ts';
import { deleteExposedGroups, exposedGroupsOf } from './connectivity.ts';
import { faultPoint } from './faults.ts';
import { ipamPortDescription } from './hosts.ts';
import { lockKeys } from './locks.ts';
import { isDockerId } from '../util/ids.ts';
import type { DriverRuntime } from './context.ts';
import { decodePoolId, type PoolRef } from './pool-id.ts';
import {
  ensureSwarmSubnet,
  isSwarmCapable,
  isSwarmPort,
  isSwarmSubnet,
  noteSwarmGateway,
  releaseSwarmAddress,
  subnetOfPoolOrSwarm,
  swarmHolder,
  swarmPortDescription,
  takeSwarmAddress,
} from './swarm.ts';
import { isIdTag, PORT_EXISTING_TAG, UNBOUND_PORT_NAME, withTags } from './tags.ts';

export const GATEWAY_REQUEST = 'com.docker.network.gateway';
export const MAC_OPTION = 'com.docker.network.endpoint.macaddress';

/** The request, typed by its schema (requests.ts). */
export type RequestAddressInput = RequestAddressRequest;

/** `IpamDriver.RequestAddress`: the gateway (no Neutron resource), or an address held by a Neutron port. */
export async function requestAddress(
  rt: DriverRuntime,
  req: RequestAddressInput,
): Promise<{ Address: string; Data: Record<string, string> }> {
  const ref = await withCidr(rt, decodePoolId(req.PoolID));
  const cidr = parseCidr(ref.cidr);
  const options = req.Options ?? {};
  const address = req.Address ? normalizeIp(req.Address) : undefined;
  if (address !== undefined && !cidrContainsIp(cidr, address)) {
    throw fail.invalid(`address ${address} is not in the network's subnet ${ref.cidr}`);
  }
  const withPrefix = (ip: string) => ({ Address: `${ip}/${cidr.prefixLength}`, Data: {} });
  const found = await subnetOfPoolOrSwarm(rt, ref);

  if (options.RequestAddressType === GATEWAY_REQUEST) {
    const gateway = gatewayFor(ref.cidr, found, address);
    // Swarm: the manager's IPAM makes the subnet later, with the gateway Docker was given (swarm.ts).
    if (found === undefined && isSwarmCapable(rt)) noteSwarmGateway(rt, ref, gateway);
    return withPrefix(gateway);
  }
  let subnet = found;
  if (subnet === undefined) {
    // An --aux-address during network creation: Docker reserves it itself; there is no subnet yet.
    if (address !== undefined && options[MAC_OPTION] === undefined) return withPrefix(address);
    // Swarm: the manager's allocator asks for task addresses before any node's CreateNetwork (swarm.ts).
    if (!isSwarmCapable(rt)) throw fail.notFound(`Subnet with pool ${req.PoolID} does not exist.`);
    subnet = await ensureSwarmSubnet(rt, ref);
  }
  if (ref.ipRange !== undefined) await applyIpRange(rt, subnet, ref.ipRange);
  const mac = macOption(options);
  const inSubnet = subnet;
  const request = () => portAddress(rt, inSubnet, address, mac, endpointName(options));
  // A requested address is decided under its lock, which ReleaseAddress takes too: a release running alongside
  // never undoes what this request is given.
  const ip =
    address === undefined
      ? await request()
      : await rt.locks.run(lockKeys.address(inSubnet.network_id, address), request);
  return withPrefix(ip);
}

/** The gateway reply: the subnet's gateway, else the requested or first host address (Neutron's default). */
function gatewayFor(cidr: string, subnet: Subnet | undefined, requested: string | undefined): string {
  if (subnet !== undefined) {
    const gw = subnet.gateway_ip === null ? null : normalizeIp(subnet.gateway_ip);
    if (requested !== undefined && gw !== null && gw !== requested) {
      throw fail.conflict(`Requested gateway ${requested} does not match with gateway ${gw} in existed network.`);
    }
    const chosen = requested ?? gw;
    if (chosen !== null) return chosen;
  }
  const chosen = requested ?? firstHost(parseCidr(cidr));
  if (chosen === null) throw fail.invalid(`subnet ${cidr} is too small to have a gateway address`);
  return chosen;
}

/** The container name newer engines (29+) send with an endpoint's address request. */
export const ENDPOINT_NAME_OPTION = 'com.docker.network.endpoint.name';

function endpointName(options: Readonly<Record<string, string>>): string | undefined {
  const name = options[ENDPOINT_NAME_OPTION];
  if (name === undefined || name === '') return undefined;
  return name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 128);
}

function macOption(options: Readonly<Record<string, string>>): string | undefined {
  const mac = options[MAC_OPTION];
  if (mac === undefined || mac === '') return undefined;
  if (!isMac(mac)) throw fail.invalid(`${MAC_OPTION} ${JSON.stringify(mac)} is not a MAC address`);
  return mac.toLowerCase();
}

/** Resolves the CIDR of the original's bare pool IDs (one call); ours carry it. */
async function withCidr(rt: DriverRuntime, ref: PoolRef): Promise<PoolRef & { cidr: string }> {
  if (ref.cidr !== undefined) return { ...ref, cidr: ref.cidr };
  let pool: SubnetPool;
  try {
    pool = await rt.neutron.showSubnetPool(ref.poolId);
  } catch (err) {
    if (isNotFound(err)) throw fail.notFound(`No subnetpools with {'id': '${ref.poolId}'} is found.`);
    throw err;
  }
  const first = pool.prefixes[0];
  if (first === undefined) throw fail.notFound(`subnet pool ${ref.poolId} has no prefixes`);
  return { ...ref, cidr: normalizeCidr(first) };
}

/** Narrows the subnet's allocation pools to the `--ip-range` (once; later calls see it done). */
async function applyIpRange(rt: DriverRuntime, subnet: Subnet, ipRange: string): Promise<void> {
  // A pre-existing subnet that is the ip-range itself (ip-range-subnet.ts): its allocation pools stay the operator's.
  if (normalizeCidr(subnet.cidr) === ipRange) return;
  const wanted = rangeAllocationPools(parseCidr(subnet.cidr), parseCidr(ipRange), subnet.gateway_ip);
  if (samePools(wanted, subnet.allocation_pools)) return;
  await rt.locks.run(`subnet:${subnet.id}`, async () => {
    const current = await rt.neutron.showSubnet(subnet.id);
    if (!samePools(wanted, current.allocation_pools)) {
      await rt.neutron.updateSubnet(subnet.id, { allocation_pools: wanted });
    }
  });
}

/**
 * The address for an endpoint: a retried request gets the same answer; the second family of a dual-stack
 * endpoint is added to the port of the first (same MAC); an unbound pre-existing port holding the requested
 * address is taken over (tag `kuryr.port.existing`); otherwise a new port `kuryr-unbound-port` is created.
 */
async function portAddress(
  rt: DriverRuntime,
  subnet: Subnet,
  address: string | undefined,
  mac: string | undefined,
  containerName?: string,
): Promise<string> {
  if (address !== undefined) {
    if (subnet.gateway_ip !== null && normalizeIp(subnet.gateway_ip) === address) {
      throw fail.conflict(`address ${address} is the gateway of subnet ${subnet.cidr}`);
    }
    // Asked of Neutron itself: who holds an address is decided by others too (containers, hosts, operators).
    const holders = await rt.neutron.fresh.listPorts({
      network_id: subnet.network_id,
      fixed_ips: [`subnet_id=${subnet.id}`, `ip_address=${address}`],
    });
    const holder = holders[0];
    if (holder !== undefined) {
      // A port an endpoint holds is never handed out again, whatever the MAC: Docker's rollback of the refused
      // container (ReleaseAddress) would otherwise remove the live one's port.
      const user = endpointHolding(rt, holder);
      if (user !== undefined) throw inUse(`address ${address}`, user, holder);
      // Swarm: a node asks for the address the manager's allocator was given (swarm.ts).
      if (await takeSwarmAddress(rt, holder)) return address;
      // Our own port with this MAC: a retried request. A pre-created port with Docker's MAC (`--mac-address`,
      // as an orchestrator passes both) is not ours yet and is taken over below.
      const ours = rt.marks.isOurPort(holder);
      if (ours && isUnclaimed(holder) && mac !== undefined && holder.mac_address.toLowerCase() === mac) return address;
      if (isFreeForTakeover(rt, holder)) {
        await takeOver(rt, holder);
        return address;
      }
      throw fail.conflict(`address ${address} is already in use by Neutron port ${holder.id}${describeOwner(holder)}`);
    }
  }
  // The common case first: a new port with Docker's MAC. It is tagged when CreateEndpoint claims it (one tag
  // update instead of two); until then its name and lack of tags mark it as ours (`isUntaggedLeftover`).
  const fixedIp = { subnet_id: subnet.id, ...(address === undefined ? {} : { ip_address: address }) };
  try {
    const created = await rt.neutron.createPort({
      name: UNBOUND_PORT_NAME,
      network_id: subnet.network_id,
      admin_state_up: true,
      ...(mac === undefined ? {} : { mac_address: mac }),
      // Names this host (only it releases the port before it is bound, hosts.ts) and, with newer engines, the
      // container; a Swarm address names no host's leftover and counts its holders (swarm.ts).
      description: isSwarmSubnet(subnet)
        ? swarmPortDescription([swarmHolder(mac === undefined ? 'm' : 'n', rt.settings.hostId)])
        : ipamPortDescription(rt.settings.hostId, containerName),
      fixed_ips: [fixedIp],
    });
    faultPoint('request-address:after-create-port');
    return addressIn(created, subnet);
  } catch (err) {
    if (mac === undefined || !(err instanceof NeutronError && err.type === 'MacAddressInUse')) throw err;
  }
  // Docker's MAC is already on this network: a retried request, the other family of a dual-stack endpoint, or
  // a live container's MAC repeated (`docker run --mac-address`), which is refused.
  const withMac = await rt.neutron.fresh.listPorts({ network_id: subnet.network_id, mac_address: mac });
  for (const p of withMac) {
    const user = endpointHolding(rt, p);
    if (user !== undefined) throw inUse(`MAC address ${mac}`, user, p);
  }
  const port = withMac.find((p) => isUnclaimed(p) && (rt.marks.isCreatedPort(p) || isFreeForTakeover(rt, p)));
  if (port === undefined) {
    const other = withMac[0];
    throw fail.conflict(
      `MAC address ${mac} is already used on this network by Neutron port ${other?.id ?? '?'}${other === undefined ? '' : describeOwner(other)}`,
    );
  }
  const held = port.fixed_ips.find((ip) => ip.subnet_id === subnet.id);
  if (held !== undefined) {
    if (address !== undefined && normalizeIp(held.ip_address) !== address) {
      throw fail.conflict(`the endpoint with MAC ${mac} already holds ${held.ip_address} in subnet ${subnet.cidr}`);
    }
    if (!rt.marks.isCreatedPort(port)) await takeOver(rt, port);
    return normalizeIp(held.ip_address);
  }
  const updated = await rt.neutron.updatePort(port.id, { fixed_ips: [...port.fixed_ips, fixedIp] });
  if (!rt.marks.isCreatedPort(updated)) await takeOver(rt, updated);
  return addressIn(updated, subnet);
}

/**
 * The Docker endpoint (or device) a port is held by, or undefined when no endpoint holds it. With tags an
 * endpoint holds a port while the port carries its ID tags, without tags while it is bound to a host with a
 * device; either way until DeleteEndpoint ends the endpoint (`rt.endedEndpoints`). A port of someone else that
 * is bound or has a device is held too.
 */
export function endpointHolding(rt: DriverRuntime, port: Port): string | undefined {
  if (hasEnded(rt, port)) return undefined;
  if (rt.marks.isOurPort(port)) return rt.marks.holderOfOurPort(port);
  if (port.device_id !== '' && !port.device_owner.startsWith('network:')) return port.device_id;
  return undefined;
}

/** A port of ours whose endpoint DeleteEndpoint has ended (unplugged, its marks left for ReleaseAddress). */
function hasEnded(rt: DriverRuntime, port: Port): boolean {
  if (!rt.marks.isOurPort(port)) return false;
  const endpoint = rt.marks.endpointIdOfPort(port) ?? port.device_id;
  return endpoint !== '' && rt.endedEndpoints.has(endpoint);
}

/** Still plugged on this host: it has an endpoint that DeleteEndpoint has not ended. */
function pluggedHere(rt: DriverRuntime, port: Port): boolean {
  return rt.marks.hasEndpoint(port) && !hasEnded(rt, port);
}

/** Neither bound to a host nor given to a device. */
function isUnclaimed(port: Port): boolean {
  return port.device_id === '' && port['binding:host_id'] === '';
}

function inUse(what: string, user: string, port: Port) {
  return fail.conflict(
    `${what} is already in use by endpoint ${user} (Neutron port ${port.id}${port['binding:host_id'] ? ` on host ${port['binding:host_id']}` : ''})`,
  );
}

function addressIn(port: Port, subnet: Subnet): string {
  const ip = port.fixed_ips.find((f) => f.subnet_id === subnet.id);
  if (ip === undefined) throw fail.conflict(`Neutron port ${port.id} got no address in subnet ${subnet.id}`);
  return normalizeIp(ip.ip_address);
}

/** Marks a pre-existing port as taken over, to be handed back by ReleaseAddress (marks.ts). */
function takeOver(rt: DriverRuntime, port: Port): Promise<void> {
  return rt.marks.markTakenOver(rt.neutron, port);
}

/** A pre-created port nobody uses: not ours, not network-owned, not bound to a host or device. */
function isFreeForTakeover(rt: DriverRuntime, port: Port): boolean {
  return (
    !rt.marks.isCreatedPort(port) &&
    !port.device_owner.startsWith('network:') &&
    port.device_id === '' &&
    port['binding:host_id'] === ''
  );
}

function describeOwner(port: Port): string {
  const parts = [
    port.device_owner && `owner ${port.device_owner}`,
    port.device_id && `device ${port.device_id}`,
  ].filter(Boolean);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

/** The request, typed by its schema (requests.ts). */
export type ReleaseAddressInput = ReleaseAddressRequest;

/**
 * `IpamDriver.ReleaseAddress`: deletes our port holding the address (unplugging it first if DeleteEndpoint
 * never ran), or hands a taken-over port back. Unknown addresses and vanished subnets are fine.
 */
export async function releaseAddress(rt: DriverRuntime, req: ReleaseAddressInput): Promise<void> {
  if (req.Address === '') return;
  const ref = await withCidr(rt, decodePoolId(req.PoolID));
  const address = normalizeIp(req.Address);
  const subnet = await subnetOfPoolOrSwarm(rt, ref);
  if (subnet === undefined) return;
  if (subnet.gateway_ip !== null && normalizeIp(subnet.gateway_ip) === address) return;
  await rt.locks.run(lockKeys.address(subnet.network_id, address), () => releaseHeldAddress(rt, subnet, address));
}

async function releaseHeldAddress(rt: DriverRuntime, subnet: Subnet, address: string): Promise<void> {
  // Bounded by the network and subnet of the request: never a port of another network.
  const ports = await rt.neutron.listPorts({
    network_id: subnet.network_id,
    fixed_ips: [`subnet_id=${subnet.id}`, `ip_address=${address}`],
  });
  for (const port of ports) {
    // Never the port of a live endpoint: DeleteEndpoint comes first; a port still held is left to it (or to
    // DeleteNetwork and `kuryr gc` when Docker forgot the endpoint).
    const user = endpointHolding(rt, port);
    if (isSwarmPort(port) && rt.marks.isCreatedPort(port)) {
      // Swarm: the manager and the node each release the address; the last one deletes the port (swarm.ts).
      await releaseSwarmAddress(rt, port, user !== undefined, (p) => releasePort(rt, p));
      continue;
    }
    if (user !== undefined) {
      rt.log.warn(
        { port: port.id, address, endpoint: user },
        'ReleaseAddress of an address an endpoint still holds: the port is left alone',
      );
      continue;
    }
    // The endpoint the port was given to (its device), so that a retried CreateEndpoint of it waits.
    if (isDockerId(port.device_id)) await rt.locks.run(lockKeys.endpoint(port.device_id), () => releasePort(rt, port));
    else await releasePort(rt, port);
  }
}

/**
 * Gives up one port: ours (`compute:kuryr`) is deleted, after unplugging its host side if DeleteEndpoint never
 * ran; a taken-over port is handed back; anything else is left alone.
 */
export async function releasePort(rt: DriverRuntime, port: Port): Promise<void> {
  if (rt.marks.isCreatedPort(port)) {
    // Still carrying endpoint marks and not ended means DeleteEndpoint never ran (e.g. a crash): unplug it too.
    if (pluggedHere(rt, port)) await rt.binder.unbind(port);
    const groups = await exposedGroupsOf(rt, port);
    faultPoint('release-address:before-delete-port');
    await rt.neutron.deletePort(port.id).catch(ignoreNotFound);
    await deleteExposedGroups(rt, groups);
  } else if (rt.marks.isTakenOverPort(port)) {
    await handBack(rt, port);
  }
}

/** Returns a taken-over port to its unbound state, as kuryr-libnetwork leaves it. */
export async function handBack(rt: DriverRuntime, port: Port): Promise<void> {
  if (pluggedHere(rt, port)) await rt.binder.unbind(port);
  const groups = await exposedGroupsOf(rt, port);
  const ours = new Set(groups.map((g) => g.id));
  await rt.neutron.updatePort(port.id, {
    device_owner: '',
    device_id: '',
    'binding:host_id': '',
    ...(groups.length > 0 ? { security_groups: port.security_groups.filter((id) => !ours.has(id)) } : {}),
  });
  await deleteExposedGroups(rt, groups);
  const marks = port.tags.filter((t) => t === PORT_EXISTING_TAG || isIdTag(t));
  if (marks.length > 0) await rt.neutron.replaceTags('ports', port.id, withTags(port.tags, [], marks));
}
