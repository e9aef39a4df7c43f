// The driver's cache stays correct under other processes' writes: the CLI (`kuryr subnetpool delete/create`), gc
// in another process, another host or an operator deleting or replacing what this process cached. Each case was
// a failure until the plugin restarted (e.g. "Subnet pool ... could not be found").
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { makeDriver } from '../helpers/fakes.ts';
import { endpointJoin, endpointLeave, networkCreate, networkRemove } from '../helpers/docker-sequence.ts';

type Env = Awaited<ReturnType<typeof makeDriver>>;

describe('the cache under other processes’ writes', () => {
  let env: Env;
  beforeEach(async () => {
    env = await makeDriver();
  });
  afterEach(() => env.close());

  // `env.neutron` is the store itself: writes through it are another process's (they bypass the driver's cache).

  test('an own pool removed by gc in another process: docker network create of that CIDR works', async () => {
    await env.driver.requestPool({ Pool: '10.91.0.0/24', SubPool: '', Options: {}, V6: false });
    const [orphan] = await env.neutron.listSubnetPools({ name: 'kuryrPool-10.91.0.0/24' });
    await env.neutron.deleteSubnetPool(orphan!.id);
    const net = await networkCreate(env.driver, { subnet: '10.91.0.0/24' });
    const ep = await endpointJoin(env.driver, net);
    assert.match(ep.address, /^10\.91\.0\.\d+\/24$/);
    await endpointLeave(env.driver, ep);
    await networkRemove(env.driver, net);
  });

  test('the default pool replaced by an operator (delete + create): a network without --subnet uses the new one', async () => {
    const first = await networkCreate(env.driver);
    await networkRemove(env.driver, first);
    const [old] = await env.neutron.listSubnetPools({ name: 'kuryr' });
    await env.neutron.deleteSubnetPool(old!.id);
    await env.neutron.createSubnetPool({ name: 'kuryr', prefixes: ['10.77.0.0/16'], default_prefixlen: 24 });
    const net = await networkCreate(env.driver);
    assert.match(net.pools[0]!.pool, /^10\.77\.\d+\.0\/24$/);
    const ep = await endpointJoin(env.driver, net);
    assert.match(ep.address, /^10\.77\./);
    await endpointLeave(env.driver, ep);
    await networkRemove(env.driver, net);
  });

  test('a named pool replaced with `kuryr subnetpool delete/create`: the next network uses the new pool', async () => {
    await env.neutron.createSubnetPool({ name: 'team', prefixes: ['10.78.0.0/16'], default_prefixlen: 24 });
    const spec = {
      subnet: '10.78.5.0/24',
      opts: { 'neutron.pool.name': 'team' },
      ipamOpts: { 'neutron.pool.name': 'team' },
    };
    const first = await networkCreate(env.driver, spec);
    await networkRemove(env.driver, first);
    const [old] = await env.neutron.listSubnetPools({ name: 'team' });
    await env.neutron.deleteSubnetPool(old!.id);
    const replaced = await env.neutron.createSubnetPool({
      name: 'team',
      prefixes: ['10.78.0.0/16'],
      default_prefixlen: 24,
    });
    const net = await networkCreate(env.driver, spec);
    const [subnet] = await env.neutron.listSubnets({ cidr: '10.78.5.0/24' });
    assert.equal(subnet!.subnetpool_id, replaced.id);
    await networkRemove(env.driver, net);
  });

  test('the port RequestAddress made, deleted by an operator before CreateEndpoint: the endpoint still comes up', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.92.0.0/24' });
    const mac = '02:42:0a:5c:00:05';
    const got = await env.driver.requestAddress({
      PoolID: net.pools[0]!.poolId,
      Address: '',
      Options: { 'com.docker.network.endpoint.macaddress': mac },
    });
    const [port] = await env.neutron.listPorts({ mac_address: mac });
    await env.neutron.deletePort(port!.id);
    const id = 'e'.repeat(64);
    await env.driver.createEndpoint({
      NetworkID: net.id,
      EndpointID: id,
      Interface: { Address: got.Address, MacAddress: mac },
    });
    const [now] = await env.neutron.listPorts({ device_id: id });
    assert.ok(now, 'a port for the endpoint');
    assert.equal(`${now.fixed_ips[0]!.ip_address}/24`, got.Address);
    assert.ok(env.binder.bound.has(now.id));
  });

  test('a Docker network whose Neutron network another host deleted: DeleteNetwork succeeds, nothing is left', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.93.0.0/24' });
    const [network] = await env.neutron.listNetworks();
    await env.neutron.deleteNetwork(network!.id);
    // dockerd's order for `docker network rm`: DeleteNetwork, then the IPAM release (libnetwork network.delete).
    await env.driver.deleteNetwork(net.id);
    for (const p of net.pools) {
      await env.driver.releaseAddress({ PoolID: p.poolId, Address: p.gateway.split('/')[0]! });
      await env.driver.releasePool(p.poolId);
    }
    assert.deepEqual((await env.neutron.listSubnetPools()).map((p) => p.name).sort(), ['kuryr', 'kuryr6']);
  });
});
