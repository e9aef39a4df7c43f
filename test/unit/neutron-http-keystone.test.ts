/** Keystone authentication of the Neutron HTTP client: v3 (names, IDs), v2.0, discovery, noauth, catalog, tokens. */
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import { KuryrError } from '../../src/errors.ts';
import { NeutronError } from '../../src/neutron/errors.ts';
import {
  type NeutronClientOptions,
  NeutronHttpClient,
  neutronClientOptions,
  RENEW_BEFORE_EXPIRY_MS,
} from '../../src/neutron/http/index.ts';
import { type FakeKeystone, type FakeNeutron, startFakeCloud, startFakeNeutron } from '../helpers/fake-openstack.ts';
import { RequestCounter } from '../helpers/request-counter.ts';

const PASSWORD = 's3cret-Pa55';

/** The `[neutron]` section of a v3-by-names setup against `keystone`. */
function v3Names(keystone: FakeKeystone, extra: Record<string, string> = {}): Record<string, string> {
  return {
    auth_type: 'password',
    auth_url: `${keystone.url}/v3`,
    username: 'kuryr',
    user_domain_name: 'Default',
    password: PASSWORD,
    project_name: 'service',
    project_domain_name: 'Default',
    ...extra,
  };
}

function fastRetries(options: NeutronClientOptions): NeutronClientOptions {
  return { ...options, retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10 }, timeoutMs: 2_000 };
}

function open(section: Record<string, string>, now?: () => number, sent?: RequestCounter): NeutronHttpClient {
  return new NeutronHttpClient(fastRetries(neutronClientOptions(section)), {
    ...(now ? { now } : {}),
    ...(sent ? { onRequest: sent.onRequest } : {}),
  });
}

/** Every Neutron handler: an empty list, or the one network. */
function serveNetworks(neutron: FakeNeutron): void {
  neutron.handler = (req) =>
    req.path.endsWith('/v2.0/networks')
      ? { status: 200, body: { networks: [] } }
      : { status: 200, body: { network: { id: 'n' } } };
}

async function caught(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof Error);
    return err;
  }
  assert.fail('expected a failure');
}

describe('neutron http client: Keystone', () => {
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
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await closeCloud();
  });

  test('v3 password with user and project by name (domains by name)', async () => {
    const api = track(open(v3Names(keystone)));
    assert.deepEqual(await api.listNetworks(), []);
    assert.equal(keystone.tokenRequests.length, 1);
    const req = keystone.tokenRequests[0];
    assert.equal(req?.path, '/v3/auth/tokens');
    assert.deepEqual(req?.json, {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'kuryr', domain: { name: 'Default' }, password: PASSWORD } },
        },
        scope: { project: { name: 'service', domain: { name: 'Default' } } },
      },
    });
    const token = neutron.requests[0]?.headers['x-auth-token'];
    assert.equal(typeof token, 'string');
    assert.ok(keystone.isValid(token as string));
  });

  test('v3 password with domains by ID', async () => {
    const api = track(
      open({
        ...v3Names(keystone),
        user_domain_name: '',
        project_domain_name: '',
        user_domain_id: 'default',
        project_domain_id: 'default',
      }),
    );
    await api.listNetworks();
    assert.deepEqual(keystone.tokenRequests[0]?.json, {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'kuryr', domain: { id: 'default' }, password: PASSWORD } },
        },
        scope: { project: { name: 'service', domain: { id: 'default' } } },
      },
    });
  });

  test('v3 password with user and project by ID (v3password)', async () => {
    const api = track(
      open({
        auth_type: 'v3password',
        auth_url: `${keystone.url}/v3/`,
        user_id: 'u-kuryr',
        password: PASSWORD,
        project_id: 'p-service',
      }),
    );
    await api.showNetwork('n');
    assert.deepEqual(keystone.tokenRequests[0]?.json, {
      auth: {
        identity: { methods: ['password'], password: { user: { id: 'u-kuryr', password: PASSWORD } } },
        scope: { project: { id: 'p-service' } },
      },
    });
    assert.equal(neutron.requests.length, 1);
  });

  test('default_domain_name fills in missing user and project domains', async () => {
    const section = v3Names(keystone, {
      user_domain_name: '',
      project_domain_name: '',
      default_domain_name: 'Default',
    });
    const api = track(open(section));
    await api.listNetworks();
    assert.equal(neutron.requests.length, 1);
  });

  test('v2.0 password with tenant name (old option names)', async () => {
    const api = track(
      open({
        auth_type: 'v2password',
        auth_url: `${keystone.url}/v2.0`,
        username: 'kuryr',
        password: PASSWORD,
        tenant_name: 'service',
      }),
    );
    await api.listNetworks();
    const req = keystone.tokenRequests[0];
    assert.equal(req?.path, '/v2.0/tokens');
    assert.deepEqual(req?.json, {
      auth: { passwordCredentials: { username: 'kuryr', password: PASSWORD }, tenantName: 'service' },
    });
    assert.ok(keystone.isValid(neutron.requests[0]?.headers['x-auth-token'] as string));
  });

  test('v2.0 by IDs, selected by the auth_url of the generic password plugin', async () => {
    const api = track(
      open({
        auth_type: 'password',
        auth_url: `${keystone.url}/v2.0/`,
        user_id: 'u-kuryr',
        password: PASSWORD,
        tenant_id: 'p-service',
      }),
    );
    await api.listNetworks();
    assert.deepEqual(keystone.tokenRequests[0]?.json, {
      auth: { passwordCredentials: { userId: 'u-kuryr', password: PASSWORD }, tenantId: 'p-service' },
    });
  });

  test('an unversioned auth_url is discovered: v3 when offered, else v2.0', async () => {
    const api = track(open(v3Names(keystone, { auth_url: keystone.url })));
    await api.listNetworks();
    assert.deepEqual(
      keystone.requests.map((r) => `${r.method} ${r.path}`),
      ['GET /', 'POST /v3/auth/tokens'],
    );
    keystone.versions = ['v2.0'];
    keystone.requests.length = 0;
    const old = track(
      open({
        auth_type: 'password',
        auth_url: `${keystone.url}/`,
        username: 'kuryr',
        password: PASSWORD,
        project_name: 'service',
      }),
    );
    await old.listNetworks();
    assert.deepEqual(
      keystone.requests.map((r) => `${r.method} ${r.path}`),
      ['GET /', 'POST /v2.0/tokens'],
    );
  });

  test('discovery chooses v3 without domains configured: a clear error naming the key', async () => {
    const api = track(
      open({
        auth_type: 'password',
        auth_url: keystone.url,
        username: 'kuryr',
        password: PASSWORD,
        project_name: 'service',
      }),
    );
    const err = await caught(api.listNetworks());
    assert.match(err.message, /^\[neutron\] user_domain_name: required with username for Keystone v3/);
  });

  test('one token for many calls, concurrent or not', async () => {
    const api = track(open(v3Names(keystone)));
    await Promise.all(Array.from({ length: 8 }, () => api.listNetworks()));
    for (let i = 0; i < 12; i++) await api.showNetwork('n');
    assert.equal(keystone.tokenRequests.length, 1);
    assert.equal(api.tokenRequests, 1);
    assert.equal(neutron.requests.length, 20);
    assert.equal(new Set(neutron.requests.map((r) => r.headers['x-auth-token'])).size, 1);
  });

  test('renews the token when it expires within 120 s, not before', async () => {
    let skew = 0;
    const api = track(open(v3Names(keystone), () => Date.now() + skew));
    await api.listNetworks();
    skew = keystone.tokenLifetimeMs - RENEW_BEFORE_EXPIRY_MS - 5_000; // 125 s left
    await api.listNetworks();
    assert.equal(keystone.tokenRequests.length, 1, 'still more than 120 s left');
    skew = keystone.tokenLifetimeMs - RENEW_BEFORE_EXPIRY_MS + 5_000; // 115 s left
    await api.listNetworks();
    assert.equal(keystone.tokenRequests.length, 2, 'renewed ahead of expiry');
    const tokens = neutron.requests.map((r) => r.headers['x-auth-token']);
    assert.equal(tokens[1], tokens[0]);
    assert.notEqual(tokens[2], tokens[1]);
  });

  test('a failed early renewal keeps using the still-valid token', async () => {
    let skew = 0;
    const api = track(open(v3Names(keystone), () => Date.now() + skew));
    await api.listNetworks();
    skew = keystone.tokenLifetimeMs - 60_000;
    keystone.failures.push({ status: 503, body: 'down' }, { status: 503, body: 'down' });
    await api.listNetworks();
    assert.equal(neutron.requests.length, 2);
    assert.equal(neutron.requests[1]?.headers['x-auth-token'], neutron.requests[0]?.headers['x-auth-token']);
  });

  test('a 401 from Neutron (token revoked) renews the token and replays the request once', async () => {
    const sent = new RequestCounter();
    const api = track(open(v3Names(keystone), undefined, sent));
    await api.listNetworks();
    keystone.revokeAll();
    neutron.handler = () => ({ status: 201, body: { port: { id: 'p-new' } } });
    const port = await api.createPort({ network_id: 'n' });
    assert.equal(port.id, 'p-new');
    assert.equal(keystone.tokenRequests.length, 2);
    assert.deepEqual(
      neutron.requests.map((r) => r.method),
      ['GET', 'POST', 'POST'],
      'the refused POST is replayed with the new token',
    );
    assert.equal(sent.get('POST /v2.0/ports'), 2);
  });

  test('a second 401 is a NeutronError, after exactly one replay', async () => {
    const api = track(open(v3Names(keystone)));
    neutron.validToken = () => false;
    const err = await caught(api.listNetworks());
    assert.ok(err instanceof NeutronError);
    assert.equal(err.status, 401);
    assert.equal(err.type, 'Unauthorized');
    assert.equal(neutron.requests.length, 2);
    assert.equal(keystone.tokenRequests.length, 2);
    assert.ok(!err.message.includes(PASSWORD));
  });

  test('wrong credentials: a clear error without the password', async () => {
    const api = track(open(v3Names(keystone, { password: 'wrong-Pa55word' })));
    const err = await caught(api.listNetworks());
    assert.ok(err instanceof KuryrError);
    assert.equal(err.code, 'KURYR_ERR_NEUTRON');
    assert.equal(
      err.message,
      'Keystone POST /v3/auth/tokens: authentication failed (401) for user kuryr, project service: The request you have made requires authentication.',
    );
    assert.ok(!err.message.includes('wrong-Pa55word'));
    assert.equal(neutron.requests.length, 0);
  });

  test('Keystone unavailable: retried, then an error naming the Keystone call', async () => {
    keystone.failures.push({ status: 503, body: 'Service Unavailable' }, { status: 503, body: 'Service Unavailable' });
    const api = track(open(v3Names(keystone)));
    const err = await caught(api.listNetworks());
    assert.match(
      err.message,
      /^Keystone POST \/v3\/auth\/tokens: answered 503 for user kuryr, project service \[gave up: no attempts left \(2 attempts in/,
    );
    assert.equal(keystone.tokenRequests.length, 2, 'asking for a token is safe to repeat');
    keystone.failures.push({ status: 503, body: 'once' });
    assert.deepEqual(await api.listNetworks(), [], 'one 503 is absorbed by a retry');
  });

  test('when Neutron is unreachable the give-up error names the call and holds no password or token', async () => {
    const api = track(open(v3Names(keystone)));
    await api.listNetworks();
    const token = neutron.requests[0]?.headers['x-auth-token'] as string;
    await neutron.close();
    const err = await caught(api.listPorts({ name: 'secret-name', fixed_ips: 'ip_address=10.0.0.5' }));
    assert.ok(err instanceof KuryrError);
    assert.match(err.message, /^Neutron GET \/v2\.0\/ports: gave up: .*ECONNREFUSED.*\(2 attempts in/);
    for (const secret of [PASSWORD, token, 'secret-name', '10.0.0.5']) {
      assert.ok(!err.message.includes(secret), `${secret} is not in "${err.message}"`);
      assert.ok(!String((err.cause as Error)?.message).includes(token));
    }
  });

  test('a token never appears in a debug log line', async () => {
    const lines: string[] = [];
    const log = (obj: object, msg?: string) => lines.push(JSON.stringify(obj) + (msg ?? ''));
    const api = track(
      new NeutronHttpClient(fastRetries(neutronClientOptions(v3Names(keystone))), {
        logger: { debug: log, info: log, warn: log, error: log },
      }),
    );
    await api.listNetworks();
    keystone.revokeAll();
    await api.listNetworks();
    assert.ok(lines.length >= 3);
    for (const token of neutron.requests.map((r) => r.headers['x-auth-token'] as string)) {
      assert.ok(!lines.join('\n').includes(token));
    }
    assert.ok(!lines.join('\n').includes(PASSWORD));
  });
});

describe('neutron http client: catalog endpoint selection', () => {
  const servers: FakeNeutron[] = [];
  let cloud: Awaited<ReturnType<typeof startFakeCloud>>;
  let publicOne: FakeNeutron;
  let internalOne: FakeNeutron;
  let internalTwo: FakeNeutron;
  let adminTwo: FakeNeutron;

  beforeEach(async () => {
    cloud = await startFakeCloud();
    [publicOne, internalOne, internalTwo, adminTwo] = await Promise.all([
      startFakeNeutron(),
      startFakeNeutron(),
      startFakeNeutron(),
      startFakeNeutron(),
    ]);
    servers.push(publicOne, internalOne, internalTwo, adminTwo);
    for (const s of servers) serveNetworks(s);
    cloud.keystone.endpoints = [
      { interface: 'public', region: 'RegionOne', url: `${publicOne.url}/` },
      { interface: 'internal', region: 'RegionOne', url: internalOne.url },
      { interface: 'internal', region: 'RegionTwo', url: `${internalTwo.url}/v2.0/` },
      { interface: 'admin', region: 'RegionTwo', url: adminTwo.url },
    ];
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
    await cloud.close();
  });

  const hits = () => [publicOne, internalOne, internalTwo, adminTwo].map((s) => s.requests.length);

  for (const version of ['v3', 'v2.0'] as const) {
    const section = (extra: Record<string, string>) =>
      version === 'v3'
        ? v3Names(cloud.keystone, extra)
        : {
            auth_type: 'v2password',
            auth_url: `${cloud.keystone.url}/v2.0`,
            username: 'kuryr',
            password: PASSWORD,
            project_name: 'service',
            ...extra,
          };

    test(`${version}: public by default, the first matching endpoint`, async () => {
      const api = open(section({}));
      await api.listNetworks();
      await api.close();
      assert.deepEqual(hits(), [1, 0, 0, 0]);
      assert.equal(publicOne.requests[0]?.path, '/v2.0/networks');
    });

    test(`${version}: endpoint_type internal (also as internalURL) and region_name`, async () => {
      const a = open(section({ endpoint_type: 'internal' }));
      await a.listNetworks();
      await a.close();
      const b = open(section({ endpoint_type: 'internalURL', region_name: 'RegionTwo' }));
      await b.listNetworks();
      await b.close();
      const c = open(section({ endpoint_type: 'admin' }));
      await c.listNetworks();
      await c.close();
      assert.deepEqual(hits(), [0, 1, 1, 1]);
      assert.equal(internalTwo.requests[0]?.path, '/v2.0/networks', 'a catalog URL ending in /v2.0 is not doubled');
    });

    test(`${version}: no matching endpoint is a clear error`, async () => {
      const api = open(section({ endpoint_type: 'admin', region_name: 'RegionOne' }));
      const err = await caught(api.listNetworks());
      await api.close();
      assert.match(
        err.message,
        /^Keystone catalog has no network endpoint for interface admin in region RegionOne \(offered: .*public@RegionOne/,
      );
      assert.deepEqual(hits(), [0, 0, 0, 0]);
    });
  }
});

describe('neutron http client: without Keystone', () => {
  let neutron: FakeNeutron;
  after(async () => {
    await neutron.close();
  });

  test('auth_type none: no token header, the configured endpoint (with a path prefix)', async () => {
    neutron = await startFakeNeutron();
    serveNetworks(neutron);
    const api = open({ auth_type: 'none', endpoint: `${neutron.url}/prefix/` });
    await api.listNetworks();
    await api.showNetwork('n');
    await api.close();
    assert.deepEqual(
      neutron.requests.map((r) => r.path),
      ['/prefix/v2.0/networks', '/prefix/v2.0/networks/n'],
    );
    assert.equal(neutron.requests[0]?.headers['x-auth-token'], undefined);
    assert.equal(api.tokenRequests, 0);
  });

  test('auth_type admin_token: the fixed token on every request, never renewed', async () => {
    neutron.requests.length = 0;
    const api = open({ auth_type: 'admin_token', endpoint: neutron.url, token: 'fixed-token' });
    neutron.queue({ status: 401, body: { error: { code: 401, title: 'Unauthorized', message: 'no' } } });
    const err = await caught(api.listNetworks());
    assert.ok(err instanceof NeutronError && err.status === 401);
    await api.listNetworks();
    await api.close();
    assert.deepEqual(
      neutron.requests.map((r) => r.headers['x-auth-token']),
      ['fixed-token', 'fixed-token'],
    );
    assert.ok(!err.message.includes('fixed-token'));
  });
});
