// The driver on a Neutron without (some) tag extensions: resources are found by names
// and device IDs like kuryr-libnetwork does, never by a tag, and nothing leaks: IPAM ports are deleted,
// pre-existing ports handed back, pre-existing networks keep existing and get their name back.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { renderStatus } from '../../src/cli/status.ts';
import type { Config } from '../../src/config/config.ts';
import type { DockerEndpoints } from '../../src/docker/client.ts';
import type { TagSupport } from '../../src/driver/marks.ts';
import { collectGarbage, type DeviceTool } from '../../src/reconcile/gc.ts';
import { endpointJoin, endpointLeave, networkCreate, networkRemove } from '../helpers/docker-sequence.ts';
import { dockerId, makeDriver } from '../helpers/fakes.ts';

type Env = Awaited<ReturnType<typeof makeDriver>>;

const NONE: TagSupport = { tag: false, tagExt: false };
const MODES: [string, TagSupport][] = [
  ['no tag extension', NONE],
  ['only `tag` (networks)', { tag: true, tagExt: false }],
  ['only `tag-ext` (subnets, ports, pools)', { tag: false, tagExt: true }],
];

/** Security groups but the project's `default`, which Neutron makes on first use. */
const exposedGroups = async (env: Env) =>
  (await env.neutron.listSecurityGroups()).filter((g) => g.name !== 'default').map((g) => g.name);

/** Neutron as the operator left it: default pools only, nothing of ours. */
async function assertNothingLeft(env: Env) {
  assert.deepEqual(await env.neutron.listNetworks(), [], 'no network left');
  assert.deepEqual(await env.neutron.listPorts(), [], 'no port left');
  assert.deepEqual(await exposedGroups(env), [], 'no security group of ours left');
  assert.deepEqual((await env.neutron.listSubnetPools()).map((p) => p.name).sort(), ['kuryr', 'kuryr6']);
  assert.equal(env.binder.bound.size, 0, 'nothing plugged');
}

for (const [label, support] of MODES) {
  describe(`Neutron with ${label}`, () => {
    let env: Env;
    afterEach(() => env.close());

    test('network, two endpoints (one with exposed ports), inspect and teardown: nothing left, no tag used', async () => {
      env = await makeDriver({}, { tagSupport: support });
      const net = await networkCreate(env.driver, { subnet: '10.61.0.0/24' });
      const [network] = await env.neutron.listNetworks();
      assert.equal(network!.name, support.tag ? `kuryr-net-${net.id.slice(0, 8)}` : net.id);
      const a = await endpointJoin(env.driver, net, { exposed: [{ Proto: 6, Port: 80 }] });
      const b = await endpointJoin(env.driver, net);
      assert.notEqual(a.address, b.address);
      const portA = (await env.neutron.listPorts({ device_id: a.id }))[0]!;
      assert.equal(portA.device_owner, 'compute:kuryr');
      assert.equal(portA['binding:host_id'], 'test-host');
      assert.equal(portA.name, support.tagExt ? 'kuryr-unbound-port' : `${a.id}-port`);
      assert.deepEqual(await exposedGroups(env), [`${portA.id}-exposed_ports`], 'exposed ports became a group');
      const info = await env.driver.endpointOperInfo(a.id);
      assert.equal(info.Value.port_id, portA.id, 'the endpoint is found again without tags');
      assert.equal(env.binder.bound.size, 2);
      await endpointLeave(env.driver, a);
      await endpointLeave(env.driver, b);
      await networkRemove(env.driver, net);
      await assertNothingLeft(env);
      assert.deepEqual(env.violations(), []);
    });

    test('a pre-created port at --ip is used and handed back as it was (the orchestrator flow)', async () => {
      env = await makeDriver({}, { tagSupport: support });
      const net = await networkCreate(env.driver, { subnet: '10.62.0.0/24' });
      const [network] = await env.neutron.listNetworks();
      const [subnet] = await env.neutron.listSubnets();
      const pre = await env.neutron.createPort({
        name: 'zun-port',
        network_id: network!.id,
        fixed_ips: [{ subnet_id: subnet!.id, ip_address: '10.62.0.50' }],
      });
      const ep = await endpointJoin(env.driver, net, { ip: '10.62.0.50' });
      assert.equal(ep.address, '10.62.0.50/24');
      const during = await env.neutron.showPort(pre.id);
      assert.equal(during.device_id, ep.id);
      assert.equal(during.name, 'zun-port', 'the operator’s name is kept');
      assert.equal((await env.neutron.listPorts()).length, 1, 'no second port');
      await endpointLeave(env.driver, ep);
      const after = await env.neutron.showPort(pre.id);
      assert.equal(after.name, 'zun-port');
      assert.equal(after.device_id, '');
      assert.equal(after.device_owner, '');
      assert.equal(after['binding:host_id'], '');
      assert.equal(after.mac_address, pre.mac_address === during.mac_address ? pre.mac_address : after.mac_address);
      await env.neutron.deletePort(pre.id);
      await networkRemove(env.driver, net);
      await assertNothingLeft(env);
      assert.deepEqual(env.violations(), []);
    });

    test('a retried CreateNetwork and a crash-left IPAM port are found again by name', async () => {
      env = await makeDriver({}, { tagSupport: support });
      const net = await networkCreate(env.driver, { subnet: '10.63.0.0/24' });
      const again = {
        NetworkID: net.id,
        Options: { 'com.docker.network.generic': {} },
        IPv4Data: [{ AddressSpace: 'no_address_space', Pool: net.pools[0]!.pool, Gateway: net.pools[0]!.gateway }],
      };
      await env.driver.createNetwork(again);
      assert.equal((await env.neutron.listNetworks()).length, 1, 'one network after a retry');
      assert.equal((await env.neutron.listSubnets()).length, 1, 'one subnet after a retry');
      // RequestAddress ran, CreateEndpoint never came: ReleaseAddress deletes the port.
      const got = await env.driver.requestAddress({
        PoolID: net.pools[0]!.poolId,
        Options: { 'com.docker.network.endpoint.macaddress': '02:42:0a:3f:00:09' },
      });
      assert.equal((await env.neutron.listPorts()).length, 1);
      await env.driver.releaseAddress({ PoolID: net.pools[0]!.poolId, Address: got.Address.split('/')[0]! });
      await networkRemove(env.driver, net);
      await assertNothingLeft(env);
      assert.deepEqual(env.violations(), []);
    });
  });
}

describe('pre-existing networks without the tag extension', () => {
  let env: Env;
  afterEach(() => env.close());

  const existing = async () => {
    const net = await env.neutron.createNetwork({ name: 'vm-net', description: 'made by the operator' });
    const [subnet] = await env.neutron.createSubnets([
      { network_id: net.id, ip_version: 4, cidr: '10.95.0.0/24', name: 'vm-subnet' },
    ]);
    return { net, subnet: subnet! };
  };

  test('renamed to the Docker ID while used, then given its name and description back, never deleted', async () => {
    env = await makeDriver({}, { tagSupport: NONE });
    const { net, subnet } = await existing();
    const docker = await networkCreate(env.driver, { subnet: '10.95.0.0/24', opts: { 'neutron.net.name': 'vm-net' } });
    const during = await env.neutron.showNetwork(net.id);
    assert.equal(during.name, docker.id, 'found again by name, as kuryr-libnetwork names it');
    assert.match(during.description, /^kuryr-ts: existing network of Docker network [0-9a-f]{64}; was \{/);
    assert.equal((await env.neutron.listSubnets()).length, 1, 'the existing subnet is used');
    // Docker retries CreateNetwork: the former name still finds it.
    await env.driver.createNetwork({
      NetworkID: docker.id,
      Options: { 'com.docker.network.generic': { 'neutron.net.name': 'vm-net' } },
      IPv4Data: [{ AddressSpace: 'no_address_space', Pool: '10.95.0.0/24', Gateway: docker.pools[0]!.gateway }],
    });
    const ep = await endpointJoin(env.driver, docker);
    const port = (await env.neutron.listPorts({ device_id: ep.id }))[0]!;
    assert.equal(port.fixed_ips[0]!.subnet_id, subnet.id, 'the address comes from the existing subnet');
    await endpointLeave(env.driver, ep);
    await networkRemove(env.driver, docker);
    const after = await env.neutron.showNetwork(net.id);
    assert.equal(after.name, 'vm-net');
    assert.equal(after.description, 'made by the operator');
    assert.equal((await env.neutron.showSubnet(subnet.id)).name, 'vm-subnet', 'the subnet is kept');
    assert.deepEqual(await env.neutron.listPorts(), []);
    assert.deepEqual((await env.neutron.listSubnetPools()).map((p) => p.name).sort(), ['kuryr', 'kuryr6']);
    assert.deepEqual(env.violations(), []);
  });

  test('a second Docker network on the same Neutron network is refused and changes nothing', async () => {
    env = await makeDriver({}, { tagSupport: NONE });
    const { net } = await existing();
    const first = await networkCreate(env.driver, { subnet: '10.95.0.0/24', opts: { 'neutron.net.uuid': net.id } });
    const before = await env.neutron.showNetwork(net.id);
    await assert.rejects(
      networkCreate(env.driver, { subnet: '10.95.0.0/24', opts: { 'neutron.net.uuid': net.id } }),
      /already used by Docker network [0-9a-f]{64}; without the tag extension a Neutron network can back one Docker network only/,
    );
    const after = await env.neutron.showNetwork(net.id);
    assert.equal(after.name, before.name);
    assert.equal(after.description, before.description);
    await networkRemove(env.driver, first);
    assert.equal((await env.neutron.showNetwork(net.id)).name, 'vm-net');
    assert.deepEqual((await env.neutron.listSubnetPools()).map((p) => p.name).sort(), ['kuryr', 'kuryr6']);
  });

  test('existing subnets of one CIDR on two networks, told apart by neutron.subnet.uuid', async () => {
    env = await makeDriver({}, { tagSupport: NONE });
    const nets = [];
    for (const name of ['vm-a', 'vm-b']) {
      const net = await env.neutron.createNetwork({ name });
      const [subnet] = await env.neutron.createSubnets([{ network_id: net.id, ip_version: 4, cidr: '10.97.0.0/24' }]);
      nets.push({ net, subnet: subnet! });
    }
    const dockers = [];
    for (const { net, subnet } of nets) {
      const opts = { 'neutron.net.uuid': net.id, 'neutron.subnet.uuid': subnet.id };
      dockers.push(await networkCreate(env.driver, { subnet: '10.97.0.0/24', opts, ipamOpts: opts }));
    }
    for (const [i, docker] of dockers.entries()) {
      const ep = await endpointJoin(env.driver, docker);
      const port = (await env.neutron.listPorts({ device_id: ep.id }))[0]!;
      assert.equal(port.network_id, nets[i]!.net.id, 'each Docker network gets addresses from its own subnet');
      await endpointLeave(env.driver, ep);
    }
    assert.equal((await env.neutron.listSubnetPools({ name: 'kuryrPool-10.97.0.0/24' })).length, 2, 'one pool each');
    for (const docker of dockers) await networkRemove(env.driver, docker);
    assert.deepEqual(
      (await env.neutron.listNetworks()).map((n) => n.name).sort(),
      ['vm-a', 'vm-b'],
      'every network back under its own name',
    );
    assert.deepEqual((await env.neutron.listSubnetPools()).map((p) => p.name).sort(), ['kuryr', 'kuryr6']);
    assert.deepEqual(env.violations(), []);
  });
});

describe('an operator pool without tags', () => {
  test('a VM network’s subnet of the same CIDR is never taken for the Docker network’s', async () => {
    const env = await makeDriver({}, { tagSupport: NONE });
    try {
      const pool = await env.neutron.createSubnetPool({ name: 'ops-pool', prefixes: ['10.70.0.0/16'] });
      const vm = await env.neutron.createNetwork({ name: 'vm-net' });
      await env.neutron.createSubnets([
        { network_id: vm.id, ip_version: 4, cidr: '10.70.1.0/24', gateway_ip: '10.70.1.254' },
      ]);
      const opts = { 'neutron.pool.name': 'ops-pool' };
      const docker = await networkCreate(env.driver, { subnet: '10.70.1.0/24', opts, ipamOpts: opts });
      assert.equal(docker.pools[0]!.gateway, '10.70.1.1/24', 'the gateway is not the VM subnet’s');
      const ep = await endpointJoin(env.driver, docker);
      const port = (await env.neutron.listPorts({ device_id: ep.id }))[0]!;
      assert.notEqual(port.network_id, vm.id, 'the address is on the Docker network, not on the VM network');
      await endpointLeave(env.driver, ep);
      await networkRemove(env.driver, docker);
      assert.deepEqual(
        (await env.neutron.listNetworks()).map((n) => n.name),
        ['vm-net'],
      );
      assert.deepEqual(
        (await env.neutron.listSubnetPools()).map((p) => p.id).includes(pool.id),
        true,
        'the operator’s pool is kept',
      );
      assert.deepEqual(env.violations(), []);
    } finally {
      env.close();
    }
  });
});

describe('the pool of an existing subnet, without tags', () => {
  test('two creates racing for one pool: one wins, the other is refused clearly and undone', async () => {
    const env = await makeDriver({}, { tagSupport: NONE });
    try {
      const nets = [];
      for (const name of ['vm-e', 'vm-f']) {
        const net = await env.neutron.createNetwork({ name });
        await env.neutron.createSubnets([{ network_id: net.id, ip_version: 4, cidr: '10.98.0.0/24' }]);
        nets.push(net);
      }
      // Both RequestPools find the same unmarked pool before either CreateNetwork ties it to its subnet.
      const pools = [];
      for (const _ of nets) pools.push(await env.driver.requestPool({ Pool: '10.98.0.0/24', Options: {} }));
      assert.equal(pools[0]!.PoolID, pools[1]!.PoolID);
      const ids = nets.map(() => dockerId());
      const results = await Promise.allSettled(
        nets.map((net, i) =>
          env.driver.createNetwork({
            NetworkID: ids[i]!,
            Options: { 'com.docker.network.generic': { 'neutron.net.uuid': net.id } },
            IPv4Data: [{ AddressSpace: 'no_address_space', Pool: '10.98.0.0/24', Gateway: '10.98.0.1/24' }],
          }),
        ),
      );
      const refused = results.filter((r) => r.status === 'rejected');
      const created = results.filter((r) => r.status === 'fulfilled');
      assert.equal(refused.length, 1, 'exactly one refused');
      assert.match(String(refused[0]!.reason), /already stands for subnet .* --ipam-opt neutron\.subnet\.uuid/);
      const loser = nets[results.findIndex((r) => r.status === 'rejected')]!;
      assert.equal((await env.neutron.showNetwork(loser.id)).name, loser.name, 'the refused create was undone');
      assert.equal(created.length, 1);
      const winner = results.findIndex((r) => r.status === 'fulfilled');
      await env.driver.deleteNetwork(ids[winner]!);
      // Docker releases both pools: the winner's on `docker network rm`, the refused one's in its rollback.
      await env.driver.releasePool(pools[0]!.PoolID);
      await env.driver.releasePool(pools[1]!.PoolID);
      assert.deepEqual((await env.neutron.listNetworks()).map((n) => n.name).sort(), ['vm-e', 'vm-f']);
      assert.deepEqual((await env.neutron.listSubnetPools()).map((p) => p.name).sort(), ['kuryr', 'kuryr6']);
    } finally {
      env.close();
    }
  });
});

describe('kuryr status without the tag extension', () => {
  test('shows the Docker network and endpoint of name-based resources', async () => {
    const env = await makeDriver({}, { tagSupport: NONE });
    try {
      const net = await networkCreate(env.driver, { subnet: '10.66.0.0/24' });
      const ep = await endpointJoin(env.driver, net);
      const report = {
        networks: await env.neutron.listNetworks(),
        subnets: await env.neutron.listSubnets(),
        subnetpools: await env.neutron.listSubnetPools(),
        ports: await env.neutron.listPorts(),
      };
      const text = renderStatus(report, { backend: 'neutron', stateDir: '/nowhere' } as Config);
      assert.match(text, new RegExp(`docker=${net.id.slice(0, 12)}\\s`));
      assert.match(text, new RegExp(`endpoint=${ep.id.slice(0, 12)}$`, 'm'));
    } finally {
      env.close();
    }
  });
});

describe('gc without the tag extension', () => {
  test('a network Docker no longer has is removed with its port; a live one stays', async () => {
    const env = await makeDriver({}, { tagSupport: NONE });
    try {
      const live = await networkCreate(env.driver, { subnet: '10.64.0.0/24' });
      const dead = await networkCreate(env.driver, { subnet: '10.65.0.0/24' });
      const ep = await endpointJoin(env.driver, live);
      await endpointJoin(env.driver, dead);
      const docker: DockerEndpoints = {
        networks: new Map([[live.id, { Id: live.id, Name: 'live', Driver: 'kuryr' }]]),
        endpoints: new Set([ep.id]),
        addresses: new Set([ep.address.split('/')[0]!]),
      };
      const devices: DeviceTool = { runJson: async () => [], deleteLink: async () => true };
      const report = await collectGarbage(env.driver.runtime, devices, {
        dryRun: false,
        graceSeconds: 60,
        docker,
        ownsBridges: true,
        owner: 'kuryr',
        now: Date.now() + 3_600_000,
        force: false,
      });
      assert.deepEqual(
        report.actions.map((a) => [a.kind, a.result]),
        [['network', 'removed']],
      );
      assert.deepEqual(
        (await env.neutron.listNetworks()).map((n) => n.name),
        [live.id],
      );
      assert.equal((await env.neutron.listPorts()).length, 1, 'the live endpoint’s port stays');
      assert.deepEqual(env.violations(), []);
    } finally {
      env.close();
    }
  });
});
