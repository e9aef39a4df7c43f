/**
 * The `vlan` port driver: containers inside a Nova VM whose port is a trunk's parent. Each container's port
 * becomes a subport of the trunk with its own VLAN ID (segmentation.ts); the container's interface is the
 * 802.1Q child of `link_iface` with that ID and the subport's MAC. Subports may be on any network.
 */
import type { InterfaceNames } from '../../binding/binder.ts';
import type { Binder, BindRequest } from './binder.ts';
import type { ChildDevices } from '../../binding/child-device.ts';
import { BindingError, bindingErrorReasons } from '../../binding/errors.ts';
import { interfaceNames } from '../../binding/names.ts';
import { vlanSpec } from '../../binding/vlan.ts';
import type { NeutronApi } from '../../neutron/api.ts';
import type { NestedNeutronApi } from '../../neutron/nested-api.ts';
import type { Port } from '../../neutron/types.ts';
import { type LeftoverContext, ownedByNoEndpoint, type PortDriverLeftover } from './leftovers.ts';
import type { Subports } from './segmentation.ts';
import type { VmPort, VmPortFinder } from './vm-port.ts';

export class VlanPortDriver implements Binder {
  readonly #vm: VmPortFinder;
  readonly #neutron: Pick<NestedNeutronApi, 'listTrunks' | 'showTrunk'>;
  readonly #ports: Pick<NeutronApi, 'listPorts' | 'updatePort'>;
  readonly #subports: Subports;
  readonly #devices: ChildDevices;

  constructor(
    vm: VmPortFinder,
    neutron: Pick<NestedNeutronApi, 'listTrunks' | 'showTrunk'>,
    subports: Subports,
    devices: ChildDevices,
    ports: Pick<NeutronApi, 'listPorts' | 'updatePort'>,
  ) {
    this.#ports = ports;
    this.#vm = vm;
    this.#neutron = neutron;
    this.#subports = subports;
    this.#devices = devices;
  }

  async bind({ port, mtu }: BindRequest): Promise<InterfaceNames> {
    const names = interfaceNames(port.id);
    await this.#devices.parent(this.#vm.iface);
    const trunkId = await this.trunkOf(await this.#vm.find());
    // Neutron takes no subport with a device ID (PortInUse); the endpoint stays recorded in the port's tags.
    if (port.device_id !== '' && !(await this.#subports.isSubport(trunkId, port.id))) {
      await this.#ports.updatePort(port.id, { device_id: '' });
    }
    const segmentationId = await this.#subports.attach(trunkId, port.id);
    try {
      await this.#devices.create(
        vlanSpec(names.container, this.#vm.iface, port.mac_address.toLowerCase(), mtu, segmentationId),
      );
    } catch (err) {
      await this.#subports.detach(trunkId, port.id).catch(() => undefined);
      throw err;
    }
    return names;
  }

  async unbind(port: Port): Promise<void> {
    await this.#devices.remove(interfaceNames(port.id).container);
    const trunkId = await this.trunkOf(await this.#vm.find());
    await this.#subports.detach(trunkId, port.id);
  }

  /** Subports of ours whose endpoint is gone, or whose port no longer exists. */
  async leftovers(ctx: LeftoverContext): Promise<PortDriverLeftover[]> {
    const trunkId = await this.trunkOf(await this.#vm.find());
    const trunk = await this.#neutron.showTrunk(trunkId);
    if (trunk.sub_ports.length === 0) return [];
    const ports = new Map(
      (await this.#ports.listPorts({ id: trunk.sub_ports.map((s) => s.port_id) })).map((p) => [p.id, p]),
    );
    const out: PortDriverLeftover[] = [];
    for (const sub of trunk.sub_ports) {
      const port = ports.get(sub.port_id);
      if (port !== undefined && !ownedByNoEndpoint(port, ctx)) continue;
      out.push({
        kind: 'subport',
        id: sub.port_id,
        name: `${trunkId} VLAN ${sub.segmentation_id}`,
        reason: port === undefined ? 'its port no longer exists' : 'no endpoint owns its port',
        remove: () => this.#subports.detach(trunkId, sub.port_id),
      });
    }
    return out;
  }

  /** The trunk whose parent is the VM's port (`trunk_details`, else asked by parent port). */
  async trunkOf(vm: VmPort): Promise<string> {
    const fromDetails = vm.trunk_details?.trunk_id;
    if (typeof fromDetails === 'string' && fromDetails !== '') return fromDetails;
    const [trunk] = await this.#neutron.listTrunks({ port_id: vm.id });
    if (trunk === undefined) {
      throw new BindingError(
        bindingErrorReasons.portDriverRefused,
        `the VM's port ${vm.id} is not the parent of a trunk: the vlan port driver needs the VM booted on a trunk's parent port`,
      );
    }
    return trunk.id;
  }
}
