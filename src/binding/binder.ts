/**
 * What the binding layer is asked to do. `VifPort`/`PlugRequest`: one port to plug, as the driver describes it
 * (the driver's port drivers build it from a Neutron port: src/driver/port-drivers/veth.ts). `HostNetworkAgent`:
 * the agent role the plugin plays for the embedded backend (bridge + gateway addresses).
 *
 * Both are idempotent: creating what exists reuses it; removing what is gone succeeds.
 */

/** Host and container interface names of one port (kuryr's naming, Linux's 15-char limit). */
export interface InterfaceNames {
  /** `tap` + first 11 characters of the port ID, e.g. `tap3f6f0e2c-9b`. */
  host: string;
  /** `t_c` + first 11 characters of the port ID: the end Docker moves into the container. */
  container: string;
}

/** A port as its host plumbing needs it: its identity, MAC and `binding:vif_type`/`vif_details`. */
export interface VifPort {
  /** The Neutron port's ID: the interface names derive from it (`interfaceNames`). */
  portId: string;
  /** Docker's endpoint ID (the port's `device_id`): bind scripts and OVS's `external_ids` get it. */
  endpointId: string;
  /** The Neutron network: the `bridge` vif type's default bridge is `brq<network[:11]>`. */
  networkId: string;
  /** The port's project (bind scripts get it); '' when unknown. */
  projectId: string;
  /** The port's MAC address, as Neutron gave it. */
  mac: string;
  /** `binding:vif_type`: `bridge`, `tap`, `ovs`, or any type with a bind script; '' for an unbound port. */
  vifType: string;
  /** `binding:vif_details` (the `ovs` type and bind scripts read it). */
  vifDetails: Readonly<Record<string, unknown>>;
}

/**
 * One port to plug: a veth pair in the host namespace (an existing pair of that name reused), the container end
 * with the port's MAC and the MTU, the host end up and attached as `vifType` requires. On failure nothing is
 * left behind.
 */
export interface PlugRequest extends VifPort {
  /** MTU of the network (1500 when it has none). */
  mtu: number;
  /** vif type `bridge`: the network's bridge (default `brq<network[:11]>`). */
  bridge?: string;
  /** vif type `bridge`: false isolates the port from the bridge's other ports (Docker's `enable_icc=false`). */
  icc?: boolean;
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
   * routes, link-local and multicast ones. With `version`, only that family's.
   */
  hostRoutes?(version?: 4 | 6): Promise<HostRoute[]>;
}
