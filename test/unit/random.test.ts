// Randomness without node:crypto (util/random.ts): version-4 UUIDs, uniform integers, fresh bytes each call.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomBytes, randomInt, randomUUID } from '../../src/util/random.ts';

test('randomBytes: the length asked for, different every time, also past the read-ahead pool', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 500; i++) {
    const b = randomBytes(8);
    assert.equal(b.length, 8);
    seen.add(b.toString('hex'));
  }
  assert.equal(seen.size, 500);
  const big = randomBytes(4096);
  assert.equal(big.length, 4096);
  assert.ok(new Set(big).size > 200, 'a large read is random too');
  assert.equal(randomBytes(0).length, 0);
});

test('randomUUID: RFC 9562 version 4 text form, unique', () => {
  const ids = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const id = randomUUID();
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    ids.add(id);
  }
  assert.equal(ids.size, 1000);
});

test('randomInt: within [0, max), every value reached, bad bounds refused', () => {
  const counts = new Array<number>(6).fill(0);
  for (let i = 0; i < 6000; i++) {
    const v = randomInt(6);
    assert.ok(Number.isInteger(v) && v >= 0 && v < 6, String(v));
    counts[v]! += 1;
  }
  // 1000 expected each; 6 sigma is about 190.
  for (const c of counts) assert.ok(c > 800 && c < 1200, counts.join(','));
  assert.equal(randomInt(1), 0);
  assert.ok(randomInt(2 ** 48) < 2 ** 48);
  for (const bad of [0, -1, 1.5, 2 ** 48 + 1, Number.NaN]) assert.throws(() => randomInt(bad), RangeError);
});
