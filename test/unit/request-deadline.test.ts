// One deadline per plugin request, shared by all its Neutron calls: Docker gets an answer inside its plugin
// timeout even when Neutron hangs, whatever number of calls the request makes.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { openNeutronHttp } from '../../src/neutron/http/index.ts';
import {
  enterRollback,
  REQUEST_BUDGET_MS,
  ROLLBACK_BUDGET_MS,
  requestDeadline,
  runInRequestContext,
} from '../../src/observability/request-context.ts';

const context = (ageMs: number) => ({
  id: 't-1',
  method: 'NetworkDriver.CreateNetwork',
  startedAt: performance.now() - ageMs,
  cpuAtStart: process.cpuUsage(),
  neutronCalls: 0,
});

test('the request deadline: the budget from the start of the request, longer while rolling back', () => {
  assert.equal(requestDeadline(), undefined, 'no request, no request deadline');
  runInRequestContext(context(1_000), () => {
    const left = requestDeadline()! - Date.now();
    assert.ok(Math.abs(left - (REQUEST_BUDGET_MS - 1_000)) < 50, `${left}`);
    enterRollback();
    const rollback = requestDeadline()! - Date.now();
    assert.ok(Math.abs(rollback - (ROLLBACK_BUDGET_MS - 1_000)) < 50, `${rollback}`);
  });
});

test('a hanging Neutron call gives up when the request runs out of time, not after its own 20 s', async () => {
  const sockets = new Set<import('node:net').Socket>();
  const hanging = http.createServer(() => undefined); // never answers
  hanging.on('connection', (s) => sockets.add(s));
  await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
  const port = (hanging.address() as AddressInfo).port;
  const client = openNeutronHttp({ auth_type: 'none', endpoint: `http://127.0.0.1:${port}` });
  try {
    const started = Date.now();
    await assert.rejects(runInRequestContext(context(REQUEST_BUDGET_MS - 800), () => client.listNetworks()));
    const took = Date.now() - started;
    assert.ok(took < 3_000, `gave up after ${took} ms`);
  } finally {
    await client.close();
    for (const s of sockets) s.destroy();
    await new Promise((r) => hanging.close(r));
  }
});
