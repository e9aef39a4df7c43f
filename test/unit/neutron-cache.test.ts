// The cache in front of the Neutron API (neutron/caching.ts): fewer calls, counted behind it, and correct under
// its own writes and, through 404s, under other processes' writes. serve, gc and the CLI all get it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { openBackend } from '../../src/backend.ts';
import { createSubnetPool, deleteSubnetPool } from '../../src/cli/subnetpool.ts';
import { loadConfig } from '../../src/config/load.ts';
import { cachingNeutron, isCaching, LISTS_LIMIT } from '../../src/neutron/caching.ts';
import { countingNeutron } from '../../src/neutron/counting.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/store.ts';
import { NeutronError } from '../../src/neutron/errors.ts';

describe('cachingNeutron', () => {
  let store: ReturnType<typeof openEmbeddedNeutron>;
  let counted: ReturnType<typeof countingNeutron>;
  let api: ReturnType<typeof cachingNeutron>;
  const calls = () => counted.totalCalls();
  beforeEach(() => {
    store = openEmbeddedNeutron({ path: ':memory:' });
    counted = countingNeutron(store);
    api = cachingNeutron(counted);
  });
  afterEach(() => store.close());

  const dockerId = 'ab'.repeat(32);
  const idTags = [`kuryr.net.uuid.lh:${dockerId.slice(0, 32)}`, `kuryr.net.uuid.uh:${dockerId.slice(32)}`];

  test('recent(ms): kept answers no older than ms, by show and by list; older ones are asked again', async () => {
    let clock = 0;
    const timed = cachingNeutron(counted, { now: () => clock });
    const net = await timed.createNetwork({ name: 'n' });
    const port = await timed.createPort({ network_id: net.id });
    await timed.replaceTags('ports', port.id, idTags);
    const before = calls();
    clock = 1000;
    assert.equal((await timed.recent(1000).showPort(port.id)).id, port.id);
    assert.deepEqual(
      (await timed.recent(1000).listPorts({ tags: idTags })).map((p) => p.id),
      [port.id],
    );
    assert.equal(calls(), before, 'as old as allowed: no call');
    clock = 1001;
    await timed.recent(1000).showPort(port.id);
    assert.equal(calls(), before + 1, 'older: asked');
    await timed.recent(1000).listPorts({ tags: idTags });
    assert.equal(calls(), before + 1, 'the answer just read is recent');
    clock = 5000;
    await timed.recent(1000).listPorts({ tags: idTags });
    assert.equal(calls(), before + 2, 'older again: the list is asked');
    await timed.listPorts({ tags: idTags });
    assert.equal(calls(), before + 2, 'the plain view answers at any age');
    clock = 9000;
    await timed.replaceTags('ports', port.id, [...idTags, 'x']);
    const tagged = calls();
    await timed.recent(1000).showPort(port.id);
    assert.equal(calls(), tagged + 1, 'a tag change is not the whole port: the rest is as old as before');
  });

  test('what it created is shown and found by identifying filters without a call', async () => {
    const net = await api.createNetwork({ name: 'n' });
    await api.replaceTags('networks', net.id, idTags);
    const [subnet] = await api.createSubnets([{ network_id: net.id, ip_version: 4, cidr: '10.5.0.0/24' }]);
    const port = await api.createPort({
      network_id: net.id,
      fixed_ips: [{ subnet_id: subnet!.id, ip_address: '10.5.0.9' }],
    });
    const before = calls();
    assert.equal((await api.showNetwork(net.id)).id, net.id);
    assert.deepEqual((await api.showNetwork(net.id)).subnets, [subnet!.id], 'the network knows its new subnet');
    assert.deepEqual(
      (await api.listNetworks({ tags: idTags })).map((n) => n.id),
      [net.id],
    );
    assert.deepEqual(
      (await api.listSubnets({ id: [subnet!.id] })).map((s) => s.id),
      [subnet!.id],
    );
    const held = await api.listPorts({ network_id: net.id, fixed_ips: ['ip_address=10.5.0.9'] });
    assert.deepEqual(
      held.map((p) => p.id),
      [port.id],
    );
    assert.equal(calls(), before, 'no Neutron call');
    // Not identifying (a name): asked of Neutron.
    await api.listNetworks({ name: 'n' });
    assert.equal(calls(), before + 1);
    // An address nobody holds here: asked of Neutron.
    await api.listPorts({ network_id: net.id, fixed_ips: ['ip_address=10.5.0.10'] });
    assert.equal(calls(), before + 2);
  });

  test('a list asked before follows its own writes; an empty answer is never served', async () => {
    assert.deepEqual(await api.listSubnetPools({ name: 'p' }), []);
    assert.deepEqual(await api.listSubnetPools({ name: 'p' }), [], 'asked again');
    assert.equal(calls(), 2);
    const pool = await api.createSubnetPool({ name: 'p', prefixes: ['10.6.0.0/16'], default_prefixlen: 24 });
    assert.deepEqual(
      (await api.listSubnetPools({ name: 'p' })).map((p) => p.id),
      [pool.id],
    );
    assert.equal(calls(), 3, 'served: the created pool joined the answer');
    await api.deleteSubnetPool(pool.id);
    assert.deepEqual(await api.listSubnetPools({ name: 'p' }), []);
    assert.equal(calls(), 5, 'the deleted pool left it, and the empty answer was asked of Neutron');
  });

  test('its own updates and tag changes are what it serves', async () => {
    const net = await api.createNetwork({ name: 'n' });
    const [subnet] = await api.createSubnets([{ network_id: net.id, ip_version: 4, cidr: '10.7.0.0/24' }]);
    const port = await api.createPort({ network_id: net.id, fixed_ips: [{ subnet_id: subnet!.id }] });
    await api.replaceTags('ports', port.id, idTags);
    assert.deepEqual(
      (await api.listPorts({ tags: idTags })).map((p) => p.id),
      [port.id],
    );
    await api.updatePort(port.id, { device_id: 'dev' });
    assert.equal((await api.showPort(port.id)).device_id, 'dev');
    await api.replaceTags('ports', port.id, []);
    const before = calls();
    assert.deepEqual(await api.listPorts({ tags: idTags }), [], 'no longer matches: asked of Neutron');
    assert.equal(calls(), before + 1);
    await api.addTag('ports', port.id, 'x');
    assert.deepEqual((await api.showPort(port.id)).tags, ['x']);
    await api.removeTag('ports', port.id, 'x');
    assert.deepEqual((await api.showPort(port.id)).tags, []);
    await api.deleteNetwork(net.id).catch(() => undefined);
    await api.deletePort(port.id);
    await assert.rejects(api.showPort(port.id), (err: unknown) => err instanceof NeutronError && err.status === 404);
  });

  test('what it deleted is a 404 without a call, with the subnets of a deleted network; fresh still asks', async () => {
    const pool = await api.createSubnetPool({ name: 'p', prefixes: ['10.9.0.0/16'], default_prefixlen: 24 });
    const net = await api.createNetwork({ name: 'n' });
    const [subnet] = await api.createSubnets([
      { network_id: net.id, ip_version: 4, cidr: '10.9.1.0/24', subnetpool_id: pool.id },
    ]);
    await api.deleteNetwork(net.id);
    await api.deleteSubnetPool(pool.id);
    const before = calls();
    const is404 = (type: string) => (err: unknown) =>
      err instanceof NeutronError && err.status === 404 && err.type === type;
    await assert.rejects(api.showSubnetPool(pool.id), is404('SubnetPoolNotFound'));
    await assert.rejects(api.showNetwork(net.id), is404('NetworkNotFound'));
    await assert.rejects(api.showSubnet(subnet!.id), is404('SubnetNotFound'), 'deleted with its network');
    assert.equal(calls(), before, 'answered without a call');
    assert.equal(api.staleDrops, 0, 'not a stale entry: nothing to look again for');
    await assert.rejects(api.fresh.showSubnetPool(pool.id), is404('SubnetPoolNotFound'));
    assert.equal(calls(), before + 1, 'fresh asks Neutron');
  });

  test('another process’s delete is found by a 404: the entry is dropped and the next read asks Neutron', async () => {
    const pool = await api.createSubnetPool({ name: 'p', prefixes: ['10.8.0.0/16'], default_prefixlen: 24 });
    await api.listSubnetPools({ name: 'p' });
    await store.deleteSubnetPool(pool.id); // another process
    assert.equal((await api.showSubnetPool(pool.id)).id, pool.id, 'still served: nothing said otherwise yet');
    const drops = api.staleDrops;
    const net = await api.createNetwork({ name: 'n' });
    await assert.rejects(
      api.createSubnets([{ network_id: net.id, ip_version: 4, cidr: '10.8.1.0/24', subnetpool_id: pool.id }]),
      (err: unknown) => err instanceof NeutronError && err.status === 404,
    );
    assert.equal(api.staleDrops, drops + 1, 'the 404 named a kept pool');
    await assert.rejects(
      api.showSubnetPool(pool.id),
      (err: unknown) => err instanceof NeutronError && err.status === 404,
    );
    assert.deepEqual(await api.listSubnetPools({ name: 'p' }), []);
  });

  test('fresh always asks Neutron and refreshes what is kept', async () => {
    const net = await api.createNetwork({ name: 'n' });
    await store.updateNetwork(net.id, { description: 'changed elsewhere' });
    assert.equal((await api.showNetwork(net.id)).description, '');
    const before = calls();
    assert.equal((await api.fresh.showNetwork(net.id)).description, 'changed elsewhere');
    assert.equal(calls(), before + 1);
    assert.equal((await api.showNetwork(net.id)).description, 'changed elsewhere');
    assert.equal(calls(), before + 1);
  });

  test('lists with fields, unknown keys or no filter pass through and keep nothing', async () => {
    await api.createNetwork({ name: 'n' });
    const before = calls();
    await api.listNetworks({ fields: ['id'] });
    await api.listNetworks();
    await api.listNetworks({ mtu: 1500 });
    await api.listNetworks({ mtu: 1500 });
    assert.equal(calls(), before + 4);
  });

  test('the lists it keeps are those of live resources: one per endpoint would make every write slower', async () => {
    const net = await api.createNetwork({ name: 'n' });
    const [subnet] = await api.createSubnets([{ network_id: net.id, ip_version: 4, cidr: '10.7.0.0/24' }]);
    const baseline = api.keptListCount();
    for (let i = 0; i < 50; i++) {
      // A container lifecycle: the port, its endpoint tags, the fresh read of EndpointOperInfo, the release.
      const endpoint = (i + 1).toString(16).padStart(64, 'e');
      const tags = [`kuryr.net.uuid.lh:${endpoint.slice(0, 32)}`, `kuryr.net.uuid.uh:${endpoint.slice(32)}`];
      const port = await api.createPort({ network_id: net.id, fixed_ips: [{ subnet_id: subnet!.id }] });
      await api.replaceTags('ports', port.id, tags);
      assert.deepEqual(
        (await api.fresh.listPorts({ tags })).map((p) => p.id),
        [port.id],
      );
      assert.deepEqual(
        (await api.listPorts({ tags })).map((p) => p.id),
        [port.id],
        'served from the list kept',
      );
      await api.deletePort(port.id);
    }
    assert.equal(api.keptListCount(), baseline, 'each endpoint’s list went with its port');
  });

  test('lists of resources others delete are bounded: the oldest are forgotten first', async () => {
    for (let i = 0; i < LISTS_LIMIT + 5; i++) await api.listSubnetPools({ name: `p${i}` });
    assert.equal(api.keptListCount(), LISTS_LIMIT);
    const before = calls();
    await api.listSubnetPools({ name: `p${LISTS_LIMIT + 4}` });
    assert.equal(calls(), before + 1, 'an empty answer is still asked of Neutron');
  });

  test('an answer read before a write never overwrites what the write returned (revisions)', async () => {
    const created = await store.createNetwork({ name: 'n' });
    const stale = await store.showNetwork(created.id);
    // A list that started before the update comes back after it, with the older revision.
    const inner = new Proxy(store, {
      get: (target, prop) => {
        if (prop === 'listNetworks') return async () => [stale];
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const cache = cachingNeutron(inner);
    await cache.updateNetwork(created.id, { description: 'new' });
    await cache.fresh.listNetworks({ name: 'n' });
    assert.equal((await cache.showNetwork(created.id)).description, 'new');
  });
});

describe('serve, gc and the CLI get the cache', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kx-cache-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const config = () => {
    const file = path.join(dir, 'kuryr.conf');
    writeFileSync(file, `[kuryr_ts]\nstate_dir = ${path.join(dir, 'state')}\n`);
    return loadConfig({ config: file }, {});
  };

  test('openBackend hands out the cache, with the observer (counting) behind it', async () => {
    let observed = 0;
    const backend = await openBackend(config(), {
      observe: (api) => {
        observed++;
        return countingNeutron(api);
      },
    });
    try {
      assert.ok(isCaching(backend.neutron));
      assert.equal(observed, 1);
    } finally {
      await backend.close();
    }
  });

  test('a pool deleted and created again by the CLI (another process) is what the serving cache then uses', async () => {
    const c = config();
    const serving = await openBackend(c);
    try {
      const first = await createSubnetPool(c, { name: 'team', prefixes: ['10.9.0.0/16'] });
      const api = serving.neutron;
      assert.ok(isCaching(api));
      assert.deepEqual(
        (await api.listSubnetPools({ name: 'team' })).map((p) => p.id),
        [first.id],
      );
      await deleteSubnetPool(c, 'team');
      const second = await createSubnetPool(c, { name: 'team', prefixes: ['10.9.0.0/16'] });
      // The first use of the replaced pool's ID gets a 404: dropped, and the next lookup finds the new pool.
      const drops = api.staleDrops;
      await assert.rejects(api.updateSubnetPool(first.id, { description: 'x' }));
      assert.equal(api.staleDrops, drops + 1);
      assert.deepEqual(
        (await api.listSubnetPools({ name: 'team' })).map((p) => p.id),
        [second.id],
      );
    } finally {
      await serving.close();
    }
  });
});
