/**
 * The embedded backend's networks as Docker's bridge driver has them: subnets that overlap neither another
 * network's nor the host's routes (the host is every network's gateway), default blocks that step around the
 * host's routes, and the bridge driver's options (MTU, bridge name, ICC, masquerading, --internal, host
 * binding address) reaching the agent and the binder, and kept in the store for restarts.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { bridgeOptionsOf, HOST_BINDING_IPV4_TAG } from '../../src/driver/embedded-options.ts';
import { KuryrError } from '../../src/errors.ts';
import { endpointJoin, endpointLeave, networkCreate, networkRemove } from '../helpers/docker-sequence.ts';
import { makeDriver } from '../helpers/fakes.ts';

type Env = Awaited<ReturnType<typeof makeDriver>>;

const conflict = (pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof KuryrError, `a KuryrError, got ${String(err)}`);
  assert.equal(err.code, 'KURYR_ERR_CONFLICT');
  assert.match(err.message, pattern);
  return true;
};

describe('embedded backend: subnets that overlap another network or a host route are refused', () => {
  let env: Env;
  beforeEach(async () => {
    env = await makeDriver();
  });
  afterEach(() => env.close());

  test('the same --subnet twice: the second is refused, naming the first network; nothing is created', async () => {
    const first = await networkCreate(env.driver, { subnet: '10.40.0.0/24' });
    const [network] = await env.neutron.listNetworks();
    await assert.rejects(
      networkCreate(env.driver, { subnet: '10.40.0.0/24' }),
      conflict(new RegExp(`10\\.40\\.0\\.0/24.*${first.id.slice(0, 12)}`)),
    );
    assert.equal((await env.neutron.listNetworks()).length, 1);
    assert.equal((await env.neutron.listSubnets()).length, 1);
    assert.deepEqual([...env.agent.networks.keys()], [network!.id], 'the first network keeps its bridge alone');
    // Its gateway stays where it was, and its containers still get addresses.
    const ep = await endpointJoin(env.driver, first);
    assert.match(ep.address, /^10\.40\.0\.\d+\/24$/);
    await endpointLeave(env.driver, ep);
    await networkRemove(env.driver, first);
    // Once it is gone, the subnet is free again.
    const again = await networkCreate(env.driver, { subnet: '10.40.0.0/24' });
    await networkRemove(env.driver, again);
  });

  test("a --subnet equal to a default-pool network's block is refused (two pools, one CIDR)", async () => {
    const first = await networkCreate(env.driver);
    await assert.rejects(
      networkCreate(env.driver, { subnet: first.pools[0]!.pool }),
      conflict(new RegExp(first.id.slice(0, 12))),
    );
    assert.equal((await env.neutron.listNetworks()).length, 1);
  });

  test('a subnet inside or around another network is refused too (IPv4 and IPv6)', async () => {
    await networkCreate(env.driver, { subnet: '10.41.0.0/16', ipv6: true, subnet6: 'fd00:41::/64' });
    await assert.rejects(networkCreate(env.driver, { subnet: '10.41.7.0/24' }), conflict(/overlap/));
    await assert.rejects(networkCreate(env.driver, { subnet: '10.0.0.0/8' }), conflict(/overlap/));
    await assert.rejects(
      networkCreate(env.driver, { subnet: '10.42.0.0/24', ipv6: true, subnet6: 'fd00:41::/64' }),
      conflict(/fd00:41::\/64/),
    );
    assert.equal((await env.neutron.listNetworks()).length, 1);
  });

  test('neutron.pool.name does not allow the same CIDR twice on the embedded backend', async () => {
    await env.neutron.createSubnetPool({ name: 'poolA', prefixes: ['10.43.0.0/24'], default_prefixlen: 24 });
    await env.neutron.createSubnetPool({ name: 'poolB', prefixes: ['10.43.0.0/24'], default_prefixlen: 24 });
    await networkCreate(env.driver, {
      subnet: '10.43.0.0/24',
      opts: { 'neutron.pool.name': 'poolA' },
      ipamOpts: { 'neutron.pool.name': 'poolA' },
    });
    await assert.rejects(
      networkCreate(env.driver, {
        subnet: '10.43.0.0/24',
        opts: { 'neutron.pool.name': 'poolB' },
        ipamOpts: { 'neutron.pool.name': 'poolB' },
      }),
      conflict(/overlap/),
    );
    assert.equal((await env.neutron.listNetworks()).length, 1);
  });

  test('CreateNetwork refuses it too when RequestPool was not asked (a subnet of a stored pool)', async () => {
    const first = await networkCreate(env.driver, { subnet: '10.44.0.0/24' });
    await assert.rejects(
      env.driver.createNetwork({
        NetworkID: 'b'.repeat(64),
        Options: {},
        IPv4Data: [{ AddressSpace: 'x', Pool: first.pools[0]!.pool, Gateway: '10.44.0.1/24' }],
        IPv6Data: [],
      }),
      conflict(/overlap/),
    );
    assert.equal((await env.neutron.listNetworks()).length, 1);
  });

  test('two concurrent creates of overlapping subnets: exactly one wins, the other is undone', async () => {
    const results = await Promise.allSettled([
      networkCreate(env.driver, { subnet: '10.47.0.0/24' }),
      networkCreate(env.driver, { subnet: '10.47.0.0/23' }),
    ]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    conflict(/overlap/)(refused?.reason);
    assert.equal((await env.neutron.listNetworks()).length, 1);
    assert.equal((await env.neutron.listSubnets()).length, 1);
    assert.equal(env.agent.networks.size, 1);
  });

  test('a --subnet overlapping a route of the host is refused, naming the route', async () => {
    env.agent.routes = [{ cidr: '192.168.77.0/24', device: 'eth9' }];
    await assert.rejects(
      networkCreate(env.driver, { subnet: '192.168.77.128/25' }),
      conflict(/192\.168\.77\.0\/24.*eth9/),
    );
    assert.equal((await env.neutron.listNetworks()).length, 0);
    assert.equal((await env.neutron.listSubnetPools({ name: 'kuryrPool-192.168.77.128/25' })).length, 0);
  });

  test('the default pool steps around a host route inside its first block', async () => {
    env.agent.routes = [{ cidr: '10.10.0.128/26', device: 'eth9' }];
    const a = await networkCreate(env.driver);
    assert.equal(a.pools[0]!.pool, '10.10.1.0/24');
    const b = await networkCreate(env.driver);
    assert.equal(b.pools[0]!.pool, '10.10.2.0/24');
    env.agent.routes = [];
    const c = await networkCreate(env.driver);
    assert.equal(c.pools[0]!.pool, '10.10.0.0/24', 'the block is used once the route is gone');
  });

  test('the default pool reads only its own family of the host routes', async () => {
    env.agent.routes = [{ cidr: 'fd00:99::/64', device: 'eth9' }];
    env.agent.routeReads.length = 0;
    const pool = await env.driver.requestPool({ Pool: '', SubPool: '', Options: {}, V6: false });
    assert.match(pool.Pool, /^10\.10\./);
    assert.deepEqual(env.agent.routeReads, [4]);
  });

  test('CreateNetwork reads the host routes of its subnets’ families only', async () => {
    env.agent.routeReads.length = 0;
    await networkCreate(env.driver);
    assert.deepEqual(env.agent.routeReads, [4, 4], 'RequestPool, then CreateNetwork: IPv4 only');
    env.agent.routeReads.length = 0;
    await networkCreate(env.driver, { subnet: '10.46.0.0/24', ipv6: true, subnet6: 'fd00:46::/64' });
    assert.deepEqual(env.agent.routeReads, [4, 6, 'both']);
  });

  test('CreateNetwork asks for the host routes first, and reads the store meanwhile', async () => {
    const net = await env.driver.requestPool({ Pool: '10.48.0.0/24', SubPool: '', Options: {}, V6: false });
    let networksWhenAsked = -1;
    env.agent.onRouteRead = async () => {
      networksWhenAsked = (await env.neutron.listNetworks()).length;
    };
    await env.driver.createNetwork({
      NetworkID: 'a'.repeat(64),
      Options: {},
      IPv4Data: [{ AddressSpace: 'x', Pool: net.Pool, Gateway: '10.48.0.1/24' }],
      IPv6Data: [],
    });
    assert.equal(networksWhenAsked, 0, 'asked before the network was made');
    assert.equal((await env.neutron.listNetworks()).length, 1);
  });

  test("the routes of the plugin's own bridges are not taken for the host's", async () => {
    const a = await networkCreate(env.driver, { subnet: '10.45.0.0/24' });
    const [network] = await env.neutron.listNetworks();
    // The kernel's route for the gateway on the network's bridge, as the agent reads it back.
    env.agent.routes = [{ cidr: '10.45.0.0/24', device: `brq${network!.id.slice(0, 11)}` }];
    // A resent CreateNetwork of the same network is not refused because of its own subnet and route.
    await env.driver.createNetwork({
      NetworkID: a.id,
      Options: {},
      IPv4Data: [{ AddressSpace: 'x', Pool: a.pools[0]!.pool, Gateway: a.pools[0]!.gateway }],
      IPv6Data: [],
    });
    // Another network over it is refused for the network, not for the route.
    await assert.rejects(networkCreate(env.driver, { subnet: '10.45.0.0/25' }), conflict(/network/));
    await networkRemove(env.driver, a);
  });
});

describe('neutron backend (no agent): overlapping CIDRs through neutron.pool.name stay possible', () => {
  test('two networks with the same CIDR from two pools', async () => {
    const env = await makeDriver({}, { agent: false });
    try {
      await env.neutron.createSubnetPool({ name: 'poolA', prefixes: ['10.46.0.0/24'], default_prefixlen: 24 });
      await env.neutron.createSubnetPool({ name: 'poolB', prefixes: ['10.46.0.0/24'], default_prefixlen: 24 });
      for (const pool of ['poolA', 'poolB']) {
        await networkCreate(env.driver, {
          subnet: '10.46.0.0/24',
          opts: { 'neutron.pool.name': pool },
          ipamOpts: { 'neutron.pool.name': pool },
        });
      }
      assert.equal((await env.neutron.listNetworks()).length, 2);
    } finally {
      env.close();
    }
  });
});

describe("embedded backend: the bridge driver's options", () => {
  let env: Env;
  beforeEach(async () => {
    env = await makeDriver();
  });
  afterEach(() => env.close());

  test('defaults: brq bridge, ICC on, masquerading on, not internal, MTU 1500', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.50.0.0/24' });
    const [network] = await env.neutron.listNetworks();
    const spec = env.agent.networks.get(network!.id);
    assert.equal(spec?.bridge, `brq${network!.id.slice(0, 11)}`);
    assert.equal(spec?.mtu, 1500);
    assert.equal(spec?.internal, false);
    assert.equal(spec?.masquerade, true);
    const ep = await endpointJoin(env.driver, net);
    const bound = [...env.binder.bound.values()][0];
    assert.equal(bound?.mtu, 1500);
    assert.equal(bound?.bridge, spec?.bridge);
    assert.equal(bound?.icc, true);
    await endpointLeave(env.driver, ep);
    await networkRemove(env.driver, net);
    assert.equal(env.agent.networks.size, 0);
  });

  test('mtu, bridge name, enable_icc, enable_ip_masquerade, host_binding_ipv4 and --internal', async () => {
    const net = await networkCreate(env.driver, {
      subnet: '10.51.0.0/24',
      opts: {
        'com.docker.network.driver.mtu': '1400',
        'com.docker.network.bridge.name': 'kx-br51',
        'com.docker.network.bridge.enable_icc': 'false',
        'com.docker.network.bridge.enable_ip_masquerade': 'false',
        'com.docker.network.bridge.host_binding_ipv4': '127.0.0.1',
      },
      internal: true,
    });
    const [network] = await env.neutron.listNetworks();
    assert.equal(network!.mtu, 1400, 'the MTU is the Neutron network MTU');
    assert.ok(network!.tags.includes(`${HOST_BINDING_IPV4_TAG}=127.0.0.1`), 'host binding address kept as a tag');
    assert.deepEqual(bridgeOptionsOf(network!), {
      bridge: 'kx-br51',
      icc: false,
      masquerade: false,
      internal: true,
      hostBindingIpv4: '127.0.0.1',
    });
    const spec = env.agent.networks.get(network!.id);
    assert.deepEqual(
      { bridge: spec?.bridge, mtu: spec?.mtu, internal: spec?.internal, masquerade: spec?.masquerade },
      { bridge: 'kx-br51', mtu: 1400, internal: true, masquerade: false },
    );
    const ep = await endpointJoin(env.driver, net);
    const bound = [...env.binder.bound.values()][0];
    assert.deepEqual(
      { mtu: bound?.mtu, bridge: bound?.bridge, icc: bound?.icc },
      {
        mtu: 1400,
        bridge: 'kx-br51',
        icc: false,
      },
    );
    await endpointLeave(env.driver, ep);
    await networkRemove(env.driver, net);
    assert.deepEqual(env.agent.removed, [{ networkId: network!.id, bridge: 'kx-br51' }]);
  });

  test('bad option values are refused before anything is created', async () => {
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ 'com.docker.network.driver.mtu': 'big' }, /mtu/],
      [{ 'com.docker.network.driver.mtu': '67' }, /mtu/],
      [{ 'com.docker.network.bridge.name': 'bad name!' }, /bridge.name/],
      [{ 'com.docker.network.bridge.name': 'a-name-longer-than-15' }, /bridge.name/],
      [{ 'com.docker.network.bridge.host_binding_ipv4': 'fd00::1' }, /host_binding_ipv4/],
      [{ 'com.docker.network.bridge.enable_icc': 'perhaps' }, /enable_icc/],
    ];
    for (const [opts, pattern] of bad) {
      await assert.rejects(networkCreate(env.driver, { subnet: '10.52.0.0/24', opts }), pattern);
    }
    assert.equal((await env.neutron.listNetworks()).length, 0);
    assert.equal(env.agent.networks.size, 0);
  });

  test('two networks cannot share a bridge name', async () => {
    const opts = { 'com.docker.network.bridge.name': 'kx-shared' };
    await networkCreate(env.driver, { subnet: '10.53.0.0/24', opts });
    await assert.rejects(networkCreate(env.driver, { subnet: '10.54.0.0/24', opts }), conflict(/kx-shared/));
    assert.equal((await env.neutron.listNetworks()).length, 1);
  });
});
