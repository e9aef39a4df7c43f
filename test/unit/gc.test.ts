import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { DockerEndpoints } from '../../src/docker/client.ts';
import { dockerIdOfTags as dockerIdOf } from '../../src/driver/marks.ts';
import { collectGarbage, type DeviceTool } from '../../src/reconcile/gc.ts';
import { KuryrDriver } from '../../src/driver/driver.ts';
import { makeDriver, TEST_SETTINGS } from '../helpers/fakes.ts';
import { endpointJoin, networkCreate } from '../helpers/docker-sequence.ts';

type Env = Awaited<ReturnType<typeof makeDriver>>;

/** Host devices as `ip -json -details link show` reports them; deletions are recorded. */
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

const LATER = Date.now() + 3_600_000;

describe('gc: remove what this plugin created and nothing uses', () => {
  let env: Env;
  let devices: FakeDevices;
  beforeEach(async () => {
    env = await makeDriver();
    devices = new FakeDevices();
  });
  afterEach(() => env.close());

  const dockerSees = (networks: { id: string; endpoints?: string[]; addresses?: string[] }[]): DockerEndpoints => ({
    networks: new Map(networks.map((n) => [n.id, { Id: n.id, Name: n.id, Driver: 'kuryr' }])),
    endpoints: new Set(networks.flatMap((n) => n.endpoints ?? [])),
    addresses: new Set(networks.flatMap((n) => n.addresses ?? [])),
  });
  const gc = (docker: DockerEndpoints | undefined, extra: { dryRun?: boolean; now?: number; force?: boolean } = {}) =>
    collectGarbage(env.driver.runtime, devices, {
      dryRun: extra.dryRun ?? false,
      graceSeconds: 60,
      docker,
      ownsBridges: true,
      owner: 'kuryr',
      now: extra.now ?? LATER,
      force: extra.force ?? false,
    });

  test('a network Docker no longer has is removed with its ports; a live one and its endpoint stay', async () => {
    const live = await networkCreate(env.driver, { subnet: '10.80.0.0/24' });
    const dead = await networkCreate(env.driver, { subnet: '10.81.0.0/24' });
    const ep = await endpointJoin(env.driver, live);
    await endpointJoin(env.driver, dead);
    const report = await gc(dockerSees([{ id: live.id, endpoints: [ep.id] }]));
    assert.deepEqual(
      report.actions.map((a) => [a.kind, a.result]),
      [['network', 'removed']],
    );
    const networks = await env.neutron.listNetworks();
    assert.deepEqual(
      networks.map((n) => dockerIdOf(n.tags)),
      [live.id],
    );
    assert.equal((await env.neutron.listPorts()).length, 1, 'the live endpoint port stays');
    assert.equal(
      (await env.neutron.listSubnetPools({ name: 'kuryrPool-10.81.0.0/24' })).length,
      0,
      'its pool went too',
    );
  });

  test('an endpoint port Docker no longer knows is released; dry run only plans', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.82.0.0/24' });
    const keep = await endpointJoin(env.driver, net);
    await endpointJoin(env.driver, net);
    const view = dockerSees([{ id: net.id, endpoints: [keep.id], addresses: [keep.address.split('/')[0]!] }]);
    const plan = await gc(view, { dryRun: true });
    assert.deepEqual(
      plan.actions.map((a) => [a.kind, a.result]),
      [['port', 'planned']],
    );
    assert.equal((await env.neutron.listPorts()).length, 2, 'dry run changes nothing');
    await gc(view);
    assert.equal((await env.neutron.listPorts()).length, 1);
    assert.equal(env.binder.bound.size, 1, 'the orphan was unplugged');
  });

  test('nothing younger than the grace period is touched', async () => {
    await networkCreate(env.driver, { subnet: '10.83.0.0/24' });
    const report = await gc(dockerSees([{ id: 'f'.repeat(64) }]), { now: Date.now(), force: true });
    assert.deepEqual(report.actions, []);
  });

  test('an engine that knows none of our networks is not trusted (unless forced)', async () => {
    await networkCreate(env.driver, { subnet: '10.84.0.0/24' });
    const report = await gc(dockerSees([]));
    assert.equal(report.dockerChecked, false);
    assert.match(report.dockerSkipped ?? '', /knows none of the backend/);
    assert.equal((await env.neutron.listNetworks()).length, 1);
    const forced = await gc(dockerSees([]), { force: true });
    assert.equal(forced.actions.filter((a) => a.kind === 'network').length, 1);
  });

  test('own pools without subnets go; default and user pools never do', async () => {
    await env.driver.requestPool({ Pool: '10.85.0.0/24', SubPool: '', Options: {}, V6: false });
    await env.neutron.createSubnetPool({ name: 'operator-pool', prefixes: ['10.86.0.0/24'] });
    const report = await gc(undefined);
    assert.deepEqual(
      report.actions.map((a) => [a.kind, a.name]),
      [['subnetpool', 'kuryrPool-10.85.0.0/24']],
    );
    const names = (await env.neutron.listSubnetPools()).map((p) => p.name).sort();
    assert.deepEqual(names, ['kuryr', 'kuryr6', 'operator-pool']);
  });

  test('only devices carrying our owner alias are removed, and only when nothing is behind them', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.87.0.0/24' });
    const ep = await endpointJoin(env.driver, net);
    const [port] = await env.neutron.listPorts({ tags: [`kuryr.net.uuid.lh:${ep.id.slice(0, 32)}`] });
    const [network] = await env.neutron.listNetworks();
    const veth = { info_kind: 'veth' };
    const bridge = { info_kind: 'bridge' };
    devices.links = [
      { ifname: `tap${port!.id.slice(0, 11)}`, ifalias: 'kuryr-ts:kuryr', linkinfo: veth },
      { ifname: `brq${network!.id.slice(0, 11)}`, ifalias: 'kuryr-ts:kuryr', linkinfo: bridge },
      { ifname: 'tapdeadbeef-00', ifalias: 'kuryr-ts:kuryr', linkinfo: veth },
      { ifname: 'brqdeadbeef-00', ifalias: 'kuryr-ts:kuryr', linkinfo: bridge },
      { ifname: 'tapcafebabe-00', ifalias: 'kuryr-ts:other', linkinfo: veth },
      { ifname: 'tapfeedface-00', linkinfo: { info_kind: 'tun' } },
      { ifname: 'brqfeedface-00', linkinfo: bridge },
    ];
    await gc(undefined);
    assert.deepEqual(devices.deleted.sort(), ['tapdeadbeef-00']);
    // The leaked bridge goes through the agent (with its firewall elements: gc-bridges.test.ts).
    assert.deepEqual(
      env.agent.removed.map((r) => r.bridge),
      ['brqdeadbeef-00'],
    );
  });
});

describe('gc with a Neutron shared by several hosts', () => {
  test("only this host's networks and ports are considered; another host's Docker networks are left alone", async () => {
    const mine = await makeDriver({ hostId: 'host-a' });
    try {
      const ours = await networkCreate(mine.driver, { subnet: '10.88.0.0/24' });
      // Another host's plugin, same Neutron (here: the same store), its own Docker.
      const theirs = await networkCreate(
        new KuryrDriver({ ...mine.driver.runtime, settings: { ...TEST_SETTINGS, hostId: 'host-b' } }),
        { subnet: '10.89.0.0/24' },
      );
      const devices = new FakeDevices();
      const report = await collectGarbage(mine.driver.runtime, devices, {
        dryRun: false,
        graceSeconds: 0,
        docker: { networks: new Map(), endpoints: new Set(), addresses: new Set() },
        ownsBridges: false,
        owner: 'kuryr',
        onlyHost: 'host-a',
        now: LATER,
        force: true,
      });
      assert.deepEqual(
        report.actions.map((a) => a.kind),
        ['network'],
        'only our network is an orphan',
      );
      const left = (await mine.neutron.listNetworks()).map((n) => dockerIdOf(n.tags));
      assert.deepEqual(left, [theirs.id], "the other host's network is kept");
      assert.notEqual(ours.id, theirs.id);
    } finally {
      mine.close();
    }
  });
});
