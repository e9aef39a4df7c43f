/**
 * How the driver marks its Neutron resources and recognises them again: by tags (kuryr-libnetwork's normal mode),
 * or, on a Neutron without the tag extensions, by names, device IDs and descriptions, as kuryr-libnetwork does.
 * kuryr's two flags are kept apart: `tag` (networks take tags) decides how Docker networks are found, `tagExt` (subnets,
 * ports and subnet pools take tags) how endpoints' ports are found and how the IPAM marks what it made or took.
 *
 * Without tags the original names networks and ports after Docker IDs; so do we, so that both read each other's
 * resources. Unlike the original, a pre-existing network keeps being a pre-existing network (its name and
 * description are recorded in its description and given back by DeleteNetwork instead of deleting it), ports
 * the IPAM created are deleted, taken-over ports are handed back, and an endpoint's port is found by its
 * `device_id` so that a taken-over port keeps its operator's name.
 *
 * This is the one place that knows which mode is active: the rest of the driver asks `Marks` to find, mark,
 * release and tie (a pool to a subnet), never which mode it runs in.
 */
import { fail } from '../errors.ts';
import type { ListFilter, NeutronApi } from '../neutron/api.ts';
import { ignoreNotFound, isNotFound } from '../neutron/errors.ts';
import type { Network, Port, PortCreate, PortUpdate, Subnet, SubnetPool, SubnetPoolCreate } from '../neutron/types.ts';
import { DOCKER_ID_PATTERN, isDockerId, isUuid } from '../util/ids.ts';
import { dockerIdInDescription } from './network-description.ts';
import {
  DEVICE_OWNER,
  existingNetworkTag,
  idTags,
  isIdTag,
  LOWER_HALF_PREFIX,
  networkName,
  POOL_EXISTING_TAG,
  PORT_CREATED_TAG,
  PORT_EXISTING_TAG,
  UNBOUND_PORT_NAME,
  UPPER_HALF_PREFIX,
  withTags,
} from './tags.ts';

/** A step that puts back what a mark did (context.ts's `Undo`). */
type Undo = () => Promise<unknown>;

/** Runs `run` alone among the callers of the same key (the driver's keyed locks). */
export type Exclusive = <T>(key: string, run: () => Promise<T>) => Promise<T>;

/** kuryr's two flags: which resources take tags on this Neutron. */
export interface TagSupport {
  /** Networks take tags (`standard-attr-tag` or the legacy `tag`). */
  tag: boolean;
  /** Subnets, ports and subnet pools take tags (`standard-attr-tag` or the legacy `tag-ext`). */
  tagExt: boolean;
  /** A port POST may carry `tags` (`tag-ports-during-bulk-creation`): no tags call after creating a port. */
  portTagsOnCreate?: boolean;
}

export const FULL_TAG_SUPPORT: TagSupport = { tag: true, tagExt: true };

/** Neutron's limit on names and descriptions. */
const NEUTRON_TEXT_LIMIT = 255;

/** What a pre-existing network was called before a tagless Neutron made us rename it. */
export interface PreviousNames {
  name: string;
  description: string;
}

const EXISTING_PREFIX = 'kuryr-ts: existing network of Docker network ';
const EXISTING = new RegExp(`^kuryr-ts: existing network of Docker network (${DOCKER_ID_PATTERN}); was (\\{.*\\})$`);

/** The description a renamed pre-existing network carries (undefined when it would not fit Neutron's limit). */
export function existingNetworkDescription(dockerId: string, previous: PreviousNames): string | undefined {
  const text = `${EXISTING_PREFIX}${dockerId}; was ${JSON.stringify({ name: previous.name, description: previous.description })}`;
  return text.length <= NEUTRON_TEXT_LIMIT ? text : undefined;
}

/** The Docker network and the previous names recorded by `existingNetworkDescription`. */
export function parseExistingNetworkDescription(
  description: string,
): { dockerId: string; previous: PreviousNames } | undefined {
  const match = EXISTING.exec(description);
  if (match === null) return undefined;
  try {
    const was: unknown = JSON.parse(match[2]!);
    if (typeof was !== 'object' || was === null) return undefined;
    const { name, description: previous } = was as Record<string, unknown>;
    if (typeof name !== 'string' || typeof previous !== 'string') return undefined;
    return { dockerId: match[1]!, previous: { name, description: previous } };
  } catch {
    return undefined;
  }
}

const POOL_OF_SUBNET = 'kuryr-ts: subnet pool of subnet ';

/**
 * Without tags on subnet pools, a pool kuryr made for a pre-existing subnet (`neutron.subnet.*`, or an existing
 * network's subnet found by CreateNetwork) names that subnet in its description instead of a tag.
 */
export function poolOfSubnetDescription(subnetId: string): string {
  return POOL_OF_SUBNET + subnetId;
}

/** The subnet named by `poolOfSubnetDescription`, or undefined. */
export function subnetOfPoolDescription(description: string): string | undefined {
  return description.startsWith(POOL_OF_SUBNET) ? description.slice(POOL_OF_SUBNET.length) : undefined;
}

/** The Docker ID a resource is tagged with (`lh` + `uh` halves), or undefined. */
export function dockerIdOfTags(tags: readonly string[]): string | undefined {
  const lh = tags.find((t) => t.startsWith(LOWER_HALF_PREFIX))?.slice(LOWER_HALF_PREFIX.length);
  if (lh === undefined) return undefined;
  const uh = tags.find((t) => t.startsWith(UPPER_HALF_PREFIX))?.slice(UPPER_HALF_PREFIX.length) ?? '';
  return lh + uh;
}

/** Name of the port of an endpoint in the original's tagless mode (and of ports CreateEndpoint makes). */
export function endpointPortName(endpointId: string): string {
  return `${endpointId}-port`;
}

/**
 * A port our IPAM made that carries no tag yet: between RequestAddress and CreateEndpoint (which tags it), or
 * left so by a crash before or right after CreateEndpoint claimed it.
 */
export function isUntaggedLeftover(port: Port): boolean {
  return (
    port.name === UNBOUND_PORT_NAME &&
    port.tags.length === 0 &&
    (port.device_owner === '' || port.device_owner === DEVICE_OWNER)
  );
}

export class Marks {
  readonly support: TagSupport;

  constructor(support: TagSupport = FULL_TAG_SUPPORT) {
    this.support = support;
  }

  // ---- networks (`tag`) ----

  /** The list filter that finds the Neutron network of a Docker network. */
  networkFilter(dockerId: string): ListFilter {
    return this.support.tag ? { tags: idTags(dockerId) } : { name: dockerId };
  }

  /** Name of a network we create: `kuryr-net-<8>`, or the whole Docker ID without tags (the original's). */
  createdNetworkName(dockerId: string): string {
    return this.support.tag ? networkName(dockerId) : dockerId;
  }

  /** The Docker network a Neutron network stands for, or undefined when it is not one of ours. */
  dockerIdOfNetwork(network: Network): string | undefined {
    if (this.support.tag) return dockerIdOfTags(network.tags);
    return isDockerId(network.name) ? network.name : undefined;
  }

  /** True when the network pre-existed and only lends itself to Docker network `dockerId`. */
  isExistingNetwork(network: Network, dockerId: string): boolean {
    if (this.support.tag) return network.tags.includes(existingNetworkTag(dockerId));
    return parseExistingNetworkDescription(network.description)?.dockerId === dockerId;
  }

  // ---- ports (`tagExt`) ----

  /** The list filter that finds the port of a Docker endpoint. */
  endpointFilter(endpointId: string): ListFilter {
    return this.support.tagExt ? { tags: idTags(endpointId) } : { device_id: endpointId };
  }

  /** The Docker endpoint a port of ours is plugged for, or undefined. */
  endpointIdOfPort(port: Port): string | undefined {
    if (this.support.tagExt) return dockerIdOfTags(port.tags);
    return port.device_id !== '' && this.isOurPort(port) ? port.device_id : undefined;
  }

  /**
   * True while the port carries an endpoint's marks: its host side may exist, unless DeleteEndpoint has ended
   * the endpoint (the driver's `endedEndpoints`: DeleteEndpoint leaves the marks to ReleaseAddress, which deletes
   * the port).
   */
  hasEndpoint(port: Port): boolean {
    return this.support.tagExt ? port.tags.some(isIdTag) : port.device_id !== '';
  }

  /**
   * A port kuryr created (deleted by ReleaseAddress): tagged `compute:kuryr`, or recognised by its name like
   * the original does without tags (`kuryr-unbound-port` from the IPAM, `<endpoint>-port` from CreateEndpoint).
   */
  isCreatedPort(port: Port): boolean {
    if (port.tags.includes(PORT_CREATED_TAG) || isUntaggedLeftover(port)) return true;
    if (this.support.tagExt) return false;
    if (port.device_owner !== '' && port.device_owner !== DEVICE_OWNER) return false;
    return port.name === UNBOUND_PORT_NAME || (port.device_id !== '' && port.name === endpointPortName(port.device_id));
  }

  /**
   * A pre-existing port the IPAM took over (handed back by ReleaseAddress): tagged `kuryr.port.existing`, or
   * without tags any other port RequestAddress gave our `device_owner`.
   */
  isTakenOverPort(port: Port): boolean {
    if (this.support.tagExt) return port.tags.includes(PORT_EXISTING_TAG);
    return port.device_owner === DEVICE_OWNER && !this.isCreatedPort(port);
  }

  isOurPort(port: Port): boolean {
    return this.isCreatedPort(port) || this.isTakenOverPort(port);
  }

  /**
   * Who holds a port of ours: the endpoint whose ID tags it carries, or without tags the device of a port bound to
   * a host; undefined when none does.
   */
  holderOfOurPort(port: Port): string | undefined {
    if (this.support.tagExt)
      return this.hasEndpoint(port) ? (this.endpointIdOfPort(port) ?? port.device_id) : undefined;
    return port.device_id !== '' && port['binding:host_id'] !== '' ? port.device_id : undefined;
  }

  // ---- the write side: marking resources as ours, taking the marks off, tying pools and subnets ----

  /** The list filter that finds the networks an earlier CreateNetwork attempt for `dockerId` may have made. */
  createdNetworkFilter(dockerId: string): ListFilter {
    return { name: this.createdNetworkName(dockerId) };
  }

  /**
   * Among the networks `createdNetworkFilter` found, the one made for `dockerId`: marked already (a resent request),
   * or, with tags, made by an attempt that crashed before tagging it (`marked: false`).
   */
  earlierNetwork(named: readonly Network[], dockerId: string): { network: Network; marked: boolean } | undefined {
    if (!this.support.tag) {
      if (named.length > 1) throw fail.conflict(`Multiple Neutron networks exist for the params name=${dockerId}`);
      return named[0] === undefined ? undefined : { network: named[0], marked: true };
    }
    const [lowerHalf] = idTags(dockerId);
    const tagged = named.find((n) => n.tags.includes(lowerHalf!));
    if (tagged !== undefined) return { network: tagged, marked: true };
    const orphan = named.find((n) => dockerIdInDescription(n.description) === dockerId && !n.tags.some(isIdTag));
    return orphan === undefined ? undefined : { network: orphan, marked: false };
  }

  /** Marks a network we created as Docker network `dockerId`'s: its ID tags (without tags its name says it). */
  async markNetwork(api: NeutronApi, network: Network, dockerId: string): Promise<Network> {
    if (!this.support.tag) return network;
    return {
      ...network,
      tags: await api.replaceTags('networks', network.id, withTags(network.tags, idTags(dockerId))),
    };
  }

  /**
   * With tags, the network a retried request names by its former name or ID is found by the options alone; without
   * tags a pre-existing network we adopted carries the Docker ID as its name: the mapped network is it when its
   * recorded former name or its ID is what the options name.
   */
  adoptedNetwork(mapped: Network, dockerId: string, named: { id?: string; name?: string }): Network | undefined {
    if (this.support.tag) return undefined;
    const recorded = parseExistingNetworkDescription(mapped.description);
    if (recorded === undefined || recorded.dockerId !== dockerId) return undefined;
    const same = named.id !== undefined ? mapped.id === named.id : recorded.previous.name === named.name;
    return same ? mapped : undefined;
  }

  /**
   * Marks a pre-existing network as used by Docker network `dockerId`. With tags: the ID tags and the existing tag,
   * added one by one (never a read-modify-write that could drop another host's). Without tags it is renamed to the
   * Docker ID, its name and description recorded in its description (one Docker network per Neutron network).
   */
  async markExistingNetwork(api: NeutronApi, existing: Network, dockerId: string, undo: Undo[]): Promise<Network> {
    if (this.support.tag) {
      const missing = [...idTags(dockerId), existingNetworkTag(dockerId)].filter((t) => !existing.tags.includes(t));
      for (const tag of missing) {
        await api.addTag('networks', existing.id, tag);
        undo.push(() => api.removeTag('networks', existing.id, tag).catch(ignoreNotFound));
      }
      return { ...existing, tags: withTags(existing.tags, missing) };
    }
    if (existing.name === dockerId && this.isExistingNetwork(existing, dockerId)) return existing;
    const other = parseExistingNetworkDescription(existing.description);
    const otherId = other?.dockerId ?? this.dockerIdOfNetwork(existing);
    if (otherId !== undefined && otherId !== dockerId) {
      throw fail.conflict(
        `Neutron network ${existing.id} is already used by Docker network ${otherId}; without the tag extension a Neutron network can back one Docker network only`,
      );
    }
    const previous = { name: existing.name, description: existing.description };
    const description = existingNetworkDescription(dockerId, previous);
    if (description === undefined) {
      throw fail.invalid(
        `Neutron network ${existing.id}: its name and description are too long to be recorded while it is renamed to the Docker network ID (this Neutron has no tag extension); shorten its description`,
      );
    }
    const renamed = await api.updateNetwork(existing.id, { name: dockerId, description });
    undo.push(() => api.updateNetwork(existing.id, previous));
    return renamed;
  }

  /** True while another Docker network than `dockerId` maps the pre-existing network (only with tags). */
  othersUseExistingNetwork(network: Network, dockerId: string): boolean {
    if (!this.support.tag) return false;
    const ours = [...idTags(dockerId), existingNetworkTag(dockerId)];
    return network.tags.some((t) => t.startsWith(LOWER_HALF_PREFIX) && !ours.includes(t));
  }

  /** Takes Docker network `dockerId`'s marks off a pre-existing network: its tags, or its former name back. */
  async releaseExistingNetwork(api: NeutronApi, network: Network, dockerId: string): Promise<void> {
    if (!this.support.tag) {
      const recorded = parseExistingNetworkDescription(network.description);
      if (recorded !== undefined) await api.updateNetwork(network.id, recorded.previous).catch(ignoreNotFound);
      return;
    }
    for (const tag of [...idTags(dockerId), existingNetworkTag(dockerId)].filter((t) => network.tags.includes(t))) {
      await api.removeTag('networks', network.id, tag).catch(ignoreNotFound);
    }
  }

  /** Takes the pool ties off a pre-existing subnet (with tags on subnets: its pool-ID tags). */
  async releaseExistingSubnet(api: NeutronApi, subnet: Subnet): Promise<void> {
    if (!this.support.tagExt) return;
    for (const tag of subnet.tags.filter(isUuid)) await api.removeTag('subnets', subnet.id, tag).catch(ignoreNotFound);
  }

  /**
   * The changes that claim a port for an endpoint besides host, owner and device: without tags the port our IPAM
   * made is named after the endpoint, as the original names it.
   */
  claimChanges(port: Port, endpointId: string): PortUpdate {
    return !this.support.tagExt && port.name === UNBOUND_PORT_NAME ? { name: endpointPortName(endpointId) } : {};
  }

  /** The changes that hand a claimed port back unclaimed while it stays: without tags, the IPAM's name again. */
  unclaimChanges(): PortUpdate {
    return this.support.tagExt ? {} : { name: UNBOUND_PORT_NAME };
  }

  /** Takes an ended endpoint's marks off a port that stays (with tags on ports: its ID tags). */
  async unmarkEndpointPort(api: NeutronApi, port: Port): Promise<void> {
    if (!this.support.tagExt) return;
    const ids = port.tags.filter(isIdTag);
    if (ids.length > 0) await api.replaceTags('ports', port.id, withTags(port.tags, [], ids));
  }

  /**
   * What a port CreateEndpoint makes for the endpoint carries from the start: its marks, when Neutron takes tags in
   * a port POST (then `markEndpointPort` has nothing left to write).
   */
  endpointPortFields(endpointId: string): Pick<PortCreate, 'tags'> {
    return this.support.tagExt && this.support.portTagsOnCreate === true
      ? { tags: [PORT_CREATED_TAG, ...idTags(endpointId)] }
      : {};
  }

  /**
   * Marks a port as the endpoint's: with tags on ports the endpoint's ID tags, and `compute:kuryr` when kuryr made it
   * (`created`); without tags its device ID and name say as much. `port` is the port as the last write returned it.
   */
  async markEndpointPort(api: NeutronApi, port: Port, endpointId: string, created: boolean): Promise<Port> {
    if (!this.support.tagExt) return port;
    const tags = withTags(port.tags, [...(created ? [PORT_CREATED_TAG] : []), ...idTags(endpointId)]);
    if (tags.length === port.tags.length) return port;
    return { ...port, tags: await api.replaceTags('ports', port.id, tags) };
  }

  /**
   * Marks a pre-existing port as taken over, to be handed back by ReleaseAddress: the `kuryr.port.existing` tag, or
   * without tags on ports our `device_owner` (CreateEndpoint would set it anyway).
   */
  async markTakenOver(api: NeutronApi, port: Port): Promise<void> {
    if (this.support.tagExt) {
      if (!port.tags.includes(PORT_EXISTING_TAG))
        await api.replaceTags('ports', port.id, withTags(port.tags, [PORT_EXISTING_TAG]));
    } else if (port.device_owner !== DEVICE_OWNER) {
      await api.updatePort(port.id, { device_owner: DEVICE_OWNER });
    }
  }

  /** Marks a pre-existing subnet pool used through `neutron.pool.*` (with tags on pools; without, nothing). */
  async markExistingPool(api: NeutronApi, pool: SubnetPool): Promise<void> {
    if (this.support.tagExt && !pool.tags.includes(POOL_EXISTING_TAG))
      await api.addTag('subnetpools', pool.id, POOL_EXISTING_TAG);
  }

  /** Takes our mark off a pre-existing subnet pool. */
  async releaseExistingPool(api: NeutronApi, pool: SubnetPool): Promise<void> {
    if (pool.tags.includes(POOL_EXISTING_TAG))
      await api.removeTag('subnetpools', pool.id, POOL_EXISTING_TAG).catch(ignoreNotFound);
  }

  /**
   * The list filter, and the check of each answer, that find our pool `name` made for subnet `subnetId` (`params`:
   * what an error names).
   */
  poolOfSubnetQuery(
    name: string,
    subnetId: string,
  ): { filter: ListFilter; matches: (pool: SubnetPool) => boolean; params: ListFilter } {
    if (this.support.tagExt) {
      const filter = { name, tags: [subnetId] };
      return { filter, matches: () => true, params: filter };
    }
    const description = poolOfSubnetDescription(subnetId);
    return { filter: { name }, matches: (pool) => pool.description === description, params: { name, description } };
  }

  /** What a pool we create for subnet `subnetId` carries from the start (without tags: its description). */
  poolOfSubnetFields(subnetId: string | undefined): Pick<SubnetPoolCreate, 'description'> {
    return subnetId === undefined || this.support.tagExt ? {} : { description: poolOfSubnetDescription(subnetId) };
  }

  /** Ties a pool RequestPool has just created to subnet `subnetId` (with tags: the subnet's ID as a tag). */
  async tieNewPoolToSubnet(api: NeutronApi, pool: SubnetPool, subnetId: string): Promise<void> {
    if (this.support.tagExt) await api.addTag('subnetpools', pool.id, subnetId);
  }

  /**
   * Ties the subnets CreateNetwork has just made to the pools they were allocated from: with tags each gets its
   * pool's ID as a tag (telling apart the subnets of a shared pool); without, `subnetpool_id` says it.
   */
  async tieNewSubnet(api: NeutronApi, subnet: Subnet, poolId: string): Promise<Subnet> {
    if (!this.support.tagExt) return subnet;
    return { ...subnet, tags: await api.replaceTags('subnets', subnet.id, withTags(subnet.tags, [poolId])) };
  }

  /**
   * Ties a pre-existing subnet to the pool that stands for its Docker pool. A pool stands for one subnet: were it
   * tied to the subnets of the same CIDR on two Neutron networks, an address of one could not be told from the
   * same address of the other. With tags: the pool's ID as a tag on the subnet. Without: the description of our own
   * pool names the subnet (pools we do not own are never written to; `exclusive` serialises the pool's readers).
   * Returns the pool as it is now.
   */
  async tieExistingSubnet(
    api: NeutronApi,
    pool: SubnetPool,
    subnet: Subnet,
    cidr: string,
    opts: { ownPool: boolean; exclusive: Exclusive; undo: Undo[] },
  ): Promise<SubnetPool> {
    if (this.support.tagExt) {
      if (subnet.tags.includes(pool.id)) return pool;
      const tied = await api.listSubnets({ cidr, tags: [pool.id] });
      const other = tied.find((s) => s.id !== subnet.id);
      if (other !== undefined) {
        throw fail.conflict(
          `subnet pool ${pool.name || pool.id} already stands for subnet ${other.id} of Neutron network ${other.network_id}; to use subnet ${subnet.id} of the same CIDR, name it with -o neutron.subnet.uuid and --ipam-opt neutron.subnet.uuid`,
        );
      }
      await api.addTag('subnets', subnet.id, pool.id);
      opts.undo.push(() => api.removeTag('subnets', subnet.id, pool.id).catch(ignoreNotFound));
      return pool;
    }
    const description = poolOfSubnetDescription(subnet.id);
    if (!opts.ownPool || pool.description === description) return pool;
    // Read afresh, one Docker network at a time: another of the same CIDR may have tied the pool to its subnet.
    return opts.exclusive(`pool-of-subnet:${pool.id}`, async () => {
      const now = await api.showSubnetPool(pool.id);
      const other = subnetOfPoolDescription(now.description);
      if (other === subnet.id) return now;
      if (other !== undefined) {
        throw fail.conflict(
          `subnet pool ${now.name} already stands for subnet ${other}, and this Neutron has no tag extension to share it with subnet ${subnet.id} of the same CIDR: give each Docker network its own pool with --ipam-opt neutron.subnet.uuid`,
        );
      }
      const marked = await api.updateSubnetPool(pool.id, { description });
      opts.undo.push(() => api.updateSubnetPool(pool.id, { description: now.description }).catch(ignoreNotFound));
      return marked;
    });
  }

  /**
   * A pre-existing subnet of `cidr` that CreateNetwork tied to pool `poolId`: tagged with its ID; without tags, the
   * subnet our pool's description names, else the only subnet of that CIDR on one of our networks (another
   * project's or a VM network's subnet of the same CIDR is never taken for ours); several → a conflict naming the
   * way out, never a guess.
   */
  async subnetTiedToPool(api: NeutronApi, poolId: string, cidr: string): Promise<Subnet | undefined> {
    if (this.support.tagExt)
      return onlyOne(await api.listSubnets({ cidr, tags: [poolId] }), `cidr=${cidr} tags=${poolId}`);
    let pool: SubnetPool | undefined;
    try {
      pool = await api.showSubnetPool(poolId);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const subnetId = pool === undefined ? undefined : subnetOfPoolDescription(pool.description);
    if (subnetId !== undefined)
      return onlyOne(await api.listSubnets({ id: subnetId, cidr }), `id=${subnetId} cidr=${cidr}`);
    const withCidr = await api.listSubnets({ cidr });
    if (withCidr.length === 0) return undefined;
    const networks = await api.listNetworks({ id: [...new Set(withCidr.map((s) => s.network_id))] });
    const ours = new Set(networks.filter((n) => this.dockerIdOfNetwork(n) !== undefined).map((n) => n.id));
    const subnets = withCidr.filter((s) => ours.has(s.network_id));
    if (subnets.length > 1) {
      throw fail.conflict(
        `Multiple Neutron subnets exist for the params cidr=${cidr}; this Neutron has no tag extension to tell which one subnet pool ${poolId} stands for: name the subnet with --ipam-opt neutron.subnet.uuid`,
      );
    }
    return subnets[0];
  }
}

/** The only subnet, undefined for none, a conflict for several (lookup.ts's `single`). */
function onlyOne(subnets: readonly Subnet[], params: string): Subnet | undefined {
  if (subnets.length > 1) throw fail.conflict(`Multiple Neutron subnets exist for the params ${params}`);
  return subnets[0];
}
