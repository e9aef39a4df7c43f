import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../src/observability/logger.ts';
import { listenTcp } from '../../src/plugin/listen.ts';
import { createPluginServer } from '../../src/plugin/server.ts';
import { makeDriver } from '../helpers/fakes.ts';

test('--listen serves TCP on loopback and writes the spec file Docker discovers', async () => {
  const env = await makeDriver();
  const server = createPluginServer({ driver: env.driver, log: silentLogger() });
  const specDir = mkdtempSync(path.join(os.tmpdir(), 'kuryr-spec-'));
  try {
    const spec = await listenTcp(server, '127.0.0.1', 0, specDir, 'kuryr');
    assert.equal(spec, path.join(specDir, 'kuryr', 'kuryr.spec'));
    const url = readFileSync(spec, 'utf8').trim();
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const reply = await fetch(`${url}/Plugin.Activate`, { method: 'POST' });
    assert.equal(reply.status, 200);
    assert.deepEqual(await reply.json(), { Implements: ['NetworkDriver', 'IpamDriver'] });
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    env.close();
    rmSync(specDir, { recursive: true, force: true });
  }
});

test('a second server refuses a socket in use, and replaces one left by a crash', async () => {
  const env = await makeDriver();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kuryr-sock-'));
  const socket = path.join(dir, 'k.sock');
  const { listenUnix } = await import('../../src/plugin/listen.ts');
  const a = createPluginServer({ driver: env.driver, log: silentLogger() });
  const b = createPluginServer({ driver: env.driver, log: silentLogger() });
  try {
    await listenUnix(a, socket, null);
    await assert.rejects(listenUnix(b, socket, null), /already serves/);
    await new Promise((r) => a.close(r));
    // A stale socket file, as a crashed (kill -9) instance leaves it, is replaced.
    const child = spawn(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(socket)}, () => console.log('up'))`,
    ]);
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok(lstatSync(socket).isSocket(), 'the crashed listener left its socket file');
    const c = createPluginServer({ driver: env.driver, log: silentLogger() });
    await listenUnix(c, socket, null);
    const status = await new Promise<number>((resolve, reject) => {
      http
        .request({ socketPath: socket, path: '/Plugin.Activate', method: 'POST' }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on('error', reject)
        .end();
    });
    assert.equal(status, 200);
    await new Promise((r) => c.close(r));
  } finally {
    env.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
