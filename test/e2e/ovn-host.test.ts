/**
 * The host side of kuryr-ts on ML2/OVN, against the OVN lab (scripts/ovn/stack.sh: real Neutron with the OVN
 * mechanism driver, ovn-controller, Open vSwitch on the userspace datapath), without Docker:
 * - the binder plugs Neutron's `ovs` ports into br-int so that ovn-controller claims them: ACTIVE, and two
 *   network namespaces on them ping each other through OVN; an unplugged port goes DOWN;
 * - gc removes what a crashed bind left (OVS ports, the hybrid plug's qbr…/qvb…/qvo…) once its Neutron port is
 *   gone, and leaves a live bind alone;
 * - doctor's `ovs.bridge` is ok on this chassis and fails for a bridge that is not there.
 * Runs when KURYR_NEUTRON_LAB points at the OVN lab (scripts/test-ovn.sh); on the Linux bridge lab it is skipped
 * with that reason.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { IpCommand } from '../../src/binding/ip-command.ts';
import { interfaceNames } from '../../src/binding/names.ts';
import { OvsVsctl } from '../../src/binding/ovs.ts';
import { OvsLeftovers } from '../../src/binding/ovs-leftovers.ts';
import { VethBinder } from '../../src/binding/veth-binder.ts';
import type { Config } from '../../src/config/config.ts';
import { checkOvs, ovsPortFacts } from '../../src/doctor/ovs.ts';
import { runDoctor } from '../../src/doctor/run.ts';
import { createRuntime } from '../../src/driver/context.ts';
import { openNeutronHttp } from '../../src/neutron/http/index.ts';
import type { Network, Port } from '../../src/neutron/types.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { collectGarbage } from '../../src/reconcile/gc.ts';
import { TEST_SETTINGS } from '../helpers/fakes.ts';
import { neutronConfSection, neutronLab } from '../helpers/neutron-lab.ts';
import { ovsInterfaces } from '../helpers/ovs.ts';
import { findPing } from '../binding/kernel.ts';
import { VethPortDriver, vifPortOf } from '../../src/driver/port-drivers/veth.ts';

const run = promisify(execFile);
const lab = await neutronLab();
const skip =
  process.getuid?.() !== 0
    ? 'needs root'
    : lab.skip.noauth ||
      (lab.mechanismDriver !== 'ovn'
        ? `elsewhere: the lab of ${lab.file} is ${lab.mechanismDriver}, not ML2/OVN; this file runs in the OVN pass (scripts/test-ovn.sh)`
        : false);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const PYTHON = '/usr/bin/python3';

/** Sends `bytes` over TCP from namespace `from` to a listener in `to` (at `address`); resolves with what arrived. */
async function tcpTransfer(to: string, from: string, address: string, bytes: number): Promise<number> {
  const server = spawn('ip', [
    'netns',
    'exec',
    to,
    PYTHON,
    '-c',
    [
      'import socket',
      's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      "s.bind(('0.0.0.0', 8080)); s.listen(1); s.settimeout(20); print('ready', flush=True)",
      'c, _ = s.accept(); c.settimeout(20); n = 0',
      'while True:',
      '    d = c.recv(65536)',
      '    if not d: break',
      '    n += len(d)',
      'print(n, flush=True)',
    ].join('\n'),
  ]);
  let out = '';
  server.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const done = new Promise<void>((resolve) => server.on('close', () => resolve()));
  try {
    for (let i = 0; i < 50 && !out.includes('ready'); i++) await sleep(100);
    const send = `import socket; c = socket.create_connection(('${address}', 8080), timeout=20); c.sendall(b'x' * ${bytes}); c.close()`;
    await run('ip', ['netns', 'exec', from, PYTHON, '-c', send], { timeout: 30_000 });
    await Promise.race([done, sleep(25_000)]);
  } finally {
    server.kill();
  }
  const lines = out.trim().split('\n');
  return Number(lines[lines.length - 1]);
}

describe('ML2/OVN host side: bind, gc, doctor (real Neutron, OVN, Open vSwitch)', { skip }, () => {
  const owner = `kxovn${randomBytes(2).toString('hex')}`;
  const ip = new IpCommand();
  const binder = new VethBinder({ owner });
  const host = lab.host!;
  const octet = 100 + Math.floor(Math.random() * 150);
  const namespaces: string[] = [];
  const bound: Port[] = [];
  let neutron: ReturnType<typeof openNeutronHttp>;
  let network: Network;

  const createPort = (name: string, address?: string) =>
    neutron.createPort({
      network_id: network.id,
      name: `${owner}-${name}`,
      device_owner: 'compute:kuryr',
      device_id: randomBytes(32).toString('hex'),
      'binding:host_id': host,
      ...(address === undefined ? {} : { fixed_ips: [{ ip_address: address }] }),
    });
  const statusOf = async (id: string) => (await neutron.showPort(id)).status;
  const waitStatus = async (id: string, want: string) => {
    let status = '';
    for (let i = 0; i < 60 && status !== want; i++) {
      status = await statusOf(id);
      if (status !== want) await sleep(250);
    }
    return status;
  };
  /** Bind `port` and put its container end into a fresh namespace as eth0 with the port's address. */
  const plugIntoNamespace = async (port: Port) => {
    const names = await binder.bind({ ...vifPortOf(port), mtu: network.mtu ?? 1442 });
    bound.push(port);
    const ns = `${owner}-${namespaces.length}`;
    await ip.run(['netns', 'add', ns]);
    namespaces.push(ns);
    await ip.run(['link', 'set', 'dev', names.container, 'netns', ns]);
    const inNs = (args: string[]) => ip.run(['-n', ns, ...args]);
    await inNs(['link', 'set', 'dev', names.container, 'name', 'eth0']);
    await inNs(['addr', 'add', `${port.fixed_ips[0]!.ip_address}/24`, 'dev', 'eth0']);
    await inNs(['link', 'set', 'dev', 'eth0', 'up']);
    return ns;
  };

  before(async () => {
    neutron = openNeutronHttp({ auth_type: 'none', endpoint: lab.noauth!.neutronUrl });
    network = await neutron.createNetwork({ name: `${owner}-net` });
    await neutron.createSubnets([
      { network_id: network.id, ip_version: 4, cidr: `10.${octet}.7.0/24`, name: `${owner}-subnet` },
    ]);
  });

  after(async () => {
    for (const port of bound) await binder.unbind(vifPortOf(port)).catch(() => undefined);
    for (const ns of namespaces) await ip.run(['netns', 'del', ns]).catch(() => undefined);
    if (network !== undefined) {
      for (const p of await neutron.listPorts({ network_id: network.id })) {
        if (p.device_owner === 'compute:kuryr') await neutron.deletePort(p.id).catch(() => undefined);
      }
      await neutron.deleteNetwork(network.id);
    }
    await neutron?.close();
  });

  it('Neutron binds the ports vif_type ovs; plugged into br-int they go ACTIVE and ping; unplugged, DOWN', async () => {
    const a = await createPort('a', `10.${octet}.7.10`);
    const b = await createPort('b', `10.${octet}.7.11`);
    for (const p of [a, b]) {
      assert.equal(p['binding:vif_type'], 'ovs', 'ML2/OVN binds ports of an alive chassis with vif_type ovs');
      assert.equal(p.status, 'DOWN');
    }
    assert.equal(network.mtu, 1442, 'Geneve: 1500 minus the tunnel header');
    const nsA = await plugIntoNamespace(a);
    const nsB = await plugIntoNamespace(b);
    assert.equal(await waitStatus(a.id, 'ACTIVE'), 'ACTIVE', 'ovn-controller claimed a');
    assert.equal(await waitStatus(b.id, 'ACTIVE'), 'ACTIVE', 'ovn-controller claimed b');
    const chassis = (
      await run('ovn-sbctl', ['--bare', '--columns=chassis', 'find', 'Port_Binding', `logical_port=${a.id}`])
    ).stdout.trim();
    assert.notEqual(chassis, '', 'the Port_Binding has this chassis');
    const ping = await findPing();
    assert.ok(ping, 'needs ping (iputils-ping or busybox)');
    const { stdout } = await run('ip', ['netns', 'exec', nsA, ...ping, '-c', '3', '-W', '2', `10.${octet}.7.11`]);
    assert.match(stdout, / 0% packet loss/);
    // TCP too: 2 MB through the userspace datapath (fails without userspace TSO with the veths' default offloads).
    const received = await tcpTransfer(nsB, nsA, `10.${octet}.7.11`, 2 * 1024 * 1024);
    assert.equal(received, 2 * 1024 * 1024);

    await binder.unbind(vifPortOf(b));
    bound.splice(bound.indexOf(b), 1);
    assert.equal(await waitStatus(b.id, 'DOWN'), 'DOWN', 'the port goes DOWN once its OVS port is gone');
    assert.deepEqual(await ovsInterfaces({ 'iface-id': b.id }), []);
  });

  it('gc removes what crashed binds left once their Neutron ports are gone; a live bind stays', async () => {
    const live = await createPort('live');
    const plain = await createPort('crashed-plain');
    const hybrid = await createPort('crashed-hybrid');
    await binder.bind({ ...vifPortOf(live), mtu: 1442 });
    bound.push(live);
    await binder.bind({ ...vifPortOf(plain), mtu: 1442 });
    // Neutron's OVN driver never asks for the hybrid plug; the OVS agent with the iptables firewall does.
    const hybridPort: Port = { ...hybrid, 'binding:vif_details': { ovs_hybrid_plug: true } };
    await binder.bind({ ...vifPortOf(hybridPort), mtu: 1442 });
    // The crash: nothing unbinds them, and their ports go (gc's Docker pass, or an operator, deleted them).
    await neutron.deletePort(plain.id);
    await neutron.deletePort(hybrid.id);
    const h = interfaceNames(hybrid.id).host.slice(3);
    const leftovers = [interfaceNames(plain.id).host, interfaceNames(hybrid.id).host, `qbr${h}`, `qvb${h}`, `qvo${h}`];
    for (const name of leftovers) assert.ok(await ip.getLink(name), `${name} exists before gc`);

    const rt = createRuntime({
      neutron,
      binder: new VethPortDriver(binder),
      settings: { ...TEST_SETTINGS, hostId: host },
      log: silentLogger(),
    });
    const report = await collectGarbage(rt, ip, {
      dryRun: false,
      graceSeconds: 0,
      docker: undefined,
      ownsBridges: false,
      onlyHost: host,
      owner,
      ovs: new OvsLeftovers(new OvsVsctl(), owner),
    });
    const removed = report.actions.filter((x) => x.result === 'removed').map((x) => `${x.kind} ${x.id}`);
    assert.deepEqual(
      report.actions.filter((x) => x.result === 'failed'),
      [],
    );
    for (const want of [
      `ovs-port ${interfaceNames(plain.id).host}`,
      `ovs-port qvo${h}`,
      `veth ${interfaceNames(plain.id).host}`,
      `veth ${interfaceNames(hybrid.id).host}`,
      `bridge qbr${h}`,
      `veth qvb${h}`,
    ]) {
      assert.ok(removed.includes(want), `${want} in ${removed.join(', ')}`);
    }
    assert.deepEqual(await ovsInterfaces({ 'iface-id': plain.id }), []);
    assert.deepEqual(await ovsInterfaces({ 'iface-id': hybrid.id }), []);
    for (const name of leftovers) assert.equal(await ip.getLink(name), undefined, `${name} removed`);
    assert.equal((await ovsInterfaces({ 'iface-id': live.id })).length, 1, 'the live bind keeps its OVS port');
    assert.ok(await ip.getLink(interfaceNames(live.id).host), 'and its veth');
  });

  it('doctor: ovs.bridge is ok on this chassis, and fails for a bridge that does not exist', async () => {
    const config = { backend: 'neutron' } as Config;
    const ports = await neutron.listPorts({ 'binding:host_id': host });
    const facts = ovsPortFacts(ports);
    assert.ok(facts.count > 0, 'this test bound ports of vif_type ovs here');
    const good = await checkOvs(config, facts);
    assert.equal(good.status, 'ok', good.summary);
    assert.match(good.summary, /OVN chassis .*br-int \(datapath netdev\) present; ovs-vswitchd answers/);
    const bad = await checkOvs(config, { count: 1, bridges: ['br-kxmissing'] });
    assert.equal(bad.status, 'fail');
    assert.match(bad.summary, /bridge br-kxmissing does not exist/);

    // The whole `kuryr doctor` with a kuryr.conf for this Neutron: it asks Neutron for this host's ports.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kx-ovn-doctor-'));
    try {
      const conf = path.join(dir, 'kuryr.conf');
      writeFileSync(conf, `[kuryr_ts]\nhost_id = ${host}\n${neutronConfSection(lab, 'noauth')}`, { mode: 0o600 });
      const report = await runDoctor({
        flags: {
          config: conf,
          backend: 'neutron',
          stateDir: path.join(dir, 'state'),
          dockerHost: 'unix:///nonexistent',
        },
      });
      const check = report.checks.find((c) => c.id === 'ovs.bridge');
      assert.equal(check?.status, 'ok', JSON.stringify(check));
      assert.match(check!.summary, /OVN chassis .*, [1-9][0-9]* port\(s\) of this host have vif_type ovs: br-int/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
