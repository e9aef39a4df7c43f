// The OpenStack Zun flow end to end: a Neutron network, subnet and port made directly in Neutron (as Nova or an
// operator would), `kuryr network create --neutron-net` making the Docker network on it through the Docker API,
// containers that ping each other on ACTIVE ports, containers on pre-created ports (`--ip`), then
// `kuryr network rm`: Neutron is left with exactly what the test made, as it made it. Real Neutron (the lab),
// a private real Docker engine and the real plugin process. The first describe needs neither.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  dockerNetworkRequest,
  type NeutronNetworkView,
  neutronOptions,
  parseKeyValues,
} from '../../src/cli/network.ts';
import { idTags } from '../../src/driver/tags.ts';
import { KuryrError } from '../../src/errors.ts';
import type { Network, Port, Subnet } from '../../src/neutron/types.ts';
import { pingFrom, runCommand } from '../helpers/docker-engine.ts';
import { e2eFixture } from '../helpers/e2e.ts';
import { neutronLab } from '../helpers/neutron-lab.ts';
import { KURYR_BIN } from '../helpers/plugin-process.ts';

const notRoot = process.getuid?.() !== 0;
const lab = await neutronLab();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function subnet(over: Partial<Subnet>): Subnet {
  return {
    id: '11111111-1111-4111-8111-111111111111',
    name: 'vm-subnet',
    description: '',
    network_id: '00000000-0000-4000-8000-000000000000',
    ip_version: 4,
    cidr: '192.168.7.0/24',
    gateway_ip: '192.168.7.1',
    enable_dhcp: true,
    allocation_pools: [{ start: '192.168.7.2', end: '192.168.7.254' }],
    host_routes: [],
    dns_nameservers: [],
    subnetpool_id: null,
    ipv6_address_mode: null,
    ipv6_ra_mode: null,
    tags: [],
    project_id: 'p',
    tenant_id: 'p',
    created_at: '',
    updated_at: '',
    revision_number: 1,
    ...over,
  };
}

function view(over: Partial<NeutronNetworkView> = {}): NeutronNetworkView {
  const network = {
    id: '00000000-0000-4000-8000-000000000000',
    name: 'vm-net',
    subnets: [],
    tags: [],
  } as unknown as Network;
  return { network, v4: subnet({}), visiblePools: new Set(), ...over };
}

describe('kuryr network create: the Docker request for a Neutron network', () => {
  it('a subnet outside any pool: neutron.net.uuid + neutron.subnet.uuid on both maps, subnet and gateway', () => {
    const { body, warnings } = dockerNetworkRequest(view(), 'kuryr', {
      options: { 'com.example': 'x' },
      ipamOptions: { 'com.example.ipam': 'y' },
    });
    const decided = {
      'neutron.net.uuid': '00000000-0000-4000-8000-000000000000',
      'neutron.subnet.uuid': '11111111-1111-4111-8111-111111111111',
    };
    assert.deepEqual(body, {
      Name: 'vm-net',
      CheckDuplicate: true,
      Driver: 'kuryr',
      EnableIPv6: false,
      IPAM: {
        Driver: 'kuryr',
        Config: [{ Subnet: '192.168.7.0/24', Gateway: '192.168.7.1' }],
        Options: { 'com.example.ipam': 'y', ...decided },
      },
      Options: { 'com.example': 'x', ...decided },
    });
    assert.deepEqual(warnings, []);
  });

  it('dual stack from pools: neutron.pool.uuid / neutron.pool.v6.uuid, EnableIPv6, no gateway when none', () => {
    const v = view({
      v4: subnet({ subnetpool_id: 'aaaaaaaa-0000-4000-8000-000000000004' }),
      v6: subnet({
        id: '66666666-6666-4666-8666-666666666666',
        ip_version: 6,
        cidr: 'fd00:7::/64',
        gateway_ip: null,
        allocation_pools: [{ start: 'fd00:7::1', end: 'fd00:7::ffff:ffff:ffff:ffff' }],
        subnetpool_id: 'aaaaaaaa-0000-4000-8000-000000000006',
      }),
      visiblePools: new Set(['aaaaaaaa-0000-4000-8000-000000000004', 'aaaaaaaa-0000-4000-8000-000000000006']),
    });
    const { body } = dockerNetworkRequest(v, 'kuryr', { name: 'web' });
    assert.equal(body.Name, 'web');
    assert.equal(body.EnableIPv6, true);
    assert.deepEqual(body.IPAM.Config, [
      { Subnet: '192.168.7.0/24', Gateway: '192.168.7.1' },
      { Subnet: 'fd00:7::/64' },
    ]);
    const decided = {
      'neutron.net.uuid': '00000000-0000-4000-8000-000000000000',
      'neutron.pool.uuid': 'aaaaaaaa-0000-4000-8000-000000000004',
      'neutron.pool.v6.uuid': 'aaaaaaaa-0000-4000-8000-000000000006',
    };
    assert.deepEqual(body.Options, decided);
    assert.deepEqual(body.IPAM.Options, decided);
  });

  it('a pool we cannot see is not named: the subnet is', () => {
    const v = view({ v4: subnet({ subnetpool_id: 'aaaaaaaa-0000-4000-8000-000000000004' }) });
    assert.deepEqual(neutronOptions(v), {
      'neutron.net.uuid': '00000000-0000-4000-8000-000000000000',
      'neutron.subnet.uuid': '11111111-1111-4111-8111-111111111111',
    });
  });

  it('--ip-range: passed as IPRange, with a warning when it narrows the Neutron subnet', () => {
    const { body, warnings } = dockerNetworkRequest(view(), 'kuryr', { ipRanges: ['192.168.7.128/25'] });
    assert.deepEqual(body.IPAM.Config, [
      { Subnet: '192.168.7.0/24', Gateway: '192.168.7.1', IPRange: '192.168.7.128/25' },
    ]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /narrows the allocation pools of Neutron subnet 1111/);
    assert.throws(() => dockerNetworkRequest(view(), 'kuryr', { ipRanges: ['10.0.0.0/25'] }), /not inside subnet/);
    assert.throws(() => dockerNetworkRequest(view(), 'kuryr', { ipRanges: ['fd00::/64'] }), /no IPv6 subnet/);
  });

  it('refuses options that --neutron-net decides, a nameless network without NAME, and bad K=V', () => {
    assert.throws(
      () => dockerNetworkRequest(view(), 'kuryr', { options: { 'neutron.pool.name': 'p' } }),
      (err: unknown) =>
        err instanceof KuryrError && /-o neutron.pool.name is decided by --neutron-net/.test(err.message),
    );
    assert.throws(
      () => dockerNetworkRequest(view(), 'kuryr', { ipamOptions: { 'neutron.subnet.v6.uuid': 'x' } }),
      /--ipam-opt neutron.subnet.v6.uuid/,
    );
    assert.deepEqual(
      dockerNetworkRequest(view(), 'kuryr', { options: { 'neutron.net.shared': 'false' } }).body.Options,
      {
        'neutron.net.shared': 'false',
        'neutron.net.uuid': '00000000-0000-4000-8000-000000000000',
        'neutron.subnet.uuid': '11111111-1111-4111-8111-111111111111',
      },
    );
    const nameless = view();
    nameless.network.name = '';
    assert.throws(() => dockerNetworkRequest(nameless, 'kuryr', {}), /has no name: give the Docker network a NAME/);
    assert.deepEqual(parseKeyValues(['a=1', 'b=x=y', 'a=2', 'c='], '-o'), { a: '2', b: 'x=y', c: '' });
    assert.throws(() => parseKeyValues(['novalue'], '-o'), /-o takes KEY=VALUE/);
  });
});

const mode = lab.keystone !== undefined ? 'keystone' : 'noauth';
const skip = notRoot ? 'needs root' : lab.skip[mode];

describe(`kuryr network create --neutron-net on a real Neutron (${mode}) and a real Docker`, { skip }, () => {
  const third = Math.floor(Math.random() * 250) + 1;
  const prefix = `172.${16 + Math.floor(Math.random() * 16)}.${third}`;
  const cidr = `${prefix}.0/24`;
  const preIp = `${prefix}.77`;
  let net: Network;
  let sub: Subnet;
  let pre: Port;
  /** Neutron resources made by the tests themselves, deleted in after() whatever happens. */
  const made = { ports: [] as string[], subnets: [] as string[], networks: [] as string[] };

  const env = e2eFixture({
    name: 'orch',
    driverPrefix: 'ko',
    backend: 'neutron',
    lab,
    mode,
    snapshot: false,
    setup: async ({ neutron }) => {
      // What Nova/Zun or an operator made: a VM network with a subnet from no pool, and an unbound port.
      net = await neutron.createNetwork({ name: netName, admin_state_up: true });
      made.networks.push(net.id);
      [sub] = (await neutron.createSubnets([
        {
          network_id: net.id,
          name: `${netName}-v4`,
          ip_version: 4,
          cidr,
          gateway_ip: `${prefix}.1`,
          enable_dhcp: lab.dhcpAgent === true,
        },
      ])) as [Subnet];
      made.subnets.push(sub.id);
      pre = await neutron.createPort({
        network_id: net.id,
        name: `${netName}-pre`,
        admin_state_up: true,
        fixed_ips: [{ subnet_id: sub.id, ip_address: preIp }],
      });
      made.ports.push(pre.id);
      net = await neutron.showNetwork(net.id);
      sub = await neutron.showSubnet(sub.id);
    },
    cleanup: async ({ neutron }) => {
      const gone = (p: Promise<void>) => p.catch(() => undefined);
      for (const id of made.ports) await gone(neutron.deletePort(id));
      for (const id of made.subnets) await gone(neutron.deleteSubnet(id));
      for (const id of made.networks) await gone(neutron.deleteNetwork(id));
    },
  });
  const { tag, driver } = env;
  const netName = `kx-orch-${tag}`;

  const kuryr = async (args: string[]) => {
    const r = await runCommand(KURYR_BIN, [
      ...args,
      '--backend',
      'neutron',
      '--config',
      env.confFile,
      '--driver-name',
      driver,
      '--docker-host',
      env.engine.host,
    ]);
    return { ...r, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
  };
  const endpointOf = async (c: string) =>
    (
      await env.engine.dockerOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${netName}").EndpointID}}`, c])
    ).trim();
  const ipOf = async (c: string) =>
    (
      await env.engine.dockerOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${netName}").IPAddress}}`, c])
    ).trim();
  const ping = (from: string, to: string) =>
    pingFrom(env.engine, from, to, { tries: 10, context: () => `plugin log:\n${env.plugin.logTail(20)}` });
  const untilActive = async (ids: string[]) => {
    for (let i = 0; i < 60; i++) {
      const ports = await env.neutron.listPorts({ id: ids });
      if (ports.length === ids.length && ports.every((p) => p.status === 'ACTIVE')) return ports;
      await sleep(500);
    }
    const ports = await env.neutron.listPorts({ id: ids });
    assert.fail(`ports not ACTIVE: ${ports.map((p) => `${p.id} ${p.status}`).join(', ')}`);
  };
  /** Ports of the test network that are not Neutron's own (DHCP). */
  const foreignPorts = async () =>
    (await env.neutron.listPorts({ network_id: net.id })).filter((p) => !p.device_owner.startsWith('network:'));

  it('clear errors: no such network, several of that name, two IPv4 subnets', async () => {
    const missing = await kuryr(['network', 'create', '--neutron-net', `kx-orch-none-${tag}`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /KURYR_ERR_NOT_FOUND: no Neutron network named or with ID "kx-orch-none-/);

    const dupName = `kx-orch-dup-${tag}`;
    const a = await env.neutron.createNetwork({ name: dupName });
    made.networks.push(a.id);
    const b = await env.neutron.createNetwork({ name: dupName });
    made.networks.push(b.id);
    const dup = await kuryr(['network', 'create', '--neutron-net', dupName]);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /KURYR_ERR_CONFLICT: several Neutron networks are named/);
    assert.ok(dup.stderr.includes(a.id) && dup.stderr.includes(b.id), dup.stderr);

    const two = await env.neutron.createSubnets([
      { network_id: a.id, ip_version: 4, cidr: `${prefix}.0/26`, name: 'first', enable_dhcp: false },
      { network_id: a.id, ip_version: 4, cidr: `${prefix}.64/26`, name: 'second', enable_dhcp: false },
    ]);
    made.subnets.push(...two.map((s) => s.id));
    const twice = await kuryr(['network', 'create', '--neutron-net', a.id, `kx-orch-two-${tag}`]);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /has 2 IPv4 subnets/);
    for (const s of two) assert.ok(twice.stderr.includes(s.id), twice.stderr);

    for (const s of two) await env.neutron.deleteSubnet(s.id);
    await env.neutron.deleteNetwork(a.id);
    await env.neutron.deleteNetwork(b.id);
    assert.equal((await env.engine.dockerOk(['network', 'ls', '-q', '--filter', `driver=${driver}`])).trim(), '');
  });

  it('creates the Docker network through the Docker API and prints its ID (a retry prints it again)', async () => {
    const r = await kuryr(['network', 'create', '--neutron-net', netName]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^[0-9a-f]{64}$/);
    const [inspected] = JSON.parse(await env.engine.dockerOk(['network', 'inspect', netName])) as {
      Id: string;
      Driver: string;
      EnableIPv6: boolean;
      Options: Record<string, string>;
      IPAM: { Driver: string; Config: { Subnet: string; Gateway: string }[]; Options: Record<string, string> };
    }[];
    assert.equal(inspected!.Id, r.stdout);
    assert.equal(inspected!.Driver, driver);
    assert.equal(inspected!.EnableIPv6, false);
    assert.equal(inspected!.IPAM.Driver, driver);
    assert.deepEqual(inspected!.IPAM.Config, [{ Subnet: cidr, Gateway: `${prefix}.1` }]);
    const decided = { 'neutron.net.uuid': net.id, 'neutron.subnet.uuid': sub.id };
    assert.deepEqual(inspected!.Options, decided);
    assert.deepEqual(inspected!.IPAM.Options, decided);
    // The driver mapped it onto the existing network: no other network, no subnet of ours.
    const tagged = await env.neutron.listNetworks({ tags: idTags(r.stdout) });
    assert.deepEqual(
      tagged.map((n) => n.id),
      [net.id],
    );
    assert.deepEqual(
      (await env.neutron.listSubnets({ network_id: net.id })).map((s) => s.id),
      [sub.id],
    );

    const again = await kuryr(['network', 'create', '--neutron-net', net.id, netName]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, r.stdout);
  });

  it('two containers on it ping each other; their ports are ACTIVE on the Neutron network', async () => {
    await env.engine.dockerOk(['run', '-d', '--name', 'ca', '--net', netName, 'busybox:local', 'sleep', '600']);
    await env.engine.dockerOk(['run', '-d', '--name', 'cb', '--net', netName, 'busybox:local', 'sleep', '600']);
    const [ipa, ipb] = [await ipOf('ca'), await ipOf('cb')];
    assert.ok(ipa.startsWith(`${prefix}.`) && ipb.startsWith(`${prefix}.`), `${ipa} ${ipb}`);
    await ping('ca', ipb);
    await ping('cb', ipa);
    const ports = [];
    for (const c of ['ca', 'cb']) {
      const [port] = await env.neutron.listPorts({ tags: idTags(await endpointOf(c)) });
      assert.ok(port !== undefined, `the port of ${c}`);
      assert.equal(port.network_id, net.id);
      assert.equal(port.device_owner, 'compute:kuryr');
      assert.equal(port.fixed_ips[0]!.subnet_id, sub.id);
      ports.push(port.id);
    }
    // `bridge` on the Linux bridge lab, `ovs` (br-int, claimed by ovn-controller) on the OVN lab.
    for (const p of await untilActive(ports)) assert.equal(p['binding:vif_type'], lab.vifType);
  });

  /** Runs `cp` on the network with `--ip ip` (and more flags); returns the port of its endpoint. */
  const runOnPort = async (ip: string, more: string[] = []) => {
    await env.engine.dockerOk([
      'run',
      '-d',
      '--name',
      'cp',
      '--net',
      netName,
      '--ip',
      ip,
      ...more,
      'busybox:local',
      'sleep',
      '600',
    ]);
    assert.equal(await ipOf('cp'), ip);
    const endpoint = await endpointOf('cp');
    const ports = await env.neutron.listPorts({ tags: idTags(endpoint) });
    assert.equal(ports.length, 1, 'one port carries the endpoint');
    const mac = (await env.engine.dockerOk(['exec', 'cp', 'cat', '/sys/class/net/eth0/address'])).trim();
    return { endpoint, port: ports[0]!, mac };
  };
  /** What a pre-created port looks like once handed back: unbound, its own tags, name and addresses. */
  const assertHandedBack = (back: Port, original: Port) => {
    assert.equal(back.device_id, '', 'device_id cleared');
    assert.equal(back.device_owner, '', 'device_owner cleared');
    assert.equal(back['binding:host_id'], '', 'unbound from the host');
    assert.deepEqual(back.tags, original.tags, 'no kuryr tag left');
    assert.equal(back.name, original.name);
    assert.deepEqual(back.fixed_ips, original.fixed_ips);
    assert.deepEqual(back.security_groups, original.security_groups);
  };

  it('a container on the pre-created port (--ip) takes that port over; docker rm -f leaves it unbound', async () => {
    const { endpoint, port, mac } = await runOnPort(preIp);
    assert.equal(port.id, pre.id, 'the container runs on the pre-created port');
    assert.equal(port.device_id, endpoint);
    assert.equal(port.device_owner, 'compute:kuryr');
    assert.notEqual(port['binding:host_id'], '', 'bound to this host');
    assert.equal(port.mac_address, mac, "without --mac-address the port takes Docker's MAC, as in the original");
    await untilActive([pre.id]);
    await ping('ca', preIp);
    assert.equal((await env.neutron.listPorts({ fixed_ips: [`ip_address=${preIp}`], network_id: net.id })).length, 1);

    await env.engine.dockerOk(['rm', '-f', 'cp']);
    const back = await env.neutron.showPort(pre.id);
    assertHandedBack(back, pre);
    // The original leaves Docker's MAC on the port too; Zun passes --mac-address.
    assert.equal(back.mac_address, mac);
  });

  it("a pre-created port chosen with --ip and --mac-address (Zun's call) is handed back on docker rm", async () => {
    const ip = `${prefix}.78`;
    const zun = await env.neutron.createPort({
      network_id: net.id,
      name: `${netName}-zun`,
      fixed_ips: [{ subnet_id: sub.id, ip_address: ip }],
    });
    made.ports.push(zun.id);
    try {
      const { port, mac } = await runOnPort(ip, ['--mac-address', zun.mac_address]);
      assert.equal(port.id, zun.id, 'the container runs on the pre-created port');
      assert.equal(mac, zun.mac_address, "the container has the port's MAC");
      await ping('ca', ip);
      await env.engine.dockerOk(['rm', '-f', 'cp']);
      const back = await env.neutron.showPort(zun.id);
      assertHandedBack(back, zun);
      assert.equal(back.mac_address, zun.mac_address);
    } finally {
      await env.engine.docker(['rm', '-f', 'cp']);
      // The test's own port goes here, whatever state the driver left it in.
      await env.neutron.deletePort(zun.id).catch(() => undefined);
    }
  });

  it('kuryr network rm: Neutron keeps exactly the network, subnet and port it had, as they were', async () => {
    await env.engine.dockerOk(['rm', '-f', 'ca', 'cb']);
    const dockerId = (await env.engine.dockerOk(['network', 'inspect', '-f', '{{.Id}}', netName])).trim();
    const r = await kuryr(['network', 'rm', netName]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, netName);
    assert.notEqual((await env.engine.docker(['network', 'inspect', netName])).code, 0, 'the Docker network is gone');
    const missing = await kuryr(['network', 'rm', netName]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /KURYR_ERR_NOT_FOUND: no Docker network/);

    const netNow = await env.neutron.showNetwork(net.id);
    assert.deepEqual(netNow.tags, net.tags, 'no kuryr tag left on the network');
    assert.equal(netNow.name, net.name);
    const subnets = await env.neutron.listSubnets({ network_id: net.id });
    assert.deepEqual(
      subnets.map((s) => s.id),
      [sub.id],
    );
    assert.deepEqual(subnets[0]!.tags, sub.tags, 'no kuryr tag left on the subnet');
    assert.deepEqual(subnets[0]!.allocation_pools, sub.allocation_pools);
    assert.equal(subnets[0]!.gateway_ip, sub.gateway_ip);
    assert.deepEqual(
      (await foreignPorts()).map((p) => p.id),
      [pre.id],
      'only the pre-created port (and Neutron DHCP ports)',
    );
    // Nothing of kuryr's for this network anywhere: no tagged network, no pool for the CIDR, no groups.
    assert.deepEqual(await env.neutron.listNetworks({ tags: idTags(dockerId) }), []);
    assert.deepEqual(await env.neutron.listNetworks({ name: `kuryr-net-${dockerId.slice(0, 8)}` }), []);
    assert.deepEqual(await env.neutron.listSubnetPools({ name: `kuryrPool-${cidr}` }), []);
    assert.deepEqual(await env.neutron.listSubnetPools({ tags: [sub.id] }), []);
    assert.deepEqual(await env.neutron.listSecurityGroups({ name: `${pre.id}-exposed_ports` }), []);

    // And the test's own resources go: the port, the subnet, the network.
    await env.neutron.deletePort(pre.id);
    await env.neutron.deleteSubnet(sub.id);
    await env.neutron.deleteNetwork(net.id);
    assert.deepEqual(await env.neutron.listNetworks({ id: net.id }), []);
    assert.deepEqual(await env.neutron.listSubnets({ id: sub.id }), []);
    assert.deepEqual(await env.neutron.listPorts({ network_id: net.id }), []);
  });
});
