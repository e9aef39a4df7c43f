/**
 * The `ovs` vif type in-process: what kuryr's `ovs` bind script does, with `ovs-vsctl` argument arrays.
 *
 * - Plain: the host end `tap…` goes into the integration bridge (`binding:vif_details.bridge_name`, default
 *   `br-int`) with the external ids the Open vSwitch agent looks for (`iface-id`, `attached-mac`, ...).
 * - Hybrid (`vif_details.ovs_hybrid_plug: true`, the iptables firewall driver): `tap…` goes into a per-port
 *   Linux bridge `qbr<port[:11]>`, joined to the integration bridge by the veth pair `qvb…`/`qvo…`; `qvo…`
 *   carries the external ids.
 *
 * Unbinding finds the OVS interfaces of the port by `iface-id` + `owner=kuryr` (as kuryr's script does), so it
 * also cleans up after a bind whose vif details have changed since; a port with nothing left is not an error.
 */
import type { InterfaceNames, VifPort } from './binder.ts';
import { BRIDGE_ATTRIBUTES } from './bridge.ts';
import { CommandError, type CommandRunner, runCommand } from './exec.ts';
import { BindingError, bindingErrorReasons } from './errors.ts';
import { type IpCommand, isAlreadyExists } from './ip-command.ts';
import { validateInterfaceName } from './names.ts';

export const DEFAULT_OVS_BRIDGE = 'br-int';
/** `external_ids:owner` of the interfaces we add (kuryr's value: ports plugged by either are found alike). */
export const OVS_OWNER = 'kuryr';
/**
 * `external_ids` key naming the kuryr-ts instance that plugged an interface (its owner, as in the devices' alias
 * `kuryr-ts:<owner>`): reconciliation removes only interfaces carrying its own owner, never kuryr's or another
 * instance's.
 */
export const OVS_INSTANCE_KEY = 'kuryr-ts-owner';
/** Default time limit of one `ovs-vsctl` run. */
const DEFAULT_OVS_TIMEOUT_MS = 10_000;

export interface OvsVsctlOptions {
  /** Program to run; default `ovs-vsctl` (found on PATH). */
  binary?: string;
  /** Time limit of one run (passed on as `--timeout`, and the process is killed a second later); default 10 s. */
  timeoutMs?: number;
  /** Replaces the process runner (tests). */
  runner?: CommandRunner;
}

/** `ovs-vsctl` with a time limit. Stateless; safe to share. */
export class OvsVsctl {
  readonly binary: string;
  readonly #timeoutMs: number;
  readonly #runner: CommandRunner | undefined;

  constructor(options: OvsVsctlOptions = {}) {
    this.binary = options.binary ?? 'ovs-vsctl';
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_OVS_TIMEOUT_MS;
    this.#runner = options.runner;
  }

  /** Run `ovs-vsctl --timeout=<s> <args>`; resolves with its standard output. */
  async run(args: readonly string[]): Promise<string> {
    const seconds = Math.max(1, Math.ceil(this.#timeoutMs / 1000));
    const { stdout } = await runCommand(
      bindingErrorReasons.ovsCommand,
      this.binary,
      [`--timeout=${seconds}`, ...args],
      {
        // ovs-vsctl gives up by itself at --timeout (it waits for ovsdb-server forever otherwise); kill it if not.
        timeoutMs: seconds * 1000 + 1000,
        ...(this.#runner === undefined ? {} : { runner: this.#runner }),
      },
    );
    return stdout;
  }
}

/** Everything an `ovs` binding needs, checked before anything is created. */
export interface OvsPlan {
  /** The integration bridge. */
  bridge: string;
  hybrid: boolean;
  portId: string;
  /** Lower case. */
  mac: string;
  /** The Docker endpoint ID (the port's `device_id`), recorded as `vm-uuid`. */
  endpointId: string;
  /** The host end `tap…`. */
  host: string;
  /** Hybrid plug devices `qbr…`, `qvb…`, `qvo…` (named for every plan; used when `hybrid`). */
  linuxBridge: string;
  bridgeEnd: string;
  ovsEnd: string;
}

/** Values that go into `external_ids:key=value` must not be able to change how ovs-vsctl parses them. */
const OVS_ATOM = /^[A-Za-z0-9_.:-]*$/;

/** The plan for `port` (vif type `ovs`); `BindingError` (`invalid-input`) for values unfit for ovs-vsctl. */
export function ovsPlan(port: VifPort, names: InterfaceNames, mac: string): OvsPlan {
  const details = port.vifDetails;
  const bridgeName = details.bridge_name;
  let bridge = DEFAULT_OVS_BRIDGE;
  if (bridgeName !== undefined && bridgeName !== null && bridgeName !== '') {
    if (typeof bridgeName !== 'string') throw invalid(`binding:vif_details.bridge_name ${JSON.stringify(bridgeName)}`);
    bridge = validateInterfaceName(bridgeName);
  }
  for (const [what, value] of [
    ['port ID', port.portId],
    ['device_id (endpoint ID)', port.endpointId],
    ['MAC address', mac],
  ] as const) {
    if (typeof value !== 'string' || !OVS_ATOM.test(value)) throw invalid(`${what} ${JSON.stringify(value)}`);
  }
  const suffix = names.host.slice(3); // the validated first 11 characters of the port ID
  return {
    bridge,
    hybrid: details.ovs_hybrid_plug === true,
    portId: port.portId,
    mac,
    endpointId: port.endpointId,
    host: names.host,
    linuxBridge: validateInterfaceName(`qbr${suffix}`),
    bridgeEnd: validateInterfaceName(`qvb${suffix}`),
    ovsEnd: validateInterfaceName(`qvo${suffix}`),
  };
}

function invalid(what: string): BindingError {
  return new BindingError(bindingErrorReasons.invalidInput, `vif_type(ovs): invalid ${what}`);
}

/**
 * `ovs-vsctl` arguments that add `device` to the plan's bridge with the port's external ids (idempotent); with
 * `owner`, also `kuryr-ts-owner=<owner>`.
 */
export function addPortArgs(plan: OvsPlan, device: string, owner?: string): string[] {
  if (owner !== undefined && !OVS_ATOM.test(owner)) throw invalid(`owner ${JSON.stringify(owner)}`);
  return [
    '--',
    '--may-exist',
    'add-port',
    plan.bridge,
    device,
    '--',
    'set',
    'Interface',
    device,
    `external_ids:attached-mac=${plan.mac}`,
    `external_ids:iface-id=${plan.portId}`,
    `external_ids:vm-uuid=${plan.endpointId}`,
    'external_ids:iface-status=active',
    `external_ids:owner=${OVS_OWNER}`,
    ...(owner === undefined ? [] : [`external_ids:${OVS_INSTANCE_KEY}=${owner}`]),
  ];
}

/** `ovs-vsctl` arguments that list (as JSON) the names of the interfaces plugged for `portId` by kuryr. */
export function findPortArgs(portId: string): string[] {
  return [
    '--format=json',
    '--',
    '--columns=name',
    'find',
    'Interface',
    `external_ids:iface-id=${portId}`,
    `external_ids:owner=${OVS_OWNER}`,
  ];
}

/** `ovs-vsctl` arguments that delete these ports from whichever bridge holds them; missing ones are fine. */
export function delPortArgs(ports: readonly string[]): string[] {
  return ports.flatMap((p) => ['--', '--if-exists', 'del-port', p]);
}

/** The interface names of `ovs-vsctl --format=json --columns=name find ...` output. */
export function parseFoundNames(stdout: string): string[] {
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
  return data.map((row) => {
    const name = Array.isArray(row) ? row[0] : undefined;
    if (typeof name !== 'string') {
      throw new BindingError(bindingErrorReasons.ovsCommand, `ovs-vsctl find printed a row without a name`);
    }
    return validateInterfaceName(name);
  });
}

type UndoStep = () => Promise<void>;

export interface OvsBindingOptions {
  ip: IpCommand;
  vsctl: OvsVsctl;
  /** `['alias', 'kuryr-ts:<owner>']` or `[]`: set on the Linux devices created for the hybrid plug. */
  alias: readonly string[];
  /** The plugin instance (`kuryr-ts-owner` external id of the interfaces it plugs). */
  owner?: string;
}

/** Plugs and unplugs the host end of `ovs` ports. */
export class OvsBinding {
  readonly #ip: IpCommand;
  readonly #vsctl: OvsVsctl;
  readonly #alias: readonly string[];
  readonly #owner: string | undefined;

  constructor(options: OvsBindingOptions) {
    this.#ip = options.ip;
    this.#vsctl = options.vsctl;
    this.#alias = options.alias;
    this.#owner = options.owner;
  }

  /** Attach the (existing, up) host end as the plan says; `undo` gets a step for everything created. */
  async plug(plan: OvsPlan, mtu: number, undo: UndoStep[]): Promise<void> {
    let device = plan.host;
    if (plan.hybrid) {
      await this.#plugLinuxSide(plan, mtu, undo);
      device = plan.ovsEnd;
    }
    await this.#vsctl.run(addPortArgs(plan, device, this.#owner));
    undo.push(async () => {
      await this.#vsctl.run(delPortArgs([device]));
    });
  }

  /**
   * Remove the port's OVS interfaces (found by `iface-id` and `owner`), then the hybrid plug's `qvb…`/`qvo…`
   * pair and `qbr…` bridge if present. The host end itself is the caller's.
   */
  async unplug(plan: Pick<OvsPlan, 'portId' | 'linuxBridge' | 'bridgeEnd'>): Promise<void> {
    let found: string;
    try {
      found = await this.#vsctl.run(findPortArgs(plan.portId));
    } catch (err) {
      // No ovs-vsctl on this host: no OVS port can be ours here (a leftover port bound elsewhere).
      if (!(err instanceof CommandError && err.startError === 'ENOENT')) throw err;
      found = '{"data":[]}';
    }
    const names = parseFoundNames(found);
    if (names.length > 0) await this.#vsctl.run(delPortArgs(names));
    const pair = await this.#ip.getLink(plan.bridgeEnd);
    if (pair?.kind === 'veth') await this.#ip.deleteLink(plan.bridgeEnd); // takes qvo… with it
    const bridge = await this.#ip.getLink(plan.linuxBridge);
    if (bridge?.kind === 'bridge') await this.#ip.deleteLink(plan.linuxBridge);
  }

  /** kuryr's hybrid plug: `qbr…` (forward delay 0, STP off) holding `tap…` and `qvb…`; `qvo…` for OVS. */
  async #plugLinuxSide(plan: OvsPlan, mtu: number, undo: UndoStep[]): Promise<void> {
    const ip = this.#ip;
    const qbr = plan.linuxBridge;
    const existing = await ip.getLink(qbr);
    if (existing === undefined) {
      try {
        await ip.run(['link', 'add', 'name', qbr, 'type', 'bridge', ...BRIDGE_ATTRIBUTES]);
        undo.push(async () => {
          await ip.deleteLink(qbr);
        });
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        assertKind(qbr, (await ip.getLink(qbr))?.kind, 'bridge', 'a Linux bridge');
      }
    } else {
      assertKind(qbr, existing.kind, 'bridge', 'a Linux bridge');
    }
    await ip.run(['link', 'set', 'dev', qbr, ...this.#alias, 'up']);
    await ip.run(['link', 'set', 'dev', plan.host, 'master', qbr]);

    const qvb = plan.bridgeEnd;
    const qvo = plan.ovsEnd;
    const pair = await ip.getLink(qvb);
    if (pair === undefined) {
      try {
        await ip.run(['link', 'add', 'dev', qvb, 'type', 'veth', 'peer', 'name', qvo]);
        undo.push(async () => {
          await ip.deleteLink(qvb);
        });
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        const raced = await ip.getLink(qvb);
        assertKind(qvb, raced?.peer === qvo ? raced.kind : undefined, 'veth', `the veth peer of ${qvo}`);
      }
    } else {
      assertKind(qvb, pair.peer === qvo ? pair.kind : undefined, 'veth', `the veth peer of ${qvo}`);
    }
    const mtuArgs = ['mtu', String(mtu)];
    await ip.run(['link', 'set', 'dev', qvb, ...mtuArgs, 'master', qbr, ...this.#alias, 'up']);
    await ip.run(['link', 'set', 'dev', qvo, ...mtuArgs, ...this.#alias, 'up']);
  }
}

function assertKind(name: string, kind: string | undefined, expected: string, what: string): void {
  if (kind !== expected) {
    throw new BindingError(
      bindingErrorReasons.deviceConflict,
      `device ${name} exists but is not ${what}; refusing to reuse it`,
    );
  }
}
