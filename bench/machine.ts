/** The description of the machine and software a result came from (stored with every result file). */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { DatabaseSync } from 'node:sqlite';
import type { PrivateDockerd } from '../test/helpers/docker-engine.ts';
import { REPO_ROOT } from '../test/helpers/plugin-process.ts';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  os: string;
  node: string;
  sqlite: string;
  docker: string;
  kuryrTs: string;
  commit: string;
  /** 1-minute load average when the run started and when it ended (other work on the machine skews timings). */
  loadAverage: { start: number; end?: number };
}

function tryRun(file: string, args: string[]): string {
  try {
    return execFileSync(file, args, { encoding: 'utf8', cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

export async function describeMachine(engine: PrivateDockerd): Promise<MachineInfo> {
  const osRelease = readFileSync('/etc/os-release', 'utf8');
  const db = new DatabaseSync(':memory:');
  const sqlite = (db.prepare('select sqlite_version() as v').get() as { v: string }).v;
  db.close();
  const pkg = JSON.parse(readFileSync(`${REPO_ROOT}/package.json`, 'utf8')) as { version: string };
  const dirty = tryRun('git', ['status', '--porcelain', '--untracked-files=no']) !== '';
  return {
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()} ${os.machine()}`,
    os: /^PRETTY_NAME="?([^"\n]*)"?/m.exec(osRelease)?.[1] ?? 'unknown',
    node: process.version,
    sqlite,
    docker: (await engine.dockerOk(['version', '--format', '{{.Server.Version}}'])).trim(),
    kuryrTs: pkg.version,
    commit: `${tryRun('git', ['rev-parse', '--short', 'HEAD'])}${dirty ? '+local changes' : ''}`,
    loadAverage: { start: Math.round(os.loadavg()[0]! * 100) / 100 },
  };
}
