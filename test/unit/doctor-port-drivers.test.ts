/**
 * `kernel.port-driver`: one line naming the missing kernel module and the port driver that needs it. The `ip`
 * run is a fake program that knows macvlan but not vlan (as this machine's kernel: no 8021q).
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { Config } from '../../src/config/config.ts';
import { VETH_ONLY } from '../../src/config/port-drivers.ts';
import { checkPortDriverKernel, moduleNeeded } from '../../src/doctor/port-drivers.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'kuryr-doctor-pd-'));
const fakeIp = path.join(dir, 'ip');
const calls = path.join(dir, 'calls');
writeFileSync(
  fakeIp,
  `#!/bin/sh\necho "$*" >> ${calls}\ncase "$*" in *" type vlan "*) echo "Error: Unknown device type." >&2; exit 2;; esac\nexit 0\n`,
);
chmodSync(fakeIp, 0o755);
const paths = { socketDir: dir, specDirs: [], sysModule: path.join(dir, 'sys-module') };
mkdirSync(paths.sysModule);
const configWith = (portDrivers: Config['portDrivers']) => ({ portDrivers }) as Config;
const root = process.getuid?.() === 0;

describe('doctor: kernel module of the port driver', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('which module each driver needs', () => {
    assert.equal(moduleNeeded(configWith(VETH_ONLY)), undefined);
    const nested = { default: 'nested' as const, enabled: ['nested' as const], linkIface: 'eth0' };
    assert.equal(moduleNeeded(configWith({ ...nested, binding: 'macvlan' }))?.module, 'macvlan');
    assert.equal(moduleNeeded(configWith({ ...nested, binding: 'ipvlan' }))?.module, 'ipvlan');
    const vlan = { default: 'vlan' as const, enabled: ['vlan' as const], binding: 'vlan' as const, linkIface: 'eth0' };
    assert.equal(moduleNeeded(configWith(vlan))?.module, '8021q');
  });

  test('vlan without 8021q: one failed line naming the module and the driver', {
    skip: !root && 'probing needs root',
  }, async () => {
    const r = await checkPortDriverKernel(
      configWith({ default: 'vlan', enabled: ['vlan'], binding: 'vlan', linkIface: 'ens3' }),
      paths,
      fakeIp,
    );
    assert.equal(r.status, 'fail');
    assert.match(r.summary, /^kernel module 8021q missing: needed by the vlan port driver \(vlan children of ens3\)/);
    assert.ok(!r.summary.includes('\n'), 'one line');
    assert.equal(r.hint, 'modprobe 8021q, or use a kernel with it');
  });

  test('nested macvlan where macvlan works: ok; a loaded module needs no probe; veth: skipped', {
    skip: !root && 'probing needs root',
  }, async () => {
    const nested = configWith({ default: 'nested', enabled: ['nested'], binding: 'macvlan', linkIface: 'eth0' });
    const r = await checkPortDriverKernel(nested, paths, fakeIp);
    assert.equal(r.status, 'ok', r.summary);
    mkdirSync(path.join(paths.sysModule, 'macvlan'));
    writeFileSync(calls, '');
    assert.equal((await checkPortDriverKernel(nested, paths, fakeIp)).status, 'ok');
    assert.equal((await import('node:fs')).readFileSync(calls, 'utf8'), '', 'no ip run');
    assert.equal((await checkPortDriverKernel(configWith(VETH_ONLY), paths, fakeIp)).status, 'skip');
  });
});
