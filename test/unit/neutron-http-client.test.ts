/** NeutronHttpClient on the wire: query strings, pagination, bodies, tags, error answers and call counting. */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { KuryrError } from '../../src/errors.ts';
import type { ListFilter } from '../../src/neutron/api.ts';
import { NeutronError } from '../../src/neutron/errors.ts';
import { buildQuery, NeutronHttpClient, withDefaults } from '../../src/neutron/http/index.ts';
import { type FakeNeutron, type RecordedRequest, startFakeNeutron } from '../helpers/fake-openstack.ts';
import { RequestCounter } from '../helpers/request-counter.ts';

const NET_ID = '4f6b2bd8-7d2a-4c8e-9d55-1a2b3c4d5e6f';

const sent = new RequestCounter();

function client(url: string): NeutronHttpClient {
  return new NeutronHttpClient(
    withDefaults({ auth: { type: 'none', endpoint: url }, retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 } }),
    { random: () => 0.5, onRequest: sent.onRequest },
  );
}

/** The last request's query, decoded as Neutron (webob) reads it. */
function params(req: RecordedRequest | undefined): [string, string][] {
  assert.ok(req, 'a request was made');
  return [...new URLSearchParams(req.query)];
}

describe('neutron http client: wire format', () => {
  let neutron: FakeNeutron;
  let api: NeutronHttpClient;
  before(async () => {
    neutron = await startFakeNeutron();
    api = client(neutron.url);
  });
  after(async () => {
    await api.close();
    await neutron.close();
  });
  beforeEach(() => {
    neutron.requests.length = 0;
    sent.reset();
    neutron.handler = (req) => {
      const collection = req.path.split('/')[2] ?? '';
      return { status: 200, body: { [collection.replace(/-/g, '_')]: [] } };
    };
  });

  describe('query strings from ListFilter', () => {
    const cases: [string, ListFilter, string][] = [
      ['exact match', { name: 'kuryrPool-10.0.0.0/24' }, 'name=kuryrPool-10.0.0.0%2F24'],
      ['reserved characters', { name: 'a b&c=d+e?#' }, 'name=a%20b%26c%3Dd%2Be%3F%23'],
      ['arrays repeat the key', { id: ['a', 'b', 'c'] }, 'id=a&id=b&id=c'],
      ['booleans as True/False', { shared: true, admin_state_up: false }, 'shared=True&admin_state_up=False'],
      ['numbers', { ip_version: 6 }, 'ip_version=6'],
      ['string booleans pass through', { shared: 'True' }, 'shared=True'],
      ['undefined is no filter', { name: undefined, network_id: 'n' }, 'network_id=n'],
      [
        'tags as a list',
        { tags: ['kuryr.net.uuid.lh:0123', 'kuryr.net.uuid.uh:4567'] },
        'tags=kuryr.net.uuid.lh:0123,kuryr.net.uuid.uh:4567',
      ],
      ['tags already comma-joined', { tags: 'a,b' }, 'tags=a,b'],
      ['tags-any', { 'tags-any': ['a', 'b'] }, 'tags-any=a,b'],
      ['not-tags', { 'not-tags': ['a', 'b'] }, 'not-tags=a,b'],
      ['not-tags-any', { 'not-tags-any': 'a' }, 'not-tags-any=a'],
      ['tags are encoded inside the comma list', { tags: ['a b', 'c/d', 'e&f'] }, 'tags=a%20b,c%2Fd,e%26f'],
      ['an empty tag list is no filter', { tags: [], name: 'x' }, 'name=x'],
      [
        'fixed_ips entries',
        { fixed_ips: ['subnet_id=5f0c', 'ip_address=10.0.0.5'] },
        'fixed_ips=subnet_id%3D5f0c&fixed_ips=ip_address%3D10.0.0.5',
      ],
      ['fixed_ips IPv6 address', { fixed_ips: 'ip_address=fd00::5' }, 'fixed_ips=ip_address%3Dfd00::5'],
      ['attribute with a colon', { 'binding:host_id': 'node-1' }, 'binding:host_id=node-1'],
      ['mac_address', { mac_address: 'FA:16:3E:00:11:22' }, 'mac_address=FA:16:3E:00:11:22'],
      ['empty string filters for the empty value', { device_id: '' }, 'device_id='],
      ['fields always include id', { fields: ['name', 'tags'] }, 'fields=id&fields=name&fields=tags'],
      ['fields with id given', { fields: ['tags', 'id'] }, 'fields=tags&fields=id'],
      [
        'several keys combine',
        { network_id: 'n', cidr: '10.0.0.0/24', tags: ['t'] },
        'network_id=n&cidr=10.0.0.0%2F24&tags=t',
      ],
    ];
    for (const [name, filter, expected] of cases) {
      test(name, async () => {
        assert.equal(buildQuery(filter), expected);
        await api.listPorts(filter);
        assert.equal(neutron.requests.at(-1)?.query, expected);
      });
    }

    test('Neutron decodes the values back exactly', async () => {
      await api.listPorts({
        fixed_ips: ['subnet_id=s-1', 'ip_address=10.0.0.5'],
        name: 'x&y=z',
        tags: ['a b', 'c'],
        'binding:host_id': 'h',
      });
      assert.deepEqual(params(neutron.requests.at(-1)), [
        ['fixed_ips', 'subnet_id=s-1'],
        ['fixed_ips', 'ip_address=10.0.0.5'],
        ['name', 'x&y=z'],
        ['tags', 'a b,c'],
        ['binding:host_id', 'h'],
      ]);
    });

    test('no filter: no query string', async () => {
      await api.listNetworks();
      assert.equal(neutron.requests.at(-1)?.url, '/v2.0/networks');
    });

    test('an empty list of values matches nothing and makes no call', async () => {
      assert.equal(buildQuery({ id: [] }), null);
      assert.deepEqual(await api.listNetworks({ id: [], name: 'x' }), []);
      assert.deepEqual(await api.listPorts({ fixed_ips: [] }), []);
      assert.equal(neutron.requests.length, 0);
    });
  });

  test('lists follow next links until the last page, keeping the filter', async () => {
    const pages = [
      {
        networks: [{ id: 'n1' }, { id: 'n2' }],
        networks_links: [{ rel: 'next', href: 'http://controller:9696/v2.0/networks?name=x&limit=2&marker=n2' }],
      },
      {
        networks: [{ id: 'n3' }, { id: 'n4' }],
        networks_links: [
          { rel: 'next', href: 'http://controller:9696/v2.0/networks?name=x&limit=2&marker=n4' },
          { rel: 'previous', href: 'http://controller:9696/v2.0/networks?name=x&limit=2&marker=n3&page_reverse=True' },
        ],
      },
      {
        networks: [{ id: 'n5' }],
        networks_links: [{ rel: 'previous', href: 'http://controller:9696/v2.0/networks?marker=n5&page_reverse=True' }],
      },
    ];
    neutron.handler = () => ({ status: 200, body: pages.shift() });
    const nets = await api.listNetworks({ name: 'x' });
    assert.deepEqual(
      nets.map((n) => n.id),
      ['n1', 'n2', 'n3', 'n4', 'n5'],
    );
    assert.deepEqual(
      neutron.requests.map((r) => r.url),
      ['/v2.0/networks?name=x', '/v2.0/networks?name=x&limit=2&marker=n2', '/v2.0/networks?name=x&limit=2&marker=n4'],
      'only the query of the link is used; the host and path stay ours',
    );
    assert.equal(sent.get('GET /v2.0/networks'), 3);
  });

  test('security groups list under security_groups, pages under security_groups_links', async () => {
    const pages = [
      {
        security_groups: [{ id: 'g1' }],
        security_groups_links: [{ rel: 'next', href: '/v2.0/security-groups?marker=g1' }],
      },
      { security_groups: [{ id: 'g2' }] },
    ];
    neutron.handler = () => ({ status: 200, body: pages.shift() });
    assert.deepEqual(
      (await api.listSecurityGroups()).map((g) => g.id),
      ['g1', 'g2'],
    );
    assert.equal(neutron.requests[0]?.path, '/v2.0/security-groups');
  });

  test('a next link pointing at a page already fetched ends the list', async () => {
    neutron.handler = () => ({
      status: 200,
      body: { ports: [{ id: 'p' }], ports_links: [{ rel: 'next', href: '/v2.0/ports?marker=p' }] },
    });
    const ports = await api.listPorts();
    assert.equal(ports.length, 2);
    assert.equal(neutron.requests.length, 2);
  });

  test('creates, shows, updates and deletes with wrapped bodies and the right statuses', async () => {
    neutron.handler = (req) => {
      if (req.method === 'POST')
        return { status: 201, body: { network: { id: NET_ID, ...(req.json as { network: object }).network } } };
      if (req.method === 'PUT') return { status: 200, body: { port: { id: 'p1', name: 'renamed' } } };
      if (req.method === 'DELETE') return { status: 204 };
      return { status: 200, body: { subnetpool: { id: 'sp1', prefixes: ['10.0.0.0/16'] } } };
    };
    const net = await api.createNetwork({ name: 'n', admin_state_up: true, shared: false });
    assert.equal(net.id, NET_ID);
    assert.deepEqual(neutron.requests[0]?.json, { network: { name: 'n', admin_state_up: true, shared: false } });
    assert.equal(neutron.requests[0]?.headers['content-type'], 'application/json');
    assert.equal(neutron.requests[0]?.headers.accept, 'application/json');
    const port = await api.updatePort('p1', {
      name: 'renamed',
      'binding:host_id': 'h1',
      device_owner: 'compute:kuryr',
    });
    assert.equal(port.name, 'renamed');
    assert.deepEqual(neutron.requests[1]?.json, {
      port: { name: 'renamed', 'binding:host_id': 'h1', device_owner: 'compute:kuryr' },
    });
    assert.equal(neutron.requests[1]?.path, '/v2.0/ports/p1');
    assert.equal(await api.deleteNetwork(NET_ID), undefined);
    assert.equal(neutron.requests[2]?.method, 'DELETE');
    assert.equal(neutron.requests[2]?.path, `/v2.0/networks/${NET_ID}`);
    assert.equal(neutron.requests[2]?.body, '');
    const pool = await api.showSubnetPool('sp1');
    assert.deepEqual(pool.prefixes, ['10.0.0.0/16']);
    assert.equal(neutron.requests[3]?.path, '/v2.0/subnetpools/sp1');
  });

  test('bulk creates use the plural wrapper; an empty bulk makes no call', async () => {
    neutron.handler = (req) => {
      const doc = req.json as Record<string, object[]>;
      const key = Object.keys(doc)[0] ?? '';
      return { status: 201, body: { [key]: (doc[key] ?? []).map((b, i) => ({ id: `id-${i}`, ...b })) } };
    };
    const subnets = await api.createSubnets([
      { network_id: 'n', ip_version: 4, cidr: '10.0.0.0/24', enable_dhcp: false },
      { network_id: 'n', ip_version: 6, cidr: 'fd00::/64', enable_dhcp: false },
    ]);
    assert.deepEqual(
      subnets.map((s) => s.id),
      ['id-0', 'id-1'],
    );
    assert.deepEqual(neutron.requests[0]?.json, {
      subnets: [
        { network_id: 'n', ip_version: 4, cidr: '10.0.0.0/24', enable_dhcp: false },
        { network_id: 'n', ip_version: 6, cidr: 'fd00::/64', enable_dhcp: false },
      ],
    });
    const rules = await api.createSecurityGroupRules([
      { security_group_id: 'g', direction: 'ingress', protocol: 'tcp', port_range_min: 80, port_range_max: 81 },
    ]);
    assert.equal(rules.length, 1);
    assert.equal(neutron.requests[1]?.path, '/v2.0/security-group-rules');
    assert.deepEqual(neutron.requests[1]?.json, {
      security_group_rules: [
        { security_group_id: 'g', direction: 'ingress', protocol: 'tcp', port_range_min: 80, port_range_max: 81 },
      ],
    });
    assert.deepEqual(await api.createSubnets([]), []);
    assert.deepEqual(await api.createSecurityGroupRules([]), []);
    assert.equal(neutron.requests.length, 2);
  });

  test('replaceTags PUTs the whole list; addTag/removeTag use percent-encoded tag paths', async () => {
    neutron.handler = (req) => {
      if (req.method === 'PUT' && req.path.endsWith('/tags')) return { status: 200, body: req.json };
      if (req.method === 'PUT') return { status: 201 };
      return { status: 204 };
    };
    const tags = await api.replaceTags('subnetpools', 'sp1', ['b', 'a']);
    assert.deepEqual(tags, ['b', 'a']);
    assert.equal(neutron.requests[0]?.method, 'PUT');
    assert.equal(neutron.requests[0]?.path, '/v2.0/subnetpools/sp1/tags');
    assert.deepEqual(neutron.requests[0]?.json, { tags: ['b', 'a'] });

    await api.addTag('ports', 'p1', 'kuryr.net.uuid.lh:0123456789abcdef');
    await api.addTag('networks', 'n1', 'a b/c?d#e%f');
    await api.addTag('security-groups', 'g1', '..');
    await api.removeTag('subnets', 's1', 'x,y');
    assert.deepEqual(
      neutron.requests.slice(1).map((r) => `${r.method} ${r.path}`),
      [
        'PUT /v2.0/ports/p1/tags/kuryr.net.uuid.lh:0123456789abcdef',
        'PUT /v2.0/networks/n1/tags/a%20b%2Fc%3Fd%23e%25f',
        'PUT /v2.0/security-groups/g1/tags/%2E%2E',
        'DELETE /v2.0/subnets/s1/tags/x%2Cy',
      ],
    );
    assert.equal(neutron.requests[1]?.body, '', 'adding one tag sends no body');
    assert.equal(decodeURIComponent('a%20b%2Fc%3Fd%23e%25f'), 'a b/c?d#e%f');
  });

  test('a tag PUT answered 201 with a JSON null body (as Neutron Zed does) is a success', async () => {
    neutron.handler = () => ({ status: 201, body: 'null', headers: { 'Content-Type': 'application/json' } });
    assert.equal(await api.addTag('networks', 'n1', 'alpha'), undefined);
  });

  test('a Neutron without the tag extension omits `tags`: every resource read has an empty list', async () => {
    const port = { id: 'p1', name: 'x', fixed_ips: [] };
    neutron.handler = (req) =>
      req.method === 'GET' && req.path === '/v2.0/ports'
        ? { status: 200, body: { ports: [port, { ...port, id: 'p2', tags: ['kept'] }] } }
        : req.method === 'POST' && req.path === '/v2.0/subnets'
          ? { status: 201, body: { subnets: [{ id: 's1' }] } }
          : { status: req.method === 'POST' ? 201 : 200, body: { port } };
    const [first, second] = await api.listPorts();
    assert.deepEqual(first!.tags, []);
    assert.deepEqual(second!.tags, ['kept'], 'tags that are there are kept');
    const [chosen] = await api.listPorts({ fields: ['id', 'name'] });
    assert.equal('tags' in chosen!, false, 'fields= chose what comes back');
    neutron.handler = (req) =>
      req.method === 'GET' && req.path === '/v2.0/extensions'
        ? { status: 200, body: { extensions: [{ alias: 'binding', name: 'b', description: '' }] } }
        : req.method === 'GET' && req.path === '/v2.0/ports'
          ? { status: 200, body: { ports: [port] } }
          : req.method === 'POST' && req.path === '/v2.0/subnets'
            ? { status: 201, body: { subnets: [{ id: 's1' }] } }
            : { status: req.method === 'POST' ? 201 : 200, body: { port } };
    assert.deepEqual(await api.listExtensions(), [{ alias: 'binding', name: 'b', description: '' }], 'not a resource');
    for (const p of [
      await api.createPort({ network_id: 'n' }),
      await api.showPort('p1'),
      await api.updatePort('p1', { name: 'y' }),
      ...(await api.createSubnets([{ network_id: 'n', ip_version: 4, cidr: '10.0.0.0/24' }])),
    ]) {
      assert.deepEqual(p.tags, []);
    }
  });

  test('subnet pool integers that Neutron answers as strings become numbers', async () => {
    const pool = {
      id: 'sp',
      prefixes: ['10.0.0.0/16'],
      default_prefixlen: '8',
      min_prefixlen: '8',
      max_prefixlen: '32',
      ip_version: 4,
      default_quota: null,
    };
    neutron.handler = (req) =>
      req.method === 'GET' && req.path === '/v2.0/subnetpools'
        ? { status: 200, body: { subnetpools: [pool] } }
        : { status: req.method === 'POST' ? 201 : 200, body: { subnetpool: pool } };
    for (const p of [
      await api.createSubnetPool({ prefixes: ['10.0.0.0/16'] }),
      await api.showSubnetPool('sp'),
      await api.updateSubnetPool('sp', { name: 'x' }),
      ...(await api.listSubnetPools()),
    ]) {
      assert.equal(p.default_prefixlen, 8);
      assert.equal(p.min_prefixlen, 8);
      assert.equal(p.max_prefixlen, 32);
      assert.equal(p.ip_version, 4);
      assert.equal((p as unknown as { default_quota: unknown }).default_quota, null);
    }
  });

  test('IDs in paths are percent-encoded too', async () => {
    neutron.handler = () => ({ status: 200, body: { port: { id: 'x' } } });
    await api.showPort('../networks');
    assert.equal(neutron.requests[0]?.path, '/v2.0/ports/..%2Fnetworks');
  });

  test('onRequest is told of each request per method and path template', async () => {
    neutron.handler = (req) => {
      if (req.method === 'GET' && req.path === '/v2.0/ports') return { status: 200, body: { ports: [] } };
      if (req.method === 'GET') return { status: 200, body: { port: { id: 'p' } } };
      if (req.method === 'PUT' && req.path.includes('/tags/')) return { status: 201 };
      if (req.method === 'PUT') return { status: 200, body: { port: { id: 'p' } } };
      return { status: 204 };
    };
    await api.listPorts({ name: 'a' });
    await api.listPorts({ name: 'b' });
    await api.showPort('p1');
    await api.showPort('p2');
    await api.updatePort('p1', { name: 'x' });
    await api.addTag('ports', 'p1', 't1');
    await api.addTag('ports', 'p1', 't2');
    await api.deletePort('p1');
    assert.deepEqual(sent.toObject(), {
      'GET /v2.0/ports': 2,
      'GET /v2.0/ports/{id}': 2,
      'PUT /v2.0/ports/{id}': 1,
      'PUT /v2.0/ports/{id}/tags/{tag}': 2,
      'DELETE /v2.0/ports/{id}': 1,
    });
    assert.equal(sent.total, 8);
  });

  test('returns fresh objects on every call', async () => {
    neutron.handler = () => ({ status: 200, body: { network: { id: 'n', tags: [] } } });
    const a = await api.showNetwork('n');
    a.tags.push('mutated');
    assert.deepEqual((await api.showNetwork('n')).tags, []);
  });
});

describe('neutron http client: error answers', () => {
  let neutron: FakeNeutron;
  let api: NeutronHttpClient;
  before(async () => {
    neutron = await startFakeNeutron();
    api = client(neutron.url);
  });
  after(async () => {
    await api.close();
    await neutron.close();
  });
  beforeEach(() => {
    neutron.requests.length = 0;
  });

  async function failure(reply: Parameters<FakeNeutron['queue']>[0], call: () => Promise<unknown>) {
    neutron.queue(reply);
    try {
      await call();
    } catch (err) {
      return err;
    }
    assert.fail('expected a failure');
  }

  test('a NeutronError body gives status, type, message and the request ID', async () => {
    const err = await failure(
      {
        status: 409,
        body: {
          NeutronError: {
            type: 'SubnetInUse',
            message:
              'Unable to complete operation on subnet s1: One or more ports have an IP allocation from this subnet.',
            detail: '',
          },
        },
        headers: { 'X-Openstack-Request-Id': 'req-0123' },
      },
      () => api.deleteSubnet('s1'),
    );
    assert.ok(err instanceof NeutronError);
    assert.equal(err.status, 409);
    assert.equal(err.type, 'SubnetInUse');
    assert.equal(
      err.message,
      'Unable to complete operation on subnet s1: One or more ports have an IP allocation from this subnet.',
    );
    assert.equal(err.requestId, 'req-0123');
    assert.ok(err.isConflict);
  });

  test('404 NotFound types map to isNotFound', async () => {
    const err = await failure(
      {
        status: 404,
        body: {
          NeutronError: { type: 'NetworkNotFound', message: `Network ${NET_ID} could not be found.`, detail: '' },
        },
      },
      () => api.showNetwork(NET_ID),
    );
    assert.ok(err instanceof NeutronError);
    assert.equal(err.type, 'NetworkNotFound');
    assert.ok(err.isNotFound);
    assert.match(err.requestId ?? '', /^req-/);
  });

  test('the plain web-framework 404 JSON (no NeutronError wrapper)', async () => {
    const err = await failure(
      {
        status: 404,
        body: {
          message: 'The resource could not be found.<br /><br />\nExtension with alias tag-ext does not exist\n\n',
          code: '404 Not Found',
          title: 'Not Found',
        },
      },
      () => api.listExtensions(),
    );
    assert.ok(err instanceof NeutronError);
    assert.equal(err.status, 404);
    assert.equal(err.type, 'HTTPNotFound');
    assert.equal(err.message, 'The resource could not be found. Extension with alias tag-ext does not exist');
  });

  test('an HTML error page (proxy or web framework)', async () => {
    const html =
      '<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n  The resource could not be found.<br /><br />\n\n\n\n </body>\n</html>';
    const err = await failure({ status: 404, body: html }, () => api.showPort('p'));
    assert.ok(err instanceof NeutronError);
    assert.equal(err.status, 404);
    assert.equal(err.type, 'HTTPNotFound');
    assert.equal(err.message, '404 Not Found The resource could not be found.');
    const bad = await failure(
      {
        status: 502,
        body: '<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>',
      },
      () => api.createPort({ network_id: 'n' }),
    );
    assert.ok(bad instanceof NeutronError);
    assert.equal(bad.status, 502);
    assert.equal(bad.type, 'HTTPBadGateway');
    assert.equal(bad.message, '502 Bad Gateway nginx');
  });

  test('plain text, empty and unknown JSON bodies: the status decides', async () => {
    const text = await failure({ status: 400, body: 'Bad things', headers: { 'Content-Type': 'text/plain' } }, () =>
      api.listNetworks(),
    );
    assert.ok(text instanceof NeutronError);
    assert.equal(text.type, 'HTTPBadRequest');
    assert.equal(text.message, 'Bad things');
    const empty = await failure({ status: 409 }, () => api.deletePort('p'));
    assert.ok(empty instanceof NeutronError);
    assert.equal(empty.type, 'HTTPConflict');
    assert.equal(empty.message, '409 Conflict');
    const odd = await failure({ status: 403, body: { unexpected: true } }, () => api.deletePort('p'));
    assert.ok(odd instanceof NeutronError);
    assert.equal(odd.status, 403);
    assert.equal(odd.type, 'HTTPForbidden');
  });

  test("keystonemiddleware's 401 body, without Keystone configured: no replay", async () => {
    const err = await failure(
      {
        status: 401,
        body: {
          error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' },
        },
      },
      () => api.listNetworks(),
    );
    assert.ok(err instanceof NeutronError);
    assert.equal(err.status, 401);
    assert.equal(err.type, 'Unauthorized');
    assert.equal(err.message, 'The request you have made requires authentication.');
    assert.equal(neutron.requests.length, 1);
  });

  test('a web-framework 400 wrapped as NeutronError (unknown filter with filter-validation)', async () => {
    const err = await failure(
      {
        status: 400,
        body: {
          NeutronError: {
            type: 'HTTPBadRequest',
            message: 'no_such_attribute is invalid attribute for filtering',
            detail: '',
          },
        },
      },
      () => api.listNetworks({ no_such_attribute: 'x' }),
    );
    assert.ok(err instanceof NeutronError);
    assert.equal(err.type, 'HTTPBadRequest');
  });

  test('a success answer that is not JSON is a clear error naming the call', async () => {
    const err = await failure({ status: 200, body: '<html>hello</html>' }, () => api.showNetwork('n1'));
    assert.ok(err instanceof KuryrError);
    assert.equal(err.code, 'KURYR_ERR_NEUTRON');
    assert.match(err.message, /^Neutron GET \/v2\.0\/networks\/n1: the 200 answer is not JSON/);
    const missing = await failure({ status: 200, body: { other: {} } }, () => api.showNetwork('n1'));
    assert.ok(missing instanceof KuryrError);
    assert.match(missing.message, /has no "network"/);
  });
});
