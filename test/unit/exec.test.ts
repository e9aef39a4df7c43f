// The one runner of host programs (src/binding/exec.ts): argument arrays (no shell), standard input, a time
// limit, an AbortSignal, and one error class that names the command, the exit status and standard error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bindingErrorReasons } from '../../src/binding/errors.ts';
import { CommandError, execRunner, runCommand } from '../../src/binding/exec.ts';

const node = process.execPath;
const ip = bindingErrorReasons.ipCommand;

test('standard input reaches the program; its output comes back', async () => {
  const out = await runCommand(ip, node, ['-e', 'process.stdin.pipe(process.stdout)'], {
    timeoutMs: 10_000,
    input: 'line 1\nline 2\n',
  });
  assert.equal(out.stdout, 'line 1\nline 2\n');
});

test('arguments are passed as they are, never through a shell', async () => {
  const odd = '$(echo no); `x` "y" \'z\' > /dev/null';
  const out = await runCommand(ip, node, ['-e', 'process.stdout.write(process.argv[1])', odd], {
    timeoutMs: 10_000,
  });
  assert.equal(out.stdout, odd);
});

test('a non-zero exit: the command line, the status and standard error in the message and the fields', async () => {
  const err = await runCommand(
    ip,
    node,
    ['-e', 'process.stderr.write("RTNETLINK answers: File exists\\n"); process.exit(2)'],
    {
      timeoutMs: 10_000,
    },
  ).catch((e: unknown) => e);
  assert.ok(err instanceof CommandError, String(err));
  assert.equal(err.exitCode, 2);
  assert.equal(err.reason, ip);
  assert.equal(err.code, 'KURYR_ERR_BINDING');
  assert.match(err.message, /^`\S+ -e .*` exited with status 2: RTNETLINK answers: File exists$/);
  assert.equal(err.stderr, 'RTNETLINK answers: File exists\n');
});

test("bind scripts and ovs-vsctl keep kuryr's processutils wording", async () => {
  const err = await runCommand(bindingErrorReasons.bindScript, node, ['-e', 'process.exit(3)'], {
    timeoutMs: 10_000,
  }).catch((e: unknown) => e);
  assert.ok(err instanceof CommandError, String(err));
  assert.match(
    err.message,
    /^Unexpected error while running command\.\nCommand: \S+ -e process\.exit\(3\)\nExit code: 3\n/,
  );
});

test('a program past its time limit is killed, and says so', async () => {
  const started = Date.now();
  const err = await runCommand(ip, node, ['-e', 'setTimeout(() => {}, 30_000)'], { timeoutMs: 200 }).catch(
    (e: unknown) => e,
  );
  assert.ok(err instanceof CommandError, String(err));
  assert.ok(err.timedOut);
  assert.equal(err.exitCode, null);
  assert.match(err.message, /timed out after 200 ms/);
  assert.ok(Date.now() - started < 10_000);
});

test('an AbortSignal kills the program', async () => {
  const controller = new AbortController();
  const running = runCommand(ip, node, ['-e', 'setTimeout(() => {}, 30_000)'], {
    timeoutMs: 30_000,
    signal: controller.signal,
  });
  setTimeout(() => controller.abort(), 100);
  const err = await running.catch((e: unknown) => e);
  assert.ok(err instanceof CommandError, String(err));
  assert.equal(err.exitCode, null);
  assert.equal(err.timedOut, false);
  assert.equal(err.startError, 'ABORT_ERR');
});

test('a missing program: could not be run, with the system error code', async () => {
  const err = await runCommand(ip, '/nonexistent/kuryr-no-such-tool', ['x'], { timeoutMs: 10_000 }).catch(
    (e: unknown) => e,
  );
  assert.ok(err instanceof CommandError, String(err));
  assert.equal(err.startError, 'ENOENT');
  assert.match(err.message, /^`\/nonexistent\/kuryr-no-such-tool x` could not be run: .*ENOENT/);
});

test('the raw runner rejects with the exit status and output (what fakes imitate)', async () => {
  const failure = (await execRunner(node, ['-e', 'console.log("o"); console.error("e"); process.exit(4)'], {
    timeoutMs: 10_000,
  }).catch((e: unknown) => e)) as { code: unknown; stdout: unknown; stderr: unknown };
  assert.equal(failure.code, 4);
  assert.equal(failure.stdout, 'o\n');
  assert.equal(failure.stderr, 'e\n');
});
