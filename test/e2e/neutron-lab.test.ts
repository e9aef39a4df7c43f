// The real Neutron lab (scripts/neutron/stack.sh) is usable by this project: Keystone v3 password tokens with the
// network endpoint in the catalog, the extensions kuryr relies on, and a network created, tagged, found by tag and
// deleted, in each auth mode the lab serves. Skipped, with the reason, when the lab is not running.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { neutronLab } from '../helpers/neutron-lab.ts';

const lab = await neutronLab();

/** Extensions kuryr-ts needs from Neutron (pools, tags on networks/ports, security groups, port binding). */
const REQUIRED_EXTENSIONS = ['subnet_allocation', 'standard-attr-tag', 'security-group', 'binding'];

interface Reply {
  status: number;
  body: unknown;
  headers: Headers;
}

async function call(method: string, url: string, token?: string, body?: unknown): Promise<Reply> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (token !== undefined) headers['X-Auth-Token'] = token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(url, {
    method,
    headers,
    signal: AbortSignal.timeout(30_000),
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown), headers: res.headers };
}

/** The same checks in both modes: `token` is undefined in noauth mode. */
function networkFlow(getBase: () => string, getToken: () => string | undefined): void {
  const name = `kuryr-lab-test-${randomBytes(4).toString('hex')}`;
  const tag = `kuryr.test:${randomBytes(6).toString('hex')}`;
  let networkId: string | undefined;

  after(async () => {
    if (networkId !== undefined) await call('DELETE', `${getBase()}/v2.0/networks/${networkId}`, getToken());
  });

  it('lists the extensions kuryr needs', async () => {
    const res = await call('GET', `${getBase()}/v2.0/extensions`, getToken());
    assert.equal(res.status, 200);
    const aliases = (res.body as { extensions: { alias: string }[] }).extensions.map((e) => e.alias);
    for (const alias of REQUIRED_EXTENSIONS) assert.ok(aliases.includes(alias), `extension ${alias} missing`);
  });

  it('creates a network, tags it, finds it by tag and deletes it', async () => {
    const base = getBase();
    const token = getToken();
    const created = await call('POST', `${base}/v2.0/networks`, token, { network: { name } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const network = (created.body as { network: { id: string; name: string; status: string } }).network;
    networkId = network.id;
    assert.equal(network.name, name);
    assert.equal(network.status, 'ACTIVE');

    const tagged = await call('PUT', `${base}/v2.0/networks/${network.id}/tags/${encodeURIComponent(tag)}`, token);
    assert.equal(tagged.status, 201);

    const found = await call('GET', `${base}/v2.0/networks?tags=${encodeURIComponent(tag)}`, token);
    assert.equal(found.status, 200);
    const networks = (found.body as { networks: { id: string; tags: string[] }[] }).networks;
    assert.deepEqual(
      networks.map((n) => n.id),
      [network.id],
    );
    assert.deepEqual(networks[0]?.tags, [tag]);

    const deleted = await call('DELETE', `${base}/v2.0/networks/${network.id}`, token);
    assert.equal(deleted.status, 204);
    networkId = undefined;
    const gone = await call('GET', `${base}/v2.0/networks/${network.id}`, token);
    assert.equal(gone.status, 404);
  });
}

describe('Neutron lab with Keystone v3', { skip: lab.skip.keystone }, () => {
  const ks = lab.keystone!;
  let token: string;
  let networkUrl: string;

  before(async () => {
    const res = await call('POST', `${ks.authUrl}/auth/tokens`, undefined, {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: ks.username, domain: { name: ks.userDomainName }, password: ks.password } },
        },
        scope: { project: { name: ks.projectName, domain: { name: ks.projectDomainName } } },
      },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    token = res.headers.get('x-subject-token') ?? '';
    assert.ok(token.length > 0, 'no X-Subject-Token');
    const catalog = (
      res.body as {
        token: {
          roles: { name: string }[];
          catalog: { type: string; endpoints: { interface: string; region_id: string; url: string }[] }[];
        };
      }
    ).token;
    assert.ok(
      catalog.roles.some((r) => r.name === 'admin'),
      `the ${ks.username} user has no admin role`,
    );
    const endpoint = catalog.catalog
      .find((s) => s.type === 'network')
      ?.endpoints.find((e) => e.interface === 'public' && e.region_id === ks.regionName);
    assert.ok(endpoint, 'no public network endpoint in the catalog');
    networkUrl = endpoint.url.replace(/\/+$/, '');
  });

  it('has the lab file’s Neutron URL as the catalog’s network endpoint', () => {
    assert.equal(networkUrl, ks.neutronUrl);
  });

  it('refuses a request without a token (401)', async () => {
    const res = await call('GET', `${networkUrl}/v2.0/networks`);
    assert.equal(res.status, 401);
  });

  networkFlow(
    () => networkUrl,
    () => token,
  );
});

describe('Neutron lab with auth_strategy noauth', { skip: lab.skip.noauth }, () => {
  const na = lab.noauth!;

  it('answers the version list', async () => {
    const res = await call('GET', `${na.neutronUrl}/`);
    assert.equal(res.status, 200);
    const versions = (res.body as { versions: { id: string; status: string }[] }).versions;
    assert.ok(versions.some((v) => v.id === 'v2.0' && v.status === 'CURRENT'));
  });

  networkFlow(
    () => na.neutronUrl,
    () => undefined,
  );
});
