/**
 * Durability of the embedded store: what one instance committed, a fresh instance on the same file reads; a
 * writer killed with SIGKILL mid-stream loses nothing it reported as committed, leaves no half call, and the
 * file passes `PRAGMA integrity_check`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { openDatabase } from '../../src/neutron/embedded/database.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'kuryr-durability-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const STORE_URL = new URL('../../src/neutron/embedded/index.ts', import.meta.url).href;

test('a fresh instance reads what a closed one wrote', async () => {
  const path = join(dir, 'reopen.db');
  const first = openEmbeddedNeutron({ path });
  const net = await first.createNetwork({ name: 'durable' });
  const [subnet] = await first.createSubnets([{ network_id: net.id, ip_version: 4, cidr: '10.0.0.0/24' }]);
  assert.ok(subnet);
  const port = await first.createPort({ network_id: net.id, fixed_ips: [{ subnet_id: subnet.id }] });
  await first.addTag('ports', port.id, 'endpoint');
  await first.close();

  const second = openEmbeddedNeutron({ path });
  const reread = await second.showPort(port.id);
  assert.deepEqual({ ...reread, updated_at: port.updated_at }, { ...port, tags: ['endpoint'], revision_number: 1 });
  assert.deepEqual((await second.showNetwork(net.id)).subnets, [subnet.id]);
  await assert.rejects(
    second.createPort({ network_id: net.id, fixed_ips: [{ ip_address: port.fixed_ips[0]?.ip_address ?? '' }] }),
    /already allocated/,
    'the allocation survived too',
  );
  await second.close();
});

/** A child that writes ports (and tags them) forever, printing a line after each committed call. */
const WRITER = `
const { openEmbeddedNeutron } = await import(${JSON.stringify(STORE_URL)});
const api = openEmbeddedNeutron({ path: process.env.STORE_PATH });
let [net] = await api.listNetworks({ name: 'crash' });
net ??= await api.createNetwork({ name: 'crash' });
let [subnet] = await api.listSubnets({ network_id: net.id });
subnet ??= (await api.createSubnets([{ network_id: net.id, ip_version: 4, cidr: '10.64.0.0/16' }]))[0];
for (let i = 0; ; i++) {
  const port = await api.createPort({ network_id: net.id, name: 'p' + i, fixed_ips: [{ subnet_id: subnet.id }] });
  process.stdout.write('port ' + port.id + '\\n');
  await api.replaceTags('ports', port.id, ['a', 'b', 'c']);
  process.stdout.write('tags ' + port.id + '\\n');
}
`;

/** Run the writer until it reported `target` committed ports, then SIGKILL it; return what it reported. */
function runAndKill(path: string, target: number): Promise<{ ports: string[]; tagged: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--no-warnings', '--input-type=module', '-e', WRITER], {
      env: { ...process.env, STORE_PATH: path },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const ports: string[] = [];
    const tagged: string[] = [];
    let buffer = '';
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout.on('data', (d: Buffer) => {
      buffer += d.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        const [kind, id] = line.split(' ');
        if (kind === 'port' && id) ports.push(id);
        if (kind === 'tags' && id) tagged.push(id);
      }
      if (!killed && ports.length >= target) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`writer exited (${code}) before the kill: ${stderr}`));
      else resolve({ ports, tagged });
    });
  });
}

test('kill -9 mid-stream loses no reported commit and leaves no half call', async () => {
  const path = join(dir, 'crash.db');
  const reported = new Set<string>();
  for (const target of [15, 40, 25]) {
    const { ports, tagged } = await runAndKill(path, reported.size + target);
    const api = openEmbeddedNeutron({ path });
    for (const id of ports) {
      const port = await api.showPort(id); // throws PortNotFound if a reported commit was lost
      assert.equal(port.fixed_ips.length, 1, 'a port never exists without its address');
      reported.add(id);
    }
    for (const id of tagged) assert.deepEqual((await api.showPort(id)).tags, ['a', 'b', 'c']);
    for (const port of await api.listPorts({ name: undefined })) {
      assert.equal(port.fixed_ips.length, 1, `port ${port.id} is whole`);
      assert.ok([0, 3].includes(port.tags.length), `tags of ${port.id} were replaced all at once or not at all`);
    }
    const addresses = (await api.listPorts()).map((p) => p.fixed_ips[0]?.ip_address);
    assert.equal(new Set(addresses).size, addresses.length, 'no address handed out twice');
    await api.close();

    const db = openDatabase(path);
    assert.deepEqual(
      db.all('PRAGMA integrity_check').map((r) => r.integrity_check),
      ['ok'],
    );
    assert.deepEqual(db.all('PRAGMA foreign_key_check'), []);
    db.close();
  }
  assert.ok(reported.size >= 80, `the writer reported ${reported.size} ports across three crashes`);
});
