/**
 * NftIsolation without a kernel: a fake `nft` records every invocation, so these check the transactions it
 * writes (one table, nothing else), input checking before any command, the policy switches, errors, the
 * retry after a concurrent change and the serialization of concurrent calls. No root needed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { BindingError } from '../../src/binding/errors.ts';
import { loadConfig } from '../../src/config/load.ts';
import { CommandError, type CommandRunner } from '../../src/binding/exec.ts';
import { NftIsolation, type NftIsolationOptions } from '../../src/binding/isolation.ts';

interface Call {
  argv: string[];
  input: string | undefined;
}

type Reply = { stdout: string } | { code: number | string; stderr: string };

const NO_TABLE: Reply = { code: 1, stderr: 'Error: No such file or directory\nlist table inet kuryr_ts\n' };
const OK: Reply = { stdout: '' };

/** A fake nft answering `list` with `listing()` and writes with the next of `writes` (default: success). */
function fakeNft(listing: () => Reply, writes: Reply[] = []) {
  const calls: Call[] = [];
  const exec: CommandRunner = async (file, args, { input }) => {
    calls.push({ argv: [file, ...args], input });
    await new Promise((r) => setImmediate(r));
    const reply = args.includes('list') ? listing() : (writes.shift() ?? OK);
    if ('stdout' in reply) return { stdout: reply.stdout, stderr: '' };
    throw Object.assign(new Error('nft failed'), { code: reply.code, stderr: reply.stderr, stdout: '' });
  };
  return { calls, exec };
}

/** `nft -j list table` output holding these elements (concatenations as arrays), without chains. */
function listingOf(sets: Record<string, Array<string | string[]>>): Reply {
  const nftables: unknown[] = [
    { metainfo: { json_schema_version: 1 } },
    { table: { family: 'inet', name: 'kuryr_ts' } },
  ];
  for (const [name, elems] of Object.entries(sets)) {
    const elem = elems.map((e) => (Array.isArray(e) ? { concat: e } : e));
    nftables.push({ set: { family: 'inet', name, table: 'kuryr_ts', type: 'ifname', handle: 1, elem } });
  }
  return { stdout: JSON.stringify({ nftables }) };
}

const GATEWAYS = [
  { address: '10.1.2.1', prefixLength: 24 },
  { address: 'FD00:0:0:0::1', prefixLength: 64 },
];

function writes(calls: Call[]): string[] {
  return calls.filter((c) => c.argv.includes('-f')).map((c) => c.input ?? '');
}

function isolation(exec: CommandRunner, options: NftIsolationOptions = {}) {
  return new NftIsolation({ exec, ...options });
}

describe('NftIsolation transactions (fake nft)', () => {
  test('first network: one transaction creating the table, its sets, chains, rules and the elements', async () => {
    const { calls, exec } = fakeNft(() => NO_TABLE);
    await isolation(exec).ensureNetwork('brq0123456789a', GATEWAYS);
    assert.deepEqual(
      calls.map((c) => c.argv),
      [
        ['nft', '-j', 'list', 'table', 'inet', 'kuryr_ts'],
        ['nft', '-f', '-'],
      ],
    );
    const [script = ''] = writes(calls);
    const lines = script.trim().split('\n');
    // Every statement addresses our table and nothing else; nothing is flushed or deleted outside it.
    for (const line of lines) assert.match(line, /^(add|flush|delete) (table|set|chain|rule|element) inet kuryr_ts\b/);
    assert.ok(!/flush ruleset|delete table (?!inet kuryr_ts)/.test(script));
    assert.ok(lines.includes('add element inet kuryr_ts networks { "brq0123456789a" }'));
    assert.ok(lines.includes('add element inet kuryr_ts same_network { "brq0123456789a" . "brq0123456789a" }'));
    assert.ok(lines.includes('add element inet kuryr_ts guarded { "brq0123456789a" }'));
    assert.ok(
      lines.includes(
        'add element inet kuryr_ts gateways4 { "brq0123456789a" . 10.1.2.1, "brq0123456789a" . 10.1.2.255 }',
      ),
    );
    assert.ok(lines.includes('add element inet kuryr_ts gateways6 { "brq0123456789a" . fd00::1 }'));
    assert.ok(lines.some((l) => l.startsWith('add chain inet kuryr_ts forward { type filter hook forward')));
    assert.ok(lines.some((l) => l.startsWith('add chain inet kuryr_ts input { type filter hook input')));
  });

  test('input is checked before any command runs', async () => {
    const { calls, exec } = fakeNft(() => NO_TABLE);
    const iso = isolation(exec);
    for (const bridge of ['brq"; flush rul', 'brq x', '', 'a/b', '0123456789abcdef']) {
      await assert.rejects(iso.ensureNetwork(bridge, GATEWAYS), BindingError);
      await assert.rejects(iso.removeNetwork(bridge), BindingError);
    }
    for (const gw of [
      { address: '10.0.0.1; flush ruleset', prefixLength: 24 },
      { address: '10.0.0.300', prefixLength: 24 },
      { address: '10.0.0.1', prefixLength: 33 },
      { address: 'fd00::1', prefixLength: 0 },
      { address: 'fd00::1%eth0', prefixLength: 64 },
    ]) {
      await assert.rejects(iso.ensureNetwork('brq0123456789a', [gw]), BindingError);
    }
    assert.throws(() => new NftIsolation({ table: 'x; flush ruleset' }), BindingError);
    assert.throws(() => new NftIsolation({ netns: '../x' }), BindingError);
    assert.deepEqual(calls, []);
  });

  test('IPv4 subnet broadcast only where a subnet has one; duplicates collapse', async () => {
    const { calls, exec } = fakeNft(() => NO_TABLE);
    await isolation(exec).ensureNetwork('brqb', [
      { address: '10.9.0.1', prefixLength: 31 },
      { address: '10.9.1.1', prefixLength: 32 },
      { address: '10.9.2.1', prefixLength: 30 },
      { address: '10.9.2.1', prefixLength: 30 },
    ]);
    const [script = ''] = writes(calls);
    assert.ok(
      script.includes(
        'add element inet kuryr_ts gateways4 { "brqb" . 10.9.0.1, "brqb" . 10.9.1.1, ' +
          '"brqb" . 10.9.2.1, "brqb" . 10.9.2.3 }',
      ),
      script,
    );
    assert.ok(!script.includes('add element inet kuryr_ts gateways6'), 'no IPv6 element without an IPv6 gateway');
  });

  test('removeNetwork: only its own elements; the table goes with the last network; nothing when absent', async () => {
    const two = listingOf({
      networks: ['brqa', 'brqb'],
      same_network: [
        ['brqa', 'brqa'],
        ['brqb', 'brqb'],
      ],
      guarded: ['brqa', 'brqb'],
      gateways4: [
        ['brqa', '10.0.0.1'],
        ['brqb', '10.0.1.1'],
      ],
      gateways6: [['brqa', 'fd00::1']],
    });
    let fake = fakeNft(() => two);
    await isolation(fake.exec).removeNetwork('brqa');
    assert.deepEqual(writes(fake.calls), [
      [
        'delete element inet kuryr_ts networks { "brqa" }',
        'delete element inet kuryr_ts same_network { "brqa" . "brqa" }',
        'delete element inet kuryr_ts guarded { "brqa" }',
        'delete element inet kuryr_ts gateways4 { "brqa" . 10.0.0.1 }',
        'delete element inet kuryr_ts gateways6 { "brqa" . fd00::1 }',
        '',
      ].join('\n'),
    ]);

    fake = fakeNft(() => listingOf({ networks: ['brqb'], gateways4: [['brqb', '10.0.1.1']] }));
    await isolation(fake.exec).removeNetwork('brqb');
    assert.deepEqual(writes(fake.calls), ['delete table inet kuryr_ts\n']);

    fake = fakeNft(() => listingOf({ networks: ['brqb'] }));
    await isolation(fake.exec).removeNetwork('brqc'); // not there: nothing to write
    assert.deepEqual(writes(fake.calls), []);

    fake = fakeNft(() => NO_TABLE);
    await isolation(fake.exec).removeNetwork('brqb');
    assert.equal(fake.calls.length, 1);
  });

  test('policy switches: host access leaves the input sets alone; neither option leaves only masquerading', async () => {
    let fake = fakeNft(() => NO_TABLE);
    await isolation(fake.exec, { allowHostAccess: true }).ensureNetwork('brqa', GATEWAYS);
    const [script = ''] = writes(fake.calls);
    assert.ok(script.includes('add element inet kuryr_ts networks { "brqa" }'));
    assert.ok(!/add element inet kuryr_ts (guarded|gateways[46]) /.test(script));

    // Neither option: outbound access (masquerading) is all there is to enforce.
    fake = fakeNft(() => NO_TABLE);
    await isolation(fake.exec, { isolateNetworks: false, allowHostAccess: true }).ensureNetwork('brqa', GATEWAYS);
    const [open = ''] = writes(fake.calls);
    assert.deepEqual(
      open.split('\n').filter((l) => l.startsWith('add element')),
      ['add element inet kuryr_ts bridges { "brqa" }', 'add element inet kuryr_ts masquerading { "brqa" }'],
    );
    // ... and without masquerading, nothing at all.
    fake = fakeNft(() => NO_TABLE);
    await isolation(fake.exec, { isolateNetworks: false, allowHostAccess: true }).ensureNetwork('brqa', GATEWAYS, {
      masquerade: false,
    });
    assert.deepEqual(writes(fake.calls), []);

    // switched off with rules of an earlier run in place: they go (and the table, being empty then)
    fake = fakeNft(() => listingOf({ networks: ['brqa'], guarded: ['brqa'] }));
    await isolation(fake.exec, { isolateNetworks: false, allowHostAccess: true }).ensureNetwork('brqa', GATEWAYS, {
      masquerade: false,
    });
    assert.deepEqual(writes(fake.calls), ['delete table inet kuryr_ts\n']);

    // switched from isolated to host access: the input elements of that bridge go, the rest stays
    fake = fakeNft(() =>
      listingOf({ networks: ['brqa', 'brqb'], guarded: ['brqa'], gateways4: [['brqa', '10.1.2.1']] }),
    );
    await isolation(fake.exec, { allowHostAccess: true }).ensureNetwork('brqa', GATEWAYS);
    const [switched = ''] = writes(fake.calls);
    assert.ok(switched.includes('delete element inet kuryr_ts guarded { "brqa" }'));
    assert.ok(switched.includes('delete element inet kuryr_ts gateways4 { "brqa" . 10.1.2.1 }'));
    assert.ok(!switched.includes('"brqb"'));
  });

  test('--internal: no masquerading, traffic kept on the bridge; masquerading off: no element for it', async () => {
    let fake = fakeNft(() => NO_TABLE);
    await isolation(fake.exec, { isolateNetworks: false, allowHostAccess: true }).ensureNetwork('brqa', GATEWAYS, {
      internal: true,
    });
    const [internal = ''] = writes(fake.calls);
    assert.deepEqual(
      internal.split('\n').filter((l) => l.startsWith('add element')),
      [
        'add element inet kuryr_ts bridges { "brqa" }',
        'add element inet kuryr_ts same_network { "brqa" . "brqa" }',
        'add element inet kuryr_ts internal { "brqa" }',
      ],
    );
    fake = fakeNft(() => listingOf({ networks: ['brqa'], masquerading: ['brqa'], bridges: ['brqa'] }));
    await isolation(fake.exec).ensureNetwork('brqa', GATEWAYS, { masquerade: false });
    const [off = ''] = writes(fake.calls);
    assert.match(off, /delete element inet kuryr_ts masquerading \{ "brqa" \}/);
    assert.doesNotMatch(off, /delete element inet kuryr_ts (bridges|networks) /);
  });

  test('nft missing: ensureNetwork says what to do; removeNetwork has nothing to remove', async () => {
    const { exec } = fakeNft(() => ({ code: 'ENOENT', stderr: '' }));
    const err = await isolation(exec)
      .ensureNetwork('brqa', GATEWAYS)
      .catch((e: unknown) => e);
    assert.ok(err instanceof CommandError);
    assert.equal(err.code, 'KURYR_ERR_BINDING');
    assert.match(err.message, /install nftables|isolate_networks = false/);
    await isolation(exec).removeNetwork('brqa');
  });

  test('a write that loses a race is retried once after reading again; a second failure is reported', async () => {
    const busy: Reply = { code: 1, stderr: 'Error: Could not process rule: No such file or directory\n' };
    let fake = fakeNft(() => NO_TABLE, [busy]);
    await isolation(fake.exec).ensureNetwork('brqa', GATEWAYS);
    assert.deepEqual(
      fake.calls.map((c) => c.argv.at(-1)),
      ['kuryr_ts', '-', 'kuryr_ts', '-'],
    );
    fake = fakeNft(() => NO_TABLE, [busy, busy]);
    const err = await isolation(fake.exec)
      .ensureNetwork('brqa', GATEWAYS)
      .catch((e: unknown) => e);
    assert.ok(err instanceof CommandError);
    assert.match(err.message, /nft -f -.*exited with status 1.*Could not process rule/s);
  });

  test('concurrent calls on one table are serialized (read and write never interleave)', async () => {
    const { calls, exec } = fakeNft(() => NO_TABLE);
    const iso = isolation(exec);
    const other = new NftIsolation({ exec }); // another instance, same table: same lock
    await Promise.all([
      iso.ensureNetwork('brqa', GATEWAYS),
      other.ensureNetwork('brqb', GATEWAYS),
      iso.removeNetwork('brqc'),
    ]);
    assert.deepEqual(
      calls.map((c) => c.argv.at(-1)),
      ['kuryr_ts', '-', 'kuryr_ts', '-', 'kuryr_ts'],
    );
  });

  test('in a named network namespace every command runs through ip netns exec', async () => {
    const { calls, exec } = fakeNft(() => NO_TABLE);
    await new NftIsolation({ exec, netns: 'kx-test', table: 'kx_t' }).ensureNetwork('brqa', GATEWAYS);
    assert.deepEqual(calls[0]?.argv, ['ip', 'netns', 'exec', 'kx-test', 'nft', '-j', 'list', 'table', 'inet', 'kx_t']);
    assert.ok(writes(calls)[0]?.includes('add table inet kx_t '));
  });

  test('[embedded] isolate_networks (default true) and allow_host_access (default false) reach the policy', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kx-iso-conf-'));
    try {
      const conf = (name: string, text: string) => {
        const p = path.join(dir, name);
        writeFileSync(p, text);
        return p;
      };
      const defaults = loadConfig({ config: conf('empty.conf', '') }, {}).embedded;
      assert.equal(defaults.isolateNetworks, true);
      assert.equal(defaults.allowHostAccess, false);
      const open = loadConfig(
        { config: conf('open.conf', '[embedded]\nisolate_networks = false\nallow_host_access = yes\n') },
        {},
      ).embedded;
      assert.equal(open.isolateNetworks, false);
      assert.equal(open.allowHostAccess, true);
      assert.throws(() => loadConfig({ config: conf('bad.conf', '[embedded]\nisolate_networks = maybe\n') }, {}));

      // what serve does: `new NftIsolation(config.embedded)`
      let fake = fakeNft(() => NO_TABLE);
      await new NftIsolation({ ...defaults, exec: fake.exec }).ensureNetwork('brqa', GATEWAYS);
      assert.match(writes(fake.calls)[0] ?? '', /add element inet kuryr_ts guarded \{ "brqa" \}/);
      fake = fakeNft(() => NO_TABLE);
      await new NftIsolation({ ...open, exec: fake.exec }).ensureNetwork('brqa', GATEWAYS);
      assert.doesNotMatch(writes(fake.calls)[0] ?? '', /add element inet kuryr_ts (guarded|networks) /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
