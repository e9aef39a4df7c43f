/**
 * The NeutronApi contract against a real Neutron (the lab of scripts/neutron/stack.sh) through NeutronHttpClient,
 * in both auth modes: Keystone v3 password and noauth. Each mode is skipped, with the lab's reason, when it is
 * not available. A few client checks that only a real Neutron and Keystone can confirm follow the contract.
 * Both backends answer as Neutron Zed does (the embedded store follows the lab's answers), so nothing is skipped.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { NeutronError } from '../../src/neutron/errors.ts';
import { detectNeutronFeatures, NeutronHttpClient, neutronClientOptions } from '../../src/neutron/http/index.ts';
import { type NeutronLab, neutronLab } from '../helpers/neutron-lab.ts';
import { neutronContract } from './neutron-contract.ts';
import { RequestCounter } from '../helpers/request-counter.ts';

const lab = await neutronLab();

type Mode = 'keystone' | 'noauth';

/** The `[neutron]` section of the mode (what a kuryr.conf would hold). */
function sectionFor(l: NeutronLab, mode: Mode): Record<string, string> {
  if (mode === 'noauth') {
    assert.ok(l.noauth);
    return { auth_type: 'none', endpoint: l.noauth.neutronUrl };
  }
  const k = l.keystone;
  assert.ok(k);
  return {
    auth_type: 'password',
    auth_url: k.authUrl,
    username: k.username,
    password: k.password,
    project_name: k.projectName,
    user_domain_name: k.userDomainName,
    project_domain_name: k.projectDomainName,
    region_name: k.regionName,
  };
}

const open = (mode: Mode, sent?: RequestCounter) =>
  new NeutronHttpClient(
    neutronClientOptions(sectionFor(lab, mode)),
    sent === undefined ? {} : { onRequest: sent.onRequest },
  );

for (const mode of ['keystone', 'noauth'] as const) {
  const skip = lab.skip[mode];
  if (skip !== false) {
    test(`NeutronApi contract: real Neutron (${mode})`, { skip }, () => undefined);
    continue;
  }

  neutronContract(`real Neutron via NeutronHttpClient (${mode})`, async () => {
    const api = open(mode);
    return { api, close: () => api.close() };
  });

  describe(`NeutronHttpClient against the real Neutron (${mode})`, () => {
    let api: NeutronHttpClient;
    const sent = new RequestCounter();
    before(() => {
      api = open(mode, sent);
    });
    after(async () => {
      await api.close();
    });

    test('detects the extensions with one call: full tag support, subnet_allocation', async () => {
      sent.reset();
      const features = await detectNeutronFeatures(api);
      assert.equal(features.tagMode, 'full');
      assert.ok(features.extensions.has('subnet_allocation'));
      assert.deepEqual(sent.toObject(), { 'GET /v2.0/extensions': 1 });
    });

    test('follows pagination links and keeps the filter', async () => {
      const name = `contract-page-${randomBytes(4).toString('hex')}`;
      const ids: string[] = [];
      try {
        for (let i = 0; i < 5; i++) ids.push((await api.createNetwork({ name })).id);
        sent.reset();
        const listed = await api.listNetworks({ name, limit: 2 });
        assert.deepEqual(listed.map((n) => n.id).sort(), [...ids].sort());
        assert.equal(sent.get('GET /v2.0/networks'), 3, 'pages of 2, 2 and 1');
        const slim = await api.listNetworks({ name, fields: ['name'] });
        assert.deepEqual(Object.keys(slim[0] ?? {}).sort(), ['id', 'name'], 'fields, with id always included');
      } finally {
        for (const id of ids) await api.deleteNetwork(id);
      }
    });

    test('Neutron errors carry the type, message and request ID', async () => {
      const err = await api.showNetwork('00000000-0000-4000-8000-00000000000a').then(
        () => assert.fail('expected a 404'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof NeutronError);
      assert.equal(err.status, 404);
      assert.equal(err.type, 'NetworkNotFound');
      assert.equal(err.message, 'Network 00000000-0000-4000-8000-00000000000a could not be found.');
      assert.match(err.requestId ?? '', /^req-[0-9a-f-]{36}$/);
    });

    test('tag PUTs (201, body null), replace and filter with characters that need encoding', async () => {
      const net = await api.createNetwork({ name: `contract-tags-${randomBytes(4).toString('hex')}` });
      try {
        // ASCII only: Zed decodes a tag in the URL path as Latin-1 (`é` sent as %C3%A9 is stored as `Ã©`).
        const odd = ['kuryr.net.uuid.lh:0123456789abcdef0123456789abcdef', 'a b', 'x&y=z', 'p%q', 'q?r#s+t'];
        for (const tag of odd) await api.addTag('networks', net.id, tag);
        assert.deepEqual((await api.showNetwork(net.id)).tags.sort(), [...odd].sort());
        assert.deepEqual(
          (await api.listNetworks({ id: net.id, tags: odd })).map((n) => n.id),
          [net.id],
        );
        await api.removeTag('networks', net.id, 'x&y=z');
        assert.deepEqual((await api.replaceTags('networks', net.id, ['only'])).sort(), ['only']);
      } finally {
        await api.deleteNetwork(net.id);
      }
    });

    if (mode === 'keystone') {
      test('one Keystone token serves many calls', async () => {
        const freshSent = new RequestCounter();
        const fresh = open(mode, freshSent);
        try {
          await Promise.all(Array.from({ length: 5 }, () => fresh.listNetworks({ name: 'none-such' })));
          for (let i = 0; i < 5; i++) await fresh.listSubnetPools({ name: 'none-such' });
          assert.equal(fresh.tokenRequests, 1);
          assert.equal(freshSent.total, 10);
        } finally {
          await fresh.close();
        }
      });
    }
  });
}
