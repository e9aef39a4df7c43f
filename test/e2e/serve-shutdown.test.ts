// The plugin process's life cycle around its store:
// - `kuryr restore` is refused while a `serve` holds the store, even one listening somewhere `restore` does not
//   look (a socket of its own), and there is no override; after that serve is killed with SIGKILL, restore works.
// - SIGTERM with a request in flight (a slow Neutron: the lab behind the fault proxy, each subnet pool call held
//   6.5 s, 13 s in all, longer than the old 10 s drain): the request completes and Docker gets its answer, then
//   the store (the Neutron client) closes and the process exits 0.
// Run under /tmp/kuryr-e2e.lock (the plugin process, the lab).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openNeutronHttp } from '../../src/neutron/http/index.ts';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.ts';
import { neutronLab } from '../helpers/neutron-lab.ts';
import { KURYR_BIN, type PluginProcess, pluginCall, startPlugin } from '../helpers/plugin-process.ts';

const notRoot = process.getuid?.() !== 0;
const lab = await neutronLab();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const tag = Math.random().toString(36).slice(2, 7);

function kuryr(args: string[]) {
  return spawnSync(KURYR_BIN, args, { encoding: 'utf8', timeout: 30_000 });
}

async function waitForLog(plugin: PluginProcess, text: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!readFileSync(plugin.logFile, 'utf8').includes(text)) {
    if (Date.now() > deadline) assert.fail(`no "${text}" in the plugin log:\n${plugin.logTail(20)}`);
    await sleep(100);
  }
}

describe('restore while serve holds the store', { skip: notRoot ? 'needs root (the embedded plugin)' : false }, () => {
  let dir: string;
  let plugin: PluginProcess | undefined;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kx-restore-'));
  });
  after(async () => {
    await plugin?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('refused while serve runs, whatever it listens on; allowed after its kill -9', async () => {
    const driver = `kxl${tag}`;
    const stateDir = path.join(dir, 'state');
    const common = ['--state-dir', stateDir, '--driver-name', driver, '--backend', 'embedded'];
    // A socket restore does not know about: only the lock can tell that serve is running.
    plugin = await startPlugin({
      driverName: driver,
      stateDir,
      socketPath: path.join(dir, 'elsewhere.sock'),
      extraArgs: ['--backend', 'embedded', '--docker-host', `unix://${path.join(dir, 'no-docker.sock')}`],
    });
    const backup = path.join(dir, 'snap.db');
    const b = kuryr(['backup', backup, ...common]);
    assert.equal(b.status, 0, b.stderr);
    const refused = kuryr(['restore', backup, ...common]);
    assert.notEqual(refused.status, 0, `restore must be refused: ${refused.stdout}`);
    assert.match(refused.stderr, new RegExp(`in use by pid ${plugin.pid} \\(serve\\): restore refused`));
    assert.equal((await pluginCall(plugin.socket, 'Plugin.Activate')).status, 200, 'serve is untouched');
    await plugin.kill9();
    const r = kuryr(['restore', backup, ...common]);
    assert.equal(r.status, 0, `after kill -9 the lock is gone: ${r.stderr}`);
    assert.match(r.stdout, /restored from/);
  });
});

describe('SIGTERM with a request in flight', { skip: lab.skip.noauth }, () => {
  let dir: string;
  let proxy: FaultProxy;
  let plugin: PluginProcess | undefined;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kx-sigterm-'));
    proxy = await startFaultProxy({ target: lab.noauth!.neutronUrl });
  });
  after(async () => {
    await plugin?.stop();
    // Whatever the plugin created in the lab's Neutron goes.
    const neutron = openNeutronHttp({ auth_type: 'none', endpoint: lab.noauth!.neutronUrl });
    for (const r of proxy.requests)
      for (const id of r.created ?? []) await neutron.deleteSubnetPool(id).catch(() => undefined);
    await neutron.close();
    await proxy.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the slow request completes, then the store closes and the process exits 0', async () => {
    const conf = path.join(dir, 'kuryr.conf');
    writeFileSync(conf, `[neutron]\nauth_type = none\nendpoint = ${proxy.url}\n`, { mode: 0o600 });
    plugin = await startPlugin({
      driverName: `kxs${tag}`,
      stateDir: path.join(dir, 'state'),
      extraArgs: ['--backend', 'neutron', '--config', conf, '--docker-host', `unix://${path.join(dir, 'no.sock')}`],
    });
    await waitForLog(plugin, 'start-up gc done');
    // Each Neutron call under the client's 10 s timeout, the request (a GET, then the POST) over 13 s in all.
    proxy.delay(6_500, { path: /^\/v2\.0\/subnetpools/ });
    const x = 100 + Math.floor(Math.random() * 150);
    // Only a request the call makes counts: the start-up (default pools, gc) asked for subnet pools too, and
    // SIGTERM before the call's connection is accepted would refuse the call instead of finishing it.
    const before_ = proxy.requests.length;
    const started = Date.now();
    const call = pluginCall<{ PoolID?: string; Err?: string }>(
      plugin.socket,
      'IpamDriver.RequestPool',
      {
        AddressSpace: 'global',
        Pool: `10.${x}.${Math.floor(Math.random() * 250)}.0/24`,
        SubPool: '',
        Options: {},
        V6: false,
      },
      60_000,
    );
    while (!proxy.requests.slice(before_).some((r) => r.path.startsWith('/v2.0/subnetpools'))) {
      assert.ok(Date.now() - started < 10_000, `the request did not reach Neutron:\n${plugin.logTail(20)}`);
      await sleep(50);
    }
    const stopping = plugin.stop('SIGTERM', 60_000);
    const reply = await call;
    const exit = await stopping;
    assert.equal(reply.status, 200, `the request in flight completed: ${reply.raw}\n${plugin.logTail(20)}`);
    assert.ok((reply.body.PoolID ?? '') !== '', 'a PoolID');
    assert.ok(Date.now() - started >= 13_000, 'it took the held 2 × 6.5 s');
    assert.deepEqual(exit, { code: 0, signal: null }, plugin.logTail(20));
    const lines = readFileSync(plugin.logFile, 'utf8').split('\n');
    const served = lines.findIndex(
      (l) => l.includes('"method":"IpamDriver.RequestPool"') && l.includes('"status":200'),
    );
    const closed = lines.findIndex((l) => l.includes('store closed, stopped'));
    assert.ok(served >= 0 && closed > served, `answered, then the store closed:\n${plugin.logTail(20)}`);
  });
});
