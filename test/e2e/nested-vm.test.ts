/**
 * Containers inside a "Nova VM" with the nested port driver (macvlan), end to end against the Linux bridge
 * lab's real Neutron: the VM is a network namespace whose NIC carries a real Neutron port
 * (test/helpers/nested-vm-lab.ts); inside it run a private dockerd and kuryr-ts with
 * `default_port_driver = kuryr_libnetwork.port_driver.drivers.nested`, `[binding] default_driver = macvlan`,
 * `link_iface = eth0`.
 *
 * Proves: the VM port is found from eth0's MAC; containers' ports are made on the VM port's network and bound
 * to the VM's hostname; each container's IP/MAC is added to the VM port's allowed_address_pairs and removed on
 * `docker rm`; the containers' interfaces are macvlan children of eth0; two containers reach each other and a
 * Neutron port outside the VM, through anti-spoofing that drops what the pairs do not allow (shown by taking
 * one pair away); 10 parallel `docker run`s and `docker rm -f`s gain and lose exactly their 10 pairs; nothing
 * is left behind.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { kernelSkipReason } from '../binding/kernel.ts';
import { pingFrom } from '../helpers/docker-engine.ts';
import { e2eFixture } from '../helpers/e2e.ts';
import { neutronLab, readNeutronLabFile } from '../helpers/neutron-lab.ts';
import { buildVmLab, sh, type VmLab } from '../helpers/nested-vm-lab.ts';

const lab = await neutronLab();
const kernel = await kernelSkipReason();
const labFile = readNeutronLabFile();

async function macvlanSkip(): Promise<string | false> {
  try {
    await sh('ip', ['link', 'add', 'kxmvp', 'type', 'veth', 'peer', 'name', 'kxmvq']);
  } catch (err) {
    return `cannot create a veth: ${err}`;
  }
  try {
    await sh('ip', ['link', 'add', 'kxmvc', 'link', 'kxmvp', 'type', 'macvlan', 'mode', 'bridge']);
    return false;
  } catch {
    return 'the kernel has no macvlan (modprobe macvlan)';
  } finally {
    await sh('ip', ['link', 'del', 'kxmvp']).catch(() => undefined);
  }
}

const skip = kernel || lab.skip.noauth || (kernel === false ? await macvlanSkip() : false);

describe('nested port driver (macvlan) in a VM on the Linux bridge lab', { skip }, () => {
  let vm: VmLab;
  const net = 'knet';
  // dockerd and kuryr-ts run inside the VM (its network namespace); the teardown takes the VM apart after them.
  const env = e2eFixture({
    name: 'vm',
    driverPrefix: 'kvm',
    backend: 'neutron',
    lab,
    mode: 'noauth',
    snapshot: false,
    removeAll: true,
    setup: async ({ neutron }) => {
      const url = new URL(lab.noauth!.neutronUrl);
      const agentHost = ('error' in labFile ? undefined : labFile.host) ?? (await sh('hostname', [])).trim();
      vm = await buildVmLab({ neutron, agentHost, neutronPort: Number(url.port) });
    },
    netns: () => vm.vmNetns,
    conf: () =>
      [
        '[DEFAULT]',
        'capability_scope = local',
        'port_driver = kuryr_libnetwork.port_driver.drivers.nested',
        'default_port_driver = kuryr_libnetwork.port_driver.drivers.nested',
        'enabled_port_drivers = kuryr_libnetwork.port_driver.drivers.nested',
        '[binding]',
        'default_driver = kuryr.lib.binding.drivers.macvlan',
        'enabled_drivers = kuryr.lib.binding.drivers.macvlan',
        'link_iface = eth0',
        '[neutron]',
        'auth_type = none',
        `endpoint = ${lab.noauth!.neutronUrl}`,
        '[kuryr_ts]',
        `host_id = ${vm.vmHost}`,
        'gc_interval = 0',
        '',
      ].join('\n'),
    started: async () => {
      await env.netCreate(net, [
        '--subnet',
        vm.subnet.cidr,
        '--gateway',
        vm.subnet.gateway_ip ?? '',
        '-o',
        `neutron.net.uuid=${vm.network.id}`,
        '-o',
        `neutron.subnet.uuid=${vm.subnet.id}`,
        '--ipam-opt',
        `neutron.subnet.uuid=${vm.subnet.id}`,
      ]);
    },
    cleanup: async () => {
      if (vm !== undefined) assert.deepEqual(await vm.teardown(), [], 'teardown');
    },
  });

  const vmPairs = async () =>
    (await env.neutron.showPort(vm.vmPort.id)).allowed_address_pairs
      .map((p) => `${p.ip_address.replace(/\/32$/, '')} ${p.mac_address}`)
      .sort();
  const containerAddress = async (name: string) => {
    const out = await env.engine.dockerOk([
      'inspect',
      '-f',
      `{{(index .NetworkSettings.Networks "${net}").IPAddress}} {{(index .NetworkSettings.Networks "${net}").MacAddress}}`,
      name,
    ]);
    return out.trim();
  };
  const vmMacvlans = async () =>
    (await sh('ip', ['-n', vm.vmNetns, '-o', 'link', 'show', 'type', 'macvlan']))
      .split('\n')
      .filter((l) => l.trim() !== '');
  const pluginErrors = () =>
    readFileSync(env.plugin.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"level":50'));

  it('two containers: pairs on the VM port, macvlans of eth0, ping each other and a port outside the VM', async () => {
    await env.engine.dockerOk(['run', '-d', '--name', 'ca', '--net', net, 'busybox:local', 'sleep', '600']);
    await env.engine.dockerOk(['run', '-d', '--name', 'cb', '--net', net, 'busybox:local', 'sleep', '600']);
    const [a, b] = [await containerAddress('ca'), await containerAddress('cb')];
    assert.deepEqual(await vmPairs(), [a, b].sort(), "the VM port allows exactly the containers' IP/MAC");

    // The containers' ports: on the VM port's network, bound to the VM's hostname.
    const ports = (await env.neutron.listPorts({ network_id: vm.network.id })).filter(
      (p) => p.device_owner === 'compute:kuryr',
    );
    assert.equal(ports.length, 2);
    assert.ok(ports.every((p) => p['binding:host_id'] === vm.vmHost));
    const [aIp = '', aMac = ''] = a.split(' ');
    assert.ok(ports.some((p) => p.mac_address === aMac && p.fixed_ips[0]?.ip_address === aIp));

    // Inside the container: a macvlan whose parent is the VM's eth0.
    const pid = (await env.engine.dockerOk(['inspect', '-f', '{{.State.Pid}}', 'ca'])).trim();
    const link = await sh('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-d', 'link', 'show', 'eth0']);
    assert.match(link, /macvlan mode bridge/, link);
    assert.match(link, new RegExp(aMac));

    await vm.syncAntiSpoofing();
    const context = () => env.plugin.logTail(20);
    await pingFrom(env.engine, 'ca', b.split(' ')[0] ?? '', { context });
    await pingFrom(env.engine, 'ca', vm.peerIp, { tries: 10, context });
    await pingFrom(env.engine, 'cb', vm.peerIp, { tries: 10, context });

    // Without its pair, the VM NIC's port security drops a's traffic: the pair is what lets it through.
    const vmPort = await env.neutron.showPort(vm.vmPort.id);
    await env.neutron.updatePort(vm.vmPort.id, {
      allowed_address_pairs: vmPort.allowed_address_pairs.filter((p) => p.mac_address !== aMac),
    });
    await vm.syncAntiSpoofing();
    const blocked = await env.engine.docker(['exec', 'ca', 'ping', '-c', '2', '-W', '1', vm.peerIp]);
    assert.notEqual(blocked.code, 0, 'a reaches the peer without its pair: the anti-spoofing proves nothing');
    await env.neutron.updatePort(vm.vmPort.id, { allowed_address_pairs: vmPort.allowed_address_pairs });
    await vm.syncAntiSpoofing();
    await pingFrom(env.engine, 'ca', vm.peerIp, { tries: 10, context });

    await env.engine.dockerOk(['rm', '-f', 'ca', 'cb']);
    assert.deepEqual(await vmPairs(), [], 'docker rm took both pairs away');
    assert.deepEqual(await vmMacvlans(), [], 'no macvlan left in the VM');
  });

  it('10 parallel docker runs gain exactly their 10 pairs; 10 parallel rm -f lose them all', async (t) => {
    const names = Array.from({ length: 10 }, (_, i) => `p${i}`);
    const t0 = performance.now();
    const runs = await Promise.all(
      names.map((n) =>
        env.engine.docker(['run', '-d', '--name', n, '--net', net, 'busybox:local', 'sleep', '600'], {
          timeoutMs: 300_000,
        }),
      ),
    );
    const runMs = performance.now() - t0;
    assert.deepEqual(
      runs.filter((r) => r.code !== 0).map((r) => r.stderr.trim()),
      [],
      'every docker run succeeded',
    );
    const addresses = await Promise.all(names.map(containerAddress));
    assert.deepEqual(await vmPairs(), [...addresses].sort(), 'every pair present, no other');
    await vm.syncAntiSpoofing();
    await pingFrom(env.engine, 'p0', vm.peerIp, { tries: 10 });
    await pingFrom(env.engine, 'p9', addresses[0]?.split(' ')[0] ?? '', { tries: 5 });

    const t1 = performance.now();
    const removals = await Promise.all(names.map((n) => env.engine.docker(['rm', '-f', n], { timeoutMs: 300_000 })));
    const rmMs = performance.now() - t1;
    assert.deepEqual(
      removals.filter((r) => r.code !== 0).map((r) => r.stderr.trim()),
      [],
    );
    assert.deepEqual(await vmPairs(), [], 'every pair removed');
    assert.deepEqual(await vmMacvlans(), [], 'no macvlan left in the VM');
    const left = (await env.neutron.listPorts({ network_id: vm.network.id })).filter(
      (p) => p.device_owner === 'compute:kuryr',
    );
    assert.deepEqual(
      left.map((p) => p.id),
      [],
      'no container port left',
    );
    assert.deepEqual(pluginErrors(), [], 'no failed plugin call');
    t.diagnostic(`run ×10: ${Math.round(runMs)} ms; rm -f ×10: ${Math.round(rmMs)} ms`);
  });
});
