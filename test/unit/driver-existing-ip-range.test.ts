// A pre-existing Neutron network whose subnet is the `--ip-range` of the Docker network
// (`docker network create -o neutron.net.name=N --subnet 10.96.0.0/16 --ip-range 10.96.0.0/24`): the original
// takes the ip-range as the subnet and so uses the operator's /24; kuryr-ts maps --ip-range to allocation pools
// of a /16 for networks it creates, but on a pre-existing network it must use the existing subnet, not try to
// create an overlapping /16.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { TagSupport } from '../../src/driver/marks.ts';
import { endpointJoin, endpointLeave, networkCreate, networkRemove } from '../helpers/docker-sequence.ts';
import { KuryrDriver } from '../../src/driver/driver.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { FakeAgent, FakeBinder, makeDriver, TEST_SETTINGS } from '../helpers/fakes.ts';

type Env = Awaited<ReturnType<typeof makeDriver>>;

const modes: [string, TagSupport | undefined][] = [
  ['with tags', undefined],
  ['without tag extensions', { tag: false, tagExt: false }],
];

for (const [mode, tagSupport] of modes) {
  describe(`pre-existing network whose subnet is the --ip-range (${mode})`, () => {
    let env: Env;
    beforeEach(async () => {
      env = await makeDriver({}, tagSupport === undefined ? {} : { tagSupport });
    });
    afterEach(() => env.close());

    const operatorNetwork = async () => {
      const net = await env.neutron.createNetwork({ name: 'ops-net', description: 'made by the operator' });
      const [subnet] = await env.neutron.createSubnets([
        {
          network_id: net.id,
          ip_version: 4,
          cidr: '10.96.0.0/24',
          name: 'ops-subnet',
          allocation_pools: [{ start: '10.96.0.100', end: '10.96.0.199' }],
        },
      ]);
      return { net, subnet: subnet! };
    };

    test('the existing /24 is used: no /16 is created, containers get addresses of the /24, teardown leaves it as it was', async () => {
      const { net, subnet } = await operatorNetwork();
      const before = { net: await env.neutron.showNetwork(net.id), subnet: await env.neutron.showSubnet(subnet.id) };
      const docker = await networkCreate(env.driver, {
        subnet: '10.96.0.0/16',
        ipRange: '10.96.0.0/24',
        opts: { 'neutron.net.name': 'ops-net' },
      });
      assert.deepEqual(
        (await env.neutron.listSubnets({ network_id: net.id })).map((s) => s.cidr),
        ['10.96.0.0/24'],
        'no subnet was added to the operator network',
      );
      const ep = await endpointJoin(env.driver, docker);
      const ip = ep.address.split('/')[0]!;
      assert.match(ip, /^10\.96\.0\.\d+$/);
      const last = Number(ip.split('.')[3]);
      assert.ok(last >= 100 && last <= 199, `${ip} comes from the operator's allocation pool`);
      assert.deepEqual(
        (await env.neutron.showSubnet(subnet.id)).allocation_pools,
        before.subnet.allocation_pools,
        "the operator's allocation pools are not rewritten",
      );
      await endpointLeave(env.driver, ep);
      await networkRemove(env.driver, docker);
      const netAfter = await env.neutron.showNetwork(net.id);
      const subnetAfter = await env.neutron.showSubnet(subnet.id);
      assert.equal(netAfter.name, before.net.name);
      assert.equal(netAfter.description, before.net.description);
      assert.deepEqual(netAfter.tags, before.net.tags);
      assert.deepEqual(subnetAfter.tags, before.subnet.tags);
      assert.equal(subnetAfter.name, 'ops-subnet');
      assert.equal((await env.neutron.listPorts()).length, 0);
      assert.deepEqual(
        (await env.neutron.listSubnetPools()).map((p) => p.name).sort(),
        ['kuryr', 'kuryr6'],
        'our pool is gone, nothing else',
      );
    });

    test('a restarted plugin (empty caches) finds the /24 again from the PoolID', async () => {
      const { net } = await operatorNetwork();
      const docker = await networkCreate(env.driver, {
        subnet: '10.96.0.0/16',
        ipRange: '10.96.0.0/24',
        opts: { 'neutron.net.name': 'ops-net' },
      });
      const restarted = new KuryrDriver({
        neutron: env.neutron,
        binder: new FakeBinder(),
        agent: new FakeAgent(),
        settings: TEST_SETTINGS,
        log: silentLogger(),
        ...(tagSupport === undefined ? {} : { tagSupport }),
      });
      const ep = await endpointJoin(restarted, docker);
      assert.match(ep.address, /^10\.96\.0\.1\d\d\/16$/);
      await endpointLeave(restarted, ep);
      await networkRemove(restarted, docker);
      assert.deepEqual(
        (await env.neutron.listSubnets({ network_id: net.id })).map((s) => s.cidr),
        ['10.96.0.0/24'],
      );
      assert.equal((await env.neutron.listPorts()).length, 0);
    });

    test('neither a subnet equal to --subnet nor to --ip-range, but an overlapping one: a clear refusal, nothing left', async () => {
      const { net } = await operatorNetwork();
      await assert.rejects(
        networkCreate(env.driver, {
          subnet: '10.96.0.0/16',
          ipRange: '10.96.4.0/24',
          opts: { 'neutron.net.name': 'ops-net' },
        }),
        /Neutron network .* has no subnet 10\.96\.0\.0\/16 nor 10\.96\.4\.0\/24 .*10\.96\.0\.0\/24/,
      );
      assert.deepEqual(
        (await env.neutron.listSubnets({ network_id: net.id })).map((s) => s.cidr),
        ['10.96.0.0/24'],
      );
      const after = await env.neutron.showNetwork(net.id);
      assert.equal(after.name, 'ops-net');
      assert.deepEqual(after.tags, []);
    });

    test('networks kuryr-ts creates keep the allocation-pool mapping: a /16 subnet whose pool is the /24', async () => {
      const docker = await networkCreate(env.driver, { subnet: '10.97.0.0/16', ipRange: '10.97.0.0/24' });
      const ep = await endpointJoin(env.driver, docker);
      const subnets = await env.neutron.listSubnets({ cidr: '10.97.0.0/16' });
      assert.equal(subnets.length, 1);
      assert.deepEqual(subnets[0]!.allocation_pools, [{ start: '10.97.0.2', end: '10.97.0.255' }]);
      assert.match(ep.address, /^10\.97\.0\.\d+\/16$/);
      await endpointLeave(env.driver, ep);
      await networkRemove(env.driver, docker);
    });
  });
}
