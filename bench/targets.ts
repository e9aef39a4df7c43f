/**
 * What the bench compares, one column each: Docker's built-in `bridge` driver, and kuryr-ts on a backend.
 * A target says how to create its networks and, when its driver runs outside dockerd, gives the plugin's
 * process (pid, metrics, access log). A real-Neutron column is one more factory in `TARGETS` that starts the
 * plugin with `--backend neutron` and its configuration; nothing else in the bench changes.
 */
import { closeSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { PrivateDockerd } from '../test/helpers/docker-engine.ts';
import { type PluginProcess, startPlugin } from '../test/helpers/plugin-process.ts';
import {
  type NeutronLab,
  neutronConfSection,
  neutronLab,
  neutronLabAt,
  OVN_LAB_FILE,
} from '../test/helpers/neutron-lab.ts';
import { parsePrometheus, type Sample } from '../test/helpers/prometheus.ts';

/** One line of the plugin's access log (server.ts). */
export interface AccessLogEntry {
  id: string;
  method: string;
  status: number;
  ms: number;
  cpuMs: number;
  neutronCalls: number;
  code?: string;
  /** epoch ms (pino) */
  time: number;
}

export interface PluginHandle {
  readonly process: PluginProcess;
  readonly pid: number;
  readonly metricsUrl: string;
  readonly logFile: string;
  scrape(): Promise<Sample[]>;
  /** Size of the log now: pass it to `requests` to read only what was logged after this moment. */
  logOffset(): number;
  /** Access log entries logged between two offsets (default: to the end). */
  requests(from?: number, to?: number): AccessLogEntry[];
}

export interface BenchTarget {
  /** Column key in the results: `bridge`, `kuryr-embedded`, later `kuryr-neutron`. */
  readonly name: string;
  readonly label: string;
  /** Arguments of `docker network create` for a new network `name` (the index-th of this target). */
  networkCreateArgs(name: string, index: number): string[];
  readonly plugin?: PluginHandle;
  /** False when `docker run -p` publishes nothing (kuryr on a real Neutron: no host agent of ours). */
  readonly publishesPorts?: boolean;
  stop(): Promise<void>;
}

export interface TargetContext {
  engine: PrivateDockerd;
  /** Scratch directory of this run. */
  workDir: string;
  /** A unique tag of this run (driver names, container names). */
  tag: string;
  /** Second octet of a 10.X.0.0/16 this target may use (nothing else on the host does). */
  octet: number;
  /** Serve Prometheus metrics (on by default; off for the RSS probe of a default deployment). */
  metrics?: boolean;
  /** Write a V8 CPU profile of the plugin into this directory when it stops (`--profile`). */
  profileDir?: string;
  /** NODE_OPTIONS for the plugin process (`--node-options`, e.g. `--max-semi-space-size=1`). */
  nodeOptions?: string;
}

export type TargetFactory = (ctx: TargetContext) => Promise<BenchTarget>;

/** Docker's own bridge driver: the floor, the same kernel work done inside dockerd. */
export const bridgeTarget: TargetFactory = async (ctx) => ({
  name: 'bridge',
  label: 'Docker bridge',
  networkCreateArgs: (name, index) => ['-d', 'bridge', '--subnet', `10.${ctx.octet}.${index % 256}.0/24`, name],
  stop: async () => undefined,
});

/** Reads bytes [from, to) of a file. */
function readRange(file: string, from: number, to: number): string {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(Math.max(0, to - from));
    let done = 0;
    while (done < buffer.length) {
      const n = readSync(fd, buffer, done, buffer.length - done, from + done);
      if (n === 0) break;
      done += n;
    }
    return buffer.subarray(0, done).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** Parses the access log lines (those with a request `id`) of a pino log. */
export function parseAccessLog(text: string): AccessLogEntry[] {
  const out: AccessLogEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"neutronCalls"')) continue;
    try {
      const entry = JSON.parse(line) as AccessLogEntry;
      if (typeof entry.id === 'string' && typeof entry.method === 'string') out.push(entry);
    } catch {
      // a partial last line
    }
  }
  return out;
}

async function waitForMetricsUrl(logFile: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const url = /"metrics":"(http:\/\/[^"]+)"/.exec(readFileSync(logFile, 'utf8'))?.[1];
    if (url !== undefined) return url;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no metrics URL in ${logFile}`);
}

function nodeOptions(ctx: TargetContext): string {
  const profile =
    ctx.profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`, '--cpu-prof-interval=250'];
  return [...profile, ...(ctx.nodeOptions === undefined ? [] : [ctx.nodeOptions])].join(' ');
}

/** kuryr-ts as Docker uses it: `bin/kuryr serve` on the embedded (SQLite) backend, default pool 10.X.0.0/16. */
export const kuryrEmbeddedTarget: TargetFactory = (ctx) =>
  kuryrTarget(ctx, {
    name: 'kuryr-embedded',
    label: 'kuryr-ts (embedded)',
    driverPrefix: 'kxbench',
    conf: `[embedded]\ndefault_pool_prefix_v4 = 10.${ctx.octet}.0.0/16\ndefault_pool_prefix_v6 = fd00:${ctx.octet}::/48\n`,
    extraArgs: [],
    subnets: false,
  });

/**
 * kuryr-ts on the real Neutron lab (scripts/neutron/stack.sh; noauth server, so Keystone's cost is not measured
 * twice): every network gets a `--subnet`, there is no default pool. Throws when the lab is not running.
 */
export const kuryrNeutronTarget: TargetFactory = async (ctx) => {
  const lab = await neutronLab();
  if (lab.noauth === undefined) throw new Error(`kuryr-neutron: the Neutron lab is not usable: ${lab.skip.noauth}`);
  return kuryrOnLab(ctx, lab, { name: 'kuryr-neutron', label: 'kuryr-ts (Neutron)', driverPrefix: 'kxbenchn' });
};

/**
 * kuryr-ts on the ML2/OVN lab (scripts/ovn/stack.sh, its noauth server): ports bound with vif_type ovs into the
 * userspace-datapath br-int and claimed by ovn-controller, OVN's own DHCP, no agents. Throws when the lab is not
 * running.
 */
export const kuryrOvnTarget: TargetFactory = async (ctx) => {
  const lab = await neutronLabAt(OVN_LAB_FILE);
  if (lab.noauth === undefined) throw new Error(`kuryr-ovn: the OVN lab is not usable: ${lab.skip.noauth}`);
  return kuryrOnLab(ctx, lab, { name: 'kuryr-ovn', label: 'kuryr-ts (Neutron ML2/OVN)', driverPrefix: 'kxbencho' });
};

function kuryrOnLab(
  ctx: TargetContext,
  lab: NeutronLab,
  column: Pick<KuryrVariant, 'name' | 'label' | 'driverPrefix'>,
): Promise<BenchTarget> {
  return kuryrTarget(ctx, {
    ...column,
    conf: neutronConfSection(lab, 'noauth'),
    extraArgs: ['--backend', 'neutron', '--docker-host', ctx.engine.host],
    subnets: true,
    publishesPorts: false,
  });
}

interface KuryrVariant {
  name: string;
  label: string;
  driverPrefix: string;
  conf: string;
  extraArgs: string[];
  /** Give every network a `--subnet` (no default pool). */
  subnets: boolean;
  publishesPorts?: boolean;
}

async function kuryrTarget(ctx: TargetContext, variant: KuryrVariant): Promise<BenchTarget> {
  const driver = `${variant.driverPrefix}${ctx.tag}${ctx.metrics === false ? 'r' : ''}`;
  const dir = path.join(ctx.workDir, driver);
  const conf = path.join(ctx.workDir, `${driver}.conf`);
  writeFileSync(conf, variant.conf, { mode: 0o600 });
  const plugin = await startPlugin({
    driverName: driver,
    stateDir: path.join(dir, 'state'),
    logFile: path.join(dir, 'plugin.log'),
    extraArgs: [
      '--config',
      conf,
      ...variant.extraArgs,
      ...(ctx.metrics === false ? [] : ['--metrics-listen', '127.0.0.1:0']),
    ],
    env: { NODE_OPTIONS: nodeOptions(ctx) },
  });
  const metricsUrl = ctx.metrics === false ? '' : await waitForMetricsUrl(plugin.logFile);
  const handle: PluginHandle = {
    process: plugin,
    get pid() {
      return plugin.pid;
    },
    metricsUrl,
    logFile: plugin.logFile,
    scrape: async () => {
      if (metricsUrl === '') return [];
      const reply = await fetch(`${metricsUrl}/metrics`);
      if (!reply.ok) throw new Error(`GET ${metricsUrl}/metrics: ${reply.status}`);
      return parsePrometheus(await reply.text());
    },
    logOffset: () => statSync(plugin.logFile).size,
    requests: (from = 0, to?: number) =>
      parseAccessLog(readRange(plugin.logFile, from, to ?? statSync(plugin.logFile).size)),
  };
  return {
    name: variant.name,
    label: variant.label,
    networkCreateArgs: (name, index) => [
      '-d',
      driver,
      '--ipam-driver',
      driver,
      ...(variant.subnets ? ['--subnet', `10.${ctx.octet}.${index % 256}.0/24`] : []),
      name,
    ],
    plugin: handle,
    ...(variant.publishesPorts === false ? { publishesPorts: false } : {}),
    stop: async () => {
      await plugin.stop();
    },
  };
}

/** The columns the bench knows, by name (`--targets`). */
export const TARGETS: Record<string, TargetFactory> = {
  bridge: bridgeTarget,
  'kuryr-embedded': kuryrEmbeddedTarget,
  'kuryr-neutron': kuryrNeutronTarget,
  'kuryr-ovn': kuryrOvnTarget,
};
