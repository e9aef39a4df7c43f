/**
 * The composition root: the one place that builds a kuryr-ts process from its configuration. `serve`, `gc`,
 * `status`, `network` and `doctor` all take what they need from here (the backend from backend.ts; the port
 * binder, the embedded backend's host agent and publisher, and the driver's dependencies from `openProcess`),
 * so that the commands cannot drift apart in how they are wired.
 */
import { detectTagSupport, type OpenBackend, type OpenBackendOptions, openBackend } from './backend.ts';
import { IptablesAccept } from './binding/host-firewall.ts';
import { IpCommand } from './binding/ip-command.ts';
import { NftIsolation } from './binding/isolation.ts';
import { LinuxBridgeAgent } from './binding/linux-bridge-agent.ts';
import { OvsVsctl } from './binding/ovs.ts';
import { OvsLeftovers } from './binding/ovs-leftovers.ts';
import { NftPublisher } from './binding/publish.ts';
import type { Config } from './config/config.ts';
import { DockerClient, type DockerEndpoints } from './docker/client.ts';
import {
  createRuntime,
  type DockerNames,
  type DriverDeps,
  type DriverRuntime,
  errorMessage,
} from './driver/context.ts';
import { createPortBinder } from './driver/port-drivers/index.ts';
import { type NeutronApi, withDeadline } from './neutron/api.ts';
import type { Logger } from './observability/logger.ts';
import { currentRequest } from './observability/request-context.ts';
import { collectGarbage, type GcReport } from './reconcile/gc.ts';

export {
  detectTagSupport,
  embeddedStorePath,
  ensureDefaultPools,
  type OpenBackend,
  openBackend,
  restoreHostNetworks,
} from './backend.ts';

export interface ProcessOptions extends OpenBackendOptions {
  /** How many times a real Neutron is asked for its extensions; default: serve's long start-up retries. */
  tagAttempts?: number;
  /** Readable Docker network names for Neutron descriptions (serve); without it Docker is not asked. */
  names?: DockerNames;
}

/** A process's backend and what its driver is given. */
export interface KuryrProcess {
  readonly backend: OpenBackend;
  /** The driver's dependencies: `new KuryrDriver(deps)` (serve) or `createRuntime(deps)` (gc). */
  readonly deps: DriverDeps;
  /** Closes the backend. */
  close(): Promise<void>;
}

/**
 * Opens the backend and builds what the driver is given: the tag support of this Neutron, the port binder
 * (`[DEFAULT] bindir`, the port drivers), and for the embedded backend the host agent (bridges with the configured
 * nftables isolation and iptables rules) and the publisher of `-p` ports.
 */
export async function openProcess(config: Config, log: Logger, opts: ProcessOptions = {}): Promise<KuryrProcess> {
  const backend = await openBackend(config, opts.observe === undefined ? {} : { observe: opts.observe });
  try {
    const tagSupport = await detectTagSupport(config, backend.neutron, log, opts.tagAttempts);
    const deps: DriverDeps = {
      neutron: backend.neutron,
      tagSupport,
      binder: createPortBinder({
        settings: config.portDrivers,
        neutron: boundToRequest(backend.bare),
        owner: config.driverName,
        portsTakeTags: tagSupport.tagExt,
        veth: { owner: config.driverName, bindir: config.bindir, log },
      }),
      ...(config.backend === 'embedded'
        ? {
            agent: new LinuxBridgeAgent({
              owner: config.driverName,
              isolation: new NftIsolation(config.embedded),
              firewall: new IptablesAccept(),
            }),
            publisher: new NftPublisher(),
          }
        : {}),
      settings: config.driver,
      log,
      ...(opts.names === undefined ? {} : { names: opts.names }),
    };
    return { backend, deps, close: () => backend.close() };
  } catch (err) {
    await backend.close();
    throw err;
  }
}

/**
 * The bare backend for the port drivers of containers in VMs, each call bound to the deadline of the plugin request
 * it serves (`withDeadline`). Those drivers are built once per process and share keyed locks across requests, so
 * the request's deadline cannot be handed to them with each call as the driver's own Neutron calls get it; it is
 * taken from the request context (observability/request-context.ts) here, in the one place that wires them.
 */
export function boundToRequest(bare: NeutronApi): NeutronApi {
  return new Proxy(bare, {
    get(target, key) {
      const deadline = currentRequest()?.deadline;
      const api = deadline === undefined ? target : withDeadline(target, deadline);
      const value = Reflect.get(api, key, api) as unknown;
      return typeof value === 'function' ? value.bind(api) : value;
    },
  });
}

export interface GcRunOptions {
  dryRun: boolean;
  graceSeconds: number;
  dockerHost: string | undefined;
  force: boolean;
}

export type GcRunReport = GcReport & { dockerError?: string };

/** Docker's view of our driver's networks, or the reason it could not be had. */
export async function dockerView(
  dockerHost: string | undefined,
  driverName: string,
): Promise<{ view?: DockerEndpoints; error?: string }> {
  try {
    return { view: await new DockerClient(dockerHost).endpointsOf(driverName) };
  } catch (err) {
    return { error: errorMessage(err) };
  }
}

/** One reconciliation pass with a runtime of the caller's (serve's driver) or `runGcOnce`'s own. */
export async function runGc(rt: DriverRuntime, config: Config, opts: GcRunOptions): Promise<GcRunReport> {
  const docker = await dockerView(opts.dockerHost, config.driverName);
  const report = await collectGarbage(rt, new IpCommand(), {
    dryRun: opts.dryRun,
    graceSeconds: opts.graceSeconds,
    docker: docker.view,
    ownsBridges: config.backend === 'embedded',
    owner: config.driverName,
    ...(config.backend === 'neutron'
      ? { onlyHost: config.driver.hostId, ovs: new OvsLeftovers(new OvsVsctl(), config.driverName) }
      : {}),
    // An engine named explicitly (--docker-host, DOCKER_HOST) is the one to trust; the default socket is
    // only trusted when it knows at least one of our networks.
    force: opts.force || opts.dockerHost !== undefined,
  });
  return docker.error === undefined ? report : { ...report, dockerError: docker.error };
}

/**
 * A runtime for one pass outside `serve` (the gc command, doctor's dry run): the process as `openProcess`
 * builds it, with Neutron's extensions asked once (without serve's long start-up retries).
 */
export async function openGcRuntime(
  config: Config,
  log: Logger,
): Promise<{ rt: DriverRuntime; close(): Promise<void> }> {
  const opened = await openProcess(config, log, { tagAttempts: 2 });
  return { rt: createRuntime(opened.deps), close: () => opened.close() };
}

/** One reconciliation pass with a process of its own (`kuryr gc`, and doctor's `--dry-run` of it). */
export async function runGcOnce(config: Config, log: Logger, opts: GcRunOptions): Promise<GcRunReport> {
  const { rt, close } = await openGcRuntime(config, log);
  try {
    return await runGc(rt, config, opts);
  } finally {
    await close();
  }
}
