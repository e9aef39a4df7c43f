import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { backupStore, describeStore, restoreStore } from '../../src/neutron/embedded/backup.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/store.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'kuryr-backup-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('backup while the store is open, change the store, restore: every row of the backup is back', async () => {
  const file = path.join(dir, 'kuryr.db');
  const store = openEmbeddedNeutron({ path: file });
  const net = await store.createNetwork({ name: 'kept' });
  const [subnet] = await store.createSubnets([{ network_id: net.id, ip_version: 4, cidr: '10.90.0.0/24' }]);
  await store.createPort({ network_id: net.id, fixed_ips: [{ subnet_id: subnet!.id }] });
  await store.replaceTags('networks', net.id, ['kuryr.net.uuid.lh:abc']);

  const backup = path.join(dir, 'snap.db');
  const info = backupStore(file, backup);
  assert.equal(info.counts.networks, 1);
  assert.equal(info.counts.ports, 1);

  await store.createNetwork({ name: 'after-backup' });
  await store.deleteNetwork(net.id).catch(() => undefined);
  store.close();
  assert.throws(() => backupStore(file, backup), /already exists/);

  const restored = restoreStore(backup, file);
  assert.deepEqual(restored.counts, info.counts);
  const reopened = openEmbeddedNeutron({ path: file });
  try {
    const networks = await reopened.listNetworks();
    assert.deepEqual(
      networks.map((n) => n.name),
      ['kept'],
    );
    assert.deepEqual(networks[0]!.tags, ['kuryr.net.uuid.lh:abc']);
    assert.equal((await reopened.listPorts({ network_id: net.id })).length, 1);
  } finally {
    reopened.close();
  }
});

test('a file that is not a healthy store is refused and the store is left alone', async () => {
  const file = path.join(dir, 'k2.db');
  const store = openEmbeddedNeutron({ path: file });
  await store.createNetwork({ name: 'precious' });
  store.close();
  const junk = path.join(dir, 'junk.db');
  writeFileSync(junk, 'this is not SQLite');
  assert.throws(() => restoreStore(junk, file));
  assert.equal(describeStore(file).counts.networks, 1);
});
