/**
 * The agent role of the embedded backend: one Linux bridge per network (`brq<net[:11]>`, or the name of the
 * network's `com.docker.network.bridge.name`), holding the gateway address of each of the network's subnets, so
 * containers on it reach their gateway (the host); its rules in the plugin's nftables table (isolation.ts) and,
 * on a host whose iptables would drop its traffic, in iptables (host-firewall.ts).
 */
import { InvalidAddressError, ipVersion, normalizeIp } from '../util/ip.ts';
import type { HostNetworkAgent, HostNetworkSpec, HostRoute, InterfaceAddress } from './binder.ts';
import { deleteBridgeIfUnused, ensureBridge } from './bridge.ts';
import { BindingError, bindingErrorReasons } from './errors.ts';
import { IpCommand, isAddressMissing, isNoSuchDevice, validateMtu } from './ip-command.ts';
import type { HostFirewall } from './host-firewall.ts';
import { type NetworkIsolation, NftIsolation } from './isolation.ts';
import { bridgeName, ownerAlias, validateInterfaceName } from './names.ts';
import { RecentHostRoutes } from './host-routes.ts';

export interface LinuxBridgeAgentOptions {
  /** The `ip` runner; default `new IpCommand()`. */
  ip?: IpCommand;
  /** Marks created devices with the alias `kuryr-ts:<owner>` so reconciliation can tell ours from others'. */
  owner?: string;
  /** Who keeps networks apart (isolation.ts); default `new NftIsolation()` (on), null = not managed. */
  isolation?: NetworkIsolation | null;
  /** The iptables rules a host with Docker's `FORWARD DROP` needs (host-firewall.ts); default none. */
  firewall?: HostFirewall | null;
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
  readonly #routes: RecentHostRoutes;
  readonly #isolation: NetworkIsolation | null;
  readonly #firewall: HostFirewall | null;

  constructor(options: LinuxBridgeAgentOptions = {}) {
    this.#ip = options.ip ?? new IpCommand();
    this.#isolation = options.isolation === undefined ? new NftIsolation() : options.isolation;
    this.#firewall = options.firewall ?? null;
    this.#alias = options.owner === undefined ? [] : ['alias', ownerAlias(options.owner)];
    this.#routes = new RecentHostRoutes(this.#ip);
  }

  async ensureNetwork(spec: HostNetworkSpec): Promise<void> {
    const { networkId, mtu, gateways } = spec;
    const bridge = validateInterfaceName(spec.bridge ?? bridgeName(networkId));
    validateMtu(mtu);
    const wanted = gateways.map(parseGateway);
    const ip = this.#ip;
    if (bridge !== bridgeName(networkId)) await this.#assertNotForeign(bridge);

    const created = await ensureBridge(ip, bridge);
    try {
      // Isolated before it is up (a new bridge is down): no moment with traffic but without the rules. The
      // plugin's nftables table and the host's iptables are independent: both at once.
      await allDone([
        this.#isolation?.ensureNetwork(bridge, gateways, {
          internal: spec.internal ?? false,
          masquerade: spec.masquerade ?? true,
        }),
        this.#firewall?.ensureNetwork(bridge),
      ]);
      // Repair a bridge someone changed (or that the `bridge` binding created without these settings).
      // STP goes off first: while it is on, the kernel refuses a forward delay below 2 s. Up before addressing:
      // taking a link down flushes its IPv6 addresses. One `ip -batch`.
      const repair: string[][] = created
        ? []
        : [
            ['link', 'set', 'dev', bridge, 'type', 'bridge', 'stp_state', '0'],
            ['link', 'set', 'dev', bridge, 'type', 'bridge', 'forward_delay', '0'],
          ];
      const up = await ip.batch([...repair, ['link', 'set', 'dev', bridge, 'mtu', String(mtu), ...this.#alias, 'up']]);
      if (up.failed !== undefined) throw up.failed.error;
      // A dump on its own: `run` retries one the kernel interrupted. A bridge this call made has no address of
      // its own yet (the kernel's IPv6 link-local ones are not ours to manage): nothing to read.
      const addresses = created ? [] : await ip.getAddresses(bridge);

      // Remove strangers first: deleting a primary IPv4 address also deletes the secondaries of its subnet,
      // which is why every wanted address is (re)placed afterwards rather than only the missing ones.
      const wantedKeys = new Set(wanted.map((g) => g.key));
      const changes: string[][] = [];
      for (const addr of addresses) {
        if (addr.scope !== 'global') continue; // link-local and host addresses are the kernel's
        const key = `${normalizeIp(addr.local)}/${addr.prefixlen}`;
        if (wantedKeys.has(key) && !addr.dadfailed) continue;
        changes.push(['addr', 'del', `${addr.local}/${addr.prefixlen}`, 'dev', bridge]);
      }
      for (const gateway of wanted) {
        // The gateway is ours alone on this segment: skip duplicate address detection, usable at once.
        const flags = gateway.version === 6 ? ['nodad'] : [];
        changes.push(['addr', 'replace', gateway.key, 'dev', bridge, ...flags]);
      }
      for (let from = 0; from < changes.length; ) {
        const { failed } = await ip.batch(changes.slice(from));
        if (failed === undefined) break;
        // An address gone meanwhile (e.g. with its primary) is fine: go on after it.
        if (changes[from + failed.index]?.[1] !== 'del' || !isAddressMissing(failed.error)) throw failed.error;
        from += failed.index + 1;
      }
    } catch (err) {
      if (created) {
        // best effort; `err` is the news
        await deleteBridgeIfUnused(ip, bridge).catch(() => {});
        if ((await ip.getLink(bridge).catch(() => true)) === undefined) {
          await this.#isolation?.removeNetwork(bridge).catch(() => {});
          await this.#firewall?.removeNetwork(bridge).catch(() => {});
        }
      }
      throw err;
    }
  }

  /** `networkId` may be '' with `name`: a bridge reconciliation found with no network behind it. */
  async removeNetwork(networkId: string, name?: string): Promise<void> {
    const bridge = validateInterfaceName(name ?? bridgeName(networkId));
    if (networkId === '' || bridge !== bridgeName(networkId)) await this.#assertNotForeign(bridge);
    const link = await this.#ip.getLink(bridge);
    if (link) {
      if (link.kind !== 'bridge') {
        throw new BindingError(
          bindingErrorReasons.deviceConflict,
          `device ${bridge} is a ${link.kind ?? 'plain'} device, not the network's bridge; not deleting it`,
        );
      }
    }
    if (link) {
      // Down first: a bridge that is down forwards nothing and has no route (its ports are disabled), so its
      // isolation and firewall rules can go while the kernel deletes it. Each deletion, of a device or of a rule,
      // waits for the kernel's RCU grace periods (tens of ms): at once they wait once.
      const { failed } = await this.#ip.batch([['link', 'set', 'dev', bridge, 'down']]);
      if (failed !== undefined && !isNoSuchDevice(failed.error)) throw failed.error;
    }
    const deleted = link ? this.#ip.deleteLink(bridge) : Promise.resolve(false);
    const rules = allDone([this.#isolation?.removeNetwork(bridge), this.#firewall?.removeNetwork(bridge)]);
    rules.catch(() => {}); // its failure is reported below; meanwhile it is no unhandled rejection
    try {
      await deleted;
    } catch (err) {
      // The bridge stays, down and so closed: DeleteNetwork again, or the next start's reconciliation, finishes.
      await rules.catch(() => {});
      throw err;
    }
    await rules;
  }

  /** The host's routes, as read at most a second ago (host-routes.ts). */
  hostRoutes(version?: 4 | 6): Promise<HostRoute[]> {
    return this.#routes.read(version);
  }

  /**
   * A bridge named by the network's options (`com.docker.network.bridge.name`) is ours only when it carries our
   * alias: another device of that name (someone else's bridge, an uplink) is never taken over or deleted.
   */
  async #assertNotForeign(bridge: string): Promise<void> {
    const alias = this.#alias[1];
    if (alias === undefined) return;
    const link = await this.#ip.getLink(bridge);
    if (link === undefined || link.alias === alias) return;
    throw new BindingError(
      bindingErrorReasons.deviceConflict,
      `device ${bridge} exists and was not made by this plugin: choose another com.docker.network.bridge.name`,
    );
  }
}

/** Waits for every step (none left running behind a failure); the first failure is the news. */
async function allDone(steps: ReadonlyArray<Promise<void> | undefined>): Promise<void> {
  const results = await Promise.allSettled(steps);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
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
