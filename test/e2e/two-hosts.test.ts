// Two hosts on one real Neutron: the lab's host and its second host (scripts/neutron/host2.sh, a network namespace
// with its own Neutron L2 agent), each with its own private dockerd and its own kuryr-ts (its own host_id).
// Containers on the two hosts share one Neutron network and reach each other over VXLAN; one host's
// DeleteNetwork never takes the other host's ports; in global scope (every host calls DeleteNetwork for the same
// Docker network ID, as Swarm does) the network stays until the last host's call; nothing is left afterwards.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Port } from '../../src/neutron/types.ts';
import { type PrivateDockerd, pingFrom, runCommand } from '../helpers/docker-engine.ts';
import { e2eFixture } from '../helpers/e2e.ts';
import { neutronLab, neutronSnapshot } from '../helpers/neutron-lab.ts';
import { KURYR_BIN, type PluginProcess, pluginCall, startPlugin } from '../helpers/plugin-process.ts';
import { hostConf, secondHost } from '../helpers/second-host.ts';

const lab = await neutronLab();
const h2 = secondHost();
const skip =
  h2.skip ||
  lab.skip.noauth ||
  (lab.host === undefined ? 'the lab names no host' : false) ||
  (h2.noauthNeutronUrl === null ? 'the second host has no noauth Neutron API' : false);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Links of a network namespace (undefined: the host's), by name. */
async function links(netns?: string): Promise<string[]> {
  const args = [...(netns === undefined ? [] : ['-n', netns]), '-j', 'link', 'show'];
  const r = await runCommand('ip', args);
  return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname);
}

describe('two hosts on one Neutron', { skip }, () => {
  const tag = randomBytes(3).toString('hex');
  const x = 100 + Math.floor(Math.random() * 150);
  const hostA = lab.host!;
  const figures: Record<string, string> = {};
  let linksBefore: { a: string[]; b: string[] };
  let globalA: PluginProcess;
  let globalB: PluginProcess;
  let neutronNet = '';
  let globalNet = '';
  let t0 = 0;
  // No periodic gc during the test: each plugin's own engine knows none of the other plugins' networks.
  const withoutGc = (text: string) => `${text}gc_interval = 0\n`;
  const confA = (scope: 'local' | 'global') =>
    withoutGc(hostConf({ neutronUrl: lab.noauth!.neutronUrl, hostId: hostA, scope }));
  const confB = (scope: 'local' | 'global') =>
    withoutGc(hostConf({ neutronUrl: h2.noauthNeutronUrl!, hostId: h2.host, scope }));

  // Host B (the second host's netns) is set up first: host A's `started` starts the global-scope pair, which
  // needs both engines. Host B's Neutron client (the lab's) takes the snapshot of what Neutron held before anything
  // started; the test looks at Neutron through host A's.
  const sideB = e2eFixture({
    name: '2h-b',
    driverPrefix: 'k2b',
    backend: 'neutron',
    lab,
    mode: 'noauth',
    netns: h2.netns,
    conf: confB('local'),
    setup: async () => {
      t0 = Date.now();
      linksBefore = { a: await links(), b: await links(h2.netns) };
      await agentsReporting();
    },
  });
  const sideA = e2eFixture({
    name: '2h-a',
    driverPrefix: 'k2a',
    backend: 'neutron',
    lab,
    mode: 'noauth',
    conf: confA('local'),
    started: async ({ dir }) => {
      figures.engines = `${Date.now() - t0} ms (2 engines, busybox:local, 2 plugins)`;
      const conf = (name: string, text: string) => {
        const file = path.join(dir, `${name}.conf`);
        writeFileSync(file, text, { mode: 0o600 });
        return file;
      };
      // The global-scope pair is driven through the plugin API only (no dockerd uses these sockets).
      [globalA, globalB] = await Promise.all([
        startPlugin({
          driverName: `k2ga${tag}`,
          stateDir: path.join(dir, 'ga'),
          socketPath: path.join(dir, 'ga.sock'),
          extraArgs: [
            '--backend',
            'neutron',
            '--config',
            conf('a-global', confA('global')),
            '--docker-host',
            sideA.engine.host,
          ],
        }),
        startPlugin({
          driverName: `k2gb${tag}`,
          stateDir: path.join(dir, 'gb'),
          socketPath: path.join(dir, 'gb.sock'),
          netns: h2.netns,
          extraArgs: [
            '--backend',
            'neutron',
            '--config',
            conf('b-global', confB('global')),
            '--docker-host',
            sideB.engine.host,
          ],
        }),
      ]);
    },
    // Both engines and both host plugins are stopped by now (host B's teardown ran first).
    cleanup: async ({ neutron }) => {
      await Promise.all([globalA?.stop(), globalB?.stop()]);
      // After a failure, what this test made in Neutron (nothing when every test passed).
      for (const id of [neutronNet, globalNet].filter(Boolean)) {
        for (const p of await neutron.listPorts({ network_id: id }).catch(() => [])) {
          if (!p.device_owner.startsWith('network:')) await neutron.deletePort(p.id).catch(() => undefined);
        }
        await neutron.deleteNetwork(id).catch(() => undefined);
      }
      for (const cidr of [`10.${x}.1.0/24`, `10.${x}.3.0/24`]) {
        for (const pool of await neutron.listSubnetPools({ name: `kuryrPool-${cidr}` }).catch(() => []))
          await neutron.deleteSubnetPool(pool.id).catch(() => undefined);
      }
      if (Object.keys(figures).length > 0) console.log(`# two-host figures: ${JSON.stringify(figures)}`);
    },
  });
  const portsOn = async (networkId: string) =>
    sideA.neutron.listPorts({ network_id: networkId, device_owner: 'compute:kuryr' });
  /** The L2 agents as Neutron sees them (host, alive, last heartbeat): why a port would stay DOWN. */
  const agents = async () => {
    const url = `${lab.noauth!.neutronUrl}/v2.0/agents?fields=host&fields=alive&fields=heartbeat_timestamp`;
    return fetch(url, { signal: AbortSignal.timeout(5000) })
      .then((r) => r.text())
      .catch((e: unknown) => `(not read: ${String(e)})`);
  };
  /**
   * Both hosts' L2 agents have reported within the last 25 s (they report every 10 s, over the RPC connection that
   * also reports their ports up). An agent whose connection to RabbitMQ stalled after an earlier test would leave
   * this test's ports DOWN: it is waited for (up to 90 s, until the agent reconnects), or named.
   */
  const agentsReporting = async () => {
    const fresh = (text: string) => {
      const parsed = JSON.parse(text) as { agents?: { host: string; alive: boolean; heartbeat_timestamp: string }[] };
      const recent = (parsed.agents ?? []).filter(
        (a) => a.alive && Date.now() - Date.parse(`${a.heartbeat_timestamp.replace(' ', 'T')}Z`) < 25_000,
      );
      return [hostA, h2.host].every((h) => recent.some((a) => a.host === h));
    };
    let last = '';
    for (const end = Date.now() + 90_000; Date.now() < end; await sleep(1000)) {
      last = await agents();
      if (last.startsWith('{') && fresh(last)) return;
    }
    assert.fail(`the L2 agents of ${hostA} and ${h2.host} do not both report to Neutron: ${last}`);
  };
  const waitActive = async (ids: string[]) => {
    let ports: Port[] = [];
    for (let i = 0; i < 120; i++) {
      ports = await sideA.neutron.listPorts({ id: ids });
      if (ports.length === ids.length && ports.every((p) => p.status === 'ACTIVE')) return ports;
      await sleep(500);
    }
    assert.fail(
      `ports not ACTIVE: ${ports.map((p) => `${p.id} ${p.status} on ${p['binding:host_id']}`).join(', ')}; ` +
        `L2 agents: ${await agents()}`,
    );
  };
  const ipOf = async (engine: PrivateDockerd, c: string, net: string) =>
    (await engine.dockerOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, c])).trim();
  const context = () =>
    `--- host A plugin ---\n${sideA.plugin.logTail(15)}\n--- host B plugin ---\n${sideB.plugin.logTail(15)}`;

  it('one Neutron network with a container on each host: they ping each other across the hosts', async () => {
    const t0 = Date.now();
    // Host A's kuryr-ts makes the Neutron network; host B maps its own Docker network onto it.
    await sideA.engine.dockerOk([
      'network',
      'create',
      '-d',
      sideA.driver,
      '--ipam-driver',
      sideA.driver,
      '--subnet',
      `10.${x}.1.0/24`,
      'na',
    ]);
    const idA = (await sideA.engine.dockerOk(['network', 'inspect', '-f', '{{.Id}}', 'na'])).trim();
    const [net] = await sideA.neutron.listNetworks({ tags: [`kuryr.net.uuid.lh:${idA.slice(0, 32)}`] });
    assert.ok(net, "host A's Docker network has a Neutron network");
    neutronNet = net.id;
    await sideB.engine.dockerOk([
      'network',
      'create',
      '-d',
      sideB.driver,
      '--ipam-driver',
      sideB.driver,
      '--subnet',
      `10.${x}.1.0/24`,
      '-o',
      `neutron.net.uuid=${net.id}`,
      'nb',
    ]);
    await sideA.engine.dockerOk(['run', '-d', '--name', 'a1', '--net', 'na', 'busybox:local', 'sleep', '600']);
    await sideB.engine.dockerOk(['run', '-d', '--name', 'b1', '--net', 'nb', 'busybox:local', 'sleep', '600']);
    await sideB.engine.dockerOk(['run', '-d', '--name', 'b2', '--net', 'nb', 'busybox:local', 'sleep', '600']);
    const ports = await portsOn(net.id);
    assert.equal(ports.length, 3);
    const active = await waitActive(ports.map((p) => p.id));
    assert.deepEqual(
      active.map((p) => p['binding:host_id']).sort(),
      [hostA, h2.host, h2.host].sort(),
      'each port is bound to the host its container runs on',
    );
    assert.ok(active.every((p) => p['binding:vif_type'] === 'bridge'));
    const [a1, b1] = [await ipOf(sideA.engine, 'a1', 'na'), await ipOf(sideB.engine, 'b1', 'nb')];
    await pingFrom(sideA.engine, 'a1', b1, { tries: 20, context });
    await pingFrom(sideB.engine, 'b1', a1, { tries: 20, context });
    figures.setup = `${Date.now() - t0} ms (2 networks, 3 containers, ports ACTIVE, first pings)`;
    const rtt = await sideA.engine.docker(['exec', 'a1', 'ping', '-c', '5', '-i', '0.2', b1]);
    assert.equal(rtt.code, 0, rtt.stdout + rtt.stderr);
    figures.crossHostRtt = /min\/avg\/max = (\S+)/.exec(rtt.stdout)?.[1] ?? rtt.stdout;
    // The VXLAN tunnel between the two agents carries it: host B's bridge has a vxlan port.
    assert.ok(
      (await links(h2.netns)).some((l) => l.startsWith('vxlan-')),
      "host B's agent made a vxlan device",
    );
  });

  it("host A removes its Docker network while host B's containers keep pinging", async () => {
    assert.ok(neutronNet, 'needs the previous test');
    const b2 = await ipOf(sideB.engine, 'b2', 'nb');
    // ~8 s of pings from b1 to b2 while host A takes its container and Docker network away.
    const pinging = sideB.engine.docker(['exec', 'b1', 'ping', '-c', '40', '-i', '0.2', '-W', '1', b2], {
      timeoutMs: 60_000,
    });
    await sleep(1000);
    const t0 = Date.now();
    await sideA.engine.dockerOk(['rm', '-f', 'a1']);
    await sideA.engine.dockerOk(['network', 'rm', 'na']);
    figures.removeOnA = `${Date.now() - t0} ms`;
    const ping = await pinging;
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    assert.match(ping.stdout, / 0% packet loss/, `no ping was lost: ${ping.stdout}`);
    const left = await portsOn(neutronNet);
    assert.deepEqual(
      left.map((p) => p['binding:host_id']),
      [h2.host, h2.host],
      "host B's ports are still there, host A's is gone",
    );
    assert.ok((await sideA.neutron.listNetworks({ id: neutronNet })).length === 1, 'the network stays for host B');
    await pingFrom(sideB.engine, 'b1', b2, { tries: 5, context });
  });

  it('global scope: the same Docker network on both hosts through the plugin API; the last DeleteNetwork removes it', async () => {
    const t0 = Date.now();
    const call = async (plugin: PluginProcess, method: string, body: unknown) => {
      const r = await pluginCall<Record<string, unknown>>(plugin.socket, method, body, 60_000);
      assert.equal(r.status, 200, `${method} on ${plugin.socket}: ${r.raw}\n${plugin.logTail(20)}`);
      return r.body;
    };
    for (const p of [globalA, globalB]) {
      assert.deepEqual(await call(p, 'NetworkDriver.GetCapabilities', {}), {
        Scope: 'global',
        ConnectivityScope: 'global',
      });
    }
    const networkId = randomBytes(32).toString('hex');
    const pool = (await call(globalA, 'IpamDriver.RequestPool', {
      AddressSpace: 'no_address_space',
      Pool: `10.${x}.3.0/24`,
      Options: {},
      V6: false,
    })) as { PoolID: string; Pool: string };
    const gw = (await call(globalA, 'IpamDriver.RequestAddress', {
      PoolID: pool.PoolID,
      Address: '',
      Options: { RequestAddressType: 'com.docker.network.gateway' },
    })) as { Address: string };
    const create = {
      NetworkID: networkId,
      Options: { 'com.docker.network.generic': {} },
      IPv4Data: [{ AddressSpace: 'no_address_space', Pool: pool.Pool, Gateway: gw.Address }],
      IPv6Data: [],
    };
    // Every host creates the same Docker network (Swarm: each node, when a task needs it).
    await call(globalA, 'NetworkDriver.CreateNetwork', create);
    await call(globalB, 'NetworkDriver.CreateNetwork', create);
    const [net] = await sideA.neutron.listNetworks({ tags: [`kuryr.net.uuid.lh:${networkId.slice(0, 32)}`] });
    assert.ok(net);
    globalNet = net.id;
    assert.equal(
      (await sideA.neutron.listNetworks({ tags: [`kuryr.net.uuid.lh:${networkId.slice(0, 32)}`] })).length,
      1,
    );

    const endpoint = async (plugin: PluginProcess, n: number) => {
      const mac = `02:42:0a:${x.toString(16).padStart(2, '0')}:03:${n.toString(16).padStart(2, '0')}`;
      const addr = (await call(plugin, 'IpamDriver.RequestAddress', {
        PoolID: pool.PoolID,
        Address: '',
        Options: { 'com.docker.network.endpoint.macaddress': mac },
      })) as { Address: string };
      const id = randomBytes(32).toString('hex');
      await call(plugin, 'NetworkDriver.CreateEndpoint', {
        NetworkID: networkId,
        EndpointID: id,
        Interface: { Address: addr.Address, MacAddress: mac },
        Options: {},
      });
      return { id, address: addr.Address.split('/')[0]! };
    };
    const a1 = await endpoint(globalA, 1);
    const aLeft = await endpoint(globalA, 2); // host A never deletes this one (a crash): a leftover of host A
    const b1 = await endpoint(globalB, 3);
    const ports = await portsOn(net.id);
    const byAddress = (a: string) => ports.find((p) => p.fixed_ips.some((f) => f.ip_address === a))!;
    await waitActive(ports.map((p) => p.id));
    assert.equal(byAddress(b1.address)['binding:host_id'], h2.host);
    assert.equal(byAddress(aLeft.address)['binding:host_id'], hostA);
    const tapOf = (a: string) => `tap${byAddress(a).id.slice(0, 11)}`;

    // Host A is done with the network: its endpoint goes, then its DeleteNetwork.
    await call(globalA, 'NetworkDriver.DeleteEndpoint', { NetworkID: networkId, EndpointID: a1.id });
    await call(globalA, 'IpamDriver.ReleaseAddress', { PoolID: pool.PoolID, Address: a1.address });
    await call(globalA, 'NetworkDriver.DeleteNetwork', { NetworkID: networkId });

    const after = await portsOn(net.id);
    assert.deepEqual(
      after.map((p) => p.id),
      [byAddress(b1.address).id],
      "host A's leftover is gone, host B's port is kept",
    );
    assert.equal(after[0]!.status, 'ACTIVE');
    assert.equal(
      (await sideA.neutron.listNetworks({ id: net.id })).length,
      1,
      'the network stays while host B has ports',
    );
    assert.ok(!(await links()).includes(tapOf(aLeft.address)), "host A's leftover veth is gone");
    assert.ok((await links(h2.netns)).includes(tapOf(b1.address)), "host B's veth is still plugged");

    // Host B is the last one.
    await call(globalB, 'NetworkDriver.DeleteEndpoint', { NetworkID: networkId, EndpointID: b1.id });
    await call(globalB, 'IpamDriver.ReleaseAddress', { PoolID: pool.PoolID, Address: b1.address });
    await call(globalB, 'NetworkDriver.DeleteNetwork', { NetworkID: networkId });
    assert.deepEqual(await sideA.neutron.listNetworks({ id: net.id }), [], "the last host's DeleteNetwork removed it");
    await call(globalA, 'IpamDriver.ReleaseAddress', { PoolID: pool.PoolID, Address: gw.Address.split('/')[0]! });
    await call(globalA, 'IpamDriver.ReleasePool', { PoolID: pool.PoolID });
    figures.globalScope = `${Date.now() - t0} ms`;
  });

  it('nothing is left on either host after teardown', async () => {
    assert.ok(neutronNet, 'needs the first test');
    for (const c of ['b1', 'b2']) await sideB.engine.dockerOk(['rm', '-f', c]);
    await sideB.engine.dockerOk(['network', 'rm', 'nb']);
    // In local scope host A left its Neutron network to host B; host B only unmapped it. Host A's
    // reconciliation removes it now that nobody has ports on it (dry run first: only ours may be planned).
    const gc = async (dry: boolean) => {
      const r = await runCommand(KURYR_BIN, [
        'gc',
        '--backend',
        'neutron',
        '--config',
        sideA.confFile,
        '--driver-name',
        sideA.driver,
        '--docker-host',
        sideA.engine.host,
        '--grace',
        '0',
        '--json',
        ...(dry ? ['--dry-run'] : []),
      ]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as { actions: { kind: string; id: string }[] };
    };
    const planned = await gc(true);
    const networks = planned.actions.filter((a) => a.kind === 'network').map((a) => a.id);
    assert.ok(networks.includes(neutronNet), `host A's gc plans to remove the network: ${JSON.stringify(planned)}`);
    if (networks.length === 1) {
      await gc(false);
    } else {
      // Other leftovers of host A are not this test's to remove: its own go by hand.
      await sideA.neutron.deleteNetwork(neutronNet);
      for (const p of await sideA.neutron.listSubnetPools({ name: `kuryrPool-10.${x}.1.0/24` }))
        await sideA.neutron.deleteSubnetPool(p.id);
    }

    // Every device made for the test (veths, the agents' bridges and vxlan devices) is gone on both hosts.
    const leftovers = async () => [
      ...(await links()).filter((l) => !linksBefore.a.includes(l)),
      ...(await links(h2.netns)).filter((l) => !linksBefore.b.includes(l)).map((l) => `${h2.netns}:${l}`),
    ];
    let left = await leftovers();
    for (let i = 0; i < 40 && left.length > 0; i++) {
      await sleep(500);
      left = await leftovers();
    }
    assert.deepEqual(left, [], 'no device of the test is left on either host');
    // Nothing of this test is left in Neutron (the lab is shared: only what this test made is compared).
    const now = await neutronSnapshot(sideA.neutron);
    const added = (kind: keyof typeof now) => now[kind].filter((id) => !sideB.before[kind].includes(id));
    const mine = `10.${x}.`;
    assert.deepEqual(
      added('networks').filter((id) => id === neutronNet || id === globalNet),
      [],
      'both networks are gone',
    );
    const subnets = added('subnets').length === 0 ? [] : await sideA.neutron.listSubnets({ id: added('subnets') });
    assert.deepEqual(
      subnets.filter((s) => s.cidr.startsWith(mine)).map((s) => s.cidr),
      [],
      'no subnet is left',
    );
    const pools =
      added('subnetpools').length === 0 ? [] : await sideA.neutron.listSubnetPools({ id: added('subnetpools') });
    assert.deepEqual(
      pools.filter((p) => p.prefixes.some((c) => c.startsWith(mine))).map((p) => p.name),
      [],
    );
    const ports = added('ports').length === 0 ? [] : await sideA.neutron.listPorts({ id: added('ports') });
    assert.deepEqual(
      ports.filter((p) => p.fixed_ips.some((f) => f.ip_address.startsWith(mine))).map((p) => p.id),
      [],
      'no port is left',
    );
    assert.deepEqual(added('security_groups'), [], 'no security group is left');
  });
});
