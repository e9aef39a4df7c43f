// `[DEFAULT] kuryr_uri` (kolla-ansible writes `kuryr_uri = http://<api address>:23750`): when set, serve
// listens there over TCP as with --listen; when unset, the unix socket; --listen and --socket win over it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'kuryr-uri-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const conf = (text: string) => {
  const file = path.join(dir, `${Math.random()}.conf`);
  writeFileSync(file, text, { mode: 0o600 });
  return file;
};

test('kuryr_uri set in kuryr.conf: TCP there, no unix socket', () => {
  const c = loadConfig({ config: conf('[DEFAULT]\nkuryr_uri = http://10.0.0.5:23750\n') }, {});
  assert.deepEqual(c.listen, { host: '10.0.0.5', port: 23750 });
  assert.equal(c.socketPath, null);
  const v6 = loadConfig({ config: conf('[DEFAULT]\nkuryr_uri = http://[fd00::5]:23750\n') }, {});
  assert.deepEqual(v6.listen, { host: 'fd00::5', port: 23750 });
});

test('OS_KURYR_URI sets it too; unset: the unix socket', () => {
  const empty = conf('');
  assert.deepEqual(loadConfig({ config: empty }, { OS_KURYR_URI: 'http://127.0.0.1:23750' }).listen, {
    host: '127.0.0.1',
    port: 23750,
  });
  const c = loadConfig({ config: empty }, {});
  assert.equal(c.listen, null);
  assert.match(c.socketPath ?? '', /\/run\/docker\/plugins\/kuryr\.sock$/);
});

test('--listen and --socket win over kuryr_uri', () => {
  const file = conf('[DEFAULT]\nkuryr_uri = http://10.0.0.5:23750\n');
  assert.deepEqual(loadConfig({ config: file, listen: '127.0.0.1:1' }, {}).listen, { host: '127.0.0.1', port: 1 });
  const c = loadConfig({ config: file, socket: path.join(dir, 'k.sock') }, {});
  assert.equal(c.listen, null);
  assert.equal(c.socketPath, path.join(dir, 'k.sock'));
});

test('a kuryr_uri that is no http(s) URL with a port is a clear error', () => {
  for (const [uri, msg] of [
    ['10.0.0.5:23750', /the scheme must be http or https|is not a URL/],
    ['http://10.0.0.5', /has no port/],
    ['http://10.0.0.5:23750/v1', /only scheme, host and port/],
    ['ftp://10.0.0.5:21', /the scheme must be http or https/],
  ] as const) {
    assert.throws(() => loadConfig({ config: conf(`[DEFAULT]\nkuryr_uri = ${uri}\n`) }, {}), msg, uri);
  }
});
