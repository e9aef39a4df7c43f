// Docker networks on pre-existing Neutron networks (-o neutron.net.uuid / neutron.net.name), as an orchestrator
// creates them on every host: resources are shared, so they are never deleted and only our tags come and go.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { makeDriver } from '../helpers/fakes.ts';
import { endpointJoin, endpointLeave, networkCreate, networkRemove } from '../helpers/docker-sequence.ts';

type Env = Awaited<ReturnType<typeof makeDriver>>;

describe('pre-existing Neutron networks', () => {
  let env: Env;
  beforeEach(async () => {
    env = await makeDriver();
  });
  afterEach(() => env.close());

  const existing = async () => {
    const net = await env.neutron.createNetwork({ name: 'vm-net', description: 'made by the operator' });
    const [subnet] = await env.neutron.createSubnets([
      { network_id: net.id, ip_version: 4, cidr: '10.95.0.0/24', name: 'vm-subnet' },
    ]);
    return { net, subnet: subnet! };
  };

  test('two Docker networks created at once on one Neutron network: both tagged, nothing duplicated', async () => {
    const { net } = await existing();
    const spec = { subnet: '10.95.0.0/24', opts: { 'neutron.net.uuid': net.id } };
    const [a, b] = await Promise.all([networkCreate(env.driver, spec), networkCreate(env.driver, spec)]);
    const after = await env.neutron.showNetwork(net.id);
    for (const d of [a, b]) {
      assert.ok(after.tags.includes(`kuryr.net.uuid.lh:${d.id.slice(0, 32)}`), 'no tag lost to a concurrent update');
      assert.ok(after.tags.includes(`kuryr.net.existing:${d.id.slice(0, 12)}`));
    }
    assert.equal((await env.neutron.listNetworks()).length, 1);
    assert.equal((await env.neutron.listSubnets()).length, 1, 'the existing subnet is used, not duplicated');
  });

  test('removing one Docker network keeps the subnet the other still uses; the last one leaves Neutron as it was', async () => {
    const { net, subnet } = await existing();
    const spec = { subnet: '10.95.0.0/24', opts: { 'neutron.net.name': 'vm-net' } };
    const a = await networkCreate(env.driver, spec);
    const b = await networkCreate(env.driver, spec);
    const ea = await endpointJoin(env.driver, a);
    await endpointLeave(env.driver, ea);
    await networkRemove(env.driver, a);
    const eb = await endpointJoin(env.driver, b);
    assert.match(eb.address, /^10\.95\.0\.\d+\/24$/, 'the second Docker network still works');
    await endpointLeave(env.driver, eb);
    await networkRemove(env.driver, b);
    const netAfter = await env.neutron.showNetwork(net.id);
    const subnetAfter = await env.neutron.showSubnet(subnet.id);
    assert.deepEqual(netAfter.tags, [], 'only our tags came off');
    assert.deepEqual(subnetAfter.tags, []);
    assert.equal(netAfter.name, 'vm-net');
    assert.equal((await env.neutron.listPorts()).length, 0);
    assert.deepEqual(
      (await env.neutron.listSubnetPools()).map((p) => p.name).sort(),
      ['kuryr', 'kuryr6'],
      'our pool is gone, nothing else',
    );
  });

  test('a shared-flag conflict is refused before any tag is written', async () => {
    const { net } = await existing();
    await assert.rejects(
      networkCreate(env.driver, {
        subnet: '10.95.0.0/24',
        opts: { 'neutron.net.uuid': net.id, 'neutron.net.shared': 'true' },
      }),
      /shared=false, conflict with the given option shared=true/,
    );
    assert.deepEqual((await env.neutron.showNetwork(net.id)).tags, []);
  });
});
