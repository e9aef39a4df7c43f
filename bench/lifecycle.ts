/**
 * Plugin CPU per container lifecycle, without dockerd: the plugin (`dist/cli/main.js serve`, embedded backend) is
 * sent the libnetwork requests dockerd sends for `docker run` + `docker rm -f` over its unix socket (RequestAddress,
 * CreateEndpoint, EndpointOperInfo, Join, ProgramExternalConnectivity, EndpointOperInfo, then
 * RevokeExternalConnectivity, Leave, DeleteEndpoint, ReleaseAddress), one lifecycle after another. Real veth pairs
 * and a real bridge are made (root). Measured: the plugin's utime+stime from /proc around the lifecycles, and each
 * call's CPU from the access log.
 *
 *   node bench/lifecycle.ts [--lifecycles N] [--warmup N] [--node-flags="--jitless --optimize-for-size"]
 *                           [--no-metrics] [--profile DIR] [--name PREFIX] [--root CHECKOUT]
 *                           [--noop-requests N] [--serve-arg ARG]... [--pause MS] [--idle-seconds S]
 *                           [--networks N]
 *
 * `--networks N` first creates and removes N networks (the calls of `docker network create` and `rm`) and prints
 * each call's time and CPU.
 * `--node-flags` replaces the flags bin/kuryr gives node (default: the same as bin/kuryr); `--node-flags=` runs
 * node without --jitless and --optimize-for-size. Needs `npm run build`. Takes no lock: no dockerd, own names.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pluginCall, REPO_ROOT } from '../test/helpers/plugin-process.ts';
import { cpuMsOf, cpuSplitOf, memoryOf, treeCpuMsOf } from './proc.ts';
import { renderProfile, summarizeProfile } from './profile.ts';
import { percentile, round } from './stats.ts';
import { parseAccessLog } from './targets.ts';

/** The V8 flags bin/kuryr gives node, read from the launcher itself (its `exec "$node" ... "$main"` line). */
export function kuryrNodeFlags(launcher = readFileSync(path.join(REPO_ROOT, 'bin', 'kuryr'), 'utf8')): string {
  const exec = /^exec "\$node"([\s\S]*?)"\$main"/m.exec(launcher);
  if (exec === null) throw new Error('bin/kuryr: no exec "$node" ... "$main" line');
  return (exec[1] ?? '')
    .split(/[\s\\]+/)
    .filter((flag) => flag.startsWith('--') && !flag.startsWith('--disable-warning'))
    .join(' ');
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const dockerId = () => hex(32);
/** A locally administered MAC, as libnetwork's GenerateRandomMAC makes them. */
const randomMac = () => `02:42:${hex(4).match(/../g)!.join(':')}`;

/** One kept-alive connection, as dockerd's plugin client keeps it. */
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** One libnetwork call over the kept-alive connection; anything but a 200 is an error. */
async function call<T = Record<string, unknown>>(socket: string, method: string, body: unknown): Promise<T> {
  const res = await pluginCall<T>(socket, method, body, 30_000, agent);
  if (res.status !== 200) throw new Error(`${method}: ${res.status} ${res.raw}`);
  return res.body;
}

/** One `docker run` + `docker rm -f` as dockerd (RequiresMACAddress IPAM) sends it. */
export async function lifecycle(socket: string, networkId: string, poolId: string): Promise<void> {
  const mac = randomMac();
  const endpointId = dockerId();
  const { Address } = await call<{ Address: string }>(socket, 'IpamDriver.RequestAddress', {
    PoolID: poolId,
    Address: '',
    Options: { 'com.docker.network.endpoint.macaddress': mac },
  });
  const ep = { NetworkID: networkId, EndpointID: endpointId };
  await call(socket, 'NetworkDriver.CreateEndpoint', {
    ...ep,
    Interface: { Address, AddressIPv6: '', MacAddress: mac },
    Options: { 'com.docker.network.endpoint.exposedports': null, 'com.docker.network.portmap': null },
  });
  await call(socket, 'NetworkDriver.EndpointOperInfo', ep);
  await call(socket, 'NetworkDriver.Join', {
    ...ep,
    SandboxKey: `/var/run/docker/netns/${hex(6)}`,
    Options: { 'com.docker.network.endpoint.exposedports': null, 'com.docker.network.portmap': null },
  });
  await call(socket, 'NetworkDriver.ProgramExternalConnectivity', {
    ...ep,
    Options: { 'com.docker.network.endpoint.exposedports': null, 'com.docker.network.portmap': null },
  });
  await call(socket, 'NetworkDriver.EndpointOperInfo', ep);
  await call(socket, 'NetworkDriver.RevokeExternalConnectivity', ep);
  await call(socket, 'NetworkDriver.Leave', ep);
  await call(socket, 'NetworkDriver.DeleteEndpoint', ep);
  await call(socket, 'IpamDriver.ReleaseAddress', { PoolID: poolId, Address: Address.split('/')[0] });
}

interface Started {
  child: ChildProcess;
  socket: string;
  logFile: string;
}

async function startServe(
  dir: string,
  name: string,
  flags: string[],
  octet: number,
  metrics: boolean,
  root: string,
  serveArgs: readonly string[],
  profileDir?: string,
) {
  const socket = path.join(dir, `${name}.sock`);
  const logFile = path.join(dir, 'plugin.log');
  const conf = path.join(dir, 'kuryr.conf');
  writeFileSync(conf, `[embedded]\ndefault_pool_prefix_v4 = 10.${octet}.0.0/16\n`);
  const fd = openSync(logFile, 'a');
  const profile = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
  const child = spawn(
    process.execPath,
    [
      '--disable-warning=ExperimentalWarning',
      ...flags,
      ...profile,
      path.join(root, 'dist', 'cli', 'main.js'),
      'serve',
      '--driver-name',
      name,
      '--state-dir',
      path.join(dir, 'state'),
      '--socket',
      socket,
      '--config',
      conf,
      ...(metrics ? ['--metrics-listen', '127.0.0.1:0'] : []),
      ...serveArgs,
    ],
    { stdio: ['ignore', fd, fd] },
  );
  closeSync(fd);
  for (let i = 0; i < 200; i++) {
    try {
      if ((await pluginCall(socket, 'Plugin.Activate', {}, 1000)).status === 200) {
        return { child, socket, logFile } satisfies Started;
      }
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  throw new Error(`plugin did not start: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(10_000)]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

interface BenchNetwork {
  networkId: string;
  poolId: string;
  /** The gateway's address without its prefix length. */
  gateway: string;
}

/** `docker network create` (default pool) as dockerd 20.10 sends it: RequestPool, the gateway, CreateNetwork. */
async function createNetwork(socket: string): Promise<BenchNetwork> {
  const pool = await call<{ PoolID: string; Pool: string }>(socket, 'IpamDriver.RequestPool', {
    AddressSpace: 'LocalDefault',
    Pool: '',
    SubPool: '',
    Options: {},
    V6: false,
  });
  const gw = await call<{ Address: string }>(socket, 'IpamDriver.RequestAddress', {
    PoolID: pool.PoolID,
    Address: '',
    Options: { RequestAddressType: 'com.docker.network.gateway' },
  });
  const networkId = dockerId();
  await call(socket, 'NetworkDriver.CreateNetwork', {
    NetworkID: networkId,
    Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} },
    IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: pool.Pool, Gateway: gw.Address, AuxAddresses: null }],
    IPv6Data: [],
  });
  return { networkId, poolId: pool.PoolID, gateway: gw.Address.split('/')[0]! };
}

/** `docker network rm` as dockerd 20.10 sends it: the IPAM first (gateway, pool), then DeleteNetwork. */
async function removeNetwork(socket: string, net: BenchNetwork): Promise<void> {
  await call(socket, 'IpamDriver.ReleaseAddress', { PoolID: net.poolId, Address: net.gateway });
  await call(socket, 'IpamDriver.ReleasePool', { PoolID: net.poolId });
  await call(socket, 'NetworkDriver.DeleteNetwork', { NetworkID: net.networkId });
}

/** `docker network create` + `docker network rm` as dockerd 20.10 sends them, `n` times; prints each call's figures. */
async function networkCycles(plugin: Started, n: number, pid: number): Promise<void> {
  const offset = statSync(plugin.logFile).size;
  const cpu0 = treeCpuMsOf(pid);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    await removeNetwork(plugin.socket, await createNetwork(plugin.socket));
  }
  const wall = performance.now() - t0;
  const cpu = treeCpuMsOf(pid) - cpu0;
  const entries = parseAccessLog(readFileSync(plugin.logFile, 'utf8').slice(offset)).filter((e) => e.status === 200);
  process.stdout.write(
    `${n} network create + rm: ${round(wall / n, 2)} ms each in the plugin's calls, CPU with the processes it runs ` +
      `${round(cpu / n, 2)} ms\n`,
  );
  const byMethod = new Map<string, { ms: number[]; cpu: number[] }>();
  for (const e of entries) {
    const m = byMethod.get(e.method) ?? { ms: [], cpu: [] };
    m.ms.push(e.ms);
    m.cpu.push(e.cpuMs);
    byMethod.set(e.method, m);
  }
  for (const [method, m] of byMethod) {
    process.stdout.write(
      `  ${method.padEnd(44)} p50 ${percentile(m.ms, 50).toFixed(2)} ms, cpu p50 ${percentile(m.cpu, 50).toFixed(2)} ms\n`,
    );
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      lifecycles: { type: 'string', default: '200' },
      warmup: { type: 'string', default: '20' },
      'node-flags': { type: 'string', default: kuryrNodeFlags() },
      profile: { type: 'string' },
      name: { type: 'string', default: 'kxlc' },
      octet: { type: 'string' },
      'no-metrics': { type: 'boolean' },
      'noop-requests': { type: 'string' },
      root: { type: 'string' },
      'serve-arg': { type: 'string', multiple: true },
      pause: { type: 'string' },
      'idle-seconds': { type: 'string' },
      networks: { type: 'string' },
    },
  });
  const n = Number(values.lifecycles);
  const warmup = Number(values.warmup);
  const flags = values['node-flags'].split(' ').filter(Boolean);
  const name = `${values.name}${hex(2)}`;
  const octet = values.octet === undefined ? 200 + Math.floor(Math.random() * 50) : Number(values.octet);
  const dir = mkdtempSync(path.join(os.tmpdir(), `${name}-`));
  const profileDir = values.profile === undefined ? undefined : path.resolve(values.profile);
  const metrics = values['no-metrics'] !== true;
  const root = path.resolve(values.root ?? REPO_ROOT);
  const plugin = await startServe(dir, name, flags, octet, metrics, root, values['serve-arg'] ?? [], profileDir);
  const pid = plugin.child.pid!;
  try {
    const network = await createNetwork(plugin.socket);
    const { networkId, poolId } = network;
    for (let i = 0; i < warmup; i++) await lifecycle(plugin.socket, networkId, poolId);
    const networks = Number(values.networks ?? 0);
    if (networks > 0) await networkCycles(plugin, networks, pid);
    const idleSeconds = Number(values['idle-seconds'] ?? 0);
    if (idleSeconds > 0) {
      // What the plugin spends doing nothing (timers, GC), as between dockerd's calls.
      const before = cpuMsOf(pid);
      await sleep(idleSeconds * 1000);
      process.stdout.write(`idle: ${round((cpuMsOf(pid) - before) / idleSeconds, 1)} ms CPU per second\n`);
    }
    const noops = Number(values['noop-requests'] ?? 0);
    if (noops > 0) {
      // The fixed cost of a request: Leave does nothing but check its body.
      const ep = { NetworkID: networkId, EndpointID: dockerId() };
      for (let i = 0; i < 50; i++) await call(plugin.socket, 'NetworkDriver.Leave', ep);
      const before = cpuMsOf(pid);
      for (let i = 0; i < noops; i++) await call(plugin.socket, 'NetworkDriver.Leave', ep);
      process.stdout.write(`no-op request (Leave): ${round((cpuMsOf(pid) - before) / noops, 3)} ms CPU each\n`);
    }
    const offset = statSync(plugin.logFile).size;
    const cpu0 = cpuMsOf(pid);
    const tree0 = treeCpuMsOf(pid);
    const split0 = cpuSplitOf(pid);
    const t0 = performance.now();
    const pause = Number(values.pause ?? 0);
    for (let i = 0; i < n; i++) {
      await lifecycle(plugin.socket, networkId, poolId);
      // dockerd takes a while between containers (the plugin idles): V8 does other work when idle.
      if (pause > 0) await sleep(pause);
    }
    const wall = performance.now() - t0;
    const cpu = cpuMsOf(pid) - cpu0;
    const tree = treeCpuMsOf(pid) - tree0;
    const split1 = cpuSplitOf(pid);
    const entries = parseAccessLog(readFileSync(plugin.logFile, 'utf8').slice(offset)).filter((e) => e.status === 200);
    const byMethod = new Map<string, number[]>();
    const calls = new Map<string, number>();
    for (const e of entries) {
      byMethod.set(e.method, [...(byMethod.get(e.method) ?? []), e.cpuMs]);
      calls.set(e.method, (calls.get(e.method) ?? 0) + e.neutronCalls);
    }
    await removeNetwork(plugin.socket, network);

    const load = os.loadavg().map((l) => round(l, 2));
    const memory = memoryOf(pid);
    process.stdout.write(
      `plugin memory: peak ${memory.peakRssMiB} MiB (VmHWM), now ${memory.rssMiB} MiB (${memory.rssAnonMiB} anonymous, ${memory.rssFileMiB} file)\n`,
    );
    process.stdout.write(
      `${root}: node flags ${flags.join(' ') || '(none)'}; metrics ${metrics ? 'on (as the bench)' : 'off'}\n${n} lifecycles (after ${warmup} warm-up): plugin CPU ` +
        `${round(cpu / n, 2)} ms per lifecycle (/proc utime+stime, ${round(cpu, 0)} ms in all), user ${round((split1.user - split0.user) / n, 2)} + system ` +
        `${round((split1.system - split0.system) / n, 2)}; with the processes it ran (ip, nft, iptables and their sessions) ` +
        `${round(tree / n, 2)} ms; wall ${round(wall / n, 2)} ms per lifecycle; load average ${load.join(' ')}\n`,
    );
    let sum = 0;
    for (const [method, list] of [...byMethod].sort((a, b) => percentile(b[1], 50) - percentile(a[1], 50))) {
      const mean = list.reduce((t, v) => t + v, 0) / list.length;
      sum += mean * (list.length / n);
      process.stdout.write(
        `  ${method.padEnd(44)} x${String(round(list.length / n, 1)).padEnd(3)} cpu p50 ${percentile(list, 50).toFixed(2)} mean ${mean.toFixed(2)} ms, ` +
          `Neutron calls ${round((calls.get(method) ?? 0) / list.length, 2)}\n`,
      );
    }
    process.stdout.write(`  sum of per-call means per lifecycle: ${sum.toFixed(2)} ms\n`);
  } finally {
    agent.destroy();
    await stop(plugin.child);
    if (profileDir !== undefined) {
      const files = readdirSync(profileDir)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => path.join(profileDir, f))
        .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
      if (files[0] !== undefined) {
        const summary = summarizeProfile(JSON.parse(readFileSync(files[0], 'utf8')), 40);
        process.stdout.write(`\nprofile ${files[0]}:\n${renderProfile(summary)}\n`);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  main().catch((err: unknown) => {
    process.stderr.write(`lifecycle: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
