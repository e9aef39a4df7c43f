/**
 * Errors of the binding layer. Every one carries the catalogue code `KURYR_ERR_BINDING` (src/errors.ts: a host
 * command failed, HTTP 500) and a finer, equally stable `reason`; the message may change, neither of those does.
 */

/** Catalogue code of every binding error. */
const BINDING_ERROR_CODE = 'KURYR_ERR_BINDING';

/** Stable reasons of binding errors. */
export const bindingErrorReasons = {
  /** `ip` failed, timed out or printed something unusable (`CommandError`). */
  ipCommand: 'ip-command',
  /** An ID or name from outside cannot be a Linux interface name (`InterfaceNameError`). */
  invalidInterfaceName: 'invalid-interface-name',
  /** A MAC, MTU or gateway address is not usable. */
  invalidInput: 'invalid-input',
  /** The port's `binding:vif_type` has no binding here. */
  vifTypeUnsupported: 'vif-type-unsupported',
  /** A device with our name exists but is not what we would have created (not ours to reuse or delete). */
  deviceConflict: 'device-conflict',
  /** A bind script (`<bindir>/<vif_type>`) failed, timed out or could not be run (`CommandError`). */
  bindScript: 'bind-script',
  /** `ovs-vsctl` failed, timed out or could not be run (`CommandError`). */
  ovsCommand: 'ovs-command',
  /** The port needs what no enabled port driver or this host provides (a VF, a trunk, the VM's port). */
  portDriverRefused: 'port-driver-refused',
} as const;

export type BindingErrorReason = (typeof bindingErrorReasons)[keyof typeof bindingErrorReasons];

/** Base class of every error the binding layer throws on purpose. */
export class BindingError extends Error {
  override readonly name: string = 'BindingError';
  readonly code = BINDING_ERROR_CODE;
  readonly reason: BindingErrorReason;

  constructor(reason: BindingErrorReason, message: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}
