// Host tools get a minimal environment: PATH and LANG=C, nothing else. The plugin runs as root and its own
// environment may hold secrets (SERVICE_PASSWORD from the original image's variables, OS_PASSWORD, ...): no
// runner may hand them to `ip`, `nft`, `ovs-vsctl`, a bind script or the doctor's probes.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { runCommand } from '../../src/binding/exec.ts';
import { BindHooks } from '../../src/binding/hook.ts';
import { IpCommand } from '../../src/binding/ip-command.ts';
import { NftIsolation } from '../../src/binding/isolation.ts';
import { OvsVsctl } from '../../src/binding/ovs.ts';
import { toolEnv } from '../../src/binding/tool-env.ts';
import type { Port } from '../../src/neutron/types.ts';
import { runTool } from '../../src/doctor/host.ts';
import { vifPortOf } from '../../src/driver/port-drivers/veth.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'kuryr-env-'));
const recorder = path.join(dir, 'recorder');
const records = path.join(dir, 'records.jsonl');
const SECRET = 'hunter2-service-password';
const saved = { ...process.env };

before(() => {
  // A program that appends its whole environment (one JSON line) to `records`, and prints `[]` (valid JSON for
  // `ip -json` and `nft -j` callers).
  writeFileSync(
    recorder,
    `#!${process.execPath}\nrequire('node:fs').appendFileSync(${JSON.stringify(records)}, JSON.stringify(process.env) + '\\n');\nprocess.stdout.write('[]');\n`,
  );
  chmodSync(recorder, 0o755);
  process.env.SERVICE_PASSWORD = SECRET;
  process.env.OS_PASSWORD = SECRET;
  process.env.LC_ALL = 'de_DE.UTF-8';
});
after(() => {
  for (const k of ['SERVICE_PASSWORD', 'OS_PASSWORD', 'LC_ALL']) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
  rmSync(dir, { recursive: true, force: true });
});

function lastRecord(): Record<string, string> {
  const lines = readFileSync(records, 'utf8').trim().split('\n');
  return JSON.parse(lines.at(-1)!) as Record<string, string>;
}

/** `home`: the long-lived nft gets HOME=/dev/null, so that its line editor writes no history (nft-session.ts). */
function assertMinimal(what: string, home?: string): void {
  const env = lastRecord();
  const keys = home === undefined ? ['LANG', 'PATH'] : ['HOME', 'LANG', 'PATH'];
  assert.deepEqual(Object.keys(env).sort(), keys, `${what}: ${JSON.stringify(env)}`);
  assert.equal(env.HOME, home, what);
  assert.equal(env.LANG, 'C', what);
  assert.equal(env.PATH, process.env.PATH, what);
  assert.ok(!JSON.stringify(env).includes(SECRET), what);
}

const port = {
  id: 'b7f1c2d4-0000-4000-8000-000000000001',
  network_id: 'b7f1c2d4-0000-4000-8000-000000000002',
  device_id: 'e'.repeat(64),
  mac_address: 'fa:16:3e:00:00:01',
  project_id: 'p',
  'binding:vif_details': {},
} as unknown as Port;

test('toolEnv: PATH (or a default) and LANG=C, nothing else', () => {
  assert.deepEqual(toolEnv({ PATH: '/x', SERVICE_PASSWORD: 's', HOME: '/root' }), { PATH: '/x', LANG: 'C' });
  assert.equal(toolEnv({}).PATH, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
});

test('runCommand (bind scripts, ovs-vsctl): minimal environment', async () => {
  await runCommand('bind-script', recorder, ['x'], { timeoutMs: 10_000 });
  assertMinimal('runCommand');
});

test('a bind script: minimal environment', async () => {
  writeFileSync(path.join(dir, 'vendor'), readFileSync(recorder));
  chmodSync(path.join(dir, 'vendor'), 0o755);
  const hooks = new BindHooks({ bindir: dir });
  await hooks.bind(await hooks.scriptFor('vendor'), vifPortOf(port), 'tap-test');
  assertMinimal('bind script');
});

test('ovs-vsctl: minimal environment', async () => {
  await new OvsVsctl({ binary: recorder }).run(['show']);
  assertMinimal('ovs-vsctl');
});

test('ip: minimal environment', async () => {
  await new IpCommand({ binary: recorder }).run(['link', 'show']);
  assertMinimal('ip');
});

test('nft: minimal environment', async () => {
  await new NftIsolation({ binary: recorder })
    .ensureNetwork('kxtest0', [{ address: '10.99.0.1', prefixLength: 24 }] as never)
    .catch(() => undefined); // only the environment it ran with matters here
  assertMinimal('nft', '/dev/null');
});

test("the doctor's probes: minimal environment", async () => {
  const r = await runTool(recorder, ['-V']);
  assert.equal(r.code, 0);
  assertMinimal('doctor');
});
