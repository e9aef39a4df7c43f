import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ipMemoSize,
  cidrContains,
  cidrContainsIp,
  cidrsOverlap,
  defaultAllocationPools,
  firstFreeBlock,
  firstHost,
  formatCidr,
  isCidr,
  isIp,
  isMac,
  normalizeCidr,
  normalizeIp,
  parseCidr,
  splitAddressWithPrefix,
} from '../../src/util/ip.ts';

test('parses and normalises CIDRs of both families', () => {
  assert.equal(normalizeCidr('10.0.0.7/24'), '10.0.0.0/24');
  assert.equal(normalizeCidr('FD00:0::1/64'), 'fd00::/64');
  assert.equal(isCidr('10.0.0.0/33'), false);
  assert.equal(isCidr('10.0.0.0'), false);
  assert.equal(isCidr('10.0.0.256/24'), false);
  assert.equal(isCidr('fd00::/129'), false);
  assert.equal(isCidr('a;rm -rf /'), false);
});

test('recognises plain addresses and MACs', () => {
  assert.ok(isIp('10.1.2.3'));
  assert.ok(isIp('fd00::1'));
  assert.equal(isIp('10.1.2'), false);
  assert.equal(isIp('fe80::1%eth0'), false);
  assert.ok(isMac('02:42:ac:11:00:02'));
  assert.equal(isMac('02:42:ac:11:00'), false);
});

test('splits an interface address without clearing host bits', () => {
  assert.deepEqual(splitAddressWithPrefix('10.0.0.5/24'), { address: '10.0.0.5', prefixLength: 24, version: 4 });
  assert.deepEqual(splitAddressWithPrefix('fd00::0005/64'), { address: 'fd00::5', prefixLength: 64, version: 6 });
});

test('containment and overlap', () => {
  const net = parseCidr('10.0.0.0/16');
  assert.ok(cidrContains(net, parseCidr('10.0.5.0/24')));
  assert.equal(cidrContains(parseCidr('10.0.5.0/24'), net), false);
  assert.ok(cidrsOverlap(net, parseCidr('10.0.255.0/24')));
  assert.equal(cidrsOverlap(net, parseCidr('10.1.0.0/24')), false);
  assert.ok(cidrContainsIp(net, '10.0.3.4'));
  assert.equal(cidrContainsIp(net, 'fd00::1'), false);
});

test('Neutron default gateway and allocation pools', () => {
  assert.equal(firstHost(parseCidr('10.0.0.0/24')), '10.0.0.1');
  assert.equal(firstHost(parseCidr('10.0.0.0/31')), null);
  assert.deepEqual(defaultAllocationPools(parseCidr('10.0.0.0/24'), '10.0.0.1'), [
    { start: '10.0.0.2', end: '10.0.0.254' },
  ]);
  assert.deepEqual(defaultAllocationPools(parseCidr('10.0.0.0/24'), '10.0.0.100'), [
    { start: '10.0.0.1', end: '10.0.0.99' },
    { start: '10.0.0.101', end: '10.0.0.254' },
  ]);
  assert.deepEqual(defaultAllocationPools(parseCidr('fd00::/120'), 'fd00::1'), [{ start: 'fd00::2', end: 'fd00::ff' }]);
});

test('first free block skips used blocks', () => {
  const pool = parseCidr('10.10.0.0/16');
  assert.equal(formatCidr(firstFreeBlock(pool, 24, [])!), '10.10.0.0/24');
  const used = [parseCidr('10.10.0.0/24'), parseCidr('10.10.1.0/25'), parseCidr('10.10.2.0/23')];
  assert.equal(formatCidr(firstFreeBlock(pool, 24, used)!), '10.10.4.0/24');
  assert.equal(firstFreeBlock(parseCidr('10.0.0.0/24'), 24, [parseCidr('10.0.0.0/16')]), null);
  assert.equal(firstFreeBlock(parseCidr('10.0.0.0/24'), 16, []), null);
});

test('parsed addresses and CIDRs are remembered (bounded), shared frozen, and bad input still throws', () => {
  const a = parseCidr('10.123.4.0/24');
  assert.equal(parseCidr('10.123.4.0/24'), a, 'parsed once: the same object');
  assert.ok(Object.isFrozen(a), 'shared by every caller: frozen');
  assert.equal(normalizeIp('fd00:0:0::0001'), 'fd00::1');
  assert.equal(normalizeIp('fd00:0:0::0001'), 'fd00::1');
  for (let i = 0; i < 5000; i++) normalizeIp(`10.124.${i >> 8}.${i & 255}`);
  assert.ok(ipMemoSize() <= 3 * 2048, `bounded: ${ipMemoSize()}`);
  assert.throws(() => normalizeIp('10.0.0.256'));
  assert.throws(() => normalizeIp('10.0.0.256'), 'not remembered as valid');
  assert.throws(() => parseCidr('10.0.0.0/33'));
  assert.throws(() => parseCidr('10.0.0.0/33'));
});
