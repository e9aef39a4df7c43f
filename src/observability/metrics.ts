/**
 * Prometheus metrics (our own small exposition: prometheus.ts) and the opt-in HTTP endpoint serving them with a health check
 * (`kuryr serve --metrics-listen 127.0.0.1:9300`): `GET /metrics`, `GET /healthz`.
 *
 * - `kuryr_requests_total{endpoint,status}`, `kuryr_request_duration_seconds{endpoint}` (histogram),
 *   `kuryr_request_cpu_seconds{endpoint}` (histogram of process CPU while the request was in flight),
 *   `kuryr_request_errors_total{endpoint,code}` (by `KURYR_ERR_...` code);
 * - `kuryr_neutron_calls_total{endpoint,call}`: Neutron API calls per libnetwork endpoint (`endpoint="none"`
 *   outside requests, e.g. at start-up) and `kuryr_neutron_call_duration_seconds{call,outcome}`;
 * - `kuryr_refused_connections_total`: TCP connections closed unread because the peer is not this host;
 * - the usual process metrics under prom-client's names (`process_cpu_seconds_total`,
 *   `process_resident_memory_bytes`, `nodejs_heap_space_size_total_bytes`, ...: prometheus.ts) and `kuryr_process_peak_resident_memory_bytes` (the peak RSS, VmHWM).
 *
 * The endpoint has no authentication: it listens on loopback unless the operator explicitly allows otherwise.
 */
import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, processMetrics, Registry } from './prometheus.ts';
import { isLoopbackHost } from '../util/ip.ts';
import { fail } from '../errors.ts';
import type { RequestSummary } from './request-context.ts';

/** One finished Neutron API call, as the counting decorator (neutron/counting.ts) reports it. */
export interface NeutronCallObservation {
  /** The `NeutronApi` method, e.g. `listPorts`. */
  method: string;
  /** The libnetwork method being served, or undefined outside a request. */
  endpoint: string | undefined;
  seconds: number;
  /** `'ok'`, the HTTP status of a Neutron error, or `'error'`. */
  outcome: string;
}

/**
 * node:http as CommonJS: an ESM import of it builds its namespace, whose lazy getters load undici, http2, zlib and
 * tls (about 10 MiB of RSS in the plugin).
 */
const nodeHttp = process.getBuiltinModule('node:http');

const LATENCY_BUCKETS = [0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10];
const CPU_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5];
const NEUTRON_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5];
/** Label of requests to paths that are no libnetwork method (keeps label values bounded). */
const UNKNOWN_ENDPOINT = 'unknown';

/** Every method of the libnetwork remote NetworkDriver and IpamDriver protocol (moby libnetwork docs/remote.md, docs/ipam.md). */
export const LIBNETWORK_METHODS: readonly string[] = [
  'Plugin.Activate',
  'NetworkDriver.GetCapabilities',
  'NetworkDriver.CreateNetwork',
  'NetworkDriver.DeleteNetwork',
  'NetworkDriver.CreateEndpoint',
  'NetworkDriver.DeleteEndpoint',
  'NetworkDriver.EndpointOperInfo',
  'NetworkDriver.Join',
  'NetworkDriver.Leave',
  'NetworkDriver.ProgramExternalConnectivity',
  'NetworkDriver.RevokeExternalConnectivity',
  'NetworkDriver.AllocateNetwork',
  'NetworkDriver.FreeNetwork',
  'NetworkDriver.DiscoverNew',
  'NetworkDriver.DiscoverDelete',
  'NetworkDriver.GwAllocCheck',
  'IpamDriver.GetCapabilities',
  'IpamDriver.GetDefaultAddressSpaces',
  'IpamDriver.RequestPool',
  'IpamDriver.ReleasePool',
  'IpamDriver.RequestAddress',
  'IpamDriver.ReleaseAddress',
];

export interface PluginMetricsOptions {
  /** The process and Node.js metrics (default true). */
  defaultMetrics?: boolean;
  /** Endpoint label values allowed (default `LIBNETWORK_METHODS`); any other request path is labelled `unknown`. */
  endpoints?: Iterable<string>;
}

/** The plugin's metrics, in a registry of their own. */
export class PluginMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'endpoint' | 'status'>;
  private readonly duration: Histogram<'endpoint'>;
  private readonly cpu: Histogram<'endpoint'>;
  private readonly errors: Counter<'endpoint' | 'code'>;
  private readonly neutronCalls: Counter<'endpoint' | 'call'>;
  private readonly neutronDuration: Histogram<'call' | 'outcome'>;
  private readonly endpoints: ReadonlySet<string>;
  private readonly refused: Counter;

  constructor(options: PluginMetricsOptions = {}) {
    const r = this.registry;
    this.endpoints = new Set(options.endpoints ?? LIBNETWORK_METHODS);
    if (options.defaultMetrics ?? true) for (const m of processMetrics()) r.register(m);
    this.requests = r.register(
      new Counter({
        name: 'kuryr_requests_total',
        help: 'libnetwork requests served, by endpoint and HTTP status',
        labelNames: ['endpoint', 'status'],
      }),
    );
    this.duration = r.register(
      new Histogram({
        name: 'kuryr_request_duration_seconds',
        help: 'Time from a libnetwork request arriving to its reply, by endpoint',
        labelNames: ['endpoint'],
        buckets: LATENCY_BUCKETS,
      }),
    );
    this.cpu = r.register(
      new Histogram({
        name: 'kuryr_request_cpu_seconds',
        help: 'Process CPU time (user+system) while a libnetwork request was in flight (exact when requests do not overlap)',
        labelNames: ['endpoint'],
        buckets: CPU_BUCKETS,
      }),
    );
    this.errors = r.register(
      new Counter({
        name: 'kuryr_request_errors_total',
        help: 'libnetwork requests that failed, by endpoint and KURYR_ERR_ code',
        labelNames: ['endpoint', 'code'],
      }),
    );
    this.neutronCalls = r.register(
      new Counter({
        name: 'kuryr_neutron_calls_total',
        help: 'Neutron API calls, by the libnetwork endpoint being served ("none" outside requests) and API call',
        labelNames: ['endpoint', 'call'],
      }),
    );
    this.neutronDuration = r.register(
      new Histogram({
        name: 'kuryr_neutron_call_duration_seconds',
        help: 'Duration of Neutron API calls, by call and outcome ("ok", or the HTTP status of the error)',
        labelNames: ['call', 'outcome'],
        buckets: NEUTRON_BUCKETS,
      }),
    );
    this.refused = r.register(
      new Counter({
        name: 'kuryr_refused_connections_total',
        help: 'TCP connections to the plugin API closed unread: the peer is not this host',
      }),
    );
    r.register(
      new Gauge({
        name: 'kuryr_process_peak_resident_memory_bytes',
        help: 'Peak resident set size of the plugin process (VmHWM)',
        read: () => process.resourceUsage().maxRSS * 1024,
      }),
    );
  }

  /** Records one finished libnetwork request (the plugin server's `onRequest` hook). */
  observeRequest(summary: RequestSummary): void {
    const endpoint = this.endpoints.has(summary.method) ? summary.method : UNKNOWN_ENDPOINT;
    this.requests.inc({ endpoint, status: String(summary.status) });
    this.duration.observe({ endpoint }, summary.ms / 1000);
    this.cpu.observe({ endpoint }, summary.cpuMs / 1000);
    if (summary.code !== undefined) this.errors.inc({ endpoint, code: summary.code });
  }

  /** Records one finished Neutron API call (the counting decorator's listener). */
  observeNeutronCall(event: NeutronCallObservation): void {
    this.neutronCalls.inc({ endpoint: event.endpoint ?? 'none', call: event.method });
    this.neutronDuration.observe({ call: event.method, outcome: event.outcome }, event.seconds);
  }

  /** Counts one TCP connection refused because its peer is not this host (plugin/local-peers.ts). */
  observeRefusedConnection(): void {
    this.refused.inc();
  }

  /** The exposition text of every metric. */
  render(): string {
    return this.registry.metrics();
  }
}

export interface MetricsServerOptions {
  host: string;
  port: number;
  /** Allow a host that is not loopback (the endpoint has no authentication). */
  allowRemote?: boolean;
  /** Health check: resolves when the plugin can serve, rejects with the reason otherwise. */
  health?: () => Promise<unknown>;
}

/** Starts the metrics/health HTTP server; resolves once it listens. */
export async function listenMetrics(metrics: PluginMetrics, options: MetricsServerOptions): Promise<http.Server> {
  if (!isLoopbackHost(options.host) && options.allowRemote !== true) {
    throw fail.config(
      `metrics address ${options.host} is not loopback: the metrics endpoint has no authentication ` +
        '(use 127.0.0.1 or ::1, or --metrics-allow-remote to expose it anyway)',
    );
  }
  const started = performance.now();
  const server = nodeHttp.createServer((req, res) => {
    void answer(req, res, metrics, options, started);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** `http://host:port` of a listening metrics server. */
export function metricsUrl(server: http.Server): string {
  const address = server.address();
  if (address === null || typeof address === 'string') return String(address);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

async function answer(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  metrics: PluginMetrics,
  options: MetricsServerOptions,
  started: number,
): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  const reply = (status: number, type: string, body: string) => {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  req.resume();
  try {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply(405, 'text/plain; charset=utf-8', 'only GET and HEAD\n');
    } else if (path === '/metrics') {
      reply(200, metrics.registry.contentType, metrics.render());
    } else if (path === '/healthz') {
      const uptimeSeconds = Math.round((performance.now() - started) / 1000);
      try {
        await options.health?.();
        reply(200, 'application/json', `${JSON.stringify({ status: 'ok', uptimeSeconds })}\n`);
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        reply(503, 'application/json', `${JSON.stringify({ status: 'unavailable', error, uptimeSeconds })}\n`);
      }
    } else {
      reply(404, 'text/plain; charset=utf-8', 'not found: GET /metrics or /healthz\n');
    }
  } catch (err) {
    reply(500, 'text/plain; charset=utf-8', `${err instanceof Error ? err.message : String(err)}\n`);
  }
}
