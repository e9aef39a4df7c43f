/**
 * The `sriov` port driver: ports with an SR-IOV `binding:vnic_type` (direct, macvtap, direct-physical). The
 * VF is the one Neutron's `binding:profile` names (`pci_slot`, e.g. `0000:03:10.1`); the container gets that VF's
 * network device, with the port's MAC set on it through its physical function. When the host has no such VF
 * the port is refused with the reason: a veth would carry none of the VF's traffic.
 */
import { readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { InterfaceNames } from '../../binding/binder.ts';
import type { Binder, BindRequest } from './binder.ts';
import { BindingError, bindingErrorReasons } from '../../binding/errors.ts';
import { IpCommand } from '../../binding/ip-command.ts';
import { validateInterfaceName } from '../../binding/names.ts';
import type { Port } from '../../neutron/types.ts';

/** vnic types whose ports are VFs. */
export const SRIOV_VNIC_TYPES: ReadonlySet<string> = new Set(['direct', 'macvtap', 'direct-physical']);

const PCI_ADDRESS = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i;

/** A VF as the host shows it. */
export interface VirtualFunction {
  pciSlot: string;
  /** The VF's network device. */
  netdev: string;
  /** The physical function's network device and the VF's index on it. */
  pf: string;
  index: number;
}

function refuse(message: string): BindingError {
  return new BindingError(bindingErrorReasons.portDriverRefused, message);
}

/** The port's VF PCI address from `binding:profile`, checked. */
export function pciSlotOf(port: Port): string {
  const slot = port['binding:profile']?.pci_slot;
  if (typeof slot !== 'string' || slot === '') {
    throw refuse(
      `port ${port.id} has binding:vnic_type=${port['binding:vnic_type']} but no binding:profile pci_slot: the VF must be chosen (by Nova, or set in binding:profile) before a container can use it`,
    );
  }
  if (!PCI_ADDRESS.test(slot))
    throw refuse(`port ${port.id}: binding:profile pci_slot ${JSON.stringify(slot)} is not a PCI address`);
  return slot.toLowerCase();
}

/** Reads VFs from sysfs (`/sys/bus/pci/devices/<slot>/net`, `physfn`, `virtfnN`). */
export class SysfsVfs {
  readonly #sys: string;

  constructor(sysRoot = '/sys') {
    this.#sys = sysRoot;
  }

  /** The VF at `pciSlot`, or a refusal saying what the host lacks. */
  async find(pciSlot: string, portId: string): Promise<VirtualFunction> {
    const dev = path.join(this.#sys, 'bus', 'pci', 'devices', pciSlot);
    const [netdev] = await readdir(path.join(dev, 'net')).catch(() => [] as string[]);
    if (netdev === undefined) {
      throw refuse(
        `the VF ${pciSlot} of port ${portId} (binding:profile pci_slot) has no network device on this host (${dev}/net): refusing the port; a veth would carry none of its traffic`,
      );
    }
    const physfn = path.join(dev, 'physfn');
    const [pf] = await readdir(path.join(physfn, 'net')).catch(() => [] as string[]);
    if (pf === undefined) throw refuse(`${pciSlot} of port ${portId} is not a VF on this host (no ${physfn}/net)`);
    const entries = await readdir(physfn);
    for (const entry of entries) {
      const m = /^virtfn(\d+)$/.exec(entry);
      if (m === null) continue;
      const target = await readlink(path.join(physfn, entry)).catch(() => '');
      if (path.basename(target) === pciSlot) {
        return { pciSlot, netdev: validateInterfaceName(netdev), pf: validateInterfaceName(pf), index: Number(m[1]) };
      }
    }
    throw refuse(`the PF ${pf} of ${pciSlot} (port ${portId}) does not list it among its VFs`);
  }
}

export class SriovPortDriver implements Binder {
  readonly #vfs: SysfsVfs;
  readonly #ip: IpCommand;

  constructor(options: { vfs?: SysfsVfs; ip?: IpCommand } = {}) {
    this.#vfs = options.vfs ?? new SysfsVfs();
    this.#ip = options.ip ?? new IpCommand();
  }

  async bind({ port }: BindRequest): Promise<InterfaceNames> {
    const vf = await this.#vfs.find(pciSlotOf(port), port.id);
    await this.#ip.run(['link', 'set', 'dev', vf.pf, 'vf', String(vf.index), 'mac', port.mac_address.toLowerCase()]);
    return { host: vf.netdev, container: vf.netdev };
  }

  /** Docker moves the VF back under its own name on Leave; nothing of ours is left on the host. */
  async unbind(_port: Port): Promise<void> {}

  /** The VF's network device: the name Docker moves into the container. */
  async containerInterface(port: Port): Promise<string> {
    return (await this.#vfs.find(pciSlotOf(port), port.id)).netdev;
  }
}
