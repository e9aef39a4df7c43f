/**
 * Open vSwitch as the tests see it (the OVN lab's ovsdb-server, found by a plain `ovs-vsctl`): which interface
 * carries a Neutron port and with which external ids, and which of them are left over.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function vsctl(args: readonly string[]): Promise<string> {
  const timeout = args.some((a) => a.startsWith('--timeout=')) ? [] : ['--timeout=10'];
  const { stdout } = await run('ovs-vsctl', [...timeout, ...args]);
  return stdout;
}

/** An OVS interface, its bridge and its `external_ids`. */
export interface OvsInterface {
  name: string;
  bridge: string;
  external_ids: Record<string, string>;
}

/** `["map", [[k, v], ...]]` (ovsdb JSON) as an object. */
function ovsMap(value: unknown): Record<string, string> {
  if (!Array.isArray(value) || value[0] !== 'map' || !Array.isArray(value[1])) return {};
  return Object.fromEntries((value[1] as [string, string][]).map(([k, v]) => [k, v]));
}

/** Every interface whose `external_ids` include all of `match`. */
export async function ovsInterfaces(match: Record<string, string>): Promise<OvsInterface[]> {
  const conditions = Object.entries(match).map(([k, v]) => `external_ids:${k}=${v}`);
  const out = JSON.parse(
    await vsctl(['--format=json', '--', '--columns=name,external_ids', 'find', 'Interface', ...conditions]),
  ) as { data: [string, unknown][] };
  const found: OvsInterface[] = [];
  for (const [name, ids] of out.data) {
    const bridge = (await vsctl(['port-to-br', name])).trim();
    found.push({ name, bridge, external_ids: ovsMap(ids) });
  }
  return found;
}

/** The one interface plugged for Neutron port `portId` (`external_ids:iface-id`); throws if not exactly one. */
export async function ovsInterfaceIds(portId: string): Promise<OvsInterface> {
  const found = await ovsInterfaces({ 'iface-id': portId });
  if (found.length !== 1) throw new Error(`expected one OVS interface with iface-id=${portId}, found ${found.length}`);
  return found[0]!;
}

/** Names of the ports on `bridge`. */
export async function ovsBridgePorts(bridge: string): Promise<string[]> {
  return (await vsctl(['list-ports', bridge])).split('\n').filter((l) => l !== '');
}

/** One column of an interface, as ovs-vsctl prints it (`ofport` → `3`, `error` → `[]` or `"..."`). */
export async function ovsInterfaceColumn(name: string, column: string): Promise<string> {
  return (await vsctl(['get', 'Interface', name, column])).trim();
}

/** Why the real Open vSwitch cannot be used here (`ovs-vsctl` missing, no database, no `bridge`), or false. */
export async function realOvsSkipReason(bridge = 'br-int'): Promise<string | false> {
  try {
    await vsctl(['--timeout=3', 'br-exists', bridge]);
    return false;
  } catch (err) {
    const e = err as { code?: unknown; stderr?: string };
    if (e.code === 'ENOENT') return 'Open vSwitch is not installed (ovs-vsctl not found)';
    if (e.code === 2) return `Open vSwitch has no ${bridge} (start the OVN lab: scripts/ovn/stack.sh)`;
    return `Open vSwitch does not answer: ${(e.stderr ?? String(err)).trim()} (start the OVN lab: scripts/ovn/stack.sh)`;
  }
}
