import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CommandError, type CommandRunner, execRunner } from '../../src/binding/exec.ts';
import { IpCommand, isAlreadyExists, isNoSuchDevice, parseLinks, validateMtu } from '../../src/binding/ip-command.ts';
import { BindingError } from '../../src/binding/errors.ts';
import { kernelSkipReason } from './kernel.ts';

/** A fake `execFile`: answers from a script, records the calls. */
function fakeExec(answers: Array<{ stdout?: string; stderr?: string; fail?: object }>) {
  const calls: Array<{ file: string; args: readonly string[]; timeoutMs: number }> = [];
  const exec: CommandRunner = async (file, args, { timeoutMs }) => {
    calls.push({ file, args, timeoutMs });
    const answer = answers[Math.min(calls.length - 1, answers.length - 1)] ?? {};
    if (answer.fail) throw Object.assign(new Error('Command failed'), answer.fail);
    return { stdout: answer.stdout ?? '', stderr: answer.stderr ?? '' };
  };
  return { exec, calls };
}

const INTERRUPTED = 'Dump was interrupted and may be inconsistent.\n';

test('runs ip with an argument array and returns stdout', async () => {
  const { exec, calls } = fakeExec([{ stdout: 'ok\n' }]);
  const ip = new IpCommand({ exec, timeoutMs: 1234 });
  assert.equal(await ip.run(['link', 'show', 'dev', 'x; rm -rf /']), 'ok\n');
  assert.deepEqual(calls, [{ file: 'ip', args: ['link', 'show', 'dev', 'x; rm -rf /'], timeoutMs: 1234 }]);
});

test('a netns option prefixes every command with -n', async () => {
  const { exec, calls } = fakeExec([{ stdout: '[]' }]);
  await new IpCommand({ exec, netns: 'ns1' }).runJson(['link', 'show']);
  assert.deepEqual(calls[0]?.args, ['-n', 'ns1', '-json', 'link', 'show']);
});

test('a failure becomes CommandError with the command line, exit code and stderr', async () => {
  const { exec } = fakeExec([{ fail: { code: 2, stderr: 'RTNETLINK answers: File exists\n' } }]);
  const err = await new IpCommand({ exec }).run(['link', 'add', 'dev', 'x', 'type', 'veth']).then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof CommandError);
  assert.ok(err instanceof BindingError);
  assert.deepEqual(err.argv, ['ip', 'link', 'add', 'dev', 'x', 'type', 'veth']);
  assert.equal(err.exitCode, 2);
  assert.equal(err.stderr, 'RTNETLINK answers: File exists\n');
  assert.equal(err.code, 'KURYR_ERR_BINDING');
  assert.equal(err.reason, 'ip-command');
  assert.equal(err.message, '`ip link add dev x type veth` exited with status 2: RTNETLINK answers: File exists');
  assert.ok(isAlreadyExists(err));
  assert.ok(!isNoSuchDevice(err));
});

test('a timeout is reported as such', async () => {
  const { exec } = fakeExec([{ fail: { killed: true, signal: 'SIGKILL', code: null, stderr: '' } }]);
  const err = await new IpCommand({ exec, timeoutMs: 50 }).run(['monitor']).catch((e: unknown) => e);
  assert.ok(err instanceof CommandError);
  assert.equal(err.timedOut, true);
  assert.equal(err.exitCode, null);
  assert.match(err.message, /^`ip monitor` timed out after 50 ms/);
});

test('a missing binary is reported with the system error', async () => {
  const err = await new IpCommand({ binary: '/nonexistent/ip' }).run(['link']).catch((e: unknown) => e);
  assert.ok(err instanceof CommandError);
  assert.equal(err.exitCode, null);
  assert.match(err.message, /could not be run: .*ENOENT/);
});

test('an interrupted dump is retried, then succeeds', async () => {
  const { exec, calls } = fakeExec([
    { fail: { code: 1, stderr: `${INTERRUPTED}Dump terminated\n` } },
    { stdout: 'partial', stderr: INTERRUPTED }, // exit 0 but inconsistent: must not be used
    { stdout: '[{"ifindex":1,"ifname":"lo","mtu":65536}]' },
  ]);
  const ip = new IpCommand({ exec });
  const links = parseLinks(await ip.runJson(['link', 'show']));
  assert.equal(calls.length, 3);
  assert.equal(links[0]?.ifname, 'lo');
});

test('an interrupted dump is retried a bounded number of times', async () => {
  const { exec, calls } = fakeExec([{ fail: { code: 1, stderr: INTERRUPTED } }]);
  const err = await new IpCommand({ exec, dumpAttempts: 4 }).run(['addr', 'show']).catch((e: unknown) => e);
  assert.equal(calls.length, 4);
  assert.ok(err instanceof CommandError);
  assert.match(err.message, /Dump was interrupted/);
});

test('other failures are not retried', async () => {
  const { exec, calls } = fakeExec([{ fail: { code: 1, stderr: 'Cannot find device "x"\n' } }]);
  const err = await new IpCommand({ exec }).run(['link', 'del', 'dev', 'x']).catch((e: unknown) => e);
  assert.equal(calls.length, 1);
  assert.ok(isNoSuchDevice(err));
});

test('invalid JSON from ip is a CommandError', async () => {
  const { exec } = fakeExec([{ stdout: '{not json' }]);
  await assert.rejects(new IpCommand({ exec }).runJson(['link', 'show']), CommandError);
});

test('parseLinks checks the shape and maps veth/bridge details', () => {
  const links = parseLinks([
    {
      ifindex: 6,
      link: 't_cabc',
      ifname: 'tapabc',
      flags: ['BROADCAST', 'UP'],
      mtu: 1450,
      master: 'brqnet',
      operstate: 'LOWERLAYERDOWN',
      address: '52:C7:A3:9D:13:49',
      linkinfo: { info_kind: 'veth', info_slave_kind: 'bridge' },
    },
    { ifindex: 7, ifname: 'tapx', mtu: 1500, link_index: 8, link_netnsid: 0 },
  ]);
  assert.equal(links[0]?.peer, 't_cabc');
  assert.equal(links[0]?.kind, 'veth');
  assert.equal(links[0]?.master, 'brqnet');
  assert.equal(links[0]?.address, '52:c7:a3:9d:13:49');
  assert.deepEqual(links[0]?.flags, ['BROADCAST', 'UP']);
  assert.equal(links[1]?.peer, undefined);
  assert.equal(links[1]?.peerNetnsId, 0);
  assert.throws(() => parseLinks({}), CommandError);
  assert.throws(() => parseLinks([{ ifname: 'x' }]), CommandError);
});

test('validateMtu accepts link MTUs only', () => {
  assert.equal(validateMtu(1450), 1450);
  for (const bad of [0, 67, 65536, 1500.5, Number.NaN]) assert.throws(() => validateMtu(bad), BindingError);
});

test('against the real ip: a missing device is undefined / false, not an error', async (t) => {
  const skip = await kernelSkipReason();
  if (skip) return t.skip(skip);
  const ip = new IpCommand();
  const name = `kxnone${process.pid % 100000}`;
  assert.equal(await ip.getLink(name), undefined);
  assert.equal(await ip.deleteLink(name), false);
  const lo = await ip.getLink('lo');
  assert.equal(lo?.ifname, 'lo');
  assert.ok((await ip.getAddresses('lo')).some((a) => a.local === '127.0.0.1' && a.prefixlen === 8));
  const err = await ip.run(['link', 'set', 'dev', name, 'up']).catch((e: unknown) => e);
  assert.ok(isNoSuchDevice(err), String(err));
});

test('the real runner kills a command that runs past the timeout', async () => {
  // `sleep` stands in for a hung `ip`: what is checked is the execFile timeout handling.
  const started = Date.now();
  const err = await new IpCommand({ binary: 'sleep', timeoutMs: 100 }).run(['5']).catch((e: unknown) => e);
  assert.ok(err instanceof CommandError, String(err));
  assert.equal(err.timedOut, true);
  assert.ok(Date.now() - started < 3000);
});

test('batch: one `ip -batch -` process, the commands on its standard input, one per line', async () => {
  const calls: Array<{ args: readonly string[]; input: string | undefined }> = [];
  const exec: CommandRunner = async (_file, args, { input }) => {
    calls.push({ args, input });
    return { stdout: '', stderr: '' };
  };
  const result = await new IpCommand({ exec, netns: 'ns1' }).batch([
    ['link', 'add', 'dev', 'a', 'type', 'veth', 'peer', 'name', 'b'],
    ['link', 'set', 'dev', 'a', 'alias', 'kuryr-ts:x', 'up'],
  ]);
  assert.equal(result.failed, undefined);
  assert.deepEqual(calls, [
    {
      args: ['-n', 'ns1', '-batch', '-'],
      input: 'link add dev a type veth peer name b\nlink set dev a alias kuryr-ts:x up\n',
    },
  ]);
});

test('batch: a failing line is mapped back to its command, with its own command line and message', async () => {
  const { exec } = fakeExec([{ fail: { code: 1, stderr: 'Cannot find device "brqx"\nCommand failed -:2\n' } }]);
  const commands = [
    ['link', 'set', 'dev', 'a', 'up'],
    ['link', 'set', 'dev', 'brqx', 'up'],
    ['link', 'set', 'dev', 'a', 'master', 'brqx'],
  ];
  const { failed } = await new IpCommand({ exec }).batch(commands);
  assert.equal(failed?.index, 1);
  assert.ok(failed.error instanceof CommandError);
  assert.deepEqual(failed.error.argv, ['ip', 'link', 'set', 'dev', 'brqx', 'up']);
  assert.equal(failed.error.message, '`ip link set dev brqx up` exited with status 1: Cannot find device "brqx"');
  assert.ok(isNoSuchDevice(failed.error));
});

test('batch: a failure without a line (ip not started, killed) is thrown as it is', async () => {
  const { exec } = fakeExec([{ fail: { code: 'ENOENT', message: 'spawn ip ENOENT' } }]);
  const err = await new IpCommand({ exec }).batch([['link', 'show']]).catch((e: unknown) => e);
  assert.ok(err instanceof CommandError, String(err));
  assert.deepEqual(err.argv, ['ip', '-batch', '-']);
  assert.equal(err.startError, 'ENOENT');
});

test('batch: an argument ip -batch would split or misread is refused before anything runs', async () => {
  const { exec, calls } = fakeExec([{}]);
  for (const bad of ['a b', 'x"y', '#c', 'a\\b', '']) {
    await assert.rejects(new IpCommand({ exec }).batch([['link', 'set', 'dev', bad, 'up']]), BindingError);
  }
  assert.equal(calls.length, 0);
});

test('against the real ip, one process per batch (a given runner): it stops at the failing line and names it', {
  skip: process.getuid?.() !== 0,
}, async () => {
  const ip = new IpCommand({ exec: execRunner });
  const name = `kxb${Math.random().toString(36).slice(2, 12)}`;
  const { failed } = await ip.batch([
    ['link', 'show', 'dev', 'lo'],
    ['link', 'set', 'dev', name, 'up'],
    ['link', 'show', 'dev', 'lo'],
  ]);
  assert.equal(failed?.index, 1);
  assert.deepEqual(failed.error.argv, ['ip', 'link', 'set', 'dev', name, 'up']);
  assert.ok(isNoSuchDevice(failed.error), String(failed.error));
  // An argument ip refuses ends the whole batch without naming the line: that is a rejection.
  const err = await ip
    .batch([
      ['link', 'show', 'dev', 'lo'],
      ['link', 'set', 'dev', name, 'master', name],
    ])
    .catch((e: unknown) => e);
  assert.ok(err instanceof CommandError, String(err));
  assert.deepEqual(err.argv, ['ip', '-batch', '-']);
  assert.equal(err.exitCode, 255);
});
