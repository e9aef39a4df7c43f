// Neutron round trips of the whole user flow, counted at the NeutronApi boundary (the counting decorator, as the
// metrics count them): one network, two containers, their teardown and the network's removal, in the order
// dockerd calls the plugin (test/helpers/round-trips.ts). Every phase's calls are pinned per method, in tag and
// tagless mode, so any extra round trip fails here. kuryr-libnetwork needed 74 calls for this flow (measured).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KuryrDriver } from '../../src/driver/driver.ts';
import type { TagSupport } from '../../src/driver/marks.ts';
import { STATUS_MAX_AGE_MS } from '../../src/driver/endpoint.ts';
import { cachingNeutron } from '../../src/neutron/caching.ts';
import { countingNeutron } from '../../src/neutron/counting.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/store.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { FakeAgent, FakeBinder, TEST_SETTINGS } from '../helpers/fakes.ts';
import { endpointJoin, networkCreate } from '../helpers/docker-sequence.ts';
import { type Counts, describePhases, expectedLifecycle, lifecycleCalls } from '../helpers/round-trips.ts';
import { taglessNeutron } from '../helpers/tagless-neutron.ts';

async function measure(tagSupport: TagSupport | undefined, agent: boolean) {
  const store = openEmbeddedNeutron({ path: ':memory:' });
  const tagless = tagSupport === undefined ? undefined : taglessNeutron(store, tagSupport);
  const neutron = countingNeutron(tagless ?? store);
  const driver = new KuryrDriver({
    neutron,
    binder: new FakeBinder(),
    ...(agent ? { agent: new FakeAgent() } : {}),
    settings: TEST_SETTINGS,
    log: silentLogger(),
    ...(tagSupport === undefined ? {} : { tagSupport }),
  });
  try {
    const phases = await lifecycleCalls(driver, neutron, '10.99.0.0/24', '10.99.0.1');
    assert.deepEqual(tagless?.violations ?? [], [], 'no tag call on a Neutron without tags');
    return phases;
  } finally {
    store.close();
  }
}

/** The pinned calls, phase by phase. */
function expectPhases(
  actual: Awaited<ReturnType<typeof measure>>,
  expected: Record<string, Counts>,
  total: number,
): void {
  assert.deepEqual(Object.fromEntries(actual.map((p) => [p.phase, p.calls])), expected, describePhases(actual));
  assert.equal(
    actual.reduce((n, p) => n + p.total, 0),
    total,
  );
}

const CASES: { name: string; tagSupport: TagSupport | undefined; agent: boolean; total: number }[] = [
  // The embedded backend's CreateNetwork checks the store's subnets for overlaps (2 reads).
  { name: 'tags, embedded backend (the plugin is the agent)', tagSupport: undefined, agent: true, total: 19 },
  { name: 'tags, neutron backend (no agent)', tagSupport: undefined, agent: false, total: 17 },
  { name: 'no tags, embedded backend', tagSupport: { tag: false, tagExt: false }, agent: true, total: 15 },
  { name: 'no tags, neutron backend', tagSupport: { tag: false, tagExt: false }, agent: false, total: 13 },
];

for (const c of CASES) {
  test(`one network, two containers and teardown: exact Neutron calls per phase (${c.name})`, async (t) => {
    const phases = await measure(c.tagSupport, c.agent);
    t.diagnostic(describePhases(phases));
    expectPhases(phases, expectedLifecycle(c.tagSupport === undefined, c.agent), c.total);
  });
}

test('EndpointOperInfo on a real Neutron: the status CreateEndpoint got while recent, then Neutron is asked', async () => {
  const store = openEmbeddedNeutron({ path: ':memory:' });
  try {
    const neutron = countingNeutron(store);
    let clock = 1_000_000;
    const driver = new KuryrDriver({
      neutron: cachingNeutron(neutron, { now: () => clock }),
      binder: new FakeBinder(),
      settings: TEST_SETTINGS,
      log: silentLogger(),
    });
    const net = await networkCreate(driver, { subnet: '10.98.0.0/24' });
    const ep = await endpointJoin(driver, net);
    const asked = () => neutron.callCounts().listPorts ?? 0;
    const before = asked();
    clock += STATUS_MAX_AGE_MS;
    const recent = await driver.endpointOperInfo(ep.id);
    assert.equal(asked(), before, 'no call while the port CreateEndpoint wrote is recent');
    assert.equal(recent.Value.status, 'ACTIVE');
    // The status changes in Neutron meanwhile (another process sets the port down: the cache does not see it).
    await store.updatePort(recent.Value.port_id!, { admin_state_up: false });
    clock += 1;
    const later = await driver.endpointOperInfo(ep.id);
    assert.equal(asked(), before + 1, 'an older status is asked of Neutron');
    assert.equal(later.Value.status, 'DOWN');
    const again = await driver.endpointOperInfo(ep.id);
    assert.equal(asked(), before + 1, 'and what it answered is recent again');
    assert.equal(again.Value.status, 'DOWN');
  } finally {
    store.close();
  }
});
