/**
 * `NetworkDriver.Join` / `Leave`. Join tells Docker which host interface to move into the container and the
 * gateways and routes of the port's subnets; the interface already exists since CreateEndpoint.
 * Leave has nothing to do: Docker moves the interface back itself, DeleteEndpoint unplugs it.
 */
import { interfaceNames } from '../binding/names.ts';
import { fail } from '../errors.ts';
import type { DriverRuntime } from './context.ts';
import { portOfEndpoint } from './lookup.ts';

export interface StaticRoute {
  Destination: string;
  RouteType: 0 | 1;
  NextHop?: string;
}

export interface JoinResult {
  InterfaceName: { SrcName: string; DstPrefix: string };
  Gateway?: string;
  GatewayIPv6?: string;
  StaticRoutes: StaticRoute[];
  DisableGatewayService: boolean;
}

/** `NetworkDriver.Join` (two Neutron calls, usually both answered by the cache: the port by tags, its subnets by ID). */
export async function join(rt: DriverRuntime, endpointId: string): Promise<JoinResult> {
  const port = await portOfEndpoint(rt, endpointId);
  if (port === undefined) throw fail.notFound(`The port doesn't exist for the identifier ${endpointId}`);
  const subnetIds = [...new Set(port.fixed_ips.map((f) => f.subnet_id))];
  const subnets = await rt.neutron.listSubnets({ id: subnetIds });
  const result: JoinResult = {
    InterfaceName: {
      SrcName: (await rt.binder.containerInterface?.(port)) ?? interfaceNames(port.id).container,
      DstPrefix: rt.settings.vethDstPrefix,
    },
    StaticRoutes: [],
    // The network's gateway comes from Neutron; never fall back to docker_gwbridge.
    DisableGatewayService: true,
  };
  for (const subnet of subnets) {
    if (subnet.gateway_ip !== null && subnet.gateway_ip !== '') {
      if (subnet.ip_version === 4) result.Gateway = subnet.gateway_ip;
      else result.GatewayIPv6 = subnet.gateway_ip;
    }
    for (const route of subnet.host_routes) {
      result.StaticRoutes.push({ Destination: route.destination, RouteType: 0, NextHop: route.nexthop });
    }
  }
  return result;
}
