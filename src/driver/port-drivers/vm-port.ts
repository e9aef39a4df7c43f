/**
 * The VM's own Neutron port, found as the original finds it: the port whose `mac_address` is the MAC of
 * `[binding] link_iface`. The MAC is asked of `ip` (netlink), which answers for this process's network namespace.
 */
import { BindingError, bindingErrorReasons } from '../../binding/errors.ts';
import type { NeutronApi } from '../../neutron/api.ts';
import type { Port } from '../../neutron/types.ts';

/** A port with the `trunk-details` extension's attribute (on a trunk's parent port). */
export type VmPort = Port & { trunk_details?: { trunk_id?: string } | null };

/** Where the MAC of the VM's interface comes from (`ip link show`). */
export interface LinkMacSource {
  macOf(iface: string): Promise<string | undefined>;
}

/** Finds the VM's port each time it is asked (its pairs and revision change under us; nothing is cached). */
export class VmPortFinder {
  readonly #neutron: Pick<NeutronApi, 'listPorts'>;
  readonly #links: LinkMacSource;
  readonly #iface: string;

  constructor(neutron: Pick<NeutronApi, 'listPorts'>, links: LinkMacSource, iface: string) {
    this.#neutron = neutron;
    this.#links = links;
    this.#iface = iface;
  }

  get iface(): string {
    return this.#iface;
  }

  async find(): Promise<VmPort> {
    const mac = await this.#links.macOf(this.#iface);
    if (mac === undefined) {
      throw new BindingError(
        bindingErrorReasons.portDriverRefused,
        `[binding] link_iface ${this.#iface} does not exist here: the VM's port cannot be found`,
      );
    }
    const ports = (await this.#neutron.listPorts({ mac_address: mac })) as VmPort[];
    if (ports.length !== 1) {
      throw new BindingError(
        bindingErrorReasons.portDriverRefused,
        ports.length === 0
          ? `no Neutron port has the MAC ${mac} of ${this.#iface}: is this the VM's interface, and may this user see the VM's port?`
          : `${ports.length} Neutron ports have the MAC ${mac} of ${this.#iface} (${ports.map((p) => p.id).join(', ')}): cannot tell the VM's port`,
      );
    }
    return ports[0] as VmPort;
  }
}
