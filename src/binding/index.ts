/**
 * The binding layer: host plumbing with iproute2's `ip` (veth pairs, Linux bridges, gateway addresses),
 * `ovs-vsctl` for the `ovs` vif type and kuryr's bind scripts for the others.
 */
export type {
  Binder,
  BindRequest,
  HostNetworkAgent,
  HostNetworkSpec,
  HostRoute,
  InterfaceAddress,
  InterfaceNames,
} from './binder.ts';
export { BRIDGE_ATTRIBUTES, deleteBridgeIfUnused, ensureBridge } from './bridge.ts';
export {
  CommandError,
  type CommandOutput,
  type CommandRunner,
  execRunner,
  pythonRepr,
  runCommand,
} from './command.ts';
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
export {
  BindHooks,
  type BindHooksOptions,
  type BindingLog,
  DEFAULT_BINDIR,
  scriptNotFound,
  vifDetailsText,
} from './hook.ts';
export { type HostFirewall, IptablesAccept, type IptablesAcceptOptions } from './host-firewall.ts';
export { readHostRoutes } from './host-routes.ts';
export { LinuxBridgeAgent, type LinuxBridgeAgentOptions } from './linux-bridge-agent.ts';
export { bridgeName, InterfaceNameError, interfaceNames, validateInterfaceName } from './names.ts';
export {
  addPortArgs,
  DEFAULT_OVS_BRIDGE,
  delPortArgs,
  findPortArgs,
  OvsBinding,
  type OvsPlan,
  OvsVsctl,
  type OvsVsctlOptions,
  ovsPlan,
} from './ovs.ts';
export { VethBinder, type VethBinderOptions } from './veth-binder.ts';
