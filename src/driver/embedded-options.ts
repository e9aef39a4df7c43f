/**
 * The options of Docker's bridge driver that the embedded backend honours (its agent plays the bridge driver's
 * part on the host), and where they are kept: the MTU is the Neutron network's `mtu`; the others are tags of the
 * Neutron network, `<option key>=<value>`, written only when they differ from the default, so that a restart
 * (restoreHostNetworks), `DeleteNetwork`, `CreateEndpoint` and published ports find them again:
 *
 * | `-o` key | default | tag |
 * |---|---|---|
 * | `com.docker.network.driver.mtu` | 1500 | (network `mtu`) |
 * | `com.docker.network.bridge.name` | `brq<network[:11]>` | `com.docker.network.bridge.name=<name>` |
 * | `com.docker.network.bridge.enable_icc` | true | `com.docker.network.bridge.enable_icc=false` |
 * | `com.docker.network.bridge.enable_ip_masquerade` | true | `com.docker.network.bridge.enable_ip_masquerade=false` |
 * | `com.docker.network.bridge.host_binding_ipv4` | (none: every address) | `com.docker.network.bridge.host_binding_ipv4=<ip>` |
 * | `--internal` (`com.docker.network.internal` outside the generic map) | false | `com.docker.network.internal=true` |
 *
 * Booleans are parsed as Go's `strconv.ParseBool`, as the bridge driver does: anything else is refused.
 */
import type { HostNetworkSpec } from '../binding/binder.ts';
import { bridgeName, InterfaceNameError, validateInterfaceName } from '../binding/names.ts';
import { fail } from '../errors.ts';
import type { Network } from '../neutron/types.ts';
import { InvalidAddressError, ipVersion, normalizeIp } from '../util/ip.ts';
import type { DriverRuntime } from './context.ts';
import { genericOptions } from './options.ts';

export const MTU_OPTION = 'com.docker.network.driver.mtu';
export const BRIDGE_NAME_TAG = 'com.docker.network.bridge.name';
export const ICC_TAG = 'com.docker.network.bridge.enable_icc';
export const MASQUERADE_TAG = 'com.docker.network.bridge.enable_ip_masquerade';
/** The default host address of published ports (`-p`) of the network's containers. */
export const HOST_BINDING_IPV4_TAG = 'com.docker.network.bridge.host_binding_ipv4';
export const INTERNAL_TAG = 'com.docker.network.internal';

/** What a network keeps of the bridge driver's options (besides its MTU). */
export interface BridgeOptions {
  /** The bridge's name; undefined = `brq<network[:11]>`. */
  bridge?: string;
  icc: boolean;
  masquerade: boolean;
  internal: boolean;
  /** Default host IPv4 address of published ports; undefined = every address. */
  hostBindingIpv4?: string;
}

/** The options of one `docker network create`, checked. */
export interface RequestedBridgeOptions extends BridgeOptions {
  mtu?: number;
}

const MTU_MIN = 68;
const MTU_MAX = 65535;

/** Go's strconv.ParseBool. */
function parseGoBool(key: string, value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  const text = String(value);
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  throw fail.invalid(`option ${key} must be true or false, got ${JSON.stringify(value)}`);
}

function present(value: unknown): boolean {
  return value !== undefined && value !== null && value !== '';
}

/** The bridge driver's options of a CreateNetwork request (`Options`, with the `-o` map inside). */
export function parseBridgeOptions(
  options: Readonly<Record<string, unknown>> | null | undefined,
): RequestedBridgeOptions {
  const generic = genericOptions(options);
  const out: RequestedBridgeOptions = {
    icc: present(generic[ICC_TAG]) ? parseGoBool(ICC_TAG, generic[ICC_TAG]) : true,
    masquerade: present(generic[MASQUERADE_TAG]) ? parseGoBool(MASQUERADE_TAG, generic[MASQUERADE_TAG]) : true,
    internal: present(options?.[INTERNAL_TAG]) ? parseGoBool(INTERNAL_TAG, options?.[INTERNAL_TAG]) : false,
  };
  const mtu = generic[MTU_OPTION];
  if (present(mtu)) {
    const text = String(mtu).trim();
    const value = /^\d{1,6}$/.test(text) ? Number(text) : Number.NaN;
    if (!(value >= MTU_MIN && value <= MTU_MAX)) {
      throw fail.invalid(
        `option ${MTU_OPTION} must be a number from ${MTU_MIN} to ${MTU_MAX}, got ${JSON.stringify(mtu)}`,
      );
    }
    out.mtu = value;
  }
  const name = generic[BRIDGE_NAME_TAG];
  if (present(name)) {
    try {
      out.bridge = validateInterfaceName(String(name));
    } catch (err) {
      if (!(err instanceof InterfaceNameError)) throw err;
      throw fail.invalid(`option ${BRIDGE_NAME_TAG}: ${err.message}`);
    }
  }
  const binding = generic[HOST_BINDING_IPV4_TAG];
  if (present(binding)) {
    let address: string | undefined;
    try {
      address = ipVersion(String(binding)) === 4 ? normalizeIp(String(binding)) : undefined;
    } catch (err) {
      if (!(err instanceof InvalidAddressError)) throw err;
    }
    if (address === undefined) {
      throw fail.invalid(`option ${HOST_BINDING_IPV4_TAG} must be an IPv4 address, got ${JSON.stringify(binding)}`);
    }
    out.hostBindingIpv4 = address;
  }
  return out;
}

/** The tags that keep the options that differ from the defaults. */
export function bridgeOptionTags(options: BridgeOptions): string[] {
  return [
    ...(options.bridge === undefined ? [] : [`${BRIDGE_NAME_TAG}=${options.bridge}`]),
    ...(options.icc ? [] : [`${ICC_TAG}=false`]),
    ...(options.masquerade ? [] : [`${MASQUERADE_TAG}=false`]),
    ...(options.internal ? [`${INTERNAL_TAG}=true`] : []),
    ...(options.hostBindingIpv4 === undefined ? [] : [`${HOST_BINDING_IPV4_TAG}=${options.hostBindingIpv4}`]),
  ];
}

/** True for a tag `bridgeOptionTags` writes. */
export function isBridgeOptionTag(tag: string): boolean {
  return [BRIDGE_NAME_TAG, ICC_TAG, MASQUERADE_TAG, INTERNAL_TAG, HOST_BINDING_IPV4_TAG].some((key) =>
    tag.startsWith(`${key}=`),
  );
}

/** The options a network was created with, from its tags (defaults for a network without them). */
export function bridgeOptionsOf(network: Pick<Network, 'tags'>): BridgeOptions {
  const value = (key: string) => {
    const tag = network.tags.find((t) => t.startsWith(`${key}=`));
    return tag === undefined ? undefined : tag.slice(key.length + 1);
  };
  const bridge = value(BRIDGE_NAME_TAG);
  const hostBindingIpv4 = value(HOST_BINDING_IPV4_TAG);
  return {
    ...(bridge === undefined ? {} : { bridge }),
    icc: value(ICC_TAG) !== 'false',
    masquerade: value(MASQUERADE_TAG) !== 'false',
    internal: value(INTERNAL_TAG) === 'true',
    ...(hostBindingIpv4 === undefined ? {} : { hostBindingIpv4 }),
  };
}

/** The network's bridge: the option's name, else `brq<network[:11]>`. */
export function bridgeOf(network: Pick<Network, 'id' | 'tags'>): string {
  return bridgeOptionsOf(network).bridge ?? bridgeName(network.id);
}

/** What the embedded agent needs of a network: bridge, MTU, gateways, and how traffic leaves it. */
export function hostNetworkSpec(network: Network, gateways: HostNetworkSpec['gateways']): HostNetworkSpec {
  const options = bridgeOptionsOf(network);
  return {
    networkId: network.id,
    mtu: network.mtu > 0 ? network.mtu : 1500,
    gateways,
    bridge: options.bridge ?? bridgeName(network.id),
    internal: options.internal,
    masquerade: options.masquerade,
  };
}

/** What the binder needs of the network of a port: its bridge and whether its ports talk to each other. */
export function bindOptions(network: Pick<Network, 'id' | 'tags'>): { bridge: string; icc: boolean } {
  const options = bridgeOptionsOf(network);
  return { bridge: options.bridge ?? bridgeName(network.id), icc: options.icc };
}

/**
 * CreateNetwork on the embedded backend: give the network the requested MTU and option tags (a network we
 * created; a pre-existing one named with `neutron.net.*` is left as it is). Returns the network as stored.
 */
export async function applyBridgeOptions(
  rt: DriverRuntime,
  dockerId: string,
  network: Network,
  options: RequestedBridgeOptions | undefined,
): Promise<Network> {
  if (options === undefined || rt.marks.isExistingNetwork(network, dockerId)) return network;
  let out = network;
  if (options.mtu !== undefined && out.mtu !== options.mtu) {
    out = { ...(await rt.neutron.updateNetwork(out.id, { mtu: options.mtu })), tags: out.tags };
  }
  const wanted = bridgeOptionTags(options);
  const current = out.tags.filter(isBridgeOptionTag);
  if (current.length !== wanted.length || !wanted.every((t) => current.includes(t))) {
    const tags = await rt.neutron.replaceTags('networks', out.id, [
      ...out.tags.filter((t) => !isBridgeOptionTag(t)),
      ...wanted,
    ]);
    out = { ...out, tags };
  }
  return out;
}
