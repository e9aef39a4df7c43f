import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isConflict, isNotFound, isPoolInUse, NeutronError } from '../../src/neutron/errors.ts';

test('a pool in use is recognised in both forms Neutron answers (409 documented, 400 on Zed)', () => {
  assert.ok(isPoolInUse(new NeutronError(409, 'SubnetPoolInUse', 'in use')));
  assert.ok(
    isPoolInUse(
      new NeutronError(
        400,
        'SubnetPoolDeleteError',
        'Unable to delete subnet pool: Subnet pool has existing allocations.',
      ),
    ),
  );
  assert.equal(isPoolInUse(new NeutronError(400, 'BadRequest', 'bad')), false);
  assert.equal(isPoolInUse(new Error('x')), false);
  assert.ok(isNotFound(new NeutronError(404, 'NetworkNotFound', 'gone')));
  assert.ok(isConflict(new NeutronError(409, 'IpAddressAlreadyAllocated', 'taken')));
});
