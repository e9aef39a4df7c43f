// Two hosts on one real Neutron: the lab's host and its second host (scripts/neutron/host2.sh, a network namespace
// with its own Neutron L2 agent), each with its own private dockerd and its own kuryr-ts (its own host_id).
// Containers on the two hosts share one Neutron network and reach each other over VXLAN; one host's
// DeleteNetwork never takes the other host's ports; in global scope (every host calls DeleteNetwork for the same
// Docker network ID, as Swarm does) the network stays until the last host's call; nothing is left afterwards.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openNeutronHttp } from '../../src/neutron/http/index.ts';
import type { Port } from '../../src/neutron/types.ts';
import {
  ensureBusyboxImage,
  type PrivateDockerd,
  pingFrom,
  runCommand,
  startPrivateDockerd,
} from '../helpers/docker-engine.ts';
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
  let dir: string;
  let neutron: ReturnType<typeof openNeutronHttp>;
  let before_: Awaited<ReturnType<typeof neutronSnapshot>>;
  let linksBefore: { a: string[]; b: string[] };
  let engineA: PrivateDockerd;
  let engineB: PrivateDockerd;
  let pluginA: PluginProcess;
  let pluginB: PluginProcess;
  let globalA: PluginProcess;
  let globalB: PluginProcess;
  const driverA = `k2a${tag}`;
  let neutronNet = '';
  let globalNet = '';
  const driverB = `k2b${tag}`;

  const conf = (name: string, text: string) => {
    const file = path.join(dir, `${name}.conf`);
    // No periodic gc during the test: each plugin's own engine knows none of the other plugins' networks.
    writeFileSync(file, `${text}gc_interval = 0\n`, { mode: 0o600 });
    return file;
  };
  const confA = (scope: 'local' | 'global') =>
    conf(`a-${scope}`, hostConf({ neutronUrl: lab.noauth!.neutronUrl, hostId: hostA, scope }));
  const confB = (scope: 'local' | 'global') =>
    conf(`b-${scope}`, hostConf({ neutronUrl: h2.noauthNeutronUrl!, hostId: h2.host, scope }));
  const portsOn = async (networkId: string) =>
    neutron.listPorts({ network_id: networkId, device_owner: 'compute:kuryr' });
  const waitActive = async (ids: string[]) => {
    let ports: Port[] = [];
    for (let i = 0; i < 60; i++) {
      ports = await neutron.listPorts({ id: ids });
      if (ports.length === ids.length && ports.every((p) => p.status === 'ACTIVE')) return ports;
      await sleep(500);
    }
    assert.fail(`ports not ACTIVE: ${ports.map((p) => `${p.id} ${p.status} on ${p['binding:host_id']}`).join(', ')}`);
  };
  const ipOf = async (engine: PrivateDockerd, c: string, net: string) =>
    (await engine.dockerOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, c])).trim();
  const context = () => `--- host A plugin ---\n${pluginA.logTail(15)}\n--- host B plugin ---\n${pluginB.logTail(15)}`;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kx-2h-'));
    neutron = openNeutronHttp({ auth_type: 'none', endpoint: lab.noauth!.neutronUrl });
    before_ = await neutronSnapshot(neutron);
    linksBefore = { a: await links(), b: await links(h2.netns) };
    const t0 = Date.now();
    [engineA, engineB] = await Promise.all([
      startPrivateDockerd({ name: `2h-a-${tag}` }),
      startPrivateDockerd({ name: `2h-b-${tag}`, netns: h2.netns }),
    ]);
    await Promise.all([ensureBusyboxImage(engineA), ensureBusyboxImage(engineB)]);
    figures.engines = `${Date.now() - t0} ms`;
    const state = (n: string) => path.join(dir, n);
    [pluginA, pluginB, globalA, globalB] = await Promise.all([
      startPlugin({
        driverName: driverA,
        stateDir: state('a'),
        extraArgs: ['--backend', 'neutron', '--config', confA('local'), '--docker-host', engineA.host],
      }),
      startPlugin({
        driverName: driverB,
        stateDir: state('b'),
        netns: h2.netns,
        extraArgs: ['--backend', 'neutron', '--config', confB('local'), '--docker-host', engineB.host],
      }),
      // The global-scope pair is driven through the plugin API only (no dockerd uses these sockets).
      startPlugin({
        driverName: `k2ga${tag}`,
        stateDir: state('ga'),
        socketPath: path.join(dir, 'ga.sock'),
        extraArgs: ['--backend', 'neutron', '--config', confA('global'), '--docker-host', engineA.host],
      }),
      startPlugin({
        driverName: `k2gb${tag}`,
        stateDir: state('gb'),
        socketPath: path.join(dir, 'gb.sock'),
        netns: h2.netns,
        extraArgs: ['--backend', 'neutron', '--config', confB('global'), '--docker-host', engineB.host],
      }),
    ]);
  });

  after(async () => {
    await Promise.all([engineA?.stop({ killContainers: true }), engineB?.stop({ killContainers: true })]);
    await Promise.all([pluginA?.stop(), pluginB?.stop(), globalA?.stop(), globalB?.stop()]);
    // After a failure, what this test made in Neutron (nothing when every test passed).
    for (const id of neutron === undefined ? [] : [neutronNet, globalNet].filter(Boolean)) {
      for (const p of await neutron.listPorts({ network_id: id }).catch(() => [])) {
        if (!p.device_owner.startsWith('network:')) await neutron.deletePort(p.id).catch(() => undefined);
      }
      await neutron.deleteNetwork(id).catch(() => undefined);
    }
    for (const cidr of neutron === undefined ? [] : [`10.${x}.1.0/24`, `10.${x}.3.0/24`]) {
      for (const pool of await neutron.listSubnetPools({ name: `kuryrPool-${cidr}` }).catch(() => []))
        await neutron.deleteSubnetPool(pool.id).catch(() => undefined);
    }
    await neutron?.close();
    rmSync(dir, { recursive: true, force: true });
    if (Object.keys(figures).length > 0) console.log(`# two-host figures: ${JSON.stringify(figures)}`);
  });

  it('one Neutron network with a container on each host: they ping each other across the hosts', async () => {
    const t0 = Date.now();
    // Host A's kuryr-ts makes the Neutron network; host B maps its own Docker network onto it.
    await engineA.dockerOk([
      'network',
      'create',
      '-d',
      driverA,
      '--ipam-driver',
      driverA,
      '--subnet',
      `10.${x}.1.0/24`,
      'na',
    ]);
    const idA = (await engineA.dockerOk(['network', 'inspect', '-f', '{{.Id}}', 'na'])).trim();
    const [net] = await neutron.listNetworks({ tags: [`kuryr.net.uuid.lh:${idA.slice(0, 32)}`] });
    assert.ok(net, "host A's Docker network has a Neutron network");
    neutronNet = net.id;
    await engineB.dockerOk([
      'network',
      'create',
      '-d',
      driverB,
      '--ipam-driver',
      driverB,
      '--subnet',
      `10.${x}.1.0/24`,
      '-o',
      `neutron.net.uuid=${net.id}`,
      'nb',
    ]);
    await engineA.dockerOk(['run', '-d', '--name', 'a1', '--net', 'na', 'busybox:local', 'sleep', '600']);
    await engineB.dockerOk(['run', '-d', '--name', 'b1', '--net', 'nb', 'busybox:local', 'sleep', '600']);
    await engineB.dockerOk(['run', '-d', '--name', 'b2', '--net', 'nb', 'busybox:local', 'sleep', '600']);
    const ports = await portsOn(net.id);
    assert.equal(ports.length, 3);
    const active = await waitActive(ports.map((p) => p.id));
    assert.deepEqual(
      active.map((p) => p['binding:host_id']).sort(),
      [hostA, h2.host, h2.host].sort(),
      'each port is bound to the host its container runs on',
    );
    assert.ok(active.every((p) => p['binding:vif_type'] === 'bridge'));
    const [a1, b1] = [await ipOf(engineA, 'a1', 'na'), await ipOf(engineB, 'b1', 'nb')];
    await pingFrom(engineA, 'a1', b1, { tries: 20, context });
    await pingFrom(engineB, 'b1', a1, { tries: 20, context });
    figures.setup = `${Date.now() - t0} ms (2 networks, 3 containers, ports ACTIVE, first pings)`;
    const rtt = await engineA.docker(['exec', 'a1', 'ping', '-c', '5', '-i', '0.2', b1]);
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
    const b2 = await ipOf(engineB, 'b2', 'nb');
    // ~8 s of pings from b1 to b2 while host A takes its container and Docker network away.
    const pinging = engineB.docker(['exec', 'b1', 'ping', '-c', '40', '-i', '0.2', '-W', '1', b2], {
      timeoutMs: 60_000,
    });
    await sleep(1000);
    const t0 = Date.now();
    await engineA.dockerOk(['rm', '-f', 'a1']);
    await engineA.dockerOk(['network', 'rm', 'na']);
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
    assert.ok((await neutron.listNetworks({ id: neutronNet })).length === 1, 'the network stays for host B');
    await pingFrom(engineB, 'b1', b2, { tries: 5, context });
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
    const [net] = await neutron.listNetworks({ tags: [`kuryr.net.uuid.lh:${networkId.slice(0, 32)}`] });
    assert.ok(net);
    globalNet = net.id;
    assert.equal((await neutron.listNetworks({ tags: [`kuryr.net.uuid.lh:${networkId.slice(0, 32)}`] })).length, 1);

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
    assert.equal((await neutron.listNetworks({ id: net.id })).length, 1, 'the network stays while host B has ports');
    assert.ok(!(await links()).includes(tapOf(aLeft.address)), "host A's leftover veth is gone");
    assert.ok((await links(h2.netns)).includes(tapOf(b1.address)), "host B's veth is still plugged");

    // Host B is the last one.
    await call(globalB, 'NetworkDriver.DeleteEndpoint', { NetworkID: networkId, EndpointID: b1.id });
    await call(globalB, 'IpamDriver.ReleaseAddress', { PoolID: pool.PoolID, Address: b1.address });
    await call(globalB, 'NetworkDriver.DeleteNetwork', { NetworkID: networkId });
    assert.deepEqual(await neutron.listNetworks({ id: net.id }), [], "the last host's DeleteNetwork removed it");
    await call(globalA, 'IpamDriver.ReleaseAddress', { PoolID: pool.PoolID, Address: gw.Address.split('/')[0]! });
    await call(globalA, 'IpamDriver.ReleasePool', { PoolID: pool.PoolID });
    figures.globalScope = `${Date.now() - t0} ms`;
  });

  it('nothing is left on either host after teardown', async () => {
    assert.ok(neutronNet, 'needs the first test');
    for (const c of ['b1', 'b2']) await engineB.dockerOk(['rm', '-f', c]);
    await engineB.dockerOk(['network', 'rm', 'nb']);
    // In local scope host A left its Neutron network to host B; host B only unmapped it. Host A's
    // reconciliation removes it now that nobody has ports on it (dry run first: only ours may be planned).
    const gc = async (dry: boolean) => {
      const r = await runCommand(KURYR_BIN, [
        'gc',
        '--backend',
        'neutron',
        '--config',
        path.join(dir, 'a-local.conf'),
        '--driver-name',
        driverA,
        '--docker-host',
        engineA.host,
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
      await neutron.deleteNetwork(neutronNet);
      for (const p of await neutron.listSubnetPools({ name: `kuryrPool-10.${x}.1.0/24` }))
        await neutron.deleteSubnetPool(p.id);
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
    const now = await neutronSnapshot(neutron);
    const added = (kind: keyof typeof now) => now[kind].filter((id) => !before_[kind].includes(id));
    const mine = `10.${x}.`;
    assert.deepEqual(
      added('networks').filter((id) => id === neutronNet || id === globalNet),
      [],
      'both networks are gone',
    );
    const subnets = added('subnets').length === 0 ? [] : await neutron.listSubnets({ id: added('subnets') });
    assert.deepEqual(
      subnets.filter((s) => s.cidr.startsWith(mine)).map((s) => s.cidr),
      [],
      'no subnet is left',
    );
    const pools = added('subnetpools').length === 0 ? [] : await neutron.listSubnetPools({ id: added('subnetpools') });
    assert.deepEqual(
      pools.filter((p) => p.prefixes.some((c) => c.startsWith(mine))).map((p) => p.name),
      [],
    );
    const ports = added('ports').length === 0 ? [] : await neutron.listPorts({ id: added('ports') });
    assert.deepEqual(
      ports.filter((p) => p.fixed_ips.some((f) => f.ip_address.startsWith(mine))).map((p) => p.id),
      [],
      'no port is left',
    );
    assert.deepEqual(added('security_groups'), [], 'no security group is left');
  });
});
