/**
 * The vlan port driver against a real trunk on the ML2/OVN lab's Neutron (its `trunk` service plugin): the
 * driver runs in-process through the full libnetwork call sequence (RequestAddress, CreateEndpoint, Join,
 * DeleteEndpoint, ReleaseAddress) over the real HTTP client. The host side runs against a recording `ip`
 * (test/helpers/fake-nested.ts): this kernel has no 8021q, so the VLAN devices are checked as commands.
 *
 * Proves: each container's port becomes a subport of the VM port's trunk with a segmentation ID, on any
 * network; two plugin processes binding 16 containers at once get 16 distinct IDs (Neutron's 409 on a taken ID
 * makes the loser choose again); a restarted plugin (nothing in memory, same host) reuses no ID in use and takes
 * the lowest free one; each VLAN device carries its subport's ID; removal takes subports and devices away.
 *
 * The lab's JSON: KURYR_OVN_LAB (default /var/lib/kuryr-ovn-lab/kuryr-test.json), its noauth endpoint.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { IpCommand } from '../../src/binding/ip-command.ts';
import { interfaceNames } from '../../src/binding/names.ts';
import { KuryrDriver } from '../../src/driver/driver.ts';
import { idTags } from '../../src/driver/tags.ts';
import { createPortBinder } from '../../src/driver/port-drivers/index.ts';
import type { NeutronHttpClient } from '../../src/neutron/http/client.ts';
import { NeutronError } from '../../src/neutron/errors.ts';
import { openNeutronHttp } from '../../src/neutron/http/index.ts';
import type { Trunk } from '../../src/neutron/nested-api.ts';
import type { Network, Port, Subnet } from '../../src/neutron/types.ts';
import {
  type DockerEndpoint,
  type DockerNetwork,
  endpointJoin,
  endpointLeave,
  networkCreate,
  networkRemove,
} from '../helpers/docker-sequence.ts';
import { FakeLinks } from '../helpers/fake-nested.ts';
import { TEST_SETTINGS } from '../helpers/fakes.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { neutronLab, neutronSnapshot, readNeutronLabFile } from '../helpers/neutron-lab.ts';

const OVN_LAB_FILE = process.env.KURYR_OVN_LAB || '/var/lib/kuryr-ovn-lab/kuryr-test.json';

async function labSkip(): Promise<string | false> {
  const file = readNeutronLabFile(OVN_LAB_FILE);
  if ('error' in file) return `no OVN lab: ${file.error}`;
  if (!file.noauth) return `the OVN lab (${OVN_LAB_FILE}) serves no noauth mode`;
  try {
    const res = await fetch(`${file.noauth.neutron_url}/v2.0/extensions`, { signal: AbortSignal.timeout(5_000) });
    const body = (await res.json()) as { extensions?: { alias: string }[] };
    const aliases = new Set((body.extensions ?? []).map((e) => e.alias));
    for (const needed of ['trunk', 'revision-if-match']) {
      if (!aliases.has(needed)) return `the OVN lab's Neutron has no ${needed} extension`;
    }
  } catch (err) {
    return `the OVN lab's Neutron (${file.noauth.neutron_url}) does not answer: ${err}`;
  }
  return false;
}

// The trunk is the ML2/OVN lab's: this file runs in the OVN pass (scripts/test-ovn.sh lists it), where it must not
// skip; in the first pass (the Linux bridge lab) it is left to that pass.
const inOvnPass = (await neutronLab()).mechanismDriver === 'ovn';
const skip =
  process.getuid?.() !== 0
    ? 'needs root'
    : inOvnPass
      ? await labSkip()
      : 'elsewhere: the vlan trunk test runs in the OVN pass (scripts/test-ovn.sh), on the ML2/OVN lab';

describe('vlan port driver on a real trunk (OVN lab)', { skip }, () => {
  const n = Math.random().toString(36).slice(2, 7);
  let url: string;
  let neutron: NeutronHttpClient;
  let before0: Awaited<ReturnType<typeof neutronSnapshot>>;
  const networks: { net: Network; subnet: Subnet }[] = [];
  let vmPort: Port;
  let trunk: Trunk;
  /** The VM's host: its devices outlive a plugin restart. */
  const host = new FakeLinks();

  const trunkCall = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}/v2.0/${path}`, {
      method,
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text === '' ? undefined : JSON.parse(text);
  };

  /** One plugin process on the VM: its own driver, locks and Neutron connections; the VM's links. */
  const plugin = (name: string) => {
    // 16 creates at once from two processes queue in the lab's single neutron-server on two cores: a POST may
    // wait longer than the default 10 s attempt timeout, and a POST is never retried. The test is about distinct
    // IDs and cleanup, not latency.
    const client = openNeutronHttp({ auth_type: 'none', endpoint: url, timeout: '25' });
    const binder = createPortBinder({
      settings: { default: 'vlan', enabled: ['vlan'], binding: 'vlan', linkIface: 'eth0' },
      neutron: client,
      owner: name,
      veth: {},
      ip: new IpCommand({ exec: host.exec }),
    });
    const driver = new KuryrDriver({
      neutron: client,
      binder,
      settings: { ...TEST_SETTINGS, hostId: `knvm-${n}` },
      log: silentLogger(),
    });
    return { driver, close: () => client.close() };
  };

  const subports = async () => (await neutron.showTrunk(trunk.id)).sub_ports;
  /** `ip link add ... type vlan ... id N` recorded for each container device: name → ID. */
  const vlanDevices = () => {
    const out = new Map<string, number>();
    for (const c of host.commands) {
      if (c[0] === 'link' && c[1] === 'add' && c.includes('vlan')) {
        out.set(c[c.indexOf('name') + 1] ?? '', Number(c[c.indexOf('id') + 1]));
      }
    }
    return out;
  };
  const portOf = async (ep: DockerEndpoint) => {
    // By the endpoint's tags: the vlan driver clears the device ID (Neutron takes no subport with one).
    const [port] = await neutron.listPorts({ tags: idTags(ep.id) });
    assert.ok(port, `a port for ${ep.id}`);
    return port;
  };

  before(async () => {
    const file = readNeutronLabFile(OVN_LAB_FILE);
    if ('error' in file || !file.noauth) throw new Error('lab vanished');
    url = file.noauth.neutron_url;
    neutron = openNeutronHttp({ auth_type: 'none', endpoint: url });
    before0 = await neutronSnapshot(neutron);
    for (const [i, name] of ['vm', 'a', 'b'].entries()) {
      const net = await neutron.createNetwork({ name: `kvlan-${n}-${name}` });
      const x = 100 + Math.floor(Math.random() * 100);
      const [subnet] = await neutron.createSubnets([
        {
          network_id: net.id,
          ip_version: 4,
          cidr: `10.217.${x + i}.0/24`,
          gateway_ip: `10.217.${x + i}.1`,
          enable_dhcp: false,
        },
      ]);
      assert.ok(subnet);
      networks.push({ net, subnet });
    }
    vmPort = await neutron.createPort({
      network_id: networks[0]!.net.id,
      name: `kvlan-${n}-vm`,
      device_owner: 'compute:nova',
    });
    trunk = (await trunkCall('POST', 'trunks', { trunk: { port_id: vmPort.id, name: `kvlan-${n}` } })).trunk;
    host.addLink({ ifname: 'eth0', address: vmPort.mac_address, mtu: 1442 });
  });

  after(async () => {
    if (trunk !== undefined) {
      const left = (await neutron.showTrunk(trunk.id).catch(() => undefined))?.sub_ports ?? [];
      if (left.length > 0) {
        await neutron.removeSubports(
          trunk.id,
          left.map((s) => s.port_id),
        );
      }
      await trunkCall('DELETE', `trunks/${trunk.id}`);
    }
    for (const { net } of networks) {
      for (const p of await neutron.listPorts({ network_id: net.id })) {
        await neutron.deletePort(p.id).catch((err: unknown) => {
          if (!(err instanceof NeutronError && err.status === 404)) throw err; // gone meanwhile
        });
      }
      await neutron.deleteNetwork(net.id);
    }
    // The pools RequestPool made for these CIDRs, in case a failure skipped `docker network rm`.
    const cidrs = new Set(networks.map(({ subnet }) => subnet.cidr));
    for (const pool of await neutron.listSubnetPools()) {
      if (pool.prefixes.some((p) => cidrs.has(p))) await neutron.deleteSubnetPool(pool.id);
    }
    const after0 = await neutronSnapshot(neutron);
    await neutron.close();
    assert.deepEqual(after0, before0, 'Neutron holds what it held before');
  });

  it('16 containers from two plugins at once, a restart, then removal: distinct IDs, nothing left', async (t) => {
    const one = plugin('kvlan-one');
    const two = plugin('kvlan-two');
    const dockerNets: DockerNetwork[] = [];
    for (const { net, subnet } of networks.slice(1)) {
      dockerNets.push(
        await networkCreate(one.driver, {
          subnet: subnet.cidr,
          gateway: subnet.gateway_ip ?? '',
          opts: { 'neutron.net.uuid': net.id, 'neutron.subnet.uuid': subnet.id },
          ipamOpts: { 'neutron.subnet.uuid': subnet.id },
        }),
      );
    }
    const [netA, netB] = dockerNets as [DockerNetwork, DockerNetwork];

    // 16 at once: even ones through plugin one, odd ones through plugin two, on both networks.
    const t0 = performance.now();
    const endpoints = await Promise.all(
      Array.from({ length: 16 }, (_, i) => endpointJoin((i % 2 === 0 ? one : two).driver, i % 4 < 2 ? netA : netB)),
    );
    const ms = performance.now() - t0;
    const subs = await subports();
    assert.equal(subs.length, 16);
    const ids = subs.map((s) => s.segmentation_id);
    assert.equal(new Set(ids).size, 16, `distinct segmentation IDs: ${ids.join(',')}`);
    assert.ok(subs.every((s) => s.segmentation_type === 'vlan'));
    const devices = vlanDevices();
    for (const ep of endpoints) {
      const port = await portOf(ep);
      const sub = subs.find((s) => s.port_id === port.id);
      assert.ok(sub, `port ${port.id} is a subport`);
      assert.equal(devices.get(interfaceNames(port.id).container), sub.segmentation_id, 'the device has its ID');
      assert.equal(host.links.get(interfaceNames(port.id).container)?.address, port.mac_address);
    }
    const join = await one.driver.join(endpoints[0]!.id);
    assert.equal(join.InterfaceName.SrcName, interfaceNames((await portOf(endpoints[0]!)).id).container);

    // A restart: plugin one goes; a new process (nothing in memory) on the same host takes over.
    await one.close();
    const restarted = plugin('kvlan-one');
    const freed = endpoints.slice(0, 4);
    const freedIds = new Set<number>();
    for (const ep of freed) {
      const port = await portOf(ep);
      freedIds.add(subs.find((s) => s.port_id === port.id)?.segmentation_id ?? -1);
      await endpointLeave(restarted.driver, ep);
    }
    assert.equal((await subports()).length, 12, 'the four left the trunk');
    const inUse = new Set((await subports()).map((s) => s.segmentation_id));
    const more = await Promise.all(Array.from({ length: 6 }, () => endpointJoin(restarted.driver, netA)));
    const now = await subports();
    assert.equal(new Set(now.map((s) => s.segmentation_id)).size, 18, 'still all distinct');
    const newIds: number[] = [];
    for (const ep of more) {
      const port = await portOf(ep);
      const id = now.find((s) => s.port_id === port.id)?.segmentation_id ?? -1;
      assert.ok(!inUse.has(id), `the restarted plugin chose ${id}, which was in use`);
      newIds.push(id);
    }
    const lowestFree = Math.min(...freedIds);
    assert.ok(
      now.some((s) => s.segmentation_id === lowestFree),
      `the lowest free ID ${lowestFree} is taken again (${newIds.join(',')})`,
    );

    // Everyone leaves (through either process: the driver keeps no state).
    await Promise.all(
      [...endpoints.slice(4), ...more].map((ep, i) => endpointLeave((i % 2 === 0 ? restarted : two).driver, ep)),
    );
    assert.deepEqual(await subports(), [], 'no subport left');
    assert.deepEqual([...host.links.keys()], ['eth0'], 'no VLAN device left');
    for (const net of dockerNets) await networkRemove(two.driver, net);
    const containerPorts = (await neutron.listPorts({ device_owner: 'compute:kuryr' })).filter((p) =>
      networks.some(({ net }) => net.id === p.network_id),
    );
    assert.deepEqual(
      containerPorts.map((p) => p.id),
      [],
      'no container port left',
    );
    await restarted.close();
    await two.close();
    t.diagnostic(`16 CreateEndpoints from two plugins at once: ${Math.round(ms)} ms`);
  });
});
