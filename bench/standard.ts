/**
 * The standard run: the same Docker workload on every target (Docker's bridge driver and kuryr-ts), phase by
 * phase, the targets taking turns within each phase so that drift on a shared machine hits them alike.
 */
import type { PrivateDockerd } from '../test/helpers/docker-engine.ts';
import { histogramQuantile, labelValues, type Sample, sumOf } from '../test/helpers/prometheus.ts';
import type { MachineInfo } from './machine.ts';
import { type MemoryStatus, memoryOf } from './proc.ts';
import { percentile, round } from './stats.ts';
import type { AccessLogEntry, BenchTarget, TargetContext, TargetFactory } from './targets.ts';
import { firstAnswer, freeHostPort, measurePhase, mergePhases, type PhaseResult, pool, Workload } from './workload.ts';

export interface StandardOptions {
  /** Containers per run/rm phase (default 20). */
  containers: number;
  /** Networks created and removed in the network phases (default 5). */
  networks: number;
  /** Container pairs for the time-to-first-ping phase (default 3). */
  pings: number;
  /** Containers started and removed, unmeasured, before the measured phases (default 2). */
  warmup: number;
  /** Times the whole workload is repeated; the samples of all rounds are pooled (default 3). */
  rounds: number;
  /** Also measure the peak RSS of a plugin without metrics (a default deployment) on the same workload. */
  rssProbe: boolean;
}

export const PHASES = [
  'network create',
  'run (sequential)',
  'rm -f (sequential)',
  'run (all at once)',
  'rm -f (all at once)',
  'first ping',
  'first answer (-p)',
  'network rm',
  'lifecycle',
] as const;
export type PhaseName = (typeof PHASES)[number];

export interface EndpointStats {
  endpoint: string;
  calls: number;
  /** Plugin-side latency from the access log, ms. */
  p50Ms: number;
  p99Ms: number;
  /** Process CPU while the call was in flight (access log cpuMs), ms. */
  cpuP50Ms: number;
  cpuP99Ms: number;
  /** Neutron API calls per call (access log neutronCalls). */
  neutronCallsMean: number;
  /** The same latency quantiles estimated from the metrics endpoint's histogram (bucket interpolation), ms. */
  histogramP50Ms: number | null;
  histogramP99Ms: number | null;
}

export interface PluginSummary {
  memory: MemoryStatus;
  /** libnetwork requests and Neutron calls over the measured phases. */
  requests: number;
  neutronCalls: number;
  /** Neutron calls by API call over the whole run (metrics). */
  neutronCallsByCall: Record<string, number>;
  /** Median of the per-request CPU (access log) over the measured phases, ms. */
  cpuPerCallP50Ms: number;
}

export interface TargetResult {
  name: string;
  label: string;
  phases: Record<PhaseName, PhaseResult>;
  endpoints?: EndpointStats[];
  plugin?: PluginSummary;
}

export interface StandardResult {
  kind: 'standard';
  schema: 1;
  date: string;
  machine: MachineInfo;
  options: StandardOptions;
  targets: TargetResult[];
  /** Peak RSS of a plugin without --metrics-listen after the same sequential workload. */
  rssProbe?: MemoryStatus;
  notes: string[];
}

/** Per-endpoint figures from access log entries (and the histogram of a final scrape). */
export function endpointStats(entries: readonly AccessLogEntry[], samples: readonly Sample[]): EndpointStats[] {
  const byEndpoint = new Map<string, AccessLogEntry[]>();
  for (const e of entries) {
    if (e.status !== 200) continue;
    const list = byEndpoint.get(e.method) ?? [];
    list.push(e);
    byEndpoint.set(e.method, list);
  }
  const known = new Set(labelValues(samples, 'kuryr_request_duration_seconds_count', 'endpoint'));
  const hq = (endpoint: string, q: number) => {
    if (!known.has(endpoint)) return null;
    const v = histogramQuantile(samples, 'kuryr_request_duration_seconds', q, { endpoint });
    return v === undefined ? null : round(v * 1000, 2);
  };
  return [...byEndpoint.entries()]
    .map(([endpoint, list]) => ({
      endpoint,
      calls: list.length,
      p50Ms: round(
        percentile(
          list.map((e) => e.ms),
          50,
        ),
        2,
      ),
      p99Ms: round(
        percentile(
          list.map((e) => e.ms),
          99,
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
      cpuP99Ms: round(
        percentile(
          list.map((e) => e.cpuMs),
          99,
        ),
        2,
      ),
      neutronCallsMean: round(list.reduce((t, e) => t + e.neutronCalls, 0) / list.length, 2),
      histogramP50Ms: hq(endpoint, 0.5),
      histogramP99Ms: hq(endpoint, 0.99),
    }))
    .sort((a, b) => b.calls - a.calls || a.endpoint.localeCompare(b.endpoint));
}

/** The standard run over `targets` (already started); `log` reports progress. */
export async function runStandard(
  engine: PrivateDockerd,
  targets: readonly BenchTarget[],
  options: StandardOptions,
  tag: string,
  log: (line: string) => void,
): Promise<{ targets: TargetResult[]; measuredFrom: Map<string, number> }> {
  const work = new Map(targets.map((t, i) => [t.name, new Workload(engine, t, `kxb${tag}${i}`)]));
  try {
    return await runWorkload(engine, targets, options, log, work);
  } catch (err) {
    // Nothing of a failed run outlives it (the engine and the plugins stop next: what they made would stay).
    for (const w of work.values()) await w.clear().catch(() => undefined);
    throw err;
  }
}

async function runWorkload(
  engine: PrivateDockerd,
  targets: readonly BenchTarget[],
  options: StandardOptions,
  log: (line: string) => void,
  work: Map<string, Workload>,
): Promise<{ targets: TargetResult[]; measuredFrom: Map<string, number> }> {
  const mainNet = new Map<string, string>();
  const measuredFrom = new Map<string, number>();
  for (const t of targets) {
    const w = work.get(t.name)!;
    mainNet.set(t.name, (await w.createNetwork()).name);
    for (let i = 0; i < options.warmup; i++) await w.remove((await w.run(mainNet.get(t.name)!)).name);
    if (t.plugin) measuredFrom.set(t.name, t.plugin.logOffset());
  }
  const phases = new Map<string, Partial<Record<PhaseName, PhaseResult>>>(targets.map((t) => [t.name, {}]));
  const created = new Map<string, string[]>();
  const containers = new Map<string, string[]>();
  const N = options.containers;

  const bodies: Record<PhaseName, (w: Workload) => Promise<number[]>> = {
    'network create': async (w) => {
      const names: string[] = [];
      const ms: number[] = [];
      for (let i = 0; i < options.networks; i++) {
        const r = await w.createNetwork();
        names.push(r.name);
        ms.push(r.ms);
      }
      created.set(w.target.name, names);
      return ms;
    },
    'run (sequential)': async (w) => {
      const names: string[] = [];
      const ms: number[] = [];
      for (let i = 0; i < N; i++) {
        const r = await w.run(mainNet.get(w.target.name)!);
        names.push(r.name);
        ms.push(r.ms);
      }
      containers.set(w.target.name, names);
      return ms;
    },
    'rm -f (sequential)': async (w) => {
      const ms: number[] = [];
      for (const c of containers.get(w.target.name) ?? []) ms.push(await w.remove(c));
      return ms;
    },
    'run (all at once)': async (w) => {
      const runs = await pool(
        Array.from({ length: N }, () => mainNet.get(w.target.name)!),
        N,
        (net) => w.run(net),
      );
      containers.set(
        w.target.name,
        runs.map((r) => r.name),
      );
      return runs.map((r) => r.ms);
    },
    'rm -f (all at once)': async (w) => pool(containers.get(w.target.name) ?? [], N, (c) => w.remove(c)),
    'first ping': async (w) => {
      const ms: number[] = [];
      for (let i = 0; i < options.pings; i++) ms.push(await w.firstPing(mainNet.get(w.target.name)!));
      return ms;
    },
    'first answer (-p)': async (w) => {
      // Published ports (docker run -p), read from the host's localhost: a host port free at the time, below the
      // kernel's ephemeral range (bench/workload.ts freeHostPort).
      const ms: number[] = [];
      if (w.target.publishesPorts === false) return ms;
      for (let i = 0; i < options.pings; i++) {
        ms.push(await firstAnswer(w, mainNet.get(w.target.name)!, await freeHostPort()));
      }
      return ms;
    },
    'network rm': async (w) => {
      const ms: number[] = [];
      for (const n of created.get(w.target.name) ?? []) ms.push(await w.removeNetwork(n));
      return ms;
    },
    lifecycle: async (w) => {
      // One network, two containers, and their teardown: the yardstick for Neutron calls.
      const t0 = performance.now();
      const net = await w.createNetwork();
      const a = await w.run(net.name);
      const b = await w.run(net.name);
      await w.remove(a.name);
      await w.remove(b.name);
      await w.removeNetwork(net.name);
      return [performance.now() - t0];
    },
  };

  for (let round = 0; round < options.rounds; round++) {
    log(`round ${round + 1} of ${options.rounds}`);
    for (const [i, phase] of PHASES.entries()) {
      const order = (i + round) % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) {
        const result = await measurePhase(engine, t, phase, () => bodies[phase](work.get(t.name)!));
        const held = phases.get(t.name)!;
        held[phase] = held[phase] === undefined ? result : mergePhases(held[phase], result);
        log(
          `  ${t.name.padEnd(16)} ${phase.padEnd(20)} p50 ${result.perOp.p50.toFixed(0).padStart(5)} ms` +
            `  wall ${(result.wallMs / 1000).toFixed(2).padStart(6)} s` +
            (result.plugin
              ? `  plugin CPU ${result.plugin.cpuMs} ms, Neutron calls ${result.plugin.neutronCalls}`
              : ''),
        );
      }
    }
  }

  const results: TargetResult[] = [];
  for (const t of targets) {
    await work.get(t.name)!.removeNetwork(mainNet.get(t.name)!);
    const result: TargetResult = {
      name: t.name,
      label: t.label,
      phases: phases.get(t.name) as Record<PhaseName, PhaseResult>,
    };
    if (t.plugin) {
      const samples = await t.plugin.scrape();
      const entries = t.plugin.requests(measuredFrom.get(t.name) ?? 0);
      result.endpoints = endpointStats(entries, samples);
      const byCall: Record<string, number> = {};
      for (const call of labelValues(samples, 'kuryr_neutron_calls_total', 'call')) {
        byCall[call] = sumOf(samples, 'kuryr_neutron_calls_total', { call });
      }
      result.plugin = {
        memory: memoryOf(t.plugin.pid),
        requests: entries.length,
        neutronCalls: entries.reduce((s, e) => s + e.neutronCalls, 0),
        neutronCallsByCall: byCall,
        cpuPerCallP50Ms: round(
          percentile(
            entries.map((e) => e.cpuMs),
            50,
          ),
          3,
        ),
      };
    }
    results.push(result);
  }
  return { targets: results, measuredFrom };
}

/**
 * Peak RSS of a plugin as deployed by default (no metrics, so no prom-client) after the sequential workload:
 * a network, N containers run then removed one after another, the network removed.
 */
export async function rssProbe(
  engine: PrivateDockerd,
  factory: TargetFactory,
  ctx: TargetContext,
  containers: number,
): Promise<MemoryStatus> {
  const target = await factory({ ...ctx, metrics: false });
  try {
    const w = new Workload(engine, target, `kxr${ctx.tag}`);
    const net = await w.createNetwork();
    const names: string[] = [];
    for (let i = 0; i < containers; i++) names.push((await w.run(net.name)).name);
    for (const c of names) await w.remove(c);
    await w.removeNetwork(net.name);
    return memoryOf(target.plugin!.pid);
  } finally {
    await target.stop();
  }
}
