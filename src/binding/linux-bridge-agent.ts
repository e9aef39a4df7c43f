/**
 * The agent role of the embedded backend: one Linux bridge `brq<net[:11]>` per network, holding the
 * gateway address of each of the network's subnets, so containers on it reach their gateway (the host).
 */
import { InvalidAddressError, ipVersion, normalizeIp } from '../util/ip.ts';
import type { HostNetworkAgent, HostNetworkSpec, InterfaceAddress } from './binder.ts';
import { deleteBridgeIfUnused, ensureBridge } from './bridge.ts';
import { BindingError, bindingErrorReasons } from './errors.ts';
import { IpCommand, isAddressMissing, validateMtu } from './ip-command.ts';
import { type NetworkIsolation, NftIsolation } from './isolation.ts';
import { bridgeName, ownerAlias } from './names.ts';

export interface LinuxBridgeAgentOptions {
  /** The `ip` runner; default `new IpCommand()`. */
  ip?: IpCommand;
  /** Marks created devices with the alias `kuryr-ts:<owner>` so reconciliation can tell ours from others'. */
  owner?: string;
  /** Who keeps networks apart (isolation.ts); default `new NftIsolation()` (on), null = not managed. */
  isolation?: NetworkIsolation | null;
}

interface Gateway {
  /** `address/prefix` with the address in canonical form: the identity of an address on a link. */
  key: string;
  version: 4 | 6;
}

/** Keeps each network's bridge up, with its MTU and exactly its gateway addresses. */
export class LinuxBridgeAgent implements HostNetworkAgent {
  readonly #ip: IpCommand;
  readonly #alias: string[];
  readonly #isolation: NetworkIsolation | null;

  constructor(options: LinuxBridgeAgentOptions = {}) {
    this.#ip = options.ip ?? new IpCommand();
    this.#isolation = options.isolation === undefined ? new NftIsolation() : options.isolation;
    this.#alias = options.owner === undefined ? [] : ['alias', ownerAlias(options.owner)];
  }

  async ensureNetwork({ networkId, mtu, gateways }: HostNetworkSpec): Promise<void> {
    const bridge = bridgeName(networkId);
    validateMtu(mtu);
    const wanted = gateways.map(parseGateway);
    const ip = this.#ip;

    const created = await ensureBridge(ip, bridge);
    try {
      // Isolated before it is up (a new bridge is down): no moment with traffic but without the rules.
      await this.#isolation?.ensureNetwork(bridge, gateways);
      // Repair a bridge someone changed (or that the `bridge` binding created without these settings).
      // STP goes off first: while it is on, the kernel refuses a forward delay below 2 s.
      if (!created) {
        await ip.run(['link', 'set', 'dev', bridge, 'type', 'bridge', 'stp_state', '0']);
        await ip.run(['link', 'set', 'dev', bridge, 'type', 'bridge', 'forward_delay', '0']);
      }
      // Up before addressing: taking a link down flushes its IPv6 addresses.
      await ip.run(['link', 'set', 'dev', bridge, 'mtu', String(mtu), ...this.#alias, 'up']);

      // Remove strangers first: deleting a primary IPv4 address also deletes the secondaries of its subnet,
      // which is why every wanted address is (re)placed afterwards rather than only the missing ones.
      const wantedKeys = new Set(wanted.map((g) => g.key));
      for (const addr of await ip.getAddresses(bridge)) {
        if (addr.scope !== 'global') continue; // link-local and host addresses are the kernel's
        const key = `${normalizeIp(addr.local)}/${addr.prefixlen}`;
        if (wantedKeys.has(key) && !addr.dadfailed) continue;
        try {
          await ip.run(['addr', 'del', `${addr.local}/${addr.prefixlen}`, 'dev', bridge]);
        } catch (err) {
          if (!isAddressMissing(err)) throw err; // gone meanwhile (e.g. with its primary): fine
        }
      }
      for (const gateway of wanted) {
        // The gateway is ours alone on this segment: skip duplicate address detection, usable at once.
        const flags = gateway.version === 6 ? ['nodad'] : [];
        await ip.run(['addr', 'replace', gateway.key, 'dev', bridge, ...flags]);
      }
    } catch (err) {
      if (created) {
        // best effort; `err` is the news
        await deleteBridgeIfUnused(ip, bridge).catch(() => {});
        if ((await ip.getLink(bridge).catch(() => true)) === undefined) {
          await this.#isolation?.removeNetwork(bridge).catch(() => {});
        }
      }
      throw err;
    }
  }

  async removeNetwork(networkId: string): Promise<void> {
    const bridge = bridgeName(networkId);
    const link = await this.#ip.getLink(bridge);
    if (link) {
      if (link.kind !== 'bridge') {
        throw new BindingError(
          bindingErrorReasons.deviceConflict,
          `device ${bridge} is a ${link.kind ?? 'plain'} device, not the network's bridge; not deleting it`,
        );
      }
      await this.#ip.deleteLink(bridge);
    }
    // After the bridge: its containers stay isolated until they are gone with it.
    await this.#isolation?.removeNetwork(bridge);
  }
}

function parseGateway({ address, prefixLength }: InterfaceAddress): Gateway {
  let version: 4 | 6;
  try {
    version = ipVersion(address);
  } catch (err) {
    if (!(err instanceof InvalidAddressError)) throw err;
    throw new BindingError(bindingErrorReasons.invalidInput, `invalid gateway address ${JSON.stringify(address)}`);
  }
  const maxPrefix = version === 4 ? 32 : 128;
  if (!Number.isInteger(prefixLength) || prefixLength < 1 || prefixLength > maxPrefix) {
    throw new BindingError(
      bindingErrorReasons.invalidInput,
      `invalid prefix length ${JSON.stringify(prefixLength)} for gateway ${address}: must be 1..${maxPrefix}`,
    );
  }
  return { key: `${normalizeIp(address)}/${prefixLength}`, version };
}
