// docs/configuration.md is generated from the option table the loader uses; this fails when someone changes
// the table (or the generator) without regenerating the document.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CONFIG_DOC, renderConfigDoc } from '../../scripts/gen-config-doc.ts';
import { OPTIONS } from '../../src/config/options-table.ts';

test('docs/configuration.md is up to date with src/config/options-table.ts', () => {
  const committed = readFileSync(CONFIG_DOC, 'utf8');
  assert.ok(
    committed === renderConfigDoc(),
    'docs/configuration.md is out of date: run node scripts/gen-config-doc.ts',
  );
});

test('every option, its default and its environment variable are in the document', () => {
  const doc = renderConfigDoc();
  for (const [section, options] of Object.entries(OPTIONS)) {
    assert.ok(doc.includes(`## [${section}]`), section);
    for (const [key, spec] of Object.entries(options)) {
      assert.ok(doc.includes(`\`${key}\``), `[${section}] ${key}`);
      if (spec.env !== undefined) assert.ok(doc.includes(`| \`${spec.env}\` | \`[${section}] ${key}\` |`), spec.env);
      if (spec.type !== 'ignored' && spec.default) assert.ok(doc.includes(`\`${spec.default}\``), `${key} default`);
    }
  }
});
