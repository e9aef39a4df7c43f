/**
 * The real plugin process (`bin/kuryr serve`, embedded store in a temporary state directory, its own socket)
 * under garbage: invalid and malformed requests to every endpoint, bodies above the limit, and raw socket abuse
 * (bytes that are not HTTP, lying or doubled Content-Length, half-sent requests closed or left hanging, many
 * stalled connections). The process stays up (same pid), keeps answering, logs no 5xx, and its store — every row
 * of every table of the SQLite file — is unchanged. Smaller runs than the in-process suite: every case is a real
 * request to another process.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { NftIsolation } from '../../src/binding/isolation.ts';
import { LinuxBridgeAgent } from '../../src/binding/linux-bridge-agent.ts';
import { DEFAULT_MAX_BODY_BYTES } from '../../src/plugin/server.ts';
import { type PluginProcess, pluginCall, startPlugin } from '../helpers/plugin-process.ts';
import { describeCase, invalidRequest, malformedRequest, ROUTES, type World } from './arbitraries.ts';
import { assertErr, fcParams, isObject, rawExchange, rawStatus, send } from './harness.ts';

/** Every row of every table, read-only (the plugin keeps the file open in WAL mode). */
function dumpStore(file: string): Record<string, string[]> {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all();
    const out: Record<string, string[]> = {};
    for (const { name } of tables as { name: string }[]) {
      const rows = db.prepare(`SELECT * FROM "${name.replaceAll('"', '""')}"`).all();
      out[name] = rows.map((r) => JSON.stringify(r, (_, v) => (typeof v === 'bigint' ? String(v) : v))).sort();
    }
    return out;
  } finally {
    db.close();
  }
}

describe('fuzz: the real plugin process', () => {
  let dir: string;
  let plugin: PluginProcess;
  let storeFile: string;
  let reference: Record<string, string[]>;
  let w: World;
  let pid: number;
  let logStart: number;
  const total = { cases: 0, requests: 0 };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kuryr-fuzz-proc-'));
    const stateDir = path.join(dir, 'state');
    plugin = await startPlugin({
      driverName: `kfuzz${process.pid}`,
      stateDir,
      socketPath: path.join(dir, 'plugin.sock'),
      logFile: path.join(dir, 'plugin.log'),
    });
    pid = plugin.pid;
    storeFile = path.join(stateDir, 'kuryr.db');
    // IPAM state only (no host devices): a pool of our own that a slipped-through ReleasePool would delete.
    const pool = await pluginCall<{ PoolID: string }>(plugin.socket, 'IpamDriver.RequestPool', {
      AddressSpace: 'x',
      Pool: '10.81.0.0/24',
      SubPool: '',
      Options: {},
      V6: false,
    });
    assert.equal(pool.status, 200, pool.raw);
    const PoolID = pool.body.PoolID;
    w = {
      netA: 'a1'.repeat(32),
      poolA: PoolID,
      poolAUuid: PoolID.split('@')[0]!,
      cidrA: '10.81.0.0/24',
      gatewayA: '10.81.0.1',
      epA: 'e1'.repeat(32),
      addrA: '10.81.0.5',
      spareAddr: '10.81.0.6',
      netB: 'b1'.repeat(32),
      epB: 'e2'.repeat(32),
      poolC: PoolID,
      poolNames: ['kuryr', 'kuryr6', 'kuryrPool-10.81.0.0/24'],
    };
    reference = dumpStore(storeFile);
    assert.ok((reference.subnetpools ?? []).length >= 3, 'the store holds the default pools and ours');
    logStart = fs.statSync(plugin.logFile).size;
  });

  after(async () => {
    await plugin?.stop();
    // Safety net: a request that slipped through (a failing run) may have made a network, and the real agent a
    // bridge for it on this host; remove what this store holds before its directory goes.
    if (storeFile && fs.existsSync(storeFile)) {
      const networks = (dumpStore(storeFile).networks ?? []).map((row) => (JSON.parse(row) as { id: string }).id);
      const agent = new LinuxBridgeAgent({ isolation: new NftIsolation() });
      for (const id of networks) await agent.removeNetwork(id).catch(() => undefined);
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function assertStillServing(what: string): Promise<void> {
    assert.equal(plugin.pid, pid, 'the process was not restarted');
    assert.doesNotThrow(() => process.kill(pid, 0), `the plugin process died after ${what}`);
    const r = await pluginCall(plugin.socket, 'Plugin.Activate', {}, 5_000);
    assert.equal(r.status, 200, `Plugin.Activate after ${what}: ${r.raw}`);
  }

  test('invalid and malformed requests to every endpoint → 4xx {"Err"}; the store is unchanged', async (t) => {
    let n = 0;
    const anyRoute = fc.constantFrom(...ROUTES);
    const cases = fc.oneof(
      anyRoute.chain((r) => invalidRequest(r, w)),
      anyRoute.chain((r) => malformedRequest(r, w)),
    );
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        n++;
        total.requests++;
        const reply = await send(plugin.socket, false, { path: `/${c.method}`, body: c.body });
        assertErr(reply, describeCase(c));
      }),
      fcParams(80),
    );
    await assertStillServing('invalid requests');
    assert.deepEqual(dumpStore(storeFile), reference, 'the store changed');
    total.cases += n;
    t.diagnostic(`${n} generated cases`);
  });

  test('bodies above 1 MiB → 413; the limit holds in the real process', async (t) => {
    for (const body of [
      Buffer.alloc(DEFAULT_MAX_BODY_BYTES + 1, 0x41),
      Buffer.from('['.repeat(2 * DEFAULT_MAX_BODY_BYTES)),
    ]) {
      total.requests++;
      const reply = await send(plugin.socket, false, { path: '/IpamDriver.ReleasePool', body });
      assert.equal(assertErr(reply, `${body.length} bytes`, [413]), 'KURYR_ERR_TOO_LARGE');
    }
    await assertStillServing('huge bodies');
    assert.deepEqual(dumpStore(storeFile), reference, 'the store changed');
    total.cases += 2;
    t.diagnostic('2 generated cases');
  });

  test('raw socket garbage: not HTTP, lying Content-Length, broken chunks → a 4xx or nothing, never a crash', async (t) => {
    let n = 0;
    const valid = `{"PoolID":"${w.poolC}"}`;
    const head = (extra: string) => `POST /IpamDriver.ReleasePool HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;
    const garbage = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 4096 }).map((a) => Buffer.from(a)),
      fc.constantFrom(
        'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
        'GET / HTTP/9.9\r\n\r\n',
        `${head('Content-Length: 5\r\n')}${valid}`,
        `${head('Content-Length: 1\r\nContent-Length: 2\r\n')}${valid}`,
        `${head('Content-Length: -1\r\n')}${valid}`,
        `${head('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n')}0\r\n\r\n`,
        `${head('Transfer-Encoding: chunked\r\n')}zz\r\n${valid}\r\n0\r\n\r\n`,
        `${head('Transfer-Encoding: chunked\r\n')}ffffffffffffffffff\r\n`,
        `${head(`X: ${'a'.repeat(20_000)}\r\n`)}`,
        `POST /IpamDriver.ReleasePool\0 HTTP/1.1\r\n\r\n`,
        `POST /IpamDriver.ReleasePool HTTP/1.1\nContent-Length: ${valid.length}\n\n${valid}`,
        `POST /../IpamDriver.ReleasePool HTTP/1.1\r\nHost: x\r\nContent-Length: ${valid.length}\r\n\r\n${valid}`,
      ),
      fc
        .tuple(fc.integer({ min: 1, max: valid.length - 1 }), fc.integer({ min: 1, max: 1000 }))
        .map(([cut, more]) => `${head(`Content-Length: ${valid.length + more}\r\n`)}${valid.slice(0, cut)}`),
    );
    await fc.assert(
      fc.asyncProperty(garbage, fc.constantFrom('end', 'destroy', 'wait'), async (bytes, close) => {
        n++;
        total.requests++;
        const raw = await rawExchange(plugin.socket, bytes, {
          waitMs: close === 'wait' ? 300 : 1_000,
          endAfterWrite: close === 'end',
          destroyAfterWrite: close === 'destroy',
        });
        const status = rawStatus(raw);
        if (status !== undefined) {
          assert.ok(
            status >= 400 && status < 500,
            `raw garbage answered ${status}: ${JSON.stringify(raw.slice(0, 200))}`,
          );
          const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
          if (/Content-Length: [1-9]/i.test(raw))
            assert.ok(isObject(JSON.parse(body)) && 'Err' in JSON.parse(body), body);
        }
      }),
      fcParams(30),
    );
    await assertStillServing('raw garbage');
    assert.deepEqual(dumpStore(storeFile), reference, 'the store changed');
    total.cases += n;
    t.diagnostic(`${n} generated cases`);
  });

  test('stalled connections (half-sent requests left open) do not stop the others from being served', async () => {
    const stalled: net.Socket[] = [];
    try {
      for (let i = 0; i < 50; i++) {
        const sock = net.connect(plugin.socket);
        sock.on('error', () => undefined);
        await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
        sock.write(
          `POST /IpamDriver.ReleasePool HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"PoolID":"${w.poolC}"`,
        );
        stalled.push(sock);
      }
      for (let i = 0; i < 5; i++) await assertStillServing('50 stalled connections');
    } finally {
      for (const sock of stalled) sock.destroy();
    }
    total.cases += 50;
    total.requests += 55;
    await assertStillServing('closing the stalled connections');
    assert.deepEqual(dumpStore(storeFile), reference, 'the store changed');
  });

  test('the log records no 5xx and the process is the same one', async (t) => {
    await assertStillServing('everything');
    const log = fs.readFileSync(plugin.logFile, 'utf8').slice(logStart);
    const failed = log
      .split('\n')
      .filter((line) => /"status":5\d\d/.test(line) || /"msg":"request failed"/.test(line) || /"level":60/.test(line));
    assert.deepEqual(failed, [], 'no request answered or recorded as a server error');
    assert.match(log, /request rejected/);
    t.diagnostic(`fuzz process: ${total.cases} generated cases, ${total.requests} requests to pid ${pid}`);
  });
});
