/**
 * `kuryr serve`: the plugin process. Opens the backend, plays the embedded agent when needed, serves the
 * libnetwork protocol on a unix socket (default) or TCP, and shuts down cleanly on SIGTERM/SIGINT.
 */
import fs from 'node:fs';
import type http from 'node:http';
import { detectTagSupport, ensureDefaultPools, openBackend, restoreHostNetworks } from '../backend.ts';
import { NftIsolation } from '../binding/isolation.ts';
import { LinuxBridgeAgent } from '../binding/linux-bridge-agent.ts';
import type { Config } from '../config/config.ts';
import { errorMessage, type Logger } from '../driver/context.ts';
import { KuryrDriver } from '../driver/driver.ts';
import { createPortBinder } from '../driver/port-drivers/index.ts';
import { countingNeutron } from '../neutron/counting.ts';
import { openLogDestination } from '../observability/log-destination.ts';
import { createLogger } from '../observability/logger.ts';
import type { PluginMetrics } from '../observability/metrics.ts';
import { listenTcp, listenUnix } from '../plugin/listen.ts';
import { createPluginServer } from '../plugin/server.ts';
import { DockerClient, dockerNames } from '../docker/client.ts';
import { runGc } from './gc.ts';

/** How long in-flight requests may take to finish on shutdown. */
const DRAIN_MS = 10_000;

export async function serve(config: Config): Promise<void> {
  const logFile = openLogDestination(config.logging);
  const log = createLogger(config.logLevel, 'kuryr', logFile === null ? {} : { destination: logFile.stream });
  for (const warning of config.warnings) log.warn({ config: config.configFile }, warning);
  const backend = await openBackend(config);
  // prom-client is loaded only when metrics are on (it costs ~7 MB of RSS).
  const metricsModule = config.metricsListen === null ? undefined : await import('../observability/metrics.ts');
  const metrics: PluginMetrics | undefined = metricsModule && new metricsModule.PluginMetrics();
  // Every Neutron call is counted (the access log's neutronCalls) and, with metrics on, measured.
  const neutron = countingNeutron(backend.neutron, metrics && ((event) => metrics.observeNeutronCall(event)));
  const agent =
    config.backend === 'embedded'
      ? new LinuxBridgeAgent({ owner: config.driverName, isolation: new NftIsolation(config.embedded) })
      : undefined;
  if (config.backend === 'embedded' && agent !== undefined) {
    await ensureDefaultPools(neutron, config, log);
    const restored = await restoreHostNetworks(neutron, agent);
    log.info({ networks: restored }, 'host networks checked');
  }
  // Once per process, like the original: subnet pools are mandatory (retried while Neutron starts).
  const tagSupport = await detectTagSupport(config, neutron, log);
  const driver = new KuryrDriver({
    neutron,
    binder: createPortBinder({
      settings: config.portDrivers,
      neutron: backend.neutron,
      owner: config.driverName,
      portsTakeTags: tagSupport.tagExt,
      veth: { owner: config.driverName, bindir: config.bindir, log },
    }),
    ...(agent === undefined ? {} : { agent }),
    settings: config.driver,
    log,
    names: dockerNames(new DockerClient(config.dockerHost)),
    tagSupport,
  });
  const tls = config.tls;
  const server = createPluginServer({
    driver,
    log,
    ...(metrics && { onRequest: (summary) => metrics.observeRequest(summary) }),
    ...(tls === null
      ? {}
      : {
          tls: {
            cert: fs.readFileSync(tls.certFile),
            key: fs.readFileSync(tls.keyFile),
            ...(tls.caFile === null ? {} : { ca: fs.readFileSync(tls.caFile) }),
            verifyClient: tls.verifyClient,
          },
        }),
  });
  // Metrics first, so that a busy port fails the start before Docker can find the plugin.
  let metricsServer: http.Server | undefined;
  if (metricsModule !== undefined && metrics !== undefined && config.metricsListen !== null) {
    metricsServer = await metricsModule.listenMetrics(metrics, {
      ...config.metricsListen,
      allowRemote: config.metricsAllowRemote,
      health: async () => {
        if (!server.listening) throw new Error('the plugin socket is not listening');
        await backend.neutron.listExtensions();
      },
    });
  }
  let where: string;
  try {
    if (config.listen !== null) {
      const spec = await listenTcp(
        server,
        config.listen.host,
        config.listen.port,
        config.specDir,
        config.driverName,
        tls,
      );
      where = `tcp ${config.listen.host}:${config.listen.port} (spec ${spec})`;
    } else {
      await listenUnix(server, config.socketPath!, config.socketGroup);
      where = `unix ${config.socketPath}`;
    }
  } catch (err) {
    metricsServer?.close();
    throw err;
  }
  if (metricsModule !== undefined && metricsServer !== undefined) {
    const url = metricsModule.metricsUrl(metricsServer);
    log.info({ metrics: url }, `metrics and health check on ${url}/metrics, ${url}/healthz`);
  }
  log.info(
    { driver: config.driverName, backend: config.backend, stateDir: config.stateDir, listen: where, pid: process.pid },
    `kuryr-ts serving on ${where}`,
  );
  // Reconciliation at start-up (in the background: Docker may be retrying calls right now) and then
  // periodically: Docker sometimes resends a POST without its body and then skips or fails the operation,
  // leaving what the first attempt had created (moby #35459); gc removes it once it is old enough.
  void reconcile(driver, config, log, 'start-up');
  const gcTimer =
    config.gcIntervalSeconds > 0
      ? setInterval(() => void reconcile(driver, config, log, 'periodic'), config.gcIntervalSeconds * 1000)
      : undefined;
  gcTimer?.unref();
  await waitForSignal();
  clearInterval(gcTimer);
  log.info({}, 'shutting down');
  metricsServer?.close();
  metricsServer?.closeAllConnections();
  await drain(server);
  if (config.socketPath !== null) fs.rmSync(config.socketPath, { force: true });
  await backend.close();
  logFile?.close();
}

/** Grace period of reconciliation while serving: anything younger may belong to an operation in flight. */
const GC_GRACE_SECONDS = 60;
let reconciling = false;

async function reconcile(
  driver: KuryrDriver,
  config: Config,
  log: Logger,
  when: 'start-up' | 'periodic',
): Promise<void> {
  if (reconciling) return;
  reconciling = true;
  try {
    const report = await runGc(driver.runtime, config, {
      dryRun: false,
      graceSeconds: GC_GRACE_SECONDS,
      dockerHost: config.dockerHost,
      force: false,
    });
    for (const a of report.actions) log.warn({ gc: a }, `${when} gc: ${a.result} ${a.kind} ${a.id}: ${a.reason}`);
    const skipped = report.dockerError ?? report.dockerSkipped;
    const level = report.actions.length > 0 || when === 'start-up' ? 'info' : 'debug';
    log[level]({ removed: report.actions.length, ...(skipped ? { dockerView: skipped } : {}) }, `${when} gc done`);
  } catch (err) {
    log.error({ err: errorMessage(err) }, `${when} gc failed`);
  } finally {
    reconciling = false;
  }
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
}

function drain(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.closeAllConnections();
      resolve();
    }, DRAIN_MS);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
