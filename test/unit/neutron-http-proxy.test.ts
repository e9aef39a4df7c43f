/**
 * HTTP_PROXY / HTTPS_PROXY / NO_PROXY (and the lower-case forms) as python-requests honours them, through a
 * recording forward proxy on loopback.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { KuryrError } from '../../src/errors.ts';
import { type NeutronClientOptions, NeutronHttpClient, withDefaults } from '../../src/neutron/http/index.ts';
import { bypassesProxy, proxiesFromEnv, proxyFor } from '../../src/neutron/http/proxy.ts';
import {
  type FakeNeutron,
  selfSignedCertificate,
  startFakeCloud,
  startFakeNeutron,
} from '../helpers/fake-openstack.ts';
import { type ForwardProxy, startForwardProxy } from '../helpers/forward-proxy.ts';

describe('proxy selection (requests semantics)', () => {
  const u = (s: string) => new URL(s);

  test('by scheme, all_proxy as fallback, lower case winning, an empty lower-case variable unsetting', () => {
    assert.deepEqual(proxiesFromEnv({ HTTP_PROXY: 'http://a:1', https_proxy: 'b:2', ALL_PROXY: 'http://c:3' }), {
      http: 'http://a:1',
      https: 'b:2',
      all: 'http://c:3',
    });
    assert.deepEqual(proxiesFromEnv({ HTTP_PROXY: 'http://upper:1', http_proxy: 'http://lower:1' }), {
      http: 'http://lower:1',
    });
    assert.deepEqual(proxiesFromEnv({ HTTP_PROXY: 'http://upper:1', http_proxy: '' }), {});
    assert.deepEqual(proxiesFromEnv({ NO_PROXY: 'x', no_proxy: 'y' }), { no: 'y' });
    const p = proxiesFromEnv({ HTTPS_PROXY: 'proxy.example:3128', ALL_PROXY: 'http://all:9' });
    assert.equal(proxyFor(u('https://neutron:9696/'), p)?.href, 'http://proxy.example:3128/', 'scheme-less = http://');
    assert.equal(proxyFor(u('http://neutron:9696/'), p)?.href, 'http://all:9/');
    assert.equal(proxyFor(u('http://neutron:9696/'), {}), undefined);
  });

  test('loopback is proxied unless no_proxy names it (requests does not bypass localhost by itself)', () => {
    assert.equal(bypassesProxy(u('http://127.0.0.1:9696/'), undefined), false);
    assert.equal(bypassesProxy(u('http://localhost:9696/'), ''), false);
    assert.equal(bypassesProxy(u('http://127.0.0.1:9696/'), 'localhost'), false);
    assert.equal(bypassesProxy(u('http://127.0.0.1:9696/'), 'localhost,127.0.0.1'), true);
  });

  test('no_proxy: IPv4 by CIDR or exact address; names by suffix, with or without port; `*`; spaces ignored', () => {
    const cases: [string, string, boolean][] = [
      ['http://10.1.2.3:9696/', '10.0.0.0/8', true],
      ['http://10.1.2.3:9696/', '10.1.2.0/24, 192.168.0.0/16', true],
      ['http://11.1.2.3:9696/', '10.0.0.0/8', false],
      ['http://10.1.2.3:9696/', '10.1.2.3', true],
      ['http://10.1.2.30:9696/', '10.1.2.3', false],
      ['http://neutron.cloud.example:9696/', 'cloud.example', true],
      ['http://neutron.cloud.example:9696/', '.cloud.example', true],
      ['http://neutron.cloud.example:9696/', 'neutron.cloud.example:9696', true],
      ['http://neutron.cloud.example:9696/', 'neutron.cloud.example:9697', false],
      ['http://neutron.cloud.example:9696/', 'other.example', false],
      ['http://NEUTRON.cloud.example:9696/', 'Cloud.Example', true],
      ['http://neutron.cloud.example:9696/', '*', true],
      ['http://10.1.2.3:9696/', '*', true],
      ['http://neutron:9696/', ' foo , neutron ', true],
    ];
    for (const [url, noProxy, expected] of cases)
      assert.equal(bypassesProxy(u(url), noProxy), expected, `${url} / ${noProxy}`);
  });

  test('a proxy other than http:// is a clear configuration error', () => {
    assert.throws(
      () => proxyFor(u('https://neutron/'), { https: 'socks5://127.0.0.1:1080' }),
      (err: unknown) =>
        err instanceof KuryrError &&
        err.code === 'KURYR_ERR_CONFIG' &&
        /https_proxy \(or HTTPS_PROXY\): only http:\/\/ proxies are supported, got socks5:/.test(err.message),
    );
  });
});

describe('neutron http client through a proxy', () => {
  let proxy: ForwardProxy;
  let cloud: Awaited<ReturnType<typeof startFakeCloud>>;
  const clients: NeutronHttpClient[] = [];

  before(async () => {
    proxy = await startForwardProxy();
  });
  after(async () => {
    await proxy.close();
  });
  beforeEach(async () => {
    proxy.seen.length = 0;
    proxy.refuseConnect = undefined;
    cloud = await startFakeCloud();
    cloud.neutron.handler = () => ({ status: 200, body: { networks: [] } });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await cloud.close();
  });

  const passwordClient = (env: NodeJS.ProcessEnv, extra: Partial<NeutronClientOptions> = {}) => {
    const c = new NeutronHttpClient(
      withDefaults({
        auth: {
          type: 'password',
          version: 'v3',
          authUrl: `${cloud.keystone.url}/v3`,
          username: 'kuryr',
          userDomainName: 'Default',
          password: 's3cret-Pa55',
          projectName: 'service',
          projectDomainName: 'Default',
        },
        ...extra,
      }),
      { env },
    );
    clients.push(c);
    return c;
  };

  test('HTTP_PROXY: Keystone and Neutron requests go through the proxy, in absolute form', async () => {
    const api = passwordClient({ HTTP_PROXY: proxy.url });
    assert.deepEqual(await api.listNetworks(), []);
    assert.deepEqual(
      proxy.seen.map((s) => `${s.method} ${s.target}`),
      [`POST ${cloud.keystone.url}/v3/auth/tokens`, `GET ${cloud.neutron.url}/v2.0/networks`],
    );
    assert.equal(cloud.neutron.requests[0]?.headers.host, new URL(cloud.neutron.url).host);
  });

  test('NO_PROXY naming the address, or its CIDR, or no_proxy=*: straight to the servers', async () => {
    for (const noProxy of ['127.0.0.1', '127.0.0.0/8', '*']) {
      const api = passwordClient({ http_proxy: proxy.url, NO_PROXY: noProxy });
      assert.deepEqual(await api.listNetworks(), []);
    }
    assert.equal(proxy.seen.length, 0);
    assert.equal(cloud.neutron.requests.length, 3);
  });

  test('lower-case http_proxy wins over HTTP_PROXY', async () => {
    const api = passwordClient({ HTTP_PROXY: 'http://127.0.0.1:9', http_proxy: proxy.url });
    assert.deepEqual(await api.listNetworks(), []);
    assert.equal(proxy.seen.length, 2);
  });

  test('credentials in the proxy URL are sent as Proxy-Authorization, never to the servers', async () => {
    const withAuth = new URL(proxy.url);
    withAuth.username = 'pxuser';
    withAuth.password = 'px pass';
    const api = passwordClient({ HTTP_PROXY: withAuth.href });
    await api.listNetworks();
    const expected = `Basic ${Buffer.from('pxuser:px pass').toString('base64')}`;
    assert.ok(proxy.seen.every((s) => s.proxyAuthorization === expected));
    assert.ok(cloud.neutron.requests.every((r) => r.headers['proxy-authorization'] === undefined));
  });

  test('an unreachable proxy: the error names the call (no silent direct connection)', async () => {
    const api = passwordClient(
      { HTTP_PROXY: 'http://127.0.0.1:9' },
      { retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10 } },
    );
    await assert.rejects(
      api.listNetworks(),
      /Keystone POST \/v3\/auth\/tokens: gave up: connect ECONNREFUSED 127\.0\.0\.1:9 \(via proxy http:\/\/127\.0\.0\.1:9\)/,
    );
    assert.equal(cloud.keystone.requests.length, 0);
  });
});

const cert = selfSignedCertificate();
const skip = 'skip' in cert ? cert.skip : false;

describe('https through a proxy (CONNECT)', { skip }, () => {
  let proxy: ForwardProxy;
  let neutron: FakeNeutron;
  before(async () => {
    if ('skip' in cert) return;
    proxy = await startForwardProxy();
    neutron = await startFakeNeutron({ cert: cert.cert, key: cert.key });
    neutron.handler = () => ({ status: 200, body: { networks: [] } });
  });
  after(async () => {
    if ('skip' in cert) return;
    await neutron.close();
    await proxy.close();
    rmSync(cert.dir, { recursive: true, force: true });
  });

  const open = (env: NodeJS.ProcessEnv, cafile?: string) =>
    new NeutronHttpClient(
      withDefaults({
        auth: { type: 'none', endpoint: neutron.url },
        tls: { insecure: false, ...(cafile === undefined ? {} : { cafile }) },
        retry: { attempts: 1, baseDelayMs: 5, maxDelayMs: 10 },
      }),
      { env },
    );

  test('HTTPS_PROXY: a CONNECT tunnel, TLS verified end to end with cafile, one tunnel for many calls', async () => {
    if ('skip' in cert) return;
    proxy.seen.length = 0;
    const api = open({ HTTPS_PROXY: proxy.url, HTTP_PROXY: 'http://127.0.0.1:9' }, join(cert.dir, 'cert.pem'));
    try {
      assert.deepEqual(await api.listNetworks(), []);
      assert.deepEqual(await api.listNetworks(), []);
    } finally {
      await api.close();
    }
    assert.deepEqual(
      proxy.seen.map((s) => `${s.method} ${s.target}`),
      [`CONNECT ${new URL(neutron.url).host}`],
    );
    assert.equal(neutron.requests.length, 2);
  });

  test('the certificate is still checked inside the tunnel', async () => {
    if ('skip' in cert) return;
    const api = open({ https_proxy: proxy.url });
    try {
      await assert.rejects(api.listNetworks(), /self-signed certificate/);
    } finally {
      await api.close();
    }
  });

  test('a proxy refusing CONNECT: a clear error naming the proxy and its answer', async () => {
    if ('skip' in cert) return;
    proxy.refuseConnect = 403;
    const api = open({ https_proxy: proxy.url }, join(cert.dir, 'cert.pem'));
    try {
      await assert.rejects(
        api.listNetworks(),
        /proxy http:\/\/127\.0\.0\.1:\d+ answered 403 to CONNECT 127\.0\.0\.1:\d+/,
      );
    } finally {
      proxy.refuseConnect = undefined;
      await api.close();
    }
  });
});
