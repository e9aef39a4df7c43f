// The ways to install kuryr-ts other than the managed plugin (docs/install.md), each checked for real:
// - packaging/systemd/kuryr-ts.service passes `systemd-analyze verify`, and its capability bounding set
//   (CAP_NET_ADMIN only) is enough: the plugin runs the whole Docker flow under exactly that set;
// - the `npm pack` tarball is self-contained: it installs offline into an empty prefix and `kuryr --version` runs;
// - packaging/container/Dockerfile builds (from a base made by build.sh --base-only and `docker import`, no
//   registry), its entrypoint turns the original image's variables into kuryr.conf, and the image run with
//   `--net=host --cap-add=NET_ADMIN` serves a network two containers ping across.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCommand } from '../helpers/docker-engine.ts';
import { e2eFixture } from '../helpers/e2e.ts';
import { KURYR_BIN, pluginCall, REPO_ROOT } from '../helpers/plugin-process.ts';

const notRoot = process.getuid?.() !== 0;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const UNIT = path.join(REPO_ROOT, 'packaging', 'systemd', 'kuryr-ts.service');
const CONTAINER_DIR = path.join(REPO_ROOT, 'packaging', 'container');
const BUILD_SH = path.join(REPO_ROOT, 'packaging', 'managed-plugin', 'build.sh');
/** PATH with this Node first, so npm and bin/kuryr run on Node 24. */
const PATH_WITH_NODE = `${path.dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`;
const VERSION = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function which(cmd: string): string | null {
  for (const dir of `${PATH_WITH_NODE}:/usr/sbin:/sbin`.split(':')) {
    if (dir !== '' && existsSync(path.join(dir, cmd))) return path.join(dir, cmd);
  }
  return null;
}

/** The unit's `Key=value` lines by section (repeated keys kept in order). */
function parseUnit(text: string): Map<string, [string, string][]> {
  const sections = new Map<string, [string, string][]>();
  let current: [string, string][] | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      current = [];
      sections.set(header[1]!, current);
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    assert.ok(kv && current, `unit line is not Key=value inside a section: ${raw}`);
    current.push([kv[1]!, kv[2]!]);
  }
  return sections;
}

/** Runs `npm pack` of this checkout into dir; resolves to the tarball's path. */
async function npmPack(dir: string): Promise<string> {
  const r = await runCommand('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], {
    cwd: REPO_ROOT,
    env: { PATH: PATH_WITH_NODE },
    timeoutMs: 120_000,
  });
  assert.equal(r.code, 0, `npm pack failed: ${r.stderr}`);
  const name = r.stdout.trim().split('\n').pop()!;
  return path.join(dir, name);
}

describe('systemd unit', () => {
  it('has the ordering, restart policy and hardening documented in docs/install.md (parser-level)', () => {
    const unit = parseUnit(readFileSync(UNIT, 'utf8'));
    const get = (section: string, key: string) =>
      (unit.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
    assert.deepEqual(get('Unit', 'Before'), ['docker.service']);
    assert.deepEqual(get('Service', 'Restart'), ['on-failure']);
    assert.match(get('Service', 'ExecStart')[0] ?? '', /^\/usr\/local\/bin\/kuryr serve\b/);
    assert.deepEqual(get('Service', 'CapabilityBoundingSet'), ['CAP_NET_ADMIN']);
    assert.deepEqual(get('Service', 'ProtectSystem'), ['strict']);
    assert.ok(get('Service', 'ReadWritePaths').includes('/run/docker/plugins'));
    assert.deepEqual(get('Service', 'StateDirectory'), ['kuryr']);
    assert.ok(get('Service', 'RestrictAddressFamilies')[0]?.includes('AF_NETLINK'), 'netlink allowed for ip/nft');
    assert.deepEqual(get('Service', 'MemoryDenyWriteExecute'), [], 'V8 needs W+X memory');
    assert.deepEqual(get('Install', 'WantedBy'), ['multi-user.target']);
  });

  const analyze = which('systemd-analyze');
  const units = '/usr/lib/systemd/system';
  it('passes systemd-analyze verify', {
    skip:
      analyze === null
        ? 'systemd-analyze is not installed (Debian package systemd; scripts/setup.sh installs it)'
        : !existsSync(path.join(units, 'sysinit.target'))
          ? `no systemd units in ${units} to verify against`
          : false,
  }, async () => {
    // A throw-away root: the unit where it is installed, an executable at ExecStart's path, systemd's own units.
    const root = mkdtempSync('/tmp/kx-unit-');
    try {
      mkdirSync(path.join(root, 'etc/systemd/system'), { recursive: true });
      mkdirSync(path.join(root, 'usr/local/bin'), { recursive: true });
      mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
      mkdirSync(path.join(root, 'usr/lib/systemd'), { recursive: true });
      copyFileSync(UNIT, path.join(root, 'etc/systemd/system/kuryr-ts.service'));
      writeFileSync(path.join(root, 'usr/local/bin/kuryr'), '#!/bin/sh\n', { mode: 0o755 });
      writeFileSync(path.join(root, 'usr/bin/mkdir'), '#!/bin/sh\n', { mode: 0o755 });
      execFileSync('cp', ['-a', units, path.join(root, 'usr/lib/systemd/system')]);
      const r = await runCommand(analyze!, [
        'verify',
        '--man=no',
        `--root=${root}`,
        '/etc/systemd/system/kuryr-ts.service',
      ]);
      assert.equal(r.code, 0, r.stderr);
      // verify exits 0 on unknown keys and bad values too; it only warns: there must be no warning at all.
      assert.equal(r.stderr.trim(), '', `systemd-analyze verify warnings:\n${r.stderr}`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('npm pack tarball', () => {
  it('is self-contained: installs offline into an empty prefix, and kuryr --version runs', async (t) => {
    const dir = mkdtempSync('/tmp/kx-pack-');
    try {
      const t0 = performance.now();
      const tarball = await npmPack(dir);
      const prefix = path.join(dir, 'prefix');
      // --offline: the production dependencies must come from the tarball (bundleDependencies), not a registry.
      const r = await runCommand(
        'npm',
        ['install', '-g', '--offline', '--no-audit', '--no-fund', '--prefix', prefix, tarball],
        { env: { PATH: PATH_WITH_NODE, npm_config_cache: path.join(dir, 'empty-cache') }, timeoutMs: 120_000 },
      );
      assert.equal(r.code, 0, `npm install of the tarball failed: ${r.stderr}`);
      t.diagnostic(`npm pack + install ${Math.round(performance.now() - t0)} ms`);
      const out = execFileSync(path.join(prefix, 'bin', 'kuryr'), ['--version'], {
        encoding: 'utf8',
        env: { ...process.env, PATH: PATH_WITH_NODE },
      });
      assert.equal(out.trim(), `kuryr-ts ${VERSION}`);
      const help = execFileSync(path.join(prefix, 'bin', 'kuryr'), ['--help'], {
        encoding: 'utf8',
        env: { ...process.env, PATH: PATH_WITH_NODE },
      });
      assert.match(help, /doctor/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('container image and least privilege, on a private dockerd', {
  skip: notRoot ? 'needs root (run bash scripts/test.sh as root)' : false,
}, () => {
  const env = e2eFixture({ name: 'pkg', tmpRoot: '/tmp', plugin: false, removeAll: true });
  const { tag } = env;
  const image = `kx-kuryr-ts:${tag}`;
  const docker = (args: string[], timeoutMs = 120_000) => env.engine.dockerOk(args, { timeoutMs });

  /** Network + two containers that ping each other and the gateway, then teardown; nothing left in the store. */
  async function exerciseDriver(driver: string, stateDir: string, subnet: string): Promise<void> {
    const net = `n-${driver}`;
    await docker(['network', 'create', '-d', driver, '--ipam-driver', driver, net]);
    try {
      const cfg = (await docker(['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Subnet}}', net])).trim();
      assert.equal(cfg, subnet);
      for (const c of ['a', 'b'])
        await docker(['run', '-d', '--name', `${driver}-${c}`, '--net', net, 'busybox:local', 'sleep', '3600']);
      const ipB = (
        await docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, `${driver}-b`])
      ).trim();
      let last = '';
      for (let i = 0; i < 5; i++) {
        const r = await env.engine.docker(['exec', `${driver}-a`, 'ping', '-c', '1', '-W', '2', ipB]);
        if (r.code === 0) {
          last = '';
          break;
        }
        last = r.stdout + r.stderr;
        await sleep(500);
      }
      assert.equal(last, '', `ping ${driver}-a → ${ipB} failed`);
    } finally {
      await env.engine.docker(['rm', '-f', `${driver}-a`, `${driver}-b`]);
      await env.engine.docker(['network', 'rm', net]);
    }
    const st = JSON.parse(
      execFileSync(KURYR_BIN, ['status', '--json', '--state-dir', stateDir], { encoding: 'utf8' }),
    ) as { networks: unknown[]; ports: unknown[] };
    assert.deepEqual([st.networks, st.ports], [[], []], 'teardown left nothing in the store');
  }

  async function waitForSocket(socket: string, alive: () => boolean, log: () => string): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (existsSync(socket)) {
        const r = await pluginCall(socket, 'Plugin.Activate', {}, 2_000).catch(() => undefined);
        if (r?.status === 200) return;
      }
      if (!alive() || Date.now() > deadline) assert.fail(`no answer on ${socket}:\n${log()}`);
      await sleep(200);
    }
  }

  it('the Dockerfile builds from a docker-imported base; its entrypoint resolves and runs kuryr', async (t) => {
    const t0 = performance.now();
    const base = await runCommand('bash', [BUILD_SH, '--base-only', '--out', path.join(env.dir, 'base')], {
      timeoutMs: 300_000,
    });
    assert.equal(base.code, 0, `build.sh --base-only failed: ${base.stderr}`);
    const baseTar = path.join(env.dir, 'base.tar');
    execFileSync('tar', ['--numeric-owner', '-C', path.join(env.dir, 'base', 'rootfs'), '-cf', baseTar, '.']);
    await docker(['import', baseTar, `kx-base:${tag}`]);
    rmSync(path.join(env.dir, 'base'), { recursive: true, force: true });
    rmSync(baseTar);
    const ctx = path.join(env.dir, 'ctx');
    mkdirSync(ctx);
    for (const f of ['Dockerfile', 'entrypoint.sh']) copyFileSync(path.join(CONTAINER_DIR, f), path.join(ctx, f));
    await npmPack(ctx);
    const t1 = performance.now();
    await docker(['build', '--build-arg', `BASE=kx-base:${tag}`, '-t', image, ctx], 300_000);
    t.diagnostic(
      `base rootfs + import ${Math.round(t1 - t0)} ms, docker build ${Math.round(performance.now() - t1)} ms`,
    );
    assert.equal((await docker(['run', '--rm', image, '--version'])).trim(), `kuryr-ts ${VERSION}`);
    const entry = (
      await docker(['image', 'inspect', '-f', '{{json .Config.Entrypoint}} {{json .Config.Cmd}}', image])
    ).trim();
    assert.equal(entry, '["/usr/local/bin/kuryr-entrypoint"] ["serve"]');
  });

  it("the entrypoint writes the original image's variables into kuryr.conf (domains not swapped)", async () => {
    const conf = await docker([
      'run',
      '--rm',
      '-e',
      'SERVICE_USER=alice',
      '-e',
      'SERVICE_PASSWORD=s3cret',
      '-e',
      'SERVICE_PROJECT_NAME=proj',
      '-e',
      'SERVICE_DOMAIN_NAME=pdom',
      '-e',
      'USER_DOMAIN_NAME=udom',
      '-e',
      'IDENTITY_URL=http://keystone.example:5000/v3',
      '--entrypoint',
      'bash',
      image,
      '-c',
      'kuryr-entrypoint --version >/dev/null && cat /tmp/kuryr.conf',
    ]);
    for (const line of [
      '[neutron]',
      'auth_type = password',
      'auth_url = http://keystone.example:5000/v3',
      'username = alice',
      'password = s3cret',
      'project_name = proj',
      'project_domain_name = pdom',
      'user_domain_name = udom',
    ])
      assert.ok(conf.split('\n').includes(line), `${line} in\n${conf}`);
    // The generated file is loaded: an invalid variable is reported by name.
    const bad = await env.engine.docker(['run', '--rm', '-e', 'CAPABILITY_SCOPE=planet', image, 'status']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /CAPABILITY_SCOPE/);
  });

  it('the image runs as the plugin with --net=host --cap-add=NET_ADMIN; two containers ping', async () => {
    const driver = `kxct${tag}`;
    const socket = `/run/docker/plugins/${driver}.sock`;
    const state = path.join(env.dir, 'ct-state');
    const etc = path.join(env.dir, 'ct-etc');
    mkdirSync(state);
    mkdirSync(etc);
    writeFileSync(path.join(etc, 'kuryr.conf'), '[embedded]\ndefault_pool_prefix_v4 = 10.218.0.0/16\n');
    const id = (
      await docker([
        'run',
        '-d',
        '--name',
        driver,
        '--net=host',
        '--cap-add=NET_ADMIN',
        '-v',
        '/run/docker/plugins:/run/docker/plugins',
        '-v',
        `${state}:/var/lib/kuryr`,
        '-v',
        `${etc}:/etc/kuryr:ro`,
        image,
        'serve',
        '--socket',
        socket,
      ])
    ).trim();
    try {
      await waitForSocket(
        socket,
        () => true, // the 30 s deadline covers a container that exited
        () => execFileSync(env.engine.dockerBin, ['-H', env.engine.host, 'logs', id], { encoding: 'utf8' }),
      );
      await exerciseDriver(driver, state, '10.218.0.0/24');
    } finally {
      await env.engine.docker(['stop', '-t', '15', id]);
      await env.engine.docker(['rm', '-f', id]);
    }
    assert.ok(!existsSync(socket), 'the plugin removed its socket on docker stop (SIGTERM to PID 1)');
  });

  it('CAP_NET_ADMIN alone (the unit’s CapabilityBoundingSet) is enough for the whole Docker flow', async () => {
    const setpriv = which('setpriv');
    assert.ok(setpriv, 'setpriv (util-linux) is on every Debian system');
    const driver = `kxcap${tag}`;
    const socket = `/run/docker/plugins/${driver}.sock`;
    const state = path.join(env.dir, 'cap-state');
    const conf = path.join(env.dir, 'cap.conf');
    writeFileSync(conf, '[embedded]\ndefault_pool_prefix_v4 = 10.219.0.0/16\n');
    const logFile = path.join(env.dir, 'cap.log');
    const out: Buffer[] = [];
    const child: ChildProcess = spawn(
      setpriv,
      [
        '--bounding-set=-all,+net_admin',
        '--inh-caps=-all',
        '--',
        KURYR_BIN,
        'serve',
        '--socket',
        socket,
        '--driver-name',
        driver,
        '--state-dir',
        state,
        '--config',
        conf,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH: PATH_WITH_NODE } },
    );
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => out.push(b));
    const alive = () => child.exitCode === null && child.signalCode === null;
    try {
      await waitForSocket(socket, alive, () => Buffer.concat(out).toString('utf8'));
      // bin/kuryr execs node: the pid is the plugin's; its effective set is exactly CAP_NET_ADMIN (bit 12).
      const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1];
      assert.equal(BigInt(`0x${capEff}`), 1n << 12n);
      await exerciseDriver(driver, state, '10.219.0.0/24');
    } finally {
      if (alive()) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      writeFileSync(logFile, Buffer.concat(out));
    }
  });
});
