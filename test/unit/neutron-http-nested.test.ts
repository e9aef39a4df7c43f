/** NeutronHttpClient's nested calls on the wire: the If-Match port update and the trunk subport actions. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isRevisionMismatch } from '../../src/neutron/nested-api.ts';
import { NeutronHttpClient, withDefaults } from '../../src/neutron/http/index.ts';
import { type FakeNeutron, startFakeNeutron } from '../helpers/fake-openstack.ts';

describe('neutron http client: nested calls', () => {
  let neutron: FakeNeutron;
  let api: NeutronHttpClient;
  before(async () => {
    neutron = await startFakeNeutron();
    api = new NeutronHttpClient(withDefaults({ auth: { type: 'none', endpoint: neutron.url } }));
  });
  after(async () => {
    await api.close();
    await neutron.close();
  });

  test('updatePortIfRevision sends If-Match: revision_number=N; a 412 is a revision mismatch', async () => {
    const pairs = [{ ip_address: '10.0.0.5', mac_address: 'fa:16:3e:00:00:05' }];
    neutron.queue({ status: 200, body: { port: { id: 'p1', allowed_address_pairs: pairs, tags: [] } } });
    const port = await api.updatePortIfRevision('p1', { allowed_address_pairs: pairs }, 7);
    assert.deepEqual(port.allowed_address_pairs, pairs);
    const req = neutron.requests.at(-1)!;
    assert.equal(req.method, 'PUT');
    assert.equal(req.path, '/v2.0/ports/p1');
    assert.equal(req.headers['if-match'], 'revision_number=7');
    assert.deepEqual(req.json, { port: { allowed_address_pairs: pairs } });

    neutron.queue({
      status: 412,
      body: {
        NeutronError: {
          type: 'RevisionNumberConstraintFailed',
          message: 'Constrained to 7, but current revision is 8',
          detail: '',
        },
      },
    });
    const err = await api.updatePortIfRevision('p1', {}, 7).catch((e: unknown) => e);
    assert.ok(isRevisionMismatch(err), String(err));
  });

  test('add_subports and remove_subports: bodies as Neutron takes them, the trunk answered unwrapped', async () => {
    const sub = { port_id: 'c1', segmentation_type: 'vlan', segmentation_id: 3 };
    neutron.queue({ status: 200, body: { id: 't1', port_id: 'vm', sub_ports: [sub] } });
    assert.deepEqual((await api.addSubports('t1', [sub])).sub_ports, [sub]);
    assert.equal(neutron.requests.at(-1)!.path, '/v2.0/trunks/t1/add_subports');
    assert.deepEqual(neutron.requests.at(-1)!.json, { sub_ports: [sub] });

    neutron.queue({ status: 200, body: { trunk: { id: 't1', port_id: 'vm', sub_ports: [] } } });
    assert.deepEqual((await api.removeSubports('t1', ['c1'])).sub_ports, []);
    assert.equal(neutron.requests.at(-1)!.path, '/v2.0/trunks/t1/remove_subports');
    assert.deepEqual(neutron.requests.at(-1)!.json, { sub_ports: [{ port_id: 'c1' }] });
  });
});
