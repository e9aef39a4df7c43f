import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { NeutronApi } from '../../src/neutron/api.ts';
import { countingNeutron, NEUTRON_METHODS, type NeutronCallEvent } from '../../src/neutron/counting.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/store.ts';
import { NeutronError } from '../../src/neutron/errors.ts';
import { createRequestContext, runInRequestContext } from '../../src/observability/request-context.ts';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

function store() {
  return openEmbeddedNeutron({ path: ':memory:' });
}

describe('countingNeutron: the NeutronApi call counter', () => {
  test('lists every NeutronApi method the store implements', () => {
    const s = store();
    try {
      for (const method of NEUTRON_METHODS) assert.equal(typeof s[method], 'function', method);
      const wrapped = countingNeutron(s);
      for (const method of NEUTRON_METHODS) assert.equal(typeof wrapped[method], 'function', method);
    } finally {
      s.close();
    }
  });

  test('counts every call per method and returns exactly what the store returns', async () => {
    const s = store();
    try {
      const n = countingNeutron(s);
      const net = await n.createNetwork({ name: 'n1' });
      assert.deepEqual(await n.showNetwork(net.id), await s.showNetwork(net.id));
      const [subnet] = await n.createSubnets([{ network_id: net.id, cidr: '10.1.0.0/24', ip_version: 4 }]);
      assert.equal(subnet?.cidr, '10.1.0.0/24');
      const port = await n.createPort({ network_id: net.id });
      assert.deepEqual(
        (await n.listPorts({ network_id: net.id })).map((p) => p.id),
        [port.id],
      );
      await n.listPorts();
      await n.addTag('ports', port.id, 'x');
      await n.deletePort(port.id);
      assert.deepEqual(n.callCounts(), {
        createNetwork: 1,
        showNetwork: 1,
        createSubnets: 1,
        createPort: 1,
        listPorts: 2,
        addTag: 1,
        deletePort: 1,
      });
      assert.equal(n.totalCalls(), 8);
    } finally {
      s.close();
    }
  });

  test('a failed call is counted and rejects with the very same error', async () => {
    const s = store();
    try {
      const events: NeutronCallEvent[] = [];
      const n = countingNeutron(s, (e) => events.push(e));
      const direct = await s.showNetwork('nope').catch((e: unknown) => e);
      const viaWrapper = await n.showNetwork('nope').catch((e: unknown) => e);
      assert.ok(viaWrapper instanceof NeutronError);
      assert.equal((viaWrapper as NeutronError).type, (direct as NeutronError).type);
      assert.equal((viaWrapper as NeutronError).status, 404);
      assert.equal(n.callCounts().showNetwork, 1);
      assert.equal(events.length, 1);
      assert.equal(events[0]?.outcome, '404');
      assert.equal(events[0]?.endpoint, undefined);
      assert.ok((events[0]?.seconds ?? -1) >= 0);
    } finally {
      s.close();
    }
  });

  test('a synchronous throw of the inner API is rethrown unchanged and counted', () => {
    const boom = new Error('boom');
    const inner = {
      listNetworks: () => {
        throw boom;
      },
    } as unknown as NeutronApi;
    const events: NeutronCallEvent[] = [];
    const n = countingNeutron(inner, (e) => events.push(e));
    assert.throws(
      () => n.listNetworks(),
      (err) => err === boom,
    );
    assert.equal(n.totalCalls(), 1);
    assert.equal(events[0]?.outcome, 'error');
  });

  test('a listener that throws changes nothing', async () => {
    const s = store();
    try {
      const n = countingNeutron(s, () => {
        throw new Error('listener bug');
      });
      const net = await n.createNetwork({ name: 'n1' });
      assert.equal((await n.listNetworks()).length, 1);
      assert.equal(net.name, 'n1');
    } finally {
      s.close();
    }
  });

  test('calls are attributed to the request being served, also with interleaved requests', async () => {
    const s = store();
    try {
      const events: NeutronCallEvent[] = [];
      const n = countingNeutron(s, (e) => events.push(e));
      await n.listNetworks(); // outside any request: start-up work
      const a = createRequestContext('NetworkDriver.CreateEndpoint');
      const b = createRequestContext('IpamDriver.RequestAddress');
      assert.notEqual(a.id, b.id);
      const work = async (calls: number) => {
        for (let i = 0; i < calls; i++) {
          await n.listPorts();
          await tick(); // let the other request run in between
        }
      };
      await Promise.all([runInRequestContext(a, () => work(3)), runInRequestContext(b, () => work(5))]);
      assert.equal(a.neutronCalls, 3);
      assert.equal(b.neutronCalls, 5);
      assert.equal(n.totalCalls(), 9);
      const byEndpoint = (endpoint: string | undefined) => events.filter((e) => e.endpoint === endpoint).length;
      assert.equal(byEndpoint(undefined), 1);
      assert.equal(byEndpoint('NetworkDriver.CreateEndpoint'), 3);
      assert.equal(byEndpoint('IpamDriver.RequestAddress'), 5);
    } finally {
      s.close();
    }
  });
});
