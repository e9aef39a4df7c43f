/**
 * SVG charts from the bench's JSON results, written by hand (no browser, no library):
 *
 *   bench/charts/docker-ops.svg   docker operations, bridge driver vs kuryr-ts (wall time)
 *   bench/charts/endpoints.svg    plugin-side latency p50/p99 and CPU p50 per libnetwork endpoint
 *   bench/charts/scale.svg        p50 latency per endpoint against the number of containers (scale run)
 *
 *   node bench/chart.ts [results.json ...]   # default: the newest standard and scale results
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ScaleResult } from './scale.ts';
import type { PhaseName, StandardResult } from './standard.ts';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const RESULTS_DIR = path.join(BENCH_DIR, 'results');
const CHARTS_DIR = path.join(BENCH_DIR, 'charts');

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f'];
const GRID = '#e3e3e3';
const INK = '#222';
const MUTED = '#666';

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const f1 = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

function text(x: number, y: number, body: string, attrs = ''): string {
  return `<text x="${f1(x)}" y="${f1(y)}" ${attrs}>${esc(body)}</text>`;
}

function svg(width: number, height: number, title: string, subtitle: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="12">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    text(16, 24, title, `font-size="16" font-weight="600" fill="${INK}"`),
    text(16, 42, subtitle, `font-size="11" fill="${MUTED}"`),
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/** Round tick values covering [0, max]. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks.at(-1)! < max) ticks.push(Number((ticks.at(-1)! + step).toPrecision(12)));
  return ticks;
}

/** Powers of ten covering [min, max] for a log axis. */
function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(Math.max(min, 1e-3)));
  const hi = Math.ceil(Math.log10(Math.max(max, 1e-3)));
  return Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i));
}

function machineLine(r: StandardResult | ScaleResult): string {
  const m = r.machine;
  return `${m.cpuModel}, ${m.cores} cores, ${m.kernel}, Node ${m.node}, dockerd ${m.docker}, ${r.date.slice(0, 10)}`;
}

/** Grouped horizontal bars: docker operations, one bar per target. */
export function dockerOpsChart(result: StandardResult): string {
  const n = result.options.containers;
  const rows: { label: string; phase: PhaseName; value: 'p50' | 'wall' }[] = [
    { label: 'docker run -d (p50)', phase: 'run (sequential)', value: 'p50' },
    { label: 'docker rm -f (p50)', phase: 'rm -f (sequential)', value: 'p50' },
    { label: `run ${n} at once (wall)`, phase: 'run (all at once)', value: 'wall' },
    { label: `rm -f ${n} at once (wall)`, phase: 'rm -f (all at once)', value: 'wall' },
    { label: 'network create (p50)', phase: 'network create', value: 'p50' },
    { label: 'network rm (p50)', phase: 'network rm', value: 'p50' },
    { label: 'first ping (p50)', phase: 'first ping', value: 'p50' },
  ];
  const targets = result.targets;
  const values = rows.map((r) =>
    targets.map((t) =>
      r.value === 'p50' ? t.phases[r.phase].perOp.p50 : t.phases[r.phase].wallMs / t.phases[r.phase].rounds,
    ),
  );
  const max = Math.max(...values.flat());
  const ticks = niceTicks(max);
  const left = 190;
  const plotW = 560;
  const barH = 14;
  const groupH = targets.length * barH + 14;
  const top = 80;
  const height = top + rows.length * groupH + 50;
  const width = left + plotW + 90;
  const x = (v: number) => left + (v / ticks.at(-1)!) * plotW;
  const body: string[] = [];
  for (const t of ticks) {
    body.push(`<line x1="${f1(x(t))}" y1="${top - 6}" x2="${f1(x(t))}" y2="${height - 40}" stroke="${GRID}"/>`);
    body.push(text(x(t), height - 26, t >= 1000 ? `${t / 1000} s` : `${t} ms`, `text-anchor="middle" fill="${MUTED}"`));
  }
  rows.forEach((r, i) => {
    const y0 = top + i * groupH;
    body.push(text(left - 8, y0 + (targets.length * barH) / 2 + 4, r.label, `text-anchor="end" fill="${INK}"`));
    targets.forEach((t, j) => {
      const v = values[i]![j]!;
      const y = y0 + j * barH;
      body.push(
        `<rect x="${left}" y="${y}" width="${f1(Math.max(1, x(v) - left))}" height="${barH - 3}" fill="${PALETTE[j % PALETTE.length]}"><title>${esc(`${t.label}: ${Math.round(v)} ms`)}</title></rect>`,
      );
      body.push(text(x(v) + 4, y + barH - 5, `${Math.round(v)} ms`, `font-size="10" fill="${MUTED}"`));
    });
  });
  targets.forEach((t, j) => {
    const lx = left + j * 170;
    body.push(`<rect x="${lx}" y="54" width="12" height="12" fill="${PALETTE[j % PALETTE.length]}"/>`);
    body.push(text(lx + 17, 64, t.label, `fill="${INK}"`));
  });
  return svg(
    width,
    height,
    'Docker operations: bridge driver vs kuryr-ts (lower is better)',
    machineLine(result),
    body,
  );
}

/** Per-endpoint horizontal bars on a log axis: p50 latency, p99 whisker, CPU p50 marker. */
export function endpointsChart(result: StandardResult): string {
  const target = result.targets.find((t) => t.endpoints !== undefined);
  const rows = (target?.endpoints ?? []).filter((e) => e.endpoint !== 'Plugin.Activate');
  const left = 330;
  const plotW = 520;
  const rowH = 24;
  const top = 80;
  const height = top + rows.length * rowH + 50;
  const width = left + plotW + 40;
  const all = rows.flatMap((e) => [e.p50Ms, e.p99Ms, e.cpuP50Ms]).filter((v) => v > 0);
  const ticks = logTicks(Math.min(...all, 1), Math.max(...all, 1));
  const lo = Math.log10(ticks[0]!);
  const hi = Math.log10(ticks.at(-1)!);
  const x = (v: number) => left + ((Math.log10(Math.max(v, ticks[0]!)) - lo) / (hi - lo || 1)) * plotW;
  const body: string[] = [];
  for (const t of ticks) {
    body.push(`<line x1="${f1(x(t))}" y1="${top - 6}" x2="${f1(x(t))}" y2="${height - 40}" stroke="${GRID}"/>`);
    body.push(text(x(t), height - 26, `${t} ms`, `text-anchor="middle" fill="${MUTED}"`));
  }
  rows.forEach((e, i) => {
    const y = top + i * rowH;
    body.push(text(left - 8, y + 13, `${e.endpoint} ×${e.calls}`, `text-anchor="end" fill="${INK}"`));
    body.push(
      `<rect x="${left}" y="${y + 3}" width="${f1(Math.max(1, x(e.p50Ms) - left))}" height="12" fill="${PALETTE[0]}"><title>${esc(`p50 ${e.p50Ms} ms`)}</title></rect>`,
    );
    body.push(
      `<line x1="${f1(x(e.p50Ms))}" y1="${y + 9}" x2="${f1(x(e.p99Ms))}" y2="${y + 9}" stroke="${PALETTE[0]}" stroke-width="2" stroke-opacity="0.45"/>`,
      `<line x1="${f1(x(e.p99Ms))}" y1="${y + 4}" x2="${f1(x(e.p99Ms))}" y2="${y + 14}" stroke="${PALETTE[0]}" stroke-width="2"><title>${esc(`p99 ${e.p99Ms} ms`)}</title></line>`,
      `<circle cx="${f1(x(e.cpuP50Ms))}" cy="${y + 9}" r="4" fill="${PALETTE[1]}"><title>${esc(`CPU p50 ${e.cpuP50Ms} ms`)}</title></circle>`,
    );
  });
  body.push(`<rect x="${left}" y="54" width="12" height="12" fill="${PALETTE[0]}"/>`);
  body.push(text(left + 17, 64, 'latency p50 (bar) and p99 (whisker)', `fill="${INK}"`));
  body.push(`<circle cx="${left + 276}" cy="60" r="4" fill="${PALETTE[1]}"/>`);
  body.push(text(left + 286, 64, 'plugin CPU p50', `fill="${INK}"`));
  return svg(
    width,
    height,
    `${target?.label ?? 'kuryr-ts'}: plugin-side time per libnetwork call (log scale)`,
    machineLine(result),
    body,
  );
}

/** Line panels: p50 latency per endpoint against containers existing, and docker run wall time. */
export function scaleChart(result: ScaleResult): string {
  const endpoints = Object.keys(result.flatness);
  const left = 70;
  const plotW = 620;
  const panelH = 230;
  const top = 84;
  const gap = 70;
  const width = left + plotW + 320;
  const height = top + panelH * 2 + gap + 50;
  const xMax = result.options.containers;
  const xTicks = niceTicks(xMax);
  const x = (v: number) => left + (v / xTicks.at(-1)!) * plotW;
  const body: string[] = [];

  /** Draws a panel's axes; a `yMin` draws a log axis from yMin to yMax. Returns the y mapping. */
  const panel = (y0: number, yMax: number, yLabel: string, title: string, yMin?: number) => {
    const yTicks = yMin === undefined ? niceTicks(yMax) : logTicks(yMin, yMax);
    const lo = Math.log10(yTicks[0]!);
    const span = Math.log10(yTicks.at(-1)!) - lo || 1;
    const y =
      yMin === undefined
        ? (v: number) => y0 + panelH - (v / yTicks.at(-1)!) * panelH
        : (v: number) => y0 + panelH - ((Math.log10(Math.max(v, yTicks[0]!)) - lo) / span) * panelH;
    body.push(text(left, y0 - 10, title, `font-weight="600" fill="${INK}"`));
    for (const t of yTicks) {
      body.push(`<line x1="${left}" y1="${f1(y(t))}" x2="${left + plotW}" y2="${f1(y(t))}" stroke="${GRID}"/>`);
      body.push(text(left - 6, y(t) + 4, String(Number(t.toPrecision(3))), `text-anchor="end" fill="${MUTED}"`));
    }
    for (const t of xTicks) {
      body.push(text(x(t), y0 + panelH + 16, String(t), `text-anchor="middle" fill="${MUTED}"`));
    }
    body.push(
      text(
        18,
        y0 + panelH / 2,
        yLabel,
        `fill="${MUTED}" transform="rotate(-90 18 ${f1(y0 + panelH / 2)})" text-anchor="middle"`,
      ),
    );
    body.push(`<line x1="${left}" y1="${y0 + panelH}" x2="${left + plotW}" y2="${y0 + panelH}" stroke="${MUTED}"/>`);
    return y;
  };

  // Panel 1: plugin-side p50 per endpoint.
  const series = endpoints.map((endpoint) =>
    result.buckets
      .filter((b) => (b.endpoints[endpoint]?.n ?? 0) >= 3)
      .map((b) => ({ x: (b.from + b.to) / 2, y: b.endpoints[endpoint]!.p50Ms })),
  );
  const ys = series.flat().map((p) => p.y);
  const y1 = panel(
    top,
    Math.max(...ys, 1),
    'p50 ms (log)',
    'Plugin-side latency (p50) per libnetwork endpoint',
    Math.min(...ys.filter((v) => v > 0), 1),
  );
  series.forEach((points, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const d = points.map((p, k) => `${k === 0 ? 'M' : 'L'}${f1(x(p.x))},${f1(y1(p.y))}`).join(' ');
    body.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const p of points) body.push(`<circle cx="${f1(x(p.x))}" cy="${f1(y1(p.y))}" r="3" fill="${color}"/>`);
    const f = result.flatness[endpoints[i]!]!;
    const ly = top + 4 + i * 18;
    body.push(
      `<line x1="${left + plotW + 16}" y1="${ly}" x2="${left + plotW + 34}" y2="${ly}" stroke="${color}" stroke-width="3"/>`,
    );
    body.push(
      text(
        left + plotW + 40,
        ly + 4,
        `${endpoints[i]!.replace(/^(NetworkDriver|IpamDriver)\./, '')} ×${f.ratio.toFixed(2)}`,
        `fill="${INK}"`,
      ),
    );
  });
  body.push(
    text(left + plotW + 16, top + 8 + endpoints.length * 18, 'last/first bucket', `font-size="10" fill="${MUTED}"`),
  );

  // Panel 2: docker run / rm wall time (rolling median) against the count.
  const y0b = top + panelH + gap;
  const rolling = (values: number[], window: number) =>
    values.map((_, i) => {
      const slice = values.slice(Math.max(0, i - window + 1), i + 1).sort((a, b) => a - b);
      return slice[Math.floor(slice.length / 2)]!;
    });
  const window = Math.max(5, Math.round(result.dockerRunMs.length / 20));
  const runs = rolling(result.dockerRunMs, window).map((v, i) => ({ x: i, y: v }));
  const n = result.dockerRmMs.length;
  const rms = rolling(result.dockerRmMs, window).map((v, i) => ({ x: n - 1 - i, y: v }));
  const yMax2 = Math.max(...runs.map((p) => p.y), ...rms.map((p) => p.y), 1) * 1.1;
  const y2 = panel(
    y0b,
    yMax2,
    'ms',
    `docker run -d / rm -f wall time (rolling median of ${window}), concurrency ${result.options.concurrency}`,
  );
  const line = (points: { x: number; y: number }[], color: string, label: string, k: number) => {
    const d = points.map((p, j) => `${j === 0 ? 'M' : 'L'}${f1(x(p.x))},${f1(y2(p.y))}`).join(' ');
    body.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    const ly = y0b + 4 + k * 18;
    body.push(
      `<line x1="${left + plotW + 16}" y1="${ly}" x2="${left + plotW + 34}" y2="${ly}" stroke="${color}" stroke-width="3"/>`,
    );
    body.push(text(left + plotW + 40, ly + 4, label, `fill="${INK}"`));
  };
  line(runs, PALETTE[0]!, 'docker run -d', 0);
  line(rms, PALETTE[1]!, 'docker rm -f', 1);
  body.push(text(left + plotW / 2, height - 14, 'containers existing', `text-anchor="middle" fill="${MUTED}"`));
  return svg(
    width,
    height,
    `Scale: ${result.options.containers} containers over ${result.options.networks} networks on ${result.target}`,
    machineLine(result),
    body,
  );
}

/** The newest result file of a kind in bench/results (names start with the date). */
function newest(kind: 'standard' | 'scale'): string | undefined {
  let names: string[] = [];
  try {
    names = readdirSync(RESULTS_DIR).filter((f) => f.endsWith(`-${kind}.json`));
  } catch {
    return undefined;
  }
  const last = names.sort().at(-1);
  return last === undefined ? undefined : path.join(RESULTS_DIR, last);
}

/** Writes the charts of the given result files (default: the newest of each kind); returns the SVG paths. */
export function writeCharts(files: readonly string[] = []): string[] {
  const chosen = files.length > 0 ? files : [newest('standard'), newest('scale')].filter((f) => f !== undefined);
  const written: string[] = [];
  mkdirSync(CHARTS_DIR, { recursive: true });
  const write = (name: string, content: string) => {
    const file = path.join(CHARTS_DIR, name);
    writeFileSync(file, content);
    written.push(file);
  };
  for (const file of chosen) {
    const result = JSON.parse(readFileSync(file, 'utf8')) as StandardResult | ScaleResult;
    if (result.kind === 'standard') {
      write('docker-ops.svg', dockerOpsChart(result));
      write('endpoints.svg', endpointsChart(result));
    } else {
      write('scale.svg', scaleChart(result));
    }
  }
  return written;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const file of writeCharts(process.argv.slice(2)))
    process.stdout.write(`${path.relative(process.cwd(), file)}\n`);
}
