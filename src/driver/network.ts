/**
 * `NetworkDriver.CreateNetwork` / `DeleteNetwork`: a Docker network is a Neutron network tagged with the
 * Docker ID (named after it without tags: marks.ts), with one subnet per Docker pool allocated from the pool the
 * IPAM driver chose. Pre-existing networks (`neutron.net.*`) are in existing-network.ts.
 *
 * Unlike the original kuryr-libnetwork: CreateNetwork is idempotent per
 * Docker network ID, checks everything it can before creating anything, undoes its partial work on failure,
 * and DeleteNetwork removes this host's leftover ports instead of leaking the network (other hosts' ports stay,
 * and so does the network while they have any: hosts.ts).
 */
import { fail, KuryrError } from '../errors.ts';
import { ignoreNotFound, isConflict, isNotFound, NeutronError } from '../neutron/errors.ts';
import type { Network, Subnet, SubnetCreate, SubnetPool } from '../neutron/types.ts';
import type { CreateNetworkRequest, IpamData } from './requests.ts';
import { cidrContains, type IpVersion, normalizeCidr, parseCidr, splitAddressWithPrefix } from '../util/ip.ts';
import { type DriverRuntime, errorMessage, type Undo } from './context.ts';
import { applyBridgeOptions, bridgeOf, hostNetworkSpec, parseBridgeOptions } from './embedded-options.ts';
import { readRoutesAhead, withExclusiveSubnets } from './embedded-subnets.ts';
import { releaseExistingNetwork, removeLeftoverPorts, useExistingNetwork } from './existing-network.ts';
import { networkDescription, recordNetworkName } from './network-description.ts';
import { networkOfDocker, poolByName, poolFromOptions } from './lookup.ts';
import { familyOptions, genericOptions, type NeutronOptions, parseNeutronOptions } from './options.ts';
import { deleteUnusedOwnPool } from './ipam-pools.ts';
import { isOwnPool } from './pools.ts';
import { faultPoint } from './faults.ts';
import { existingSubnetFor, notedIpRange } from './ip-range-subnet.ts';
import { adoptSwarmNetwork, swarmAddressesRemain } from './swarm.ts';
import { poolName, subnetName } from './tags.ts';

/** One element of IPv4Data/IPv6Data, and the request: the types of their schemas (requests.ts). */
type IpamDatum = IpamData;
export type CreateNetworkInput = CreateNetworkRequest;

/** One Docker pool of the network, with the Neutron subnet pool it comes from. */
interface PlannedSubnet {
  version: IpVersion;
  cidr: string;
  gateway: string | undefined;
  pool: SubnetPool;
  /** The `--ip-range` RequestPool noted (a pre-existing network's subnet may be it: ip-range-subnet.ts). */
  ipRange: string | undefined;
}

/** `NetworkDriver.CreateNetwork`. */
export async function createNetwork(rt: DriverRuntime, req: CreateNetworkInput): Promise<void> {
  await rt.locks.run(`network:${req.NetworkID}`, async () => {
    // Embedded backend: the host's routes of the network's families, read while the store is asked (the subnets
    // must not overlap them: withExclusiveSubnets).
    const family = familyOf(req);
    const ahead = family === 'none' ? undefined : readRoutesAhead(rt, family);
    const given = parseNeutronOptions(genericOptions(req.Options));
    // Containers in a VM: without a network option the Docker network is the VM port's network.
    const vmNetwork =
      given.netId === undefined && given.netName === undefined ? await rt.binder.defaultNetworkId?.() : undefined;
    const options = vmNetwork === undefined ? given : { ...given, netId: vmNetwork };
    // The bridge driver's options on the embedded backend (embedded-options.ts), checked before anything is made.
    const bridgeOptions = rt.agent === undefined ? undefined : parseBridgeOptions(req.Options);
    const planned = await planSubnets(rt, req, options);
    for (const p of planned) rt.deletedSubnets.delete(`${p.pool.id}@${p.cidr}`);
    const undo: Undo[] = [];
    try {
      // Swarm: the network the manager's IPAM already made for the pool (swarm.ts).
      const adopted =
        options.netId === undefined && options.netName === undefined
          ? await adoptSwarmNetwork(
              rt,
              req.NetworkID,
              planned.map((p) => ({ poolId: p.pool.id, cidr: p.cidr })),
            )
          : undefined;
      const obtained = adopted ?? (await obtainNetwork(rt, req.NetworkID, options, undo));
      const network = await applyBridgeOptions(rt, req.NetworkID, obtained, bridgeOptions);
      const existing = options.netId !== undefined || options.netName !== undefined;
      const cidrs = planned.map((p) => p.cidr);
      const { planned: subnets, others } = await withExclusiveSubnets(
        rt,
        network,
        cidrs,
        bridgeOptions,
        () => ensureSubnets(rt, network, planned, undo, existing),
        ahead,
      );
      faultPoint('create-network:before-bridge');
      if (rt.agent !== undefined) {
        // Every subnet's gateway stays on the bridge, not only those of this call's pools.
        const gateways = gatewaysOf([...subnets, ...others]);
        await rt.agent.ensureNetwork(hostNetworkSpec(network, gateways));
        undo.push(() => rt.agent!.removeNetwork(network.id, bridgeOf(network)));
      }
      // The subnets now keep their pools (a failed create leaves its lease to Docker's ReleasePool).
      for (const p of planned) rt.leases.networkCreated(p.pool.id);
      // Only our own networks, not yet named (pre-existing networks keep the operator's description).
      if (network.description === networkDescription(req.NetworkID, rt.settings)) {
        recordNetworkName(rt, req.NetworkID, network);
      }
    } catch (err) {
      rt.deadline?.enterRollback();
      for (const step of undo.reverse()) {
        await step().catch((undoErr: unknown) =>
          rt.log.error({ err: errorMessage(undoErr), network: req.NetworkID }, 'rollback step failed'),
        );
      }
      throw err;
    } finally {
      for (const p of planned) rt.reservations.release(p.pool.id, p.cidr);
    }
  });
}

/** The IP family of the request's pools: one, both (undefined), or none (no pool, no subnet to check). */
function familyOf(req: CreateNetworkInput): IpVersion | undefined | 'none' {
  const v4 = (req.IPv4Data ?? []).some((d) => d.Pool !== undefined && d.Pool !== '');
  const v6 = (req.IPv6Data ?? []).some((d) => d.Pool !== undefined && d.Pool !== '');
  if (!v4 && !v6) return 'none';
  return v4 && v6 ? undefined : v4 ? 4 : 6;
}

/** MTU of a Neutron network (1500 when it has none, as kuryr does). */
export function mtuOf(network: Network): number {
  return network.mtu > 0 ? network.mtu : 1500;
}

/** Gateway addresses of subnets, for the embedded agent's bridge. */
export function gatewaysOf(subnets: readonly Subnet[]) {
  return subnets
    .filter((s) => s.gateway_ip !== null)
    .map((s) => ({ address: s.gateway_ip!, prefixLength: parseCidr(s.cidr).prefixLength }));
}

async function planSubnets(
  rt: DriverRuntime,
  req: CreateNetworkInput,
  options: NeutronOptions,
): Promise<PlannedSubnet[]> {
  const data: [IpVersion, IpamDatum][] = [
    ...(req.IPv4Data ?? []).map((d): [IpVersion, IpamDatum] => [4, d]),
    ...(req.IPv6Data ?? []).map((d): [IpVersion, IpamDatum] => [6, d]),
  ];
  const planned: PlannedSubnet[] = [];
  for (const [version, datum] of data) {
    if (datum.Pool === undefined || datum.Pool === '') continue;
    const cidr = normalizeCidr(datum.Pool);
    if (parseCidr(cidr).version !== version)
      throw fail.invalid(`IPv${version}Data pool ${datum.Pool} is not IPv${version}`);
    const gateway = gatewayAddress(datum.Gateway);
    const pool = await poolForSubnet(rt, version, cidr, options);
    planned.push({ version, cidr, gateway, pool, ipRange: notedIpRange(rt, pool.id, cidr) });
  }
  return planned;
}

/** The gateway without its prefix; Docker's placeholders (`0.0.0.0/0`, `::/0`) mean none. */
function gatewayAddress(gateway: string | undefined): string | undefined {
  if (gateway === undefined || gateway === '') return undefined;
  const { address, prefixLength } = splitAddressWithPrefix(gateway);
  return prefixLength === 0 ? undefined : address;
}

/** The pool a subnet comes from: `neutron.pool.*`, else our `<prefix>-<cidr>`, else the default pool. */
async function poolForSubnet(
  rt: DriverRuntime,
  version: IpVersion,
  cidr: string,
  options: NeutronOptions,
): Promise<SubnetPool> {
  const opts = familyOptions(options, version);
  const inside = (pool: SubnetPool) => pool.prefixes.some((p) => cidrContains(parseCidr(p), parseCidr(cidr)));
  const chosen = await poolFromOptions(rt, opts);
  if (chosen !== undefined) {
    if (!inside(chosen)) throw fail.conflict(`subnet ${cidr} is not inside subnet pool ${chosen.name || chosen.id}`);
    return chosen;
  }
  const name = poolName(rt.settings.subnetpoolNamePrefix, cidr);
  const own = await poolByName(rt, name, opts.subnetId);
  if (own !== undefined) return own;
  const defaultName = version === 4 ? rt.settings.defaultSubnetpoolV4 : rt.settings.defaultSubnetpoolV6;
  const fallback = await poolByName(rt, defaultName);
  if (fallback !== undefined && inside(fallback)) return fallback;
  throw fail.notFound(
    `Specified pool name(${name}) does not exist. Create the network with --ipam-driver set to this plugin, or name a pool with -o neutron.pool.name`,
  );
}

/** The Docker network's Neutron network: existing (`neutron.net.*`), found by tags (a retry), or created. */
async function obtainNetwork(
  rt: DriverRuntime,
  dockerId: string,
  options: NeutronOptions,
  undo: Undo[],
): Promise<Network> {
  if (options.netId !== undefined || options.netName !== undefined) {
    return useExistingNetwork(rt, dockerId, options, undo);
  }
  // One lookup by name finds the network of an earlier attempt: marked (a resent request), or created by an
  // attempt that crashed before marking it.
  const filter = rt.marks.createdNetworkFilter(dockerId);
  const earlier = rt.marks.earlierNetwork(await rt.neutron.fresh.listNetworks(filter), dockerId);
  if (earlier?.marked) return earlier.network;
  const network =
    earlier?.network ??
    (await rt.neutron.createNetwork({
      name: rt.marks.createdNetworkName(dockerId),
      description: networkDescription(dockerId, rt.settings),
      admin_state_up: true,
      shared: options.shared ?? false,
    }));
  undo.push(() => rt.neutron.deleteNetwork(network.id));
  faultPoint('create-network:before-tags');
  return rt.marks.markNetwork(rt.neutron, network, dockerId);
}

/** Creates the planned subnets that the network lacks (one bulk call) and tags each with its pool ID. */
async function ensureSubnets(
  rt: DriverRuntime,
  network: Network,
  planned: readonly PlannedSubnet[],
  undo: Undo[],
  existing: boolean,
): Promise<{ planned: Subnet[]; others: Subnet[] }> {
  const present = network.subnets.length === 0 ? [] : await rt.neutron.listSubnets({ network_id: network.id });
  const othersOf = (result: readonly Subnet[]) => present.filter((p) => !result.some((r) => r.id === p.id));
  const result: Subnet[] = [];
  const missing: PlannedSubnet[] = [];
  for (const plan of planned) {
    const found = existing
      ? existingSubnetFor(network, present, plan.cidr, plan.ipRange)
      : present.find((s) => normalizeCidr(s.cidr) === plan.cidr);
    if (found === undefined) missing.push(plan);
    else {
      plan.pool = await rt.marks.tieExistingSubnet(rt.neutron, plan.pool, found, plan.cidr, {
        ownPool: isOwnPool(rt.settings, plan.pool),
        exclusive: (key, run) => rt.locks.run(key, run),
        undo,
      });
      result.push(found);
    }
  }
  if (missing.length === 0) return { planned: result, others: othersOf(result) };
  const bodies: SubnetCreate[] = missing.map((plan) => ({
    name: subnetName(plan.cidr),
    network_id: network.id,
    ip_version: plan.version,
    cidr: plan.cidr,
    subnetpool_id: plan.pool.id,
    enable_dhcp: rt.settings.enableDhcp,
    ...(plan.gateway === undefined ? {} : { gateway_ip: plan.gateway }),
  }));
  let created: Subnet[];
  try {
    created = await rt.neutron.createSubnets(bodies);
  } catch (err) {
    throw explainSubnetFailure(err, missing);
  }
  undo.push(async () => {
    for (const s of created) await rt.neutron.deleteSubnet(s.id).catch(ignoreNotFound);
  });
  faultPoint('create-network:before-subnet-tags');
  for (const [i, subnet] of created.entries())
    result.push(await rt.marks.tieNewSubnet(rt.neutron, subnet, missing[i]!.pool.id));
  return { planned: result, others: othersOf(result) };
}

function explainSubnetFailure(err: unknown, plans: readonly PlannedSubnet[]): unknown {
  if (!(err instanceof NeutronError) || (err.status !== 400 && err.status !== 409)) return err;
  const what = plans.map((p) => `${p.cidr} from pool ${p.pool.name || p.pool.id}`).join(' and ');
  return new KuryrError(
    'KURYR_ERR_CONFLICT',
    `cannot create subnet ${what}: ${err.message} If another Docker network uses the same CIDR, give each network its own subnet pool (-o neutron.pool.name=P --ipam-opt neutron.pool.name=P).`,
    { cause: err },
  );
}

/** `NetworkDriver.DeleteNetwork`: removes what CreateNetwork made; a network already gone is fine. */
export async function deleteNetwork(rt: DriverRuntime, dockerId: string): Promise<void> {
  await rt.locks.run(`network:${dockerId}`, async () => {
    const cached = await networkOfDocker(rt, dockerId);
    // A shared (pre-existing) network is read afresh: other Docker networks may have tagged it since.
    const shared = cached === undefined || rt.marks.isExistingNetwork(cached, dockerId);
    const network = shared ? await networkOfDocker(rt, dockerId, { fresh: true }) : cached;
    if (network === undefined) return;
    // A network of ours: its subnets are those its `subnets` names (immutable pool and CIDR, usually all kept by
    // the cache). A pre-existing network's are asked of Neutron: the operator's may have changed since.
    const subnets = rt.marks.isExistingNetwork(network, dockerId)
      ? await rt.neutron.fresh.listSubnets({ network_id: network.id })
      : await rt.neutron.listSubnets({ id: network.subnets });
    // The bridge goes first: once the network is gone nothing would find the bridge again.
    if (rt.agent !== undefined) await rt.agent.removeNetwork(network.id, bridgeOf(network));
    faultPoint('delete-network:before-neutron');
    if (rt.marks.isExistingNetwork(network, dockerId)) {
      await releaseExistingNetwork(rt, network, subnets, dockerId);
    } else if (await deleteOwnNetwork(rt, network)) {
      for (const s of subnets) {
        if (s.subnetpool_id !== null) rt.deletedSubnets.add(`${s.subnetpool_id}@${normalizeCidr(s.cidr)}`);
      }
    }
    faultPoint('delete-network:before-pools');
    await deleteOwnPools(rt, subnets);
  });
}

/**
 * Deletes a network we created. Docker has no endpoint left on it on this host, so any port of ours bound to this
 * host is a leftover (e.g. a crash). Other hosts' ports are theirs: with `capability_scope = global` every host
 * calls DeleteNetwork for the same Docker network, and the network stays until the last host's call. True when
 * this call deleted the network (and so its subnets).
 */
async function deleteOwnNetwork(rt: DriverRuntime, network: Network): Promise<boolean> {
  try {
    await rt.neutron.deleteNetwork(network.id);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    if (!isConflict(err)) throw err;
  }
  const elsewhere = await removeLeftoverPorts(rt, network.id);
  // Swarm: addresses the manager still allocates stay, and so does the network (swarm.ts).
  if (elsewhere.length > 0 || (await swarmAddressesRemain(rt, network.id))) {
    rt.log.info(
      { network: network.id, ports: elsewhere.length },
      'other hosts still have ports on this network: it stays for them',
    );
    return false;
  }
  await rt.neutron.deleteNetwork(network.id).catch(ignoreNotFound);
  return true;
}

/** Deletes the pools we created for these subnets once nothing is allocated from them. */
async function deleteOwnPools(rt: DriverRuntime, subnets: readonly Subnet[]): Promise<void> {
  const poolIds = new Set(subnets.map((s) => s.subnetpool_id).filter((id): id is string => id !== null));
  for (const poolId of poolIds) {
    let pool: SubnetPool;
    try {
      pool = await rt.neutron.showSubnetPool(poolId);
    } catch (err) {
      if (isNotFound(err)) continue;
      throw err;
    }
    if (!isOwnPool(rt.settings, pool)) continue;
    // Under the pool-name lock, and kept while another Docker network of this process holds it (ipam-pools.ts).
    await deleteUnusedOwnPool(rt, pool);
  }
}
