/**
 * LinuxBridgeAgent's host commands without a kernel: a fake `ip` and fake isolation and firewall record what runs,
 * so the cost of a network's bridge is checked: a new bridge is made without a lookup first and without reading
 * back its (absent) addresses; the nftables table and the host's iptables are set up at once, before the bridge is
 * up, and cleared at once after it is gone; the host's routes are read one family at a time, both at once. No root
 * needed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CommandRunner } from '../../src/binding/exec.ts';
import type { HostFirewall } from '../../src/binding/host-firewall.ts';
import { RecentHostRoutes } from '../../src/binding/host-routes.ts';
import { IpCommand } from '../../src/binding/ip-command.ts';
import type { NetworkIsolation } from '../../src/binding/isolation.ts';
import { LinuxBridgeAgent } from '../../src/binding/linux-bridge-agent.ts';

const NETWORK = '7b166132-cf00-4000-8000-000000000001';
const BRIDGE = 'brq7b166132-cf';

/** Everything that happened, in order: `ip …` (with a batch's lines), `isolation …`, `firewall …`. */
function fakeHost(opts: { bridgeExists?: boolean; deleteFails?: boolean } = {}) {
  const log: string[] = [];
  let exists = opts.bridgeExists ?? false;
  let inFlight = 0;
  let most = 0;
  const exec: CommandRunner = async (_file, args, { input }) => {
    const lines = (input ?? '').trim();
    log.push(`ip ${args.join(' ')}${lines === '' ? '' : ` < ${lines.replaceAll('\n', '; ')}`}`);
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise((r) => setImmediate(r));
    inFlight--;
    if (args.includes('-batch')) {
      if (lines.startsWith('link add') && exists) {
        throw Object.assign(new Error('exit 2'), {
          code: 2,
          stderr: 'RTNETLINK answers: File exists\nCommand failed -:1\n',
        });
      }
      if (lines.startsWith('link add')) exists = true;
      return { stdout: '', stderr: '' };
    }
    if (args.includes('link') && args.includes('show')) {
      if (!exists) throw Object.assign(new Error('exit 1'), { code: 1, stderr: `Device "${BRIDGE}" does not exist.` });
      const link = { ifindex: 7, ifname: BRIDGE, mtu: 1500, flags: [], linkinfo: { info_kind: 'bridge' } };
      return { stdout: JSON.stringify([link]), stderr: '' };
    }
    if (args.includes('link') && args.includes('del')) {
      // The kernel takes its time to delete a bridge.
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      log.push('ip link del: done');
      if (opts.deleteFails) throw Object.assign(new Error('exit 2'), { code: 2, stderr: 'RTNETLINK answers: Busy' });
      exists = false;
      return { stdout: '', stderr: '' };
    }
    if (args.includes('addr')) return { stdout: JSON.stringify([{ ifname: BRIDGE, addr_info: [] }]), stderr: '' };
    if (args.includes('route')) {
      const dst = args.includes('-6') ? 'fd00:1::/64' : '192.168.1.0/24';
      return { stdout: JSON.stringify([{ dst, dev: 'eth0' }]), stderr: '' };
    }
    return { stdout: '', stderr: '' };
  };
  const step = async (what: string) => {
    log.push(what);
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise((r) => setImmediate(r));
    inFlight--;
  };
  const isolation: NetworkIsolation = {
    ensureNetwork: (bridge) => step(`isolation ensure ${bridge}`),
    removeNetwork: (bridge) => step(`isolation remove ${bridge}`),
  };
  const firewall: HostFirewall = {
    ensureNetwork: (bridge) => step(`firewall ensure ${bridge}`),
    removeNetwork: (bridge) => step(`firewall remove ${bridge}`),
  };
  const agent = new LinuxBridgeAgent({ ip: new IpCommand({ exec }), isolation, firewall });
  return {
    agent,
    exec,
    log,
    mostAtOnce: () => most,
    resetMost: () => {
      most = 0;
    },
  };
}

const GATEWAYS = [{ address: '10.1.0.1', prefixLength: 24 }];

describe('LinuxBridgeAgent: the host commands of a network', () => {
  test('a new bridge: made at once (no lookup first), isolated and firewalled together before it is up, no address read back', async () => {
    const host = fakeHost();
    await host.agent.ensureNetwork({ networkId: NETWORK, mtu: 1500, gateways: GATEWAYS });
    assert.deepEqual(host.log, [
      `ip -batch - < link add name ${BRIDGE} type bridge forward_delay 0 stp_state 0`,
      `isolation ensure ${BRIDGE}`,
      `firewall ensure ${BRIDGE}`,
      `ip -batch - < link set dev ${BRIDGE} mtu 1500 up`,
      `ip -batch - < addr replace 10.1.0.1/24 dev ${BRIDGE}`,
    ]);
    assert.equal(host.mostAtOnce(), 2, 'isolation and firewall at once');
  });

  test('an existing bridge: looked up after the kernel says it exists, repaired, its addresses read', async () => {
    const host = fakeHost({ bridgeExists: true });
    await host.agent.ensureNetwork({ networkId: NETWORK, mtu: 1500, gateways: GATEWAYS });
    assert.equal(host.log[0], `ip -batch - < link add name ${BRIDGE} type bridge forward_delay 0 stp_state 0`);
    assert.equal(host.log[1], `ip -json -details link show dev ${BRIDGE}`);
    assert.ok(host.log.includes(`ip -json addr show dev ${BRIDGE}`));
    assert.ok(host.log.some((l) => l.includes('stp_state 0') && l.includes('link set')));
  });

  test('removeNetwork: the bridge down first, then its deletion and the removal of its rules at once', async () => {
    const host = fakeHost({ bridgeExists: true });
    await host.agent.removeNetwork(NETWORK);
    const at = (line: string) => host.log.indexOf(line);
    assert.equal(host.log[0], `ip -json -details link show dev ${BRIDGE}`);
    assert.equal(host.log[1], `ip -batch - < link set dev ${BRIDGE} down`);
    assert.ok(at(`ip link del dev ${BRIDGE}`) > 1);
    for (const rules of [`firewall remove ${BRIDGE}`, `isolation remove ${BRIDGE}`]) {
      assert.ok(at(rules) > 1 && at(rules) < at('ip link del: done'), host.log.join('\n'));
    }
    assert.equal(host.mostAtOnce(), 3, 'the deletion, the isolation and the firewall at once');
  });

  test('removeNetwork: a bridge the kernel will not delete stays down (closed); the error is the news', async () => {
    const host = fakeHost({ bridgeExists: true, deleteFails: true });
    await assert.rejects(host.agent.removeNetwork(NETWORK), /Busy/);
    assert.ok(!host.log.some((l) => l.includes(' up')), host.log.join('\n'));
  });

  test("the host's routes: both families at once, or only the one asked for; read again after a second", async () => {
    const host = fakeHost();
    const both = await host.agent.hostRoutes();
    assert.deepEqual(both.map((r) => r.cidr).sort(), ['192.168.1.0/24', 'fd00:1::/64']);
    assert.equal(host.mostAtOnce(), 2);
    host.log.length = 0;
    const v4 = await host.agent.hostRoutes(4);
    assert.deepEqual(v4, [{ cidr: '192.168.1.0/24', device: 'eth0' }]);
    assert.deepEqual(host.log, [], 'read less than a second ago: no ip');

    let clock = 0;
    const routes = new RecentHostRoutes(new IpCommand({ exec: host.exec }), { now: () => clock });
    await routes.read(4);
    assert.deepEqual(host.log, ['ip -json -4 route show table main']);
    clock = 1000;
    await routes.read(4);
    assert.equal(host.log.length, 1, 'a second old: kept');
    clock = 1001;
    await routes.read();
    assert.deepEqual(host.log.slice(1).sort(), [
      'ip -json -4 route show table main',
      'ip -json -6 route show table main',
    ]);
  });

  test("the host's routes: a read that failed is not kept", async () => {
    let fail = true;
    const calls: string[] = [];
    const exec: CommandRunner = async (_file, args) => {
      calls.push(args.join(' '));
      if (fail) throw Object.assign(new Error('exit 1'), { code: 1, stderr: 'Cannot talk to rtnetlink' });
      return { stdout: '[]', stderr: '' };
    };
    const routes = new RecentHostRoutes(new IpCommand({ exec }), { now: () => 0 });
    await assert.rejects(routes.read(4));
    fail = false;
    assert.deepEqual(await routes.read(4), []);
    assert.equal(calls.length, 2);
  });
});
