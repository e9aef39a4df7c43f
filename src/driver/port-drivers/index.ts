/**
 * The port driver as a strategy chosen from the configuration (`[DEFAULT] default_port_driver`,
 * `enabled_port_drivers`, `[binding] default_driver`, `link_iface`): one `Binder` that hands each port to the
 * driver for its `binding:vnic_type`. `normal` ports go to the default driver (veth, nested or vlan); SR-IOV
 * ports go to the sriov driver, and are refused, never bound as a veth, when it is not enabled.
 */
import type { InterfaceNames } from '../../binding/binder.ts';
import type { Binder, BindRequest } from './binder.ts';
import { ChildDevices } from '../../binding/child-device.ts';
import { BindingError, bindingErrorReasons } from '../../binding/errors.ts';
import { IpCommand } from '../../binding/ip-command.ts';
import { VethBinder, type VethBinderOptions } from '../../binding/veth-binder.ts';
import type { PortDriverName, PortDriverSettings } from '../../config/port-drivers.ts';
import { fail } from '../../errors.ts';
import type { NeutronApi } from '../../neutron/api.ts';
import { nestedApiOf } from '../../neutron/nested-api.ts';
import type { Port } from '../../neutron/types.ts';
import { KeyedLock } from '../locks.ts';
import { AddressPairs } from './address-pairs.ts';
import { hasLeftoverFinder, type LeftoverContext, type PortDriverLeftover } from './leftovers.ts';
import { NestedPortDriver } from './nested.ts';
import { Subports } from './segmentation.ts';
import { SRIOV_VNIC_TYPES, SriovPortDriver, SysfsVfs } from './sriov.ts';
import { VethPortDriver } from './veth.ts';
import { VlanPortDriver } from './vlan.ts';
import { VmPortFinder } from './vm-port.ts';

/** Picks the driver of each port by its vnic type. */
export class PortDriverBinder implements Binder {
  readonly #default: Binder;
  readonly #defaultName: PortDriverName;
  readonly #sriov: Binder | undefined;

  constructor(defaultDriver: Binder, defaultName: PortDriverName, sriov: Binder | undefined) {
    this.#default = defaultDriver;
    this.#defaultName = defaultName;
    this.#sriov = sriov;
  }

  /** The driver that binds `port`, or a refusal naming what to enable. */
  driverFor(port: Port): Binder {
    const vnic = port['binding:vnic_type'] || 'normal';
    if (SRIOV_VNIC_TYPES.has(vnic)) {
      if (this.#sriov !== undefined) return this.#sriov;
      throw new BindingError(
        bindingErrorReasons.portDriverRefused,
        `port ${port.id} has binding:vnic_type=${vnic}: it is a VF, and the sriov port driver is not in [DEFAULT] enabled_port_drivers; refusing it rather than binding a veth its traffic would never reach`,
      );
    }
    if (vnic !== 'normal') {
      throw new BindingError(
        bindingErrorReasons.portDriverRefused,
        `port ${port.id} has binding:vnic_type=${vnic}, which no port driver of kuryr-ts binds (the ${this.#defaultName} driver takes normal ports, sriov takes ${[...SRIOV_VNIC_TYPES].join(', ')})`,
      );
    }
    return this.#default;
  }

  async bind(req: BindRequest): Promise<InterfaceNames> {
    return this.driverFor(req.port).bind(req);
  }

  async unbind(port: Port): Promise<void> {
    // A port refused at bind time was never bound: there is nothing to undo.
    let driver: Binder;
    try {
      driver = this.driverFor(port);
    } catch {
      return;
    }
    await driver.unbind(port);
  }

  async containerInterface(port: Port): Promise<string | undefined> {
    return this.driverFor(port).containerInterface?.(port);
  }

  async defaultNetworkId(): Promise<string | undefined> {
    return this.#default.defaultNetworkId?.();
  }

  async leftovers(ctx: LeftoverContext): Promise<PortDriverLeftover[]> {
    return hasLeftoverFinder(this.#default) ? this.#default.leftovers(ctx) : [];
  }
}

export interface PortBinderOptions {
  settings: PortDriverSettings;
  /** The backend's API: the nested drivers need the HTTP client's trunk and If-Match calls. */
  neutron: NeutronApi;
  veth: VethBinderOptions;
  /** Marks created devices as ours (`kuryr-ts:<owner>`). */
  owner: string;
  ip?: IpCommand;
  /** sysfs root for the sriov driver (tests). */
  sysRoot?: string;
  /** Ports take tags (`tag-ext`); default true. The vlan driver needs them (vlan.ts clears the device ID). */
  portsTakeTags?: boolean;
}

/** The host's MAC of an interface, by `ip link show` (answers for this process's network namespace). */
function macSource(ip: IpCommand) {
  return { macOf: async (iface: string) => (await ip.getLink(iface))?.address };
}

/** The `Binder` the configuration asks for. */
export function createPortBinder(options: PortBinderOptions): Binder {
  const { settings } = options;
  if (settings.default === 'veth' && !settings.enabled.includes('sriov')) {
    return new PortDriverBinder(new VethPortDriver(new VethBinder(options.veth)), 'veth', undefined);
  }
  const ip = options.ip ?? new IpCommand();
  const sriov = settings.enabled.includes('sriov')
    ? new SriovPortDriver({ ip, ...(options.sysRoot === undefined ? {} : { vfs: new SysfsVfs(options.sysRoot) }) })
    : undefined;
  return new PortDriverBinder(defaultDriver(options, ip), settings.default, sriov);
}

function defaultDriver(options: PortBinderOptions, ip: IpCommand): Binder {
  const { settings } = options;
  if (settings.default === 'veth') return new VethPortDriver(new VethBinder(options.veth));
  if (settings.default === 'sriov') return new SriovPortDriver({ ip });
  const nested = nestedApiOf(options.neutron);
  if (nested === undefined) {
    throw fail.config(`the ${settings.default} port driver needs a real Neutron (the neutron backend)`);
  }
  const locks = new KeyedLock();
  const vm = new VmPortFinder(options.neutron, macSource(ip), settings.linkIface);
  const devices = new ChildDevices({ ip, owner: options.owner });
  if (settings.default === 'vlan') {
    if (options.portsTakeTags === false) {
      throw fail.config(
        'the vlan port driver needs tags on ports (the standard-attr-tag extension): a subport has no device ID to find its endpoint by',
      );
    }
    return new VlanPortDriver(vm, nested, new Subports(nested, locks), devices, options.neutron);
  }
  const binding = settings.binding === 'ipvlan' ? 'ipvlan' : 'macvlan';
  const pairsApi = {
    showPort: (id: string) => options.neutron.showPort(id),
    updatePortIfRevision: nested.updatePortIfRevision.bind(nested),
  };
  return new NestedPortDriver(vm, new AddressPairs(pairsApi, locks), devices, binding, options.neutron);
}
