/**
 * NftSession without nftables: a fake `nft -j -i` (a Node script) answers as nft does, one line at a time: a `list`
 * prints one line of JSON, an error goes to standard error with the line and carets under it. Checked: a
 * transaction is one line, a `list` gets its own output, an error its own message (not the sentinel's), many
 * commands need one process, a stuck or dead process is replaced, nft's history is kept out of any home
 * directory. No root needed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { NftSession } from '../../src/binding/nft-session.ts';

const FAKE_NFT = `
const fs = require('node:fs');
const log = process.argv[2];
const tables = new Map();
let buffer = '';
let stuck = false;
const fail = (line, what) => process.stderr.write('Error: ' + what + '\\n' + line + '\\n' + ' '.repeat(11) + '^^^^^\\n');
function handle(line) {
  fs.appendFileSync(log, line + '\\n');
  if (stuck || line === 'hang') {
    stuck = true;
    return;
  }
  if (line === 'exit') process.exit(3);
  if (line === 'home') return process.stdout.write(JSON.stringify({ home: process.env.HOME, args: process.argv.slice(3) }) + '\\n');
  const commands = line.split('; ');
  if (commands.some((c) => c.startsWith('bad'))) return fail(line, 'syntax error, unexpected bad');
  for (const c of commands) {
    const list = /^list table inet (\\S+)$/.exec(c);
    if (list) {
      if (!tables.has(list[1])) return fail(line, 'No such file or directory');
      return process.stdout.write(JSON.stringify({ nftables: [{ table: { name: list[1] } }] }) + '\\n');
    }
    const add = /^add table inet (\\S+)/.exec(c);
    if (add) tables.set(add[1], true);
  }
}
process.stdin.setEncoding('utf8').on('data', (d) => {
  buffer += d;
  for (let i; (i = buffer.indexOf('\\n')) >= 0; ) {
    const line = buffer.slice(0, i);
    buffer = buffer.slice(i + 1);
    handle(line);
  }
});
`;

function fakeNft(options: { timeoutMs?: number; maxLines?: number } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kx-nft-session-'));
  const script = path.join(dir, 'nft.cjs');
  const log = path.join(dir, 'lines');
  writeFileSync(script, FAKE_NFT);
  writeFileSync(log, '');
  const session = new NftSession([process.execPath, script, log], options.timeoutMs ?? 10_000, options.maxLines);
  const lines = () =>
    readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => l !== '' && !/^list table inet kxs_/.test(l));
  return { session, lines };
}

describe('NftSession (one long-lived nft)', () => {
  test("a transaction is one line; a list gets its output; an error its own message, not the sentinel's", async () => {
    const { session, lines } = fakeNft();
    assert.equal(await session.run(['add table inet t', 'add set inet t s { type ifname; }']), '');
    const listed = await session.run(['list table inet t'], { list: true });
    assert.deepEqual(JSON.parse(listed), { nftables: [{ table: { name: 't' } }] });
    await assert.rejects(session.run(['list table inet missing'], { list: true }), (err: unknown) => {
      const { code, stderr } = err as { code: unknown; stderr: string };
      assert.equal(code, 1);
      assert.match(stderr, /^Error: No such file or directory\nlist table inet missing\n/);
      assert.doesNotMatch(stderr, /kxs_/);
      return true;
    });
    await assert.rejects(session.run(['add table inet u', 'bad command']), (err: unknown) =>
      /syntax error/.test((err as { stderr: string }).stderr),
    );
    assert.equal(await session.run(['list table inet t'], { list: true }), listed, 'answers stay in step');
    assert.deepEqual(lines(), [
      'add table inet t; add set inet t s { type ifname; }',
      'list table inet t',
      'list table inet missing',
      'add table inet u; bad command',
      'list table inet t',
    ]);
    assert.equal(session.starts, 1, 'one process for all of them');
  });

  test('many commands at once: in order, one process; replaced after maxLines', async () => {
    const { session } = fakeNft({ maxLines: 10 });
    await session.run(['add table inet t']);
    const results = await Promise.all(
      Array.from({ length: 25 }, () => session.run(['list table inet t'], { list: true }).catch(() => 'gone')),
    );
    // The table lives in the fake process: a new process has none, so its answers tell when it was replaced.
    assert.equal(results.filter((r) => r !== 'gone').length, 9);
    assert.equal(session.starts, 3);
  });

  test('a stuck nft is killed at the time limit and a dead one replaced; the next command gets a new one', async () => {
    const { session } = fakeNft({ timeoutMs: 2_000 });
    await assert.rejects(session.run(['hang']), (err: unknown) => (err as { killed?: boolean }).killed === true);
    await session.run(['add table inet t']);
    await assert.rejects(session.run(['exit']), (err: unknown) => (err as { code?: unknown }).code === 3);
    await assert.rejects(session.run(['list table inet t'], { list: true }), (err: unknown) =>
      /No such file/.test((err as { stderr: string }).stderr),
    );
    assert.equal(session.starts, 3);
  });

  test('nft gets -j -i, and a HOME where its history cannot be written', async () => {
    const { session } = fakeNft();
    const seen = JSON.parse(await session.run(['home'], { list: true })) as { home: string; args: string[] };
    assert.deepEqual(seen, { home: '/dev/null', args: ['-j', '-i'] });
  });

  test('a line break inside a command is refused before anything is sent', async () => {
    const { session, lines } = fakeNft();
    await assert.rejects(session.run(['add table inet t\nflush ruleset']));
    assert.deepEqual(lines(), []);
    assert.equal(session.starts, 0);
  });
});
