// End to end on a real Neutron that has no tag extension (the lab's Neutron behind tagless-proxy.ts, which hides
// `standard-attr-tag`/`tag`/`tag-ext`, refuses every tag call and strips `tags` from answers), with a private
// real Docker engine: kuryr-ts falls back to kuryr-libnetwork's name-based mode without
// its defects. Containers ping each other on ACTIVE ports, a pre-existing network and a pre-created port are used
// and given back as they were, and afterwards Neutron holds exactly what it held before. Not one tag request.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Network, Port, Subnet } from '../../src/neutron/types.ts';
import { pingFrom } from '../helpers/docker-engine.ts';
import { e2eFixture } from '../helpers/e2e.ts';
import { neutronLab, neutronSnapshot } from '../helpers/neutron-lab.ts';
import { startTaglessProxy, type TaglessProxy } from '../helpers/tagless-proxy.ts';

const notRoot = process.getuid?.() !== 0;
const lab = await neutronLab();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const skip = notRoot ? 'needs root' : lab.skip.noauth;

describe('Docker on a real Neutron without the tag extension', { skip }, () => {
  const x = 100 + Math.floor(Math.random() * 150);
  let proxy: TaglessProxy;
  let vmNet: Network;
  let vmSubnet: Subnet;
  let preCreated: Port;

  const env = e2eFixture({
    name: 'tagless',
    driverPrefix: 'kt',
    backend: 'neutron',
    lab,
    // the client (straight to Neutron, not through the proxy) sees the tags, so it can tell none were written
    mode: 'noauth',
    setup: async ({ neutron }) => {
      proxy = await startTaglessProxy({ target: lab.noauth!.neutronUrl });
      // What an operator (or an orchestrator) made beforehand: a network for VMs and an unbound port on it.
      vmNet = await neutron.createNetwork({ name: `vm-net-${tag}`, description: 'made by the operator' });
      [vmSubnet] = (await neutron.createSubnets([
        { network_id: vmNet.id, ip_version: 4, cidr: `10.${x}.3.0/24`, name: `vm-subnet-${tag}` },
      ])) as [Subnet];
      preCreated = await neutron.createPort({
        name: `zun-port-${tag}`,
        network_id: vmNet.id,
        fixed_ips: [{ subnet_id: vmSubnet.id, ip_address: `10.${x}.3.60` }],
      });
    },
    conf: () => `[neutron]\nauth_type = none\nendpoint = ${proxy.url}\n`,
    // The operator's resources made above go last, whatever happened.
    cleanup: async ({ neutron }) => {
      if (preCreated) await neutron.deletePort(preCreated.id).catch(() => undefined);
      if (vmNet) await neutron.deleteNetwork(vmNet.id).catch(() => undefined);
      await proxy?.close();
    },
  });
  const { tag, driver } = env;
  const snapshot = () => neutronSnapshot(env.neutron);
  const ipOf = async (c: string, net: string) =>
    (
      await env.engine.dockerOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, c])
    ).trim();
  const dockerIdOf = async (net: string) =>
    (await env.engine.dockerOk(['network', 'inspect', '-f', '{{.Id}}', net])).trim();
  const ping = (from: string, to: string) =>
    pingFrom(env.engine, from, to, { tries: 10, context: () => `plugin log:\n${env.plugin.logTail(20)}` });
  const waitActive = async (ids: string[]) => {
    for (let i = 0; i < 40; i++) {
      if ((await env.neutron.listPorts({ id: ids })).every((p) => p.status === 'ACTIVE')) return;
      await sleep(500);
    }
    assert.deepEqual(
      (await env.neutron.listPorts({ id: ids })).map((p) => p.status),
      ids.map(() => 'ACTIVE'),
      lab.mechanismDriver === 'ovn' ? 'ovn-controller claimed the ports' : 'the linuxbridge agent wired the ports',
    );
  };

  it('starts in name-based mode and says so', () => {
    assert.match(env.plugin.logTail(50), /this Neutron lacks the tag extension: kuryr-ts finds its resources by names/);
  });

  it('a network of its own: named after the Docker ID, two containers ping each other on ACTIVE ports', async () => {
    await env.engine.dockerOk([
      'network',
      'create',
      '-d',
      driver,
      '--ipam-driver',
      driver,
      '--subnet',
      `10.${x}.2.0/24`,
      'n1',
    ]);
    const id = await dockerIdOf('n1');
    const [network] = await env.neutron.listNetworks({ name: id });
    assert.ok(network, 'the Neutron network is named after the Docker network ID, as kuryr-libnetwork names it');
    assert.deepEqual(network.tags, [], 'no tag written');
    await env.engine.dockerOk(['run', '-d', '--name', 'ca', '--net', 'n1', 'busybox:local', 'sleep', '600']);
    await env.engine.dockerOk(['run', '-d', '--name', 'cb', '--net', 'n1', 'busybox:local', 'sleep', '600']);
    await ping('ca', await ipOf('cb', 'n1'));
    const ports = await env.neutron.listPorts({ network_id: network.id, device_owner: 'compute:kuryr' });
    assert.equal(ports.length, 2);
    for (const p of ports) {
      assert.equal(p.name, `${p.device_id}-port`, 'named after its endpoint, as the original names it');
      assert.deepEqual(p.tags, []);
    }
    await waitActive(ports.map((p) => p.id));
  });

  it('a pre-existing network and a pre-created port (--ip) are used; the operator gets both back as they were', async () => {
    await env.engine.dockerOk([
      'network',
      'create',
      '-d',
      driver,
      '--ipam-driver',
      driver,
      '--subnet',
      `10.${x}.3.0/24`,
      '-o',
      `neutron.net.name=vm-net-${tag}`,
      'n2',
    ]);
    const id = await dockerIdOf('n2');
    const during = await env.neutron.showNetwork(vmNet.id);
    assert.equal(during.name, id, 'renamed to the Docker ID while Docker uses it (found again by name)');
    assert.equal((await env.neutron.listSubnets({ network_id: vmNet.id })).length, 1, 'its subnet is used, not copied');
    await env.engine.dockerOk([
      'run',
      '-d',
      '--name',
      'cz',
      '--net',
      'n2',
      '--ip',
      `10.${x}.3.60`,
      'busybox:local',
      'sleep',
      '600',
    ]);
    await env.engine.dockerOk(['run', '-d', '--name', 'cy', '--net', 'n2', 'busybox:local', 'sleep', '600']);
    await ping('cy', `10.${x}.3.60`);
    const port = await env.neutron.showPort(preCreated.id);
    assert.equal(port.device_owner, 'compute:kuryr', 'the pre-created port is the container’s');
    assert.equal(port.name, `zun-port-${tag}`, 'and keeps its name');
    await waitActive([port.id]);
    await env.engine.dockerOk(['rm', '-f', 'cz', 'cy']);
    const handedBack = await env.neutron.showPort(preCreated.id);
    assert.equal(handedBack.device_id, '');
    assert.equal(handedBack.device_owner, '');
    assert.equal(handedBack['binding:host_id'], '');
    await env.engine.dockerOk(['network', 'rm', 'n2']);
    const after = await env.neutron.showNetwork(vmNet.id);
    assert.equal(after.name, `vm-net-${tag}`, 'its name is given back');
    assert.equal(after.description, 'made by the operator');
    assert.deepEqual(
      (await env.neutron.listSubnets({ network_id: vmNet.id })).map((s) => s.id),
      [vmSubnet.id],
    );
    assert.deepEqual(
      (await env.neutron.listPorts({ network_id: vmNet.id, device_owner: '' })).map((p) => p.id),
      [preCreated.id],
    );
  });

  it('after teardown Neutron holds exactly what it held before, and no tag was ever asked for', async () => {
    await env.engine.dockerOk(['rm', '-f', 'ca', 'cb']);
    await env.engine.dockerOk(['network', 'rm', 'n1']);
    await env.neutron.deletePort(preCreated.id);
    await env.neutron.deleteNetwork(vmNet.id);
    const before_: Record<string, string[]> = env.before;
    const now = await snapshot();
    for (const kind of Object.keys(before_)) {
      const added = now[kind as keyof typeof now].filter((id) => !before_[kind]!.includes(id));
      assert.deepEqual(added, [], `no ${kind} of ours is left; plugin log:\n${env.plugin.logTail(30)}`);
    }
    assert.deepEqual(proxy.violations, [], 'not one tag request reached the tagless Neutron');
    assert.ok(proxy.requests.length > 20, 'the plugin did talk to Neutron through the proxy');
  });
});
