import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BindingError } from '../../src/binding/errors.ts';
import { bridgeName, InterfaceNameError, interfaceNames, validateInterfaceName } from '../../src/binding/names.ts';

const PORT = '3f6f0e2c-9b1a-4c1e-8a37-5f0d9a1c2b3d';
const NET = 'a1b2c3d4-e5f6-4711-8899-aabbccddeeff';

test('derives kuryr names from the first 11 characters of the IDs', () => {
  assert.deepEqual(interfaceNames(PORT), { host: 'tap3f6f0e2c-9b', container: 't_c3f6f0e2c-9b' });
  assert.equal(bridgeName(NET), 'brqa1b2c3d4-e5');
  // every derived name fits the kernel's 15-character limit
  for (const name of [...Object.values(interfaceNames(PORT)), bridgeName(NET)]) assert.ok(name.length <= 15);
});

test('short IDs give short (still valid) names', () => {
  assert.deepEqual(interfaceNames('abc'), { host: 'tapabc', container: 't_cabc' });
  assert.equal(bridgeName('n1'), 'brqn1');
});

test('rejects IDs with shell metacharacters, path tricks, whitespace or nothing at all', () => {
  const bad = [
    '',
    'a;rm -rf /',
    '$(reboot)',
    '`id`',
    'a|b',
    'x&y',
    '../../etc',
    'a/b',
    'a b',
    'tab\there',
    'new\nline',
    'eth0:1',
    'ünïcode',
    'a'.repeat(256),
    // the bad part is beyond the 11 characters that would reach the name: the whole ID is still checked
    '3f6f0e2c-9b1a;touch /tmp/x',
  ];
  for (const id of bad) {
    assert.throws(() => interfaceNames(id), InterfaceNameError, `port ID ${JSON.stringify(id)}`);
    assert.throws(() => bridgeName(id), InterfaceNameError, `network ID ${JSON.stringify(id)}`);
  }
});

test('non-string IDs are refused, not coerced', () => {
  assert.throws(() => interfaceNames(undefined as unknown as string), InterfaceNameError);
  assert.throws(() => bridgeName(42 as unknown as string), InterfaceNameError);
});

test('validates interface names against the allow-list', () => {
  for (const ok of ['eth0', 'tap3f6f0e2c-9b', 'br_int.10', 'a', 'x'.repeat(15)]) {
    assert.equal(validateInterfaceName(ok), ok);
  }
  for (const bad of ['', '.', '..', 'x'.repeat(16), 'a/b', 'a b', 'a:b', 'a;b', 'a\0b', 'eth0\n']) {
    assert.throws(() => validateInterfaceName(bad), InterfaceNameError, JSON.stringify(bad));
  }
});

test('name errors carry the binding code and a clear message', () => {
  try {
    interfaceNames('a;b');
    assert.fail('expected a throw');
  } catch (err) {
    assert.ok(err instanceof BindingError);
    assert.equal(err.code, 'KURYR_ERR_BINDING');
    assert.equal(err.reason, 'invalid-interface-name');
    assert.match(err.message, /invalid port ID "a;b"/);
  }
});
