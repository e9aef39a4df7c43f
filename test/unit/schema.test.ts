import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as s from '../../src/driver/requests.ts';
import * as z from '../../src/util/schema.ts';

const messages = (schema: z.Schema<unknown>, input: unknown): string => {
  const r = schema.safeParse(input);
  return r.success ? 'ok' : z.describeIssues(r.issues);
};

test('objects keep only their declared fields; absent optional fields stay absent', () => {
  const schema = z.object({ a: z.string(), b: z.string().optional(), c: z.integer().nullish() });
  const r = schema.safeParse({ a: 'x', c: null, extra: 1 });
  assert.ok(r.success);
  assert.deepEqual(r.data, { a: 'x', c: null });
  assert.equal(Object.hasOwn(r.data, 'b'), false);
  // Inherited fields are not the body's: a declared field that is only inherited counts as missing.
  assert.equal(messages(schema, Object.create({ a: 'x' })), 'a: is required (a string)');
});

test('type errors name the path, the expected type and what came instead', () => {
  const schema = z.object({
    list: z.array(z.object({ n: z.integer() })).max(2),
    map: z.record(z.string(), z.boolean()),
  });
  assert.equal(messages(schema, []), 'body: must be an object, not an array');
  assert.equal(messages(schema, null), 'body: must be an object, not null');
  assert.equal(
    messages(schema, { list: [{ n: 1 }, { n: 1.5 }], map: { k: 'yes' } }),
    'list.1.n: must be an integer; map.k: must be true or false, not a string',
  );
  assert.equal(messages(schema, { list: [{}, {}, {}], map: {} }), 'list: must have at most 2 items');
  assert.equal(messages(schema, { map: 'x' }), 'list: is required (an array); map: must be an object, not a string');
  assert.equal(messages(z.integer(), 2 ** 60), 'body: must be an integer');
  assert.equal(messages(z.picklist(['a', 'b']), 'c'), 'body: must be one of "a", "b"');
});

test('optional, nullish and nullable accept exactly missing and/or null', () => {
  const accepts = (schema: z.Schema<unknown>) => [undefined, null].map((v) => schema.safeParse(v).success);
  assert.deepEqual(accepts(z.string()), [false, false]);
  assert.deepEqual(accepts(z.string().optional()), [true, false]);
  assert.deepEqual(accepts(z.string().nullish()), [true, true]);
  assert.deepEqual(accepts(z.string().nullable()), [false, true]);
});

test('records copy own keys but never __proto__, and check keys and values', () => {
  const schema = z.record(z.string().max(3), z.string());
  const input = JSON.parse('{"__proto__": {"polluted": "yes"}, "a": "1"}') as unknown;
  const r = schema.safeParse(input);
  assert.ok(r.success);
  assert.deepEqual(Object.keys(r.data), ['a']);
  assert.equal(Object.getPrototypeOf(r.data), Object.prototype);
  assert.equal(
    messages(schema, { long: 'v', b: 2 }),
    'long: key must be at most 3 characters long; b: must be a string, not a number',
  );
});

test('string checks report the first failure; refine runs only once the value passed everything else', () => {
  let refined = 0;
  const str = z
    .string()
    .min(1, 'must not be empty')
    .regex(/^[a-z]*$/, 'must be lowercase')
    .satisfies((v) => v !== 'no', 'must not be "no"');
  assert.equal(messages(str, ''), 'body: must not be empty');
  assert.equal(messages(str, 'AB'), 'body: must be lowercase');
  assert.equal(messages(str, 'no'), 'body: must not be "no"');
  const obj = z.object({ a: str }).refine(
    () => {
      refined++;
      return false;
    },
    'a and b disagree',
    ['b'],
  );
  assert.equal(messages(obj, { a: 'AB' }), 'a: must be lowercase');
  assert.equal(refined, 0);
  assert.equal(messages(obj, { a: 'ok' }), 'b: a and b disagree');
  assert.equal(refined, 1);
});

test('at most five issues are described', () => {
  const schema = z.object(Object.fromEntries('abcdefg'.split('').map((k) => [k, z.string()])));
  assert.equal(messages(schema, {}).split('; ').length, 5);
});

test('request schemas: the messages the plugin answers with', () => {
  const id = 'a'.repeat(64);
  assert.equal(
    messages(s.createEndpointRequest, { NetworkID: id, EndpointID: 'x', Interface: { Address: '10.0.0.300/24' } }),
    'EndpointID: must be a Docker ID (64 lowercase hex characters, or 25 for swarm); ' +
      'Interface.Address: must be empty or a CIDR such as 10.0.0.0/24',
  );
  assert.equal(
    messages(s.createNetworkRequest, { NetworkID: id, IPv4Data: [{ Pool: '10.0.0.0/24', Gateway: '10.1.0.1/24' }] }),
    'IPv4Data.0.Gateway: must be an address inside Pool',
  );
  assert.equal(
    messages(s.externalConnectivityRequest, {
      NetworkID: id,
      EndpointID: id,
      Options: { 'com.docker.network.endpoint.exposedports': [{ Proto: 6, Port: 0 }] },
    }),
    'Options.com.docker.network.endpoint.exposedports: must be a list of {Proto: 1, 6, 17 or 132, Port: 1-65535}',
  );
  assert.equal(
    messages(s.releaseAddressRequest, { PoolID: '' }),
    'PoolID: must not be empty; Address: is required (a string)',
  );
  assert.equal(messages(s.discoveryRequest, { DiscoveryType: 1 }), 'ok');
  // What passes is what the driver gets: unknown fields dropped, the rest unchanged.
  const pool = s.requestPoolRequest.safeParse({ Pool: '', V6: true, Options: { a: 'b' }, Extra: 1 });
  assert.ok(pool.success);
  assert.deepEqual(pool.data, { Pool: '', V6: true, Options: { a: 'b' } });
});
