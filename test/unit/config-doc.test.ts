// docs/configuration.md and etc/kuryr.conf.sample are generated from the option table the loader uses; this fails
// when someone changes the table (or the generator) without regenerating them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CONFIG_DOC, CONFIG_SAMPLE, renderConfigDoc, renderConfigSample } from '../../scripts/gen-config-doc.ts';
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

test('etc/kuryr.conf.sample is up to date with src/config/options-table.ts', () => {
  assert.ok(
    readFileSync(CONFIG_SAMPLE, 'utf8') === renderConfigSample(),
    'etc/kuryr.conf.sample is out of date: run node scripts/gen-config-doc.ts',
  );
});

test('the sample has every option, commented out after its help, in its section', () => {
  const sample = renderConfigSample();
  const sections = sample.split(/^\[/m).slice(1);
  for (const [section, options] of Object.entries(OPTIONS)) {
    const body = sections.find((s) => s.startsWith(`${section}]`));
    assert.ok(body !== undefined, section);
    for (const [key, spec] of Object.entries(options)) {
      const line = spec.default === undefined ? `#${key} = <None>` : `#${key} = ${spec.default}`.trimEnd();
      const at = body.split('\n').indexOf(line);
      assert.ok(at > 0, `[${section}] ${line}`);
      assert.match(body.split('\n')[at - 1] ?? '', /^# /, `[${section}] ${key}: help above`);
    }
  }
  assert.doesNotMatch(sample, /^[a-z]/m, 'no option set');
});
