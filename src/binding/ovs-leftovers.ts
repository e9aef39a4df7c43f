/**
 * What a crashed `ovs` bind leaves on the host, for reconciliation (reconcile/gc.ts): the Open vSwitch interfaces
 * plugged with our marks (`external_ids:owner=kuryr`, `kuryr-ts-owner=<owner>` and an `iface-id`), and the hybrid plug's Linux devices
 * (`qbr…` bridge, `qvb…`/`qvo…` veth pair, named after the port's first 11 characters and carrying our owner
 * alias). Whether a Neutron port is still behind them is the caller's question.
 *
 * A host without Open vSwitch (no `ovs-vsctl`, or no `ovsdb-server` answering) has no OVS leftovers: the
 * snapshot is empty rather than an error, so gc keeps working on Linux bridge hosts.
 */
import { CommandError } from './exec.ts';
import { BindingError, bindingErrorReasons } from './errors.ts';
import { delPortArgs, OVS_INSTANCE_KEY, OVS_OWNER, type OvsVsctl } from './ovs.ts';

/** An OVS interface plugged by kuryr(-ts) for a Neutron port. */
export interface OwnOvsInterface {
  /** Interface (and port) name, `tap…` or `qvo…`. */
  name: string;
  /** `external_ids:iface-id`: the Neutron port ID. */
  portId: string;
}

/** `ovs-vsctl` arguments listing (JSON) name and external ids of the interfaces plugged by the instance `owner`. */
export function ownInterfacesArgs(owner: string): string[] {
  return [
    '--format=json',
    '--',
    '--columns=name,external_ids',
    'find',
    'Interface',
    `external_ids:owner=${OVS_OWNER}`,
    `external_ids:${OVS_INSTANCE_KEY}=${owner}`,
  ];
}

/** Parse `ownInterfacesArgs()` output; interfaces without an `iface-id` are not ours to judge and are left out. */
export function parseOwnInterfaces(stdout: string): OwnOvsInterface[] {
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    throw new BindingError(
      bindingErrorReasons.ovsCommand,
      `ovs-vsctl find printed invalid JSON: ${stdout.slice(0, 200)}`,
    );
  }
  const data = (json as { data?: unknown })?.data;
  if (!Array.isArray(data)) throw new BindingError(bindingErrorReasons.ovsCommand, 'ovs-vsctl find printed no data');
  const found: OwnOvsInterface[] = [];
  for (const row of data) {
    if (!Array.isArray(row) || typeof row[0] !== 'string') continue;
    const portId = ovsMap(row[1])['iface-id'];
    if (portId !== undefined && portId !== '') found.push({ name: row[0], portId });
  }
  return found;
}

/** An ovsdb `["map", [[key, value], ...]]` as an object (anything else: empty). */
function ovsMap(value: unknown): Record<string, string> {
  if (!Array.isArray(value) || value[0] !== 'map' || !Array.isArray(value[1])) return {};
  const out: Record<string, string> = {};
  for (const pair of value[1] as unknown[]) {
    if (Array.isArray(pair) && typeof pair[0] === 'string' && typeof pair[1] === 'string') out[pair[0]] = pair[1];
  }
  return out;
}

/** `ovs-vsctl` failed because there is no Open vSwitch here: not installed, or its database does not answer. */
function noOpenVswitch(err: unknown): boolean {
  if (!(err instanceof CommandError)) return false;
  if (err.startError === 'ENOENT') return true;
  return /database connection failed/i.test(err.stderr ?? '');
}

/**
 * Finds and removes the OVS interfaces of our binds: those plugged by this instance (`owner`, the same owner as
 * the devices' alias); kuryr's and other instances' interfaces are never looked at.
 */
export class OvsLeftovers {
  readonly #vsctl: OvsVsctl;
  readonly #owner: string;

  constructor(vsctl: OvsVsctl, owner: string) {
    this.#vsctl = vsctl;
    this.#owner = owner;
  }

  /**
   * Our interfaces now. Take it before listing the live Neutron ports: an interface seen here was plugged for a
   * port created earlier, so a port list taken afterwards includes it unless the port is really gone.
   */
  async snapshot(): Promise<OwnOvsInterface[]> {
    try {
      return parseOwnInterfaces(await this.#vsctl.run(ownInterfacesArgs(this.#owner)));
    } catch (err) {
      if (noOpenVswitch(err)) return [];
      throw err;
    }
  }

  /** Delete the interface's port from whichever bridge holds it (gone already: fine). */
  async remove(name: string): Promise<void> {
    await this.#vsctl.run(delPortArgs([name]));
  }
}

/**
 * The port-ID prefix (11 characters) of a hybrid plug device of ours, or undefined for anything else: `qbr…`
 * bridges and `qvb…` veths (deleting `qvb…` takes its peer `qvo…` with it, so `qvo…` is not reported).
 */
export function hybridPlugPortPrefix(kind: string | undefined, name: string): string | undefined {
  if (name.length !== 14) return undefined;
  if ((kind === 'bridge' && name.startsWith('qbr')) || (kind === 'veth' && name.startsWith('qvb'))) {
    return name.slice(3);
  }
  return undefined;
}
