// One deadline per plugin request, passed explicitly as an AbortSignal: plugin/server.ts makes it, the driver
// binds its Neutron calls to it, and the HTTP client ends attempts and retry sleeps when it aborts. So Docker gets
// an answer inside its plugin timeout even when Neutron hangs, whatever number of calls the request makes. Time is
// node:test's mock timers or an abort the test makes; nothing here measures the wall clock.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, afterEach, before, describe, mock, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { KuryrDriver } from '../../src/driver/driver.ts';
import type { NeutronApi } from '../../src/neutron/api.ts';
import { cachingNeutron } from '../../src/neutron/caching.ts';
import { countingNeutron } from '../../src/neutron/counting.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/store.ts';
import { NeutronHttpClient, withDefaults } from '../../src/neutron/http/index.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { createPluginServer, REQUEST_BUDGET_MS, ROLLBACK_BUDGET_MS } from '../../src/plugin/server.ts';
import { type Deadline, DeadlineExceeded, type RequestBudget, RequestDeadline } from '../../src/util/deadline.ts';
import { FakeAgent, FakeBinder, TEST_SETTINGS } from '../helpers/fakes.ts';

describe('RequestDeadline', () => {
  afterEach(() => mock.timers.reset());

  test('aborts when the budget from the start of the request is spent', () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
    const deadline = new RequestDeadline(REQUEST_BUDGET_MS, ROLLBACK_BUDGET_MS, 1_000_000 - 2_000);
    assert.equal(deadline.at, 1_000_000 + REQUEST_BUDGET_MS - 2_000);
    mock.timers.tick(REQUEST_BUDGET_MS - 2_001);
    assert.equal(deadline.signal.aborted, false);
    mock.timers.tick(1);
    assert.equal(deadline.signal.aborted, true);
    assert.ok(deadline.signal.reason instanceof DeadlineExceeded);
  });

  test('rolling back, the signal and the time are the longer rollback budget', () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const deadline = new RequestDeadline(REQUEST_BUDGET_MS, ROLLBACK_BUDGET_MS);
    mock.timers.tick(5_000);
    deadline.enterRollback();
    assert.equal(deadline.rollingBack, true);
    assert.equal(deadline.at, ROLLBACK_BUDGET_MS);
    mock.timers.tick(REQUEST_BUDGET_MS - 5_000);
    assert.equal(deadline.signal.aborted, false, 'the work budget is spent, the rollback one is not');
    mock.timers.tick(ROLLBACK_BUDGET_MS - REQUEST_BUDGET_MS);
    assert.equal(deadline.signal.aborted, true);
  });

  test('no timer runs until the signal is asked for: most requests never ask', () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const deadline = new RequestDeadline(REQUEST_BUDGET_MS, ROLLBACK_BUDGET_MS);
    assert.equal(deadline.timers, 0);
    assert.equal(deadline.at, REQUEST_BUDGET_MS);
    assert.equal(deadline.signal.aborted, false);
    assert.equal(deadline.timers, 1);
    deadline.dispose();
    const late = new RequestDeadline(REQUEST_BUDGET_MS, ROLLBACK_BUDGET_MS);
    mock.timers.tick(REQUEST_BUDGET_MS);
    assert.equal(late.signal.aborted, true, 'first asked for once spent: aborted at once');
    assert.ok(late.signal.reason instanceof DeadlineExceeded);
    assert.equal(late.timers, 0);
  });

  test('dispose clears the timers: a finished request never aborts', () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const deadline = new RequestDeadline(REQUEST_BUDGET_MS, ROLLBACK_BUDGET_MS);
    deadline.dispose();
    mock.timers.tick(ROLLBACK_BUDGET_MS * 2);
    assert.equal(deadline.signal.aborted, false);
  });
});

describe('the HTTP client bound to a deadline', () => {
  let server: http.Server;
  let url: string;
  const sockets = new Set<Socket>();
  /** What the server does with each request. */
  let onRequest: (res: http.ServerResponse) => void = () => undefined;
  let requests = 0;
  before(async () => {
    server = http.createServer((_req, res) => {
      requests++;
      onRequest(res);
    });
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  /** A client whose own limits (20 s per call, 10 s per attempt, retries with long sleeps) are far away. */
  const client = (random?: () => number) =>
    new NeutronHttpClient(
      withDefaults({
        auth: { type: 'none', endpoint: url },
        timeoutMs: 10_000,
        retry: { attempts: 4, baseDelayMs: 5_000, maxDelayMs: 5_000 },
      }),
      random === undefined ? {} : { random },
    );
  const aborting = (): Deadline & { abort(): void } => {
    const controller = new AbortController();
    return { at: Date.now() + 3_600_000, signal: controller.signal, abort: () => controller.abort() };
  };

  test('a hanging call ends when the deadline aborts, not after its own time limit', { timeout: 8_000 }, async () => {
    requests = 0;
    const deadline = aborting();
    onRequest = () => deadline.abort(); // never answers; the request's time runs out meanwhile
    const api = client();
    try {
      await assert.rejects(api.withDeadline(deadline).listNetworks(), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'KURYR_ERR_NEUTRON');
        assert.match(err.message, /^Neutron GET \/v2\.0\/networks: gave up: the request's deadline passed/);
        return true;
      });
      assert.equal(requests, 1);
    } finally {
      await api.close();
    }
  });

  test('a retry sleep ends when the deadline aborts', { timeout: 8_000 }, async () => {
    requests = 0;
    const deadline = aborting();
    onRequest = (res) => res.writeHead(503, { 'Content-Type': 'application/json' }).end('{}');
    // The jitter is drawn just before the 2.5-5 s sleep; the deadline aborts once that sleep has begun.
    const api = client(() => {
      setImmediate(() => deadline.abort());
      return 0.5;
    });
    try {
      const call = api.withDeadline(deadline).listNetworks();
      call.catch(() => undefined);
      // The sleep is 3.75 s (5 s × (0.5 + 0.5 / 2)): the call must be over long before it would have ended.
      const first = await Promise.race([
        call.then(
          () => 'answered',
          () => 'failed',
        ),
        delay(1_500, 'still sleeping'),
      ]);
      assert.equal(first, 'failed');
      await assert.rejects(call, /gave up: answered 503 \(deadline reached/);
      assert.equal(requests, 1, 'no second attempt');
    } finally {
      await api.close();
    }
  });

  test('a call whose deadline has passed is not sent; the unbound client still calls', async () => {
    requests = 0;
    onRequest = (res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"networks":[]}');
    const api = client();
    try {
      const passed: Deadline = { at: Date.now() - 1, signal: AbortSignal.abort() };
      await assert.rejects(api.withDeadline(passed).listNetworks(), /no attempt made/);
      assert.equal(requests, 0);
      assert.deepEqual(await api.listNetworks(), [], 'the view changed nothing of the client it came from');
      assert.equal(requests, 1);
    } finally {
      await api.close();
    }
  });
});

/** The embedded store, recording which deadline (if any) each call was made under. */
function recordingStore() {
  const store = openEmbeddedNeutron({ path: ':memory:' });
  const calls: { method: string; deadline: Deadline | undefined }[] = [];
  const view = (deadline: Deadline | undefined): NeutronApi =>
    new Proxy(store, {
      get(target, key) {
        if (key === 'withDeadline') return (d: Deadline) => view(d);
        const value = Reflect.get(target, key, target) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls.push({ method: String(key), deadline });
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  return { store, calls, api: view(undefined) };
}

describe('the deadline reaches the Neutron calls', () => {
  test('through the cache and the counter: the same kept resources and counts', async () => {
    const { store, calls, api } = recordingStore();
    const counted = countingNeutron(api);
    const cached = cachingNeutron(counted);
    const driver = new KuryrDriver({
      neutron: cached,
      binder: new FakeBinder(),
      agent: new FakeAgent(),
      settings: TEST_SETTINGS,
      log: silentLogger(),
    });
    const deadline = farDeadline();
    try {
      await driver.forRequest(deadline).requestPool({ Pool: '10.70.0.0/24', Options: {} });
      assert.ok(calls.length > 0);
      assert.deepEqual(
        calls.filter((c) => c.deadline !== deadline),
        [],
        'every call of the request was bound to its deadline',
      );
      assert.equal(counted.totalCalls(), calls.length, 'counted into the process-wide totals');
      assert.ok(cached.keptCount() > 0, 'what the request read is kept for the others');
    } finally {
      store.close();
    }
  });

  test('plugin/server.ts gives each request a deadline of its own, within the request budget', async () => {
    const { store, calls, api } = recordingStore();
    const driver = new KuryrDriver({
      neutron: api,
      binder: new FakeBinder(),
      agent: new FakeAgent(),
      settings: TEST_SETTINGS,
      log: silentLogger(),
    });
    const server = createPluginServer({ driver, log: silentLogger() });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const post = async (pool: string) => {
      const res = await fetch(`http://127.0.0.1:${port}/IpamDriver.RequestPool`, {
        method: 'POST',
        body: JSON.stringify({ AddressSpace: 'local', Pool: pool, Options: {} }),
      });
      assert.equal(res.status, 200, await res.text());
    };
    try {
      const before = Date.now();
      await post('10.71.0.0/24');
      await post('10.72.0.0/24');
      const deadlines = [...new Set(calls.map((c) => c.deadline))];
      assert.equal(deadlines.length, 2, 'one deadline per request, every call under one');
      for (const d of deadlines) {
        assert.ok(d instanceof RequestDeadline);
        assert.ok(d.at >= before + REQUEST_BUDGET_MS && d.at <= Date.now() + REQUEST_BUDGET_MS);
        assert.equal(d.signal.aborted, false);
      }
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      store.close();
    }
  });
});

describe('a store with nothing to abort', () => {
  test('the counting and caching layers bind no deadline: no view is built per request', () => {
    const store = openEmbeddedNeutron({ path: ':memory:' });
    try {
      const counted = countingNeutron(store);
      const cached = cachingNeutron(counted);
      assert.equal(counted.withDeadline(farDeadline()), counted);
      assert.equal(cached.withDeadline(farDeadline()), cached);
    } finally {
      store.close();
    }
  });
});

/** A deadline far away. */
function farDeadline(): RequestBudget {
  return { at: Date.now() + 3_600_000, signal: new AbortController().signal, enterRollback: () => undefined };
}
