/**
 * `kuryr gc [--dry-run] [--json] [--grace SECONDS] [--docker-host URL] [--force]`: removes what this plugin
 * created and nothing uses any more (see reconcile/gc.ts). Also run by `serve` at start-up.
 */
import { detectTagSupport, openBackend } from '../backend.ts';
import { IpCommand } from '../binding/ip-command.ts';
import { OvsVsctl } from '../binding/ovs.ts';
import { OvsLeftovers } from '../binding/ovs-leftovers.ts';
import { IptablesAccept } from '../binding/host-firewall.ts';
import { createPortBinder } from '../driver/port-drivers/index.ts';
import { LinuxBridgeAgent } from '../binding/linux-bridge-agent.ts';
import { NftIsolation } from '../binding/isolation.ts';
import { NftPublisher } from '../binding/publish.ts';
import type { Config } from '../config/config.ts';
import { DockerClient, type DockerEndpoints } from '../docker/client.ts';
import type { Logger } from '../driver/context.ts';
import { createRuntime, type DriverRuntime, errorMessage } from '../driver/context.ts';
import { collectGarbage, type GcReport } from '../reconcile/gc.ts';

export interface GcRunOptions {
  dryRun: boolean;
  graceSeconds: number;
  dockerHost: string | undefined;
  force: boolean;
}

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

/** One reconciliation pass with a runtime of the caller's (serve) or a fresh one (the gc command). */
export async function runGc(
  rt: DriverRuntime,
  config: Config,
  opts: GcRunOptions,
): Promise<GcReport & { dockerError?: string }> {
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

/** The `gc` command. */
export async function gcCommand(
  config: Config,
  log: Logger,
  opts: GcRunOptions,
): Promise<GcReport & { dockerError?: string }> {
  const backend = await openBackend(config);
  try {
    // Asked once, without the long start-up retries of `serve`.
    const tagSupport = await detectTagSupport(config, backend.neutron, log, 2);
    const rt = createRuntime({
      neutron: backend.neutron,
      tagSupport,
      binder: createPortBinder({
        settings: config.portDrivers,
        neutron: backend.bare,
        owner: config.driverName,
        portsTakeTags: tagSupport.tagExt,
        veth: { owner: config.driverName },
      }),
      ...(config.backend === 'embedded'
        ? {
            // As serve's: a leaked bridge goes with its nftables elements and iptables rules (reconcile/gc.ts).
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
    });
    return await runGc(rt, config, opts);
  } finally {
    await backend.close();
  }
}

/** Text rendering of a gc report. */
export function renderGc(report: GcReport & { dockerError?: string }): string {
  const lines: string[] = [];
  if (report.dockerError !== undefined) lines.push(`Docker not reachable: ${report.dockerError}`);
  if (report.dockerSkipped !== undefined && report.dockerError === undefined)
    lines.push(`Docker's view not used: ${report.dockerSkipped}`);
  if (report.actions.length === 0) lines.push('nothing to remove');
  for (const a of report.actions) {
    lines.push(
      `${a.result.padEnd(7)} ${a.kind.padEnd(14)} ${a.id}${a.name ? ` (${a.name})` : ''}: ${a.reason}${a.error ? ` — ${a.error}` : ''}`,
    );
  }
  return lines.join('\n');
}
