/**
 * Published ports of the embedded backend (`docker run -p` / `-P`): destination NAT to the container, in the
 * plugin's own nftables table (`table inet kuryr_ts`, shared with isolation.ts), in chains and maps of its own,
 * all named `publish_…`. The ruleset is fixed; each published port is one map element whose comment names its
 * endpoint and bridge (`<endpoint id> <bridge>`), so the kernel holds the whole state: Revoke, DeleteEndpoint,
 * a restart and `kuryr gc` all find it again there. The only thing kept in memory is a shortcut: which endpoints
 * publish anything, as last read and then written by this process, so that the Revoke and DeleteEndpoint of
 * the many endpoints that publish nothing ask `nft` nothing (a process unpublishes only its own endpoints, and
 * reads the kernel again after a restart).
 *
 * - `publish_addr4` (`host address . protocol . host port : container address . container port`) for
 *   `-p IP:port:port`, `publish_any4` (`protocol . host port : …`) for every host address.
 * - `publish_prerouting` (nat, prerouting) and `publish_output` (nat, output): packets to a local address
 *   (`fib daddr type local`) are DNATed through the maps: from other machines, from containers (hairpin), and
 *   from the host itself, 127.0.0.1 included.
 * - `publish_postrouting` (nat, postrouting): connections from the host itself are masqueraded (their source
 *   may be 127.0.0.1, which must not leave the host), and so are those from the container's own bridge
 *   (`publish_hairpin`: replies would otherwise go straight back over the bridge, never un-NATed). Clients
 *   from elsewhere keep their address.
 * - 127.0.0.1 is DNATed out of the host, which the kernel allows only with `route_localnet` on the outgoing
 *   device: it is set on the bridges that hold a published endpoint (`publish_bridges`) and only there, and
 *   `publish_input` (filter, input) drops what that would otherwise let in: a packet to 127.0.0.0/8 from such
 *   a bridge that is not a reply of a published connection.
 *
 * Isolation (isolation.ts) lets DNATed connections into a network and their replies out of it. A port another
 * endpoint publishes, or a host process listens on (`ss`), is refused with `PortTakenError` and nothing
 * changes. Every change is one nftables transaction (all or nothing), sent with the reads to the process's
 * long-lived `nft` (nft-session.ts, shared with isolation.ts): no process per published port. The last element
 * takes the publish chains with it, and the table too when nothing else is in it.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { ipVersion, normalizeIp } from '../util/ip.ts';
import { BindingError, bindingErrorReasons } from './errors.ts';
import { CommandError, type CommandRunner, execRunner, runCommand } from './exec.ts';
import { DEFAULT_ISOLATION_TABLE } from './isolation.ts';
import { validateInterfaceName } from './names.ts';
import { runNft } from './nft-command.ts';
import { type NftSession, nftSessionFor } from './nft-session.ts';

export type Transport = 'tcp' | 'udp' | 'sctp';
const TRANSPORTS: readonly Transport[] = ['tcp', 'udp', 'sctp'];

/** One `-p`: a host port (or range; 0 = any free port) on one host address (or all) to a container port. */
export interface PortMapping {
  proto: Transport;
  containerPort: number;
  /** A host IPv4 address; undefined = every host address. */
  hostIp?: string | undefined;
  /** First host port of the range; 0 = any free (ephemeral) port. */
  hostPort: number;
  /** Last host port of the range (= hostPort for one port; ignored when hostPort is 0). */
  hostPortEnd: number;
}

export interface PublishRequest {
  endpointId: string;
  /** The bridge the container's veth is plugged into. */
  bridge: string;
  /** The container's IPv4 address. */
  containerIp: string;
  /** The container's port in the bridge (`tap…`): hairpin mode goes on, see `setHairpin`. */
  hostDevice?: string;
  mappings: readonly PortMapping[];
}

/** A port as published: what the kernel holds. */
export interface PublishedPort {
  endpointId: string;
  bridge: string;
  proto: Transport;
  /** undefined: every host address. */
  hostIp?: string | undefined;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

export interface PortPublisher {
  /**
   * Publish the endpoint's ports (idempotent: a mapping already in place for the endpoint is kept, with the
   * host port it got). Resolves to every port the endpoint publishes. `PortTakenError` when a port is taken.
   */
  publish(req: PublishRequest): Promise<PublishedPort[]>;
  /** Remove every port of the endpoint; resolves to what was removed. Idempotent. */
  unpublish(endpointId: string): Promise<PublishedPort[]>;
  /** Every published port. */
  list(): Promise<PublishedPort[]>;
}

/** A host port that another endpoint publishes or a host process uses. */
export class PortTakenError extends BindingError {
  override readonly name = 'PortTakenError';
}

/** A socket of a host process that holds a port (from `ss`). */
export interface HostListener {
  proto: Transport;
  /** undefined: every address (0.0.0.0, ::, *). */
  address?: string | undefined;
  port: number;
}

export interface NftPublisherOptions {
  /** The table (family inet); default `kuryr_ts`, the one isolation uses. */
  table?: string;
  /** Run in this named network namespace (`ip netns exec NAME …`); tests use it. */
  netns?: string;
  timeoutMs?: number;
  /** Replaces the process runner (unit tests); `nft` then runs as one process per call unless `session` is given. */
  exec?: CommandRunner;
  /** Where `nft` commands run; default: the process's long-lived `nft` (nft-session.ts), none with `exec`. */
  session?: Pick<NftSession, 'run'>;
  /** The sockets host processes hold; default: asked of `ss`. */
  listeners?: () => Promise<HostListener[]>;
  /** Range free host ports are picked from; default: the kernel's `ip_local_port_range`. */
  ephemeralRange?: () => Promise<[number, number]>;
  /** Sets `route_localnet` on a bridge; default: written to /proc/sys (`sysctl -w` in `netns`). */
  setRouteLocalnet?: (bridge: string, on: boolean) => Promise<void>;
  /**
   * Turns hairpin mode on for a bridge port; default: `ip link set dev PORT type bridge_slave hairpin on`. With
   * `br_netfilter`, a container's own connection to its published port is DNATed in the bridge and bridged back
   * out of the port it came in by, which a bridge only does in hairpin mode.
   */
  setHairpin?: (device: string) => Promise<void>;
}

const MAP_ADDR = 'publish_addr4';
const MAP_ANY = 'publish_any4';
const SET_BRIDGES = 'publish_bridges';
const SET_HAIRPIN = 'publish_hairpin';
const SET_SELF = 'publish_self';

const OBJECTS: ReadonlyArray<{ kind: 'map' | 'set'; name: string; spec: string }> = [
  {
    kind: 'map',
    name: MAP_ADDR,
    spec: 'type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; comment "kuryr-ts: -p IP:port:port";',
  },
  {
    kind: 'map',
    name: MAP_ANY,
    spec: 'type inet_proto . inet_service : ipv4_addr . inet_service; comment "kuryr-ts: -p port:port, every host address";',
  },
  {
    kind: 'set',
    name: SET_BRIDGES,
    spec: 'type ifname; comment "kuryr-ts: bridges with a published endpoint (route_localnet on)";',
  },
  {
    kind: 'set',
    name: SET_HAIRPIN,
    spec: 'type ifname . ifname; comment "kuryr-ts: bridge . bridge: container to a published port of its own network";',
  },
  {
    kind: 'set',
    name: SET_SELF,
    spec: 'type ipv4_addr . ipv4_addr; comment "kuryr-ts: container . container: a container to its own published port";',
  },
];

const DNAT_RULES: ReadonlyArray<[string, string]> = [
  [`fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @${MAP_ADDR}`, 'published on this address'],
  [`fib daddr type local dnat ip to meta l4proto . th dport map @${MAP_ANY}`, 'published on every address'],
];

const CHAINS: ReadonlyArray<{ name: string; spec: string; rules: ReadonlyArray<[string, string]> }> = [
  {
    name: 'publish_prerouting',
    spec: 'type nat hook prerouting priority dstnat; policy accept; comment "kuryr-ts: published ports";',
    rules: DNAT_RULES,
  },
  {
    name: 'publish_output',
    spec: 'type nat hook output priority -100; policy accept; comment "kuryr-ts: published ports, from the host";',
    rules: DNAT_RULES,
  },
  {
    name: 'publish_postrouting',
    spec: 'type nat hook postrouting priority srcnat; policy accept; comment "kuryr-ts: published ports, sources";',
    rules: [
      ['ct status dnat fib saddr type local masquerade', 'from the host itself'],
      [`ct status dnat iifname . oifname @${SET_HAIRPIN} masquerade`, 'hairpin within a network'],
      // With br_netfilter such a connection is bridged, and postrouting has no input device: match addresses.
      [`ct status dnat ip saddr . ip daddr @${SET_SELF} masquerade`, 'a container to itself'],
    ],
  },
  {
    name: 'publish_input',
    spec: 'type filter hook input priority filter - 20; policy accept; comment "kuryr-ts: route_localnet guard";',
    rules: [
      [`iifname @${SET_BRIDGES} ip daddr 127.0.0.0/8 ct status dnat ct direction reply accept`, 'published reply'],
      [`iifname @${SET_BRIDGES} ip daddr 127.0.0.0/8 counter drop`, 'loopback from a container'],
    ],
  },
];

/** Our part of the table as the kernel holds it. */
interface PublishState {
  tableExists: boolean;
  /** Names of every chain, set and map in the table (ours and others'). */
  objects: Set<string>;
  /** Our chains → rule comments. */
  chains: Map<string, string[]>;
  ports: PublishedPort[];
  bridges: string[];
  hairpin: string[];
  /** Container addresses in `publish_self`. */
  self: string[];
}

const locks = new Map<string, Promise<unknown>>();

/** Published ports with nftables DNAT (see the file comment). */
export class NftPublisher implements PortPublisher {
  readonly #table: string;
  readonly #netns: string | undefined;
  readonly #timeoutMs: number;
  readonly #exec: CommandRunner;
  readonly #listeners: () => Promise<HostListener[]>;
  readonly #ephemeralRange: () => Promise<[number, number]>;
  readonly #setRouteLocalnet: (bridge: string, on: boolean) => Promise<void>;
  readonly #setHairpin: (device: string) => Promise<void>;
  /** Endpoints with published ports, as last read (and since written) by this process; undefined: not read. */
  #publishing: Set<string> | undefined;
  /** The long-lived `nft` (shared with isolation.ts); undefined with a given runner (tests). */
  readonly #session: Pick<NftSession, 'run'> | undefined;

  constructor(options: NftPublisherOptions = {}) {
    this.#table = options.table ?? DEFAULT_ISOLATION_TABLE;
    if (!/^[A-Za-z][A-Za-z0-9_]{0,31}$/.test(this.#table)) {
      throw new BindingError(bindingErrorReasons.invalidInput, `invalid nftables table name ${this.#table}`);
    }
    this.#netns = options.netns;
    if (this.#netns !== undefined) validateInterfaceName(this.#netns);
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#exec = options.exec ?? execRunner;
    this.#session =
      options.session ?? (options.exec === undefined ? nftSessionFor(this.#argv(['nft']), this.#timeoutMs) : undefined);
    this.#listeners = options.listeners ?? (() => this.#ssListeners());
    this.#ephemeralRange = options.ephemeralRange ?? (() => this.#kernelPortRange());
    this.#setRouteLocalnet = options.setRouteLocalnet ?? ((bridge, on) => this.#sysctlRouteLocalnet(bridge, on));
    this.#setHairpin =
      options.setHairpin ??
      (async (device) => {
        await this.#run(['ip', 'link', 'set', 'dev', device, 'type', 'bridge_slave', 'hairpin', 'on']);
      });
  }

  get table(): string {
    return `inet ${this.#table}`;
  }

  async publish(req: PublishRequest): Promise<PublishedPort[]> {
    validateInterfaceName(req.bridge);
    if (req.hostDevice !== undefined) validateInterfaceName(req.hostDevice);
    checkEndpointId(req.endpointId);
    if (!isIpv4(req.containerIp)) {
      throw new BindingError(bindingErrorReasons.invalidInput, `published ports need an IPv4 container address`);
    }
    const containerIp = normalizeIp(req.containerIp);
    const mappings = req.mappings.map(checkMapping);
    if (mappings.length === 0) return (await this.list()).filter((p) => p.endpointId === req.endpointId);
    return this.#locked(async () => {
      for (let attempt = 1; ; attempt++) {
        const state = await this.#read();
        const own = state.ports.filter((p) => p.endpointId === req.endpointId);
        const others = state.ports.filter((p) => p.endpointId !== req.endpointId);
        const wanted: PublishedPort[] = [];
        const missing: PortMapping[] = [];
        for (const m of mappings) {
          const kept = own.find((p) => satisfies(p, m, containerIp) && !wanted.includes(p));
          if (kept === undefined) missing.push(m);
          else wanted.push(kept);
        }
        const stale = own.filter((p) => !wanted.includes(p));
        const added: PublishedPort[] = [];
        if (missing.length > 0) {
          const listeners = await this.#listeners();
          const range = await this.#ephemeralRange();
          const taken = [...others, ...wanted];
          for (const m of missing) {
            const published: PublishedPort = {
              endpointId: req.endpointId,
              bridge: req.bridge,
              proto: m.proto,
              ...(m.hostIp === undefined ? {} : { hostIp: m.hostIp }),
              hostPort: pickHostPort(m, taken, listeners, range),
              containerIp,
              containerPort: m.containerPort,
            };
            taken.push(published);
            added.push(published);
          }
        }
        const result = [...wanted, ...added];
        if (added.length === 0 && stale.length === 0 && structureOk(state)) return result;
        await this.#setRouteLocalnet(req.bridge, true);
        if (req.hostDevice !== undefined) await this.#setHairpin(req.hostDevice);
        try {
          await this.#nft(['-f', '-'], this.#script(state, stale, added, [...others, ...result]));
          if (result.length > 0) this.#publishing?.add(req.endpointId);
          return result;
        } catch (err) {
          if (attempt >= 2 || !(err instanceof CommandError) || err.exitCode === null) throw err;
        }
      }
    });
  }

  async unpublish(endpointId: string): Promise<PublishedPort[]> {
    checkEndpointId(endpointId);
    return this.#locked(async () => {
      if (this.#publishing !== undefined && !this.#publishing.has(endpointId)) return [];
      for (let attempt = 1; ; attempt++) {
        const state = await this.#read();
        const gone = state.ports.filter((p) => p.endpointId === endpointId);
        if (gone.length === 0) return [];
        const after = state.ports.filter((p) => p.endpointId !== endpointId);
        try {
          await this.#nft(['-f', '-'], this.#script(state, gone, [], after));
        } catch (err) {
          if (attempt >= 2 || !(err instanceof CommandError) || err.exitCode === null) throw err;
          continue;
        }
        this.#publishing?.delete(endpointId);
        for (const bridge of new Set(gone.map((p) => p.bridge))) {
          if (!after.some((p) => p.bridge === bridge)) await this.#setRouteLocalnet(bridge, false).catch(() => {});
        }
        return gone;
      }
    });
  }

  async list(): Promise<PublishedPort[]> {
    return (await this.#read()).ports;
  }

  /** The transaction from `state` to: `remove` gone, `add` added, `after` the resulting ports. */
  #script(
    state: PublishState,
    remove: readonly PublishedPort[],
    add: readonly PublishedPort[],
    after: readonly PublishedPort[],
  ): string {
    const t = this.table;
    const lines: string[] = [];
    if (after.length === 0) {
      if (!state.tableExists) return '';
      // Nothing published any more: our chains and maps go, and the table when nothing else is in it.
      const ours = new Set<string>([...CHAINS.map((c) => c.name), ...OBJECTS.map((o) => o.name)]);
      if ([...state.objects].every((name) => ours.has(name))) return `delete table ${t}\n`;
      for (const c of CHAINS) if (state.objects.has(c.name)) lines.push(`delete chain ${t} ${c.name}`);
      for (const o of OBJECTS) if (state.objects.has(o.name)) lines.push(`delete ${o.kind} ${t} ${o.name}`);
      return `${lines.join('\n')}\n`;
    }
    if (!structureOk(state)) {
      lines.push(`add table ${t}`);
      for (const o of OBJECTS) lines.push(`add ${o.kind} ${t} ${o.name} { ${o.spec} }`);
      for (const c of CHAINS) lines.push(`add chain ${t} ${c.name} { ${c.spec} }`);
      for (const c of CHAINS) lines.push(`flush chain ${t} ${c.name}`);
      for (const c of CHAINS) {
        for (const [rule, comment] of c.rules) lines.push(`add rule ${t} ${c.name} ${rule} comment "${comment}"`);
      }
    }
    for (const p of remove) lines.push(`delete element ${t} ${mapOf(p)} { ${keyOf(p)} }`);
    for (const p of add)
      lines.push(
        `add element ${t} ${mapOf(p)} { ${keyOf(p)} comment "${p.endpointId} ${p.bridge}" : ${p.containerIp} . ${p.containerPort} }`,
      );
    const bridges = [...new Set(after.map((p) => p.bridge))];
    const staleBridges = state.bridges.filter((b) => !bridges.includes(b));
    const newBridges = bridges.filter((b) => !state.bridges.includes(b));
    if (staleBridges.length > 0)
      lines.push(`delete element ${t} ${SET_BRIDGES} { ${staleBridges.map(quote).join(', ')} }`);
    if (newBridges.length > 0) lines.push(`add element ${t} ${SET_BRIDGES} { ${newBridges.map(quote).join(', ')} }`);
    const staleHairpin = state.hairpin.filter((b) => !bridges.includes(b));
    const newHairpin = bridges.filter((b) => !state.hairpin.includes(b));
    const pair = (b: string) => `${quote(b)} . ${quote(b)}`;
    if (staleHairpin.length > 0)
      lines.push(`delete element ${t} ${SET_HAIRPIN} { ${staleHairpin.map(pair).join(', ')} }`);
    if (newHairpin.length > 0) lines.push(`add element ${t} ${SET_HAIRPIN} { ${newHairpin.map(pair).join(', ')} }`);
    const addresses = [...new Set(after.map((p) => p.containerIp))];
    const staleSelf = state.self.filter((a) => !addresses.includes(a));
    const newSelf = addresses.filter((a) => !state.self.includes(a));
    const self = (list: string[]) => list.map((a) => `${a} . ${a}`).join(', ');
    if (staleSelf.length > 0) lines.push(`delete element ${t} ${SET_SELF} { ${self(staleSelf)} }`);
    if (newSelf.length > 0) lines.push(`add element ${t} ${SET_SELF} { ${self(newSelf)} }`);
    return `${lines.join('\n')}\n`;
  }

  async #read(): Promise<PublishState> {
    let out: string;
    try {
      out = await this.#nft(['-j', 'list', 'table', 'inet', this.#table]);
    } catch (err) {
      if (err instanceof CommandError && err.exitCode !== null && /No such file or directory/.test(err.stderr)) {
        this.#publishing = new Set();
        return {
          tableExists: false,
          objects: new Set(),
          chains: new Map(),
          ports: [],
          bridges: [],
          hairpin: [],
          self: [],
        };
      }
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(out);
    } catch (err) {
      throw new CommandError(bindingErrorReasons.ipCommand, this.#argv(['-j', 'list', 'table']), {
        exitCode: 0,
        stderr: '',
        detail: `printed invalid JSON (${err})`,
      });
    }
    const state = parsePublishState(json, this.#table);
    this.#publishing = new Set(state.ports.map((p) => p.endpointId));
    return state;
  }

  #argv(args: readonly string[]): string[] {
    return this.#netns === undefined ? [...args] : ['ip', 'netns', 'exec', this.#netns, ...args];
  }

  /** Run a host tool (`nft`, `ss`, `sysctl`, `ip`); a failure is a `CommandError` naming its command line. */
  async #run(args: readonly string[], input?: string): Promise<string> {
    const [file = '', ...rest] = this.#argv(args);
    return (
      await runCommand(bindingErrorReasons.ipCommand, file, rest, {
        timeoutMs: this.#timeoutMs,
        runner: this.#exec,
        ...(input === undefined ? {} : { input }),
      })
    ).stdout;
  }

  /** `nft -j list table …` or `nft -f -` (the transaction on standard input): in the long-lived `nft` if any. */
  #nft(args: readonly string[], input?: string): Promise<string> {
    return runNft(
      {
        session: this.#session,
        exec: this.#exec,
        argv: (a) => this.#argv(['nft', ...a]),
        timeoutMs: this.#timeoutMs,
        unrunnable: 'could not be run (nftables needed for published ports)',
      },
      args,
      input,
    );
  }

  /** Sockets of host processes: TCP listeners, bound UDP sockets, SCTP listeners. */
  async #ssListeners(): Promise<HostListener[]> {
    const out: HostListener[] = [];
    const tcpUdp = await this.#run(['ss', '-H', '-l', '-n', '-t', '-u']);
    out.push(...parseSs(tcpUdp));
    // SCTP: absent from kernels without it, then nothing can listen on it either.
    const sctp = await this.#run(['ss', '-H', '-l', '-n', '--sctp']).catch(() => '');
    out.push(...parseSs(sctp, 'sctp'));
    return out;
  }

  async #kernelPortRange(): Promise<[number, number]> {
    const text =
      this.#netns === undefined
        ? await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
        : await this.#run(['cat', '/proc/sys/net/ipv4/ip_local_port_range']);
    const [lo, hi] = text.trim().split(/\s+/).map(Number);
    return lo !== undefined && hi !== undefined && lo > 0 && hi >= lo && hi <= 65535 ? [lo, hi] : [32768, 60999];
  }

  async #sysctlRouteLocalnet(bridge: string, on: boolean): Promise<void> {
    validateInterfaceName(bridge);
    if (this.#netns === undefined) {
      // What `sysctl -w` writes, without a process (this process's namespace is the host's).
      try {
        await writeFile(`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`, on ? '1' : '0');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? String(err);
        throw new CommandError(
          bindingErrorReasons.ipCommand,
          ['sysctl', '-w', `net.ipv4.conf.${bridge}.route_localnet`],
          {
            exitCode: 1,
            stdout: '',
            stderr: `${code}: ${(err as Error).message}`,
          },
        );
      }
      return;
    }
    await this.#run(['sysctl', '-q', '-w', `net.ipv4.conf.${bridge}.route_localnet=${on ? 1 : 0}`]);
  }

  async #locked<T>(step: () => Promise<T>): Promise<T> {
    const key = `${this.#netns ?? ''}/${this.#table}`;
    const previous = locks.get(key) ?? Promise.resolve();
    const next = previous.then(step, step);
    const settled = next.catch(() => {});
    locks.set(key, settled);
    try {
      return await next;
    } finally {
      if (locks.get(key) === settled) locks.delete(key);
    }
  }
}

function checkEndpointId(id: string): void {
  if (!/^[0-9a-f]{64}$/.test(id)) {
    throw new BindingError(bindingErrorReasons.invalidInput, `invalid endpoint ID ${JSON.stringify(id)}`);
  }
}

function isIpv4(text: string): boolean {
  try {
    return ipVersion(text) === 4;
  } catch {
    return false;
  }
}

const isPort = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65535;

function checkMapping(m: PortMapping): PortMapping {
  const bad = (why: string) =>
    new BindingError(bindingErrorReasons.invalidInput, `cannot publish ${JSON.stringify(m)}: ${why}`);
  if (!TRANSPORTS.includes(m.proto)) throw bad('the protocol must be tcp, udp or sctp');
  if (!isPort(m.containerPort)) throw bad('the container port must be 1-65535');
  if (m.hostPort !== 0 && !isPort(m.hostPort)) throw bad('the host port must be 1-65535 (or 0 for any)');
  const end = m.hostPort === 0 ? 0 : m.hostPortEnd === 0 ? m.hostPort : m.hostPortEnd;
  if (m.hostPort !== 0 && (!isPort(end) || end < m.hostPort)) throw bad('the host port range is reversed');
  let hostIp: string | undefined;
  if (m.hostIp !== undefined && m.hostIp !== '') {
    if (!isIpv4(m.hostIp)) {
      if (m.hostIp === '::') return { ...m, hostIp: undefined, hostPortEnd: end };
      throw bad('only IPv4 host addresses are supported');
    }
    hostIp = normalizeIp(m.hostIp);
    if (hostIp === '0.0.0.0') hostIp = undefined;
  }
  return { proto: m.proto, containerPort: m.containerPort, hostIp, hostPort: m.hostPort, hostPortEnd: end };
}

/** Does published port `p` already serve mapping `m`? */
function satisfies(p: PublishedPort, m: PortMapping, containerIp: string): boolean {
  if (p.proto !== m.proto || p.containerPort !== m.containerPort || p.containerIp !== containerIp) return false;
  if (p.hostIp !== m.hostIp) return false;
  return m.hostPort === 0 || (p.hostPort >= m.hostPort && p.hostPort <= m.hostPortEnd);
}

/** Do two host bindings of one protocol and port collide? (every address collides with any address) */
function overlaps(a: string | undefined, b: string | undefined): boolean {
  return a === undefined || b === undefined || a === b;
}

function describe(proto: Transport, hostIp: string | undefined, port: number): string {
  return `${hostIp ?? '0.0.0.0'}:${port}/${proto}`;
}

/** The host port for `m`: its own, the first free one of its range, or a free ephemeral one. */
function pickHostPort(
  m: PortMapping,
  taken: readonly PublishedPort[],
  listeners: readonly HostListener[],
  range: [number, number],
): number {
  const why = (port: number): string | undefined => {
    const other = taken.find((p) => p.proto === m.proto && p.hostPort === port && overlaps(p.hostIp, m.hostIp));
    if (other !== undefined) {
      return `${describe(m.proto, other.hostIp, port)} is already published by endpoint ${other.endpointId.slice(0, 12)} (${other.containerIp}:${other.containerPort})`;
    }
    const l = listeners.find((x) => x.proto === m.proto && x.port === port && listenerOverlaps(x.address, m.hostIp));
    if (l !== undefined) return `a host process already uses ${describe(m.proto, l.address, port)}`;
    return undefined;
  };
  if (m.hostPort !== 0) {
    let first: string | undefined;
    for (let port = m.hostPort; port <= m.hostPortEnd; port++) {
      const reason = why(port);
      if (reason === undefined) return port;
      first ??= reason;
    }
    const what = m.hostPort === m.hostPortEnd ? `port ${m.hostPort}` : `any port of ${m.hostPort}-${m.hostPortEnd}`;
    throw new PortTakenError(
      bindingErrorReasons.invalidInput,
      `cannot publish ${what}/${m.proto} on ${m.hostIp ?? 'every host address'}: ${first}`,
    );
  }
  const [lo, hi] = range;
  const size = hi - lo + 1;
  const start = Math.floor(Math.random() * size);
  for (let i = 0; i < size; i++) {
    const port = lo + ((start + i) % size);
    if (why(port) === undefined) return port;
  }
  throw new PortTakenError(bindingErrorReasons.invalidInput, `no free host port for ${m.proto} in ${lo}-${hi}`);
}

/** A listener on `address` (undefined: any) blocks publishing on `hostIp` (undefined: every address)? */
function listenerOverlaps(address: string | undefined, hostIp: string | undefined): boolean {
  if (address === undefined || hostIp === undefined) return true;
  return address === hostIp || address === `::ffff:${hostIp}`;
}

const quote = (name: string) => `"${name}"`;
const mapOf = (p: PublishedPort) => (p.hostIp === undefined ? MAP_ANY : MAP_ADDR);
const keyOf = (p: PublishedPort) =>
  p.hostIp === undefined ? `${p.proto} . ${p.hostPort}` : `${p.hostIp} . ${p.proto} . ${p.hostPort}`;

function structureOk(state: PublishState): boolean {
  return (
    OBJECTS.every((o) => state.objects.has(o.name)) &&
    CHAINS.every((c) => {
      const have = state.chains.get(c.name);
      return (
        have !== undefined && have.length === c.rules.length && c.rules.every(([, comment], i) => have[i] === comment)
      );
    })
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `"tcp"` or a protocol number as nft prints it. */
function transportOf(value: unknown): Transport | undefined {
  if (value === 6 || value === 'tcp') return 'tcp';
  if (value === 17 || value === 'udp') return 'udp';
  if (value === 132 || value === 'sctp') return 'sctp';
  return undefined;
}

const portOf = (value: unknown): number | undefined =>
  typeof value === 'number' && isPort(value)
    ? value
    : typeof value === 'string' && /^\d+$/.test(value) && isPort(Number(value))
      ? Number(value)
      : undefined;

/** One map element of `nft -j`: `[{"elem": {"val": {"concat": [...]}, "comment": "..."}}, {"concat": [...]}]`. */
function parseMapElement(map: string, raw: unknown): PublishedPort | undefined {
  if (!Array.isArray(raw) || raw.length !== 2) return undefined;
  const [keyRaw, dataRaw] = raw as [unknown, unknown];
  const keyElem = isRecord(keyRaw) && isRecord(keyRaw.elem) ? keyRaw.elem : undefined;
  const comment = typeof keyElem?.comment === 'string' ? keyElem.comment : undefined;
  const key = isRecord(keyElem?.val) && Array.isArray(keyElem.val.concat) ? keyElem.val.concat : undefined;
  const data = isRecord(dataRaw) && Array.isArray(dataRaw.concat) ? dataRaw.concat : undefined;
  const [endpointId, bridge] = (comment ?? '').split(' ');
  if (key === undefined || data === undefined || endpointId === undefined || bridge === undefined) return undefined;
  if (!/^[0-9a-f]{64}$/.test(endpointId)) return undefined;
  const [hostIpRaw, protoRaw, portRaw] = map === MAP_ADDR ? key : [undefined, ...key];
  const proto = transportOf(protoRaw);
  const hostPort = portOf(portRaw);
  const containerIp = typeof data[0] === 'string' && isIpv4(data[0]) ? normalizeIp(data[0]) : undefined;
  const containerPort = portOf(data[1]);
  if (proto === undefined || hostPort === undefined || containerIp === undefined || containerPort === undefined) {
    return undefined;
  }
  if (map === MAP_ADDR && (typeof hostIpRaw !== 'string' || !isIpv4(hostIpRaw))) return undefined;
  return {
    endpointId,
    bridge,
    proto,
    ...(map === MAP_ADDR ? { hostIp: normalizeIp(hostIpRaw as string) } : {}),
    hostPort,
    containerIp,
    containerPort,
  };
}

/** Our chains, maps and sets from `nft -j list table inet <table>`. */
export function parsePublishState(json: unknown, table: string): PublishState {
  const items = isRecord(json) && Array.isArray(json.nftables) ? json.nftables : [];
  const state: PublishState = {
    tableExists: true,
    objects: new Set(),
    chains: new Map(),
    ports: [],
    bridges: [],
    hairpin: [],
    self: [],
  };
  const ourChains = new Set(CHAINS.map((c) => c.name));
  for (const item of items) {
    if (!isRecord(item)) continue;
    for (const kind of ['set', 'map'] as const) {
      const obj = item[kind];
      if (!isRecord(obj) || obj.table !== table || typeof obj.name !== 'string') continue;
      state.objects.add(obj.name);
      const elems = Array.isArray(obj.elem) ? obj.elem : [];
      if (kind === 'map' && (obj.name === MAP_ADDR || obj.name === MAP_ANY)) {
        for (const raw of elems) {
          const p = parseMapElement(obj.name, raw);
          if (p !== undefined) state.ports.push(p);
        }
      }
      if (kind === 'set' && obj.name === SET_BRIDGES) {
        for (const e of elems) {
          const v = isRecord(e) && isRecord(e.elem) ? e.elem.val : e;
          if (typeof v === 'string') state.bridges.push(v);
        }
      }
      if (kind === 'set' && obj.name === SET_HAIRPIN) {
        for (const e of elems) {
          const v = isRecord(e) && isRecord(e.elem) ? e.elem.val : e;
          const parts = isRecord(v) && Array.isArray(v.concat) ? v.concat : [];
          if (typeof parts[0] === 'string' && parts[0] === parts[1]) state.hairpin.push(parts[0]);
        }
      }
      if (kind === 'set' && obj.name === SET_SELF) {
        for (const e of elems) {
          const v = isRecord(e) && isRecord(e.elem) ? e.elem.val : e;
          const parts = isRecord(v) && Array.isArray(v.concat) ? v.concat : [];
          if (typeof parts[0] === 'string' && parts[0] === parts[1] && isIpv4(parts[0])) {
            state.self.push(normalizeIp(parts[0]));
          }
        }
      }
    }
    const chain = item.chain;
    if (isRecord(chain) && chain.table === table && typeof chain.name === 'string') {
      state.objects.add(chain.name);
      if (ourChains.has(chain.name) && !state.chains.has(chain.name)) state.chains.set(chain.name, []);
    }
    const rule = item.rule;
    if (isRecord(rule) && rule.table === table && typeof rule.chain === 'string' && ourChains.has(rule.chain)) {
      const list = state.chains.get(rule.chain) ?? [];
      list.push(typeof rule.comment === 'string' ? rule.comment : '');
      state.chains.set(rule.chain, list);
    }
  }
  return state;
}

/**
 * Sockets from `ss -H -l -n` output: `tcp LISTEN 0 4096 0.0.0.0:8080 0.0.0.0:*`, `udp UNCONN 0 0 [::]:53 [::]:*`,
 * `127.0.0.1%lo:53`. With a single protocol, `ss` omits the first column: `proto` says which.
 */
export function parseSs(text: string, proto?: Transport): HostListener[] {
  const out: HostListener[] = [];
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4) continue;
    const netid = transportOf(cols[0]);
    const p = netid ?? proto;
    if (p === undefined) continue;
    const local = netid === undefined ? cols[3] : cols[4];
    const m = /^(.*):(\d+)$/.exec(local ?? '');
    if (m === null) continue;
    const port = Number(m[2]);
    let host = (m[1] ?? '').replace(/^\[|\]$/g, '').replace(/%.*$/, '');
    host = host.replace(/^\[/, '').replace(/\]$/, '');
    const any = host === '*' || host === '0.0.0.0' || host === '::';
    out.push({ proto: p, ...(any ? {} : { address: host.toLowerCase() }), port });
  }
  return out;
}
