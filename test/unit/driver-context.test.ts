// The driver runtime's short-lived notes (driver/context.ts): ExpiringMap, which holds one ended endpoint per
// container lifecycle for two minutes, must not walk every live entry on each addition.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExpiringKeys, ExpiringMap } from '../../src/driver/context.ts';

/** Counts the steps of every Map iteration while `fn` runs. */
function mapSteps(fn: () => void): number {
  const original = Map.prototype[Symbol.iterator];
  let steps = 0;
  Map.prototype[Symbol.iterator] = function (this: Map<unknown, unknown>) {
    const it = original.call(this);
    return Object.assign(Object.create(Object.getPrototypeOf(it)), {
      next: () => {
        steps++;
        return it.next();
      },
    });
  };
  try {
    fn();
  } finally {
    Map.prototype[Symbol.iterator] = original;
  }
  return steps;
}

test('ExpiringMap.set drops the expired entries without walking the live ones', () => {
  const map = new ExpiringMap<number>(1000);
  for (let i = 0; i < 500; i++) map.set(`k${i}`, i, i);
  // At 1200 the first 201 entries (added at 0..200) have expired.
  const steps = mapSteps(() => map.set('new', 1, 1200));
  assert.equal(map.size, 500 - 201 + 1);
  assert.ok(steps <= 203, `walked ${steps} entries: the expired ones and the first live one`);
  assert.equal(map.get('k200', 1200), undefined);
  assert.equal(map.get('k201', 1200), 201);
});

test('ExpiringMap: a key set again expires from its new time, wherever it was', () => {
  const map = new ExpiringMap<string>(100);
  map.set('a', 'first', 0);
  map.set('b', 'b', 50);
  map.set('a', 'again', 90);
  map.set('c', 'c', 160); // b (150) has expired, a (190) has not
  assert.equal(map.get('a', 160), 'again');
  assert.equal(map.get('b', 160), undefined);
  assert.equal(map.size, 2);
  const keys = new ExpiringKeys(100);
  keys.add('e', 0);
  assert.ok(keys.has('e', 99));
  assert.ok(!keys.has('e', 100));
});
