/**
 * gc and the embedded backend's bridges: a leaked bridge is found by the plugin's owner mark (whatever its name:
 * `brq…` or a `com.docker.network.bridge.name`), removed through the agent (so its nftables elements and iptables
 * rules go with it), and a device without our mark, or the bridge of a live network, is never touched.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { collectGarbage, type DeviceTool } from '../../src/reconcile/gc.ts';
import { networkCreate } from '../helpers/docker-sequence.ts';
import { makeDriver } from '../helpers/fakes.ts';

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

const bridge = { info_kind: 'bridge' };
const LATER = Date.now() + 3_600_000;

describe('gc: leaked bridges of the embedded backend', () => {
  let env: Awaited<ReturnType<typeof makeDriver>>;
  let devices: FakeDevices;
  beforeEach(async () => {
    env = await makeDriver();
    devices = new FakeDevices();
  });
  afterEach(() => env.close());
  const gc = (dryRun = false) =>
    collectGarbage(env.driver.runtime, devices, {
      dryRun,
      graceSeconds: 60,
      docker: undefined,
      ownsBridges: true,
      owner: 'kuryr',
      now: LATER,
    });

  test('found by our mark whatever the name; removed through the agent; live and foreign bridges stay', async () => {
    const live = await networkCreate(env.driver, {
      subnet: '10.93.0.0/24',
      opts: { 'com.docker.network.bridge.name': 'kt-live0' },
    });
    assert.ok(live.id);
    devices.links = [
      { ifname: 'kt-live0', ifalias: 'kuryr-ts:kuryr', linkinfo: bridge }, // the live network's own bridge
      { ifname: 'kt-leak0', ifalias: 'kuryr-ts:kuryr', linkinfo: bridge }, // a leaked custom-named bridge
      { ifname: 'brqdeadbeef-00', ifalias: 'kuryr-ts:kuryr', linkinfo: bridge }, // a leaked default-named one
      { ifname: 'kt-foreign0', linkinfo: bridge }, // no mark: not ours
      { ifname: 'brqcafebabe-00', linkinfo: bridge }, // our naming, no mark: not ours
      { ifname: 'kt-other0', ifalias: 'kuryr-ts:kuryr2', linkinfo: bridge }, // another instance's
    ];
    const planned = await gc(true);
    assert.deepEqual(
      planned.actions
        .filter((a) => a.kind === 'bridge')
        .map((a) => [a.id, a.result])
        .sort(),
      [
        ['brqdeadbeef-00', 'planned'],
        ['kt-leak0', 'planned'],
      ],
    );
    assert.equal(env.agent.removed.length, 0, 'a dry run removes nothing');

    const report = await gc();
    assert.deepEqual(
      report.actions
        .filter((a) => a.kind === 'bridge')
        .map((a) => [a.id, a.result])
        .sort(),
      [
        ['brqdeadbeef-00', 'removed'],
        ['kt-leak0', 'removed'],
      ],
    );
    // Through the agent's removeNetwork: the bridge with its isolation and firewall elements, not a bare link delete.
    assert.deepEqual(env.agent.removed.map((r) => r.bridge).sort(), ['brqdeadbeef-00', 'kt-leak0']);
    assert.deepEqual(devices.deleted, [], 'no bridge deleted around the agent');
  });
});
