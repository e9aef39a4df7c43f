/**
 * A test bench for network isolation against the real kernel (root): a "host" (the real host namespace, or a
 * private namespace standing in for it), two agent networks A and B with one bridge each, three "containers"
 * (network namespaces a1 and a2 on A, b1 on B, configured the way Docker configures them), and the host's
 * "other" addresses: a veth pair with an address and another device with a /32 and a /128 (a local service
 * address on another interface, as on a dummy or loopback device). Everything gets a unique name and free address ranges; `cleanup` removes
 * what the bench created and only that, and never a table that existed before the bench was built.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { IpCommand } from '../../src/binding/ip-command.ts';
import { DEFAULT_ISOLATION_TABLE, NftIsolation, type NftIsolationOptions } from '../../src/binding/isolation.ts';
import { LinuxBridgeAgent } from '../../src/binding/linux-bridge-agent.ts';
import { bridgeName } from '../../src/binding/names.ts';
import {
  deleteLinks,
  existingLinks,
  findPing,
  freeSubnets,
  kernelSkipReason,
  randomId,
  shortSuffix,
  sleep,
  type TestSubnets,
} from './kernel.ts';

const run = promisify(execFile);

export interface Network {
  networkId: string;
  bridge: string;
  net: TestSubnets;
  gw4: string;
  gw6: string;
}

export interface Container {
  name: string;
  netns: string;
  /** Host end of its veth, a port of the network's bridge. */
  hostDev: string;
  network: Network;
  v4: string;
  v6: string;
}

export interface LabOptions {
  /** Name of a private namespace to play the host in (created and deleted by the bench); default: the host. */
  hostNetns?: string;
  /** nftables table of the isolation under test. */
  table: string;
  /** Isolation policy options (`isolateNetworks`, `allowHostAccess`). */
  policy?: Pick<NftIsolationOptions, 'isolateNetworks' | 'allowHostAccess'>;
  /** Sysctls set in the private host namespace (never on the real host), e.g. br_netfilter's. */
  hostSysctls?: Record<string, string>;
}

/** Three distinct free subnet pairs. */
async function distinctSubnets(count: number): Promise<TestSubnets[]> {
  const out: TestSubnets[] = [];
  for (let i = 0; out.length < count && i < 50; i++) {
    const s = await freeSubnets();
    if (!out.some((o) => o.v4 === s.v4 || o.v6 === s.v6)) out.push(s);
  }
  if (out.length < count) throw new Error('no distinct free subnets');
  return out;
}

export class Lab {
  readonly suffix = shortSuffix();
  readonly options: LabOptions;
  readonly hostIp: IpCommand;
  isolation!: NftIsolation;
  agent!: LinuxBridgeAgent;
  a!: Network;
  b!: Network;
  a1!: Container;
  a2!: Container;
  b1!: Container;
  /** The host's other addresses: a /24 and /64 on a veth (`dev`), a /32 and /128 on another (`dummy`). */
  other!: {
    dev: string;
    peer: string;
    dummy: string;
    dummyPeer: string;
    v4: string;
    v6: string;
    dummy4: string;
    dummy6: string;
  };
  tableExistedBefore = false;
  readonly #netns: string[] = [];
  readonly #links: string[] = [];
  #hostNetnsCreated = false;

  constructor(options: LabOptions) {
    this.options = options;
    this.hostIp = new IpCommand(options.hostNetns === undefined ? {} : { netns: options.hostNetns });
  }

  /** argv prefix that runs a program in the host (real or private). */
  get #hostExec(): string[] {
    return this.options.hostNetns === undefined ? [] : ['ip', 'netns', 'exec', this.options.hostNetns];
  }

  /** Run a program in the host namespace of the bench. */
  async host(argv: string[]): Promise<string> {
    const full = [...this.#hostExec, ...argv];
    const [file = '', ...args] = full;
    return (await run(file, args, { timeout: 10_000 })).stdout;
  }

  /** Every device name on the host side the bench may create. */
  hostDevices(): string[] {
    return [...this.#links];
  }

  async setup(): Promise<void> {
    const { hostNetns } = this.options;
    if (hostNetns !== undefined) {
      await run('ip', ['netns', 'add', hostNetns]);
      this.#hostNetnsCreated = true;
      await this.hostIp.run(['link', 'set', 'dev', 'lo', 'up']);
      await this.host(['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
      for (const [key, value] of Object.entries(this.options.hostSysctls ?? {})) {
        await this.host(['sysctl', '-qw', `${key}=${value}`]);
      }
    }
    this.tableExistedBefore = await this.tableExists();
    this.isolation = new NftIsolation({
      table: this.options.table,
      ...(hostNetns === undefined ? {} : { netns: hostNetns }),
      ...this.options.policy,
    });
    this.agent = new LinuxBridgeAgent({ ip: this.hostIp, isolation: this.isolation });

    const [na, nb, no] = await distinctSubnets(3);
    if (!na || !nb || !no) throw new Error('unreachable');
    this.a = this.#network(na);
    this.b = this.#network(nb);
    for (const n of [this.a, this.b]) this.#links.push(n.bridge);
    await this.ensure(this.a);
    await this.ensure(this.b);

    this.a1 = await this.#container('a1', this.a, 10);
    this.a2 = await this.#container('a2', this.a, 11);
    this.b1 = await this.#container('b1', this.b, 10);

    const s = this.suffix;
    this.other = {
      dev: `kxo${s}`,
      peer: `kxp${s}`,
      dummy: `kxd${s}`,
      dummyPeer: `kxe${s}`,
      v4: `${no.v4}.1`,
      v6: `${no.v6}:1`,
      dummy4: `${no.v4}.200`,
      dummy6: `${no.v6}:c8`,
    };
    const o = this.other;
    this.#links.push(o.dev, o.peer, o.dummy, o.dummyPeer);
    await this.hostIp.run(['link', 'add', 'dev', o.dev, 'type', 'veth', 'peer', 'name', o.peer]);
    await this.hostIp.run(['link', 'set', 'dev', o.peer, 'up']);
    await this.hostIp.run(['link', 'set', 'dev', o.dev, 'up']);
    await this.hostIp.run(['addr', 'add', `${o.v4}/24`, 'dev', o.dev]);
    await this.hostIp.run(['addr', 'add', `${o.v6}/64`, 'dev', o.dev, 'nodad']);
    // (a veth, not a dummy: not every kernel has the dummy driver)
    await this.hostIp.run(['link', 'add', 'dev', o.dummy, 'type', 'veth', 'peer', 'name', o.dummyPeer]);
    await this.hostIp.run(['link', 'set', 'dev', o.dummyPeer, 'up']);
    await this.hostIp.run(['link', 'set', 'dev', o.dummy, 'up']);
    await this.hostIp.run(['addr', 'add', `${o.dummy4}/32`, 'dev', o.dummy]);
    await this.hostIp.run(['addr', 'add', `${o.dummy6}/128`, 'dev', o.dummy, 'nodad']);
  }

  #network(net: TestSubnets): Network {
    const networkId = randomId();
    return { networkId, bridge: bridgeName(networkId), net, gw4: `${net.v4}.1`, gw6: `${net.v6}:1` };
  }

  /** The agent's `ensureNetwork` for a bench network (what the driver and a restart do). */
  async ensure(n: Network): Promise<void> {
    await this.agent.ensureNetwork({
      networkId: n.networkId,
      mtu: 1500,
      gateways: [
        { address: n.gw4, prefixLength: 24 },
        { address: n.gw6, prefixLength: 64 },
      ],
    });
  }

  async #container(name: string, network: Network, host: number): Promise<Container> {
    const netns = `kxi-${this.suffix}-${name}`;
    const hostDev = `kxi${this.suffix}${name}`;
    const c: Container = {
      name,
      netns,
      hostDev,
      network,
      v4: `${network.net.v4}.${host}`,
      v6: `${network.net.v6}:${host.toString(16)}`,
    };
    await run('ip', ['netns', 'add', netns]);
    this.#netns.push(netns);
    this.#links.push(hostDev);
    await this.hostIp.run(['link', 'add', 'dev', hostDev, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    await this.hostIp.run(['link', 'set', 'dev', hostDev, 'master', network.bridge, 'up']);
    const inNs = new IpCommand({ netns });
    await inNs.run(['addr', 'add', `${c.v4}/24`, 'dev', 'eth0']);
    await inNs.run(['addr', 'add', `${c.v6}/64`, 'dev', 'eth0', 'nodad']);
    await inNs.run(['link', 'set', 'dev', 'eth0', 'up']);
    await inNs.run(['link', 'set', 'dev', 'lo', 'up']);
    await inNs.run(['route', 'add', 'default', 'via', network.gw4]);
    await inNs.run(['-6', 'route', 'add', 'default', 'via', network.gw6]);
    return c;
  }

  /** The IPv6 link-local address of a host-side device. */
  async linkLocal(dev: string): Promise<string> {
    const addr = (await this.hostIp.getAddresses(dev)).find((a) => a.family === 'inet6' && a.scope === 'link');
    if (!addr) throw new Error(`${dev} has no IPv6 link-local address`);
    return addr.local;
  }

  /**
   * Make `target` (a link-local address of the host) resolvable from `c` without neighbour discovery: a
   * permanent neighbour entry with the MAC of `c`'s bridge, so a packet to it really reaches the host.
   */
  async staticNeighbour(c: Container, target: string): Promise<void> {
    const mac = (await this.hostIp.getLink(c.network.bridge))?.address;
    if (!mac) throw new Error(`no MAC for ${c.network.bridge}`);
    await new IpCommand({ netns: c.netns }).run([
      'neigh',
      'replace',
      target,
      'lladdr',
      mac,
      'dev',
      'eth0',
      'nud',
      'permanent',
    ]);
  }

  async tableExists(name = this.options.table): Promise<boolean> {
    const tables = JSON.parse(await this.host(['nft', '-j', 'list', 'tables'])) as { nftables: unknown[] };
    return tables.nftables.some((i) => {
      const t = (i as { table?: { family?: string; name?: string } }).table;
      return t?.family === 'inet' && t.name === name;
    });
  }

  /** Names of the bench (bridges, devices) that appear in the plugin's shared `inet kuryr_ts` table. */
  async namesInSharedTable(): Promise<string[]> {
    if (this.options.table === DEFAULT_ISOLATION_TABLE) return [];
    if (!(await this.tableExists(DEFAULT_ISOLATION_TABLE))) return [];
    const shared = await this.host(['nft', '-j', 'list', 'table', 'inet', DEFAULT_ISOLATION_TABLE]).catch(() => '');
    return [this.a?.bridge, this.b?.bridge, ...this.#links].filter((n): n is string => !!n && shared.includes(n));
  }

  /** `nft -s -j list table` of the isolation table (with handles, without counters), or '' when there is none. */
  async tableJson(): Promise<string> {
    if (!(await this.tableExists())) return '';
    return await this.host(['nft', '-s', '-j', 'list', 'table', 'inet', this.options.table]);
  }

  /** Undo everything the bench created; each step tolerates "already gone". Returns what went wrong. */
  async cleanup(): Promise<unknown[]> {
    const problems: unknown[] = [];
    const attempt = async (step: () => Promise<unknown>) => {
      try {
        await step();
      } catch (err) {
        problems.push(err);
      }
    };
    for (const ns of this.#netns) await attempt(() => run('ip', ['netns', 'del', ns]));
    for (const n of [this.a, this.b]) {
      if (n !== undefined && this.agent !== undefined) await attempt(() => this.agent.removeNetwork(n.networkId));
    }
    if (this.#hostNetnsCreated && this.options.hostNetns !== undefined) {
      // Everything else of the bench lives in it, the table included.
      await attempt(() => run('ip', ['netns', 'del', this.options.hostNetns ?? '']));
      return problems;
    }
    let left = await existingLinks(this.#links);
    for (let i = 0; i < 20 && left.length > 0; i++) {
      await sleep(100);
      left = await existingLinks(this.#links);
    }
    await attempt(() => deleteLinks(left));
    if (!this.tableExistedBefore) {
      await attempt(async () => {
        if (await this.tableExists()) await this.host(['nft', 'delete', 'table', 'inet', this.options.table]);
      });
    }
    const netnsLeft = (await run('ip', ['netns', 'list'])).stdout;
    for (const ns of this.#netns) if (netnsLeft.includes(ns)) problems.push(new Error(`netns ${ns} left behind`));
    const linksLeft = await existingLinks(this.#links);
    if (linksLeft.length > 0) problems.push(new Error(`devices left behind: ${linksLeft.join(', ')}`));
    return problems;
  }
}

/** Ping once from a namespace (retrying when `expect` is true: neighbour discovery may lose the first). */
export async function pingFrom(
  ping: readonly string[],
  netns: string | undefined,
  target: string,
  family: 4 | 6,
  tries: number,
): Promise<boolean> {
  const prefix = netns === undefined ? [] : ['ip', 'netns', 'exec', netns];
  const [file = '', ...args] = [...prefix, ...ping, `-${family}`, '-c', '1', '-W', '1', target];
  for (let i = 0; i < tries; i++) {
    try {
      await run(file, args, { timeout: 5000 });
      return true;
    } catch {
      if (i + 1 < tries) await sleep(200);
    }
  }
  return false;
}

/**
 * Every table except `inet <ours>` and `inet kuryr_ts` (the plugin's own table, which a plugin running on this
 * host may change at any time: the test checks separately that none of its names appear there), stateless
 * (no counters), as comparable JSON.
 */
export async function otherTables(ours: string, hostNetns?: string): Promise<string> {
  const prefix = hostNetns === undefined ? [] : ['ip', 'netns', 'exec', hostNetns];
  const [file = '', ...args] = [...prefix, 'nft', '-s', '-j', 'list', 'ruleset'];
  const parsed = JSON.parse((await run(file, args, { timeout: 10_000 })).stdout) as { nftables: unknown[] };
  const kept = parsed.nftables.filter((item) => {
    if (typeof item !== 'object' || item === null || 'metainfo' in item) return false;
    const body = Object.values(item)[0] as { family?: string; table?: string; name?: string };
    const table = 'table' in item ? body.name : body.table;
    return !(body.family === 'inet' && (table === ours || table === DEFAULT_ISOLATION_TABLE));
  });
  return JSON.stringify(kept, null, 1);
}

/** A probe: ping from a container (or from the host of the bench) to an address, over IPv4 or IPv6. */
export type Check = [from: Container | 'host', to: string, family: 4 | 6];

const label = ([from, to, family]: Check) => `ping -${family} ${from === 'host' ? 'host' : from.name} -> ${to}`;

/**
 * Assert that every `reachable` probe answers (one after the other, with retries: neighbour discovery) and
 * no `unreachable` one does (in parallel, one try of 1 s each).
 */
export async function expectMatrix(
  lab: Lab,
  ping: readonly string[],
  reachable: Check[],
  unreachable: Check[],
  when: string,
): Promise<void> {
  const from = (c: Check) => (c[0] === 'host' ? lab.options.hostNetns : c[0].netns);
  for (const c of reachable) {
    assert.ok(await pingFrom(ping, from(c), c[1], c[2], c[2] === 6 ? 5 : 3), `${when}: ${label(c)} failed`);
  }
  const answered = await Promise.all(unreachable.map((c) => pingFrom(ping, from(c), c[1], c[2], 1)));
  const leaks = unreachable.filter((_, i) => answered[i]).map(label);
  assert.deepEqual(leaks, [], `${when}: expected to be blocked`);
}

/** `/proc/sys` value in the current (host) namespace, or 'absent'. */
export function hostSysctl(key: string): string {
  try {
    return readFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, 'utf8').trim();
  } catch {
    return 'absent';
  }
}

/** Why isolation tests cannot run here (root, `ip`, `nft`, a ping), or false. */
export async function isolationSkipReason(): Promise<string | false> {
  const kernel = await kernelSkipReason();
  if (kernel) return kernel;
  try {
    await run('nft', ['--version']);
  } catch {
    return 'needs nft (apt-get install -y nftables)';
  }
  if ((await findPing()) === undefined) return 'needs ping (iputils-ping or busybox)';
  return false;
}
