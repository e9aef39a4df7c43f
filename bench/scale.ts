/**
 * The scale run (`npm run bench -- --scale`): many containers over many networks on kuryr-ts, recording the
 * plugin-side latency of every libnetwork call against the number of containers existing when it was made.
 * Flat curves mean indexed lookups; a curve that climbs with the count means a scan somewhere.
 */
import type { PrivateDockerd } from '../test/helpers/docker-engine.ts';
import { sumOf } from '../test/helpers/prometheus.ts';
import type { MachineInfo } from './machine.ts';
import { type MemoryStatus, memoryOf, treeCpuMsOf } from './proc.ts';
import { linearFit, percentile, round, type Summary, summarize } from './stats.ts';
import type { AccessLogEntry, BenchTarget } from './targets.ts';
import { pool, Workload } from './workload.ts';

export interface ScaleOptions {
  networks: number;
  containers: number;
  /** docker commands in flight at once (1 = one after another). */
  concurrency: number;
  /** Number of buckets the container count is cut into for the curves. */
  buckets: number;
}

export interface EndpointBucket {
  n: number;
  p50Ms: number;
  p90Ms: number;
  cpuP50Ms: number;
  neutronCallsMean: number;
}

export interface ScaleBucket {
  /** Containers existing when the calls were made: from..to (inclusive). */
  from: number;
  to: number;
  endpoints: Record<string, EndpointBucket>;
}

export interface Flatness {
  firstP50Ms: number;
  lastP50Ms: number;
  /** last bucket p50 / first bucket p50 */
  ratio: number;
  /** Least-squares slope of the bucket p50s, ms per 100 more containers. */
  slopeMsPer100: number;
}

export interface MemoryPoint {
  containers: number;
  rssMiB: number;
  /** Anonymous (private) part of the RSS. */
  rssAnonMiB: number;
  /** V8 heap spaces (size reserved for the young and old generations) and the live JS objects in it. */
  heapNewMiB: number;
  heapOldMiB: number;
  heapUsedMiB: number;
  /** Memory of Buffers and other objects outside the V8 heap. */
  externalMiB: number;
}

export interface ScaleResult {
  kind: 'scale';
  schema: 1;
  date: string;
  machine: MachineInfo;
  options: ScaleOptions;
  target: string;
  wallS: number;
  networkCreate: Summary;
  networkRm: Summary;
  /** Wall time of each `docker network create` / `rm`, in order (the nth create finds n-1 networks). */
  networkCreateMs: number[];
  networkRmMs: number[];
  /** Wall time of each `docker run`, in the order they were started (index = containers started before it). */
  dockerRunMs: number[];
  /** Wall time of each `docker rm -f`, in order. */
  dockerRmMs: number[];
  buckets: ScaleBucket[];
  flatness: Record<string, Flatness>;
  /** Plugin memory as the container count grew: RSS, and the V8 heap's young and old generations (metrics). */
  rss: MemoryPoint[];
  /** The same once every container and network is gone again. */
  memoryAfterTeardown: MemoryPoint;
  plugin: { memory: MemoryStatus; cpuMs: number; requests: number; neutronCalls: number };
  notes: string[];
}

/** Gives each access log entry the number of live endpoints (containers) when it was made. */
export function withLiveCount(entries: readonly AccessLogEntry[]): { entry: AccessLogEntry; live: number }[] {
  let live = 0;
  return entries.map((entry) => {
    const before = live;
    if (entry.status === 200 && entry.method === 'NetworkDriver.CreateEndpoint') live++;
    if (entry.status === 200 && entry.method === 'NetworkDriver.DeleteEndpoint') live--;
    return { entry, live: before };
  });
}

/** Cuts the calls into buckets of container count and summarizes each endpoint in each bucket. */
export function bucketize(entries: readonly AccessLogEntry[], containers: number, count: number): ScaleBucket[] {
  const size = Math.max(1, Math.ceil(containers / count));
  const buckets: ScaleBucket[] = Array.from({ length: count }, (_, i) => ({
    from: i * size,
    to: Math.min(containers, (i + 1) * size) - 1,
    endpoints: {},
  }));
  const groups = new Map<string, AccessLogEntry[]>();
  for (const { entry, live } of withLiveCount(entries)) {
    if (entry.status !== 200) continue;
    const b = Math.min(count - 1, Math.floor(live / size));
    const key = `${b}\t${entry.method}`;
    const list = groups.get(key) ?? [];
    list.push(entry);
    groups.set(key, list);
  }
  for (const [key, list] of groups) {
    const [b, endpoint] = key.split('\t') as [string, string];
    buckets[Number(b)]!.endpoints[endpoint] = {
      n: list.length,
      p50Ms: round(
        percentile(
          list.map((e) => e.ms),
          50,
        ),
        2,
      ),
      p90Ms: round(
        percentile(
          list.map((e) => e.ms),
          90,
        ),
        2,
      ),
      cpuP50Ms: round(
        percentile(
          list.map((e) => e.cpuMs),
          50,
        ),
        2,
      ),
      neutronCallsMean: round(list.reduce((t, e) => t + e.neutronCalls, 0) / list.length, 2),
    };
  }
  return buckets;
}

/** Flatness of each endpoint seen in most buckets. */
export function flatness(buckets: readonly ScaleBucket[]): Record<string, Flatness> {
  const out: Record<string, Flatness> = {};
  const endpoints = new Set(buckets.flatMap((b) => Object.keys(b.endpoints)));
  for (const endpoint of [...endpoints].sort()) {
    const points = buckets
      .filter((b) => (b.endpoints[endpoint]?.n ?? 0) >= 3)
      .map((b) => ({ x: (b.from + b.to) / 2, y: b.endpoints[endpoint]!.p50Ms }));
    if (points.length < Math.max(2, buckets.length / 2)) continue;
    const first = points[0]!.y;
    const last = points.at(-1)!.y;
    out[endpoint] = {
      firstP50Ms: first,
      lastP50Ms: last,
      ratio: round(first === 0 ? 1 : last / first, 2),
      slopeMsPer100: round(linearFit(points).slope * 100, 3),
    };
  }
  return out;
}

export async function runScale(
  engine: PrivateDockerd,
  target: BenchTarget,
  options: ScaleOptions,
  tag: string,
  log: (line: string) => void,
): Promise<Omit<ScaleResult, 'kind' | 'schema' | 'date' | 'machine' | 'notes'>> {
  const plugin = target.plugin;
  if (plugin === undefined) throw new Error(`the scale run needs a plugin target, not ${target.name}`);
  const w = new Workload(engine, target, `kxs${tag}`);
  // Warm up (JIT, image cache) outside the measured window.
  const warm = await w.createNetwork();
  for (let i = 0; i < 2; i++) await w.remove((await w.run(warm.name)).name);
  await w.removeNetwork(warm.name);

  const t0 = performance.now();
  const offset = plugin.logOffset();
  const cpu0 = treeCpuMsOf(plugin.pid);
  const neutron0 = sumOf(await plugin.scrape(), 'kuryr_neutron_calls_total');
  const networks: string[] = [];
  const networkCreateMs: number[] = [];
  for (let i = 0; i < options.networks; i++) {
    const r = await w.createNetwork();
    networks.push(r.name);
    networkCreateMs.push(r.ms);
  }
  log(`  ${options.networks} networks created (p50 ${percentile(networkCreateMs, 50).toFixed(0)} ms)`);

  const step = Math.max(1, Math.ceil(options.containers / options.buckets));
  const memoryPoint = async (containers: number): Promise<MemoryPoint> => {
    const samples = await plugin.scrape();
    const mib = (name: string, where: Record<string, string> = {}) => round(sumOf(samples, name, where) / 2 ** 20, 1);
    const memory = memoryOf(plugin.pid);
    return {
      containers,
      rssMiB: memory.rssMiB,
      rssAnonMiB: memory.rssAnonMiB,
      heapNewMiB: mib('nodejs_heap_space_size_total_bytes', { space: 'new' }),
      heapOldMiB: mib('nodejs_heap_space_size_total_bytes', { space: 'old' }),
      heapUsedMiB: mib('nodejs_heap_size_used_bytes'),
      externalMiB: mib('nodejs_external_memory_bytes'),
    };
  };
  const rss: MemoryPoint[] = [await memoryPoint(0)];
  // Only the container phase goes into the curves (network create/rm make address calls of their own).
  const containersFrom = plugin.logOffset();
  const names: string[] = new Array(options.containers);
  const runMs: number[] = new Array(options.containers);
  let done = 0;
  await pool(
    Array.from({ length: options.containers }, (_, i) => i),
    options.concurrency,
    async (i) => {
      const r = await w.run(networks[i % networks.length]!);
      names[i] = r.name;
      runMs[i] = r.ms;
      done++;
      if (done % step === 0) {
        rss.push(await memoryPoint(done));
        const recent = runMs.slice(Math.max(0, i + 1 - step), i + 1).filter((v) => v !== undefined);
        log(`  ${String(done).padStart(5)} containers  docker run p50 ${percentile(recent, 50).toFixed(0)} ms`);
      }
    },
  );
  const rmMs = await pool(names, options.concurrency, async (name) => w.remove(name));
  log(`  ${options.containers} containers removed (p50 ${percentile(rmMs, 50).toFixed(0)} ms)`);
  const containersTo = plugin.logOffset();
  const networkRmMs: number[] = [];
  for (const n of networks) networkRmMs.push(await w.removeNetwork(n));
  const wallS = round((performance.now() - t0) / 1000, 1);
  const memoryAfterTeardown = await memoryPoint(0);

  const entries = plugin.requests(offset);
  const buckets = bucketize(plugin.requests(containersFrom, containersTo), options.containers, options.buckets);
  return {
    options,
    target: target.name,
    wallS,
    networkCreate: summarize(networkCreateMs),
    networkRm: summarize(networkRmMs),
    networkCreateMs: networkCreateMs.map((v) => round(v, 1)),
    networkRmMs: networkRmMs.map((v) => round(v, 1)),
    dockerRunMs: runMs.map((v) => round(v, 1)),
    dockerRmMs: rmMs.map((v) => round(v, 1)),
    buckets,
    flatness: flatness(buckets),
    rss,
    memoryAfterTeardown,
    plugin: {
      memory: memoryOf(plugin.pid),
      cpuMs: round(treeCpuMsOf(plugin.pid) - cpu0, 0),
      requests: entries.length,
      neutronCalls: sumOf(await plugin.scrape(), 'kuryr_neutron_calls_total') - neutron0,
    },
  };
}
