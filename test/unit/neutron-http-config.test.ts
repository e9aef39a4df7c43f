/** `[neutron]` section → NeutronClientOptions: every supported form, and errors that name the key. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KuryrError } from '../../src/errors.ts';
import { DEFAULTS, neutronClientOptions, openNeutronHttp } from '../../src/neutron/http/index.ts';
import { RequestCounter } from '../helpers/request-counter.ts';

const V3 = {
  auth_type: 'password',
  auth_url: 'http://controller:5000/v3',
  username: 'kuryr',
  user_domain_name: 'Default',
  password: 'secret',
  project_name: 'service',
  project_domain_name: 'Default',
};

function configError(section: Record<string, string>, message: string | RegExp): void {
  assert.throws(
    () => neutronClientOptions(section),
    (err: unknown) => {
      assert.ok(err instanceof KuryrError, String(err));
      assert.equal(err.code, 'KURYR_ERR_CONFIG');
      if (typeof message === 'string') assert.equal(err.message, message);
      else assert.match(err.message, message);
      return true;
    },
  );
}

describe('neutron http config', () => {
  test('the documented v3 setup, with defaults', () => {
    const o = neutronClientOptions({ ...V3, enable_dhcp: 'True', default_subnetpool_v4: 'kuryr' });
    assert.deepEqual(o, {
      auth: {
        type: 'password',
        version: 'v3',
        authUrl: 'http://controller:5000/v3',
        username: 'kuryr',
        password: 'secret',
        userDomainName: 'Default',
        projectName: 'service',
        projectDomainName: 'Default',
      },
      interface: 'public',
      tls: { insecure: false },
      timeoutMs: DEFAULTS.timeoutMs,
      deadlineMs: DEFAULTS.deadlineMs,
      retry: { ...DEFAULTS.retry },
      maxSockets: DEFAULTS.maxSockets,
    });
  });

  test('IDs win over names; the old tenant_* names and auth_plugin are accepted', () => {
    const o = neutronClientOptions({
      auth_plugin: 'v3password',
      auth_url: 'https://keystone.example/identity/v3/',
      user_id: 'u1',
      username: 'ignored',
      password: 'p',
      tenant_id: 't1',
    });
    assert.deepEqual(o.auth, {
      type: 'password',
      version: 'v3',
      authUrl: 'https://keystone.example/identity/v3/',
      userId: 'u1',
      password: 'p',
      projectId: 't1',
    });
  });

  test('v2.0 from the auth_url or v2password; unversioned URLs are discovered', () => {
    const v2 = { auth_url: 'http://c:5000/v2.0', username: 'u', password: 'p', tenant_name: 't' };
    assert.equal(neutronClientOptions({ auth_type: 'password', ...v2 }).auth.type, 'password');
    const a = neutronClientOptions({ auth_type: 'password', ...v2 }).auth;
    assert.ok(a.type === 'password' && a.version === 'v2.0' && a.projectName === 't');
    const b = neutronClientOptions({ auth_type: 'v2password', ...v2 }).auth;
    assert.ok(b.type === 'password' && b.version === 'v2.0');
    const c = neutronClientOptions({ ...V3, auth_url: 'http://c:5000' }).auth;
    assert.ok(c.type === 'password' && c.version === 'auto');
  });

  test('default_domain_id/_name fill in missing v3 domains', () => {
    const { user_domain_name: _u, project_domain_name: _p, ...bare } = V3;
    const a = neutronClientOptions({ ...bare, default_domain_id: 'default' }).auth;
    assert.ok(a.type === 'password');
    assert.equal(a.userDomainId, 'default');
    assert.equal(a.projectDomainId, 'default');
    const b = neutronClientOptions({ ...bare, default_domain_name: 'Default', project_domain_id: 'd2' }).auth;
    assert.ok(b.type === 'password');
    assert.equal(b.userDomainName, 'Default');
    assert.equal(b.projectDomainId, 'd2');
  });

  test('auth_type none and admin_token take an endpoint', () => {
    assert.deepEqual(neutronClientOptions({ auth_type: 'none', endpoint: 'http://127.0.0.1:9696' }).auth, {
      type: 'none',
      endpoint: 'http://127.0.0.1:9696',
    });
    assert.deepEqual(
      neutronClientOptions({ auth_type: 'admin_token', endpoint: 'http://127.0.0.1:9696', token: 't' }).auth,
      { type: 'admin_token', endpoint: 'http://127.0.0.1:9696', token: 't' },
    );
  });

  test('endpoint_type, region_name, TLS and timeout', () => {
    const o = neutronClientOptions({
      ...V3,
      endpoint_type: 'internalURL',
      region_name: 'RegionTwo',
      cafile: '/etc/ssl/ca.pem',
      certfile: '/etc/kuryr/cert.pem',
      keyfile: '/etc/kuryr/key.pem',
      insecure: 'True',
      timeout: '2.5',
    });
    assert.equal(o.interface, 'internal');
    assert.equal(o.regionName, 'RegionTwo');
    assert.deepEqual(o.tls, {
      cafile: '/etc/ssl/ca.pem',
      certfile: '/etc/kuryr/cert.pem',
      keyfile: '/etc/kuryr/key.pem',
      insecure: true,
    });
    assert.equal(o.timeoutMs, 2_500);
    assert.equal(neutronClientOptions({ ...V3, endpoint_type: 'admin', insecure: 'no' }).interface, 'admin');
    assert.equal(
      neutronClientOptions({ ...V3, timeout: '60' }).deadlineMs,
      60_000,
      'the budget is never below one attempt',
    );
  });

  test('v3applicationcredential: by ID, or by name with its user; no project scope', () => {
    const base = {
      auth_type: 'v3applicationcredential',
      auth_url: 'http://c:5000',
      application_credential_secret: 'shh',
    };
    assert.deepEqual(
      neutronClientOptions({ ...base, application_credential_id: 'ac1', project_name: 'ignored' }).auth,
      {
        type: 'v3applicationcredential',
        version: 'v3',
        authUrl: 'http://c:5000',
        secret: 'shh',
        id: 'ac1',
      },
    );
    assert.deepEqual(
      neutronClientOptions({
        ...base,
        application_credential_name: 'n',
        username: 'kuryr',
        user_domain_name: 'Default',
      }).auth,
      {
        type: 'v3applicationcredential',
        version: 'v3',
        authUrl: 'http://c:5000',
        secret: 'shh',
        name: 'n',
        username: 'kuryr',
        userDomainName: 'Default',
      },
    );
  });

  test('token, v3token, v2token: a token and a project scope', () => {
    const base = { auth_url: 'http://c:5000', token: 'tok', project_name: 'service', project_domain_id: 'default' };
    assert.deepEqual(neutronClientOptions({ ...base, auth_type: 'token' }).auth, {
      type: 'token',
      version: 'auto',
      authUrl: 'http://c:5000',
      token: 'tok',
      projectName: 'service',
      projectDomainId: 'default',
    });
    const v3 = neutronClientOptions({ ...base, auth_type: 'v3token' }).auth;
    assert.ok(v3.type === 'token' && v3.version === 'v3');
    const v2 = neutronClientOptions({ ...base, auth_type: 'v2token' }).auth;
    assert.ok(v2.type === 'token' && v2.version === 'v2.0' && v2.projectDomainId === undefined);
  });

  test('interface (keystoneauth) is endpoint_type (kuryr-lib); the same value in both is fine', () => {
    assert.equal(neutronClientOptions({ ...V3, interface: 'internal' }).interface, 'internal');
    assert.equal(neutronClientOptions({ ...V3, interface: 'adminURL' }).interface, 'admin');
    assert.equal(
      neutronClientOptions({ ...V3, interface: 'internal', endpoint_type: 'internalURL' }).interface,
      'internal',
    );
  });

  test('auth_section reads the auth options from another section', () => {
    const sections: Record<string, Record<string, string>> = { keystone_authtoken: { ...V3, project_name: 'other' } };
    const o = neutronClientOptions({ auth_section: 'keystone_authtoken', region_name: 'R' }, (n) => sections[n]);
    assert.ok(o.auth.type === 'password' && o.auth.projectName === 'other');
    assert.equal(o.regionName, 'R');
    configError({ auth_section: 'nope' }, '[neutron] auth_section: section [nope] not found');
  });

  const { password: _pw, ...noPassword } = V3;
  const { user_domain_name: _ud, ...noUserDomain } = V3;
  const { project_domain_name: _pd, ...noProjectDomain } = V3;
  const { username: _un, ...noUser } = V3;
  const { project_name: _pn, ...noProject } = V3;
  const errors: [string, Record<string, string>, string | RegExp][] = [
    [
      'auth_type missing',
      {},
      '[neutron] auth_type: required (one of password, v3password, v2password, token, v3token, v2token, v3applicationcredential, none, admin_token)',
    ],
    [
      'auth_type unsupported',
      { auth_type: 'v3oidcpassword' },
      /^\[neutron\] auth_type: "v3oidcpassword" is not supported/,
    ],
    [
      'auth_plugin unsupported',
      { auth_plugin: 'http_basic' },
      /^\[neutron\] auth_plugin: "http_basic" is not supported/,
    ],
    [
      'application credential without secret',
      { auth_type: 'v3applicationcredential', auth_url: 'http://c/v3', application_credential_id: 'ac' },
      '[neutron] application_credential_secret: required for auth_type v3applicationcredential',
    ],
    [
      'application credential without id or name',
      { auth_type: 'v3applicationcredential', auth_url: 'http://c/v3', application_credential_secret: 's' },
      '[neutron] application_credential_id: required for auth_type v3applicationcredential (or application_credential_name)',
    ],
    [
      'application credential by name without its user',
      {
        auth_type: 'v3applicationcredential',
        auth_url: 'http://c/v3',
        application_credential_name: 'n',
        application_credential_secret: 's',
      },
      /^\[neutron\] user_id: required with application_credential_name/,
    ],
    [
      'application credential with a v2.0 auth_url',
      {
        auth_type: 'v3applicationcredential',
        auth_url: 'http://c/v2.0',
        application_credential_id: 'ac',
        application_credential_secret: 's',
      },
      /is a Keystone v2\.0 URL but auth_type v3applicationcredential needs v3$/,
    ],
    [
      'token auth without a token',
      { auth_type: 'v3token', auth_url: 'http://c/v3', project_id: 'p' },
      '[neutron] token: required for auth_type v3token',
    ],
    [
      'token auth without a project',
      { auth_type: 'token', auth_url: 'http://c', token: 't' },
      /^\[neutron\] project_name: required for auth_type token/,
    ],
    [
      'interface contradicting endpoint_type',
      { ...V3, endpoint_type: 'internalURL', interface: 'public' },
      '[neutron] interface: public contradicts endpoint_type = internal: set one of them',
    ],
    [
      'interface invalid',
      { ...V3, interface: 'private' },
      '[neutron] interface: expected public, internal or admin, got "private"',
    ],
    ['auth_url missing', { auth_type: 'password' }, '[neutron] auth_url: required for auth_type password'],
    ['auth_url blank', { ...V3, auth_url: '  ' }, '[neutron] auth_url: required for auth_type password'],
    ['auth_url not a URL', { ...V3, auth_url: 'controller:5000' }, /^\[neutron\] auth_url: must be an http/],
    ['auth_url garbage', { ...V3, auth_url: 'http://' }, '[neutron] auth_url: not a URL: "http://"'],
    [
      'auth_url with credentials',
      { ...V3, auth_url: 'http://a:b@c/v3' },
      '[neutron] auth_url: must not contain credentials',
    ],
    [
      'auth_url version mismatch',
      { ...V3, auth_type: 'v3password', auth_url: 'http://c/v2.0' },
      /^\[neutron\] auth_url: http:\/\/c\/v2\.0 is a Keystone v2\.0 URL but auth_type v3password needs v3$/,
    ],
    ['password missing', noPassword, '[neutron] password: required for auth_type password'],
    ['username missing', noUser, '[neutron] username: required for auth_type password (or user_id)'],
    ['project missing', noProject, /^\[neutron\] project_name: required for auth_type password \(or project_id/],
    ['v3 user domain missing', noUserDomain, /^\[neutron\] user_domain_name: required with username for Keystone v3/],
    [
      'v3 project domain missing',
      noProjectDomain,
      /^\[neutron\] project_domain_name: required with project_name for Keystone v3/,
    ],
    [
      'endpoint missing for none',
      { auth_type: 'none' },
      '[neutron] endpoint: required for auth_type none (the Neutron URL)',
    ],
    ['endpoint invalid', { auth_type: 'none', endpoint: 'ftp://x' }, /^\[neutron\] endpoint: must be an http/],
    [
      'token missing for admin_token',
      { auth_type: 'admin_token', endpoint: 'http://x' },
      '[neutron] token: required for auth_type admin_token',
    ],
    [
      'endpoint_type invalid',
      { ...V3, endpoint_type: 'private' },
      '[neutron] endpoint_type: expected public, internal or admin, got "private"',
    ],
    [
      'insecure invalid',
      { ...V3, insecure: 'maybe' },
      '[neutron] insecure: expected a boolean (true/false), got "maybe"',
    ],
    [
      'timeout invalid',
      { ...V3, timeout: 'soon' },
      '[neutron] timeout: expected a positive number of seconds, got "soon"',
    ],
    ['timeout zero', { ...V3, timeout: '0' }, '[neutron] timeout: expected a positive number of seconds, got "0"'],
    ['keyfile without certfile', { ...V3, keyfile: '/k.pem' }, '[neutron] certfile: required with keyfile'],
  ];
  for (const [name, section, message] of errors) {
    test(`error: ${name}`, () => configError(section, message));
  }

  test('no error message contains the password', () => {
    for (const section of [{ ...V3, auth_url: 'nope' }, { ...V3, timeout: 'x' }, noUserDomain]) {
      try {
        neutronClientOptions(section);
      } catch (err) {
        assert.ok(!(err as Error).message.includes('secret'));
      }
    }
  });

  test('openNeutronHttp builds a client from the section', async () => {
    const sent = new RequestCounter();
    const api = openNeutronHttp({ auth_type: 'none', endpoint: 'http://127.0.0.1:9' }, { onRequest: sent.onRequest });
    assert.equal(sent.total, 0);
    await api.close();
  });
});
