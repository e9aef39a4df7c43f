/**
 * Property-based fuzzing of every plugin endpoint over a real unix socket, in process (embedded store in
 * memory, fake host binding). Every invalid request — a bad value in any validated field, a malformed or
 * truncated body, a body above the limit, a wrong method or path — gets a 4xx `{"Err": "KURYR_ERR_…: …"}`,
 * changes nothing (store, reservations, host side) and reaches no host command; the server keeps answering.
 * The requests are aimed at real resources, so one that slipped through validation would change something:
 * the first block proves that each unmodified base request does.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_MAX_BODY_BYTES } from '../../src/plugin/server.ts';
import {
  describeCase,
  dockerIdArb,
  type FuzzCase,
  hostileString,
  invalidRequest,
  malformedRequest,
  NO_ARGUMENT_ROUTES,
  oddSandboxKey,
  ROUTES,
  serialize,
  type World,
} from './arbitraries.ts';
import { assertErr, type FuzzServer, fcParams, populateWorld, type Reply, startFuzzServer } from './harness.ts';

/**
 * Routes whose base request changes the store (the others are answered without writing; Revoke too: the
 * exposed-ports group lives as long as the endpoint's port, src/driver/connectivity.ts).
 */
const WRITING = new Set([
  'NetworkDriver.CreateNetwork',
  'NetworkDriver.DeleteNetwork',
  'NetworkDriver.CreateEndpoint',
  'NetworkDriver.DeleteEndpoint',
  'NetworkDriver.ProgramExternalConnectivity',
  'IpamDriver.RequestPool',
  'IpamDriver.ReleasePool',
  'IpamDriver.RequestAddress',
  'IpamDriver.ReleaseAddress',
]);

const total = { cases: 0, requests: 0 };

const show = describeCase;

describe('fuzz bases: each unmodified base request is accepted (and writes where it should)', () => {
  for (const route of ROUTES) {
    test(route.method, async () => {
      const s = await startFuzzServer();
      try {
        const w = await populateWorld(s);
        const before = await s.snapshot();
        const [body] = fc.sample(route.base(w), {
          numRuns: 1,
          ...(process.env.KURYR_FUZZ_SEED ? { seed: Number(process.env.KURYR_FUZZ_SEED) } : {}),
        });
        const reply = await s.call(route.method, serialize(body!));
        total.requests++;
        assert.equal(reply.status, 200, `${route.method} ${serialize(body!)} → ${reply.raw}`);
        if (WRITING.has(route.method))
          assert.notDeepEqual(await s.snapshot(), before, `${route.method} changed nothing`);
        else assert.deepEqual(await s.snapshot(), before);
      } finally {
        await s.close();
      }
    });
  }
});

describe('fuzz: hostile input to every endpoint', () => {
  let s: FuzzServer;
  let w: World;
  let reference: unknown;
  let hostCalls: number;

  before(async () => {
    s = await startFuzzServer();
    w = await populateWorld(s);
  });

  // Each test compares with the state it started from, so that one failure does not fail every later test.
  beforeEach(async () => {
    reference = await s.snapshot();
    hostCalls = s.host.calls.length;
  });

  after(async () => {
    await s.close();
  });

  /** Nothing changed and nothing reached the host since the world was built. */
  async function assertUnchanged(what: string): Promise<void> {
    assert.deepEqual(await s.snapshot(), reference, `state changed after ${what}`);
    assert.deepEqual(s.host.calls.slice(hostCalls), [], `host commands ran for ${what}`);
    assert.deepEqual(s.host.violations, []);
  }

  async function sendCase(c: FuzzCase, method = 'POST'): Promise<Reply> {
    total.requests++;
    return s.send({ path: `/${c.method}`, method, body: c.body });
  }

  for (const route of ROUTES) {
    test(`${route.method}: an invalid value in any field → 4xx {"Err"}, nothing changes`, async (t) => {
      let n = 0;
      await fc.assert(
        fc.asyncProperty(invalidRequest(route, w), async (c) => {
          n++;
          assertErr(await sendCase(c), show(c));
          await assertUnchanged(show(c));
        }),
        fcParams(60),
      );
      await s.assertAlive();
      total.cases += n;
      t.diagnostic(`${n} generated cases`);
    });

    test(`${route.method}: malformed, truncated or non-object body → 400 KURYR_ERR_BAD_REQUEST`, async (t) => {
      let n = 0;
      await fc.assert(
        fc.asyncProperty(malformedRequest(route, w), async (c) => {
          n++;
          const code = assertErr(await sendCase(c), show(c), [400]);
          assert.equal(code, 'KURYR_ERR_BAD_REQUEST', show(c));
          await assertUnchanged(show(c));
        }),
        fcParams(25),
      );
      await s.assertAlive();
      total.cases += n;
      t.diagnostic(`${n} generated cases`);
    });
  }

  test('argument-less methods ignore any body (below the limit) and give their fixed answer', async (t) => {
    let n = 0;
    const bodies = fc.oneof(
      fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? '')),
      fc.tuple(...ROUTES.slice(0, 3).map((r) => r.base(w))).map((b) => Buffer.from(serialize(b[0]!))),
      hostileString.map((h) => Buffer.from(h)),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...Object.keys(NO_ARGUMENT_ROUTES)), bodies, async (method, body) => {
        n++;
        const reply = await sendCase({ method, body, note: 'ignored body' });
        assert.equal(reply.status, 200, `${method} → ${reply.raw}`);
        assert.deepEqual(reply.json, NO_ARGUMENT_ROUTES[method]);
        await assertUnchanged(`${method} with a body`);
      }),
      fcParams(40),
    );
    total.cases += n;
    t.diagnostic(`${n} generated cases`);
  });

  test('a body above 1 MiB → 413 KURYR_ERR_TOO_LARGE on any path and method; exactly 1 MiB is read', async (t) => {
    let n = 0;
    const methods = [
      ...ROUTES.map((r) => r.method),
      ...Object.keys(NO_ARGUMENT_ROUTES),
      'NetworkDriver.Nope',
      '../etc/passwd',
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...methods),
        fc.constantFrom('POST', 'POST', 'PUT', 'GET'),
        fc.integer({ min: 1, max: 64 * 1024 }),
        fc.constantFrom('json', 'garbage', 'nested'),
        async (method, verb, extra, shape) => {
          n++;
          const size = DEFAULT_MAX_BODY_BYTES + extra;
          const body =
            shape === 'json'
              ? Buffer.from(`{"NetworkID":"${w.netA}","pad":"${'x'.repeat(size - 90)}"}`.padEnd(size, ' '))
              : shape === 'nested'
                ? Buffer.from('['.repeat(size))
                : Buffer.alloc(size, 0xff);
          assert.ok(body.length > DEFAULT_MAX_BODY_BYTES);
          const reply = await sendCase({ method, body, note: `${body.length} bytes` }, verb);
          const code = assertErr(reply, `${verb} /${method} with ${body.length} bytes`, [413]);
          assert.equal(code, 'KURYR_ERR_TOO_LARGE');
          await assertUnchanged(`${body.length} bytes`);
        },
      ),
      fcParams(6),
    );
    // The limit itself is allowed: a DeleteNetwork of an unknown network padded to exactly 1 MiB is answered.
    const head = `{"NetworkID":"${'f'.repeat(64)}","pad":"`;
    const exact = Buffer.from(`${head}${'x'.repeat(DEFAULT_MAX_BODY_BYTES - head.length - 2)}"}`);
    assert.equal(exact.length, DEFAULT_MAX_BODY_BYTES);
    const reply = await sendCase({ method: 'NetworkDriver.DeleteNetwork', body: exact, note: 'exactly 1 MiB' });
    assert.equal(reply.status, 200, reply.raw.slice(0, 200));
    await assertUnchanged('a 1 MiB body');
    await s.assertAlive();
    total.cases += n + 1;
    t.diagnostic(`${n + 1} generated cases`);
  });

  test('wrong method → 405, unknown or tricked path → 404 KURYR_ERR_NO_SUCH_METHOD', async (t) => {
    let n = 0;
    const known = [...ROUTES.map((r) => r.method), ...Object.keys(NO_ARGUMENT_ROUTES)];
    const trickedPath = fc.oneof(
      fc.constantFrom(
        '/',
        '//NetworkDriver.DeleteNetwork',
        '/NetworkDriver.DeleteNetwork/',
        '/networkdriver.deletenetwork',
        '/NetworkDriver.DeleteNetwork/../IpamDriver.ReleasePool',
        '/../NetworkDriver.DeleteNetwork',
        '/%2e%2e/NetworkDriver.DeleteNetwork',
        '/NetworkDriver.DeleteNetwork%00',
        '/NetworkDriver.DeleteNetwork;reboot',
        '/NetworkDriver.constructor',
        '/__proto__',
        '/constructor',
        '/toString',
        '/hasOwnProperty',
        '/VolumeDriver.Create',
        '/Plugin.Activate/x',
        '/etc/passwd',
        'http://localhost/NetworkDriver.DeleteNetwork',
        '*',
      ),
      fc
        .tuple(fc.constantFrom(...known), fc.constantFrom('x', '/', '.', '%20', '%0a', '$(id)'))
        .map(([m, s]) => `/${m}${s}`),
      fc
        .webPath()
        .filter((p) => !known.includes(p.slice(1).split('?')[0]!))
        .map((p) => (p.startsWith('/') ? p : `/${p}`)),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({
            kind: fc.constant('method' as const),
            verb: fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
            path: fc.constantFrom(...known).map((m) => `/${m}`),
          }),
          fc.record({ kind: fc.constant('path' as const), verb: fc.constant('POST'), path: trickedPath }),
        ),
        dockerIdArb,
        async ({ kind, verb, path }, id) => {
          n++;
          const body = JSON.stringify({ NetworkID: w.netA, EndpointID: w.epA, PoolID: w.poolC, junk: id });
          const reply = await s.send({ path, method: verb, body });
          total.requests++;
          const what = `${verb} ${path}`;
          if (kind === 'method') assert.equal(assertErr(reply, what, [405]), 'KURYR_ERR_METHOD_NOT_ALLOWED');
          else assert.equal(assertErr(reply, what, [404]), 'KURYR_ERR_NO_SUCH_METHOD');
          await assertUnchanged(what);
        },
      ),
      fcParams(60),
    );
    // HEAD gets the status without a body.
    const head = await s.send({
      path: '/NetworkDriver.DeleteNetwork',
      method: 'HEAD',
      body: JSON.stringify({ NetworkID: w.netA }),
    });
    assert.equal(head.status, 405);
    await assertUnchanged('HEAD');
    total.cases += n;
    t.diagnostic(`${n} generated cases`);
  });

  test('accepted but inert: a SandboxKey with shell metacharacters is used for nothing; AllocateNetwork echoes', async (t) => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        oddSandboxKey,
        fc.dictionary(hostileString, hostileString, { maxKeys: 4 }),
        async (key, options) => {
          n++;
          const join = await s.call('NetworkDriver.Join', {
            NetworkID: w.netA,
            EndpointID: w.epA,
            SandboxKey: key,
            Options: null,
          });
          total.requests++;
          assert.equal(join.status, 200, `Join with SandboxKey ${JSON.stringify(key)} → ${join.raw}`);
          assert.doesNotMatch(join.raw, /\$\(|`|;/, 'the SandboxKey does not come back in the reply');
          const alloc = await s.call('NetworkDriver.AllocateNetwork', {
            NetworkID: 'a'.repeat(25),
            Options: options,
            IPv4Data: [],
            IPv6Data: [],
          });
          total.requests++;
          assert.equal(alloc.status, 200, alloc.raw);
          assert.deepEqual(alloc.json, { Options: { ...options } });
          await assertUnchanged(`Join with ${JSON.stringify(key)}`);
        },
      ),
      fcParams(30),
    );
    total.cases += n;
    t.diagnostic(`${n} generated cases`);
  });

  test('summary', (t) => {
    t.diagnostic(`fuzz endpoints: ${total.cases} generated cases, ${total.requests} requests`);
    assert.ok(total.cases > 0);
  });
});
