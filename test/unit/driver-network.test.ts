import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { interfaceNames } from '../../src/binding/names.ts';
import { KuryrError } from '../../src/errors.ts';
import { KuryrDriver } from '../../src/driver/driver.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { makeDriver, TEST_SETTINGS } from '../helpers/fakes.ts';
import { endpointJoin, endpointLeave, networkCreate, networkRemove } from '../helpers/docker-sequence.ts';

type Env = Awaited<ReturnType<typeof makeDriver>>;

describe('networks (CreateNetwork / DeleteNetwork with the IPAM calls Docker makes around them)', () => {
  let env: Env;
  beforeEach(async () => {
    env = await makeDriver();
  });
  afterEach(() => env.close());

  test('--subnet and --gateway: kuryr names, tags, pool and gateway, and the bridge agent is told', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.20.0.0/24', gateway: '10.20.0.1' });
    assert.equal(net.pools[0]!.pool, '10.20.0.0/24');
    assert.equal(net.pools[0]!.gateway, '10.20.0.1/24');
    const [network] = await env.neutron.listNetworks({ tags: [`kuryr.net.uuid.lh:${net.id.slice(0, 32)}`] });
    assert.ok(network);
    assert.equal(network.name, `kuryr-net-${net.id.slice(0, 8)}`);
    assert.ok(network.tags.includes(`kuryr.net.uuid.uh:${net.id.slice(32)}`));
    const [pool] = await env.neutron.listSubnetPools({ name: 'kuryrPool-10.20.0.0/24' });
    assert.ok(pool);
    const [subnet] = await env.neutron.listSubnets({ network_id: network.id });
    assert.equal(subnet?.name, 'kuryr-subnet-10.20.0.0/24');
    assert.equal(subnet?.gateway_ip, '10.20.0.1');
    assert.equal(subnet?.subnetpool_id, pool.id);
    assert.ok(subnet?.tags.includes(pool.id), 'subnet tagged with its pool ID');
    assert.deepEqual(env.agent.networks.get(network.id)?.gateways, [{ address: '10.20.0.1', prefixLength: 24 }]);
  });

  test('without --gateway the gateway is the first host, as Neutron chooses', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.21.0.0/24' });
    assert.equal(net.pools[0]!.gateway, '10.21.0.1/24');
    const [subnet] = await env.neutron.listSubnets({ cidr: '10.21.0.0/24' });
    assert.equal(subnet?.gateway_ip, '10.21.0.1');
  });

  test('without --subnet each network gets its own block of the default pool, which is never deleted', async () => {
    const a = await networkCreate(env.driver);
    const b = await networkCreate(env.driver);
    assert.equal(a.pools[0]!.pool, '10.10.0.0/24');
    assert.equal(b.pools[0]!.pool, '10.10.1.0/24');
    const [defaultPool] = await env.neutron.listSubnetPools({ name: 'kuryr' });
    const fromDefault = await env.neutron.listSubnets({ subnetpool_id: defaultPool!.id });
    assert.deepEqual(fromDefault.map((s) => s.cidr).sort(), ['10.10.0.0/24', '10.10.1.0/24']);
    await networkRemove(env.driver, a);
    await networkRemove(env.driver, b);
    assert.equal((await env.neutron.listSubnetPools({ name: 'kuryr' })).length, 1, 'default pool kept');
    assert.equal((await env.neutron.listNetworks()).length, 0);
    const c = await networkCreate(env.driver);
    assert.equal(c.pools[0]!.pool, '10.10.0.0/24', 'freed blocks are reused');
  });

  test('a block of the default pool freed by docker network rm (DeleteNetwork, then the IPAM) serves again at once', async () => {
    const a = await networkCreate(env.driver);
    const [pool] = a.pools;
    // The network driver first, then the IPAM (engines since 20.10 release the IPAM first; other callers may not).
    await env.driver.deleteNetwork(a.id);
    await env.driver.releaseAddress({ PoolID: pool!.poolId, Address: pool!.gateway.split('/')[0]! });
    await env.driver.releasePool(pool!.poolId);
    const c = await networkCreate(env.driver);
    assert.equal(c.pools[0]!.poolId, pool!.poolId, 'the same block of the same pool');
    const ep = await endpointJoin(env.driver, c);
    assert.match(ep.address, /^10\.10\.0\.\d+\/24$/, 'its new subnet is found, not taken for the deleted one');
    await endpointLeave(env.driver, ep);
    await networkRemove(env.driver, c);
  });

  test('after a restart DeleteNetwork still finds its subnets, and so the pool to delete (nothing cached)', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.52.0.0/24' });
    const restarted = new KuryrDriver({
      neutron: env.neutron,
      binder: env.binder,
      agent: env.agent,
      settings: TEST_SETTINGS,
      log: silentLogger(),
    });
    await restarted.deleteNetwork(net.id);
    assert.deepEqual(await env.neutron.listNetworks(), []);
    assert.deepEqual(await env.neutron.listSubnetPools({ name: 'kuryrPool-10.52.0.0/24' }), [], 'its pool is gone');
  });

  test('a failed create leaves nothing behind (agent failure rolls back network, subnet and pool)', async () => {
    env.agent.failNext = new Error('bridge exploded');
    await assert.rejects(networkCreate(env.driver, { subnet: '10.22.0.0/24' }), /bridge exploded/);
    assert.equal((await env.neutron.listNetworks()).length, 0);
    assert.equal((await env.neutron.listSubnets()).length, 0);
    assert.equal((await env.neutron.listSubnetPools({ name: 'kuryrPool-10.22.0.0/24' })).length, 0);
  });

  test('CreateNetwork repeated with the same ID (a resent POST) creates nothing twice', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.23.0.0/24' });
    const p = net.pools[0]!;
    const again = {
      NetworkID: net.id,
      Options: {},
      IPv4Data: [{ AddressSpace: 'x', Pool: p.pool, Gateway: p.gateway }],
      IPv6Data: [],
    };
    await env.driver.createNetwork(again);
    await env.driver.createNetwork(again);
    assert.equal((await env.neutron.listNetworks()).length, 1);
    assert.equal((await env.neutron.listSubnets()).length, 1);
  });

  test('DeleteNetwork and the releases are idempotent', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.24.0.0/24' });
    await networkRemove(env.driver, net);
    await networkRemove(env.driver, net);
    assert.equal((await env.neutron.listNetworks()).length, 0);
    assert.equal((await env.neutron.listSubnetPools({ name: 'kuryrPool-10.24.0.0/24' })).length, 0);
  });

  test('the same CIDR twice without options fails clearly and does not damage the first network', async () => {
    const first = await networkCreate(env.driver, { subnet: '10.25.0.0/24' });
    await assert.rejects(networkCreate(env.driver, { subnet: '10.25.0.0/24' }), (err: unknown) => {
      assert.ok(err instanceof KuryrError);
      assert.equal(err.code, 'KURYR_ERR_CONFLICT');
      assert.match(err.message, /neutron\.pool\.name/);
      return true;
    });
    assert.equal((await env.neutron.listNetworks()).length, 1, 'no leaked second network');
    const [subnet] = await env.neutron.listSubnets({ cidr: '10.25.0.0/24' });
    assert.ok(subnet, 'first network keeps its subnet');
    const ep = await endpointJoin(env.driver, first);
    assert.match(ep.address, /^10\.25\.0\.\d+\/24$/);
  });

  test('overlapping CIDRs on two networks through neutron.pool.name (neutron backend: no agent)', async () => {
    env.close();
    env = await makeDriver({}, { agent: false });
    await env.neutron.createSubnetPool({ name: 'poolA', prefixes: ['10.26.0.0/24'], default_prefixlen: 24 });
    await env.neutron.createSubnetPool({ name: 'poolB', prefixes: ['10.26.0.0/24'], default_prefixlen: 24 });
    const a = await networkCreate(env.driver, {
      subnet: '10.26.0.0/24',
      opts: { 'neutron.pool.name': 'poolA' },
      ipamOpts: { 'neutron.pool.name': 'poolA' },
    });
    const b = await networkCreate(env.driver, {
      subnet: '10.26.0.0/24',
      opts: { 'neutron.pool.name': 'poolB' },
      ipamOpts: { 'neutron.pool.name': 'poolB' },
    });
    const ea = await endpointJoin(env.driver, a, { ip: '10.26.0.10' });
    const eb = await endpointJoin(env.driver, b, { ip: '10.26.0.10' });
    assert.equal(ea.address, '10.26.0.10/24');
    assert.equal(eb.address, '10.26.0.10/24');
    await endpointLeave(env.driver, ea);
    await endpointLeave(env.driver, eb);
    await networkRemove(env.driver, a);
    await networkRemove(env.driver, b);
    const pools = await env.neutron.listSubnetPools({ name: ['poolA', 'poolB'] });
    assert.equal(pools.length, 2, 'user pools are never deleted');
    assert.ok(
      pools.every((p) => !p.tags.includes('kuryr.subnetpool.existing')),
      'our marker tag is removed',
    );
  });

  test('dual stack: one subnet per family on one network, both gateways on the bridge', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.27.0.0/24', ipv6: true, subnet6: 'fd00:27::/64' });
    assert.equal(net.pools[1]!.gateway, 'fd00:27::1/64');
    const [network] = await env.neutron.listNetworks();
    const subnets = await env.neutron.listSubnets({ network_id: network!.id });
    assert.deepEqual(subnets.map((s) => s.ip_version).sort(), [4, 6]);
    assert.equal(env.agent.networks.get(network!.id)?.gateways.length, 2);
  });

  test('--ipv6 without a v6 subnet takes a /64 of the default v6 pool', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.28.0.0/24', ipv6: true });
    assert.equal(net.pools[1]!.pool, 'fd6b:7572:7972::/64');
  });

  test('unknown pool option is a clear not-found error before anything is created', async () => {
    await assert.rejects(
      networkCreate(env.driver, { subnet: '10.29.0.0/24', ipamOpts: { 'neutron.pool.name': 'nope' } }),
      /Specified subnetpool id\/name\(nope\) does not exist/,
    );
    assert.equal((await env.neutron.listNetworks()).length, 0);
  });

  test('a subnet pool with no free block left is reported as exhausted', async () => {
    const tiny = await makeDriver();
    try {
      await tiny.neutron.deleteSubnetPool((await tiny.neutron.listSubnetPools({ name: 'kuryr' }))[0]!.id);
      await tiny.neutron.createSubnetPool({ name: 'kuryr', prefixes: ['10.30.0.0/24'], default_prefixlen: 24 });
      await networkCreate(tiny.driver);
      await assert.rejects(networkCreate(tiny.driver), (err: unknown) => {
        assert.ok(err instanceof KuryrError);
        assert.equal(err.code, 'KURYR_ERR_EXHAUSTED');
        return true;
      });
    } finally {
      tiny.close();
    }
  });

  test('Join names the container end t_c<port[:11]> and returns the gateway', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.31.0.0/24', gateway: '10.31.0.254' });
    const ep = await endpointJoin(env.driver, net);
    const [port] = await env.neutron.listPorts({ tags: [`kuryr.net.uuid.lh:${ep.id.slice(0, 32)}`] });
    const join = await env.driver.join(ep.id);
    assert.equal(join.InterfaceName.SrcName, interfaceNames(port!.id).container);
    assert.equal(join.InterfaceName.DstPrefix, 'eth');
    assert.equal(join.Gateway, '10.31.0.254');
    assert.equal(join.DisableGatewayService, true);
  });
});
