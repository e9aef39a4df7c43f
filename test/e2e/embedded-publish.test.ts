/**
 * Published ports end to end: a private Docker engine and the plugin process, both in a network namespace that
 * plays the host (`HOST`, its own nftables, sysctls and loopback), and an "outside" machine (`OUT`, behind a
 * veth, with no route to the containers). Docker's own bridge driver runs the same scenario side by side in the
 * same engine (with its userland proxy, the engine writes no iptables rules).
 *
 * - `-p 8080:80` answers from outside, from the host's localhost and own address, from a container of the same
 *   network and of another network (hairpin), as the bridge driver's does;
 * - `-p 127.0.0.1:…` answers on the host's loopback only; `-P` gets a free host port;
 * - a port another container publishes, or a host process holds, is refused with a clear error, changing nothing;
 * - after `docker rm` the port stops answering, and once everything is gone no nftables rule is left.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parsePublishState, type PublishedPort } from '../../src/binding/publish.ts';
import { e2eFixture } from '../helpers/e2e.ts';
import { KURYR_BIN } from '../helpers/plugin-process.ts';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function skipReason(): Promise<string | false> {
  if (process.getuid?.() !== 0) return 'needs root (run bash scripts/test.sh as root)';
  for (const [tool, args] of [
    ['nft', ['--version']],
    ['nsenter', ['--version']],
    ['busybox', ['true']],
    ['dockerd', ['--version']],
  ] as const) {
    try {
      await run(tool, [...args]);
    } catch {
      return `needs ${tool}`;
    }
  }
  return false;
}

const skip = await skipReason();

describe('published ports (-p, -P) with the embedded backend, in a private host namespace', { skip }, () => {
  const sfx = Math.random().toString(36).slice(2, 7);
  const HOST = `kxph${sfx}`;
  const OUT = `kxpo${sfx}`;
  const x = 100 + Math.floor(Math.random() * 150);
  const hostIp = `198.18.${x}.1`;
  const outIp = `198.18.${x}.2`;
  const inNs = (ns: string, args: string[]) => run('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8' });
  const env = e2eFixture({
    name: 'pub',
    driverPrefix: 'kxp',
    netns: HOST,
    setup: async () => {
      await run('ip', ['netns', 'add', HOST]);
      await run('ip', ['netns', 'add', OUT]);
      await run('ip', [
        'link',
        'add',
        `kxpH${sfx}`,
        'netns',
        HOST,
        'type',
        'veth',
        'peer',
        'name',
        `kxpO${sfx}`,
        'netns',
        OUT,
      ]);
      for (const [ns, dev, addr] of [
        [HOST, `kxpH${sfx}`, hostIp],
        [OUT, `kxpO${sfx}`, outIp],
      ] as const) {
        await inNs(ns, ['ip', 'link', 'set', 'lo', 'up']);
        await inNs(ns, ['ip', 'address', 'add', `${addr}/24`, 'dev', dev]);
        await inNs(ns, ['ip', 'link', 'set', dev, 'up']);
      }
      await inNs(HOST, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']); // this namespace's own
    },
    conf: `[embedded]\ndefault_pool_prefix_v4 = 10.${x}.0.0/22\ndefault_pool_prefix_v6 = fd00:${x.toString(16)}:0::/48\n`,
    started: async () => {
      await docker(['network', 'create', '-d', driver, '--ipam-driver', driver, 'pub']);
      await docker(['network', 'create', '-d', driver, '--ipam-driver', driver, 'pub2']);
      await docker(['network', 'create', '-d', 'bridge', '--subnet', `10.${x}.200.0/24`, 'bpub']);
      await docker(['network', 'create', '-d', 'bridge', '--subnet', `10.${x}.201.0/24`, 'bpub2']);
    },
    teardown: async ({ engine }) => {
      const ids = (await engine.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
      if (ids.length > 0) await engine.docker(['rm', '-f', ...ids]);
      for (const n of ['pub', 'pub2', 'bpub', 'bpub2']) await engine.docker(['network', 'rm', n]);
      left = await table();
    },
    cleanup: async () => {
      await run('ip', ['netns', 'del', OUT]).catch(() => undefined);
      await run('ip', ['netns', 'del', HOST]).catch(() => undefined);
      assert.equal(left, '', 'no nftables table left in the host namespace');
    },
  });
  const { driver } = env;
  /** the nftables table as the teardown found it, once every container and network was gone */
  let left = '';
  const docker = (args: string[]) => env.engine.dockerOk(args);
  /** What a TCP connection to ip:port reads (busybox nc), '' when nothing answers. */
  const readFrom = async (where: { ns: string } | { container: string }, ip: string, port: number) => {
    const nc = ['nc', '-w', '2', ip, String(port)];
    try {
      if ('ns' in where) return (await inNs(where.ns, ['busybox', ...nc])).stdout.trim();
      const r = await env.engine.docker(['exec', where.container, ...nc], { timeoutMs: 10_000 });
      return r.stdout.trim();
    } catch {
      return '';
    }
  };
  /** Retries a few times (the first connection may race the server's start). */
  const answer = async (where: { ns: string } | { container: string }, ip: string, port: number, want: string) => {
    let got = '';
    for (let i = 0; i < 10 && got !== want; i++) {
      got = await readFrom(where, ip, port);
      if (got !== want) await sleep(300);
    }
    return got;
  };
  const table = async () => {
    try {
      return (await inNs(HOST, ['nft', 'list', 'table', 'inet', 'kuryr_ts'])).stdout;
    } catch {
      return '';
    }
  };
  /** The published ports the kernel holds, read back with the plugin's own parser. */
  const published = async (): Promise<PublishedPort[]> => {
    try {
      const out = (await inNs(HOST, ['nft', '-j', 'list', 'table', 'inet', 'kuryr_ts'])).stdout;
      return parsePublishState(JSON.parse(out), 'kuryr_ts').ports;
    } catch {
      return [];
    }
  };
  /** A server answering `text` on TCP port 80 of a container. */
  const serve = (name: string, net: string, text: string, args: string[] = []) =>
    docker([
      'run',
      '-d',
      '--name',
      name,
      '--net',
      net,
      ...args,
      'busybox:local',
      'nc',
      '-ll',
      '-p',
      '80',
      '-e',
      'echo',
      text,
    ]);
  const ipOf = async (container: string, net: string) =>
    (await docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, container])).trim();

  it('-p 8080:80 answers from outside, localhost, the host address and containers, like the bridge driver', async () => {
    await serve('web', 'pub', 'hello-kuryr', ['-p', '8080:80']);
    await serve('bweb', 'bpub', 'hello-bridge', ['-p', '8081:80']);
    await docker(['run', '-d', '--name', 'cli', '--net', 'pub', 'busybox:local', 'sleep', '3600']);
    await docker(['run', '-d', '--name', 'cli2', '--net', 'pub2', 'busybox:local', 'sleep', '3600']);
    await docker(['run', '-d', '--name', 'bcli', '--net', 'bpub', 'busybox:local', 'sleep', '3600']);
    await docker(['run', '-d', '--name', 'bcli2', '--net', 'bpub2', 'busybox:local', 'sleep', '3600']);
    const webIp = await ipOf('web', 'pub');
    assert.deepEqual(await published(), [
      {
        endpointId: await endpointOf('web', 'pub'),
        bridge: await bridgeOf('pub'),
        proto: 'tcp',
        hostPort: 8080,
        containerIp: webIp,
        containerPort: 80,
      },
    ]);

    type Where = { ns: string } | { container: string };
    // The same scenario for both drivers: [who, the client for kuryr's port, the client for the bridge's].
    const clients: Array<[string, Where, Where]> = [
      ['outside, to the host address', { ns: OUT }, { ns: OUT }],
      ['the host, localhost', { ns: HOST }, { ns: HOST }],
      ['the host, its own address', { ns: HOST }, { ns: HOST }],
      ['a container of the same network', { container: 'cli' }, { container: 'bcli' }],
      ['a container of another network (same driver)', { container: 'cli2' }, { container: 'bcli2' }],
      ['the published container itself', { container: 'web' }, { container: 'bweb' }],
    ];
    const results: string[] = [];
    for (const [who, forKuryr, forBridge] of clients) {
      const ip = 'ns' in forKuryr && forKuryr.ns === HOST && who.includes('localhost') ? '127.0.0.1' : hostIp;
      const kuryr = await answer(forKuryr, ip, 8080, 'hello-kuryr');
      const bridge = await answer(forBridge, ip, 8081, 'hello-bridge');
      results.push(`${who}: kuryr=${kuryr || '(nothing)'} bridge=${bridge || '(nothing)'}`);
    }
    assert.deepEqual(
      results,
      clients.map(([who]) => `${who}: kuryr=hello-kuryr bridge=hello-bridge`),
    );
    // Across drivers: a bridge network's container reaches kuryr's port. A kuryr container does not reach the
    // bridge's, which Docker's userland proxy serves on a host address: isolation lets kuryr containers reach
    // no host address but their gateway ([embedded] allow_host_access = false).
    assert.equal(await answer({ container: 'bcli' }, hostIp, 8080, 'hello-kuryr'), 'hello-kuryr');
    assert.equal(await readFrom({ container: 'cli' }, hostIp, 8081), '');
    // The outside machine has no route to the containers: only the published port reaches them.
    assert.equal(await readFrom({ ns: OUT }, webIp, 80), '');
  });

  it('-p 127.0.0.1:… answers on the loopback only; -P gets a free host port', async () => {
    await serve('local', 'pub', 'hello-local', ['-p', '127.0.0.1:8090:80']);
    assert.equal(await answer({ ns: HOST }, '127.0.0.1', 8090, 'hello-local'), 'hello-local');
    assert.equal(await readFrom({ ns: OUT }, hostIp, 8090), '');
    assert.equal(await readFrom({ ns: HOST }, hostIp, 8090), '');

    await serve('all', 'pub', 'hello-all', ['--expose', '80', '-P']);
    await serve('ball', 'bpub', 'hello-ball', ['--expose', '80', '-P']);
    const ip = await ipOf('all', 'pub');
    const port = (await published()).find((p) => p.containerIp === ip)?.hostPort ?? 0;
    assert.ok(port >= 1024, `-P: a host port was picked (${port})`);
    assert.equal(await answer({ ns: OUT }, hostIp, port, 'hello-all'), 'hello-all');
    // Docker shows the port its own driver picked; a remote driver's it does not show (it only reads its own
    // drivers' port maps), for -p as for -P.
    assert.match(await docker(['port', 'ball', '80']), /0\.0\.0\.0:\d+/);
    assert.equal((await docker(['port', 'all'])).trim(), '');
  });

  it('a port already taken is refused with a clear error and nothing changes', async () => {
    const before = await table();
    const taken = await env.engine.docker([
      'run',
      '-d',
      '--name',
      'dup',
      '--net',
      'pub',
      '-p',
      '8080:80',
      'busybox:local',
      'sleep',
      '3600',
    ]);
    assert.notEqual(taken.code, 0);
    assert.match(taken.stderr, /0\.0\.0\.0:8080\/tcp is already published by endpoint [0-9a-f]{12}/);
    // A host process (here Docker's own proxy for the bridge network's -p 8081) holds the port.
    const proxy = await env.engine.docker([
      'run',
      '-d',
      '--name',
      'dup2',
      '--net',
      'pub',
      '-p',
      '8081:80',
      'busybox:local',
      'sleep',
      '3600',
    ]);
    assert.notEqual(proxy.code, 0);
    assert.match(proxy.stderr, /a host process already uses 0\.0\.0\.0:8081\/tcp/);
    assert.equal(await table(), before);
    assert.equal(await answer({ ns: OUT }, hostIp, 8080, 'hello-kuryr'), 'hello-kuryr');
  });

  it('after docker rm the port stops answering and its rules are gone', async () => {
    const webIp = await ipOf('web', 'pub');
    await docker(['rm', '-f', 'web']);
    assert.equal(await readFrom({ ns: OUT }, hostIp, 8080), '');
    assert.equal(await readFrom({ ns: HOST }, '127.0.0.1', 8080), '');
    assert.ok(!(await published()).some((p) => p.containerIp === webIp), 'its element is gone');
    await docker(['rm', '-f', 'local', 'all']);
    assert.deepEqual(await published(), []);
    assert.doesNotMatch(await table(), /publish_/, 'the publish chains go with the last port');
  });

  async function endpointOf(container: string, net: string): Promise<string> {
    return (
      await docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").EndpointID}}`, container])
    ).trim();
  }
  async function bridgeOf(net: string): Promise<string> {
    const status = JSON.parse(
      (
        await inNs(HOST, [
          KURYR_BIN,
          'status',
          '--json',
          '--state-dir',
          env.stateDir,
          '--driver-name',
          driver,
          '--config',
          env.confFile,
        ])
      ).stdout,
    ) as { networks: { id: string; name: string }[] };
    const id = (await docker(['network', 'inspect', '-f', '{{.ID}}', net])).trim();
    const network = status.networks.find((n) => n.name === `kuryr-net-${id.slice(0, 8)}`);
    assert.ok(network, `network of ${net} in the store`);
    return `brq${network.id.slice(0, 11)}`;
  }
});
