/**
 * gc and a leaked bridge of the embedded backend, against the real kernel, all inside a network namespace of
 * this test's own (bridges, the nftables table, iptables with a FORWARD DROP policy as Docker sets it): a
 * bridge with a custom name (`com.docker.network.bridge.name`), marked as ours, whose network the store no
 * longer has, is removed by gc with its nftables elements and iptables ACCEPT rules; the bridge of a live
 * network, a bridge without our mark and another instance's bridge are untouched.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { IptablesAccept } from '../../src/binding/host-firewall.ts';
import { IpCommand } from '../../src/binding/ip-command.ts';
import { NftIsolation } from '../../src/binding/isolation.ts';
import { LinuxBridgeAgent } from '../../src/binding/linux-bridge-agent.ts';
import { KuryrDriver } from '../../src/driver/driver.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/store.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { collectGarbage } from '../../src/reconcile/gc.ts';
import { networkCreate } from '../helpers/docker-sequence.ts';
import { FakeBinder, TEST_SETTINGS } from '../helpers/fakes.ts';
import { isolationSkipReason } from './isolation-lab.ts';
import { randomId, shortSuffix } from './kernel.ts';

const run = promisify(execFile);

async function skipReason(): Promise<string | false> {
  const reason = await isolationSkipReason();
  if (reason) return reason;
  try {
    await run('iptables', ['--version']);
  } catch {
    return 'needs iptables';
  }
  return false;
}
const skip = await skipReason();

describe('gc removes a leaked custom-named bridge with its firewall elements (real kernel)', { skip }, () => {
  const s = shortSuffix();
  const netns = `kxgc${s}`;
  const table = `kx_gc_${s}`;
  const owner = `kxgc${s}`;
  const ip = new IpCommand({ netns });
  const inNs = (file: string, args: string[]) => run('ip', ['netns', 'exec', netns, file, ...args]);
  const store = openEmbeddedNeutron({ path: ':memory:' });
  const agent = new LinuxBridgeAgent({
    ip,
    owner,
    isolation: new NftIsolation({ netns, table }),
    firewall: new IptablesAccept({ netns, binaries: ['iptables'] }),
  });
  const driver = new KuryrDriver({
    neutron: store,
    binder: new FakeBinder(),
    agent,
    settings: { ...TEST_SETTINGS, driverName: owner },
    log: silentLogger(),
  });
  const live = `kxlive${s}`;
  const leak = `kxleak${s}`;
  const foreign = `kxfor${s}`;
  const other = `kxoth${s}`;

  const tableText = async () => (await inNs('nft', ['list', 'table', 'inet', table])).stdout;
  const forwardRules = async () => (await inNs('iptables', ['-w', '-S', 'FORWARD'])).stdout;

  before(async () => {
    await run('ip', ['netns', 'add', netns]);
    await inNs('iptables', ['-w', '-P', 'FORWARD', 'DROP']); // as Docker sets it: the firewall adds its rules
    await store.createSubnetPool({ name: 'kuryr', prefixes: ['10.10.0.0/16'], default_prefixlen: 24 });
    await store.createSubnetPool({ name: 'kuryr6', prefixes: ['fd6b:7572:7972::/48'], default_prefixlen: 64 });
  });

  after(async () => {
    store.close();
    // Everything the test made lives in its namespace: bridges, the nftables table, the iptables rules.
    await run('ip', ['netns', 'del', netns]);
    const left = (await run('ip', ['netns', 'list'])).stdout;
    assert.ok(!left.includes(netns), 'test namespace left behind');
  });

  test('the leaked bridge goes with its nft elements and iptables rules; live and foreign bridges stay', async () => {
    await networkCreate(driver, { subnet: '10.94.0.0/24', opts: { 'com.docker.network.bridge.name': live } });
    // A network the store lost (a crash between the host and the store): its bridge and rules stay behind.
    await agent.ensureNetwork({
      networkId: randomId(),
      mtu: 1500,
      gateways: [{ address: '10.95.0.1', prefixLength: 24 }],
      bridge: leak,
    });
    await ip.run(['link', 'add', 'name', foreign, 'type', 'bridge']);
    await ip.run(['link', 'add', 'name', other, 'type', 'bridge']);
    await ip.run(['link', 'set', 'dev', other, 'alias', 'kuryr-ts:someone-else']);
    assert.ok((await tableText()).includes(`"${leak}"`), 'the leak has nft elements');
    assert.ok((await forwardRules()).includes(`-i ${leak} `), 'the leak has iptables rules');

    const report = await collectGarbage(driver.runtime, ip, {
      dryRun: false,
      graceSeconds: 0,
      docker: undefined,
      ownsBridges: true,
      owner,
    });
    assert.deepEqual(
      report.actions.filter((a) => a.kind === 'bridge').map((a) => [a.id, a.result, a.error]),
      [[leak, 'removed', undefined]],
    );
    assert.equal(await ip.getLink(leak), undefined, 'the leaked bridge is gone');
    const nft = await tableText();
    assert.ok(!nft.includes(leak), `no nft element of the leak is left:\n${nft}`);
    assert.ok(nft.includes(`"${live}"`), "the live network's elements stay");
    const rules = await forwardRules();
    assert.ok(!rules.includes(leak), `no iptables rule of the leak is left:\n${rules}`);
    assert.ok(rules.includes(`-i ${live} `), "the live network's rules stay");
    for (const name of [live, foreign, other]) assert.equal((await ip.getLink(name))?.kind, 'bridge', `${name} stays`);
  });
});
