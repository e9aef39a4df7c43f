// [neutron] vif_plugging_is_fatal / vif_plugging_timeout: CreateEndpoint waits for the port to be ACTIVE when
// fatal (and fails, undoing the endpoint, when it is not in time); not fatal, nothing waits (as the original).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { VifPluggingSettings } from '../../src/config/config.ts';
import { loadConfig } from '../../src/config/load.ts';
import { KuryrDriver } from '../../src/driver/driver.ts';
import type { NeutronApi } from '../../src/neutron/api.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/store.ts';
import type { Port } from '../../src/neutron/types.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { REQUEST_BUDGET_MS, ROLLBACK_BUDGET_MS } from '../../src/plugin/server.ts';
import { RequestDeadline } from '../../src/util/deadline.ts';
import { endpointJoin, networkCreate } from '../helpers/docker-sequence.ts';
import { FakeAgent, FakeBinder, TEST_SETTINGS } from '../helpers/fakes.ts';

/** The embedded store, but ports read DOWN until `activeAfterReads` reads of the port (a slow L2 agent). */
function slowAgentNeutron(store: NeutronApi, activeAfterReads: number) {
  const state = { reads: 0 };
  const down = (p: Port): Port => (state.reads >= activeAfterReads ? p : { ...p, status: 'DOWN' });
  const neutron = new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      if (key === 'showPort')
        return async (id: string) => {
          state.reads++;
          return down(await target.showPort(id));
        };
      if (key === 'createPort' || key === 'updatePort')
        return async (...args: unknown[]) =>
          down(await (value as (...a: unknown[]) => Promise<Port>).apply(target, args));
      return value.bind(target);
    },
  });
  return { neutron, state };
}

describe('vif_plugging_is_fatal / vif_plugging_timeout', () => {
  let store: ReturnType<typeof openEmbeddedNeutron>;
  beforeEach(async () => {
    store = openEmbeddedNeutron({ path: ':memory:' });
    await store.createSubnetPool({ name: 'kuryr', prefixes: ['10.10.0.0/16'], default_prefixlen: 24 });
  });
  afterEach(() => store.close());

  const driverWith = (vifPlugging: VifPluggingSettings, activeAfterReads: number) => {
    const { neutron, state } = slowAgentNeutron(store, activeAfterReads);
    const binder = new FakeBinder();
    const driver = new KuryrDriver({
      neutron,
      binder,
      agent: new FakeAgent(),
      settings: { ...TEST_SETTINGS, vifPlugging },
      log: silentLogger(),
    });
    return { driver, binder, state };
  };

  test('fatal: CreateEndpoint waits until the port is ACTIVE', async () => {
    const { driver, state } = driverWith({ fatal: true, timeoutSeconds: 10 }, 2);
    const net = await networkCreate(driver, { subnet: '10.61.0.0/24' });
    const started = Date.now();
    await endpointJoin(driver, net);
    assert.ok(state.reads >= 2, `the port was read until ACTIVE (${state.reads} reads)`);
    assert.ok(Date.now() - started >= 900, 'it waited for the second read');
  });

  test('fatal: a port still DOWN after vif_plugging_timeout fails CreateEndpoint and undoes it', async () => {
    const { driver, binder } = driverWith({ fatal: true, timeoutSeconds: 1 }, Number.POSITIVE_INFINITY);
    const net = await networkCreate(driver, { subnet: '10.62.0.0/24' });
    const started = Date.now();
    await assert.rejects(endpointJoin(driver, net), (err: Error) => {
      assert.match(err.message, /Neutron port .* did not become active on time\. \(status DOWN after 1\.\d s/);
      assert.equal((err as { code?: string }).code, 'KURYR_ERR_BINDING');
      return true;
    });
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 900 && elapsed < 3_000, `waited about the timeout (${elapsed} ms)`);
    assert.equal(binder.bound.size, 0, 'the host side was unplugged');
    assert.equal((await store.listPorts({ device_owner: 'compute:kuryr' })).length, 0, 'no port left bound');
  });

  test('fatal with vif_plugging_timeout = 0: the wait ends by the request deadline instead of never', async () => {
    const { driver } = driverWith({ fatal: true, timeoutSeconds: 0 }, Number.POSITIVE_INFINITY);
    const net = await networkCreate(driver, { subnet: '10.63.0.0/24' });
    // A request that has already used most of its budget: about 1.5 s are left for the wait.
    const deadline = new RequestDeadline(REQUEST_BUDGET_MS, ROLLBACK_BUDGET_MS, Date.now() - 17_500);
    const started = Date.now();
    try {
      await assert.rejects(endpointJoin(driver.forRequest(deadline), net), /did not become active on time/);
    } finally {
      deadline.dispose();
    }
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1_000 && elapsed < 3_500, `bounded by the deadline (${elapsed} ms)`);
  });

  test('not fatal (the default): a DOWN port is not waited for, and the port is never polled', async () => {
    const { driver, binder, state } = driverWith({ fatal: false, timeoutSeconds: 30 }, Number.POSITIVE_INFINITY);
    const net = await networkCreate(driver, { subnet: '10.64.0.0/24' });
    const started = Date.now();
    const ep = await endpointJoin(driver, net);
    assert.ok(Date.now() - started < 500);
    assert.equal(state.reads, 0);
    assert.equal(binder.bound.size, 1);
    assert.match(ep.address, /^10\.64\.0\./);
  });
});

test('kuryr.conf: [neutron] vif_plugging_is_fatal and vif_plugging_timeout are read, defaults false and 0', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kuryr-vif-'));
  try {
    const empty = path.join(dir, 'empty.conf');
    writeFileSync(empty, '');
    assert.deepEqual(loadConfig({ config: empty }, {}).driver.vifPlugging, { fatal: false, timeoutSeconds: 0 });
    const conf = path.join(dir, 'kuryr.conf');
    writeFileSync(conf, '[neutron]\nvif_plugging_is_fatal = True\nvif_plugging_timeout = 7\n');
    assert.deepEqual(loadConfig({ config: conf, backend: 'neutron' }, {}).driver.vifPlugging, {
      fatal: true,
      timeoutSeconds: 7,
    });
    writeFileSync(conf, '[neutron]\nvif_plugging_timeout = soon\n');
    assert.throws(() => loadConfig({ config: conf, backend: 'neutron' }, {}), /vif_plugging_timeout/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
