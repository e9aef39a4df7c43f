// End to end on the real Neutron lab with a private Docker engine: a container never harms another's resources.
// - `docker run --mac-address M` repeating a live container's MAC (with or without its --ip) is refused, and the
//   first container keeps its ACTIVE port and keeps answering pings (before the fix Docker's rollback deleted it);
// - two Docker networks on two pre-existing Neutron networks of the same CIDR, each with a pre-created port of
//   the same IP, one container on each by --ip (started at once): each gets the port of its own network, both go
//   ACTIVE, neither network's port is touched by the other (the race left one port in BUILD).
// Neutron holds exactly what it held before afterwards. Run it several times in a row to catch the race.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Network, Port, Subnet } from '../../src/neutron/types.ts';
import { pingFrom } from '../helpers/docker-engine.ts';
import { e2eFixture } from '../helpers/e2e.ts';
import { neutronLab, neutronSnapshot } from '../helpers/neutron-lab.ts';

const notRoot = process.getuid?.() !== 0;
const lab = await neutronLab();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
// Either of the lab's endpoints will do: the behaviour under test does not depend on authentication.
const mode = lab.skip.noauth === false ? ('noauth' as const) : ('keystone' as const);
const skip = notRoot ? 'needs root' : lab.skip[mode];

describe('ownership on a real Neutron: a repeated MAC or address never harms another container', { skip }, () => {
  const x = 100 + Math.floor(Math.random() * 150);
  const env = e2eFixture({
    name: 'own',
    driverPrefix: 'ko',
    backend: 'neutron',
    lab,
    mode,
    // Docker's own teardown first (the plugin removes what it made), whatever happened above.
    teardown: async ({ engine }) => {
      await engine.docker(['rm', '-f', 'first', 'peer', 'dup2', 'dup4', 'ca', 'cb']);
      for (const n of ['m1', 'oa', 'ob']) await engine.docker(['network', 'rm', n]);
    },
    cleanup: () => sweep(),
  });
  const { tag, driver } = env;
  const made: { networks: Network[]; ports: Port[] } = { networks: [], ports: [] };

  const inspect = async (c: string, net: string, field: string) =>
    (await env.engine.dockerOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").${field}}}`, c])).trim();
  const portHolding = async (networkId: string, ip: string) => {
    const ports = await env.neutron.listPorts({ network_id: networkId, fixed_ips: [`ip_address=${ip}`] });
    assert.equal(ports.length, 1, `one port holds ${ip}`);
    return ports[0]!;
  };
  /** Waits until every port is ACTIVE (the linuxbridge agent wired it); fails naming any left in BUILD/DOWN. */
  const allActive = async (ids: string[], seconds = 60) => {
    let states: string[] = [];
    for (let i = 0; i < seconds * 2; i++) {
      states = (await env.neutron.listPorts({ id: ids })).map((p) => `${p.id}:${p.status}`);
      if (states.length === ids.length && states.every((s) => s.endsWith(':ACTIVE'))) return;
      await sleep(500);
    }
    assert.fail(`ports not ACTIVE after ${seconds} s: ${states.join(', ')}\nplugin log:\n${env.plugin.logTail(40)}`);
  };

  /** Whatever this run left in the lab (a failed run): new ports, networks and our pools since `before`. */
  const sweep = async () => {
    for (const p of made.ports) await env.neutron.deletePort(p.id).catch(() => undefined);
    const now = await neutronSnapshot(env.neutron);
    const fresh = (kind: keyof typeof now) => now[kind].filter((id) => !env.before[kind].includes(id));
    const networks = fresh('networks').length === 0 ? [] : await env.neutron.listNetworks({ id: fresh('networks') });
    const ours = networks.filter((n) => n.name.startsWith('kuryr-net-') || n.name.endsWith(`-${tag}`));
    for (const n of ours) {
      for (const p of await env.neutron.listPorts({ network_id: n.id }))
        await env.neutron.deletePort(p.id).catch(() => undefined);
      await env.neutron.deleteNetwork(n.id).catch(() => undefined);
    }
    const pools =
      fresh('subnetpools').length === 0 ? [] : await env.neutron.listSubnetPools({ id: fresh('subnetpools') });
    for (const pool of pools.filter((p) => p.name.startsWith(`kuryrPool-10.${x}.`))) {
      await env.neutron.deleteSubnetPool(pool.id).catch(() => undefined);
    }
  };

  it('docker run --mac-address repeating a live container’s MAC is refused; the first keeps its ACTIVE port and pings', async () => {
    await env.engine.dockerOk([
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
    await env.engine.dockerOk(['run', '-d', '--name', 'first', '--net', 'm1', 'busybox:local', 'sleep', '600']);
    await env.engine.dockerOk(['run', '-d', '--name', 'peer', '--net', 'm1', 'busybox:local', 'sleep', '600']);
    const ip = await inspect('first', 'm1', 'IPAddress');
    const mac = await inspect('first', 'm1', 'MacAddress');
    const network = (
      await env.neutron.listNetworks({
        name: `kuryr-net-${(await env.engine.dockerOk(['network', 'inspect', '-f', '{{.Id}}', 'm1'])).trim().slice(0, 8)}`,
      })
    )[0]!;
    const port = await portHolding(network.id, ip);
    await allActive([port.id]);
    await pingFrom(env.engine, 'peer', ip, { tries: 10 });

    for (const args of [
      ['--mac-address', mac],
      ['--mac-address', mac, '--ip', ip],
    ]) {
      const r = await env.engine.docker([
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
      await env.engine.docker(['rm', '-f', `dup${args.length}`]);
      const now = await env.neutron.showPort(port.id);
      assert.equal(now.status, 'ACTIVE', 'the first container’s port stays ACTIVE');
      assert.equal(now.device_id, port.device_id);
      assert.equal(now['binding:host_id'], port['binding:host_id']);
      await pingFrom(env.engine, 'peer', ip, { tries: 10 });
    }
    await env.engine.dockerOk(['rm', '-f', 'first', 'peer']);
    await env.engine.dockerOk(['network', 'rm', 'm1']);
  });

  it('same CIDR on two Neutron networks, a pre-created port of the same IP on each, one container each by --ip', async () => {
    const cidr = `10.${x}.8.0/24`;
    const ip = `10.${x}.8.20`;
    const sides: { net: Network; subnet: Subnet; port: Port; docker: string; container: string }[] = [];
    for (const side of ['a', 'b']) {
      const net = await env.neutron.createNetwork({ name: `orch-${side}-${tag}`, description: 'made by the operator' });
      made.networks.push(net);
      const [subnet] = await env.neutron.createSubnets([
        { network_id: net.id, ip_version: 4, cidr, name: `orch-${side}-${tag}`, enable_dhcp: false },
      ]);
      const port = await env.neutron.createPort({
        name: `orch-${side}-${tag}`,
        network_id: net.id,
        fixed_ips: [{ subnet_id: subnet!.id, ip_address: ip }],
      });
      made.ports.push(port);
      const docker = `o${side}`;
      await env.engine.dockerOk([
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
        env.engine.dockerOk([
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
      const now = await env.neutron.showPort(s.port.id);
      const id = (
        await env.engine.dockerOk([
          'inspect',
          '-f',
          `{{(index .NetworkSettings.Networks "${s.docker}").EndpointID}}`,
          s.container,
        ])
      ).trim();
      assert.equal(now.device_id, id, `the container on ${s.docker} got the port of its own network`);
      assert.equal(now.network_id, s.net.id);
      const holders = await env.neutron.listPorts({ network_id: s.net.id });
      assert.deepEqual(
        holders.map((p) => p.id),
        [s.port.id],
        `no other port on ${s.net.name}`,
      );
    }
    await allActive(sides.map((s) => s.port.id));
    await env.engine.dockerOk(['rm', '-f', 'ca']);
    // The other network's container keeps its port.
    const b = await env.neutron.showPort(sides[1]!.port.id);
    assert.equal(b.status, 'ACTIVE');
    assert.notEqual(b.device_id, '');
    await env.engine.dockerOk(['rm', '-f', 'cb']);
    for (const s of sides) {
      const now = await env.neutron.showPort(s.port.id);
      assert.equal(now.device_id, '', 'handed back');
      assert.equal(now['binding:host_id'], '');
      assert.deepEqual(now.tags, []);
      await env.engine.dockerOk(['network', 'rm', s.docker]);
      assert.equal((await env.neutron.showNetwork(s.net.id)).name, s.net.name, 'the operator’s network stays');
    }
  });

  it('after teardown Neutron holds exactly what it held before (besides what the test made itself)', async () => {
    for (const p of made.ports.splice(0)) await env.neutron.deletePort(p.id);
    for (const n of made.networks.splice(0)) await env.neutron.deleteNetwork(n.id);
    const now = await neutronSnapshot(env.neutron);
    for (const kind of Object.keys(env.before) as (keyof typeof now)[]) {
      const added = now[kind].filter((id) => !env.before[kind].includes(id));
      assert.deepEqual(added, [], `no ${kind} left; plugin log:\n${env.plugin.logTail(30)}`);
    }
  });
});
