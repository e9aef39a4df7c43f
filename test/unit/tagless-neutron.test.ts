import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { NeutronApi } from '../../src/neutron/api.ts';
import { NEUTRON_METHODS } from '../../src/neutron/counting.ts';
import { type EmbeddedNeutron, openEmbeddedNeutron } from '../../src/neutron/embedded/store.ts';
import { NeutronError } from '../../src/neutron/errors.ts';
import { featuresFromAliases } from '../../src/neutron/http/extensions.ts';
import type { Extension, TaggedResource } from '../../src/neutron/types.ts';
import { type TagSupport, taglessNeutron } from '../helpers/tagless-neutron.ts';

const COMBINATIONS: readonly TagSupport[] = [
  { tag: false, tagExt: false },
  { tag: true, tagExt: false },
  { tag: false, tagExt: true },
  { tag: true, tagExt: true },
];

const label = (s: TagSupport) => `tag=${s.tag} tagExt=${s.tagExt}`;
const supports = (s: TagSupport, r: TaggedResource) => (r === 'networks' ? s.tag : s.tagExt);

/** One of each tagged resource in the store, each tagged `t1` directly in the store (behind the wrapper). */
async function fixture(store: EmbeddedNeutron) {
  const network = await store.createNetwork({ name: 'net' });
  const pool = await store.createSubnetPool({ name: 'pool', prefixes: ['10.9.0.0/16'], default_prefixlen: 24 });
  const [subnet] = await store.createSubnets([{ network_id: network.id, ip_version: 4, cidr: '10.1.0.0/24' }]);
  assert.ok(subnet);
  const port = await store.createPort({ network_id: network.id, name: 'p' });
  const group = await store.createSecurityGroup({ name: 'sg' });
  const ids: Record<TaggedResource, string> = {
    networks: network.id,
    subnetpools: pool.id,
    subnets: subnet.id,
    ports: port.id,
    'security-groups': group.id,
  };
  for (const [resource, id] of Object.entries(ids)) await store.replaceTags(resource as TaggedResource, id, ['t1']);
  return ids;
}

async function rejectsWith(promise: Promise<unknown>, status: number, type: string, message: RegExp) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof NeutronError, `not a NeutronError: ${String(err)}`);
    assert.equal(err.status, status);
    assert.equal(err.type, type);
    assert.match(err.message, message);
    return true;
  });
}

/** The list call of each tagged resource, through `api`. */
function lister(api: NeutronApi, resource: TaggedResource) {
  switch (resource) {
    case 'networks':
      return (f?: Record<string, string | string[] | undefined>) => api.listNetworks(f);
    case 'subnets':
      return (f?: Record<string, string | string[] | undefined>) => api.listSubnets(f);
    case 'subnetpools':
      return (f?: Record<string, string | string[] | undefined>) => api.listSubnetPools(f);
    case 'ports':
      return (f?: Record<string, string | string[] | undefined>) => api.listPorts(f);
    case 'security-groups':
      return (f?: Record<string, string | string[] | undefined>) => api.listSecurityGroups(f);
  }
}
const LIST_METHOD: Record<TaggedResource, string> = {
  networks: 'listNetworks',
  subnets: 'listSubnets',
  subnetpools: 'listSubnetPools',
  ports: 'listPorts',
  'security-groups': 'listSecurityGroups',
};
const RESOURCES = Object.keys(LIST_METHOD) as TaggedResource[];

/** Plausible arguments for each method (the recorder checks they arrive unchanged). */
function argsOf(method: string): unknown[] {
  if (method === 'listExtensions') return [];
  if (method === 'replaceTags') return ['ports', 'id1', ['a']];
  if (method === 'addTag' || method === 'removeTag') return ['ports', 'id1', 'a'];
  if (method.startsWith('list')) return [{ name: 'x' }];
  if (method.startsWith('show') || method.startsWith('delete')) return ['id1'];
  if (method.startsWith('update')) return ['id1', { name: 'x' }];
  if (method === 'createSubnets' || method === 'createSecurityGroupRules') return [[{ name: 'x' }]];
  return [{ name: 'x' }];
}

describe('taglessNeutron: a Neutron without standard-attr-tag', () => {
  for (const support of COMBINATIONS) {
    describe(label(support), () => {
      test('listExtensions: standard-attr-tag never, tag / tag-ext exactly when supported, the rest kept', async () => {
        const store = openEmbeddedNeutron({ path: ':memory:' });
        try {
          const inner = (await store.listExtensions()).map((e) => e.alias);
          assert.ok(inner.includes('standard-attr-tag'), 'the store itself has full tag support');
          const n = taglessNeutron(store, support);
          const exts = await n.listExtensions();
          const aliases = exts.map((e) => e.alias);
          assert.ok(!aliases.includes('standard-attr-tag'));
          assert.equal(aliases.includes('tag'), support.tag);
          assert.equal(aliases.includes('tag-ext'), support.tagExt);
          for (const alias of inner) if (alias !== 'standard-attr-tag') assert.ok(aliases.includes(alias), alias);
          for (const e of exts) {
            assert.deepEqual(Object.keys(e).sort(), ['alias', 'description', 'name']);
            assert.ok(e.name !== '' && e.description !== '', e.alias);
          }
          // What the driver's feature detection makes of it: kuryr's two flags, as asked.
          const features = featuresFromAliases(aliases);
          assert.equal(features.tag, support.tag);
          assert.equal(features.tagExt, support.tagExt);
          assert.equal(features.tagMode, support.tag || support.tagExt ? 'legacy' : 'none');
          assert.deepEqual(n.violations, []);
        } finally {
          await store.close();
        }
      });

      test('every returned object has tags [] for an unsupported resource, its real tags otherwise', async () => {
        const store = openEmbeddedNeutron({ path: ':memory:' });
        try {
          const ids = await fixture(store);
          const n = taglessNeutron(store, support);
          const expect = (r: TaggedResource) => (supports(support, r) ? ['t1'] : []);

          assert.deepEqual((await n.showNetwork(ids.networks)).tags, expect('networks'));
          assert.deepEqual((await n.updateNetwork(ids.networks, { name: 'net2' })).tags, expect('networks'));
          assert.deepEqual((await n.showSubnet(ids.subnets)).tags, expect('subnets'));
          assert.deepEqual((await n.updateSubnet(ids.subnets, { name: 's2' })).tags, expect('subnets'));
          assert.deepEqual((await n.showSubnetPool(ids.subnetpools)).tags, expect('subnetpools'));
          assert.deepEqual((await n.updateSubnetPool(ids.subnetpools, { name: 'p2' })).tags, expect('subnetpools'));
          assert.deepEqual((await n.showPort(ids.ports)).tags, expect('ports'));
          assert.deepEqual((await n.updatePort(ids.ports, { name: 'p2' })).tags, expect('ports'));
          for (const r of RESOURCES) {
            const listed = (await lister(n, r)()).find((x) => x.id === ids[r]);
            assert.ok(listed, r);
            assert.deepEqual(listed.tags, expect(r), r);
          }
          // Creates too (nothing tagged yet, but the field is there and an array).
          const net = await n.createNetwork({ name: 'other' });
          assert.deepEqual(net.tags, []);
          const pool = await n.createSubnetPool({ prefixes: ['10.8.0.0/16'] });
          assert.deepEqual(pool.tags, []);
          const [sub] = await n.createSubnets([{ network_id: net.id, ip_version: 4, cidr: '10.2.0.0/24' }]);
          assert.deepEqual(sub?.tags, []);
          assert.deepEqual((await n.createPort({ network_id: net.id })).tags, []);
          assert.deepEqual((await n.createSecurityGroup({ name: 'sg2' })).tags, []);

          // The store's own objects keep their tags: the wrapper strips copies.
          for (const r of RESOURCES) {
            const inStore = (await lister(store, r)()).find((x) => x.id === ids[r]);
            assert.deepEqual(inStore?.tags, ['t1'], r);
          }
          assert.deepEqual(n.violations, []);
        } finally {
          await store.close();
        }
      });

      test('replaceTags / addTag / removeTag: 404 HTTPNotFound without reaching the store, or pass through', async () => {
        const store = openEmbeddedNeutron({ path: ':memory:' });
        try {
          const ids = await fixture(store);
          const n = taglessNeutron(store, support);
          const expected: string[] = [];
          for (const r of RESOURCES) {
            const id = ids[r];
            const stored = async () => (await lister(store, r)({ id })).at(0)?.tags;
            if (supports(support, r)) {
              assert.deepEqual(await n.replaceTags(r, id, ['b', 'a']), ['a', 'b'], r);
              await n.addTag(r, id, 'c');
              await n.removeTag(r, id, 'a');
              assert.deepEqual(await stored(), ['b', 'c'], r);
              // The store's own errors pass through untouched.
              await rejectsWith(n.removeTag(r, id, 'nope'), 404, 'TagNotFound', /nope/);
            } else {
              const notFound = /^The resource could not be found\.$/;
              await rejectsWith(n.replaceTags(r, id, ['x']), 404, 'HTTPNotFound', notFound);
              await rejectsWith(n.addTag(r, id, 'y'), 404, 'HTTPNotFound', notFound);
              await rejectsWith(n.removeTag(r, id, 't1'), 404, 'HTTPNotFound', notFound);
              assert.deepEqual(await stored(), ['t1'], `${r}: the store was reached`);
              expected.push(`replaceTags ${r} ${id}`, `addTag ${r} ${id} y`, `removeTag ${r} ${id} t1`);
            }
          }
          assert.deepEqual(n.violations, expected);
        } finally {
          await store.close();
        }
      });

      test('tag filters: 400 HTTPBadRequest naming the filter for an unsupported resource, filtering otherwise', async () => {
        const store = openEmbeddedNeutron({ path: ':memory:' });
        try {
          const ids = await fixture(store);
          const n = taglessNeutron(store, support);
          const expected: string[] = [];
          for (const r of RESOURCES) {
            const list = lister(n, r);
            if (supports(support, r)) {
              assert.deepEqual(
                (await list({ tags: 't1' })).map((x) => x.id),
                [ids[r]],
                r,
              );
              assert.ok(!(await list({ 'not-tags': 't1' })).some((x) => x.id === ids[r]), r);
              assert.deepEqual(
                (await list({ 'tags-any': ['t1', 'zz'] })).map((x) => x.id),
                [ids[r]],
              );
              assert.deepEqual(await list({ 'not-tags-any': 't1', id: ids[r] }), []);
            } else {
              for (const key of ['tags', 'tags-any', 'not-tags', 'not-tags-any']) {
                await rejectsWith(list({ [key]: 't1' }), 400, 'HTTPBadRequest', new RegExp(`^${key} is invalid`));
                expected.push(`${LIST_METHOD[r]} filter ${key}`);
              }
              // Two at once: both recorded, the first named.
              await rejectsWith(list({ id: ids[r], 'not-tags': ['a'], tags: ['b'] }), 400, 'HTTPBadRequest', /^tags /);
              expected.push(`${LIST_METHOD[r]} filter tags`, `${LIST_METHOD[r]} filter not-tags`);
            }
            // A tag filter that carries no tag is not sent to Neutron: never a violation.
            const all = (await list({ tags: undefined, 'tags-any': [], 'not-tags': '' })).map((x) => x.id);
            assert.ok(all.includes(ids[r]), r);
            // Other filters pass through.
            assert.deepEqual(
              (await list({ id: ids[r] })).map((x) => x.id),
              [ids[r]],
            );
          }
          assert.deepEqual(n.violations, expected);
        } finally {
          await store.close();
        }
      });

      test('a tags attribute in a create/update body: 400 for an unsupported resource, never reaching the store', async () => {
        const store = openEmbeddedNeutron({ path: ':memory:' });
        try {
          const ids = await fixture(store);
          const n = taglessNeutron(store, support);
          const tagged = { tags: ['x'] } as object;
          const calls: [TaggedResource, string, () => Promise<unknown>][] = [
            ['networks', 'createNetwork', () => n.createNetwork({ name: 'tn', ...tagged })],
            ['networks', 'updateNetwork', () => n.updateNetwork(ids.networks, { ...tagged })],
            [
              'subnets',
              'createSubnets',
              () => n.createSubnets([{ network_id: ids.networks, ip_version: 4, cidr: '10.5.0.0/24', ...tagged }]),
            ],
            ['subnets', 'updateSubnet', () => n.updateSubnet(ids.subnets, { ...tagged })],
            ['subnetpools', 'createSubnetPool', () => n.createSubnetPool({ prefixes: ['10.7.0.0/16'], ...tagged })],
            ['subnetpools', 'updateSubnetPool', () => n.updateSubnetPool(ids.subnetpools, { ...tagged })],
            ['ports', 'createPort', () => n.createPort({ network_id: ids.networks, ...tagged })],
            ['ports', 'updatePort', () => n.updatePort(ids.ports, { ...tagged })],
            ['security-groups', 'createSecurityGroup', () => n.createSecurityGroup({ name: 'tsg', ...tagged })],
          ];
          const expected: string[] = [];
          for (const [r, method, call] of calls) {
            if (supports(support, r)) continue; // the store's business (it rejects tags in bodies itself)
            await rejectsWith(call(), 400, 'HTTPBadRequest', /Unrecognized attribute\(s\) 'tags'/);
            expected.push(`${method} body tags`);
          }
          assert.deepEqual(n.violations, expected);
          // Nothing was created or renamed behind the wrapper.
          assert.equal((await store.listNetworks({ name: 'tn' })).length, 0);
          assert.equal((await store.listSecurityGroups({ name: 'tsg' })).length, 0);
          assert.equal((await store.listSubnets({ cidr: '10.5.0.0/24' })).length, 0);
        } finally {
          await store.close();
        }
      });

      test('everything else passes through: lifecycle, errors, security group rules', async () => {
        const store = openEmbeddedNeutron({ path: ':memory:' });
        try {
          const n = taglessNeutron(store, support);
          const net = await n.createNetwork({ name: 'life' });
          assert.equal((await store.showNetwork(net.id)).name, 'life');
          const [sub] = await n.createSubnets([{ network_id: net.id, ip_version: 4, cidr: '10.3.0.0/24' }]);
          assert.ok(sub);
          const port = await n.createPort({ network_id: net.id, fixed_ips: [{ subnet_id: sub.id }] });
          assert.equal(port.fixed_ips[0]?.subnet_id, sub.id);
          const { tags: _n, ...inStore } = await store.showPort(port.id);
          const { tags: _w, ...viaWrapper } = await n.showPort(port.id);
          assert.deepEqual(viaWrapper, inStore);
          // Neutron's errors come through as the store raised them.
          await rejectsWith(n.deleteNetwork(net.id), 409, 'NetworkInUse', new RegExp(net.id));
          await rejectsWith(n.showPort('no-such-port'), 404, 'PortNotFound', /no-such-port/);
          const sg = await n.createSecurityGroup({ name: 'g' });
          const [rule] = await n.createSecurityGroupRules([
            { security_group_id: sg.id, direction: 'ingress', protocol: 'tcp', port_range_min: 80, port_range_max: 80 },
          ]);
          assert.equal(rule?.security_group_id, sg.id);
          await n.deleteSecurityGroup(sg.id);
          assert.ok(!(await store.listSecurityGroups()).some((g) => g.id === sg.id));
          await n.deletePort(port.id);
          await n.deleteSubnet(sub.id);
          await n.deleteNetwork(net.id);
          assert.deepEqual(await store.listNetworks({ id: net.id }), []);
          const pool = await n.createSubnetPool({ prefixes: ['10.6.0.0/16'] });
          await n.deleteSubnetPool(pool.id);
          assert.deepEqual(await store.listSubnetPools({ id: pool.id }), []);
          assert.deepEqual(n.violations, []);
        } finally {
          await store.close();
        }
      });
    });
  }

  test('synthetic tag / tag-ext entries only when missing; tag-ports-during-bulk-creation hidden', async () => {
    const base: Extension[] = [
      { alias: 'subnet_allocation', name: 'Subnet Allocation', description: 'Enables allocation of subnets.' },
      { alias: 'tag-ports-during-bulk-creation', name: 'Tag Ports During Bulk Creation', description: 'x' },
    ];
    const fake = (extensions: Extension[]) => ({ listExtensions: async () => extensions }) as unknown as NeutronApi;
    const both = await taglessNeutron(fake(base), { tag: true, tagExt: true }).listExtensions();
    assert.deepEqual(
      both.map((e) => e.alias),
      ['subnet_allocation', 'tag', 'tag-ext'],
    );
    for (const e of both) {
      assert.deepEqual(Object.keys(e).sort(), ['alias', 'description', 'name']);
      assert.equal(typeof e.name, 'string');
      assert.equal(typeof e.description, 'string');
    }
    // Present already: kept as the backend lists it, not duplicated.
    const own: Extension = { alias: 'tag', name: 'Own tag', description: 'the backend one' };
    const kept = await taglessNeutron(fake([...base, own]), { tag: true, tagExt: false }).listExtensions();
    assert.deepEqual(kept, [base[0], own]);
    const none = await taglessNeutron(fake([...base, own]), { tag: false, tagExt: false }).listExtensions();
    assert.deepEqual(none, [base[0]]);
  });

  test('every NeutronApi method is there, called on the wrapped class instance as `this`, with full support unchanged', async () => {
    const seen: { method: string; self: unknown; args: unknown[] }[] = [];
    const results = new Map<string, unknown>();
    class Recorder {
      readonly #label = 'recorder';
      get label() {
        return this.#label;
      }
    }
    for (const method of NEUTRON_METHODS) {
      const result = method.startsWith('list') || method === 'createSubnets' ? [{ id: method, tags: ['k'] }] : {};
      results.set(method, result);
      Object.defineProperty(Recorder.prototype, method, {
        value(this: Recorder, ...args: unknown[]) {
          // Throws unless `this` is a real instance (private field).
          seen.push({ method, self: this.label, args });
          return Promise.resolve(result);
        },
      });
    }
    const inner = new Recorder() as unknown as NeutronApi;
    const n = taglessNeutron(inner, { tag: true, tagExt: true });
    for (const method of NEUTRON_METHODS) {
      assert.equal(typeof n[method], 'function', method);
      const args = argsOf(method);
      const call = n[method] as (...a: unknown[]) => Promise<unknown>;
      const got = await call(...args);
      const last = seen.at(-1);
      assert.equal(last?.method, method);
      assert.equal(last?.self, 'recorder', method);
      assert.deepEqual(last?.args, args, method);
      // The very object the backend answered (listExtensions may add the synthetic entries).
      if (method !== 'listExtensions') assert.equal(got, results.get(method), `${method}: not passed through`);
    }
    assert.equal(seen.length, NEUTRON_METHODS.length);
    assert.deepEqual(n.violations, []);
  });
});
