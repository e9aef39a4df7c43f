/**
 * The `nested` port driver: containers inside a Nova VM. Each container's port is on the VM port's network;
 * its addresses (with its MAC for macvlan, the VM's for ipvlan) go into the VM port's `allowed_address_pairs`
 * so the cloud's anti-spoofing lets them through; its interface is a macvlan or ipvlan child of `link_iface`.
 */
import type { InterfaceNames } from '../../binding/binder.ts';
import type { Binder, BindRequest } from './binder.ts';
import type { ChildDevices } from '../../binding/child-device.ts';
import { BindingError, bindingErrorReasons } from '../../binding/errors.ts';
import { macvlanSpec, type NestedBinding } from '../../binding/macvlan.ts';
import { interfaceNames } from '../../binding/names.ts';
import type { NeutronApi } from '../../neutron/api.ts';
import type { AllowedAddressPair, Port } from '../../neutron/types.ts';
import type { AddressPairs } from './address-pairs.ts';
import type { LeftoverContext, PortDriverLeftover } from './leftovers.ts';
import type { VmPort, VmPortFinder } from './vm-port.ts';

export class NestedPortDriver implements Binder {
  readonly #vm: VmPortFinder;
  readonly #pairs: AddressPairs;
  readonly #devices: ChildDevices;
  readonly #binding: NestedBinding;
  readonly #neutron: Pick<NeutronApi, 'listPorts'>;

  constructor(
    vm: VmPortFinder,
    pairs: AddressPairs,
    devices: ChildDevices,
    binding: NestedBinding,
    neutron: Pick<NeutronApi, 'listPorts'>,
  ) {
    this.#neutron = neutron;
    this.#vm = vm;
    this.#pairs = pairs;
    this.#devices = devices;
    this.#binding = binding;
  }

  async bind({ port, mtu }: BindRequest): Promise<InterfaceNames> {
    const names = interfaceNames(port.id);
    if (port.fixed_ips.length === 0) {
      throw new BindingError(bindingErrorReasons.portDriverRefused, `port ${port.id} has no fixed IP to allow`);
    }
    await this.#devices.parent(this.#vm.iface);
    const vm = await this.#vm.find();
    if (vm.network_id !== port.network_id) {
      throw new BindingError(
        bindingErrorReasons.portDriverRefused,
        `port ${port.id} is on network ${port.network_id}, the VM's port ${vm.id} on ${vm.network_id}: the nested driver serves only the VM port's network (the vlan driver serves others through a trunk)`,
      );
    }
    const pairs = this.pairsOf(port, vm);
    await this.#pairs.add(vm.id, pairs);
    try {
      await this.#devices.create(
        macvlanSpec(this.#binding, names.container, this.#vm.iface, port.mac_address.toLowerCase(), mtu),
      );
    } catch (err) {
      await this.#pairs.remove(vm.id, pairs).catch(() => undefined);
      throw err;
    }
    return names;
  }

  async unbind(port: Port): Promise<void> {
    await this.#devices.remove(interfaceNames(port.id).container);
    const vm = await this.#vm.find();
    await this.#pairs.remove(vm.id, this.pairsOf(port, vm));
  }

  /** Docker networks created without a network option use the VM port's network (the original's default). */
  async defaultNetworkId(): Promise<string> {
    return (await this.#vm.find()).network_id;
  }

  /** Pairs on the VM port for container ports that no longer exist (never a pair with the VM's own MAC). */
  async leftovers(_ctx: LeftoverContext): Promise<PortDriverLeftover[]> {
    const vm = await this.#vm.find();
    const ports = await this.#neutron.listPorts({ network_id: vm.network_id });
    const held = new Set(
      ports.flatMap((p) => p.fixed_ips.map((f) => `${f.ip_address} ${p.mac_address.toLowerCase()}`)),
    );
    return vm.allowed_address_pairs
      .filter((pair) => pair.mac_address.toLowerCase() !== vm.mac_address.toLowerCase())
      .filter((pair) => !held.has(`${pair.ip_address.replace(/\/(32|128)$/, '')} ${pair.mac_address.toLowerCase()}`))
      .map((pair) => ({
        kind: 'address-pair' as const,
        id: `${vm.id}:${pair.ip_address}`,
        name: pair.mac_address,
        reason: `no port holds ${pair.ip_address} with MAC ${pair.mac_address} any more`,
        remove: () => this.#pairs.remove(vm.id, [pair]),
      }));
  }

  /** The pairs a container port needs on the VM's port: its IPs with its MAC (macvlan) or the VM's (ipvlan). */
  pairsOf(port: Port, vm: VmPort): AllowedAddressPair[] {
    const mac = (this.#binding === 'macvlan' ? port.mac_address : vm.mac_address).toLowerCase();
    return port.fixed_ips.map((ip) => ({ ip_address: ip.ip_address, mac_address: mac }));
  }
}
