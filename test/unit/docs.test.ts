// The documentation keeps up with the code: every doctor check and every error code is explained in
// docs/troubleshooting.md, and every document the README links exists.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CHECK_IDS } from '../../src/doctor/run.ts';
import { ERROR_CODES } from '../../src/errors.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

test('docs/troubleshooting.md has a row for every kuryr doctor check', () => {
  const doc = read('docs/troubleshooting.md');
  for (const id of CHECK_IDS) assert.ok(doc.includes(`| \`${id}\` |`), `check ${id}`);
});

test('docs/troubleshooting.md and docs/errors.md explain every KURYR_ERR_* code', () => {
  const troubleshooting = read('docs/troubleshooting.md');
  const errors = read('docs/errors.md');
  for (const code of Object.keys(ERROR_CODES)) {
    assert.ok(troubleshooting.includes(`| \`${code}\` |`), `${code} in troubleshooting.md`);
    assert.ok(errors.includes(`\`${code}\``), `${code} in errors.md`);
  }
});

test('every docs/ link of the README and of the docs themselves points at an existing file', () => {
  const files = [
    'README.md',
    ...['install', 'configuration', 'migration', 'embedded', 'troubleshooting', 'architecture'].map(
      (d) => `docs/${d}.md`,
    ),
  ];
  for (const file of files) {
    assert.ok(existsSync(path.join(ROOT, file)), file);
    for (const [, target] of read(file).matchAll(/\]\(([^)#\s]+\.md)(?:#[^)]*)?\)/g)) {
      assert.ok(existsSync(path.join(ROOT, path.dirname(file), target!)), `${file} links ${target}`);
    }
  }
});
