/**
 * Two kuryr-ts instances on one host (different driver names, same host ID) share a Neutron: each one's gc sees
 * only its own engine's networks (Docker's view is filtered by driver name), so it must consider only the
 * networks it created itself, never the other instance's.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { DockerEndpoints } from '../../src/docker/client.ts';
import { KuryrDriver } from '../../src/driver/driver.ts';
import { dockerIdOfTags as dockerIdOf } from '../../src/driver/marks.ts';
import { creatorOf, networkDescription } from '../../src/driver/network-description.ts';
import { collectGarbage, type DeviceTool } from '../../src/reconcile/gc.ts';
import { endpointJoin, networkCreate } from '../helpers/docker-sequence.ts';
import { makeDriver, TEST_SETTINGS } from '../helpers/fakes.ts';

const noDevices: DeviceTool = { runJson: async () => [], deleteLink: async () => true };
const LATER = Date.now() + 3_600_000;

describe('gc with two plugin instances on one host', () => {
  let env: Awaited<ReturnType<typeof makeDriver>>;
  let b: KuryrDriver;
  beforeEach(async () => {
    env = await makeDriver({ hostId: 'host-a', driverName: 'kuryr' });
    // The second instance: same host, same Neutron (here: the same store), another driver name and engine view.
    b = new KuryrDriver({
      ...env.driver.runtime,
      settings: { ...TEST_SETTINGS, hostId: 'host-a', driverName: 'kuryr2' },
    });
  });
  afterEach(() => env.close());

  const gcOfA = (docker: DockerEndpoints, dryRun: boolean) =>
    collectGarbage(env.driver.runtime, noDevices, {
      dryRun,
      graceSeconds: 60,
      docker,
      ownsBridges: false,
      owner: 'kuryr',
      onlyHost: 'host-a',
      now: LATER,
      force: false,
    });
  const sees = (...ids: string[]): DockerEndpoints => ({
    networks: new Map(ids.map((id) => [id, { Id: id, Name: id, Driver: 'kuryr' }])),
    endpoints: new Set(),
    addresses: new Set(),
  });

  test("A's gc never plans B's network or its endpoint ports, and still removes A's own orphan", async () => {
    const live = await networkCreate(env.driver, { subnet: '10.90.0.0/24' });
    const orphan = await networkCreate(env.driver, { subnet: '10.91.0.0/24' });
    const theirs = await networkCreate(b, { subnet: '10.92.0.0/24' });
    await endpointJoin(b, theirs);
    const theirNetwork = (await env.neutron.listNetworks()).find((n) => dockerIdOf(n.tags) === theirs.id)!;
    assert.deepEqual(creatorOf(theirNetwork.description), { host: 'host-a', driver: 'kuryr2' });

    const planned = await gcOfA(sees(live.id), true);
    assert.deepEqual(
      planned.actions.map((a) => [a.kind, a.result, a.reason]),
      [['network', 'planned', `Docker network ${orphan.id} no longer exists`]],
      "dry run: only A's orphan",
    );

    const report = await gcOfA(sees(live.id), false);
    assert.deepEqual(
      report.actions.map((a) => [a.kind, a.result]),
      [['network', 'removed']],
    );
    const left = (await env.neutron.listNetworks()).map((n) => dockerIdOf(n.tags)).sort();
    assert.deepEqual(left, [live.id, theirs.id].sort(), "B's network is kept");
    const theirPorts = (await env.neutron.listPorts()).filter((p) => p.network_id === theirNetwork.id);
    assert.ok(
      theirPorts.some((p) => p.device_owner !== 'network:dhcp' && p.tags.length > 0),
      "B's endpoint port is kept",
    );
  });

  test('the description names the driver; the older formats still parse (no driver: treated as this host)', () => {
    const id = 'a'.repeat(64);
    const text = networkDescription(id, { hostId: 'host-a', driverName: 'kuryr2' }, 'web');
    assert.equal(text, `Docker network web ${id} (kuryr-ts kuryr2 on host-a)`);
    assert.deepEqual(creatorOf(text), { host: 'host-a', driver: 'kuryr2' });
    assert.deepEqual(creatorOf(`Docker network web ${id} (kuryr-ts on host-a)`), { host: 'host-a' });
    assert.deepEqual(creatorOf(`Docker network ${id} (kuryr-ts on on)`), { host: 'on' });
    assert.deepEqual(creatorOf(`Docker network ${id} (kuryr-ts)`), {});
    assert.equal(creatorOf('something else'), undefined);
  });

  test('the description stays within Neutron 255 characters, shortening the name first', () => {
    const id = 'b'.repeat(64);
    const text = networkDescription(id, { hostId: 'h'.repeat(63), driverName: 'd'.repeat(64) }, 'n'.repeat(128));
    assert.ok(text.length <= 255, `${text.length} characters`);
    assert.deepEqual(creatorOf(text), { host: 'h'.repeat(63), driver: 'd'.repeat(64) });
    assert.ok(text.includes(id));
  });
});
