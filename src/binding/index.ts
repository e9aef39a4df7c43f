/** The binding layer: host plumbing with iproute2's `ip` (veth pairs, Linux bridges, gateway addresses). */
export type {
  Binder,
  BindRequest,
  HostNetworkAgent,
  HostNetworkSpec,
  InterfaceAddress,
  InterfaceNames,
} from './binder.ts';
export { BRIDGE_ATTRIBUTES, deleteBridgeIfUnused, ensureBridge } from './bridge.ts';
export { BINDING_ERROR_CODE, BindingError, type BindingErrorReason, bindingErrorReasons } from './errors.ts';
export {
  type ExecFailure,
  type ExecRunner,
  type IpAddress,
  IpCommand,
  IpCommandError,
  type IpCommandOptions,
  type IpLink,
  isAddressMissing,
  isAlreadyExists,
  isNoSuchDevice,
  parseLinks,
  validateMtu,
} from './ip-command.ts';
export { LinuxBridgeAgent, type LinuxBridgeAgentOptions } from './linux-bridge-agent.ts';
export { bridgeName, InterfaceNameError, interfaceNames, validateInterfaceName } from './names.ts';
export { VethBinder, type VethBinderOptions } from './veth-binder.ts';
