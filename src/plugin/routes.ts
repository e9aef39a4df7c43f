/**
 * The route table: every path of the remote NetworkDriver and IpamDriver protocol, its request schema and
 * the one driver call it makes (moby libnetwork docs/remote.md, docs/ipam.md).
 */
import type { z } from 'zod';
import type { KuryrDriver } from '../driver/driver.ts';
import * as s from './schemas.ts';

export interface Route {
  /** Schema of the body; absent for calls without arguments (their body is ignored). */
  schema?: z.ZodType;
  /** Docker takes a 404 here for "this plugin lacks the method" and ignores it: a not-found error must be a 500. */
  no404?: boolean;
  handle(body: never): Promise<object> | object;
}

/** Builds the route table around a driver. */
export function routes(driver: KuryrDriver): ReadonlyMap<string, Route> {
  const table: Record<string, Route> = {
    '/Plugin.Activate': { handle: () => ({ Implements: ['NetworkDriver', 'IpamDriver'] }) },

    '/NetworkDriver.GetCapabilities': { handle: () => driver.networkCapabilities() },
    '/NetworkDriver.CreateNetwork': {
      schema: s.createNetworkRequest,
      handle: (b: s.CreateNetworkRequest) => driver.createNetwork(b),
    },
    '/NetworkDriver.DeleteNetwork': {
      schema: s.networkRequest,
      handle: (b: s.NetworkRequest) => driver.deleteNetwork(b.NetworkID),
    },
    '/NetworkDriver.CreateEndpoint': {
      schema: s.createEndpointRequest,
      handle: (b: s.CreateEndpointRequest) => driver.createEndpoint(b),
    },
    '/NetworkDriver.DeleteEndpoint': {
      schema: s.endpointRequest,
      handle: (b: s.EndpointRequest) => driver.deleteEndpoint(b.EndpointID),
    },
    '/NetworkDriver.EndpointOperInfo': {
      schema: s.endpointRequest,
      handle: (b: s.EndpointRequest) => driver.endpointOperInfo(b.EndpointID),
    },
    '/NetworkDriver.Join': { schema: s.joinRequest, handle: (b: s.JoinRequest) => driver.join(b.EndpointID) },
    '/NetworkDriver.Leave': { schema: s.endpointRequest, handle: () => ({}) },
    '/NetworkDriver.ProgramExternalConnectivity': {
      schema: s.externalConnectivityRequest,
      no404: true,
      handle: (b: s.ExternalConnectivityRequest) => driver.programExternalConnectivity(b.EndpointID, b.Options),
    },
    '/NetworkDriver.RevokeExternalConnectivity': {
      schema: s.endpointRequest,
      no404: true,
      handle: (b: s.EndpointRequest) => driver.revokeExternalConnectivity(b.EndpointID),
    },
    '/NetworkDriver.AllocateNetwork': {
      schema: s.allocateNetworkRequest,
      handle: (b: s.AllocateNetworkRequest) => driver.allocateNetwork(b.Options),
    },
    '/NetworkDriver.FreeNetwork': {
      schema: s.networkRequest,
      handle: (b: s.NetworkRequest) => driver.freeNetwork(b.NetworkID),
    },
    '/NetworkDriver.DiscoverNew': { schema: s.discoveryRequest, handle: () => ({}) },
    '/NetworkDriver.DiscoverDelete': { schema: s.discoveryRequest, handle: () => ({}) },
    // Only called when GetCapabilities says GwAllocChecker, which we do not; answer as "allocate both".
    '/NetworkDriver.GwAllocCheck': {
      schema: s.gwAllocCheckRequest,
      handle: () => ({ SkipIPv4: false, SkipIPv6: false }),
    },

    '/IpamDriver.GetCapabilities': { handle: () => driver.ipamCapabilities() },
    '/IpamDriver.GetDefaultAddressSpaces': { handle: () => driver.defaultAddressSpaces() },
    '/IpamDriver.RequestPool': {
      schema: s.requestPoolRequest,
      handle: (b: s.RequestPoolRequest) => driver.requestPool(b),
    },
    '/IpamDriver.ReleasePool': {
      schema: s.releasePoolRequest,
      handle: (b: s.ReleasePoolRequest) => driver.releasePool(b.PoolID),
    },
    '/IpamDriver.RequestAddress': {
      schema: s.requestAddressRequest,
      handle: (b: s.RequestAddressRequest) => driver.requestAddress(b),
    },
    '/IpamDriver.ReleaseAddress': {
      schema: s.releaseAddressRequest,
      handle: (b: s.ReleaseAddressRequest) => driver.releaseAddress(b),
    },
  };
  return new Map(Object.entries(table));
}
