/**
 * The Docker workload, the same for every target, and how one phase of it is measured: wall time of each
 * docker command, and around the phase the CPU of dockerd and of the plugin (/proc), the Neutron calls
 * (the plugin's metrics) and the libnetwork requests (its access log).
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { PrivateDockerd } from '../test/helpers/docker-engine.ts';
import { sumOf } from '../test/helpers/prometheus.ts';
import { cpuMsOf, treeCpuMsOf } from './proc.ts';
import { round, type Summary, summarize } from './stats.ts';
import type { BenchTarget } from './targets.ts';

export const IMAGE = 'busybox:local';
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface PluginPhaseFigures {
  /**
   * CPU time of the plugin and the processes it runs (its `ip`/`nft` sessions, `iptables`) during the phase,
   * /proc/<pid>/stat before/after (10 ms ticks; results before 2026-12-07 16:00 count the plugin's own only).
   */
  cpuMs: number;
  cpuMsPerOp: number;
  /** libnetwork requests served during the phase (access log). */
  requests: number;
  /** Time the plugin spent answering them (sum of the access log's ms), in all and per docker operation. */
  pluginMs: number;
  pluginMsPerOp: number;
  /** Neutron API calls made during the phase (kuryr_neutron_calls_total before/after). */
  neutronCalls: number;
  neutronCallsPerOp: number;
}

export interface PhaseResult {
  phase: string;
  /** How many times the phase ran (`--rounds`); the other figures add up over the rounds. */
  rounds: number;
  /** Docker operations in the phase (containers, networks, or pairs for the ping). */
  ops: number;
  /** Wall time of the whole phase, ms (all rounds: divide by `rounds` for one). */
  wallMs: number;
  /** Wall time of each docker operation, ms. */
  perOp: Summary;
  /** The same, every operation, in order. */
  samples: number[];
  /** dockerd's own CPU during the phase (/proc), ms. */
  dockerdCpuMs: number;
  plugin?: PluginPhaseFigures;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

/** Runs `body` as one measured phase of `target`; `body` returns the wall time of each operation. */
export async function measurePhase(
  engine: PrivateDockerd,
  target: BenchTarget,
  phase: string,
  body: () => Promise<number[]>,
): Promise<PhaseResult> {
  const plugin = target.plugin;
  // The scrape first: the plugin's CPU for rendering the metrics is the bench's, not the phase's.
  const neutronBefore = plugin && sumOf(await plugin.scrape(), 'kuryr_neutron_calls_total');
  const before = plugin && {
    cpu: treeCpuMsOf(plugin.pid),
    offset: plugin.logOffset(),
    neutron: neutronBefore ?? 0,
  };
  const dockerdBefore = cpuMsOf(engine.pid);
  const t0 = performance.now();
  const samples = await body();
  const wallMs = performance.now() - t0;
  const dockerdCpuMs = cpuMsOf(engine.pid) - dockerdBefore;
  const result: PhaseResult = {
    phase,
    rounds: 1,
    ops: samples.length,
    wallMs: round(wallMs, 1),
    perOp: summarize(samples),
    samples: samples.map((v) => round(v, 1)),
    dockerdCpuMs: round(dockerdCpuMs, 0),
  };
  if (plugin !== undefined && before !== undefined) {
    const cpuMs = treeCpuMsOf(plugin.pid) - before.cpu;
    const neutronCalls = sumOf(await plugin.scrape(), 'kuryr_neutron_calls_total') - before.neutron;
    const served = plugin.requests(before.offset);
    const requests = served.length;
    const pluginMs = served.reduce((t, e) => t + e.ms, 0);
    result.plugin = {
      cpuMs: round(cpuMs, 0),
      cpuMsPerOp: round(cpuMs / Math.max(1, samples.length), 2),
      requests,
      pluginMs: round(pluginMs, 1),
      pluginMsPerOp: round(pluginMs / Math.max(1, samples.length), 1),
      neutronCalls,
      neutronCallsPerOp: round(neutronCalls / Math.max(1, samples.length), 2),
    };
  }
  return result;
}

/** Adds up two measurements of the same phase (rounds). */
export function mergePhases(a: PhaseResult, b: PhaseResult): PhaseResult {
  const samples = [...a.samples, ...b.samples];
  const ops = a.ops + b.ops;
  const merged: PhaseResult = {
    phase: a.phase,
    rounds: a.rounds + b.rounds,
    ops,
    wallMs: round(a.wallMs + b.wallMs, 1),
    perOp: summarize(samples),
    samples,
    dockerdCpuMs: a.dockerdCpuMs + b.dockerdCpuMs,
  };
  if (a.plugin && b.plugin) {
    const cpuMs = a.plugin.cpuMs + b.plugin.cpuMs;
    const neutronCalls = a.plugin.neutronCalls + b.plugin.neutronCalls;
    const pluginMs = a.plugin.pluginMs + b.plugin.pluginMs;
    merged.plugin = {
      cpuMs,
      cpuMsPerOp: round(cpuMs / Math.max(1, ops), 2),
      requests: a.plugin.requests + b.plugin.requests,
      pluginMs: round(pluginMs, 1),
      pluginMsPerOp: round(pluginMs / Math.max(1, ops), 1),
      neutronCalls,
      neutronCallsPerOp: round(neutronCalls / Math.max(1, ops), 2),
    };
  }
  return merged;
}

/** The first port of the kernel's ephemeral range (the local ports of outgoing connections). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 11_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/**
 * A host port for `docker run -p`: below the ephemeral range (which outgoing connections take ports from, and
 * a listener on 0.0.0.0 cannot share), and free right now (bound and let go on 0.0.0.0 and ::).
 */
export async function freeHostPort(): Promise<number> {
  const low = 10_000;
  const high = ephemeralLow();
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    const free = async (host: string) =>
      new Promise<boolean>((resolve) => {
        const server = net.createServer();
        // In use: not free. Another error (no IPv6 on this host): nothing there to clash with.
        server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code !== 'EADDRINUSE'));
        server.listen({ port, host, ipv6Only: host === '::' }, () => server.close(() => resolve(true)));
      });
    if ((await free('0.0.0.0')) && (await free('::'))) return port;
  }
  throw new Error(`no free host port between ${low} and ${high} after 50 tries`);
}

/** The docker commands of the workload, against one engine, for one target. */
export class Workload {
  private networkIndex = 0;
  private containerIndex = 0;
  readonly engine: PrivateDockerd;
  readonly target: BenchTarget;
  readonly prefix: string;

  constructor(engine: PrivateDockerd, target: BenchTarget, prefix: string) {
    this.engine = engine;
    this.target = target;
    this.prefix = prefix;
  }

  /** `docker network create` of one new network; resolves to its name and the wall time. */
  async createNetwork(): Promise<{ name: string; ms: number }> {
    const index = this.networkIndex++;
    const name = `${this.prefix}-net${index}`;
    const { ms } = await timed(() =>
      this.engine.dockerOk(['network', 'create', ...this.target.networkCreateArgs(name, index)]),
    );
    return { name, ms };
  }

  async removeNetwork(name: string): Promise<number> {
    return (await timed(() => this.engine.dockerOk(['network', 'rm', name]))).ms;
  }

  /** `docker run -d --net <network> busybox sleep`; resolves to the container name and the wall time. */
  async run(network: string): Promise<{ name: string; ms: number }> {
    const name = `${this.prefix}-c${this.containerIndex++}`;
    const { ms } = await timed(() =>
      this.engine.dockerOk(['run', '-d', '--name', name, '--net', network, IMAGE, 'sleep', '3600']),
    );
    return { name, ms };
  }

  /**
   * Removes every container and network of this workload (names starting with its prefix), best effort: after a
   * failed run, so that no container, network, Neutron port or host device outlives the engine.
   */
  async clear(): Promise<void> {
    const names = async (args: string[]) =>
      (await this.engine.docker(args)).stdout
        .split('\n')
        .map((n) => n.trim())
        .filter((n) => n.startsWith(this.prefix));
    for (const c of await names(['ps', '-a', '--format', '{{.Names}}'])) await this.engine.docker(['rm', '-f', c]);
    for (const n of await names(['network', 'ls', '--format', '{{.Name}}']))
      await this.engine.docker(['network', 'rm', n]);
  }

  async remove(container: string): Promise<number> {
    return (await timed(() => this.engine.dockerOk(['rm', '-f', container]))).ms;
  }

  async ipOf(container: string): Promise<string> {
    const out = await this.engine.dockerOk([
      'inspect',
      '-f',
      '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}',
      container,
    ]);
    return out.trim();
  }

  /**
   * Time to the first successful ping between two new containers: from starting both `docker run`s (at once)
   * to the first echo reply of `docker exec a ping -c1 <b>`. Removes both afterwards (not timed).
   */
  async firstPing(network: string): Promise<number> {
    const t0 = performance.now();
    const [a, b] = await Promise.all([this.run(network), this.run(network)]);
    const ip = await this.ipOf(b.name);
    let ok = false;
    let last = '';
    for (let i = 0; i < 40 && !ok; i++) {
      const r = await this.engine.docker(['exec', a.name, 'ping', '-c', '1', '-W', '1', ip]);
      ok = r.code === 0;
      last = r.stdout + r.stderr;
      if (!ok) await sleep(50);
    }
    const ms = performance.now() - t0;
    await Promise.all([this.remove(a.name), this.remove(b.name)]);
    if (!ok) throw new Error(`${this.target.name}: ${a.name} cannot ping ${b.name} (${ip}): ${last.trim()}`);
    return ms;
  }
}

/**
 * What a TCP connection to `host:port` reads before the peer closes it or `timeoutMs` passes: '' when the
 * connection is refused or nothing comes (Docker's proxy accepts before the container listens).
 */
export function readOnce(host: string, port: number, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    const socket = net.connect({ host, port });
    const done = () => {
      socket.destroy();
      resolve(data);
    };
    socket.setTimeout(timeoutMs, done);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      data += chunk;
    });
    socket.on('end', done);
    socket.on('error', done);
  });
}

/**
 * Time to the first answer on a published port: from `docker run -d -p <hostPort>:80` of a container whose
 * server answers one line to the first time that line is read through the host's 127.0.0.1:<hostPort>.
 * Removes the container afterwards (not timed).
 */
export async function firstAnswer(w: Workload, network: string, hostPort: number): Promise<number> {
  const name = `${w.prefix}-p${hostPort}`;
  const t0 = performance.now();
  await w.engine.dockerOk([
    'run',
    '-d',
    '--name',
    name,
    '--net',
    network,
    '-p',
    `${hostPort}:80`,
    IMAGE,
    'nc',
    '-ll',
    '-p',
    '80',
    '-e',
    'echo',
    'published',
  ]);
  let got = '';
  for (let i = 0; i < 200 && got.trim() !== 'published'; i++) {
    got = await readOnce('127.0.0.1', hostPort);
    if (got.trim() !== 'published') await sleep(20);
  }
  const ms = performance.now() - t0;
  await w.remove(name);
  if (got.trim() !== 'published') {
    throw new Error(`${w.target.name}: nothing answered on the published port 127.0.0.1:${hostPort}`);
  }
  return ms;
}

/** Runs `fn` over `items` with at most `limit` at a time; results in the order of `items`. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}
