// Our own Prometheus exposition (observability/prometheus.ts, in place of prom-client): the text format of
// counters, histograms and gauges as Prometheus and test/helpers/prometheus.ts read it, and the process metrics
// under the names dashboards (and the bench) use.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Gauge, Histogram, processMetrics, Registry } from '../../src/observability/prometheus.ts';
import { histogramQuantile, parsePrometheus, sumOf } from '../helpers/prometheus.ts';

test('counters: HELP and TYPE lines, one sample per label set, 0 before the first increment without labels', () => {
  const r = new Registry();
  const c = r.register(new Counter({ name: 'x_total', help: 'Some\nthing \\ counted', labelNames: ['a', 'b'] }));
  const plain = r.register(new Counter({ name: 'y_total', help: 'plain' }));
  assert.equal(
    r.metrics(),
    '# HELP x_total Some\\nthing \\\\ counted\n# TYPE x_total counter\n# HELP y_total plain\n# TYPE y_total counter\ny_total 0\n',
  );
  c.inc({ a: '1', b: 'q"u\\o\nte' });
  c.inc({ b: 'q"u\\o\nte', a: '1' }, 2);
  c.inc({ a: '2' });
  plain.inc();
  assert.equal(
    r.metrics(),
    '# HELP x_total Some\\nthing \\\\ counted\n# TYPE x_total counter\n' +
      'x_total{a="1",b="q\\"u\\\\o\\nte"} 3\nx_total{a="2"} 1\n' +
      '# HELP y_total plain\n# TYPE y_total counter\ny_total 1\n',
  );
  const samples = parsePrometheus(r.metrics());
  assert.equal(sumOf(samples, 'x_total', { b: 'q"u\\o\nte' }), 3);
  assert.throws(() => c.inc({ a: '1' }, -1), /cannot decrease/);
  assert.throws(() => r.register(new Counter({ name: 'y_total', help: 'again' })), /registered twice/);
});

test('histograms: cumulative buckets with le first, +Inf, _sum and _count per label set', () => {
  const r = new Registry();
  const h = r.register(new Histogram({ name: 'd_seconds', help: 'd', labelNames: ['e'], buckets: [0.5, 0.1, 1] }));
  for (const v of [0.05, 0.1, 0.3, 0.7, 3]) h.observe({ e: 'j' }, v);
  h.observe({ e: 'k' }, 0.2);
  assert.equal(
    r.metrics(),
    [
      '# HELP d_seconds d',
      '# TYPE d_seconds histogram',
      'd_seconds_bucket{le="0.1",e="j"} 2',
      'd_seconds_bucket{le="0.5",e="j"} 3',
      'd_seconds_bucket{le="1",e="j"} 4',
      'd_seconds_bucket{le="+Inf",e="j"} 5',
      'd_seconds_sum{e="j"} 4.15',
      'd_seconds_count{e="j"} 5',
      'd_seconds_bucket{le="0.1",e="k"} 0',
      'd_seconds_bucket{le="0.5",e="k"} 1',
      'd_seconds_bucket{le="1",e="k"} 1',
      'd_seconds_bucket{le="+Inf",e="k"} 1',
      'd_seconds_sum{e="k"} 0.2',
      'd_seconds_count{e="k"} 1',
      '',
    ].join('\n'),
  );
  const samples = parsePrometheus(r.metrics());
  assert.equal(histogramQuantile(samples, 'd_seconds', 0.5, { e: 'j' }), 0.1 + (0.4 * 0.5) / 1);
});

test('gauges are read when the page is rendered', () => {
  const r = new Registry();
  let n = 1;
  r.register(new Gauge({ name: 'g', help: 'g', read: () => n }));
  r.register(new Gauge({ name: 'h', help: 'h', labelNames: ['s'], read: () => [[{ s: 'a' }, Infinity]] }));
  n = 7;
  assert.match(r.metrics(), /^g 7$/m);
  assert.match(r.metrics(), /^h\{s="a"\} \+Inf$/m);
});

test('process metrics under the names of client libraries', () => {
  const r = new Registry();
  for (const m of processMetrics()) r.register(m);
  const samples = parsePrometheus(r.metrics());
  assert.ok(sumOf(samples, 'process_cpu_seconds_total') > 0);
  assert.ok(
    Math.abs(
      sumOf(samples, 'process_cpu_seconds_total') -
        sumOf(samples, 'process_cpu_user_seconds_total') -
        sumOf(samples, 'process_cpu_system_seconds_total'),
    ) < 0.05,
  );
  assert.ok(sumOf(samples, 'process_resident_memory_bytes') > 1e6);
  assert.ok(sumOf(samples, 'process_virtual_memory_bytes') > sumOf(samples, 'process_resident_memory_bytes'));
  assert.ok(sumOf(samples, 'process_open_fds') >= 3);
  assert.ok(sumOf(samples, 'process_max_fds') >= sumOf(samples, 'process_open_fds'));
  const start = sumOf(samples, 'process_start_time_seconds');
  assert.ok(Math.abs(start - (Date.now() / 1000 - process.uptime())) < 2);
  assert.ok(sumOf(samples, 'nodejs_heap_size_used_bytes') > 0);
  assert.ok(sumOf(samples, 'nodejs_heap_size_total_bytes') >= sumOf(samples, 'nodejs_heap_size_used_bytes'));
  assert.ok(sumOf(samples, 'nodejs_external_memory_bytes') > 0);
  // The bench's memory curves read the young and old generations.
  assert.ok(sumOf(samples, 'nodejs_heap_space_size_total_bytes', { space: 'new' }) > 0);
  assert.ok(sumOf(samples, 'nodejs_heap_space_size_total_bytes', { space: 'old' }) > 0);
  assert.equal(sumOf(samples, 'nodejs_version_info', { version: process.version }), 1);
});
