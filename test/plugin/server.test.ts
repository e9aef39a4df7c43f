import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { listenUnix } from '../../src/plugin/listen.ts';
import { createPluginServer } from '../../src/plugin/server.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { dockerId, makeDriver } from '../helpers/fakes.ts';

interface Reply {
  status: number;
  body: Record<string, unknown>;
  raw: string;
  socketPort: number | undefined;
}

describe('plugin HTTP API over a unix socket', () => {
  let env: Awaited<ReturnType<typeof makeDriver>>;
  let server: http.Server;
  let dir: string;
  let socketPath: string;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

  function call(method: string, body: string | object | undefined, opts: { verb?: string } = {}): Promise<Reply> {
    const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath,
          path: `/${method}`,
          method: opts.verb ?? 'POST',
          agent,
          headers: { 'Content-Length': Buffer.byteLength(text) },
        },
        (res) => {
          let raw = '';
          res.on('data', (c: Buffer) => {
            raw += c.toString();
          });
          res.on('end', () => {
            let parsed: Record<string, unknown> = {};
            try {
              parsed = JSON.parse(raw) as Record<string, unknown>;
            } catch {
              /* asserted by callers */
            }
            resolve({ status: res.statusCode ?? 0, body: parsed, raw, socketPort: undefined });
          });
        },
      );
      req.on('error', reject);
      req.end(text);
    });
  }

  before(async () => {
    env = await makeDriver();
    server = createPluginServer({ driver: env.driver, log: silentLogger(), maxBodyBytes: 64 * 1024 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kuryr-api-'));
    socketPath = path.join(dir, 'kuryr-test.sock');
    await listenUnix(server, socketPath, null);
  });

  after(async () => {
    agent.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    env.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the socket is root-only (0660)', () => {
    const st = fs.statSync(socketPath);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o660);
    assert.equal(st.uid, 0);
  });

  test('handshake: Activate, capabilities and address spaces', async () => {
    const activate = await call('Plugin.Activate', undefined);
    assert.equal(activate.status, 200);
    assert.deepEqual(activate.body, { Implements: ['NetworkDriver', 'IpamDriver'] });
    assert.deepEqual((await call('NetworkDriver.GetCapabilities', undefined)).body, {
      Scope: 'local',
      ConnectivityScope: 'local',
    });
    assert.deepEqual((await call('IpamDriver.GetCapabilities', undefined)).body, {
      RequiresMACAddress: true,
      RequiresRequestReplay: false,
    });
    assert.deepEqual((await call('IpamDriver.GetDefaultAddressSpaces', undefined)).body, {
      LocalDefaultAddressSpace: 'no_address_space',
      GlobalDefaultAddressSpace: 'no_address_space',
    });
  });

  test('optional methods are answered: Leave, Discover*, AllocateNetwork echo, FreeNetwork, GwAllocCheck', async () => {
    const ids = { NetworkID: dockerId(), EndpointID: dockerId() };
    assert.deepEqual((await call('NetworkDriver.Leave', ids)).body, {});
    assert.deepEqual((await call('NetworkDriver.DiscoverNew', { DiscoveryType: 1, DiscoveryData: {} })).body, {});
    assert.deepEqual((await call('NetworkDriver.DiscoverDelete', { DiscoveryType: 1, DiscoveryData: {} })).body, {});
    const alloc = await call('NetworkDriver.AllocateNetwork', {
      NetworkID: 'a'.repeat(25),
      Options: { k: 'v' },
      IPv4Data: [],
      IPv6Data: [],
    });
    assert.deepEqual(alloc.body, { Options: { k: 'v' } });
    assert.deepEqual((await call('NetworkDriver.FreeNetwork', { NetworkID: 'a'.repeat(25) })).body, {});
    assert.deepEqual((await call('NetworkDriver.GwAllocCheck', { Options: {} })).body, {
      SkipIPv4: false,
      SkipIPv6: false,
    });
  });

  test('a whole network and container lifecycle over HTTP, as dockerd sends it', async () => {
    const pool = await call('IpamDriver.RequestPool', {
      AddressSpace: 'no_address_space',
      Pool: '10.60.0.0/24',
      SubPool: '',
      Options: {},
      V6: false,
    });
    assert.equal(pool.status, 200, pool.raw);
    const PoolID = pool.body.PoolID as string;
    const gw = await call('IpamDriver.RequestAddress', {
      PoolID,
      Address: '',
      Options: { RequestAddressType: 'com.docker.network.gateway' },
    });
    assert.deepEqual(gw.body, { Address: '10.60.0.1/24', Data: {} });
    const NetworkID = dockerId();
    const create = await call('NetworkDriver.CreateNetwork', {
      NetworkID,
      Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} },
      IPv4Data: [{ AddressSpace: 'no_address_space', Pool: '10.60.0.0/24', Gateway: '10.60.0.1/24' }],
      IPv6Data: [],
    });
    assert.equal(create.status, 200, create.raw);
    const mac = '02:42:0a:3c:00:09';
    const addr = await call('IpamDriver.RequestAddress', {
      PoolID,
      Address: '',
      Options: { 'com.docker.network.endpoint.macaddress': mac },
    });
    assert.match(addr.body.Address as string, /^10\.60\.0\.\d+\/24$/);
    const EndpointID = dockerId();
    const ep = await call('NetworkDriver.CreateEndpoint', {
      NetworkID,
      EndpointID,
      Interface: { Address: addr.body.Address, AddressIPv6: '', MacAddress: mac },
      Options: {},
    });
    assert.deepEqual(ep.body, { Interface: {} });
    const join = await call('NetworkDriver.Join', {
      NetworkID,
      EndpointID,
      SandboxKey: '/var/run/docker/netns/abcdef012345',
      Options: null,
    });
    assert.equal(join.status, 200, join.raw);
    assert.match((join.body.InterfaceName as { SrcName: string }).SrcName, /^t_c[0-9a-f-]{11}$/);
    assert.equal(join.body.Gateway, '10.60.0.1');
    const info = await call('NetworkDriver.EndpointOperInfo', { NetworkID, EndpointID });
    assert.equal(info.status, 200);
    assert.equal((await call('NetworkDriver.RevokeExternalConnectivity', { NetworkID, EndpointID })).status, 200);
    assert.equal((await call('NetworkDriver.Leave', { NetworkID, EndpointID })).status, 200);
    assert.equal((await call('NetworkDriver.DeleteEndpoint', { NetworkID, EndpointID })).status, 200);
    const ip = (addr.body.Address as string).split('/')[0];
    assert.equal((await call('IpamDriver.ReleaseAddress', { PoolID, Address: ip })).status, 200);
    assert.equal((await call('IpamDriver.ReleaseAddress', { PoolID, Address: '10.60.0.1' })).status, 200);
    assert.equal((await call('IpamDriver.ReleasePool', { PoolID })).status, 200);
    assert.equal((await call('NetworkDriver.DeleteNetwork', { NetworkID })).status, 200);
    assert.equal((await env.neutron.listNetworks()).length, 0);
    assert.equal((await env.neutron.listPorts()).length, 0);
  });

  test('bad input: clear 4xx {"Err"} with a stable code, and the server keeps serving', async () => {
    const cases: [string, string | object | undefined, number, RegExp][] = [
      ['NetworkDriver.CreateNetwork', '{"NetworkID": ', 400, /KURYR_ERR_BAD_REQUEST: request body is not valid JSON/],
      ['NetworkDriver.CreateNetwork', undefined, 400, /empty request body/],
      ['NetworkDriver.CreateNetwork', '[1,2]', 400, /must be a JSON object/],
      [
        'NetworkDriver.CreateNetwork',
        { NetworkID: 'x; rm -rf /', IPv4Data: [], IPv6Data: [] },
        400,
        /NetworkID: must be a Docker ID/,
      ],
      ['NetworkDriver.CreateNetwork', { NetworkID: 42 }, 400, /NetworkID/],
      [
        'NetworkDriver.CreateEndpoint',
        { NetworkID: dockerId(), EndpointID: dockerId(), Interface: { Address: '10.0.0.300/24', MacAddress: '' } },
        400,
        /Interface\.Address: must be empty or a CIDR/,
      ],
      [
        'NetworkDriver.CreateEndpoint',
        { NetworkID: dockerId(), EndpointID: dockerId(), Interface: { Address: '10.0.0.3/24', MacAddress: 'zz:zz' } },
        400,
        /MacAddress/,
      ],
      [
        'NetworkDriver.Join',
        { NetworkID: dockerId(), EndpointID: dockerId(), SandboxKey: '/var/run/../../etc' },
        400,
        /SandboxKey/,
      ],
      ['IpamDriver.RequestPool', { Pool: 'not-a-cidr', V6: false }, 400, /Pool: must be empty or a CIDR/],
      ['IpamDriver.RequestPool', { Pool: '', SubPool: '10.0.0.0/25', V6: false }, 400, /SubPool/],
      ['IpamDriver.RequestPool', { Pool: 'fd00::/64', V6: false }, 400, /not an IPv4 CIDR/],
      ['IpamDriver.RequestAddress', { PoolID: '../../etc/passwd', Address: '' }, 400, /PoolID/],
      [
        'IpamDriver.RequestAddress',
        { PoolID: '6c3a4e52-7d1f-4d1a-9a0e-000000000000@10.0.0.0/24', Address: '' },
        404,
        /Subnet with pool/,
      ],
      ['IpamDriver.ReleasePool', { PoolID: 'nope' }, 400, /PoolID/],
      [
        'NetworkDriver.CreateEndpoint',
        { NetworkID: dockerId(), EndpointID: dockerId(), Interface: { Address: '10.0.0.3/24' } },
        404,
        /KURYR_ERR_NOT_FOUND/,
      ],
      [
        'NetworkDriver.Join',
        { NetworkID: dockerId(), EndpointID: dockerId(), SandboxKey: '/x/y' },
        404,
        /The port doesn't exist/,
      ],
      ['NetworkDriver.NoSuchThing', {}, 404, /unknown plugin method/],
    ];
    for (const [method, body, status, pattern] of cases) {
      const reply = await call(method, body);
      assert.equal(reply.status, status, `${method} ${JSON.stringify(body)} → ${reply.raw}`);
      assert.equal(typeof reply.body.Err, 'string', reply.raw);
      assert.match(reply.body.Err as string, pattern);
    }
    const get = await call('Plugin.Activate', undefined, { verb: 'GET' });
    assert.equal(get.status, 405);
    const huge = await call('NetworkDriver.CreateNetwork', { NetworkID: dockerId(), pad: 'x'.repeat(100_000) });
    assert.equal(huge.status, 413);
    assert.match(huge.body.Err as string, /KURYR_ERR_TOO_LARGE/);
    assert.equal((await call('Plugin.Activate', undefined)).status, 200, 'still serving');
    assert.equal((await env.neutron.listNetworks()).length, 0, 'no state changed');
    assert.equal((await env.neutron.listPorts()).length, 0);
  });

  test('a 404 from the connectivity calls is never sent (Docker would take it as "not implemented")', async () => {
    const reply = await call('NetworkDriver.ProgramExternalConnectivity', {
      NetworkID: dockerId(),
      EndpointID: dockerId(),
      Options: { 'com.docker.network.endpoint.exposedports': [{ Proto: 6, Port: 80 }] },
    });
    assert.equal(reply.status, 500);
    assert.match(reply.body.Err as string, /KURYR_ERR_NOT_FOUND/);
  });

  test('keep-alive: many calls reuse one connection, and concurrent calls get distinct addresses', async () => {
    const seen = new Set<unknown>();
    const oneAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = http.request({ socketPath, path: '/Plugin.Activate', method: 'POST', agent: oneAgent }, (res) => {
          seen.add(res.socket);
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', reject);
        req.end();
      });
      await new Promise((r) => setTimeout(r, 20));
    }
    oneAgent.destroy();
    assert.equal(seen.size, 1, 'idle connection kept open and reused');

    const pool = await call('IpamDriver.RequestPool', { Pool: '10.61.0.0/24', SubPool: '', Options: {}, V6: false });
    const PoolID = pool.body.PoolID as string;
    await call('IpamDriver.RequestAddress', {
      PoolID,
      Address: '',
      Options: { RequestAddressType: 'com.docker.network.gateway' },
    });
    await call('NetworkDriver.CreateNetwork', {
      NetworkID: dockerId(),
      Options: {},
      IPv4Data: [{ AddressSpace: 'x', Pool: '10.61.0.0/24', Gateway: '10.61.0.1/24' }],
      IPv6Data: [],
    });
    const replies = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        call('IpamDriver.RequestAddress', {
          PoolID,
          Address: '',
          Options: { 'com.docker.network.endpoint.macaddress': `02:42:0a:3d:00:${i.toString(16).padStart(2, '0')}` },
        }),
      ),
    );
    assert.ok(replies.every((r) => r.status === 200));
    assert.equal(new Set(replies.map((r) => r.body.Address)).size, 30);
  });
});
