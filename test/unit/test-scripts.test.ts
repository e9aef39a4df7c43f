/**
 * `npm test` runs two passes: unit, contract and plugin files in parallel, then the files that need the whole
 * machine (binding, e2e, fuzz) one at a time. Together the two must run every test file, each exactly once.
 */
import assert from 'node:assert/strict';
import { globSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const scripts: Record<string, string> = JSON.parse(readFileSync(`${root}package.json`, 'utf8')).scripts;
const glob = (pattern: string) => globSync(pattern, { cwd: root });

/** The files a `node --test ... 'glob' ...` script runs (its quoted globs, expanded). */
function filesOf(script: string): string[] {
  const globs = [...script.matchAll(/'([^']+)'/g)].map((m) => m[1] as string);
  assert.ok(globs.length > 0, `no quoted globs in ${script}`);
  return globs.flatMap(glob);
}

test('npm test runs the parallel pass, then the serial pass, and fails if either failed', () => {
  assert.match(scripts.test ?? '', /npm run test:parallel; a=\$\?; npm run test:serial; b=\$\?;/);
  assert.match(scripts.test ?? '', /\[ \$a -eq 0 \] && \[ \$b -eq 0 \]/);
  assert.match(scripts['test:serial'] ?? '', /--test-concurrency=1 /);
  for (const pass of ['test:parallel', 'test:serial']) {
    assert.match(scripts[pass] ?? '', /--test-reporter=spec .*--test-reporter=\.\/test\/reporters\/skips\.ts/);
  }
});

test('the two passes run every test file exactly once', () => {
  const parallel = filesOf(scripts['test:parallel'] ?? '');
  const serial = filesOf(scripts['test:serial'] ?? '');
  const all = glob('test/**/*.test.ts');
  assert.deepEqual([...parallel, ...serial].sort(), [...all].sort());
  assert.ok(parallel.some((f) => f.startsWith('test/unit/')) && serial.some((f) => f.startsWith('test/e2e/')));
});
