/**
 * Interface names derived from Neutron IDs (kuryr's naming). The IDs come from outside (Docker, Neutron),
 * so every ID and every resulting name is checked against a strict allow-list before it reaches `ip`.
 */
import type { InterfaceNames } from './binder.ts';
import { BindingError, bindingErrorReasons } from './errors.ts';

/** An ID or interface name that cannot safely become a Linux interface name. */
export class InterfaceNameError extends BindingError {
  override readonly name = 'InterfaceNameError';

  constructor(message: string) {
    super(bindingErrorReasons.invalidInterfaceName, message);
  }
}

/**
 * Linux accepts 1–15 bytes without '/', ':' or whitespace (and not `.`/`..`). We accept a strict subset:
 * letters, digits, '_', '.', '-'.
 */
const INTERFACE_NAME = /^[A-Za-z0-9_.-]{1,15}$/;
/** Neutron IDs are UUIDs; we accept any ID made of the same safe characters. */
const RESOURCE_ID = /^[A-Za-z0-9_.-]{1,255}$/;
/** Characters of the ID that go into a name: `tap` + 11 = 14, one below the kernel's limit of 15. */
const ID_CHARS = 11;

/** Return `name` if it is a safe Linux interface name; throw `InterfaceNameError` otherwise. */
export function validateInterfaceName(name: string): string {
  if (typeof name !== 'string' || !INTERFACE_NAME.test(name) || name === '.' || name === '..') {
    throw new InterfaceNameError(
      `invalid interface name ${JSON.stringify(name)}: must be 1-15 characters of A-Z a-z 0-9 _ . -`,
    );
  }
  return name;
}

function idPrefix(id: string, what: string): string {
  if (typeof id !== 'string' || !RESOURCE_ID.test(id)) {
    throw new InterfaceNameError(
      `invalid ${what} ID ${JSON.stringify(id)}: must be 1-255 characters of A-Z a-z 0-9 _ . -`,
    );
  }
  return id.slice(0, ID_CHARS);
}

/** Host (`tap…`) and container (`t_c…`) names of a port's veth pair. */
export function interfaceNames(portId: string): InterfaceNames {
  const prefix = idPrefix(portId, 'port');
  return { host: validateInterfaceName(`tap${prefix}`), container: validateInterfaceName(`t_c${prefix}`) };
}

/** Name of a network's Linux bridge: `brq` + the first 11 characters of the network ID. */
export function bridgeName(networkId: string): string {
  return validateInterfaceName(`brq${idPrefix(networkId, 'network')}`);
}

/** The interface alias (`ifalias`) that marks a device as created by the plugin instance `owner`. */
export function ownerAlias(owner: string): string {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(owner)) {
    throw new InterfaceNameError(`owner ${JSON.stringify(owner)} must be 1-64 letters, digits, '_', '.', '-'`);
  }
  return `kuryr-ts:${owner}`;
}
