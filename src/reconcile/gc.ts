/**
 * Reconciliation (`kuryr gc`, and at start-up): compares Docker's view, the backend and the host, and removes
 * only what this plugin created and nothing uses any more. Never touches what it did not create:
 * pre-existing networks and pools only lose our tags, pre-existing ports are handed back, devices are ours only
 * by the owner alias they were created with, and kind (veths `tap…`, and bridges of any name in embedded mode).
 *
 * Anything younger than the grace period is left alone: it may belong to an operation in flight.
 */
import { deleteUnusedOwnPool } from '../driver/ipam-pools.ts';
import type { IpCommand } from '../binding/ip-command.ts';
import { hybridPlugPortPrefix, type OvsLeftovers } from '../binding/ovs-leftovers.ts';
import { ownerAlias } from '../binding/names.ts';
import type { DockerEndpoints } from '../docker/client.ts';
import type { DriverRuntime } from '../driver/context.ts';
import { errorMessage } from '../driver/context.ts';
import { isOtherHostsPort, isPortOfHost } from '../driver/hosts.ts';
import { releasePort } from '../driver/ipam-addresses.ts';
import { isUntaggedLeftover, type Marks } from '../driver/marks.ts';
import { bridgeOf } from '../driver/embedded-options.ts';
import { deleteNetwork } from '../driver/network.ts';
import { portDriverLeftovers } from '../driver/port-drivers/leftovers.ts';
import { creatorOf, dockerIdInDescription, isCreatedBy } from '../driver/network-description.ts';
import { isOwnPool } from '../driver/pools.ts';
import { ignoreNotFound, isNotFound } from '../neutron/errors.ts';
import type { Network, Port } from '../neutron/types.ts';

export type GcKind =
  | 'network'
  | 'port'
  | 'subnetpool'
  | 'security-group'
  | 'bridge'
  | 'veth'
  | 'ovs-port'
  | 'published-port'
  | 'address-pair'
  | 'subport'
  | 'macvlan'
  | 'ipvlan'
  | 'vlan';

export interface GcAction {
  kind: GcKind;
  id: string;
  name?: string;
  reason: string;
  result: 'planned' | 'removed' | 'failed';
  error?: string;
}

export interface GcOptions {
  dryRun: boolean;
  /** Resources younger than this are skipped. */
  graceSeconds: number;
  /** Docker's view; undefined when Docker could not be asked (then only Docker-independent checks run). */
  docker: DockerEndpoints | undefined;
  /** Embedded backend: the plugin owns the bridges carrying its owner alias (`brq…` or custom-named). */
  ownsBridges: boolean;
  /**
   * With a real Neutron several hosts share the networks: only what this host created is considered (networks
   * whose description names it and `owner` as the driver, or no driver: network-description.ts; ports bound to it, or unbound and made by its IPAM: driver/hosts.ts), and a
   * network another host still has ports on is never an orphan. Undefined: everything (embedded).
   */
  onlyHost?: string;
  /** Trust Docker's view even when it shares no network with the backend. */
  force?: boolean;
  /** Devices are ours only when they carry this owner's alias (`kuryr-ts:<owner>`, see binding/names.ts). */
  owner: string;
  /** Open vSwitch (Neutron backend): our OVS interfaces whose Neutron port is gone are deleted. */
  ovs?: Pick<OvsLeftovers, 'snapshot' | 'remove'>;
  now?: number;
}

export interface GcReport {
  dockerChecked: boolean;
  /** Why Docker's view was not used, when it was not. */
  dockerSkipped?: string;
  actions: GcAction[];
}

/** What gc needs of `ip`: list links, delete one. */
export type DeviceTool = Pick<IpCommand, 'runJson' | 'deleteLink'>;

/** Runs one reconciliation pass. */
export async function collectGarbage(rt: DriverRuntime, ip: DeviceTool, opts: GcOptions): Promise<GcReport> {
  const now = opts.now ?? Date.now();
  const old = (timestamp: string) => now - Date.parse(timestamp) >= opts.graceSeconds * 1000;
  const actions: GcAction[] = [];
  const act = async (action: Omit<GcAction, 'result'>, run: () => Promise<unknown>) => {
    if (opts.dryRun) {
      actions.push({ ...action, result: 'planned' });
      return;
    }
    try {
      await run();
      actions.push({ ...action, result: 'removed' });
    } catch (err) {
      if (isNotFound(err)) actions.push({ ...action, result: 'removed' });
      else actions.push({ ...action, result: 'failed', error: errorMessage(err) });
    }
  };

  const [allNetworks, allPorts] = await Promise.all([rt.neutron.listNetworks(), rt.neutron.listPorts()]);
  const host = opts.onlyHost;
  const marks = rt.marks;
  // Only the networks this instance created: another host's, or another instance's on this host (another driver
  // name: its engine view is not ours), are not known to the Docker view we have.
  const networks =
    host === undefined ? allNetworks : allNetworks.filter((n) => isCreatedBy(n.description, host, opts.owner));
  // Networks another instance on this host created: the ports on them are its own (another host's network is
  // shared by every host, and this host's ports on it are this host's).
  const others = new Set(
    host === undefined
      ? []
      : allNetworks
          .filter((n) => creatorOf(n.description)?.host === host && !isCreatedBy(n.description, host, opts.owner))
          .map((n) => n.id),
  );
  // Only this host's ports, even on the networks it created: another host's are not known to this host's Docker;
  // nor those on another instance's networks.
  const ports =
    host === undefined ? allPorts : allPorts.filter((p) => isPortOfHost(p, host) && !others.has(p.network_id));
  // Networks other hosts still have ports on (the same Docker network on every host in global scope): not orphans.
  const usedElsewhere = new Set(
    host === undefined ? [] : allPorts.filter((p) => isOtherHostsPort(marks, p, host)).map((p) => p.network_id),
  );
  const ourNetworks = networks.filter((n) => marks.dockerIdOfNetwork(n) !== undefined);
  const orphanNetworks = new Set<string>();
  const dockerSkipped =
    opts.force && opts.docker !== undefined ? undefined : wrongEngine(opts.docker, ourNetworks, marks);

  // The port drivers for VMs: pairs and subports no endpoint owns (before ports go: a subport's port cannot).
  const trusted = dockerSkipped === undefined ? opts.docker?.endpoints : undefined;
  for (const l of await portDriverLeftovers(rt.binder, { marks: rt.marks, dockerEndpoints: trusted, old })) {
    await act(
      { kind: l.kind, id: l.id, ...(l.name === undefined ? {} : { name: l.name }), reason: l.reason },
      l.remove,
    );
  }

  if (opts.docker !== undefined && dockerSkipped === undefined) {
    const docker = opts.docker;
    for (const network of ourNetworks) {
      const dockerId = marks.dockerIdOfNetwork(network)!;
      if (docker.networks.has(dockerId) || !old(network.updated_at) || usedElsewhere.has(network.id)) continue;
      orphanNetworks.add(network.id);
      await act(
        { kind: 'network', id: network.id, name: network.name, reason: `Docker network ${dockerId} no longer exists` },
        () => deleteNetwork(rt, dockerId),
      );
    }
    // Created by a request that died before tagging it (its retry came without a body and failed).
    for (const network of networks) {
      const dockerId = dockerIdInDescription(network.description);
      if (dockerId === undefined || marks.dockerIdOfNetwork(network) !== undefined || docker.networks.has(dockerId))
        continue;
      if (!old(network.updated_at) || usedElsewhere.has(network.id)) continue;
      orphanNetworks.add(network.id);
      await act(
        {
          kind: 'network',
          id: network.id,
          name: network.name,
          reason: 'created for a Docker network that was never completed',
        },
        async () => {
          for (const port of ports.filter((p) => p.network_id === network.id && isUntaggedLeftover(p))) {
            await rt.neutron.deletePort(port.id).catch(ignoreNotFound);
          }
          await rt.neutron.deleteNetwork(network.id);
        },
      );
    }
    for (const port of ports) {
      if (orphanNetworks.has(port.network_id) || !old(port.updated_at)) continue;
      if (isUntaggedLeftover(port)) {
        if (!port.fixed_ips.some((f) => docker.addresses.has(f.ip_address))) {
          await act(
            { kind: 'port', id: port.id, name: port.name, reason: 'created by a request that never completed' },
            () => rt.neutron.deletePort(port.id),
          );
        }
        continue;
      }
      if (!marks.isOurPort(port)) continue;
      const reason = orphanPortReason(port, docker, networks, marks);
      if (reason === undefined) continue;
      await act({ kind: 'port', id: port.id, name: port.name, reason }, () => releasePort(rt, port));
    }
  }

  // What the Docker-based pass removed is gone: list the rest afresh.
  const [remainingPorts, groups, pools, subnets] = await Promise.all([
    rt.neutron.listPorts({ fields: ['id'] }),
    rt.neutron.listSecurityGroups(),
    rt.neutron.listSubnetPools(),
    rt.neutron.listSubnets({ fields: ['id', 'subnetpool_id'] }),
  ]);
  const portIds = new Set(remainingPorts.map((p) => p.id));
  for (const group of groups) {
    const match = /^([0-9a-f-]{36})-exposed_ports$/.exec(group.name);
    if (match === null || portIds.has(match[1]!) || !old(group.created_at)) continue;
    await act({ kind: 'security-group', id: group.id, name: group.name, reason: 'its port no longer exists' }, () =>
      rt.neutron.deleteSecurityGroup(group.id),
    );
  }

  const poolsInUse = new Set(subnets.map((s) => s.subnetpool_id));
  for (const pool of pools) {
    if (!isOwnPool(rt.settings, pool) || poolsInUse.has(pool.id) || !old(pool.created_at)) continue;
    await act({ kind: 'subnetpool', id: pool.id, name: pool.name, reason: 'no subnet is allocated from it' }, () =>
      deleteUnusedOwnPool(rt, pool, now),
    );
  }

  // Before listing the live ports (see OvsLeftovers.snapshot).
  const ovsInterfaces = opts.ovs === undefined ? [] : await opts.ovs.snapshot();
  const [liveNetworks, livePorts] = await Promise.all([
    rt.neutron.listNetworks({ fields: ['id', 'tags'] }),
    rt.neutron.listPorts({ fields: ['id'] }),
  ]);
  await collectDevices(rt, ip, opts, liveNetworks, livePorts, act);
  const livePortIds = new Set(livePorts.map((p) => p.id));
  for (const i of ovsInterfaces.filter((i) => !livePortIds.has(i.portId))) {
    await act({ kind: 'ovs-port', id: i.name, reason: `its Neutron port ${i.portId} no longer exists` }, () =>
      opts.ovs!.remove(i.name),
    );
  }
  await collectPublishedPorts(rt, act);
  const dockerChecked = opts.docker !== undefined && dockerSkipped === undefined;
  return { dockerChecked, ...(dockerSkipped === undefined ? {} : { dockerSkipped }), actions };
}

/**
 * A guard against asking the wrong engine (another dockerd than the one using this backend): when the backend
 * holds Docker networks and the engine knows none of them, nothing is removed on its word.
 */
function wrongEngine(docker: DockerEndpoints | undefined, ours: readonly Network[], marks: Marks): string | undefined {
  if (docker === undefined) return 'Docker was not asked';
  if (ours.length === 0 || ours.some((n) => docker.networks.has(marks.dockerIdOfNetwork(n)!))) return undefined;
  return `the Docker engine knows none of the backend's ${ours.length} Docker network(s): is it the engine that uses this plugin? (use --force to trust it)`;
}

/** Why a port of ours is unused according to Docker, or undefined when Docker still uses it. */
function orphanPortReason(
  port: Port,
  docker: DockerEndpoints,
  networks: readonly Network[],
  marks: Marks,
): string | undefined {
  const endpoint = marks.endpointIdOfPort(port);
  if (endpoint !== undefined)
    return docker.endpoints.has(endpoint) ? undefined : `Docker endpoint ${endpoint} no longer exists`;
  const network = networks.find((n) => n.id === port.network_id);
  const dockerNetwork = network === undefined ? undefined : marks.dockerIdOfNetwork(network);
  if (dockerNetwork === undefined || !docker.networks.has(dockerNetwork)) return 'its network is not a Docker network';
  if (port.fixed_ips.some((f) => docker.addresses.has(f.ip_address))) return undefined;
  return 'no Docker container holds its addresses';
}

/** Published ports (binding/publish.ts) of endpoints no port in the backend belongs to any more. */
async function collectPublishedPorts(
  rt: DriverRuntime,
  act: (action: Omit<GcAction, 'result'>, run: () => Promise<unknown>) => Promise<void>,
): Promise<void> {
  const publisher = rt.publisher;
  if (publisher === undefined) return;
  const published = await publisher.list();
  if (published.length === 0) return;
  const endpoints = new Set((await rt.neutron.listPorts()).map((p) => rt.marks.endpointIdOfPort(p)));
  for (const endpointId of new Set(published.map((p) => p.endpointId))) {
    if (endpoints.has(endpointId)) continue;
    await act({ kind: 'published-port', id: endpointId, reason: 'its endpoint no longer exists' }, () =>
      publisher.unpublish(endpointId),
    );
  }
}

/** Containers' devices of the nested port drivers (binding/child-device.ts), named `t_c<port[:11]>`. */
const CHILD_KINDS: ReadonlySet<string> = new Set(['macvlan', 'ipvlan', 'vlan']);

/**
 * Host devices of ours with no backend object behind them. Ours: carrying our owner alias (`kuryr-ts:<owner>`),
 * never a device without it. A bridge of the embedded backend is a leftover when no live network has it, whatever
 * its name (`brq…`, or a network's `com.docker.network.bridge.name`); it goes through the agent, as on
 * `DeleteNetwork`, so its elements in the plugin's nftables table and its iptables rules go with it.
 */
async function collectDevices(
  rt: DriverRuntime,
  ip: DeviceTool,
  opts: GcOptions,
  networks: readonly Pick<Network, 'id' | 'tags'>[],
  ports: readonly Pick<Port, 'id'>[],
  act: (action: Omit<GcAction, 'result'>, run: () => Promise<unknown>) => Promise<void>,
): Promise<void> {
  const mark = ownerAlias(opts.owner);
  const links = (await ip.runJson(['-details', 'link', 'show'])) as {
    ifname: string;
    ifalias?: string;
    linkinfo?: { info_kind?: string };
  }[];
  const livePorts = new Set(ports.map((p) => p.id.slice(0, 11)));
  const liveBridges = new Set(networks.map(bridgeOf));
  for (const link of links) {
    if (link.ifalias !== mark) continue;
    const kind = link.linkinfo?.info_kind;
    const name = link.ifname;
    if (kind === 'veth' && name.startsWith('tap') && !livePorts.has(name.slice(3))) {
      await act({ kind: 'veth', id: name, reason: 'no Neutron port behind it' }, () => ip.deleteLink(name));
    } else if (CHILD_KINDS.has(kind ?? '') && name.startsWith('t_c') && !livePorts.has(name.slice(3))) {
      await act({ kind: kind as GcKind, id: name, reason: 'no Neutron port behind it' }, () => ip.deleteLink(name));
    } else if (
      opts.ownsBridges &&
      kind === 'bridge' &&
      hybridPlugPortPrefix(kind, name) === undefined &&
      !liveBridges.has(name)
    ) {
      await act({ kind: 'bridge', id: name, reason: 'no network behind it' }, () =>
        rt.agent === undefined ? ip.deleteLink(name) : rt.agent.removeNetwork(networkIdOfBridge(name), name),
      );
    } else if (isDeadHybridPlug(hybridPlugPortPrefix(kind, name), livePorts)) {
      // The ovs hybrid plug's qbr… bridge and qvb…/qvo… pair (binding/ovs.ts).
      await act({ kind: kind === 'bridge' ? 'bridge' : 'veth', id: name, reason: 'no Neutron port behind it' }, () =>
        ip.deleteLink(name),
      );
    }
  }
}

/** What `removeNetwork` takes for the network of a bridge found on its own: the ID part of a `brq…` name. */
const networkIdOfBridge = (name: string) => (name.startsWith('brq') ? name.slice(3) : '');

const isDeadHybridPlug = (prefix: string | undefined, livePorts: ReadonlySet<string>) =>
  prefix !== undefined && !livePorts.has(prefix);
