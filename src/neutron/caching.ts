/**
 * A `NeutronApi` decorator that saves round trips: it keeps the networks, subnets, subnet pools and ports it has
 * seen (created, updated, listed, shown) and answers some reads from them. It is the driver's only cache: no driver
 * file keeps Neutron state of its own. Being in the API, every write made through it (driver, gc, CLI) updates or
 * drops what it keeps. Other processes' writes (the CLI, gc, another host, an operator) are not seen; they are
 * found out when a call naming a kept resource gets a 404: everything kept about that ID is dropped and
 * `staleDrops` grows, so that the caller can look again once (driver.ts does).
 *
 * What is answered without a call:
 * - `show<X>(id)` of a kept resource;
 * - a list whose filter names one resource by what identifies it (IDs; a tag carrying half of a 64-hex ID, a
 *   64-hex name or device ID; a subnet by pool and CIDR; an address on a network), when kept resources match;
 * - a list asked before through this decorator, with the answer kept up to date by its own writes, when not
 *   empty (an empty answer is never served: another process may have created the resource since);
 * - `show<X>(id)` of a resource deleted through this decorator: a 404, as Neutron would answer (an ID is never
 *   used again).
 * Reads about shared resources that decide ownership go through `fresh`, which always asks Neutron (and refreshes
 * what is kept). Reads of what changes without us (a port's status, which the agent sets) go through
 * `recent(ms)`: answered from what is kept only when Neutron said it at most that long ago (an answer to one of
 * our writes or reads), else asked. Lists with `fields`, unknown filter keys or no filter are never kept.
 */
import type { Deadline } from '../util/deadline.ts';
import { type DeadlineBinding, type FilterValue, type ListFilter, type NeutronApi, withDeadline } from './api.ts';
import { isNotFound, NeutronError } from './errors.ts';
import type { Network, Port, Subnet, SubnetPool, TaggedResource } from './types.ts';
import { normalizeCidr, normalizeIp } from '../util/ip.ts';

type Kind = 'networks' | 'subnets' | 'subnetpools' | 'ports';
type Resource = Network | Subnet | SubnetPool | Port;

export interface CachingNeutronApi extends NeutronApi, DeadlineBinding {
  withDeadline(deadline: Deadline): CachingNeutronApi;
  /** The same API, always asking Neutron; what it answers refreshes what is kept. */
  readonly fresh: NeutronApi;
  /**
   * The same API, answering reads from what is kept only when Neutron returned it (to a write or a read) at most
   * `maxAgeMs` ago; otherwise asking Neutron, as `fresh` does.
   */
  recent(maxAgeMs: number): NeutronApi;
  /** How many times a 404 showed a kept resource to be gone (grows; compare before and after an operation). */
  readonly staleDrops: number;
  /** Resources currently kept (for tests and metrics). */
  keptCount(): number;
  /** List answers currently kept, all kinds (for tests). */
  keptListCount(): number;
}

const CACHING = Symbol('cachingNeutron');

export function isCaching(api: NeutronApi): api is CachingNeutronApi {
  return (api as Partial<Record<typeof CACHING, boolean>>)[CACHING] === true;
}

const HEX64 = /^[0-9a-f]{64}$/;
/** A tag carrying half of a 64-hex ID (kuryr's `kuryr.net.uuid.lh:<32 hex>`): one resource carries it. */
const ID_HALF_TAG = /:[0-9a-f]{32}$/;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** Filter keys this cache can evaluate; anything else makes a list pass through. */
const KEYS: Readonly<Record<Kind, ReadonlySet<string>>> = {
  networks: new Set(['id', 'name', 'tags', 'shared']),
  subnets: new Set(['id', 'name', 'network_id', 'subnetpool_id', 'cidr', 'ip_version', 'tags']),
  subnetpools: new Set(['id', 'name', 'tags']),
  ports: new Set(['id', 'name', 'network_id', 'device_id', 'device_owner', 'mac_address', 'fixed_ips', 'tags']),
};

const list = (v: FilterValue | readonly FilterValue[]): readonly FilterValue[] =>
  Array.isArray(v) ? (v as readonly FilterValue[]) : [v as FilterValue];

function normalizeValue(key: string, value: FilterValue): string {
  const text = String(value);
  if (key === 'cidr') {
    try {
      return normalizeCidr(text);
    } catch {
      return text;
    }
  }
  if (key === 'mac_address') return text.toLowerCase();
  return text;
}

/** The filter's keys in a fixed order, without undefined values; undefined when it cannot be kept. */
function cacheable(kind: Kind, filter: ListFilter | undefined): [string, readonly FilterValue[]][] | undefined {
  if (filter === undefined) return undefined;
  const entries: [string, readonly FilterValue[]][] = [];
  for (const [key, value] of Object.entries(filter)) {
    if (value === undefined) continue;
    if (!KEYS[kind].has(key)) return undefined;
    entries.push([key, list(value)]);
  }
  if (entries.length === 0) return undefined;
  // Code-unit order: any fixed order will do, and localeCompare would load ICU's collator (3 MiB of RSS).
  return entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Neutron's list semantics for the keys above. */
function matches(resource: Resource, filter: readonly [string, readonly FilterValue[]][]): boolean {
  const record = resource as unknown as Record<string, unknown>;
  for (const [key, values] of filter) {
    if (key === 'tags') {
      const tags = (record.tags as string[] | undefined) ?? [];
      if (!values.every((t) => tags.includes(String(t)))) return false;
    } else if (key === 'fixed_ips') {
      const ips = (record.fixed_ips as Port['fixed_ips'] | undefined) ?? [];
      const wanted = parseFixedIps(values);
      if (wanted.ips.size > 0 && !ips.some((f) => wanted.ips.has(normalizeIp(f.ip_address)))) return false;
      if (wanted.subnets.size > 0 && !ips.some((f) => wanted.subnets.has(f.subnet_id))) return false;
    } else {
      const actual = record[key];
      if (actual === undefined || actual === null) return false;
      const have = normalizeValue(key, actual as FilterValue);
      if (!values.some((v) => normalizeValue(key, v) === have)) return false;
    }
  }
  return true;
}

function parseFixedIps(values: readonly FilterValue[]): { ips: Set<string>; subnets: Set<string> } {
  const ips = new Set<string>();
  const subnets = new Set<string>();
  for (const v of values) {
    const [k, val] = String(v).split('=', 2);
    if (k === 'ip_address' && val !== undefined) ips.add(normalizeIp(val));
    else if (k === 'subnet_id' && val !== undefined) subnets.add(val);
  }
  return { ips, subnets };
}

/**
 * Whether the filter names resources by what identifies them, so that the kept ones that match are the whole
 * answer; and, for IDs and addresses, whether the kept ones cover every value asked for.
 */
function identifies(kind: Kind, filter: readonly [string, readonly FilterValue[]][], found: readonly Resource[]) {
  const get = (key: string) => filter.find(([k]) => k === key)?.[1];
  const ids = get('id');
  if (ids !== undefined) return ids.every((id) => found.some((r) => r.id === String(id)));
  if (found.length === 0) return false;
  const tags = get('tags');
  if (tags?.some((t) => ID_HALF_TAG.test(String(t)))) return true;
  if (kind === 'networks') return get('name')?.length === 1 && HEX64.test(String(get('name')![0]));
  if (kind === 'ports') {
    const device = get('device_id');
    if (device?.length === 1 && HEX64.test(String(device[0]))) return true;
    const fixed = get('fixed_ips');
    if (fixed === undefined || get('network_id')?.length !== 1) return false;
    const wanted = parseFixedIps(fixed).ips;
    const held = new Set(found.flatMap((p) => (p as Port).fixed_ips.map((f) => normalizeIp(f.ip_address))));
    return wanted.size > 0 && [...wanted].every((ip) => held.has(ip));
  }
  if (kind === 'subnets') {
    const single = (key: string) => get(key)?.length === 1;
    return single('cidr') && (single('subnetpool_id') || (tags !== undefined && tags.length > 0));
  }
  if (kind === 'subnetpools') return get('name') !== undefined && tags !== undefined && tags.length > 0;
  return false;
}

/** Lists kept per kind at most (list answers, see `freshList`). */
export const LISTS_LIMIT = 1_000;

/** Deleted IDs remembered per kind (the oldest are forgotten first: then a show asks Neutron again). */
const DELETED_LIMIT = 10_000;

/** Neutron's 404 for a resource that does not exist. */
function notFoundError(kind: Kind, id: string): NeutronError {
  const names: Record<Kind, readonly [string, string]> = {
    networks: ['NetworkNotFound', 'Network'],
    subnets: ['SubnetNotFound', 'Subnet'],
    subnetpools: ['SubnetPoolNotFound', 'Subnet pool'],
    ports: ['PortNotFound', 'Port'],
  };
  const [type, what] = names[kind];
  return new NeutronError(404, type, `${what} ${id} could not be found.`);
}

const TAGGED: Partial<Record<TaggedResource, Kind>> = {
  networks: 'networks',
  subnets: 'subnets',
  subnetpools: 'subnetpools',
  ports: 'ports',
};

/** Wraps `inner`: same results and errors, fewer calls (see above). `now`: the clock of `recent` (ms). */
export function cachingNeutron(inner: NeutronApi, options: { now?: () => number } = {}): CachingNeutronApi {
  const now = options.now ?? Date.now;
  const kept: Record<Kind, Map<string, Resource>> = {
    networks: new Map(),
    subnets: new Map(),
    subnetpools: new Map(),
    ports: new Map(),
  };
  /** When Neutron last returned each kept resource (our write's answer, a read's), by `now`. */
  const seenAt: Record<Kind, Map<string, number>> = {
    networks: new Map(),
    subnets: new Map(),
    subnetpools: new Map(),
    ports: new Map(),
  };
  /** Kept, and returned by Neutron at most `maxAgeMs` ago (any age: `Infinity`). */
  const recentEnough = (kind: Kind, id: string, maxAgeMs: number): boolean =>
    maxAgeMs === Number.POSITIVE_INFINITY || now() - (seenAt[kind].get(id) ?? Number.NEGATIVE_INFINITY) <= maxAgeMs;
  /** Lists asked before: kind + filter → the IDs of the answer, kept up to date by this decorator's writes. */
  const lists: Record<Kind, Map<string, { filter: [string, readonly FilterValue[]][]; ids: Set<string> }>> = {
    networks: new Map(),
    subnets: new Map(),
    subnetpools: new Map(),
    ports: new Map(),
  };
  let staleDrops = 0;
  /** IDs deleted through this decorator, oldest first. */
  const deleted: Record<Kind, Set<string>> = {
    networks: new Set(),
    subnets: new Set(),
    subnetpools: new Set(),
    ports: new Set(),
  };
  const markDeleted = (kind: Kind, id: string): void => {
    const ids = deleted[kind];
    ids.delete(id);
    ids.add(id);
    if (ids.size > DELETED_LIMIT) ids.delete(ids.values().next().value as string);
  };

  const copy = <T>(value: T): T => structuredClone(value);

  /**
   * Keeps a resource as Neutron (or our write) returned it; never an older revision over a newer one. `returned`:
   * Neutron returned it whole now (false for a tag change patched onto what is kept: the rest is as old as before).
   */
  const keep = (kind: Kind, resource: Resource, returned = true): void => {
    const known = kept[kind].get(resource.id);
    if (known !== undefined && resource.revision_number < known.revision_number) return;
    kept[kind].set(resource.id, copy(resource));
    if (returned) seenAt[kind].set(resource.id, now());
    for (const entry of lists[kind].values()) {
      if (matches(resource, entry.filter)) entry.ids.add(resource.id);
      else entry.ids.delete(resource.id);
    }
  };

  const drop = (kind: Kind, id: string): boolean => {
    const had = kept[kind].delete(id);
    seenAt[kind].delete(id);
    for (const [key, entry] of lists[kind]) {
      // An answer whose last resource is gone is never served again (an empty answer is asked of Neutron): it is
      // forgotten, so that the lists kept are those of live resources. Kept, they would grow by one per endpoint
      // (EndpointOperInfo asks for a port whose status is older than it takes), and every write checks every list kept.
      if (entry.ids.delete(id) && entry.ids.size === 0) lists[kind].delete(key);
    }
    if (kind === 'networks') {
      // Neutron deletes a network's subnets (and network-owned ports) with it.
      for (const child of ['subnets', 'ports'] as const) {
        for (const [childId, r] of kept[child]) if ((r as Subnet | Port).network_id === id) drop(child, childId);
      }
    }
    return had;
  };

  /** A 404 naming kept resources: they are gone (another process deleted or replaced them). */
  const notFound = (args: readonly unknown[]): void => {
    const named = new Set(JSON.stringify(args).match(UUID) ?? []);
    let dropped = false;
    for (const kind of Object.keys(kept) as Kind[]) for (const id of named) if (drop(kind, id)) dropped = true;
    if (dropped) staleDrops++;
  };

  const call = async <T>(args: readonly unknown[], run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      if (isNotFound(err)) notFound(args);
      throw err;
    }
  };

  const patchTags = (resource: TaggedResource, id: string, change: (tags: readonly string[]) => string[]) => {
    const kind = TAGGED[resource];
    const known = kind === undefined ? undefined : kept[kind].get(id);
    if (kind === undefined || known === undefined) return;
    // Neutron bumps the revision on a tag change: an answer read before it must not overwrite this one.
    keep(kind, { ...known, tags: change(known.tags), revision_number: known.revision_number + 1 } as Resource, false);
  };

  /** A network's `subnets` attribute follows the subnets created and deleted through this decorator. */
  const networkSubnets = (networkId: string, change: (ids: readonly string[]) => string[]) => {
    const network = kept.networks.get(networkId) as Network | undefined;
    if (network !== undefined) kept.networks.set(networkId, { ...network, subnets: change(network.subnets) });
  };

  const freshList = async <T extends Resource>(
    kind: Kind,
    filter: ListFilter | undefined,
    run: (f: ListFilter | undefined) => Promise<T[]>,
  ): Promise<T[]> => {
    const result = await call([filter], () => run(filter));
    const key = cacheable(kind, filter);
    if (key === undefined || filter?.fields !== undefined) return result;
    for (const r of result) keep(kind, r);
    const answers = lists[kind];
    answers.set(JSON.stringify(key), { filter: key, ids: new Set(result.map((r) => r.id)) });
    // A bound for lists whose resources others delete (never through this decorator): the oldest go first.
    if (answers.size > LISTS_LIMIT) answers.delete(answers.keys().next().value as string);
    return result;
  };

  /** A list answered from what is kept (returned by Neutron at most `maxAgeMs` ago) when it can be, else asked. */
  const cachedList = async <T extends Resource>(
    kind: Kind,
    filter: ListFilter | undefined,
    run: (f: ListFilter | undefined) => Promise<T[]>,
    maxAgeMs: number,
  ): Promise<T[]> => {
    const key = cacheable(kind, filter);
    if (key !== undefined) {
      const recent = (r: Resource | undefined): r is Resource =>
        r !== undefined && matches(r, key) && recentEnough(kind, r.id, maxAgeMs);
      const entry = lists[kind].get(JSON.stringify(key));
      if (entry !== undefined && entry.ids.size > 0) {
        const found = [...entry.ids].map((id) => kept[kind].get(id));
        if (found.every(recent)) return copy(found as T[]);
      }
      const found = [...kept[kind].values()].filter((r) => matches(r, key));
      if (identifies(kind, key, found) && found.every(recent)) return copy(found as T[]);
    }
    return freshList(kind, filter, run);
  };

  /** `maxAgeMs`: how old a kept answer may be (0: always ask Neutron). */
  const show = async <T extends Resource>(kind: Kind, id: string, run: () => Promise<T>, maxAgeMs: number) => {
    const cached = maxAgeMs > 0;
    const known = cached && recentEnough(kind, id, maxAgeMs) ? kept[kind].get(id) : undefined;
    if (known !== undefined) return copy(known as T);
    if (cached && deleted[kind].has(id)) throw notFoundError(kind, id);
    const result = await call([id], run);
    keep(kind, result);
    return result;
  };

  const write = async <T extends Resource>(kind: Kind, args: readonly unknown[], run: () => Promise<T>) => {
    const result = await call(args, run);
    keep(kind, result);
    return result;
  };

  const remove = async (kind: Kind, id: string, run: () => Promise<void>) => {
    try {
      await run();
    } catch (err) {
      if (isNotFound(err)) {
        notFound([id]);
        markDeleted(kind, id);
      }
      throw err;
    }
    if (kind === 'networks') {
      // Neutron deleted the network's subnets (and network-owned ports) with it.
      for (const child of ['subnets', 'ports'] as const) {
        for (const [childId, r] of kept[child]) if ((r as Subnet | Port).network_id === id) markDeleted(child, childId);
      }
    }
    drop(kind, id);
    markDeleted(kind, id);
  };

  /** The reads, answered from what is kept when Neutron returned it at most `maxAgeMs` ago (0: always asked). */
  const reads = (inner: NeutronApi, maxAgeMs: number) => {
    const list = <T extends Resource>(kind: Kind, f: ListFilter | undefined, run: (x?: ListFilter) => Promise<T[]>) =>
      maxAgeMs > 0 ? cachedList(kind, f, run, maxAgeMs) : freshList(kind, f, run);
    return {
      listNetworks: (f?: ListFilter) => list('networks', f, (x) => inner.listNetworks(x)),
      showNetwork: (id: string) => show('networks', id, () => inner.showNetwork(id), maxAgeMs),
      listSubnets: (f?: ListFilter) => list('subnets', f, (x) => inner.listSubnets(x)),
      showSubnet: (id: string) => show('subnets', id, () => inner.showSubnet(id), maxAgeMs),
      listSubnetPools: (f?: ListFilter) => list('subnetpools', f, (x) => inner.listSubnetPools(x)),
      showSubnetPool: (id: string) => show('subnetpools', id, () => inner.showSubnetPool(id), maxAgeMs),
      listPorts: (f?: ListFilter) => list('ports', f, (x) => inner.listPorts(x)),
      showPort: (id: string) => show('ports', id, () => inner.showPort(id), maxAgeMs),
    };
  };

  const writes = (inner: NeutronApi): Omit<NeutronApi, keyof ReturnType<typeof reads>> => ({
    listExtensions: () => inner.listExtensions(),
    createNetwork: (body) => write('networks', [body], () => inner.createNetwork(body)),
    updateNetwork: (id, body) => write('networks', [id, body], () => inner.updateNetwork(id, body)),
    deleteNetwork: (id) => remove('networks', id, () => inner.deleteNetwork(id)),
    createSubnets: async (bodies) => {
      const created = await call([bodies], () => inner.createSubnets(bodies));
      for (const s of created) {
        keep('subnets', s);
        networkSubnets(s.network_id, (ids) => [...ids, s.id]);
      }
      return created;
    },
    updateSubnet: (id, body) => write('subnets', [id, body], () => inner.updateSubnet(id, body)),
    deleteSubnet: async (id) => {
      const networkId = (kept.subnets.get(id) as Subnet | undefined)?.network_id;
      try {
        await remove('subnets', id, () => inner.deleteSubnet(id));
      } finally {
        if (networkId !== undefined) networkSubnets(networkId, (ids) => ids.filter((s) => s !== id));
        // A kept network whose subnets are unknown now is dropped: its `subnets` must not lie.
        else for (const [netId, n] of kept.networks) if ((n as Network).subnets.includes(id)) drop('networks', netId);
      }
    },
    createSubnetPool: (body) => write('subnetpools', [body], () => inner.createSubnetPool(body)),
    updateSubnetPool: (id, body) => write('subnetpools', [id, body], () => inner.updateSubnetPool(id, body)),
    deleteSubnetPool: (id) => remove('subnetpools', id, () => inner.deleteSubnetPool(id)),
    createPort: (body) => write('ports', [body], () => inner.createPort(body)),
    updatePort: (id, body) => write('ports', [id, body], () => inner.updatePort(id, body)),
    deletePort: (id) => remove('ports', id, () => inner.deletePort(id)),
    listSecurityGroups: (f) => inner.listSecurityGroups(f),
    createSecurityGroup: (body) => inner.createSecurityGroup(body),
    deleteSecurityGroup: (id) => inner.deleteSecurityGroup(id),
    createSecurityGroupRules: (bodies) => inner.createSecurityGroupRules(bodies),
    replaceTags: async (resource, id, tags) => {
      const stored = await call([id, tags], () => inner.replaceTags(resource, id, tags));
      patchTags(resource, id, () => [...stored]);
      return stored;
    },
    addTag: async (resource, id, tag) => {
      await call([id], () => inner.addTag(resource, id, tag));
      patchTags(resource, id, (tags) => (tags.includes(tag) ? [...tags] : [...tags, tag]));
    },
    removeTag: async (resource, id, tag) => {
      try {
        await inner.removeTag(resource, id, tag);
      } finally {
        // Gone either way (a 404 may only mean the tag was): never keep a tag Neutron may not have.
        patchTags(resource, id, (tags) => tags.filter((t) => t !== tag));
      }
    },
  });

  // The API over `inner`; a view bound to a deadline (neutron/api.ts `withDeadline`) shares what is kept.
  const view = (inner: NeutronApi): CachingNeutronApi => {
    // The `recent` views of this view, by age (a caller names one or two ages: built once each).
    const recentViews = new Map<number, NeutronApi>();
    const api = {
      ...writes(inner),
      ...reads(inner, Number.POSITIVE_INFINITY),
      fresh: { ...writes(inner), ...reads(inner, 0) },
      recent: (maxAgeMs: number): NeutronApi => {
        let built = recentViews.get(maxAgeMs);
        if (built === undefined) {
          built = { ...writes(inner), ...reads(inner, Math.max(0, maxAgeMs)) };
          recentViews.set(maxAgeMs, built);
        }
        return built;
      },
      get staleDrops() {
        return staleDrops;
      },
      keptCount: () => Object.values(kept).reduce((n, m) => n + m.size, 0),
      keptListCount: () => Object.values(lists).reduce((n, m) => n + m.size, 0),
      // Nothing to bind (the embedded store, whose calls never wait): this view itself, nothing built per request.
      withDeadline: (deadline: Deadline): CachingNeutronApi => {
        const bound = withDeadline(inner, deadline);
        return bound === inner ? (api as CachingNeutronApi) : view(bound);
      },
      [CACHING]: true,
    };
    return api as CachingNeutronApi;
  };
  return view(inner);
}
