import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { KuryrError } from '../../src/errors.ts';
import { NeutronError } from '../../src/neutron/errors.ts';
import { KuryrDriver } from '../../src/driver/driver.ts';
import type { NeutronApi } from '../../src/neutron/api.ts';
import { countingNeutron } from '../../src/neutron/counting.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/store.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { dockerId, FakeBinder, makeDriver, TEST_SETTINGS } from '../helpers/fakes.ts';
import { endpointJoin, endpointLeave, networkCreate, networkRemove } from '../helpers/docker-sequence.ts';

type Env = Awaited<ReturnType<typeof makeDriver>>;

describe('endpoints (RequestAddress, CreateEndpoint, Join, DeleteEndpoint, ReleaseAddress)', () => {
  let env: Env;
  beforeEach(async () => {
    env = await makeDriver();
  });
  afterEach(() => env.close());

  test('a container gets a port bound to this host with Docker MAC, endpoint tags and a veth; teardown removes it', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.40.0.0/24' });
    const ep = await endpointJoin(env.driver, net);
    const [port] = await env.neutron.listPorts({ tags: [`kuryr.net.uuid.lh:${ep.id.slice(0, 32)}`] });
    assert.ok(port);
    assert.equal(port.name, 'kuryr-unbound-port');
    assert.equal(port.mac_address, ep.mac);
    assert.equal(port.device_owner, 'compute:kuryr');
    assert.equal(port.device_id, ep.id);
    assert.equal(port['binding:host_id'], 'test-host');
    assert.ok(port.tags.includes('compute:kuryr'));
    assert.ok(port.tags.includes(`kuryr.net.uuid.uh:${ep.id.slice(32)}`));
    assert.equal(`${port.fixed_ips[0]!.ip_address}/24`, ep.address);
    assert.equal(env.binder.bound.get(port.id)?.mtu, 1500);
    const info = await env.driver.endpointOperInfo(ep.id);
    assert.equal(info.Value.status, port.status);

    await endpointLeave(env.driver, ep);
    assert.equal(env.binder.bound.size, 0, 'host side unplugged');
    assert.equal((await env.neutron.listPorts({ network_id: port.network_id })).length, 0, 'port deleted');
    await networkRemove(env.driver, net);
  });

  test('distinct addresses for many containers, never the gateway', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.41.0.0/27' });
    const eps = await Promise.all(Array.from({ length: 20 }, () => endpointJoin(env.driver, net)));
    const addrs = new Set(eps.map((e) => e.address));
    assert.equal(addrs.size, 20);
    assert.ok(!addrs.has('10.41.0.1/27'));
  });

  test('--ip gives that address; the same address for another container is a conflict', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.42.0.0/24' });
    const ep = await endpointJoin(env.driver, net, { ip: '10.42.0.50' });
    assert.equal(ep.address, '10.42.0.50/24');
    await assert.rejects(endpointJoin(env.driver, net, { ip: '10.42.0.50' }), (err: unknown) => {
      assert.ok(err instanceof KuryrError);
      assert.equal(err.code, 'KURYR_ERR_CONFLICT');
      assert.match(err.message, /already in use/);
      return true;
    });
    await assert.rejects(endpointJoin(env.driver, net, { ip: '10.42.0.1' }), /gateway/);
    await assert.rejects(endpointJoin(env.driver, net, { ip: '10.99.0.1' }), /not in the network's subnet/);
    assert.equal((await env.neutron.listPorts()).length, 1, 'failed requests leave no port');
  });

  test('a retried RequestAddress (same MAC) returns the same address and creates no second port', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.43.0.0/24' });
    const req = {
      PoolID: net.pools[0]!.poolId,
      Address: '',
      Options: { 'com.docker.network.endpoint.macaddress': '02:42:0a:2b:00:05' },
    };
    const a = await env.driver.requestAddress(req);
    const b = await env.driver.requestAddress(req);
    assert.equal(a.Address, b.Address);
    assert.equal((await env.neutron.listPorts()).length, 1);
  });

  test('dual stack: one port holds both addresses; Join returns both gateways', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.44.0.0/24', ipv6: true, subnet6: 'fd00:44::/64' });
    const ep = await endpointJoin(env.driver, net, { ip6: 'fd00:44::99' });
    assert.equal(ep.address6, 'fd00:44::99/64');
    const ports = await env.neutron.listPorts({ network_id: (await env.neutron.listNetworks())[0]!.id });
    assert.equal(ports.length, 1);
    assert.equal(ports[0]!.fixed_ips.length, 2);
    const join = await env.driver.join(ep.id);
    assert.equal(join.Gateway, '10.44.0.1');
    assert.equal(join.GatewayIPv6, 'fd00:44::1');
    await endpointLeave(env.driver, ep);
    assert.equal((await env.neutron.listPorts()).length, 0);
  });

  test('--ip-range: addresses come from the range only', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.45.0.0/24', ipRange: '10.45.0.128/28' });
    assert.equal(net.pools[0]!.pool, '10.45.0.0/24');
    const eps = await Promise.all(Array.from({ length: 5 }, () => endpointJoin(env.driver, net)));
    for (const ep of eps) {
      const last = Number(ep.address.split('/')[0]!.split('.')[3]);
      assert.ok(last >= 128 && last <= 143, `${ep.address} inside 10.45.0.128/28`);
    }
  });

  test('a binding failure undoes the port update and lets ReleaseAddress delete the port', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.46.0.0/24' });
    env.binder.failNext = new Error('veth failed');
    await assert.rejects(endpointJoin(env.driver, net), /veth failed/);
    assert.equal((await env.neutron.listPorts()).length, 0, 'Docker rollback (ReleaseAddress) removed the port');
  });

  test('CreateEndpoint on an unknown network is a 404; without addresses a 400', async () => {
    await assert.rejects(
      env.driver.createEndpoint({
        NetworkID: dockerId(),
        EndpointID: dockerId(),
        Interface: { Address: '10.0.0.2/24' },
      }),
      (err: unknown) => err instanceof KuryrError && err.status === 404,
    );
    const net = await networkCreate(env.driver, { subnet: '10.47.0.0/24' });
    await assert.rejects(
      env.driver.createEndpoint({ NetworkID: net.id, EndpointID: dockerId(), Interface: {} }),
      (err: unknown) => err instanceof KuryrError && err.status === 400,
    );
  });

  test('DeleteEndpoint and ReleaseAddress of things already gone succeed', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.48.0.0/24' });
    await env.driver.deleteEndpoint(dockerId());
    await env.driver.releaseAddress({ PoolID: net.pools[0]!.poolId, Address: '10.48.0.77' });
    const ep = await endpointJoin(env.driver, net);
    await endpointLeave(env.driver, ep);
    await endpointLeave(env.driver, ep);
  });

  test('an exhausted subnet is a Neutron 409 with the Neutron type in the message', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.49.0.0/30' });
    await endpointJoin(env.driver, net);
    await assert.rejects(endpointJoin(env.driver, net), (err: unknown) => {
      assert.ok(err instanceof NeutronError);
      assert.equal(err.status, 409);
      assert.equal(err.type, 'IpAddressGenerationFailure');
      return true;
    });
  });

  test('a pre-created unbound Neutron port holding --ip is taken over and handed back on removal', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.50.0.0/24' });
    const [network] = await env.neutron.listNetworks();
    const [subnet] = await env.neutron.listSubnets({ network_id: network!.id });
    const pre = await env.neutron.createPort({
      network_id: network!.id,
      name: 'precreated',
      fixed_ips: [{ subnet_id: subnet!.id, ip_address: '10.50.0.9' }],
    });
    const ep = await endpointJoin(env.driver, net, { ip: '10.50.0.9' });
    const bound = await env.neutron.showPort(pre.id);
    assert.equal(bound.device_id, ep.id);
    assert.equal(bound['binding:host_id'], 'test-host');
    assert.ok(bound.tags.includes('kuryr.port.existing'));
    await endpointLeave(env.driver, ep);
    const after = await env.neutron.showPort(pre.id);
    assert.equal(after.device_id, '');
    assert.equal(after['binding:host_id'], '');
    assert.deepEqual(after.tags, []);
  });

  test('a pre-created port chosen with --ip and its own MAC (--mac-address, as Zun does) is taken over and handed back', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.53.0.0/24' });
    const [network] = await env.neutron.listNetworks();
    const [subnet] = await env.neutron.listSubnets({ network_id: network!.id });
    const pre = await env.neutron.createPort({
      network_id: network!.id,
      name: 'zun-port',
      mac_address: '02:42:0a:35:00:4e',
      fixed_ips: [{ subnet_id: subnet!.id, ip_address: '10.53.0.78' }],
    });
    const reply = await env.driver.requestAddress({
      PoolID: net.pools[0]!.poolId,
      Address: '10.53.0.78',
      Options: { 'com.docker.network.endpoint.macaddress': '02:42:0a:35:00:4e' },
    });
    assert.equal(reply.Address, '10.53.0.78/24');
    assert.ok((await env.neutron.showPort(pre.id)).tags.includes('kuryr.port.existing'), 'taken over');
    await env.driver.releaseAddress({ PoolID: net.pools[0]!.poolId, Address: '10.53.0.78' });
    const back = await env.neutron.showPort(pre.id);
    assert.deepEqual(back.tags, [], 'handed back');
    assert.equal(back.device_id, '');
  });

  test('exposed ports become a security group with merged ranges, attached while the port is bound', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.51.0.0/24' });
    const exposed = [80, 81, 82, 443].map((Port) => ({ Proto: 6, Port })).concat([{ Proto: 17, Port: 53 }]);
    const ep = await endpointJoin(env.driver, net, { exposed });
    const [port] = await env.neutron.listPorts({ tags: [`kuryr.net.uuid.lh:${ep.id.slice(0, 32)}`] });
    const groups = await env.neutron.listSecurityGroups({ name: `${port!.id}-exposed_ports` });
    assert.equal(groups.length, 1);
    assert.ok(port!.security_groups.includes(groups[0]!.id), 'attached by CreateEndpoint');
    const ingress = groups[0]!.security_group_rules
      .filter((r) => r.direction === 'ingress')
      .map((r) => `${r.protocol}:${r.port_range_min}-${r.port_range_max}`)
      .sort();
    assert.deepEqual(ingress, ['tcp:443-443', 'tcp:80-82', 'udp:53-53']);
    const revision = port!.revision_number;
    await env.driver.programExternalConnectivity(ep.id, { 'com.docker.network.endpoint.exposedports': exposed });
    await env.driver.revokeExternalConnectivity(ep.id);
    const after = await env.neutron.showPort(port!.id);
    assert.equal(after.revision_number, revision, 'Program and Revoke never update a wired port');
    await endpointLeave(env.driver, ep);
    assert.equal(
      (await env.neutron.listSecurityGroups({ name: `${port!.id}-exposed_ports` })).length,
      0,
      'gone with the port',
    );
  });

  test('when CreateEndpoint had no exposed ports, Program attaches the group (once)', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.52.0.0/24' });
    const ep = await endpointJoin(env.driver, net);
    const options = { 'com.docker.network.endpoint.exposedports': [{ Proto: 6, Port: 8080 }] };
    await env.driver.programExternalConnectivity(ep.id, options);
    await env.driver.programExternalConnectivity(ep.id, options);
    const [port] = await env.neutron.listPorts({ tags: [`kuryr.net.uuid.lh:${ep.id.slice(0, 32)}`] });
    const groups = await env.neutron.listSecurityGroups({ name: `${port!.id}-exposed_ports` });
    assert.equal(groups.length, 1);
    assert.ok(port!.security_groups.includes(groups[0]!.id));
    await endpointLeave(env.driver, ep);
    assert.equal((await env.neutron.listSecurityGroups({ name: `${port!.id}-exposed_ports` })).length, 0);
  });
});

for (const mode of ['tags', 'no tags'] as const) {
  describe(`DeleteEndpoint writes nothing to Neutron; ReleaseAddress then removes the port (${mode})`, () => {
    const tagSupport = mode === 'tags' ? undefined : { tag: false, tagExt: false };
    let env: Env;
    beforeEach(async () => {
      env = await makeDriver({}, tagSupport === undefined ? {} : { tagSupport });
    });
    afterEach(() => {
      assert.deepEqual(env.violations(), []);
      env.close();
    });

    const portOf = async (address: string) => {
      const [port] = await env.neutron.listPorts({ fixed_ips: [`ip_address=${address.split('/')[0]}`] });
      assert.ok(port, `a port holds ${address}`);
      return port;
    };
    const release = (driver: KuryrDriver, ep: { network: { pools: { poolId: string }[] }; address: string }) =>
      driver.releaseAddress({ PoolID: ep.network.pools[0]!.poolId, Address: ep.address.split('/')[0]! });

    test('the port is unplugged once, left as it was until ReleaseAddress deletes it', async () => {
      const net = await networkCreate(env.driver, { subnet: '10.49.0.0/24' });
      const ep = await endpointJoin(env.driver, net);
      const before = await portOf(ep.address);
      await env.driver.deleteEndpoint(ep.id);
      const after = await portOf(ep.address);
      assert.equal(after.revision_number, before.revision_number, 'no update of the just unplugged port');
      assert.equal(env.binder.bound.has(before.id), false, 'unplugged');
      await release(env.driver, ep);
      assert.deepEqual(
        await env.neutron.listPorts({ network_id: before.network_id, device_owner: 'compute:kuryr' }),
        [],
      );
      assert.deepEqual(
        env.binder.calls.filter((c) => c === `unbind ${before.id}`),
        [`unbind ${before.id}`],
        'unplugged once',
      );
      await networkRemove(env.driver, net);
    });

    test('a restart between DeleteEndpoint and ReleaseAddress leaves the port to DeleteNetwork', async () => {
      const net = await networkCreate(env.driver, { subnet: '10.50.0.0/24' });
      const ep = await endpointJoin(env.driver, net);
      const port = await portOf(ep.address);
      await env.driver.deleteEndpoint(ep.id);
      const restarted = new KuryrDriver({
        neutron: env.neutron,
        binder: env.binder,
        ...(tagSupport === undefined ? { agent: env.agent } : { tagSupport }),
        settings: TEST_SETTINGS,
        log: silentLogger(),
      });
      await release(restarted, ep);
      assert.equal((await portOf(ep.address)).id, port.id, 'still marked as the endpoint’s: left alone');
      await restarted.deleteNetwork(net.id);
      assert.deepEqual(await env.neutron.listPorts({ device_owner: 'compute:kuryr' }), []);
      assert.deepEqual(await env.neutron.listNetworks(), []);
    });
  });
}

describe('a port CreateEndpoint makes carries its tags from the start where Neutron takes them in the POST', () => {
  /** The store with `tag-ports-during-bulk-creation`: a port POST carrying `tags` stores them (one call outside). */
  const withPortTagsOnCreate = (store: NeutronApi): NeutronApi => {
    const api = Object.create(store) as NeutronApi;
    api.createPort = async (body) => {
      const { tags, ...rest } = body;
      const port = await store.createPort(rest);
      return tags === undefined ? port : { ...port, tags: await store.replaceTags('ports', port.id, tags) };
    };
    return api;
  };

  for (const portTagsOnCreate of [true, false]) {
    test(`Docker's own IPAM addresses: ${portTagsOnCreate ? 'no tags call after the POST' : 'the tags call after the POST'}`, async () => {
      const store = openEmbeddedNeutron({ path: ':memory:' });
      const neutron = countingNeutron(withPortTagsOnCreate(store));
      const driver = new KuryrDriver({
        neutron,
        binder: new FakeBinder(),
        settings: TEST_SETTINGS,
        log: silentLogger(),
        tagSupport: { tag: true, tagExt: true, portTagsOnCreate },
      });
      try {
        const net = await networkCreate(driver, { subnet: '10.51.0.0/24' });
        const endpointId = dockerId();
        const before = neutron.callCounts();
        await driver.createEndpoint({
          NetworkID: net.id,
          EndpointID: endpointId,
          Interface: { Address: '10.51.0.9/24', MacAddress: '02:42:0a:33:00:09' },
        });
        const after = neutron.callCounts();
        assert.equal((after.createPort ?? 0) - (before.createPort ?? 0), 1);
        assert.equal((after.replaceTags ?? 0) - (before.replaceTags ?? 0), portTagsOnCreate ? 0 : 1);
        const [port] = await store.listPorts({ device_id: endpointId });
        assert.deepEqual([...port!.tags].sort(), [
          'compute:kuryr',
          `kuryr.net.uuid.lh:${endpointId.slice(0, 32)}`,
          `kuryr.net.uuid.uh:${endpointId.slice(32)}`,
        ]);
        assert.equal((await driver.join(endpointId)).Gateway, '10.51.0.1', 'found by its tags');
      } finally {
        store.close();
      }
    });
  }
});
