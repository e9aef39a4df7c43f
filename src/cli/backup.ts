/**
 * `kuryr backup FILE` and `kuryr restore FILE [--force]` for the embedded store.
 */
import { embeddedStorePath } from '../backend.ts';
import type { Config } from '../config/config.ts';
import { fail } from '../errors.ts';
import { type BackupInfo, backupStore, restoreStore } from '../neutron/embedded/backup.ts';
import { socketAnswers } from '../plugin/listen.ts';

function requireEmbedded(config: Config): void {
  if (config.backend !== 'embedded')
    throw fail.config('backup and restore are for the embedded backend (Neutron keeps its own database)');
}

/** `kuryr backup FILE`: online, consistent; `serve` may keep running. */
export function backupCommand(config: Config, target: string): BackupInfo {
  requireEmbedded(config);
  return backupStore(embeddedStorePath(config.stateDir), target);
}

/** `kuryr restore FILE`: replaces the store; refused while the plugin serves unless forced. */
export async function restoreCommand(config: Config, source: string, force: boolean): Promise<BackupInfo> {
  requireEmbedded(config);
  if (!force && config.socketPath !== null && (await socketAnswers(config.socketPath))) {
    throw fail.config(`a plugin serves ${config.socketPath}: stop it before restoring (or use --force)`);
  }
  return restoreStore(source, embeddedStorePath(config.stateDir));
}

/** One line about a store file. */
export function renderBackup(verb: string, info: BackupInfo): string {
  const counts = Object.entries(info.counts)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  return `${verb} ${info.file} (${info.bytes} bytes, schema ${info.schemaVersion}): ${counts}`;
}
