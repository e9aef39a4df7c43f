// The metrics endpoint: plugin calls over a unix socket, then a scrape of /metrics whose numbers must match
// what was called (requests, latency histograms, Neutron calls per endpoint, errors by code); /healthz; the
// loopback-only rule; and `kuryr serve --metrics-listen` as a real process.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { isLoopbackHost } from '../../src/util/ip.ts';
import { KuryrDriver } from '../../src/driver/driver.ts';
import { countingNeutron } from '../../src/neutron/counting.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/store.ts';
import { LIBNETWORK_METHODS, listenMetrics, metricsUrl, PluginMetrics } from '../../src/observability/metrics.ts';
import type { RequestSummary } from '../../src/observability/request-context.ts';
import { listenUnix } from '../../src/plugin/listen.ts';
import { routes } from '../../src/plugin/routes.ts';
import { createPluginServer } from '../../src/plugin/server.ts';
import { FakeAgent, FakeBinder, TEST_SETTINGS } from '../helpers/fakes.ts';
import { pluginCall, REPO_ROOT, startPlugin } from '../helpers/plugin-process.ts';
import { histogramQuantile, parsePrometheus, type Sample, sumOf } from '../helpers/prometheus.ts';

const EP = '0123456789abcdef'.repeat(4);
const NET = 'fedcba9876543210'.repeat(4);
const MAC = '02:42:ac:11:00:02';

interface LogLine extends Partial<RequestSummary> {
  msg?: string;
}

/** A logger that keeps what it is given (the access log lines). */
function recordingLogger() {
  const lines: LogLine[] = [];
  const keep = (obj: object, msg?: string) =>
    lines.push({ ...(obj as LogLine), ...(msg === undefined ? {} : { msg }) });
  return { lines, log: { debug: keep, info: keep, warn: keep, error: keep } };
}

async function scrape(url: string): Promise<Sample[]> {
  const reply = await fetch(`${url}/metrics`);
  assert.equal(reply.status, 200);
  assert.match(reply.headers.get('content-type') ?? '', /^text\/plain/);
  return parsePrometheus(await reply.text());
}

describe('metrics endpoint of the plugin server', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kuryr-metrics-'));
  const socket = path.join(dir, 'k.sock');
  const store = openEmbeddedNeutron({ path: ':memory:' });
  const metrics = new PluginMetrics();
  const neutron = countingNeutron(store, (e) => metrics.observeNeutronCall(e));
  const { lines, log } = recordingLogger();
  let healthy = true;
  let server: http.Server;
  let metricsServer: http.Server;
  let url: string;

  before(async () => {
    await neutron.createSubnetPool({ name: 'kuryr', prefixes: ['10.10.0.0/16'], default_prefixlen: 24 });
    await neutron.createSubnetPool({ name: 'kuryr6', prefixes: ['fd6b:7572:7972::/48'], default_prefixlen: 64 });
    const driver = new KuryrDriver({
      neutron,
      binder: new FakeBinder(),
      agent: new FakeAgent(),
      settings: TEST_SETTINGS,
      log,
    });
    server = createPluginServer({ driver, log, onRequest: (s) => metrics.observeRequest(s) });
    await listenUnix(server, socket, null);
    metricsServer = await listenMetrics(metrics, {
      host: '127.0.0.1',
      port: 0,
      health: async () => {
        if (!healthy) throw new Error('store closed');
      },
    });
    url = metricsUrl(metricsServer);
  });

  after(async () => {
    server.closeAllConnections();
    metricsServer.closeAllConnections();
    await new Promise((r) => server.close(r));
    await new Promise((r) => metricsServer.close(r));
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('counts requests, latency, CPU, Neutron calls per endpoint and errors by code', async () => {
    const ok = async (method: string, body: unknown = {}) => {
      const r = await pluginCall<Record<string, unknown>>(socket, method, body);
      assert.equal(r.status, 200, `${method}: ${r.raw}`);
      return r.body;
    };
    // What `docker network create` + `docker run` + `docker rm` + `docker network rm` send, in order.
    await ok('Plugin.Activate');
    await ok('NetworkDriver.GetCapabilities');
    const pool = await ok('IpamDriver.RequestPool', {
      AddressSpace: 'no_address_space',
      Pool: '',
      SubPool: '',
      Options: {},
      V6: false,
    });
    const poolId = String(pool.PoolID);
    const gw = await ok('IpamDriver.RequestAddress', {
      PoolID: poolId,
      Address: '',
      Options: { RequestAddressType: 'com.docker.network.gateway' },
    });
    await ok('NetworkDriver.CreateNetwork', {
      NetworkID: NET,
      Options: { 'com.docker.network.generic': {} },
      IPv4Data: [{ AddressSpace: 'no_address_space', Pool: pool.Pool, Gateway: gw.Address }],
      IPv6Data: [],
    });
    const addr = await ok('IpamDriver.RequestAddress', {
      PoolID: poolId,
      Address: '',
      Options: { 'com.docker.network.endpoint.macaddress': MAC },
    });
    await ok('NetworkDriver.CreateEndpoint', {
      NetworkID: NET,
      EndpointID: EP,
      Interface: { Address: addr.Address, AddressIPv6: '', MacAddress: MAC },
      Options: {},
    });
    await ok('NetworkDriver.Join', {
      NetworkID: NET,
      EndpointID: EP,
      SandboxKey: '/var/run/docker/netns/x',
      Options: {},
    });
    await ok('NetworkDriver.Leave', { NetworkID: NET, EndpointID: EP });
    await ok('NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: EP });
    await ok('IpamDriver.ReleaseAddress', { PoolID: poolId, Address: String(addr.Address).split('/')[0] });
    // Two failures: an unknown method and a malformed body.
    assert.equal((await pluginCall(socket, 'NetworkDriver.NoSuchThing', {})).status, 404);
    assert.equal((await pluginCall(socket, 'NetworkDriver.Join', { EndpointID: 42 })).status, 400);

    const samples = await scrape(url);
    const requests = lines.filter((l) => l.id !== undefined);
    assert.equal(requests.length, 13, 'one access log line per request');
    assert.equal(new Set(requests.map((l) => l.id)).size, 13, 'request IDs are unique');

    // Request counts, by endpoint and status, match what was called.
    assert.equal(sumOf(samples, 'kuryr_requests_total'), 13);
    assert.equal(sumOf(samples, 'kuryr_requests_total', { endpoint: 'IpamDriver.RequestAddress', status: '200' }), 2);
    assert.equal(sumOf(samples, 'kuryr_requests_total', { endpoint: 'NetworkDriver.Join', status: '200' }), 1);
    assert.equal(sumOf(samples, 'kuryr_requests_total', { endpoint: 'NetworkDriver.Join', status: '400' }), 1);
    assert.equal(sumOf(samples, 'kuryr_requests_total', { endpoint: 'unknown', status: '404' }), 1);
    // Errors by code; unknown paths never become label values.
    assert.equal(
      sumOf(samples, 'kuryr_request_errors_total', { endpoint: 'unknown', code: 'KURYR_ERR_NO_SUCH_METHOD' }),
      1,
    );
    assert.equal(
      sumOf(samples, 'kuryr_request_errors_total', { endpoint: 'NetworkDriver.Join', code: 'KURYR_ERR_BAD_REQUEST' }),
      1,
    );
    assert.equal(sumOf(samples, 'kuryr_request_errors_total'), 2);
    assert.ok(!samples.some((s) => s.labels.endpoint === 'NetworkDriver.NoSuchThing'));

    // Histograms: one observation per request, sums equal the access log's figures.
    assert.equal(sumOf(samples, 'kuryr_request_duration_seconds_count'), 13);
    assert.equal(sumOf(samples, 'kuryr_request_cpu_seconds_count', { endpoint: 'NetworkDriver.CreateEndpoint' }), 1);
    const logged = (method: string, key: 'ms' | 'cpuMs' | 'neutronCalls') =>
      requests.filter((l) => l.method === method && l.status === 200).reduce((t, l) => t + Number(l[key]), 0);
    const close = (a: number, b: number) => Math.abs(a - b) < 1e-6;
    assert.ok(
      close(
        sumOf(samples, 'kuryr_request_duration_seconds_sum', { endpoint: 'NetworkDriver.CreateEndpoint' }),
        logged('NetworkDriver.CreateEndpoint', 'ms') / 1000,
      ),
    );
    const p50 = histogramQuantile(samples, 'kuryr_request_duration_seconds', 0.5, {
      endpoint: 'NetworkDriver.CreateEndpoint',
    });
    assert.ok(p50 !== undefined && p50 > 0 && p50 <= 10);

    // Neutron calls: per endpoint they equal the access log's neutronCalls, and all of them equal the wrapper's count.
    for (const endpoint of [
      'IpamDriver.RequestPool',
      'NetworkDriver.CreateNetwork',
      'NetworkDriver.CreateEndpoint',
      'NetworkDriver.Join',
      'NetworkDriver.DeleteEndpoint',
      'IpamDriver.ReleaseAddress',
    ]) {
      const counted = sumOf(samples, 'kuryr_neutron_calls_total', { endpoint });
      // Join and DeleteEndpoint are usually served from what CreateEndpoint left in the driver's cache.
      const cached = endpoint === 'NetworkDriver.Join' || endpoint === 'NetworkDriver.DeleteEndpoint';
      if (!cached) assert.ok(counted > 0, `${endpoint} makes Neutron calls`);
      assert.equal(counted, logged(endpoint, 'neutronCalls'), endpoint);
    }
    assert.equal(sumOf(samples, 'kuryr_neutron_calls_total', { endpoint: 'NetworkDriver.Leave' }), 0);
    assert.equal(
      sumOf(samples, 'kuryr_neutron_calls_total', { endpoint: 'none' }),
      2,
      'the two pools created before any request',
    );
    assert.equal(sumOf(samples, 'kuryr_neutron_calls_total'), neutron.totalCalls());
    assert.equal(sumOf(samples, 'kuryr_neutron_calls_total', { call: 'createPort' }), neutron.callCounts().createPort);
    assert.equal(sumOf(samples, 'kuryr_neutron_call_duration_seconds_count'), neutron.totalCalls());

    // Process metrics: CPU, RSS, peak RSS.
    assert.ok(sumOf(samples, 'process_cpu_seconds_total') > 0);
    assert.ok(sumOf(samples, 'process_resident_memory_bytes') > 1e6);
    assert.ok(
      sumOf(samples, 'kuryr_process_peak_resident_memory_bytes') >=
        sumOf(samples, 'process_resident_memory_bytes') * 0.5,
    );
  });

  test('/healthz answers 200, or 503 with the reason when the check fails', async () => {
    let reply = await fetch(`${url}/healthz`);
    assert.equal(reply.status, 200);
    assert.equal(((await reply.json()) as { status: string }).status, 'ok');
    healthy = false;
    reply = await fetch(`${url}/healthz`);
    assert.equal(reply.status, 503);
    assert.deepEqual(
      { ...((await reply.json()) as object), uptimeSeconds: 0 },
      { status: 'unavailable', error: 'store closed', uptimeSeconds: 0 },
    );
    healthy = true;
  });

  test('request paths that are no libnetwork method never become label values', async () => {
    await pluginCall(socket, 'Made.Up', {});
    const reply = await new Promise<number>((resolve, reject) => {
      const req = http.request({ socketPath: socket, path: '/Another.Invented', method: 'GET' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(reply, 405);
    const samples = await scrape(url);
    const endpoints = new Set(samples.map((s) => s.labels.endpoint).filter((e) => e !== undefined));
    for (const e of endpoints) assert.ok(e === 'unknown' || e === 'none' || LIBNETWORK_METHODS.includes(e), e);
    assert.ok(
      sumOf(samples, 'kuryr_request_errors_total', { endpoint: 'unknown', code: 'KURYR_ERR_METHOD_NOT_ALLOWED' }) >= 1,
    );
  });

  test('every route of the plugin is a known endpoint label', () => {
    assert.equal(routes(), routes(), 'one table, built once (not per request)');
    for (const path of routes().keys()) {
      assert.ok(LIBNETWORK_METHODS.includes(path.slice(1)), path);
    }
  });

  test('other paths are 404 and other verbs 405', async () => {
    assert.equal((await fetch(`${url}/`)).status, 404);
    assert.equal((await fetch(`${url}/metrics`, { method: 'POST', body: 'x' })).status, 405);
  });
});

describe('the metrics address is loopback unless explicitly allowed', () => {
  test('isLoopbackHost', () => {
    for (const h of [
      '127.0.0.1',
      '127.9.8.7',
      '::1',
      '0:0:0:0:0:0:0:1',
      '::ffff:127.0.0.1',
      'localhost',
      'LOCALHOST',
    ]) {
      assert.equal(isLoopbackHost(h), true, h);
    }
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.org', '127.1', '']) {
      assert.equal(isLoopbackHost(h), false, h);
    }
  });

  test('loadConfig refuses a non-loopback --metrics-listen, unless --metrics-allow-remote', () => {
    const flags = { config: '/dev/null', stateDir: '/tmp/kuryr-unused' };
    assert.equal(loadConfig(flags, {}).metricsListen, null);
    assert.deepEqual(loadConfig({ ...flags, metricsListen: '127.0.0.1:9300' }, {}).metricsListen, {
      host: '127.0.0.1',
      port: 9300,
    });
    assert.deepEqual(loadConfig({ ...flags, metricsListen: '[::1]:9300' }, {}).metricsListen, {
      host: '::1',
      port: 9300,
    });
    assert.throws(() => loadConfig({ ...flags, metricsListen: '0.0.0.0:9300' }, {}), /not a loopback address/);
    assert.throws(() => loadConfig({ ...flags, metricsListen: '9300' }, {}), /--metrics-listen expects HOST:PORT/);
    const remote = loadConfig({ ...flags, metricsListen: '0.0.0.0:9300', metricsAllowRemote: true }, {});
    assert.equal(remote.metricsAllowRemote, true);
  });

  test('listenMetrics itself refuses a non-loopback host', async () => {
    await assert.rejects(
      listenMetrics(new PluginMetrics({ defaultMetrics: false }), { host: '0.0.0.0', port: 0 }),
      /not loopback/,
    );
  });
});

describe('kuryr serve --metrics-listen (the real process)', {
  skip: existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'main.js')) ? false : 'needs npm run build',
}, () => {
  test('serves /metrics and /healthz on loopback with the numbers of the calls made over its socket', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kuryr-metrics-serve-'));
    const plugin = await startPlugin({
      driverName: `kxm${process.pid}`,
      stateDir: path.join(dir, 'state'),
      socketPath: path.join(dir, 'k.sock'),
      logFile: path.join(dir, 'plugin.log'),
      extraArgs: ['--metrics-listen', '127.0.0.1:0', '--config', '/dev/null'],
    });
    try {
      const log = readFileSync(plugin.logFile, 'utf8');
      const url = /"metrics":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(log)?.[1];
      assert.ok(url, `the log names the metrics URL:\n${log}`);
      for (let i = 0; i < 3; i++) {
        const r = await pluginCall(plugin.socket, 'IpamDriver.RequestPool', {
          AddressSpace: 'no_address_space',
          Pool: `10.77.${i}.0/24`,
          SubPool: '',
          Options: {},
          V6: false,
        });
        assert.equal(r.status, 200, r.raw);
      }
      const samples = await scrape(url);
      // startPlugin's readiness probe calls Plugin.Activate at least once.
      assert.ok(sumOf(samples, 'kuryr_requests_total', { endpoint: 'Plugin.Activate' }) >= 1);
      assert.equal(sumOf(samples, 'kuryr_requests_total', { endpoint: 'IpamDriver.RequestPool', status: '200' }), 3);
      assert.equal(sumOf(samples, 'kuryr_request_duration_seconds_count', { endpoint: 'IpamDriver.RequestPool' }), 3);
      const logged = readFileSync(plugin.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"msg":"request"') && l.includes('IpamDriver.RequestPool'))
        .map((l) => JSON.parse(l) as RequestSummary);
      assert.equal(logged.length, 3);
      for (const line of logged) {
        assert.match(line.id, /^[0-9a-f]{6}-\d+$/);
        assert.equal(typeof line.cpuMs, 'number');
      }
      assert.equal(
        sumOf(samples, 'kuryr_neutron_calls_total', { endpoint: 'IpamDriver.RequestPool' }),
        logged.reduce((t, l) => t + l.neutronCalls, 0),
      );
      assert.ok(sumOf(samples, 'process_resident_memory_bytes') > 1e6);
      const health = await fetch(`${url}/healthz`);
      assert.equal(health.status, 200);
    } finally {
      await plugin.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
