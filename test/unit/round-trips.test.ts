// Neutron round trips of the whole user flow, counted at the NeutronApi boundary: one network, two
// containers, their teardown and the network's removal, in the order dockerd calls the plugin.
// kuryr-libnetwork needed 74 for this (measured); the budget is 30.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KuryrDriver } from '../../src/driver/driver.ts';
import { countingNeutron } from '../../src/neutron/counting.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/store.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { endpointJoin, endpointLeave, networkCreate, networkRemove } from '../helpers/docker-sequence.ts';
import { FakeAgent, FakeBinder, TEST_SETTINGS } from '../helpers/fakes.ts';
import { taglessNeutron } from '../helpers/tagless-neutron.ts';

/** The user flow against `neutron`, with the number of calls per phase. */
async function userFlow(driver: KuryrDriver, neutron: ReturnType<typeof countingNeutron>) {
  const phases: [string, number][] = [];
  let last = 0;
  const mark = (phase: string) => {
    phases.push([phase, neutron.totalCalls() - last]);
    last = neutron.totalCalls();
  };
  const net = await networkCreate(driver, { subnet: '10.99.0.0/24', gateway: '10.99.0.1' });
  mark('network create');
  const a = await endpointJoin(driver, net);
  const b = await endpointJoin(driver, net);
  mark('2 × docker run');
  await driver.endpointOperInfo(a.id);
  mark('inspect');
  await endpointLeave(driver, a);
  await endpointLeave(driver, b);
  mark('2 × docker rm -f');
  await networkRemove(driver, net);
  mark('network rm');
  return `${phases.map(([p, n]) => `${p}: ${n}`).join(', ')}; total ${neutron.totalCalls()}`;
}

test('one network + two containers + teardown costs at most 30 Neutron calls', async (t) => {
  const store = openEmbeddedNeutron({ path: ':memory:' });
  const neutron = countingNeutron(store);
  const driver = new KuryrDriver({
    neutron,
    binder: new FakeBinder(),
    agent: new FakeAgent(),
    settings: TEST_SETTINGS,
    log: silentLogger(),
  });
  t.diagnostic(await userFlow(driver, neutron));
  t.diagnostic(JSON.stringify(neutron.callCounts()));
  assert.ok(neutron.totalCalls() <= 30, `${neutron.totalCalls()} calls`);
  store.close();
});

test('the same flow on a Neutron without tag extensions costs no more (names instead of tags)', async (t) => {
  const store = openEmbeddedNeutron({ path: ':memory:' });
  const tagless = taglessNeutron(store, { tag: false, tagExt: false });
  const neutron = countingNeutron(tagless);
  const driver = new KuryrDriver({
    neutron,
    binder: new FakeBinder(),
    agent: new FakeAgent(),
    settings: TEST_SETTINGS,
    log: silentLogger(),
    tagSupport: { tag: false, tagExt: false },
  });
  t.diagnostic(await userFlow(driver, neutron));
  t.diagnostic(JSON.stringify(neutron.callCounts()));
  assert.deepEqual(tagless.violations, []);
  assert.ok(neutron.totalCalls() <= 30, `${neutron.totalCalls()} calls`);
  store.close();
});
