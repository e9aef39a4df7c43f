// A bind script's output reaches Docker's Err only as a short, redacted excerpt; the log keeps the whole
// output, redacted too.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OUTPUT_EXCERPT_CHARS, outputExcerpt } from '../../src/binding/exec.ts';
import { BindHooks } from '../../src/binding/hook.ts';
import type { Port } from '../../src/neutron/types.ts';
import { errorReply } from '../../src/plugin/error-response.ts';
import { vifPortOf } from '../../src/driver/port-drivers/veth.ts';

const port = {
  id: 'b7f1c2d4-0000-4000-8000-000000000001',
  network_id: 'b7f1c2d4-0000-4000-8000-000000000002',
  device_id: 'e'.repeat(64),
  mac_address: 'fa:16:3e:00:00:01',
  project_id: 'p',
  'binding:vif_details': {},
} as unknown as Port;

test('a failing bind script: Err holds a short redacted excerpt, the log the whole redacted output', async () => {
  const noise = 'x'.repeat(200_000);
  const stdout = `${noise}\nconnecting with SERVICE_PASSWORD=hunter2 to http://admin:hunter3@10.0.0.1:5000\n`;
  const stderr = `debug: OS_PASSWORD=hunter4\n${noise}\nerror: X-Auth-Token: gAAAAABtok${'t'.repeat(60)} refused\n`;
  const logged: { level: string; obj: Record<string, unknown> }[] = [];
  const hooks = new BindHooks({
    bindir: '/nonexistent',
    runner: async () => {
      throw Object.assign(new Error('exit 1'), { code: 1, stdout, stderr });
    },
    log: {
      debug: (obj) => logged.push({ level: 'debug', obj: obj as Record<string, unknown> }),
      warn: (obj) => logged.push({ level: 'warn', obj: obj as Record<string, unknown> }),
      error: (obj) => logged.push({ level: 'error', obj: obj as Record<string, unknown> }),
    },
  });
  const err = await hooks.bind('/nonexistent/vendor', vifPortOf(port), 'tap-test').catch((e: unknown) => e);
  const reply = errorReply(err);
  assert.equal(reply.status, 500);
  const text = reply.body.Err;
  assert.ok(text.length < 2 * OUTPUT_EXCERPT_CHARS + 600, `Err is short (${text.length} characters)`);
  for (const secret of ['hunter2', 'hunter3', 'hunter4', 'gAAAAABtok']) assert.ok(!text.includes(secret), secret);
  assert.match(
    text,
    /^KURYR_ERR_BINDING: Unexpected error while running command\.\nCommand: \/nonexistent\/vendor bind /,
  );
  assert.match(text, /Exit code: 1/);
  assert.match(text, /characters omitted\]…/, 'the cut is marked');
  assert.match(text, /X-Auth-Token: \[redacted\] refused/, 'the end of stderr, where the reason is, is kept');
  // The log has everything, redacted.
  const failure = logged.find((l) => l.level === 'error');
  assert.ok(failure, 'the failure is logged');
  const all = JSON.stringify(failure.obj);
  assert.ok(all.length > 400_000, 'the whole output is logged');
  for (const secret of ['hunter2', 'hunter3', 'hunter4', 'gAAAAABtok']) assert.ok(!all.includes(secret), secret);
});

test('a short output is shown whole (processutils form); only credentials change', () => {
  assert.equal(outputExcerpt('it is broken\n'), 'it is broken\n');
  assert.equal(outputExcerpt('password=abc failed'), 'password=[redacted] failed');
  const long = `${'a'.repeat(1000)}END`;
  assert.equal(outputExcerpt(long), `[603 characters omitted]…${long.slice(-400)}`);
});
