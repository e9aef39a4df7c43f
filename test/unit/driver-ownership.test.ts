// Ownership of endpoints: a repeated MAC or address never harms the container that holds it, ReleaseAddress never
// removes a port an endpoint still holds, and a lookup by address never crosses into another Neutron network.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { KuryrError } from '../../src/errors.ts';
import type { Port } from '../../src/neutron/types.ts';
import { makeDriver } from '../helpers/fakes.ts';
import { endpointJoin, endpointLeave, networkCreate, networkRemove } from '../helpers/docker-sequence.ts';

type Env = Awaited<ReturnType<typeof makeDriver>>;

const conflict = (pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof KuryrError, String(err));
  assert.equal(err.code, 'KURYR_ERR_CONFLICT');
  assert.match(err.message, pattern);
  return true;
};

for (const mode of ['tags', 'no tags'] as const) {
  const tagSupport = mode === 'tags' ? undefined : { tag: false, tagExt: false };
  describe(`a repeated MAC or address never harms the endpoint that holds it (${mode})`, () => {
    let env: Env;
    beforeEach(async () => {
      env = await makeDriver({}, tagSupport === undefined ? {} : { tagSupport });
    });
    afterEach(() => {
      assert.deepEqual(env.violations(), []);
      env.close();
    });

    /** The port, binding and veth of a live endpoint, to compare before and after. */
    const stateOf = async (port: Port) => {
      const now = await env.neutron.showPort(port.id);
      return {
        id: now.id,
        device_id: now.device_id,
        host: now['binding:host_id'],
        tags: [...now.tags].sort(),
        ips: now.fixed_ips.map((f) => f.ip_address),
        bound: env.binder.bound.has(now.id),
      };
    };
    const portOf = async (address: string) => {
      const [port] = await env.neutron.listPorts({ fixed_ips: [`ip_address=${address.split('/')[0]}`] });
      assert.ok(port, `a port holds ${address}`);
      return port;
    };

    test('docker run --mac-address M of a live container is refused; the first keeps its port and veth', async () => {
      const net = await networkCreate(env.driver, { subnet: '10.61.0.0/24' });
      const first = await endpointJoin(env.driver, net);
      const port = await portOf(first.address);
      const before = await stateOf(port);
      assert.equal(before.bound, true);
      await assert.rejects(
        endpointJoin(env.driver, net, { mac: first.mac }),
        conflict(new RegExp(`MAC address ${first.mac} .*in use by endpoint ${first.id}`)),
      );
      assert.deepEqual(await stateOf(port), before, 'the first endpoint is untouched');
      assert.equal((await env.neutron.listPorts()).length, 1, 'no port left by the refused request');
      await endpointLeave(env.driver, first);
      await networkRemove(env.driver, net);
    });

    test('docker run --ip A --mac-address M repeating a live container is refused; the first keeps its port', async () => {
      const net = await networkCreate(env.driver, { subnet: '10.62.0.0/24' });
      const first = await endpointJoin(env.driver, net, { ip: '10.62.0.40' });
      const port = await portOf(first.address);
      const before = await stateOf(port);
      await assert.rejects(
        endpointJoin(env.driver, net, { ip: '10.62.0.40', mac: first.mac }),
        conflict(new RegExp(`10\\.62\\.0\\.40 .*in use by endpoint ${first.id}`)),
      );
      assert.deepEqual(await stateOf(port), before, 'the first endpoint is untouched');
      // Only the MAC repeated, with another address: also refused, nothing made.
      await assert.rejects(
        endpointJoin(env.driver, net, { ip: '10.62.0.41', mac: first.mac }),
        conflict(new RegExp(`MAC address ${first.mac} .*in use by endpoint ${first.id}`)),
      );
      assert.deepEqual(await stateOf(port), before);
      assert.equal((await env.neutron.listPorts()).length, 1);
      await endpointLeave(env.driver, first);
    });

    test('ReleaseAddress of an address a live endpoint holds neither unbinds nor deletes its port', async () => {
      const net = await networkCreate(env.driver, { subnet: '10.63.0.0/24' });
      const ep = await endpointJoin(env.driver, net);
      const port = await portOf(ep.address);
      const before = await stateOf(port);
      await env.driver.releaseAddress({ PoolID: net.pools[0]!.poolId, Address: ep.address.split('/')[0]! });
      assert.deepEqual(await stateOf(port), before, 'still held, still bound');
      // The endpoint's own teardown still removes everything.
      await endpointLeave(env.driver, ep);
      assert.equal((await env.neutron.listPorts()).length, 0);
      assert.equal(env.binder.bound.size, 0);
    });

    test('a retried RequestAddress with the same MAC still gets the same unclaimed port', async () => {
      const net = await networkCreate(env.driver, { subnet: '10.64.0.0/24' });
      const req = {
        PoolID: net.pools[0]!.poolId,
        Address: '10.64.0.9',
        Options: { 'com.docker.network.endpoint.macaddress': '02:42:0a:40:00:09' },
      };
      assert.equal((await env.driver.requestAddress(req)).Address, '10.64.0.9/24');
      assert.equal((await env.driver.requestAddress(req)).Address, '10.64.0.9/24');
      assert.equal((await env.driver.requestAddress({ ...req, Address: '' })).Address, '10.64.0.9/24');
      assert.equal((await env.neutron.listPorts()).length, 1);
    });
  });
}

describe('lookups by address stay inside the network of the request', () => {
  let env: Env;
  beforeEach(async () => {
    env = await makeDriver({}, { agent: false }); // as on a real Neutron: no host agent, overlapping CIDRs allowed
  });
  afterEach(() => env.close());

  /** A pre-existing network with a subnet of `cidr` and a pre-created port holding `ip`, as an orchestrator makes. */
  const existing = async (name: string, cidr: string, ip: string, mac: string) => {
    const net = await env.neutron.createNetwork({ name });
    const [subnet] = await env.neutron.createSubnets([{ network_id: net.id, ip_version: 4, cidr, name: `${name}-s` }]);
    const port = await env.neutron.createPort({
      name: `${name}-p`,
      network_id: net.id,
      mac_address: mac,
      fixed_ips: [{ subnet_id: subnet!.id, ip_address: ip }],
    });
    return { net, subnet: subnet!, port };
  };

  for (const order of ['one after the other', 'at once'] as const) {
    test(`same CIDR on two Neutron networks, a pre-created port with the same IP on each, one container each by --ip (${order})`, async () => {
      const a = await existing('orch-a', '10.66.0.0/24', '10.66.0.20', 'fa:16:3e:00:66:0a');
      const b = await existing('orch-b', '10.66.0.0/24', '10.66.0.20', 'fa:16:3e:00:66:0b');
      const spec = (e: typeof a) => ({
        subnet: '10.66.0.0/24',
        opts: { 'neutron.net.uuid': e.net.id, 'neutron.subnet.uuid': e.subnet.id },
        ipamOpts: { 'neutron.subnet.uuid': e.subnet.id },
      });
      const da = await networkCreate(env.driver, spec(a));
      const db = await networkCreate(env.driver, spec(b));
      const run = (d: typeof da, e: typeof a) =>
        endpointJoin(env.driver, d, { ip: '10.66.0.20', mac: e.port.mac_address });
      const [ea, eb] =
        order === 'at once' ? await Promise.all([run(da, a), run(db, b)]) : [await run(da, a), await run(db, b)];
      for (const [ep, e, other] of [
        [ea, a, b],
        [eb, b, a],
      ] as const) {
        const port = await env.neutron.showPort(e.port.id);
        assert.equal(port.device_id, ep.id, `the container on ${e.net.name} got the port of ${e.net.name}`);
        assert.equal(port.network_id, e.net.id);
        assert.ok(env.binder.bound.has(port.id));
        assert.equal(env.binder.bound.get(port.id)?.port.network_id, e.net.id);
        const otherPort = await env.neutron.showPort(other.port.id);
        assert.notEqual(otherPort.device_id, ep.id, 'the other network’s port is never given to this container');
      }
      assert.equal((await env.neutron.listPorts()).length, 2, 'no third port');
      await endpointLeave(env.driver, ea);
      // The other container's port is untouched by the first one's release.
      const bPort = await env.neutron.showPort(b.port.id);
      assert.equal(bPort.device_id, eb.id);
      assert.ok(env.binder.bound.has(b.port.id));
      await endpointLeave(env.driver, eb);
      for (const e of [a, b]) {
        const port = await env.neutron.showPort(e.port.id);
        assert.equal(port.device_id, '', 'handed back');
        assert.equal(port['binding:host_id'], '');
        assert.deepEqual(port.tags, []);
      }
      await networkRemove(env.driver, da);
      await networkRemove(env.driver, db);
    });
  }

  test('ReleaseAddress of one network never touches the port holding the same address on another network', async () => {
    const a = await existing('orch-c', '10.67.0.0/24', '10.67.0.20', 'fa:16:3e:00:67:0a');
    const b = await existing('orch-d', '10.67.0.0/24', '10.67.0.20', 'fa:16:3e:00:67:0b');
    const spec = (e: typeof a) => ({
      subnet: '10.67.0.0/24',
      opts: { 'neutron.net.uuid': e.net.id, 'neutron.subnet.uuid': e.subnet.id },
      ipamOpts: { 'neutron.subnet.uuid': e.subnet.id },
    });
    const da = await networkCreate(env.driver, spec(a));
    const db = await networkCreate(env.driver, spec(b));
    const eb = await endpointJoin(env.driver, db, { ip: '10.67.0.20', mac: b.port.mac_address });
    // Docker releases the address on network a (e.g. a rollback there): b's container keeps its port.
    await env.driver.releaseAddress({ PoolID: da.pools[0]!.poolId, Address: '10.67.0.20' });
    const bPort = await env.neutron.showPort(b.port.id);
    assert.equal(bPort.device_id, eb.id);
    assert.ok(env.binder.bound.has(b.port.id));
    assert.deepEqual(await env.neutron.showPort(a.port.id), a.port, 'the port of network a was never touched');
    await endpointLeave(env.driver, eb);
  });

  test('without naming the subnet, a second Docker network of the same CIDR on another Neutron network is refused', async () => {
    const a = await existing('orch-e', '10.68.0.0/24', '10.68.0.20', 'fa:16:3e:00:68:0a');
    const b = await existing('orch-f', '10.68.0.0/24', '10.68.0.20', 'fa:16:3e:00:68:0b');
    // One pool `kuryrPool-10.68.0.0/24` would stand for both subnets: an address of one network could not be told
    // from the same address of the other.
    const da = await networkCreate(env.driver, { subnet: '10.68.0.0/24', opts: { 'neutron.net.uuid': a.net.id } });
    await assert.rejects(
      networkCreate(env.driver, { subnet: '10.68.0.0/24', opts: { 'neutron.net.uuid': b.net.id } }),
      conflict(/already stands for subnet .* neutron\.subnet\.uuid/),
    );
    const ea = await endpointJoin(env.driver, da, { ip: '10.68.0.20', mac: a.port.mac_address });
    assert.equal((await env.neutron.showPort(a.port.id)).device_id, ea.id);
    assert.deepEqual(await env.neutron.showPort(b.port.id), b.port, 'the port of the other network is never touched');
    assert.deepEqual((await env.neutron.showSubnet(b.subnet.id)).tags, [], 'nor its subnet');
    await endpointLeave(env.driver, ea);
    await networkRemove(env.driver, da);
  });
});
