/**
 * `Binder`: host plumbing for one Neutron port, selected by the port's `binding:vif_type`.
 * `HostNetworkAgent`: the agent role the plugin plays for the embedded backend (bridge + gateway addresses).
 *
 * Both are idempotent: creating what exists reuses it; removing what is gone succeeds.
 */
import type { Port } from '../neutron/types.ts';

/** Host and container interface names of one port (kuryr's naming, Linux's 15-char limit). */
export interface InterfaceNames {
  /** `tap` + first 11 characters of the port ID, e.g. `tap3f6f0e2c-9b`. */
  host: string;
  /** `t_c` + first 11 characters of the port ID: the end Docker moves into the container. */
  container: string;
}

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
   * Create the veth pair for `port` in the host namespace (reusing an existing pair of that name), give the
   * container end the port's MAC and the MTU, bring the host end up and attach it as the port's
   * `binding:vif_type` requires. On failure nothing is left behind.
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

/** An address with its prefix length, e.g. `{ address: '10.0.0.1', prefixLength: 24 }`. */
export interface InterfaceAddress {
  address: string;
  prefixLength: number;
}

export interface HostNetworkSpec {
  /** Neutron network ID: the bridge is `brq` + its first 11 characters unless `bridge` names another. */
  networkId: string;
  mtu: number;
  /** Gateway addresses of the network's subnets, held by the bridge. */
  gateways: readonly InterfaceAddress[];
  /** The bridge's name (Docker's `com.docker.network.bridge.name`); default `brq<network[:11]>`. */
  bridge?: string;
  /** `--internal`: no traffic leaves the network, none enters it from elsewhere. Default false. */
  internal?: boolean;
  /** Masquerade what leaves the network for the outside (Docker's `enable_ip_masquerade`). Default true. */
  masquerade?: boolean;
}

/** A route of the host: its destination and, when it has one, its device. */
export interface HostRoute {
  cidr: string;
  device?: string;
}

/** The embedded backend's agent: a Linux bridge per network holding the gateway addresses. */
export interface HostNetworkAgent {
  /** Create (or repair) the bridge: up, MTU, exactly these gateway addresses. */
  ensureNetwork(spec: HostNetworkSpec): Promise<void>;
  /** Delete the bridge (`bridge`, default `brq<network[:11]>`). A missing bridge is not an error. */
  removeNetwork(networkId: string, bridge?: string): Promise<void>;
  /**
   * The host's routes a network's subnet must not overlap: the main table's, both families, without the default
   * routes, link-local and multicast ones.
   */
  hostRoutes?(): Promise<HostRoute[]>;
}
