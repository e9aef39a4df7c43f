// End to end on the real Neutron lab with a private Docker engine: a container never harms another's resources.
// - `docker run --mac-address M` repeating a live container's MAC (with or without its --ip) is refused, and the
//   first container keeps its ACTIVE port and keeps answering pings (before the fix Docker's rollback deleted it);
// - two Docker networks on two pre-existing Neutron networks of the same CIDR, each with a pre-created port of
//   the same IP, one container on each by --ip (started at once): each gets the port of its own network, both go
//   ACTIVE, neither network's port is touched by the other (the race left one port in BUILD).
// Neutron holds exactly what it held before afterwards. Run it several times in a row to catch the race.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openNeutronHttp } from '../../src/neutron/http/index.ts';
import type { Network, Port, Subnet } from '../../src/neutron/types.ts';
import { ensureBusyboxImage, type PrivateDockerd, pingFrom, startPrivateDockerd } from '../helpers/docker-engine.ts';
import { neutronConfSection, neutronLab, neutronSnapshot } from '../helpers/neutron-lab.ts';
import { type PluginProcess, startPlugin } from '../helpers/plugin-process.ts';

const notRoot = process.getuid?.() !== 0;
const lab = await neutronLab();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
// Either of the lab's endpoints will do: the behaviour under test does not depend on authentication.
const mode = lab.skip.noauth === false ? ('noauth' as const) : ('keystone' as const);
const skip = notRoot ? 'needs root' : lab.skip[mode];

describe('ownership on a real Neutron: a repeated MAC or address never harms another container', { skip }, () => {
  const tag = Math.random().toString(36).slice(2, 8);
  const driver = `ko${tag}`;
  const x = 100 + Math.floor(Math.random() * 150);
  let dir: string;
  let engine: PrivateDockerd;
  let plugin: PluginProcess;
  let neutron: ReturnType<typeof openNeutronHttp>;
  let before_: Awaited<ReturnType<typeof neutronSnapshot>>;
  const made: { networks: Network[]; ports: Port[] } = { networks: [], ports: [] };

  const inspect = async (c: string, net: string, field: string) =>
    (await engine.dockerOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").${field}}}`, c])).trim();
  const portHolding = async (networkId: string, ip: string) => {
    const ports = await neutron.listPorts({ network_id: networkId, fixed_ips: [`ip_address=${ip}`] });
    assert.equal(ports.length, 1, `one port holds ${ip}`);
    return ports[0]!;
  };
  /** Waits until every port is ACTIVE (the linuxbridge agent wired it); fails naming any left in BUILD/DOWN. */
  const allActive = async (ids: string[], seconds = 60) => {
    let states: string[] = [];
    for (let i = 0; i < seconds * 2; i++) {
      states = (await neutron.listPorts({ id: ids })).map((p) => `${p.id}:${p.status}`);
      if (states.length === ids.length && states.every((s) => s.endsWith(':ACTIVE'))) return;
      await sleep(500);
    }
    assert.fail(`ports not ACTIVE after ${seconds} s: ${states.join(', ')}\nplugin log:\n${plugin.logTail(40)}`);
  };

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kx-own-'));
    const conf = path.join(dir, 'kuryr.conf');
    writeFileSync(conf, neutronConfSection(lab, mode), { mode: 0o600 });
    const section = Object.fromEntries(
      neutronConfSection(lab, mode)
        .split('\n')
        .filter((l) => l.includes(' = '))
        .map((l) => l.split(' = ') as [string, string]),
    );
    neutron = openNeutronHttp(section);
    before_ = await neutronSnapshot(neutron);
    engine = await startPrivateDockerd({ name: `own-${tag}` });
    await ensureBusyboxImage(engine);
    plugin = await startPlugin({
      driverName: driver,
      stateDir: path.join(dir, 'state'),
      extraArgs: ['--backend', 'neutron', '--config', conf, '--docker-host', engine.host],
    });
  });

  after(async () => {
    // Docker's own teardown first (the plugin removes what it made), whatever happened above.
    if (engine !== undefined && plugin !== undefined) {
      await engine.docker(['rm', '-f', 'first', 'peer', 'dup2', 'dup4', 'ca', 'cb']);
      for (const n of ['m1', 'oa', 'ob']) await engine.docker(['network', 'rm', n]);
    }
    await engine?.stop({ killContainers: true });
    await plugin?.stop();
    if (neutron !== undefined) await sweep();
    await neutron?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Whatever this run left in the lab (a failed run): new ports, networks and our pools since `before`. */
  const sweep = async () => {
    for (const p of made.ports) await neutron.deletePort(p.id).catch(() => undefined);
    const now = await neutronSnapshot(neutron);
    const fresh = (kind: keyof typeof now) => now[kind].filter((id) => !before_[kind].includes(id));
    const networks = fresh('networks').length === 0 ? [] : await neutron.listNetworks({ id: fresh('networks') });
    const ours = networks.filter((n) => n.name.startsWith('kuryr-net-') || n.name.endsWith(`-${tag}`));
    for (const n of ours) {
      for (const p of await neutron.listPorts({ network_id: n.id }))
        await neutron.deletePort(p.id).catch(() => undefined);
      await neutron.deleteNetwork(n.id).catch(() => undefined);
    }
    const pools = fresh('subnetpools').length === 0 ? [] : await neutron.listSubnetPools({ id: fresh('subnetpools') });
    for (const pool of pools.filter((p) => p.name.startsWith(`kuryrPool-10.${x}.`))) {
      await neutron.deleteSubnetPool(pool.id).catch(() => undefined);
    }
  };

  it('docker run --mac-address repeating a live container’s MAC is refused; the first keeps its ACTIVE port and pings', async () => {
    await engine.dockerOk([
      'network',
      'create',
      '-d',
      driver,
      '--ipam-driver',
      driver,
      '--subnet',
      `10.${x}.7.0/24`,
      'm1',
    ]);
    await engine.dockerOk(['run', '-d', '--name', 'first', '--net', 'm1', 'busybox:local', 'sleep', '600']);
    await engine.dockerOk(['run', '-d', '--name', 'peer', '--net', 'm1', 'busybox:local', 'sleep', '600']);
    const ip = await inspect('first', 'm1', 'IPAddress');
    const mac = await inspect('first', 'm1', 'MacAddress');
    const network = (
      await neutron.listNetworks({
        name: `kuryr-net-${(await engine.dockerOk(['network', 'inspect', '-f', '{{.Id}}', 'm1'])).trim().slice(0, 8)}`,
      })
    )[0]!;
    const port = await portHolding(network.id, ip);
    await allActive([port.id]);
    await pingFrom(engine, 'peer', ip, { tries: 10 });

    for (const args of [
      ['--mac-address', mac],
      ['--mac-address', mac, '--ip', ip],
    ]) {
      const r = await engine.docker([
        'run',
        '-d',
        '--name',
        `dup${args.length}`,
        '--net',
        'm1',
        ...args,
        'busybox:local',
        'sleep',
        '600',
      ]);
      assert.notEqual(r.code, 0, `docker run ${args.join(' ')} must fail`);
      assert.match(r.stderr, /in use by endpoint/, r.stderr);
      await engine.docker(['rm', '-f', `dup${args.length}`]);
      const now = await neutron.showPort(port.id);
      assert.equal(now.status, 'ACTIVE', 'the first container’s port stays ACTIVE');
      assert.equal(now.device_id, port.device_id);
      assert.equal(now['binding:host_id'], port['binding:host_id']);
      await pingFrom(engine, 'peer', ip, { tries: 10 });
    }
    await engine.dockerOk(['rm', '-f', 'first', 'peer']);
    await engine.dockerOk(['network', 'rm', 'm1']);
  });

  it('same CIDR on two Neutron networks, a pre-created port of the same IP on each, one container each by --ip', async () => {
    const cidr = `10.${x}.8.0/24`;
    const ip = `10.${x}.8.20`;
    const sides: { net: Network; subnet: Subnet; port: Port; docker: string; container: string }[] = [];
    for (const side of ['a', 'b']) {
      const net = await neutron.createNetwork({ name: `orch-${side}-${tag}`, description: 'made by the operator' });
      made.networks.push(net);
      const [subnet] = await neutron.createSubnets([
        { network_id: net.id, ip_version: 4, cidr, name: `orch-${side}-${tag}`, enable_dhcp: false },
      ]);
      const port = await neutron.createPort({
        name: `orch-${side}-${tag}`,
        network_id: net.id,
        fixed_ips: [{ subnet_id: subnet!.id, ip_address: ip }],
      });
      made.ports.push(port);
      const docker = `o${side}`;
      await engine.dockerOk([
        'network',
        'create',
        '-d',
        driver,
        '--ipam-driver',
        driver,
        '--subnet',
        cidr,
        '-o',
        `neutron.net.uuid=${net.id}`,
        '-o',
        `neutron.subnet.uuid=${subnet!.id}`,
        '--ipam-opt',
        `neutron.subnet.uuid=${subnet!.id}`,
        docker,
      ]);
      sides.push({ net, subnet: subnet!, port, docker, container: `c${side}` });
    }
    // Both containers at once: the race that left one port in BUILD.
    await Promise.all(
      sides.map((s) =>
        engine.dockerOk([
          'run',
          '-d',
          '--name',
          s.container,
          '--net',
          s.docker,
          '--ip',
          ip,
          '--mac-address',
          s.port.mac_address,
          'busybox:local',
          'sleep',
          '600',
        ]),
      ),
    );
    for (const s of sides) {
      const now = await neutron.showPort(s.port.id);
      const id = (
        await engine.dockerOk([
          'inspect',
          '-f',
          `{{(index .NetworkSettings.Networks "${s.docker}").EndpointID}}`,
          s.container,
        ])
      ).trim();
      assert.equal(now.device_id, id, `the container on ${s.docker} got the port of its own network`);
      assert.equal(now.network_id, s.net.id);
      const holders = await neutron.listPorts({ network_id: s.net.id });
      assert.deepEqual(
        holders.map((p) => p.id),
        [s.port.id],
        `no other port on ${s.net.name}`,
      );
    }
    await allActive(sides.map((s) => s.port.id));
    await engine.dockerOk(['rm', '-f', 'ca']);
    // The other network's container keeps its port.
    const b = await neutron.showPort(sides[1]!.port.id);
    assert.equal(b.status, 'ACTIVE');
    assert.notEqual(b.device_id, '');
    await engine.dockerOk(['rm', '-f', 'cb']);
    for (const s of sides) {
      const now = await neutron.showPort(s.port.id);
      assert.equal(now.device_id, '', 'handed back');
      assert.equal(now['binding:host_id'], '');
      assert.deepEqual(now.tags, []);
      await engine.dockerOk(['network', 'rm', s.docker]);
      assert.equal((await neutron.showNetwork(s.net.id)).name, s.net.name, 'the operator’s network stays');
    }
  });

  it('after teardown Neutron holds exactly what it held before (besides what the test made itself)', async () => {
    for (const p of made.ports.splice(0)) await neutron.deletePort(p.id);
    for (const n of made.networks.splice(0)) await neutron.deleteNetwork(n.id);
    const now = await neutronSnapshot(neutron);
    for (const kind of Object.keys(before_) as (keyof typeof now)[]) {
      const added = now[kind].filter((id) => !before_[kind].includes(id));
      assert.deepEqual(added, [], `no ${kind} left; plugin log:\n${plugin.logTail(30)}`);
    }
  });
});
