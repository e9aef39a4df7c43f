import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { NeutronError } from '../../src/neutron/errors.ts';
import { detectNeutronFeatures } from '../../src/neutron/http/extensions.ts';
import { NeutronHttpClient, withDefaults } from '../../src/neutron/http/index.ts';
import { startTaglessProxy, type TaglessProxy } from '../helpers/tagless-proxy.ts';

/** What the fake upstream received. */
interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const EXTENSIONS = {
  extensions: [
    {
      alias: 'subnet_allocation',
      name: 'Subnet Allocation',
      description: 'd1',
      updated: '2015-03-30T10:00:00-00:00',
      links: [],
    },
    {
      alias: 'standard-attr-tag',
      name: 'Tag support',
      description: 'd2',
      updated: '2017-01-01T00:00:00-00:00',
      links: [],
    },
    { alias: 'tag', name: 'Tag support', description: 'd3', updated: '2016-01-01T00:00:00-00:00', links: [] },
    { alias: 'tag-ext', name: 'Tag ext', description: 'd4', updated: '2017-01-01T00:00:00-00:00', links: [] },
    {
      alias: 'tag-ports-during-bulk-creation',
      name: 'Bulk',
      description: 'd5',
      updated: '2019-01-01T00:00:00-00:00',
      links: [],
    },
    { alias: 'binding', name: 'Port Binding', description: 'd6', updated: '2014-02-03T10:00:00-00:00', links: [] },
  ],
};

const PORT = {
  id: 'p1',
  name: 'port one',
  tags: ['kuryr.port.created', 'x'],
  fixed_ips: [{ subnet_id: 's1', ip_address: '10.0.0.5' }],
  'binding:profile': { tags: ['nested'], keep: 1 },
};

/** Canned answers by method and path (query ignored). */
function upstreamAnswer(req: Received): {
  status: number;
  type: string;
  body: string;
  headers?: Record<string, string>;
} {
  const path = req.url.split('?')[0] ?? '';
  const json = (status: number, doc: unknown, spaced = false) => ({
    status,
    type: 'application/json',
    body: spaced ? JSON.stringify(doc, null, 2) : JSON.stringify(doc),
    headers: { 'x-openstack-request-id': 'req-upstream-1' },
  });
  if (path.endsWith('/v2.0/extensions')) return json(200, EXTENSIONS);
  if (path.endsWith('/v2.0/extensions/binding')) return json(200, { extension: EXTENSIONS.extensions[5] });
  if (path.endsWith('/v2.0/ports') && req.method === 'GET') {
    return json(200, { ports: [PORT, { ...PORT, id: 'p2', tags: [] }], ports_links: [] });
  }
  if (path.endsWith('/v2.0/ports') && req.method === 'POST') {
    const sent = JSON.parse(req.body) as { port: Record<string, unknown> };
    return json(201, { port: { ...sent.port, id: 'p9', tags: [] } });
  }
  if (path.endsWith('/v2.0/networks/n1')) {
    return json(200, { network: { id: 'n1', name: 'net', tags: ['a', 'b'], subnets: [], mtu: 1450 } });
  }
  // An answer with no `tags` anywhere: passed on byte for byte (its spacing kept).
  if (path.endsWith('/v2.0/subnets')) return json(200, { subnets: [{ id: 's1', cidr: '10.0.0.0/24' }] }, true);
  if (path.endsWith('/text')) return { status: 200, type: 'text/plain', body: '"tags": not json' };
  return json(404, { NeutronError: { type: 'PortNotFound', message: 'Port missing could not be found.', detail: '' } });
}

describe('startTaglessProxy: a Neutron without any tag extension', () => {
  let upstream: http.Server;
  let upstreamUrl: string;
  const received: Received[] = [];
  let proxy: TaglessProxy;

  before(async () => {
    upstream = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const r: Received = {
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        };
        received.push(r);
        const a = upstreamAnswer(r);
        res.writeHead(a.status, { 'content-type': a.type, ...a.headers });
        res.end(a.body);
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });
  beforeEach(async () => {
    received.length = 0;
    await proxy?.close();
    proxy = await startTaglessProxy({ target: upstreamUrl });
  });
  after(async () => {
    await proxy?.close();
  });

  /** One request to the proxy: status, headers and text. */
  async function send(
    method: string,
    path: string,
    opts: { body?: string; headers?: Record<string, string>; agent?: http.Agent } = {},
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string; reused: boolean }> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: proxy.port,
          method,
          path,
          headers: {
            ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
            ...opts.headers,
          },
          agent: opts.agent ?? false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              text: Buffer.concat(chunks).toString('utf8'),
              reused: req.reusedSocket,
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(opts.body);
    });
  }

  const neutronError = (text: string) => (JSON.parse(text) as { NeutronError: Record<string, unknown> }).NeutronError;

  test('GET /v2.0/extensions (with or without a query) loses the tag extensions, keeps the rest as they are', async () => {
    for (const path of ['/v2.0/extensions', '/v2.0/extensions?fields=alias&fields=name']) {
      const res = await send('GET', path);
      assert.equal(res.status, 200);
      const doc = JSON.parse(res.text) as typeof EXTENSIONS;
      assert.deepEqual(doc.extensions, [EXTENSIONS.extensions[0], EXTENSIONS.extensions[5]]);
      assert.equal(Number(res.headers['content-length']), Buffer.byteLength(res.text));
      assert.equal(received.at(-1)?.url, path, 'forwarded with its query');
    }
    assert.equal(received.length, 2);
    assert.deepEqual(proxy.violations, []);
  });

  test('GET /v2.0/extensions/<alias>: 404 ExtensionNotFound for a hidden one (not forwarded), forwarded otherwise', async () => {
    for (const alias of ['standard-attr-tag', 'tag', 'tag-ext', 'tag-ports-during-bulk-creation']) {
      const res = await send('GET', `/v2.0/extensions/${alias}`);
      assert.equal(res.status, 404, alias);
      assert.match(String(res.headers['content-type']), /application\/json/);
      assert.deepEqual(JSON.parse(res.text), {
        NeutronError: {
          type: 'ExtensionNotFound',
          message: `Extension with alias ${alias} does not exist`,
          detail: '',
        },
      });
    }
    assert.equal(received.length, 0);
    const binding = await send('GET', '/v2.0/extensions/binding');
    assert.equal(binding.status, 200);
    assert.equal((JSON.parse(binding.text) as { extension: { alias: string } }).extension.alias, 'binding');
    assert.deepEqual(
      received.map((r) => r.url),
      ['/v2.0/extensions/binding'],
    );
    // Feature detection is no violation.
    assert.deepEqual(proxy.violations, []);
  });

  test('any /tags route: 404 HTTPNotFound in a NeutronError body, never forwarded, a violation', async () => {
    const calls: [string, string][] = [
      ['PUT', '/v2.0/ports/p1/tags'],
      ['GET', '/v2.0/networks/n1/tags'],
      ['PUT', '/v2.0/networks/n1/tags/kuryr.net.abc'],
      ['DELETE', '/v2.0/subnets/s1/tags/x'],
      ['DELETE', '/v2.0/subnetpools/sp1/tags'],
    ];
    for (const [method, path] of calls) {
      const body = method === 'PUT' && path.endsWith('/tags') ? JSON.stringify({ tags: ['a'] }) : undefined;
      const res = await send(method, path, body === undefined ? {} : { body });
      assert.equal(res.status, 404, path);
      const err = neutronError(res.text);
      assert.equal(err.type, 'HTTPNotFound');
      assert.equal(err.message, 'The resource could not be found.');
    }
    assert.deepEqual(received, [], 'a tag request reached the upstream');
    assert.deepEqual(
      proxy.violations,
      calls.map(([m, p]) => `${m} ${p}`),
    );
    assert.deepEqual(
      proxy.requests.map((r) => [r.method, r.path, r.status, r.forwarded]),
      calls.map(([m, p]) => [m, p, 404, false]),
    );
  });

  test('a tag filter in the query: 400 HTTPBadRequest naming it, never forwarded, a violation', async () => {
    for (const key of ['tags', 'tags-any', 'not-tags', 'not-tags-any']) {
      const res = await send('GET', `/v2.0/ports?device_owner=kuryr%3Acontainer&${key}=a,b`);
      assert.equal(res.status, 400, key);
      const err = neutronError(res.text);
      assert.equal(err.type, 'HTTPBadRequest');
      assert.equal(err.message, `${key} is invalid attribute for filtering`);
    }
    // Even empty.
    assert.equal((await send('GET', '/v2.0/networks?tags=')).status, 400);
    assert.deepEqual(received, []);
    assert.deepEqual(proxy.violations, [
      'GET /v2.0/ports filter tags',
      'GET /v2.0/ports filter tags-any',
      'GET /v2.0/ports filter not-tags',
      'GET /v2.0/ports filter not-tags-any',
      'GET /v2.0/networks filter tags',
    ]);
    // `fields=tags` asks for an attribute, it filters nothing: forwarded (and answered without tags).
    const res = await send('GET', '/v2.0/ports?fields=id&fields=tags');
    assert.equal(res.status, 200);
    assert.equal(received.length, 1);
    assert.equal(proxy.violations.length, 5);
  });

  test('a tags attribute in a request body: 400 Unrecognized attribute, never forwarded, a violation', async () => {
    const bodies: [string, string, unknown][] = [
      ['POST', '/v2.0/ports', { port: { network_id: 'n1', tags: ['a'] } }],
      ['POST', '/v2.0/subnets', { subnets: [{ cidr: '10.0.0.0/24' }, { cidr: '10.0.1.0/24', tags: [] }] }],
      ['PUT', '/v2.0/networks/n1', { network: { name: 'x', tags: ['kuryr.net.abc'] } }],
      ['PUT', '/v2.0/ports/p1', { tags: ['top-level'] }],
    ];
    for (const [method, path, body] of bodies) {
      const res = await send(method, path, { body: JSON.stringify(body) });
      assert.equal(res.status, 400, path);
      const err = neutronError(res.text);
      assert.equal(err.type, 'HTTPBadRequest');
      assert.equal(err.message, "Unrecognized attribute(s) 'tags'");
    }
    assert.deepEqual(received, []);
    assert.deepEqual(proxy.violations, [
      'POST /v2.0/ports body tags',
      'POST /v2.0/subnets body tags',
      'PUT /v2.0/networks/n1 body tags',
      'PUT /v2.0/ports/p1 body tags',
    ]);
  });

  test('anything else is forwarded unchanged: method, path and query, headers with the token, body', async () => {
    const body = JSON.stringify({ port: { network_id: 'n1', name: 'web', 'binding:profile': { a: 1 } } });
    const res = await send('POST', '/v2.0/ports?x=1', {
      body,
      headers: { 'X-Auth-Token': 'tok-123', 'X-Custom': 'kept', 'Accept-Encoding': 'gzip', Accept: 'application/json' },
    });
    assert.equal(res.status, 201);
    assert.equal(received.length, 1);
    const got = received[0];
    assert.ok(got);
    assert.equal(got.method, 'POST');
    assert.equal(got.url, '/v2.0/ports?x=1');
    assert.equal(got.body, body);
    assert.equal(got.headers['x-auth-token'], 'tok-123');
    assert.equal(got.headers['x-custom'], 'kept');
    assert.equal(got.headers.accept, 'application/json');
    assert.equal(got.headers['content-type'], 'application/json');
    assert.equal(Number(got.headers['content-length']), Buffer.byteLength(body));
    assert.equal(got.headers.host, new URL(upstreamUrl).host);
    assert.equal(got.headers['accept-encoding'], undefined, 'answers must come back uncompressed to be rewritten');
    // The answer: status, Neutron's headers, and the resource without `tags`.
    assert.equal(res.headers['x-openstack-request-id'], 'req-upstream-1');
    assert.deepEqual(JSON.parse(res.text), {
      port: { network_id: 'n1', name: 'web', 'binding:profile': { a: 1 }, id: 'p9' },
    });
    assert.deepEqual(proxy.requests, [{ method: 'POST', path: '/v2.0/ports?x=1', status: 201, forwarded: true }]);
    assert.deepEqual(proxy.violations, []);
  });

  test('every tags key is removed from JSON answers, at any depth; other answers pass byte for byte', async () => {
    const ports = await send('GET', '/v2.0/ports?device_owner=compute%3Anova');
    assert.equal(ports.status, 200);
    const { tags: _t, ...untagged } = PORT;
    assert.deepEqual(JSON.parse(ports.text), {
      ports: [
        { ...untagged, 'binding:profile': { keep: 1 } },
        { ...untagged, id: 'p2', 'binding:profile': { keep: 1 } },
      ],
      ports_links: [],
    });
    assert.ok(!ports.text.includes('"tags"'));
    assert.equal(Number(ports.headers['content-length']), Buffer.byteLength(ports.text));

    const net = await send('GET', '/v2.0/networks/n1');
    assert.deepEqual(JSON.parse(net.text), { network: { id: 'n1', name: 'net', subnets: [], mtu: 1450 } });

    const subnets = await send('GET', '/v2.0/subnets');
    assert.equal(subnets.text, JSON.stringify({ subnets: [{ id: 's1', cidr: '10.0.0.0/24' }] }, null, 2));

    const text = await send('GET', '/text');
    assert.equal(text.text, '"tags": not json');
    assert.match(String(text.headers['content-type']), /text\/plain/);

    // Upstream errors pass through with their status and body.
    const missing = await send('GET', '/v2.0/ports/missing');
    assert.equal(missing.status, 404);
    assert.equal(neutronError(missing.text).type, 'PortNotFound');
    assert.equal(received.length, 5);
    assert.deepEqual(proxy.violations, []);
  });

  test('keep-alive: a client connection is reused across requests', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await send('GET', '/v2.0/networks/n1', { agent });
      const second = await send('GET', '/v2.0/ports/p1/tags', { agent });
      const third = await send('GET', '/v2.0/subnets', { agent });
      assert.deepEqual([first.status, second.status, third.status], [200, 404, 200]);
      assert.equal(first.reused, false);
      assert.equal(second.reused, true);
      assert.equal(third.reused, true);
    } finally {
      agent.destroy();
    }
  });

  test('a path in target is prepended; an unreachable upstream answers 502', async () => {
    const prefixed = await startTaglessProxy({ target: `${upstreamUrl}/networking/` });
    try {
      const res = await new Promise<number>((resolve, reject) => {
        http
          .get(`${prefixed.url}/v2.0/extensions`, (r) => {
            r.resume();
            r.on('end', () => resolve(r.statusCode ?? 0));
          })
          .on('error', reject);
      });
      assert.equal(res, 200);
      assert.equal(received.at(-1)?.url, '/networking/v2.0/extensions');
    } finally {
      await prefixed.close();
    }
    // A port nobody listens on: the one of a proxy just closed.
    const gone = await startTaglessProxy({ target: upstreamUrl });
    const deadUrl = gone.url;
    await gone.close();
    const dead = await startTaglessProxy({ target: deadUrl });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        http
          .get(`${dead.url}/v2.0/networks`, (r) => {
            r.resume();
            r.on('end', () => resolve(r.statusCode ?? 0));
          })
          .on('error', reject);
      });
      assert.equal(status, 502);
      assert.equal(dead.requests[0]?.status, 502);
    } finally {
      await dead.close();
    }
  });

  test('through the real NeutronHttpClient: no tag extension detected, tag calls and filters fail as Neutron would', async () => {
    const client = new NeutronHttpClient(
      withDefaults({
        auth: { type: 'none', endpoint: proxy.url },
        retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
      }),
    );
    try {
      const features = await detectNeutronFeatures(client, { attempts: 1 });
      assert.equal(features.tagMode, 'none');
      assert.equal(features.tag, false);
      assert.equal(features.tagExt, false);
      await assert.rejects(client.replaceTags('ports', 'p1', ['a']), (err: unknown) => {
        assert.ok(err instanceof NeutronError);
        assert.equal(err.status, 404);
        assert.equal(err.type, 'HTTPNotFound');
        assert.equal(err.message, 'The resource could not be found.');
        return true;
      });
      await assert.rejects(client.listPorts({ 'not-tags': ['x'] }), (err: unknown) => {
        assert.ok(err instanceof NeutronError);
        assert.equal(err.status, 400);
        assert.equal(err.type, 'HTTPBadRequest');
        assert.match(err.message, /not-tags is invalid attribute for filtering/);
        return true;
      });
      // Resources come back without `tags`: the client reads them as none (not undefined, which would crash).
      const network = await client.showNetwork('n1');
      assert.equal(network.id, 'n1');
      assert.deepEqual(network.tags, []);
      const ports = await client.listPorts({ device_owner: 'compute:nova' });
      assert.deepEqual(
        ports.map((p) => [p.id, p.tags]),
        [
          ['p1', []],
          ['p2', []],
        ],
      );
      assert.ok(received.every((r) => !r.url.includes('/tags') && !r.url.includes('tags=')));
      assert.deepEqual(proxy.violations, ['PUT /v2.0/ports/p1/tags', 'GET /v2.0/ports filter not-tags']);
    } finally {
      await client.close();
    }
  });
});
