/**
 * Behaviour specific to the embedded store (beyond the shared contract): its binding result and port status,
 * MAC prefix, project and options, the default security group, Neutron's stricter validation paths, and
 * filter details.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { DEFAULT_PROJECT_ID, type EmbeddedNeutron, openEmbeddedNeutron } from '../../src/neutron/embedded/index.ts';
import { NeutronError } from '../../src/neutron/errors.ts';
import { ipToBigInt } from '../../src/util/ip.ts';

async function rejects(promise: Promise<unknown>, status: number, type?: string): Promise<NeutronError> {
  const err = await promise.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof NeutronError, String(err));
  assert.equal(err.status, status, err.message);
  if (type) assert.equal(err.type, type, err.message);
  return err;
}

let api: EmbeddedNeutron;

async function netWithSubnet(cidr = '10.0.0.0/24') {
  const network = await api.createNetwork({ name: 'n' });
  const [subnet] = await api.createSubnets([{ network_id: network.id, ip_version: 4, cidr }]);
  assert.ok(subnet);
  return { network, subnet };
}

beforeEach(() => {
  api = openEmbeddedNeutron({ path: ':memory:' });
});
afterEach(() => api.close());

describe('ports', () => {
  test('binding gives the configured vif_type and l2 details; status follows binding and admin state', async () => {
    const { network } = await netWithSubnet();
    const port = await api.createPort({ network_id: network.id });
    assert.equal(port.status, 'DOWN');
    const bound = await api.updatePort(port.id, { 'binding:host_id': 'host-1' });
    assert.equal(bound['binding:vif_type'], 'bridge');
    assert.deepEqual(bound['binding:vif_details'], { connectivity: 'l2', port_filter: false });
    assert.equal(bound.status, 'ACTIVE');
    assert.equal((await api.updatePort(port.id, { admin_state_up: false })).status, 'DOWN');
    assert.deepEqual(
      (await api.listPorts({ status: 'DOWN', network_id: network.id })).map((p) => p.id),
      [port.id],
      'status is filterable',
    );
    assert.equal((await api.listPorts({ 'binding:vif_type': 'bridge' })).length, 1);
    const ovs = openEmbeddedNeutron({ path: ':memory:', vifType: 'ovs', projectId: 'p'.repeat(32) });
    const n = await ovs.createNetwork({});
    const p = await ovs.createPort({ network_id: n.id, 'binding:host_id': 'h' });
    assert.equal(p['binding:vif_type'], 'ovs');
    assert.equal(p.project_id, 'p'.repeat(32));
    await ovs.close();
  });

  test('MACs use the fa:16:3e prefix; the default project is a fixed 32-hex id', async () => {
    const { network } = await netWithSubnet();
    const port = await api.createPort({ network_id: network.id });
    assert.match(port.mac_address, /^fa:16:3e(:[0-9a-f]{2}){3}$/);
    assert.match(DEFAULT_PROJECT_ID, /^[0-9a-f]{32}$/);
    assert.equal(port.project_id, DEFAULT_PROJECT_ID);
  });

  test('changing the MAC of a bound port is 409 PortBound; unbound it works', async () => {
    const { network } = await netWithSubnet();
    const port = await api.createPort({ network_id: network.id, 'binding:host_id': 'h' });
    await rejects(api.updatePort(port.id, { mac_address: 'fa:16:3e:01:02:03' }), 409, 'PortBound');
    await api.updatePort(port.id, { 'binding:host_id': '' });
    assert.equal(
      (await api.updatePort(port.id, { mac_address: 'fa:16:3e:01:02:03' })).mac_address,
      'fa:16:3e:01:02:03',
    );
    await rejects(api.updatePort(port.id, { mac_address: '01:00:5e:00:00:01' }), 400);
  });

  test('addresses are picked at random among the free ones, not sequentially', async () => {
    const { network, subnet } = await netWithSubnet('10.1.0.0/22');
    const ips: bigint[] = [];
    for (let i = 0; i < 12; i++) {
      const port = await api.createPort({ network_id: network.id, fixed_ips: [{ subnet_id: subnet.id }] });
      ips.push(ipToBigInt(port.fixed_ips[0]?.ip_address ?? ''));
    }
    const sequential = ips.every((ip, i) => i === 0 || ip === (ips[i - 1] as bigint) + 1n);
    assert.equal(sequential, false, 'twelve consecutive addresses in order would mean no randomisation');
    assert.ok(!ips.includes(ipToBigInt('10.1.0.1')), 'never the gateway');
  });

  test('the gateway and addresses outside the pools can be requested explicitly', async () => {
    const { network, subnet } = await netWithSubnet();
    await api.updateSubnet(subnet.id, { allocation_pools: [{ start: '10.0.0.100', end: '10.0.0.110' }] });
    const gw = await api.createPort({ network_id: network.id, fixed_ips: [{ ip_address: '10.0.0.1' }] });
    assert.equal(gw.fixed_ips[0]?.ip_address, '10.0.0.1');
    const outside = await api.createPort({ network_id: network.id, fixed_ips: [{ ip_address: '10.0.0.50' }] });
    assert.equal(outside.fixed_ips[0]?.subnet_id, subnet.id);
  });

  test('security groups follow port security; network-owned ports get none', async () => {
    const { network } = await netWithSubnet();
    const dhcp = await api.createPort({ network_id: network.id, device_owner: 'network:dhcp' });
    assert.deepEqual(dhcp.security_groups, []);
    const port = await api.createPort({ network_id: network.id });
    await rejects(api.updatePort(port.id, { port_security_enabled: false }), 409, 'PortSecurityPortHasSecurityGroup');
    const open = await api.updatePort(port.id, { port_security_enabled: false, security_groups: [] });
    assert.equal(open.port_security_enabled, false);
    await rejects(
      api.updatePort(port.id, { allowed_address_pairs: [{ ip_address: '10.0.0.9', mac_address: port.mac_address }] }),
      409,
      'AddressPairAndPortSecurityRequired',
    );
    await rejects(
      api.createPort({ network_id: network.id, port_security_enabled: false, security_groups: [port.id] }),
      404,
      'SecurityGroupNotFound',
    );
    const [sg] = await api.listSecurityGroups({ name: 'default' });
    assert.ok(sg);
    await rejects(
      api.createPort({ network_id: network.id, port_security_enabled: false, security_groups: [sg.id] }),
      400,
      'PortSecurityAndIPRequiredForSecurityGroups',
    );
  });

  test('fixed_ips validation: subnet of another network, unknown subnet, too many entries', async () => {
    const a = await netWithSubnet('10.2.0.0/24');
    const b = await netWithSubnet('10.3.0.0/24');
    await rejects(
      api.createPort({ network_id: a.network.id, fixed_ips: [{ subnet_id: b.subnet.id }] }),
      400,
      'InvalidInput',
    );
    await rejects(
      api.createPort({ network_id: a.network.id, fixed_ips: [{ subnet_id: '00000000-0000-4000-8000-000000000000' }] }),
      404,
      'SubnetNotFound',
    );
    const six = Array.from({ length: 6 }, () => ({ subnet_id: a.subnet.id }));
    await rejects(api.createPort({ network_id: a.network.id, fixed_ips: six }), 400, 'InvalidInput');
    await rejects(
      api.createPort({ network_id: a.network.id, fixed_ips: [{ ip_address: '10.2.0.9' }, { ip_address: '10.2.0.9' }] }),
      409,
      'IpAddressAlreadyAllocated',
    );
    const empty = await api.createNetwork({});
    await rejects(
      api.createPort({ network_id: empty.id, fixed_ips: [{ ip_address: '10.2.0.9' }] }),
      400,
      'InvalidInput',
    );
    assert.deepEqual((await api.createPort({ network_id: empty.id })).fixed_ips, [], 'no subnets, no addresses');
  });
});

describe('subnets and pools', () => {
  test('a subnet deletion that removes the only address of a network-owned port deletes that port', async () => {
    const { network, subnet } = await netWithSubnet();
    const dhcp = await api.createPort({ network_id: network.id, device_owner: 'network:dhcp' });
    await api.deleteSubnet(subnet.id);
    await rejects(api.showPort(dhcp.id), 404, 'PortNotFound');
  });

  test('the gateway cannot move onto an address a port holds', async () => {
    const { network, subnet } = await netWithSubnet();
    const port = await api.createPort({ network_id: network.id, fixed_ips: [{ ip_address: '10.0.0.77' }] });
    await rejects(
      api.updateSubnet(subnet.id, {
        gateway_ip: '10.0.0.77',
        allocation_pools: [{ start: '10.0.0.100', end: '10.0.0.200' }],
      }),
      409,
      'GatewayIpInUse',
    );
    assert.equal((await api.showSubnet(subnet.id)).gateway_ip, '10.0.0.1', 'the failed update changed nothing');
    assert.equal((await api.showPort(port.id)).fixed_ips[0]?.ip_address, '10.0.0.77');
  });

  test('subnet allocation errors are 409 SubnetAllocationError here; pool prefixes are compacted', async () => {
    const pool = await api.createSubnetPool({ prefixes: ['10.9.0.128/25', '10.9.0.0/25', '10.9.0.64/26'] });
    assert.deepEqual(pool.prefixes, ['10.9.0.0/24']);
    const n = await api.createNetwork({});
    await rejects(
      api.createSubnets([{ network_id: n.id, ip_version: 4, cidr: '10.8.0.0/24', subnetpool_id: pool.id }]),
      409,
      'SubnetAllocationError',
    );
    await rejects(
      api.createSubnets([{ network_id: n.id, ip_version: 6, subnetpool_id: pool.id, prefixlen: 64 }]),
      400,
      'BadRequest',
    );
    await rejects(api.createSubnets([{ network_id: n.id, ip_version: 4 }]), 400, 'BadRequest');
    const v6 = await api.createSubnetPool({ prefixes: ['fd00::/48'] });
    assert.deepEqual([v6.ip_version, v6.min_prefixlen, v6.max_prefixlen, v6.default_prefixlen], [6, 64, 128, 64]);
    await rejects(api.createSubnetPool({ prefixes: ['10.0.0.0/8'], min_prefixlen: 24, default_prefixlen: 16 }), 400);
    await rejects(api.createSubnetPool({ prefixes: [] }), 400);
  });

  test('bulk pool allocation never hands out the same block twice', async () => {
    const pool = await api.createSubnetPool({ prefixes: ['10.10.0.0/22'], default_prefixlen: 24 });
    const nets = await Promise.all([1, 2, 3, 4].map(() => api.createNetwork({})));
    const subnets = await api.createSubnets(
      nets.map((n) => ({ network_id: n.id, ip_version: 4, subnetpool_id: pool.id })),
    );
    assert.equal(new Set(subnets.map((s) => s.cidr)).size, 4);
  });
});

describe('validation and filters', () => {
  test('unknown attributes and missing required ones are 400', async () => {
    await rejects(api.createNetwork({ bogus: 1 } as never), 400);
    await rejects(api.createPort({} as never), 400);
    await rejects(api.createSubnets([{ ip_version: 4, cidr: '10.0.0.0/24' } as never]), 400);
    await rejects(api.createNetwork({ admin_state_up: 'maybe' } as never), 400);
  });

  test('boolean filters accept True/False strings; an empty list matches nothing', async () => {
    const n = await api.createNetwork({ name: 'x', shared: true });
    assert.equal((await api.listNetworks({ shared: 'True' })).length, 1);
    assert.equal((await api.listNetworks({ shared: 'false' })).length, 0);
    assert.equal((await api.listNetworks({ id: [] })).length, 0);
    assert.equal((await api.listNetworks({ id: undefined })).length, 1, 'undefined means no filter');
    assert.equal((await api.listNetworks({ fields: 'id', id: n.id })).length, 1, 'fields is accepted');
    await rejects(api.listNetworks({ shared: 'perhaps' }), 400);
  });

  test('fixed_ips filter: substring form and malformed entries', async () => {
    const { network } = await netWithSubnet();
    const port = await api.createPort({ network_id: network.id, fixed_ips: [{ ip_address: '10.0.0.123' }] });
    assert.deepEqual(
      (await api.listPorts({ fixed_ips: 'ip_address_substr=0.0.12' })).map((p) => p.id),
      [port.id],
    );
    await rejects(api.listPorts({ fixed_ips: 'mac=1' }), 400);
    await rejects(api.listSubnets({ fixed_ips: 'ip_address=10.0.0.1' }), 400);
  });

  test('tags: sorted, deduplicated on replace, bad resource kinds rejected', async () => {
    const n = await api.createNetwork({});
    assert.deepEqual(await api.replaceTags('networks', n.id, ['b', 'a', 'b']), ['a', 'b']);
    const rev = (await api.showNetwork(n.id)).revision_number;
    await api.replaceTags('networks', n.id, ['a', 'b']);
    assert.equal((await api.showNetwork(n.id)).revision_number, rev, 'an unchanged tag set does not bump the revision');
    await rejects(api.addTag('routers' as never, n.id, 'a'), 400);
  });

  test('the default security group allows ingress from itself and egress anywhere', async () => {
    const groups = await api.listSecurityGroups();
    const sg = groups.find((g) => g.name === 'default');
    assert.ok(sg);
    const rules = sg.security_group_rules
      .map((r) => `${r.direction}/${r.ethertype}/${r.remote_group_id === sg.id}`)
      .sort();
    assert.deepEqual(rules, ['egress/IPv4/false', 'egress/IPv6/false', 'ingress/IPv4/true', 'ingress/IPv6/true']);
    assert.equal((await api.listSecurityGroups({ name: 'default' })).length, 1, 'created once');
    await rejects(api.createSecurityGroup({ name: 'default' }), 409, 'SecurityGroupDefaultAlreadyExists');
    await rejects(
      api.createSecurityGroupRules([
        { security_group_id: sg.id, direction: 'ingress', protocol: 'tcp', port_range_min: 22, port_range_max: 22 },
        { security_group_id: sg.id, direction: 'ingress', protocol: '6', port_range_min: 22, port_range_max: 22 },
      ]),
      400,
      'DuplicateSecurityGroupRuleInPost',
    );
    await rejects(
      api.createSecurityGroupRules([
        { security_group_id: sg.id, direction: 'ingress', ethertype: 'IPv6', remote_ip_prefix: '10.0.0.0/8' },
      ]),
      400,
      'SecurityGroupRuleParameterConflict',
    );
  });
});
