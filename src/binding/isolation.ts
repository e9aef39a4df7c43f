/**
 * The embedded backend's networks in nftables, as Docker's bridge driver has them (and as Neutron networks that
 * no router joins are kept apart): a container reaches the containers of its own network, its own gateway
 * addresses on the host, and the outside through the host, masqueraded; nothing of another network. Everything
 * lives in ONE table the plugin owns (`table inet kuryr_ts`); its rules are fixed and the networks are elements of
 * its sets, keyed by bridge name, so the ruleset does not grow per network:
 *
 * - `forward` (hook forward, priority filter - 10): traffic that stays on its bridge (`same_network`) passes;
 *   nothing leaves or enters an `internal` network; replies and published (DNAT) traffic into a bridge pass;
 *   traffic from an isolated network (`networks`) to another network's bridge, and unsolicited traffic into an
 *   isolated network, are dropped; everything else (a container to the outside) passes. With `br_netfilter`
 *   calling the inet hooks, bridged frames come here with the bridge as both `iifname` and `oifname`, so they
 *   match `same_network`; without it they never come here.
 * - `input` (hook input): packets from a bridge in `guarded` reach only that bridge's own gateway addresses
 *   (`gateways4`/`gateways6`: `bridge . address`, plus the IPv4 subnet broadcast), link-local multicast and
 *   broadcast, and IPv6 link-local unicast and multicast (neighbour discovery); every other host address is
 *   dropped: another network's gateway, the host's other interfaces, 127.0.0.1.
 * - `nat_postrouting` (hook postrouting, priority srcnat): what comes from a bridge in `masquerading` and leaves
 *   through an interface that is not one of our bridges is masqueraded, IPv4 and IPv6 alike (Docker's
 *   `enable_ip_masquerade`, on by default; never for internal networks).
 *
 * - Published ports (publish.ts, chains `publish_…` in this same table): a connection DNATed into a network
 *   (`ct status dnat`) and the replies of one pass; the table is kept while published ports' chains are in it
 *   (then `removeNetwork` deletes only its own chains and sets).
 *
 * The filter chains only drop or end their own chain: an `accept` here ends this table's chain, never another
 * table's, so the host's own firewall (iptables, Docker's FORWARD policy) still applies on top (host-firewall.ts
 * adds the few iptables rules a `FORWARD DROP` host needs), and nothing outside this table is read or written
 * here. The rules live in the kernel and survive a restart of the plugin; `ensureNetwork` is idempotent and
 * repairs a missing table, set, chain, rule or element; `removeNetwork` removes that bridge's elements and the
 * table once no network is left. Every command is `nft` with an argument array; changes go through `nft -f -`
 * as one atomic transaction. Published ports add chains of their own (`publish_*`) to this table.
 */
import { bigIntToIp, InvalidAddressError, ipVersion, lastAddress, normalizeIp, parseCidr } from '../util/ip.ts';
import type { InterfaceAddress } from './binder.ts';
import { BindingError, bindingErrorReasons } from './errors.ts';
import { CommandError, type CommandRunner, execRunner } from './exec.ts';
import { validateInterfaceName } from './names.ts';
import { runNft } from './nft-command.ts';
import { type NftSession, nftSessionFor } from './nft-session.ts';

/** What the agent asks of an isolation policy, per network bridge. */
export interface NetworkIsolation {
  /** Install (or repair) the bridge's rules for these gateway addresses; the bridge may not exist yet. */
  ensureNetwork(bridge: string, gateways: readonly InterfaceAddress[], traffic?: NetworkTraffic): Promise<void>;
  /** Remove everything this policy holds for the bridge (the table too when it is the last). Idempotent. */
  removeNetwork(bridge: string): Promise<void>;
}

export interface NftIsolationOptions {
  /** Keep each network's traffic on its bridge (`[embedded] isolate_networks`); default true. */
  isolateNetworks?: boolean;
  /** Let containers reach every host address, not only their own gateways (`[embedded] allow_host_access`). */
  allowHostAccess?: boolean;
  /** The table (family inet) the plugin owns; default `kuryr_ts`. */
  table?: string;
  /** Run in this named network namespace (`ip netns exec NAME nft ...`); tests use it. */
  netns?: string;
  /** Program to run; default `nft` (found on PATH). */
  binary?: string;
  /** Per-invocation time limit; default 10 s. */
  timeoutMs?: number;
  /**
   * Replaces the process runner (unit tests). Without one, every command goes to one long-lived `nft` of this
   * program and namespace (nft-session.ts) instead of a process each.
   */
  exec?: CommandRunner;
}

export const DEFAULT_ISOLATION_TABLE = 'kuryr_ts';
/**
 * The table's comment. The table is this module's: it creates it with the first network and deletes it with the
 * last. Other modules add chains of their own to it (published ports: `publish_*`), and never create or delete it.
 */
const TABLE_COMMENT = 'kuryr-ts: the embedded networks (isolation, outbound access, published ports)';

/** The sets of the table: name, element type, what they hold. */
const SETS = {
  bridges: { type: 'ifname', comment: 'every network bridge' },
  networks: { type: 'ifname', comment: 'bridges whose traffic stays away from other networks' },
  same_network: { type: 'ifname . ifname', comment: 'bridge . bridge: traffic that stays on its bridge' },
  internal: { type: 'ifname', comment: 'bridges of --internal networks: no traffic leaves or enters' },
  masquerading: { type: 'ifname', comment: 'bridges whose traffic to the outside is masqueraded' },
  guarded: { type: 'ifname', comment: 'bridges whose containers reach only their own gateways on the host' },
  gateways4: { type: 'ifname . ipv4_addr', comment: 'bridge . IPv4 gateway (and subnet broadcast)' },
  gateways6: { type: 'ifname . ipv6_addr', comment: 'bridge . IPv6 gateway' },
} as const;
type SetName = keyof typeof SETS;
const SET_NAMES = Object.keys(SETS) as SetName[];

/** The chains and their rules, in order; each rule's comment is its identity when checking for damage. */
const CHAINS: ReadonlyArray<{ name: string; spec: string; rules: ReadonlyArray<[rule: string, comment: string]> }> = [
  {
    name: 'forward',
    spec: 'type filter hook forward priority filter - 10; policy accept; comment "kuryr-ts: traffic through the networks";',
    rules: [
      ['iifname . oifname @same_network accept', 'stays on its bridge'],
      ['iifname @internal counter drop', 'leaves an internal network'],
      ['oifname @internal counter drop', 'enters an internal network'],
      ['oifname @bridges ct state established,related accept', 'reply'],
      ['oifname @bridges ct status dnat accept', 'published port'],
      ['iifname @networks oifname @bridges counter drop', 'to another network'],
      // Bridges of the default name not (yet) in `bridges`, e.g. while a restart re-adds the networks one by one.
      ['iifname @networks oifname "brq*" counter drop', 'to another network not listed yet'],
      ['oifname @networks counter drop', 'enters a network from elsewhere'],
    ],
  },
  {
    name: 'input',
    spec: 'type filter hook input priority filter - 10; policy accept; comment "kuryr-ts: containers to the host";',
    rules: [['iifname @guarded jump container_to_host', 'from a guarded bridge']],
  },
  {
    name: 'container_to_host',
    spec: 'comment "kuryr-ts: the host addresses a container may reach";',
    rules: [
      ['iifname . ip daddr @gateways4 accept', 'own gateway'],
      ['iifname . ip6 daddr @gateways6 accept', 'own gateway v6'],
      ['ip daddr { 224.0.0.0/24, 255.255.255.255 } accept', 'link-local multicast, broadcast'],
      ['ip6 daddr { fe80::/10, ff02::/16 } accept', 'link-local, neighbour discovery'],
      ['ct status dnat ct direction reply accept', 'reply to the host from a published port'],
      ['counter drop', 'any other host address'],
    ],
  },
  {
    name: 'nat_postrouting',
    spec: 'type nat hook postrouting priority srcnat; policy accept; comment "kuryr-ts: outbound access";',
    rules: [['iifname @masquerading oifname != @bridges masquerade', 'leaves for the outside']],
  },
];

/** How a network's traffic may leave it. */
export interface NetworkTraffic {
  /** `--internal`: nothing leaves the network or enters it from elsewhere. */
  internal?: boolean;
  /** Masquerade what leaves for the outside (default true; never for an internal network). */
  masquerade?: boolean;
}

/** One element: its components (`['brqX']`, `['brqX', '10.0.0.1']`), addresses in canonical form. */
type Element = readonly string[];
/** Our sets and their elements as the kernel holds them; undefined = no table. */
interface TableState {
  sets: Map<string, Element[]>;
  /** Chain name → the comments of its rules, in order. */
  chains: Map<string, string[]>;
}

/** Serializes changes per table within this process (read, then write, must not interleave). */
const locks = new Map<string, Promise<unknown>>();

/** nftables isolation of the embedded backend's networks (see the file comment for the ruleset). */
export class NftIsolation implements NetworkIsolation {
  readonly #isolateNetworks: boolean;
  readonly #allowHostAccess: boolean;
  readonly #table: string;
  readonly #netns: string | undefined;
  readonly #binary: string;
  readonly #timeoutMs: number;
  readonly #exec: CommandRunner;
  /** The long-lived `nft`; undefined with a given runner (tests). */
  readonly #session: NftSession | undefined;

  constructor(options: NftIsolationOptions = {}) {
    this.#isolateNetworks = options.isolateNetworks ?? true;
    this.#allowHostAccess = options.allowHostAccess ?? false;
    this.#table = options.table ?? DEFAULT_ISOLATION_TABLE;
    if (!/^[A-Za-z][A-Za-z0-9_]{0,31}$/.test(this.#table)) {
      throw new BindingError(bindingErrorReasons.invalidInput, `invalid nftables table name ${this.#table}`);
    }
    this.#netns = options.netns;
    if (this.#netns !== undefined) validateInterfaceName(this.#netns); // same safe alphabet
    this.#binary = options.binary ?? 'nft';
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#exec = options.exec ?? execRunner;
    this.#session = options.exec === undefined ? nftSessionFor(this.#argv([]), this.#timeoutMs) : undefined;
  }

  /** `inet <table>`, as nft syntax. */
  get table(): string {
    return `inet ${this.#table}`;
  }

  async ensureNetwork(
    bridge: string,
    gateways: readonly InterfaceAddress[],
    traffic: NetworkTraffic = {},
  ): Promise<void> {
    validateInterfaceName(bridge);
    const wanted = this.#wantedElements(bridge, gateways, traffic);
    await this.#locked(() => this.#apply(bridge, wanted));
  }

  async removeNetwork(bridge: string): Promise<void> {
    validateInterfaceName(bridge);
    await this.#locked(() => this.#apply(bridge, emptyElements()));
  }

  /** The elements `bridge` should have in each set under this policy. */
  #wantedElements(
    bridge: string,
    gateways: readonly InterfaceAddress[],
    traffic: NetworkTraffic,
  ): Map<SetName, Element[]> {
    const wanted = emptyElements();
    const internal = traffic.internal ?? false;
    const masquerade = !internal && (traffic.masquerade ?? true);
    if (this.#isolateNetworks) wanted.get('networks')?.push([bridge]);
    if (this.#isolateNetworks || internal) wanted.get('same_network')?.push([bridge, bridge]);
    if (internal) wanted.get('internal')?.push([bridge]);
    if (masquerade) wanted.get('masquerading')?.push([bridge]);
    // Parsed even when not used, so that bad input is refused the same way in every configuration.
    const addresses = gateways.flatMap(hostAddresses);
    if (!this.#allowHostAccess) {
      wanted.get('guarded')?.push([bridge]);
      for (const { version, address } of addresses) {
        wanted.get(version === 4 ? 'gateways4' : 'gateways6')?.push([bridge, address]);
      }
    }
    // Every bridge with any rule is one of `bridges` (what the rules tell from the outside).
    if ([...wanted.values()].some((l) => l.length > 0)) wanted.get('bridges')?.push([bridge]);
    for (const [name, list] of wanted) wanted.set(name, uniqueElements(list));
    return wanted;
  }

  /** Make `bridge`'s elements exactly `wanted` (with the table, sets, chains and rules when any is wanted). */
  async #apply(bridge: string, wanted: Map<SetName, Element[]>): Promise<void> {
    const anyWanted = [...wanted.values()].some((l) => l.length > 0);
    for (let attempt = 1; ; attempt++) {
      let state: TableState | undefined;
      try {
        state = await this.#read();
      } catch (err) {
        // Nothing wanted and no nft at all: nothing can be installed, so nothing is left to remove.
        if (!anyWanted && err instanceof CommandError && err.startError === 'ENOENT') {
          return;
        }
        throw err;
      }
      const script = this.#script(bridge, wanted, state);
      if (script.length === 0) return;
      try {
        await this.#nft(['-f', '-'], script.join('\n').concat('\n'));
        return;
      } catch (err) {
        // Another process changed the table between our read and our write (an element we delete is gone,
        // the table vanished): read again and redo, once.
        if (attempt >= 2 || !(err instanceof CommandError) || err.exitCode === null) throw err;
      }
    }
  }

  /** The transaction that takes the table from `state` to `wanted` for `bridge`; empty when nothing changes. */
  #script(bridge: string, wanted: Map<SetName, Element[]>, state: TableState | undefined): string[] {
    const t = this.table;
    const lines: string[] = [];
    const current = (name: SetName) => state?.sets.get(name) ?? [];
    const anyWanted = [...wanted.values()].some((l) => l.length > 0);
    // What stays of other bridges: when nothing does and this bridge wants nothing, the table goes.
    const othersLeft = SET_NAMES.some((name) => current(name).some((e) => e[0] !== bridge));

    if (!anyWanted) {
      if (state === undefined) return [];
      if (!othersLeft) {
        // Chains of other parts of the plugin (published ports: `publish_…`) keep the table; ours go.
        const ours = new Set<string>([...SET_NAMES, ...CHAINS.map((c) => c.name)]);
        if (![...state.chains.keys(), ...state.sets.keys()].some((name) => !ours.has(name))) {
          return [`delete table ${t}`];
        }
        const chains = CHAINS.filter((c) => state.chains.has(c.name)).map((c) => `delete chain ${t} ${c.name}`);
        const sets = SET_NAMES.filter((name) => state.sets.has(name)).map((name) => `delete set ${t} ${name}`);
        return [...chains, ...sets];
      }
    } else {
      // Structure: `add` is idempotent and recreates whatever is missing.
      const structureOk =
        state !== undefined &&
        SET_NAMES.every((name) => state.sets.has(name)) &&
        CHAINS.every((c) =>
          sameList(
            state.chains.get(c.name),
            c.rules.map(([, comment]) => comment),
          ),
        );
      if (!structureOk) {
        lines.push(`add table ${t} { comment "${TABLE_COMMENT}"; }`);
        for (const name of SET_NAMES) {
          const set = SETS[name];
          lines.push(`add set ${t} ${name} { type ${set.type}; comment "${set.comment}"; }`);
        }
        for (const chain of CHAINS) lines.push(`add chain ${t} ${chain.name} { ${chain.spec} }`);
        // Rules are rewritten as a whole (in this same transaction, so there is no moment without them).
        for (const chain of CHAINS) lines.push(`flush chain ${t} ${chain.name}`);
        for (const chain of CHAINS) {
          for (const [rule, comment] of chain.rules) {
            lines.push(`add rule ${t} ${chain.name} ${rule} comment "${comment}"`);
          }
        }
      }
    }
    for (const name of SET_NAMES) {
      const have = current(name).filter((e) => e[0] === bridge);
      const want = wanted.get(name) ?? [];
      const haveKeys = new Set(have.map(elementKey));
      const wantKeys = new Set(want.map(elementKey));
      const stale = have.filter((e) => !wantKeys.has(elementKey(e)));
      const missing = want.filter((e) => !haveKeys.has(elementKey(e)));
      const format = (list: Element[]) => list.map((e) => formatElement(name, e)).join(', ');
      if (stale.length > 0) lines.push(`delete element ${t} ${name} { ${format(stale)} }`);
      if (missing.length > 0) lines.push(`add element ${t} ${name} { ${format(missing)} }`);
    }
    return lines;
  }

  /** Our table as the kernel holds it; undefined when there is none. */
  async #read(): Promise<TableState | undefined> {
    let out: string;
    try {
      out = await this.#nft(['-j', 'list', 'table', 'inet', this.#table]);
    } catch (err) {
      if (err instanceof CommandError && err.exitCode !== null && /No such file or directory/.test(err.stderr)) {
        return undefined;
      }
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(out);
    } catch (err) {
      throw new CommandError(bindingErrorReasons.ipCommand, this.#argv(['-j', 'list', 'table']), {
        exitCode: 0,
        stderr: '',
        detail: `printed invalid JSON (${err})`,
      });
    }
    return parseTable(parsed, this.#table);
  }

  #argv(args: readonly string[]): string[] {
    return this.#netns === undefined
      ? [this.#binary, ...args]
      : ['ip', 'netns', 'exec', this.#netns, this.#binary, ...args];
  }

  /** `nft -j list table …` or `nft -f -` (the transaction on standard input): in the long-lived `nft` if any. */
  #nft(args: readonly string[], input?: string): Promise<string> {
    return runNft(
      {
        session: this.#session,
        exec: this.#exec,
        argv: (a) => this.#argv(a),
        timeoutMs: this.#timeoutMs,
        unrunnable:
          'could not be run; install nftables, or set [embedded] isolate_networks = false and ' +
          'allow_host_access = true to run without network isolation',
      },
      args,
      input,
    );
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

function emptyElements(): Map<SetName, Element[]> {
  return new Map(SET_NAMES.map((name) => [name, []]));
}

/** The host addresses a container may reach for one gateway: itself, and for IPv4 the subnet broadcast. */
function hostAddresses({ address, prefixLength }: InterfaceAddress): Array<{ version: 4 | 6; address: string }> {
  let version: 4 | 6;
  try {
    version = ipVersion(address);
  } catch (err) {
    if (!(err instanceof InvalidAddressError)) throw err;
    throw new BindingError(bindingErrorReasons.invalidInput, `invalid gateway address ${JSON.stringify(address)}`);
  }
  const max = version === 4 ? 32 : 128;
  if (!Number.isInteger(prefixLength) || prefixLength < 1 || prefixLength > max) {
    throw new BindingError(
      bindingErrorReasons.invalidInput,
      `invalid prefix length ${JSON.stringify(prefixLength)} for gateway ${address}: must be 1..${max}`,
    );
  }
  const out = [{ version, address: normalizeIp(address) }];
  if (version === 4 && prefixLength <= 30) {
    out.push({ version, address: bigIntToIp(lastAddress(parseCidr(`${address}/${prefixLength}`)), 4) });
  }
  return out;
}

const elementKey = (e: Element) => e.join(' . ');

function uniqueElements(list: Element[]): Element[] {
  const seen = new Map<string, Element>();
  for (const e of list) seen.set(elementKey(e), e);
  return [...seen.values()];
}

/** The component types of a set's elements: `['ifname', 'ipv4_addr']`. */
const fieldTypes = (name: string): string[] => (SETS[name as SetName]?.type ?? 'ifname').split(' . ');

/** nft syntax of an element: interface names quoted (they are checked names), addresses (checked) bare. */
function formatElement(set: SetName, e: Element): string {
  const types = fieldTypes(set);
  return e.map((part, i) => (types[i] === 'ifname' ? `"${part}"` : part)).join(' . ');
}

function sameList(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One element of `nft -j` output: `"brqX"`, `{"concat": [...]}`, or either wrapped in `{"elem": {"val": ...}}`. */
function parseElement(set: string, value: unknown): Element | undefined {
  if (isRecord(value) && isRecord(value.elem)) return parseElement(set, value.elem.val);
  const parts =
    typeof value === 'string' ? [value] : isRecord(value) && Array.isArray(value.concat) ? value.concat : [];
  const types = fieldTypes(set);
  if (parts.length !== types.length || !parts.every((p) => typeof p === 'string')) return undefined;
  try {
    return parts.map((p, i) => (types[i] === 'ifname' ? p : normalizeIp(p)));
  } catch {
    return undefined; // not an element we could have written
  }
}

/** Our sets and chains from `nft -j list table inet <table>`. */
function parseTable(json: unknown, table: string): TableState {
  const items = isRecord(json) && Array.isArray(json.nftables) ? json.nftables : [];
  const state: TableState = { sets: new Map(), chains: new Map() };
  for (const item of items) {
    if (!isRecord(item)) continue;
    const set = item.set;
    if (isRecord(set) && set.table === table && set.family === 'inet' && typeof set.name === 'string') {
      const elements: Element[] = [];
      for (const raw of Array.isArray(set.elem) ? set.elem : []) {
        const e = parseElement(set.name, raw);
        if (e !== undefined) elements.push(e);
      }
      state.sets.set(set.name, elements);
    }
    const chain = item.chain;
    if (isRecord(chain) && chain.table === table && typeof chain.name === 'string' && !state.chains.has(chain.name)) {
      state.chains.set(chain.name, []);
    }
    const rule = item.rule;
    if (isRecord(rule) && rule.table === table && typeof rule.chain === 'string') {
      const list = state.chains.get(rule.chain) ?? [];
      list.push(typeof rule.comment === 'string' ? rule.comment : '');
      state.chains.set(rule.chain, list);
    }
  }
  return state;
}
