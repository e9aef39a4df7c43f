/**
 * Published ports' nftables transactions (binding/publish.ts) with a fake `nft`: what is written for a first
 * port, a second, an idempotent retry and the last removal; ports taken by another endpoint or a host process
 * are refused before anything is written; `-P` picks a free port; `ss` output is read right. The kernel side is
 * test/e2e/embedded-publish.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CommandRunner } from '../../src/binding/exec.ts';
import { NftIsolation } from '../../src/binding/isolation.ts';
import {
  type HostListener,
  NftPublisher,
  type PortMapping,
  PortTakenError,
  parseSs,
  type PublishedPort,
} from '../../src/binding/publish.ts';

const EP1 = 'a'.repeat(64);
const EP2 = 'b'.repeat(64);

/** Table JSON as `nft -j list table inet kuryr_ts` prints it, for these published ports. */
function tableJson(ports: PublishedPort[], extra: object[] = []): string {
  const table = 'kuryr_ts';
  const rules = (chain: string, comments: string[]) =>
    comments.map((comment) => ({ rule: { family: 'inet', table, chain, comment } }));
  const elem = (p: PublishedPort) => [
    {
      elem: {
        val: { concat: p.hostIp === undefined ? [p.proto, p.hostPort] : [p.hostIp, p.proto, p.hostPort] },
        comment: `${p.endpointId} ${p.bridge}`,
      },
    },
    { concat: [p.containerIp, p.containerPort] },
  ];
  const bridges = [...new Set(ports.map((p) => p.bridge))];
  return JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6' } },
      { table: { family: 'inet', name: table } },
      { map: { family: 'inet', table, name: 'publish_addr4', elem: ports.filter((p) => p.hostIp).map(elem) } },
      { map: { family: 'inet', table, name: 'publish_any4', elem: ports.filter((p) => !p.hostIp).map(elem) } },
      { set: { family: 'inet', table, name: 'publish_bridges', elem: bridges } },
      { set: { family: 'inet', table, name: 'publish_hairpin', elem: bridges.map((b) => ({ concat: [b, b] })) } },
      {
        set: {
          family: 'inet',
          table,
          name: 'publish_self',
          elem: [...new Set(ports.map((p) => p.containerIp))].map((a) => ({ concat: [a, a] })),
        },
      },
      ...['publish_prerouting', 'publish_output', 'publish_postrouting', 'publish_input'].map((name) => ({
        chain: { family: 'inet', table, name },
      })),
      ...rules('publish_prerouting', ['published on this address', 'published on every address']),
      ...rules('publish_output', ['published on this address', 'published on every address']),
      ...rules('publish_postrouting', ['from the host itself', 'hairpin within a network', 'a container to itself']),
      ...rules('publish_input', ['published reply', 'loopback from a container']),
      ...extra,
    ],
  });
}

interface Fake {
  exec: CommandRunner;
  scripts: string[];
  calls: string[][];
  table: string | undefined;
}

function fakeNft(table: string | undefined): Fake {
  const fake: Fake = {
    scripts: [],
    calls: [],
    table,
    exec: async (file, args, { input }) => {
      fake.calls.push([file, ...args]);
      if (args[0] === '-j') {
        if (fake.table === undefined) {
          throw Object.assign(new Error('exit 1'), { code: 1, stderr: 'Error: No such file or directory' });
        }
        return { stdout: fake.table, stderr: '' };
      }
      if (args[0] === '-f') {
        fake.scripts.push(input ?? '');
        return { stdout: '', stderr: '' };
      }
      throw new Error(`unexpected ${file} ${args.join(' ')}`);
    },
  };
  return fake;
}

function publisher(fake: Fake, listeners: HostListener[] = [], localnet: string[] = []) {
  return new NftPublisher({
    exec: fake.exec,
    listeners: async () => listeners,
    ephemeralRange: async () => [40000, 40009],
    setHairpin: async () => {},
    setRouteLocalnet: async (bridge, on) => {
      localnet.push(`${bridge}=${on ? 1 : 0}`);
    },
  });
}

const tcp = (hostPort: number, containerPort = 80, hostIp?: string): PortMapping => ({
  proto: 'tcp',
  containerPort,
  hostIp,
  hostPort,
  hostPortEnd: hostPort,
});

const published = (over: Partial<PublishedPort>): PublishedPort => ({
  endpointId: EP1,
  bridge: 'brq11111111-11',
  proto: 'tcp',
  hostPort: 8080,
  containerIp: '10.9.0.5',
  containerPort: 80,
  ...over,
});

describe('NftPublisher transactions', () => {
  test('a first port creates the table, maps, chains and one element; route_localnet goes on its bridge', async () => {
    const fake = fakeNft(undefined);
    const localnet: string[] = [];
    const result = await publisher(fake, [], localnet).publish({
      endpointId: EP1,
      bridge: 'brq11111111-11',
      containerIp: '10.9.0.5',
      mappings: [
        tcp(8080),
        { proto: 'sctp', containerPort: 9, hostIp: '192.0.2.7', hostPort: 9000, hostPortEnd: 9000 },
      ],
    });
    assert.deepEqual(
      result.map((p) => [p.proto, p.hostIp, p.hostPort]),
      [
        ['tcp', undefined, 8080],
        ['sctp', '192.0.2.7', 9000],
      ],
    );
    assert.equal(fake.scripts.length, 1);
    const s = fake.scripts[0]!;
    assert.match(s, /add table inet kuryr_ts/);
    assert.match(s, /add chain inet kuryr_ts publish_prerouting \{ type nat hook prerouting/);
    assert.match(s, /add chain inet kuryr_ts publish_output \{ type nat hook output/);
    assert.match(s, /dnat ip to meta l4proto \. th dport map @publish_any4/);
    assert.match(
      s,
      new RegExp(
        `add element inet kuryr_ts publish_any4 \\{ tcp \\. 8080 comment "${EP1} brq11111111-11" : 10\\.9\\.0\\.5 \\. 80 \\}`,
      ),
    );
    assert.match(s, /add element inet kuryr_ts publish_addr4 \{ 192\.0\.2\.7 \. sctp \. 9000 comment/);
    assert.match(s, /add element inet kuryr_ts publish_bridges \{ "brq11111111-11" \}/);
    assert.match(s, /add element inet kuryr_ts publish_hairpin \{ "brq11111111-11" \. "brq11111111-11" \}/);
    assert.match(s, /add element inet kuryr_ts publish_self \{ 10\.9\.0\.5 \. 10\.9\.0\.5 \}/);
    assert.deepEqual(localnet, ['brq11111111-11=1']);
  });

  test("with the process's nft session, publish and unpublish start no nft: a list, then one transaction line each", async () => {
    const fake = fakeNft(undefined);
    const sent: { lines: readonly string[]; list: boolean }[] = [];
    let table: string | undefined;
    const session = {
      run: async (lines: readonly string[], options: { list?: boolean } = {}) => {
        sent.push({ lines, list: options.list === true });
        if (options.list !== true) return '';
        if (table === undefined) throw { code: 1, stderr: 'Error: No such file or directory\n' };
        return table;
      },
    };
    const p = new NftPublisher({
      exec: fake.exec,
      session,
      listeners: async () => [],
      ephemeralRange: async () => [40000, 40009],
      setHairpin: async () => {},
      setRouteLocalnet: async () => {},
    });
    await p.publish({ endpointId: EP1, bridge: 'brq11111111-11', containerIp: '10.9.0.5', mappings: [tcp(8080)] });
    assert.deepEqual(
      sent.map((c) => c.list),
      [true, false],
    );
    assert.deepEqual(sent[0]!.lines, ['list table inet kuryr_ts']);
    const transaction = sent[1]!.lines;
    assert.equal(transaction[0], 'add table inet kuryr_ts', 'the transaction, one command per line');
    assert.ok(transaction.every((l) => !l.includes('\n') && l.trim() !== ''));
    assert.ok(transaction.some((l) => l.startsWith('add element inet kuryr_ts publish_any4 { tcp . 8080 ')));
    table = tableJson([published({})]);
    assert.equal((await p.unpublish(EP1)).length, 1);
    assert.deepEqual(sent.slice(2), [
      { lines: ['list table inet kuryr_ts'], list: true },
      { lines: ['delete table inet kuryr_ts'], list: false },
    ]);
    assert.deepEqual(fake.calls, [], 'no nft process');
  });

  test('the same request again changes nothing (Docker retries)', async () => {
    const fake = fakeNft(tableJson([published({})]));
    const result = await publisher(fake).publish({
      endpointId: EP1,
      bridge: 'brq11111111-11',
      containerIp: '10.9.0.5',
      mappings: [tcp(8080)],
    });
    assert.equal(result.length, 1);
    assert.deepEqual(fake.scripts, []);
  });

  test('a port another endpoint publishes is refused and nothing is written', async () => {
    const fake = fakeNft(tableJson([published({ endpointId: EP2 })]));
    const p = publisher(fake);
    const req = {
      endpointId: EP1,
      bridge: 'brq22222222-22',
      containerIp: '10.9.1.5',
      mappings: [tcp(8080, 80, '192.0.2.7')],
    };
    await assert.rejects(p.publish(req), (err: unknown) => {
      assert.ok(err instanceof PortTakenError);
      assert.match(err.message, /0\.0\.0\.0:8080\/tcp is already published by endpoint bbbbbbbbbbbb/);
      return true;
    });
    // Another protocol, or another port, is free.
    await p.publish({ ...req, mappings: [{ ...tcp(8080), proto: 'udp' }] });
    assert.equal(fake.scripts.length, 1);
  });

  test('a port a host process uses is refused; one bound to another address is not in the way', async () => {
    const fake = fakeNft(undefined);
    const listeners: HostListener[] = [
      { proto: 'tcp', port: 8080 },
      { proto: 'udp', address: '127.0.0.1', port: 53 },
    ];
    const p = publisher(fake, listeners);
    const base = { endpointId: EP1, bridge: 'brq11111111-11', containerIp: '10.9.0.5' };
    await assert.rejects(
      p.publish({ ...base, mappings: [tcp(8080, 80, '192.0.2.7')] }),
      /host process already uses 0\.0\.0\.0:8080\/tcp/,
    );
    const udp53 = (hostIp?: string): PortMapping => ({
      proto: 'udp',
      containerPort: 53,
      hostIp,
      hostPort: 53,
      hostPortEnd: 53,
    });
    await assert.rejects(p.publish({ ...base, mappings: [udp53()] }), /127\.0\.0\.1:53\/udp/);
    assert.deepEqual(fake.scripts, []);
    await p.publish({ ...base, mappings: [udp53('192.0.2.7')] });
    assert.equal(fake.scripts.length, 1);
  });

  test('host port 0 (-P) and ranges get a free port', async () => {
    const taken = [40000, 40001, 40002, 40003, 40004, 40005, 40006, 40007, 40008].map((hostPort) =>
      published({ endpointId: EP2, hostPort }),
    );
    const fake = fakeNft(tableJson(taken));
    const p = publisher(fake);
    const [any] = await p.publish({
      endpointId: EP1,
      bridge: 'brq11111111-11',
      containerIp: '10.9.0.5',
      mappings: [tcp(0)],
    });
    assert.equal(any?.hostPort, 40009);
    const [ranged] = await p.publish({
      endpointId: EP1,
      bridge: 'brq11111111-11',
      containerIp: '10.9.0.5',
      mappings: [{ ...tcp(40005), hostPortEnd: 40012 }],
    });
    assert.equal(ranged?.hostPort, 40009, 'first free port of the range');
    // A new port map for the endpoint replaces its old one: its own port is free for it.
    fake.table = tableJson([...taken, published({ hostPort: 40009 })]);
    const [moved] = await p.publish({
      endpointId: EP1,
      bridge: 'brq11111111-11',
      containerIp: '10.9.0.5',
      mappings: [tcp(0, 81)],
    });
    assert.equal(moved?.hostPort, 40009);
    assert.match(fake.scripts.at(-1)!, /delete element inet kuryr_ts publish_any4 \{ tcp \. 40009 \}\nadd element/);
    fake.table = tableJson([...taken, published({ endpointId: EP2, hostPort: 40009 })]);
    const before = fake.scripts.length;
    await assert.rejects(
      p.publish({ endpointId: EP1, bridge: 'brq11111111-11', containerIp: '10.9.0.5', mappings: [tcp(0, 81)] }),
      /no free host port for tcp in 40000-40009/,
    );
    assert.equal(fake.scripts.length, before);
  });

  test("unpublish removes the endpoint's elements; the last one takes the table, or only our chains", async () => {
    const two = [published({}), published({ endpointId: EP2, bridge: 'brq22222222-22', hostPort: 8081 })];
    const fake = fakeNft(tableJson(two));
    const localnet: string[] = [];
    const p = publisher(fake, [], localnet);
    const gone = await p.unpublish(EP1);
    assert.equal(gone.length, 1);
    assert.match(fake.scripts[0]!, /delete element inet kuryr_ts publish_any4 \{ tcp \. 8080 \}/);
    assert.match(fake.scripts[0]!, /delete element inet kuryr_ts publish_bridges \{ "brq11111111-11" \}/);
    assert.doesNotMatch(fake.scripts[0]!, /delete table/);
    assert.deepEqual(localnet, ['brq11111111-11=0']);

    fake.table = tableJson([two[1]!]);
    await p.unpublish(EP2);
    assert.equal(fake.scripts[1], 'delete table inet kuryr_ts\n');

    // Isolation's chains in the same table stay (a process that starts with that table).
    fake.table = tableJson([two[1]!], [{ chain: { family: 'inet', table: 'kuryr_ts', name: 'forward' } }]);
    await publisher(fake).unpublish(EP2);
    assert.doesNotMatch(fake.scripts[2]!, /delete table/);
    assert.match(fake.scripts[2]!, /delete chain inet kuryr_ts publish_prerouting/);
    assert.match(fake.scripts[2]!, /delete map inet kuryr_ts publish_any4/);
    assert.doesNotMatch(fake.scripts[2]!, /forward/);

    assert.deepEqual(await p.unpublish(EP1), [], 'nothing left: idempotent');
  });

  test('endpoints that publish nothing cost one read per process, then no nft at all', async () => {
    const fake = fakeNft(tableJson([published({ endpointId: EP2 })]));
    const p = publisher(fake);
    assert.deepEqual(await p.unpublish(EP1), []);
    assert.deepEqual(await p.unpublish(EP1), []);
    assert.equal(fake.calls.length, 1, 'one listing, then known');
    await p.publish({ endpointId: EP1, bridge: 'brq11111111-11', containerIp: '10.9.0.5', mappings: [tcp(9000)] });
    fake.table = tableJson([published({ endpointId: EP2 }), published({ hostPort: 9000 })]);
    assert.equal((await p.unpublish(EP1)).length, 1, 'what this process published is unpublished');
    assert.match(fake.scripts.at(-1)!, /delete element inet kuryr_ts publish_any4 \{ tcp \. 9000 \}/);
    const calls = fake.calls.length;
    assert.deepEqual(await p.unpublish(EP1), []);
    assert.equal(fake.calls.length, calls);
  });

  test('list reads back what the kernel holds', async () => {
    const ports = [published({}), published({ endpointId: EP2, hostIp: '192.0.2.7', proto: 'udp', hostPort: 53 })];
    const key = (p: PublishedPort) => `${p.endpointId}${p.hostPort}`;
    const sorted = (list: PublishedPort[]) => [...list].sort((a, b) => key(a).localeCompare(key(b)));
    assert.deepEqual(sorted(await publisher(fakeNft(tableJson(ports))).list()), sorted(ports));
  });

  test('bad input is refused before nft runs', async () => {
    const fake = fakeNft(undefined);
    const p = publisher(fake);
    const base = { endpointId: EP1, bridge: 'brq11111111-11', containerIp: '10.9.0.5', mappings: [tcp(80)] };
    await assert.rejects(p.publish({ ...base, endpointId: 'x; drop' }), /invalid endpoint ID/);
    await assert.rejects(p.publish({ ...base, containerIp: 'fd00::5' }), /IPv4 container address/);
    await assert.rejects(p.publish({ ...base, mappings: [tcp(70000)] }), /host port must be 1-65535/);
    await assert.rejects(p.publish({ ...base, mappings: [tcp(80, 80, 'fd00::1')] }), /only IPv4 host addresses/);
    await assert.rejects(p.publish({ ...base, bridge: 'br"x' }), /interface name|invalid/i);
    assert.deepEqual(fake.calls, []);
  });
});

describe('isolation and published ports share the table', () => {
  test("the last network's isolation leaves the table, and the publish chains in it, alone", async () => {
    const t = { family: 'inet', table: 'kuryr_ts' };
    const listing = (extra: object[]) =>
      JSON.stringify({
        nftables: [
          { set: { ...t, name: 'networks', elem: ['brqa'] } },
          { set: { ...t, name: 'same_network', elem: [{ concat: ['brqa', 'brqa'] }] } },
          ...['guarded', 'gateways4', 'gateways6'].map((name) => ({ set: { ...t, name } })),
          ...['forward', 'input', 'container_to_host'].map((name) => ({ chain: { ...t, name } })),
          ...extra,
        ],
      });
    const fake = fakeNft(listing([{ chain: { ...t, name: 'publish_prerouting' } }]));
    await new NftIsolation({ exec: fake.exec }).removeNetwork('brqa');
    assert.equal(fake.scripts.length, 1);
    assert.doesNotMatch(fake.scripts[0]!, /delete table/);
    assert.match(fake.scripts[0]!, /delete chain inet kuryr_ts forward\ndelete chain inet kuryr_ts input\n/);
    assert.match(fake.scripts[0]!, /delete set inet kuryr_ts networks/);
    assert.doesNotMatch(fake.scripts[0]!, /publish_/);
    // Without publish chains, the table goes as before.
    fake.table = listing([]);
    await new NftIsolation({ exec: fake.exec }).removeNetwork('brqa');
    assert.equal(fake.scripts[1], 'delete table inet kuryr_ts\n');
  });
});

describe('parseSs', () => {
  test('listeners of several protocols, wildcard and bound addresses', () => {
    const text = [
      'tcp   LISTEN 0      4096         0.0.0.0:8080      0.0.0.0:*',
      'tcp   LISTEN 0      511        127.0.0.1:3000      0.0.0.0:*',
      'tcp   LISTEN 0      4096            [::]:22           [::]:*',
      'udp   UNCONN 0      0      127.0.0.53%lo:53        0.0.0.0:*',
      'tcp   LISTEN 0      4096               *:9090            *:*',
      'tcp   LISTEN 0      10  [::ffff:10.0.0.1]:7000        [::]:*',
    ].join('\n');
    assert.deepEqual(parseSs(text), [
      { proto: 'tcp', port: 8080 },
      { proto: 'tcp', address: '127.0.0.1', port: 3000 },
      { proto: 'tcp', port: 22 },
      { proto: 'udp', address: '127.0.0.53', port: 53 },
      { proto: 'tcp', port: 9090 },
      { proto: 'tcp', address: '::ffff:10.0.0.1', port: 7000 },
    ]);
    assert.deepEqual(parseSs('LISTEN 0 128 0.0.0.0:5000 0.0.0.0:*', 'sctp'), [{ proto: 'sctp', port: 5000 }]);
  });
});
