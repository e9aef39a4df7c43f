/**
 * The lock `serve` holds on the embedded store for its whole life: `<stateDir>/serve.lock`. `kuryr restore`
 * takes the same lock, so it is refused while any `serve` uses the store, whatever that serve listens on (a
 * unix socket elsewhere, TCP), and a `serve` starting during a restore is refused too.
 *
 * The lock is SQLite's own file lock (an exclusive transaction left open on a tiny database of its own): a POSIX
 * record lock that the kernel releases when the holder exits, however it exits (kill -9 included). There is no
 * stale lock to detect, hence no PID to check and no PID reuse to fear; SQLite is already the store's engine, so
 * this adds no dependency (Node has no flock). `serve.pid` next to it only names the holder in messages.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fail } from '../errors.ts';

export const LOCK_FILE = 'serve.lock';
const HOLDER_FILE = 'serve.pid';

/** A held lock; `release()` once done (exiting releases it as well). */
export interface StoreLock {
  readonly file: string;
  release(): void;
}

/** Who holds the lock, from `serve.pid` (informational: `pid 123 (serve)`), or a plain phrase. */
function holderOf(stateDir: string): string {
  try {
    const [pid, ...what] = fs.readFileSync(path.join(stateDir, HOLDER_FILE), 'utf8').trim().split(' ');
    if (pid !== undefined && /^\d+$/.test(pid)) return `pid ${pid}${what.length > 0 ? ` (${what.join(' ')})` : ''}`;
  } catch {
    // no holder file: the holder is starting or did not write it
  }
  return 'another process';
}

/**
 * Takes the lock of the store in `stateDir` for `purpose` (`serve`, `restore`), or throws a configuration error
 * naming the holder. Never waits.
 */
export function acquireStoreLock(stateDir: string, purpose: string): StoreLock {
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = path.join(stateDir, LOCK_FILE);
  const db = new DatabaseSync(file, { timeout: 0 });
  try {
    // Rollback-journal mode, a real database (SQLite does not lock an empty file) and a write in an exclusive
    // transaction that stays open: the exclusive file lock is taken at once and kept until release or exit.
    db.exec('PRAGMA journal_mode = DELETE');
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER)');
    db.exec('BEGIN EXCLUSIVE');
    db.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid);
  } catch (err) {
    db.close();
    if (/locked|busy/i.test((err as Error).message)) {
      throw fail.config(`the store in ${stateDir} is in use by ${holderOf(stateDir)}: ${purpose} refused`);
    }
    throw err;
  }
  fs.writeFileSync(path.join(stateDir, HOLDER_FILE), `${process.pid} ${purpose}\n`, { mode: 0o644 });
  let held = true;
  return {
    file,
    release() {
      if (!held) return;
      held = false;
      fs.rmSync(path.join(stateDir, HOLDER_FILE), { force: true });
      db.exec('ROLLBACK');
      db.close();
    },
  };
}
