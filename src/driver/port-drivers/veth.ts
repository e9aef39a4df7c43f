/**
 * The veth port driver: the binding layer's `VethBinder`, told what to plug. The Neutron port becomes a
 * `VifPort` here, so the binding layer never sees Neutron's types.
 */
import type { InterfaceNames, VifPort } from '../../binding/binder.ts';
import type { VethBinder } from '../../binding/veth-binder.ts';
import type { Port } from '../../neutron/types.ts';
import type { Binder, BindRequest } from './binder.ts';

/** What the host plumbing of `port` needs of it. */
export function vifPortOf(port: Port): VifPort {
  return {
    portId: port.id,
    endpointId: port.device_id, // CreateEndpoint sets it before binding
    networkId: port.network_id,
    projectId: port.project_id || port.tenant_id || '',
    mac: port.mac_address,
    vifType: port['binding:vif_type'] ?? '',
    vifDetails: port['binding:vif_details'] ?? {},
  };
}

/** Binds `normal` ports with a veth pair (`[binding] default_driver = veth`). */
export class VethPortDriver implements Binder {
  readonly #binder: VethBinder;

  constructor(binder: VethBinder) {
    this.#binder = binder;
  }

  bind({ port, mtu, bridge, icc }: BindRequest): Promise<InterfaceNames> {
    return this.#binder.bind({
      ...vifPortOf(port),
      mtu,
      ...(bridge === undefined ? {} : { bridge }),
      ...(icc === undefined ? {} : { icc }),
    });
  }

  unbind(port: Port): Promise<void> {
    return this.#binder.unbind(vifPortOf(port));
  }
}
