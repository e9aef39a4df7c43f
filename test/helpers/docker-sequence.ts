/**
 * Replays the call sequences dockerd makes for `docker network create/rm`, `docker run`/`rm` and
 * `docker network connect/disconnect`, against a driver, so unit tests exercise the same
 * order of calls as a real engine.
 */
import type { KuryrDriver } from '../../src/driver/driver.ts';
import { dockerId, mac } from './fakes.ts';

export interface NetworkSpec {
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  subnet6?: string;
  gateway6?: string;
  /** `--ipv6` */
  ipv6?: boolean;
  opts?: Record<string, string>;
  ipamOpts?: Record<string, string>;
  /** `--internal` */
  internal?: boolean;
}

export interface DockerNetwork {
  id: string;
  pools: { v6: boolean; poolId: string; pool: string; gateway: string }[];
}

const GW = { RequestAddressType: 'com.docker.network.gateway' };

/** `docker network create -d kuryr --ipam-driver kuryr ...` */
export async function networkCreate(driver: KuryrDriver, spec: NetworkSpec = {}): Promise<DockerNetwork> {
  const id = dockerId();
  const families: { v6: boolean; subnet: string; gateway: string; range: string }[] = [
    { v6: false, subnet: spec.subnet ?? '', gateway: spec.gateway ?? '', range: spec.ipRange ?? '' },
  ];
  if (spec.ipv6) families.push({ v6: true, subnet: spec.subnet6 ?? '', gateway: spec.gateway6 ?? '', range: '' });
  const pools: DockerNetwork['pools'] = [];
  try {
    for (const f of families) {
      const pool = await driver.requestPool({
        Pool: f.subnet,
        SubPool: f.range,
        Options: spec.ipamOpts ?? {},
        V6: f.v6,
      });
      pools.push({ v6: f.v6, poolId: pool.PoolID, pool: pool.Pool, gateway: '' });
      const gw = await driver.requestAddress({ PoolID: pool.PoolID, Address: f.gateway, Options: GW });
      pools[pools.length - 1]!.gateway = gw.Address;
    }
    const datum = (p: DockerNetwork['pools'][number]) => ({
      AddressSpace: 'no_address_space',
      Pool: p.pool,
      Gateway: p.gateway,
    });
    await driver.createNetwork({
      NetworkID: id,
      Options: {
        'com.docker.network.generic': spec.opts ?? {},
        'com.docker.network.enable_ipv6': spec.ipv6 === true,
        ...(spec.internal === true ? { 'com.docker.network.internal': true } : {}),
      },
      IPv4Data: pools.filter((p) => !p.v6).map(datum),
      IPv6Data: pools.filter((p) => p.v6).map(datum),
    });
  } catch (err) {
    // Docker's rollback when CreateNetwork fails: release gateways and pools, no DeleteNetwork.
    for (const p of pools) {
      if (p.gateway)
        await driver.releaseAddress({ PoolID: p.poolId, Address: p.gateway.split('/')[0]! }).catch(() => undefined);
      await driver.releasePool(p.poolId).catch(() => undefined);
    }
    throw err;
  }
  return { id, pools };
}

/** `docker network rm` */
export async function networkRemove(driver: KuryrDriver, net: DockerNetwork): Promise<void> {
  for (const p of net.pools) {
    await driver.releaseAddress({ PoolID: p.poolId, Address: p.gateway.split('/')[0]! });
    await driver.releasePool(p.poolId);
  }
  await driver.deleteNetwork(net.id);
}

export interface DockerEndpoint {
  network: DockerNetwork;
  id: string;
  mac: string;
  address: string;
  address6: string;
}

let macCounter = 0;

/** `docker run --net N [--ip A] [--ip6 A6] [--mac-address M]` (or `docker network connect`) up to Join. */
export async function endpointJoin(
  driver: KuryrDriver,
  net: DockerNetwork,
  opts: { ip?: string; ip6?: string; mac?: string; exposed?: { Proto: number; Port: number }[] } = {},
): Promise<DockerEndpoint> {
  const endpointMac = opts.mac ?? mac(++macCounter);
  const options = { 'com.docker.network.endpoint.macaddress': endpointMac };
  const v4 = net.pools.find((p) => !p.v6);
  const v6 = net.pools.find((p) => p.v6);
  const address = v4
    ? (await driver.requestAddress({ PoolID: v4.poolId, Address: opts.ip ?? '', Options: options })).Address
    : '';
  const address6 = v6
    ? (await driver.requestAddress({ PoolID: v6.poolId, Address: opts.ip6 ?? '', Options: options })).Address
    : '';
  const id = dockerId();
  try {
    await driver.createEndpoint({
      NetworkID: net.id,
      EndpointID: id,
      Interface: { Address: address, AddressIPv6: address6, MacAddress: endpointMac },
      Options: opts.exposed === undefined ? {} : { 'com.docker.network.endpoint.exposedports': opts.exposed },
    });
  } catch (err) {
    if (v4 && address) await driver.releaseAddress({ PoolID: v4.poolId, Address: address.split('/')[0]! });
    if (v6 && address6) await driver.releaseAddress({ PoolID: v6.poolId, Address: address6.split('/')[0]! });
    throw err;
  }
  await driver.join(id);
  return { network: net, id, mac: endpointMac, address, address6 };
}

/** `docker rm -f` / `docker network disconnect`: Revoke, Leave, DeleteEndpoint, ReleaseAddress v4 then v6. */
export async function endpointLeave(driver: KuryrDriver, ep: DockerEndpoint): Promise<void> {
  await driver.revokeExternalConnectivity(ep.id);
  await driver.deleteEndpoint(ep.id);
  const v4 = ep.network.pools.find((p) => !p.v6);
  const v6 = ep.network.pools.find((p) => p.v6);
  if (v4 && ep.address) await driver.releaseAddress({ PoolID: v4.poolId, Address: ep.address.split('/')[0]! });
  if (v6 && ep.address6) await driver.releaseAddress({ PoolID: v6.poolId, Address: ep.address6.split('/')[0]! });
}
