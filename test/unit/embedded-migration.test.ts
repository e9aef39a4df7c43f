/**
 * Schema migrations of the embedded store: an older database is upgraded in place with its rows kept, a
 * failing migration leaves the old version untouched, and a database from a newer version is refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, test } from 'node:test';
import { migrate, openDatabase, schemaVersion } from '../../src/neutron/embedded/database.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/index.ts';
import { migrations, SCHEMA_VERSION } from '../../src/neutron/embedded/schema.ts';

const dir = mkdtempSync(join(tmpdir(), 'kuryr-migration-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const NET = '11111111-1111-4111-8111-111111111111';
const SUBNET = '22222222-2222-4222-8222-222222222222';
const PORT = '33333333-3333-4333-8333-333333333333';
const T = '2024-01-02T03:04:05Z';

test('a version 1 database is upgraded and keeps its rows', async () => {
  const path = join(dir, 'v1.db');
  const v1 = openDatabase(path, { schemaVersion: 1 });
  assert.equal(schemaVersion(v1.raw), 1);
  v1.write(() => {
    v1.run('INSERT INTO networks (id, project_id, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)', [
      NET,
      'p',
      'old',
      T,
      T,
    ]);
    v1.run(
      `INSERT INTO subnets (id, project_id, network_id, ip_version, cidr, gateway_ip, allocation_pools, created_at, updated_at)
       VALUES (?, 'p', ?, 4, '10.5.0.0/24', '10.5.0.1', '[{"start":"10.5.0.2","end":"10.5.0.254"}]', ?, ?)`,
      [SUBNET, NET, T, T],
    );
    v1.run(
      `INSERT INTO ports (id, project_id, network_id, mac_address, created_at, updated_at)
       VALUES (?, 'p', ?, 'fa:16:3e:00:00:01', ?, ?)`,
      [PORT, NET, T, T],
    );
    v1.run('INSERT INTO ip_allocations (port_id, subnet_id, ip_address) VALUES (?, ?, ?)', [PORT, SUBNET, '10.5.0.9']);
    v1.run("INSERT INTO tags (resource_type, resource_id, tag) VALUES ('networks', ?, 'kept')", [NET]);
  });
  assert.equal(v1.get("SELECT name FROM sqlite_master WHERE name = 'tags_tag_resource_type'"), undefined);
  v1.close();

  const api = openEmbeddedNeutron({ path });
  const net = await api.showNetwork(NET);
  assert.equal(net.name, 'old');
  assert.deepEqual(net.tags, ['kept']);
  assert.deepEqual(net.subnets, [SUBNET]);
  assert.deepEqual((await api.showPort(PORT)).fixed_ips, [{ subnet_id: SUBNET, ip_address: '10.5.0.9' }]);
  assert.deepEqual(
    (await api.listNetworks({ tags: 'kept' })).map((n) => n.id),
    [NET],
  );
  // v3: a stored lower-case MAC is found and stays unique whatever the case of the request.
  assert.deepEqual(
    (await api.listPorts({ mac_address: 'FA:16:3E:00:00:01' })).map((p) => p.id),
    [PORT],
  );
  await assert.rejects(api.createPort({ network_id: NET, mac_address: 'FA:16:3E:00:00:01' }), {
    type: 'MacAddressInUse',
  });
  await api.close();

  const db = openDatabase(path);
  assert.equal(schemaVersion(db.raw), SCHEMA_VERSION);
  assert.ok(db.get("SELECT name FROM sqlite_master WHERE name = 'tags_tag_resource_type'"), 'v2 index created');
  assert.match(
    String(db.get("SELECT sql FROM sqlite_master WHERE name = 'ports_network_id_mac_address'")?.sql),
    /COLLATE NOCASE/,
    'v3 index ignores case',
  );
  db.close();
});

test('a failing migration is rolled back as a whole', () => {
  const path = join(dir, 'failing.db');
  openDatabase(path).close();
  const raw = new DatabaseSync(path);
  const broken = [
    ...migrations,
    {
      version: SCHEMA_VERSION + 1,
      description: 'broken',
      sql: 'CREATE TABLE half (x); INSERT INTO nowhere VALUES (1);',
    },
  ];
  assert.throws(() => migrate(raw, SCHEMA_VERSION + 1, broken), /nowhere/);
  assert.equal(schemaVersion(raw), SCHEMA_VERSION);
  assert.equal(raw.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get(), undefined);
  raw.close();
});

test('a database written by a newer schema is refused and left alone', () => {
  const path = join(dir, 'newer.db');
  const raw = new DatabaseSync(path);
  raw.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 5}`);
  raw.close();
  assert.throws(() => openEmbeddedNeutron({ path }), /newer than this kuryr-ts supports/);
  const check = new DatabaseSync(path);
  assert.equal(schemaVersion(check), SCHEMA_VERSION + 5);
  check.close();
});

test('opening twice does not re-run migrations', () => {
  const path = join(dir, 'twice.db');
  openDatabase(path).close();
  const db = openDatabase(path);
  assert.equal(schemaVersion(db.raw), SCHEMA_VERSION);
  assert.equal(db.get('PRAGMA journal_mode')?.journal_mode, 'wal');
  assert.equal(db.get('PRAGMA foreign_keys')?.foreign_keys, 1);
  assert.equal(db.get('PRAGMA synchronous')?.synchronous, 2, 'synchronous=FULL');
  db.close();
});
