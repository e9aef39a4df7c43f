// kuryr doctor's checks one by one, against fakes: a fake Docker Engine and fake plugins on unix sockets in a
// temporary directory (standing in for /run/docker/plugins and the spec directories), stores in temporary
// state directories, and fake NeutronApi implementations for the Neutron checks.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, test } from 'node:test';
import type { Config } from '../../src/config/config.ts';
import { loadConfig } from '../../src/config/load.ts';
import { checkDefaultPools, checkEmbeddedStore, checkStateDir } from '../../src/doctor/backend.ts';
import { checkDockerEngine } from '../../src/doctor/docker.ts';
import { checkKernel, checkTools } from '../../src/doctor/host.ts';
import { checkNeutron, extensionsVerdict, isAuthFailure } from '../../src/doctor/neutron.ts';
import { checkPluginName, checkPluginSocket, dockerSearchOrder } from '../../src/doctor/plugin.ts';
import type { DoctorPaths, ManagedPlugin } from '../../src/doctor/types.ts';
import { KuryrError } from '../../src/errors.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/store.ts';
import { NeutronError } from '../../src/neutron/errors.ts';
import type { Extension } from '../../src/neutron/types.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'kx-doctor-'));
const paths: DoctorPaths = {
  socketDir: path.join(dir, 'run-plugins'),
  specDirs: [path.join(dir, 'etc-plugins'), path.join(dir, 'lib-plugins')],
  sysModule: path.join(dir, 'sys-module'),
};
for (const d of [paths.socketDir, ...paths.specDirs, paths.sysModule]) mkdirSync(d, { recursive: true });
const servers: http.Server[] = [];
after(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  rmSync(dir, { recursive: true, force: true });
});

/** An HTTP server on a unix socket answering `routes[path]` as JSON (404 otherwise). */
async function fakeServer(socket: string, routes: Record<string, unknown>): Promise<void> {
  const server = http.createServer((req, res) => {
    req.resume();
    const body = routes[req.url ?? ''];
    res.writeHead(body === undefined ? 404 : 200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body ?? { message: 'page not found' }));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(socket, resolve));
}

/** A socket file nobody listens on, as a plugin killed with SIGKILL leaves it. */
function staleSocket(socket: string): void {
  const script = `require('net').createServer().listen(${JSON.stringify(socket)}, () => process.kill(process.pid, 'SIGKILL'))`;
  spawnSync(process.execPath, ['-e', script]);
}

let n = 0;
/** A configuration for driver `name` whose socket is in the fake socket directory. */
function configFor(name: string, extra: { listen?: string; stateDir?: string } = {}): Config {
  const conf = path.join(dir, `empty-${++n}.conf`);
  writeFileSync(conf, '');
  const config = loadConfig(
    {
      config: conf,
      driverName: name,
      stateDir: extra.stateDir ?? path.join(dir, `state-${n}`),
      ...(extra.listen === undefined
        ? { socket: path.join(paths.socketDir, `${name}.sock`) }
        : { listen: extra.listen }),
    },
    {},
  );
  return extra.listen === undefined ? config : { ...config, specDir: paths.specDirs[1]! };
}

const activateOk = { '/Plugin.Activate': { Implements: ['NetworkDriver', 'IpamDriver'] } };

describe('docker.engine', () => {
  test('ok with the version and API version the engine reports', async () => {
    const socket = path.join(dir, 'docker.sock');
    await fakeServer(socket, {
      '/version': { Version: '20.10.24', ApiVersion: '1.41', Os: 'linux', Arch: 'amd64' },
      '/plugins': [],
    });
    const { result, managedPlugins } = await checkDockerEngine(`unix://${socket}`);
    assert.equal(result.status, 'ok');
    assert.match(result.summary, /Docker Engine 20\.10\.24 \(API 1\.41, linux\/amd64\)/);
    assert.deepEqual(managedPlugins, []);
  });

  test('fail with a hint when nothing answers on the socket', async () => {
    const { result } = await checkDockerEngine(`unix://${path.join(dir, 'no-docker.sock')}`);
    assert.equal(result.status, 'fail');
    assert.match(result.summary, /no Docker Engine answers .*ENOENT/);
    assert.match(result.hint ?? '', /systemctl start docker|DOCKER_HOST/);
  });

  test('fail on a Docker host URL it cannot use', async () => {
    const { result } = await checkDockerEngine('ssh://somewhere');
    assert.equal(result.status, 'fail');
  });
});

describe('plugin.socket', () => {
  test('ok when the socket answers Plugin.Activate as network and IPAM driver', async () => {
    const config = configFor('kxa');
    await fakeServer(config.socketPath!, activateOk);
    const r = await checkPluginSocket(config, paths, []);
    assert.equal(r.status, 'ok');
    assert.match(r.summary, /answers Plugin\.Activate \(NetworkDriver, IpamDriver\)/);
  });

  test('fail with a start hint when there is no socket', async () => {
    const r = await checkPluginSocket(configFor('kxb'), paths, []);
    assert.equal(r.status, 'fail');
    assert.match(r.summary, /no plugin socket at .*kxb\.sock/);
    assert.match(r.hint ?? '', /kuryr serve/);
  });

  test('fail naming a stale socket (a crashed plugin)', async () => {
    const config = configFor('kxc');
    staleSocket(config.socketPath!);
    const r = await checkPluginSocket(config, paths, []);
    assert.equal(r.status, 'fail');
    assert.match(r.summary, /no process listens on it/);
    assert.match(r.hint ?? '', /kuryr serve/);
  });

  test('fail when the socket belongs to a plugin of another kind', async () => {
    const config = configFor('kxd');
    await fakeServer(config.socketPath!, { '/Plugin.Activate': { Implements: ['VolumeDriver'] } });
    const r = await checkPluginSocket(config, paths, []);
    assert.equal(r.status, 'fail');
    assert.match(r.summary, /implements VolumeDriver, not NetworkDriver and IpamDriver/);
  });

  test('TCP mode: follows the spec file to the listener', async () => {
    const server = http.createServer((req, res) => {
      req.resume();
      res.end(JSON.stringify({ Implements: ['NetworkDriver', 'IpamDriver'] }));
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const config = configFor('kxe', { listen: `127.0.0.1:${port}` });
    mkdirSync(path.join(paths.specDirs[1]!, 'kxe'));
    writeFileSync(path.join(paths.specDirs[1]!, 'kxe', 'kxe.spec'), `tcp://127.0.0.1:${port}\n`);
    const r = await checkPluginSocket(config, paths, []);
    assert.equal(r.status, 'ok', r.summary);
  });

  test('the managed kuryr-ts plugin: disabled is a failure with the enable command', async () => {
    const plugin: ManagedPlugin = {
      Id: 'f00d'.repeat(4), // real ids are 64 hex: too long for a socket path under a temporary directory
      Name: 'kxf:latest',
      Enabled: false,
      Config: { Entrypoint: ['/usr/local/bin/kuryr-entrypoint', 'serve'], Interface: { Socket: 'kuryr.sock' } },
    };
    const r = await checkPluginSocket(configFor('kxf'), paths, [plugin]);
    assert.equal(r.status, 'fail');
    assert.equal(r.hint, 'docker plugin enable kxf:latest');
    mkdirSync(path.join(paths.socketDir, plugin.Id));
    await fakeServer(path.join(paths.socketDir, plugin.Id, 'kuryr.sock'), activateOk);
    const enabled = await checkPluginSocket(configFor('kxf'), paths, [{ ...plugin, Enabled: true }]);
    assert.equal(enabled.status, 'ok', enabled.summary);
  });
});

describe('plugin.name', () => {
  test("Docker's search order: sockets, then .spec and .json files per directory", () => {
    const order = dockerSearchOrder('k', paths);
    assert.deepEqual(
      order.map((p) => path.relative(dir, p)),
      [
        'run-plugins/k.sock',
        'run-plugins/k/k.sock',
        'etc-plugins/k.spec',
        'etc-plugins/k/k.spec',
        'etc-plugins/k.json',
        'etc-plugins/k/k.json',
        'lib-plugins/k.spec',
        'lib-plugins/k/k.spec',
        'lib-plugins/k.json',
        'lib-plugins/k/k.json',
      ],
    );
  });

  test('ok when nothing else registers the name', () => {
    assert.equal(checkPluginName(configFor('kxg'), paths, []).status, 'ok');
  });

  test('fail when a managed plugin of the same name exists (it wins over every socket)', () => {
    const other: ManagedPlugin = {
      Id: 'a'.repeat(64),
      Name: 'kxh:latest',
      Enabled: true,
      Config: { Entrypoint: ['/other'] },
    };
    const r = checkPluginName(configFor('kxh'), paths, [other]);
    assert.equal(r.status, 'fail');
    assert.match(r.hint ?? '', /docker plugin disable kxh:latest && docker plugin rm kxh:latest/);
  });

  test('fail when a socket comes before our spec file; warn for a spec file behind our socket', () => {
    writeFileSync(path.join(paths.specDirs[0]!, 'kxi.spec'), 'tcp://127.0.0.1:1\n');
    const tcp = configFor('kxi', { listen: '127.0.0.1:1' });
    mkdirSync(path.join(paths.specDirs[1]!, 'kxi'));
    writeFileSync(path.join(paths.specDirs[1]!, 'kxi', 'kxi.spec'), 'tcp://127.0.0.1:1\n');
    const first = checkPluginName(tcp, paths, []);
    assert.equal(first.status, 'fail');
    assert.match(first.summary, /Docker resolves kxi to .*etc-plugins\/kxi\.spec/);

    const unix = configFor('kxi');
    staleSocket(unix.socketPath!);
    const second = checkPluginName(unix, paths, []);
    assert.equal(second.status, 'warn');
    assert.match(second.summary, /etc-plugins\/kxi\.spec.* also register/);
  });

  test('fail when the socket is where Docker never looks', () => {
    const conf = path.join(dir, 'elsewhere.conf');
    writeFileSync(conf, '');
    const config = loadConfig({ config: conf, driverName: 'kxj', socket: path.join(dir, 'kxj.sock') }, {});
    const r = checkPluginName(config, paths, []);
    assert.equal(r.status, 'fail');
    assert.match(r.summary, /Docker does not look for kxj at/);
  });
});

describe('state-dir, backend.store, backend.pools (embedded)', () => {
  test('a state dir that does not exist yet is fine when its parent is writable', () => {
    const r = checkStateDir(configFor('kxk', { stateDir: path.join(dir, 'new', 'state') }));
    assert.equal(r.status, 'ok');
    assert.match(r.summary, /does not exist yet; kuryr serve creates it/);
  });

  test('a state dir that is a file fails', () => {
    writeFileSync(path.join(dir, 'not-a-dir'), '');
    assert.equal(checkStateDir(configFor('kxl', { stateDir: path.join(dir, 'not-a-dir') })).status, 'fail');
  });

  test('no store yet is a warning; an existing store opens, is writable, and has the default pools', async () => {
    const stateDir = path.join(dir, 'store-ok');
    const config = configFor('kxm', { stateDir });
    assert.equal(checkEmbeddedStore(config).status, 'warn');
    mkdirSync(stateDir);
    const store = openEmbeddedNeutron({ path: path.join(stateDir, 'kuryr.db') });
    try {
      const store1 = checkEmbeddedStore(config);
      assert.equal(store1.status, 'ok', store1.summary);
      assert.match(store1.summary, /opens, schema \d+, writable/);
      const missing = await checkDefaultPools(config, store);
      assert.equal(missing.status, 'warn');
      assert.match(missing.summary, /kuryr and kuryr6 missing/);
      await store.createSubnetPool({ name: 'kuryr', prefixes: ['10.10.0.0/16'], default_prefixlen: 24 });
      await store.createSubnetPool({ name: 'kuryr6', prefixes: ['fd6b:7572:7972::/48'], default_prefixlen: 64 });
      const pools = await checkDefaultPools(config, store);
      assert.equal(pools.status, 'ok');
      assert.match(pools.summary, /kuryr \(10\.10\.0\.0\/16\), kuryr6 \(fd6b:7572:7972::\/48\)/);
    } finally {
      await store.close();
    }
  });

  test('a store written by a newer kuryr-ts fails', () => {
    const stateDir = path.join(dir, 'store-new');
    mkdirSync(stateDir);
    const db = new DatabaseSync(path.join(stateDir, 'kuryr.db'));
    db.exec('PRAGMA user_version = 999');
    db.close();
    const r = checkEmbeddedStore(configFor('kxn', { stateDir }));
    assert.equal(r.status, 'fail');
    assert.match(r.summary, /schema version 999, newer than this kuryr-ts reads/);
  });
});

describe('neutron.* through NeutronApi', () => {
  const all = ['subnet_allocation', 'binding', 'security-group', 'standard-attr-tag'];
  const api = (aliases: string[] | Error | 'hang') => ({
    listExtensions: (): Promise<Extension[]> =>
      aliases === 'hang'
        ? new Promise(() => {})
        : aliases instanceof Error
          ? Promise.reject(aliases)
          : Promise.resolve(aliases.map((alias) => ({ alias, name: alias, description: '' }))),
  });
  const byId = (results: { id: string; status: string }[]) => Object.fromEntries(results.map((r) => [r.id, r.status]));

  test('everything present: three ok', async () => {
    assert.deepEqual(byId(await checkNeutron(api(all))), {
      'neutron.reachable': 'ok',
      'neutron.auth': 'ok',
      'neutron.extensions': 'ok',
    });
  });

  test('credentials refused (Neutron 401, or Keystone refusing the token request) fail neutron.auth', async () => {
    for (const err of [
      new NeutronError(401, 'HTTPUnauthorized', 'Authentication required'),
      new KuryrError(
        'KURYR_ERR_NEUTRON',
        'Keystone POST http://k/v3/auth/tokens: authentication failed (401) for user u',
      ),
    ]) {
      assert.ok(isAuthFailure(err));
      const results = await checkNeutron(api(err));
      assert.deepEqual(byId(results), {
        'neutron.reachable': 'ok',
        'neutron.auth': 'fail',
        'neutron.extensions': 'skip',
      });
      assert.match(results[1]!.hint ?? '', /auth_url.*password/);
    }
  });

  test('nobody answers: neutron.reachable fails, the rest is skipped', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5000'), { code: 'ECONNREFUSED' });
    const err = new KuryrError('KURYR_ERR_NEUTRON', 'Keystone GET http://127.0.0.1:5000/v3: connect ECONNREFUSED', {
      cause: refused,
    });
    assert.deepEqual(byId(await checkNeutron(api(err))), {
      'neutron.reachable': 'fail',
      'neutron.auth': 'skip',
      'neutron.extensions': 'skip',
    });
    const hung = await checkNeutron(api('hang'), 50);
    assert.equal(hung[0]!.status, 'fail');
    assert.match(hung[0]!.summary, /no answer within/);
  });

  test('extensions: subnet_allocation and binding are required; tags and security groups warn', () => {
    assert.equal(extensionsVerdict(new Set(all)).status, 'ok');
    assert.equal(extensionsVerdict(new Set(['binding', 'security-group'])).status, 'fail');
    assert.equal(extensionsVerdict(new Set(['subnet_allocation', 'security-group'])).status, 'fail');
    const legacyTags = extensionsVerdict(new Set(['subnet_allocation', 'binding', 'security-group', 'tag', 'tag-ext']));
    assert.equal(legacyTags.status, 'ok');
    const noTags = extensionsVerdict(new Set(['subnet_allocation', 'binding']));
    assert.equal(noTags.status, 'warn');
    assert.match(noTags.summary, /no tag extension.*no security-group/);
  });
});

describe('tools and kernel', () => {
  const root = process.getuid?.() === 0;
  let config: Config;
  before(() => {
    config = configFor('kxo');
  });

  test('tools.ip fails with the package to install when ip is missing', async () => {
    const results = await checkTools(config, path.join(dir, 'no-such-ip'));
    const ip = results.find((r) => r.id === 'tools.ip')!;
    assert.equal(ip.status, 'fail');
    assert.equal(ip.hint, 'apt-get install iproute2');
    assert.equal(results.find((r) => r.id === 'tools.ovs-vsctl')!.status, 'skip', 'embedded: no Open vSwitch');
  });

  test('kernel link types: a module in /sys/module counts as present', async () => {
    for (const m of ['bridge', 'veth', 'vxlan', 'macvlan'])
      mkdirSync(path.join(paths.sysModule, m), { recursive: true });
    const results = await checkKernel(config, paths, path.join(dir, 'no-such-ip'));
    assert.deepEqual(
      results.map((r) => [r.id, r.status]),
      [
        ['kernel.bridge', 'ok'],
        ['kernel.veth', 'ok'],
        ['kernel.vxlan', 'ok'],
        ['kernel.macvlan', 'ok'],
      ],
    );
    for (const m of ['bridge', 'veth', 'vxlan', 'macvlan']) rmSync(path.join(paths.sysModule, m), { recursive: true });
  });

  test('kernel link types: probed in a throw-away namespace that is removed afterwards', {
    skip: !root && 'needs root',
  }, async () => {
    const before = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    const results = await checkKernel(config, paths);
    for (const r of results.filter((x) => x.id === 'kernel.bridge' || x.id === 'kernel.veth')) {
      assert.equal(r.status, 'ok', `${r.id}: ${r.summary}`);
      assert.match(r.summary, /can be created/);
    }
    const leftover = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter((l) => l.startsWith('kxdoctor-') && !before.includes(l));
    assert.deepEqual(leftover, []);
  });
});
