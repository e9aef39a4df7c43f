/** The bench's tables: plain text for the terminal, and the same rows as Markdown (for the README). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ScaleResult } from './scale.ts';
import type { PhaseName, StandardResult, TargetResult } from './standard.ts';
import { percentile, round } from './stats.ts';

type Row = string[];

function table(head: Row, rows: Row[], markdown: boolean): string {
  if (markdown) {
    const line = (r: Row) => `| ${r.join(' | ')} |`;
    return [line(head), line(head.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
  }
  const widths = head.map((_, i) => Math.max(...[head, ...rows].map((r) => (r[i] ?? '').length)));
  const line = (r: Row) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const ms = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : `${Math.round(v)} ms`);
const s = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : `${(v / 1000).toFixed(2)} s`);
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? '–' : `${(a / b).toFixed(2)}×`;

/** Wall time of `run` + `rm -f` of one container, one after another: p50 + p50 (the headline figure). */
export function runRmP50Ms(t: TargetResult): number {
  return t.phases['run (sequential)'].perOp.p50 + t.phases['rm -f (sequential)'].perOp.p50;
}

/** Wall time of `run` + `rm -f` of the N containers one after another, per round. */
export function sequentialRunRmMs(t: TargetResult): number {
  const run = t.phases['run (sequential)'];
  return (run.perOp.total + t.phases['rm -f (sequential)'].perOp.total) / run.rounds;
}

/** Wall time of `run` + `rm -f` of the N containers, all at once, per round. */
export function parallelRunRmMs(t: TargetResult): number {
  const run = t.phases['run (all at once)'];
  return (run.wallMs + t.phases['rm -f (all at once)'].wallMs) / run.rounds;
}

/** Per container: a phase's figure divided by the containers it ran (all rounds). */
const perContainer = (t: TargetResult, value: (phase: PhaseName) => number) =>
  (value('run (sequential)') + value('rm -f (sequential)')) / t.phases['run (sequential)'].ops;

/** The main table: one column per target, a ratio column against the bridge driver for each other target. */
export function renderStandard(result: StandardResult, markdown = false): string {
  const targets = result.targets;
  const bridge = targets.find((t) => t.name === 'bridge');
  const others = targets.filter((t) => t !== bridge);
  const n = result.options.containers;
  const head = ['', ...targets.map((t) => t.label), ...(bridge ? others.map((t) => `${t.label} / bridge`) : [])];
  const rows: Row[] = [];
  const add = (
    label: string,
    value: (t: TargetResult) => number | undefined,
    fmt: (v: number | undefined) => string,
  ) => {
    rows.push([
      label,
      ...targets.map((t) => fmt(value(t))),
      ...(bridge ? others.map((t) => ratio(value(t), value(bridge))) : []),
    ]);
  };
  const p50 = (phase: PhaseName) => (t: TargetResult) => t.phases[phase].perOp.p50;
  add(`${markdown ? '**' : ''}docker run + rm -f of a container (p50 + p50)${markdown ? '**' : ''}`, runRmP50Ms, ms);
  add(`run + rm -f, ${n} containers one after another`, sequentialRunRmMs, s);
  add(`run + rm -f, ${n} containers all at once`, parallelRunRmMs, s);
  add('docker run -d (sequential, p50)', p50('run (sequential)'), ms);
  add('docker rm -f (sequential, p50)', p50('rm -f (sequential)'), ms);
  add('docker network create (p50)', p50('network create'), ms);
  add('docker network rm (p50)', p50('network rm'), ms);
  add('first ping between two new containers (p50)', p50('first ping'), ms);
  // Results of runs from before this phase existed have none.
  add(
    'first answer on a published port, docker run -p to localhost (p50)',
    // Not measured for a target that cannot publish (the Neutron columns): no samples, shown as –.
    (t) => {
      const phase = t.phases['first answer (-p)'];
      return phase === undefined || phase.perOp.n === 0 ? undefined : phase.perOp.p50;
    },
    ms,
  );
  add('dockerd CPU per container run + rm', (t) => perContainer(t, (phase) => t.phases[phase].dockerdCpuMs), ms);
  const pluginRows: [string, (t: TargetResult) => number | undefined][] = [
    [
      'plugin CPU per container run + rm, with the processes it runs (/proc)',
      (t) => t.plugin && perContainer(t, (phase) => t.phases[phase].plugin!.cpuMs),
    ],
    ['plugin CPU per libnetwork call (p50)', (t) => t.plugin?.cpuPerCallP50Ms],
    [
      'time inside the plugin per docker run (sum of its calls)',
      (t) => t.phases['run (sequential)'].plugin?.pluginMsPerOp,
    ],
    ['time inside the plugin per docker rm -f', (t) => t.phases['rm -f (sequential)'].plugin?.pluginMsPerOp],
    ['Neutron calls per docker run', (t) => t.phases['run (sequential)'].plugin?.neutronCallsPerOp],
    ['Neutron calls per docker rm -f', (t) => t.phases['rm -f (sequential)'].plugin?.neutronCallsPerOp],
    ['Neutron calls per network create', (t) => t.phases['network create'].plugin?.neutronCallsPerOp],
    ['Neutron calls per network rm', (t) => t.phases['network rm'].plugin?.neutronCallsPerOp],
    ['Neutron calls, 1 network + 2 containers + teardown', (t) => t.phases.lifecycle.plugin?.neutronCallsPerOp],
    ['plugin peak RSS (VmHWM), metrics on', (t) => t.plugin?.memory.peakRssMiB],
  ];
  for (const [label, value] of pluginRows) {
    rows.push([
      label,
      ...targets.map((t) => {
        const v = value(t);
        if (v === undefined) return '–';
        if (label.includes('RSS')) return `${v} MiB`;
        if (label.includes('CPU') || label.includes('time')) return `${round(v, 2)} ms`;
        return String(round(v, 1));
      }),
      ...(bridge ? others.map(() => '') : []),
    ]);
  }
  if (result.rssProbe) {
    rows.push([
      'plugin peak RSS (VmHWM), default (no metrics)',
      ...targets.map((t) => (t.plugin ? `${result.rssProbe!.peakRssMiB} MiB` : '–')),
      ...(bridge ? others.map(() => '') : []),
    ]);
  }
  return table(head, rows, markdown);
}

/** Per libnetwork endpoint, for every target with a plugin. */
export function renderEndpoints(result: StandardResult, markdown = false): string {
  const out: string[] = [];
  for (const t of result.targets) {
    if (!t.endpoints) continue;
    const head = ['endpoint', 'calls', 'p50', 'p99', 'CPU p50', 'CPU p99', 'Neutron calls'];
    const rows = t.endpoints.map((e) => [
      e.endpoint,
      String(e.calls),
      `${e.p50Ms} ms`,
      `${e.p99Ms} ms`,
      `${e.cpuP50Ms} ms`,
      `${e.cpuP99Ms} ms`,
      String(e.neutronCallsMean),
    ]);
    out.push(
      `${markdown ? '' : `${t.label}: plugin-side latency and CPU per libnetwork call\n`}${table(head, rows, markdown)}`,
    );
  }
  return out.join('\n\n');
}

export function renderScale(result: ScaleResult, markdown = false): string {
  const head = ['endpoint', ...result.buckets.map((b) => `${b.from}–${b.to}`), 'last/first', 'slope per 100'];
  const endpoints = Object.keys(result.flatness);
  const rows = endpoints.map((endpoint) => {
    const f = result.flatness[endpoint]!;
    return [
      endpoint,
      ...result.buckets.map((b) => {
        const v = b.endpoints[endpoint]?.p50Ms;
        return v === undefined ? '' : v.toFixed(1);
      }),
      `${f.ratio.toFixed(2)}×`,
      `${f.slopeMsPer100 >= 0 ? '+' : ''}${f.slopeMsPer100.toFixed(2)} ms`,
    ];
  });
  const curve = `${markdown ? '' : 'p50 plugin-side latency (ms) by containers existing at the time of the call\n'}${table(head, rows, markdown)}`;
  if (markdown) return curve;
  const tenth = Math.max(1, Math.floor(result.networkCreateMs.length / 10));
  const firstLast = (values: number[]) =>
    `${percentile(values.slice(0, tenth), 50).toFixed(0)} ms for the first ${tenth}, ` +
    `${percentile(values.slice(-tenth), 50).toFixed(0)} ms for the last ${tenth}`;
  const point = (m: ScaleResult['rss'][number]) =>
    `${m.rssMiB} MiB (anon ${m.rssAnonMiB}; V8 young ${m.heapNewMiB}, old ${m.heapOldMiB}, live ${m.heapUsedMiB}; ` +
    `external ${m.externalMiB})`;
  const memory = [
    ...result.rss.map((m) => `  ${String(m.containers).padStart(5)} containers: ${point(m)}`),
    `  after teardown:   ${point(result.memoryAfterTeardown)}`,
  ].join('\n');
  return [
    curve,
    '',
    `docker network create p50: ${firstLast(result.networkCreateMs)}`,
    `docker network rm p50:     ${firstLast(result.networkRmMs)}`,
    `docker run p50:            ${firstLast(result.dockerRunMs)}`,
    'plugin memory:',
    memory,
  ].join('\n');
}

export function renderMachine(result: { machine: StandardResult['machine']; date?: string }): string {
  const m = result.machine;
  return (
    `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB; ${m.os}, ${m.kernel}; Node ${m.node}, SQLite ${m.sqlite}, ` +
    `dockerd ${m.docker}; kuryr-ts ${m.kuryrTs} (${m.commit}); load average ${m.loadAverage.start} → ${m.loadAverage.end ?? '?'}`
  );
}

/** `node bench/report.ts <results.json> [--markdown]`: the tables of a stored result (the README's come from here). */
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [file, flag] = process.argv.slice(2);
  if (file === undefined) {
    process.stderr.write('usage: node bench/report.ts <results.json> [--markdown]\n');
    process.exit(2);
  }
  const markdown = flag === '--markdown';
  const result = JSON.parse(readFileSync(file, 'utf8')) as StandardResult | ScaleResult;
  const tables =
    result.kind === 'standard'
      ? `${renderStandard(result, markdown)}\n\n${renderEndpoints(result, markdown)}`
      : renderScale(result, markdown);
  process.stdout.write(`${renderMachine(result)}\n\n${tables}\n`);
}
