/**
 * The embedded backend as a real Docker network, on a host set up the way dockerd leaves it with its default
 * `--iptables=true`: iptables FORWARD policy DROP, ip_forward on (dockerd switches it on), br_netfilter calling
 * iptables for bridged frames. That host is a private network namespace (dockerd and the plugin both run in it,
 * so their firewall changes stay there); "outside" is another namespace behind a veth, with an address on that
 * link only and no route back to the containers: it can only answer masqueraded traffic. A web server there
 * answers with a page.
 *
 * Side by side with Docker's bridge driver where it can do the same: containers on a kuryr network and on a bridge
 * network ping the outside and fetch the page; on an --internal network of either driver they cannot; the MTU
 * option reaches eth0 on both. Then what only the plugin does: its default pool steps around a host route inside
 * its first block, a --subnet over a host route or another network is refused, two containers of one kuryr network
 * talk to each other with no hand-made iptables rule, and a published port (-p) answers from the outside, the
 * host's localhost and other containers, as the bridge driver's does. After teardown no nftables table of ours, no iptables rule,
 * no device is left, and the real host's tables never changed.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pingFrom } from '../helpers/docker-engine.ts';
import { e2eFixture } from '../helpers/e2e.ts';

const notRoot = process.getuid?.() !== 0;
const hasTools = (() => {
  try {
    for (const tool of ['nft', 'iptables', 'nsenter', 'busybox']) execFileSync('which', [tool], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const skip = notRoot ? 'needs root' : !hasTools ? 'needs nft, iptables, nsenter and busybox' : false;

const tag = Math.random().toString(36).slice(2, 8);
const HOST = `kxh${tag}`;
const OUT = `kxo${tag}`;
const x = 100 + Math.floor(Math.random() * 150);
const OUTSIDE = '198.51.100.2';
const OUTSIDE6 = 'fd0b:5100::2';
const PAGE = `hello from outside ${tag}`;

const sh = (file: string, args: string[]) => execFileSync(file, args, { encoding: 'utf8' });
const inHost = (args: string[]) => sh('ip', ['netns', 'exec', HOST, ...args]);
const inOut = (args: string[]) => sh('ip', ['netns', 'exec', OUT, ...args]);

describe('embedded backend on a host with Docker’s default firewall (private host namespace)', { skip }, () => {
  let httpd: ReturnType<typeof spawn> | undefined;
  let rootTablesBefore = '';

  const env = e2eFixture({
    name: 'out',
    driverPrefix: 'kxo',
    netns: HOST,
    engine: { firewall: true },
    setup: () => {
      rootTablesBefore = sh('nft', ['list', 'tables']);
      // The host, as a fresh namespace: ip_forward off until dockerd starts (it then sets FORWARD DROP).
      sh('ip', ['netns', 'add', HOST]);
      sh('ip', ['netns', 'add', OUT]);
      inHost(['ip', 'link', 'set', 'lo', 'up']);
      inOut(['ip', 'link', 'set', 'lo', 'up']);
      inHost(['ip', 'link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'wan', 'netns', OUT]);
      inHost(['ip', 'addr', 'add', '198.51.100.1/24', 'dev', 'uplink']);
      inHost(['ip', '-6', 'addr', 'add', 'fd0b:5100::1/64', 'dev', 'uplink', 'nodad']);
      inHost(['ip', 'link', 'set', 'uplink', 'up']);
      inHost(['ip', 'route', 'add', 'default', 'via', OUTSIDE]);
      inHost(['ip', '-6', 'route', 'add', 'default', 'via', OUTSIDE6]);
      inOut(['ip', 'addr', 'add', `${OUTSIDE}/24`, 'dev', 'wan']);
      inOut(['ip', '-6', 'addr', 'add', `${OUTSIDE6}/64`, 'dev', 'wan', 'nodad']);
      inOut(['ip', 'link', 'set', 'wan', 'up']);
      // br_netfilter on in the host namespace (per namespace on this kernel), as dockerd leaves it.
      inHost(['sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=1', 'net.bridge.bridge-nf-call-ip6tables=1']);
      inHost(['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
      // A host route inside the first block of the plugin's default pool.
      inHost(['ip', 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'lan0p']);
      inHost(['ip', 'link', 'set', 'lan0p', 'up']);
      inHost(['ip', 'link', 'set', 'lan0', 'up']);
      inHost(['ip', 'route', 'add', `10.${x}.0.0/26`, 'dev', 'lan0']);
      // The outside's web server.
      const www = path.join(env.dir, 'www');
      mkdirSync(www);
      writeFileSync(path.join(www, 'index.html'), `${PAGE}\n`);
      httpd = spawn('ip', ['netns', 'exec', OUT, 'busybox', 'httpd', '-f', '-p', `${OUTSIDE}:80`, '-h', www], {
        stdio: 'ignore',
      });
    },
    conf: `[embedded]\ndefault_pool_prefix_v4 = 10.${x}.0.0/22\ndefault_pool_prefix_v6 = fd0b:${x.toString(16)}::/48\n`,
    engineStarted: () => {
      // dockerd sets the FORWARD policy to DROP when it is the one switching ip_forward on; make sure of both.
      inHost(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      inHost(['iptables', '-P', 'FORWARD', 'DROP']);
    },
    removeAll: true,
    cleanup: () => {
      if (httpd?.pid !== undefined) {
        try {
          process.kill(httpd.pid, 'SIGTERM');
        } catch {
          // gone
        }
      }
      for (const ns of [OUT, HOST]) {
        try {
          sh('ip', ['netns', 'del', ns]);
        } catch {
          // not there
        }
      }
      assert.equal(sh('nft', ['list', 'tables']), rootTablesBefore, "the real host's nftables tables changed");
    },
  });
  const { driver } = env;

  const docker = (args: string[]) => env.engine.dockerOk(args);
  const run = (name: string, net: string) =>
    docker(['run', '-d', '--name', name, '--net', net, 'busybox:local', 'sleep', '3600']);
  // An HTTP GET over TCP with busybox nc (busybox-static's wget crashes resolving in a static glibc build).
  const fetch = (container: string) =>
    env.engine.docker([
      'exec',
      container,
      'sh',
      '-c',
      `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${OUTSIDE} 80`,
    ]);
  const pingOnce = (container: string, to: string) =>
    env.engine.docker(['exec', container, 'ping', ...(to.includes(':') ? ['-6'] : []), '-c', '1', '-W', '2', to]);
  const mtuOf = async (container: string) =>
    (await docker(['exec', container, 'cat', '/sys/class/net/eth0/mtu'])).trim();

  it('the host is what dockerd --iptables=true leaves: FORWARD DROP, ip_forward on, br_netfilter on', () => {
    assert.match(inHost(['iptables', '-S', 'FORWARD']), /^-P FORWARD DROP$/m);
    assert.equal(inHost(['sysctl', '-n', 'net.ipv4.ip_forward']).trim(), '1');
    assert.equal(inHost(['sysctl', '-n', 'net.bridge.bridge-nf-call-iptables']).trim(), '1');
    // The outside has no route back to any container network.
    assert.doesNotMatch(inOut(['ip', 'route', 'show']), /default|10\./);
  });

  it('kuryr and bridge side by side: outbound ping and HTTP, the MTU option on eth0', async () => {
    await docker([
      'network',
      'create',
      '-d',
      driver,
      '--ipam-driver',
      driver,
      '--ipv6',
      '-o',
      'com.docker.network.driver.mtu=1400',
      'k-out',
    ]);
    await docker(['network', 'create', '-d', 'bridge', '-o', 'com.docker.network.driver.mtu=1400', 'b-out']);
    await run('k1', 'k-out');
    await run('k2', 'k-out');
    await run('b1', 'b-out');
    for (const c of ['k1', 'b1']) {
      await pingFrom(env.engine, c, OUTSIDE, { context: () => env.plugin.logTail(20) });
      const page = await fetch(c);
      assert.equal(page.code, 0, `${c} fetches the page: ${page.stderr}`);
      assert.match(page.stdout, /^HTTP\/1\.[01] 200/);
      assert.equal(page.stdout.trim().split('\n').at(-1)?.trim(), PAGE);
      assert.equal(await mtuOf(c), '1400', `${c}: the MTU option reaches eth0`);
    }
    // IPv6 (a ULA block of the default v6 pool) is masqueraded too.
    await pingFrom(env.engine, 'k1', OUTSIDE6);
  });

  it('two containers of one kuryr network talk with FORWARD DROP and br_netfilter, without a hand-made rule', async () => {
    const ip2 = (
      await docker(['inspect', '-f', '{{(index .NetworkSettings.Networks "k-out").IPAddress}}', 'k2'])
    ).trim();
    await pingFrom(env.engine, 'k1', ip2);
    // What the plugin added to iptables: two rules for the bridge, in DOCKER-USER.
    const rules = inHost(['iptables', '-S', 'DOCKER-USER'])
      .split('\n')
      .filter((l) => l.includes('kuryr-ts'));
    assert.equal(rules.length, 2, rules.join('\n'));
  });

  it('published ports (-p) answer from the outside, localhost and another container with FORWARD DROP, like the bridge driver', async () => {
    const serve = (name: string, net: string, hostPort: number, text: string) =>
      docker([
        'run',
        '-d',
        '--name',
        name,
        '--net',
        net,
        '-p',
        `${hostPort}:80`,
        'busybox:local',
        'nc',
        '-ll',
        '-p',
        '80',
        '-e',
        'echo',
        text,
      ]);
    await serve('kweb', 'k-out', 8088, `k-${tag}`);
    await serve('bweb', 'b-out', 8089, `b-${tag}`);
    const ask = async (where: 'outside' | 'localhost' | 'k2' | 'b1', port: number): Promise<string> => {
      const args = ['nc', '-w', '3', where === 'localhost' ? '127.0.0.1' : '198.51.100.1', String(port)];
      for (let i = 0; i < 20; i++) {
        let out = '';
        try {
          if (where === 'outside') out = inOut(['busybox', ...args]);
          else if (where === 'localhost') out = inHost(['busybox', ...args]);
          else out = (await env.engine.docker(['exec', where, ...args])).stdout;
        } catch {
          // not answering (yet)
        }
        if (out.trim() !== '') return out.trim();
        await new Promise((r) => setTimeout(r, 250));
      }
      return '';
    };
    for (const where of ['outside', 'localhost', 'k2', 'b1'] as const) {
      assert.equal(await ask(where, 8088), `k-${tag}`, `kuryr's published port answers from ${where}`);
      assert.equal(await ask(where, 8089), `b-${tag}`, `the bridge driver's published port answers from ${where}`);
    }
    await docker(['rm', '-f', 'kweb', 'bweb']);
    assert.equal(await ask('outside', 8088), '', 'nothing answers once the container is gone');
  });

  it('the default pool stepped around the host route in its first block', async () => {
    const subnet = (await docker(['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Subnet}}', 'k-out'])).trim();
    assert.equal(subnet, `10.${x}.1.0/24`);
  });

  it('--internal networks of either driver get no outbound access', async () => {
    await docker(['network', 'create', '-d', driver, '--ipam-driver', driver, '--internal', 'k-int']);
    await docker(['network', 'create', '-d', 'bridge', '--internal', 'b-int']);
    await run('ki', 'k-int');
    await run('bi', 'b-int');
    for (const c of ['ki', 'bi']) {
      assert.notEqual((await pingOnce(c, OUTSIDE)).code, 0, `${c} must not reach the outside`);
      assert.notEqual((await fetch(c)).code, 0, `${c} must not fetch the page`);
    }
    // Its gateway (the host) still answers, as on the bridge driver's internal networks.
    const gw = (await docker(['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Gateway}}', 'k-int'])).trim();
    await pingFrom(env.engine, 'ki', gw);
  });

  it('a --subnet over a host route or over another network is refused with a clear error', async () => {
    const overRoute = await env.engine.docker([
      'network',
      'create',
      '-d',
      driver,
      '--ipam-driver',
      driver,
      '--subnet',
      `10.${x}.0.0/25`,
      'k-bad',
    ]);
    assert.notEqual(overRoute.code, 0);
    assert.match(overRoute.stderr, new RegExp(`overlaps the host's route to 10\\.${x}\\.0\\.0/26 \\(dev lan0\\)`));
    const overNet = await env.engine.docker([
      'network',
      'create',
      '-d',
      driver,
      '--ipam-driver',
      driver,
      '--subnet',
      `10.${x}.1.0/24`,
      'k-bad',
    ]);
    assert.notEqual(overNet.code, 0);
    assert.match(overNet.stderr, /conflicts with network k-out|conflicts with network [0-9a-f]{12}/);
  });

  it('enable_icc=false and bridge.name on both drivers; a plugin restart puts the lost rules back', async () => {
    const kbr = `kxk${tag}`;
    const bbr = `kxb${tag}`;
    const opts = (br: string) => [
      '-o',
      `com.docker.network.bridge.name=${br}`,
      '-o',
      'com.docker.network.bridge.enable_icc=false',
    ];
    await docker(['network', 'create', '-d', driver, '--ipam-driver', driver, ...opts(kbr), 'k-icc']);
    await docker(['network', 'create', '-d', 'bridge', ...opts(bbr), 'b-icc']);
    for (const [prefix, net, br] of [
      ['ki', 'k-icc', kbr],
      ['bi', 'b-icc', bbr],
    ] as const) {
      await run(`${prefix}1`, net);
      await run(`${prefix}2`, net);
      const peer = (
        await docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, `${prefix}2`])
      ).trim();
      assert.notEqual((await pingOnce(`${prefix}1`, peer)).code, 0, `${net}: no traffic between its containers`);
      await pingFrom(env.engine, `${prefix}1`, OUTSIDE);
      assert.match(inHost(['ip', '-o', 'link', 'show', 'master', br]), /veth|tap/, `${br} holds the ports`);
    }
    // The ruleset lost (as by `nft flush ruleset`): a restart of the plugin puts it back, bridge name included.
    inHost(['nft', 'delete', 'table', 'inet', 'kuryr_ts']);
    await env.plugin.restart();
    assert.match(inHost(['nft', 'list', 'set', 'inet', 'kuryr_ts', 'bridges']), new RegExp(kbr));
    await pingFrom(env.engine, 'ki1', OUTSIDE);
    await pingFrom(env.engine, 'k1', OUTSIDE);
  });

  it('after teardown no table, rule or device of the plugin is left in the host namespace', async () => {
    await docker(['rm', '-f', 'k1', 'k2', 'ki', 'b1', 'bi', 'ki1', 'ki2', 'bi1', 'bi2']);
    for (const n of ['k-out', 'k-int', 'b-out', 'b-int', 'k-icc', 'b-icc']) await docker(['network', 'rm', n]);
    assert.doesNotMatch(inHost(['nft', 'list', 'tables']), /kuryr_ts/);
    for (const tool of ['iptables', 'ip6tables']) {
      assert.doesNotMatch(inHost([tool, '-S']), /kuryr-ts/, `${tool} rules left`);
    }
    const links = JSON.parse(inHost(['ip', '-json', 'link', 'show'])) as { ifname: string; ifalias?: string }[];
    assert.deepEqual(
      links
        .filter((l) => l.ifalias === `kuryr-ts:${driver}` || /^(brq|tap)/.test(l.ifname) || l.ifname === `kxk${tag}`)
        .map((l) => l.ifname),
      [],
    );
  });
});
