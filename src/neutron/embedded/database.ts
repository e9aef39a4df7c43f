/**
 * SQLite access for the embedded store: opening with durable settings, schema migrations keyed on
 * `PRAGMA user_version`, a prepared-statement cache and the one-transaction-per-call helpers.
 */
import { DatabaseSync, type SQLInputValue, type SQLOutputValue, type StatementSync } from 'node:sqlite';
import { type Migration, migrations as allMigrations, SCHEMA_VERSION } from './schema.ts';

/** A result row as node:sqlite returns it. */
export type Row = Record<string, SQLOutputValue>;
/** A bound parameter. */
export type Param = SQLInputValue;

/** How long a writer waits for another connection's write lock before failing with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 10_000;

/** Thin wrapper over `DatabaseSync`: cached prepared statements and transactions. */
export class Database {
  readonly raw: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();

  constructor(raw: DatabaseSync) {
    this.raw = raw;
  }

  private statement(sql: string): StatementSync {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.raw.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  /** All rows of a query. */
  all(sql: string, params: readonly Param[] = []): Row[] {
    return this.statement(sql).all(...params);
  }

  /** First row of a query, or undefined. */
  get(sql: string, params: readonly Param[] = []): Row | undefined {
    return this.statement(sql).get(...params);
  }

  /** Execute a statement; returns the number of changed rows. */
  run(sql: string, params: readonly Param[] = []): number {
    return Number(this.statement(sql).run(...params).changes);
  }

  /**
   * Run `fn` in a write transaction (`BEGIN IMMEDIATE`, so the write lock is taken up front and concurrent
   * writers queue on the busy timeout instead of failing mid-call). Any throw rolls everything back.
   */
  write<T>(fn: () => T): T {
    return this.transaction('BEGIN IMMEDIATE', fn);
  }

  /** Run `fn` in a read transaction: one consistent snapshot across its statements. */
  read<T>(fn: () => T): T {
    return this.transaction('BEGIN', fn);
  }

  private transaction<T>(begin: string, fn: () => T): T {
    this.raw.exec(begin);
    try {
      const result = fn();
      this.raw.exec('COMMIT');
      return result;
    } catch (err) {
      if (this.raw.isTransaction) this.raw.exec('ROLLBACK');
      throw err;
    }
  }

  /** Close the connection (idempotent). */
  close(): void {
    if (!this.raw.isOpen) return;
    this.statements.clear();
    this.raw.close();
  }
}

/** Current `PRAGMA user_version` of a database. */
export function schemaVersion(raw: DatabaseSync): number {
  const row = raw.prepare('PRAGMA user_version').get();
  return Number(row?.user_version ?? 0);
}

/**
 * Apply the migrations above the database's `user_version` (up to `target`) in one transaction, so a crash
 * leaves the database at the old version or the new one. Refuses a database written by a newer schema.
 */
export function migrate(
  raw: DatabaseSync,
  target: number = SCHEMA_VERSION,
  migrations: readonly Migration[] = allMigrations,
): void {
  raw.exec('BEGIN IMMEDIATE');
  try {
    const current = schemaVersion(raw);
    if (current > SCHEMA_VERSION) {
      throw new Error(`database schema version ${current} is newer than this kuryr-ts supports (${SCHEMA_VERSION})`);
    }
    for (const m of migrations) {
      if (m.version > current && m.version <= target) {
        raw.exec(m.sql);
        raw.exec(`PRAGMA user_version = ${m.version}`);
      }
    }
    raw.exec('COMMIT');
  } catch (err) {
    if (raw.isTransaction) raw.exec('ROLLBACK');
    throw err;
  }
}

/**
 * Open (creating if needed) the store's database with durable settings: WAL journal, `synchronous=FULL`
 * (a reported commit survives power loss), a busy timeout and foreign keys; then migrate it.
 */
export function openDatabase(path: string, options: { schemaVersion?: number } = {}): Database {
  const raw = new DatabaseSync(path, { enableForeignKeyConstraints: true, timeout: BUSY_TIMEOUT_MS });
  try {
    if (path !== ':memory:') raw.exec('PRAGMA journal_mode = WAL');
    raw.exec('PRAGMA synchronous = FULL');
    raw.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    raw.exec('PRAGMA foreign_keys = ON');
    migrate(raw, options.schemaVersion ?? SCHEMA_VERSION);
  } catch (err) {
    raw.close();
    throw err;
  }
  return new Database(raw);
}
