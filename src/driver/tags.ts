/**
 * Neutron tags and names written by kuryr-libnetwork, reproduced exactly so anything that inspects Neutron
 * (and kuryr-libnetwork itself) recognises our resources.
 */

/** Prefix of the first half of a Docker network/endpoint ID tag. */
export const LOWER_HALF_PREFIX = 'kuryr.net.uuid.lh:';
/** Prefix of the second half of a Docker network/endpoint ID tag. */
export const UPPER_HALF_PREFIX = 'kuryr.net.uuid.uh:';
/** Prefix of the tag that marks a pre-existing network used by a Docker network. */
export const EXISTING_NETWORK_PREFIX = 'kuryr.net.existing:';
/** On ports the IPAM driver created. */
export const PORT_CREATED_TAG = 'compute:kuryr';
/** On pre-existing ports the IPAM driver took over. */
export const PORT_EXISTING_TAG = 'kuryr.port.existing';
/** On pre-existing subnet pools used through `neutron.pool.*`. */
export const POOL_EXISTING_TAG = 'kuryr.subnetpool.existing';
/** `device_owner` of the ports we bind. */
export const DEVICE_OWNER = 'compute:kuryr';
/** Name of ports created by the IPAM driver (kept after binding, as the original does in tag mode). */
export const UNBOUND_PORT_NAME = 'kuryr-unbound-port';
/** Prefix of subnets we create. */
export const SUBNET_NAME_PREFIX = 'kuryr-subnet-';

/**
 * The tags that identify a Docker network or endpoint: `lh:<first 32 chars>` and, for IDs longer than 32
 * characters, `uh:<chars 33-64>` (Neutron's legacy tag limit was 60 characters).
 */
export function idTags(dockerId: string): string[] {
  const tags = [LOWER_HALF_PREFIX + dockerId.slice(0, 32)];
  if (dockerId.length > 32) tags.push(UPPER_HALF_PREFIX + dockerId.slice(32, 64));
  return tags;
}

/** The tag marking a pre-existing network as used by Docker network `dockerId`. */
export function existingNetworkTag(dockerId: string): string {
  return EXISTING_NETWORK_PREFIX + dockerId.slice(0, 12);
}

/** True for any tag that kuryr writes to identify a Docker network or endpoint. */
export function isIdTag(tag: string): boolean {
  return (
    tag.startsWith(LOWER_HALF_PREFIX) || tag.startsWith(UPPER_HALF_PREFIX) || tag.startsWith(EXISTING_NETWORK_PREFIX)
  );
}

/** Name of a Neutron network created for a Docker network. */
export function networkName(dockerNetworkId: string): string {
  return `kuryr-net-${dockerNetworkId.slice(0, 8)}`;
}

/** Name of a Neutron subnet created for a Docker pool CIDR. */
export function subnetName(cidr: string): string {
  return SUBNET_NAME_PREFIX + cidr;
}

/** Name of a subnet pool created for a Docker pool CIDR (`kuryrPool-10.0.0.0/24`). */
export function poolName(prefix: string, cidr: string): string {
  return `${prefix}-${cidr}`;
}

/** `tags` with `remove` taken out and `add` put in (no duplicates, order kept). */
export function withTags(tags: readonly string[], add: readonly string[], remove: readonly string[] = []): string[] {
  const out = tags.filter((t) => !remove.includes(t));
  for (const t of add) if (!out.includes(t)) out.push(t);
  return out;
}
