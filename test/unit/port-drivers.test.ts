/**
 * The port drivers for containers in VMs, against fakes (test/helpers/fake-nested.ts): the option parsing,
 * allowed_address_pairs under concurrent writers, segmentation IDs under concurrency and across a restart, the
 * nested and vlan drivers' host commands and their rollback, and the refusal of SR-IOV ports.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ChildDevices } from '../../src/binding/child-device.ts';
import { BindingError } from '../../src/binding/errors.ts';
import { IpCommand } from '../../src/binding/ip-command.ts';
import { interfaceNames } from '../../src/binding/names.ts';
import { portDriverSettings } from '../../src/config/port-drivers.ts';
import { KeyedLock } from '../../src/driver/locks.ts';
import { AddressPairs, editPairs } from '../../src/driver/port-drivers/address-pairs.ts';
import { PortDriverBinder } from '../../src/driver/port-drivers/index.ts';
import { NestedPortDriver } from '../../src/driver/port-drivers/nested.ts';
import { freeSegmentationId, Subports } from '../../src/driver/port-drivers/segmentation.ts';
import { SriovPortDriver, SysfsVfs } from '../../src/driver/port-drivers/sriov.ts';
import { VlanPortDriver } from '../../src/driver/port-drivers/vlan.ts';
import { VmPortFinder } from '../../src/driver/port-drivers/vm-port.ts';
import { KuryrError } from '../../src/errors.ts';
import { makePort } from '../binding/kernel.ts';
import { FakeLinks, FakeVmNeutron } from '../helpers/fake-nested.ts';
import { FakeBinder } from '../helpers/fakes.ts';

const tick = () => new Promise<void>((r) => setImmediate(r));

function options(values: Record<string, string>) {
  const key = (s: string, k: string) => `${s}.${k}`;
  const defaults: Record<string, string> = {
    'DEFAULT.default_port_driver': 'kuryr_libnetwork.port_driver.drivers.veth',
    'DEFAULT.port_driver': 'kuryr_libnetwork.port_driver.drivers.veth',
    'DEFAULT.enabled_port_drivers': 'kuryr_libnetwork.port_driver.drivers.veth',
    'binding.default_driver': 'kuryr.lib.binding.drivers.veth',
    'binding.driver': 'kuryr.lib.binding.drivers.veth',
    'binding.enabled_drivers': 'kuryr.lib.binding.drivers.veth',
    'binding.link_iface': '',
  };
  return portDriverSettings({
    get: (s, k) => values[key(s, k)] ?? defaults[key(s, k)] ?? '',
    set: (s, k) => key(s, k) in values,
    where: (s, k) => `kuryr.conf: [${s}] ${k}`,
  });
}

describe('port driver options', () => {
  test("the original's dotted names and short names", () => {
    assert.deepEqual(
      options({
        'DEFAULT.port_driver': 'kuryr_libnetwork.port_driver.drivers.nested',
        'DEFAULT.default_port_driver': 'kuryr_libnetwork.port_driver.drivers.nested',
        'DEFAULT.enabled_port_drivers': 'kuryr_libnetwork.port_driver.drivers.nested',
        'binding.default_driver': 'kuryr.lib.binding.drivers.macvlan',
        'binding.enabled_drivers': 'kuryr.lib.binding.drivers.macvlan',
        'binding.link_iface': 'eth0',
      }),
      { default: 'nested', enabled: ['nested'], binding: 'macvlan', linkIface: 'eth0' },
    );
    assert.deepEqual(
      options({ 'DEFAULT.default_port_driver': 'vlan', 'binding.link_iface': 'ens3' }),
      { default: 'vlan', enabled: ['vlan'], binding: 'vlan', linkIface: 'ens3' },
      'unset, the enabled list and the binding follow the default driver',
    );
    assert.equal(options({ 'DEFAULT.port_driver': 'nested', 'binding.link_iface': 'eth0' }).default, 'nested');
    assert.deepEqual(options({}), { default: 'veth', enabled: ['veth'], binding: 'veth', linkIface: '' });
    assert.deepEqual(options({ 'DEFAULT.enabled_port_drivers': 'veth, sriov' }).enabled, ['veth', 'sriov']);
  });

  test('contradictions are configuration errors naming the key', () => {
    const bad = (values: Record<string, string>, pattern: RegExp) =>
      assert.throws(
        () => options(values),
        (e: unknown) => e instanceof KuryrError && e.code === 'KURYR_ERR_CONFIG' && pattern.test(e.message),
      );
    bad({ 'DEFAULT.default_port_driver': 'nested' }, /\[binding\] link_iface.*needs the VM's interface/);
    bad({ 'DEFAULT.default_port_driver': 'macvtap' }, /unknown port driver "macvtap"/);
    bad(
      { 'DEFAULT.default_port_driver': 'nested', 'DEFAULT.enabled_port_drivers': 'veth', 'binding.link_iface': 'e' },
      /nested is not in enabled_port_drivers/,
    );
    bad(
      { 'DEFAULT.default_port_driver': 'nested', 'binding.default_driver': 'veth', 'binding.link_iface': 'e' },
      /binding driver veth does not work with the nested port driver/,
    );
    bad(
      {
        'DEFAULT.default_port_driver': 'nested',
        'binding.default_driver': 'ipvlan',
        'binding.enabled_drivers': 'macvlan',
        'binding.link_iface': 'e',
      },
      /ipvlan is not enabled/,
    );
  });
});

const VM_MAC = 'fa:16:3e:00:00:01';

function vmLab() {
  const neutron = new FakeVmNeutron();
  const vm = makePort({ mac_address: VM_MAC });
  neutron.addPort(vm);
  const links = new FakeLinks();
  links.addLink({ ifname: 'eth0', address: VM_MAC, mtu: 1450 });
  const ip = new IpCommand({ exec: links.exec });
  const locks = new KeyedLock();
  const finder = new VmPortFinder(neutron, { macOf: async (i) => (await ip.getLink(i))?.address }, 'eth0');
  const devices = new ChildDevices({ ip, owner: 'kt' });
  return { neutron, vm, links, ip, locks, finder, devices };
}

function containerPort(networkId: string, n: number) {
  return makePort({
    network_id: networkId,
    mac_address: `fa:16:3e:10:00:${n.toString(16).padStart(2, '0')}`,
    fixed_ips: [{ subnet_id: 's', ip_address: `10.216.5.${10 + n}` }],
  });
}

describe('allowed_address_pairs', () => {
  test('editPairs adds missing pairs once and removes by address and MAC (a /32 matches the bare address)', () => {
    const a = { ip_address: '10.0.0.5', mac_address: 'fa:16:3e:00:00:05' };
    const b = { ip_address: '10.0.0.6', mac_address: 'fa:16:3e:00:00:06' };
    assert.deepEqual(editPairs([a], [a, b], []), [a, b]);
    assert.deepEqual(editPairs([{ ...a, ip_address: '10.0.0.5/32' }, b], [], [a]), [b]);
    assert.deepEqual(editPairs([a], [], [{ ...a, mac_address: 'fa:16:3e:99:99:99' }]), [a], 'other MAC: kept');
  });

  test('writers in two processes interleave between read and write: no pair is lost, none is left', async () => {
    const { neutron, vm } = vmLab();
    // Two plugin processes: separate locks, so only If-Match keeps them from overwriting each other.
    const one = new AddressPairs(neutron, new KeyedLock(), tick);
    const two = new AddressPairs(neutron, new KeyedLock(), tick);
    neutron.afterRead = tick; // every read yields, so the other process's write lands in between
    const pairs = Array.from({ length: 10 }, (_, i) => ({
      ip_address: `10.216.5.${i + 10}`,
      mac_address: `fa:16:3e:10:00:${i.toString(16).padStart(2, '0')}`,
    }));
    await Promise.all(pairs.map((p, i) => (i % 2 === 0 ? one : two).add(vm.id, [p])));
    const after = (await neutron.showPort(vm.id)).allowed_address_pairs;
    assert.deepEqual(
      after.map((p) => p.ip_address).sort(),
      pairs.map((p) => p.ip_address).sort(),
      'every pair present',
    );
    assert.ok(neutron.preconditionFailures > 0, 'the writers did collide (the If-Match path was exercised)');
    await Promise.all(pairs.map((p, i) => (i % 2 === 0 ? two : one).remove(vm.id, [p])));
    assert.deepEqual((await neutron.showPort(vm.id)).allowed_address_pairs, [], 'every pair removed');
  });

  test('changes queued behind the VM port lock are written together: ten at once cost one write', async () => {
    const { neutron, vm, locks } = vmLab();
    const pairs = new AddressPairs(neutron, locks, tick);
    const ten = Array.from({ length: 10 }, (_, i) => ({
      ip_address: `10.216.6.${i + 10}`,
      mac_address: `fa:16:3e:20:00:${i.toString(16).padStart(2, '0')}`,
    }));
    await Promise.all(ten.map((p) => pairs.add(vm.id, [p])));
    assert.equal(neutron.writes, 1, 'one write for the ten, not ten one after another');
    assert.deepEqual(
      (await neutron.showPort(vm.id)).allowed_address_pairs.map((p) => p.ip_address).sort(),
      ten.map((p) => p.ip_address).sort(),
    );
    // Removals arriving while a write is in flight: the first alone, the rest together behind it.
    const first = pairs.remove(vm.id, [ten[0]!]);
    await tick();
    await Promise.all([first, ...ten.slice(1).map((p) => pairs.remove(vm.id, [p]))]);
    assert.equal(neutron.writes, 3);
    assert.deepEqual((await neutron.showPort(vm.id)).allowed_address_pairs, []);
  });

  test('a change Neutron refuses inside a batch fails its own request only; the others are written', async () => {
    const { neutron, vm, locks } = vmLab();
    const pairs = new AddressPairs(neutron, locks, tick);
    const one = { ip_address: '10.216.7.1', mac_address: 'fa:16:3e:30:00:01' };
    const many = Array.from({ length: 11 }, (_, i) => ({ ip_address: `10.1.0.${i}`, mac_address: VM_MAC }));
    const two = { ip_address: '10.216.7.2', mac_address: 'fa:16:3e:30:00:02' };
    const [a, b, c] = await Promise.allSettled([
      pairs.add(vm.id, [one]),
      pairs.add(vm.id, many),
      pairs.add(vm.id, [two]),
    ]);
    assert.equal(a.status, 'fulfilled');
    assert.equal(b.status, 'rejected');
    assert.match(String((b as PromiseRejectedResult).reason), /exceeds the maximum 10/);
    assert.equal(c.status, 'fulfilled');
    assert.deepEqual((await neutron.showPort(vm.id)).allowed_address_pairs.map((p) => p.ip_address).sort(), [
      '10.216.7.1',
      '10.216.7.2',
    ]);
  });

  test("Neutron's own refusal (more than max_allowed_address_pair) reaches the caller", async () => {
    const { neutron, vm, locks } = vmLab();
    const pairs = new AddressPairs(neutron, locks, tick);
    const many = Array.from({ length: 11 }, (_, i) => ({ ip_address: `10.1.0.${i}`, mac_address: VM_MAC }));
    await assert.rejects(pairs.add(vm.id, many), /exceeds the maximum 10/);
  });
});

describe('nested driver (macvlan)', () => {
  test('bind: the pair on the VM port, a macvlan child of link_iface; unbind takes both away', async () => {
    const { neutron, vm, links, finder, devices, locks } = vmLab();
    const driver = new NestedPortDriver(finder, new AddressPairs(neutron, locks, tick), devices, 'macvlan', neutron);
    const port = containerPort(vm.network_id, 1);
    const names = await driver.bind({ port, mtu: 1450 });
    assert.deepEqual(names, interfaceNames(port.id));
    assert.deepEqual(
      links.commands.find((c) => c[1] === 'add'),
      [
        'link',
        'add',
        'link',
        'eth0',
        'name',
        names.container,
        'address',
        port.mac_address,
        'mtu',
        '1450',
        'type',
        'macvlan',
        'mode',
        'bridge',
      ],
    );
    assert.equal(links.links.get(names.container)?.alias, 'kuryr-ts:kt');
    assert.deepEqual((await neutron.showPort(vm.id)).allowed_address_pairs, [
      { ip_address: '10.216.5.11', mac_address: port.mac_address },
    ]);
    // a retried CreateEndpoint reuses the device and adds no second pair
    await driver.bind({ port, mtu: 1450 });
    assert.equal((await neutron.showPort(vm.id)).allowed_address_pairs.length, 1);

    await driver.unbind(port);
    assert.equal(links.links.has(names.container), false);
    assert.deepEqual((await neutron.showPort(vm.id)).allowed_address_pairs, []);
    await driver.unbind(port); // gone already: still fine
  });

  test('ipvlan pairs carry the VM port MAC and the device gets none of its own', async () => {
    const { neutron, vm, links, finder, devices, locks } = vmLab();
    const driver = new NestedPortDriver(finder, new AddressPairs(neutron, locks, tick), devices, 'ipvlan', neutron);
    const port = containerPort(vm.network_id, 2);
    await driver.bind({ port, mtu: 1400 });
    assert.deepEqual((await neutron.showPort(vm.id)).allowed_address_pairs, [
      { ip_address: '10.216.5.12', mac_address: VM_MAC },
    ]);
    const add = links.commands.find((c) => c[1] === 'add') ?? [];
    assert.ok(!add.includes('address'));
    assert.deepEqual(add.slice(-4), ['type', 'ipvlan', 'mode', 'l2']);
  });

  test('a failing device leaves no pair behind; another network is refused before anything changes', async () => {
    const { neutron, vm, links, finder, devices, locks } = vmLab();
    const driver = new NestedPortDriver(finder, new AddressPairs(neutron, locks, tick), devices, 'macvlan', neutron);
    links.failNextAdd = 'Error: Unknown device type.';
    await assert.rejects(driver.bind({ port: containerPort(vm.network_id, 3), mtu: 1450 }), /Unknown device type/);
    assert.deepEqual((await neutron.showPort(vm.id)).allowed_address_pairs, [], 'the pair was taken back');

    const writes = neutron.writes;
    await assert.rejects(
      driver.bind({ port: containerPort('another-network', 4), mtu: 1450 }),
      (e: unknown) => e instanceof BindingError && /serves only the VM port's network/.test(e.message),
    );
    assert.equal(neutron.writes, writes);
    assert.equal(links.links.size, 1, 'only eth0');
  });

  test("no port with link_iface's MAC: a clear refusal", async () => {
    const { neutron, vm, finder, devices, locks } = vmLab();
    neutron.ports.delete(vm.id);
    const driver = new NestedPortDriver(finder, new AddressPairs(neutron, locks, tick), devices, 'macvlan', neutron);
    await assert.rejects(
      driver.bind({ port: containerPort(vm.network_id, 1), mtu: 1450 }),
      /no Neutron port has the MAC fa:16:3e:00:00:01 of eth0/,
    );
  });
});

describe('vlan driver', () => {
  test('free IDs: the lowest not taken', () => {
    assert.equal(freeSegmentationId([]), 1);
    const sub = (id: number) => ({ port_id: `p${id}`, segmentation_type: 'vlan', segmentation_id: id });
    assert.equal(freeSegmentationId([sub(1), sub(2), sub(4)]), 3);
    assert.equal(freeSegmentationId(Array.from({ length: 4094 }, (_, i) => sub(i + 1))), undefined);
  });

  test('two processes adding 20 subports at once get 20 distinct IDs; a restarted one reuses none', async () => {
    const neutron = new FakeVmNeutron();
    const trunk = neutron.addTrunk('parent');
    neutron.afterRead = tick;
    const one = new Subports(neutron, new KeyedLock());
    const two = new Subports(neutron, new KeyedLock());
    const ids = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? one : two).attach(trunk.id, `port-${i}`)),
    );
    assert.equal(new Set(ids).size, 20, `distinct: ${ids.join(',')}`);
    assert.ok(neutron.conflicts > 0, 'the processes did collide (the 409 path was exercised)');
    assert.equal(await one.attach(trunk.id, 'port-3'), ids[3], 'a retried request keeps its ID');

    await one.detach(trunk.id, 'port-0');
    const restarted = new Subports(neutron, new KeyedLock()); // nothing in memory
    const next = await restarted.attach(trunk.id, 'port-new');
    assert.equal(next, ids[0], 'the freed ID is the lowest free one');
    assert.ok(!ids.slice(1).includes(next));
    await restarted.detach(trunk.id, 'port-new');
    await restarted.detach(trunk.id, 'port-new'); // not a subport any more: fine
  });

  test('host side: a VLAN child of link_iface with the subport ID and MAC; a failure removes the subport', async () => {
    const { neutron, vm, links, finder, devices, locks } = vmLab();
    const trunk = neutron.addTrunk(vm.id, [{ port_id: 'other', segmentation_type: 'vlan', segmentation_id: 1 }]);
    const driver = new VlanPortDriver(finder, neutron, new Subports(neutron, locks), devices, neutron);
    // Claimed by CreateEndpoint (device_id = the endpoint): Neutron takes no subport with a device.
    const port = { ...containerPort('any-network', 5), device_id: 'endpoint-id' };
    neutron.addPort(port);
    const names = await driver.bind({ port, mtu: 1450 });
    assert.equal(neutron.ports.get(port.id)?.device_id, '', 'the device ID was cleared for the trunk');
    assert.deepEqual(links.commands.find((c) => c[1] === 'add')?.slice(2), [
      'link',
      'eth0',
      'name',
      names.container,
      'address',
      port.mac_address,
      'mtu',
      '1450',
      'type',
      'vlan',
      'protocol',
      '802.1Q',
      'id',
      '2',
    ]);
    assert.deepEqual((await neutron.showTrunk(trunk.id)).sub_ports.at(-1), {
      port_id: port.id,
      segmentation_type: 'vlan',
      segmentation_id: 2,
    });
    await driver.unbind(port);
    assert.equal(links.links.has(names.container), false);
    assert.deepEqual(
      (await neutron.showTrunk(trunk.id)).sub_ports.map((s) => s.port_id),
      ['other'],
    );

    links.failNextAdd = 'Error: Unknown device type.'; // this kernel has no 8021q
    await assert.rejects(driver.bind({ port, mtu: 1450 }), /Unknown device type/);
    assert.deepEqual(
      (await neutron.showTrunk(trunk.id)).sub_ports.map((s) => s.port_id),
      ['other'],
      'no leftover',
    );
  });

  test('a VM port that is no trunk parent is refused', async () => {
    const { neutron, finder, devices, locks } = vmLab();
    const driver = new VlanPortDriver(finder, neutron, new Subports(neutron, locks), devices, neutron);
    await assert.rejects(driver.bind({ port: containerPort('n', 6), mtu: 1450 }), /is not the parent of a trunk/);
  });
});

describe('SR-IOV ports', () => {
  const direct = (profile: Record<string, unknown>) =>
    makePort({ 'binding:vnic_type': 'direct', 'binding:profile': profile });

  test('without the sriov driver a direct port is refused, never bound as a veth', async () => {
    const veth = new FakeBinder();
    const binder = new PortDriverBinder(veth, 'veth', undefined);
    await assert.rejects(
      binder.bind({ port: direct({ pci_slot: '0000:03:10.1' }), mtu: 1500 }),
      /binding:vnic_type=direct: it is a VF, and the sriov port driver is not in \[DEFAULT\] enabled_port_drivers/,
    );
    await assert.rejects(binder.bind({ port: makePort({ 'binding:vnic_type': 'baremetal' }), mtu: 1500 }), /baremetal/);
    assert.equal(veth.bound.size, 0, 'the veth binder was never asked');
    const normal = makePort();
    await binder.bind({ port: normal, mtu: 1500 });
    assert.ok(veth.bound.has(normal.id), 'normal ports still go to the default driver');
  });

  test('the VF comes from binding:profile; a host without it refuses clearly', async () => {
    const sys = await mkdtemp(path.join(tmpdir(), 'kuryr-sysfs-'));
    try {
      const links = new FakeLinks();
      const driver = new SriovPortDriver({ vfs: new SysfsVfs(sys), ip: new IpCommand({ exec: links.exec }) });
      await assert.rejects(driver.bind({ port: direct({}), mtu: 1500 }), /no binding:profile pci_slot/);
      await assert.rejects(driver.bind({ port: direct({ pci_slot: '../../etc' }), mtu: 1500 }), /not a PCI address/);
      await assert.rejects(
        driver.bind({ port: direct({ pci_slot: '0000:03:10.1' }), mtu: 1500 }),
        /the VF 0000:03:10.1 of port .* has no network device on this host/,
      );
      assert.deepEqual(links.commands, []);

      // A VF as sysfs shows it: devices/<vf>/net/<netdev>, devices/<vf>/physfn -> PF with net/<pf> and virtfnN.
      const devices = path.join(sys, 'bus', 'pci', 'devices');
      await mkdir(path.join(devices, '0000:03:10.1', 'net', 'enp3s0f0v3'), { recursive: true });
      await mkdir(path.join(devices, '0000:03:00.0', 'net', 'enp3s0f0'), { recursive: true });
      await symlink(path.join(devices, '0000:03:00.0'), path.join(devices, '0000:03:10.1', 'physfn'));
      await symlink('../0000:03:10.1', path.join(devices, '0000:03:00.0', 'virtfn3'));
      links.addLink({ ifname: 'enp3s0f0', mtu: 1500 });
      const port = direct({ pci_slot: '0000:03:10.1' });
      assert.deepEqual(await driver.bind({ port, mtu: 1500 }), { host: 'enp3s0f0v3', container: 'enp3s0f0v3' });
      assert.deepEqual(links.commands, [
        ['link', 'set', 'dev', 'enp3s0f0', 'vf', '3', 'mac', port.mac_address.toLowerCase()],
      ]);
      assert.equal(await driver.containerInterface(port), 'enp3s0f0v3', "Join hands Docker the VF's own device");
    } finally {
      await rm(sys, { recursive: true, force: true });
    }
  });
});

describe('nested: the default network', () => {
  test('a Docker network without network options is the VM port network; removing it leaves that network', async () => {
    const { makeDriver } = await import('../helpers/fakes.ts');
    const { networkCreate, networkRemove } = await import('../helpers/docker-sequence.ts');
    const env = await makeDriver();
    try {
      const vmNet = await env.neutron.createNetwork({ name: 'vm-net' });
      Object.assign(env.binder, { defaultNetworkId: async () => vmNet.id });
      const net = await networkCreate(env.driver);
      assert.deepEqual(
        (await env.neutron.listNetworks()).map((n) => n.id),
        [vmNet.id],
        'no network of its own',
      );
      assert.equal((await env.neutron.listSubnets({ network_id: vmNet.id })).length, 1);
      await networkRemove(env.driver, net);
      assert.deepEqual(
        (await env.neutron.listNetworks()).map((n) => n.id),
        [vmNet.id],
        'the VM network stays',
      );
    } finally {
      env.close();
    }
  });
});

describe('vlan without tags on ports', () => {
  test('is a configuration error: the endpoint could not be found again once the device ID is cleared', async () => {
    const { createPortBinder } = await import('../../src/driver/port-drivers/index.ts');
    const neutron = new FakeVmNeutron();
    const settings = {
      default: 'vlan' as const,
      enabled: ['vlan' as const],
      binding: 'vlan' as const,
      linkIface: 'eth0',
    };
    const make = (portsTakeTags: boolean) =>
      createPortBinder({
        settings,
        neutron: neutron as unknown as Parameters<typeof createPortBinder>[0]['neutron'],
        owner: 'kt',
        veth: {},
        portsTakeTags,
      });
    assert.throws(
      () => make(false),
      (e: unknown) => e instanceof KuryrError && /needs tags on ports/.test(e.message),
    );
    assert.ok(make(true));
  });
});
