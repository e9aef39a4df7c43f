/**
 * End to end in throwaway network namespaces (root): the agent's bridge holds the gateways, two ports are
 * bound, their container ends moved into namespaces and configured the way Docker does, then IPv4 and IPv6
 * pings go between the namespaces and to the gateway. Nothing of the test may remain afterwards.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { IpCommand } from '../../src/binding/ip-command.ts';
import { LinuxBridgeAgent } from '../../src/binding/linux-bridge-agent.ts';
import { bridgeName, interfaceNames } from '../../src/binding/names.ts';
import { VethBinder } from '../../src/binding/veth-binder.ts';
import type { Port } from '../../src/neutron/types.ts';
import {
  deleteLinks,
  existingLinks,
  findPing,
  freeSubnets,
  ip,
  kernelSkipReason,
  makePort,
  randomId,
  shortSuffix,
  sleep,
  type TestSubnets,
} from './kernel.ts';
import { vifPortOf } from '../../src/driver/port-drivers/veth.ts';

const run = promisify(execFile);
const skip = await kernelSkipReason();
const ping = skip ? undefined : await findPing();

interface Sandbox {
  netns: string;
  port: Port;
  v4: string;
  v6: string;
}

describe('binding end to end in network namespaces', { skip }, () => {
  const agent = new LinuxBridgeAgent();
  const binder = new VethBinder();
  const networkId = randomId();
  const bridge = bridgeName(networkId);
  const suffix = shortSuffix();
  const sandboxes: Sandbox[] = [];
  const netnsCreated: string[] = [];
  let net: TestSubnets;
  let gw4 = '';
  let gw6 = '';

  /** Every host-side device name this test may create. */
  const ourDevices = () => [bridge, ...sandboxes.flatMap((s) => Object.values(interfaceNames(s.port.id)))];

  before(async () => {
    net = await freeSubnets();
    gw4 = `${net.v4}.1`;
    gw6 = `${net.v6}:1`;
    for (const [i, name] of ['a', 'b'].entries()) {
      sandboxes.push({
        netns: `kx-${suffix}-${name}`,
        port: makePort({ network_id: networkId, 'binding:vif_type': 'bridge' }),
        v4: `${net.v4}.${10 + i}`,
        v6: `${net.v6}:${10 + i}`,
      });
    }
    const existingNetns = await run('ip', ['netns', 'list']);
    for (const s of sandboxes) assert.ok(!existingNetns.stdout.includes(s.netns), `netns ${s.netns} already exists`);
    assert.deepEqual(await existingLinks(ourDevices()), []);
  });

  after(async () => {
    // Undo in any state the test stopped in; each step tolerates "already gone".
    const problems: unknown[] = [];
    const attempt = async (step: () => Promise<unknown>) => {
      try {
        await step();
      } catch (err) {
        problems.push(err);
      }
    };
    for (const s of sandboxes) await attempt(() => binder.unbind(vifPortOf(s.port)));
    for (const ns of netnsCreated) await attempt(() => run('ip', ['netns', 'del', ns]));
    await attempt(() => agent.removeNetwork(networkId));
    // A namespace dies asynchronously; devices inside it (and their veth peers) go with it.
    let left = await existingLinks(ourDevices());
    for (let i = 0; i < 20 && left.length > 0; i++) {
      await sleep(100);
      left = await existingLinks(ourDevices());
    }
    if (left.length > 0) await deleteLinks(left);
    const netnsLeft = (await run('ip', ['netns', 'list'])).stdout;
    assert.deepEqual(problems, [], 'cleanup failed');
    assert.deepEqual(left, [], 'devices of the test were left behind');
    for (const ns of netnsCreated) assert.ok(!netnsLeft.includes(ns), `netns ${ns} left behind`);
  });

  test('containers on one network reach each other and the gateway over IPv4 and IPv6', async (t) => {
    await agent.ensureNetwork({
      networkId,
      mtu: 1450,
      gateways: [
        { address: gw4, prefixLength: 24 },
        { address: gw6, prefixLength: 64 },
      ],
    });

    for (const s of sandboxes) {
      const names = await binder.bind({ ...vifPortOf(s.port), mtu: 1450 });
      await run('ip', ['netns', 'add', s.netns]);
      netnsCreated.push(s.netns);
      // What Docker does with the container end: move, rename, address, up, routes.
      await ip.run(['link', 'set', 'dev', names.container, 'netns', s.netns]);
      const inNs = new IpCommand({ netns: s.netns });
      await inNs.run(['link', 'set', 'dev', names.container, 'name', 'eth0']);
      await inNs.run(['addr', 'add', `${s.v4}/24`, 'dev', 'eth0']);
      await inNs.run(['addr', 'add', `${s.v6}/64`, 'dev', 'eth0', 'nodad']);
      await inNs.run(['link', 'set', 'dev', 'eth0', 'up']);
      await inNs.run(['link', 'set', 'dev', 'lo', 'up']);
      await inNs.run(['route', 'add', 'default', 'via', gw4]);
      await inNs.run(['-6', 'route', 'add', 'default', 'via', gw6]);

      // MAC and MTU set at bind time survive the move into the namespace
      const eth0 = await inNs.getLink('eth0');
      assert.equal(eth0?.address, s.port.mac_address.toLowerCase());
      assert.equal(eth0?.mtu, 1450);
      assert.equal((await ip.getLink(names.host))?.master, bridge);
    }
    assert.equal((await ip.listPorts(bridge)).length, 2);

    if (!ping) {
      t.skip('no ping here (install iputils-ping or busybox-static): connectivity not checked');
      return;
    }
    const [a, b] = sandboxes;
    assert.ok(a && b);
    const checks: Array<[Sandbox, string, 4 | 6]> = [
      [a, gw4, 4],
      [b, gw4, 4],
      [a, b.v4, 4],
      [b, a.v4, 4],
      [a, gw6, 6],
      [b, gw6, 6],
      [a, b.v6, 6],
      [b, a.v6, 6],
    ];
    for (const [from, to, family] of checks) {
      if (!(await pingFrom(ping, from.netns, to, family))) {
        const source = family === 4 ? from.v4 : from.v6;
        assert.fail(`ping -${family} from ${from.netns} (${source}) to ${to} failed${await diagnosis()}`);
      }
    }
    // the probe can fail: an address nobody holds does not answer
    assert.equal(await pingFrom(ping, a.netns, `${net.v4}.99`, 4, 1), false, 'ping to an unused address answered');

    // unbinding deletes the host end, and with it the interface inside the container
    await binder.unbind(vifPortOf(a.port));
    assert.equal(await new IpCommand({ netns: a.netns }).getLink('eth0'), undefined);
    assert.equal(await ip.getLink(interfaceNames(a.port.id).host), undefined);
  });
});

/** Ping once, retrying a few times (neighbour discovery may lose the very first packet). */
async function pingFrom(
  ping: string[],
  netns: string,
  target: string,
  family: 4 | 6,
  tries = family === 6 ? 5 : 3,
): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    try {
      await run('ip', ['netns', 'exec', netns, ...ping, `-${family}`, '-c', '1', '-W', '1', target], {
        timeout: 5000,
      });
      return true;
    } catch {
      await sleep(200);
    }
  }
  return false;
}

/** Hints for a failed ping between namespaces: bridged traffic passes iptables when br_netfilter asks it to. */
async function diagnosis(): Promise<string> {
  const hints: string[] = [];
  for (const key of ['bridge-nf-call-iptables', 'bridge-nf-call-ip6tables']) {
    try {
      const value = (await run('sysctl', ['-n', `net.bridge.${key}`])).stdout.trim();
      hints.push(`net.bridge.${key}=${value}`);
    } catch {
      // br_netfilter not loaded: bridged traffic is not filtered
    }
  }
  for (const tool of ['iptables', 'ip6tables']) {
    try {
      const policy = (await run(tool, ['-S', 'FORWARD'])).stdout.split('\n')[0];
      hints.push(`${tool}: ${policy}`);
    } catch {
      // tool missing
    }
  }
  return hints.length > 0 ? ` (${hints.join('; ')})` : '';
}
