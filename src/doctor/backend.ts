/**
 * The backend's own checks. `state-dir`: the embedded store's directory is (or can be made) writable.
 * `backend.store`: the SQLite store opens, passes `quick_check`, has a schema this build reads, and takes the
 * write lock (then rolls back: nothing is changed). `backend.pools`: the default subnet pools exist (through
 * `NeutronApi`, so the same check serves a real Neutron).
 */
import { accessSync, constants, existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { embeddedStorePath } from '../app.ts';
import type { Config } from '../config/config.ts';
import type { NeutronApi } from '../neutron/api.ts';
import { SCHEMA_VERSION } from '../neutron/embedded/schema.ts';
import { type CheckResult, failed, messageOf, ok, skip, warn } from './types.ts';

/** `state-dir`. */
export function checkStateDir(config: Config): CheckResult {
  const dir = config.stateDir;
  if (config.backend !== 'embedded') return skip('state-dir', `not used by the ${config.backend} backend`);
  if (!existsSync(dir)) {
    let parent = path.dirname(dir);
    while (!existsSync(parent) && parent !== path.dirname(parent)) parent = path.dirname(parent);
    try {
      accessSync(parent, constants.W_OK);
      return ok('state-dir', `${dir} does not exist yet; kuryr serve creates it (mode 0700)`);
    } catch {
      return failed(
        'state-dir',
        `${dir} does not exist and ${parent} is not writable`,
        'run as root, or --state-dir DIR',
      );
    }
  }
  if (!statSync(dir).isDirectory()) {
    return failed('state-dir', `${dir} is not a directory`, 'point --state-dir / KURYR_STATE_DIR at a directory');
  }
  const probe = path.join(dir, `.kuryr-doctor-${process.pid}`);
  try {
    writeFileSync(probe, '', { mode: 0o600 });
    rmSync(probe);
  } catch (err) {
    return failed(
      'state-dir',
      `${dir} is not writable: ${messageOf(err)}`,
      'run as root; check the mount (read-only?)',
    );
  }
  return ok('state-dir', `${dir} is writable`);
}

/** `backend.store` (embedded backend only). */
export function checkEmbeddedStore(config: Config): CheckResult {
  const file = embeddedStorePath(config.stateDir);
  if (!existsSync(file)) {
    return warn(
      'backend.store',
      `no store yet at ${file}`,
      'kuryr serve creates it (and the default pools) on its first start',
    );
  }
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(file, { timeout: 5_000 });
    const version = Number(db.prepare('PRAGMA user_version').get()?.user_version ?? 0);
    if (version > SCHEMA_VERSION) {
      return failed(
        'backend.store',
        `${file} has schema version ${version}, newer than this kuryr-ts reads (${SCHEMA_VERSION})`,
        'run the kuryr-ts version that wrote it, or a newer one',
      );
    }
    const check = String(db.prepare('PRAGMA quick_check').get()?.quick_check ?? '');
    if (check !== 'ok') {
      return failed(
        'backend.store',
        `${file} is damaged: ${check}`,
        'stop the plugin and kuryr restore a backup (docs/embedded.md)',
      );
    }
    // The write lock, then nothing: proves the file, its -wal and -shm can be written.
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
    return ok('backend.store', `${file} opens, schema ${version}, writable`);
  } catch (err) {
    const text = messageOf(err);
    if (/locked|busy/i.test(text)) {
      return warn(
        'backend.store',
        `${file}: the write lock stayed taken for 5 s (${text})`,
        'retry; if it persists, look for a hung kuryr process',
      );
    }
    return failed('backend.store', `${file}: ${text}`, 'check permissions and free space in the state directory');
  } finally {
    db?.close();
  }
}

/** `backend.pools`: the pools networks created without --subnet come from. */
export async function checkDefaultPools(config: Config, neutron: NeutronApi): Promise<CheckResult> {
  const names = [config.driver.defaultSubnetpoolV4, config.driver.defaultSubnetpoolV6];
  try {
    const found = await Promise.all(names.map((name) => neutron.listSubnetPools({ name })));
    const missing = names.filter((_, i) => found[i]!.length === 0);
    const present = names
      .map((name, i) => (found[i]!.length > 0 ? `${name} (${found[i]![0]!.prefixes.join(', ')})` : undefined))
      .filter((x) => x !== undefined);
    if (missing.length === 0) return ok('backend.pools', `default pools ${present.join(', ')}`);
    const hint =
      config.backend === 'embedded'
        ? 'kuryr serve creates them on start; until then networks need --subnet'
        : `create ${missing.join(' and ')} (openstack subnet pool create --pool-prefix CIDR --default-prefix-length N NAME), or always give --subnet`;
    return warn('backend.pools', `default pool ${missing.join(' and ')} missing`, hint);
  } catch (err) {
    return failed('backend.pools', `listing subnet pools failed: ${messageOf(err)}`, 'see the backend checks above');
  }
}
