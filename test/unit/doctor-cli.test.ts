// `kuryr doctor` as a command: the --json shape, the exit code, a configuration error reported as a failed
// check naming file, section and key (not a crash), and the text rendering. Runs src/cli/main.ts directly.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { CHECK_IDS, renderDoctor } from '../../src/doctor/run.ts';

const MAIN = path.resolve(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const dir = mkdtempSync(path.join(os.tmpdir(), 'kx-doctor-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface JsonReport {
  ok: boolean;
  counts: Record<string, number>;
  checks: { id: string; status: string; summary: string; hint: string | null }[];
}

function doctor(args: string[]) {
  const r = spawnSync(
    process.execPath,
    [
      MAIN,
      'doctor',
      '--docker-host',
      `unix://${path.join(dir, 'no-docker.sock')}`,
      '--driver-name',
      'kxcli',
      '--state-dir',
      path.join(dir, 'state'),
      ...args,
    ],
    { encoding: 'utf8', env: { ...process.env, DOCKER_HOST: '' } },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('kuryr doctor (command)', () => {
  test('an unknown key in kuryr.conf is a config warning naming file, line, section and key', () => {
    const conf = path.join(dir, 'unknown.conf');
    writeFileSync(conf, '[kuryr_ts]\nbackend = embedded\nstate_dri = /var/lib/kuryr\n');
    const r = doctor(['--json', '--config', conf]);
    const report = JSON.parse(r.stdout) as JsonReport;
    const config = report.checks.find((c) => c.id === 'config')!;
    assert.equal(config.status, 'warn', config.summary);
    assert.ok(config.summary.includes(`${conf}:3: unknown option [kuryr_ts] state_dri ignored`), config.summary);
  });

  test('a wrong value in kuryr.conf fails the config check, naming file, section and key; exit 1', () => {
    const conf = path.join(dir, 'bad.conf');
    writeFileSync(conf, '[kuryr_ts]\nbackend = embeded\n');
    const r = doctor(['--json', '--config', conf]);
    assert.equal(r.code, 1, r.stderr);
    const report = JSON.parse(r.stdout) as JsonReport;
    const config = report.checks.find((c) => c.id === 'config')!;
    assert.equal(config.status, 'fail');
    assert.ok(config.summary.includes(conf), config.summary);
    assert.match(config.summary, /\[kuryr_ts\] backend: expected one of embedded, neutron/);
    assert.match(config.hint ?? '', /docs\/configuration\.md/);
    // Checks that need the configuration say so instead of guessing.
    assert.equal(report.checks.find((c) => c.id === 'plugin.socket')!.status, 'skip');
    assert.match(report.checks.find((c) => c.id === 'plugin.socket')!.summary, /configuration did not load/);
  });

  test('--json: {ok, counts, checks: [{id, status, summary, hint}]} with every check once', () => {
    const conf = path.join(dir, 'good.conf');
    writeFileSync(conf, '');
    const r = doctor(['--json', '--config', conf]);
    const report = JSON.parse(r.stdout) as JsonReport;
    assert.deepEqual(Object.keys(report).sort(), ['checks', 'counts', 'ok']);
    assert.deepEqual(Object.keys(report.counts).sort(), ['fail', 'ok', 'skip', 'warn']);
    for (const c of report.checks) {
      assert.deepEqual(Object.keys(c).sort(), ['hint', 'id', 'status', 'summary']);
      assert.ok(['ok', 'warn', 'fail', 'skip'].includes(c.status));
      assert.equal(typeof c.summary, 'string');
      assert.ok(c.hint === null || typeof c.hint === 'string');
    }
    const ids = report.checks.map((c) => c.id);
    assert.deepEqual(ids, [...CHECK_IDS]);
    const total = Object.values(report.counts).reduce((a, b) => a + b, 0);
    assert.equal(total, ids.length);
    // No engine and no plugin here: both fail, so the report is not ok and the exit code is 1.
    assert.equal(report.checks.find((c) => c.id === 'docker.engine')!.status, 'fail');
    assert.equal(report.checks.find((c) => c.id === 'plugin.socket')!.status, 'fail');
    assert.equal(report.ok, false);
    assert.equal(r.code, 1);
  });

  test('text output: one line per check, the hint under a failure, a count at the end', () => {
    const text = renderDoctor({
      ok: false,
      counts: { ok: 1, warn: 0, fail: 1, skip: 0 },
      checks: [
        { id: 'config', status: 'ok', summary: 'fine', hint: null },
        { id: 'plugin.socket', status: 'fail', summary: 'no plugin socket at /x.sock', hint: 'start it' },
      ],
    });
    assert.equal(
      text,
      [
        'ok    config         fine',
        'FAIL  plugin.socket  no plugin socket at /x.sock',
        '                     → start it',
        '',
        '2 checks: 1 ok, 0 warn, 1 fail, 0 skipped — kuryr doctor exits 1',
      ].join('\n'),
    );
  });

  test('--help describes the command and exits 0', () => {
    const r = spawnSync(process.execPath, [MAIN, 'doctor', '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0);
    assert.match(r.stdout, /Usage: kuryr doctor \[--json\]/);
  });
});
