/**
 * Request schemas of the libnetwork remote NetworkDriver and IpamDriver protocol (moby libnetwork docs/remote.md, docs/ipam.md).
 *
 * Docker sends every field of its Go structs (empty strings, `false`, `null` included); newer engines may add
 * fields, so unknown fields are accepted and dropped. Values that later reach Neutron or a host command are
 * checked here (IDs, CIDRs, addresses, MACs) so that the driver only ever sees well-formed input. The request
 * types are inferred from these schemas and are the driver's input types: declared once, here, in the driver's
 * layer, so that the protocol layer (plugin/routes.ts), which checks each body with them, depends down on it.
 */
import { DOCKER_ID_PATTERN } from '../util/ids.ts';
import { array, boolean, type Infer, integer, object, record, string, unknown } from '../util/schema.ts';
import { cidrContains, cidrContainsIp, isCidr, isIp, isMac, parseCidr, splitAddressWithPrefix } from '../util/ip.ts';

/** 64 lowercase hex chars (local networks/endpoints) or 25 lowercase alphanumerics (swarm). */
export const dockerId = string().regex(
  new RegExp(`^(?:${DOCKER_ID_PATTERN})$`),
  'must be a Docker ID (64 lowercase hex characters, or 25 for swarm)',
);

const emptyOr = (check: (s: string) => boolean, what: string) =>
  string()
    .max(128)
    .satisfies((s) => s === '' || check(s), `must be empty or ${what}`);

const cidrOrEmpty = emptyOr(isCidr, 'a CIDR such as 10.0.0.0/24');
const ipOrEmpty = emptyOr(isIp, 'an IPv4 or IPv6 address');
const macOrEmpty = emptyOr(isMac, 'a MAC address such as 02:42:ac:11:00:02');
/** `null` and missing mean "no options". */
const optionsMap = record(string(), unknown()).nullish();
/** IPAM options are string → string; `null` and missing mean none. */
const stringMap = record(string().max(1024), string().max(4096)).nullish();

/**
 * True unless both are given and the gateway address lies outside the pool (Docker's gateway is always an address
 * of its pool; the placeholders `0.0.0.0/0` and `::/0` mean "none"). A foreign gateway would end up on the host's
 * bridge, with a route to a network that is not this one's.
 */
function gatewayInsidePool(d: { Pool?: string | undefined; Gateway?: string | undefined }): boolean {
  if (!d.Pool || !d.Gateway || !isCidr(d.Pool) || !isCidr(d.Gateway)) return true;
  const gateway = splitAddressWithPrefix(d.Gateway);
  return gateway.prefixLength === 0 || cidrContainsIp(parseCidr(d.Pool), gateway.address);
}

const ipamData = object({
  AddressSpace: string().max(256).optional(),
  Pool: cidrOrEmpty.optional(),
  Gateway: cidrOrEmpty.optional(),
  AuxAddresses: record(string().max(256), cidrOrEmpty).nullish(),
}).refine(gatewayInsidePool, 'must be an address inside Pool', ['Gateway']);
export type IpamData = Infer<typeof ipamData>;

export const createNetworkRequest = object({
  NetworkID: dockerId,
  Options: optionsMap,
  IPv4Data: array(ipamData).max(16).nullish(),
  IPv6Data: array(ipamData).max(16).nullish(),
});
export type CreateNetworkRequest = Infer<typeof createNetworkRequest>;

export const networkRequest = object({ NetworkID: dockerId });
export type NetworkRequest = Infer<typeof networkRequest>;

export const endpointRequest = object({ NetworkID: dockerId, EndpointID: dockerId });
export type EndpointRequest = Infer<typeof endpointRequest>;

const EXPOSED_PORTS = 'com.docker.network.endpoint.exposedports';
/** IP protocol numbers Docker exposes (ICMP, TCP, UDP, SCTP). */
const EXPOSED_PROTOCOLS = new Set([1, 6, 17, 132]);

/** `{Proto, Port}` as a Neutron rule can take it: port 1–65535 (ICMP ignores the port). */
function isExposedPort(entry: unknown): boolean {
  if (typeof entry !== 'object' || entry === null) return false;
  const { Proto, Port } = entry as { Proto?: unknown; Port?: unknown };
  if (typeof Proto !== 'number' || !EXPOSED_PROTOCOLS.has(Proto)) return false;
  if (typeof Port !== 'number' || !Number.isInteger(Port) || Port > 65535) return false;
  return Port >= 1 || (Proto === 1 && Port === 0);
}

/**
 * Endpoint and sandbox options; their exposed ports become Neutron security-group rules, so they are checked
 * here, before anything is created (Neutron refuses port 0, after the endpoint's port already exists).
 */
const endpointOptions = optionsMap.refine(
  (options) => {
    const list = options?.[EXPOSED_PORTS];
    return list === undefined || list === null || (Array.isArray(list) && list.every(isExposedPort));
  },
  'must be a list of {Proto: 1, 6, 17 or 132, Port: 1-65535}',
  [EXPOSED_PORTS],
);

export const createEndpointRequest = object({
  NetworkID: dockerId,
  EndpointID: dockerId,
  Interface: object({
    Address: cidrOrEmpty.optional(),
    AddressIPv6: cidrOrEmpty.optional(),
    MacAddress: macOrEmpty.optional(),
  }).nullish(),
  Options: endpointOptions,
});
export type CreateEndpointRequest = Infer<typeof createEndpointRequest>;

/** True when `s` holds a C0/C1 control character or DEL (NUL, newline, escape sequences, ...). */
function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

/**
 * The sandbox path is only informational for us (Docker moves the interface itself), so any absolute path is
 * accepted — a daemon with another --exec-root or in rootless mode uses other directories — but never one with
 * control characters (no netns path has them; they would only serve to forge log lines or break commands).
 */
const sandboxKey = string()
  .max(4096)
  .regex(/^\//, 'must be an absolute path')
  .satisfies((s) => !hasControlCharacter(s), 'must not contain control characters')
  .satisfies((s) => !s.split('/').includes('..'), 'must not contain ".." components');

export const joinRequest = object({
  NetworkID: dockerId,
  EndpointID: dockerId,
  SandboxKey: sandboxKey,
  Options: optionsMap,
});
export type JoinRequest = Infer<typeof joinRequest>;

export const externalConnectivityRequest = object({
  NetworkID: dockerId,
  EndpointID: dockerId,
  Options: endpointOptions,
});
export type ExternalConnectivityRequest = Infer<typeof externalConnectivityRequest>;

export const allocateNetworkRequest = object({
  NetworkID: dockerId,
  Options: record(string(), string()).nullish(),
  IPv4Data: array(ipamData).nullish(),
  IPv6Data: array(ipamData).nullish(),
});
export type AllocateNetworkRequest = Infer<typeof allocateNetworkRequest>;

export const discoveryRequest = object({
  DiscoveryType: integer(),
  DiscoveryData: unknown(),
});

export const gwAllocCheckRequest = object({ Options: optionsMap });

/**
 * True unless the pool ID carries an ip-range (`<uuid>@<cidr>@<range>`) that is not inside its CIDR. RequestPool
 * never issues such an ID; the driver would narrow the subnet's allocation pools to the (empty) intersection.
 */
function rangeInsideCidr(id: string): boolean {
  const [, cidr, range, ...rest] = id.split('@');
  if (cidr === undefined || range === undefined || rest.length > 0) return true;
  return isCidr(cidr) && isCidr(range) && cidrContains(parseCidr(cidr), parseCidr(range));
}

/** Pool IDs are ours (driver/pool-id.ts); here only their outer form is checked. */
const poolId = string()
  .min(1, 'must not be empty')
  .max(256)
  .regex(/^[0-9a-fA-F:./@-]+$/, 'must be a pool ID returned by RequestPool')
  .satisfies(rangeInsideCidr, 'must be a pool ID returned by RequestPool (its ip-range lies outside its CIDR)');

export const requestPoolRequest = object({
  AddressSpace: string().max(256).optional(),
  Pool: cidrOrEmpty.optional(),
  SubPool: cidrOrEmpty.optional(),
  Options: stringMap,
  V6: boolean().optional(),
});
export type RequestPoolRequest = Infer<typeof requestPoolRequest>;

export const releasePoolRequest = object({ PoolID: poolId });
export type ReleasePoolRequest = Infer<typeof releasePoolRequest>;

export const requestAddressRequest = object({
  PoolID: poolId,
  Address: ipOrEmpty.optional(),
  Options: stringMap,
});
export type RequestAddressRequest = Infer<typeof requestAddressRequest>;

export const releaseAddressRequest = object({
  PoolID: poolId,
  Address: ipOrEmpty,
});
export type ReleaseAddressRequest = Infer<typeof releaseAddressRequest>;
