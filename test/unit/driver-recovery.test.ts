// The state a crash between two steps leaves behind, and what the retried Docker call makes of it.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { networkDescription } from '../../src/driver/network-description.ts';
import { dockerId, makeDriver, TEST_SETTINGS } from '../helpers/fakes.ts';
import { endpointJoin, networkCreate, networkRemove } from '../helpers/docker-sequence.ts';

type Env = Awaited<ReturnType<typeof makeDriver>>;

describe('recovery from a crash between two steps', () => {
  let env: Env;
  beforeEach(async () => {
    env = await makeDriver();
  });
  afterEach(() => env.close());

  test('CreateNetwork adopts the network a crashed attempt created but never tagged', async () => {
    const id = dockerId();
    const pool = await env.driver.requestPool({ Pool: '10.70.0.0/24', SubPool: '', Options: {}, V6: false });
    const orphan = await env.neutron.createNetwork({
      name: `kuryr-net-${id.slice(0, 8)}`,
      description: networkDescription(id, TEST_SETTINGS),
    });
    await env.driver.createNetwork({
      NetworkID: id,
      Options: {},
      IPv4Data: [{ AddressSpace: 'x', Pool: pool.Pool, Gateway: '10.70.0.1/24' }],
      IPv6Data: [],
    });
    const networks = await env.neutron.listNetworks();
    assert.equal(networks.length, 1, 'no second network');
    assert.equal(networks[0]!.id, orphan.id);
    assert.ok(networks[0]!.tags.includes(`kuryr.net.uuid.lh:${id.slice(0, 32)}`));
  });

  test('a network of another Docker network with the same 8-character prefix is never adopted', async () => {
    const id = dockerId();
    const other = `${id.slice(0, 8)}${'cd'.repeat(28)}`;
    await env.neutron.createNetwork({
      name: `kuryr-net-${id.slice(0, 8)}`,
      description: networkDescription(other, TEST_SETTINGS),
    });
    const pool = await env.driver.requestPool({ Pool: '10.71.0.0/24', SubPool: '', Options: {}, V6: false });
    await env.driver.createNetwork({
      NetworkID: id,
      Options: {},
      IPv4Data: [{ AddressSpace: 'x', Pool: pool.Pool, Gateway: '10.71.0.1/24' }],
      IPv6Data: [],
    });
    assert.equal((await env.neutron.listNetworks()).length, 2);
  });

  test('RequestAddress adopts the port a crashed attempt created but never tagged (no MAC clash)', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.72.0.0/24' });
    const [network] = await env.neutron.listNetworks();
    const [subnet] = await env.neutron.listSubnets({ network_id: network!.id });
    const mac = '02:42:0a:48:00:07';
    const orphan = await env.neutron.createPort({
      name: 'kuryr-unbound-port',
      network_id: network!.id,
      mac_address: mac,
      fixed_ips: [{ subnet_id: subnet!.id }],
    });
    const reply = await env.driver.requestAddress({
      PoolID: net.pools[0]!.poolId,
      Address: '',
      Options: { 'com.docker.network.endpoint.macaddress': mac },
    });
    assert.equal(reply.Address, `${orphan.fixed_ips[0]!.ip_address}/24`);
    const ports = await env.neutron.listPorts();
    assert.equal(ports.length, 1, 'the leftover port is reused, no second one');
    assert.equal(ports[0]!.id, orphan.id);
  });

  test('ReleaseAddress after a crash that skipped DeleteEndpoint leaves the port to DeleteEndpoint or DeleteNetwork', async () => {
    // An endpoint still holds the port (its tags): ReleaseAddress never removes what an endpoint holds (it cannot
    // tell a forgotten endpoint from a live one); DeleteEndpoint, DeleteNetwork or `kuryr gc` removes it.
    const net = await networkCreate(env.driver, { subnet: '10.73.0.0/24' });
    const ep = await endpointJoin(env.driver, net);
    assert.equal(env.binder.bound.size, 1);
    await env.driver.releaseAddress({ PoolID: net.pools[0]!.poolId, Address: ep.address.split('/')[0]! });
    assert.equal(env.binder.bound.size, 1, 'veth kept');
    assert.equal((await env.neutron.listPorts()).length, 1, 'port kept');
    await networkRemove(env.driver, net);
    assert.equal(env.binder.bound.size, 0, 'DeleteNetwork unplugged the leftover');
    assert.equal((await env.neutron.listPorts()).length, 0);
  });

  test('DeleteNetwork removes leftover ports of ours instead of leaking the network', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.74.0.0/24' });
    await endpointJoin(env.driver, net);
    await networkRemove(env.driver, net);
    assert.equal((await env.neutron.listNetworks()).length, 0);
    assert.equal((await env.neutron.listPorts()).length, 0);
    assert.equal(env.binder.bound.size, 0);
    assert.equal(env.agent.networks.size, 0, 'bridge removed');
  });
});
