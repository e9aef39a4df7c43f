/**
 * Several connections on one store file: two instances in one process see each other's commits at once,
 * and two writer processes allocating from the same subnet while a third connection reads never hand out
 * an address twice, never fail on a busy lock, and leave a consistent file.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { openDatabase } from '../../src/neutron/embedded/database.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'kuryr-concurrency-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const STORE_URL = new URL('../../src/neutron/embedded/index.ts', import.meta.url).href;
const PORTS_PER_WRITER = 40;

test('two instances on one file see each other immediately', async () => {
  const path = join(dir, 'pair.db');
  const a = openEmbeddedNeutron({ path });
  const b = openEmbeddedNeutron({ path });
  const net = await a.createNetwork({ name: 'shared' });
  assert.equal((await b.showNetwork(net.id)).name, 'shared');
  const [subnet] = await b.createSubnets([{ network_id: net.id, ip_version: 4, cidr: '10.0.0.0/29' }]);
  assert.ok(subnet);
  const fromA = await a.createPort({ network_id: net.id, fixed_ips: [{ ip_address: '10.0.0.2' }] });
  await assert.rejects(
    b.createPort({ network_id: net.id, fixed_ips: [{ ip_address: '10.0.0.2' }] }),
    /already allocated/,
  );
  await b.addTag('ports', fromA.id, 'seen');
  assert.deepEqual((await a.showPort(fromA.id)).tags, ['seen']);
  await a.close();
  assert.equal((await b.listPorts({ network_id: net.id })).length, 1, 'closing one instance leaves the other working');
  await b.close();
});

const WRITER = `
const { openEmbeddedNeutron } = await import(${JSON.stringify(STORE_URL)});
const api = openEmbeddedNeutron({ path: process.env.STORE_PATH });
for (let i = 0; i < ${PORTS_PER_WRITER}; i++) {
  const port = await api.createPort({ network_id: process.env.NETWORK_ID, name: process.env.WRITER + '-' + i,
    fixed_ips: [{ subnet_id: process.env.SUBNET_ID }] });
  await api.addTag('ports', port.id, process.env.WRITER);
}
await api.close();
`;

function writer(name: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--no-warnings', '--input-type=module', '-e', WRITER], {
      env: { ...process.env, ...env, WRITER: name },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`writer ${name} failed (${code}): ${stderr}`)),
    );
  });
}

test('two writer processes and a reader share one subnet safely', async () => {
  const path = join(dir, 'busy.db');
  const api = openEmbeddedNeutron({ path });
  const net = await api.createNetwork({ name: 'busy' });
  const [subnet] = await api.createSubnets([{ network_id: net.id, ip_version: 4, cidr: '10.9.0.0/24' }]);
  assert.ok(subnet);
  const env = { STORE_PATH: path, NETWORK_ID: net.id, SUBNET_ID: subnet.id };

  let done = false;
  const writers = Promise.all([writer('w1', env), writer('w2', env)]).finally(() => {
    done = true;
  });
  const counts: number[] = [];
  while (!done) {
    counts.push((await api.listPorts({ network_id: net.id })).length);
    await new Promise((r) => setTimeout(r, 5));
  }
  await writers;

  assert.ok(
    counts.every((c, i) => i === 0 || c >= (counts[i - 1] as number)),
    'the reader never sees commits vanish',
  );
  const ports = await api.listPorts({ network_id: net.id });
  assert.equal(ports.length, 2 * PORTS_PER_WRITER);
  const addresses = ports.map((p) => p.fixed_ips[0]?.ip_address);
  assert.equal(new Set(addresses).size, ports.length, 'no address handed out twice');
  assert.equal((await api.listPorts({ tags: 'w1' })).length, PORTS_PER_WRITER);
  assert.equal((await api.listPorts({ tags: 'w2' })).length, PORTS_PER_WRITER);
  await api.close();

  const db = openDatabase(path);
  assert.deepEqual(
    db.all('PRAGMA integrity_check').map((r) => r.integrity_check),
    ['ok'],
  );
  db.close();
});
