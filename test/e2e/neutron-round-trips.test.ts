// The Neutron round trips of one network, two containers and their teardown against the real Neutron lab (noauth),
// counted twice: at the NeutronApi boundary (the counting decorator, as the metrics count them) and as HTTP
// requests the client sent (pages and retries included). Both must equal the calls the unit test pins per phase
// (test/unit/round-trips.test.ts, embedded store), in tag mode and in tagless mode (the lab's Neutron behind
// taglessNeutron, which refuses every tag call). The host side is the fake binder: nothing is plugged, so the
// test needs neither root nor a Docker engine, only the lab. Run it under /tmp/kuryr-e2e.lock.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { KuryrDriver } from '../../src/driver/driver.ts';
import type { TagSupport } from '../../src/driver/marks.ts';
import { countingNeutron } from '../../src/neutron/counting.ts';
import { openNeutronHttp } from '../../src/neutron/http/index.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { FakeBinder, TEST_SETTINGS } from '../helpers/fakes.ts';
import { neutronLab } from '../helpers/neutron-lab.ts';
import { describePhases, expectedLifecycle, lifecycleCalls } from '../helpers/round-trips.ts';
import { taglessNeutron } from '../helpers/tagless-neutron.ts';
import { RequestCounter } from '../helpers/request-counter.ts';

const lab = await neutronLab();

/** The figure issue 15 asks for on a real Neutron; see the report in the test's diagnostics. */
const BUDGET = 14;

describe('Neutron calls of the user flow on the real Neutron lab', { skip: lab.skip.noauth }, () => {
  const clients: ReturnType<typeof openNeutronHttp>[] = [];
  after(async () => {
    for (const c of clients) await c.close();
  });

  const cases: { name: string; tagSupport: TagSupport | undefined }[] = [
    { name: 'tags', tagSupport: undefined },
    { name: 'no tags', tagSupport: { tag: false, tagExt: false } },
  ];
  for (const c of cases) {
    test(`one network, two containers and teardown (${c.name}): the pinned calls, as HTTP requests too`, async (t) => {
      const sent = new RequestCounter();
      const client = openNeutronHttp(
        { auth_type: 'none', endpoint: lab.noauth!.neutronUrl },
        { onRequest: sent.onRequest },
      );
      clients.push(client);
      const tagless = c.tagSupport === undefined ? undefined : taglessNeutron(client, c.tagSupport);
      const neutron = countingNeutron(tagless ?? client);
      const run = Math.random().toString(36).slice(2, 8);
      const driver = new KuryrDriver({
        neutron,
        binder: new FakeBinder(),
        // A host no agent serves: the ports are bound in Neutron, nothing is wired.
        settings: { ...TEST_SETTINGS, hostId: `kx-round-trips-${run}`, subnetpoolNamePrefix: `kxrt${run}` },
        log: silentLogger(),
        ...(c.tagSupport === undefined ? {} : { tagSupport: c.tagSupport }),
      });
      const x = 100 + Math.floor(Math.random() * 150);
      const y = Math.floor(Math.random() * 250);
      const requestsBefore = sent.total;
      const phases = await lifecycleCalls(driver, neutron, `10.${x}.${y}.0/24`, `10.${x}.${y}.1`);
      const requests = sent.total - requestsBefore;
      const total = phases.reduce((n, p) => n + p.total, 0);
      t.diagnostic(describePhases(phases));
      t.diagnostic(`${requests} HTTP requests; issue 15's budget on a real Neutron: ${BUDGET}`);
      assert.deepEqual(tagless?.violations ?? [], []);
      assert.deepEqual(
        Object.fromEntries(phases.map((p) => [p.phase, p.calls])),
        expectedLifecycle(c.tagSupport === undefined, false),
        describePhases(phases),
      );
      assert.equal(requests, total, 'one HTTP request per NeutronApi call: no retry, no second page');
      const left = await client.listSubnetPools({ name: `kxrt${run}-10.${x}.${y}.0/24` });
      assert.deepEqual(left, [], 'nothing left in the lab');
    });
  }
});
