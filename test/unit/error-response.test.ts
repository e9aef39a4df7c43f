import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KuryrError } from '../../src/errors.ts';
import { NeutronError } from '../../src/neutron/errors.ts';
import { errorReply } from '../../src/plugin/error-response.ts';

test('a Neutron failure names the call and the request id; client errors keep their status, the rest is 502', () => {
  const post = errorReply(
    new NeutronError(503, 'HTTPServiceUnavailable', '503 Service Unavailable', 'req-1', 'POST /v2.0/ports'),
  );
  assert.equal(post.status, 502);
  assert.equal(
    post.body.Err,
    'KURYR_ERR_NEUTRON: Neutron HTTPServiceUnavailable (HTTP 503): 503 Service Unavailable [POST /v2.0/ports] [request req-1]',
  );
  const conflict = errorReply(
    new NeutronError(409, 'IpAddressAlreadyAllocated', 'taken', undefined, 'POST /v2.0/ports'),
  );
  assert.equal(conflict.status, 409);
  const givenUp = errorReply(
    new NeutronError(503, 'X', 'busy [GET /v2.0/ports: gave up: 4 attempts]', undefined, 'GET /v2.0/ports'),
  );
  assert.equal((givenUp.body.Err.match(/GET \/v2\.0\/ports/g) ?? []).length, 1, 'named once');
  const ours = errorReply(new KuryrError('KURYR_ERR_CONFLICT', 'address in use'));
  assert.deepEqual([ours.status, ours.body.Err], [409, 'KURYR_ERR_CONFLICT: address in use']);
  assert.equal(errorReply(new Error('boom')).status, 500);
});
