/**
 * Valid but hostile call sequences: random interleavings of well-formed calls over a small bank of Docker IDs,
 * MACs and CIDRs (so that IDs collide, repeat, and are unknown as often as known), in orders Docker would not
 * use, some calls sent twice in a row. Every reply is a 200 or a clean 4xx `{"Err"}` (the one designed 5xx: a
 * not-found from ProgramExternalConnectivity is a 500, because Docker ignores a 404 there); teardown calls for
 * unknown IDs are 200 and change nothing; a retried call changes nothing more; every argument that reaches the
 * host is valid. After a teardown in Docker's order nothing is left: no network, subnet, port, security group,
 * pool of ours, reservation, bound port or bridge.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { hexId, swarmId, uuidArb } from './arbitraries.ts';
import { assertErr, type FuzzServer, fcParams, isObject, type Reply, startFuzzServer } from './harness.ts';

const MAC = 'com.docker.network.endpoint.macaddress';
const EXPOSED = 'com.docker.network.endpoint.exposedports';
const GATEWAY = { RequestAddressType: 'com.docker.network.gateway' };
/** The routes whose not-found is answered 500 on purpose (Docker ignores their 404). */
const NO_404 = new Set(['NetworkDriver.ProgramExternalConnectivity', 'NetworkDriver.RevokeExternalConnectivity']);

const V4_POOLS = ['10.50.0.0/24', '10.51.0.0/24', '10.51.0.0/24', '10.10.7.0/24', ''];
const V6_POOLS = ['fd50::/64', 'fd6b:7572:7972:7::/64', ''];
const MACS = ['02:42:0a:00:00:01', '02:42:0a:00:00:02', '02:42:0a:00:00:03'];

type EndpointOp = 'join' | 'leave' | 'deleteEndpoint' | 'operInfo' | 'program' | 'revoke';
type UnknownOp =
  | 'deleteEndpoint'
  | 'leave'
  | 'deleteNetwork'
  | 'releasePool'
  | 'releaseAddress'
  | 'revoke'
  | 'operInfo'
  | 'freeNetwork';

type Op =
  | { k: 'requestPool'; pool: number; v6: boolean; sub: boolean }
  | { k: 'gateway'; pool: number }
  | { k: 'createNetwork'; net: number; pool4: number; pool6: number | null }
  | { k: 'requestAddress'; pool: number; mac: number | null; explicit: number | null }
  | { k: 'createEndpoint'; net: number; ep: number; addr: number; addr6: number | null; mac: number }
  | { k: EndpointOp; net: number; ep: number; ports: { Proto: number; Port: number }[] }
  | { k: 'releaseAddress'; addr: number }
  | { k: 'releasePool'; pool: number }
  | { k: 'deleteNetwork'; net: number }
  | { k: 'unknown'; op: UnknownOp; id: string; uuid: string };

const idx = fc.nat(7);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('requestPool' as const), pool: idx, v6: fc.boolean(), sub: fc.boolean() }),
  fc.record({ k: fc.constant('gateway' as const), pool: idx }),
  fc.record({ k: fc.constant('createNetwork' as const), net: idx, pool4: idx, pool6: fc.option(idx) }),
  fc.record({
    k: fc.constant('requestAddress' as const),
    pool: idx,
    mac: fc.option(fc.nat(MACS.length - 1), { freq: 5 }),
    explicit: fc.option(fc.integer({ min: 2, max: 9 })),
  }),
  fc.record({
    k: fc.constant('createEndpoint' as const),
    net: idx,
    ep: idx,
    addr: idx,
    addr6: fc.option(idx),
    mac: fc.nat(MACS.length - 1),
  }),
  fc.record({
    k: fc.constantFrom<EndpointOp>('join', 'leave', 'deleteEndpoint', 'operInfo', 'program', 'revoke'),
    net: idx,
    ep: idx,
    ports: fc.array(fc.record({ Proto: fc.constantFrom(1, 6, 17, 132), Port: fc.integer({ min: 0, max: 65535 }) }), {
      maxLength: 3,
    }),
  }),
  fc.record({ k: fc.constant('releaseAddress' as const), addr: idx }),
  fc.record({ k: fc.constant('releasePool' as const), pool: idx }),
  fc.record({ k: fc.constant('deleteNetwork' as const), net: idx }),
  fc.record({
    k: fc.constant('unknown' as const),
    op: fc.constantFrom<UnknownOp>(
      'deleteEndpoint',
      'leave',
      'deleteNetwork',
      'releasePool',
      'releaseAddress',
      'revoke',
      'operInfo',
      'freeNetwork',
    ),
    id: fc.oneof(hexId, swarmId),
    uuid: uuidArb,
  }),
);

/** Networks built as dockerd would before the random part: pools, gateway, network, endpoints joined. */
const prologueArb = fc.array(
  fc.record({ pool4: fc.nat(), pool6: fc.option(fc.nat()), endpoints: fc.nat(2), program: fc.boolean() }),
  { maxLength: 2 },
);

/** A sequence: its ID bank (3 networks, 4 endpoints; hex and swarm forms), a prologue and its operations. */
const sequenceArb = fc.record({
  nets: fc.uniqueArray(fc.oneof(hexId, swarmId), { minLength: 3, maxLength: 3 }),
  eps: fc.uniqueArray(hexId, { minLength: 4, maxLength: 4 }),
  prologue: prologueArb,
  ops: fc.array(fc.record({ op: opArb, repeat: fc.boolean() }), { minLength: 5, maxLength: 30 }),
});

type Sequence = typeof sequenceArb extends fc.Arbitrary<infer T> ? T : never;

interface Pool {
  id: string;
  cidr: string;
  version: 4 | 6;
}

interface Held {
  poolId: string;
  /** with prefix, as RequestAddress answered */
  address: string;
}

/**
 * What the calls so far handed out (by 200 replies), for the next calls and for the teardown. Operations mostly
 * pick from it (an address of a pool that has a network, an endpoint that exists) so that sequences reach deep
 * states; an index that is a multiple of 4 picks from the raw bank instead (unknown or mismatched resources).
 */
class Model {
  pools: Pool[] = [];
  /**
   * Granted and not yet released, per PoolID: Docker releases each RequestPool it was answered once, and two
   * Docker networks of one CIDR get the same PoolID, so the plugin counts them (src/driver/context.ts PoolLeases).
   */
  grants = new Map<string, number>();
  held: Held[] = [];
  networks: { id: string; pools: string[] }[] = [];
  /** Security groups orphaned by the known defect (see runSequence). */
  leaked = new Set<string>();
  /** Networks whose bridge lost a gateway by the known defect (see runSequence). */
  gatewayLost = new Set<string>();
  endpoints: { net: string; ep: string }[] = [];
  pick<T>(list: readonly T[], i: number): T | undefined {
    return list.length === 0 ? undefined : list[i % list.length];
  }
  /** Held addresses of pools that back a network (RequestAddress needs the subnet). */
  poolsWithNetwork(): Pool[] {
    const used = new Set(this.networks.flatMap((n) => n.pools));
    return this.pools.filter((p) => used.has(p.id));
  }
}

const pick = <T>(list: readonly T[], i: number): T => list[i % list.length]!;

/** 200, a clean 4xx, or the designed 500 not-found of the connectivity calls. */
function assertAcceptable(method: string, body: unknown, reply: Reply): void {
  const what = `${method} ${JSON.stringify(body)}`;
  if (reply.status === 200) {
    assert.ok(isObject(reply.json), `${what} → 200 without a JSON object: ${reply.raw}`);
    return;
  }
  if (reply.status === 500 && NO_404.has(method)) {
    assert.equal(assertErr(reply, what, [500]), 'KURYR_ERR_NOT_FOUND', `${what} → ${reply.raw}`);
    return;
  }
  assertErr(reply, what);
}

/** Calls that must change nothing when sent again right after a 200 (same reply, same state). */
function idempotent(op: Op): boolean {
  if (op.k === 'requestPool') return V4_POOLS[op.pool % V4_POOLS.length] !== '' && !op.v6;
  if (op.k === 'requestAddress') return op.mac !== null;
  // A second ReleasePool of one PoolID is another Docker network's (same CIDR) as far as the plugin can tell.
  if (op.k === 'releasePool') return false;
  return true;
}

async function runSequence(
  s: FuzzServer,
  seq: Sequence,
  counts: { requests: number; knownLeaks: number; knownGatewayLosses: number; statuses: Map<string, number> },
): Promise<Set<string>> {
  const m = new Model();
  const call = async (method: string, body: unknown): Promise<Reply> => {
    counts.requests++;
    const reply = await s.call(method, body);
    assertAcceptable(method, body, reply);
    const key = `${method.split('.')[1]} ${reply.status}`;
    counts.statuses.set(key, (counts.statuses.get(key) ?? 0) + 1);
    return reply;
  };

  // The prologue: up to two networks with joined endpoints, as `docker network create` + `docker run` make them.
  let mac = 0;
  for (const [i, spec] of seq.prologue.entries()) {
    const steps: Op[] = [{ k: 'requestPool', pool: spec.pool4, v6: false, sub: false }];
    if (spec.pool6 !== null) steps.push({ k: 'requestPool', pool: spec.pool6, v6: true, sub: false });
    for (const step of steps) {
      const sent = request(step, seq, m)!;
      const reply = await call(sent.method, sent.body);
      if (reply.status !== 200) continue;
      learn(step, sent.body, reply, m);
      await call('IpamDriver.RequestAddress', {
        PoolID: (reply.json as { PoolID: string }).PoolID,
        Address: '',
        Options: GATEWAY,
      });
    }
    const pools = m.pools.slice(-steps.length);
    const v4 = pools.find((p) => p.version === 4);
    const v6 = pools.find((p) => p.version === 6);
    const datum = (p: Pool) => ({ AddressSpace: 'x', Pool: p.cidr, Gateway: '' });
    const create = {
      NetworkID: seq.nets[i]!,
      Options: { 'com.docker.network.enable_ipv6': v6 !== undefined, 'com.docker.network.generic': {} },
      IPv4Data: v4 === undefined ? [] : [datum(v4)],
      IPv6Data: v6 === undefined ? [] : [datum(v6)],
    };
    const created = await call('NetworkDriver.CreateNetwork', create);
    if (created.status !== 200) continue;
    learn({ k: 'createNetwork', net: i, pool4: 0, pool6: null }, create, created, m);
    for (let e = 0; e < spec.endpoints; e++) {
      const ep = seq.eps[(i * 2 + e) % seq.eps.length]!;
      const macAddress = `02:42:0b:00:00:${(mac++).toString(16).padStart(2, '0')}`;
      const addresses: string[] = [];
      for (const p of [v4, v6]) {
        if (p === undefined) continue;
        const body = { PoolID: p.id, Address: '', Options: { [MAC]: macAddress } };
        const r = await call('IpamDriver.RequestAddress', body);
        if (r.status !== 200) continue;
        learn({ k: 'requestAddress', pool: 0, mac: 0, explicit: null }, body, r, m);
        addresses.push(String((r.json as { Address: string }).Address));
      }
      const ids = { NetworkID: seq.nets[i]!, EndpointID: ep };
      const v6Address = addresses.find((a) => a.includes(':')) ?? '';
      const endpoint = {
        ...ids,
        Interface: {
          Address: addresses.find((a) => !a.includes(':')) ?? '',
          AddressIPv6: v6Address,
          MacAddress: macAddress,
        },
        Options: {},
      };
      const r = await call('NetworkDriver.CreateEndpoint', endpoint);
      if (r.status !== 200) continue;
      learn({ k: 'createEndpoint', net: 0, ep: 0, addr: 0, addr6: null, mac: 0 }, endpoint, r, m);
      const sandbox = { [EXPOSED]: [{ Proto: 6, Port: 80 + e }] };
      await call('NetworkDriver.Join', { ...ids, SandboxKey: '/var/run/docker/netns/0123456789ab', Options: sandbox });
      if (spec.program) await call('NetworkDriver.ProgramExternalConnectivity', { ...ids, Options: sandbox });
    }
  }

  for (const { op, repeat } of seq.ops) {
    const sent = request(op, seq, m);
    if (sent === undefined) continue;
    const before = op.k === 'unknown' ? await s.snapshot() : undefined;
    const first = await call(sent.method, sent.body);
    if (op.k === 'unknown') {
      const answer = first.status;
      if (op.op === 'releaseAddress') assert.ok(answer === 200 || answer === 404, `${sent.method} → ${first.raw}`);
      else assert.equal(answer, 200, `${sent.method} of an unknown ID → ${first.raw}`);
      assert.deepEqual(await s.snapshot(), before, `${sent.method} of an unknown ID changed the state`);
    }
    if (first.status === 200) learn(op, sent.body, first, m);
    if (repeat && first.status === 200) {
      const afterFirst = await s.snapshot();
      const second = await call(sent.method, sent.body);
      if (second.status === 200) learn(op, sent.body, second, m);
      if (idempotent(op)) {
        assert.equal(second.status, 200, `${sent.method} sent twice: ${second.raw}`);
        assert.deepEqual(second.json, first.json, `${sent.method} sent twice answers differently`);
        assert.deepEqual(await s.snapshot(), afterFirst, `${sent.method} sent twice changed the state again`);
      }
    }
    assert.deepEqual(s.host.violations, []);
    // Known defect (reported, not fixed here: src/driver/network.ts removeLeftoverPorts): DeleteNetwork deletes a
    // leftover port of ours without its exposed-ports security group, which is orphaned. Any other orphan fails.
    for (const group of await orphanGroups(s)) {
      if (m.leaked.has(group)) continue;
      assert.equal(op.k, 'deleteNetwork', `${sent.method} orphaned security group ${group}`);
      m.leaked.add(group);
      counts.knownLeaks++;
    }
    // Known defect (reported, not fixed here: src/driver/network.ts): CreateNetwork of an existing Docker network
    // with another pool adds a subnet and hands the agent only the planned subnets' gateways, so the bridge drops
    // the gateway of the subnet already in use.
    for (const network of await bridgesMissingGateways(s)) {
      if (m.gatewayLost.has(network)) continue;
      assert.equal(op.k, 'createNetwork', `${sent.method} left bridge ${network} without a gateway of its subnets`);
      m.gatewayLost.add(network);
      counts.knownGatewayLosses++;
    }
  }

  // Teardown in Docker's order: endpoints, addresses, pools, networks.
  for (const net of seq.nets) {
    for (const ep of seq.eps) {
      const ids = { NetworkID: net, EndpointID: ep };
      await call('NetworkDriver.RevokeExternalConnectivity', ids);
      await call('NetworkDriver.Leave', ids);
      await call('NetworkDriver.DeleteEndpoint', ids);
    }
  }
  for (const h of m.held) {
    await call('IpamDriver.ReleaseAddress', { PoolID: h.poolId, Address: h.address.split('/')[0] });
  }
  // Once per grant still held (a resent RequestPool counts: it is a grant Docker would never give back).
  for (const p of m.pools) {
    for (let i = Math.max(1, m.grants.get(p.id) ?? 0); i > 0; i--)
      await call('IpamDriver.ReleasePool', { PoolID: p.id });
  }
  for (const group of await orphanGroups(s)) assert.ok(m.leaked.has(group), `the teardown orphaned group ${group}`);
  for (const net of seq.nets) await call('NetworkDriver.DeleteNetwork', { NetworkID: net });
  for (const p of m.pools) await call('IpamDriver.ReleasePool', { PoolID: p.id });
  // The same known defect, reached through the teardown: a port whose address was never handed out by our IPAM
  // (CreateEndpoint made it) is a leftover for DeleteNetwork.
  for (const group of await orphanGroups(s)) {
    if (m.leaked.has(group)) continue;
    m.leaked.add(group);
    counts.knownLeaks++;
  }
  return m.leaked;
}

/** Neutron networks whose bridge lacks the gateway address of one of their subnets. */
async function bridgesMissingGateways(s: FuzzServer): Promise<string[]> {
  const subnets = await s.env.neutron.listSubnets();
  const out: string[] = [];
  for (const [networkId, spec] of s.env.agent.networks) {
    const held = new Set(spec.gateways.map((g) => g.address));
    const wanted = subnets.filter((x) => x.network_id === networkId && x.gateway_ip !== null);
    if (wanted.some((x) => !held.has(x.gateway_ip!))) out.push(networkId);
  }
  return out;
}

/** IDs of exposed-ports security groups (`<port id>-exposed_ports`) whose port is gone. */
async function orphanGroups(s: FuzzServer): Promise<string[]> {
  const [groups, ports] = await Promise.all([s.env.neutron.listSecurityGroups(), s.env.neutron.listPorts()]);
  const portIds = new Set(ports.map((p) => p.id));
  return groups
    .filter((g) => g.name.endsWith('-exposed_ports') && !portIds.has(g.name.slice(0, -'-exposed_ports'.length)))
    .map((g) => g.id);
}

/** The call an operation makes in the current model; undefined when it needs something not handed out yet. */
function request(op: Op, seq: Sequence, m: Model): { method: string; body: Record<string, unknown> } | undefined {
  switch (op.k) {
    case 'requestPool': {
      const pool = op.v6 ? pick(V6_POOLS, op.pool) : pick(V4_POOLS, op.pool);
      const sub = op.sub && pool !== '' ? pool.replace(/\/(\d+)$/, (_, n: string) => `/${Number(n) + 1}`) : '';
      return {
        method: 'IpamDriver.RequestPool',
        body: { AddressSpace: 'no_address_space', Pool: pool, SubPool: sub, Options: {}, V6: op.v6 },
      };
    }
    case 'gateway': {
      const pool = m.pick(m.pools, op.pool);
      if (pool === undefined) return undefined;
      return { method: 'IpamDriver.RequestAddress', body: { PoolID: pool.id, Address: '', Options: GATEWAY } };
    }
    case 'createNetwork': {
      const v4 = m.pick(
        m.pools.filter((p) => p.version === 4),
        op.pool4,
      );
      const v6 =
        op.pool6 === null
          ? undefined
          : m.pick(
              m.pools.filter((p) => p.version === 6),
              op.pool6,
            );
      const datum = (p: Pool) => ({ AddressSpace: 'x', Pool: p.cidr, Gateway: '' });
      return {
        method: 'NetworkDriver.CreateNetwork',
        body: {
          NetworkID: pick(seq.nets, op.net),
          Options: { 'com.docker.network.enable_ipv6': v6 !== undefined, 'com.docker.network.generic': {} },
          IPv4Data: v4 === undefined ? [] : [datum(v4)],
          IPv6Data: v6 === undefined ? [] : [datum(v6)],
        },
      };
    }
    case 'requestAddress': {
      const pool =
        op.pool % 4 === 0
          ? m.pick(m.pools, op.pool)
          : (m.pick(m.poolsWithNetwork(), op.pool) ?? m.pick(m.pools, op.pool));
      if (pool === undefined) return undefined;
      const [net = ''] = pool.cidr.split('/');
      const address =
        op.explicit === null
          ? ''
          : pool.version === 4
            ? net.replace(/\d+$/, String(op.explicit))
            : `${net}${op.explicit}`;
      return {
        method: 'IpamDriver.RequestAddress',
        body: { PoolID: pool.id, Address: address, Options: op.mac === null ? null : { [MAC]: pick(MACS, op.mac) } },
      };
    }
    case 'createEndpoint': {
      const a4 = m.pick(m.held, op.addr);
      if (a4 === undefined) return undefined;
      const network = m.networks.find((n) => n.pools.includes(a4.poolId));
      const sameNetwork = m.held.filter((h) => h !== a4 && network?.pools.includes(h.poolId));
      const a6 = op.addr6 === null ? undefined : m.pick(op.addr6 % 4 === 0 ? m.held : sameNetwork, op.addr6);
      return {
        method: 'NetworkDriver.CreateEndpoint',
        body: {
          NetworkID: network !== undefined && op.net % 4 !== 0 ? network.id : pick(seq.nets, op.net),
          EndpointID: pick(seq.eps, op.ep),
          Interface: { Address: a4.address, AddressIPv6: a6?.address ?? '', MacAddress: pick(MACS, op.mac) },
          Options: {},
        },
      };
    }
    case 'join':
    case 'leave':
    case 'deleteEndpoint':
    case 'operInfo':
    case 'program':
    case 'revoke': {
      const known = op.ep % 4 === 0 ? undefined : m.pick(m.endpoints, op.ep);
      const ids =
        known === undefined
          ? { NetworkID: pick(seq.nets, op.net), EndpointID: pick(seq.eps, op.ep) }
          : { NetworkID: known.net, EndpointID: known.ep };
      const sandbox = { [EXPOSED]: op.ports };
      const calls = {
        join: ['NetworkDriver.Join', { ...ids, SandboxKey: '/var/run/docker/netns/0123456789ab', Options: sandbox }],
        leave: ['NetworkDriver.Leave', ids],
        deleteEndpoint: ['NetworkDriver.DeleteEndpoint', ids],
        operInfo: ['NetworkDriver.EndpointOperInfo', ids],
        program: ['NetworkDriver.ProgramExternalConnectivity', { ...ids, Options: sandbox }],
        revoke: ['NetworkDriver.RevokeExternalConnectivity', ids],
      } as const;
      const [method, body] = calls[op.k];
      return { method, body };
    }
    case 'releaseAddress': {
      const h = m.pick(m.held, op.addr);
      if (h === undefined) return undefined;
      return { method: 'IpamDriver.ReleaseAddress', body: { PoolID: h.poolId, Address: h.address.split('/')[0] } };
    }
    case 'releasePool': {
      const p = m.pick(m.pools, op.pool);
      if (p === undefined) return undefined;
      return { method: 'IpamDriver.ReleasePool', body: { PoolID: p.id } };
    }
    case 'deleteNetwork':
      return { method: 'NetworkDriver.DeleteNetwork', body: { NetworkID: pick(seq.nets, op.net) } };
    case 'unknown': {
      // Unknown means unknown: an ID of the bank (e.g. after shrinking to zeros) is skipped.
      if (seq.nets.includes(op.id) || seq.eps.includes(op.id)) return undefined;
      const ids = { NetworkID: op.id, EndpointID: op.id };
      const calls: Record<UnknownOp, [string, Record<string, unknown>]> = {
        deleteEndpoint: ['NetworkDriver.DeleteEndpoint', ids],
        leave: ['NetworkDriver.Leave', ids],
        deleteNetwork: ['NetworkDriver.DeleteNetwork', { NetworkID: op.id }],
        freeNetwork: ['NetworkDriver.FreeNetwork', { NetworkID: op.id }],
        releasePool: ['IpamDriver.ReleasePool', { PoolID: `${op.uuid}@10.50.0.0/24` }],
        releaseAddress: ['IpamDriver.ReleaseAddress', { PoolID: op.uuid, Address: '10.50.0.5' }],
        revoke: ['NetworkDriver.RevokeExternalConnectivity', ids],
        operInfo: ['NetworkDriver.EndpointOperInfo', ids],
      };
      const [method, body] = calls[op.op];
      return { method, body };
    }
  }
}

/** Records what a 200 reply handed out. */
function learn(op: Op, body: Record<string, unknown>, reply: Reply, m: Model): void {
  const json = reply.json as Record<string, unknown>;
  if (op.k === 'requestPool') {
    const id = String(json.PoolID);
    if (!m.pools.some((p) => p.id === id)) m.pools.push({ id, cidr: String(json.Pool), version: op.v6 ? 6 : 4 });
    m.grants.set(id, (m.grants.get(id) ?? 0) + 1);
  } else if (op.k === 'releasePool') {
    const id = String(body.PoolID);
    m.grants.set(id, Math.max(0, (m.grants.get(id) ?? 0) - 1));
  } else if (op.k === 'requestAddress' && op.mac !== null) {
    const h = { poolId: String(body.PoolID), address: String(json.Address) };
    if (!m.held.some((x) => x.poolId === h.poolId && x.address === h.address)) m.held.push(h);
  } else if (op.k === 'createNetwork') {
    const pools = [...(body.IPv4Data as { Pool: string }[]), ...(body.IPv6Data as { Pool: string }[])].map(
      (d) => m.pools.find((p) => p.cidr === d.Pool)?.id ?? '',
    );
    const id = String(body.NetworkID);
    if (!m.networks.some((n) => n.id === id)) m.networks.push({ id, pools });
  } else if (op.k === 'createEndpoint') {
    const e = { net: String(body.NetworkID), ep: String(body.EndpointID) };
    if (!m.endpoints.some((x) => x.ep === e.ep)) m.endpoints.push(e);
  } else if (op.k === 'requestAddress' && op.explicit !== null) {
    // An address asked without a MAC is an aux address (no port) or the takeover of a free port: released too.
    m.held.push({ poolId: String(body.PoolID), address: String(json.Address) });
  }
}

describe('fuzz: valid but hostile call sequences', () => {
  test('random interleavings: 200 or a clean 4xx, idempotent retries, unknown IDs harmless, nothing left', async (t) => {
    let n = 0;
    const counts = { requests: 0, knownLeaks: 0, knownGatewayLosses: 0, statuses: new Map<string, number>() };
    await fc.assert(
      fc.asyncProperty(sequenceArb, async (seq) => {
        n++;
        const s = await startFuzzServer();
        try {
          const initial = await s.snapshot();
          const leaked = await runSequence(s, seq, counts);
          const after = (await s.snapshot()) as { store: Record<string, { id: string }[]> };
          const start = initial as typeof after;
          for (const kind of ['networks', 'subnets', 'ports'] as const) {
            assert.deepEqual(after.store[kind], [], `${kind} left after the teardown`);
          }
          after.store.securityGroups = after.store.securityGroups!.filter((g) => !leaked.has(g.id));
          assert.deepEqual(after.store.securityGroups, start.store.securityGroups, 'security groups left');
          assert.deepEqual(after.store.subnetpools, start.store.subnetpools, 'subnet pools left (or changed)');
          assert.deepEqual(after, initial, 'state left after the teardown');
          assert.deepEqual(s.host.violations, []);
          await s.assertAlive();
        } finally {
          await s.close();
        }
      }),
      // Each run starts from a fresh server, so shrinking is sound here: a failure is reported minimal.
      { ...fcParams(25), endOnFailure: false },
    );
    t.diagnostic(`${n} generated sequences, ${counts.requests} requests`);
    t.diagnostic(
      `known defects hit: ${counts.knownLeaks} exposed-ports group(s) orphaned (leftover port deleted by DeleteNetwork), ` +
        `${counts.knownGatewayLosses} bridge(s) without a subnet's gateway (CreateNetwork again with another pool)`,
    );
    const byStatus = [...counts.statuses].sort(([a], [b]) => a.localeCompare(b));
    t.diagnostic(`replies (method status count): ${byStatus.map(([k, c]) => `${k} ${c}`).join(', ')}`);
    // The sequences must reach the interesting states, not only bounce off 404s.
    for (const method of ['CreateNetwork', 'CreateEndpoint', 'Join', 'ProgramExternalConnectivity', 'ReleaseAddress']) {
      assert.ok((counts.statuses.get(`${method} 200`) ?? 0) > 0, `no successful ${method} in ${n} sequences`);
    }
  });
});
