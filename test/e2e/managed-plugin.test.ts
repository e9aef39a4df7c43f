// kuryr-ts as a Docker managed (v2) plugin, end to end on a private dockerd: packaging/managed-plugin/build.sh
// builds the plugin from local files, `docker plugin create` + `enable` install it, a network made with
// `-d NAME --ipam-driver NAME` connects two containers that ping each other, and after teardown,
// `docker plugin disable` + `rm` leave no network, port, device, process or socket behind.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pingFrom, processesMentioning, runCommand } from '../helpers/docker-engine.ts';
import { e2eFixture } from '../helpers/e2e.ts';
import { KURYR_BIN, REPO_ROOT } from '../helpers/plugin-process.ts';

const notRoot = process.getuid?.() !== 0;
/** Where dockerd (any exec root) keeps the runtime directory of each managed plugin. */
const MANAGED_SOCKET_ROOT = '/run/docker/plugins';
const BUILD_SH = path.join(REPO_ROOT, 'packaging', 'managed-plugin', 'build.sh');

/** Host interfaces whose names the plugin owns (tap…, t_c…, brq…). */
function pluginDevices(): string[] {
  const links = JSON.parse(execFileSync('ip', ['-json', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[];
  return links.map((l) => l.ifname).filter((n) => /^(tap|t_c|brq)/.test(n));
}

/** After a failed run: deletes the host devices of the networks and ports left in the store at stateDir. */
function removeDevicesOf(stateDir: string): void {
  if (!existsSync(path.join(stateDir, 'kuryr.db'))) return;
  try {
    const st = JSON.parse(
      execFileSync(KURYR_BIN, ['status', '--json', '--state-dir', stateDir], { encoding: 'utf8' }),
    ) as { networks: { id: string }[]; ports: { id: string }[] };
    const names = [
      ...st.ports.map((p) => `tap${p.id.slice(0, 11)}`),
      ...st.networks.map((n) => `brq${n.id.slice(0, 11)}`),
    ];
    for (const dev of names) spawnSync('ip', ['link', 'del', dev], { stdio: 'ignore' });
  } catch {
    // best effort
  }
}

// Docker 20.10 resolves a managed network driver only by its full reference: -d NAME:latest (as the original's
// -d kuryr/libnetwork2:latest).
describe('managed (v2) plugin: build, create, enable, networks, disable, remove', {
  skip: notRoot ? 'needs root (run bash scripts/test.sh as root)' : false,
}, () => {
  const env = e2eFixture({
    name: 'mp',
    tmpRoot: '/tmp',
    plugin: false,
    setup: ({ dir }) => {
      mkdirSync(path.join(dir, 'state'));
      mkdirSync(path.join(dir, 'etc'));
      // The plugin reads /etc/kuryr/kuryr.conf from the `config` mount: a default pool of its own.
      writeFileSync(
        path.join(dir, 'etc', 'kuryr.conf'),
        '[embedded]\ndefault_pool_prefix_v4 = 10.217.0.0/16\ndefault_pool_prefix_v6 = fd00:217::/48\n',
      );
    },
    teardown: async ({ engine }) => {
      const ids = (await engine.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
      if (ids.length > 0) await engine.docker(['rm', '-f', ...ids]);
      await engine.docker(['plugin', 'disable', '-f', ref]);
      await engine.docker(['plugin', 'rm', '-f', ref]);
    },
    // after the engine stopped (the managed plugin with it), before the temp dir goes
    cleanup: ({ dir }) => removeDevicesOf(path.join(dir, 'state')),
  });
  const { tag } = env;
  const name = `kxmp${tag}`;
  const ref = `${name}:latest`;
  /** host devices of this test's network and ports (bridge, veth host ends, container ends) */
  let ownDevices: string[] = [];
  let pluginId = '';

  const docker = (args: string[], timeoutMs?: number) =>
    env.engine.dockerOk(args, timeoutMs === undefined ? {} : { timeoutMs });
  const status = () =>
    JSON.parse(
      execFileSync(KURYR_BIN, ['status', '--json', '--state-dir', path.join(env.dir, 'state')], { encoding: 'utf8' }),
    ) as { networks: { id: string }[]; ports: { id: string }[]; subnets: unknown[]; subnetpools: { name: string }[] };
  const ping = (from: string, to: string) => pingFrom(env.engine, from, to);

  it('build.sh makes config.json and a rootfs from local files; docker plugin create installs it', async (t) => {
    const t0 = performance.now();
    const build = await runCommand('bash', [BUILD_SH, '--no-build', '--out', path.join(env.dir, 'plugin')], {
      timeoutMs: 300_000,
    });
    assert.equal(build.code, 0, `build.sh failed:\n${build.stderr}`);
    const built = performance.now();
    for (const f of [
      'config.json',
      'rootfs/usr/local/bin/node',
      'rootfs/usr/sbin/ip',
      'rootfs/opt/kuryr-ts/dist/cli/main.js',
    ])
      assert.ok(existsSync(path.join(env.dir, 'plugin', f)), `${f} in the plugin dir`);
    await docker(['plugin', 'create', name, path.join(env.dir, 'plugin')], 300_000);
    t.diagnostic(
      `build.sh ${Math.round(built - t0)} ms, docker plugin create ${Math.round(performance.now() - built)} ms`,
    );
    pluginId = (await docker(['plugin', 'inspect', '-f', '{{.Id}}', ref])).trim();
    const caps = (await docker(['plugin', 'inspect', '-f', '{{json .Config.Interface}} {{.Config.Network.Type}}', ref]))
      .trim()
      .split(' ');
    assert.match(caps[0]!, /docker\.networkdriver\/1\.0/);
    assert.match(caps[0]!, /docker\.ipamdriver\/1\.0/);
    assert.equal(caps[1], 'host');
  });

  it('enables with a state dir and config dir of its own and answers as network and IPAM driver', async (t) => {
    await docker([
      'plugin',
      'set',
      ref,
      `state.source=${path.join(env.dir, 'state')}`,
      `config.source=${path.join(env.dir, 'etc')}`,
      'LOG_LEVEL=debug',
    ]);
    const t0 = performance.now();
    await docker(['plugin', 'enable', ref], 120_000);
    t.diagnostic(`docker plugin enable ${Math.round(performance.now() - t0)} ms`);
    assert.equal((await docker(['plugin', 'inspect', '-f', '{{.Enabled}}', ref])).trim(), 'true');
    // The socket lives under the engine's exec root: <exec-root>/plugins/<id>/kuryr.sock
    // dockerd puts managed plugins' sockets in /run/docker/plugins/<id>/ whatever its exec root.
    assert.ok(existsSync(path.join(MANAGED_SOCKET_ROOT, pluginId, 'kuryr.sock')), 'plugin socket');
  });

  it('kuryr doctor on the host recognises the managed plugin and finds it answering', () => {
    const r = spawnSync(
      KURYR_BIN,
      [
        'doctor',
        '--json',
        '--driver-name',
        name,
        '--state-dir',
        path.join(env.dir, 'state'),
        '--docker-host',
        env.engine.host,
      ],
      { encoding: 'utf8' },
    );
    const report = JSON.parse(r.stdout) as { checks: { id: string; status: string; summary: string }[] };
    const check = (id: string) => report.checks.find((c) => c.id === id)!;
    assert.equal(check('plugin.name').status, 'ok', check('plugin.name').summary);
    assert.match(check('plugin.name').summary, new RegExp(`${ref} is the managed kuryr-ts plugin \\(enabled\\)`));
    assert.equal(check('plugin.socket').status, 'ok', check('plugin.socket').summary);
    assert.match(check('plugin.socket').summary, /answers Plugin\.Activate \(NetworkDriver, IpamDriver\)/);
  });

  it('docker network create -d NAME --ipam-driver NAME; two containers ping each other and the gateway', async () => {
    await docker(['network', 'create', '-d', ref, '--ipam-driver', ref, 'mpnet']);
    const cfg = (
      await docker([
        'network',
        'inspect',
        '-f',
        '{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}',
        'mpnet',
      ])
    ).trim();
    assert.equal(cfg, '10.217.0.0/24 10.217.0.1');
    await docker(['run', '-d', '--name', 'm1', '--net', 'mpnet', 'busybox:local', 'sleep', '3600']);
    await docker(['run', '-d', '--name', 'm2', '--net', 'mpnet', 'busybox:local', 'sleep', '3600']);
    const ip2 = (await docker(['inspect', '-f', '{{.NetworkSettings.Networks.mpnet.IPAddress}}', 'm2'])).trim();
    assert.match(ip2, /^10\.217\.0\.\d+$/);
    await ping('m1', ip2);
    await ping('m2', '10.217.0.1');
    // The store is the host directory of the `state` mount.
    const st = status();
    assert.equal(st.networks.length, 1);
    assert.equal(st.ports.length, 2);
    ownDevices = [
      ...st.networks.map((n) => `brq${n.id.slice(0, 11)}`),
      ...st.ports.flatMap((p) => [`tap${p.id.slice(0, 11)}`, `t_c${p.id.slice(0, 11)}`]),
    ];
    const present = pluginDevices();
    assert.ok(ownDevices.filter((d) => d.startsWith('t')).every((d) => d.startsWith('t_c') || present.includes(d)));
    assert.ok(present.includes(ownDevices[0]!), 'the network bridge exists');
  });

  it('teardown, disable and remove leave no network, port, device, process or socket', async () => {
    await docker(['rm', '-f', 'm1', 'm2']);
    await docker(['network', 'rm', 'mpnet']);
    const st = status();
    assert.deepEqual(st.networks, [], 'no network left in the store');
    assert.deepEqual(st.ports, [], 'no port left in the store');
    assert.deepEqual(st.subnets, [], 'no subnet left in the store');
    assert.deepEqual(st.subnetpools.map((p) => p.name).sort(), ['kuryr', 'kuryr6']);
    await docker(['plugin', 'disable', ref], 60_000);
    await docker(['plugin', 'rm', ref], 60_000);
    assert.equal((await env.engine.docker(['plugin', 'inspect', ref])).code, 1, 'plugin removed');
    // Only this test's devices: other plugins on the host may create and delete theirs meanwhile.
    assert.deepEqual(
      pluginDevices().filter((d) => ownDevices.includes(d)),
      [],
      'no host device left',
    );
    assert.deepEqual(processesMentioning(pluginId), [], 'no process of the plugin left');
    assert.ok(!readdirSync(MANAGED_SOCKET_ROOT).includes(pluginId), 'plugin runtime dir removed');
  });
});
