/**
 * VethBinder's `ip -batch` failures without a kernel: a fake `ip` answers, so the paths the kernel rarely takes are
 * checked: a batch that ends without naming its line (the pair may exist: undone), and a failing line mapped back
 * to its command (rolled back, reported with that command). No root needed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CommandError, type CommandRunner } from '../../src/binding/exec.ts';
import { IpCommand } from '../../src/binding/ip-command.ts';
import { interfaceNames } from '../../src/binding/names.ts';
import { VethBinder } from '../../src/binding/veth-binder.ts';

const PORT = {
  portId: '3f6f0e2c-9b4d-4c51-8d0e-0123456789ab',
  endpointId: 'e'.repeat(64),
  networkId: '7b166132-cf00-4000-8000-000000000001',
  projectId: 'p',
  mac: 'fa:16:3e:00:00:01',
  vifType: 'tap',
  vifDetails: {},
  mtu: 1500,
};
const names = interfaceNames(PORT.portId);

/** A fake `ip`: `-batch` answers with `batch`, `link show` with our veth pair, the rest succeeds. */
function fakeIp(batch: (input: string) => never | { stdout: string; stderr: string }) {
  const calls: string[] = [];
  const exec: CommandRunner = async (_file, args, { input }) => {
    calls.push(args.join(' '));
    if (args.includes('-batch')) return batch(input ?? '');
    if (args.includes('show')) {
      const veth = {
        ifindex: 7,
        ifname: names.host,
        mtu: 1500,
        link: names.container,
        linkinfo: { info_kind: 'veth' },
      };
      return { stdout: JSON.stringify([veth]), stderr: '' };
    }
    return { stdout: '', stderr: '' };
  };
  return { ip: new IpCommand({ exec }), calls };
}

test('a batch that ends without naming its line: the pair it may have made is deleted, the error reported', async () => {
  const { ip, calls } = fakeIp(() => {
    throw Object.assign(new Error('exit 255'), { code: 255, stdout: '', stderr: 'Error: argument "x" is wrong\n' });
  });
  const err = await new VethBinder({ ip }).bind(PORT).catch((e: unknown) => e);
  assert.ok(err instanceof CommandError, String(err));
  assert.equal(err.exitCode, 255);
  assert.ok(calls.includes(`link del dev ${names.host}`), calls.join('\n'));
});

test('a failing line: rolled back, and reported as that command alone', async () => {
  const { ip, calls } = fakeIp(() => {
    throw Object.assign(new Error('exit 1'), {
      code: 1,
      stdout: '',
      stderr: 'RTNETLINK answers: Invalid argument\nCommand failed -:2\n',
    });
  });
  const err = await new VethBinder({ ip }).bind(PORT).catch((e: unknown) => e);
  assert.ok(err instanceof CommandError, String(err));
  assert.deepEqual(err.argv, ['ip', 'link', 'set', 'dev', names.container, 'mtu', '1500', 'address', PORT.mac]);
  assert.equal(
    err.message,
    `\`ip link set dev ${names.container} mtu 1500 address ${PORT.mac}\` exited with status 1: RTNETLINK answers: Invalid argument`,
  );
  assert.ok(calls.includes(`link del dev ${names.host}`), 'the pair made by line 1 is deleted');
});
