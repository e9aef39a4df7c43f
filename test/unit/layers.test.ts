// Dependencies point down: cli → doctor → the composition root (app.ts, backend.ts) → plugin / reconcile → driver
// → neutron (HTTP client, embedded store) / docker → binding; errors, util, config and observability are leaves
// that import no layer above them. A module importing upward fails here, naming the import.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const SRC = path.resolve(import.meta.dirname, '../../src');

const LEAVES = ['errors', 'util', 'config', 'observability'];
/** What each group may import besides itself. `neutron/types` is the data model: plain types every layer shares. */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  errors: [],
  'neutron/types': [],
  util: ['errors'],
  config: ['errors', 'util'],
  observability: ['errors', 'util', 'config'],
  binding: [...LEAVES, 'neutron/types'],
  docker: [...LEAVES],
  neutron: [...LEAVES, 'neutron/types'],
  driver: [...LEAVES, 'neutron/types', 'neutron', 'docker', 'binding'],
  reconcile: [...LEAVES, 'neutron/types', 'neutron', 'docker', 'binding', 'driver'],
  plugin: [...LEAVES, 'neutron/types', 'neutron', 'binding', 'driver'],
  root: [...LEAVES, 'neutron/types', 'neutron', 'docker', 'binding', 'driver', 'reconcile', 'plugin'],
  doctor: [...LEAVES, 'neutron/types', 'neutron', 'docker', 'binding', 'driver', 'reconcile', 'plugin', 'root'],
  cli: [...LEAVES, 'neutron/types', 'neutron', 'docker', 'binding', 'driver', 'reconcile', 'plugin', 'root', 'doctor'],
};

function groupOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep).join('/');
  if (rel === 'app.ts' || rel === 'backend.ts') return 'root';
  if (rel === 'neutron/types.ts') return 'neutron/types';
  return rel.split('/')[0]!.replace(/\.ts$/, '');
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

test('no module imports a layer above its own', () => {
  const upward: string[] = [];
  let imports = 0;
  for (const file of sources(SRC)) {
    const from = groupOf(file);
    assert.ok(MAY_IMPORT[from] !== undefined, `${file}: a directory the layer table does not know`);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'(\.[^']+)'/gms)) {
      imports++;
      const to = groupOf(path.resolve(path.dirname(file), m[1]!));
      if (to !== from && !MAY_IMPORT[from]!.includes(to)) {
        upward.push(`${path.relative(SRC, file)} [${from}] imports ${m[1]} [${to}]`);
      }
    }
  }
  assert.ok(imports > 300, `found only ${imports} relative imports: the pattern no longer matches the sources`);
  assert.deepEqual(upward, []);
});
