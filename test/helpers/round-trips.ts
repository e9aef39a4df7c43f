/**
 * The Neutron calls of one network, two containers and their teardown, per phase and per `NeutronApi` method, in
 * the order dockerd (libnetwork) calls the plugin: `docker network create`, two `docker run` (RequestAddress,
 * CreateEndpoint, Join, EndpointOperInfo), two `docker rm -f` (Revoke, Leave, DeleteEndpoint, ReleaseAddress) and
 * `docker network rm` (DeleteNetwork first, then the IPAM's ReleaseAddress of the gateway and ReleasePool, as
 * libnetwork's `network.delete` does).
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

/** `docker run`: up to Join, then the EndpointOperInfo dockerd asks for. */
async function dockerRun(driver: KuryrDriver, net: DockerNetwork): Promise<DockerEndpoint> {
  const ep = await endpointJoin(driver, net);
  await driver.endpointOperInfo(ep.id);
  return ep;
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

/** `docker network rm`: the network driver first, then the IPAM (gateway, pool). */
async function dockerNetworkRm(driver: KuryrDriver, net: DockerNetwork): Promise<void> {
  await driver.deleteNetwork(net.id);
  for (const p of net.pools) {
    await driver.releaseAddress({ PoolID: p.poolId, Address: p.gateway.split('/')[0]! });
    await driver.releasePool(p.poolId);
  }
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
  const a = await dockerRun(driver, net);
  mark('docker run 1');
  const b = await dockerRun(driver, net);
  mark('docker run 2');
  await dockerRm(driver, a);
  mark('docker rm 1');
  await dockerRm(driver, b);
  mark('docker rm 2');
  await dockerNetworkRm(driver, net);
  mark('network rm');
  return phases;
}

/** One line per phase, for diagnostics. */
export function describePhases(phases: readonly Phase[]): string {
  const total = phases.reduce((n, p) => n + p.total, 0);
  return `${phases.map((p) => `${p.phase}: ${p.total} ${JSON.stringify(p.calls)}`).join('; ')}; total ${total}`;
}
