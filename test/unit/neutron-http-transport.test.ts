/** The HTTP transport under the Neutron client: retries, timeouts, deadlines, keep-alive and TLS. */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, mock, test } from 'node:test';
import { KuryrError } from '../../src/errors.ts';
import { NeutronError } from '../../src/neutron/errors.ts';
import { HttpTransport, type NeutronHttpClient, withDefaults } from '../../src/neutron/http/index.ts';
import {
  type FakeNeutron,
  fastRetryClient,
  networkOk,
  selfSignedCertificate,
  startFakeNeutron,
} from '../helpers/fake-openstack.ts';
import { RequestCounter } from '../helpers/request-counter.ts';

const client = fastRetryClient;

async function caught(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof Error);
    return err;
  }
  assert.fail('expected a failure');
}

const unavailable = {
  status: 503,
  body: { NeutronError: { type: 'ServiceUnavailable', message: 'busy', detail: '' } },
};

describe('neutron http transport: retries', () => {
  let neutron: FakeNeutron;
  let api: NeutronHttpClient;
  const sent = new RequestCounter();
  before(async () => {
    neutron = await startFakeNeutron();
  });
  after(async () => {
    await neutron.close();
  });
  beforeEach(() => {
    neutron.requests.length = 0;
    neutron.handler = networkOk;
    sent.reset();
    api = client(neutron.url, {}, sent);
  });
  afterEach(async () => {
    await api.close();
  });

  test('GET is retried after a 503, then succeeds', async () => {
    neutron.queue(unavailable, unavailable);
    assert.equal((await api.listNetworks()).length, 1);
    assert.equal(neutron.requests.length, 3);
    assert.equal(sent.get('GET /v2.0/networks'), 3, 'every attempt is counted');
  });

  test('GET is retried after a dropped connection', async () => {
    neutron.queue('drop');
    assert.equal((await api.showNetwork('n')).id, 'n');
    assert.equal(neutron.requests.length, 2);
  });

  test('PUT and DELETE are retried too (idempotent)', async () => {
    neutron.queue(unavailable, 'drop');
    assert.equal((await api.updateNetwork('n', { name: 'x' })).id, 'n');
    neutron.queue({ status: 502, body: 'bad gateway' });
    await api.deleteNetwork('n');
    assert.deepEqual(
      neutron.requests.map((r) => r.method),
      ['PUT', 'PUT', 'PUT', 'DELETE', 'DELETE'],
    );
    assert.deepEqual(neutron.requests[2]?.json, { network: { name: 'x' } }, 'the body is sent again');
  });

  test('POST is never retried: a 503 is the error', async () => {
    neutron.queue(unavailable);
    const err = await caught(api.createNetwork({ name: 'x' }));
    assert.ok(err instanceof NeutronError);
    assert.equal(err.status, 503);
    assert.equal(err.type, 'ServiceUnavailable');
    assert.equal(err.message, 'busy');
    assert.equal(neutron.requests.length, 1);
  });

  test('POST is never retried: a dropped connection is the error, naming the call', async () => {
    neutron.queue('drop');
    const err = await caught(api.createNetwork({ name: 'x' }));
    assert.ok(err instanceof KuryrError);
    assert.equal(err.code, 'KURYR_ERR_NEUTRON');
    assert.match(
      err.message,
      /^Neutron POST \/v2\.0\/networks: socket hang up \(ECONNRESET\); not retried: POST is not idempotent$/,
    );
    assert.equal(neutron.requests.length, 1);
  });

  test('a 4xx is not retried', async () => {
    neutron.queue({ status: 404, body: { NeutronError: { type: 'NetworkNotFound', message: 'gone', detail: '' } } });
    const err = await caught(api.showNetwork('n'));
    assert.ok(err instanceof NeutronError && err.status === 404);
    assert.equal(neutron.requests.length, 1);
  });

  test('gives up after the configured attempts with the last 5xx, noting the call', async () => {
    neutron.queue(unavailable, unavailable, unavailable, unavailable);
    const err = await caught(api.listNetworks({ name: 'private-name' }));
    assert.ok(err instanceof NeutronError);
    assert.equal(err.status, 503);
    assert.equal(err.type, 'ServiceUnavailable');
    assert.match(
      err.message,
      /^busy \[Neutron GET \/v2\.0\/networks: gave up: no attempts left \(4 attempts in \d+\.\d s\)\]$/,
    );
    assert.ok(!err.message.includes('private-name'), 'no query string in the message');
    assert.equal(neutron.requests.length, 4);
  });

  test('connection refused: retried, then a KuryrError naming the call', async () => {
    const closed = await startFakeNeutron();
    const url = closed.url;
    await closed.close();
    const downSent = new RequestCounter();
    const down = client(url, {}, downSent);
    const err = await caught(down.deleteNetwork('n1'));
    await down.close();
    assert.ok(err instanceof KuryrError);
    assert.match(
      err.message,
      /^Neutron DELETE \/v2\.0\/networks\/n1: gave up: connect ECONNREFUSED 127\.0\.0\.1:\d+, no attempts left \(4 attempts in/,
    );
    assert.equal(downSent.get('DELETE /v2.0/networks/{id}'), 4);
  });

  test('backoff grows exponentially with jitter and stays bounded', async () => {
    /** The waits between the attempts of one call that meets three 503s, with the jitter source `random`. */
    const waits = async (random: number): Promise<number[]> => {
      const slept: number[] = [];
      const transport = new HttpTransport({
        ...withDefaults({ auth: { type: 'none', endpoint: neutron.url } }),
        retry: { attempts: 4, baseDelayMs: 40, maxDelayMs: 100 },
        random: () => random,
        sleep: async (ms) => {
          slept.push(ms);
        },
      });
      neutron.queue(unavailable, unavailable, unavailable);
      try {
        const res = await transport.request({
          method: 'GET',
          url: new URL(`${neutron.url}/v2.0/networks`),
          service: 'Neutron',
          deadline: Date.now() + 60_000,
        });
        assert.equal(res.status, 200, 'the fourth attempt is answered');
      } finally {
        transport.close();
      }
      return slept;
    };
    // base × 2^(attempt-1), capped at 100, times a jitter factor between 0.5 and 1.
    assert.deepEqual(await waits(1), [40, 80, 100]);
    assert.deepEqual(await waits(0), [20, 40, 50]);
  });

  test('requests reuse one keep-alive connection', async () => {
    for (let i = 0; i < 5; i++) await api.showNetwork('n');
    assert.equal(new Set(neutron.requests.map((r) => r.remotePort)).size, 1);
  });
});

/**
 * Runs `call` on node:test's mocked clock (`setTimeout` and `Date`): each real turn of the event loop (so
 * sockets make progress) is followed by 1 ms of mocked time, until the call fails. Returns the error and the
 * mocked time it took: timeouts and backoff are measured exactly, without waiting for them.
 */
async function onMockedClock(call: () => Promise<unknown>): Promise<{ err: Error; elapsed: number }> {
  mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  try {
    const started = Date.now();
    let outcome: Error | undefined;
    const done = caught(call()).then((e) => {
      outcome = e;
    });
    for (let step = 0; outcome === undefined && step < 60_000; step++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (outcome === undefined) mock.timers.tick(1);
    }
    await done;
    assert.ok(outcome, 'the call ended');
    return { err: outcome, elapsed: Date.now() - started };
  } finally {
    mock.timers.reset();
  }
}

describe('neutron http transport: timeouts and the deadline', () => {
  let neutron: FakeNeutron;
  before(async () => {
    neutron = await startFakeNeutron();
    neutron.handler = () => 'hang';
  });
  after(async () => {
    await neutron.close();
  });
  beforeEach(() => {
    neutron.requests.length = 0;
  });

  test('an attempt that gets no answer times out; GET retries, then gives up naming the call', async () => {
    const api = client(neutron.url, { timeoutMs: 150, retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10 } });
    const { err, elapsed } = await onMockedClock(() => api.listPorts({ device_id: 'x' }));
    await api.close();
    assert.ok(err instanceof KuryrError);
    assert.match(
      err.message,
      /^Neutron GET \/v2\.0\/ports: gave up: timed out after 0\.1 s, no attempts left \(2 attempts in/,
    );
    assert.equal(neutron.requests.length, 2);
    // Two timeouts of 150 ms and the backoff between them (5 ms × jitter 0.75, on 1 ms steps).
    assert.ok(elapsed >= 303 && elapsed <= 306, `${elapsed} ms`);
  });

  test('a POST that times out is not retried', async () => {
    const api = client(neutron.url, { timeoutMs: 150 });
    const { err, elapsed } = await onMockedClock(() => api.createPort({ network_id: 'n' }));
    await api.close();
    assert.equal(elapsed, 150, 'given up when its one attempt timed out');
    assert.match(
      err.message,
      /^Neutron POST \/v2\.0\/ports: timed out after 0\.1 s; not retried: POST is not idempotent$/,
    );
    assert.equal(neutron.requests.length, 1);
  });

  test('the whole call, retries included, ends by the deadline', async () => {
    const api = client(neutron.url, {
      timeoutMs: 400,
      deadlineMs: 1_000,
      retry: { attempts: 10, baseDelayMs: 5, maxDelayMs: 10 },
    });
    const { err, elapsed } = await onMockedClock(() => api.showNetwork('n'));
    await api.close();
    assert.ok(elapsed >= 800 && elapsed <= 1_000, `${elapsed} ms: the time is used, the deadline kept`);
    assert.match(err.message, /^Neutron GET \/v2\.0\/networks\/n: gave up: timed out after 0\.\d s/);
    assert.ok(neutron.requests.length <= 3);
  });

  test('the default options keep a call well inside Docker’s 30 s', () => {
    const options = withDefaults({ auth: { type: 'none', endpoint: neutron.url } });
    assert.ok(options.deadlineMs <= 20_000);
    assert.ok(options.timeoutMs <= options.deadlineMs);
  });
});

describe('neutron http transport: TLS', () => {
  const material = selfSignedCertificate();
  const skip = 'skip' in material ? material.skip : undefined;
  let servers: FakeNeutron[] = [];

  after(() => {
    if (!('skip' in material)) rmSync(material.dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const s of servers) await s.close();
    servers = [];
  });

  async function tlsNeutron(requestCert = false): Promise<FakeNeutron> {
    assert.ok(!('skip' in material));
    const s = await startFakeNeutron({ cert: material.cert, key: material.key, requestCert });
    s.handler = () => ({ status: 200, body: { networks: [] } });
    servers.push(s);
    return s;
  }

  test('cafile: the self-signed server certificate is trusted', { skip }, async () => {
    assert.ok(!('skip' in material));
    const s = await tlsNeutron();
    assert.ok(s.url.startsWith('https://'));
    const api = client(s.url, { tls: { cafile: material.certFile, insecure: false } });
    assert.deepEqual(await api.listNetworks(), []);
    await api.close();
  });

  test('without cafile the certificate is refused, and not retried', { skip }, async () => {
    const s = await tlsNeutron();
    const tlsSent = new RequestCounter();
    const api = client(s.url, {}, tlsSent);
    const err = await caught(api.listNetworks());
    await api.close();
    assert.ok(err instanceof KuryrError);
    assert.match(err.message, /^Neutron GET \/v2\.0\/networks: self[- ]signed certificate/);
    assert.equal(tlsSent.get('GET /v2.0/networks'), 1);
    assert.equal(s.requests.length, 0);
  });

  test('insecure: verification is skipped', { skip }, async () => {
    const s = await tlsNeutron();
    const api = client(s.url, { tls: { insecure: true } });
    assert.deepEqual(await api.listNetworks(), []);
    await api.close();
  });

  test('certfile/keyfile: a client certificate for servers that ask for one', { skip }, async () => {
    assert.ok(!('skip' in material));
    const s = await tlsNeutron(true);
    const withCert = client(s.url, {
      tls: { cafile: material.certFile, certfile: material.certFile, keyfile: material.keyFile, insecure: false },
    });
    assert.deepEqual(await withCert.listNetworks(), []);
    await withCert.close();
    const without = client(s.url, {
      tls: { cafile: material.certFile, insecure: false },
      retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    });
    await caught(without.listNetworks());
    await without.close();
    assert.equal(s.requests.length, 1);
  });

  test('an unreadable cafile is a configuration error naming the key', () => {
    assert.throws(
      () => client('https://127.0.0.1:1', { tls: { cafile: join('/nonexistent', 'ca.pem'), insecure: false } }),
      (err: unknown) =>
        err instanceof KuryrError &&
        err.code === 'KURYR_ERR_CONFIG' &&
        err.message === '[neutron] cafile: cannot read /nonexistent/ca.pem (ENOENT)',
    );
  });
});
