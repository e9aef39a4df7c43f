/** 429 Too Many Requests: retried for every method (the request was not processed) after its Retry-After. */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { NeutronError } from '../../src/neutron/errors.ts';
import { NeutronHttpClient, withDefaults } from '../../src/neutron/http/index.ts';
import { retryAfterMs } from '../../src/neutron/http/transport.ts';
import {
  type FakeNeutron,
  fastRetryClient,
  networkOk,
  startFakeCloud,
  startFakeNeutron,
} from '../helpers/fake-openstack.ts';

const client = fastRetryClient;

const limited = (retryAfter?: string) => ({
  status: 429,
  body: { NeutronError: { type: 'OverLimit', message: 'slow down', detail: '' } },
  ...(retryAfter === undefined ? {} : { headers: { 'Retry-After': retryAfter } }),
});

test('Retry-After: delay-seconds, an HTTP date, or nothing usable', () => {
  const now = Date.parse('2026-12-07T03:00:00Z');
  assert.equal(retryAfterMs('2', now), 2_000);
  assert.equal(retryAfterMs(' 0 ', now), 0);
  assert.equal(retryAfterMs('Mon, 07 Dec 2026 03:00:03 GMT', now), 3_000);
  assert.equal(retryAfterMs('Mon, 07 Dec 2026 02:59:00 GMT', now), 0, 'a date in the past: at once');
  assert.equal(retryAfterMs(undefined, now), undefined);
  assert.equal(retryAfterMs('soon', now), undefined);
  assert.equal(retryAfterMs('-1', now), undefined);
});

describe('neutron http transport: 429', () => {
  let neutron: FakeNeutron;
  let api: NeutronHttpClient;
  before(async () => {
    neutron = await startFakeNeutron();
  });
  after(async () => {
    await neutron.close();
  });
  beforeEach(() => {
    neutron.requests.length = 0;
    neutron.handler = networkOk;
    api = client(neutron.url);
  });
  afterEach(async () => {
    await api.close();
  });

  const gaps = () => neutron.requests.map((_, i, all) => (i === 0 ? 0 : all[i]!.at - all[i - 1]!.at));

  test('POST, PUT and DELETE are retried after a 429 (never processed), as GET is', async () => {
    neutron.queue(limited('0'));
    assert.equal((await api.createNetwork({ name: 'x' })).id, 'n');
    neutron.queue(limited());
    assert.equal((await api.updateNetwork('n', { name: 'y' })).id, 'n');
    neutron.queue(limited('0'));
    await api.deleteNetwork('n');
    neutron.queue(limited('0'));
    assert.equal((await api.listNetworks()).length, 1);
    assert.deepEqual(
      neutron.requests.map((r) => r.method),
      ['POST', 'POST', 'PUT', 'PUT', 'DELETE', 'DELETE', 'GET', 'GET'],
    );
    assert.deepEqual(neutron.requests[1]?.json, { network: { name: 'x' } }, 'the body is sent again');
  });

  test('Retry-After in seconds is waited for', async () => {
    neutron.queue(limited('1'));
    const started = Date.now();
    await api.createNetwork({ name: 'x' });
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 950 && elapsed < 2_000, `${elapsed} ms`);
    assert.equal(neutron.requests.length, 2);
  });

  test('Retry-After as an HTTP date is waited for', async () => {
    // HTTP dates have whole seconds: ask for the second after next, at least 1 s away.
    const at = new Date(Math.ceil((Date.now() + 1_000) / 1000) * 1000);
    neutron.queue(limited(at.toUTCString()));
    await api.updateNetwork('n', { name: 'y' });
    assert.ok(Date.now() >= at.getTime() - 50, 'not sent again before the date');
    assert.equal(neutron.requests.length, 2);
  });

  test('a Retry-After past the deadline: no wait, the 429 is the error at once, saying why', async () => {
    const short = client(neutron.url, { deadlineMs: 2_000, timeoutMs: 1_000 });
    try {
      neutron.queue(limited('30'));
      const started = Date.now();
      await assert.rejects(short.createNetwork({ name: 'x' }), (err: unknown) => {
        assert.ok(err instanceof NeutronError);
        assert.equal(err.status, 429);
        assert.match(err.message, /slow down .*Retry-After 30\.0 s does not fit before the deadline/);
        return true;
      });
      assert.ok(Date.now() - started < 500);
      assert.equal(neutron.requests.length, 1);
    } finally {
      await short.close();
    }
  });

  test('429 without Retry-After: the usual backoff, bounded by the attempts', async () => {
    neutron.queue(limited(), limited(), limited(), limited());
    await assert.rejects(api.createNetwork({ name: 'x' }), (err: unknown) => {
      assert.ok(err instanceof NeutronError && err.status === 429);
      assert.match(err.message, /gave up: no attempts left \(4 attempts/);
      return true;
    });
    assert.equal(neutron.requests.length, 4);
    assert.ok(gaps().every((g) => g < 500));
  });

  test('Keystone answering 429 to the token request: retried after Retry-After', async () => {
    const cloud = await startFakeCloud();
    try {
      cloud.neutron.handler = () => ({ status: 200, body: { networks: [] } });
      cloud.keystone.failures.push({ status: 429, headers: { 'Retry-After': '1' }, body: { error: { code: 429 } } });
      const ks = new NeutronHttpClient(
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
        }),
      );
      const started = Date.now();
      assert.deepEqual(await ks.listNetworks(), []);
      assert.ok(Date.now() - started >= 950);
      assert.equal(cloud.keystone.tokenRequests.length, 2);
      await ks.close();
    } finally {
      await cloud.close();
    }
  });
});
