import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describeFailure } from '../reporters/failures.ts';

const REPORTER = fileURLToPath(new URL('../reporters/failures.ts', import.meta.url));

describe('failures reporter', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kuryr-failures-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a real node --test run: each failed test with its assertion, not the suite that only contains it', async () => {
    const file = path.join(dir, 'sample.test.ts');
    writeFileSync(
      file,
      [
        "import assert from 'node:assert/strict';",
        "import { describe, it } from 'node:test';",
        "describe('outer suite', () => {",
        "  it('passes', () => {});",
        "  it('compares ports', () => { assert.deepEqual(['DOWN'], ['ACTIVE'], 'ports not ACTIVE on vm-host2'); });",
        "  it('throws', () => { throw new Error('agent of vm-host2 is dead'); });",
        '});',
        '',
      ].join('\n'),
    );
    const failures = path.join(dir, 'failures.txt');
    const run = await promisify(execFile)(
      process.execPath,
      ['--test', `--test-reporter=${REPORTER}`, '--test-reporter-destination=stdout', file],
      { env: { PATH: process.env.PATH ?? '', KURYR_FAILURES_FILE: failures } },
    ).catch((e: { code: number; stdout: string }) => e);
    assert.equal((run as { code?: number }).code, 1, 'the run fails');
    assert.equal((run as { stdout: string }).stdout, '', 'nothing is written to the destination');
    const text = readFileSync(failures, 'utf8');
    assert.match(text, /^✖ compares ports \(.*sample\.test\.ts:5\)$/m);
    assert.match(text, /ports not ACTIVE on vm-host2/);
    assert.match(text, /'ACTIVE'/, 'the diff is kept');
    assert.match(text, /^✖ throws \(.*sample\.test\.ts:6\)$/m);
    assert.match(text, /agent of vm-host2 is dead/);
    assert.doesNotMatch(text, /outer suite|passes/, 'neither the suite nor a passed test');
  });

  test('a long error is cut to 25 lines, and says how many more there were', () => {
    const error = new Error(Array.from({ length: 100 }, (_, i) => `line ${i}`).join('\n'));
    const text = describeFailure({ name: 't', file: 'f.ts', line: 3, error });
    assert.match(text, /^✖ t \(f\.ts:3\)\n/);
    assert.match(text, /line 24\n/);
    assert.doesNotMatch(text, /line 25\n/);
    assert.match(text, /… \(\d+ more lines\)/);
  });
});
