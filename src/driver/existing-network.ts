/**
 * Docker networks on pre-existing Neutron networks (`-o neutron.net.uuid` / `neutron.net.name`, the orchestrator
 * flow): such a network is shared (other Docker networks, other hosts), so it is never deleted. With tags, ours
 * come and go one by one; without them (marks.ts) the network is renamed to the Docker ID while it is used and
 * gets its name and description back afterwards.
 */
import { fail } from '../errors.ts';
import { ignoreNotFound } from '../neutron/errors.ts';
import type { Network, Port, Subnet } from '../neutron/types.ts';
import type { DriverRuntime, Undo } from './context.ts';
import { isOtherHostsPort, isPortOfHost } from './hosts.ts';
import { releasePort } from './ipam-addresses.ts';
import { networkOfDocker, single } from './lookup.ts';
import type { NeutronOptions } from './options.ts';
import { SUBNET_NAME_PREFIX } from './tags.ts';

/** The pre-existing network the options name, marked as used by Docker network `dockerId`. */
export async function useExistingNetwork(
  rt: DriverRuntime,
  dockerId: string,
  options: NeutronOptions,
  undo: Undo[],
): Promise<Network> {
  // The network already mapped to this Docker network (by tags, or by name without them): a retry.
  const mapped = await networkOfDocker(rt, dockerId, { fresh: true });
  const filter = options.netId !== undefined ? { id: options.netId } : { name: options.netName };
  // Without tags a network we adopted carries the Docker ID as its name: a retry (or another host) names it
  // by its former name or its ID.
  const adopted = mapped && rt.marks.adoptedNetwork(mapped, dockerId, { id: options.netId, name: options.netName });
  const existing = adopted ?? single(await rt.neutron.listNetworks(filter), 'networks', filter);
  if (existing === undefined) {
    throw fail.notFound(`Specified network id/name(${options.netId ?? options.netName}) does not exist.`);
  }
  if (mapped !== undefined && mapped.id !== existing.id) {
    throw fail.conflict(`Docker network ${dockerId} is already mapped to Neutron network ${mapped.id}`);
  }
  if (options.shared !== undefined && options.shared !== existing.shared) {
    throw fail.conflict(
      `Network ${existing.id} had option shared=${existing.shared}, conflict with the given option shared=${options.shared}`,
    );
  }
  return rt.marks.markExistingNetwork(rt.neutron, existing, dockerId, undo);
}

/**
 * A pre-existing network: our tags come off; this host's leftover ports and our subnets go only when no other
 * Docker network (another name, or another host's in local scope) still maps to this Neutron network. With
 * `capability_scope = global` the Docker network ID is the same on every host: while another host still has ports
 * on the network, it still uses this very Docker network, so the tags and subnets stay for it.
 */
export async function releaseExistingNetwork(
  rt: DriverRuntime,
  network: Network,
  subnets: readonly Subnet[],
  dockerId: string,
) {
  // Without tags a network backs one Docker network only (marks.ts).
  const othersRemain = rt.marks.othersUseExistingNetwork(network, dockerId);
  // While another Docker network maps it, this host's ports there may be that network's: none is a leftover.
  const elsewhere = othersRemain
    ? (await portsByHost(rt, network.id)).elsewhere
    : await removeLeftoverPorts(rt, network.id);
  if (rt.settings.capabilityScope === 'global' && elsewhere.length > 0) {
    rt.log.info(
      { network: network.id, ports: elsewhere.length },
      'other hosts still have ports on this Docker network: its Neutron network stays mapped to it',
    );
    return;
  }
  if (!othersRemain) {
    for (const subnet of subnets) {
      if (subnet.name.startsWith(SUBNET_NAME_PREFIX)) {
        await rt.neutron.deleteSubnet(subnet.id).catch(ignoreNotFound);
      } else {
        await rt.marks.releaseExistingSubnet(rt.neutron, subnet);
      }
    }
  }
  await rt.marks.releaseExistingNetwork(rt.neutron, network, dockerId);
}

/**
 * Our ports on a network, by host (hosts.ts): `mine` are bound to this host or unbound and made by its IPAM;
 * `elsewhere` belong to other hosts, which still use the network. Unbound ports that name no host are in neither
 * (with a real Neutron; on the embedded backend every port is this host's).
 */
export async function portsByHost(rt: DriverRuntime, networkId: string): Promise<{ mine: Port[]; elsewhere: Port[] }> {
  const host = rt.settings.hostId;
  const ours = (await rt.neutron.listPorts({ network_id: networkId })).filter((p) => rt.marks.isOurPort(p));
  // The embedded backend (the plugin plays the agent) serves this host alone: every port is its own.
  if (rt.agent !== undefined) return { mine: ours, elsewhere: [] };
  return {
    mine: ours.filter((p) => isPortOfHost(p, host)),
    elsewhere: ours.filter((p) => isOtherHostsPort(rt.marks, p, host)),
  };
}

/**
 * Docker has no endpoint left on a network it deletes, so any port of ours bound to this host, or unbound and made
 * by this host's IPAM, is a leftover (a crash, a retried request that came without its body): ours are deleted,
 * taken-over ones handed back. Other hosts' ports are never touched: they are returned, so the caller can leave
 * the network to the hosts still using it.
 */
export async function removeLeftoverPorts(rt: DriverRuntime, networkId: string): Promise<Port[]> {
  const { mine, elsewhere } = await portsByHost(rt, networkId);
  for (const port of mine) {
    rt.log.warn({ port: port.id, network: networkId }, 'removing leftover port of a deleted Docker network');
    // Unplugged whatever its tags say, then released like ReleaseAddress would (its exposed-ports group too).
    await rt.binder.unbind(port);
    await releasePort(rt, port);
  }
  return elsewhere;
}
