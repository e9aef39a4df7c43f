/**
 * `kuryr backup FILE` and `kuryr restore FILE` for the embedded store.
 */
import { embeddedStorePath } from '../backend.ts';
import type { Config } from '../config/config.ts';
import { fail, KuryrError } from '../errors.ts';
import { type BackupInfo, backupStore, restoreStore } from '../neutron/embedded/backup.ts';
import { acquireStoreLock } from './store-lock.ts';

function requireEmbedded(config: Config): void {
  if (config.backend !== 'embedded')
    throw fail.config('backup and restore are for the embedded backend (Neutron keeps its own database)');
}

/** `kuryr backup FILE`: online, consistent; `serve` may keep running. */
export function backupCommand(config: Config, target: string): BackupInfo {
  requireEmbedded(config);
  return backupStore(embeddedStorePath(config.stateDir), target);
}

/**
 * `kuryr restore FILE`: replaces the store. Refused while any `serve` holds the store (store-lock.ts), whatever
 * it listens on (there is no override: a serving plugin would go on writing to the replaced file).
 * The lock is held during the restore, so a `serve` starting meanwhile is refused as well.
 */
export async function restoreCommand(config: Config, source: string): Promise<BackupInfo> {
  requireEmbedded(config);
  let lock: ReturnType<typeof acquireStoreLock>;
  try {
    lock = acquireStoreLock(config.stateDir, 'restore');
  } catch (err) {
    if (!(err instanceof KuryrError)) throw err;
    throw fail.config(`${err.message}: stop the plugin (kuryr serve) before restoring`);
  }
  try {
    return restoreStore(source, embeddedStorePath(config.stateDir));
  } finally {
    lock.release();
  }
}

/** One line about a store file. */
export function renderBackup(verb: string, info: BackupInfo): string {
  const counts = Object.entries(info.counts)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  return `${verb} ${info.file} (${info.bytes} bytes, schema ${info.schemaVersion}): ${counts}`;
}
