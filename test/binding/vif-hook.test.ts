/**
 * Bind scripts `<bindir>/<vif_type>` (kuryr's calling convention, behaviour doc 13.3) against the real kernel,
 * with scripts this test writes into a temp bindir that record their arguments (NUL-separated).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CommandError } from '../../src/binding/exec.ts';
import { pythonRepr } from '../../src/binding/python-repr.ts';
import { BindingError } from '../../src/binding/errors.ts';
import { type BindingLog, vifDetailsText } from '../../src/binding/hook.ts';
import { interfaceNames } from '../../src/binding/names.ts';
import { VethBinder } from '../../src/binding/veth-binder.ts';
import { deleteLinks, existingLinks, ip, kernelSkipReason, makePort, randomId } from './kernel.ts';
import { vifPortOf } from '../../src/driver/port-drivers/veth.ts';

const skip = await kernelSkipReason();

describe('vif_details as bind scripts see it (Python repr)', () => {
  test('the rendering kuryr passes: double-quoted dict repr, or None', () => {
    assert.equal(
      vifDetailsText({ port_filter: true, ovs_hybrid_plug: true }),
      `"{'port_filter': True, 'ovs_hybrid_plug': True}"`,
    );
    assert.equal(vifDetailsText({}), 'None');
    assert.equal(vifDetailsText(null), 'None');
    assert.equal(vifDetailsText(undefined), 'None');
    assert.equal(
      vifDetailsText({
        connectivity: 'l2',
        port_filter: false,
        datapath_type: 'system',
        bridge_name: 'br-int',
        vlan: '100',
      }),
      `"{'connectivity': 'l2', 'port_filter': False, 'datapath_type': 'system', 'bridge_name': 'br-int', 'vlan': '100'}"`,
    );
  });

  test('values: None, numbers, lists, nesting, quotes and escapes as Python 3 prints them', () => {
    assert.equal(
      pythonRepr({ a: null, b: [1, 'x', [true]], c: { d: -2 } }),
      `{'a': None, 'b': [1, 'x', [True]], 'c': {'d': -2}}`,
    );
    assert.equal(pythonRepr(1.5), '1.5');
    assert.equal(pythonRepr(0.0001), '0.0001');
    assert.equal(pythonRepr(0.00001), '1e-05');
    assert.equal(pythonRepr(1.5e-7), '1.5e-07');
    assert.equal(pythonRepr(1.5e300), '1.5e+300');
    assert.equal(pythonRepr(123.456), '123.456');
    assert.equal(pythonRepr(-0.5), '-0.5');
    assert.equal(pythonRepr(2 ** 53), '9007199254740992');
    assert.equal(pythonRepr("it's"), `"it's"`);
    assert.equal(pythonRepr(`it's "x"`), `'it\\'s "x"'`);
    assert.equal(pythonRepr('a\\b\nc\td\u0001\u00e9\u200b'), `'a\\\\b\\nc\\td\\x01\u00e9\\u200b'`);
    assert.equal(pythonRepr(''), "''");
  });
});

describe('bind scripts (real kernel)', { skip }, () => {
  let root: string;
  let bindir: string;
  const created = new Set<string>();
  const logged: Array<{ level: string; obj: object }> = [];
  const log: BindingLog = {
    debug: (obj) => void logged.push({ level: 'debug', obj }),
    warn: (obj) => void logged.push({ level: 'warn', obj }),
    error: (obj) => void logged.push({ level: 'error', obj }),
  };
  let binder: VethBinder;

  /** A script that records its arguments to `<root>/<name>.args` (NUL-separated) and then runs `tail`. */
  const script = async (name: string, tail = 'exit 0', mode = 0o755) => {
    const record = path.join(root, `${name}.args`);
    await writeFile(path.join(bindir, name), `#!/bin/sh\nprintf '%s\\0' "$@" >> '${record}'\n${tail}\n`, { mode });
    return async () => {
      const text = await readFile(record, 'utf8').catch(() => '');
      return text.split('\0').slice(0, -1);
    };
  };
  const portFor = (vifType: string, details: Record<string, unknown> = {}) => {
    const port = makePort({
      device_id: randomId().replaceAll('-', ''),
      project_id: `proj-${randomId().slice(0, 8)}`,
      'binding:vif_type': vifType,
      'binding:vif_details': details,
    });
    const names = interfaceNames(port.id);
    created.add(names.host).add(names.container);
    return { port, names };
  };

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'kuryr-vif-hook-'));
    bindir = path.join(root, 'libexec');
    await mkdir(bindir);
    binder = new VethBinder({ owner: 'vif-hook-test', bindir, log, hookTimeoutMs: 1000 });
  });

  after(async () => {
    await deleteLinks(created);
    await rm(root, { recursive: true, force: true });
    assert.deepEqual(await existingLinks(created), [], 'test devices left behind');
  });

  test('bind and unbind run the script with kuryr arguments in kuryr order', async () => {
    const args = await script('midonet', 'echo plugged; echo careful >&2');
    const { port, names } = portFor('midonet', { port_filter: true, ovs_hybrid_plug: true });
    logged.length = 0;

    assert.deepEqual(await binder.bind({ ...vifPortOf(port), mtu: 1450 }), names);
    const details = `"{'port_filter': True, 'ovs_hybrid_plug': True}"`;
    assert.deepEqual(await args(), [
      'bind',
      port.id,
      names.host,
      port.device_id,
      port.mac_address,
      port.network_id,
      port.project_id,
      details,
    ]);
    const host = await ip.getLink(names.host);
    assert.equal(host?.kind, 'veth');
    assert.ok(host?.flags.includes('UP'), 'the host end is up when the script runs');
    assert.equal(host?.master, undefined, 'the script, not kuryr-ts, decides where it goes');
    assert.equal((await ip.getLink(names.container))?.address, port.mac_address.toLowerCase());
    // stdout at debug, stderr at error
    assert.deepEqual(
      logged.map((l) => [
        l.level,
        (l.obj as { stdout?: string; stderr?: string }).stdout ?? (l.obj as { stderr?: string }).stderr,
      ]),
      [
        ['debug', 'plugged\n'],
        ['error', 'careful\n'],
      ],
    );

    await binder.unbind(vifPortOf(port));
    assert.deepEqual((await args()).slice(8), [
      'unbind',
      port.id,
      names.host,
      port.device_id,
      port.mac_address,
      details,
      port.network_id,
    ]);
    assert.deepEqual(await existingLinks([names.host, names.container]), []);
  });

  test('no vif_details: the script gets the text None', async () => {
    const args = await script('iovisor');
    const { port } = portFor('iovisor');
    await binder.bind({ ...vifPortOf(port), mtu: 1500 });
    assert.equal((await args())[7], 'None');
    await binder.unbind(vifPortOf(port));
    assert.equal((await args())[13], 'None');
  });

  test('a failing script: error with command, exit code, stdout and stderr; the veth pair is removed', async () => {
    await script('vendor_fail', `echo "half done"; echo "it's broken" >&2; exit 3`);
    const { port, names } = portFor('vendor_fail', { a: 1 });
    const err = await binder.bind({ ...vifPortOf(port), mtu: 1500 }).catch((e: unknown) => e);
    assert.ok(err instanceof CommandError, String(err));
    assert.equal(err.reason, 'bind-script');
    assert.equal(err.code, 'KURYR_ERR_BINDING');
    assert.equal(err.exitCode, 3);
    const file = path.join(bindir, 'vendor_fail');
    assert.equal(
      err.message,
      [
        'Unexpected error while running command.',
        `Command: ${file} bind ${port.id} ${names.host} ${port.device_id} ${port.mac_address} ${port.network_id} ${port.project_id} "{'a': 1}"`,
        'Exit code: 3',
        `Stdout: 'half done\\n'`,
        `Stderr: "it's broken\\n"`,
      ].join('\n'),
    );
    assert.deepEqual(await existingLinks([names.host, names.container]), [], 'bind left nothing');
  });

  test("a missing script: kuryr's message, and nothing created", async () => {
    const { port, names } = portFor('no_such_backend');
    const err = await binder.bind({ ...vifPortOf(port), mtu: 1500 }).catch((e: unknown) => e);
    assert.ok(err instanceof BindingError, String(err));
    assert.equal(err.reason, 'vif-type-unsupported');
    assert.equal(
      err.message,
      "vif_type(no_such_backend) is not supported. A binding script for this type can't be found",
    );
    assert.deepEqual(await existingLinks([names.host, names.container]), []);
  });

  test('vif types that are not plain names never reach the file system', async () => {
    // a script outside bindir that must never run
    const marker = path.join(root, 'escaped');
    await writeFile(path.join(root, 'evil'), `#!/bin/sh\ntouch '${marker}'\n`, { mode: 0o755 });
    await writeFile(path.join(bindir, '.hidden'), `#!/bin/sh\ntouch '${marker}'\n`, { mode: 0o755 });
    for (const vifType of [
      '../evil',
      `${root}/evil`,
      '..',
      '.',
      '.hidden',
      'a/b',
      'x y',
      'ovs\n',
      '-rf',
      'a'.repeat(65),
    ]) {
      const { port, names } = portFor(vifType);
      const err = await binder.bind({ ...vifPortOf(port), mtu: 1500 }).catch((e: unknown) => e);
      assert.ok(err instanceof BindingError, `${JSON.stringify(vifType)}: ${err}`);
      assert.equal(err.reason, 'vif-type-unsupported', vifType);
      assert.match(err.message, /not a valid bind script name/, vifType);
      assert.deepEqual(await existingLinks([names.host, names.container]), [], vifType);
      await binder.unbind(vifPortOf(port)); // unbind skips the hook (with a warning) and still succeeds
    }
    assert.equal(existsSync(marker), false, 'no script outside the allow-list ran');
  });

  test('a script that cannot be executed fails cleanly', async () => {
    await script('not_exec', 'exit 0', 0o644);
    const { port, names } = portFor('not_exec');
    const err = await binder.bind({ ...vifPortOf(port), mtu: 1500 }).catch((e: unknown) => e);
    assert.ok(err instanceof CommandError, String(err));
    assert.equal(err.reason, 'bind-script');
    assert.equal(err.startError, 'EACCES');
    assert.deepEqual(await existingLinks([names.host, names.container]), []);
  });

  test('a script past its time limit is killed; the veth pair is removed', async () => {
    await script('slow', 'exec sleep 30');
    const { port, names } = portFor('slow');
    const started = Date.now();
    const err = await binder.bind({ ...vifPortOf(port), mtu: 1500 }).catch((e: unknown) => e);
    assert.ok(err instanceof CommandError, String(err));
    assert.equal(err.timedOut, true);
    assert.ok(Date.now() - started < 5000);
    assert.deepEqual(await existingLinks([names.host, names.container]), []);
  });

  test('unbind: a failing script fails and keeps the host end (as kuryr); a missing one is skipped', async () => {
    await script('flaky');
    const { port, names } = portFor('flaky');
    await binder.bind({ ...vifPortOf(port), mtu: 1500 });
    await script('flaky', 'echo nope >&2; exit 1');
    const err = await binder.unbind(vifPortOf(port)).catch((e: unknown) => e);
    assert.ok(err instanceof CommandError, String(err));
    assert.match(err.message, /\nCommand: \S+flaky unbind /);
    assert.ok(await ip.getLink(names.host), 'still there: the script did not undo its binding');

    await rm(path.join(bindir, 'flaky'));
    logged.length = 0;
    await binder.unbind(vifPortOf(port));
    assert.deepEqual(await existingLinks([names.host, names.container]), []);
    assert.equal(logged[0]?.level, 'warn', 'the skipped script is logged');
  });

  test('unbound and binding_failed: bind goes to their script like kuryr, unbind never does', async () => {
    const args = await script('unbound', 'echo "binding:vif_type is invalid."; exit 1');
    const { port, names } = portFor('unbound');
    const err = await binder.bind({ ...vifPortOf(port), mtu: 1500 }).catch((e: unknown) => e);
    assert.ok(err instanceof CommandError, String(err));
    assert.match(err.message, /Stdout: 'binding:vif_type is invalid.\\n'/);
    assert.equal((await args())[0], 'bind');
    assert.deepEqual(await existingLinks([names.host, names.container]), []);

    // a leftover host end of a port whose binding is gone can always be removed
    await ip.run(['link', 'add', 'dev', names.host, 'type', 'veth', 'peer', 'name', names.container]);
    await binder.unbind(vifPortOf(port));
    assert.deepEqual(await existingLinks([names.host, names.container]), []);
    assert.equal((await args()).length, 8, 'the unbound script was not run for unbind');

    const failedArgs = await script('binding_failed', 'exit 1');
    const failed = portFor('binding_failed');
    await ip.run(['link', 'add', 'dev', failed.names.host, 'type', 'veth', 'peer', 'name', failed.names.container]);
    await binder.unbind(vifPortOf(failed.port));
    assert.deepEqual(await existingLinks([failed.names.host, failed.names.container]), []);
    assert.deepEqual(await failedArgs(), [], 'the binding_failed script was not run for unbind');
  });
});
