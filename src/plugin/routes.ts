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
   * makes the call on `driver` (the request's: KuryrDriver.forRequest) with it, typed as the schema's output.
   * `method` names the call in the error.
   */
  handle(driver: KuryrDriver, body: unknown, method: string): Reply;
}

/** A call without arguments. */
const bare = (handle: (driver: KuryrDriver) => Reply): Route => ({
  takesBody: false,
  handle: (driver) => handle(driver),
});

/** A call whose body `schema` checks before `handle` sees it. */
function checked<T>(
  schema: Schema<T>,
  handle: (driver: KuryrDriver, request: T) => Reply,
  options: { no404?: true } = {},
): Route {
  return {
    takesBody: true,
    ...options,
    handle: (driver, body, method) => {
      const parsed = schema.safeParse(body);
      if (!parsed.success) {
        throw new KuryrError('KURYR_ERR_BAD_REQUEST', `invalid ${method} request: ${describeIssues(parsed.issues)}`);
      }
      return handle(driver, parsed.data);
    },
  };
}

let table: ReadonlyMap<string, Route> | undefined;

/** The route table (built once: the driver is an argument of each call, not of the table). */
export function routes(): ReadonlyMap<string, Route> {
  table ??= buildRoutes();
  return table;
}

function buildRoutes(): ReadonlyMap<string, Route> {
  const table: Record<string, Route> = {
    '/Plugin.Activate': bare(() => ({ Implements: ['NetworkDriver', 'IpamDriver'] })),

    '/NetworkDriver.GetCapabilities': bare((driver) => driver.networkCapabilities()),
    '/NetworkDriver.CreateNetwork': checked(s.createNetworkRequest, (driver, b) => driver.createNetwork(b)),
    '/NetworkDriver.DeleteNetwork': checked(s.networkRequest, (driver, b) => driver.deleteNetwork(b.NetworkID)),
    '/NetworkDriver.CreateEndpoint': checked(s.createEndpointRequest, (driver, b) => driver.createEndpoint(b)),
    '/NetworkDriver.DeleteEndpoint': checked(s.endpointRequest, (driver, b) => driver.deleteEndpoint(b.EndpointID)),
    '/NetworkDriver.EndpointOperInfo': checked(s.endpointRequest, (driver, b) => driver.endpointOperInfo(b.EndpointID)),
    '/NetworkDriver.Join': checked(s.joinRequest, (driver, b) => driver.join(b.EndpointID)),
    '/NetworkDriver.Leave': checked(s.endpointRequest, () => ({})),
    '/NetworkDriver.ProgramExternalConnectivity': checked(
      s.externalConnectivityRequest,
      (driver, b) => driver.programExternalConnectivity(b.EndpointID, b.Options),
      { no404: true },
    ),
    '/NetworkDriver.RevokeExternalConnectivity': checked(
      s.endpointRequest,
      (driver, b) => driver.revokeExternalConnectivity(b.EndpointID),
      { no404: true },
    ),
    '/NetworkDriver.AllocateNetwork': checked(s.allocateNetworkRequest, (driver, b) =>
      driver.allocateNetwork(b.Options),
    ),
    '/NetworkDriver.FreeNetwork': checked(s.networkRequest, (driver, b) => driver.freeNetwork(b.NetworkID)),
    '/NetworkDriver.DiscoverNew': checked(s.discoveryRequest, () => ({})),
    '/NetworkDriver.DiscoverDelete': checked(s.discoveryRequest, () => ({})),
    // Only called when GetCapabilities says GwAllocChecker, which we do not; answer as "allocate both".
    '/NetworkDriver.GwAllocCheck': checked(s.gwAllocCheckRequest, () => ({ SkipIPv4: false, SkipIPv6: false })),

    '/IpamDriver.GetCapabilities': bare((driver) => driver.ipamCapabilities()),
    '/IpamDriver.GetDefaultAddressSpaces': bare((driver) => driver.defaultAddressSpaces()),
    '/IpamDriver.RequestPool': checked(s.requestPoolRequest, (driver, b) => driver.requestPool(b)),
    '/IpamDriver.ReleasePool': checked(s.releasePoolRequest, (driver, b) => driver.releasePool(b.PoolID)),
    '/IpamDriver.RequestAddress': checked(s.requestAddressRequest, (driver, b) => driver.requestAddress(b)),
    '/IpamDriver.ReleaseAddress': checked(s.releaseAddressRequest, (driver, b) => driver.releaseAddress(b)),
  };
  return new Map(Object.entries(table));
}
