/**
 * The route table: every path of the remote NetworkDriver and IpamDriver protocol, its request schema and
 * the one driver call it makes (moby libnetwork docs/remote.md, docs/ipam.md).
 */
import type { KuryrDriver } from '../driver/driver.ts';
import { KuryrError } from '../errors.ts';
import { describeIssues, type Schema } from '../util/schema.ts';
import * as s from '../driver/requests.ts';

type Reply = Promise<object> | object;

export interface Route {
  /** Whether the call takes a body; calls without arguments ignore theirs. */
  takesBody: boolean;
  /** Docker takes a 404 here for "this plugin lacks the method" and ignores it: a not-found error must be a 500. */
  no404?: boolean;
  /**
   * Checks the decoded JSON body against the route's schema (`KURYR_ERR_BAD_REQUEST` naming every bad field) and
   * makes the driver call with it, typed as the schema's output. `method` names the call in the error.
   */
  handle(body: unknown, method: string): Reply;
}

/** A call without arguments. */
const bare = (handle: () => Reply): Route => ({ takesBody: false, handle: () => handle() });

/** A call whose body `schema` checks before `handle` sees it. */
function checked<T>(schema: Schema<T>, handle: (request: T) => Reply, options: { no404?: true } = {}): Route {
  return {
    takesBody: true,
    ...options,
    handle: (body, method) => {
      const parsed = schema.safeParse(body);
      if (!parsed.success) {
        throw new KuryrError('KURYR_ERR_BAD_REQUEST', `invalid ${method} request: ${describeIssues(parsed.issues)}`);
      }
      return handle(parsed.data);
    },
  };
}

/** Builds the route table around a driver. */
export function routes(driver: KuryrDriver): ReadonlyMap<string, Route> {
  const table: Record<string, Route> = {
    '/Plugin.Activate': bare(() => ({ Implements: ['NetworkDriver', 'IpamDriver'] })),

    '/NetworkDriver.GetCapabilities': bare(() => driver.networkCapabilities()),
    '/NetworkDriver.CreateNetwork': checked(s.createNetworkRequest, (b) => driver.createNetwork(b)),
    '/NetworkDriver.DeleteNetwork': checked(s.networkRequest, (b) => driver.deleteNetwork(b.NetworkID)),
    '/NetworkDriver.CreateEndpoint': checked(s.createEndpointRequest, (b) => driver.createEndpoint(b)),
    '/NetworkDriver.DeleteEndpoint': checked(s.endpointRequest, (b) => driver.deleteEndpoint(b.EndpointID)),
    '/NetworkDriver.EndpointOperInfo': checked(s.endpointRequest, (b) => driver.endpointOperInfo(b.EndpointID)),
    '/NetworkDriver.Join': checked(s.joinRequest, (b) => driver.join(b.EndpointID)),
    '/NetworkDriver.Leave': checked(s.endpointRequest, () => ({})),
    '/NetworkDriver.ProgramExternalConnectivity': checked(
      s.externalConnectivityRequest,
      (b) => driver.programExternalConnectivity(b.EndpointID, b.Options),
      { no404: true },
    ),
    '/NetworkDriver.RevokeExternalConnectivity': checked(
      s.endpointRequest,
      (b) => driver.revokeExternalConnectivity(b.EndpointID),
      { no404: true },
    ),
    '/NetworkDriver.AllocateNetwork': checked(s.allocateNetworkRequest, (b) => driver.allocateNetwork(b.Options)),
    '/NetworkDriver.FreeNetwork': checked(s.networkRequest, (b) => driver.freeNetwork(b.NetworkID)),
    '/NetworkDriver.DiscoverNew': checked(s.discoveryRequest, () => ({})),
    '/NetworkDriver.DiscoverDelete': checked(s.discoveryRequest, () => ({})),
    // Only called when GetCapabilities says GwAllocChecker, which we do not; answer as "allocate both".
    '/NetworkDriver.GwAllocCheck': checked(s.gwAllocCheckRequest, () => ({ SkipIPv4: false, SkipIPv6: false })),

    '/IpamDriver.GetCapabilities': bare(() => driver.ipamCapabilities()),
    '/IpamDriver.GetDefaultAddressSpaces': bare(() => driver.defaultAddressSpaces()),
    '/IpamDriver.RequestPool': checked(s.requestPoolRequest, (b) => driver.requestPool(b)),
    '/IpamDriver.ReleasePool': checked(s.releasePoolRequest, (b) => driver.releasePool(b.PoolID)),
    '/IpamDriver.RequestAddress': checked(s.requestAddressRequest, (b) => driver.requestAddress(b)),
    '/IpamDriver.ReleaseAddress': checked(s.releaseAddressRequest, (b) => driver.releaseAddress(b)),
  };
  return new Map(Object.entries(table));
}
