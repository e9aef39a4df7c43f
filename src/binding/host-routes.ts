/**
 * The host's own routes, which a network's subnet must not overlap (the embedded backend's host is the gateway of
 * every network): the main table's routes of both families, except default routes, IPv6 link-local and multicast
 * ones. Which of them are the plugin's own bridges' routes is for the caller to tell (it knows the subnets).
 */
import type { HostRoute } from './binder.ts';
import type { IpCommand } from './ip-command.ts';

const IGNORED_V6 = [/^fe[89ab][0-9a-f]:/i, /^ff[0-9a-f]{2}:/i];

type Family = '-4' | '-6';

/** The routes of one family, one `ip`. */
async function readFamilyRoutes(ip: IpCommand, family: Family): Promise<HostRoute[]> {
  const routes = await ip.runJson([family, 'route', 'show', 'table', 'main']);
  const out: HostRoute[] = [];
  for (const route of Array.isArray(routes) ? routes : []) {
    if (typeof route !== 'object' || route === null) continue;
    const { dst, dev, type } = route as { dst?: unknown; dev?: unknown; type?: unknown };
    if (typeof dst !== 'string' || dst === 'default') continue;
    if (type !== undefined && type !== 'unicast') continue; // blackhole, unreachable, ... are not networks
    if (family === '-6' && IGNORED_V6.some((re) => re.test(dst))) continue;
    const cidr = dst.includes('/') ? dst : `${dst}/${family === '-4' ? 32 : 128}`;
    out.push({ cidr, ...(typeof dev === 'string' ? { device: dev } : {}) });
  }
  return out;
}

const familiesOf = (version?: 4 | 6): readonly Family[] => (version === undefined ? ['-4', '-6'] : [`-${version}`]);

/**
 * The host's routes of one family (`version`) or of both (each family's dump its own `ip`, both at once), as read
 * at most `maxAgeMs` ago (default 1 s), per family: `docker network create` asks twice within milliseconds
 * (RequestPool, then CreateNetwork), and each read is an `ip` process. The routes are the host's: read a second
 * earlier or now, a route added meanwhile is missed either way (the networks' own routes are told apart by their
 * subnets, which the store has). A read that fails is not kept.
 */
export class RecentHostRoutes {
  readonly #ip: IpCommand;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  readonly #reads = new Map<Family, { at: number; routes: Promise<HostRoute[]> }>();

  constructor(ip: IpCommand, options: { maxAgeMs?: number; now?: () => number } = {}) {
    this.#ip = ip;
    this.#maxAgeMs = options.maxAgeMs ?? 1000;
    this.#now = options.now ?? (() => performance.now());
  }

  async read(version?: 4 | 6): Promise<HostRoute[]> {
    const reads = familiesOf(version).map((family) => {
      const kept = this.#reads.get(family);
      const now = this.#now();
      if (kept !== undefined && now - kept.at <= this.#maxAgeMs) return kept.routes;
      const routes = readFamilyRoutes(this.#ip, family);
      const entry = { at: now, routes };
      this.#reads.set(family, entry);
      routes.catch(() => {
        if (this.#reads.get(family) === entry) this.#reads.delete(family);
      });
      return routes;
    });
    return (await Promise.all(reads)).flat();
  }
}
