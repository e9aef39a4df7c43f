// The bench's arithmetic: percentiles, the access log reader, the scale buckets and flatness, histogram
// quantiles from a scrape, chart ticks. (The bench itself needs root and a dockerd: `npm run bench`.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { describe, test } from 'node:test';
import { niceTicks } from '../../bench/chart.ts';
import { bucketize, flatness, withLiveCount } from '../../bench/scale.ts';
import { linearFit, percentile, summarize } from '../../bench/stats.ts';
import { type AccessLogEntry, type PluginHandle, parseAccessLog } from '../../bench/targets.ts';
import { kuryrNodeFlags } from '../../bench/lifecycle.ts';
import { cpuMsOf, treeCpuMsOf } from '../../bench/proc.ts';
import { freeHostPort, measurePhase } from '../../bench/workload.ts';
import { histogramQuantile, parsePrometheus, sumOf } from '../helpers/prometheus.ts';

let seq = 0;
function entry(method: string, ms: number, status = 200): AccessLogEntry {
  seq++;
  return { id: `abc-${seq}`, method, status, ms, cpuMs: ms / 2, neutronCalls: 2, time: seq };
}

describe('bench statistics', () => {
  test('nearest-rank percentiles and summaries', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(values, 50), 50);
    assert.equal(percentile(values, 99), 99);
    assert.equal(percentile(values, 100), 100);
    assert.equal(percentile([7], 99), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
    const s = summarize([3, 1, 2]);
    assert.deepEqual([s.n, s.p50, s.min, s.max, s.total], [3, 2, 1, 3, 6]);
  });

  test('least-squares slope', () => {
    const fit = linearFit([0, 1, 2, 3].map((x) => ({ x, y: 2 * x + 1 })));
    assert.ok(Math.abs(fit.slope - 2) < 1e-9);
    assert.ok(Math.abs(fit.intercept - 1) < 1e-9);
  });

  test('chart ticks cover the maximum with round steps', () => {
    assert.deepEqual(niceTicks(1000), [0, 200, 400, 600, 800, 1000]);
    assert.deepEqual(niceTicks(7), [0, 2, 4, 6, 8]);
    assert.ok(niceTicks(0.37).at(-1)! >= 0.37);
  });
});

describe('access log and scrape readers', () => {
  test('parseAccessLog keeps the request lines of a pino log, and only them', () => {
    const text = [
      '{"level":30,"msg":"kuryr-ts serving on unix /x"}',
      '{"level":30,"time":1,"id":"a1b2c3-1","method":"NetworkDriver.Join","status":200,"ms":1.5,"cpuMs":1.2,"neutronCalls":2,"msg":"request"}',
      '{"level":40,"time":2,"id":"a1b2c3-2","method":"unknown","status":404,"ms":0.1,"cpuMs":0.1,"neutronCalls":0,"code":"KURYR_ERR_NO_SUCH_METHOD","msg":"request rejected"}',
      '{"level":30,"time":3,"id":"a1b2c3-3","method":"NetworkDriver.Leave","neutronCalls":0,"ms',
    ].join('\n');
    const entries = parseAccessLog(text);
    assert.deepEqual(
      entries.map((e) => [e.id, e.method, e.status, e.neutronCalls]),
      [
        ['a1b2c3-1', 'NetworkDriver.Join', 200, 2],
        ['a1b2c3-2', 'unknown', 404, 0],
      ],
    );
  });

  test('histogramQuantile interpolates inside the bucket, as Prometheus does', () => {
    const samples = parsePrometheus(
      [
        '# HELP x_seconds x',
        '# TYPE x_seconds histogram',
        'x_seconds_bucket{le="0.1",endpoint="a"} 50',
        'x_seconds_bucket{le="0.2",endpoint="a"} 100',
        'x_seconds_bucket{le="+Inf",endpoint="a"} 100',
        'x_seconds_sum{endpoint="a"} 12',
        'x_seconds_count{endpoint="a"} 100',
        'x_seconds_bucket{le="0.1",endpoint="b"} 0',
        'x_seconds_bucket{le="0.2",endpoint="b"} 0',
        'x_seconds_bucket{le="+Inf",endpoint="b"} 0',
        'y_total{call="listPorts",endpoint="a"} 3',
        'y_total{call="createPort",endpoint="a"} 4',
      ].join('\n'),
    );
    assert.equal(histogramQuantile(samples, 'x_seconds', 0.5, { endpoint: 'a' }), 0.1);
    assert.ok(Math.abs(histogramQuantile(samples, 'x_seconds', 0.75, { endpoint: 'a' })! - 0.15) < 1e-9);
    assert.equal(histogramQuantile(samples, 'x_seconds', 0.5, { endpoint: 'b' }), undefined);
    assert.equal(sumOf(samples, 'y_total', { endpoint: 'a' }), 7);
  });
});

describe('scale analysis', () => {
  /** n containers created, then removed: the calls docker makes, with latency given by `cost(live)`. */
  function lifecycle(n: number, cost: (live: number) => number): AccessLogEntry[] {
    const out: AccessLogEntry[] = [];
    for (let live = 0; live < n; live++) {
      out.push(entry('IpamDriver.RequestAddress', cost(live)));
      out.push(entry('NetworkDriver.CreateEndpoint', cost(live)));
      out.push(entry('NetworkDriver.Join', cost(live)));
    }
    for (let live = n; live > 0; live--) {
      out.push(entry('NetworkDriver.Leave', cost(live)));
      out.push(entry('NetworkDriver.DeleteEndpoint', cost(live)));
      out.push(entry('IpamDriver.ReleaseAddress', cost(live - 1)));
    }
    return out;
  }

  test('each call gets the number of containers existing when it was made', () => {
    const live = withLiveCount(lifecycle(2, () => 1)).map((x) => `${x.entry.method.split('.')[1]}@${x.live}`);
    assert.deepEqual(live, [
      'RequestAddress@0',
      'CreateEndpoint@0',
      'Join@1',
      'RequestAddress@1',
      'CreateEndpoint@1',
      'Join@2',
      'Leave@2',
      'DeleteEndpoint@2',
      'ReleaseAddress@1',
      'Leave@1',
      'DeleteEndpoint@1',
      'ReleaseAddress@0',
    ]);
  });

  test('flat costs give ratios near 1; a cost growing with the count shows as a slope', () => {
    const flat = flatness(
      bucketize(
        lifecycle(100, () => 2),
        100,
        5,
      ),
    );
    assert.equal(flat['NetworkDriver.CreateEndpoint']?.ratio, 1);
    assert.equal(flat['NetworkDriver.CreateEndpoint']?.slopeMsPer100, 0);
    const linear = flatness(
      bucketize(
        lifecycle(100, (live) => 1 + live / 10),
        100,
        5,
      ),
    );
    const create = linear['NetworkDriver.CreateEndpoint']!;
    assert.ok(create.ratio > 4, `ratio ${create.ratio}`);
    assert.ok(Math.abs(create.slopeMsPer100 - 10) < 0.5, `slope ${create.slopeMsPer100}`);
    const buckets = bucketize(
      lifecycle(100, () => 2),
      100,
      5,
    );
    assert.deepEqual(
      buckets.map((b) => [b.from, b.to]),
      [
        [0, 19],
        [20, 39],
        [40, 59],
        [60, 79],
        [80, 99],
      ],
    );
    assert.equal(buckets[0]!.endpoints['NetworkDriver.CreateEndpoint']?.n, 20);
    assert.equal(buckets[0]!.endpoints['NetworkDriver.CreateEndpoint']?.neutronCallsMean, 2);
  });
});

describe('a measured phase', () => {
  test('the plugin CPU of a phase leaves out the metrics scrapes the bench makes around it', async () => {
    // The "plugin" is this process: its scrape burns 300 ms of CPU, the phase itself nothing.
    const burn = () => {
      const start = process.cpuUsage();
      for (;;) {
        const used = process.cpuUsage(start);
        if (used.user + used.system >= 300_000) return;
      }
    };
    const plugin = {
      process: {} as PluginHandle['process'],
      pid: process.pid,
      metricsUrl: '',
      logFile: '',
      scrape: async () => {
        burn();
        return parsePrometheus('kuryr_neutron_calls_total{call="listPorts"} 1\n');
      },
      logOffset: () => 0,
      requests: () => [],
    } satisfies PluginHandle;
    const target = { name: 'kuryr-test', label: 'test', networkCreateArgs: () => [], plugin, stop: async () => {} };
    const engine = { pid: process.pid } as Parameters<typeof measurePhase>[0];
    const result = await measurePhase(engine, target, 'run (sequential)', async () => [1]);
    assert.ok(result.plugin !== undefined);
    assert.ok(result.plugin.cpuMs < 150, `the phase's CPU: ${result.plugin.cpuMs} ms (a scrape burns 300)`);
  });
});

describe('bench/lifecycle.ts', () => {
  test("runs the plugin with bin/kuryr's own V8 flags (read from the launcher, so the two cannot drift)", () => {
    const flags = kuryrNodeFlags().split(' ');
    assert.ok(flags.includes('--jitless'), flags.join(' '));
    assert.ok(flags.includes('--incremental-marking-soft-trigger=20'), flags.join(' '));
    assert.ok(!flags.some((f) => f.startsWith('--disable-warning')));
    assert.equal(
      kuryrNodeFlags('#!/bin/sh\nexec "$node" --disable-warning=X --a=1 \\\n  --b "$main" "$@"\n'),
      '--a=1 --b',
    );
  });
});

describe('bench/proc.ts and the host ports', () => {
  test("a process's CPU with what it runs: a live child's, then the same once it has ended", async () => {
    // A child that burns CPU for a while (a shell loop), then waits to be killed.
    const child = spawn('sh', ['-c', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo done; sleep 30'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const own0 = cpuMsOf(process.pid);
    const tree0 = treeCpuMsOf(process.pid);
    await new Promise((resolve) => child.stdout.once('data', resolve));
    const childCpu = cpuMsOf(child.pid!);
    assert.ok(childCpu >= 100, `the child burned ${childCpu} ms`);
    const live = treeCpuMsOf(process.pid) - tree0;
    assert.ok(live >= childCpu - 20, `a live child counts: ${live} ms, the child ${childCpu} ms`);
    assert.ok(cpuMsOf(process.pid) - own0 < childCpu / 2, 'not in the own figure');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill();
    await exited;
    const ended = treeCpuMsOf(process.pid) - tree0;
    assert.ok(ended >= childCpu - 20, `an ended (waited-for) child still counts: ${ended} ms`);
  });

  test('host ports for docker run -p: below the ephemeral range, and free', async () => {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    for (let i = 0; i < 5; i++) {
      const port = await freeHostPort();
      assert.ok(port >= 10_000 && port < low, `${port}`);
      const server = net.createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host: '0.0.0.0' }, resolve);
      });
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
