/**
 * Published ports against the real kernel, without Docker: the isolation bench (a private namespace playing
 * the host, networks A and B with "containers" a1, a2 on A and b1 on B, isolation on) plus an "outside"
 * namespace behind a veth with no route to the containers. socat serves TCP, UDP (and SCTP when the kernel
 * has it) in a1; NftPublisher (in the host namespace) publishes them. Each protocol answers from outside, from
 * the host's localhost and own address, from a container of the same and of the other network, and from a1
 * itself; once unpublished nothing answers, and no `publish_` object is left while isolation's stay intact.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { DEFAULT_ISOLATION_TABLE } from '../../src/binding/isolation.ts';
import { NftPublisher, type Transport } from '../../src/binding/publish.ts';
import { isolationSkipReason, Lab, otherTables } from './isolation-lab.ts';
import { randomId, shortSuffix, sleep } from './kernel.ts';

const run = promisify(execFile);

async function skipReason(): Promise<string | false> {
  const base = await isolationSkipReason();
  if (base) return base;
  try {
    await run('socat', ['-V']);
  } catch {
    return 'needs socat';
  }
  return false;
}
const skip = await skipReason();

describe('published ports in a private host namespace (real kernel)', { skip }, () => {
  const lab = new Lab({ hostNetns: `kxh-${shortSuffix()}-pub`, table: DEFAULT_ISOLATION_TABLE });
  const sfx = lab.suffix;
  const OUT = `kxq-${sfx}-out`;
  const y = 100 + Math.floor(Math.random() * 150);
  const hostIp = `198.18.${y}.1`;
  const servers: ChildProcess[] = [];
  let publisher: NftPublisher;
  let realHostBefore = '';
  let sctp = false;
  const endpoint = randomId().replace(/-/g, '').padEnd(64, '0').slice(0, 64);

  const inNs = (ns: string, args: string[], input?: string) =>
    new Promise<string>((resolve) => {
      const child = execFile('ip', ['netns', 'exec', ns, ...args], { timeout: 5_000 }, (_err, stdout) =>
        resolve(String(stdout ?? '').trim()),
      );
      child.stdin?.end(input ?? '');
    });
  const serve = (ns: string, address: string, text: string) => {
    const child = spawn('ip', ['netns', 'exec', ns, 'socat', address, `SYSTEM:echo ${text}`], {
      stdio: 'ignore',
      detached: true,
    });
    servers.push(child);
  };
  /** What one exchange with ip:port reads over `proto` (socat), '' when nothing answers. */
  const ask = (ns: string, proto: Transport, ip: string, port: number) => {
    const target = proto === 'tcp' ? `TCP:${ip}:${port}` : proto === 'udp' ? `UDP:${ip}:${port}` : `SCTP:${ip}:${port}`;
    return inNs(ns, ['socat', '-T', '1', '-', target], 'ping\n');
  };
  const answer = async (ns: string, proto: Transport, ip: string, port: number, want: string) => {
    let got = '';
    for (let i = 0; i < 5 && got !== want; i++) {
      got = await ask(ns, proto, ip, port);
      if (got !== want) await sleep(200);
    }
    return got;
  };

  before(async () => {
    realHostBefore = await otherTables(DEFAULT_ISOLATION_TABLE);
    await lab.setup();
    const H = lab.options.hostNetns!;
    await run('ip', ['netns', 'add', OUT]);
    await run('ip', [
      'link',
      'add',
      `kxq${sfx}h`,
      'netns',
      H,
      'type',
      'veth',
      'peer',
      'name',
      `kxq${sfx}o`,
      'netns',
      OUT,
    ]);
    await inNs(H, ['ip', 'address', 'add', `${hostIp}/24`, 'dev', `kxq${sfx}h`]);
    await inNs(H, ['ip', 'link', 'set', `kxq${sfx}h`, 'up']);
    await inNs(OUT, ['ip', 'address', 'add', `198.18.${y}.2/24`, 'dev', `kxq${sfx}o`]);
    await inNs(OUT, ['ip', 'link', 'set', `kxq${sfx}o`, 'up']);
    await inNs(OUT, ['ip', 'link', 'set', 'lo', 'up']);
    publisher = new NftPublisher({ netns: H });
    const a1 = lab.a1.netns;
    serve(a1, 'TCP-LISTEN:80,fork,reuseaddr', 'tcp-a1');
    serve(a1, 'UDP-RECVFROM:53,fork', 'udp-a1');
    // SCTP only where the kernel has it (socat fails at once otherwise).
    const probe = spawn('ip', ['netns', 'exec', a1, 'socat', 'SCTP-LISTEN:9,fork,reuseaddr', 'SYSTEM:echo sctp-a1'], {
      stdio: 'ignore',
      detached: true,
    });
    servers.push(probe);
    await sleep(500);
    sctp = probe.exitCode === null;
  });

  after(async () => {
    for (const s of servers) {
      try {
        if (s.pid !== undefined && s.exitCode === null) process.kill(-s.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await publisher?.unpublish(endpoint).catch(() => undefined);
    await run('ip', ['netns', 'del', OUT]).catch(() => undefined);
    const problems = await lab.cleanup();
    assert.deepEqual(problems, [], 'cleanup failed');
    assert.equal(await otherTables(DEFAULT_ISOLATION_TABLE), realHostBefore, "the real host's tables changed");
  });

  test('TCP, UDP (and SCTP) answer from outside, localhost, the host and containers; nothing once unpublished', async () => {
    const { a1, a2, b1 } = lab;
    const H = lab.options.hostNetns!;
    const protos: Array<[Transport, number, number]> = [
      ['tcp', 8080, 80],
      ['udp', 5353, 53],
      ...(sctp ? [['sctp', 9009, 9] as [Transport, number, number]] : []),
    ];
    const isolationBefore = await lab.tableJson();
    const published = await publisher.publish({
      endpointId: endpoint,
      bridge: a1.network.bridge,
      hostDevice: a1.hostDev,
      containerIp: a1.v4,
      mappings: protos.map(([proto, hostPort, containerPort]) => ({
        proto,
        containerPort,
        hostPort,
        hostPortEnd: hostPort,
      })),
    });
    assert.equal(published.length, protos.length);
    assert.equal((await lab.host(['sysctl', '-n', `net.ipv4.conf.${a1.network.bridge}.route_localnet`])).trim(), '1');

    const clients: Array<[string, string, string]> = [
      ['outside', OUT, hostIp],
      ['host localhost', H, '127.0.0.1'],
      ['host address', H, hostIp],
      ['same network', a2.netns, hostIp],
      ['other network', b1.netns, hostIp],
      ['itself', a1.netns, hostIp],
      ['its own gateway', a2.netns, a1.network.gw4],
    ];
    const got: string[] = [];
    const want: string[] = [];
    for (const [proto, hostPort] of protos) {
      for (const [who, ns, ip] of clients) {
        got.push(`${proto} ${who}: ${await answer(ns, proto, ip, hostPort, `${proto}-a1`)}`);
        want.push(`${proto} ${who}: ${proto}-a1`);
      }
    }
    assert.deepEqual(got, want);
    // Outside has no route to the container: only the published port reaches it.
    assert.equal(await ask(OUT, 'tcp', a1.v4, 80), '');
    // A container still cannot reach the host's loopback (route_localnet is on, the guard drops it).
    assert.equal(await ask(a2.netns, 'tcp', '127.0.0.1', 8080), '');

    assert.equal((await publisher.unpublish(endpoint)).length, protos.length);
    for (const [proto, hostPort] of protos) {
      assert.equal(await ask(OUT, proto, hostIp, hostPort), '', `${proto} after unpublish`);
      assert.equal(await ask(H, proto, '127.0.0.1', hostPort), '', `${proto} localhost after unpublish`);
    }
    assert.equal((await lab.host(['sysctl', '-n', `net.ipv4.conf.${a1.network.bridge}.route_localnet`])).trim(), '0');
    const after = await lab.tableJson();
    assert.doesNotMatch(after, /publish_/);
    assert.equal(stripHandles(after), stripHandles(isolationBefore), "isolation's part of the table is unchanged");
  });
});

function stripHandles(json: string): string {
  return json.replace(/"handle":\s*\d+,?/g, '');
}
