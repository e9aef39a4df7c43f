/**
 * The long-lived `ip -batch` of IpCommand (ip-session.ts) against the real `ip`, with commands that change nothing
 * (devices that do not exist, `lo` up): errors mapped to their own command, one process for many commands, a new
 * process after `ip` exits on an argument it refuses, and the time limit. The first two need root (`lo` up).
 */
import assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { CommandError } from '../../src/binding/exec.ts';
import { IpCommand, isNoSuchDevice } from '../../src/binding/ip-command.ts';

const root = process.getuid?.() === 0 ? false : 'needs root (ip link set dev lo up)';
const missing = () => `kxm${Math.random().toString(36).slice(2, 12)}`;

/** Counts the processes this test process starts. */
const started: string[] = [];
const proto = ChildProcess.prototype as unknown as { spawn: (options: { args: string[] }) => unknown };
const spawnOriginal = proto.spawn;
proto.spawn = function (this: unknown, options: { args: string[] }) {
  started.push(options.args.join(' '));
  return spawnOriginal.call(this, options);
};
const dir = mkdtempSync(path.join(os.tmpdir(), 'kx-ip-session-'));
after(() => {
  proto.spawn = spawnOriginal;
  rmSync(dir, { recursive: true, force: true });
});

test('commands run in one ip process; a failing one is reported as its own command, the next ones still run', {
  skip: root,
}, async () => {
  const ip = new IpCommand();
  const before = started.length;
  const a = missing();
  const { failed } = await ip.batch([['link', 'set', 'dev', 'lo', 'up'], ['link', 'set', 'dev', a, 'up'], ['x']]);
  assert.equal(failed?.index, 1);
  assert.deepEqual(failed.error.argv, ['ip', 'link', 'set', 'dev', a, 'up']);
  assert.equal(failed.error.message, `\`ip link set dev ${a} up\` exited with status 1: Cannot find device "${a}"`);
  assert.ok(isNoSuchDevice(failed.error));
  assert.equal(await ip.deleteLink(missing()), false, 'a missing device is not an error for deleteLink');
  const again = await ip.batch([['link', 'set', 'dev', 'lo', 'up']]);
  assert.equal(again.failed, undefined);
  // One process for all of them (none when one shared by this test file runs already).
  assert.ok(started.length - before <= 1, started.slice(before).join('\n'));
  assert.ok(
    started.slice(before).every((args) => args === 'ip -force -batch -'),
    started.slice(before).join('\n'),
  );
});

test('an argument ip refuses ends its process: reported with that command; the next command starts a new one', {
  skip: root,
}, async () => {
  const ip = new IpCommand();
  const a = missing();
  const { failed } = await ip.batch([['link', 'set', 'dev', 'lo', 'master', a]]);
  const before = started.length;
  assert.equal(failed?.index, 0);
  assert.equal(failed.error.exitCode, 255);
  assert.deepEqual(failed.error.argv, ['ip', 'link', 'set', 'dev', 'lo', 'master', a]);
  assert.match(failed.error.message, new RegExp(`argument "${a}" is wrong`));
  const next = await ip.batch([['link', 'set', 'dev', 'lo', 'up']]);
  assert.equal(next.failed, undefined);
  assert.deepEqual(started.slice(before), ['ip -force -batch -'], 'a new process after the first exited');
});

test('a hung ip is killed at the time limit, and reported as timed out', async () => {
  const hung = path.join(dir, 'hung-ip');
  writeFileSync(hung, `#!${process.execPath}\nsetTimeout(() => {}, 30_000);\n`);
  chmodSync(hung, 0o755);
  const ip = new IpCommand({ binary: hung, timeoutMs: 300 });
  const started = Date.now();
  const err = await ip.batch([['link', 'set', 'dev', 'lo', 'up']]).catch((e: unknown) => e);
  assert.ok(err instanceof CommandError, String(err));
  assert.equal(err.timedOut, true);
  assert.match(err.message, /timed out after 300 ms/);
  assert.ok(Date.now() - started < 10_000);
});

test('a missing ip binary: could not be run', async () => {
  const ip = new IpCommand({ binary: path.join(dir, 'no-such-ip') });
  const err = await ip.batch([['link', 'set', 'dev', 'lo', 'up']]).catch((e: unknown) => e);
  assert.ok(err instanceof CommandError, String(err));
  assert.equal(err.startError, 'ENOENT');
});
