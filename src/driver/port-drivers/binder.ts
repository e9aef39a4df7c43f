/**
 * `Binder`: what the driver asks of a port driver, for one Neutron port, selected by the port's `binding:vnic_type`
 * (index.ts). The veth driver hands it to the binding layer as a `PlugRequest` (veth.ts); the nested and sriov
 * drivers do their Neutron and host work themselves.
 *
 * Idempotent: creating what exists reuses it; removing what is gone succeeds.
 */
import type { InterfaceNames } from '../../binding/binder.ts';
import type { Port } from '../../neutron/types.ts';

export interface BindRequest {
  port: Port;
  /** MTU of the Neutron network (1500 when the network has none). */
  mtu: number;
  /** vif type `bridge`: the network's bridge (default `brq<network[:11]>`). */
  bridge?: string;
  /** vif type `bridge`: false isolates the port from the bridge's other ports (Docker's `enable_icc=false`). */
  icc?: boolean;
}

export interface Binder {
  /**
   * Give the port its interface on the host: the veth driver a veth pair attached as the port's
   * `binding:vif_type` requires, the nested drivers a child device of the VM's NIC, sriov a VF. On failure
   * nothing is left behind.
   */
  bind(req: BindRequest): Promise<InterfaceNames>;
  /** Detach and delete the host interface of `port` (the peer goes with it). A missing device is not an error. */
  unbind(port: Port): Promise<void>;
  /**
   * The device Docker moves into the container, when it is not `interfaceNames(port.id).container` (an SR-IOV
   * VF keeps its own name).
   */
  containerInterface?(port: Port): Promise<string | undefined>;
  /**
   * The Neutron network of a Docker network created without `neutron.net.*` options, when the binding has one
   * (the nested port drivers: the VM port's network); undefined: a network is created.
   */
  defaultNetworkId?(): Promise<string | undefined>;
}
