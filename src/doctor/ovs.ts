/**
 * `ovs.bridge`: with the Neutron backend, whether Open vSwitch can take this host's `ovs` ports — `ovsdb-server`
 * answers `ovs-vsctl`, `ovs-vswitchd` answers `ovs-appctl`, the integration bridge exists, and its datapath can
 * work here (the kernel datapath needs the `openvswitch` module; without it, the userspace `netdev` one).
 *
 * The vif type is Neutron's choice, so the check first finds out whether this host needs Open vSwitch: it does
 * when Neutron has ports bound to it with `binding:vif_type` `ovs` (their `vif_details.bridge_name`, default
 * `br-int`), or when Open vSwitch here is configured as an OVN chassis (`external_ids:ovn-remote`: ML2/OVN binds
 * the host's ports with vif type `ovs` into `external_ids:ovn-bridge`, default `br-int`). Then a problem is a
 * `fail`; otherwise the check only reports (`skip`, or `warn` for an Open vSwitch that is installed but broken).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_OVS_BRIDGE } from '../binding/ovs.ts';
import type { Config } from '../config/config.ts';
import { runTool } from './host.ts';
import { type CheckResult, failed, ok, skip, warn } from './types.ts';

const ID = 'ovs.bridge';

/** What Neutron says about this host's `ovs` ports: how many, and the bridges their vif details name. */
export interface OvsPortFacts {
  count: number;
  bridges: string[];
}

export interface OvsCheckDeps {
  /** Runs a program (argument array); `runTool` of host.ts by default. */
  run?: typeof runTool;
  /** Where loaded kernel modules show up (`/sys/module`). */
  sysModule?: string;
}

/**
 * Bridges named by ports of vif type `ovs` (from `GET /v2.0/ports?binding:host_id=<host>`).
 * `ports` are the host's ports with at least `binding:vif_type` and `binding:vif_details`.
 */
export function ovsPortFacts(
  ports: readonly { 'binding:vif_type'?: string; 'binding:vif_details'?: Record<string, unknown> | null }[],
): OvsPortFacts {
  const ovs = ports.filter((p) => p['binding:vif_type'] === 'ovs');
  const bridges = new Set<string>();
  for (const p of ovs) {
    const name = p['binding:vif_details']?.bridge_name;
    bridges.add(typeof name === 'string' && name !== '' ? name : DEFAULT_OVS_BRIDGE);
  }
  return { count: ovs.length, bridges: [...bridges].sort() };
}

const INSTALL_HINT =
  'install and start Open vSwitch (apt-get install openvswitch-switch; with ML2/OVN also ovn-host for ovn-controller)';

/** `ovs.bridge`. `ports`: undefined when Neutron could not be asked. */
export async function checkOvs(
  config: Config | null,
  ports: OvsPortFacts | undefined,
  deps: OvsCheckDeps = {},
): Promise<CheckResult> {
  if (config?.backend !== 'neutron') {
    return skip(ID, 'not needed: the embedded backend plugs containers into Linux bridges');
  }
  const run = deps.run ?? runTool;
  const sysModule = deps.sysModule ?? '/sys/module';
  const byPorts = ports !== undefined && ports.count > 0;
  const portsNote = byPorts ? `${ports.count} port(s) of this host have vif_type ovs` : undefined;

  const version = await run('ovs-vsctl', ['--version']);
  if (version.code === null) {
    if (byPorts) return failed(ID, `${portsNote}, but ovs-vsctl (Open vSwitch) is not installed`, INSTALL_HINT);
    return skip(
      ID,
      `Open vSwitch not installed; no port of this host has vif_type ovs${ports === undefined ? ' (Neutron not asked)' : ''}`,
    );
  }
  const sys = await run('ovs-vsctl', [
    '--timeout=5',
    '--format=json',
    '--',
    '--columns=external_ids',
    'list',
    'Open_vSwitch',
    '.',
  ]);
  if (sys.code !== 0) {
    const summary = `ovs-vsctl cannot reach ovsdb-server: ${firstLine(sys.stderr)}`;
    const hint = 'start Open vSwitch (ovsdb-server and ovs-vswitchd)';
    return byPorts ? failed(ID, `${portsNote}; ${summary}`, hint) : warn(ID, summary, hint);
  }
  const ids = externalIds(sys.stdout);
  const chassis = ids['ovn-remote'] !== undefined ? (ids['system-id'] ?? ids.hostname ?? '?') : undefined;
  const bridges = new Set(ports?.bridges ?? []);
  if (chassis !== undefined) bridges.add(ids['ovn-bridge'] || DEFAULT_OVS_BRIDGE);
  const needed = byPorts || chassis !== undefined;
  const why = [chassis === undefined ? undefined : `OVN chassis ${chassis}`, portsNote].filter(Boolean).join(', ');
  if (!needed) {
    return skip(ID, 'no port of this host has vif_type ovs and Open vSwitch is not an OVN chassis here');
  }

  const vswitchd = await run('ovs-appctl', ['--timeout=5', '-t', 'ovs-vswitchd', 'version']);
  if (vswitchd.code !== 0) {
    return failed(
      ID,
      `${why}; ovs-vswitchd does not answer (${firstLine(vswitchd.stderr)}): ports cannot be plugged`,
      'start ovs-vswitchd',
    );
  }
  const details: string[] = [];
  for (const bridge of [...bridges].sort()) {
    const exists = await run('ovs-vsctl', ['--timeout=5', 'br-exists', bridge]);
    if (exists.code === 2) {
      return failed(
        ID,
        `${why}; bridge ${bridge} does not exist`,
        chassis !== undefined
          ? `ovn-controller creates ${bridge} (external_ids:ovn-bridge); is it running? Without the openvswitch kernel module set external_ids:ovn-bridge-datapath-type=netdev`
          : `create it (ovs-vsctl add-br ${bridge}) or start the Open vSwitch agent`,
      );
    }
    if (exists.code !== 0)
      return failed(ID, `${why}; ovs-vsctl br-exists ${bridge}: ${firstLine(exists.stderr)}`, null);
    const dp = await run('ovs-vsctl', ['--timeout=5', 'get', 'Bridge', bridge, 'datapath_type']);
    const datapath = dp.code === 0 ? dp.stdout.trim().replace(/^"|"$/g, '') : '';
    const kernel = datapath === '' || datapath === 'system';
    if (kernel && !existsSync(path.join(sysModule, 'openvswitch'))) {
      return failed(
        ID,
        `${why}; ${bridge} uses the kernel datapath, but the openvswitch module is not loaded`,
        'modprobe openvswitch, or use the userspace datapath (datapath_type=netdev; with OVN: external_ids:ovn-bridge-datapath-type=netdev)',
      );
    }
    details.push(`${bridge} (datapath ${kernel ? 'system' : datapath})`);
  }
  return ok(ID, `${why}: ${details.join(', ')} present; ovs-vswitchd answers (${firstLine(vswitchd.stdout)})`);
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.trim() ?? '';
}

/** `external_ids` of `ovs-vsctl --format=json --columns=external_ids list Open_vSwitch .`. */
function externalIds(stdout: string): Record<string, string> {
  try {
    const row = (JSON.parse(stdout) as { data?: unknown[][] }).data?.[0];
    const map = row?.[0];
    if (!Array.isArray(map) || map[0] !== 'map' || !Array.isArray(map[1])) return {};
    const out: Record<string, string> = {};
    for (const pair of map[1] as unknown[]) {
      if (Array.isArray(pair) && typeof pair[0] === 'string' && typeof pair[1] === 'string') out[pair[0]] = pair[1];
    }
    return out;
  } catch {
    return {};
  }
}
