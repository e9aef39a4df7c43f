// The veth port driver hands the binding layer a PlugRequest built from the Neutron port (vifPortOf): the
// binding never sees Neutron's Port. These check the mapping, field by field, and what reaches the binder.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PlugRequest, VifPort } from '../../src/binding/binder.ts';
import type { VethBinder } from '../../src/binding/veth-binder.ts';
import { VethPortDriver, vifPortOf } from '../../src/driver/port-drivers/veth.ts';
import type { Port } from '../../src/neutron/types.ts';

const port = {
  id: '3f6f0e2c-9b4d-4c51-8d0e-0123456789ab',
  network_id: '7b166132-cf00-4000-8000-000000000001',
  device_id: 'e'.repeat(64),
  mac_address: 'FA:16:3E:00:00:01',
  project_id: 'proj',
  tenant_id: 'tenant',
  'binding:vif_type': 'ovs',
  'binding:vif_details': { port_filter: true, bridge_name: 'br-int' },
} as unknown as Port;

test('vifPortOf: identity, MAC as given, vif type and details, project', () => {
  assert.deepEqual(vifPortOf(port), {
    portId: port.id,
    endpointId: port.device_id,
    networkId: port.network_id,
    projectId: 'proj',
    mac: 'FA:16:3E:00:00:01',
    vifType: 'ovs',
    vifDetails: { port_filter: true, bridge_name: 'br-int' },
  });
});

test('vifPortOf: the tenant when there is no project; an unbound port has vif type "" and no details', () => {
  const bare = {
    ...port,
    project_id: '',
    'binding:vif_type': undefined,
    'binding:vif_details': undefined,
  } as unknown as Port;
  const vif = vifPortOf(bare);
  assert.equal(vif.projectId, 'tenant');
  assert.equal(vif.vifType, '');
  assert.deepEqual(vif.vifDetails, {});
});

test('VethPortDriver: bind passes MTU, bridge and icc with the port; unbind the port', async () => {
  const seen: Array<PlugRequest | VifPort> = [];
  const binder = {
    bind: async (req: PlugRequest) => {
      seen.push(req);
      return { host: 'h', container: 'c' };
    },
    unbind: async (vif: VifPort) => {
      seen.push(vif);
    },
  } as unknown as VethBinder;
  const driver = new VethPortDriver(binder);
  assert.deepEqual(await driver.bind({ port, mtu: 1450, bridge: 'br0', icc: false }), { host: 'h', container: 'c' });
  await driver.bind({ port, mtu: 1500 });
  await driver.unbind(port);
  assert.deepEqual(seen, [
    { ...vifPortOf(port), mtu: 1450, bridge: 'br0', icc: false },
    { ...vifPortOf(port), mtu: 1500 },
    vifPortOf(port),
  ]);
});
