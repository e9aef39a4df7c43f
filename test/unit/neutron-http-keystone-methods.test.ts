/**
 * Keystone authentication methods besides the password: v3 application credentials, token (v3 and v2.0, with
 * discovery), and keystoneauth's `interface` name for the catalog interface.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { NeutronHttpClient, neutronClientOptions } from '../../src/neutron/http/index.ts';
import { type FakeKeystone, type FakeNeutron, startFakeCloud, startFakeNeutron } from '../helpers/fake-openstack.ts';

const PASSWORD = 's3cret-Pa55';
const SECRET = 'app-cred-Secr3t';

function open(section: Record<string, string>): NeutronHttpClient {
  const options = neutronClientOptions(section);
  return new NeutronHttpClient({
    ...options,
    retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10 },
    timeoutMs: 2_000,
  });
}

function serveNetworks(neutron: FakeNeutron): void {
  neutron.handler = () => ({ status: 200, body: { networks: [] } });
}

/** A token of the fake's `kuryr` user, asked for by password as an operator would (`openstack token issue`). */
async function issueToken(keystone: FakeKeystone): Promise<string> {
  const res = await fetch(`${keystone.url}/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'kuryr', domain: { name: 'Default' }, password: PASSWORD } },
        },
        scope: { project: { name: 'service', domain: { name: 'Default' } } },
      },
    }),
  });
  assert.equal(res.status, 201);
  return res.headers.get('x-subject-token')!;
}

describe('neutron http client: application credentials, tokens, interface', () => {
  let keystone: FakeKeystone;
  let neutron: FakeNeutron;
  let closeCloud: () => Promise<void>;
  const clients: NeutronHttpClient[] = [];
  const track = (c: NeutronHttpClient) => {
    clients.push(c);
    return c;
  };

  beforeEach(async () => {
    const cloud = await startFakeCloud();
    keystone = cloud.keystone;
    neutron = cloud.neutron;
    closeCloud = cloud.close;
    serveNetworks(neutron);
    keystone.applicationCredentials = [
      { id: 'ac-1', name: 'kuryr-cred', userId: 'u-kuryr', secret: SECRET, projectId: 'p-service' },
    ];
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await closeCloud();
  });

  test('v3applicationcredential by ID: the application_credential method, no scope, a working token', async () => {
    const api = track(
      open({
        auth_type: 'v3applicationcredential',
        auth_url: keystone.url,
        application_credential_id: 'ac-1',
        application_credential_secret: SECRET,
      }),
    );
    assert.deepEqual(await api.listNetworks(), []);
    const [req] = keystone.tokenRequests;
    assert.equal(req?.path, '/v3/auth/tokens', 'an unversioned auth_url is completed with /v3');
    assert.deepEqual(req?.json, {
      auth: {
        identity: { methods: ['application_credential'], application_credential: { id: 'ac-1', secret: SECRET } },
      },
    });
    assert.ok(keystone.isValid(neutron.requests[0]!.headers['x-auth-token'] as string));
  });

  test('v3applicationcredential by name with its user (name and domain)', async () => {
    const api = track(
      open({
        auth_type: 'v3applicationcredential',
        auth_url: `${keystone.url}/v3`,
        application_credential_name: 'kuryr-cred',
        application_credential_secret: SECRET,
        username: 'kuryr',
        user_domain_name: 'Default',
      }),
    );
    assert.deepEqual(await api.listNetworks(), []);
    assert.deepEqual(keystone.tokenRequests[0]?.json, {
      auth: {
        identity: {
          methods: ['application_credential'],
          application_credential: {
            name: 'kuryr-cred',
            user: { name: 'kuryr', domain: { name: 'Default' } },
            secret: SECRET,
          },
        },
      },
    });
  });

  test('a wrong application credential secret: a clear error that does not hold the secret', async () => {
    const wrong = `${SECRET}-wrong`;
    const api = track(
      open({
        auth_type: 'v3applicationcredential',
        auth_url: `${keystone.url}/v3`,
        application_credential_id: 'ac-1',
        application_credential_secret: wrong,
      }),
    );
    await assert.rejects(api.listNetworks(), (err: Error) => {
      assert.match(err.message, /authentication failed \(401\) for application credential ID ac-1/);
      assert.ok(!err.message.includes(wrong));
      return true;
    });
  });

  test('token with an unversioned auth_url: discovered v3, the token exchanged for a scoped one', async () => {
    const token = await issueToken(keystone);
    const api = track(
      open({
        auth_type: 'token',
        auth_url: keystone.url,
        token,
        project_name: 'service',
        project_domain_name: 'Default',
      }),
    );
    assert.deepEqual(await api.listNetworks(), []);
    assert.ok(keystone.calls('GET', '/').length === 1, 'the version document was read');
    const exchange = keystone.tokenRequests.at(-1)!;
    assert.equal(exchange.path, '/v3/auth/tokens');
    assert.deepEqual(exchange.json, {
      auth: {
        identity: { methods: ['token'], token: { id: token } },
        scope: { project: { name: 'service', domain: { name: 'Default' } } },
      },
    });
    const used = neutron.requests[0]!.headers['x-auth-token'];
    assert.notEqual(used, token, 'Neutron gets the token Keystone handed out for the project');
    assert.ok(keystone.isValid(used as string));
  });

  test('v2token: the v2.0 token body with the tenant', async () => {
    const token = await issueToken(keystone);
    const api = track(open({ auth_type: 'v2token', auth_url: `${keystone.url}/v2.0`, token, tenant_name: 'service' }));
    assert.deepEqual(await api.listNetworks(), []);
    assert.deepEqual(keystone.tokenRequests.at(-1)?.json, { auth: { token: { id: token }, tenantName: 'service' } });
  });

  test('an invalid token: a clear error that does not hold the token', async () => {
    const token = 'gAAAAAnot-a-valid-token';
    const api = track(open({ auth_type: 'v3token', auth_url: `${keystone.url}/v3`, token, project_id: 'p-service' }));
    await assert.rejects(api.listNetworks(), (err: Error) => {
      assert.match(err.message, /authentication failed \(401\) for token auth, project ID p-service/);
      assert.ok(!err.message.includes(token));
      return true;
    });
  });

  test('interface = internal picks the internal endpoint, as endpoint_type does', async () => {
    const internal = await startFakeNeutron();
    try {
      serveNetworks(internal);
      keystone.endpoints.push({ interface: 'internal', region: 'RegionOne', url: internal.url });
      const section = {
        auth_type: 'password',
        auth_url: `${keystone.url}/v3`,
        username: 'kuryr',
        user_domain_name: 'Default',
        password: PASSWORD,
        project_name: 'service',
        project_domain_name: 'Default',
      };
      const a = track(open({ ...section, interface: 'internal' }));
      await a.listNetworks();
      const b = track(open({ ...section, endpoint_type: 'internalURL' }));
      await b.listNetworks();
      const c = track(open(section));
      await c.listNetworks();
      assert.equal(internal.requests.length, 2);
      assert.equal(neutron.requests.length, 1, 'public by default');
    } finally {
      for (const c of clients.splice(0)) await c.close();
      await internal.close();
    }
  });
});

test("kuryr.conf: auth_uri and www_authenticate_uri are tolerated, interface is read; the original's keys load", async () => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { loadConfig } = await import('../../src/config/load.ts');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kuryr-ks-'));
  try {
    const conf = path.join(dir, 'kuryr.conf');
    writeFileSync(
      conf,
      [
        '[neutron]',
        'auth_type = v3applicationcredential',
        'auth_url = http://controller:5000',
        'auth_uri = http://controller:5000/v3',
        'www_authenticate_uri = http://controller:5000',
        'application_credential_id = ac-1',
        'application_credential_secret = s',
        'interface = internal',
        'region_name = RegionOne',
        '',
      ].join('\n'),
    );
    const config = loadConfig({ config: conf }, {});
    const options = neutronClientOptions(config.sections.neutron ?? {});
    assert.equal(options.interface, 'internal');
    assert.equal(options.regionName, 'RegionOne');
    assert.equal(options.auth.type, 'v3applicationcredential');
    writeFileSync(conf, '[neutron]\nauth_urii = http://controller:5000\n');
    assert.throws(() => loadConfig({ config: conf }, {}), /auth_urii/, 'a typo is still an error');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
