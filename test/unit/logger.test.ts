// Log rendering: JSON lines unless stderr is a terminal (or KURYR_LOG_FORMAT says otherwise), and the readable
// line rendered from the same (redacted) record.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { createLogger, formatPretty, formatRecord, logFormat } from '../../src/observability/logger.ts';

const LOGGER = path.resolve(import.meta.dirname, '..', '..', 'src', 'observability', 'logger.ts');

describe('logger', () => {
  test('JSON unless stderr is a terminal; KURYR_LOG_FORMAT overrides either way', () => {
    assert.equal(logFormat({}, false), 'json');
    assert.equal(logFormat({}, true), 'pretty');
    assert.equal(logFormat({ KURYR_LOG_FORMAT: 'json' }, true), 'json');
    assert.equal(logFormat({ KURYR_LOG_FORMAT: 'PRETTY' }, false), 'pretty');
    assert.equal(logFormat({ KURYR_LOG_FORMAT: 'xml' }, false), 'json');
  });

  test('a pretty line: time, level, message, then the fields (no pid/hostname/name)', () => {
    const line = JSON.stringify({
      level: 30,
      time: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
      pid: 42,
      hostname: 'h',
      name: 'kuryr',
      msg: 'NetworkDriver.CreateNetwork',
      ms: 12.5,
      network: 'abc',
      note: 'two words',
      tags: ['a', 'b'],
    });
    assert.equal(
      formatPretty(line),
      '03:04:05.678 INFO  NetworkDriver.CreateNetwork  ms=12.5 network=abc note="two words" tags=["a","b"]',
    );
  });

  test('an error field shows type and message, its stack below; colors only when asked', () => {
    const line = JSON.stringify({
      level: 50,
      time: 0,
      msg: 'failed',
      err: { type: 'KuryrError', message: 'boom', stack: 'KuryrError: boom\n    at f (x.ts:1:1)' },
    });
    assert.equal(formatPretty(line), '00:00:00.000 ERROR failed  err="KuryrError: boom"\n    at f (x.ts:1:1)');
    assert.ok(formatPretty(line, true).includes('\u001b[31mERROR\u001b[0m'), 'ERROR in red');
    assert.equal(formatPretty('not json\n'), 'not json');
  });

  test('both formats go through redaction (a real logger in a child process)', () => {
    const script = `
      import { createLogger } from ${JSON.stringify(LOGGER)};
      const log = createLogger('info', 'kuryr', { format: process.argv[1] });
      log.info({ password: 'hunter2', neutron: { token: 't0k' }, n: 1 }, 'hello');`;
    for (const format of ['json', 'pretty']) {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, format], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /hunter2|t0k/);
      if (format === 'json') {
        const rec = JSON.parse(r.stderr) as Record<string, unknown>;
        assert.equal(rec.msg, 'hello');
        assert.equal(rec.password, '[redacted]');
      } else {
        assert.match(
          r.stderr,
          /^\d\d:\d\d:\d\d\.\d{3} INFO {2}hello {2}password=\[redacted\] neutron=\{"token":"\[redacted\]"\} n=1\n$/,
        );
      }
    }
  });

  test("pino's JSON lines: level, time, pid, hostname, name, the fields, then msg; below the level nothing", () => {
    const lines: string[] = [];
    const log = createLogger('info', 'kuryr', { destination: { write: (l) => void lines.push(l) } });
    const before = Date.now();
    log.debug({ a: 1 }, 'dropped');
    log.info({ network: 'n1', ms: 1.5, tags: ['x'], nested: { ok: true }, gone: undefined }, 'request');
    log.warn({}, 'no fields');
    log.error({ code: 'KURYR_ERR_X' });
    assert.equal(lines.length, 3);
    assert.ok(
      lines.every((l) => l.endsWith('}\n') && !l.slice(0, -1).includes('\n')),
      'one line each',
    );
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(Object.keys(records[0]!), [
      'level',
      'time',
      'pid',
      'hostname',
      'name',
      'network',
      'ms',
      'tags',
      'nested',
      'msg',
    ]);
    assert.deepEqual(
      { ...records[0], time: 0 },
      {
        level: 30,
        time: 0,
        pid: process.pid,
        hostname: os.hostname(),
        name: 'kuryr',
        network: 'n1',
        ms: 1.5,
        tags: ['x'],
        nested: { ok: true },
        msg: 'request',
      },
    );
    assert.ok(Number(records[0]!.time) >= before && Number(records[0]!.time) <= Date.now());
    assert.equal(records[1]!.level, 40);
    assert.equal(records[1]!.msg, 'no fields');
    assert.equal(records[2]!.level, 50);
    assert.equal('msg' in records[2]!, false, 'no message: no msg key, as pino');
  });

  test('a flat record (an access-log line) is written as the general path writes it, credentials still redacted', () => {
    const access = { id: 'k-1', method: 'NetworkDriver.Join', status: 200, ms: 1.25, cpuMs: 0.3, ok: true, no: null };
    const line = formatRecord(30, 5, '"name":"k"', access, 'request');
    assert.equal(
      line,
      '{"level":30,"time":5,"name":"k","id":"k-1","method":"NetworkDriver.Join","status":200,"ms":1.25,"cpuMs":0.3,"ok":true,"no":null,"msg":"request"}',
    );
    // The same fields beside one that is not flat take the general path: the same text for them.
    assert.equal(
      formatRecord(30, 5, '"name":"k"', { ...access, nested: {} }, 'request'),
      line.replace(',"msg"', ',"nested":{},"msg"'),
    );
    // Flat, with a credential: redacted (an empty or absent one is written as it is, as redactSecrets does).
    assert.equal(
      formatRecord(30, 5, '', { user: 'kuryr', password: 'hunter2', token: '', secret: undefined, n: 1 }),
      '{"level":30,"time":5,"user":"kuryr","password":"[redacted]","token":"","n":1}',
    );
    assert.equal(formatRecord(30, 5, '', { n: 10n }), '{"level":30,"time":5,"n":"10"}', 'a BigInt: the general path');
  });

  test('errors as type, message, stack and own fields at any depth; cycles, BigInts and functions', () => {
    class NeutronError extends Error {
      status = 409;
    }
    const err = new NeutronError('conflict', { cause: new Error('root') });
    const rec = JSON.parse(formatRecord(50, 0, '', { err, list: [{ inner: new TypeError('bad') }] }, 'failed')) as {
      err: Record<string, unknown>;
      list: { inner: Record<string, unknown> }[];
    };
    assert.equal(rec.err.type, 'NeutronError');
    assert.equal(rec.err.message, 'conflict');
    assert.match(String(rec.err.stack), /^Error: conflict\n {4}at /);
    assert.equal(rec.err.status, 409);
    assert.equal((rec.err.cause as { message: string }).message, 'root');
    assert.equal(rec.list[0]!.inner.type, 'TypeError');
    // An Error as the whole object: under err, its message the message (as pino).
    const whole = JSON.parse(formatRecord(50, 0, '', new Error('boom'))) as Record<string, unknown>;
    assert.equal(whole.msg, 'boom');
    assert.equal((whole.err as { message: string }).message, 'boom');
    const cyclic: Record<string, unknown> = { a: { b: 1 } };
    (cyclic.a as Record<string, unknown>).up = cyclic;
    const shared = { s: 1 };
    assert.equal(
      formatRecord(30, 5, '"name":"k"', { cyclic, twice: [shared, shared], n: 10n, f: () => 1 }, 'm'),
      '{"level":30,"time":5,"name":"k","cyclic":{"a":{"b":1,"up":"[Circular]"}},"twice":[{"s":1},{"s":1}],"n":"10","msg":"m"}',
    );
  });

  test("the logger's import graph loads none of pino's worker_threads, assert or module", () => {
    const script = `await import(${JSON.stringify(LOGGER)}); await import(${JSON.stringify(path.join(path.dirname(LOGGER), 'log-destination.ts'))});
process.stdout.write(JSON.stringify(process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13))));`;
    const loaded = JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }),
    ) as string[];
    assert.deepEqual(
      ['worker_threads', 'assert', 'module', 'internal/fs/promises'].filter((m) => loaded.includes(m)),
      [],
    );
  });
});
