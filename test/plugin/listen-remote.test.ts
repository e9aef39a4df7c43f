// The plugin API on a non-loopback TCP address (`kuryr_uri = http://<address>:23750`, as kolla-ansible sets it)
// answers only this host. Two private network namespaces joined by a veth pair stand for two machines: the
// plugin process runs in the "host" one, on 192.0.2.1 (TEST-NET-1). A client in the host namespace (Docker on the
// same host: its connection comes from 192.0.2.1) is served over plain HTTP; a client in the "other machine"
// namespace (192.0.2.2) has its connection closed before a byte is read, and the refusal is logged once. With TLS
// and client-certificate verification, any client with a valid certificate is served, from anywhere.
// Needs root; run under /tmp/kuryr-e2e.lock. Everything it creates (namespaces, devices, files) is removed.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { kernelSkipReason } from '../binding/kernel.ts';
import { KURYR_BIN } from '../helpers/plugin-process.ts';

const skip = await kernelSkipReason();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const tag = Math.random().toString(36).slice(2, 7);
const HOST_NS = `kxh${tag}`;
const OTHER_NS = `kxo${tag}`;
const HOST_IP = '192.0.2.1';
const OTHER_IP = '192.0.2.2';
const PORT = 23750;

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe', encoding: 'utf8' });
const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: 'pipe' });

interface Answer {
  status?: number;
  error?: string;
}

/**
 * POST /Plugin.Activate to `url` from inside namespace `ns` (a node process started there): the status, or the
 * error when the connection was closed without an answer.
 */
function activateFrom(ns: string, url: string, tls?: { ca: string; cert?: string; key?: string }): Answer {
  const script = `
    const fs = require('node:fs');
    const u = new URL(process.argv[1]);
    const tls = process.argv[2] ? JSON.parse(process.argv[2]) : undefined;
    const mod = require(u.protocol === 'https:' ? 'node:https' : 'node:http');
    const opts = { method: 'POST', host: u.hostname, port: u.port, path: '/Plugin.Activate', timeout: 5000 };
    if (tls) { opts.ca = fs.readFileSync(tls.ca); if (tls.cert) { opts.cert = fs.readFileSync(tls.cert); opts.key = fs.readFileSync(tls.key); } }
    const req = mod.request(opts, (res) => { res.resume(); res.on('end', () => console.log(JSON.stringify({ status: res.statusCode }))); });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => console.log(JSON.stringify({ error: e.code || e.message })));
    req.end();`;
  const out = run('ip', ['netns', 'exec', ns, process.execPath, '-e', script, url, tls ? JSON.stringify(tls) : '']);
  return JSON.parse(out.trim()) as Answer;
}

interface Served {
  child: ChildProcess;
  log: string;
  stop(): Promise<void>;
}

/** `kuryr serve` inside the host namespace with `conf`; resolves once it answers from that namespace. */
async function serveInHostNs(
  dir: string,
  name: string,
  conf: string,
  url: string,
  tls?: { ca: string; cert: string; key: string },
): Promise<Served> {
  const log = path.join(dir, `${name}.log`);
  const fd = openSync(log, 'a');
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      HOST_NS,
      KURYR_BIN,
      'serve',
      '--config',
      conf,
      '--driver-name',
      name,
      '--state-dir',
      path.join(dir, `${name}-state`),
      '--docker-host',
      `unix://${path.join(dir, 'no-docker.sock')}`,
    ],
    { stdio: ['ignore', fd, fd], env: { ...process.env, KURYR_LOG_FORMAT: 'json' } },
  );
  closeSync(fd);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) assert.fail(`serve exited ${child.exitCode}:\n${readFileSync(log, 'utf8')}`);
    if (Date.now() > deadline) {
      await stop();
      assert.fail(`serve did not answer on ${url}:\n${readFileSync(log, 'utf8')}`);
    }
    if (activateFrom(HOST_NS, url, tls).status === 200) return { child, log, stop };
    await sleep(200);
  }
}

describe('the plugin API on a non-loopback address', { skip }, () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kuryr-remote-'));
    run('ip', ['netns', 'add', HOST_NS]);
    run('ip', ['netns', 'add', OTHER_NS]);
    run('ip', [
      '-n',
      HOST_NS,
      'link',
      'add',
      `kxa${tag}`,
      'type',
      'veth',
      'peer',
      'name',
      `kxb${tag}`,
      'netns',
      OTHER_NS,
    ]);
    for (const [ns, dev, addr] of [
      [HOST_NS, `kxa${tag}`, HOST_IP],
      [OTHER_NS, `kxb${tag}`, OTHER_IP],
    ] as const) {
      run('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev]);
      run('ip', ['-n', ns, 'link', 'set', dev, 'up']);
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
  });

  after(() => {
    for (const ns of [HOST_NS, OTHER_NS]) {
      try {
        run('ip', ['netns', 'del', ns]); // takes the veth pair with it
      } catch {
        // not created
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('kuryr_uri on the host address, plain HTTP: this host is served, another machine is refused', async () => {
    const specDir = path.join(dir, 'spec');
    const conf = path.join(dir, 'plain.conf');
    writeFileSync(
      conf,
      `[DEFAULT]\nkuryr_uri = http://${HOST_IP}:${PORT}\n[kuryr_ts]\nbackend = embedded\nspec_dir = ${specDir}\n`,
      { mode: 0o600 },
    );
    const url = `http://${HOST_IP}:${PORT}`;
    const served = await serveInHostNs(dir, `kxr${tag}`, conf, url);
    try {
      // The spec file Docker discovers the plugin by holds the URL, as the original's.
      assert.equal(readFileSync(path.join(specDir, `kxr${tag}`, `kxr${tag}.spec`), 'utf8'), `${url}\n`);
      // Docker on this host: its connection to the host address comes from the host address.
      assert.deepEqual(activateFrom(HOST_NS, url), { status: 200 });
      // Loopback is this host as well (the plugin listens on one address only: nothing to reach there).
      // Another machine: the connection is closed unread, every time.
      for (let i = 0; i < 3; i++) {
        const answer = activateFrom(OTHER_NS, url);
        assert.equal(answer.status, undefined, `refused, got HTTP ${answer.status}`);
        assert.match(answer.error ?? '', /ECONNRESET|socket hang up/);
      }
      assert.deepEqual(activateFrom(HOST_NS, url), { status: 200 }, 'still serving this host');
      const refusals = readFileSync(served.log, 'utf8')
        .split('\n')
        .filter((l) => l.includes('refused a connection'));
      assert.equal(refusals.length, 1, 'logged once per address');
      assert.match(refusals[0]!, new RegExp(`"peer":"${OTHER_IP.replaceAll('.', '\\.')}"`));
    } finally {
      await served.stop();
    }
  });

  test('TLS with client-certificate verification: a valid certificate is served from another machine', async () => {
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'ca.key',
        '-out',
        'ca.pem',
        '-days',
        '1',
        '-subj',
        '/CN=kx-ca',
      ],
      dir,
    );
    for (const [name, ext] of [
      ['server', `subjectAltName=IP:${HOST_IP}`],
      ['client', 'extendedKeyUsage=clientAuth'],
    ] as const) {
      openssl(
        [
          'req',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-keyout',
          `${name}.key`,
          '-out',
          `${name}.csr`,
          '-subj',
          `/CN=${name}`,
        ],
        dir,
      );
      writeFileSync(path.join(dir, `${name}.ext`), `${ext}\n`);
      openssl(
        [
          'x509',
          '-req',
          '-in',
          `${name}.csr`,
          '-CA',
          'ca.pem',
          '-CAkey',
          'ca.key',
          '-CAcreateserial',
          '-out',
          `${name}.pem`,
          '-days',
          '1',
          '-extfile',
          `${name}.ext`,
        ],
        dir,
      );
    }
    const f = (n: string) => path.join(dir, n);
    const conf = path.join(dir, 'tls.conf');
    writeFileSync(
      conf,
      `[DEFAULT]\nkuryr_uri = https://${HOST_IP}:${PORT}\nenable_ssl = true\nssl_cert_file = ${f('server.pem')}\nssl_key_file = ${f('server.key')}\n` +
        `[kuryr_ts]\nbackend = embedded\nspec_dir = ${path.join(dir, 'spec')}\nssl_ca_file = ${f('ca.pem')}\nssl_verify_client = true\n`,
      { mode: 0o600 },
    );
    const url = `https://${HOST_IP}:${PORT}`;
    const client = { ca: f('ca.pem'), cert: f('client.pem'), key: f('client.key') };
    const served = await serveInHostNs(dir, `kxt${tag}`, conf, url, client);
    try {
      assert.deepEqual(activateFrom(OTHER_NS, url, client), { status: 200 }, 'a valid certificate, from anywhere');
      const without = activateFrom(OTHER_NS, url, { ca: f('ca.pem') });
      assert.equal(without.status, undefined, 'no certificate: refused by TLS');
    } finally {
      await served.stop();
    }
  });
});
