/**
 * The few Prometheus metric types the plugin exports (counters, histograms, gauges read when scraped) and their
 * text exposition (format 0.0.4), instead of prom-client: loading prom-client cost 10.7 MiB of RSS (its default
 * metrics load node:cluster, node:v8 and a t-digest), this module well under one.
 *
 * Also the process metrics Prometheus' client libraries export by convention (`processMetrics`): CPU seconds,
 * resident and virtual memory, open file descriptors, start time, and Node's heap (total, used, per space) and
 * external memory, under prom-client's names so that dashboards keep working.
 */
import { readdirSync, readFileSync } from 'node:fs';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels<L extends string> = Partial<Record<L, string>>;

/** One metric family: writes its `# HELP`, `# TYPE` and sample lines. */
export interface Metric {
  readonly name: string;
  render(): string;
}

/** The metrics of one /metrics page, in registration order. */
export class Registry {
  private readonly all: Metric[] = [];
  readonly contentType = CONTENT_TYPE;

  register<M extends Metric>(metric: M): M {
    if (this.all.some((m) => m.name === metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.all.push(metric);
    return metric;
  }

  /** The exposition text of every metric. */
  metrics(): string {
    return this.all.map((m) => m.render()).join('');
  }
}

/** `\`, `"` and newlines escaped as the exposition format wants in label values. */
function escapeLabel(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}

/** A number as the exposition format writes it (`+Inf`, `-Inf`, `NaN`). */
export function formatValue(value: number): string {
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

/** `{a="x",b="y"}`, or '' without labels; label names in the metric's order. */
function labelText(names: readonly string[], values: Record<string, string | undefined>, extra = ''): string {
  const parts = extra === '' ? [] : [extra];
  for (const name of names) {
    const v = values[name];
    if (v !== undefined) parts.push(`${name}="${escapeLabel(v)}"`);
  }
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function header(name: string, help: string, type: string): string {
  return `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
}

/** The series key of a label set: values in label-name order. */
function keyOf(names: readonly string[], labels: Record<string, string | undefined>): string {
  return names.map((n) => labels[n] ?? '').join('\u0000');
}

interface MetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
}

/** A monotonic counter per label set. */
export class Counter<L extends string = never> implements Metric {
  readonly name: string;
  private readonly help: string;
  private readonly labelNames: readonly L[];
  private readonly series = new Map<string, { labels: Labels<L>; value: number }>();

  constructor(options: MetricOptions<L>) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
  }

  inc(labels: Labels<L> = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`counter ${this.name} cannot decrease (by ${by})`);
    const key = keyOf(this.labelNames, labels);
    const s = this.series.get(key);
    if (s === undefined) this.series.set(key, { labels: { ...labels }, value: by });
    else s.value += by;
  }

  render(): string {
    let out = header(this.name, this.help, 'counter');
    // A counter without labels is shown at 0 before its first increment, as client libraries do.
    if (this.series.size === 0 && this.labelNames.length === 0) return `${out}${this.name} 0\n`;
    for (const s of this.series.values()) {
      out += `${this.name}${labelText(this.labelNames, s.labels)} ${formatValue(s.value)}\n`;
    }
    return out;
  }
}

/** A histogram per label set: cumulative buckets (`le`), `_sum` and `_count`. */
export class Histogram<L extends string = never> implements Metric {
  readonly name: string;
  private readonly help: string;
  private readonly labelNames: readonly L[];
  private readonly buckets: readonly number[];
  private readonly series = new Map<string, { labels: Labels<L>; counts: number[]; sum: number; count: number }>();

  constructor(options: MetricOptions<L> & { buckets: readonly number[] }) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
    this.buckets = [...options.buckets].sort((a, b) => a - b);
  }

  observe(labels: Labels<L>, value: number): void {
    const key = keyOf(this.labelNames, labels);
    let s = this.series.get(key);
    if (s === undefined) {
      s = { labels: { ...labels }, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    // Non-cumulative counts per bucket; the +Inf bucket is `count`.
    const i = this.buckets.findIndex((le) => value <= le);
    if (i >= 0) s.counts[i]! += 1;
    s.sum += value;
    s.count += 1;
  }

  render(): string {
    let out = header(this.name, this.help, 'histogram');
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i]!;
        out += `${this.name}_bucket${labelText(this.labelNames, s.labels, `le="${formatValue(le)}"`)} ${cumulative}\n`;
      });
      out += `${this.name}_bucket${labelText(this.labelNames, s.labels, 'le="+Inf"')} ${s.count}\n`;
      const labels = labelText(this.labelNames, s.labels);
      out += `${this.name}_sum${labels} ${formatValue(s.sum)}\n${this.name}_count${labels} ${s.count}\n`;
    }
    return out;
  }
}

/** A gauge whose samples are read when the page is rendered. */
export class Gauge<L extends string = never> implements Metric {
  readonly name: string;
  private readonly help: string;
  private readonly labelNames: readonly L[];
  private readonly read: () => Iterable<[Labels<L>, number]> | number;

  constructor(options: MetricOptions<L> & { read: () => Iterable<[Labels<L>, number]> | number }) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
    this.read = options.read;
  }

  render(): string {
    let out = header(this.name, this.help, 'gauge');
    const samples = this.read();
    if (typeof samples === 'number') return `${out}${this.name} ${formatValue(samples)}\n`;
    for (const [labels, value] of samples) {
      out += `${this.name}${labelText(this.labelNames, labels)} ${formatValue(value)}\n`;
    }
    return out;
  }
}

/** A counter whose value is read when the page is rendered (CPU seconds). */
class ReadCounter implements Metric {
  readonly name: string;
  private readonly help: string;
  private readonly read: () => number;

  constructor(name: string, help: string, read: () => number) {
    this.name = name;
    this.help = help;
    this.read = read;
  }

  render(): string {
    return `${header(this.name, this.help, 'counter')}${this.name} ${formatValue(this.read())}\n`;
  }
}

/** `VmRSS`, `VmSize` ... of /proc/self/status in bytes, or undefined off Linux. */
function procStatus(): Map<string, number> | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return undefined;
  }
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^(\w+):\s+(\d+) kB$/gm)) out.set(m[1]!, Number(m[2]) * 1024);
  return out;
}

/** The process and Node.js metrics of client libraries, under prom-client's names. */
export function processMetrics(): Metric[] {
  const startSeconds = Math.round(Date.now() / 1000 - process.uptime());
  const cpu = () => process.cpuUsage();
  const maxFds = (): number => {
    try {
      const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
      return m === null ? Number.NaN : Number(m[1]);
    } catch {
      return Number.NaN;
    }
  };
  const heapSpaces = function* (field: 'space_size' | 'space_used_size' | 'space_available_size') {
    // node:v8 only when scraped; getBuiltinModule keeps it out of the import graph.
    for (const s of process.getBuiltinModule('node:v8').getHeapSpaceStatistics()) {
      yield [{ space: s.space_name.replace(/_space$/, '') }, s[field]] as [{ space: string }, number];
    }
  };
  return [
    new ReadCounter('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', () => cpu().user / 1e6),
    new ReadCounter(
      'process_cpu_system_seconds_total',
      'Total system CPU time spent in seconds.',
      () => cpu().system / 1e6,
    ),
    new ReadCounter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', () => {
      const c = cpu();
      return (c.user + c.system) / 1e6;
    }),
    new Gauge({
      name: 'process_start_time_seconds',
      help: 'Start time of the process since unix epoch in seconds.',
      read: () => startSeconds,
    }),
    new Gauge({
      name: 'process_resident_memory_bytes',
      help: 'Resident memory size in bytes.',
      read: () => procStatus()?.get('VmRSS') ?? process.memoryUsage.rss(),
    }),
    new Gauge({
      name: 'process_virtual_memory_bytes',
      help: 'Virtual memory size in bytes.',
      read: () => procStatus()?.get('VmSize') ?? Number.NaN,
    }),
    new Gauge({
      name: 'process_open_fds',
      help: 'Number of open file descriptors.',
      read: () => {
        try {
          return readdirSync('/proc/self/fd').length - 1; // less the descriptor of the listing itself
        } catch {
          return Number.NaN;
        }
      },
    }),
    new Gauge({ name: 'process_max_fds', help: 'Maximum number of open file descriptors.', read: maxFds }),
    new Gauge({
      name: 'nodejs_heap_size_total_bytes',
      help: 'Process heap size from Node.js in bytes.',
      read: () => process.memoryUsage().heapTotal,
    }),
    new Gauge({
      name: 'nodejs_heap_size_used_bytes',
      help: 'Process heap size used from Node.js in bytes.',
      read: () => process.memoryUsage().heapUsed,
    }),
    new Gauge({
      name: 'nodejs_external_memory_bytes',
      help: 'Node.js external memory size in bytes.',
      read: () => process.memoryUsage().external,
    }),
    new Gauge({
      name: 'nodejs_heap_space_size_total_bytes',
      help: 'Process heap space size total from Node.js in bytes.',
      labelNames: ['space'],
      read: () => heapSpaces('space_size'),
    }),
    new Gauge({
      name: 'nodejs_heap_space_size_used_bytes',
      help: 'Process heap space size used from Node.js in bytes.',
      labelNames: ['space'],
      read: () => heapSpaces('space_used_size'),
    }),
    new Gauge({
      name: 'nodejs_heap_space_size_available_bytes',
      help: 'Process heap space size available from Node.js in bytes.',
      labelNames: ['space'],
      read: () => heapSpaces('space_available_size'),
    }),
    new Gauge({
      name: 'nodejs_version_info',
      help: 'Node.js version info.',
      labelNames: ['version', 'major', 'minor', 'patch'],
      read: () => {
        const [major = '', minor = '', patch = ''] = process.versions.node.split('.');
        return [[{ version: process.version, major, minor, patch }, 1]];
      },
    }),
  ];
}
