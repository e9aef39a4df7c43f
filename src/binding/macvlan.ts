/**
 * kuryr-lib's `macvlan` and `ipvlan` binding drivers: the container's interface is a macvlan (its own MAC, the
 * Neutron port's) or an ipvlan (the parent's MAC) child of the VM's NIC, in bridge mode (macvlan) or L2 mode
 * (ipvlan), as kuryr-lib creates them.
 */
import type { ChildDeviceSpec } from './child-device.ts';

export type NestedBinding = 'macvlan' | 'ipvlan';

/** The device for one container port. */
export function macvlanSpec(
  binding: NestedBinding,
  name: string,
  link: string,
  mac: string,
  mtu: number,
): ChildDeviceSpec {
  return binding === 'macvlan'
    ? { name, link, mac, mtu, kind: 'macvlan', typeArgs: ['mode', 'bridge'] }
    : { name, link, mac: undefined, mtu, kind: 'ipvlan', typeArgs: ['mode', 'l2'] };
}
