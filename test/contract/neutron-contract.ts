/**
 * The `NeutronApi` contract: the Neutron behaviour kuryr-ts relies on, as node:test cases that run against
 * any implementation (the embedded store, a real Neutron through the HTTP client, a fake).
 *
 * Written to be safe on a shared, real Neutron: every case creates its own uniquely named resources, asserts
 * only about what it created, never assumes an empty database or sequential addresses, tolerates
 * network-owned ports appearing (a DHCP agent), and deletes what it created even when it fails.
 * Subnets use `enable_dhcp: false` where address counting matters, so no DHCP port takes an address.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { NeutronApi } from '../../src/neutron/api.ts';
import { isNotFound, NeutronError } from '../../src/neutron/errors.ts';
import type {
  Network,
  NetworkCreate,
  Port,
  PortCreate,
  SecurityGroup,
  Subnet,
  SubnetCreate,
  SubnetPool,
  SubnetPoolCreate,
  TaggedResource,
} from '../../src/neutron/types.ts';
import { cidrContainsIp, ipToBigInt, parseCidr } from '../../src/util/ip.ts';

/** What a contract run needs: an API and a way to release it. */
export interface ContractTarget {
  api: NeutronApi;
  close(): Promise<void>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
/** Status codes Neutron releases use for `SubnetAllocationError` (409 in the embedded store, 500 on several releases). */
const SUBNET_ALLOCATION_STATUSES = [409, 500];

/** A name no other run (or other resource of this run) uses. */
function unique(what: string): string {
  return `contract-${what}-${randomBytes(4).toString('hex')}`;
}

/** Await a rejection and check it is a NeutronError with the given status(es) and type(s). */
async function rejects(
  promise: Promise<unknown>,
  status: number | readonly number[],
  type?: string | readonly string[],
): Promise<NeutronError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof NeutronError, `expected a NeutronError, got ${String(err)}`);
    const statuses = typeof status === 'number' ? [status] : status;
    assert.ok(statuses.includes(err.status), `status ${err.status} (${err.type}: ${err.message}) not in ${statuses}`);
    if (type !== undefined) {
      const types = typeof type === 'string' ? [type] : type;
      assert.ok(types.includes(err.type), `type ${err.type} (${err.message}) not in ${types}`);
    }
    return err;
  }
  assert.fail('expected the call to fail');
}

/** Resources a case created, deleted in reverse order afterwards (missing ones are fine). */
class Resources {
  private readonly undo: (() => Promise<void>)[] = [];
  readonly api: NeutronApi;

  constructor(api: NeutronApi) {
    this.api = api;
  }

  /** Register a deletion to run after the case. */
  defer(fn: () => Promise<void>): void {
    this.undo.push(fn);
  }

  async network(body: NetworkCreate = {}): Promise<Network> {
    const net = await this.api.createNetwork({ name: unique('net'), ...body });
    this.defer(() => this.api.deleteNetwork(net.id));
    return net;
  }

  async subnet(body: SubnetCreate): Promise<Subnet> {
    const [subnet] = await this.api.createSubnets([{ name: unique('subnet'), enable_dhcp: false, ...body }]);
    assert.ok(subnet);
    this.defer(() => this.api.deleteSubnet(subnet.id));
    return subnet;
  }

  async pool(body: SubnetPoolCreate): Promise<SubnetPool> {
    const pool = await this.api.createSubnetPool({ name: unique('pool'), ...body });
    this.defer(() => this.api.deleteSubnetPool(pool.id));
    return pool;
  }

  async port(body: PortCreate): Promise<Port> {
    const port = await this.api.createPort({ name: unique('port'), ...body });
    this.defer(() => this.api.deletePort(port.id));
    return port;
  }

  async securityGroup(name = unique('sg')): Promise<SecurityGroup> {
    const sg = await this.api.createSecurityGroup({ name, description: 'contract test' });
    this.defer(() => this.api.deleteSecurityGroup(sg.id));
    return sg;
  }

  /** A network with one IPv4 subnet (DHCP off). */
  async networkWithSubnet(cidr = '10.77.0.0/24', extra: Partial<SubnetCreate> = {}) {
    const network = await this.network();
    const subnet = await this.subnet({ network_id: network.id, ip_version: 4, cidr, ...extra });
    return { network, subnet };
  }

  /** Run the deletions; returns the first failure other than 404. */
  async cleanup(): Promise<unknown> {
    let failure: unknown;
    for (const fn of this.undo.reverse()) {
      try {
        await fn();
      } catch (err) {
        if (!isNotFound(err)) failure ??= err;
      }
    }
    return failure;
  }
}

function inPools(subnet: Subnet, ip: string): boolean {
  const n = ipToBigInt(ip);
  return subnet.allocation_pools.some((p) => ipToBigInt(p.start) <= n && n <= ipToBigInt(p.end));
}

/**
 * Register the contract cases for one implementation. `factory` is called once for the suite. Every case runs
 * on every implementation: the expectations are what Neutron Zed answers.
 */
export function neutronContract(label: string, factory: () => Promise<ContractTarget>): void {
  describe(`NeutronApi contract: ${label}`, () => {
    let target: ContractTarget | undefined;
    before(async () => {
      target = await factory();
    });
    after(async () => {
      await target?.close();
    });

    const it = (name: string, fn: (api: NeutronApi, r: Resources) => Promise<void>) => {
      test(name, async () => {
        assert.ok(target, 'contract target not opened');
        const r = new Resources(target.api);
        let failed = false;
        let error: unknown;
        try {
          await fn(target.api, r);
        } catch (err) {
          failed = true;
          error = err;
        }
        const cleanupError = await r.cleanup();
        if (failed) throw error;
        if (cleanupError) throw cleanupError;
      });
    };

    contractCases(it);
  });
}

type It = (name: string, fn: (api: NeutronApi, r: Resources) => Promise<void>) => void;

function contractCases(it: It): void {
  extensionAndNetworkCases(it);
  subnetCases(it);
  subnetPoolCases(it);
  portAddressCases(it);
  portAttributeCases(it);
  portFilterCases(it);
  securityGroupCases(it);
  tagCases(it);
  deletionCases(it);
}

// ---------------------------------------------------------------------------------------------------------------

function extensionAndNetworkCases(it: It): void {
  it('lists the extensions kuryr needs', async (api) => {
    const aliases = new Set((await api.listExtensions()).map((e) => e.alias));
    for (const alias of ['subnet_allocation', 'standard-attr-tag', 'binding', 'security-group', 'net-mtu']) {
      assert.ok(aliases.has(alias), `extension ${alias} missing`);
    }
  });

  it('creates a network with Neutron defaults', async (_api, r) => {
    const name = unique('net');
    const net = await r.network({ name });
    assert.match(net.id, UUID);
    assert.equal(net.name, name);
    assert.equal(net.admin_state_up, true);
    assert.equal(net.shared, false);
    assert.equal(net.status, 'ACTIVE');
    assert.equal(typeof net.mtu, 'number');
    assert.deepEqual(net.subnets, []);
    assert.deepEqual(net.tags, []);
    assert.equal(net.tenant_id, net.project_id);
    assert.match(net.created_at, TIMESTAMP);
    assert.match(net.updated_at, TIMESTAMP);
    assert.equal(typeof net.revision_number, 'number');
  });

  it('shows, updates and lists networks', async (api, r) => {
    const a = await r.network();
    const b = await r.network();
    // Neutron's create answer carries `is_default: false` (auto-allocated-topology); reads do not.
    const { is_default: isDefault, ...created } = a as Network & { is_default?: unknown };
    assert.equal(isDefault, false, 'the create answer has is_default: false');
    const shown = await api.showNetwork(a.id);
    assert.equal('is_default' in shown, false, 'GET lacks is_default');
    assert.deepEqual(shown, created);
    const renamed = unique('renamed');
    const updated = await api.updateNetwork(a.id, { name: renamed, mtu: 1400 });
    assert.equal(updated.name, renamed);
    assert.equal(updated.mtu, 1400);
    assert.ok(updated.revision_number > a.revision_number, 'revision_number bumped');
    assert.deepEqual(
      (await api.listNetworks({ name: renamed })).map((n) => n.id),
      [a.id],
    );
    const both = await api.listNetworks({ id: [a.id, b.id] });
    assert.deepEqual(both.map((n) => n.id).sort(), [a.id, b.id].sort());
    assert.deepEqual(await api.listNetworks({ id: [a.id, b.id], name: renamed }).then((l) => l.map((n) => n.id)), [
      a.id,
    ]);
    assert.deepEqual(await api.listNetworks({ id: a.id, shared: 'True' }), []);
    assert.equal((await api.listNetworks({ id: a.id, shared: false })).length, 1);
  });

  it('answers 404 NetworkNotFound for a missing network', async (api) => {
    const id = '00000000-0000-4000-8000-000000000001';
    await rejects(api.showNetwork(id), 404, 'NetworkNotFound');
    await rejects(api.updateNetwork(id, { name: 'x' }), 404, 'NetworkNotFound');
    await rejects(api.deleteNetwork(id), 404, 'NetworkNotFound');
  });

  it('returns copies: mutating a result does not change the stored resource', async (api, r) => {
    const net = await r.network();
    net.name = 'mutated';
    net.tags.push('mutated');
    const again = await api.showNetwork(net.id);
    assert.notEqual(again.name, 'mutated');
    assert.deepEqual(again.tags, []);
  });

  it('rejects unknown list filters with 400', async (api) => {
    await rejects(api.listNetworks({ no_such_attribute: 'x' }), 400);
    await rejects(api.listPorts({ no_such_attribute: 'x' }), 400);
  });
}

// ---------------------------------------------------------------------------------------------------------------

function subnetCases(it: It): void {
  it('creates a subnet with the default gateway and allocation pool', async (api, r) => {
    const net = await r.network();
    const [subnet] = await api.createSubnets([
      { network_id: net.id, ip_version: 4, cidr: '10.78.0.0/24', name: unique('s'), enable_dhcp: 'False' as never },
    ]);
    assert.ok(subnet);
    r.defer(() => api.deleteSubnet(subnet.id));
    assert.match(subnet.id, UUID);
    assert.equal(subnet.cidr, '10.78.0.0/24');
    assert.equal(subnet.ip_version, 4);
    assert.equal(subnet.gateway_ip, '10.78.0.1');
    assert.equal(subnet.enable_dhcp, false, 'the string "False" is accepted');
    assert.deepEqual(subnet.allocation_pools, [{ start: '10.78.0.2', end: '10.78.0.254' }]);
    assert.deepEqual(subnet.host_routes, []);
    assert.deepEqual(subnet.dns_nameservers, []);
    assert.equal(subnet.subnetpool_id, null);
    assert.equal(subnet.network_id, net.id);
    assert.deepEqual((await api.showNetwork(net.id)).subnets, [subnet.id]);
    assert.deepEqual(await api.showSubnet(subnet.id), subnet);
  });

  it('normalises an IPv6 CIDR and supports no gateway', async (_api, r) => {
    const net = await r.network();
    const v6 = await r.subnet({ network_id: net.id, ip_version: 6, cidr: 'FD00:AB:0::/64' });
    assert.equal(v6.cidr, 'fd00:ab::/64');
    assert.equal(v6.gateway_ip, 'fd00:ab::', 'the IPv6 default gateway is the subnet-router anycast address');
    assert.deepEqual(v6.allocation_pools, [{ start: 'fd00:ab::1', end: 'fd00:ab::ffff:ffff:ffff:ffff' }]);
    const noGw = await r.subnet({ network_id: net.id, ip_version: 6, cidr: 'fd00:ac::/120', gateway_ip: null });
    assert.equal(noGw.gateway_ip, null);
    assert.deepEqual(noGw.allocation_pools, [{ start: 'fd00:ac::1', end: 'fd00:ac::ff' }]);
    const given = await r.subnet({ network_id: net.id, ip_version: 6, cidr: 'fd00:ad::/64', gateway_ip: 'fd00:ad::1' });
    assert.equal(given.gateway_ip, 'fd00:ad::1');
    assert.equal(given.allocation_pools[0]?.start, 'fd00:ad::2');
    const pool = await r.pool({ prefixes: ['fd00:ae::/56'], default_prefixlen: 64 });
    const chosen = await r.subnet({ network_id: (await r.network()).id, ip_version: 6, subnetpool_id: pool.id });
    const base = chosen.cidr.replace(/\/64$/, '');
    assert.equal(chosen.gateway_ip, `${base}1`, 'a CIDR the pool chose gets its first host as gateway');
    assert.equal(chosen.allocation_pools[0]?.start, `${base}2`);
    const none = await r.subnet({ network_id: net.id, ip_version: 4, cidr: '10.79.0.0/24', gateway_ip: null });
    assert.equal(none.gateway_ip, null);
    assert.deepEqual(none.allocation_pools, [{ start: '10.79.0.1', end: '10.79.0.254' }]);
  });

  it('rejects an ip_version that does not match the CIDR', async (api, r) => {
    const net = await r.network();
    await rejects(
      api.createSubnets([{ network_id: net.id, ip_version: 6, cidr: '10.80.0.0/24' }]),
      400,
      'InvalidInput',
    );
  });

  it('rejects overlapping subnets on one network but allows them on two', async (api, r) => {
    const a = await r.networkWithSubnet('10.81.0.0/24');
    const err = await rejects(
      api.createSubnets([{ network_id: a.network.id, ip_version: 4, cidr: '10.81.0.128/25', enable_dhcp: false }]),
      400,
      'InvalidInput',
    );
    assert.match(err.message, /overlaps with another subnet/);
    const b = await r.network();
    const other = await r.subnet({ network_id: b.id, ip_version: 4, cidr: '10.81.0.0/24' });
    assert.equal(other.cidr, '10.81.0.0/24');
  });

  it('validates allocation pools and the gateway', async (api, r) => {
    const net = await r.network();
    const custom = await r.subnet({
      network_id: net.id,
      ip_version: 4,
      cidr: '10.82.0.0/24',
      allocation_pools: [{ start: '10.82.0.100', end: '10.82.0.199' }],
    });
    assert.deepEqual(custom.allocation_pools, [{ start: '10.82.0.100', end: '10.82.0.199' }]);
    assert.equal(custom.gateway_ip, '10.82.0.1');
    const base = { network_id: net.id, ip_version: 4 as const, enable_dhcp: false };
    await rejects(
      api.createSubnets([
        { ...base, cidr: '10.83.0.0/24', allocation_pools: [{ start: '10.83.0.10', end: '10.83.1.5' }] },
      ]),
      400,
      'OutOfBoundsAllocationPool',
    );
    await rejects(
      api.createSubnets([
        {
          ...base,
          cidr: '10.84.0.0/24',
          gateway_ip: '10.84.0.50',
          allocation_pools: [{ start: '10.84.0.10', end: '10.84.0.99' }],
        },
      ]),
      409,
      'GatewayConflictWithAllocationPools',
    );
    await rejects(api.createSubnets([{ ...base, cidr: '10.85.0.0/24', gateway_ip: '10.85.0.0' }]), 400, 'InvalidInput');
  });

  it('creates subnets in bulk atomically', async (api, r) => {
    const net = await r.network();
    const name = unique('bulk');
    await rejects(
      api.createSubnets([
        { network_id: net.id, ip_version: 4, cidr: '10.86.0.0/24', name, enable_dhcp: false },
        { network_id: net.id, ip_version: 4, cidr: '10.86.0.0/25', name, enable_dhcp: false },
      ]),
      400,
    );
    assert.deepEqual(await api.listSubnets({ name }), [], 'nothing of a failed bulk create remains');
    const created = await api.createSubnets([
      { network_id: net.id, ip_version: 4, cidr: '10.87.0.0/24', name, enable_dhcp: false },
      { network_id: net.id, ip_version: 6, cidr: 'fd00:87::/64', name, enable_dhcp: false },
    ]);
    for (const s of created) r.defer(() => api.deleteSubnet(s.id));
    assert.deepEqual(
      created.map((s) => s.ip_version),
      [4, 6],
    );
    assert.equal((await api.listSubnets({ name })).length, 2);
    assert.deepEqual(
      (await api.listSubnets({ network_id: net.id, cidr: '10.87.0.0/24' })).map((s) => s.id),
      [created[0]?.id],
    );
    assert.deepEqual(
      (await api.listSubnets({ network_id: net.id, ip_version: 6 })).map((s) => s.id),
      [created[1]?.id],
    );
  });

  it('updates a subnet', async (api, r) => {
    const { subnet } = await r.networkWithSubnet('10.88.0.0/24');
    const name = unique('upd');
    const updated = await api.updateSubnet(subnet.id, {
      name,
      dns_nameservers: ['10.88.0.53'],
      gateway_ip: '10.88.0.254',
      allocation_pools: [{ start: '10.88.0.10', end: '10.88.0.20' }],
    });
    assert.equal(updated.name, name);
    assert.deepEqual(updated.dns_nameservers, ['10.88.0.53']);
    assert.equal(updated.gateway_ip, '10.88.0.254');
    assert.deepEqual(updated.allocation_pools, [{ start: '10.88.0.10', end: '10.88.0.20' }]);
    assert.ok(updated.revision_number > subnet.revision_number);
    await rejects(api.updateSubnet(subnet.id, { gateway_ip: '10.88.0.15' }), 409, 'GatewayConflictWithAllocationPools');
    await rejects(api.showSubnet('00000000-0000-4000-8000-000000000002'), 404, 'SubnetNotFound');
  });
}

// ---------------------------------------------------------------------------------------------------------------

function subnetPoolCases(it: It): void {
  it('creates a subnet pool with normalised prefixes and Neutron defaults', async (api, r) => {
    const pool = await r.pool({ prefixes: ['10.90.0.7/16'] });
    assert.match(pool.id, UUID);
    assert.deepEqual(pool.prefixes, ['10.90.0.0/16']);
    assert.equal(pool.ip_version, 4);
    assert.equal(pool.min_prefixlen, 8);
    assert.equal(pool.max_prefixlen, 32);
    assert.equal(pool.default_prefixlen, pool.min_prefixlen);
    const withDefault = await r.pool({ prefixes: ['10.91.0.0/24'], default_prefixlen: 24 });
    assert.equal(withDefault.default_prefixlen, 24);
    assert.deepEqual(await api.showSubnetPool(pool.id), pool);
    assert.deepEqual(
      (await api.listSubnetPools({ name: pool.name })).map((p) => p.id),
      [pool.id],
    );
    assert.deepEqual((await api.listSubnetPools({ id: [pool.id, withDefault.id] })).length, 2);
    await rejects(api.createSubnetPool({ name: unique('mixed'), prefixes: ['10.92.0.0/16', 'fd00:92::/48'] }), 400);
    await rejects(api.showSubnetPool('00000000-0000-4000-8000-000000000003'), 404, 'SubnetPoolNotFound');
  });

  it('allocates a requested CIDR from a pool only inside its prefixes and only once', async (api, r) => {
    const pool = await r.pool({ prefixes: ['10.93.0.0/24'], default_prefixlen: 24 });
    const a = await r.network();
    const b = await r.network();
    const subnet = await r.subnet({ network_id: a.id, ip_version: 4, cidr: '10.93.0.0/24', subnetpool_id: pool.id });
    assert.equal(subnet.subnetpool_id, pool.id);
    assert.deepEqual(
      (await api.listSubnets({ subnetpool_id: pool.id })).map((s) => s.id),
      [subnet.id],
    );
    const base = { network_id: b.id, ip_version: 4 as const, subnetpool_id: pool.id, enable_dhcp: false };
    await rejects(
      api.createSubnets([{ ...base, cidr: '10.93.0.0/24' }]),
      SUBNET_ALLOCATION_STATUSES,
      'SubnetAllocationError',
    );
    await rejects(
      api.createSubnets([{ ...base, cidr: '10.94.0.0/24' }]),
      SUBNET_ALLOCATION_STATUSES,
      'SubnetAllocationError',
    );
  });

  it('enforces the pool prefix-length bounds', async (api, r) => {
    const pool = await r.pool({ prefixes: ['10.95.0.0/16'], min_prefixlen: 20, max_prefixlen: 26 });
    const net = await r.network();
    const base = { network_id: net.id, ip_version: 4 as const, subnetpool_id: pool.id, enable_dhcp: false };
    await rejects(api.createSubnets([{ ...base, cidr: '10.95.0.0/28' }]), 400, 'MaxPrefixSubnetAllocationError');
    await rejects(api.createSubnets([{ ...base, cidr: '10.95.0.0/18' }]), 400, 'MinPrefixSubnetAllocationError');
  });

  it('lets the pool choose blocks by prefixlen until it is full', async (api, r) => {
    const pool = await r.pool({ prefixes: ['10.96.0.0/23'], default_prefixlen: 24 });
    const prefix = parseCidr('10.96.0.0/23');
    const net = await r.network();
    const first = await r.subnet({ network_id: net.id, ip_version: 4, subnetpool_id: pool.id, prefixlen: 24 });
    const second = await r.subnet({ network_id: (await r.network()).id, ip_version: 4, subnetpool_id: pool.id });
    for (const s of [first, second]) {
      assert.ok(s.cidr.endsWith('/24'), s.cidr);
      assert.ok(cidrContainsIp(prefix, s.cidr.split('/')[0] ?? ''), `${s.cidr} inside the pool`);
      assert.equal(s.subnetpool_id, pool.id);
    }
    assert.notEqual(first.cidr, second.cidr);
    await rejects(
      api.createSubnets([
        { network_id: net.id, ip_version: 4, subnetpool_id: pool.id, prefixlen: 24, enable_dhcp: false },
      ]),
      SUBNET_ALLOCATION_STATUSES,
      'SubnetAllocationError',
    );
  });

  it('updates names and descriptions (the tagless mode records what it renamed there)', async (api, r) => {
    const net = await r.network({ description: 'made by the operator' });
    const renamed = unique('docker-id');
    const recorded = `kuryr-ts: existing network; was ${JSON.stringify({ name: net.name, description: 'x'.repeat(150) })}`;
    const updated = await api.updateNetwork(net.id, { name: renamed, description: recorded });
    assert.equal(updated.description, recorded, 'a description of 200+ characters is kept whole');
    assert.deepEqual(
      (await api.listNetworks({ name: renamed })).map((n) => n.description),
      [recorded],
    );
    const back = await api.updateNetwork(net.id, { name: net.name, description: net.description });
    assert.equal(back.name, net.name);
    assert.equal(back.description, 'made by the operator');
    await rejects(api.updateNetwork(net.id, { description: 'd'.repeat(256) }), 400);
    const pool = await r.pool({ prefixes: ['10.96.0.0/24'] });
    const described = await api.updateSubnetPool(pool.id, { description: 'kuryr-ts: subnet pool of subnet x' });
    assert.equal(described.description, 'kuryr-ts: subnet pool of subnet x');
    assert.equal((await api.showSubnetPool(pool.id)).description, 'kuryr-ts: subnet pool of subnet x');
  });

  it('updates a pool: prefixes may grow, not shrink', async (api, r) => {
    const pool = await r.pool({ prefixes: ['10.97.0.0/24'] });
    const name = unique('renamed-pool');
    const grown = await api.updateSubnetPool(pool.id, { name, prefixes: ['10.97.0.0/24', '10.98.0.0/24'] });
    assert.equal(grown.name, name);
    assert.deepEqual(grown.prefixes, ['10.97.0.0/24', '10.98.0.0/24']);
    assert.ok(grown.revision_number > pool.revision_number);
    await rejects(api.updateSubnetPool(pool.id, { prefixes: ['10.98.0.0/24'] }), 400);
  });
}

// ---------------------------------------------------------------------------------------------------------------

function portAddressCases(it: It): void {
  it('allocates an address from the allocation pool, never the gateway', async (_api, r) => {
    const { network, subnet } = await r.networkWithSubnet('10.100.0.0/24');
    const port = await r.port({ network_id: network.id, fixed_ips: [{ subnet_id: subnet.id }] });
    assert.match(port.id, UUID);
    assert.equal(port.fixed_ips.length, 1);
    const ip = port.fixed_ips[0];
    assert.equal(ip?.subnet_id, subnet.id);
    assert.ok(ip && inPools(subnet, ip.ip_address), `${ip?.ip_address} inside the allocation pools`);
    assert.notEqual(ip?.ip_address, subnet.gateway_ip);
  });

  it('gives a requested address, and 409 IpAddressAlreadyAllocated for it a second time', async (api, r) => {
    const { network, subnet } = await r.networkWithSubnet('10.101.0.0/24');
    const port = await r.port({
      network_id: network.id,
      fixed_ips: [{ subnet_id: subnet.id, ip_address: '10.101.0.42' }],
    });
    assert.deepEqual(port.fixed_ips, [{ subnet_id: subnet.id, ip_address: '10.101.0.42' }]);
    await rejects(
      api.createPort({ network_id: network.id, name: unique('dup'), fixed_ips: [{ ip_address: '10.101.0.42' }] }),
      409,
      'IpAddressAlreadyAllocated',
    );
    const byAddress = await r.port({ network_id: network.id, fixed_ips: [{ ip_address: '10.101.0.43' }] });
    assert.deepEqual(byAddress.fixed_ips, [{ subnet_id: subnet.id, ip_address: '10.101.0.43' }]);
  });

  it('rejects addresses that are not valid for the subnet or network', async (api, r) => {
    const { network, subnet } = await r.networkWithSubnet('10.102.0.0/24');
    const body = (fixed: PortCreate['fixed_ips']) => ({
      network_id: network.id,
      name: unique('bad'),
      fixed_ips: fixed,
    });
    await rejects(
      api.createPort(body([{ subnet_id: subnet.id, ip_address: '10.103.0.5' }])),
      400,
      'InvalidIpForSubnet',
    );
    await rejects(
      api.createPort(body([{ subnet_id: subnet.id, ip_address: '10.102.0.0' }])),
      400,
      'InvalidIpForSubnet',
    );
    await rejects(
      api.createPort(body([{ subnet_id: subnet.id, ip_address: '10.102.0.255' }])),
      400,
      'InvalidIpForSubnet',
    );
    await rejects(api.createPort(body([{ ip_address: '10.103.0.5' }])), 400, [
      'InvalidIpForNetwork',
      'InvalidIpForSubnet',
    ]);
    await rejects(api.createPort({ network_id: '00000000-0000-4000-8000-000000000004' }), 404, 'NetworkNotFound');
  });

  it('exhausts a /29 with 409 IpAddressGenerationFailure', async (api, r) => {
    const { network, subnet } = await r.networkWithSubnet('10.104.0.0/29');
    const seen = new Set<string>();
    let failure: NeutronError | undefined;
    for (let i = 0; i < 8 && !failure; i++) {
      try {
        const port = await r.port({ network_id: network.id, fixed_ips: [{ subnet_id: subnet.id }] });
        const ip = port.fixed_ips[0]?.ip_address ?? '';
        assert.ok(inPools(subnet, ip) && ip !== subnet.gateway_ip, `${ip} in pool, not the gateway`);
        assert.ok(!seen.has(ip), `${ip} handed out twice`);
        seen.add(ip);
      } catch (err) {
        if (!(err instanceof NeutronError)) throw err;
        failure = err;
      }
    }
    assert.ok(failure, 'allocation must fail once the pool is exhausted');
    assert.equal(failure.status, 409);
    assert.equal(failure.type, 'IpAddressGenerationFailure');
    const holders = await api.listPorts({ fixed_ips: `subnet_id=${subnet.id}` });
    assert.equal(holders.flatMap((p) => p.fixed_ips).filter((f) => f.subnet_id === subnet.id).length, 5);
  });

  it('allocates one IPv4 and one IPv6 address when fixed_ips is omitted', async (_api, r) => {
    const { network, subnet } = await r.networkWithSubnet('10.105.0.0/24');
    const v6 = await r.subnet({ network_id: network.id, ip_version: 6, cidr: 'fd00:105::/64' });
    const port = await r.port({ network_id: network.id });
    assert.deepEqual(port.fixed_ips.map((f) => f.subnet_id).sort(), [subnet.id, v6.id].sort());
  });

  it('replaces fixed_ips on update: keeps, releases and allocates atomically', async (api, r) => {
    const { network, subnet } = await r.networkWithSubnet('10.106.0.0/24');
    const port = await r.port({
      network_id: network.id,
      fixed_ips: [
        { subnet_id: subnet.id, ip_address: '10.106.0.10' },
        { subnet_id: subnet.id, ip_address: '10.106.0.11' },
      ],
    });
    const other = await r.port({ network_id: network.id, fixed_ips: [{ ip_address: '10.106.0.30' }] });
    await rejects(
      api.updatePort(port.id, { fixed_ips: [{ ip_address: '10.106.0.10' }, { ip_address: '10.106.0.30' }] }),
      409,
      'IpAddressAlreadyAllocated',
    );
    assert.deepEqual(
      (await api.showPort(port.id)).fixed_ips.map((f) => f.ip_address).sort(),
      ['10.106.0.10', '10.106.0.11'],
      'a failed update changes nothing',
    );
    const updated = await api.updatePort(port.id, {
      fixed_ips: [{ ip_address: '10.106.0.10' }, { subnet_id: subnet.id, ip_address: '10.106.0.12' }],
    });
    assert.deepEqual(updated.fixed_ips.map((f) => f.ip_address).sort(), ['10.106.0.10', '10.106.0.12']);
    const reuse = await r.port({ network_id: network.id, fixed_ips: [{ ip_address: '10.106.0.11' }] });
    assert.equal(reuse.fixed_ips[0]?.ip_address, '10.106.0.11', 'a released address can be taken again');
    const keep = await api.updatePort(other.id, { fixed_ips: [{ subnet_id: subnet.id }] });
    assert.deepEqual(keep.fixed_ips, other.fixed_ips, 'a subnet-only entry keeps the address held in that subnet');
  });

  it('keeps MAC addresses unique per network', async (api, r) => {
    const { network } = await r.networkWithSubnet('10.107.0.0/24');
    const a = await r.port({ network_id: network.id });
    const b = await r.port({ network_id: network.id });
    assert.match(a.mac_address, MAC);
    assert.notEqual(a.mac_address, b.mac_address);
    const given = await r.port({ network_id: network.id, mac_address: 'FA:16:3E:AA:BB:01' });
    assert.equal(given.mac_address, 'FA:16:3E:AA:BB:01', 'stored and answered in the case given');
    assert.equal((await api.showPort(given.id)).mac_address, 'FA:16:3E:AA:BB:01');
    assert.deepEqual(
      (await api.listPorts({ network_id: network.id, mac_address: 'fa:16:3e:aa:bb:01' })).map((p) => p.id),
      [given.id],
      'the mac_address filter ignores case',
    );
    await rejects(
      api.createPort({ network_id: network.id, name: unique('mac'), mac_address: 'fa:16:3e:aa:bb:01' }),
      409,
      'MacAddressInUse',
    );
    await rejects(api.updatePort(b.id, { mac_address: 'fa:16:3e:aa:bb:01' }), 409, 'MacAddressInUse');
    await rejects(api.updatePort(b.id, { mac_address: 'Fa:16:3e:AA:bb:01' }), 409, 'MacAddressInUse');
    const elsewhere = await r.network();
    const same = await r.port({ network_id: elsewhere.id, mac_address: 'fa:16:3e:aa:bb:01' });
    assert.equal(same.mac_address, 'fa:16:3e:aa:bb:01', 'the same MAC is fine on another network');
  });
}

// ---------------------------------------------------------------------------------------------------------------

function portAttributeCases(it: It): void {
  it('creates ports with Neutron defaults and binding fields', async (api, r) => {
    const { network } = await r.networkWithSubnet('10.110.0.0/24');
    const port = await r.port({ network_id: network.id });
    assert.equal(port.admin_state_up, true);
    assert.equal(port.device_id, '');
    assert.equal(port.device_owner, '');
    assert.equal(port.network_id, network.id);
    assert.equal(port['binding:host_id'], '');
    assert.equal(port['binding:vif_type'], 'unbound');
    assert.deepEqual(port['binding:vif_details'], {});
    assert.equal(port['binding:vnic_type'], 'normal');
    assert.deepEqual(port['binding:profile'], {});
    assert.deepEqual(port.allowed_address_pairs, []);
    assert.equal(port.port_security_enabled, true);
    assert.equal(port.tenant_id, port.project_id);
    assert.match(port.created_at, TIMESTAMP);
    assert.deepEqual(await api.showPort(port.id), port);
    await rejects(api.showPort('00000000-0000-4000-8000-000000000005'), 404, 'PortNotFound');
  });

  it('binds and unbinds a port through binding:host_id', async (api, r) => {
    const { network } = await r.networkWithSubnet('10.111.0.0/24');
    const port = await r.port({ network_id: network.id, device_owner: 'compute:kuryr', device_id: unique('dev') });
    const host = unique('host');
    const bound = await api.updatePort(port.id, { 'binding:host_id': host, 'binding:profile': { key: 'value' } });
    assert.equal(bound['binding:host_id'], host);
    assert.notEqual(bound['binding:vif_type'], 'unbound');
    assert.deepEqual(bound['binding:profile'], { key: 'value' });
    assert.ok(bound.revision_number > port.revision_number);
    const unbound = await api.updatePort(port.id, { 'binding:host_id': '' });
    assert.equal(unbound['binding:vif_type'], 'unbound');
    assert.deepEqual(unbound['binding:vif_details'], {});
  });

  it('updates simple port attributes', async (api, r) => {
    const { network } = await r.networkWithSubnet('10.112.0.0/24');
    const port = await r.port({ network_id: network.id });
    const name = unique('p');
    const updated = await api.updatePort(port.id, {
      name,
      device_id: 'dev-1',
      device_owner: 'compute:kuryr',
      admin_state_up: false,
    });
    assert.equal(updated.name, name);
    assert.equal(updated.device_id, 'dev-1');
    assert.equal(updated.device_owner, 'compute:kuryr');
    assert.equal(updated.admin_state_up, false);
    assert.deepEqual(updated.fixed_ips, port.fixed_ips, 'addresses untouched when fixed_ips is not given');
    assert.ok(updated.revision_number > port.revision_number);
  });

  it('gives a port the project default security group, or the requested ones', async (api, r) => {
    const { network } = await r.networkWithSubnet('10.113.0.0/24');
    const port = await r.port({ network_id: network.id });
    assert.equal(port.security_groups.length, 1);
    const groups = await api.listSecurityGroups({ id: port.security_groups[0] as string });
    assert.equal(groups[0]?.name, 'default');
    const sg = await r.securityGroup();
    const withSg = await r.port({ network_id: network.id, security_groups: [sg.id] });
    assert.deepEqual(withSg.security_groups, [sg.id]);
    const open = await r.port({ network_id: network.id, port_security_enabled: false });
    assert.deepEqual(open.security_groups, []);
    assert.equal(open.port_security_enabled, false);
  });

  it('stores allowed address pairs, defaulting the MAC to the port MAC', async (api, r) => {
    const { network } = await r.networkWithSubnet('10.114.0.0/24');
    const port = await r.port({ network_id: network.id });
    const updated = await api.updatePort(port.id, {
      allowed_address_pairs: [
        { ip_address: '10.114.0.200' } as never,
        { ip_address: '10.114.1.0/24', mac_address: 'fa:16:3e:00:11:22' },
      ],
    });
    const pairs = [...updated.allowed_address_pairs].sort((a, b) => a.ip_address.localeCompare(b.ip_address));
    assert.deepEqual(pairs, [
      { ip_address: '10.114.0.200', mac_address: port.mac_address },
      { ip_address: '10.114.1.0/24', mac_address: 'fa:16:3e:00:11:22' },
    ]);
  });
}

// ---------------------------------------------------------------------------------------------------------------

function portFilterCases(it: It): void {
  it('filters ports by fixed_ips subnet and address (evaluated independently)', async (api, r) => {
    const network = await r.network();
    const s1 = await r.subnet({ network_id: network.id, ip_version: 4, cidr: '10.120.0.0/24' });
    const s2 = await r.subnet({ network_id: network.id, ip_version: 4, cidr: '10.121.0.0/24' });
    const both = await r.port({
      network_id: network.id,
      fixed_ips: [{ ip_address: '10.120.0.5' }, { ip_address: '10.121.0.5' }],
    });
    const only1 = await r.port({ network_id: network.id, fixed_ips: [{ ip_address: '10.120.0.6' }] });
    const ids = async (f: Parameters<NeutronApi['listPorts']>[0]) => (await api.listPorts(f)).map((p) => p.id).sort();
    assert.deepEqual(await ids({ fixed_ips: `ip_address=10.120.0.6` }), [only1.id]);
    assert.deepEqual(await ids({ fixed_ips: [`subnet_id=${s1.id}`, 'ip_address=10.120.0.5'] }), [both.id]);
    assert.deepEqual(await ids({ fixed_ips: [`subnet_id=${s1.id}`] }), [both.id, only1.id].sort());
    assert.deepEqual(await ids({ fixed_ips: [`subnet_id=${s2.id}`] }), [both.id]);
    assert.deepEqual(await ids({ fixed_ips: [`subnet_id=${s2.id}`, 'ip_address=10.120.0.5'] }), [both.id]);
    assert.deepEqual(await ids({ fixed_ips: [`subnet_id=${s2.id}`, 'ip_address=10.120.0.6'] }), []);
    assert.deepEqual(
      await ids({ fixed_ips: ['ip_address=10.120.0.5', 'ip_address=10.120.0.6'] }),
      [both.id, only1.id].sort(),
    );
  });

  it('filters ports by MAC (case-insensitive), device, network, host and name', async (api, r) => {
    const { network } = await r.networkWithSubnet('10.122.0.0/24');
    const device = unique('device');
    const host = unique('host');
    const a = await r.port({
      network_id: network.id,
      device_id: device,
      'binding:host_id': host,
      device_owner: 'compute:kuryr',
    });
    const b = await r.port({ network_id: network.id });
    const ids = async (f: Parameters<NeutronApi['listPorts']>[0]) => (await api.listPorts(f)).map((p) => p.id).sort();
    assert.deepEqual(await ids({ mac_address: a.mac_address.toUpperCase() }), [a.id]);
    assert.deepEqual(await ids({ device_id: device }), [a.id]);
    assert.deepEqual(await ids({ 'binding:host_id': host }), [a.id]);
    assert.deepEqual(await ids({ network_id: network.id, device_owner: 'compute:kuryr' }), [a.id]);
    assert.deepEqual(await ids({ name: b.name }), [b.id]);
    assert.deepEqual(await ids({ name: [a.name, b.name] }), [a.id, b.id].sort());
    assert.deepEqual(await ids({ name: a.name, device_id: 'other' }), []);
  });
}

// ---------------------------------------------------------------------------------------------------------------

function securityGroupCases(it: It): void {
  it('creates a security group with two egress rules and lists it with its rules', async (api, r) => {
    const sg = await r.securityGroup();
    assert.match(sg.id, UUID);
    const egress = sg.security_group_rules.map((rule) => [rule.direction, rule.ethertype, rule.protocol]).sort();
    assert.deepEqual(egress, [
      ['egress', 'IPv4', null],
      ['egress', 'IPv6', null],
    ]);
    const listed = await api.listSecurityGroups({ name: sg.name });
    assert.deepEqual(
      listed.map((g) => g.id),
      [sg.id],
    );
    assert.equal(listed[0]?.security_group_rules.length, 2);
  });

  it('creates rules in bulk, atomically, and rejects duplicates', async (api, r) => {
    const sg = await r.securityGroup();
    const tcp = {
      security_group_id: sg.id,
      direction: 'ingress' as const,
      ethertype: 'IPv4' as const,
      protocol: 'tcp',
    };
    const rules = await api.createSecurityGroupRules([
      { ...tcp, port_range_min: 80, port_range_max: 80 },
      { ...tcp, port_range_min: 443, port_range_max: 444, remote_ip_prefix: '192.0.2.0/24' },
    ]);
    assert.equal(rules.length, 2);
    assert.match(rules[0]?.id ?? '', UUID);
    assert.equal(rules[1]?.port_range_max, 444);
    assert.equal(rules[1]?.security_group_id, sg.id);
    await rejects(
      api.createSecurityGroupRules([{ ...tcp, port_range_min: 80, port_range_max: 80 }]),
      409,
      'SecurityGroupRuleExists',
    );
    await rejects(
      api.createSecurityGroupRules([
        { ...tcp, port_range_min: 8080, port_range_max: 8080 },
        { ...tcp, port_range_min: 80, port_range_max: 80 },
      ]),
      409,
      'SecurityGroupRuleExists',
    );
    const after = (await api.listSecurityGroups({ id: sg.id }))[0];
    assert.equal(after?.security_group_rules.length, 4, 'the failed bulk create added nothing');
    await rejects(
      api.createSecurityGroupRules([{ ...tcp, port_range_min: 90, port_range_max: 80 }]),
      400,
      'SecurityGroupInvalidPortRange',
    );
  });

  it('refuses to delete a security group in use, then deletes it with its rules', async (api, r) => {
    const { network } = await r.networkWithSubnet('10.130.0.0/24');
    const sg = await api.createSecurityGroup({ name: unique('sg') });
    r.defer(() => api.deleteSecurityGroup(sg.id));
    const port = await r.port({ network_id: network.id, security_groups: [sg.id] });
    await rejects(api.deleteSecurityGroup(sg.id), 409, 'SecurityGroupInUse');
    await api.updatePort(port.id, { security_groups: [] });
    await api.deleteSecurityGroup(sg.id);
    assert.deepEqual(await api.listSecurityGroups({ id: sg.id }), []);
    await rejects(api.deleteSecurityGroup(sg.id), 404, 'SecurityGroupNotFound');
  });
}

// ---------------------------------------------------------------------------------------------------------------

function tagCases(it: It): void {
  it('adds, removes and replaces tags on every taggable resource', async (api, r) => {
    const { network, subnet } = await r.networkWithSubnet('10.140.0.0/24');
    const pool = await r.pool({ prefixes: ['10.141.0.0/24'] });
    const port = await r.port({ network_id: network.id });
    const sg = await r.securityGroup();
    const show: Record<TaggedResource, (id: string) => Promise<{ tags: string[]; revision_number: number }>> = {
      networks: (id) => api.showNetwork(id),
      subnets: (id) => api.showSubnet(id),
      subnetpools: (id) => api.showSubnetPool(id),
      ports: (id) => api.showPort(id),
      'security-groups': async (id) => {
        const [g] = await api.listSecurityGroups({ id });
        assert.ok(g);
        return g;
      },
    };
    const targets: [TaggedResource, string][] = [
      ['networks', network.id],
      ['subnets', subnet.id],
      ['subnetpools', pool.id],
      ['ports', port.id],
      ['security-groups', sg.id],
    ];
    for (const [resource, id] of targets) {
      const before = await show[resource](id);
      await api.addTag(resource, id, 'alpha');
      await api.addTag(resource, id, 'alpha');
      const tagged = await show[resource](id);
      assert.deepEqual(tagged.tags, ['alpha'], `${resource}: idempotent add`);
      assert.ok(tagged.revision_number > before.revision_number, `${resource}: tag change bumps the revision`);
      assert.deepEqual((await api.replaceTags(resource, id, ['x', 'y'])).sort(), ['x', 'y']);
      assert.deepEqual([...(await show[resource](id)).tags].sort(), ['x', 'y'], `${resource}: replaced`);
      await api.removeTag(resource, id, 'x');
      assert.deepEqual((await show[resource](id)).tags, ['y']);
      await rejects(api.removeTag(resource, id, 'x'), 404, 'TagNotFound');
      await rejects(api.addTag(resource, id, 'z'.repeat(256)), 400);
    }
    // Neutron's tag controller answers for the missing resource itself, whatever its kind.
    const missing = '00000000-0000-4000-8000-000000000006';
    for (const [resource] of targets) {
      const err = await rejects(api.addTag(resource, missing, 'a'), 404, 'TagResourceNotFound');
      assert.equal(err.message, `Resource ${resource.replace('-', '_')} ${missing} could not be found.`);
      await rejects(api.removeTag(resource, missing, 'a'), 404, 'TagResourceNotFound');
      await rejects(api.replaceTags(resource, missing, ['a']), 404, 'TagResourceNotFound');
    }
  });

  it('filters by tags, tags-any, not-tags and not-tags-any', async (api, r) => {
    const [t1, t2] = [unique('t1'), unique('t2')];
    const both = await r.network();
    const one = await r.network();
    const none = await r.network();
    await api.replaceTags('networks', both.id, [t1, t2]);
    await api.addTag('networks', one.id, t1);
    const scope = [both.id, one.id, none.id];
    const ids = async (f: Record<string, string | string[]>) =>
      (await api.listNetworks({ id: scope, ...f })).map((n) => n.id).sort();
    assert.deepEqual(await ids({ tags: `${t1},${t2}` }), [both.id]);
    assert.deepEqual(await ids({ tags: [t1, t2] }), [both.id]);
    assert.deepEqual(await ids({ tags: t1 }), [both.id, one.id].sort());
    assert.deepEqual(await ids({ 'tags-any': `${t1},${t2}` }), [both.id, one.id].sort());
    assert.deepEqual(await ids({ 'not-tags': `${t1},${t2}` }), [one.id, none.id].sort());
    assert.deepEqual(await ids({ 'not-tags-any': `${t1},${t2}` }), [none.id]);
    assert.deepEqual(
      (await api.listNetworks({ tags: t2 })).map((n) => n.id),
      [both.id],
      'tag filter alone',
    );
  });
}

// ---------------------------------------------------------------------------------------------------------------

function deletionCases(it: It): void {
  it('refuses to delete a network with user ports, then deletes it with subnets and network-owned ports', async (api, r) => {
    const { network, subnet } = await r.networkWithSubnet('10.150.0.0/24');
    const user = await r.port({ network_id: network.id, device_owner: 'compute:kuryr' });
    const dhcp = await r.port({ network_id: network.id, device_owner: 'network:dhcp' });
    await rejects(api.deleteNetwork(network.id), 409, 'NetworkInUse');
    await api.deletePort(user.id);
    await rejects(api.showPort(user.id), 404, 'PortNotFound');
    await api.deleteNetwork(network.id);
    await rejects(api.showNetwork(network.id), 404, 'NetworkNotFound');
    await rejects(api.showSubnet(subnet.id), 404, 'SubnetNotFound');
    await rejects(api.showPort(dhcp.id), 404, 'PortNotFound');
  });

  it('refuses to delete a subnet with user addresses; network-owned ports let go', async (api, r) => {
    const network = await r.network();
    const keep = await r.subnet({ network_id: network.id, ip_version: 4, cidr: '10.151.0.0/24' });
    const doomed = await r.subnet({ network_id: network.id, ip_version: 4, cidr: '10.152.0.0/24' });
    const user = await r.port({ network_id: network.id, fixed_ips: [{ subnet_id: doomed.id }] });
    const dhcp = await r.port({
      network_id: network.id,
      device_owner: 'network:dhcp',
      fixed_ips: [{ subnet_id: keep.id }, { subnet_id: doomed.id }],
    });
    await rejects(api.deleteSubnet(doomed.id), 409, 'SubnetInUse');
    await api.deletePort(user.id);
    await api.deleteSubnet(doomed.id);
    await rejects(api.showSubnet(doomed.id), 404, 'SubnetNotFound');
    const after = await api.showPort(dhcp.id);
    assert.deepEqual(
      after.fixed_ips.map((f) => f.subnet_id),
      [keep.id],
      'the DHCP port lost its address in the subnet',
    );
    assert.deepEqual((await api.showNetwork(network.id)).subnets, [keep.id]);
  });

  it('refuses to delete a subnet pool in use, then deletes it', async (api, r) => {
    const pool = await api.createSubnetPool({ name: unique('pool'), prefixes: ['10.153.0.0/24'] });
    r.defer(() => api.deleteSubnetPool(pool.id));
    const net = await r.network();
    const subnet = await api.createSubnets([
      { network_id: net.id, ip_version: 4, subnetpool_id: pool.id, cidr: '10.153.0.0/24', enable_dhcp: false },
    ]);
    const err = await rejects(api.deleteSubnetPool(pool.id), 400, 'SubnetPoolDeleteError');
    assert.equal(err.message, 'Unable to delete subnet pool: Subnet pool has existing allocations.');
    assert.deepEqual((await api.showSubnetPool(pool.id)).id, pool.id, 'the pool is still there');
    await api.deleteSubnet(subnet[0]?.id ?? '');
    await api.deleteSubnetPool(pool.id);
    await rejects(api.showSubnetPool(pool.id), 404, 'SubnetPoolNotFound');
  });
}
