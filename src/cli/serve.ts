/**
 * `kuryr serve`: the plugin process. Builds it with the composition root (app.ts: backend, binder, embedded agent),
 * restores the embedded networks' bridges, serves the libnetwork protocol on a unix socket (default) or TCP,
 * reconciles (gc) at start-up and periodically, and shuts down cleanly on SIGTERM/SIGINT.
 */
import fs from 'node:fs';
import type http from 'node:http';
import { ensureDefaultPools, openProcess, restoreHostNetworks, runGc } from '../app.ts';
import type { Config } from '../config/config.ts';
import { refuseEmbeddedGlobalScope } from '../config/scope.ts';
import { errorMessage } from '../driver/context.ts';
import { KuryrDriver } from '../driver/driver.ts';
import { countingNeutron } from '../neutron/counting.ts';
import { openLogDestination } from '../observability/log-destination.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import type { PluginMetrics } from '../observability/metrics.ts';
import { listenTcp, listenUnix } from '../plugin/listen.ts';
import { acceptOnlyLocalPeers } from '../plugin/local-peers.ts';
import { createPluginServer, type PluginServer, requestsInFlight, shutdownPluginServer } from '../plugin/server.ts';
import { DockerClient, dockerNames } from '../docker/client.ts';
import { acquireStoreLock } from './store-lock.ts';

/**
 * How long requests in flight may take to finish on shutdown: more than a request normally runs (a bind script
 * has 60 s, each Neutron call its own time limit), less than systemd's 90 s before SIGKILL.
 */
const SHUTDOWN_GRACE_MS = 75_000;

export async function serve(config: Config): Promise<void> {
  refuseEmbeddedGlobalScope(config);
  const logFile = openLogDestination(config.logging);
  const log = createLogger(config.logLevel, 'kuryr', logFile === null ? {} : { destination: logFile.stream });
  for (const warning of config.warnings) log.warn({ config: config.configFile }, warning);
  // Held until exit: `kuryr restore` (and a second serve) is refused while this process uses the store.
  const storeLock = config.backend === 'embedded' ? acquireStoreLock(config.stateDir, 'serve') : undefined;
  // The metrics module is loaded only when metrics are on (about 0.5 MiB of RSS).
  const metricsModule = config.metricsListen === null ? undefined : await import('../observability/metrics.ts');
  const metrics: PluginMetrics | undefined = metricsModule && new metricsModule.PluginMetrics();
  // Every Neutron call is counted (the access log's neutronCalls) and, with metrics on, measured; behind the
  // cache, so that only the calls that reach Neutron are. Tag support is detected once per process, like the
  // original (retried while Neutron starts); the embedded backend's agent then restores its bridges.
  const opened = await openProcess(config, log, {
    observe: (api) => countingNeutron(api, metrics && ((event) => metrics.observeNeutronCall(event))),
    names: dockerNames(new DockerClient(config.dockerHost)),
  });
  const backend = opened.backend;
  const { agent } = opened.deps;
  if (agent !== undefined) {
    await ensureDefaultPools(backend.neutron, config, log);
    const restored = await restoreHostNetworks(backend.neutron, agent);
    log.info({ networks: restored }, 'host networks checked');
  }
  const driver = new KuryrDriver(opened.deps);
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
    where = await listenForDocker(server, config, log, metrics);
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
  await waitForSignal(() => log.warn({ inFlight: requestsInFlight(server) }, 'already shutting down'));
  clearInterval(gcTimer);
  log.info({ inFlight: requestsInFlight(server) }, 'shutting down: requests in flight finish first');
  metricsServer?.close();
  metricsServer?.closeAllConnections();
  const unfinished = await shutdownPluginServer(server, SHUTDOWN_GRACE_MS);
  if (config.socketPath !== null) fs.rmSync(config.socketPath, { force: true });
  if (unfinished.length > 0) {
    // Never close the store under running requests: exit instead. Each store write is one transaction (an open
    // one rolls back with the process); what a request left half-done, reconciliation (gc) removes.
    log.error({ inFlight: unfinished }, `requests still running after ${SHUTDOWN_GRACE_MS / 1000} s: exiting`);
    process.exit(1);
  }
  await reconciling; // a gc pass uses the store too (bounded by Neutron's and Docker's time limits)
  await backend.close();
  storeLock?.release();
  log.info({}, 'store closed, stopped');
  logFile?.close();
}

/**
 * Listens where Docker looks: `--listen` / `kuryr_uri` (TCP, with its spec file) or the unix socket. Over TCP
 * only this host may connect (plugin/local-peers.ts), unless TLS verifies client certificates: then any client
 * with a valid certificate may. Returns where, for the log.
 */
async function listenForDocker(
  server: PluginServer,
  config: Config,
  log: Logger,
  metrics: PluginMetrics | undefined,
): Promise<string> {
  if (config.listen === null) {
    await listenUnix(server, config.socketPath!, config.socketGroup);
    return `unix ${config.socketPath}`;
  }
  const { host, port } = config.listen;
  const anyCertifiedClient = config.tls?.verifyClient === true;
  if (!anyCertifiedClient) {
    acceptOnlyLocalPeers(server, {
      onRefused: (address, first) => {
        metrics?.observeRefusedConnection();
        if (first) log.warn({ peer: address }, `refused a connection from ${address}: not an address of this host`);
      },
    });
  }
  const spec = await listenTcp(server, host, port, config.specDir, config.driverName, config.tls);
  const who = anyCertifiedClient ? 'clients with a valid certificate' : 'this host only';
  return `tcp ${host}:${port} (spec ${spec}, ${who})`;
}

/** Grace period of reconciliation while serving: anything younger may belong to an operation in flight. */
const GC_GRACE_SECONDS = 60;
/** The reconciliation pass running now, if any (shutdown waits for it before the store closes). */
let reconciling: Promise<void> | undefined;

function reconcile(driver: KuryrDriver, config: Config, log: Logger, when: 'start-up' | 'periodic'): Promise<void> {
  reconciling ??= reconcileOnce(driver, config, log, when).finally(() => {
    reconciling = undefined;
  });
  return reconciling;
}

async function reconcileOnce(
  driver: KuryrDriver,
  config: Config,
  log: Logger,
  when: 'start-up' | 'periodic',
): Promise<void> {
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
  }
}

/** Resolves on the first SIGTERM or SIGINT; later ones only call `again` (the shutdown is under way). */
function waitForSignal(again: () => void): Promise<void> {
  return new Promise((resolve) => {
    let received = false;
    const onSignal = () => {
      if (received) again();
      received = true;
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
