// Log redaction at any depth (the plugin's real logger, in a child process, and redactSecrets itself), and the
// free-text redaction applied to program output.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { createLogger, type Logger } from '../../src/observability/logger.ts';
import { isSecretKey, redactSecrets, redactText } from '../../src/observability/redact.ts';

const LOGGER = path.resolve(import.meta.dirname, '..', '..', 'src', 'observability', 'logger.ts');

/** `{ a: { a: ... { [key]: secret } } }`, `depth` levels down. */
function nested(depth: number, key: string, secret: string): Record<string, unknown> {
  let v: Record<string, unknown> = { [key]: secret, keep: 'visible' };
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

function capture(): { log: Logger; out: () => string } {
  let text = '';
  const log = createLogger('info', 'kuryr', {
    destination: {
      write: (line) => {
        text += line;
      },
    },
  });
  return { log, out: () => text };
}

describe('log redaction', () => {
  test('every depth, arrays, errors, header names; other fields untouched', () => {
    const { log, out } = capture();
    const err = Object.assign(new Error('login failed'), { request: { headers: { 'X-Auth-Token': 'tok-in-err' } } });
    log.info(
      {
        d2: nested(2, 'password', 'p-depth2'),
        d7: nested(7, 'token', 't-depth7'),
        d40: nested(40, 'SERVICE_PASSWORD', 'p-depth40'),
        list: [{ x: [{ application_credential_secret: 'acs-in-array' }] }],
        headers: { 'x-auth-token': 'hdr-token' },
        err,
        passwordLength: 5,
      },
      'hello',
    );
    const text = out();
    for (const secret of ['p-depth2', 't-depth7', 'p-depth40', 'acs-in-array', 'hdr-token', 'tok-in-err']) {
      assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    }
    const rec = JSON.parse(text) as Record<string, unknown>;
    assert.equal(rec.msg, 'hello');
    assert.match(text, /"keep":"visible"/);
    assert.match(text, /"message":"login failed"/);
    assert.match(text, /"stack":"Error: login failed/);
    assert.equal((rec.err as { type?: string }).type, 'Error');
    assert.equal(rec.passwordLength, 5);
  });

  test("the caller's objects are not modified; cycles do not hang", () => {
    const input: Record<string, unknown> = { neutron: { password: 'x', user: 'u' } };
    input.self = input;
    const out = redactSecrets(input);
    assert.equal((input.neutron as { password: string }).password, 'x');
    assert.equal((out.neutron as { password: string }).password, '[redacted]');
    assert.equal((out.neutron as { user: string }).user, 'u');
    const plain = { a: { b: 1 } };
    assert.equal(redactSecrets(plain), plain, 'nothing to redact: the same object');
  });

  test('secret key names', () => {
    for (const k of [
      'password',
      'OS_PASSWORD',
      'passwd',
      'token',
      'x-auth-token',
      'auth_token',
      'secret',
      'Authorization',
    ])
      assert.ok(isSecretKey(k), k);
    for (const k of ['user', 'neutronCalls', 'tokensSeen', 'project_name', 'status']) assert.ok(!isSecretKey(k), k);
  });

  test('the real logger, both formats, redacts deep fields (child process)', () => {
    const script = `
      import { createLogger } from ${JSON.stringify(LOGGER)};
      const log = createLogger('info', 'kuryr', { format: process.argv[1] });
      log.info({ config: { sections: { neutron: { auth: { password: 'deep-hunter2' } } } } }, 'hello');`;
    for (const format of ['json', 'pretty']) {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, format], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /deep-hunter2/);
      assert.match(r.stderr, /\[redacted\]/);
    }
  });
});

describe('text redaction', () => {
  test('key=value, key: value, quoted, URLs, headers, Fernet tokens', () => {
    const fernet = `gAAAAAB${'x'.repeat(120)}`;
    const text = [
      'SERVICE_PASSWORD=s3cr3t-a',
      'export OS_PASSWORD="two words"',
      "password: 's3cr3t-c'",
      '{"token": "s3cr3t-d"}',
      'connecting to http://admin:s3cr3t-e@10.0.0.1:5000/v3',
      'X-Auth-Token: s3cr3t-f',
      'Authorization: Bearer s3cr3t-g',
      `got ${fernet} from keystone`,
      'plain line stays',
    ].join('\n');
    const out = redactText(text);
    for (const s of ['s3cr3t-a', 'two words', 's3cr3t-c', 's3cr3t-d', 's3cr3t-e', 's3cr3t-f', 's3cr3t-g', fernet])
      assert.ok(!out.includes(s), `${s} leaked:\n${out}`);
    assert.match(out, /SERVICE_PASSWORD=\[redacted\]/);
    assert.match(out, /http:\/\/admin:\[redacted\]@10\.0\.0\.1:5000/);
    assert.match(out, /plain line stays/);
  });

  test('linear time: megabytes of output without separators are redacted quickly', () => {
    const big = `${'x'.repeat(1_000_000)} password=zz ${'y'.repeat(1_000_000)}`;
    // CPU time, not wall time: other test files running alongside must not make it look slow. Quadratic
    // matching over 2 MB would take minutes.
    const started = process.cpuUsage();
    const out = redactText(big);
    const { user, system } = process.cpuUsage(started);
    const ms = (user + system) / 1000;
    assert.ok(ms < 2000, `took ${ms} ms of CPU`);
    assert.ok(!out.includes('password=zz'));
  });
});
