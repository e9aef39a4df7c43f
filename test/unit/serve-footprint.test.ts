// What loading `kuryr serve` costs in memory: Node's built-in modules its import graph pulls in. An ESM import of
// node:http builds its namespace, whose lazy getters load undici, http2, zlib and tls (12.4 MiB of RSS instead of
// 2.1 through process.getBuiltinModule); node:https and tls belong to a TLS listener or the Neutron backend only.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

/** The built-in modules (NativeModule ...) loaded after importing `modules` in a fresh Node process. */
function builtinsLoadedBy(modules: string[]): string[] {
  const script = `for (const m of ${JSON.stringify(modules)}) await import(m);
process.stdout.write(JSON.stringify(process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13))));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  return JSON.parse(out) as string[];
}

const HEAVY = ['internal/deps/undici/undici', 'http2', 'zlib', 'tls', 'https'];

test("serve's import graph loads none of undici, http2, zlib, tls, https or crypto", () => {
  const loaded = builtinsLoadedBy(['./src/cli/serve.ts', './src/cli/args.ts']);
  assert.ok(loaded.includes('http'), 'node:http is loaded (the check below means something)');
  // node:crypto initialises OpenSSL: 2.3 MiB of RSS for the few random bytes the plugin needs (util/random.ts).
  assert.deepEqual(
    [...HEAVY, 'crypto'].filter((m) => loaded.includes(m)),
    [],
  );
});

test("the metrics module's import graph (--metrics-listen) loads none of them either, nor node:v8", () => {
  // prom-client loaded https, tls, zlib and v8 (10.7 MiB of RSS); observability/prometheus.ts reads v8 only when scraped.
  const loaded = builtinsLoadedBy(['./src/observability/metrics.ts']);
  assert.deepEqual(
    [...HEAVY, 'v8'].filter((m) => loaded.includes(m)),
    [],
  );
});

test('the check would see an ESM import of node:http', () => {
  assert.ok(builtinsLoadedBy(['node:http']).includes('internal/deps/undici/undici'));
});

/** The node options bin/kuryr runs the CLI with (its exec line, continuation lines joined). */
function launcherFlags(): string[] {
  const text = readFileSync(path.join(ROOT, 'bin', 'kuryr'), 'utf8').replace(/\\\n\s*/g, '');
  const line = text.split('\n').find((l) => l.startsWith('exec "$node"'));
  assert.ok(line, 'bin/kuryr execs node');
  return line.split(/\s+/).filter((w) => w.startsWith('--'));
}

test('bin/kuryr runs node with the memory flags, and this Node accepts every one of them', () => {
  const flags = launcherFlags();
  for (const wanted of [
    // No built-in start-up snapshot: 4.5 MiB less peak RSS (bin/kuryr).
    '--no-node-snapshot',
    '--jitless',
    '--optimize-for-size',
    '--max-semi-space-size=1',
    // The old generation is collected before garbage piles up (peak 64.5 instead of 70.0 MiB, bin/kuryr).
    '--incremental-marking-soft-trigger=20',
    '--incremental-marking-hard-trigger=40',
  ]) {
    assert.ok(flags.includes(wanted), `${wanted} in ${flags.join(' ')}`);
  }
  // A flag this Node does not know would stop the plugin from starting at all.
  const out = execFileSync(process.execPath, [...flags, '-e', 'process.stdout.write("ok")'], { encoding: 'utf8' });
  assert.equal(out, 'ok');
});

test('the build strips comments: V8 keeps every loaded module source in the heap for the life of the process', () => {
  // 810 KB of dist/ JavaScript with comments, 638 KB without: about 0.5 MiB less peak RSS at start-up.
  const build = JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.build.json'), 'utf8')) as {
    compilerOptions: { removeComments?: boolean };
  };
  assert.equal(build.compilerOptions.removeComments, true);
});
