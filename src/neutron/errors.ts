/**
 * Neutron API errors, as both backends raise them: the HTTP status and Neutron's exception `type`
 * (`NetworkNotFound`, `IpAddressAlreadyAllocated`, ...), with Neutron's message text.
 */
export class NeutronError extends Error {
  override readonly name = 'NeutronError';
  readonly status: number;
  readonly type: string;
  /** `X-Openstack-Request-Id` of the failed call, when the backend has one. */
  readonly requestId: string | undefined;
  /** The Neutron call that failed (`POST /v2.0/ports`), when the backend is reached over HTTP. */
  readonly call: string | undefined;

  constructor(status: number, type: string, message: string, requestId?: string, call?: string) {
    super(message);
    this.status = status;
    this.type = type;
    this.requestId = requestId;
    this.call = call;
  }

  get isNotFound(): boolean {
    return this.status === 404;
  }

  get isConflict(): boolean {
    return this.status === 409;
  }
}

/** True when `err` is a Neutron 404 (resource, or tag, not found). */
export function isNotFound(err: unknown): boolean {
  return err instanceof NeutronError && err.status === 404;
}

/**
 * True when deleting a subnet pool failed because subnets are still allocated from it: 409 `SubnetPoolInUse`
 * as documented, or 400 `SubnetPoolDeleteError` as Neutron Zed really answers.
 */
export function isPoolInUse(err: unknown): boolean {
  return (
    err instanceof NeutronError && (err.status === 409 || (err.status === 400 && err.type === 'SubnetPoolDeleteError'))
  );
}

/** Rethrows anything but a Neutron 404: for deleting what may already be gone. */
export function ignoreNotFound(err: unknown): void {
  if (!isNotFound(err)) throw err;
}

/** True when `err` is a Neutron 409 (conflict / in use). */
export function isConflict(err: unknown): boolean {
  return err instanceof NeutronError && err.status === 409;
}

// Constructors for the error types the embedded store raises, with Neutron's message patterns.
export const neutronErrors = {
  networkNotFound: (id: string) => new NeutronError(404, 'NetworkNotFound', `Network ${id} could not be found.`),
  subnetNotFound: (id: string) => new NeutronError(404, 'SubnetNotFound', `Subnet ${id} could not be found.`),
  portNotFound: (id: string) => new NeutronError(404, 'PortNotFound', `Port ${id} could not be found.`),
  subnetPoolNotFound: (id: string) =>
    new NeutronError(404, 'SubnetPoolNotFound', `Subnet pool ${id} could not be found.`),
  securityGroupNotFound: (id: string) =>
    new NeutronError(404, 'SecurityGroupNotFound', `Security group ${id} does not exist`),
  tagNotFound: (resource: string, id: string, tag: string) =>
    new NeutronError(404, 'TagNotFound', `Tag ${tag} could not be found for ${resource} ${id}.`),
  badRequest: (detail: string) => new NeutronError(400, 'BadRequest', `Bad request: ${detail}.`),
  invalidInput: (detail: string) => new NeutronError(400, 'InvalidInput', `Invalid input for operation: ${detail}.`),
  invalidIpForSubnet: (ip: string) =>
    new NeutronError(400, 'InvalidIpForSubnet', `IP address ${ip} is not a valid IP for the specified subnet.`),
  ipAlreadyAllocated: (ip: string, subnetId: string) =>
    new NeutronError(409, 'IpAddressAlreadyAllocated', `IP address ${ip} already allocated in subnet ${subnetId}`),
  ipGenerationFailure: (networkId: string) =>
    new NeutronError(409, 'IpAddressGenerationFailure', `No more IP addresses available on network ${networkId}.`),
  macInUse: (networkId: string, mac: string) =>
    new NeutronError(
      409,
      'MacAddressInUse',
      `Unable to complete operation for network ${networkId}. The mac address ${mac} is in use.`,
    ),
  networkInUse: (id: string) =>
    new NeutronError(
      409,
      'NetworkInUse',
      `Unable to complete operation on network ${id}. There are one or more ports still in use on the network.`,
    ),
  subnetInUse: (id: string) =>
    new NeutronError(
      409,
      'SubnetInUse',
      `Unable to complete operation on subnet ${id}: One or more ports have an IP allocation from this subnet.`,
    ),
  /** What Neutron (Zed) answers for DELETE of a subnet pool that subnets are still allocated from. */
  subnetPoolDeleteError: (reason: string) =>
    new NeutronError(400, 'SubnetPoolDeleteError', `Unable to delete subnet pool: ${reason}.`),
  /** A tag call on a missing resource (Neutron names the collection with `_`: `security_groups`). */
  tagResourceNotFound: (resource: string, id: string) =>
    new NeutronError(404, 'TagResourceNotFound', `Resource ${resource.replaceAll('-', '_')} ${id} could not be found.`),
  securityGroupInUse: (id: string) => new NeutronError(409, 'SecurityGroupInUse', `Security Group ${id} in use.`),
  subnetAllocationError: (reason: string) =>
    new NeutronError(409, 'SubnetAllocationError', `Failed to allocate subnet: ${reason}.`),
  // ---- added for the embedded store (Neutron's exception names and messages) ----
  /** Neutron's generic `BadRequest` with a resource: `Bad subnets request: ...`. */
  badResourceRequest: (resource: string, msg: string) =>
    new NeutronError(400, 'BadRequest', `Bad ${resource} request: ${msg}.`),
  /** Unknown list filter with `filter-validation` on (a web-framework 400 in Neutron). */
  invalidFilter: (key: string) => new NeutronError(400, 'HTTPBadRequest', `${key} is invalid attribute for filtering`),
  /** A request attribute failed validation (Neutron's API layer, before the plugin). */
  invalidAttribute: (attr: string, reason: string) =>
    new NeutronError(400, 'HTTPBadRequest', `Invalid input for ${attr}. Reason: ${reason}.`),
  missingAttribute: (attr: string) =>
    new NeutronError(400, 'HTTPBadRequest', `Failed to parse request. Required attribute '${attr}' not specified`),
  unrecognizedAttributes: (keys: readonly string[]) =>
    new NeutronError(400, 'HTTPBadRequest', `Unrecognized attribute(s) '${keys.join(', ')}'`),
  invalidIpForNetwork: (ip: string) =>
    new NeutronError(
      400,
      'InvalidIpForNetwork',
      `IP address ${ip} is not a valid IP for any of the subnets on the specified network.`,
    ),
  portBound: (id: string, vifType: string, oldMac: string, newMac: string) =>
    new NeutronError(
      409,
      'PortBound',
      `Unable to complete operation on port ${id}, port is already bound, port type: ${vifType}, old_mac ${oldMac}, new_mac ${newMac}.`,
    ),
  macGenerationFailure: (networkId: string) =>
    new NeutronError(503, 'MacAddressGenerationFailure', `Unable to generate unique mac on network ${networkId}.`),
  minPrefixSubnetAllocationError: (prefixlen: number, min: number) =>
    new NeutronError(
      400,
      'MinPrefixSubnetAllocationError',
      `Unable to allocate subnet with prefix length ${prefixlen}, minimum allowed prefix is ${min}.`,
    ),
  maxPrefixSubnetAllocationError: (prefixlen: number, max: number) =>
    new NeutronError(
      400,
      'MaxPrefixSubnetAllocationError',
      `Unable to allocate subnet with prefix length ${prefixlen}, maximum allowed prefix is ${max}.`,
    ),
  prefixVersionMismatch: () =>
    new NeutronError(400, 'PrefixVersionMismatch', 'Cannot mix IPv4 and IPv6 prefixes in a subnet pool.'),
  illegalSubnetPoolPrefixBounds: (type: string, prefixlen: number, baseType: string, baseLen: number) =>
    new NeutronError(
      400,
      'IllegalSubnetPoolPrefixBounds',
      `Illegal prefix bounds: ${type}=${prefixlen}, ${baseType}=${baseLen}.`,
    ),
  illegalSubnetPoolPrefixUpdate: (msg: string) =>
    new NeutronError(400, 'IllegalSubnetPoolPrefixUpdate', `Illegal update to prefixes: ${msg}.`),
  invalidAllocationPool: (pool: string) =>
    new NeutronError(400, 'InvalidAllocationPool', `The allocation pool ${pool} is not valid.`),
  outOfBoundsAllocationPool: (pool: string, cidr: string) =>
    new NeutronError(
      400,
      'OutOfBoundsAllocationPool',
      `The allocation pool ${pool} spans beyond the subnet cidr ${cidr}.`,
    ),
  overlappingAllocationPools: (pool1: string, pool2: string, cidr: string) =>
    new NeutronError(
      409,
      'OverlappingAllocationPools',
      `Found overlapping allocation pools: ${pool1} and ${pool2} for subnet ${cidr}.`,
    ),
  gatewayConflictWithAllocationPools: (ip: string, pool: string) =>
    new NeutronError(
      409,
      'GatewayConflictWithAllocationPools',
      `Gateway ip ${ip} conflicts with allocation pool ${pool}.`,
    ),
  gatewayIpInUse: (ip: string, portId: string) =>
    new NeutronError(
      409,
      'GatewayIpInUse',
      `Current gateway ip ${ip} already in use by port ${portId}. Unable to update.`,
    ),
  securityGroupRuleExists: (ruleId: string) =>
    new NeutronError(409, 'SecurityGroupRuleExists', `Security group rule already exists. Rule id is ${ruleId}.`),
  duplicateSecurityGroupRuleInPost: () =>
    new NeutronError(400, 'DuplicateSecurityGroupRuleInPost', 'Duplicate Security Group Rule in POST.'),
  /** One of Neutron's security-group-rule 400s (`SecurityGroupInvalidPortRange`, ...), by type and message. */
  securityGroupRuleInvalid: (type: string, msg: string) => new NeutronError(400, type, msg),
  securityGroupDefaultAlreadyExists: () =>
    new NeutronError(409, 'SecurityGroupDefaultAlreadyExists', 'Default security group already exists.'),
  portSecurityAndIpRequiredForSecurityGroups: () =>
    new NeutronError(
      400,
      'PortSecurityAndIPRequiredForSecurityGroups',
      'Port security must be enabled and port must have an IP address in order to use security groups.',
    ),
  portSecurityPortHasSecurityGroup: () =>
    new NeutronError(
      409,
      'PortSecurityPortHasSecurityGroup',
      'Port has security group associated. Cannot disable port security or IP address until security group is removed.',
    ),
  addressPairAndPortSecurityRequired: () =>
    new NeutronError(
      409,
      'AddressPairAndPortSecurityRequired',
      'Port Security must be enabled in order to have allowed address pairs on a port.',
    ),
  duplicateAddressPairInRequest: (mac: string, ip: string) =>
    new NeutronError(
      400,
      'DuplicateAddressPairInRequest',
      `Request contains duplicate address pair: mac_address ${mac} ip_address ${ip}.`,
    ),
} as const;
