/**
 * Reconciliation of what the nested port drivers leave behind: macvlan/ipvlan/vlan children with our alias and
 * no port behind them; pairs on the VM port for ports that are gone; subports no endpoint owns. The pass runs
 * with the driver's binder (the port driver), a fake VM Neutron for the VM side and a fake host.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ChildDevices } from '../../src/binding/child-device.ts';
import { IpCommand } from '../../src/binding/ip-command.ts';
import { KeyedLock } from '../../src/driver/locks.ts';
import { Marks } from '../../src/driver/marks.ts';
import { AddressPairs } from '../../src/driver/port-drivers/address-pairs.ts';
import { PortDriverBinder } from '../../src/driver/port-drivers/index.ts';
import { portDriverLeftovers } from '../../src/driver/port-drivers/leftovers.ts';
import { NestedPortDriver } from '../../src/driver/port-drivers/nested.ts';
import { Subports } from '../../src/driver/port-drivers/segmentation.ts';
import { VlanPortDriver } from '../../src/driver/port-drivers/vlan.ts';
import { VmPortFinder } from '../../src/driver/port-drivers/vm-port.ts';
import { PORT_CREATED_TAG } from '../../src/driver/tags.ts';
import { collectGarbage, type DeviceTool } from '../../src/reconcile/gc.ts';
import { makePort } from '../binding/kernel.ts';
import { FakeLinks, FakeVmNeutron } from '../helpers/fake-nested.ts';
import { makeDriver } from '../helpers/fakes.ts';

const VM_MAC = 'fa:16:3e:00:00:01';
const marks = new Marks();
const old = () => true;

function vmSide() {
  const neutron = new FakeVmNeutron();
  const vm = makePort({ mac_address: VM_MAC });
  neutron.addPort(vm);
  const links = new FakeLinks();
  links.addLink({ ifname: 'eth0', address: VM_MAC, mtu: 1450 });
  const ip = new IpCommand({ exec: links.exec });
  const finder = new VmPortFinder(neutron, { macOf: async (i) => (await ip.getLink(i))?.address }, 'eth0');
  return { neutron, vm, finder, devices: new ChildDevices({ ip, owner: 'kt' }), locks: new KeyedLock() };
}

describe('gc: leftovers of the nested port drivers', () => {
  test("nested: a pair whose port is gone goes; a live port's pair and a pair with the VM's MAC stay", async () => {
    const { neutron, vm, finder, devices, locks } = vmSide();
    const live = makePort({
      network_id: vm.network_id,
      mac_address: 'fa:16:3e:00:00:02',
      fixed_ips: [{ subnet_id: 's', ip_address: '10.216.1.2' }],
    });
    neutron.addPort(live);
    const pairs = [
      { ip_address: '10.216.1.2', mac_address: live.mac_address },
      { ip_address: '10.216.1.3/32', mac_address: 'fa:16:3e:00:00:03' },
      { ip_address: '10.216.1.100', mac_address: VM_MAC },
    ];
    neutron.ports.get(vm.id)!.allowed_address_pairs = pairs;
    const nested = new NestedPortDriver(finder, new AddressPairs(neutron, locks), devices, 'macvlan', neutron);
    const binder = new PortDriverBinder(nested, 'nested', undefined);
    const found = await portDriverLeftovers(binder, { marks, dockerEndpoints: undefined, old });
    assert.deepEqual(
      found.map((l) => [l.kind, l.id]),
      [['address-pair', `${vm.id}:10.216.1.3/32`]],
    );
    await found[0]!.remove();
    assert.deepEqual(neutron.ports.get(vm.id)!.allowed_address_pairs, [pairs[0], pairs[2]]);
  });

  test('vlan: subports of ours no endpoint owns go; owned, young, foreign ones stay', async () => {
    const { neutron, vm, finder, devices, locks } = vmSide();
    const ours = (tags: string[], updated = '2020-01-01T00:00:00Z') => {
      const p = makePort({ tags: [PORT_CREATED_TAG, ...tags], updated_at: updated });
      neutron.addPort(p);
      return p;
    };
    const endpoint = 'e'.repeat(64);
    const epTags = [`kuryr.net.uuid.uh:${endpoint.slice(32)}`, `kuryr.net.uuid.lh:${endpoint.slice(0, 32)}`];
    const released = ours([]);
    const owned = ours(epTags);
    const young = ours([], new Date().toISOString());
    const foreign = makePort();
    neutron.addPort(foreign);
    const sub = (port_id: string, id: number) => ({ port_id, segmentation_type: 'vlan', segmentation_id: id });
    const trunk = neutron.addTrunk(vm.id, [
      sub(released.id, 1),
      sub(owned.id, 2),
      sub(young.id, 3),
      sub(foreign.id, 4),
      sub('gone', 5),
    ]);
    const vlan = new VlanPortDriver(finder, neutron, new Subports(neutron, locks), devices, neutron);
    const binder = new PortDriverBinder(vlan, 'vlan', undefined);
    const isOld = (t: string) => Date.now() - Date.parse(t) > 60_000;
    const ctx = { marks, dockerEndpoints: new Set([endpoint]), old: isOld };
    assert.deepEqual((await portDriverLeftovers(binder, ctx)).map((l) => l.id).sort(), [released.id, 'gone'].sort());
    // Docker no longer knows the endpoint: its subport goes too.
    const gone = await portDriverLeftovers(binder, { ...ctx, dockerEndpoints: new Set() });
    assert.ok(gone.some((l) => l.id === owned.id));
    for (const l of gone) await l.remove();
    assert.deepEqual((await neutron.showTrunk(trunk.id)).sub_ports.map((s) => s.segmentation_id).sort(), [3, 4]);
  });

  test('gc removes macvlan, ipvlan and vlan children of ours with no port behind them', async () => {
    const env = await makeDriver();
    try {
      const [port] = [await env.neutron.createPort({ network_id: (await env.neutron.createNetwork({})).id })];
      let links = [
        { ifname: `t_c${port!.id.slice(0, 11)}`, ifalias: 'kuryr-ts:kuryr', linkinfo: { info_kind: 'macvlan' } },
        { ifname: 't_cdeadbeef-01', ifalias: 'kuryr-ts:kuryr', linkinfo: { info_kind: 'macvlan' } },
        { ifname: 't_cdeadbeef-02', ifalias: 'kuryr-ts:kuryr', linkinfo: { info_kind: 'vlan' } },
        { ifname: 't_cdeadbeef-03', ifalias: 'kuryr-ts:kuryr', linkinfo: { info_kind: 'ipvlan' } },
        { ifname: 't_cdeadbeef-04', ifalias: 'kuryr-ts:other', linkinfo: { info_kind: 'macvlan' } },
        { ifname: 't_cdeadbeef-05', linkinfo: { info_kind: 'vlan' } },
      ];
      const deleted: string[] = [];
      const tool: DeviceTool = {
        runJson: async () => links,
        deleteLink: async (name: string) => {
          deleted.push(name);
          links = links.filter((l) => l.ifname !== name);
          return true;
        },
      };
      const report = await collectGarbage(env.driver.runtime, tool, {
        dryRun: false,
        graceSeconds: 60,
        docker: undefined,
        ownsBridges: false,
        owner: 'kuryr',
      });
      assert.deepEqual(deleted.sort(), ['t_cdeadbeef-01', 't_cdeadbeef-02', 't_cdeadbeef-03']);
      assert.deepEqual(report.actions.map((a) => a.kind).sort(), ['ipvlan', 'macvlan', 'vlan']);
    } finally {
      env.close();
    }
  });
});
