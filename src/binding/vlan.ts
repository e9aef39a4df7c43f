/**
 * kuryr-lib's `vlan` binding driver: the container's interface is an 802.1Q child of the VM's NIC with the
 * subport's segmentation ID and the subport's MAC. Needs the kernel's `8021q` module.
 */
import type { ChildDeviceSpec } from './child-device.ts';
import { BindingError, bindingErrorReasons } from './errors.ts';

/** The device for one container port, a subport with `segmentationId` (1-4094). */
export function vlanSpec(
  name: string,
  link: string,
  mac: string,
  mtu: number,
  segmentationId: number,
): ChildDeviceSpec {
  if (!Number.isInteger(segmentationId) || segmentationId < 1 || segmentationId > 4094) {
    throw new BindingError(bindingErrorReasons.invalidInput, `invalid VLAN ID ${segmentationId}: must be 1-4094`);
  }
  return {
    name,
    link,
    mac,
    mtu,
    kind: 'vlan',
    typeArgs: ['protocol', '802.1Q', 'id', String(segmentationId)],
  };
}
