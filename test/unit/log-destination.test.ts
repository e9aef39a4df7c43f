// Log files where oslo.log puts them (oslo_log/log.py _get_log_file_path): log_file alone; log_dir/log_file;
// log_dir/<program>.log. Appended to, reopened on SIGHUP; use_stderr also writes to stderr.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { logFilePath, openLogDestination } from '../../src/observability/log-destination.ts';
import { createLogger } from '../../src/observability/logger.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'kuryr-logdest-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('log file name, as oslo.log builds it', () => {
  const program = 'kuryr-server';
  test('nothing set: no file (stderr)', () => {
    assert.equal(logFilePath({ logFile: null, logDir: null, program }), null);
  });
  test('log_file alone: that file', () => {
    assert.equal(logFilePath({ logFile: '/var/log/kuryr/k.log', logDir: null, program }), '/var/log/kuryr/k.log');
  });
  test('log_dir and log_file: joined', () => {
    assert.equal(
      logFilePath({ logFile: 'k.log', logDir: '/var/log/kolla/kuryr', program }),
      '/var/log/kolla/kuryr/k.log',
    );
  });
  test('log_dir alone: <log_dir>/<program>.log', () => {
    assert.equal(
      logFilePath({ logFile: null, logDir: '/var/log/kolla/kuryr', program }),
      '/var/log/kolla/kuryr/kuryr-server.log',
    );
    assert.equal(logFilePath({ logFile: null, logDir: '/l', program: 'kuryr' }), '/l/kuryr.log');
  });
});

describe('log file destination', () => {
  test('nothing set: null, the logger keeps stderr', () => {
    assert.equal(openLogDestination({ logFile: null, logDir: null, useStderr: false, program: 'kuryr' }), null);
  });

  test('JSON lines appended to the file (debug level included), reopened on SIGHUP after logrotate moves it', () => {
    const file = path.join(dir, 'kuryr.log');
    writeFileSync(file, 'earlier line\n');
    const dest = openLogDestination({ logFile: null, logDir: dir, useStderr: false, program: 'kuryr' });
    assert.ok(dest !== null);
    assert.equal(dest.file, file);
    try {
      const log = createLogger('debug', 'kuryr', { destination: dest.stream });
      log.debug({ password: 'secret' }, 'first');
      const first = readFileSync(file, 'utf8').split('\n');
      assert.equal(first[0], 'earlier line');
      const record = JSON.parse(first[1] as string) as Record<string, unknown>;
      assert.equal(record.msg, 'first');
      assert.equal(record.password, '[redacted]');
      renameSync(file, `${file}.1`);
      process.emit('SIGHUP', 'SIGHUP');
      log.info({}, 'second');
      assert.ok(existsSync(file), 'reopened');
      assert.match(readFileSync(file, 'utf8'), /"msg":"second"/);
      assert.doesNotMatch(readFileSync(`${file}.1`, 'utf8'), /second/);
    } finally {
      dest.close();
    }
  });

  test('a file that cannot be opened is a configuration error naming it', () => {
    assert.throws(
      () =>
        openLogDestination({
          logFile: 'x.log',
          logDir: path.join(dir, 'no', 'such'),
          useStderr: false,
          program: 'kuryr',
        }),
      /cannot open log file .*no\/such\/x\.log/,
    );
  });

  test('use_stderr: the same lines go to stderr as well; without it, not', () => {
    const run = (useStderr: boolean) => {
      const file = path.join(dir, `stderr-${useStderr}.log`);
      const script = [
        `import { openLogDestination } from ${JSON.stringify(path.resolve('src/observability/log-destination.ts'))};`,
        `import { createLogger } from ${JSON.stringify(path.resolve('src/observability/logger.ts'))};`,
        `const d = openLogDestination({ logFile: ${JSON.stringify(file)}, logDir: null, useStderr: ${useStderr}, program: 'kuryr' });`,
        `createLogger('info', 'kuryr', { destination: d.stream }).info({}, 'hello');`,
        'd.close();',
      ].join('\n');
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return { file: readFileSync(file, 'utf8'), stderr: r.stderr };
    };
    const both = run(true);
    assert.match(both.file, /"msg":"hello"/);
    assert.match(both.stderr, /"msg":"hello"/);
    const fileOnly = run(false);
    assert.match(fileOnly.file, /"msg":"hello"/);
    assert.doesNotMatch(fileOnly.stderr, /hello/);
  });
});
