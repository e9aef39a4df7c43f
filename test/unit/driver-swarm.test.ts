// Swarm mode on one Neutron: the MANAGER's plugin is asked for every task's address (RequestPool, the gateway,
// then RequestAddress without a MAC) before any node has called CreateNetwork; each node that gets a task then
// repeats RequestPool and the gateway, calls CreateNetwork, and asks its own plugin for the manager's address
// (with a MAC), then CreateEndpoint binds the port to that node. Two drivers share one store, as two hosts share
// one Neutron.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { serve } from '../../src/cli/serve.ts';
import type { DriverSettings } from '../../src/config/config.ts';
import { loadConfig } from '../../src/config/load.ts';
import { isDriverRef } from '../../src/docker/client.ts';
import { refuseEmbeddedGlobalScope } from '../../src/config/scope.ts';
import type { KuryrDriver } from '../../src/driver/driver.ts';
import type { TagSupport } from '../../src/driver/marks.ts';
import type { Port } from '../../src/neutron/types.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { collectGarbage, type DeviceTool } from '../../src/reconcile/gc.ts';
import { FakeBinder, dockerId, mac, makeDriver, servedDriver, TEST_SETTINGS } from '../helpers/fakes.ts';

const GW = { RequestAddressType: 'com.docker.network.gateway' };
const MAC = 'com.docker.network.endpoint.macaddress';

interface Host {
  name: string;
  driver: KuryrDriver;
  binder: FakeBinder;
}

async function twoHosts(tagSupport?: TagSupport, settings: Partial<DriverSettings> = {}) {
  const env = await makeDriver({}, tagSupport === undefined ? { agent: false } : { tagSupport });
  const host = (name: string): Host => {
    const binder = new FakeBinder();
    const driver = servedDriver({
      neutron: env.neutron,
      binder,
      settings: { ...TEST_SETTINGS, capabilityScope: 'global', ...settings, hostId: name },
      log: silentLogger(),
      ...(tagSupport === undefined ? {} : { tagSupport }),
    });
    return { name, driver, binder };
  };
  return { env, manager: host('host-a'), worker: host('host-b') };
}

/** The manager's allocator: `docker network create --scope swarm` (RequestPool and the gateway only). */
async function swarmNetworkCreate(manager: Host, subnet: string) {
  const pool = await manager.driver.requestPool({ Pool: subnet, SubPool: '', Options: {}, V6: false });
  const gw = await manager.driver.requestAddress({ PoolID: pool.PoolID, Address: '', Options: GW });
  return { id: dockerId(), poolId: pool.PoolID, pool: pool.Pool, gateway: gw.Address };
}
type SwarmNet = Awaited<ReturnType<typeof swarmNetworkCreate>>;

/** The manager's allocator gives a task (or a VIP) an address: no MAC, no CreateNetwork anywhere yet. */
async function allocate(manager: Host, net: SwarmNet): Promise<string> {
  const { Address } = await manager.driver.requestAddress({ PoolID: net.poolId, Address: '', Options: null });
  return Address.split('/')[0]!;
}

let macs = 0;

/** A node starts a task: its own RequestPool, gateway and CreateNetwork, then the task's address and endpoint. */
async function startTask(node: Host, net: SwarmNet, address: string) {
  const pool = await node.driver.requestPool({ Pool: net.pool, SubPool: '', Options: {}, V6: false });
  await node.driver.requestAddress({ PoolID: pool.PoolID, Address: net.gateway.split('/')[0]!, Options: GW });
  await node.driver.createNetwork({
    NetworkID: net.id,
    Options: { 'com.docker.network.generic': {} },
    IPv4Data: [{ AddressSpace: 'no_address_space', Pool: net.pool, Gateway: net.gateway }],
  });
  const taskMac = mac(7000 + ++macs);
  const got = await node.driver.requestAddress({ PoolID: pool.PoolID, Address: address, Options: { [MAC]: taskMac } });
  assert.equal(got.Address.split('/')[0], address, 'the node gets the address the manager allocated');
  const endpointId = dockerId();
  await node.driver.createEndpoint({
    NetworkID: net.id,
    EndpointID: endpointId,
    Interface: { Address: got.Address, MacAddress: taskMac },
  });
  return { endpointId, poolId: pool.PoolID, address };
}
type Task = Awaited<ReturnType<typeof startTask>>;

/** The node stops the task: DeleteEndpoint and its own ReleaseAddress (the manager releases separately). */
async function stopTask(node: Host, task: Task) {
  await node.driver.deleteEndpoint(task.endpointId);
  await node.driver.releaseAddress({ PoolID: task.poolId, Address: task.address });
}

/** The node has no task left on the network: DeleteNetwork and its own ReleasePool. */
async function leaveNetwork(node: Host, net: SwarmNet, task: Task) {
  await node.driver.deleteNetwork(net.id);
  await node.driver.releasePool(task.poolId);
}

const holding = (ports: readonly Port[], address: string) =>
  ports.find((p) => p.fixed_ips.some((f) => f.ip_address === address));

const MODES: [string, TagSupport | undefined][] = [
  ['with tags', undefined],
  ['without tag extensions', { tag: false, tagExt: false }],
];

for (const [label, support] of MODES) {
  describe(`Swarm mode, ${label}: the IPAM stands on its own before any CreateNetwork`, () => {
    let hosts: Awaited<ReturnType<typeof twoHosts>>;
    afterEach(() => hosts.env.close());

    test("the manager allocates task addresses before any CreateNetwork (was: 'Subnet with pool ... does not exist')", async () => {
      hosts = await twoHosts(support);
      const { env, manager } = hosts;
      const net = await swarmNetworkCreate(manager, '10.90.0.0/24');
      const a = await allocate(manager, net);
      const b = await allocate(manager, net);
      assert.notEqual(a, b);
      assert.notEqual(a, net.gateway.split('/')[0]);
      const networks = await env.neutron.listNetworks();
      assert.equal(networks.length, 1, 'one Neutron network holds the pool');
      const subnets = await env.neutron.listSubnets();
      assert.deepEqual(
        subnets.map((s) => [s.cidr, s.gateway_ip]),
        [['10.90.0.0/24', '10.90.0.1']],
      );
      const ports = await env.neutron.listPorts();
      for (const ip of [a, b]) {
        const port = holding(ports, ip);
        assert.ok(port, `a port holds ${ip}`);
        assert.equal(port['binding:host_id'], '', 'unbound until a node takes it');
      }
    });

    test('--gateway given to the swarm network: the subnet the first task makes has that gateway', async () => {
      hosts = await twoHosts(support);
      const { env, manager } = hosts;
      const pool = await manager.driver.requestPool({ Pool: '10.91.0.0/24', SubPool: '', Options: {}, V6: false });
      const gw = await manager.driver.requestAddress({ PoolID: pool.PoolID, Address: '10.91.0.254', Options: GW });
      assert.equal(gw.Address, '10.91.0.254/24');
      const net = { id: dockerId(), poolId: pool.PoolID, pool: pool.Pool, gateway: gw.Address };
      const a = await allocate(manager, net);
      assert.notEqual(a, '10.91.0.254');
      assert.deepEqual(
        (await env.neutron.listSubnets()).map((s) => [s.cidr, s.gateway_ip]),
        [['10.91.0.0/24', '10.91.0.254']],
        'the gateway noted by one request is the one the next request gives the subnet',
      );
    });

    test('tasks on both hosts: each port is bound to its own host; scale to 0 and remove: nothing left', async () => {
      hosts = await twoHosts(support);
      const { env, manager, worker } = hosts;
      const net = await swarmNetworkCreate(manager, '10.91.0.0/24');
      const vip = await allocate(manager, net);
      const addrA = await allocate(manager, net);
      const addrB = await allocate(manager, net);

      const onB = await startTask(worker, net, addrB);
      const onA = await startTask(manager, net, addrA);
      assert.equal((await env.neutron.listNetworks()).length, 1, 'both nodes adopted the IPAM’s network');
      assert.equal((await env.neutron.listSubnets()).length, 1);
      let ports = await env.neutron.listPorts();
      assert.equal(ports.length, 3, 'one port per address: the nodes took the manager’s ports');
      assert.equal(holding(ports, addrA)?.['binding:host_id'], 'host-a');
      assert.equal(holding(ports, addrB)?.['binding:host_id'], 'host-b');
      assert.equal(holding(ports, vip)?.['binding:host_id'], '');
      assert.equal(manager.binder.bound.size, 1);
      assert.equal(worker.binder.bound.size, 1);

      // Scale down. Worker: its release first, then the manager's. Manager's task: the manager's release first.
      await stopTask(worker, onB);
      assert.ok(holding(await env.neutron.listPorts(), addrB), 'kept while the manager still allocates it');
      assert.equal(holding(await env.neutron.listPorts(), addrB)?.['binding:host_id'], '', 'no longer bound');
      await manager.driver.releaseAddress({ PoolID: net.poolId, Address: addrB });
      assert.equal(holding(await env.neutron.listPorts(), addrB), undefined, 'gone once both released it');
      await manager.driver.releaseAddress({ PoolID: net.poolId, Address: addrA });
      assert.equal(holding(await env.neutron.listPorts(), addrA)?.['binding:host_id'], 'host-a', 'still in use');
      await stopTask(manager, onA);
      assert.equal(holding(await env.neutron.listPorts(), addrA), undefined);

      // The worker has no task left: its DeleteNetwork and ReleasePool keep what the manager still holds (the VIP).
      await leaveNetwork(worker, net, onB);
      assert.equal((await env.neutron.listNetworks()).length, 1, 'the VIP keeps the network');
      ports = await env.neutron.listPorts();
      assert.deepEqual(
        ports.map((p) => p.fixed_ips[0]?.ip_address),
        [vip],
      );

      // Scale up again: the worker gets a task on the same network.
      const again = await allocate(manager, net);
      const onB2 = await startTask(worker, net, again);
      assert.equal(holding(await env.neutron.listPorts(), again)?.['binding:host_id'], 'host-b');
      await stopTask(worker, onB2);
      await manager.driver.releaseAddress({ PoolID: net.poolId, Address: again });
      await leaveNetwork(worker, net, onB2);
      await leaveNetwork(manager, net, onA);

      // `docker service rm` then `docker network rm`: the manager releases the VIP, the gateway and the pool.
      await manager.driver.releaseAddress({ PoolID: net.poolId, Address: vip });
      await manager.driver.releaseAddress({ PoolID: net.poolId, Address: net.gateway.split('/')[0]! });
      await manager.driver.releasePool(net.poolId);
      assert.deepEqual(await env.neutron.listPorts(), [], 'no port left');
      assert.deepEqual(await env.neutron.listNetworks(), [], 'no network left');
      assert.deepEqual(await env.neutron.listSubnets(), [], 'no subnet left');
      assert.deepEqual((await env.neutron.listSubnetPools()).map((p) => p.name).sort(), ['kuryr', 'kuryr6']);
    });

    test('scale to 0 with no VIP: the network goes and comes back; the pool survives the nodes’ ReleasePool', async () => {
      hosts = await twoHosts(support);
      const { env, manager, worker } = hosts;
      const net = await swarmNetworkCreate(manager, '10.92.0.0/24');
      const addr = await allocate(manager, net);
      const task = await startTask(worker, net, addr);
      await stopTask(worker, task);
      await manager.driver.releaseAddress({ PoolID: net.poolId, Address: addr });
      await leaveNetwork(worker, net, task);
      assert.deepEqual(await env.neutron.listPorts(), []);

      const addr2 = await allocate(manager, net);
      const task2 = await startTask(worker, net, addr2);
      assert.equal(holding(await env.neutron.listPorts(), addr2)?.['binding:host_id'], 'host-b');
      await stopTask(worker, task2);
      await manager.driver.releaseAddress({ PoolID: net.poolId, Address: addr2 });
      await leaveNetwork(worker, net, task2);
      await manager.driver.releasePool(net.poolId);
      assert.deepEqual(await env.neutron.listNetworks(), []);
      assert.deepEqual(await env.neutron.listPorts(), []);
      assert.deepEqual((await env.neutron.listSubnetPools()).map((p) => p.name).sort(), ['kuryr', 'kuryr6']);
    });

    test('without --subnet (a block of the default pool) the tasks get addresses too', async () => {
      hosts = await twoHosts(support);
      const { env, manager, worker } = hosts;
      const pool = await manager.driver.requestPool({ Pool: '', SubPool: '', Options: {}, V6: false });
      const gw = await manager.driver.requestAddress({ PoolID: pool.PoolID, Address: '', Options: GW });
      const net: SwarmNet = { id: dockerId(), poolId: pool.PoolID, pool: pool.Pool, gateway: gw.Address };
      const addr = await allocate(manager, net);
      const task = await startTask(worker, net, addr);
      assert.equal(holding(await env.neutron.listPorts(), addr)?.['binding:host_id'], 'host-b');
      await stopTask(worker, task);
      await manager.driver.releaseAddress({ PoolID: net.poolId, Address: addr });
      await leaveNetwork(worker, net, task);
      await manager.driver.releasePool(net.poolId);
      assert.deepEqual(await env.neutron.listNetworks(), []);
      assert.deepEqual(await env.neutron.listPorts(), []);
    });

    test("gc on either host never removes a pending task's port or the other host's bound port", async () => {
      hosts = await twoHosts(support);
      const { env, manager, worker } = hosts;
      const net = await swarmNetworkCreate(manager, '10.93.0.0/24');
      const pending = await allocate(manager, net);
      const addrB = await allocate(manager, net);
      const onB = await startTask(worker, net, addrB);
      const noDevices: DeviceTool = { runJson: async () => [], deleteLink: async () => true };
      for (const host of [manager, worker]) {
        await collectGarbage(host.driver.runtime, noDevices, {
          dryRun: false,
          graceSeconds: 0,
          docker: {
            networks: new Map([[net.id, { Id: net.id, Name: 'n', Driver: 'kuryr' }]]),
            endpoints: new Set(host === worker ? [onB.endpointId] : []),
            addresses: new Set(host === worker ? [addrB] : []),
          },
          ownsBridges: false,
          owner: 'kuryr',
          onlyHost: host.name,
          now: Date.now() + 3_600_000,
          force: true,
        });
      }
      const ports = await env.neutron.listPorts();
      assert.ok(holding(ports, pending), "the manager's pending allocation is kept");
      assert.equal(holding(ports, addrB)?.['binding:host_id'], 'host-b', "the worker's task port is kept");
    });
    test('FreeNetwork drops the allocations Swarm never released (the nodes’ load-balancer addresses)', async () => {
      hosts = await twoHosts(support);
      const { env, manager, worker } = hosts;
      const net = await swarmNetworkCreate(manager, '10.97.0.0/24');
      // Each node's load-balancer endpoint: an address the manager allocates for the node, taken by the node.
      const lbB = await allocate(manager, net);
      const lbA = await allocate(manager, net);
      const onB = await startTask(worker, net, lbB);
      const onA = await startTask(manager, net, lbA);
      // The nodes leave the network (their own release and ReleasePool); Swarm never releases the allocations.
      await stopTask(worker, onB);
      await leaveNetwork(worker, net, onB);
      await stopTask(manager, onA);
      await leaveNetwork(manager, net, onA);
      assert.equal((await env.neutron.listPorts()).length, 2, 'the manager still holds both');
      // `docker network rm`: FreeNetwork, the gateway, ReleasePool on the manager.
      assert.deepEqual(await manager.driver.freeNetwork(net.id), {});
      await manager.driver.releaseAddress({ PoolID: net.poolId, Address: net.gateway.split('/')[0]! });
      await manager.driver.releasePool(net.poolId);
      assert.deepEqual(await env.neutron.listPorts(), [], 'no port left');
      assert.deepEqual(await env.neutron.listNetworks(), [], 'no network left');
      assert.deepEqual((await env.neutron.listSubnetPools()).map((p) => p.name).sort(), ['kuryr', 'kuryr6']);
    });

    test('FreeNetwork while a node still holds its address: the node’s own release removes the port', async () => {
      hosts = await twoHosts(support);
      const { env, manager, worker } = hosts;
      const net = await swarmNetworkCreate(manager, '10.98.0.0/24');
      const lbB = await allocate(manager, net);
      const onB = await startTask(worker, net, lbB);
      await manager.driver.freeNetwork(net.id);
      assert.equal(holding(await env.neutron.listPorts(), lbB)?.['binding:host_id'], 'host-b', 'still in use');
      await manager.driver.releasePool(net.poolId);
      assert.equal((await env.neutron.listNetworks()).length, 1, 'the network stays for the node');
      await stopTask(worker, onB);
      await leaveNetwork(worker, net, onB);
      assert.deepEqual(await env.neutron.listPorts(), []);
      assert.deepEqual(await env.neutron.listNetworks(), []);
      assert.deepEqual((await env.neutron.listSubnetPools()).map((p) => p.name).sort(), ['kuryr', 'kuryr6']);
    });

    test('a custom --gateway reaches the subnet the IPAM makes; a node retrying its request holds the address once', async () => {
      hosts = await twoHosts(support);
      const { env, manager, worker } = hosts;
      const pool = await manager.driver.requestPool({ Pool: '10.99.0.0/24', SubPool: '', Options: {}, V6: false });
      const gw = await manager.driver.requestAddress({ PoolID: pool.PoolID, Address: '10.99.0.254', Options: GW });
      assert.equal(gw.Address, '10.99.0.254/24');
      const net: SwarmNet = { id: dockerId(), poolId: pool.PoolID, pool: pool.Pool, gateway: gw.Address };
      const addr = await allocate(manager, net);
      assert.deepEqual(
        (await env.neutron.listSubnets()).map((s) => s.gateway_ip),
        ['10.99.0.254'],
      );
      // The worker's own request for it, retried (same MAC) before its CreateEndpoint: one hold of the worker.
      const own = await worker.driver.requestPool({ Pool: net.pool, SubPool: '', Options: {}, V6: false });
      for (let i = 0; i < 2; i++) {
        const got = await worker.driver.requestAddress({
          PoolID: own.PoolID,
          Address: addr,
          Options: { [MAC]: mac(7998) },
        });
        assert.equal(got.Address, `${addr}/24`);
      }
      assert.match(holding(await env.neutron.listPorts(), addr)?.description ?? '', /held by m:host-a n:host-b$/);
    });

    test("a worker's crash leftovers: the manager's release leaves them to the worker's gc, never to the manager's", async () => {
      hosts = await twoHosts(support);
      const { env, manager, worker } = hosts;
      const net = await swarmNetworkCreate(manager, '10.96.0.0/24');
      const running = await allocate(manager, net);
      const onB = await startTask(worker, net, running);
      // Task 2: the worker took the address, then its plugin died before CreateEndpoint.
      const taken = await allocate(manager, net);
      await worker.driver.requestAddress({ PoolID: onB.poolId, Address: taken, Options: { [MAC]: mac(7999) } });
      // Task 3: bound on the worker, then the plugin died (no DeleteEndpoint, no ReleaseAddress from the worker).
      const bound = await allocate(manager, net);
      const crashed = await startTask(worker, net, bound);
      // Swarm gives up both tasks: the manager releases their addresses.
      for (const a of [taken, bound]) await manager.driver.releaseAddress({ PoolID: net.poolId, Address: a });
      assert.ok(holding(await env.neutron.listPorts(), taken), 'the worker still holds it as far as Neutron knows');
      assert.ok(holding(await env.neutron.listPorts(), bound));

      const gcOn = (host: Host, docker: { endpoints: string[]; addresses: string[] }) =>
        collectGarbage(
          host.driver.runtime,
          { runJson: async () => [], deleteLink: async () => true },
          {
            dryRun: false,
            graceSeconds: 0,
            docker: {
              networks: new Map([[net.id, { Id: net.id, Name: 'n', Driver: 'kuryr' }]]),
              endpoints: new Set(docker.endpoints),
              addresses: new Set(docker.addresses),
            },
            ownsBridges: false,
            owner: 'kuryr',
            onlyHost: host.name,
            now: Date.now() + 3_600_000,
            force: true,
          },
        );
      await gcOn(manager, { endpoints: [], addresses: [] });
      let ports = await env.neutron.listPorts();
      assert.ok(
        holding(ports, taken) && holding(ports, bound) && holding(ports, running),
        "the manager's gc takes none",
      );
      await gcOn(worker, { endpoints: [onB.endpointId], addresses: [running] });
      ports = await env.neutron.listPorts();
      assert.equal(holding(ports, taken), undefined, "the worker's gc removes the address it took");
      assert.equal(holding(ports, bound), undefined, "the worker's gc removes its crashed endpoint's port");
      assert.equal(holding(ports, running)?.['binding:host_id'], 'host-b', 'the running task keeps its port');
      assert.ok(!worker.binder.bound.has(holding(ports, bound)?.id ?? ''), 'its host side was unplugged');
      void crashed;
    });
  });
}

describe('Swarm mode: local scope keeps refusing an address before CreateNetwork', () => {
  test('capability_scope = local: RequestAddress without a subnet is still an error', async () => {
    const env = await makeDriver({}, { agent: false });
    try {
      const pool = await env.driver.requestPool({ Pool: '10.94.0.0/24', SubPool: '', Options: {}, V6: false });
      await env.driver.requestAddress({ PoolID: pool.PoolID, Address: '', Options: GW });
      await assert.rejects(
        env.driver.requestAddress({ PoolID: pool.PoolID, Address: '', Options: null }),
        /Subnet with pool .* does not exist/,
      );
      assert.deepEqual(await env.neutron.listNetworks(), []);
    } finally {
      env.close();
    }
  });
});

describe('the embedded backend refuses the global scope (its store serves one host)', () => {
  test('`kuryr serve` refuses to start with capability_scope = global and the embedded backend', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kuryr-scope-'));
    try {
      const conf = path.join(dir, 'kuryr.conf');
      writeFileSync(conf, `[DEFAULT]\ncapability_scope = global\n[kuryr_ts]\nbackend = embedded\nstate_dir = ${dir}\n`);
      const config = loadConfig({ config: conf }, {});
      assert.equal(config.backend, 'embedded');
      await assert.rejects(serve(config), (err: Error) => {
        assert.match(err.message, /capability_scope = global needs the neutron backend/);
        return true;
      });
      assert.deepEqual(readdirSync(dir), ['kuryr.conf'], 'nothing was opened or created');
      // The neutron backend with the global scope is a valid configuration.
      assert.doesNotThrow(() => refuseEmbeddedGlobalScope({ ...config, backend: 'neutron' }));
      assert.doesNotThrow(() =>
        refuseEmbeddedGlobalScope({ ...config, driver: { ...config.driver, capabilityScope: 'local' } }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a driver over the embedded agent with the global scope answers RequestPool with a clear error', async () => {
    const env = await makeDriver({ capabilityScope: 'global' }, { agent: true });
    try {
      await assert.rejects(
        env.driver.requestPool({ Pool: '10.95.0.0/24', SubPool: '', Options: {}, V6: false }),
        /capability_scope = global needs the neutron backend/,
      );
      assert.equal((await env.neutron.listSubnetPools()).length, 2, 'no pool was made');
    } finally {
      env.close();
    }
  });
});

describe("gc's Docker view of a managed plugin", () => {
  test('a network of the managed plugin NAME:TAG counts as driver NAME; other drivers do not', () => {
    assert.equal(isDriverRef('kxsw1:latest', 'kxsw1'), true);
    assert.equal(isDriverRef('kxsw1', 'kxsw1'), true);
    assert.equal(isDriverRef('kxsw10:latest', 'kxsw1'), false);
    assert.equal(isDriverRef('bridge', 'kxsw1'), false);
    assert.equal(isDriverRef(undefined, 'kxsw1'), false);
  });
});
