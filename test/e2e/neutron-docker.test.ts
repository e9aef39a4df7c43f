// End to end against a real Neutron (the lab: Zed, ML2 linuxbridge + agents, Keystone v3 and noauth) and a
// private real Docker engine: containers on Neutron ports that go ACTIVE, pings, static addresses, exposed
// ports as security groups, and after teardown Neutron holds exactly what it held before.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pingFrom } from '../helpers/docker-engine.ts';
import { e2eFixture } from '../helpers/e2e.ts';
import { neutronLab, neutronSnapshot } from '../helpers/neutron-lab.ts';
import { ovsInterfaceIds } from '../helpers/ovs.ts';

const notRoot = process.getuid?.() !== 0;
const lab = await neutronLab();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

for (const mode of ['keystone', 'noauth'] as const) {
  const skip = notRoot ? 'needs root' : lab.skip[mode];
  describe(`Docker on a real Neutron (${mode})`, { skip }, () => {
    const x = 100 + Math.floor(Math.random() * 150);
    const env = e2eFixture({ name: `neutron-${mode}`, driverPrefix: 'kn', backend: 'neutron', lab, mode });
    const { driver } = env;

    const snapshot = () => neutronSnapshot(env.neutron);
    const ipOf = async (c: string, net: string) =>
      (
        await env.engine.dockerOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, c])
      ).trim();
    const ping = (from: string, to: string) => pingFrom(env.engine, from, to, { tries: 10 });

    it('network without --gateway, two containers on ACTIVE ports ping each other', async () => {
      await env.engine.dockerOk([
        'network',
        'create',
        '-d',
        driver,
        '--ipam-driver',
        driver,
        '--subnet',
        `10.${x}.1.0/24`,
        'n1',
      ]);
      // The static address first: Neutron hands out addresses at random and could give it to the other one.
      await env.engine.dockerOk([
        'run',
        '-d',
        '--name',
        'cb',
        '--net',
        'n1',
        '--ip',
        `10.${x}.1.50`,
        'busybox:local',
        'sleep',
        '600',
      ]);
      await env.engine.dockerOk(['run', '-d', '--name', 'ca', '--net', 'n1', 'busybox:local', 'sleep', '600']);
      assert.equal(await ipOf('cb', 'n1'), `10.${x}.1.50`);
      await ping('ca', `10.${x}.1.50`);
      const ours = await env.neutron.listPorts({ device_owner: 'compute:kuryr' });
      const mine = ours.filter((p) => p.fixed_ips.some((f) => f.ip_address.startsWith(`10.${x}.1.`)));
      assert.equal(mine.length, 2);
      for (
        let i = 0;
        i < 40 && !(await env.neutron.listPorts({ id: mine.map((p) => p.id) })).every((p) => p.status === 'ACTIVE');
        i++
      ) {
        await sleep(500);
      }
      const states = (await env.neutron.listPorts({ id: mine.map((p) => p.id) })).map((p) => p.status);
      const wiredBy = lab.mechanismDriver === 'ovn' ? 'ovn-controller claimed' : 'the linuxbridge agent wired';
      assert.deepEqual(states, ['ACTIVE', 'ACTIVE'], `${wiredBy} both ports`);
      for (const p of mine) {
        assert.equal(p['binding:vif_type'], lab.vifType);
        assert.equal(p.device_owner, 'compute:kuryr');
        if (lab.vifType === 'ovs') {
          // Plugged as os-vif does: the host end of the veth in br-int, with the external ids ovn-controller reads.
          const ids = await ovsInterfaceIds(p.id);
          assert.equal(ids.bridge, lab.ovsBridge ?? 'br-int');
          assert.equal(ids.external_ids['attached-mac'], p.mac_address);
          assert.equal(ids.external_ids['vm-uuid'], p.device_id);
          assert.equal(ids.external_ids['iface-status'], 'active');
          assert.equal(ids.external_ids.owner, 'kuryr');
          assert.equal(ids.external_ids['kuryr-ts-owner'], driver, 'the plugin instance, for its gc');
        }
      }
      // The Docker network's name is recorded in the Neutron network's description.
      const id = (await env.engine.dockerOk(['network', 'inspect', '-f', '{{.Id}}', 'n1'])).trim();
      let description = '';
      for (let i = 0; i < 40 && !description.includes(' n1 '); i++) {
        description = (await env.neutron.listNetworks({ name: `kuryr-net-${id.slice(0, 8)}` }))[0]?.description ?? '';
        if (!description.includes(' n1 ')) await sleep(250);
      }
      assert.match(description, new RegExp(`^Docker network n1 ${id} \\(kuryr-ts \\S+ on .+\\)$`));
      // The container's interface has the Neutron network's MTU (VXLAN 1450 on the Linux bridge lab, Geneve 1442
      // on the OVN lab), so full-size packets survive the tunnel.
      const [network] = await env.neutron.listNetworks({ name: `kuryr-net-${id.slice(0, 8)}` });
      const mtu = (await env.engine.dockerOk(['exec', 'ca', 'cat', '/sys/class/net/eth0/mtu'])).trim();
      assert.equal(Number(mtu), network!.mtu);
    });

    it('--expose becomes a security group on the port, removed with the container', async () => {
      await env.engine.dockerOk([
        'run',
        '-d',
        '--name',
        'web',
        '--net',
        'n1',
        '--expose',
        '80',
        '--expose',
        '81',
        'busybox:local',
        'sleep',
        '600',
      ]);
      const ip = await ipOf('web', 'n1');
      const [port] = await env.neutron.listPorts({ fixed_ips: [`ip_address=${ip}`], device_owner: 'compute:kuryr' });
      const groups = await env.neutron.listSecurityGroups({ name: `${port!.id}-exposed_ports` });
      assert.equal(groups.length, 1);
      assert.ok(port!.security_groups.includes(groups[0]!.id));
      const ranges = groups[0]!.security_group_rules
        .filter((r) => r.direction === 'ingress')
        .map((r) => `${r.protocol}:${r.port_range_min}-${r.port_range_max}`);
      assert.deepEqual(ranges, ['tcp:80-81']);
      await env.engine.dockerOk(['rm', '-f', 'web']);
      assert.equal((await env.neutron.listSecurityGroups({ name: `${port!.id}-exposed_ports` })).length, 0);
    });

    it('after teardown Neutron holds exactly what it held before', async () => {
      await env.engine.dockerOk(['rm', '-f', 'ca', 'cb']);
      await env.engine.dockerOk(['network', 'rm', 'n1']);
      const before_: Record<string, string[]> = env.before;
      const now = await snapshot();
      for (const kind of Object.keys(before_)) {
        const added = now[kind as keyof typeof now].filter((id) => !before_[kind]!.includes(id));
        assert.deepEqual(added, [], `no ${kind} of ours is left; plugin log:\n${env.plugin.logTail(30)}`);
        // The lab may be shared with other test runs; in CI nothing else runs, so this is exact equality.
        if (process.env.CI) assert.deepEqual(now[kind as keyof typeof now], before_[kind], `${kind} as before`);
      }
    });
  });
}
