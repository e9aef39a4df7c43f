// End to end with a real, private Docker engine and the real plugin process on the embedded backend:
// every user flow of issue 3 point 6, with pings between containers, and nothing left behind.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensureBusyboxImage, type PrivateDockerd, startPrivateDockerd } from '../helpers/docker-engine.ts';
import { KURYR_BIN, type PluginProcess, startPlugin } from '../helpers/plugin-process.ts';

const notRoot = process.getuid?.() !== 0;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Host interfaces whose names the plugin owns (tap…, t_c…, brq…). */
function pluginDevices(): string[] {
  const links = JSON.parse(execFileSync('ip', ['-json', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[];
  return links.map((l) => l.ifname).filter((n) => /^(tap|t_c|brq)/.test(n));
}

describe('docker network create/run/connect with the kuryr plugin (embedded backend)', {
  skip: notRoot ? 'needs root (run bash scripts/test.sh as root)' : false,
}, () => {
  const tag = Math.random().toString(36).slice(2, 8);
  const driver = `kx${tag}`;
  let dir: string;
  let engine: PrivateDockerd;
  let plugin: PluginProcess;
  let devicesBefore: string[];
  let pluginArgs: string[];

  const docker = (args: string[]) => engine.dockerOk(args);
  const kuryr = (args: string[]) =>
    execFileSync(
      KURYR_BIN,
      [
        ...args,
        '--state-dir',
        path.join(dir, 'state'),
        '--driver-name',
        driver,
        '--config',
        path.join(dir, 'kuryr.conf'),
      ],
      {
        encoding: 'utf8',
      },
    );
  const status = () =>
    JSON.parse(kuryr(['status', '--json'])) as {
      networks: { id: string; tags: string[] }[];
      ports: { id: string; fixed_ips: { ip_address: string }[]; device_owner: string; tags: string[] }[];
      subnetpools: { name: string }[];
      subnets: { cidr: string }[];
    };
  const netCreate = (name: string, args: string[] = []) =>
    docker(['network', 'create', '-d', driver, '--ipam-driver', driver, ...args, name]);
  const run = (name: string, net: string, args: string[] = []) =>
    docker(['run', '-d', '--name', name, '--net', net, ...args, 'busybox:local', 'sleep', '3600']);
  const ipOf = async (container: string, net: string, v6 = false) =>
    (
      await docker([
        'inspect',
        '-f',
        `{{(index .NetworkSettings.Networks "${net}").${v6 ? 'GlobalIPv6Address' : 'IPAddress'}}}`,
        container,
      ])
    ).trim();
  /** ping with a few retries (IPv6 DAD, first ARP) */
  const ping = async (from: string, to: string) => {
    const args = ['exec', from, 'ping', ...(to.includes(':') ? ['-6'] : []), '-c', '1', '-W', '2', to];
    let last = '';
    for (let i = 0; i < 5; i++) {
      const r = await engine.docker(args);
      if (r.code === 0) return;
      last = r.stdout + r.stderr;
      await sleep(500);
    }
    assert.fail(`ping ${from} → ${to} failed: ${last}`);
  };

  before(async () => {
    devicesBefore = pluginDevices();
    dir = mkdtempSync(path.join(os.tmpdir(), 'kx-e2e-'));
    // A default pool of its own, far from anything on the host.
    writeFileSync(
      path.join(dir, 'kuryr.conf'),
      '[embedded]\ndefault_pool_prefix_v4 = 10.213.0.0/16\ndefault_pool_prefix_v6 = fd00:213::/48\n',
    );
    engine = await startPrivateDockerd({ name: `e2e-${tag}` });
    await ensureBusyboxImage(engine);
    pluginArgs = ['--config', path.join(dir, 'kuryr.conf')];
    plugin = await startPlugin({ driverName: driver, stateDir: path.join(dir, 'state'), extraArgs: pluginArgs });
  });

  after(async () => {
    await engine?.docker(['rm', '-f', ...(await engine.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean)]);
    await engine?.stop({ killContainers: true });
    await plugin?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates a network without --subnet or --gateway from the default pool; two containers ping each other and the gateway', async () => {
    await netCreate('n-default');
    const subnet = (
      await docker([
        'network',
        'inspect',
        '-f',
        '{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}',
        'n-default',
      ])
    ).trim();
    assert.equal(subnet, '10.213.0.0/24 10.213.0.1');
    await run('c1', 'n-default');
    await run('c2', 'n-default');
    const ip2 = await ipOf('c2', 'n-default');
    assert.match(ip2, /^10\.213\.0\.\d+$/);
    await ping('c1', ip2);
    await ping('c1', '10.213.0.1');
    const mtu = (await docker(['exec', 'c1', 'cat', '/sys/class/net/eth0/mtu'])).trim();
    assert.equal(mtu, '1500');
    const st = status();
    assert.equal(st.ports.filter((p) => p.device_owner === 'compute:kuryr').length, 2);
  });

  it('--subnet, --gateway, --ip-range and --ip; an address in use is refused with a clear error', async () => {
    await netCreate('n-static', [
      '--subnet',
      '10.214.0.0/24',
      '--gateway',
      '10.214.0.254',
      '--ip-range',
      '10.214.0.128/26',
    ]);
    await run('s1', 'n-static', ['--ip', '10.214.0.130']);
    await run('s2', 'n-static');
    assert.equal(await ipOf('s1', 'n-static'), '10.214.0.130');
    const ip2 = await ipOf('s2', 'n-static');
    const last = Number(ip2.split('.')[3]);
    assert.ok(last >= 128 && last <= 191, `${ip2} is inside the ip-range`);
    await ping('s2', '10.214.0.130');
    await ping('s1', '10.214.0.254');
    const dup = await engine.docker([
      'run',
      '-d',
      '--name',
      's3',
      '--net',
      'n-static',
      '--ip',
      '10.214.0.130',
      'busybox:local',
      'sleep',
      '60',
    ]);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /already in use/);
    await engine.docker(['rm', '-f', 's3']);
    assert.equal(status().ports.filter((p) => p.fixed_ips.some((f) => f.ip_address === '10.214.0.130')).length, 1);
  });

  it('dual stack: --ipv6 with a v4 and a v6 subnet, --ip6; pings over IPv4 and IPv6', async () => {
    await netCreate('n-dual', ['--ipv6', '--subnet', '10.215.0.0/24', '--subnet', 'fd00:215::/64']);
    await run('d1', 'n-dual', ['--ip6', 'fd00:215::99']);
    await run('d2', 'n-dual');
    assert.equal(await ipOf('d1', 'n-dual', true), 'fd00:215::99');
    const v6 = await ipOf('d2', 'n-dual', true);
    const v4 = await ipOf('d2', 'n-dual');
    assert.match(v6, /^fd00:215::/);
    await ping('d1', v4);
    await ping('d1', v6);
    await ping('d1', 'fd00:215::1');
  });

  it('docker network connect / disconnect', async () => {
    await netCreate('n-extra', ['--subnet', '10.217.0.0/24']);
    await run('x1', 'n-extra');
    await docker(['network', 'connect', 'n-extra', 'c1']);
    const ifaces = await docker(['exec', 'c1', 'ls', '/sys/class/net']);
    assert.match(ifaces, /eth1/);
    await ping('c1', await ipOf('x1', 'n-extra'));
    const portsBefore = status().ports.length;
    await docker(['network', 'disconnect', 'n-extra', 'c1']);
    assert.doesNotMatch(await docker(['exec', 'c1', 'ls', '/sys/class/net']), /eth1/);
    assert.equal(status().ports.length, portsBefore - 1, 'the disconnected endpoint port is gone');
    await ping('c1', await ipOf('c2', 'n-default'));
  });

  it('overlapping CIDRs on two networks through neutron.pool.name', async () => {
    kuryr(['subnetpool', 'create', `poolA-${tag}`, '--prefix', '10.216.0.0/24']);
    kuryr(['subnetpool', 'create', `poolB-${tag}`, '--prefix', '10.216.0.0/24']);
    for (const p of ['A', 'B']) {
      const opt = `neutron.pool.name=pool${p}-${tag}`;
      await netCreate(`n-over${p}`, ['--subnet', '10.216.0.0/24', '-o', opt, '--ipam-opt', opt]);
      await run(`o${p}1`, `n-over${p}`, ['--ip', '10.216.0.10']);
      await run(`o${p}2`, `n-over${p}`, ['--ip', '10.216.0.11']);
    }
    await ping('oA1', '10.216.0.11');
    await ping('oB1', '10.216.0.11');
    const macA = (await docker(['exec', 'oA1', 'cat', '/sys/class/net/eth0/address'])).trim();
    const macB = (await docker(['exec', 'oB1', 'cat', '/sys/class/net/eth0/address'])).trim();
    assert.notEqual(macA, macB, 'two distinct containers hold 10.216.0.10');
  });

  it('a plugin restart, also after kill -9, keeps running containers connected; later teardown succeeds', async () => {
    const ip2 = await ipOf('c2', 'n-default');
    await plugin.restart();
    await ping('c1', ip2);
    await plugin.kill9();
    await plugin.restart();
    await ping('c1', ip2);
    await run('c3', 'n-default');
    await ping('c3', ip2);
    await docker(['rm', '-f', 'c2', 'c3']);
    assert.equal(status().ports.filter((p) => p.fixed_ips.some((f) => f.ip_address === ip2)).length, 0);
  });

  it('after removing every container and network, no device, port, network or pool of ours is left', async () => {
    const ids = (await docker(['ps', '-aq'])).split('\n').filter(Boolean);
    if (ids.length > 0) await docker(['rm', '-f', ...ids]);
    for (const n of ['n-default', 'n-static', 'n-dual', 'n-extra', 'n-overA', 'n-overB'])
      await docker(['network', 'rm', n]);
    kuryr(['subnetpool', 'delete', `poolA-${tag}`]);
    kuryr(['subnetpool', 'delete', `poolB-${tag}`]);
    const st = status();
    assert.deepEqual(st.networks, []);
    assert.deepEqual(st.ports, []);
    assert.deepEqual(st.subnets, []);
    assert.deepEqual(st.subnetpools.map((p) => p.name).sort(), ['kuryr', 'kuryr6'], 'only the default pools remain');
    const leaked = pluginDevices().filter((d) => !devicesBefore.includes(d));
    assert.deepEqual(leaked, []);
  });
});
