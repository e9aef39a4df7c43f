// Access: HTTPS with client-certificate verification on the TCP listener, the JSON spec Docker needs for it,
// the warning about a world-readable kuryr.conf holding a password, and secrets never reaching the logs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { listenTcp } from '../../src/plugin/listen.ts';
import { createPluginServer } from '../../src/plugin/server.ts';
import { makeDriver } from '../helpers/fakes.ts';

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: 'pipe' });
const haveOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
})();

describe('TLS with client certificates on the TCP listener', {
  skip: haveOpenssl ? false : 'openssl is not installed',
}, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kuryr-tls-'));
  const file = (name: string) => path.join(dir, name);

  before(() => {
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
        '/CN=kuryr-test-ca',
      ],
      dir,
    );
    for (const [name, cn, ext] of [
      ['server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1'],
      ['client', 'docker', 'extendedKeyUsage=clientAuth'],
      ['rogue', 'docker', 'extendedKeyUsage=clientAuth'],
    ] as const) {
      openssl(
        ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`],
        dir,
      );
      writeFileSync(file(`${name}.ext`), `${ext}\n`);
      const signer =
        name === 'rogue' ? ['-signkey', `${name}.key`] : ['-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial'];
      openssl(
        [
          'x509',
          '-req',
          '-in',
          `${name}.csr`,
          ...signer,
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
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const activate = (port: number, client?: 'client' | 'rogue') =>
    new Promise<number>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port,
          path: '/Plugin.Activate',
          method: 'POST',
          ca: readFileSync(file('ca.pem')),
          ...(client === undefined
            ? {}
            : { cert: readFileSync(file(`${client}.pem`)), key: readFileSync(file(`${client}.key`)) }),
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });

  test('a client certificate signed by the CA is accepted; none, or a self-signed one, is refused', async () => {
    const env = await makeDriver();
    const server = createPluginServer({
      driver: env.driver,
      log: silentLogger(),
      tls: {
        cert: readFileSync(file('server.pem')),
        key: readFileSync(file('server.key')),
        ca: readFileSync(file('ca.pem')),
        verifyClient: true,
      },
    });
    try {
      const spec = await listenTcp(server, '127.0.0.1', 0, dir, 'kuryr', {
        caFile: file('ca.pem'),
        certFile: file('client.pem'),
        keyFile: file('client.key'),
      });
      const json = JSON.parse(readFileSync(spec, 'utf8')) as { Addr: string; TLSConfig: Record<string, unknown> };
      assert.equal(spec, path.join(dir, 'kuryr', 'kuryr.json'));
      assert.equal(
        existsSync(path.join(dir, 'kuryr', 'kuryr.spec')),
        false,
        'no plain .spec that Docker would read first',
      );
      assert.match(json.Addr, /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.deepEqual(json.TLSConfig, {
        InsecureSkipVerify: false,
        CAFile: file('ca.pem'),
        CertFile: file('client.pem'),
        KeyFile: file('client.key'),
      });
      const port = Number(new URL(json.Addr).port);
      assert.equal(await activate(port, 'client'), 200);
      await assert.rejects(activate(port));
      await assert.rejects(activate(port, 'rogue'));
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      env.close();
    }
  });

  test('enable_ssl from kuryr.conf (the original keys) needs --listen and existing files', () => {
    const conf = file('tls.conf');
    writeFileSync(
      conf,
      `[DEFAULT]\nenable_ssl = True\nssl_cert_file = ${file('server.pem')}\nssl_key_file = ${file('server.key')}\n[kuryr_ts]\nssl_ca_file = ${file('ca.pem')}\nssl_verify_client = true\n`,
    );
    const c = loadConfig({ config: conf, listen: '127.0.0.1:23750' }, {});
    assert.deepEqual(c.tls, {
      certFile: file('server.pem'),
      keyFile: file('server.key'),
      caFile: file('ca.pem'),
      verifyClient: true,
    });
    assert.throws(() => loadConfig({ config: conf }, {}), /enable_ssl needs --listen/);
    writeFileSync(conf, '[DEFAULT]\nenable_ssl = True\nssl_cert_file = /nonexistent.pem\n');
    assert.throws(
      () => loadConfig({ config: conf, listen: '127.0.0.1:1' }, {}),
      /ssl_cert_file: Unable to find \/nonexistent\.pem/,
    );
  });
});

describe('secrets', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kuryr-secret-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a kuryr.conf holding a password warns when every user can read it, not when it is 0600', () => {
    const conf = path.join(dir, 'kuryr.conf');
    writeFileSync(conf, '[neutron]\nusername = admin\npassword = s3cret\n');
    chmodSync(conf, 0o644);
    const warnings = loadConfig({ config: conf }, {}).warnings;
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /readable by every user \(mode 0644\): chmod 600/);
    assert.doesNotMatch(warnings[0]!, /s3cret/);
    chmodSync(conf, 0o600);
    assert.deepEqual(loadConfig({ config: conf }, {}).warnings, []);
  });

  test('passwords and tokens in log records are redacted', async () => {
    let out = '';
    const { createLogger } = await import('../../src/observability/logger.ts');
    const log = createLogger('info', 'kuryr', {
      destination: {
        write: (line) => {
          out += line;
        },
      },
    });
    log.info(
      { password: 'p4ss', auth: { token: 't0ken', password: 'p4ss2' }, headers: { 'x-auth-token': 'hdr' } },
      'login',
    );
    assert.doesNotMatch(out, /p4ss|t0ken|hdr/);
    assert.match(out, /\[redacted\]/);
  });
});
