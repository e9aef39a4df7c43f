/**
 * The host's own routes, which a network's subnet must not overlap (the embedded backend's host is the gateway of
 * every network): the main table's routes of both families, except default routes, IPv6 link-local and multicast
 * ones. Which of them are the plugin's own bridges' routes is for the caller to tell (it knows the subnets).
 */
import type { HostRoute } from './binder.ts';
import type { IpCommand } from './ip-command.ts';

const IGNORED_V6 = [/^fe[89ab][0-9a-f]:/i, /^ff[0-9a-f]{2}:/i];

/** The routes of one family (`version`), or of both, each family's dump its own `ip` and both at once. */
export async function readHostRoutes(ip: IpCommand, version?: 4 | 6): Promise<HostRoute[]> {
  const families = version === undefined ? (['-4', '-6'] as const) : ([`-${version}`] as const);
  const dumps = await Promise.all(families.map((family) => ip.runJson([family, 'route', 'show', 'table', 'main'])));
  const out: HostRoute[] = [];
  for (const [i, family] of families.entries()) {
    const routes = dumps[i];
    for (const route of Array.isArray(routes) ? routes : []) {
      if (typeof route !== 'object' || route === null) continue;
      const { dst, dev, type } = route as { dst?: unknown; dev?: unknown; type?: unknown };
      if (typeof dst !== 'string' || dst === 'default') continue;
      if (type !== undefined && type !== 'unicast') continue; // blackhole, unreachable, ... are not networks
      if (family === '-6' && IGNORED_V6.some((re) => re.test(dst))) continue;
      const cidr = dst.includes('/') ? dst : `${dst}/${family === '-4' ? 32 : 128}`;
      out.push({ cidr, ...(typeof dev === 'string' ? { device: dev } : {}) });
    }
  }
  return out;
}
