// shutdownPluginServer: a request in flight finishes (its reply is delivered, its work is in the store) before the
// shutdown resolves, on a kept-alive connection as Docker uses; new connections are refused meanwhile; past the
// grace period the running requests are reported, not cut.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { silentLogger } from '../../src/observability/logger.ts';
import { listenUnix } from '../../src/plugin/listen.ts';
import { createPluginServer, shutdownPluginServer } from '../../src/plugin/server.ts';
import { dockerId, makeDriver } from '../helpers/fakes.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'kuryr-shutdown-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function post(agent: http.Agent, socketPath: string, method: string, body: unknown) {
  return new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
    const req = http.request({ socketPath, agent, method: 'POST', path: `/${method}` }, (res) => {
      let text = '';
      res.on('data', (d) => {
        text += String(d);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** A driver whose host agent waits for `release()` while creating a network: a slow request. */
async function slowDriver() {
  const env = await makeDriver();
  let release = () => {};
  let entered = () => {};
  const inside = new Promise<void>((r) => {
    entered = r;
  });
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const ensure = env.agent.ensureNetwork.bind(env.agent);
  env.agent.ensureNetwork = async (spec) => {
    entered();
    await gate;
    return ensure(spec);
  };
  return { env, inside, release: () => release() };
}

async function createNetwork(socket: string, agent: http.Agent) {
  const pool = await post(agent, socket, 'IpamDriver.RequestPool', {
    AddressSpace: 'no_address_space',
    Pool: '10.61.0.0/24',
    SubPool: '',
    Options: {},
    V6: false,
  });
  assert.equal(pool.status, 200);
  const NetworkID = dockerId();
  const reply = post(agent, socket, 'NetworkDriver.CreateNetwork', {
    NetworkID,
    Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} },
    IPv4Data: [{ AddressSpace: 'no_address_space', Pool: '10.61.0.0/24', Gateway: '10.61.0.1/24' }],
    IPv6Data: [],
  });
  return { NetworkID, reply };
}

test('the request in flight completes and is stored before shutdown resolves; newcomers are turned away', async () => {
  const { env, inside, release } = await slowDriver();
  const server = createPluginServer({ driver: env.driver, log: silentLogger() });
  const socket = path.join(dir, 'a.sock');
  await listenUnix(server, socket, null);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const { NetworkID, reply } = await createNetwork(socket, agent);
    await inside;
    let resolved = false;
    const shutdown = shutdownPluginServer(server, 10_000).then((left) => {
      resolved = true;
      return left;
    });
    // New connections: refused (the listener is closed).
    const other = new http.Agent({ keepAlive: false });
    await assert.rejects(post(other, socket, 'Plugin.Activate', {}), /ECONNREFUSED|ENOENT/);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(resolved, false, 'shutdown waits for the request in flight');
    release();
    const created = await reply;
    assert.equal(created.status, 200, JSON.stringify(created.body));
    assert.deepEqual(await shutdown, [], 'nothing left running');
    const networks = await env.neutron.listNetworks();
    assert.equal(networks.length, 1, 'the network is in the store');
    assert.ok(networks[0]!.description?.includes(NetworkID), 'the Docker network');
    assert.equal(env.agent.networks.size, 1, 'the host side was done too');
  } finally {
    release();
    agent.destroy();
    env.close();
  }
});

test('past the grace period the running requests are reported (the caller keeps the store open)', async () => {
  const { env, inside, release } = await slowDriver();
  const server = createPluginServer({ driver: env.driver, log: silentLogger() });
  const socket = path.join(dir, 'b.sock');
  await listenUnix(server, socket, null);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const { reply } = await createNetwork(socket, agent);
    await inside;
    assert.deepEqual(await shutdownPluginServer(server, 300), ['NetworkDriver.CreateNetwork']);
    release();
    await reply.catch(() => undefined); // its connection was closed at the end of the grace period
  } finally {
    release();
    agent.destroy();
    env.close();
  }
});
