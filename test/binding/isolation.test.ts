/**
 * Network isolation against the real kernel, in the host namespace (root), with this host's br_netfilter
 * setting: two agent networks (A with containers a1 and a2, B with b1). Within a network everything works,
 * over IPv4 and IPv6; across networks nothing does; a container reaches its own gateway and no other host
 * address. The rules repair themselves, go with their network, and no other nftables table changes.
 *
 * The table is a unique one per run (`kx_iso_<random>`), so that a plugin running on this host (whose
 * `kuryr_ts` table this test must not touch, let alone delete by hand) is unaffected.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { NftIsolation } from '../../src/binding/isolation.ts';
import { type Check, expectMatrix, hostSysctl, isolationSkipReason, Lab, otherTables } from './isolation-lab.ts';
import { findPing, shortSuffix } from './kernel.ts';

const run = promisify(execFile);
const skip = await isolationSkipReason();
const ping = skip ? [] : ((await findPing()) ?? []);

describe('network isolation in the host namespace (real kernel)', { skip }, () => {
  const table = `kx_iso_${shortSuffix()}`;
  const lab = new Lab({ table });
  let othersBefore = '';
  /** Bystander: a table of someone else holding the same set names and our bridge names. */
  const bystander = `kx_bystander_${lab.suffix}`;
  let bystanderBefore = '';

  const expect = (reachable: Check[], unreachable: Check[], when: string) =>
    expectMatrix(lab, ping, reachable, unreachable, when);

  before(async () => {
    othersBefore = await otherTables(table);
    await lab.setup();
    // created after the first snapshot (it is ours to delete), compared on its own
    const b = lab.a.bridge;
    const script = [
      `add table inet ${bystander}`,
      `add set inet ${bystander} networks { type ifname; elements = { "${b}" }; }`,
      `add chain inet ${bystander} c`,
      `add rule inet ${bystander} c iifname @networks accept`,
    ].join('\n');
    await nftScript(script);
    bystanderBefore = (await run('nft', ['-s', '-j', 'list', 'table', 'inet', bystander])).stdout;
  });

  after(async () => {
    const problems = await lab.cleanup();
    await run('nft', ['delete', 'table', 'inet', bystander]).catch(() => {});
    assert.deepEqual(problems, [], 'cleanup failed');
    assert.equal(await lab.tableExists(), false, 'isolation table left behind');
    assert.equal(await otherTables(table), othersBefore, 'an nftables table the test does not own changed');
    assert.deepEqual(await lab.namesInSharedTable(), [], "the test's names leaked into the shared kuryr_ts table");
  });

  test('containers reach their own network and gateway, nothing else; the host reaches them', async () => {
    const { a1, a2, b1, a, b, other } = lab;
    const llA = await lab.linkLocal(a.bridge);
    const llOther = await lab.linkLocal(other.dev);
    await lab.staticNeighbour(a1, llOther);
    await expect(
      [
        [a1, a2.v4, 4],
        [a2, a1.v4, 4],
        [a1, a2.v6, 6],
        [a2, a1.v6, 6],
        [a1, a.gw4, 4],
        [a1, a.gw6, 6],
        [b1, b.gw4, 4],
        [b1, b.gw6, 6],
        [a1, `${llA}%eth0`, 6],
        ['host', a1.v4, 4],
        ['host', b1.v6, 6],
      ],
      [
        [a1, b1.v4, 4],
        [a1, b1.v6, 6],
        [b1, a1.v4, 4],
        [b1, a2.v6, 6],
        [a1, b.gw4, 4],
        [a1, b.gw6, 6],
        [b1, a.gw4, 4],
        [a1, other.v4, 4],
        [a1, other.v6, 6],
        [b1, other.v4, 4],
        [a1, other.dummy4, 4],
        [a1, other.dummy6, 6],
        [a1, `${llOther}%eth0`, 6],
      ],
      `isolated (bridge-nf-call-iptables=${hostSysctl('net.bridge.bridge-nf-call-iptables')})`,
    );
  });

  test('a lost ruleset opens the networks; ensureNetwork repairs it (table, rule, element)', async () => {
    const { a1, b1, a, b, other } = lab;
    // Control: without the table, the same probes get through, so the rules are what blocks them.
    await run('nft', ['delete', 'table', 'inet', table]);
    const forwarding = hostSysctl('net.ipv4.ip_forward') === '1';
    const open: Check[] = [
      [a1, other.v4, 4],
      [a1, other.v6, 6],
      [a1, b.gw4, 4],
      [a1, other.dummy4, 4],
    ];
    if (forwarding) open.push([a1, b1.v4, 4]);
    await expect(open, [], 'table deleted by hand');

    // A restart re-runs ensureNetwork for every network: A first, then B.
    await lab.ensure(a);
    await expect(
      [[a1, a.gw4, 4]],
      [
        [a1, b1.v4, 4],
        [a1, other.v4, 4],
        [a1, b.gw6, 6],
      ],
      'A repaired',
    );
    await lab.ensure(b);
    await expect(
      [[b1, b.gw6, 6]],
      [
        [b1, a1.v4, 4],
        [b1, other.v6, 6],
      ],
      'B repaired',
    );

    // A rule deleted, an element deleted: both come back.
    const listed = JSON.parse(await lab.tableJson()) as {
      nftables: Array<{ rule?: { chain: string; handle: number } }>;
    };
    const rule = listed.nftables.find((i) => i.rule?.chain === 'container_to_host')?.rule;
    assert.ok(rule);
    await run('nft', ['delete', 'rule', 'inet', table, 'container_to_host', 'handle', String(rule.handle)]);
    await run('nft', ['delete', 'element', 'inet', table, 'networks', `{ "${a.bridge}" }`]);
    const damaged = await lab.tableJson();
    await lab.ensure(a);
    const repaired = await lab.tableJson();
    assert.notEqual(repaired, damaged);
    assert.match(repaired, new RegExp(`"networks".*"${a.bridge}"`, 's'));
    await expect(
      [[a1, a.gw4, 4]],
      [
        [a1, b1.v4, 4],
        [a1, other.dummy4, 4],
      ],
      'rule and element repaired',
    );

    // Idempotent: ensuring again rewrites nothing (same rule handles, so counters are not reset either).
    const before = await lab.tableJson();
    await lab.ensure(a);
    await lab.ensure(b);
    assert.equal(await lab.tableJson(), before);
  });

  test('policy switches apply on ensureNetwork: host access, no isolation, neither (only masquerading left)', async () => {
    const { a1, b1, a, b, other } = lab;
    const withPolicy = async (isolateNetworks: boolean, allowHostAccess: boolean) => {
      const isolation = new NftIsolation({ table, isolateNetworks, allowHostAccess });
      for (const n of [a, b]) {
        await isolation.ensureNetwork(n.bridge, [
          { address: n.gw4, prefixLength: 24 },
          { address: n.gw6, prefixLength: 64 },
        ]);
      }
    };
    await withPolicy(true, true);
    await expect(
      [
        [a1, other.v4, 4],
        [a1, b.gw4, 4],
        [a1, other.dummy6, 6],
      ],
      [[a1, b1.v4, 4]],
      'allow_host_access',
    );
    await withPolicy(false, false);
    const reach: Check[] = hostSysctl('net.ipv4.ip_forward') === '1' ? [[a1, b1.v4, 4]] : [];
    await expect(
      reach,
      [
        [a1, other.v4, 4],
        [a1, b.gw4, 4],
        [b1, other.dummy4, 4],
      ],
      'isolate_networks off',
    );
    await withPolicy(false, true);
    // Nothing to isolate: only outbound access (masquerading) keeps the table.
    const sets = JSON.parse(await lab.tableJson()) as { nftables: { set?: { name: string; elem?: unknown[] } }[] };
    const filled = sets.nftables.flatMap((i) => (i.set?.elem?.length ? [i.set.name] : [])).sort();
    assert.deepEqual(filled, ['bridges', 'masquerading'], 'only outbound access is left to enforce');
    await lab.ensure(a);
    await lab.ensure(b);
    await expect(
      [[a1, a.gw6, 6]],
      [
        [a1, b1.v4, 4],
        [a1, other.v4, 4],
      ],
      'default policy again',
    );
  });

  test('removeNetwork removes only its network; the other stays isolated; the last one takes the table', async () => {
    const { a1, a2, a, b, other } = lab;
    await lab.agent.removeNetwork(b.networkId);
    const json = await lab.tableJson();
    assert.ok(json.includes(a.bridge), 'network A keeps its elements');
    assert.ok(!json.includes(b.bridge), 'network B has no element left');
    await expect(
      [
        [a1, a2.v4, 4],
        [a1, a2.v6, 6],
        [a1, a.gw4, 4],
      ],
      [
        [a1, other.v4, 4],
        [a1, other.v6, 6],
        [a1, other.dummy4, 4],
      ],
      'after B was removed',
    );
    await lab.agent.removeNetwork(b.networkId); // again: nothing to do
    await lab.agent.removeNetwork(a.networkId);
    assert.equal(await lab.tableExists(), false, 'the last network took the table with it');
    assert.equal(
      (await run('nft', ['-s', '-j', 'list', 'table', 'inet', bystander])).stdout,
      bystanderBefore,
      "another table's set holding our bridge names was not touched",
    );
  });
});

async function nftScript(script: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = execFile('nft', ['-f', '-'], { timeout: 10_000 }, (err) => (err ? reject(err) : resolve()));
    child.stdin?.end(`${script}\n`);
  });
}
