/**
 * How the driver recognises its Neutron resources again: by tags (kuryr-libnetwork's normal mode), or, on a
 * Neutron without the tag extensions, by names, device IDs and descriptions, as kuryr-libnetwork does. kuryr's two
 * flags are kept apart: `tag` (networks take tags) decides how Docker networks are found, `tagExt` (subnets,
 * ports and subnet pools take tags) how endpoints' ports are found and how the IPAM marks what it made or took.
 *
 * Without tags the original names networks and ports after Docker IDs; so do we, so that both read each other's
 * resources. Unlike the original, a pre-existing network keeps being a pre-existing network (its name and
 * description are recorded in its description and given back by DeleteNetwork instead of deleting it), ports
 * the IPAM created are deleted, taken-over ports are handed back, and an endpoint's port is found by its
 * `device_id` so that a taken-over port keeps its operator's name.
 */
import type { ListFilter } from '../neutron/api.ts';
import type { Network, Port } from '../neutron/types.ts';
import { DOCKER_ID_PATTERN, isDockerId } from '../util/ids.ts';
import {
  DEVICE_OWNER,
  existingNetworkTag,
  idTags,
  isIdTag,
  LOWER_HALF_PREFIX,
  networkName,
  PORT_CREATED_TAG,
  PORT_EXISTING_TAG,
  UNBOUND_PORT_NAME,
  UPPER_HALF_PREFIX,
} from './tags.ts';

/** kuryr's two flags: which resources take tags on this Neutron. */
export interface TagSupport {
  /** Networks take tags (`standard-attr-tag` or the legacy `tag`). */
  tag: boolean;
  /** Subnets, ports and subnet pools take tags (`standard-attr-tag` or the legacy `tag-ext`). */
  tagExt: boolean;
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

  /** True while the port still belongs to an endpoint (DeleteEndpoint has not run): its host side may exist. */
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
}
