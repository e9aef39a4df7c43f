/**
 * `ovs.bridge` with a fake Open vSwitch (a fake program runner and a fake /sys/module): when the host needs
 * Open vSwitch (ports of vif type ovs, or an OVN chassis), each missing piece is a failure with its hint; when it
 * does not, the check only reports. test/e2e/ovn-host.test.ts runs it against the OVN lab's real Open vSwitch.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { Config } from '../../src/config/config.ts';
import { checkOvs, ovsPortFacts } from '../../src/doctor/ovs.ts';

const neutron = { backend: 'neutron' } as Config;
const embedded = { backend: 'embedded' } as Config;

const noModules = mkdtempSync(path.join(os.tmpdir(), 'kx-sysmod-'));
const withOvsModule = mkdtempSync(path.join(os.tmpdir(), 'kx-sysmod-'));
mkdirSync(path.join(withOvsModule, 'openvswitch'));
after(() => {
  rmSync(noModules, { recursive: true, force: true });
  rmSync(withOvsModule, { recursive: true, force: true });
});

interface FakeOvs {
  installed?: boolean;
  dbUp?: boolean;
  vswitchdUp?: boolean;
  externalIds?: Record<string, string>;
  bridges?: Record<string, string>; // name → datapath_type ('' = default)
}

/** A runner that answers like ovs-vsctl / ovs-appctl on a host set up as described; records argv. */
function fakeRun(ovs: FakeOvs) {
  const calls: string[][] = [];
  const run = async (file: string, args: readonly string[]) => {
    calls.push([file, ...args]);
    const res = (code: number | null, stdout = '', stderr = '') => ({ code, stdout, stderr });
    if (ovs.installed === false) return res(null, '', `spawn ${file} ENOENT`);
    if (file === 'ovs-vsctl' && args[0] === '--version') return res(0, 'ovs-vsctl (Open vSwitch) 3.1.0\n');
    if (file === 'ovs-appctl') {
      return ovs.vswitchdUp === false
        ? res(
            1,
            '',
            'ovs-appctl: cannot read pidfile "/var/run/openvswitch/ovs-vswitchd.pid" (No such file or directory)\n',
          )
        : res(0, 'ovs-vswitchd (Open vSwitch) 3.1.0\n');
    }
    if (ovs.dbUp === false) {
      return res(
        1,
        '',
        'ovs-vsctl: unix:/var/run/openvswitch/db.sock: database connection failed (No such file or directory)\n',
      );
    }
    if (args.includes('Open_vSwitch')) {
      const map = ['map', Object.entries(ovs.externalIds ?? {})];
      return res(0, JSON.stringify({ data: [[map]], headings: ['external_ids'] }));
    }
    const bridges = ovs.bridges ?? {};
    if (args.includes('br-exists')) return res(args.at(-1)! in bridges ? 0 : 2);
    if (args.includes('datapath_type')) return res(0, `${JSON.stringify(bridges[args.at(-2)!] ?? '')}\n`);
    throw new Error(`unexpected ${file} ${args.join(' ')}`);
  };
  return { run, calls };
}

const chassis = { 'ovn-remote': 'tcp:127.0.0.1:6642', 'system-id': 'vm', 'ovn-bridge': 'br-int' };

describe('ovs.bridge', () => {
  test('vif types from Neutron ports: only ovs ones count; bridge_name or br-int', () => {
    assert.deepEqual(
      ovsPortFacts([
        { 'binding:vif_type': 'ovs', 'binding:vif_details': { port_filter: true, connectivity: 'l2' } },
        { 'binding:vif_type': 'ovs', 'binding:vif_details': { bridge_name: 'br-tenant' } },
        { 'binding:vif_type': 'bridge', 'binding:vif_details': {} },
        { 'binding:vif_type': 'unbound' },
      ]),
      { count: 2, bridges: ['br-int', 'br-tenant'] },
    );
  });

  test('embedded backend: skipped without running anything', async () => {
    const { run, calls } = fakeRun({});
    const r = await checkOvs(embedded, undefined, { run, sysModule: noModules });
    assert.equal(r.status, 'skip');
    assert.deepEqual(calls, []);
  });

  test('an OVN chassis on the userspace datapath with br-int: ok', async () => {
    const { run } = fakeRun({ externalIds: chassis, bridges: { 'br-int': 'netdev' } });
    const r = await checkOvs(neutron, { count: 0, bridges: [] }, { run, sysModule: noModules });
    assert.equal(r.status, 'ok', r.summary);
    assert.match(r.summary, /OVN chassis vm: br-int \(datapath netdev\) present; ovs-vswitchd answers/);
  });

  test('ports of vif type ovs, br-int on the kernel datapath with the module loaded: ok', async () => {
    const { run } = fakeRun({ bridges: { 'br-int': '' } });
    const r = await checkOvs(neutron, { count: 3, bridges: ['br-int'] }, { run, sysModule: withOvsModule });
    assert.equal(r.status, 'ok', r.summary);
    assert.match(r.summary, /^3 port\(s\) of this host have vif_type ovs: br-int \(datapath system\)/);
  });

  test('needed but missing pieces fail, each with its own summary and hint', async () => {
    const ports = { count: 1, bridges: ['br-int'] };
    const cases: [FakeOvs, RegExp, RegExp][] = [
      [{ installed: false }, /ovs-vsctl \(Open vSwitch\) is not installed/, /apt-get install openvswitch-switch/],
      [{ dbUp: false }, /cannot reach ovsdb-server: .*database connection failed/, /start Open vSwitch/],
      [{ vswitchdUp: false, bridges: { 'br-int': 'netdev' } }, /ovs-vswitchd does not answer/, /start ovs-vswitchd/],
      [{ bridges: {} }, /bridge br-int does not exist/, /add-br br-int/],
      [{ bridges: { 'br-int': 'system' } }, /kernel datapath, but the openvswitch module is not loaded/, /netdev/],
    ];
    for (const [ovs, summary, hint] of cases) {
      const { run } = fakeRun(ovs);
      const r = await checkOvs(neutron, ports, { run, sysModule: noModules });
      assert.equal(r.status, 'fail', `${JSON.stringify(ovs)}: ${r.summary}`);
      assert.match(r.summary, summary);
      assert.match(r.hint ?? '', hint);
    }
  });

  test('an OVN chassis without br-int: the hint names ovn-controller and the netdev datapath', async () => {
    const { run } = fakeRun({ externalIds: { ...chassis, 'ovn-bridge': 'br-ovn' }, bridges: { 'br-int': 'netdev' } });
    const r = await checkOvs(neutron, undefined, { run, sysModule: noModules });
    assert.equal(r.status, 'fail');
    assert.match(r.summary, /OVN chassis vm; bridge br-ovn does not exist/);
    assert.match(r.hint ?? '', /ovn-controller creates br-ovn .*ovn-bridge-datapath-type=netdev/);
  });

  test('not needed: skipped when Open vSwitch is absent or unused, a warning when it is installed but down', async () => {
    const absent = await checkOvs(
      neutron,
      { count: 0, bridges: [] },
      { ...fakeRun({ installed: false }), sysModule: noModules },
    );
    assert.equal(absent.status, 'skip');
    const unused = await checkOvs(
      neutron,
      { count: 0, bridges: [] },
      { ...fakeRun({ bridges: {} }), sysModule: noModules },
    );
    assert.equal(unused.status, 'skip');
    assert.match(unused.summary, /no port of this host has vif_type ovs and Open vSwitch is not an OVN chassis/);
    const down = await checkOvs(neutron, undefined, { ...fakeRun({ dbUp: false }), sysModule: noModules });
    assert.equal(down.status, 'warn');
  });
});
