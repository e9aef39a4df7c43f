import { randomBytes } from 'node:crypto';
/**
 * Test doubles of the host side (Binder, HostNetworkAgent) that record what the driver asked for, and a driver
 * factory over the embedded store in memory.
 */
import type { Binder, BindRequest } from '../../src/driver/port-drivers/binder.ts';
import type { HostNetworkAgent, HostNetworkSpec, HostRoute, InterfaceNames } from '../../src/binding/binder.ts';
import { interfaceNames } from '../../src/binding/names.ts';
import type { DriverSettings } from '../../src/config/config.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { KuryrDriver } from '../../src/driver/driver.ts';
import type { DriverDeps } from '../../src/driver/context.ts';
import { RequestDeadline } from '../../src/util/deadline.ts';
import type { Port } from '../../src/neutron/types.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/store.ts';
import type { TagSupport } from '../../src/driver/marks.ts';
import { taglessNeutron } from './tagless-neutron.ts';

export class FakeBinder implements Binder {
  readonly bound = new Map<string, BindRequest>();
  readonly calls: string[] = [];
  failNext: Error | undefined;

  async bind(req: BindRequest): Promise<InterfaceNames> {
    this.calls.push(`bind ${req.port.id}`);
    if (this.failNext !== undefined) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
    this.bound.set(req.port.id, req);
    return interfaceNames(req.port.id);
  }

  async unbind(port: Port): Promise<void> {
    this.calls.push(`unbind ${port.id}`);
    this.bound.delete(port.id);
  }
}

export class FakeAgent implements HostNetworkAgent {
  readonly networks = new Map<string, HostNetworkSpec>();
  /** What removeNetwork was asked to remove, in order. */
  readonly removed: { networkId: string; bridge: string | undefined }[] = [];
  /** The host's routes, as hostRoutes() reports them. */
  routes: HostRoute[] = [];
  failNext: Error | undefined;

  async ensureNetwork(spec: HostNetworkSpec): Promise<void> {
    if (this.failNext !== undefined) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
    this.networks.set(spec.networkId, spec);
  }

  async removeNetwork(networkId: string, bridge?: string): Promise<void> {
    this.removed.push({ networkId, bridge });
    this.networks.delete(networkId);
  }

  /** The families hostRoutes() was asked for, in order ('both' without a version). */
  readonly routeReads: (4 | 6 | 'both')[] = [];

  /** Called as hostRoutes() is asked (before it answers). */
  onRouteRead: (() => Promise<void> | void) | undefined;

  async hostRoutes(version?: 4 | 6): Promise<HostRoute[]> {
    this.routeReads.push(version ?? 'both');
    await this.onRouteRead?.();
    return this.routes.filter((r) => version === undefined || (r.cidr.includes(':') ? 6 : 4) === version);
  }
}

export const TEST_SETTINGS: DriverSettings = {
  capabilityScope: 'local',
  localDefaultAddressSpace: 'no_address_space',
  globalDefaultAddressSpace: 'no_address_space',
  subnetpoolNamePrefix: 'kuryrPool',
  defaultSubnetpoolV4: 'kuryr',
  defaultSubnetpoolV6: 'kuryr6',
  enableDhcp: true,
  vethDstPrefix: 'eth',
  hostId: 'test-host',
  driverName: 'kuryr',
  processExternalConnectivity: true,
};

/**
 * A driver over an in-memory embedded store with the default pools in place (`agent: false`, and by default with
 * `tagSupport`: as on the neutron backend, no agent, so the embedded backend's host rules do not apply). With
 * `tagSupport`, the store
 * plays a Neutron without (some) tag extensions (tagless-neutron.ts) and the driver is told so, as `serve` does.
 */
export async function makeDriver(
  settings: Partial<DriverSettings> = {},
  opts: { tagSupport?: TagSupport; agent?: boolean } = {},
) {
  const store = openEmbeddedNeutron({ path: ':memory:' });
  const neutron = opts.tagSupport === undefined ? store : taglessNeutron(store, opts.tagSupport);
  await neutron.createSubnetPool({ name: 'kuryr', prefixes: ['10.10.0.0/16'], default_prefixlen: 24 });
  await neutron.createSubnetPool({ name: 'kuryr6', prefixes: ['fd6b:7572:7972::/48'], default_prefixlen: 64 });
  const binder = new FakeBinder();
  const agent = new FakeAgent();
  const driver = servedDriver({
    neutron,
    binder,
    // Without an agent the driver behaves as on a real Neutron (the linuxbridge agent plugs the bridges); a
    // store playing a Neutron without tags is one (the embedded backend always has every tag extension).
    ...((opts.agent ?? opts.tagSupport === undefined) ? { agent } : {}),
    settings: { ...TEST_SETTINGS, ...settings },
    log: silentLogger(),
    ...(opts.tagSupport === undefined ? {} : { tagSupport: opts.tagSupport }),
  });
  const violations = () => ('violations' in neutron ? [...neutron.violations] : []);
  return { driver, neutron, binder, agent, violations, close: () => store.close() };
}

/**
 * A driver whose every call runs as the plugin server runs it (plugin/server.ts): on a `forRequest` view bound to
 * a request deadline of its own, so per-process state kept by a view's identity instead of the runtime is lost
 * between calls here as it is in the plugin. `runtime` stays the driver's own.
 */
export function servedDriver(deps: DriverDeps): KuryrDriver {
  const driver = new KuryrDriver(deps);
  return new Proxy(driver, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || prop === 'forRequest' || prop === 'constructor') return value;
      return (...args: unknown[]) => {
        const deadline = new RequestDeadline(22_000, 28_000);
        const view = target.forRequest(deadline) as unknown as Record<PropertyKey, (...a: unknown[]) => unknown>;
        const out = view[prop]!(...args);
        if (out instanceof Promise) return out.finally(() => deadline.dispose());
        deadline.dispose();
        return out;
      };
    },
  });
}

/** A fresh random 64-hex Docker ID, as dockerd makes them. */
export function dockerId(): string {
  return randomBytes(32).toString('hex');
}

/** A Docker-style locally administered MAC. */
export function mac(n: number): string {
  return `02:42:ac:11:${((n >> 8) & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`;
}
