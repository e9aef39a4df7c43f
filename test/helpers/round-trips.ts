/**
 * The Neutron calls of one network, two containers and their teardown, per phase and per `NeutronApi` method, in
 * the order dockerd (libnetwork) calls the plugin: `docker network create`, two `docker run` (RequestAddress,
 * CreateEndpoint, Join, EndpointOperInfo), two `docker rm -f` (Revoke, Leave, DeleteEndpoint, ReleaseAddress) and
 * `docker network rm` (the IPAM's ReleaseAddress of the gateway and ReleasePool, then DeleteNetwork, as engines
 * 20.10 and later do).
 */
import type { KuryrDriver } from '../../src/driver/driver.ts';
import type { CountingNeutronApi, NeutronMethod } from '../../src/neutron/counting.ts';
import { type DockerEndpoint, type DockerNetwork, endpointJoin, networkCreate } from './docker-sequence.ts';

export type Counts = Partial<Record<NeutronMethod, number>>;

export interface Phase {
  phase: string;
  calls: Counts;
  total: number;
}

/** `after − before`, without zero entries. */
function delta(before: Counts, after: Counts): Counts {
  const out: Counts = {};
  for (const [method, n] of Object.entries(after) as [NeutronMethod, number][]) {
    const d = n - (before[method] ?? 0);
    if (d !== 0) out[method] = d;
  }
  return out;
}

/** `docker rm -f`: Revoke, DeleteEndpoint, ReleaseAddress (Leave never reaches the driver). */
async function dockerRm(driver: KuryrDriver, ep: DockerEndpoint): Promise<void> {
  await driver.revokeExternalConnectivity(ep.id);
  await driver.deleteEndpoint(ep.id);
  for (const p of ep.network.pools) {
    const address = p.v6 ? ep.address6 : ep.address;
    if (address) await driver.releaseAddress({ PoolID: p.poolId, Address: address.split('/')[0]! });
  }
}

/** `docker network rm` (engines 20.10 and later): the IPAM first (gateway, pool), then the network driver. */
async function dockerNetworkRm(driver: KuryrDriver, net: DockerNetwork): Promise<void> {
  for (const p of net.pools) {
    await driver.releaseAddress({ PoolID: p.poolId, Address: p.gateway.split('/')[0]! });
    await driver.releasePool(p.poolId);
  }
  await driver.deleteNetwork(net.id);
}

/** Runs the lifecycle on `driver` (whose Neutron API is `neutron`) and returns the calls of each phase. */
export async function lifecycleCalls(
  driver: KuryrDriver,
  neutron: CountingNeutronApi,
  subnet: string,
  gateway: string,
): Promise<Phase[]> {
  const phases: Phase[] = [];
  let last = neutron.callCounts();
  let lastTotal = neutron.totalCalls();
  const mark = (phase: string) => {
    const now = neutron.callCounts();
    phases.push({ phase, calls: delta(last, now), total: neutron.totalCalls() - lastTotal });
    last = now;
    lastTotal = neutron.totalCalls();
  };
  const net = await networkCreate(driver, { subnet, gateway });
  mark('network create');
  const endpoints: DockerEndpoint[] = [];
  for (const n of [1, 2]) {
    // `docker run`: RequestAddress, CreateEndpoint and Join, then the EndpointOperInfo dockerd asks for.
    const ep = await endpointJoin(driver, net);
    mark(`endpoint create/join ${n}`);
    await driver.endpointOperInfo(ep.id);
    mark(`endpoint info ${n}`);
    endpoints.push(ep);
  }
  const [a, b] = endpoints as [DockerEndpoint, DockerEndpoint];
  await dockerRm(driver, a);
  mark('leave/delete 1');
  await dockerRm(driver, b);
  mark('leave/delete 2');
  await dockerNetworkRm(driver, net);
  mark('network delete');
  return phases;
}

const CREATE_TAGGED: Counts = {
  listSubnetPools: 1,
  createSubnetPool: 1,
  listNetworks: 1,
  createNetwork: 1,
  replaceTags: 2,
  createSubnets: 1,
};
const CREATE_TAGLESS: Counts = {
  listSubnetPools: 1,
  createSubnetPool: 1,
  listNetworks: 1,
  createNetwork: 1,
  createSubnets: 1,
};
/** The embedded backend's overlap checks (embedded-subnets.ts): the subnets in the store, twice. */
const EMBEDDED_CHECKS: Counts = { listSubnets: 2 };
/** RequestAddress makes the port, CreateEndpoint binds it (and tags it); Join asks the cache only. */
const RUN_TAGGED: Counts = { createPort: 1, updatePort: 1, replaceTags: 1 };
const RUN_TAGLESS: Counts = { createPort: 1, updatePort: 1 };
/**
 * EndpointOperInfo, right after the run: the port as CreateEndpoint's write returned it is recent enough (a real
 * Neutron's status is asked again once it is older than STATUS_MAX_AGE_MS), and with the embedded backend the
 * plugin is the agent: no call either way.
 */
const INFO: Counts = {};
/** DeleteEndpoint writes nothing; ReleaseAddress deletes the port. */
const RM: Counts = { deletePort: 1 };
/**
 * DeleteNetwork: the network and its pool (its subnets are known: no lookup); the IPAM's ReleaseAddress (gateway)
 * and ReleasePool then know the pool is gone: no call.
 */
const NETWORK_RM: Counts = { deleteNetwork: 1, deleteSubnetPool: 1 };

function plus(a: Counts, b: Counts): Counts {
  const out: Counts = { ...a };
  for (const [k, v] of Object.entries(b) as [keyof Counts, number][]) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** The calls each phase makes, per method: with tags or without, with the embedded backend's agent or not. */
export function expectedLifecycle(tags: boolean, agent: boolean): Record<string, Counts> {
  const create = tags ? CREATE_TAGGED : CREATE_TAGLESS;
  const run = tags ? RUN_TAGGED : RUN_TAGLESS;

  return {
    'network create': agent ? plus(create, EMBEDDED_CHECKS) : create,
    'endpoint create/join 1': run,
    'endpoint info 1': INFO,
    'endpoint create/join 2': run,
    'endpoint info 2': INFO,
    'leave/delete 1': RM,
    'leave/delete 2': RM,
    'network delete': NETWORK_RM,
  };
}

/** One line per phase, for diagnostics. */
export function describePhases(phases: readonly Phase[]): string {
  const total = phases.reduce((n, p) => n + p.total, 0);
  return `${phases.map((p) => `${p.phase}: ${p.total} ${JSON.stringify(p.calls)}`).join('; ')}; total ${total}`;
}
