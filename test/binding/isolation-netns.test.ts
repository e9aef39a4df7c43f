/**
 * Network isolation in a private network namespace that plays the host (root, real kernel): there the
 * br_netfilter switches and the iptables FORWARD policy can be set both ways without touching this host's
 * (they are per namespace), IPv6 forwarding can be on (so the probes across networks would pass without the
 * rules, for both families), and the plugin's default table `inet kuryr_ts` is this test's alone.
 *
 * - br_netfilter off: bridged traffic never reaches the inet hooks; routed traffic does.
 * - br_netfilter on with an iptables FORWARD policy of DROP (Docker's default): bridged traffic within a
 *   network is dropped by that policy, not by us; an iptables ACCEPT for the bridges restores it, and cannot
 *   open what the isolation table drops (a drop in any base chain is final; an accept only ends its own).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { DEFAULT_ISOLATION_TABLE } from '../../src/binding/isolation.ts';
import { type Check, expectMatrix, isolationSkipReason, Lab, otherTables } from './isolation-lab.ts';
import { findPing, shortSuffix } from './kernel.ts';

const run = promisify(execFile);
const skip = await isolationSkipReason();
const ping = skip ? [] : ((await findPing()) ?? []);
const iptablesSkip = skip || (await hasIptables()) ? skip : 'needs iptables and ip6tables';
const brNetfilterSkip = skip || (await hasBrNetfilter()) ? skip : 'needs br_netfilter (net.bridge sysctls)';

async function hasIptables(): Promise<boolean> {
  try {
    await run('iptables', ['--version']);
    await run('ip6tables', ['--version']);
    return true;
  } catch {
    return false;
  }
}

async function hasBrNetfilter(): Promise<boolean> {
  try {
    await run('sysctl', ['-n', 'net.bridge.bridge-nf-call-iptables']);
    return true;
  } catch {
    return false;
  }
}

/** A bench in its own namespace; checks that the real host's tables do not change meanwhile. */
function privateBench(name: string, hostSysctls: Record<string, string>) {
  const lab = new Lab({ hostNetns: `kxh-${shortSuffix()}-${name}`, table: DEFAULT_ISOLATION_TABLE, hostSysctls });
  let realHostBefore = '';
  before(async () => {
    realHostBefore = await otherTables(DEFAULT_ISOLATION_TABLE);
    await lab.setup();
  });
  after(async () => {
    const problems = await lab.cleanup();
    assert.deepEqual(problems, [], 'cleanup failed');
    assert.equal(await otherTables(DEFAULT_ISOLATION_TABLE), realHostBefore, "the real host's tables changed");
  });
  const expect = (reachable: Check[], unreachable: Check[], when: string) =>
    expectMatrix(lab, ping, reachable, unreachable, when);
  return { lab, expect };
}

describe('isolation with br_netfilter off (private host namespace)', { skip: brNetfilterSkip }, () => {
  const { lab, expect } = privateBench('off', {
    'net.bridge.bridge-nf-call-iptables': '0',
    'net.bridge.bridge-nf-call-ip6tables': '0',
  });

  test('same network works, other network and host addresses do not; without the table they would', async () => {
    const { a1, a2, b1, a, b, other } = lab;
    assert.equal((await lab.host(['sysctl', '-n', 'net.bridge.bridge-nf-call-iptables'])).trim(), '0');
    const blocked: Check[] = [
      [a1, b1.v4, 4],
      [a1, b1.v6, 6],
      [b1, a2.v4, 4],
      [a1, b.gw4, 4],
      [a1, b.gw6, 6],
      [a1, other.v4, 4],
      [a1, other.dummy6, 6],
    ];
    await expect(
      [
        [a1, a2.v4, 4],
        [a1, a2.v6, 6],
        [a2, a1.v6, 6],
        [a1, a.gw4, 4],
        [a1, a.gw6, 6],
        [b1, b.gw6, 6],
        ['host', b1.v4, 4],
      ],
      blocked,
      'isolated, br_netfilter off',
    );
    // Control: the same probes pass without the table (IPv4 and IPv6 forwarding are on in this namespace).
    const rules = await lab.tableJson();
    await lab.host(['nft', 'delete', 'table', 'inet', DEFAULT_ISOLATION_TABLE]);
    await expect(blocked, [], 'table deleted by hand');
    // A restart: ensureNetwork for each network puts back exactly the same table.
    await lab.ensure(a);
    await lab.ensure(b);
    assert.equal(stripHandles(await lab.tableJson()), stripHandles(rules));
    await expect([[a1, a2.v6, 6]], blocked, 'after the repair');
  });
});

describe('isolation with br_netfilter on and an iptables FORWARD policy of DROP', { skip: iptablesSkip }, () => {
  const { lab, expect } = privateBench('drop', {
    'net.bridge.bridge-nf-call-iptables': '1',
    'net.bridge.bridge-nf-call-ip6tables': '1',
  });

  test('DROP stops bridged traffic by itself; an ACCEPT for the bridges restores it and cannot open ours', async () => {
    const { a1, a2, b1, a, b, other } = lab;
    const iptablesBefore = await otherTables(DEFAULT_ISOLATION_TABLE, lab.options.hostNetns);
    for (const tool of ['iptables', 'ip6tables']) await lab.host([tool, '-P', 'FORWARD', 'DROP']);
    const blocked: Check[] = [
      [a1, b1.v4, 4],
      [a1, b1.v6, 6],
      [b1, a1.v4, 4],
      [a1, b.gw4, 4],
      [a1, other.v4, 4],
      [a1, other.v6, 6],
    ];
    // Docker's default: with br_netfilter on, frames between two ports of one bridge pass FORWARD too.
    await expect(
      [
        [a1, a.gw4, 4],
        [a1, a.gw6, 6],
      ],
      [[a1, a2.v4, 4], [a1, a2.v6, 6], ...blocked],
      'FORWARD DROP, no accept',
    );
    // What an admin adds (e.g. to DOCKER-USER): accept everything from the bridges, even between them.
    for (const tool of ['iptables', 'ip6tables']) {
      await lab.host([tool, '-A', 'FORWARD', '-i', 'brq+', '-j', 'ACCEPT']);
    }
    await expect(
      [
        [a1, a2.v4, 4],
        [a2, a1.v6, 6],
        [b1, b.gw4, 4],
      ],
      blocked,
      'FORWARD DROP + ACCEPT -i brq+',
    );
    // ensureNetwork and removeNetwork leave iptables' tables alone.
    const iptablesRules = await otherTables(DEFAULT_ISOLATION_TABLE, lab.options.hostNetns);
    assert.notEqual(iptablesRules, iptablesBefore);
    await lab.ensure(a);
    await lab.agent.removeNetwork(b.networkId);
    assert.equal(await otherTables(DEFAULT_ISOLATION_TABLE, lab.options.hostNetns), iptablesRules);
    await expect([[a1, a2.v4, 4]], [[a1, other.v4, 4]], 'after B was removed');
    await lab.agent.removeNetwork(a.networkId);
    assert.equal(await lab.tableExists(), false);
    assert.equal(await otherTables(DEFAULT_ISOLATION_TABLE, lab.options.hostNetns), iptablesRules);
  });
});

/** Table JSON without rule/set handles (which a recreated table renumbers). */
function stripHandles(json: string): string {
  return json.replace(/"handle": \d+/g, '"handle": 0');
}
