// Several hosts, one Neutron: each host's plugin (its own host_id, binder and Docker) only ever releases the ports
// bound to its host, or the unbound ports its own IPAM made. Two drivers share one store here, as two hosts share
// one Neutron; every Docker network ID is the same on both hosts when the scope is global (Swarm's view).
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { DockerEndpoints } from '../../src/docker/client.ts';
import { KuryrDriver } from '../../src/driver/driver.ts';
import type { DriverSettings } from '../../src/config/config.ts';
import type { Port } from '../../src/neutron/types.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { collectGarbage, type DeviceTool } from '../../src/reconcile/gc.ts';
import { FakeBinder, mac, makeDriver, TEST_SETTINGS } from '../helpers/fakes.ts';
import { type DockerNetwork, endpointJoin, endpointLeave, networkCreate } from '../helpers/docker-sequence.ts';

const LATER = Date.now() + 3_600_000;
const noDevices: DeviceTool = { runJson: async () => [], deleteLink: async () => true };

interface Host {
  name: string;
  driver: KuryrDriver;
  binder: FakeBinder;
}

/**
 * Hosts A and B: two plugins on the same Neutron (the store plays it), each its own binder and no embedded agent
 * (a real Neutron's L2 agents wire the ports).
 */
async function twoHosts(settings: Partial<DriverSettings> = {}) {
  const env = await makeDriver();
  const host = (name: string): Host => {
    const binder = new FakeBinder();
    const driver = new KuryrDriver({
      neutron: env.neutron,
      binder,
      settings: { ...TEST_SETTINGS, ...settings, hostId: name },
      log: silentLogger(),
    });
    return { name, driver, binder };
  };
  return { env, a: host('host-a'), b: host('host-b') };
}

/** `CreateNetwork` of the same Docker network on another host (global scope: same ID, same IPAM data). */
async function createOn(host: Host, net: DockerNetwork, opts: Record<string, string> = {}): Promise<void> {
  await host.driver.createNetwork({
    NetworkID: net.id,
    Options: { 'com.docker.network.generic': opts },
    IPv4Data: net.pools.map((p) => ({ AddressSpace: 'no_address_space', Pool: p.pool, Gateway: p.gateway })),
  });
}

/** An address from the network's pool on this host, without CreateEndpoint yet (an unbound IPAM port). */
async function unboundAddress(host: Host, net: DockerNetwork, n: number): Promise<string> {
  const { Address } = await host.driver.requestAddress({
    PoolID: net.pools[0]!.poolId,
    Address: '',
    Options: { 'com.docker.network.endpoint.macaddress': mac(4000 + n) },
  });
  return Address.split('/')[0]!;
}

const holding = (ports: readonly Port[], address: string) =>
  ports.find((p) => p.fixed_ips.some((f) => f.ip_address === address));

describe('several hosts on one Neutron: a host releases only its own ports', () => {
  let hosts: Awaited<ReturnType<typeof twoHosts>>;
  afterEach(() => hosts.env.close());

  describe('global scope: every host calls DeleteNetwork for the same Docker network', () => {
    beforeEach(async () => {
      hosts = await twoHosts({ capabilityScope: 'global' });
    });

    test("one host's DeleteNetwork keeps the other host's ports and the network; the last host's removes it", async () => {
      const { env, a, b } = hosts;
      const net = await networkCreate(a.driver, { subnet: '10.70.0.0/24' });
      await createOn(b, net);
      assert.equal((await env.neutron.listNetworks()).length, 1, 'host B found host A’s network');
      // Host A: one endpoint whose DeleteEndpoint never came (a crash): a leftover bound to A.
      const leftover = await endpointJoin(a.driver, net);
      // Host B: a running endpoint, and an address between RequestAddress and CreateEndpoint.
      const running = await endpointJoin(b.driver, net);
      const pending = await unboundAddress(b, net, 1);

      await a.driver.deleteNetwork(net.id);

      const ports = await env.neutron.listPorts();
      const runningPort = holding(ports, running.address.split('/')[0]!);
      assert.ok(runningPort, "host B's endpoint port is kept");
      assert.equal(runningPort['binding:host_id'], 'host-b');
      assert.ok(holding(ports, pending), "host B's unbound IPAM port is kept");
      assert.equal(holding(ports, leftover.address.split('/')[0]!), undefined, "host A's leftover port is removed");
      assert.deepEqual(b.binder.calls, [`bind ${runningPort.id}`], "host A never unplugged host B's port");
      const [network] = await env.neutron.listNetworks();
      assert.ok(network, 'the network stays while host B has ports on it');
      assert.equal((await env.neutron.listSubnets({ network_id: network.id })).length, 1);

      // Host B goes on using it, then removes everything; its DeleteNetwork is the last one.
      const more = await endpointJoin(b.driver, net);
      await endpointLeave(b.driver, more);
      await endpointLeave(b.driver, running);
      await b.driver.releaseAddress({ PoolID: net.pools[0]!.poolId, Address: pending });
      await b.driver.deleteNetwork(net.id);
      assert.deepEqual(await env.neutron.listNetworks(), [], 'the last host removed the network');
      assert.deepEqual(await env.neutron.listPorts(), []);
    });

    test('on a pre-existing network, the tags and subnets stay while another host has ports', async () => {
      const { env, a, b } = hosts;
      const existing = await env.neutron.createNetwork({ name: 'shared-net' });
      await env.neutron.createSubnets([{ network_id: existing.id, ip_version: 4, cidr: '10.71.0.0/24' }]);
      const opts = { 'neutron.net.uuid': existing.id };
      const net = await networkCreate(a.driver, { subnet: '10.71.0.0/24', opts });
      await createOn(b, net, opts);
      const leftover = await endpointJoin(a.driver, net);
      const running = await endpointJoin(b.driver, net);

      await a.driver.deleteNetwork(net.id);

      const ports = await env.neutron.listPorts({ network_id: existing.id });
      assert.ok(holding(ports, running.address.split('/')[0]!), "host B's port is kept");
      assert.equal(holding(ports, leftover.address.split('/')[0]!), undefined, "host A's leftover port is removed");
      const after = await env.neutron.showNetwork(existing.id);
      assert.ok(after.tags.includes(`kuryr.net.uuid.lh:${net.id.slice(0, 32)}`), 'host B still finds the network');
      // Host B keeps working on it, then the last DeleteNetwork hands the network back untagged.
      const more = await endpointJoin(b.driver, net);
      await endpointLeave(b.driver, more);
      await endpointLeave(b.driver, running);
      await b.driver.deleteNetwork(net.id);
      assert.deepEqual((await env.neutron.showNetwork(existing.id)).tags, []);
      assert.deepEqual(await env.neutron.listPorts({ network_id: existing.id }), []);
    });
  });

  describe('local scope: each host its own Docker network on one Neutron network', () => {
    beforeEach(async () => {
      hosts = await twoHosts();
    });

    test("a host's DeleteNetwork of its own network leaves the ports another host bound there", async () => {
      const { env, a, b } = hosts;
      const netA = await networkCreate(a.driver, { subnet: '10.72.0.0/24' });
      const [neutronNet] = await env.neutron.listNetworks();
      // Host B maps its own Docker network onto host A's Neutron network, as an orchestrator would.
      const netB = await networkCreate(b.driver, {
        subnet: '10.72.0.0/24',
        opts: { 'neutron.net.uuid': neutronNet!.id },
      });
      const epB = await endpointJoin(b.driver, netB);
      await a.driver.deleteNetwork(netA.id);
      assert.ok(holding(await env.neutron.listPorts(), epB.address.split('/')[0]!), "host B's port is kept");
      assert.equal(b.binder.bound.size, 1);
      await endpointLeave(b.driver, epB);
      await b.driver.deleteNetwork(netB.id);
    });
  });

  describe('the embedded backend serves one host', () => {
    test('DeleteNetwork removes every leftover port, whatever host it names (e.g. after a rename)', async () => {
      const env = await makeDriver({ hostId: 'new-name' });
      hosts = { env, a: { name: 'new-name', driver: env.driver, binder: env.binder }, b: undefined as never };
      const net = await networkCreate(env.driver, { subnet: '10.76.0.0/24' });
      const leftover = await endpointJoin(env.driver, net);
      const [port] = await env.neutron.listPorts({ device_owner: 'compute:kuryr' });
      await env.neutron.updatePort(port!.id, { 'binding:host_id': 'old-name' });
      await env.driver.deleteNetwork(net.id);
      assert.deepEqual(await env.neutron.listNetworks(), []);
      assert.equal(holding(await env.neutron.listPorts(), leftover.address.split('/')[0]!), undefined);
    });
  });

  describe('gc', () => {
    beforeEach(async () => {
      hosts = await twoHosts({ capabilityScope: 'global' });
    });

    const nothing: DockerEndpoints = { networks: new Map(), endpoints: new Set(), addresses: new Set() };
    const gcOn = (host: Host, docker: DockerEndpoints) =>
      collectGarbage(host.driver.runtime, noDevices, {
        dryRun: false,
        graceSeconds: 0,
        docker,
        ownsBridges: false,
        owner: 'kuryr',
        onlyHost: host.name,
        now: LATER,
        force: true,
      });

    test("never takes another host's port for an orphan, even on a network this host created", async () => {
      const { env, a, b } = hosts;
      const net = await networkCreate(a.driver, { subnet: '10.73.0.0/24' });
      await createOn(b, net);
      const running = await endpointJoin(b.driver, net);
      const pending = await unboundAddress(b, net, 2);
      const mine = await endpointJoin(a.driver, net);
      // Host A's Docker still has the network but knows none of host B's endpoints or addresses.
      const dockerA: DockerEndpoints = {
        networks: new Map([[net.id, { Id: net.id, Name: 'n', Driver: 'kuryr' }]]),
        endpoints: new Set([mine.id]),
        addresses: new Set([mine.address.split('/')[0]!]),
      };
      const report = await gcOn(a, dockerA);
      assert.deepEqual(report.actions, [], 'nothing of host B is an orphan to host A');
      const ports = await env.neutron.listPorts();
      assert.ok(holding(ports, running.address.split('/')[0]!));
      assert.ok(holding(ports, pending));
      assert.deepEqual(b.binder.calls.length, 1);
    });

    test('a network this host no longer uses stays while another host has ports on it; its own leftovers go', async () => {
      const { env, a, b } = hosts;
      const net = await networkCreate(a.driver, { subnet: '10.74.0.0/24' });
      await createOn(b, net);
      const running = await endpointJoin(b.driver, net);
      const leftover = await endpointJoin(a.driver, net);
      const report = await gcOn(a, nothing);
      assert.ok(
        report.actions.every((act) => act.kind !== 'network'),
        `the network is not removed: ${JSON.stringify(report.actions)}`,
      );
      const ports = await env.neutron.listPorts();
      assert.ok(holding(ports, running.address.split('/')[0]!), "host B's port is kept");
      assert.equal(holding(ports, leftover.address.split('/')[0]!), undefined, "host A's orphan port is released");
      assert.equal((await env.neutron.listNetworks()).length, 1);
    });

    test("host B's gc leaves host A's unbound address on a network host B created", async () => {
      const { env, a, b } = hosts;
      const net = await networkCreate(b.driver, { subnet: '10.75.0.0/24' });
      await createOn(a, net);
      const pending = await unboundAddress(a, net, 3);
      const dockerB: DockerEndpoints = {
        networks: new Map([[net.id, { Id: net.id, Name: 'n', Driver: 'kuryr' }]]),
        endpoints: new Set(),
        addresses: new Set(),
      };
      await gcOn(b, dockerB);
      assert.ok(holding(await env.neutron.listPorts(), pending), "host A's unbound port is kept");
      // Host A's own gc, whose Docker knows no such address, does release it.
      const dockerA = { ...dockerB };
      await gcOn(a, dockerA);
      assert.equal(holding(await env.neutron.listPorts(), pending), undefined);
    });
  });
});
