/**
 * A fake `ovs-vsctl` for tests on hosts without Open vSwitch: an executable (Node) script in a temp dir that
 * records each argv and keeps a tiny OVSDB (bridges, ports with their external ids) in a JSON file, so a
 * bind followed by an unbind can be checked end to end. It understands exactly what kuryr-ts sends:
 * `--timeout=N`, `--format=json`, and `--`-separated `[--may-exist] add-port BR DEV`, `set Interface DEV
 * external_ids:K=V...`, `[--columns=name] find Interface external_ids:K=V...`, `[--if-exists] del-port [BR] DEV`.
 * Every command line is one transaction: applied whole or not at all. A `mode` file next to it makes it
 * fail `add-port` (`fail-add`) or hang (`hang`).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

const SCRIPT = String.raw`
const fs = require('node:fs');
const path = require('node:path');
const dir = __dirname;
const args = process.argv.slice(2);
fs.appendFileSync(path.join(dir, 'argv.log'), JSON.stringify(args) + '\n');
const mode = fs.existsSync(path.join(dir, 'mode')) ? fs.readFileSync(path.join(dir, 'mode'), 'utf8').trim() : '';
if (mode === 'hang') setTimeout(() => {}, 60000);
else main();
function die(msg) { process.stderr.write('ovs-vsctl: ' + msg + '\n'); process.exit(1); }
function main() {
  const statePath = path.join(dir, 'db.json');
  const db = JSON.parse(fs.readFileSync(statePath, 'utf8'));
  const global = [];
  let i = 0;
  for (; i < args.length && args[i] !== '--'; i++) global.push(args[i]);
  const commands = [];
  for (; i < args.length; i++) {
    if (args[i] === '--') commands.push([]);
    else commands[commands.length - 1].push(args[i]);
  }
  if (!global.some((a) => /^--timeout=\d+$/.test(a))) die('test expects --timeout');
  let out = '';
  for (const command of commands) {
    const opts = command.filter((a) => a.startsWith('--'));
    const [verb, ...rest] = command.filter((a) => !a.startsWith('--'));
    if (verb === 'add-port') {
      if (mode === 'fail-add') die('cannot create a port named ' + rest[1] + ' (fake failure)');
      const [bridge, dev] = rest;
      if (!db.bridges.includes(bridge)) die('no bridge named ' + bridge);
      if (db.ports[dev]) {
        if (!opts.includes('--may-exist')) die('cannot create a port named ' + dev + ' because a port named ' + dev + ' already exists on bridge ' + db.ports[dev].bridge);
      } else db.ports[dev] = { bridge, ids: {} };
    } else if (verb === 'set') {
      const [table, dev, ...pairs] = rest;
      if (table !== 'Interface' || !db.ports[dev]) die('no row "' + dev + '" in table ' + table);
      for (const p of pairs) {
        const m = /^external_ids:([^=]+)=(.*)$/.exec(p);
        if (!m) die('unexpected column ' + p);
        db.ports[dev].ids[m[1]] = m[2];
      }
    } else if (verb === 'find') {
      const [table, ...conds] = rest;
      if (table !== 'Interface' || !opts.includes('--columns=name') || !global.includes('--format=json')) die('unexpected find');
      const want = conds.map((c) => /^external_ids:([^=]+)=(.*)$/.exec(c));
      if (want.some((m) => !m)) die('unexpected condition');
      const rows = Object.entries(db.ports).filter(([, p]) => want.every((m) => p.ids[m[1]] === m[2]));
      out += JSON.stringify({ data: rows.map(([name]) => [name]), headings: ['name'] }) + '\n';
    } else if (verb === 'del-port') {
      const dev = rest[rest.length - 1];
      if (!db.ports[dev]) { if (!opts.includes('--if-exists')) die('no port named ' + dev); }
      else delete db.ports[dev];
    } else die('unknown command ' + verb);
  }
  fs.writeFileSync(statePath, JSON.stringify(db));
  process.stdout.write(out);
}
`;

export interface FakeOvsPort {
  bridge: string;
  ids: Record<string, string>;
}

export interface FakeOvs {
  /** Path of the executable. */
  binary: string;
  /** Every argv it was called with (without the program name), in order. */
  calls(): Promise<string[][]>;
  /** Ports in its database by name. */
  ports(): Promise<Record<string, FakeOvsPort>>;
  setMode(mode: '' | 'fail-add' | 'hang'): Promise<void>;
  remove(): Promise<void>;
}

/** A fake `ovs-vsctl` whose database holds the given bridges and no ports. */
export async function fakeOvsVsctl(bridges: readonly string[] = ['br-int']): Promise<FakeOvs> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kuryr-fake-ovs-'));
  const binary = path.join(dir, 'ovs-vsctl');
  await writeFile(binary, `#!${process.execPath}\n${SCRIPT}`, { mode: 0o755 });
  await writeFile(path.join(dir, 'db.json'), JSON.stringify({ bridges, ports: {} }));
  return {
    binary,
    async calls() {
      const text = await readFile(path.join(dir, 'argv.log'), 'utf8').catch(() => '');
      return text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as string[]);
    },
    async ports() {
      return (JSON.parse(await readFile(path.join(dir, 'db.json'), 'utf8')) as { ports: Record<string, FakeOvsPort> })
        .ports;
    },
    async setMode(mode) {
      await writeFile(path.join(dir, 'mode'), mode);
    },
    async remove() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}
