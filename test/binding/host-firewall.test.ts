/**
 * IptablesAccept without a kernel: a fake iptables holding chains in memory. Rules are added only where the
 * host's iptables would drop the networks' traffic (FORWARD policy DROP, or Docker's DOCKER-USER chain), to
 * DOCKER-USER when it exists, once however often ensureNetwork runs, for iptables and ip6tables, and removeNetwork
 * takes exactly them away. No root needed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { acceptRules, IptablesAccept } from '../../src/binding/host-firewall.ts';
import type { CommandRunner } from '../../src/binding/exec.ts';

interface FakeTables {
  policy: string;
  chains: Map<string, string[]>;
}

/**
 * A fake iptables: `-S CHAIN`, `-C`, `-I CHAIN 1`, `-D`; exit status 1 like iptables for a missing rule/chain. And
 * its `-restore --noflush`: `-I`/`-D` lines between `*filter` and `COMMIT`, all applied or none.
 */
function fakeIptables(tools: Record<string, FakeTables>) {
  const calls: string[] = [];
  const exec: CommandRunner = async (file, args, options) => {
    calls.push([file, ...args].join(' '));
    if (file.endsWith('-restore')) {
      const tables = tools[file.slice(0, -'-restore'.length)];
      if (tables === undefined) throw Object.assign(new Error('spawn ENOENT'), { code: 'ENOENT' });
      assert.deepEqual(args, ['-w', '--noflush']);
      const lines = (options.input ?? '').trimEnd().split('\n');
      assert.equal(lines.shift(), '*filter');
      assert.equal(lines.pop(), 'COMMIT');
      const chains = new Map([...tables.chains].map(([c, list]) => [c, [...list]]));
      for (const line of lines) {
        const [op, chain = '', ...rest] = line.split(' ');
        const rules = chains.get(chain);
        const i = rules?.indexOf(rest.join(' ')) ?? -1;
        if (op === '-I' && rules !== undefined) rules.unshift(rest.slice(1).join(' '));
        else if (op === '-D' && rules !== undefined && i >= 0) rules.splice(i, 1);
        else throw Object.assign(new Error('exit 1'), { code: 1, stderr: `line failed: ${line}` });
      }
      tables.chains = chains;
      return { stdout: '', stderr: '' };
    }
    const tables = tools[file];
    if (tables === undefined) throw Object.assign(new Error('spawn ENOENT'), { code: 'ENOENT' });
    const [w, t, filter, op, chain = '', ...rest] = args;
    assert.deepEqual([w, t, filter], ['-w', '-t', 'filter']);
    const fail = () => Object.assign(new Error('exit 1'), { code: 1, stderr: 'Bad rule' });
    const rules = tables.chains.get(chain);
    if (op === '-S' && chain === '') {
      // The whole table as iptables prints it: policies, user chains, then every chain's rules.
      const builtin = ['INPUT', 'FORWARD', 'OUTPUT'];
      const lines = [
        ...builtin.map((c) => `-P ${c} ${c === 'FORWARD' ? tables.policy : 'ACCEPT'}`),
        ...[...tables.chains.keys()].filter((c) => !builtin.includes(c)).map((c) => `-N ${c}`),
        ...[...tables.chains].flatMap(([c, list]) => list.map((r) => `-A ${c} ${r}`)),
      ];
      return { stdout: `${lines.join('\n')}\n`, stderr: '' };
    }
    if (op === '-S') {
      if (chain === 'FORWARD') return { stdout: `-P FORWARD ${tables.policy}\n`, stderr: '' };
      if (rules === undefined) throw fail();
      return { stdout: rules.map((r) => `-A ${chain} ${r}`).join('\n'), stderr: '' };
    }
    if (rules === undefined) throw fail();
    if (op === '-C') {
      if (!rules.includes(rest.join(' '))) throw fail();
    } else if (op === '-I') {
      rules.unshift(rest.slice(1).join(' '));
    } else if (op === '-D') {
      const i = rules.indexOf(rest.join(' '));
      if (i < 0) throw fail();
      rules.splice(i, 1);
    }
    return { stdout: '', stderr: '' };
  };
  return { calls, exec };
}

const dockerHost = (): FakeTables => ({
  policy: 'DROP',
  chains: new Map([
    ['FORWARD', ['-j DOCKER-USER']],
    ['DOCKER-USER', ['-j RETURN']],
  ]),
});

describe('IptablesAccept (the rules a host with Docker’s firewall needs)', () => {
  test("Docker's firewall: two rules per bridge at the top of DOCKER-USER, in both tools, once; removed again", async () => {
    const tools = { iptables: dockerHost(), ip6tables: dockerHost() };
    const { exec } = fakeIptables(tools);
    const fw = new IptablesAccept({ exec });
    await fw.ensureNetwork('brqa');
    await fw.ensureNetwork('brqa');
    await fw.ensureNetwork('brqb');
    for (const t of Object.values(tools)) {
      const user = t.chains.get('DOCKER-USER') ?? [];
      assert.equal(user.length, 5);
      assert.equal(user.at(-1), '-j RETURN', "Docker's RETURN stays last");
      assert.deepEqual(
        user.slice(2, 4),
        acceptRules('brqa').map((r) => r.join(' ')),
      );
      assert.deepEqual(t.chains.get('FORWARD'), ['-j DOCKER-USER'], 'FORWARD untouched');
    }
    await fw.removeNetwork('brqa');
    await fw.removeNetwork('brqb');
    await fw.removeNetwork('brqb');
    for (const t of Object.values(tools)) assert.deepEqual(t.chains.get('DOCKER-USER'), ['-j RETURN']);
  });

  test('FORWARD DROP without DOCKER-USER: the rules go to FORWARD; ACCEPT without it: nothing is added', async () => {
    const drop: FakeTables = { policy: 'DROP', chains: new Map([['FORWARD', ['-j SOMETHING']]]) };
    const open: FakeTables = { policy: 'ACCEPT', chains: new Map([['FORWARD', []]]) };
    const { exec, calls } = fakeIptables({ iptables: drop, ip6tables: open });
    const fw = new IptablesAccept({ exec });
    await fw.ensureNetwork('brqa');
    assert.equal(drop.chains.get('FORWARD')?.length, 3);
    assert.equal(drop.chains.get('FORWARD')?.at(-1), '-j SOMETHING');
    assert.deepEqual(open.chains.get('FORWARD'), []);
    assert.ok(!calls.some((c) => c.startsWith('ip6tables') && /-I /.test(c)));
    await fw.removeNetwork('brqa');
    assert.deepEqual(drop.chains.get('FORWARD'), ['-j SOMETHING']);
  });

  test('no iptables at all: nothing to do; a bad bridge name is refused before any command', async () => {
    const { exec, calls } = fakeIptables({});
    const fw = new IptablesAccept({ exec });
    await fw.ensureNetwork('brqa');
    await fw.removeNetwork('brqa');
    await assert.rejects(fw.ensureNetwork('bad name'), /invalid interface name/);
    assert.ok(calls.every((c) => !c.includes('bad name')));
  });

  test('one listing per tool and call: no -C for a rule the listing lacks, nothing more on a host that accepts', async () => {
    const open: FakeTables = { policy: 'ACCEPT', chains: new Map([['FORWARD', []]]) };
    const docker = dockerHost();
    const { exec, calls } = fakeIptables({ iptables: docker, ip6tables: open });
    const fw = new IptablesAccept({ exec });
    await fw.ensureNetwork('brqa');
    assert.deepEqual(
      calls.map((c) => c.split(' ').slice(0, 6).join(' ')),
      ['iptables -w -t filter -S', 'ip6tables -w -t filter -S', 'iptables-restore -w --noflush'],
      'both rules in one restore',
    );
    calls.length = 0;
    await fw.ensureNetwork('brqa');
    assert.deepEqual(calls, ['iptables -w -t filter -S', 'ip6tables -w -t filter -S'], 'both listed: nothing to do');
    calls.length = 0;
    await fw.removeNetwork('brqb'); // never added: the listings say so
    assert.deepEqual(calls, ['iptables -w -t filter -S', 'ip6tables -w -t filter -S']);
    calls.length = 0;
    await fw.removeNetwork('brqa');
    assert.deepEqual(docker.chains.get('DOCKER-USER'), ['-j RETURN']);
    assert.deepEqual(
      calls,
      ['iptables -w -t filter -S', 'ip6tables -w -t filter -S', 'iptables-restore -w --noflush'],
      'both rules deleted in one restore',
    );
  });

  test('a restore that fails (a rule gone meanwhile, no restore program) changes nothing: one command at a time', async () => {
    const docker = dockerHost();
    const { exec } = fakeIptables({ iptables: docker });
    const calls: string[] = [];
    let failRestore = true;
    const flaky: CommandRunner = async (file, args, options) => {
      calls.push([file, ...args].join(' '));
      if (file.endsWith('-restore') && failRestore) {
        throw Object.assign(new Error('spawn ENOENT'), { code: 'ENOENT' });
      }
      return exec(file, args, options);
    };
    const fw = new IptablesAccept({ exec: flaky, binaries: ['iptables'] });
    await fw.ensureNetwork('brqa');
    assert.deepEqual(
      docker.chains.get('DOCKER-USER'),
      [...acceptRules('brqa').map((r) => r.join(' ')), '-j RETURN'],
      'inserted one by one, in the same order',
    );
    assert.equal(calls.filter((c) => c.includes(' -I ')).length, 2);
    // Between the listing and the restore another process deletes one of the rules: the restore fails whole.
    failRestore = false;
    calls.length = 0;
    const racing: CommandRunner = async (file, args, options) => {
      if (file.endsWith('-restore')) docker.chains.get('DOCKER-USER')!.shift();
      return flaky(file, args, options);
    };
    await new IptablesAccept({ exec: racing, binaries: ['iptables'] }).removeNetwork('brqa');
    assert.deepEqual(docker.chains.get('DOCKER-USER'), ['-j RETURN'], 'the rest removed one command at a time');
    assert.ok(calls.some((c) => c.includes(' -D ')));
  });

  test('a rule listed in another form than ours is asked with -C, not counted as ours', async () => {
    const docker = dockerHost();
    docker.chains.get('DOCKER-USER')!.unshift('-i brqa -m comment --comment "kuryr-ts" -j ACCEPT');
    const { exec, calls } = fakeIptables({ iptables: docker });
    await new IptablesAccept({ exec, binaries: ['iptables'] }).ensureNetwork('brqa');
    assert.ok(calls.some((c) => c.includes(' -C DOCKER-USER -i brqa')));
    assert.ok(!calls.some((c) => c.includes('-restore')));
    assert.equal(docker.chains.get('DOCKER-USER')?.length, 4);
  });

  test('a host that accepts: removing the rules of a bridge ensured without any costs no listing', async () => {
    const open = (): FakeTables => ({ policy: 'ACCEPT', chains: new Map([['FORWARD', []]]) });
    const { exec, calls } = fakeIptables({ iptables: open(), ip6tables: open() });
    const fw = new IptablesAccept({ exec });
    await fw.ensureNetwork('brqa');
    calls.length = 0;
    await fw.removeNetwork('brqa');
    assert.deepEqual(calls, [], 'this process found it needed none and added none');
    await fw.removeNetwork('brqa');
    assert.equal(calls.length, 2, 'once: a second removal lists again');
  });

  test('a host that accepts now, with a rule of ours left in FORWARD: listed and removed', async () => {
    const tables: FakeTables = {
      policy: 'ACCEPT',
      chains: new Map([['FORWARD', [acceptRules('brqa')[0]!.join(' ')]]]),
    };
    const { exec } = fakeIptables({ iptables: tables });
    const fw = new IptablesAccept({ exec, binaries: ['iptables'] });
    await fw.ensureNetwork('brqa');
    await fw.removeNetwork('brqa');
    assert.deepEqual(tables.chains.get('FORWARD'), []);
  });

  test('iptables and ip6tables are asked at once', async () => {
    const inner = fakeIptables({ iptables: dockerHost(), ip6tables: dockerHost() });
    let inFlight = 0;
    let most = 0;
    const exec: CommandRunner = async (file, args, options) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      return inner.exec(file, args, options);
    };
    const fw = new IptablesAccept({ exec });
    await fw.ensureNetwork('brqa');
    await fw.removeNetwork('brqa');
    assert.equal(most, 2);
  });
});
