// End to end with a real, private Docker engine and the real plugin process on the embedded backend:
// every user flow of issue 3 point 6, with pings between containers, and nothing left behind.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { pingFrom } from '../helpers/docker-engine.ts';
import { e2eFixture } from '../helpers/e2e.ts';
import { KURYR_BIN } from '../helpers/plugin-process.ts';

const notRoot = process.getuid?.() !== 0;

/** Host interfaces this plugin instance created: they carry its owner alias (see binding/names.ts). */
function pluginDevices(driver: string): string[] {
  const links = JSON.parse(execFileSync('ip', ['-json', 'link', 'show'], { encoding: 'utf8' })) as {
    ifname: string;
    ifalias?: string;
  }[];
  return links.filter((l) => l.ifalias === `kuryr-ts:${driver}`).map((l) => l.ifname);
}

describe('docker network create/run/connect with the kuryr plugin (embedded backend)', {
  skip: notRoot ? 'needs root (run bash scripts/test.sh as root)' : false,
}, () => {
  // Address ranges of this run: a random 10.X block, so a parallel or crashed run never collides with it.
  const x = 100 + Math.floor(Math.random() * 150);
  const net = (n: number) => `10.${x}.${n}`;
  const v6 = (n: number) => `fd00:${x.toString(16)}:${n}`;
  const env = e2eFixture({
    name: 'e2e',
    // A default pool of its own, far from anything on the host.
    conf: `[embedded]\ndefault_pool_prefix_v4 = ${net(0)}.0/22\ndefault_pool_prefix_v6 = ${v6(0)}::/48\n`,
    removeAll: true,
  });
  const { tag, driver } = env;

  const docker = (args: string[]) => env.engine.dockerOk(args);
  const kuryr = (args: string[]) =>
    execFileSync(KURYR_BIN, [...args, '--state-dir', env.stateDir, '--driver-name', driver, '--config', env.confFile], {
      encoding: 'utf8',
    });
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
  const ping = (from: string, to: string) => pingFrom(env.engine, from, to);

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
    assert.equal(subnet, `${net(0)}.0/24 ${net(0)}.1`);
    await run('c1', 'n-default');
    await run('c2', 'n-default');
    const ip2 = await ipOf('c2', 'n-default');
    assert.ok(ip2.startsWith(`${net(0)}.`), ip2);
    await ping('c1', ip2);
    await ping('c1', `${net(0)}.1`);
    const mtu = (await docker(['exec', 'c1', 'cat', '/sys/class/net/eth0/mtu'])).trim();
    assert.equal(mtu, '1500');
    const st = status();
    assert.equal(st.ports.filter((p) => p.device_owner === 'compute:kuryr').length, 2);
    assert.equal(pluginDevices(driver).length, 3, 'one bridge and two tap devices, marked as ours');
  });

  it('--subnet, --gateway, --ip-range and --ip; an address in use is refused with a clear error', async () => {
    await netCreate('n-static', [
      '--subnet',
      `${net(4)}.0/24`,
      '--gateway',
      `${net(4)}.254`,
      '--ip-range',
      `${net(4)}.128/26`,
    ]);
    await run('s1', 'n-static', ['--ip', `${net(4)}.130`]);
    await run('s2', 'n-static');
    assert.equal(await ipOf('s1', 'n-static'), `${net(4)}.130`);
    const ip2 = await ipOf('s2', 'n-static');
    const last = Number(ip2.split('.')[3]);
    assert.ok(last >= 128 && last <= 191, `${ip2} is inside the ip-range`);
    await ping('s2', `${net(4)}.130`);
    await ping('s1', `${net(4)}.254`);
    const dup = await env.engine.docker([
      'run',
      '-d',
      '--name',
      's3',
      '--net',
      'n-static',
      '--ip',
      `${net(4)}.130`,
      'busybox:local',
      'sleep',
      '60',
    ]);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /already in use/);
    await env.engine.docker(['rm', '-f', 's3']);
    assert.equal(status().ports.filter((p) => p.fixed_ips.some((f) => f.ip_address === `${net(4)}.130`)).length, 1);
  });

  it('dual stack: --ipv6 with a v4 and a v6 subnet, --ip6; pings over IPv4 and IPv6', async () => {
    await netCreate('n-dual', ['--ipv6', '--subnet', `${net(5)}.0/24`, '--subnet', `${v6(5)}::/64`]);
    await run('d1', 'n-dual', ['--ip6', `${v6(5)}::99`]);
    await run('d2', 'n-dual');
    assert.equal(await ipOf('d1', 'n-dual', true), `${v6(5)}::99`);
    const v6addr = await ipOf('d2', 'n-dual', true);
    const v4 = await ipOf('d2', 'n-dual');
    assert.ok(v6addr.startsWith(`${v6(5)}::`), v6addr);
    await ping('d1', v4);
    await ping('d1', v6addr);
    await ping('d1', `${v6(5)}::1`);
  });

  it('docker network connect / disconnect', async () => {
    await netCreate('n-extra', ['--subnet', `${net(7)}.0/24`]);
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

  it('the same CIDR on two networks is refused, also through neutron.pool.name (the host is every gateway)', async () => {
    kuryr(['subnetpool', 'create', `poolA-${tag}`, '--prefix', `${net(6)}.0/24`]);
    kuryr(['subnetpool', 'create', `poolB-${tag}`, '--prefix', `${net(6)}.0/24`]);
    const opt = (p: string) => `neutron.pool.name=pool${p}-${tag}`;
    await netCreate('n-overA', ['--subnet', `${net(6)}.0/24`, '-o', opt('A'), '--ipam-opt', opt('A')]);
    await run('oA1', 'n-overA', ['--ip', `${net(6)}.10`]);
    const second = await env.engine.docker([
      'network',
      'create',
      '-d',
      driver,
      '--ipam-driver',
      driver,
      '--subnet',
      `${net(6)}.0/24`,
      '-o',
      opt('B'),
      '--ipam-opt',
      opt('B'),
      'n-overB',
    ]);
    assert.notEqual(second.code, 0);
    assert.match(second.stderr, /conflicts with network (n-overA|[0-9a-f]{12})/);
    await ping('oA1', `${net(6)}.1`);
  });

  it('a plugin restart, also after kill -9, keeps running containers connected; later teardown succeeds', async () => {
    const ip2 = await ipOf('c2', 'n-default');
    await env.plugin.restart();
    await ping('c1', ip2);
    await env.plugin.kill9();
    await env.plugin.restart();
    await ping('c1', ip2);
    await run('c3', 'n-default');
    await ping('c3', ip2);
    await docker(['rm', '-f', 'c2', 'c3']);
    assert.equal(status().ports.filter((p) => p.fixed_ips.some((f) => f.ip_address === ip2)).length, 0);
  });

  it('after removing every container and network, no device, port, network or pool of ours is left', async () => {
    const ids = (await docker(['ps', '-aq'])).split('\n').filter(Boolean);
    if (ids.length > 0) await docker(['rm', '-f', ...ids]);
    for (const n of ['n-default', 'n-static', 'n-dual', 'n-extra', 'n-overA']) await docker(['network', 'rm', n]);
    kuryr(['subnetpool', 'delete', `poolA-${tag}`]);
    kuryr(['subnetpool', 'delete', `poolB-${tag}`]);
    const st = status();
    assert.deepEqual(st.networks, []);
    assert.deepEqual(st.ports, []);
    assert.deepEqual(st.subnets, []);
    assert.deepEqual(st.subnetpools.map((p) => p.name).sort(), ['kuryr', 'kuryr6'], 'only the default pools remain');
    assert.deepEqual(pluginDevices(driver), [], 'no tap/brq device of this plugin instance is left');
  });
});
