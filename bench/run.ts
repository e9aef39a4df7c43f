/**
 * `npm run bench`: kuryr-ts against Docker's own bridge driver on a private, throw-away Docker engine.
 *
 *   npm run bench                      # standard run: 20 containers, side by side with the bridge driver
 *   npm run bench -- --containers 50   # more containers per phase
 *   npm run bench -- --scale           # 500 containers over 50 networks, latency against the count
 *   npm run bench -- --help
 *
 * Prints a table and writes the same figures as JSON to bench/results/, then redraws the SVG charts
 * (bench/chart.ts). Needs root (dockerd), `npm run build` (the npm script does it) and busybox-static.
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ensureBusyboxImage, type PrivateDockerd, startPrivateDockerd } from '../test/helpers/docker-engine.ts';
import { REPO_ROOT } from '../test/helpers/plugin-process.ts';
import { writeCharts } from './chart.ts';
import { describeMachine } from './machine.ts';
import { renderProfile, summarizeProfile } from './profile.ts';
import { renderEndpoints, renderMachine, renderScale, renderStandard } from './report.ts';
import { runScale, type ScaleResult } from './scale.ts';
import { runStandard, rssProbe, type StandardResult } from './standard.ts';
import { neutronLab } from '../test/helpers/neutron-lab.ts';
import { type BenchTarget, TARGETS, type TargetContext } from './targets.ts';

const USAGE = `Usage: npm run bench -- [options]

  --containers N      containers per phase (default 20; with --scale 500)
  --networks N        networks created/removed (default 5; with --scale 50)
  --pings N           container pairs for the time to first ping, and containers for the first answer
                      on a published port (default 3)
  --rounds N          repeat the standard workload N times, pooling the samples (default 3)
  --targets LIST      columns, comma-separated (default bridge,kuryr-embedded, and kuryr-neutron when the Neutron lab runs; kuryr-ovn: the ML2/OVN lab, on request; known: ${Object.keys(TARGETS).join(', ')})
  --scale             the scale run instead: containers over networks, latency as the count grows
  --concurrency N     --scale: docker commands in flight at once (default 2)
  --buckets N         --scale: points of the curves (default 10)
  --no-rss-probe      skip the peak-RSS probe of a plugin without metrics
  --profile           write a V8 CPU profile of the plugin and print where its time went
  --node-options STR  NODE_OPTIONS for the plugin (e.g. --max-semi-space-size=1), recorded in the results
  --out FILE          results file (default bench/results/<date>-<standard|scale>.json)
  --no-chart          do not redraw the SVG charts
`;

const RESULTS_DIR = path.join(REPO_ROOT, 'bench', 'results');
/** CPU profiles are large: kept outside the repository. */
const PROFILES_DIR = path.join(os.tmpdir(), 'kuryr-bench-profiles');

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function intFlag(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new Error(`--${name} expects a positive integer, got ${value}`);
  return Number(value);
}

/** Second octets of 10.X.0.0/16 ranges nothing on this host routes or holds an address in. */
function freeOctets(count: number): number[] {
  const used = new Set<number>();
  const text = execFileSync('ip', ['-4', 'route', 'show', 'table', 'all'], { encoding: 'utf8' });
  for (const m of text.matchAll(/\b10\.(\d+)\./g)) used.add(Number(m[1]));
  const free = Array.from({ length: 100 }, (_, i) => 100 + i).filter((o) => !used.has(o));
  const out: number[] = [];
  while (out.length < count && free.length > 0) out.push(free.splice(Math.floor(Math.random() * free.length), 1)[0]!);
  if (out.length < count) throw new Error('no free 10.X.0.0/16 range between 10.100 and 10.199 on this host');
  return out;
}

/** Writes a result file, formatted as the repository's formatter wants it (results are committed). */
function writeResults(file: string, result: object): void {
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  try {
    execFileSync(path.join(REPO_ROOT, 'node_modules', '.bin', 'biome'), ['format', '--write', file], {
      stdio: 'ignore',
    });
  } catch {
    // not formatted: still valid JSON
  }
}

function nodeOptionsNote(options: string | undefined): string[] {
  return options === undefined ? [] : [`plugin run with NODE_OPTIONS=${options}`];
}

function stamp(): string {
  return new Date().toISOString().slice(0, 19).replace(/[:]/g, '').replace('T', '-');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      containers: { type: 'string' },
      networks: { type: 'string' },
      pings: { type: 'string' },
      rounds: { type: 'string' },
      targets: { type: 'string' },
      scale: { type: 'boolean' },
      concurrency: { type: 'string' },
      buckets: { type: 'string' },
      'no-rss-probe': { type: 'boolean' },
      out: { type: 'string' },
      'no-chart': { type: 'boolean' },
      profile: { type: 'boolean' },
      'node-options': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (process.getuid?.() !== 0) throw new Error('the bench starts a private dockerd: run it as root');
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'main.js'))) throw new Error('run npm run build first');
  const scale = values.scale === true;
  // The real-Neutron column joins by default when the lab (scripts/neutron/stack.sh) answers.
  const withNeutron = !scale && values.targets === undefined && (await neutronLab()).noauth !== undefined;
  const defaults = scale ? 'kuryr-embedded' : `bridge,kuryr-embedded${withNeutron ? ',kuryr-neutron' : ''}`;
  const targetNames = (values.targets ?? defaults).split(',');
  for (const name of targetNames) if (!TARGETS[name]) throw new Error(`unknown target ${name}\n\n${USAGE}`);

  const tag = Math.random().toString(36).slice(2, 7);
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'kxbench-'));
  const octets = freeOctets(targetNames.length + 1);
  let engine: PrivateDockerd | undefined;
  const targets: BenchTarget[] = [];
  const cleanup = async () => {
    for (const t of targets.splice(0)) await t.stop().catch(() => undefined);
    await engine?.docker(['rm', '-f', ...(await engine.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean)]);
    await engine?.stop({ killContainers: true });
    engine = undefined;
    rmSync(workDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    log('interrupted: cleaning up');
    void cleanup().finally(() => process.exit(130));
  });

  try {
    log(`starting a private dockerd (${workDir})`);
    engine = await startPrivateDockerd({ name: `bench-${tag}` });
    await ensureBusyboxImage(engine);
    const machine = await describeMachine(engine);
    log(`machine: ${renderMachine({ machine })}`);
    const profileDir = values.profile ? path.join(workDir, 'profiles') : undefined;
    const context = (i: number): TargetContext => ({
      engine: engine!,
      workDir,
      tag,
      octet: octets[i]!,
      ...(profileDir === undefined ? {} : { profileDir }),
      ...(values['node-options'] === undefined ? {} : { nodeOptions: values['node-options'] }),
    });
    for (const [i, name] of targetNames.entries()) targets.push(await TARGETS[name]!(context(i)));

    let file: string;
    if (scale) {
      const options = {
        containers: intFlag(values.containers, 500, 'containers'),
        networks: intFlag(values.networks, 50, 'networks'),
        concurrency: intFlag(values.concurrency, 2, 'concurrency'),
        buckets: intFlag(values.buckets, 10, 'buckets'),
      };
      const target = targets.find((t) => t.plugin !== undefined);
      if (!target) throw new Error('--scale needs a kuryr target');
      log(`scale run: ${options.containers} containers over ${options.networks} networks on ${target.label}`);
      const measured = await runScale(engine, target, options, tag, log);
      machine.loadAverage.end = Math.round(os.loadavg()[0]! * 100) / 100;
      const result: ScaleResult = {
        kind: 'scale',
        schema: 1,
        date: new Date().toISOString(),
        machine,
        notes: nodeOptionsNote(values['node-options']),
        ...measured,
      };
      file = values.out ?? path.join(RESULTS_DIR, `${stamp()}-scale.json`);
      mkdirSync(path.dirname(file), { recursive: true });
      writeResults(file, result);
      process.stdout.write(`\n${renderMachine(result)}\n${result.notes.join('\n')}\n${renderScale(result)}\n`);
      process.stdout.write(
        `\nplugin: ${result.plugin.requests} libnetwork calls, ${result.plugin.neutronCalls} Neutron calls, ` +
          `${result.plugin.cpuMs} ms CPU, peak RSS ${result.plugin.memory.peakRssMiB} MiB; wall ${result.wallS} s\n`,
      );
    } else {
      const options = {
        containers: intFlag(values.containers, 20, 'containers'),
        networks: intFlag(values.networks, 5, 'networks'),
        pings: intFlag(values.pings, 3, 'pings'),
        warmup: 2,
        rounds: intFlag(values.rounds, 3, 'rounds'),
        rssProbe: values['no-rss-probe'] !== true,
      };
      log(`standard run: ${targets.map((t) => t.label).join(' vs ')}, ${options.containers} containers`);
      const measured = await runStandard(engine, targets, options, tag, log);
      const result: StandardResult = {
        kind: 'standard',
        schema: 1,
        date: new Date().toISOString(),
        machine,
        options,
        targets: measured.targets,
        notes: nodeOptionsNote(values['node-options']),
      };
      const kuryrIndex = targetNames.indexOf('kuryr-embedded');
      if (options.rssProbe && kuryrIndex >= 0) {
        log('peak RSS probe: a plugin without metrics on the sequential workload');
        result.rssProbe = await rssProbe(
          engine,
          TARGETS['kuryr-embedded']!,
          context(targetNames.length),
          options.containers,
        );
      }
      machine.loadAverage.end = Math.round(os.loadavg()[0]! * 100) / 100;
      file = values.out ?? path.join(RESULTS_DIR, `${stamp()}-standard.json`);
      mkdirSync(path.dirname(file), { recursive: true });
      writeResults(file, result);
      process.stdout.write(
        `\n${renderMachine(result)}\n${result.notes.join('\n')}\n${renderStandard(result)}\n\n${renderEndpoints(result)}\n`,
      );
    }
    log(`\nresults: ${path.relative(process.cwd(), file)}`);
    if (profileDir !== undefined) {
      for (const t of targets.splice(0)) await t.stop(); // the profile is written when the plugin exits
      for (const name of readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'))) {
        mkdirSync(PROFILES_DIR, { recursive: true });
        const kept = path.join(PROFILES_DIR, `${path.basename(file, '.json')}.cpuprofile`);
        copyFileSync(path.join(profileDir, name), kept);
        const summary = summarizeProfile(
          JSON.parse(readFileSync(kept, 'utf8')) as Parameters<typeof summarizeProfile>[0],
        );
        process.stdout.write(
          `\nplugin CPU profile (${path.relative(process.cwd(), kept)}):\n${renderProfile(summary)}\n`,
        );
      }
    }
    if (values['no-chart'] !== true) {
      for (const svg of writeCharts()) log(`chart: ${path.relative(process.cwd(), svg)}`);
    }
    return 0;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
