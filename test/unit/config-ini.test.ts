// The INI parser reads kuryr.conf as oslo.config reads it. Each rule below is oslo.config's, as documented in
// https://docs.openstack.org/oslo.config/latest/configuration/format.html and implemented by
// oslo_config/iniparser.py (BaseParser.parse, _split_key_value) and cfg.py (_normalize_group_name).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type IniDocument, parseIni } from '../../src/config/ini.ts';
import { KuryrError } from '../../src/errors.ts';

/** The document as plain objects: section → key → value. */
function read(text: string): Record<string, Record<string, string>> {
  const doc: IniDocument = parseIni(text, 'test.conf');
  return Object.fromEntries(
    [...doc].map(([section, entries]) => [section, Object.fromEntries([...entries].map(([k, v]) => [k, v.value]))]),
  );
}

function rejects(text: string, message: RegExp): void {
  assert.throws(
    () => parseIni(text, 'test.conf'),
    (err: unknown) => err instanceof KuryrError && err.code === 'KURYR_ERR_CONFIG' && message.test(err.message),
  );
}

describe('kuryr.conf parser: oslo.config rules', () => {
  test('# and ; start a comment only as the first character of a line', () => {
    const conf = read(
      [
        '# a comment',
        '; another comment',
        '[neutron]',
        'password = pa;ss#word',
        'username = kuryr # not a comment',
        'project_name = service ; not a comment either',
        '#auth_url = http://commented.out',
        ';token = commented',
      ].join('\n'),
    );
    assert.deepEqual(conf, {
      neutron: {
        password: 'pa;ss#word',
        username: 'kuryr # not a comment',
        project_name: 'service ; not a comment either',
      },
    });
  });

  test('a password with " #" and ";" is kept whole', () => {
    assert.equal(read('[neutron]\npassword = a;b #c;d\n').neutron?.password, 'a;b #c;d');
  });

  test('"=" and ":" both separate; the first of them on the line wins', () => {
    const conf = read(
      ['[DEFAULT]', 'a = 1', 'b: 2', 'c=3', 'd:4', 'url: http://127.0.0.1:5000/v3', 'e = x:y', 'f: x=y', 'g ='].join(
        '\n',
      ),
    );
    assert.deepEqual(conf.DEFAULT, {
      a: '1',
      b: '2',
      c: '3',
      d: '4',
      url: 'http://127.0.0.1:5000/v3',
      e: 'x:y',
      f: 'x=y',
      g: '',
    });
  });

  test('key and value are trimmed; trailing whitespace and CRLF line ends are dropped', () => {
    assert.deepEqual(read('[DEFAULT]\r\n  \r\ndebug   =   true   \r\n'), { DEFAULT: { debug: 'true' } });
    // A line of only spaces is blank; an indented assignment is a continuation line (see below).
  });

  test('one pair of surrounding quotes is removed; inner or unmatched quotes stay', () => {
    const conf = read(
      ['[DEFAULT]', 'a = "quoted value"', "b = 'single'", 'c = "unmatched\'', 'd = say "hi"', 'e = ""'].join('\n'),
    );
    assert.deepEqual(conf.DEFAULT, { a: 'quoted value', b: 'single', c: '"unmatched\'', d: 'say "hi"', e: '' });
  });

  test('an indented line continues the value above it, joined with a newline; a blank line ends it', () => {
    const conf = read(
      ['[DEFAULT]', 'a = first', '    second', '\tthird', 'b = one', '', '[neutron]', 'c = x'].join('\n'),
    );
    assert.deepEqual(conf, { DEFAULT: { a: 'first\nsecond\nthird', b: 'one' }, neutron: { c: 'x' } });
  });

  test('an indented "#" line is a continuation, not a comment (as in oslo.config)', () => {
    assert.equal(read('[DEFAULT]\na = x\n  # more\n').DEFAULT?.a, 'x\n# more');
  });

  test('section names are case-insensitive, except DEFAULT', () => {
    const conf = read(
      ['[Neutron]', 'a = 1', '[NEUTRON]', 'b = 2', '[DEFAULT]', 'c = 3', '[default]', 'd = 4'].join('\n'),
    );
    assert.deepEqual(conf, { neutron: { a: '1', b: '2' }, DEFAULT: { c: '3' }, default: { d: '4' } });
  });

  test('key names keep their case', () => {
    assert.deepEqual(read('[DEFAULT]\nDebug = true\n'), { DEFAULT: { Debug: 'true' } });
  });

  test('a section may appear twice (keys merge) and the last assignment of a key wins', () => {
    const conf = read(['[neutron]', 'a = 1', 'b = 1', '[binding]', 'x = y', '[neutron]', 'a = 2'].join('\n'));
    assert.deepEqual(conf, { neutron: { a: '2', b: '1' }, binding: { x: 'y' } });
  });

  test('each value records the line its assignment starts on', () => {
    const doc = parseIni('[DEFAULT]\n\n# c\na = 1\n  2\nb = 3\n', 'test.conf');
    assert.equal(doc.get('DEFAULT')?.get('a')?.line, 4);
    assert.equal(doc.get('DEFAULT')?.get('b')?.line, 6);
  });

  test('malformed lines are errors naming the file and line, as oslo.config ParseError', () => {
    rejects('a = 1\n[DEFAULT]\n', /test\.conf: at line 1, Section must be started before assignment/);
    rejects('[DEFAULT]\n  indented\n', /at line 2, Unexpected continuation line/);
    rejects('  indented\n', /at line 1, Unexpected continuation line/);
    rejects('[neutron\na = 1\n', /at line 1, Invalid section \(must end with \]\)/);
    rejects('[]\n', /at line 1, Empty section name/);
    rejects('[DEFAULT]\njust words\n', /at line 2, No ':' or '=' found in assignment/);
    rejects('[DEFAULT]\n= value\n', /at line 2, Key cannot be empty/);
  });

  test('an empty file, or one holding only comments and blank lines, has no sections', () => {
    assert.deepEqual(read(''), {});
    assert.deepEqual(read('# nothing\n\n; here\n'), {});
  });
});
