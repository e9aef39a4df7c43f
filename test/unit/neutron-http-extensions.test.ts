/** Start-up extension detection: one GET /v2.0/extensions, tag modes, the mandatory subnet_allocation. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { KuryrError } from '../../src/errors.ts';
import type { Extension } from '../../src/neutron/types.ts';
import {
  detectNeutronFeatures,
  featuresFromAliases,
  NeutronHttpClient,
  withDefaults,
} from '../../src/neutron/http/index.ts';
import { type FakeNeutron, startFakeNeutron } from '../helpers/fake-openstack.ts';
import { RequestCounter } from '../helpers/request-counter.ts';

const ext = (alias: string): Extension => ({ alias, name: alias, description: `${alias} extension` });

describe('neutron http extensions', () => {
  const modes: [string, string[], { tagMode: string; tag: boolean; tagExt: boolean }][] = [
    [
      'standard-attr-tag: full',
      ['subnet_allocation', 'standard-attr-tag', 'tag', 'tag-ext'],
      { tagMode: 'full', tag: true, tagExt: true },
    ],
    [
      'standard-attr-tag alone is full',
      ['subnet_allocation', 'standard-attr-tag'],
      { tagMode: 'full', tag: true, tagExt: true },
    ],
    ['tag only: networks', ['subnet_allocation', 'tag'], { tagMode: 'legacy', tag: true, tagExt: false }],
    ['tag-ext only', ['subnet_allocation', 'tag-ext'], { tagMode: 'legacy', tag: false, tagExt: true }],
    ['tag and tag-ext', ['subnet_allocation', 'tag', 'tag-ext'], { tagMode: 'legacy', tag: true, tagExt: true }],
    ['no tag extension', ['subnet_allocation', 'binding'], { tagMode: 'none', tag: false, tagExt: false }],
  ];
  for (const [name, aliases, expected] of modes) {
    test(name, () => {
      const f = featuresFromAliases(aliases);
      assert.deepEqual({ tagMode: f.tagMode, tag: f.tag, tagExt: f.tagExt }, expected);
      assert.ok(f.extensions.has('subnet_allocation'));
    });
  }

  test('tag-ports-during-bulk-creation: a port POST may carry tags, only where ports take tags', () => {
    const ext = 'tag-ports-during-bulk-creation';
    assert.equal(featuresFromAliases(['subnet_allocation', 'standard-attr-tag', ext]).portTagsOnCreate, true);
    assert.equal(featuresFromAliases(['subnet_allocation', 'tag-ext', ext]).portTagsOnCreate, true);
    assert.equal(featuresFromAliases(['subnet_allocation', 'standard-attr-tag']).portTagsOnCreate, false);
    assert.equal(featuresFromAliases(['subnet_allocation', 'tag', ext]).portTagsOnCreate, false, 'ports take no tags');
  });

  test('subnet_allocation missing is a start-up error with kuryr’s message', () => {
    assert.throws(
      () => featuresFromAliases(['standard-attr-tag']),
      (err: unknown) =>
        err instanceof KuryrError && err.message === "Neutron extension with alias 'subnet_allocation' not found",
    );
  });

  test('other failures are retried on kuryr’s schedule; a missing extension is not', async () => {
    const sleeps: number[] = [];
    let calls = 0;
    const flaky = {
      async listExtensions() {
        calls++;
        if (calls < 3) throw new Error('connection refused');
        return [ext('subnet_allocation'), ext('tag')];
      },
    };
    const warnings: string[] = [];
    const noop = () => undefined;
    const f = await detectNeutronFeatures(flaky, {
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      log: { debug: noop, info: noop, error: noop, warn: (_o, m) => warnings.push(m ?? '') },
    });
    assert.equal(f.tagMode, 'legacy');
    assert.deepEqual(sleeps, [0, 1_000]);
    assert.deepEqual(warnings.slice(2), [
      'Neutron extension standard-attr-tag is not available',
      'Neutron extension tag-ext is not available',
    ]);

    let missingCalls = 0;
    await assert.rejects(
      detectNeutronFeatures({
        async listExtensions() {
          missingCalls++;
          return [ext('binding')];
        },
      }),
      /subnet_allocation/,
    );
    assert.equal(missingCalls, 1);

    let failing = 0;
    await assert.rejects(
      detectNeutronFeatures(
        {
          async listExtensions() {
            failing++;
            throw new Error(`down ${failing}`);
          },
        },
        { attempts: 8, sleep: async (ms) => void sleeps.push(ms) },
      ),
      /down 8/,
    );
    assert.deepEqual(sleeps.slice(2), [0, 1_000, 3_000, 7_000, 15_000, 31_000, 63_000], 'kuryr’s schedule');
  });

  describe('over HTTP', () => {
    let neutron: FakeNeutron;
    before(async () => {
      neutron = await startFakeNeutron();
    });
    after(async () => {
      await neutron.close();
    });

    test('one GET /v2.0/extensions', async () => {
      neutron.handler = () => ({
        status: 200,
        body: {
          extensions: ['subnet_allocation', 'standard-attr-tag', 'binding'].map((a) => ({
            ...ext(a),
            updated: '2017-01-01T00:00:00-00:00',
            links: [],
          })),
        },
      });
      const sent = new RequestCounter();
      const api = new NeutronHttpClient(withDefaults({ auth: { type: 'none', endpoint: neutron.url } }), {
        onRequest: sent.onRequest,
      });
      const f = await detectNeutronFeatures(api);
      await api.close();
      assert.equal(f.tagMode, 'full');
      assert.deepEqual([...f.extensions].sort(), ['binding', 'standard-attr-tag', 'subnet_allocation']);
      assert.deepEqual(sent.toObject(), { 'GET /v2.0/extensions': 1 });
    });
  });
});
