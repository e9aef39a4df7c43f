// The Neutron client against the lab's real Keystone (v3 at :5000): an unversioned auth_url found by version
// discovery, an application credential created for the lab's kuryr user (and deleted after), token auth from a
// token asked for first, and the catalog interface chosen by `interface` as by `endpoint_type`. Requests go
// through a recording forward proxy on loopback (HTTP_PROXY), which shows which URLs the client really used.
// Skipped, with the reason, when the lab is not running. Run under /tmp/kuryr-e2e.lock.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { NeutronHttpClient, neutronClientOptions } from '../../src/neutron/http/index.ts';
import { type ForwardProxy, startForwardProxy } from '../helpers/forward-proxy.ts';
import { neutronLab } from '../helpers/neutron-lab.ts';

const lab = await neutronLab();

interface Catalog {
  type: string;
  endpoints: { interface: string; region_id: string; url: string }[];
}

describe('Keystone of the lab: discovery, application credentials, tokens, interface', {
  skip: lab.skip.keystone,
}, () => {
  const k = lab.keystone!;
  const origin = () => new URL(k.authUrl).origin;
  let proxy: ForwardProxy;
  let token: string;
  let userId: string;
  let catalog: Catalog[];
  const credentials: string[] = [];

  /** A password token of the lab's kuryr user, straight from Keystone (as `openstack token issue`). */
  async function passwordToken(): Promise<{ token: string; userId: string; catalog: Catalog[] }> {
    const res = await fetch(`${origin()}/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: k.username, domain: { name: k.userDomainName }, password: k.password } },
          },
          scope: { project: { name: k.projectName, domain: { name: k.projectDomainName } } },
        },
      }),
      signal: AbortSignal.timeout(20_000),
    });
    assert.equal(res.status, 201);
    const body = (await res.json()) as { token: { user: { id: string }; catalog: Catalog[] } };
    return { token: res.headers.get('x-subject-token')!, userId: body.token.user.id, catalog: body.token.catalog };
  }

  before(async () => {
    proxy = await startForwardProxy();
    ({ token, userId, catalog } = await passwordToken());
  });
  after(async () => {
    for (const id of credentials) {
      await fetch(`${origin()}/v3/users/${userId}/application_credentials/${id}`, {
        method: 'DELETE',
        headers: { 'X-Auth-Token': token },
      });
    }
    await proxy?.close();
  });

  /** A client for `section` whose requests go through the recording proxy; the URLs it used. */
  async function listThroughProxy(section: Record<string, string>): Promise<string[]> {
    const mark = proxy.seen.length;
    const client = new NeutronHttpClient(neutronClientOptions(section), { env: { HTTP_PROXY: proxy.url } });
    try {
      assert.ok(Array.isArray(await client.listNetworks({ fields: ['id'] })));
    } finally {
      await client.close();
    }
    return proxy.seen.slice(mark).map((s) => `${s.method} ${s.target}`);
  }

  const password = {
    auth_type: 'password',
    username: k.username,
    password: k.password,
    user_domain_name: k.userDomainName,
    project_name: k.projectName,
    project_domain_name: k.projectDomainName,
    region_name: k.regionName,
  };

  test('an unversioned auth_url: the version document is read, then v3 is used', async () => {
    const seen = await listThroughProxy({ ...password, auth_url: origin() });
    assert.deepEqual(seen.slice(0, 2), [`GET ${origin()}/`, `POST ${origin()}/v3/auth/tokens`]);
    assert.match(seen[2]!, /^GET http:\/\/.*\/v2\.0\/networks\?fields=id$/);
  });

  test('v3applicationcredential, by ID and by name, for a credential made through Keystone API', async () => {
    const name = `kuryr-ts-test-${randomBytes(4).toString('hex')}`;
    const res = await fetch(`${origin()}/v3/users/${userId}/application_credentials`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Auth-Token': token },
      body: JSON.stringify({ application_credential: { name, description: 'kuryr-ts e2e test; deleted after' } }),
      signal: AbortSignal.timeout(20_000),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const credential = ((await res.json()) as { application_credential: { id: string; secret: string } })
      .application_credential;
    credentials.push(credential.id);
    const common = {
      auth_type: 'v3applicationcredential',
      auth_url: origin(),
      application_credential_secret: credential.secret,
      region_name: k.regionName,
    };
    const byId = await listThroughProxy({ ...common, application_credential_id: credential.id });
    assert.equal(byId.filter((s) => s.startsWith('POST ')).length, 1);
    await listThroughProxy({
      ...common,
      application_credential_name: name,
      username: k.username,
      user_domain_name: k.userDomainName,
    });
    const wrong = new NeutronHttpClient(
      neutronClientOptions({
        ...common,
        application_credential_id: credential.id,
        application_credential_secret: 'nope',
      }),
    );
    await assert.rejects(wrong.listNetworks(), /authentication failed \(401\) for application credential ID/);
    await wrong.close();
  });

  test('token and v3token: a token asked for first is exchanged for a project-scoped one', async () => {
    const scope = { project_name: k.projectName, project_domain_name: k.projectDomainName, region_name: k.regionName };
    const generic = await listThroughProxy({ auth_type: 'token', auth_url: origin(), token, ...scope });
    assert.equal(generic[0], `GET ${origin()}/`);
    await listThroughProxy({ auth_type: 'v3token', auth_url: k.authUrl, token, ...scope });
  });

  test('interface and endpoint_type choose the same catalog endpoint; an unknown region is a clear error', async () => {
    const network = catalog.find((s) => s.type === 'network')!;
    for (const iface of ['internal', 'admin', 'public']) {
      const expected = network.endpoints.find((e) => e.interface === iface && e.region_id === k.regionName)!.url;
      const host = new URL(expected).host;
      for (const key of ['interface', 'endpoint_type']) {
        const seen = await listThroughProxy({ ...password, auth_url: k.authUrl, [key]: iface });
        assert.match(seen.at(-1)!, new RegExp(`^GET http://${host}/v2\\.0/networks`), `${key} = ${iface}`);
      }
    }
    const lost = new NeutronHttpClient(
      neutronClientOptions({ ...password, auth_url: k.authUrl, interface: 'internal', region_name: 'NoSuchRegion' }),
    );
    await assert.rejects(
      lost.listNetworks(),
      /Keystone catalog has no network endpoint for interface internal in region NoSuchRegion \(offered: .*internal@RegionOne/,
    );
    await lost.close();
  });
});
