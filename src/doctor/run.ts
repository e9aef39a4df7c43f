/**
 * `kuryr doctor`: runs every check in a fixed order (later checks use what earlier ones found), and renders
 * the verdicts as text or JSON. The report is `ok` when no check failed; warnings and skips do not count.
 */
import { existsSync } from 'node:fs';
import { embeddedStorePath, type OpenBackend, openBackend } from '../app.ts';
import type { Config } from '../config/config.ts';
import type { CommonFlags } from '../config/load.ts';
import { checkDefaultPools, checkEmbeddedStore, checkStateDir } from './backend.ts';
import { checkConfig } from './config.ts';
import { checkDockerEngine, DEFAULT_DOCKER_HOST } from './docker.ts';
import { checkForwarding, checkKernel, checkTools } from './host.ts';
import { checkLeftovers } from './leftovers.ts';
import { checkPortDriverKernel } from './port-drivers.ts';
import { checkNeutron, skipNeutron } from './neutron.ts';
import { checkOvs, type OvsPortFacts, ovsPortFacts } from './ovs.ts';
import { checkPluginName, checkPluginSocket } from './plugin.ts';
import {
  type CheckResult,
  type CheckStatus,
  type DoctorPaths,
  failed,
  messageOf,
  SYSTEM_PATHS,
  skip,
} from './types.ts';

/** Every check, in the order the report lists them (docs/troubleshooting.md documents each). */
export const CHECK_IDS = [
  'config',
  'docker.engine',
  'plugin.socket',
  'plugin.name',
  'state-dir',
  'backend.store',
  'backend.pools',
  'neutron.reachable',
  'neutron.auth',
  'neutron.extensions',
  'tools.ip',
  'tools.nft',
  'tools.ovs-vsctl',
  'ovs.bridge',
  'kernel.bridge',
  'kernel.veth',
  'kernel.vxlan',
  'kernel.macvlan',
  'host.ip_forward',
  'host.forward_policy',
  'host.br_netfilter',
  'host.route_localnet',
  'kernel.port-driver',
  'leftovers',
] as const;

export interface DoctorOptions {
  flags: CommonFlags;
  env?: NodeJS.ProcessEnv;
  /** Docker's plugin directories and /sys/module (tests point them elsewhere). */
  paths?: DoctorPaths;
  /** The `ip` binary. */
  ip?: string;
}

export interface DoctorReport {
  /** No check failed. */
  ok: boolean;
  counts: Record<CheckStatus, number>;
  checks: CheckResult[];
}

export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const env = options.env ?? process.env;
  const paths = options.paths ?? SYSTEM_PATHS;
  const ip = options.ip ?? 'ip';
  const checks: CheckResult[] = [];

  const { result, config } = checkConfig(options.flags, env);
  checks.push(result);
  const dockerHost = config?.dockerHost ?? options.flags.dockerHost ?? (env.DOCKER_HOST || DEFAULT_DOCKER_HOST);
  const engine = await checkDockerEngine(dockerHost);
  checks.push(engine.result);

  let ovsPorts: OvsPortFacts | undefined;
  if (config === null) {
    const why = 'not checked: the configuration did not load';
    for (const id of ['plugin.socket', 'plugin.name', 'state-dir', 'backend.store', 'backend.pools'])
      checks.push(skip(id, why));
    checks.push(...skipNeutron(why));
  } else {
    checks.push(await checkPluginSocket(config, paths, engine.managedPlugins));
    checks.push(checkPluginName(config, paths, engine.managedPlugins));
    checks.push(checkStateDir(config));
    const backend = await backendChecks(config);
    checks.push(...backend.results);
    ovsPorts = backend.ovsPorts;
  }
  checks.push(...(await checkTools(config, ip)));
  checks.push(await checkOvs(config, ovsPorts, { sysModule: paths.sysModule }));
  checks.push(...(await checkKernel(config, paths, ip)));
  checks.push(...(await checkForwarding(config)));
  checks.push(await checkPortDriverKernel(config, paths, ip));
  checks.push(await leftoversCheck(config, checks));

  const counts: Record<CheckStatus, number> = { ok: 0, warn: 0, fail: 0, skip: 0 };
  for (const c of checks) counts[c.status]++;
  return { ok: counts.fail === 0, counts, checks };
}

/**
 * `backend.store`, `backend.pools` and the `neutron.*` checks, by backend; with Neutron also what it says about
 * this host's `ovs` ports (for `ovs.bridge`), when it could be asked.
 */
async function backendChecks(config: Config): Promise<{ results: CheckResult[]; ovsPorts?: OvsPortFacts }> {
  if (config.backend === 'embedded') {
    const store = checkEmbeddedStore(config);
    const pools =
      store.status === 'ok'
        ? await withBackend(config, (api) => checkDefaultPools(config, api))
        : skip('backend.pools', 'not checked: no usable store');
    return { results: [store, pools, ...skipNeutron('not used: the backend is embedded')] };
  }
  const results: CheckResult[] = [skip('backend.store', 'embedded backend only')];
  let opened: OpenBackend;
  try {
    opened = await openBackend(config);
  } catch (err) {
    return {
      results: [
        ...results,
        skip('backend.pools', 'not checked: no Neutron client'),
        failed('neutron.reachable', messageOf(err), 'fix the [neutron] options named above (docs/configuration.md)'),
        skip('neutron.auth', 'not checked: no Neutron client'),
        skip('neutron.extensions', 'not checked: no Neutron client'),
      ],
    };
  }
  try {
    const neutron = await checkNeutron(opened.neutron);
    const usable = neutron.every((c) => c.status !== 'fail' && c.status !== 'skip');
    const pools = usable
      ? await checkDefaultPools(config, opened.neutron)
      : skip('backend.pools', 'not checked: Neutron is not usable');
    let ovsPorts: OvsPortFacts | undefined;
    if (usable) {
      ovsPorts = await opened.neutron
        .listPorts({ 'binding:host_id': config.driver.hostId, fields: ['binding:vif_type', 'binding:vif_details'] })
        .then(ovsPortFacts, () => undefined);
    }
    return { results: [...results, pools, ...neutron], ...(ovsPorts === undefined ? {} : { ovsPorts }) };
  } finally {
    await opened.close();
  }
}

async function withBackend(
  config: Config,
  fn: (api: Awaited<ReturnType<typeof openBackend>>['neutron']) => Promise<CheckResult>,
): Promise<CheckResult> {
  const opened = await openBackend(config);
  try {
    return await fn(opened.neutron);
  } finally {
    await opened.close();
  }
}

/** `leftovers`, when the backend can be read. */
async function leftoversCheck(config: Config | null, earlier: readonly CheckResult[]): Promise<CheckResult> {
  if (config === null) return skip('leftovers', 'not checked: the configuration did not load');
  if (config.backend === 'embedded' && !existsSync(embeddedStorePath(config.stateDir))) {
    return skip('leftovers', 'no store yet');
  }
  const blocking = earlier.find(
    (c) => (c.id === 'backend.store' || c.id === 'neutron.reachable' || c.id === 'neutron.auth') && c.status === 'fail',
  );
  if (blocking !== undefined) return skip('leftovers', `not checked: ${blocking.id} failed`);
  if (config.backend === 'neutron' && earlier.some((c) => c.id === 'neutron.reachable' && c.status === 'skip')) {
    return skip('leftovers', 'not checked: no Neutron client');
  }
  return checkLeftovers(config);
}

const LABEL: Record<CheckStatus, string> = { ok: 'ok', warn: 'WARN', fail: 'FAIL', skip: 'skip' };

/** Text rendering: one line per check, its hint under it, a count at the end. */
export function renderDoctor(report: DoctorReport, color = false): string {
  const paint = (status: CheckStatus, text: string) => {
    if (!color) return text;
    const code = { ok: 32, warn: 33, fail: 31, skip: 90 }[status];
    return `\u001b[${code}m${text}\u001b[0m`;
  };
  const width = Math.max(...report.checks.map((c) => c.id.length));
  const lines: string[] = [];
  for (const c of report.checks) {
    lines.push(`${paint(c.status, LABEL[c.status].padEnd(4))}  ${c.id.padEnd(width)}  ${c.summary}`);
    if (c.hint !== null && c.status !== 'ok') lines.push(`${' '.repeat(width + 6)}  → ${c.hint}`);
  }
  const { ok, warn, fail, skip: skipped } = report.counts;
  lines.push('');
  lines.push(
    `${report.checks.length} checks: ${ok} ok, ${warn} warn, ${fail} fail, ${skipped} skipped${report.ok ? '' : ' — kuryr doctor exits 1'}`,
  );
  return lines.join('\n');
}
