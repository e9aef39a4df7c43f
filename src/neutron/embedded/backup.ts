/**
 * Backup and restore of the embedded store. A backup is a consistent snapshot taken online with SQLite's
 * `VACUUM INTO` (readers and the serving plugin are not blocked); a restore checks the file (integrity,
 * schema version) and replaces the store atomically (rename), removing the old WAL files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openDatabase, schemaVersion } from './database.ts';
import { SCHEMA_VERSION } from './schema.ts';

export interface BackupInfo {
  file: string;
  bytes: number;
  schemaVersion: number;
  counts: Record<string, number>;
}

const COUNTED = ['networks', 'subnets', 'subnetpools', 'ports', 'security_groups'] as const;

/** Row counts and schema version of a store file (read-only). */
export function describeStore(file: string): BackupInfo {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const integrity = db.prepare('PRAGMA integrity_check').get();
    if (integrity?.integrity_check !== 'ok') throw new Error(`${file} fails SQLite's integrity check`);
    const counts: Record<string, number> = {};
    const tables = new Set(
      db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .all()
        .map((r) => String(r.name)),
    );
    for (const t of COUNTED)
      if (tables.has(t)) counts[t] = Number(db.prepare(`SELECT count(*) AS n FROM ${t}`).get()?.n ?? 0);
    return { file, bytes: fs.statSync(file).size, schemaVersion: schemaVersion(db), counts };
  } finally {
    db.close();
  }
}

/** Writes a consistent copy of the store at `storeFile` to `target` (which must not exist). */
export function backupStore(storeFile: string, target: string): BackupInfo {
  if (!fs.existsSync(storeFile)) throw new Error(`no embedded store at ${storeFile}`);
  if (fs.existsSync(target)) throw new Error(`${target} already exists; choose a new file`);
  // Opening through the store applies pending migrations, so a backup always has the current schema.
  openDatabase(storeFile).close();
  const db = new DatabaseSync(storeFile, { readOnly: true });
  try {
    db.prepare('VACUUM INTO ?').run(path.resolve(target));
  } finally {
    db.close();
  }
  fs.chmodSync(target, 0o600);
  return describeStore(target);
}

/**
 * Replaces the store at `storeFile` with the backup `source`. The backup is checked first; a backup of an
 * older schema is migrated when the store is next opened, a newer one is refused.
 */
export function restoreStore(source: string, storeFile: string): BackupInfo {
  const info = describeStore(source);
  if (info.schemaVersion > SCHEMA_VERSION) {
    throw new Error(
      `${source} has schema version ${info.schemaVersion}, newer than this kuryr-ts supports (${SCHEMA_VERSION})`,
    );
  }
  fs.mkdirSync(path.dirname(storeFile), { recursive: true, mode: 0o700 });
  const staging = `${storeFile}.restore-${process.pid}`;
  fs.copyFileSync(source, staging);
  fs.chmodSync(staging, 0o600);
  for (const suffix of ['-wal', '-shm']) fs.rmSync(`${storeFile}${suffix}`, { force: true });
  fs.renameSync(staging, storeFile);
  openDatabase(storeFile).close();
  return describeStore(storeFile);
}
