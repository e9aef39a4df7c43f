/**
 * On the embedded backend the host is the gateway of every network: each network's bridge holds its gateway
 * address and the kernel routes its subnet to that bridge. So, as with Docker's bridge driver, two networks'
 * subnets may not overlap, nor may a network's subnet overlap one of the host's own routes (the host could not
 * tell the container network from the LAN behind that route), and no two networks share a bridge. The default
 * pool's blocks step around the host's routes, as Docker's default address pools do.
 *
 * On the neutron backend none of this applies (no agent): Neutron's routers decide, and `neutron.pool.name`
 * may give two networks the same CIDR.
 */
import type { HostRoute } from '../binding/binder.ts';
import { fail } from '../errors.ts';
import type { Network } from '../neutron/types.ts';
import { type Cidr, cidrsOverlap, type IpVersion, normalizeCidr, parseCidr } from '../util/ip.ts';
import type { DriverRuntime } from './context.ts';
import { BRIDGE_NAME_TAG, bridgeOf, type RequestedBridgeOptions } from './embedded-options.ts';
import { dockerIdInDescription } from './network-description.ts';

/** How an error names a network: the Docker network's name and short ID when known, else the Neutron ID. */
function describeNetwork(network: Pick<Network, 'id' | 'description'>): string {
  const dockerId = dockerIdInDescription(network.description);
  if (dockerId === undefined) return `${network.id} (bridge ${bridgeOf({ id: network.id, tags: [] })})`;
  const named = /^Docker network (\S+) [0-9a-f]{64} /.exec(network.description)?.[1];
  return named === undefined ? `${dockerId.slice(0, 12)}` : `${named} (${dockerId.slice(0, 12)})`;
}

/**
 * The host's routes of one family (or both), asked for at the start of a request so that `ip` runs while the
 * request reads the store; the check that uses them comes later (`foreignRoutes`). The host's routes are the
 * host's: whether they are read a few milliseconds earlier or later, a route added meanwhile is missed either way.
 */
export interface RoutesAhead {
  version: IpVersion | undefined;
  routes: Promise<HostRoute[]>;
}

/** Starts reading the host's routes of `version` (or both); undefined without an agent (neutron backend). */
export function readRoutesAhead(rt: DriverRuntime, version?: IpVersion): RoutesAhead | undefined {
  const routes = rt.agent?.hostRoutes?.(version);
  if (routes === undefined) return undefined;
  routes.catch(() => {}); // the check awaits it; a request that fails before is no unhandled rejection
  return { version, routes };
}

/**
 * The host's routes other than those of the networks in the store (the kernel's routes of our bridges); of one
 * family with `version`. `ahead`: the routes already asked for, when of that family.
 */
async function foreignRoutes(
  rt: DriverRuntime,
  storedCidrs: ReadonlySet<string>,
  version?: IpVersion,
  ahead?: RoutesAhead,
) {
  const read = ahead !== undefined && ahead.version === version ? ahead.routes : rt.agent?.hostRoutes?.(version);
  const routes = (await read) ?? [];
  return routes
    .map((r) => ({ ...r, cidr: normalizeCidr(r.cidr) }))
    .filter((r) => !storedCidrs.has(r.cidr))
    .map((r) => ({ ...r, parsed: parseCidr(r.cidr) }));
}

async function storedSubnets(rt: DriverRuntime) {
  const subnets = await rt.neutron.listSubnets({ fields: ['id', 'cidr', 'network_id'] });
  return subnets.map((s) => ({ ...s, cidr: normalizeCidr(s.cidr), parsed: parseCidr(s.cidr) }));
}

function routeConflict(cidr: string, route: { cidr: string; device?: string | undefined }) {
  const via = route.device === undefined ? '' : ` (dev ${route.device})`;
  return fail.conflict(
    `subnet ${cidr} overlaps the host's route to ${route.cidr}${via}: on the embedded backend the host is the ` +
      'gateway of every network and could not tell the two apart; choose another --subnet',
  );
}

/** RequestPool with `--subnet`: refuse a subnet over one of the host's routes (embedded backend only). */
export async function refuseHostRouteOverlap(rt: DriverRuntime, cidr: string, ahead?: RoutesAhead): Promise<void> {
  if (rt.agent === undefined) return;
  const wanted = parseCidr(cidr);
  const stored = new Set((await storedSubnets(rt)).map((s) => s.cidr));
  const routes = await foreignRoutes(rt, stored, wanted.version, ahead);
  const clash = routes.find((r) => cidrsOverlap(r.parsed, wanted));
  if (clash !== undefined) throw routeConflict(normalizeCidr(cidr), clash);
}

/** The host's routes of one family, for the default pool to step around (none on the neutron backend). */
export async function hostReservedCidrs(rt: DriverRuntime, version: IpVersion, ahead?: RoutesAhead): Promise<Cidr[]> {
  if (rt.agent?.hostRoutes === undefined) return [];
  const stored = new Set((await storedSubnets(rt)).map((s) => s.cidr));
  const routes = await foreignRoutes(rt, stored, version, ahead);
  return routes.map((r) => r.parsed).filter((c) => c.version === version);
}

/**
 * CreateNetwork: refuse subnets of `network` that overlap another network's subnets or a host route, and a bridge
 * name another network has; then run `create` (which makes the subnets). One network at a time on this host, so
 * two concurrent requests cannot both pass the check. On the neutron backend only runs `create`.
 */
export async function withExclusiveSubnets<T>(
  rt: DriverRuntime,
  network: Network,
  cidrs: readonly string[],
  options: RequestedBridgeOptions | undefined,
  create: () => Promise<T>,
  ahead?: RoutesAhead,
): Promise<T> {
  if (rt.agent === undefined) return create();
  return rt.locks.run('embedded-subnets', async () => {
    if (options?.bridge !== undefined) {
      const sharing = (await rt.neutron.listNetworks({ tags: [`${BRIDGE_NAME_TAG}=${options.bridge}`] })).find(
        (n) => n.id !== network.id,
      );
      if (sharing !== undefined) {
        throw fail.conflict(`bridge ${options.bridge} is the bridge of network ${describeNetwork(sharing)} already`);
      }
    }
    const stored = await storedSubnets(rt);
    for (const cidr of cidrs.map(normalizeCidr)) {
      const wanted = parseCidr(cidr);
      const clash = stored.find((s) => s.network_id !== network.id && cidrsOverlap(s.parsed, wanted));
      if (clash !== undefined) {
        const other = await rt.neutron.showNetwork(clash.network_id);
        throw fail.conflict(
          `cannot create network with subnet ${cidr}: it conflicts with network ${describeNetwork(other)}, whose ` +
            `subnet ${clash.cidr} it overlaps; on the embedded backend the host is the gateway of every network, so ` +
            'subnets may not overlap (as with Docker’s bridge driver; neutron.pool.name does not change that here)',
        );
      }
    }
    // Only the families of these subnets (one `ip` fewer for an IPv4-only network).
    const versions = new Set(cidrs.map((c) => parseCidr(c).version));
    const only = versions.size === 1 ? [...versions][0] : undefined;
    const storedCidrs = new Set(stored.map((s) => s.cidr));
    const routes = versions.size === 0 ? [] : await foreignRoutes(rt, storedCidrs, only, ahead);
    for (const cidr of cidrs.map(normalizeCidr)) {
      const clash = routes.find((r) => cidrsOverlap(r.parsed, parseCidr(cidr)));
      if (clash !== undefined) throw routeConflict(cidr, clash);
    }
    return create();
  });
}
