/**
 * Regression tests for the defects the fuzz suite found, each with the minimal input that triggered it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MAX_JSON_DEPTH } from '../../src/plugin/server.ts';
import type { World } from './arbitraries.ts';
import { assertErr, type FuzzServer, ok, populateWorld, rawExchange, rawStatus, startFuzzServer } from './harness.ts';

const MAC = 'com.docker.network.endpoint.macaddress';
const EXPOSED = 'com.docker.network.endpoint.exposedports';

describe('fuzz regressions', () => {
  let s: FuzzServer;
  let w: World;

  before(async () => {
    s = await startFuzzServer();
    w = await populateWorld(s);
  });

  after(async () => {
    await s.close();
  });

  const poolsOfA = async () => (await s.env.neutron.listSubnets({ cidr: w.cidrA }))[0]!.allocation_pools;

  test('a PoolID whose ip-range lies outside its CIDR is refused and leaves the subnet alone', async () => {
    // Found: RequestAddress {"PoolID": "<pool>@10.60.0.0/24@10.99.0.0/25"} answered 409 but first narrowed the
    // subnet's allocation pools to the empty intersection: no container could get an address on the network.
    const before = await poolsOfA();
    const snapshot = await s.snapshot();
    for (const range of ['10.99.0.0/25', 'fd00::/64', '0.0.0.0/0', '10.60.0.0/23']) {
      const PoolID = `${w.poolAUuid}@${w.cidrA}@${range}`;
      const reply = await s.call('IpamDriver.RequestAddress', {
        PoolID,
        Address: '',
        Options: { [MAC]: '02:42:fe:00:00:01' },
      });
      assert.equal(assertErr(reply, PoolID, [400]), 'KURYR_ERR_BAD_REQUEST');
      assert.match(String((reply.json as { Err: string }).Err), /PoolID: .*ip-range lies outside its CIDR/);
      // Found too: ReleasePool with such an ID was answered 200 (and deleted the pool the ID names).
      const [poolC] = w.poolC.split('@');
      const release = await s.call('IpamDriver.ReleasePool', { PoolID: `${poolC}@10.80.0.0/24@${range}` });
      assert.equal(assertErr(release, 'ReleasePool', [400]), 'KURYR_ERR_BAD_REQUEST');
    }
    assert.deepEqual(await poolsOfA(), before);
    assert.deepEqual(await s.snapshot(), snapshot);
    const legit = await ok(s, 'IpamDriver.RequestAddress', {
      PoolID: w.poolA,
      Address: '',
      Options: { [MAC]: '02:42:fe:00:00:02' },
    });
    assert.match(String(legit.Address), /^10\.60\.0\.\d+\/24$/);
  });

  test('a PoolID with an ip-range inside its CIDR (what RequestPool issues for --ip-range) still works', async () => {
    const pool = await ok(s, 'IpamDriver.RequestPool', {
      Pool: '10.62.0.0/24',
      SubPool: '10.62.0.128/25',
      Options: {},
      V6: false,
    });
    assert.equal(pool.PoolID, `${String(pool.PoolID).split('@')[0]}@10.62.0.0/24@10.62.0.128/25`);
    await ok(s, 'IpamDriver.RequestAddress', {
      PoolID: pool.PoolID,
      Address: '',
      Options: { RequestAddressType: 'com.docker.network.gateway' },
    });
    await ok(s, 'NetworkDriver.CreateNetwork', {
      NetworkID: 'c'.repeat(64),
      Options: {},
      IPv4Data: [{ AddressSpace: 'x', Pool: '10.62.0.0/24', Gateway: '10.62.0.1/24' }],
      IPv6Data: [],
    });
    const addr = await ok(s, 'IpamDriver.RequestAddress', {
      PoolID: pool.PoolID,
      Address: '',
      Options: { [MAC]: '02:42:fe:00:00:03' },
    });
    const last = Number(String(addr.Address).split('/')[0]!.split('.')[3]);
    assert.ok(last >= 128 && last <= 254, `${String(addr.Address)} is in the ip-range`);
  });

  test('deeply nested JSON is a 400, not a stack overflow (500)', async () => {
    // Found: ProgramExternalConnectivity with an exposed-ports entry nested 5000 deep answered
    // 500 KURYR_ERR_INTERNAL "Maximum call stack size exceeded" (JSON.stringify of the entry for the message).
    const snapshot = await s.snapshot();
    const entry = `${'['.repeat(5000)}1${']'.repeat(5000)}`;
    const body = `{"NetworkID":"${w.netB}","EndpointID":"${w.epB}","Options":{"${EXPOSED}":[${entry}]}}`;
    const reply = await s.call('NetworkDriver.ProgramExternalConnectivity', body);
    assert.equal(assertErr(reply, 'deep exposedports', [400]), 'KURYR_ERR_BAD_REQUEST');
    assert.match(reply.raw, new RegExp(`nested deeper than ${MAX_JSON_DEPTH} levels`));
    assert.deepEqual(await s.snapshot(), snapshot);

    // The limit: the body object is level 1, so an extra field nested MAX-1 levels is read, one more is not.
    const nested = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
    const unknownId = 'e'.repeat(64);
    const atLimit = await s.call(
      'NetworkDriver.DeleteNetwork',
      `{"NetworkID":"${unknownId}","x":${nested(MAX_JSON_DEPTH - 1)}}`,
    );
    assert.equal(atLimit.status, 200, atLimit.raw);
    const overLimit = await s.call(
      'NetworkDriver.DeleteNetwork',
      `{"NetworkID":"${unknownId}","x":${nested(MAX_JSON_DEPTH)}}`,
    );
    assert.equal(assertErr(overLimit, 'one level too deep', [400]), 'KURYR_ERR_BAD_REQUEST');

    // What Docker sends (exposed ports and port bindings, 4 levels) is unaffected.
    await ok(s, 'NetworkDriver.ProgramExternalConnectivity', {
      NetworkID: w.netB,
      EndpointID: w.epB,
      Options: {
        [EXPOSED]: [{ Proto: 6, Port: 8080 }],
        'com.docker.network.portmap': [
          { Proto: 6, IP: '', Port: 8080, HostIP: '0.0.0.0', HostPort: 18080, HostPortEnd: 18080 },
        ],
      },
    });
  });

  test('a CreateNetwork gateway outside its pool is refused (it would become a host address on the bridge)', async () => {
    // Found: CreateNetwork {"IPv4Data": [{"Pool": "10.10.10.0/24", "Gateway": "10.11.0.1/24"}]} answered 200 and
    // the agent was asked to put 10.11.0.1/24 — a foreign network — on the new network's bridge.
    const snapshot = await s.snapshot();
    for (const [pool, gateway] of [
      ['10.10.10.0/24', '10.11.0.1/24'],
      ['10.10.10.0/24', 'fd00::1/64'],
      ['fd6b:7572:7972:10::/64', 'fd00::1/64'],
    ]) {
      const reply = await s.call('NetworkDriver.CreateNetwork', {
        NetworkID: 'd'.repeat(64),
        Options: {},
        IPv4Data: pool!.includes(':') ? [] : [{ AddressSpace: 'x', Pool: pool, Gateway: gateway }],
        IPv6Data: pool!.includes(':') ? [{ AddressSpace: 'x', Pool: pool, Gateway: gateway }] : [],
      });
      assert.equal(assertErr(reply, `${pool} gateway ${gateway}`, [400]), 'KURYR_ERR_BAD_REQUEST');
      assert.match(reply.raw, /Gateway: must be an address inside Pool/);
    }
    assert.deepEqual(await s.snapshot(), snapshot);
    // A gateway of the pool, and Docker's "no gateway" placeholder, are accepted.
    for (const [id, gateway] of [
      ['d1', '10.10.10.1/24'],
      ['d2', '0.0.0.0/0'],
    ]) {
      await ok(s, 'NetworkDriver.CreateNetwork', {
        NetworkID: id!.repeat(32),
        Options: {},
        IPv4Data: [{ AddressSpace: 'x', Pool: id === 'd1' ? '10.10.10.0/24' : '10.10.11.0/24', Gateway: gateway }],
        IPv6Data: [],
      });
    }
  });

  test('an exposed port Neutron cannot take (port 0) is refused before CreateEndpoint creates anything', async () => {
    // Found: CreateEndpoint {"Options": {"com.docker.network.endpoint.exposedports": [{"Proto": 17, "Port": 0}]}}
    // on an address not from our IPAM answered 400 SecurityGroupInvalidPortValue, leaving the port it had created.
    const snapshot = await s.snapshot();
    const options = {
      [EXPOSED]: [
        { Proto: 6, Port: 80 },
        { Proto: 17, Port: 0 },
      ],
    };
    const create = await s.call('NetworkDriver.CreateEndpoint', {
      NetworkID: w.netA,
      EndpointID: 'c'.repeat(64),
      Interface: { Address: '10.60.0.246/24', AddressIPv6: '', MacAddress: '02:42:fe:e9:06:06' },
      Options: options,
    });
    assert.equal(assertErr(create, 'port 0', [400]), 'KURYR_ERR_BAD_REQUEST');
    assert.match(create.raw, /exposedports: must be a list of/);
    const program = await s.call('NetworkDriver.ProgramExternalConnectivity', {
      NetworkID: w.netB,
      EndpointID: w.epB,
      Options: options,
    });
    assert.equal(assertErr(program, 'port 0', [400]), 'KURYR_ERR_BAD_REQUEST');
    assert.deepEqual(await s.snapshot(), snapshot);
    assert.deepEqual(s.host.violations, []);
    // ICMP carries no port: 0 is what Docker sends for it.
    await ok(s, 'NetworkDriver.ProgramExternalConnectivity', {
      NetworkID: w.netB,
      EndpointID: w.epB,
      Options: { [EXPOSED]: [{ Proto: 1, Port: 0 }] },
    });
  });

  test('a SandboxKey with control characters is refused; printable absolute paths are not', async () => {
    for (const key of [
      '/var/run/docker/netns/abc\r',
      '/var/run/docker/netns/a\nb',
      '/x\u001b[2J',
      '/x\u007f',
      '/x\u0085',
      '/x\0',
    ]) {
      const reply = await s.call('NetworkDriver.Join', {
        NetworkID: w.netA,
        EndpointID: w.epA,
        SandboxKey: key,
        Options: null,
      });
      assert.equal(assertErr(reply, JSON.stringify(key), [400]), 'KURYR_ERR_BAD_REQUEST');
      assert.match(reply.raw, /SandboxKey: must not contain control characters/);
    }
    for (const key of ['/var/run/docker/netns/0123456789ab', '/run/user/1000/docker/netns/x y', '/proc/123/ns/net']) {
      await ok(s, 'NetworkDriver.Join', { NetworkID: w.netA, EndpointID: w.epA, SandboxKey: key, Options: null });
    }
  });
});

describe('fuzz regressions: raw HTTP', () => {
  test('a request whose client goes away mid-body is a 400 in the log and metrics, not a 500 INTERNAL', async () => {
    // Found: "POST …\r\nContent-Length: 100\r\n\r\n{\"Net" then close was recorded as 500 KURYR_ERR_INTERNAL "aborted".
    const s = await startFuzzServer();
    try {
      const before = s.handled.length;
      await rawExchange(
        s.socketPath,
        'POST /NetworkDriver.DeleteNetwork HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"Net',
        {
          destroyAfterWrite: true,
        },
      );
      await waitFor(() => s.handled.length > before);
      const [summary] = s.handled.slice(before);
      assert.equal(summary?.status, 400);
      assert.equal(summary?.code, 'KURYR_ERR_BAD_REQUEST');
      await s.assertAlive();
    } finally {
      await s.close();
    }
  });

  test('bytes node:http cannot parse get a {"Err"} reply too (400, 431 for huge headers), then the connection closes', async () => {
    const s = await startFuzzServer();
    try {
      const cases: [string | Buffer, number][] = [
        [Buffer.from([0, 1, 2, 0xff, 10, 13, 10, 13, 10]), 400],
        ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 400],
        ['POST /Plugin.Activate HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 400],
        [
          'POST /Plugin.Activate HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
          400,
        ],
        [`POST /Plugin.Activate HTTP/1.1\r\nHost: x\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
      ];
      for (const [bytes, status] of cases) {
        const raw = await rawExchange(s.socketPath, bytes);
        assert.equal(rawStatus(raw), status, JSON.stringify(raw));
        const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
        assert.match(JSON.parse(body).Err as string, /^KURYR_ERR_BAD_REQUEST: malformed HTTP request \(HPE_/);
      }
      await s.assertAlive();
    } finally {
      await s.close();
    }
  });
});

async function waitFor(check: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
