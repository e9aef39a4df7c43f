// Locks on the release paths: a ReleasePool or ReleaseAddress running alongside a create for the same CIDR or
// address can no longer delete (or undo) what the create was just given. Still no global lock.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { KuryrDriver } from '../../src/driver/driver.ts';
import type { NeutronApi } from '../../src/neutron/api.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/store.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { endpointJoin, endpointLeave, networkCreate, networkRemove } from '../helpers/docker-sequence.ts';
import { FakeAgent, FakeBinder, TEST_SETTINGS } from '../helpers/fakes.ts';

/** A Neutron whose next call of one method can be held until the test lets it go. */
function gatedNeutron(inner: NeutronApi) {
  let held: { method: keyof NeutronApi; reached: () => void; release: Promise<void> } | undefined;
  const api = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const gate = held;
        if (gate !== undefined && gate.method === prop) {
          held = undefined;
          gate.reached();
          await gate.release;
        }
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
  /** Holds the next call of `method`: resolves `reached` when it comes, lets it go on `open()`. */
  const hold = (method: keyof NeutronApi) => {
    let open!: () => void;
    const release = new Promise<void>((r) => {
      open = r;
    });
    let reached!: () => void;
    const reachedP = new Promise<void>((r) => {
      reached = r;
    });
    held = { method, reached, release };
    return { reached: reachedP, open };
  };
  return { api, hold };
}

const settle = () => new Promise<void>((r) => setTimeout(r, 30));

describe('locks on the release paths', () => {
  let store: ReturnType<typeof openEmbeddedNeutron>;
  let gated: ReturnType<typeof gatedNeutron>;
  let driver: KuryrDriver;
  let binder: FakeBinder;
  beforeEach(async () => {
    store = openEmbeddedNeutron({ path: ':memory:' });
    await store.createSubnetPool({ name: 'kuryr', prefixes: ['10.10.0.0/16'], default_prefixlen: 24 });
    gated = gatedNeutron(store);
    binder = new FakeBinder();
    driver = new KuryrDriver({
      neutron: gated.api,
      binder,
      agent: new FakeAgent(),
      settings: TEST_SETTINGS,
      log: silentLogger(),
    });
  });
  afterEach(() => store.close());

  test('ReleasePool of a failed network never deletes the pool another RequestPool of the same CIDR was just given', async () => {
    // Network A: RequestPool, then its create fails before CreateNetwork (Docker releases the pool).
    const a = await driver.requestPool({ Pool: '10.81.0.0/24', SubPool: '', Options: {}, V6: false });
    // Network B of the same CIDR gets the same pool at that moment.
    const bPromise = networkCreate(driver, { subnet: '10.81.0.0/24' });
    await driver.releasePool(a.PoolID);
    const b = await bPromise;
    const ep = await endpointJoin(driver, b);
    assert.match(ep.address, /^10\.81\.0\.\d+\/24$/, 'network B works');
    await endpointLeave(driver, ep);
    await networkRemove(driver, b);
    assert.deepEqual(
      (await store.listSubnetPools()).map((p) => p.name),
      ['kuryr'],
      'the last user removed the pool',
    );
  });

  test('ReleasePool alongside RequestPool of the same CIDR: the pool B was given survives', async () => {
    const a = await driver.requestPool({ Pool: '10.82.0.0/24', SubPool: '', Options: {}, V6: false });
    const b = await driver.requestPool({ Pool: '10.82.0.0/24', SubPool: '', Options: {}, V6: false });
    assert.equal(a.PoolID, b.PoolID);
    await driver.releasePool(a.PoolID);
    const [pool] = await store.listSubnetPools({ name: 'kuryrPool-10.82.0.0/24' });
    assert.ok(pool, 'B still has its pool');
  });

  test('ReleaseAddress handing a port back alongside a new container taking it: the new endpoint keeps its port', async () => {
    // An orchestrator's pre-created port, taken over by a first container.
    const net = await networkCreate(driver, { subnet: '10.83.0.0/24' });
    const [network] = await store.listNetworks();
    const [subnet] = await store.listSubnets({ network_id: network!.id });
    const pre = await store.createPort({
      name: 'orchestrator-port',
      network_id: network!.id,
      mac_address: 'fa:16:3e:00:83:14',
      fixed_ips: [{ subnet_id: subnet!.id, ip_address: '10.83.0.20' }],
    });
    const opts = { ip: '10.83.0.20', mac: pre.mac_address };
    const first = await endpointJoin(driver, net, opts);
    // The first container goes: its ReleaseAddress hands the port back, held just before its last write.
    await driver.deleteEndpoint(first.id);
    const gate = gated.hold('replaceTags');
    const release = driver.releaseAddress({ PoolID: net.pools[0]!.poolId, Address: '10.83.0.20' });
    await gate.reached;
    // Meanwhile a second container asks for the same port (same address and MAC).
    const secondP = endpointJoin(driver, net, opts);
    await settle();
    gate.open();
    await release;
    const second = await secondP;
    const port = await store.showPort(pre.id);
    assert.equal(port.device_id, second.id, 'the second container holds the port');
    assert.equal(port['binding:host_id'], 'test-host');
    assert.ok(
      port.tags.includes(`kuryr.net.uuid.lh:${second.id.slice(0, 32)}`),
      `its endpoint tags are intact: ${port.tags.join(' ')}`,
    );
    assert.ok(binder.bound.has(pre.id));
    await endpointLeave(driver, second);
    const back = await store.showPort(pre.id);
    assert.equal(back.device_id, '');
    assert.deepEqual(back.tags, []);
  });
});
