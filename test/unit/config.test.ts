import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { KuryrError } from '../../src/errors.ts';

describe('configuration: flags > environment > kuryr.conf > defaults', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kuryr-conf-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const noFile = file('empty.conf', '');

  test('defaults match kuryr-libnetwork', () => {
    const c = loadConfig({ config: noFile }, {});
    assert.equal(c.driverName, 'kuryr');
    assert.equal(c.backend, 'embedded');
    assert.equal(c.socketPath, '/run/docker/plugins/kuryr.sock');
    assert.equal(c.driver.capabilityScope, 'local');
    assert.equal(c.driver.subnetpoolNamePrefix, 'kuryrPool');
    assert.equal(c.driver.defaultSubnetpoolV4, 'kuryr');
    assert.equal(c.driver.defaultSubnetpoolV6, 'kuryr6');
    assert.equal(c.driver.vethDstPrefix, 'eth');
    assert.equal(c.driver.enableDhcp, true);
    assert.equal(c.embedded.defaultPoolPrefixV4, '10.10.0.0/16');
    assert.equal(c.embedded.defaultPoolPrefixlenV4, 24);
    assert.equal(c.bindir, '/usr/libexec/kuryr');
  });

  test("reads the original's kuryr.conf, including options it ignores", () => {
    const conf = file(
      'kuryr.conf',
      [
        '[DEFAULT]',
        'bindir = /usr/local/libexec/kuryr',
        'capability_scope = global',
        'subnetpool_name_prefix = myPool',
        'debug = True',
        'log_dir = /var/log/kuryr',
        '[neutron]',
        'auth_url = http://127.0.0.1:5000/v3',
        'username = admin',
        'password = secret',
        'default_subnetpool_v4 = pool4',
        'enable_dhcp = False',
        '[binding]',
        'veth_dst_prefix = ens',
        '[keystone_authtoken]',
        'anything = goes',
      ].join('\n'),
    );
    const c = loadConfig({ config: conf }, {});
    assert.equal(c.driver.capabilityScope, 'global');
    assert.equal(c.driver.subnetpoolNamePrefix, 'myPool');
    assert.equal(c.driver.defaultSubnetpoolV4, 'pool4');
    assert.equal(c.driver.enableDhcp, false);
    assert.equal(c.driver.vethDstPrefix, 'ens');
    assert.equal(c.logLevel, 'debug');
    assert.equal(c.bindir, '/usr/local/libexec/kuryr');
    assert.equal(c.configFile, conf);
  });

  test('the environment beats the file, flags beat both', () => {
    const conf = file('scope.conf', '[DEFAULT]\ncapability_scope = local\n[kuryr_ts]\ndriver_name = fromfile\n');
    const c = loadConfig({ config: conf }, { CAPABILITY_SCOPE: 'global', KURYR_DRIVER_NAME: 'fromenv' });
    assert.equal(c.driver.capabilityScope, 'global');
    assert.equal(c.driverName, 'fromenv');
    const d = loadConfig({ config: conf, driverName: 'fromflag' }, { KURYR_DRIVER_NAME: 'fromenv' });
    assert.equal(d.driverName, 'fromflag');
    assert.equal(d.socketPath, '/run/docker/plugins/fromflag.sock');
  });

  test('errors name the file, the section and the key', () => {
    const bad = (text: string, pattern: RegExp) => {
      const p = file(`bad-${Math.random()}.conf`, text);
      assert.throws(
        () => loadConfig({ config: p }, {}),
        (err: unknown) =>
          err instanceof KuryrError &&
          err.code === 'KURYR_ERR_CONFIG' &&
          pattern.test(err.message) &&
          err.message.includes(p),
      );
    };
    bad('[DEFAULT]\ncapability_scope = everywhere\n', /\[DEFAULT\] capability_scope: expected one of local, global/);
    bad('[neutron]\nenable_dhcp = maybe\n', /\[neutron\] enable_dhcp: expected a boolean/);
    bad('[embedded]\ndefault_pool_prefix_v4 = 10.0.0.0/33\n', /default_pool_prefix_v4/);
    assert.throws(() => loadConfig({ config: path.join(dir, 'missing.conf') }, {}), /cannot read configuration file/);
  });

  test('flag values are checked', () => {
    assert.throws(
      () => loadConfig({ config: noFile, backend: 'openstack' }, {}),
      /--backend must be embedded or neutron/,
    );
    assert.throws(() => loadConfig({ config: noFile, driverName: '../evil' }, {}), /driver name/);
    assert.throws(() => loadConfig({ config: noFile, listen: 'nowhere' }, {}), /--listen expects HOST:PORT/);
    const tcp = loadConfig({ config: noFile, listen: '127.0.0.1:23750' }, {});
    assert.deepEqual(tcp.listen, { host: '127.0.0.1', port: 23750 });
    assert.equal(tcp.socketPath, null);
    assert.deepEqual(loadConfig({ config: noFile, listen: '[::1]:23750' }, {}).listen, { host: '::1', port: 23750 });
  });
});
