// The loader reads the original's kuryr.conf files as oslo.config does: several files and directories in
// command-line order, unknown options and sections ignored (with a warning here), empty values unset; a file
// written for the original selects the Neutron backend; oslo.log's log_file/log_dir/use_stderr/debug.
// oslo.config: https://docs.openstack.org/oslo.config/latest/reference/cfg.html (--config-file, --config-dir).
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { CONFIG_SAMPLE } from '../../scripts/gen-config-doc.ts';
import { commonFlags, parseCommand } from '../../src/cli/args.ts';
import { configFiles, loadConfig } from '../../src/config/load.ts';
import { KuryrError } from '../../src/errors.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'kuryr-conf-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string, name = `f${n++}.conf`, where = dir): string {
  const p = path.join(where, name);
  writeFileSync(p, text, { mode: 0o600 });
  chmodSync(p, 0o600);
  return p;
}
const NEUTRON_CREDENTIALS = [
  '[neutron]',
  'auth_type = password',
  'auth_url = http://127.0.0.1:5000/v3',
  'username = kuryr',
  'password = secret',
  'project_name = service',
  'user_domain_name = Default',
  'project_domain_name = Default',
].join('\n');

function configError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(
    fn,
    (err: unknown) => err instanceof KuryrError && err.code === 'KURYR_ERR_CONFIG' && pattern.test(err.message),
  );
}

describe('kuryr.conf files', () => {
  test('a password with ";" and " #" reaches the Neutron client whole', () => {
    const c = loadConfig({ config: file(`${NEUTRON_CREDENTIALS}\npassword = pa;ss #word\n`) }, {});
    assert.equal(c.sections.neutron?.password, 'pa;ss #word');
  });

  test('"key: value" assignments and [Neutron] are read like "key = value" and [neutron]', () => {
    const c = loadConfig(
      { config: file('[Neutron]\ndefault_subnetpool_v4: pool4\n[BINDING]\nveth_dst_prefix: ens\n') },
      {},
    );
    assert.equal(c.driver.defaultSubnetpoolV4, 'pool4');
    assert.equal(c.driver.vethDstPrefix, 'ens');
  });

  test('an unknown option or section is one warning line each (file, line, section, key), not an error', () => {
    const conf = file(
      [
        '[DEFAULT]',
        'verbose = True',
        'no_such_option = 1',
        '[binding]',
        'typo_prefix = x',
        '[oslo_policy]',
        'policy_file = p',
      ].join('\n'),
    );
    const c = loadConfig({ config: conf }, {});
    assert.deepEqual(c.warnings, [
      `${conf}:3: unknown option [DEFAULT] no_such_option ignored`,
      `${conf}:5: unknown option [binding] typo_prefix ignored`,
      `${conf}: unknown section [oslo_policy] ignored`,
    ]);
  });

  test("kolla-ansible's [neutron] auth_uri and www_authenticate_uri are known: no warning", () => {
    const c = loadConfig(
      {
        config: file(
          `${NEUTRON_CREDENTIALS}\nauth_uri = http://127.0.0.1:5000\nwww_authenticate_uri = http://127.0.0.1:5000\n`,
        ),
      },
      {},
    );
    assert.deepEqual(c.warnings, []);
    assert.equal(c.backend, 'neutron');
  });

  test("devstack's keystonemiddleware keys in [neutron] are warnings; its empty cafile is unset", () => {
    const conf = file(
      `${NEUTRON_CREDENTIALS}\nsigning_dir = /var/cache/kuryr\nmemcached_servers = localhost:11211\ncafile =\n`,
    );
    const c = loadConfig({ config: conf }, {});
    assert.deepEqual(
      c.warnings.map((w) => w.replace(`${conf}:`, '')),
      ['9: unknown option [neutron] signing_dir ignored', '10: unknown option [neutron] memcached_servers ignored'],
    );
    assert.equal('cafile' in (c.sections.neutron ?? {}), false);
  });

  test('the section named by auth_section is known', () => {
    const conf = file('[neutron]\nauth_section = keystone_authtoken\n[keystone_authtoken]\nauth_type = password\n');
    const c = loadConfig({ config: conf }, {});
    assert.deepEqual(c.warnings, []);
    assert.equal(c.sections.keystone_authtoken?.auth_type, 'password');
  });

  test('an empty value means unset: the default applies', () => {
    const c = loadConfig(
      {
        config: file('[DEFAULT]\nsubnetpool_name_prefix =\ncapability_scope =\n[kuryr_ts]\nbackend =\ngc_interval =\n'),
      },
      {},
    );
    assert.equal(c.driver.subnetpoolNamePrefix, 'kuryrPool');
    assert.equal(c.driver.capabilityScope, 'local');
    assert.equal(c.backend, 'embedded');
    assert.equal(c.gcIntervalSeconds, 300);
  });

  test('--config-file is repeatable: a later file beats an earlier one, key by key', () => {
    const a = file('[DEFAULT]\nsubnetpool_name_prefix = fromA\ncapability_scope = global\n');
    const b = file('[DEFAULT]\nsubnetpool_name_prefix = fromB\n');
    const c = loadConfig(
      {
        configSources: [
          { kind: 'file', path: a },
          { kind: 'file', path: b },
        ],
      },
      {},
    );
    assert.equal(c.driver.subnetpoolNamePrefix, 'fromB');
    assert.equal(c.driver.capabilityScope, 'global');
    assert.deepEqual(c.configFiles, [a, b]);
    assert.equal(c.configFile, b);
  });

  test('--config-dir reads its *.conf files sorted by name, in command-line order with --config-file', () => {
    const d = path.join(dir, 'conf.d');
    mkdirSync(d);
    file('[DEFAULT]\nsubnetpool_name_prefix = from20\n', '20-b.conf', d);
    file('[DEFAULT]\nsubnetpool_name_prefix = from10\nbindir = /from10\n', '10-a.conf', d);
    file('[DEFAULT]\nsubnetpool_name_prefix = notread\n', 'README', d);
    const main = file('[DEFAULT]\nsubnetpool_name_prefix = main\nbindir = /main\n');
    const dirLast = loadConfig(
      {
        configSources: [
          { kind: 'file', path: main },
          { kind: 'dir', path: d },
        ],
      },
      {},
    );
    assert.equal(dirLast.driver.subnetpoolNamePrefix, 'from20');
    assert.equal(dirLast.bindir, '/from10');
    assert.deepEqual(dirLast.configFiles, [main, path.join(d, '10-a.conf'), path.join(d, '20-b.conf')]);
    const fileLast = loadConfig(
      {
        configSources: [
          { kind: 'dir', path: d },
          { kind: 'file', path: main },
        ],
      },
      {},
    );
    assert.equal(fileLast.driver.subnetpoolNamePrefix, 'main');
  });

  test('without --config-file the first default file that exists is read, before --config-dir', () => {
    const d = path.join(dir, 'empty.d');
    mkdirSync(d);
    const exists = (p: string) => p === '/etc/kuryr.conf' || p === d;
    assert.deepEqual(configFiles({ configSources: [{ kind: 'dir', path: d }] }, exists), ['/etc/kuryr.conf']);
    assert.deepEqual(
      configFiles({ config: '/x.conf' }, () => false),
      ['/x.conf'],
    );
  });

  test('a missing file or directory is an error naming it', () => {
    configError(
      () => loadConfig({ config: path.join(dir, 'missing.conf') }, {}),
      /cannot read configuration file .*missing\.conf/,
    );
    configError(
      () => loadConfig({ configSources: [{ kind: 'dir', path: path.join(dir, 'nodir') }] }, {}),
      /cannot read configuration directory .*nodir/,
    );
  });

  test('a value error names the file that set the value', () => {
    const a = file('[DEFAULT]\ncapability_scope = global\n');
    const b = file('[DEFAULT]\ncapability_scope = everywhere\n');
    configError(
      () =>
        loadConfig(
          {
            configSources: [
              { kind: 'file', path: a },
              { kind: 'file', path: b },
            ],
          },
          {},
        ),
      new RegExp(`${b}: \\[DEFAULT\\] capability_scope: expected one of local, global`),
    );
  });

  test('a parse error names the file and line', () => {
    configError(
      () => loadConfig({ config: file('debug = true\n') }, {}),
      /at line 1, Section must be started before assignment/,
    );
  });
});

describe('backend choice', () => {
  test('a file written for the original ([neutron] credentials, no backend) selects Neutron', () => {
    assert.equal(loadConfig({ config: file(NEUTRON_CREDENTIALS) }, {}).backend, 'neutron');
  });

  test('an explicit choice wins: flag, then KURYR_BACKEND, then [kuryr_ts] backend', () => {
    const conf = file(NEUTRON_CREDENTIALS);
    assert.equal(loadConfig({ config: conf, backend: 'embedded' }, {}).backend, 'embedded');
    assert.equal(loadConfig({ config: conf }, { KURYR_BACKEND: 'embedded' }).backend, 'embedded');
    assert.equal(
      loadConfig({ config: file(`${NEUTRON_CREDENTIALS}\n[kuryr_ts]\nbackend = embedded\n`) }, {}).backend,
      'embedded',
    );
  });

  test('[neutron] with only the embedded backend’s keys stays embedded; no file is embedded', () => {
    assert.equal(
      loadConfig({ config: file('[neutron]\ndefault_subnetpool_v4 = p\nenable_dhcp = false\n') }, {}).backend,
      'embedded',
    );
    assert.equal(loadConfig({ config: file('') }, {}).backend, 'embedded');
  });

  test('[neutron] with other keys but no credentials fails, saying how to choose', () => {
    configError(
      () => loadConfig({ config: file('[neutron]\nregion_name = RegionOne\nsigning_dir = /x\n') }, {}),
      /\[neutron\] sets region_name, signing_dir but no credentials, and no backend is chosen: .*backend = neutron.*backend = embedded/,
    );
  });

  test('an invalid choice is an error', () => {
    configError(
      () => loadConfig({ config: file(''), backend: 'openstack' }, {}),
      /--backend must be embedded or neutron/,
    );
    configError(
      () => loadConfig({ config: file('[kuryr_ts]\nbackend = nova\n') }, {}),
      /\[kuryr_ts\] backend: expected one of embedded, neutron/,
    );
  });
});

describe('oslo.log options', () => {
  test('[DEFAULT] log_file, log_dir, use_stderr, debug', () => {
    const c = loadConfig(
      { config: file('[DEFAULT]\nlog_dir = /var/log/kolla/kuryr\ndebug = True\nuse_stderr = true\n') },
      {},
    );
    assert.deepEqual(c.logging, { logFile: null, logDir: '/var/log/kolla/kuryr', useStderr: true, program: 'kuryr' });
    assert.equal(c.logLevel, 'debug');
    const d = loadConfig({ config: file('[DEFAULT]\nlog_file = /var/log/kuryr.log\n'), program: 'kuryr-server' }, {});
    assert.deepEqual(d.logging, {
      logFile: '/var/log/kuryr.log',
      logDir: null,
      useStderr: false,
      program: 'kuryr-server',
    });
    assert.equal(d.logLevel, 'info');
  });

  test('--log-file, --log-dir and --debug beat the file', () => {
    const conf = file('[DEFAULT]\nlog_dir = /a\nlog_file = a.log\ndebug = false\n');
    const c = loadConfig({ config: conf, logDir: '/b', logFile: 'b.log', debug: true }, {});
    assert.equal(c.logging.logDir, '/b');
    assert.equal(c.logging.logFile, 'b.log');
    assert.equal(c.logLevel, 'debug');
  });
});

describe('command line', () => {
  test('--config-file and --config-dir are repeatable and kept in order; -d is --debug', () => {
    const { values } = parseCommand([
      '--config-file',
      'a',
      '--config-dir',
      'd',
      '--config-file=b',
      '-d',
      '--log-dir',
      '/l',
    ]);
    const flags = commonFlags(values, 'kuryr-server');
    assert.deepEqual(flags.configSources, [
      { kind: 'file', path: 'a' },
      { kind: 'dir', path: 'd' },
      { kind: 'file', path: 'b' },
    ]);
    assert.equal(flags.debug, true);
    assert.equal(flags.logDir, '/l');
    assert.equal(flags.program, 'kuryr-server');
  });
});

describe('etc/kuryr.conf.sample', () => {
  test('loads without a warning and changes nothing: every option is commented out', () => {
    const fromSample = loadConfig({ config: CONFIG_SAMPLE }, {});
    const fromNothing = loadConfig({ config: file('') }, {});
    assert.deepEqual(fromSample.warnings, []);
    const same = (c: typeof fromSample) => ({ ...c, configFile: null, configFiles: [], sections: {} });
    assert.deepEqual(same(fromSample), same(fromNothing));
    assert.ok(Object.values(fromSample.sections).every((section) => Object.keys(section).length === 0));
  });

  test('uncommenting every option with its default loads without a warning and gives the defaults', () => {
    const text = readFileSync(CONFIG_SAMPLE, 'utf8')
      .split('\n')
      .map((line) => (/^#[a-z_0-9]+ = /.test(line) && !line.includes('<None>') ? line.slice(1) : line))
      .join('\n');
    const uncommented = file(text);
    const c = loadConfig({ config: uncommented }, {});
    assert.deepEqual(c.warnings, []);
    const d = loadConfig({ config: file('') }, {});
    assert.deepEqual(
      { ...c, sections: {}, configFile: null, configFiles: [] },
      { ...d, sections: {}, configFile: null, configFiles: [] },
    );
  });
});

describe('one schema for [neutron]', () => {
  test("the Neutron client's defaults are the option table's", async () => {
    const { DEFAULTS } = await import('../../src/neutron/http/config.ts');
    const { NEUTRON_OPTIONS } = await import('../../src/config/options-table.ts');
    assert.equal(NEUTRON_OPTIONS.timeout.default, String(DEFAULTS.timeoutMs / 1000));
    assert.equal(NEUTRON_OPTIONS.endpoint_type.default, DEFAULTS.interface);
    assert.equal(NEUTRON_OPTIONS.insecure.default, String(DEFAULTS.insecure));
  });

  test('every [neutron] key the loader passes to the client is in the table (none warns)', () => {
    const keys = [
      'auth_type',
      'auth_url',
      'username',
      'password',
      'project_name',
      'user_domain_name',
      'project_domain_name',
      'user_domain_id',
      'project_domain_id',
      'region_name',
      'endpoint_type',
      'cafile',
      'insecure',
      'timeout',
      'endpoint',
      'token',
      'auth_uri',
      'www_authenticate_uri',
    ];
    const c = loadConfig({ config: file(`[neutron]\n${keys.map((k) => `${k} = x`).join('\n')}\n`) }, {});
    assert.deepEqual(c.warnings, []);
  });
});
