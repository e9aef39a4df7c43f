// The store lock: `kuryr restore` is refused while a process holds `<stateDir>/serve.lock`, whatever that process
// listens on, and allowed again once the holder is gone, even after kill -9 (the kernel drops the lock).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { restoreCommand } from '../../src/cli/backup.ts';
import { acquireStoreLock } from '../../src/cli/store-lock.ts';
import { loadConfig } from '../../src/config/load.ts';
import { backupStore } from '../../src/neutron/embedded/backup.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/store.ts';

const LOCK = path.resolve(import.meta.dirname, '..', '..', 'src', 'cli', 'store-lock.ts');
const dir = mkdtempSync(path.join(os.tmpdir(), 'kuryr-lock-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A child process that takes the lock (as `serve` does) and keeps it until killed. */
async function holder(stateDir: string) {
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { acquireStoreLock } from ${JSON.stringify(LOCK)};
       acquireStoreLock(${JSON.stringify(stateDir)}, 'serve'); console.log('held'); setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`holder exited ${code}`)));
  });
  return child;
}

test('restore is refused while another process holds the store, allowed after its kill -9', async () => {
  const stateDir = path.join(dir, 'state');
  mkdirSync(stateDir);
  const conf = path.join(dir, 'kuryr.conf');
  writeFileSync(conf, '');
  const config = loadConfig({ config: conf, stateDir, backend: 'embedded' }, {});
  const store = openEmbeddedNeutron({ path: path.join(stateDir, 'kuryr.db') });
  await store.createNetwork({ name: 'kept' });
  store.close();
  const backup = path.join(dir, 'snap.db');
  backupStore(path.join(stateDir, 'kuryr.db'), backup);

  const child = await holder(stateDir);
  try {
    await assert.rejects(
      restoreCommand(config, backup),
      new RegExp(`in use by pid ${child.pid} \\(serve\\): restore refused: stop the plugin`),
    );
    assert.throws(() => acquireStoreLock(stateDir, 'serve'), /in use by pid \d+ \(serve\): serve refused/);
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
  const info = await restoreCommand(config, backup);
  assert.equal(info.counts.networks, 1);
  // Released by restore: serve may take it now.
  acquireStoreLock(stateDir, 'serve').release();
});
