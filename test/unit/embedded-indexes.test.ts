/**
 * The lookups kuryr makes are answered from indexes, not table scans (checked with EXPLAIN QUERY PLAN on the
 * exact SQL the store runs), and give the right answers at the benchmark's scale (50 networks, 500 ports).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ListFilter } from '../../src/neutron/api.ts';
import { openDatabase } from '../../src/neutron/embedded/database.ts';
import { buildWhere } from '../../src/neutron/embedded/filters.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/index.ts';
import { type ResourceKind, SELECTS } from '../../src/neutron/embedded/rows.ts';

const LOOKUPS: [ResourceKind, ListFilter][] = [
  ['networks', { tags: ['kuryr.net.uuid.lh:a', 'kuryr.net.uuid.uh:b'] }],
  ['networks', { 'tags-any': 'x,y' }],
  ['networks', { name: 'kuryr-net-1' }],
  ['networks', { id: ['a', 'b'] }],
  ['subnets', { cidr: '10.0.0.0/24' }],
  ['subnets', { name: 'kuryr-subnet-10.0.0.0/24' }],
  ['subnets', { subnetpool_id: 'p' }],
  ['subnets', { network_id: 'n' }],
  ['subnets', { network_id: 'n', cidr: '10.0.0.0/24' }],
  ['subnetpools', { name: 'kuryrPool-10.0.0.0/24' }],
  ['subnetpools', { name: 'kuryrPool-10.0.0.0/24', tags: 'subnet-id' }],
  ['subnetpools', { id: 'p' }],
  ['ports', { fixed_ips: ['subnet_id=s', 'ip_address=10.0.0.5'] }],
  ['ports', { fixed_ips: 'ip_address=10.0.0.5' }],
  ['ports', { fixed_ips: 'subnet_id=s', mac_address: 'FA:16:3E:00:00:01' }],
  ['ports', { mac_address: 'fa:16:3e:00:00:01' }],
  ['ports', { tags: ['kuryr.port.lh:a', 'kuryr.port.uh:b'] }],
  ['ports', { name: 'kuryr-port' }],
  ['ports', { device_id: 'endpoint' }],
  ['ports', { network_id: 'n' }],
  ['security-groups', { name: 'kuryr-sg' }],
];

test('kuryr lookups use indexes (no table scans)', () => {
  const db = openDatabase(':memory:');
  for (const [kind, filter] of LOOKUPS) {
    const where = buildWhere(kind, filter, 'bridge');
    const sql = `EXPLAIN QUERY PLAN ${SELECTS[kind]} WHERE ${where.sql} ORDER BY r.rowid`;
    const plan = db.raw
      .prepare(sql)
      .all(...where.params)
      .map((row) => String(row.detail));
    const scans = plan.filter((line) => line.startsWith('SCAN'));
    assert.deepEqual(scans, [], `${kind} ${JSON.stringify(filter)}:\n${plan.join('\n')}`);
  }
  db.close();
});

test('lookups are right at 50 networks and 500 ports', async () => {
  const api = openEmbeddedNeutron({ path: ':memory:' });
  const pool = await api.createSubnetPool({ name: 'bench', prefixes: ['10.0.0.0/16'], default_prefixlen: 24 });
  const target: { net?: string; port?: string; ip?: string; subnet?: string; mac?: string } = {};
  for (let n = 0; n < 50; n++) {
    const net = await api.createNetwork({ name: `net-${n}` });
    await api.replaceTags('networks', net.id, [`lh:${n}`, `uh:${n}`]);
    const [subnet] = await api.createSubnets([{ network_id: net.id, ip_version: 4, subnetpool_id: pool.id }]);
    assert.ok(subnet);
    for (let p = 0; p < 10; p++) {
      const port = await api.createPort({
        network_id: net.id,
        name: `port-${n}-${p}`,
        fixed_ips: [{ subnet_id: subnet.id }],
      });
      await api.replaceTags('ports', port.id, [`ep-lh:${n}-${p}`, `ep-uh:${n}-${p}`]);
      if (n === 37 && p === 4) {
        Object.assign(target, { net: net.id, port: port.id, subnet: subnet.id, mac: port.mac_address });
        target.ip = port.fixed_ips[0]?.ip_address;
      }
    }
  }
  const ids = async (p: Promise<{ id: string }[]>) => (await p).map((x) => x.id);
  assert.deepEqual(await ids(api.listNetworks({ tags: 'lh:37,uh:37' })), [target.net]);
  assert.deepEqual(await ids(api.listPorts({ tags: ['ep-lh:37-4', 'ep-uh:37-4'] })), [target.port]);
  assert.deepEqual(await ids(api.listPorts({ fixed_ips: [`subnet_id=${target.subnet}`, `ip_address=${target.ip}`] })), [
    target.port,
  ]);
  assert.deepEqual(await ids(api.listPorts({ mac_address: target.mac?.toUpperCase() ?? '' })), [target.port]);
  assert.equal((await api.listPorts({ network_id: target.net ?? '' })).length, 10);
  assert.equal((await api.listPorts()).length, 500);
  assert.equal((await api.listSubnets({ subnetpool_id: pool.id })).length, 50);
  await api.close();
});
