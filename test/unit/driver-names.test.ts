// Names people can read: the Docker network's name in the Neutron network's description, the container's
// name (newer engines send it) in the port's, both written without ever updating a wired port.
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { KuryrDriver } from '../../src/driver/driver.ts';
import { dockerIdInDescription } from '../../src/driver/network-description.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/store.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { networkCreate } from '../helpers/docker-sequence.ts';
import { FakeAgent, FakeBinder, TEST_SETTINGS } from '../helpers/fakes.ts';

/** Lets promise chains and I/O callbacks run (setImmediate is not among the mocked timers). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

test("the Docker network's name is recorded in the description of the Neutron network, retried each second", async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  const neutron = openEmbeddedNeutron({ path: ':memory:' });
  let asked = 0;
  const names = {
    async networkName() {
      asked++;
      return asked < 2 ? undefined : 'frontend net'; // Docker knows the network only after CreateNetwork returned
    },
  };
  const driver = new KuryrDriver({
    neutron,
    binder: new FakeBinder(),
    agent: new FakeAgent(),
    settings: TEST_SETTINGS,
    log: silentLogger(),
    names,
  });
  try {
    const net = await networkCreate(driver, { subnet: '10.97.0.0/24' });
    const description = async () => (await neutron.listNetworks())[0]!.description;
    const before = await description();
    await settle();
    assert.equal(asked, 0, 'not asked while CreateNetwork answers: Docker has not stored the network yet');
    mock.timers.tick(999);
    await settle();
    assert.equal(asked, 0, 'first asked after 1 s');
    mock.timers.tick(1);
    await settle();
    assert.equal(asked, 1, 'asked once: Docker did not know the name yet');
    mock.timers.tick(999);
    await settle();
    assert.equal(asked, 1, 'the retry waits another second');
    assert.equal(await description(), before);
    mock.timers.tick(1);
    await settle();
    assert.equal(asked, 2);
    const [network] = await neutron.listNetworks();
    assert.equal(network!.description, `Docker network frontend_net ${net.id} (kuryr-ts kuryr on test-host)`);
    assert.equal(dockerIdInDescription(network!.description), net.id, 'still recognisable as ours');
    assert.equal(network!.name, `kuryr-net-${net.id.slice(0, 8)}`, 'the name stays kuryr-libnetwork’s');
    mock.timers.tick(10_000);
    await settle();
    assert.equal(asked, 2, 'no asking once the name is recorded');
  } finally {
    mock.timers.reset();
    neutron.close();
  }
});

test('a container name sent by the engine describes its port from the start', async () => {
  const neutron = openEmbeddedNeutron({ path: ':memory:' });
  const driver = new KuryrDriver({
    neutron,
    binder: new FakeBinder(),
    agent: new FakeAgent(),
    settings: TEST_SETTINGS,
    log: silentLogger(),
  });
  try {
    const net = await networkCreate(driver, { subnet: '10.98.0.0/24' });
    await driver.requestAddress({
      PoolID: net.pools[0]!.poolId,
      Address: '',
      Options: {
        'com.docker.network.endpoint.macaddress': '02:42:0a:62:00:02',
        'com.docker.network.endpoint.name': 'web-1',
      },
    });
    const [port] = await neutron.listPorts();
    assert.equal(port!.description, 'Docker container web-1 (kuryr-ts on test-host)');
    assert.equal(port!.revision_number, 0, 'described at creation, never updated for it');
  } finally {
    neutron.close();
  }
});
