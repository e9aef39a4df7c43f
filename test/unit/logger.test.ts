// Log rendering: JSON lines unless stderr is a terminal (or KURYR_LOG_FORMAT says otherwise), and the readable
// line rendered from the same (redacted) record.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { formatPretty, logFormat } from '../../src/observability/logger.ts';

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
});
