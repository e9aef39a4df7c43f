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

  constructor(status: number, type: string, message: string, requestId?: string) {
    super(message);
    this.status = status;
    this.type = type;
    this.requestId = requestId;
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
  subnetPoolInUse: (id: string, reason: string) =>
    new NeutronError(409, 'SubnetPoolInUse', `Unable to complete operation on subnet pool ${id}. ${reason}.`),
  securityGroupInUse: (id: string) => new NeutronError(409, 'SecurityGroupInUse', `Security Group ${id} in use.`),
  subnetAllocationError: (reason: string) =>
    new NeutronError(409, 'SubnetAllocationError', `Failed to allocate subnet: ${reason}.`),
} as const;
