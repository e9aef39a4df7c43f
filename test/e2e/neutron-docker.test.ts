// End to end against a real Neutron (the lab: Zed, ML2 linuxbridge + agents, Keystone v3 and noauth) and a
// private real Docker engine: containers on Neutron ports that go ACTIVE, pings, static addresses, exposed
// ports as security groups, and after teardown Neutron holds exactly what it held before.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openNeutronHttp } from '../../src/neutron/http/index.ts';
import { ensureBusyboxImage, type PrivateDockerd, pingFrom, startPrivateDockerd } from '../helpers/docker-engine.ts';
import { neutronConfSection, neutronLab, neutronSnapshot } from '../helpers/neutron-lab.ts';
import { ovsInterfaceIds } from '../helpers/ovs.ts';
import { type PluginProcess, startPlugin } from '../helpers/plugin-process.ts';

const notRoot = process.getuid?.() !== 0;
const lab = await neutronLab();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

for (const mode of ['keystone', 'noauth'] as const) {
  const skip = notRoot ? 'needs root' : lab.skip[mode];
  describe(`Docker on a real Neutron (${mode})`, { skip }, () => {
    const tag = Math.random().toString(36).slice(2, 8);
    const driver = `kn${tag}`;
    const x = 100 + Math.floor(Math.random() * 150);
    let dir: string;
    let conf: string;
    let engine: PrivateDockerd;
    let plugin: PluginProcess;
    let neutron: ReturnType<typeof openNeutronHttp>;
    let before_: Record<string, string[]>;

    const snapshot = () => neutronSnapshot(neutron);
    const ipOf = async (c: string, net: string) =>
      (await engine.dockerOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, c])).trim();
    const ping = (from: string, to: string) => pingFrom(engine, from, to, { tries: 10 });

    before(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'kx-neutron-'));
      conf = path.join(dir, 'kuryr.conf');
      writeFileSync(conf, neutronConfSection(lab, mode), { mode: 0o600 });
      const section = Object.fromEntries(
        neutronConfSection(lab, mode)
          .split('\n')
          .filter((l) => l.includes(' = '))
          .map((l) => l.split(' = ') as [string, string]),
      );
      neutron = openNeutronHttp(section);
      before_ = await snapshot();
      engine = await startPrivateDockerd({ name: `neutron-${mode}-${tag}` });
      await ensureBusyboxImage(engine);
      plugin = await startPlugin({
        driverName: driver,
        stateDir: path.join(dir, 'state'),
        extraArgs: ['--backend', 'neutron', '--config', conf, '--docker-host', engine.host],
      });
    });

    after(async () => {
      await engine?.stop({ killContainers: true });
      await plugin?.stop();
      await neutron?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('network without --gateway, two containers on ACTIVE ports ping each other', async () => {
      await engine.dockerOk([
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
      await engine.dockerOk([
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
      await engine.dockerOk(['run', '-d', '--name', 'ca', '--net', 'n1', 'busybox:local', 'sleep', '600']);
      assert.equal(await ipOf('cb', 'n1'), `10.${x}.1.50`);
      await ping('ca', `10.${x}.1.50`);
      const ours = await neutron.listPorts({ device_owner: 'compute:kuryr' });
      const mine = ours.filter((p) => p.fixed_ips.some((f) => f.ip_address.startsWith(`10.${x}.1.`)));
      assert.equal(mine.length, 2);
      for (
        let i = 0;
        i < 40 && !(await neutron.listPorts({ id: mine.map((p) => p.id) })).every((p) => p.status === 'ACTIVE');
        i++
      ) {
        await sleep(500);
      }
      const states = (await neutron.listPorts({ id: mine.map((p) => p.id) })).map((p) => p.status);
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
      const id = (await engine.dockerOk(['network', 'inspect', '-f', '{{.Id}}', 'n1'])).trim();
      let description = '';
      for (let i = 0; i < 40 && !description.includes(' n1 '); i++) {
        description = (await neutron.listNetworks({ name: `kuryr-net-${id.slice(0, 8)}` }))[0]?.description ?? '';
        if (!description.includes(' n1 ')) await sleep(250);
      }
      assert.match(description, new RegExp(`^Docker network n1 ${id} \\(kuryr-ts \\S+ on .+\\)$`));
      // The container's interface has the Neutron network's MTU (VXLAN 1450 on the Linux bridge lab, Geneve 1442
      // on the OVN lab), so full-size packets survive the tunnel.
      const [network] = await neutron.listNetworks({ name: `kuryr-net-${id.slice(0, 8)}` });
      const mtu = (await engine.dockerOk(['exec', 'ca', 'cat', '/sys/class/net/eth0/mtu'])).trim();
      assert.equal(Number(mtu), network!.mtu);
    });

    it('--expose becomes a security group on the port, removed with the container', async () => {
      await engine.dockerOk([
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
      const [port] = await neutron.listPorts({ fixed_ips: [`ip_address=${ip}`], device_owner: 'compute:kuryr' });
      const groups = await neutron.listSecurityGroups({ name: `${port!.id}-exposed_ports` });
      assert.equal(groups.length, 1);
      assert.ok(port!.security_groups.includes(groups[0]!.id));
      const ranges = groups[0]!.security_group_rules
        .filter((r) => r.direction === 'ingress')
        .map((r) => `${r.protocol}:${r.port_range_min}-${r.port_range_max}`);
      assert.deepEqual(ranges, ['tcp:80-81']);
      await engine.dockerOk(['rm', '-f', 'web']);
      assert.equal((await neutron.listSecurityGroups({ name: `${port!.id}-exposed_ports` })).length, 0);
    });

    it('after teardown Neutron holds exactly what it held before', async () => {
      await engine.dockerOk(['rm', '-f', 'ca', 'cb']);
      await engine.dockerOk(['network', 'rm', 'n1']);
      const now = await snapshot();
      for (const kind of Object.keys(before_)) {
        const added = now[kind as keyof typeof now].filter((id) => !before_[kind]!.includes(id));
        assert.deepEqual(added, [], `no ${kind} of ours is left; plugin log:\n${plugin.logTail(30)}`);
        // The lab may be shared with other test runs; in CI nothing else runs, so this is exact equality.
        if (process.env.CI) assert.deepEqual(now[kind as keyof typeof now], before_[kind], `${kind} as before`);
      }
    });
  });
}
