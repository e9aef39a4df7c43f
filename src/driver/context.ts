/**
 * What the driver is given: the Neutron API, host binding, settings and a logger; per request, its deadline. The driver keeps no state
 * of its own beyond locks and short-lived reservations and leases; everything else is found again in Neutron (by
 * tags, or by names on a Neutron without them), through the cache in front of the Neutron API.
 */
import type { HostNetworkAgent } from '../binding/binder.ts';
import type { Binder } from './port-drivers/binder.ts';
import type { PortPublisher } from '../binding/publish.ts';
import type { DriverSettings } from '../config/config.ts';
import type { NeutronApi } from '../neutron/api.ts';
import { type CachingNeutronApi, cachingNeutron, isCaching } from '../neutron/caching.ts';
import { isNotFound } from '../neutron/errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { RequestBudget } from '../util/deadline.ts';
import { KeyedLock } from './locks.ts';
import { Marks, type TagSupport } from './marks.ts';

export interface DriverDeps {
  neutron: NeutronApi;
  binder: Binder;
  /** Present for the embedded backend, where the plugin plays the Neutron agent (bridge + gateway). */
  agent?: HostNetworkAgent;
  /** Embedded backend: published ports (`-p`) as DNAT on this host (binding/publish.ts). */
  publisher?: PortPublisher;
  settings: DriverSettings;
  log: Logger;
  /** Asks Docker for names people can read (recorded in Neutron descriptions); absent when Docker is not asked. */
  names?: DockerNames;
  /** Which resources take tags on this Neutron (detected at start-up); default: all of them. */
  tagSupport?: TagSupport;
}

/** What the driver asks of the Docker Engine API. */
export interface DockerNames {
  /** The name of a Docker network, or undefined when Docker does not (yet) know it. */
  networkName(dockerNetworkId: string): Promise<string | undefined>;
}

/**
 * Blocks of a shared pool (and pools RequestPool just created) handed to Docker by RequestPool but not yet turned
 * into a subnet by CreateNetwork: the gateway request needs no subnet lookup for them.
 */
export class BlockReservations {
  private readonly held = new Map<string, number>();
  private readonly ttlMs: number;

  constructor(ttlMs = 120_000) {
    this.ttlMs = ttlMs;
  }

  /** CIDRs of `poolId` currently reserved. */
  reserved(poolId: string, now = Date.now()): string[] {
    const out: string[] = [];
    for (const [key, expiry] of this.held) {
      if (expiry <= now) this.held.delete(key);
      else if (key.startsWith(`${poolId}@`)) out.push(key.slice(poolId.length + 1));
    }
    return out;
  }

  /** True while the block (or a pool RequestPool just created) is reserved: no subnet of it exists yet. */
  isReserved(poolId: string, cidr: string, now = Date.now()): boolean {
    return this.reserved(poolId, now).includes(cidr);
  }

  reserve(poolId: string, cidr: string, now = Date.now()): void {
    this.held.set(`${poolId}@${cidr}`, now + this.ttlMs);
  }

  release(poolId: string, cidr: string): void {
    this.held.delete(`${poolId}@${cidr}`);
  }
}

/** Keys remembered for a while (each expires `ttlMs` after it was added); lost on restart. */
export class ExpiringMap<V> {
  private readonly held = new Map<string, { value: V; expiresAt: number }>();
  private readonly ttlMs: number;

  constructor(ttlMs = 120_000) {
    this.ttlMs = ttlMs;
  }

  /**
   * Entries are held in the order they expire (a key set again moves to the end): the expired ones are the first,
   * and are dropped here without walking the live ones (one endpoint is added per container lifecycle).
   */
  set(key: string, value: V, now = Date.now()): void {
    for (const [k, entry] of this.held) {
      if (entry.expiresAt > now) break;
      this.held.delete(k);
    }
    this.held.delete(key);
    this.held.set(key, { value, expiresAt: now + this.ttlMs });
  }

  /** Entries held, expired ones not yet dropped included (for tests). */
  get size(): number {
    return this.held.size;
  }

  get(key: string, now = Date.now()): V | undefined {
    const entry = this.held.get(key);
    return entry !== undefined && entry.expiresAt > now ? entry.value : undefined;
  }

  delete(key: string): void {
    this.held.delete(key);
  }
}

/** Keys that expire (`ExpiringMap` without values). */
export class ExpiringKeys {
  private readonly map: ExpiringMap<true>;

  constructor(ttlMs = 120_000) {
    this.map = new ExpiringMap(ttlMs);
  }

  add(key: string, now = Date.now()): void {
    this.map.set(key, true, now);
  }

  has(key: string, now = Date.now()): boolean {
    return this.map.get(key, now) === true;
  }

  delete(key: string): void {
    this.map.delete(key);
  }
}

/**
 * Leases on pools of ours (`<prefix>-<cidr>`), counted per pool since Docker networks of one CIDR share the pool:
 * RequestPool takes one (pending); CreateNetwork turns a pending one into a created one (then the subnet keeps
 * the pool); ReleasePool gives back a created one, or else a pending one (a network whose creation failed).
 * While a pending lease is held, ReleasePool, DeleteNetwork and gc never delete the pool: another Docker network
 * was given it a moment ago and has not made its subnet yet. A pending lease whose network never came expires.
 * Lost on restart, when the subnets alone say whether a pool is used.
 */
export class PoolLeases {
  private readonly pending = new Map<string, number[]>();
  private readonly created = new Map<string, number>();
  private readonly ttlMs: number;

  constructor(ttlMs = 120_000) {
    this.ttlMs = ttlMs;
  }

  /** RequestPool handed the pool out. */
  take(poolId: string, now = Date.now()): void {
    this.pending.set(poolId, [...this.live(poolId, now), now + this.ttlMs]);
  }

  /** CreateNetwork made the subnet of a pending lease. */
  networkCreated(poolId: string, now = Date.now()): void {
    if (this.live(poolId, now).length === 0) return;
    this.shift(poolId, now);
    this.created.set(poolId, (this.created.get(poolId) ?? 0) + 1);
  }

  /** ReleasePool: a created network's lease if there is one, else a pending one. */
  release(poolId: string, now = Date.now()): void {
    const created = this.created.get(poolId) ?? 0;
    if (created > 1) this.created.set(poolId, created - 1);
    else if (created === 1) this.created.delete(poolId);
    else this.shift(poolId, now);
  }

  /** True while a Docker network was given the pool and has not made its subnet yet. */
  isHeld(poolId: string, now = Date.now()): boolean {
    return this.live(poolId, now).length > 0;
  }

  private shift(poolId: string, now: number): void {
    const left = this.live(poolId, now).slice(1);
    if (left.length > 0) this.pending.set(poolId, left);
    else this.pending.delete(poolId);
  }

  private live(poolId: string, now: number): number[] {
    return (this.pending.get(poolId) ?? []).filter((expiry) => expiry > now);
  }
}

/** Shared per-process coordination for the driver modules. */
export interface DriverRuntime extends Omit<DriverDeps, 'neutron'> {
  /** The Neutron API behind its cache (neutron/caching.ts); `rt.neutron.fresh` always asks Neutron. */
  neutron: CachingNeutronApi;
  locks: KeyedLock;
  reservations: BlockReservations;
  leases: PoolLeases;
  /**
   * Docker pools (`<pool ID>@<CIDR>`) whose subnet DeleteNetwork has just deleted: a ReleaseAddress (gateway, aux
   * addresses) or ReleasePool that comes after DeleteNetwork (engines since 20.10 release the IPAM first; a
   * rollback or another engine may not) has no subnet to look up. A pool stands for one subnet at a time
   * (network.ts refuses a second), so none is left until CreateNetwork ties one again.
   */
  deletedSubnets: ExpiringKeys;
  /**
   * Endpoints DeleteEndpoint has ended: their port, unplugged, is no endpoint's any more although it still carries
   * the endpoint's marks (DeleteEndpoint writes nothing to Neutron); ReleaseAddress, next, deletes or hands it back.
   */
  endedEndpoints: ExpiringKeys;
  /**
   * `--ip-range`s RequestPool noted for the CreateNetwork that follows (`<pool ID> <CIDR>` → ip-range): Docker
   * hands the ip-range to RequestPool only (ip-range-subnet.ts).
   */
  ipRanges: ExpiringMap<string>;
  /**
   * Gateways the Swarm manager's allocator asked for before the pool had a subnet (`<pool ID>@<CIDR>` →
   * address), for the subnet the first task's address makes (swarm.ts). Taken when that subnet is made, dropped
   * by ReleasePool.
   */
  swarmGateways: Map<string, string>;
  /** How our resources are recognised: tags, or names without the tag extensions (marks.ts). */
  marks: Marks;
  /**
   * The deadline of the request being served (`forRequest`): its Neutron calls end by it, and undoing partial work
   * asks for its longer rollback budget. Absent outside a request (gc, start-up).
   */
  deadline?: RequestBudget;
}

export function createRuntime(deps: DriverDeps): DriverRuntime {
  return {
    ...deps,
    // The composition root (app.ts) gives serve and gc one already; tests may give a bare store.
    neutron: isCaching(deps.neutron) ? deps.neutron : cachingNeutron(deps.neutron),
    locks: new KeyedLock(),
    reservations: new BlockReservations(),
    leases: new PoolLeases(),
    deletedSubnets: new ExpiringKeys(),
    endedEndpoints: new ExpiringKeys(),
    ipRanges: new ExpiringMap(),
    swarmGateways: new Map(),
    marks: new Marks(deps.tagSupport),
  };
}

/**
 * The runtime for one request: the same locks, reservations, leases, notes and cache, with every Neutron call
 * bound to the request's `deadline` (neutron/api.ts `withDeadline`). A view lives for one request: what must
 * outlive it is a field of the runtime, never kept by the view's identity.
 */
export function forRequest(rt: DriverRuntime, deadline: RequestBudget): DriverRuntime {
  return { ...rt, neutron: rt.neutron.withDeadline(deadline), deadline };
}

/**
 * Runs one driver operation; when it failed on a 404 that showed the cache to hold a resource another process
 * deleted or replaced (neutron/caching.ts dropped it), runs it once more: it then looks again in Neutron. Every
 * operation is idempotent, so a second run only finishes what the first began.
 */
export async function lookingAgain<T>(rt: DriverRuntime, operation: (rt: DriverRuntime) => Promise<T>): Promise<T> {
  const before = rt.neutron.staleDrops;
  try {
    return await operation(rt);
  } catch (err) {
    if (!isNotFound(err) || rt.neutron.staleDrops === before) throw err;
    rt.log.info({ err: errorMessage(err) }, 'a cached Neutron resource was gone: looking again');
    return operation(rt);
  }
}

/** A step that puts back what part of an operation did (run in reverse order when the operation fails). */
export type Undo = () => Promise<unknown>;

/** Message of any thrown value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
