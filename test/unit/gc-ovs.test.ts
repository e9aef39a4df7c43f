/**
 * gc and the `ovs` vif type: OVS interfaces of our binds whose Neutron port is gone, and the hybrid plug's
 * qbr…/qvb…/qvo… devices, are removed; everything else stays. With fakes (a fake `ovs-vsctl` runner and fake
 * `ip`); test/e2e/ovn-host.test.ts does the same against the real Open vSwitch of the OVN lab.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { CommandRunner } from '../../src/binding/exec.ts';
import { OvsVsctl } from '../../src/binding/ovs.ts';
import {
  hybridPlugPortPrefix,
  OvsLeftovers,
  ownInterfacesArgs,
  parseOwnInterfaces,
} from '../../src/binding/ovs-leftovers.ts';
import { collectGarbage, type DeviceTool } from '../../src/reconcile/gc.ts';
import { endpointJoin, networkCreate } from '../helpers/docker-sequence.ts';
import { makeDriver } from '../helpers/fakes.ts';

type Env = Awaited<ReturnType<typeof makeDriver>>;
const LATER = Date.now() + 3_600_000;
const veth = { info_kind: 'veth' };
const bridge = { info_kind: 'bridge' };
const ours = 'kuryr-ts:kuryr';

class FakeDevices implements DeviceTool {
  links: { ifname: string; ifalias?: string; linkinfo?: { info_kind: string } }[] = [];
  deleted: string[] = [];
  async runJson(): Promise<unknown> {
    return this.links;
  }
  async deleteLink(name: string): Promise<boolean> {
    this.deleted.push(name);
    this.links = this.links.filter((l) => l.ifname !== name);
    return true;
  }
}

/** `ovs-vsctl find` output (JSON) for interfaces `[name, external_ids]`. */
function findOutput(rows: [string, Record<string, string>][]): string {
  return JSON.stringify({
    data: rows.map(([name, ids]) => [name, ['map', Object.entries(ids)]]),
    headings: ['name', 'external_ids'],
  });
}

/** A fake ovs-vsctl: answers `find` with `rows`, records `del-port`s; `fail` makes every call fail like it. */
function fakeVsctl(rows: [string, Record<string, string>][], fail?: { code?: number | string; stderr: string }) {
  const calls: string[][] = [];
  const runner: CommandRunner = async (_file, args) => {
    calls.push([...args]);
    if (fail !== undefined) throw Object.assign(new Error('failed'), { code: fail.code ?? 1, stderr: fail.stderr });
    if (args.includes('find')) {
      // ovsdb's find: rows whose external_ids hold every key=value asked for
      const wanted = args.filter((a) => a.startsWith('external_ids:')).map((a) => a.slice(13).split('='));
      const found = rows.filter(([, ids]) => wanted.every(([k, v]) => ids[k!] === v));
      return { stdout: findOutput(found), stderr: '' };
    }
    if (args.includes('del-port')) {
      const name = args[args.length - 1]!;
      const at = rows.findIndex(([n]) => n === name);
      if (at >= 0) rows.splice(at, 1);
      return { stdout: '', stderr: '' };
    }
    throw new Error(`unexpected ovs-vsctl ${args.join(' ')}`);
  };
  return { vsctl: new OvsVsctl({ runner }), calls, rows };
}

describe('OVS leftovers: finding our interfaces', () => {
  test("find by owner=kuryr and this instance's kuryr-ts-owner; rows without an iface-id are left out", () => {
    assert.deepEqual(ownInterfacesArgs('kx1'), [
      '--format=json',
      '--',
      '--columns=name,external_ids',
      'find',
      'Interface',
      'external_ids:owner=kuryr',
      'external_ids:kuryr-ts-owner=kx1',
    ]);
    const out = findOutput([
      ['tap11111111-11', { 'iface-id': '11111111-1111-1111-1111-111111111111', owner: 'kuryr' }],
      ['qvo22222222-22', { 'iface-id': '22222222-2222-2222-2222-222222222222', owner: 'kuryr' }],
      ['tapnoid', { owner: 'kuryr' }],
    ]);
    assert.deepEqual(parseOwnInterfaces(out), [
      { name: 'tap11111111-11', portId: '11111111-1111-1111-1111-111111111111' },
      { name: 'qvo22222222-22', portId: '22222222-2222-2222-2222-222222222222' },
    ]);
    assert.throws(() => parseOwnInterfaces('not json'), /invalid JSON/);
  });

  test('no Open vSwitch here (not installed, or its database does not answer): nothing to find', async () => {
    const missing = fakeVsctl([], { code: 'ENOENT', stderr: '' });
    assert.deepEqual(await new OvsLeftovers(missing.vsctl, 'kuryr').snapshot(), []);
    const down = fakeVsctl([], {
      stderr: 'ovs-vsctl: unix:/var/run/openvswitch/db.sock: database connection failed (No such file or directory)\n',
    });
    assert.deepEqual(await new OvsLeftovers(down.vsctl, 'kuryr').snapshot(), []);
    const other = fakeVsctl([], { stderr: 'ovs-vsctl: something else\n' });
    await assert.rejects(new OvsLeftovers(other.vsctl, 'kuryr').snapshot(), /something else/);
  });

  test('hybrid plug devices: qbr… bridges and qvb… veths, by name and kind', () => {
    assert.equal(hybridPlugPortPrefix('bridge', 'qbr12345678-9a'), '12345678-9a');
    assert.equal(hybridPlugPortPrefix('veth', 'qvb12345678-9a'), '12345678-9a');
    assert.equal(hybridPlugPortPrefix('veth', 'qvo12345678-9a'), undefined, 'goes with its peer qvb…');
    assert.equal(hybridPlugPortPrefix('veth', 'qbr12345678-9a'), undefined, 'a qbr… that is no bridge');
    assert.equal(hybridPlugPortPrefix('bridge', 'qbr1234'), undefined);
    assert.equal(hybridPlugPortPrefix('bridge', 'brq12345678-9a'), undefined);
  });
});

describe('gc: OVS interfaces and hybrid plug devices of crashed binds', () => {
  let env: Env;
  let devices: FakeDevices;
  beforeEach(async () => {
    env = await makeDriver();
    devices = new FakeDevices();
  });
  afterEach(() => env.close());

  const gc = (ovs: OvsLeftovers | undefined, dryRun = false) =>
    collectGarbage(env.driver.runtime, devices, {
      dryRun,
      graceSeconds: 60,
      docker: undefined,
      ownsBridges: false,
      owner: 'kuryr',
      now: LATER,
      ...(ovs === undefined ? {} : { ovs }),
    });

  async function livePortId(): Promise<string> {
    const net = await networkCreate(env.driver, { subnet: '10.90.0.0/24' });
    await endpointJoin(env.driver, net);
    const [port] = await env.neutron.listPorts({ device_owner: 'compute:kuryr' });
    return port!.id;
  }
  const dead = 'deadbeef-0000-4000-8000-000000000001';

  test("an OVS interface whose Neutron port is gone is deleted; a live port's stays", async () => {
    const live = await livePortId();
    const { vsctl, calls, rows } = fakeVsctl([
      [`tap${live.slice(0, 11)}`, { 'iface-id': live, owner: 'kuryr', 'kuryr-ts-owner': 'kuryr' }],
      [`tap${dead.slice(0, 11)}`, { 'iface-id': dead, owner: 'kuryr', 'kuryr-ts-owner': 'kuryr' }],
    ]);
    const report = await gc(new OvsLeftovers(vsctl, 'kuryr'));
    assert.deepEqual(
      report.actions.map((a) => [a.kind, a.id, a.result]),
      [['ovs-port', 'tapdeadbeef-00', 'removed']],
    );
    assert.match(report.actions[0]!.reason, new RegExp(`Neutron port ${dead} no longer exists`));
    assert.deepEqual(calls.at(-1), ['--timeout=10', '--', '--if-exists', 'del-port', 'tapdeadbeef-00']);
    assert.deepEqual(
      rows.map(([n]) => n),
      [`tap${live.slice(0, 11)}`],
    );
  });

  test('interfaces of kuryr or of another kuryr-ts instance are never removed, even with their port gone', async () => {
    const { vsctl, calls, rows } = fakeVsctl([
      ['tapdeadbeef-01', { 'iface-id': dead, owner: 'kuryr' }],
      ['tapdeadbeef-02', { 'iface-id': dead, owner: 'kuryr', 'kuryr-ts-owner': 'other' }],
      ['tapdeadbeef-03', { 'iface-id': dead, 'kuryr-ts-owner': 'kuryr' }],
    ]);
    const report = await gc(new OvsLeftovers(vsctl, 'kuryr'));
    assert.deepEqual(report.actions, []);
    assert.equal(rows.length, 3);
    assert.deepEqual(calls[0]?.slice(-2), ['external_ids:owner=kuryr', 'external_ids:kuryr-ts-owner=kuryr']);
  });

  test('dry run only plans; without the ovs option OVS is not looked at', async () => {
    const { vsctl, calls } = fakeVsctl([
      [`tap${dead.slice(0, 11)}`, { 'iface-id': dead, owner: 'kuryr', 'kuryr-ts-owner': 'kuryr' }],
    ]);
    const report = await gc(new OvsLeftovers(vsctl, 'kuryr'), true);
    assert.deepEqual(
      report.actions.map((a) => [a.kind, a.result]),
      [['ovs-port', 'planned']],
    );
    assert.equal(calls.filter((c) => c.includes('del-port')).length, 0);
    calls.length = 0;
    assert.deepEqual((await gc(undefined)).actions, []);
    assert.deepEqual(calls, []);
  });

  test('qbr… and qvb… of ours with no port behind them are deleted; live, foreign and unmarked ones stay', async () => {
    const live = await livePortId();
    const l = live.slice(0, 11);
    const d = dead.slice(0, 11);
    devices.links = [
      { ifname: `qbr${d}`, ifalias: ours, linkinfo: bridge },
      { ifname: `qvb${d}`, ifalias: ours, linkinfo: veth },
      { ifname: `qvo${d}`, ifalias: ours, linkinfo: veth },
      { ifname: `qbr${l}`, ifalias: ours, linkinfo: bridge },
      { ifname: `qvb${l}`, ifalias: ours, linkinfo: veth },
      { ifname: `qvo${l}`, ifalias: ours, linkinfo: veth },
      { ifname: 'qbrcafebabe-00', ifalias: 'kuryr-ts:other', linkinfo: bridge },
      { ifname: 'qvbcafebabe-00', linkinfo: veth },
    ];
    const report = await gc(undefined);
    assert.deepEqual(devices.deleted.sort(), [`qbr${d}`, `qvb${d}`]);
    assert.deepEqual(report.actions.map((a) => [a.kind, a.id]).sort(), [
      ['bridge', `qbr${d}`],
      ['veth', `qvb${d}`],
    ]);
  });

  test('the OVS snapshot is taken before the live ports are listed (a bind in flight is not mistaken)', async () => {
    // A port created (and plugged) while gc runs: it is in OVS only after it exists in Neutron, so a port list
    // taken after the OVS snapshot includes it.
    const order: string[] = [];
    const { vsctl } = fakeVsctl([]);
    const ovs = new OvsLeftovers(vsctl, 'kuryr');
    const snapshot = ovs.snapshot.bind(ovs);
    ovs.snapshot = async () => {
      order.push('ovs');
      return snapshot();
    };
    const neutron = env.driver.runtime.neutron;
    const listPorts = neutron.listPorts.bind(neutron);
    neutron.listPorts = async (filter) => {
      order.push('ports');
      return listPorts(filter);
    };
    await gc(ovs);
    assert.equal(order.at(-1), 'ports', `the last port listing follows the OVS snapshot: ${order.join(', ')}`);
    assert.ok(order.includes('ovs'));
  });
});
