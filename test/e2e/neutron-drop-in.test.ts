// Drop-in behaviours on a real Neutron (the lab, Keystone mode) with a private real Docker engine and the real
// plugin process:
// - `docker network create -o neutron.net.name=N --subnet X/16 --ip-range X/24` on an operator's network whose
//   subnet is the /24: the plugin uses that subnet (no overlapping /16 is attempted), a container gets an
//   address of the /24, and the teardown leaves the operator's network and subnet as they were;
// - `[neutron] vif_plugging_is_fatal = true`: `docker run` returns only once the linuxbridge agent has made the
//   container's port ACTIVE.
// Skipped, with the reason, without root or the lab. Run under /tmp/kuryr-e2e.lock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Network, Subnet } from '../../src/neutron/types.ts';
import { e2eFixture } from '../helpers/e2e.ts';
import { neutronLab } from '../helpers/neutron-lab.ts';

const notRoot = process.getuid?.() !== 0;
const lab = await neutronLab();
const skip = notRoot ? 'needs root' : lab.skip.keystone;

describe('drop-in on a real Neutron: --ip-range equal to an existing subnet, vif_plugging_is_fatal', { skip }, () => {
  let net: Network;
  let sub: Subnet;

  const env = e2eFixture({
    name: 'dropin',
    driverPrefix: 'kd',
    backend: 'neutron',
    lab,
    mode: 'keystone',
    snapshot: false,
    setup: async ({ neutron }) => {
      // The operator's network: a /24 that is the ip-range of the Docker network to come.
      net = await neutron.createNetwork({ name: opsNet, description: 'made by the operator', admin_state_up: true });
      [sub] = (await neutron.createSubnets([
        {
          network_id: net.id,
          name: `${opsNet}-v4`,
          ip_version: 4,
          cidr: range,
          enable_dhcp: false,
          allocation_pools: [{ start: `10.${second}.0.100`, end: `10.${second}.0.150` }],
        },
      ])) as [Subnet];
      net = await neutron.showNetwork(net.id);
    },
    conf: ({ neutronSection }) => `${neutronSection}vif_plugging_is_fatal = true\nvif_plugging_timeout = 15\n`,
    pluginArgs: ['--log-level', 'debug'],
    cleanup: async ({ neutron }) => {
      const gone = (p: Promise<unknown>) => p.catch(() => undefined);
      if (sub !== undefined) await gone(neutron.deleteSubnet(sub.id));
      if (net !== undefined) await gone(neutron.deleteNetwork(net.id));
      for (const pool of await neutron.listSubnetPools({ name: `kuryrPool-${wide}` })) {
        await gone(neutron.deleteSubnetPool(pool.id));
      }
    },
  });
  const { tag, driver } = env;
  const opsNet = `kx-ops-${tag}`;
  const dockerNet = `kx-range-${tag}`;
  const second = 200 + Math.floor(Math.random() * 50);
  const wide = `10.${second}.0.0/16`;
  const range = `10.${second}.0.0/24`;

  it('uses the operator /24, the container gets an address of it, its port ACTIVE when docker run returns', async () => {
    const created = await env.engine.docker([
      'network',
      'create',
      '-d',
      driver,
      '--ipam-driver',
      driver,
      '-o',
      `neutron.net.name=${opsNet}`,
      '--subnet',
      wide,
      '--ip-range',
      range,
      dockerNet,
    ]);
    assert.equal(created.code, 0, `${created.stderr}\nplugin log:\n${env.plugin.logTail(30)}`);
    assert.deepEqual(
      (await env.neutron.listSubnets({ network_id: net.id })).map((s) => s.cidr),
      [range],
      'no /16 was added to the operator network',
    );

    await env.engine.dockerOk(['run', '-d', '--name', `c1-${tag}`, '--net', dockerNet, 'busybox:local', 'sleep', '1d']);
    const ip = (
      await env.engine.dockerOk([
        'inspect',
        '-f',
        `{{(index .NetworkSettings.Networks "${dockerNet}").IPAddress}}`,
        `c1-${tag}`,
      ])
    ).trim();
    const last = Number(ip.split('.')[3]);
    assert.ok(ip.startsWith(`10.${second}.0.`) && last >= 100 && last <= 150, `${ip} is from the operator's pool`);
    // No polling here: with vif_plugging_is_fatal, CreateEndpoint returned only once the port was ACTIVE.
    const ports = await env.neutron.listPorts({ network_id: net.id, fixed_ips: [`ip_address=${ip}`] });
    assert.equal(ports.length, 1);
    assert.equal(ports[0]!.status, 'ACTIVE', `port ${ports[0]!.id} when docker run returned`);
    assert.equal(ports[0]!.fixed_ips[0]?.subnet_id, sub.id);
  });

  it("teardown leaves the operator's network and subnet as they were", async () => {
    await env.engine.dockerOk(['rm', '-f', `c1-${tag}`]);
    await env.engine.dockerOk(['network', 'rm', dockerNet]);
    const netAfter = await env.neutron.showNetwork(net.id);
    const subAfter = await env.neutron.showSubnet(sub.id);
    assert.equal(netAfter.name, opsNet);
    assert.equal(netAfter.description, 'made by the operator');
    assert.deepEqual(netAfter.tags, net.tags);
    assert.deepEqual(netAfter.subnets, [sub.id]);
    assert.equal(subAfter.name, sub.name);
    assert.deepEqual(subAfter.tags, sub.tags);
    assert.deepEqual(subAfter.allocation_pools, sub.allocation_pools);
    assert.equal(subAfter.gateway_ip, sub.gateway_ip);
    assert.deepEqual(await env.neutron.listPorts({ network_id: net.id }), []);
    assert.deepEqual(await env.neutron.listSubnetPools({ name: `kuryrPool-${wide}` }), [], 'our pool is gone');
  });
});
